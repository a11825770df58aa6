"""bench/bench_wakeup.py runs both servers to the end and prints their figures (never
asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_wakeup_runs_both_servers() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_wakeup.py"),
                           "--count", "50"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["trio", "epoll"]
    for line in lines:
        assert re.search(r"round trips/s +server CPU +[\d.]+ us per round trip", line), line
