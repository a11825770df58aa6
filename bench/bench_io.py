#!/usr/bin/env python3
"""Data-path benchmark: `fcsoft perf` against `fcsoft serve`, next to tgtd.

    .venv/bin/python bench/bench_io.py [--seconds 5] [--backing memory|file] [--no-tgtd]

Starts `fcsoft serve` (a fabric and one array with a 1 GiB LUN) as its own process and,
for each case, runs `fcsoft perf --json` in another process. Reports IOPS, MB/s, p50/p99
latency and the server's CPU time per I/O (utime + stime of the serve process from
/proc/PID/stat over the run, divided by the I/Os done: independent of the client's speed).

When Debian's tgt (tgtd, tgtadm) is installed, the same invocation runs tgtd on a sparse
1 GiB file on 127.0.0.1 and drives it with the matching block size and queue depth, and
prints both ratios (IOPS, and server CPU per I/O). The read cases use libiscsi-bin's
iscsi-perf (C) when installed. Debian's iscsi-perf only reads, so the write cases use
bench/iscsi_write.py, a small iSCSI initiator in Python (R2T and Data-Out, within the first
256 MiB as fcsoft perf): for writes the IOPS ratio compares with a Python client, which may
be the bottleneck, while the server CPU per I/O hardly depends on the client (if anything,
a slower client leaves the server fewer I/Os per wake-up, which raises its CPU per I/O).

Prints figures; asserts nothing (timings on shared machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INITIATOR = "10:00:00:00:c9:00:00:01"
TARGET = "50:01:43:80:00:00:00:01"
IQN = "iqn.2026-12.org.fcsoft:bench"
REGION = 256 << 20  # the bytes of the LU each case touches
WRITE_CLIENT = Path(__file__).resolve().parent / "iscsi_write.py"
TICK = os.sysconf("SC_CLK_TCK")

# name, fcsoft perf --rw, bytes per command, queue depth, iscsi-perf arguments (None: a
# write case, for which tgtd is driven by bench/iscsi_write.py with the same bs, qd, --rw)
CASES = [
    ("4K random read QD32", "randread", 4096, 32, ["-m", "32", "-b", "8", "-r"]),
    ("4K random read QD1", "randread", 4096, 1, ["-m", "1", "-b", "8", "-r"]),
    ("128K sequential read QD16", "read", 131072, 16, ["-m", "16", "-b", "256"]),
    ("128K sequential write QD16", "write", 131072, 16, None),
    ("4K random write QD32", "randwrite", 4096, 32, None),
]


def config(backing: str) -> str:
    return f"""
[fabric]
listen = "127.0.0.1:0"
[[array]]
name = "bench"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{TARGET}"]
[[array.lun]]
name = "disk"
size = "1GiB"
block_size = 512
backing = "{backing}"
[[array.host]]
name = "bench"
initiators = ["{INITIATOR}"]
luns = {{ 0 = "disk" }}
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid` (and of its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def start_serve(conf: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "fcsoft", "serve", str(conf),
                             "--log-format", "json"],
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stderr is not None
    for line in proc.stderr:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "listening":
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, ev["fabric"]
    raise SystemExit("fcsoft serve did not start")


def perf(fabric: str, rw: str, bs: int, qd: int, seconds: float, *extra: str) -> dict:
    """One `fcsoft perf --json` run; its `cpu_s` is the client's CPU time over the measured
    interval (start-up, login and imports left out)."""
    out = subprocess.run([sys.executable, "-m", "fcsoft", "perf", "--fabric", fabric,
                          "--initiator", INITIATOR, "--target", TARGET, "--rw", rw,
                          "--bs", str(bs), "--qd", str(qd), "--seconds", str(seconds),
                          "--size", str(REGION), "--json", *extra],
                         capture_output=True, text=True, cwd=ROOT, timeout=seconds + 120)
    if out.returncode != 0:
        raise SystemExit(f"fcsoft perf failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class Tgtd:
    """tgtd on a sparse file, its own control port and iSCSI port on 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.disk = tmp / "tgt.img"
        with open(self.disk, "wb") as f:
            f.truncate(1 << 30)
        self.proc = subprocess.Popen(["tgtd", "-f", "-C", "77", "--iscsi",
                                      "portal=127.0.0.1:3271"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        for args in (["--op", "new", "--mode", "target", "--tid", "1", "-T", IQN],
                     ["--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1",
                      "-b", str(self.disk)],
                     ["--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL"]):
            subprocess.run(["tgtadm", "-C", "77", "--lld", "iscsi", *args], check=True)
        # write the region once, so that reads are of written data as fcsoft's are
        with open(self.disk, "r+b") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(256):
                f.write(chunk)

    def perf(self, args: list[str], seconds: float) -> tuple[float, float, float]:
        """(IOPS, I/Os, server CPU seconds) of one iscsi-perf run (reads)."""
        before = cpu_seconds(self.proc.pid)
        out = subprocess.run(["iscsi-perf", *args, "-t", str(int(seconds)),
                              f"iscsi://127.0.0.1:3271/{IQN}/1"],
                             capture_output=True, text=True, timeout=seconds + 60)
        cpu = cpu_seconds(self.proc.pid) - before
        found = re.findall(r"iops average (\d+)", out.stdout)
        if not found:
            raise SystemExit(f"iscsi-perf printed no figures: {out.stdout[-300:]}")
        iops = float(found[-1])
        return iops, iops * seconds, cpu

    def write(self, rw: str, bs: int, qd: int, seconds: float) -> tuple[float, float, float]:
        """(IOPS, I/Os, server CPU seconds) of one bench/iscsi_write.py run (writes)."""
        before = cpu_seconds(self.proc.pid)
        out = subprocess.run([sys.executable, str(WRITE_CLIENT), "--portal", "127.0.0.1:3271",
                              "--target", IQN, "--lun", "1", "--bs", str(bs), "--qd", str(qd),
                              "--seconds", str(seconds), "--size", str(REGION), "--json",
                              *(["--random"] if rw == "randwrite" else [])],
                             capture_output=True, text=True, timeout=seconds + 120)
        cpu = cpu_seconds(self.proc.pid) - before
        if out.returncode != 0:
            raise SystemExit(f"iscsi_write.py failed: {out.stderr.strip()}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        return r["iops"], r["ios"], cpu

    def close(self) -> None:
        # tgtd leaves on its management command, not on SIGTERM; it refuses that command
        # ("invalid request") while a target exists, so the target goes first
        for args in (["--lld", "iscsi", "--op", "delete", "--mode", "target", "--force",
                      "--tid", "1"],
                     ["--op", "delete", "--mode", "system"]):
            subprocess.run(["tgtadm", "-C", "77", *args], capture_output=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            print("tgtd did not leave on tgtadm's delete: killed", file=sys.stderr)
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="per case")
    p.add_argument("--backing", choices=("memory", "file"), default="memory")
    p.add_argument("--no-tgtd", action="store_true", help="skip the tgtd comparison")
    p.add_argument("--case", action="append", help="run only cases whose name contains this")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fcsoft-bench-"))
    backing = "memory" if args.backing == "memory" else str(tmp / "disk.img")
    conf = tmp / "bench.toml"
    conf.write_text(config(backing))
    have_tgtd = not args.no_tgtd and all(shutil.which(t) for t in ("tgtd", "tgtadm"))
    have_iscsi_perf = shutil.which("iscsi-perf") is not None
    print(f"fcsoft serve, {args.backing}-backed 1 GiB LUN, {args.seconds:g} s per case; "
          f"client: fcsoft perf in another process"
          + ("; tgtd alongside, driven by " + ("iscsi-perf (C) for reads and " if
                                               have_iscsi_perf else "")
             + "bench/iscsi_write.py (Python) for writes: the write IOPS ratio is against a "
               "Python client; the server CPU per I/O hardly depends on the client"
             if have_tgtd else ""), flush=True)
    proc, fabric = start_serve(conf)
    tgt = Tgtd(tmp) if have_tgtd else None
    rows = []
    try:
        perf(fabric, "write", 131072, 8, 3)  # fill the region the reads touch
        for name, rw, bs, qd, tgt_args in CASES:
            if args.case and not any(c in name for c in args.case):
                continue
            before = cpu_seconds(proc.pid)
            r = perf(fabric, rw, bs, qd, args.seconds)
            cpu_us = (cpu_seconds(proc.pid) - before) / max(1, r["ios"]) * 1e6
            client_us = r["cpu_s"] / max(1, r["ios"]) * 1e6
            row = {"case": name, **r, "server_us_per_io": round(cpu_us, 1),
                   "client_us_per_io": round(client_us, 1)}
            line = (f"{name:<28} {r['iops']:>9,.0f} IOPS {r['mbps']:>8.1f} MB/s  "
                    f"p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  "
                    f"server {cpu_us:6.1f} us/IO  client {client_us:6.1f} us/IO")
            if tgt is not None and (tgt_args is None or have_iscsi_perf):
                if tgt_args is None:
                    iops, ios, cpu = tgt.write(rw, bs, qd, args.seconds)
                else:
                    iops, ios, cpu = tgt.perf(tgt_args, args.seconds)
                t_us = cpu / max(1, ios) * 1e6
                row.update(tgtd_client="iscsi-perf" if tgt_args else "iscsi_write.py",
                           tgtd_iops=iops, tgtd_us_per_io=round(t_us, 1),
                           iops_ratio=round(r["iops"] / iops, 3) if iops else None,
                           cpu_ratio=round(cpu_us / t_us, 2) if t_us else None)
                line += (f" | tgtd {iops:>9,.0f} IOPS {t_us:6.1f} us/IO | ratio IOPS "
                         f"{row['iops_ratio']:.2f}, CPU/IO {row['cpu_ratio']:.2f}")
            print(line, flush=True)
            rows.append(row)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if tgt is not None:
            tgt.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
