"""`fcsoft perf`: a load generator for any target port of any fabric, like fio or
iscsi-perf.

    fcsoft perf [--rw randread|randwrite|read|write|randrw] [--mix PCT] [--bs BYTES]
                [--qd N] [--seconds S | --count N] [--size BYTES] [--verify] [--json]
                [--fabric HOST:PORT] [--initiator WWPN] [--vport WWPN]...
                [--target WWPN] [--lun N]

Keeps `--qd` commands outstanding on one I_T nexus: READ(16)/WRITE(16) of `--bs` bytes,
at random aligned offsets (rand*) or one after the other (read/write), within the first
`--size` bytes of the LU (default: all of it). Once a second, on a terminal, a line of
IOPS, MB/s and latency; at the end a summary with p50/p99/p99.9 latency, or with --json one
object: iops, mbps, p50_ms, p99_ms, p999_ms, ios, errors, seconds (and reads, writes, and
cpu_s: this process's CPU time over the measured interval).

--verify makes every write carry a pattern derived from its LBA and checks every read
against it: a workload that reads first writes the pattern over the region, and a
write-only one reads every block it wrote back at the end. --verify-only checks reads
against the pattern an earlier --verify run wrote, writing nothing (after a failover or a
migration, say). A command that
does not end GOOD, or data that does not match, counts as an error (the first few are
printed); any error makes the exit status 1. Exit statuses otherwise as the other tools.
"""

from __future__ import annotations

import argparse
import json
import random
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

from . import common

if TYPE_CHECKING:
    from fcsoft.initiator import ITNexus

PROG = "fcsoft perf"
MODES = ("randread", "randwrite", "read", "write", "randrw")
SHOWN_ERRORS = 5
_SEED = b"fcsoftvr"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "perf", help="load generator: IOPS, MB/s and latency against a LUN (like fio)",
        description="Keep --qd READ/WRITE commands outstanding against one LUN for --seconds "
                    "(or --count commands) and report IOPS, MB/s and latency percentiles.")
    p.add_argument("--rw", choices=MODES, default="randread", help="workload (default "
                   "randread)")
    p.add_argument("--mix", type=_percent, default=50, metavar="PCT",
                   help="with --rw randrw: the share of reads in percent (default 50)")
    p.add_argument("--bs", type=common.num_arg, default=4096, metavar="BYTES",
                   help="bytes per command, a multiple of the block size (default 4096; "
                        "4k, 128k ... accepted)")
    p.add_argument("--qd", type=_positive, default=32, metavar="N",
                   help="commands outstanding at once (default 32)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--seconds", type=_seconds, metavar="S",
                     help="run this long (default 10 s)")
    how.add_argument("--count", type=_positive, metavar="N", help="run this many commands")
    p.add_argument("--size", type=common.num_arg, metavar="BYTES",
                   help="use only the first BYTES of the LU (default: all of it)")
    p.add_argument("--verify", action="store_true",
                   help="write an LBA-derived pattern and check every read against it")
    p.add_argument("--verify-only", action="store_true",
                   help="check every read against the pattern without writing it first "
                        "(data an earlier --verify run wrote; read workloads only)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-second lines")
    common.add_connection_args(p)
    common.set_tool(p, PROG, work)


def _positive(text: str) -> int:
    n = common.num_arg(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return n


def _percent(text: str) -> int:
    n = common.num_arg(text)
    if not 0 <= n <= 100:
        raise argparse.ArgumentTypeError(f"must be 0..100, not {text!r}")
    return n


def _seconds(text: str) -> float:
    try:
        s = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad number of seconds {text!r}") from None
    if not 0 < s <= 86400:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 86400, not {text!r}")
    return s


def pattern(lba: int, blocks: int, block_size: int) -> bytes:
    """The --verify data for `blocks` blocks from `lba`: each block filled with its LBA and
    a seed, so a block read back at the wrong place or from a stale write shows."""
    return b"".join(((lba + i).to_bytes(8, "big") + _SEED) * (block_size // 16)
                    for i in range(blocks))


class Stats:
    """Latencies (ns) and counts, for the whole run and for the current second."""

    def __init__(self) -> None:
        self.latencies: list[int] = []
        self._sorted: list[int] | None = None
        self.reads = self.writes = self.errors = 0
        self.bytes = 0
        self.cpu = 0.0  # this process's CPU seconds over the measured interval
        self.error_lines: list[str] = []

    def percentile(self, p: float) -> float:
        """Latency percentile in ms (the nearest-rank value)."""
        if not self.latencies:
            return 0.0
        if self._sorted is None or len(self._sorted) != len(self.latencies):
            self._sorted = sorted(self.latencies)
        s = self._sorted
        return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))] / 1e6

    def error(self, line: str) -> None:
        self.errors += 1
        if len(self.error_lines) < SHOWN_ERRORS:
            self.error_lines.append(line)


async def work(args: argparse.Namespace) -> int:
    import trio

    if args.seconds is None and args.count is None:
        args.seconds = 10.0
    if args.verify_only:
        if args.rw not in ("randread", "read"):
            raise common.ToolError("--verify-only needs a read workload (--rw read or "
                                   "randread)", common.Exit.SYNTAX_ERROR)
        args.verify = True
    async with common.scsi_login(args, "perf") as it:
        ua = await common.settle(it, args.lun)
        if ua is not None:
            common.err(f"{PROG}: unit attention on LUN {args.lun}")
        cap = await it.read_capacity(args.lun)
        blocks_total, block_size = cap
        if args.bs % block_size:
            raise common.ToolError(f"--bs {args.bs} is not a multiple of the LU's block size "
                                   f"{block_size}", common.Exit.SYNTAX_ERROR)
        span = blocks_total if args.size is None else min(blocks_total,
                                                          args.size // block_size)
        per_io = args.bs // block_size
        if span < per_io:
            raise common.ToolError(f"the region ({span * block_size} bytes) is smaller than "
                                   f"--bs {args.bs}", common.Exit.SYNTAX_ERROR)
        stats = Stats()
        if args.verify and not args.verify_only and args.rw in ("randread", "read", "randrw"):
            await _prefill(it, args.lun, span - span % per_io, block_size)
        written: set[int] = set()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        async with trio.open_nursery() as nursery:
            if not args.quiet and not args.json and sys.stderr.isatty():
                nursery.start_soon(_live, stats, t0)
            await _run(it, args, stats, span, per_io, block_size, written)
            nursery.cancel_scope.cancel()
        elapsed = time.perf_counter() - t0
        stats.cpu = time.process_time() - cpu0
        if args.verify and args.rw in ("write", "randwrite"):
            await _read_back(it, args.lun, sorted(written), per_io, block_size, stats)
    return _report(args, stats, elapsed)


async def _read_back(it: ITNexus, lun: int, lbas: list[int], per_io: int, block_size: int,
                     stats: Stats) -> None:
    for lba in lbas:
        data = await it.read(lun, lba, per_io)
        if data != pattern(lba, per_io, block_size):
            stats.error(f"read back LBA {lba}: data does not match what was written")


async def _prefill(it: ITNexus, lun: int, blocks: int, block_size: int) -> None:
    step = max(1, (256 * 1024) // block_size)
    for lba in range(0, blocks, step):
        n = min(step, blocks - lba)
        await it.write(lun, lba, pattern(lba, n, block_size))


async def _run(it: ITNexus, args: argparse.Namespace, stats: Stats, span: int, per_io: int,
               block_size: int, written: set[int]) -> None:
    """Keep args.qd commands outstanding until the time or the count is used up. Built on
    ITNexus.submit: each completion, called from the link's reader, records its latency
    and starts the next command at once, so no task runs per command and what the
    completions of one read start leaves in one write."""
    import trio

    rng = random.Random(0x5EED)
    slots = span // per_io
    deadline = None if args.seconds is None else time.perf_counter() + args.seconds
    budget = args.count
    cursor = 0
    mode = args.rw
    lun = args.lun
    nbytes = args.bs
    verify = args.verify
    fixed = None if verify else bytes(random.Random(7).getrandbits(8)
                                      for _ in range(min(nbytes, 4096)))
    payload = (fixed * (nbytes // len(fixed) + 1))[:nbytes] if fixed is not None else b""
    latencies = stats.latencies
    now_ns = time.perf_counter_ns
    pack = struct.Struct(">BBQIBB").pack
    outstanding = 0
    done = trio.Event()
    failure: list[BaseException] = []

    def next_io() -> tuple[bool, int] | None:
        nonlocal budget, cursor
        if budget is not None:
            if budget <= 0:
                return None
            budget -= 1
        elif deadline is not None and time.perf_counter() >= deadline:
            return None
        if mode in ("read", "write"):
            slot = cursor
            cursor = (slot + 1) % slots
        else:
            slot = rng.randrange(slots)
        write = mode in ("write", "randwrite") or (
            mode == "randrw" and rng.randrange(100) >= args.mix)
        return write, slot * per_io

    def start() -> None:
        nonlocal outstanding
        io = next_io()
        if io is None:
            outstanding -= 1
            if outstanding == 0:
                done.set()
            return
        write, lba = io
        t = now_ns()
        if write:
            if verify:
                data = pattern(lba, per_io, block_size)
                written.add(lba)
            else:
                data = payload
            it.submit(lun, pack(0x8A, 0, lba, per_io, 0, 0),
                      lambda r: finish(r, True, lba, t), data_out=data)
        else:
            it.submit(lun, pack(0x88, 0, lba, per_io, 0, 0),
                      lambda r: finish(r, False, lba, t), data_in_len=nbytes)

    def finish(r: object, write: bool, lba: int, t: int) -> None:
        latencies.append(now_ns() - t)
        if write:
            stats.writes += 1
        else:
            stats.reads += 1
        if isinstance(r, BaseException):
            stats.error(f"{'WRITE' if write else 'READ'} LBA {lba}: {r}")
            if isinstance(r, ConnectionError):  # nothing more can be sent
                failure.append(r)
                done.set()
                return
        elif not r.good:  # type: ignore[attr-defined]
            stats.error(f"{'WRITE' if write else 'READ'} LBA {lba}: {r}")
        else:
            stats.bytes += nbytes
            if verify and not write and \
                    r.data != pattern(lba, per_io, block_size):  # type: ignore[attr-defined]
                stats.error(f"READ LBA {lba}: data does not match what was written")
        start()

    outstanding = args.qd
    for _ in range(args.qd):
        start()
    await done.wait()
    if failure:
        raise failure[0]


async def _live(stats: Stats, t0: float) -> None:
    import trio

    last_n, last_b, last_t = 0, 0, t0
    while True:
        await trio.sleep(1)
        now = time.perf_counter()
        n = len(stats.latencies)
        window = stats.latencies[last_n:n]
        dt = now - last_t
        p50 = sorted(window)[len(window) // 2] / 1e6 if window else 0.0
        print(f"{now - t0:6.1f}s  {(n - last_n) / dt:10,.0f} IOPS  "
              f"{(stats.bytes - last_b) / dt / 1e6:9.1f} MB/s  p50 {p50:7.3f} ms  "
              f"errors {stats.errors}", file=sys.stderr, flush=True)
        last_n, last_b, last_t = n, stats.bytes, now


def summary(args: argparse.Namespace, stats: Stats, elapsed: float) -> dict[str, Any]:
    ios = len(stats.latencies)
    return {"iops": round(ios / elapsed, 1) if elapsed else 0.0,
            "mbps": round(stats.bytes / elapsed / 1e6, 2) if elapsed else 0.0,
            "p50_ms": round(stats.percentile(50), 4), "p99_ms": round(stats.percentile(99), 4),
            "p999_ms": round(stats.percentile(99.9), 4), "ios": ios, "errors": stats.errors,
            "seconds": round(elapsed, 3), "reads": stats.reads, "writes": stats.writes,
            "rw": args.rw, "bs": args.bs, "qd": args.qd, "cpu_s": round(stats.cpu, 3)}


def _report(args: argparse.Namespace, stats: Stats, elapsed: float) -> int:
    s = summary(args, stats, elapsed)
    for line in stats.error_lines:
        common.err(f"{PROG}: {line}")
    if args.json:
        print(json.dumps(s))
    else:
        print(f"{args.rw} bs={args.bs} qd={args.qd}: {s['ios']} commands in "
              f"{s['seconds']:.2f} s, {stats.errors} errors")
        print(f"  {s['iops']:,.0f} IOPS, {s['mbps']:.1f} MB/s")
        print(f"  latency p50 {s['p50_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms, "
              f"p99.9 {s['p999_ms']:.3f} ms")
    return 1 if stats.errors else 0
