"""bench/bench_target.py runs and measures a working path (it stops with an error when a
WRITE gets no FCP_RSP or its data is not in the LU). Figures are never asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_target_runs_both_cases() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_target.py"),
                           "--count", "40"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    assert re.match(r"4K READ\(10\), one command +[\d.]+ us CPU per command +\(40 commands\)",
                    lines[0])
    assert re.match(r"128K WRITE\(10\), one command +[\d.]+ us CPU per command +\(4 commands\)",
                    lines[1])
