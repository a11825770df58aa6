"""bench/iscsi_write.py against a real tgtd (Debian's tgt), as bench/bench_io.py runs it:
writes complete without error and reach the LU's backing file where they were aimed, with
the documented data; CHECK CONDITION, NOP-In pings and a refused login are handled.

tgtd listens on a free port of 127.0.0.1; its control socket lives in a private directory
(TGT_IPC_SOCKET, which tgtd and tgtadm both read), so the test needs no root and does not
meet another tgtd. Each test has a target of its own with one LU on a small fresh file."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.tools

WRITER = Path(__file__).resolve().parents[2] / "bench" / "iscsi_write.py"
LU_BYTES = 4 << 20
REGION = 1 << 20


def expected(nbytes: int) -> bytes:
    """What the tool's docstring promises each WRITE carries: the 8-byte big-endian word
    at offset k is 0x66637377_00000000 | k."""
    return struct.pack(f">{nbytes // 8}Q", *(0x6663737700000000 | k
                                             for k in range(0, nbytes, 8)))


class Tgtd:
    """A tgtd of this test module's own: `port`, and `target()` for a fresh target."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tgt-"))  # short: a socket path lives here
        self.env = {**os.environ, "TGT_IPC_SOCKET": str(self.dir / "ctl")}
        self.tids = itertools.count(1)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(self.dir / "tgtd.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen(["tgtd", "-f", "-C", "1", "--iscsi",
                                      f"portal=127.0.0.1:{self.port}"],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"tgtd exited at start: {self.log_text()}")
            if self.tgtadm("--lld", "iscsi", "--op", "show", "--mode", "target",
                           check=False).returncode == 0 and self.listening():
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"tgtd did not come up: {self.log_text()}")
            time.sleep(0.1)

    def listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def log_text(self) -> str:
        self.log.flush()
        return (self.dir / "tgtd.log").read_text(errors="replace")[-2000:]

    def tgtadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tgtadm", "-C", "1", *args], env=self.env, capture_output=True,
                              text=True, check=check, timeout=30)

    def target(self, tmp: Path) -> tuple[str, int, Path]:
        """A new target bound to every initiator, LUN 1 on a fresh sparse file:
        (IQN, tid, file)."""
        tid = next(self.tids)
        iqn = f"iqn.2026-12.org.fcsoft:test-{tid}"
        disk = tmp / f"lu{tid}.img"
        with open(disk, "wb") as f:
            f.truncate(LU_BYTES)
        for args in (["--op", "new", "--mode", "target", "--tid", str(tid), "-T", iqn],
                     ["--op", "new", "--mode", "logicalunit", "--tid", str(tid), "--lun", "1",
                      "-b", str(disk)],
                     ["--op", "bind", "--mode", "target", "--tid", str(tid), "-I", "ALL"]):
            self.tgtadm("--lld", "iscsi", *args)
        return iqn, tid, disk

    def stop(self) -> None:
        """tgtd leaves on `tgtadm --op delete --mode system`, refused while a target
        exists: delete the targets, then the system, and expect it gone within 10 s."""
        try:
            for tid in range(1, next(self.tids)):
                self.tgtadm("--lld", "iscsi", "--op", "delete", "--mode", "target", "--force",
                            "--tid", str(tid), check=False)
            self.tgtadm("--op", "delete", "--mode", "system")
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("tgtd did not leave on tgtadm's delete") from None
        finally:
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def tgtd():
    require_tool("tgtd")
    require_tool("tgtadm")
    daemon = Tgtd()
    yield daemon
    daemon.stop()


@pytest.fixture
def lu(tgtd, tmp_path):
    """(IQN, tid, backing file) of a fresh target on the module's tgtd."""
    return tgtd.target(tmp_path)


def write(tgtd: Tgtd, iqn: str, *args: str) -> tuple[int, dict | None, str]:
    """Run the tool; (exit status, its JSON or None, stderr)."""
    out = subprocess.run([sys.executable, str(WRITER), "--portal", f"127.0.0.1:{tgtd.port}",
                          "--target", iqn, "--json", *args],
                         capture_output=True, text=True, timeout=60)
    lines = out.stdout.strip().splitlines()
    return out.returncode, json.loads(lines[-1]) if lines else None, out.stderr


def test_sequential_writes_reach_the_backing_file(tgtd, lu):
    iqn, _, disk = lu
    # 64 KiB a command: eight Data-Out PDUs each, tgtd taking 8 KiB segments by default
    rc, r, err = write(tgtd, iqn, "--bs", "64k", "--qd", "4", "--seconds", "1",
                       "--size", str(REGION))
    assert rc == 0, err
    assert r is not None and r["ios"] > REGION // 65536 and r["errors"] == 0
    assert r["iops"] > 0 and r["mbps"] > 0 and r["rw"] == "write"
    data = disk.read_bytes()
    assert data[:REGION] == expected(65536) * (REGION // 65536)
    assert data[REGION:].count(0) == LU_BYTES - REGION  # nothing beyond --size


def test_random_writes_stay_aligned_and_in_the_region(tgtd, lu):
    iqn, _, disk = lu
    rc, r, err = write(tgtd, iqn, "--bs", "4k", "--qd", "4", "--seconds", "1", "--random",
                       "--size", str(REGION))
    assert rc == 0, err
    assert r is not None and r["ios"] > 0 and r["errors"] == 0 and r["rw"] == "randwrite"
    data = disk.read_bytes()
    block, zero = expected(4096), bytes(4096)
    seen = [data[i:i + 4096] for i in range(0, REGION, 4096)]
    assert all(b in (block, zero) for b in seen), "a block that is neither pattern nor zero"
    assert seen.count(block) > 0
    assert data[REGION:].count(0) == LU_BYTES - REGION


def test_check_condition_counts_as_error_with_its_sense(tgtd, lu):
    iqn, tid, _ = lu
    tgtd.tgtadm("--lld", "iscsi", "--op", "update", "--mode", "logicalunit", "--tid", str(tid),
                "--lun", "1", "--params", "readonly=1")
    rc, r, err = write(tgtd, iqn, "--bs", "4k", "--qd", "4", "--seconds", "0.3")
    assert rc == 1
    assert r is not None and r["ios"] > 0 and r["errors"] == r["ios"] and r["mbps"] == 0
    assert "status 0x02, DATA PROTECT ASC/ASCQ 27/00" in err


def test_nop_in_pings_are_answered(tgtd, lu):
    iqn, tid, _ = lu
    # tgtd pings every second and drops the connection after 2 unanswered pings
    for name, value in (("nop_interval", "1"), ("nop_count", "2")):
        tgtd.tgtadm("--lld", "iscsi", "--op", "update", "--mode", "target", "--tid", str(tid),
                    "-n", name, "-v", value)
    rc, r, err = write(tgtd, iqn, "--bs", "4k", "--qd", "1", "--seconds", "3.5")
    assert rc == 0, err
    assert r is not None and r["pings"] >= 2 and r["errors"] == 0


def test_unknown_target_is_a_clear_login_failure(tgtd):
    rc, r, err = write(tgtd, "iqn.2026-12.org.fcsoft:nobody", "--seconds", "0.3")
    assert rc == 2 and r is None
    assert "login refused: status class 2, detail 0x03" in err


def test_bs_not_a_multiple_of_the_block_size_is_refused(tgtd, lu):
    iqn, _, _ = lu
    rc, r, err = write(tgtd, iqn, "--bs", "1000", "--seconds", "0.3")
    assert rc == 2 and r is None
    assert "--bs 1000 is not a multiple of the LU's block size 512" in err
