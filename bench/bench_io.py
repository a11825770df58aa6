#!/usr/bin/env python3
"""Data-path benchmark: one fcsoft array driven over TCP from a separate process.

    .venv/bin/python bench/bench_io.py [--seconds 5] [--backing memory|file] [--size 1GiB]

Starts `fcsoft serve` (fabric + one array with one LUN) as its own process, logs in from
this one with the initiator library, and runs:
  - 4 KiB random READ(16) and WRITE(16) at queue depth 1 and 32: IOPS, p50/p99 latency;
  - 128 KiB sequential READ and WRITE at queue depth 8: MB/s, p50/p99 latency.
Prints figures; asserts nothing (timings on shared machines are noisy). Compare with
`iscsi-perf` against tgtd in the same session (see the storage arrays issue).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fcsoft.initiator import open_host  # noqa: E402
from fcsoft.initiator.scsi import connect  # noqa: E402

INITIATOR = "10:00:00:00:c9:00:00:01"
TARGET = "50:01:43:80:00:00:00:01"


def config(size: str, backing: str) -> str:
    return f"""
[fabric]
listen = "127.0.0.1:0"
[[array]]
name = "bench"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{TARGET}"]
[[array.lun]]
name = "disk"
size = "{size}"
block_size = 512
backing = "{backing}"
[[array.host]]
name = "bench"
initiators = ["{INITIATOR}"]
luns = {{ 0 = "disk" }}
"""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


async def run_case(it, name: str, write: bool, block_bytes: int, depth: int, seconds: float,
                   blocks_total: int, sequential: bool) -> dict:
    blocks = block_bytes // 512
    payload = os.urandom(block_bytes)
    latencies: list[float] = []
    done = 0
    next_lba = [0]
    deadline = time.perf_counter() + seconds
    rng = random.Random(1)

    def lba() -> int:
        if sequential:
            v = next_lba[0]
            next_lba[0] = (v + blocks) % (blocks_total - blocks)
            return v
        return rng.randrange(0, blocks_total - blocks) // blocks * blocks

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            if write:
                cdb = struct.pack(">BBQIBB", 0x8A, 0, lba(), blocks, 0, 0)
                t = time.perf_counter()
                r = await it.scsi(0, cdb, data_out=payload)
            else:
                cdb = struct.pack(">BBQIBB", 0x88, 0, lba(), blocks, 0, 0)
                t = time.perf_counter()
                r = await it.scsi(0, cdb, data_in_len=block_bytes)
            latencies.append(time.perf_counter() - t)
            if not r.good:
                raise RuntimeError(f"{name}: {r}")
            done += 1

    start = time.perf_counter()
    async with trio.open_nursery() as n:
        for _ in range(depth):
            n.start_soon(worker)
    elapsed = time.perf_counter() - start
    return {"case": name, "ios": done, "iops": done / elapsed,
            "mb_s": done * block_bytes / elapsed / 1e6,
            "p50_ms": statistics.median(latencies) * 1000, "p99_ms": pct(latencies, 99) * 1000}


async def bench(args: argparse.Namespace) -> list[dict]:
    tmp = Path(tempfile.mkdtemp())
    backing = "memory" if args.backing == "memory" else str(tmp / "disk.img")
    conf = tmp / "bench.toml"
    conf.write_text(config(args.size, backing))
    proc = subprocess.Popen([sys.executable, "-m", "fcsoft", "serve", str(conf),
                             "--log-format", "json"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    address = None
    for line in proc.stderr:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "listening":
            host, port = ev["address"].rsplit(":", 1)
            address = (host, int(port))
            break
    if address is None:
        raise SystemExit("fcsoft serve did not start")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    results = []
    try:
        async with open_host(address, INITIATOR) as host:
            with trio.fail_after(20):
                while not await host.discover():
                    await trio.sleep(0.1)
            async with connect(host, TARGET, timeout=60) as it:
                await it.test_unit_ready()
                blocks_total, _bs = await it.read_capacity(0)
                # fill the area the reads touch, so reads are of written data
                span = min(blocks_total, 256 * 1024 * 1024 // 512)
                chunk = os.urandom(128 * 1024)
                for lba in range(0, span, len(chunk) // 512):
                    await it.write(0, lba, chunk)
                cases = [
                    ("4K random read  QD1", False, 4096, 1, False),
                    ("4K random read  QD32", False, 4096, 32, False),
                    ("4K random write QD1", True, 4096, 1, False),
                    ("4K random write QD32", True, 4096, 32, False),
                    ("128K seq read   QD8", False, 131072, 8, True),
                    ("128K seq write  QD8", True, 131072, 8, True),
                ]
                for name, write, size, depth, seq in cases:
                    res = await run_case(it, name, write, size, depth, args.seconds, span, seq)
                    results.append(res)
                    print(f"{name:<22} {res['iops']:9.0f} IOPS {res['mb_s']:8.1f} MB/s   "
                          f"p50 {res['p50_ms']:7.2f} ms  p99 {res['p99_ms']:7.2f} ms",
                          flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="per case")
    p.add_argument("--backing", choices=("memory", "file"), default="memory")
    p.add_argument("--size", default="1GiB")
    args = p.parse_args()
    print(f"fcsoft array over TCP, {args.backing}-backed {args.size} LUN, "
          f"{args.seconds:g} s per case")
    trio.run(bench, args)


if __name__ == "__main__":
    main()
