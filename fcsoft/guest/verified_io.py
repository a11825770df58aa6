"""Verified I/O in a guest: a background loop that writes known blocks to a disk with
O_DIRECT, reads earlier ones back and compares them, and logs every I/O with its status and
the guest's clock, while the host goes on with other commands (a migration, a path switch).

    io = VerifiedIo(guest, "/dev/sdb", blocks=4096)
    await io.start()
    ...                                  # migrate, move reservations, take paths away
    await io.pause(); await io.resume(device="/dev/sdc")   # switch the path under it
    report = await io.stop()
    assert report.failed == [] and report.miscompared == []

While it runs, `poll` fetches what the loop logged since the last call (so a scenario takes
each event's figures as it goes: `IoReport.stall`, `IoReport.window`), and
`VerifiedIo(..., writes=N)` with N larger than `blocks` goes round the `blocks` blocks
until N writes or `stop` (multipath: I/O for as long as the scenario runs).

Theory of operation. The host makes `pattern_blocks` random blocks (seeded: the host knows
them too) and puts them in the guest's /run. Write number i puts pattern block
(i mod blocks + i // blocks) mod `pattern_blocks` at block `first_block + i mod blocks` of
the device (on the first round, pattern block i mod `pattern_blocks` at `first_block + i`;
each later round shifts the pattern by one), so a lost,
misplaced or stale write shows on read-back (neighbouring blocks differ, and so do a
block's contents from one round to the next); after each write the loop reads
block i - `read_lag` back and compares it with what was written there. The loop is busybox
sh in a session of its own (the agent's command returns at once): `dd ... oflag=direct` /
`iflag=direct` per I/O, one at a time, the device name re-read after a pause (so the I/O
can move to another path, as a hypervisor reopens a disk), the guest's uptime (10 ms) after
each I/O. Its log, one line per I/O, is fetched at the end:

    W <i> <dd status> <uptime>
    R <i> <dd status> ok|bad|- <uptime>
    P <uptime> / C <uptime>             paused / continued

The guest's clock stops while QEMU has the guest stopped (a migration's downtime), so gaps
in the log are the stalls the guest saw; the host adds the downtime to get the stall the
world saw (or watches the blocks land on an in-process array: `expected_block`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import GuestError

if TYPE_CHECKING:
    from .session import Guest

WORKDIR = "/run/fcsoft-io"

_LOOP = r"""
W={workdir}
BS={block_size}
P={pattern_blocks}
FIRST={first_block}
N={blocks}
LIMIT={writes}
LAG={read_lag}
read dev < $W/dev
i=0
while [ $i -lt $LIMIT ] && [ ! -e $W/stop ]; do
    if [ -e $W/pause ]; then
        read up rest < /proc/uptime; echo "P $up" >> $W/log
        : > $W/paused
        while [ -e $W/pause ] && [ ! -e $W/stop ]; do sleep 0.02; done
        rm -f $W/paused
        read dev < $W/dev
        read up rest < /proc/uptime; echo "C $up" >> $W/log
        continue
    fi
    dd if=$W/p.$(((i % N + i / N) % P)) of=$dev bs=$BS seek=$((FIRST + i % N)) count=1 \
        oflag=direct conv=notrunc 2>$W/e
    s=$?
    [ $s = 0 ] || {{ echo "write $i: $(cat $W/e)" >> $W/errors; }}
    read up rest < /proc/uptime; echo "W $i $s $up" >> $W/log
    j=$((i - LAG))
    if [ $j -ge 0 ]; then
        rm -f $W/rb
        dd if=$dev of=$W/rb bs=$BS skip=$((FIRST + j % N)) count=1 iflag=direct 2>$W/e
        s=$?
        [ $s = 0 ] || {{ echo "read $j: $(cat $W/e)" >> $W/errors; }}
        v=-
        if [ $s = 0 ]; then
            if cmp -s $W/rb $W/p.$(((j % N + j / N) % P)); then v=ok; else v=bad; fi
        fi
        read up rest < /proc/uptime; echo "R $j $s $v $up" >> $W/log
    fi
    i=$((i + 1))
done
: > $W/done
"""

_PREPARE = r"""
set -e
W={workdir}
rm -rf $W; mkdir -p $W
cat > $W/pattern
i=0
while [ $i -lt {pattern_blocks} ]; do
    dd if=$W/pattern of=$W/p.$i bs={block_size} skip=$i count=1 2>/dev/null
    i=$((i + 1))
done
echo {device} > $W/dev
: > $W/log
"""


@dataclass(frozen=True)
class IoRecord:
    """One I/O of the loop: "W" or "R", its number, dd's status, the read's comparison
    ("ok", "bad", or "-" when the read failed or for a write), the guest's uptime after."""

    op: str
    index: int
    status: int
    verdict: str
    uptime: float


@dataclass
class IoReport:
    """The log of a VerifiedIo run."""

    records: list[IoRecord] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)  # guest uptime
    errors: str = ""  # what dd said on stderr

    @property
    def writes(self) -> int:
        return sum(1 for r in self.records if r.op == "W")

    @property
    def reads(self) -> int:
        return sum(1 for r in self.records if r.op == "R")

    @property
    def failed(self) -> list[IoRecord]:
        """I/Os dd reported failed (an I/O error reached the application)."""
        return [r for r in self.records if r.status != 0]

    @property
    def miscompared(self) -> list[IoRecord]:
        """Reads that returned other data than was written."""
        return [r for r in self.records if r.op == "R" and r.verdict == "bad"]

    @property
    def written(self) -> list[int]:
        """The write numbers that succeeded."""
        return [r.index for r in self.records if r.op == "W" and r.status == 0]

    def window(self, start: float, end: float) -> list[IoRecord]:
        """The I/Os that completed in [start, end) of the guest's clock."""
        return [r for r in self.records if start <= r.uptime < end]

    def stall(self, start: float, end: float) -> float:
        """The longest time without a completed I/O (failed ones count) in the window
        [start, end) of the guest's clock: between two completions in it, from the last
        completion before `start` (or `start` itself) to the first in it, and from the last
        in it to `end` (a stall still going on)."""
        before = [r.uptime for r in self.records if r.uptime < start]
        times = [before[-1] if before else start,
                 *(r.uptime for r in self.window(start, end)), end]
        return round(max(b - a for a, b in zip(times, times[1:], strict=False)), 2)

    def longest_gap(self, start: float | None = None,
                    end: float | None = None) -> tuple[float, float]:
        """(seconds, uptime where it ended): the longest time between two completed I/Os,
        by the guest's clock, optionally only for gaps ending within [start, end]."""
        times = [r.uptime for r in self.records]
        best = (0.0, times[0] if times else 0.0)
        for a, b in zip(times, times[1:], strict=False):
            if (start is None or b >= start) and (end is None or b <= end):
                best = max(best, (round(b - a, 2), b))
        return best


class VerifiedIo:
    """See the module docstring. `device` is the guest's block device (/dev/sdX)."""

    def __init__(self, guest: Guest, device: str, *, blocks: int = 4096, first_block: int = 0,
                 block_size: int = 4096, pattern_blocks: int = 64, read_lag: int = 4,
                 seed: int = 14, workdir: str = WORKDIR, writes: int | None = None) -> None:
        if blocks < 1 or pattern_blocks < 2 or read_lag < 0 or first_block < 0:
            raise ValueError("blocks and pattern_blocks must be positive (pattern_blocks at "
                             "least 2), read_lag and first_block not negative")
        if writes is not None and writes < 1:
            raise ValueError("writes must be positive")
        if writes is not None and writes > blocks and read_lag >= blocks:
            raise ValueError("going round the blocks needs read_lag < blocks")
        self.guest = guest
        self.device = device
        self.blocks = blocks
        self.first_block = first_block
        self.block_size = block_size
        self.pattern_blocks = pattern_blocks
        self.read_lag = read_lag
        self.workdir = workdir
        self.writes = blocks if writes is None else writes
        self.pattern = random.Random(seed).randbytes(pattern_blocks * block_size)
        self.started = False
        self._report = IoReport()
        self._offset = 0  # bytes of the log poll() has read
        self._partial = b""
        self._paused: float | None = None

    def expected_block(self, index: int) -> bytes:
        """What write number `index` puts at block first_block + index % blocks."""
        p = (index % self.blocks + index // self.blocks) % self.pattern_blocks
        return self.pattern[p * self.block_size:(p + 1) * self.block_size]

    def expected(self, count: int) -> bytes:
        """What the first `count` writes (no more than `blocks`) put on the device, from
        first_block on."""
        if count > self.blocks:
            raise ValueError("expected() covers one round of the blocks; see last_writes()")
        return b"".join(self.expected_block(i) for i in range(count))

    def last_writes(self, report: IoReport) -> dict[int, list[int]]:
        """For each block of the device the loop wrote (its number on the device): the
        write numbers whose data it may hold at the end of `report`, the last that
        succeeded and any later failed ones (a failed write may or may not have landed)."""
        out: dict[int, list[int]] = {}
        for r in sorted((r for r in report.records if r.op == "W"), key=lambda r: r.index):
            block = self.first_block + r.index % self.blocks
            if r.status == 0:
                out[block] = [r.index]
            else:
                out.setdefault(block, []).append(r.index)
        return out

    def _fmt(self, text: str) -> str:
        return text.format(workdir=self.workdir, block_size=self.block_size,
                           pattern_blocks=self.pattern_blocks, first_block=self.first_block,
                           blocks=self.blocks, read_lag=self.read_lag, device=self.device,
                           writes=self.writes)

    async def start(self) -> None:
        """Put the pattern in the guest and start the loop in the background."""
        if self.started:
            raise GuestError("this I/O loop has been started already")
        await self.guest.run(self._fmt(_PREPARE), input=self.pattern, check=True, timeout=60)
        await self.guest.put_file(f"{self.workdir}/loop.sh", self._fmt(_LOOP).encode())
        await self.guest.run(f"setsid sh {self.workdir}/loop.sh </dev/null >/dev/null "
                             f"2>>{self.workdir}/errors &", check=True)
        self.started = True

    async def progress(self) -> int:
        """How many writes have completed so far."""
        res = await self.guest.run(f"grep -c '^W' {self.workdir}/log", timeout=30)
        return int(res.output.strip() or 0)

    async def wait_writes(self, count: int, timeout: float = 120.0) -> None:
        """Wait until at least `count` writes have completed."""
        await self.guest.wait_until(f"[ $(grep -c '^W' {self.workdir}/log) -ge {count} ] || "
                                    f"[ -e {self.workdir}/done ]", timeout,
                                    what=f"{count} verified writes")

    async def pause(self, timeout: float = 60.0) -> None:
        """Park the loop between two I/Os (none outstanding) and return once it is."""
        await self.guest.run(f": > {self.workdir}/pause", check=True)
        await self.guest.wait_until(f"[ -e {self.workdir}/paused ] || "
                                    f"[ -e {self.workdir}/done ]", timeout, interval=0.02,
                                    what="the I/O loop pausing")

    async def resume(self, device: str | None = None) -> None:
        """Let the loop go on, on `device` if given (the path switched under it)."""
        if device is not None:
            self.device = device
            await self.guest.run(f"echo {device} > {self.workdir}/dev && "
                                 f"rm -f {self.workdir}/pause", check=True)
        else:
            await self.guest.run(f"rm -f {self.workdir}/pause", check=True)

    async def stop(self, timeout: float = 120.0) -> IoReport:
        """End the loop after its current I/O and return its log."""
        await self.guest.run(f": > {self.workdir}/stop", check=True)
        await self.guest.wait_until(f"[ -e {self.workdir}/done ]", timeout,
                                    what="the I/O loop ending")
        return await self.report()

    async def report(self) -> IoReport:
        """The log so far."""
        log = (await self.guest.run(f"cat {self.workdir}/log", check=True)).output
        errors = (await self.guest.run(f"cat {self.workdir}/errors 2>/dev/null")).output
        return parse_log(log, errors)

    async def poll(self) -> IoReport:
        """The log so far, fetching only what was added since the last poll (one guest
        command while the loop is clean, two once it has logged errors). The report is
        the same object each time, growing."""
        w = self.workdir
        res = await self.guest.run(
            f"tail -c +{self._offset + 1} {w}/log; [ -s {w}/errors ] && echo >&2 errors",
            timeout=60)
        data = self._partial + res.stdout
        self._offset += len(res.stdout)
        complete, sep, rest = data.rpartition(b"\n")
        self._partial = rest if sep else data
        if sep:
            self._paused = _parse_lines(complete.decode(errors="replace"), self._report,
                                        self._paused)
        if b"errors" in res.stderr:
            self._report.errors = (await self.guest.run(f"tail -c 4000 {w}/errors")).output
        return self._report

    async def clock(self) -> float:
        """The guest's clock, as the log has it: seconds since boot (/proc/uptime)."""
        res = await self.guest.run("read u x < /proc/uptime; echo $u", check=True)
        return float(res.output.strip())


def parse_log(text: str, errors: str = "") -> IoReport:
    """An IoReport from the loop's log (lines it does not know are skipped)."""
    report = IoReport(errors=errors)
    _parse_lines(text, report, None)
    return report


def _parse_lines(text: str, report: IoReport, paused: float | None) -> float | None:
    """Add the log lines of `text` to `report`; `paused` is the uptime of a pause not yet
    continued, before and (returned) after."""
    for line in text.splitlines():
        w = line.split()
        try:
            if w[:1] == ["W"] and len(w) == 4:
                report.records.append(IoRecord("W", int(w[1]), int(w[2]), "-", float(w[3])))
            elif w[:1] == ["R"] and len(w) == 5:
                report.records.append(IoRecord("R", int(w[1]), int(w[2]), w[3], float(w[4])))
            elif w[:1] == ["P"] and len(w) == 2:
                paused = float(w[1])
            elif w[:1] == ["C"] and len(w) == 2 and paused is not None:
                report.pauses.append((paused, float(w[1])))
                paused = None
        except ValueError:
            continue
    return paused
