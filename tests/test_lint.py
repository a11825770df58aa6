"""The house stays clean (STYLE.md): mypy, with the pyproject.toml settings that hold the
sans-IO core to --strict, and ruff, with the rule selection in pyproject.toml, both pass on
the whole fcsoft package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_mypy_is_clean():
    # no paths: pyproject.toml's [tool.mypy] names the files and the strict overrides
    proc = run("mypy")
    assert proc.returncode == 0, f"mypy failed:\n{proc.stdout}{proc.stderr}"


def test_ruff_is_clean():
    proc = run("ruff", "check", "--no-cache", "fcsoft")
    assert proc.returncode == 0, f"ruff check fcsoft failed:\n{proc.stdout}{proc.stderr}"
