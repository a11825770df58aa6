"""Create or refresh the project's virtual environment, then run a module inside it.

Used by bin/fcsoft and bin/test so that a fresh clone with nothing but python3 works.
The venv lives in .venv at the top of the checkout; a stamp file records the hash of
pyproject.toml and the extras installed, so a changed pyproject.toml (or a request for
extras not yet installed) triggers a reinstall, and everything else reuses the venv.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
VENV = TOP / ".venv"
STAMP = VENV / ".fcsoft-stamp.json"


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def _wanted(extras: set[str]) -> dict:
    digest = hashlib.sha256((TOP / "pyproject.toml").read_bytes()).hexdigest()
    return {"pyproject": digest, "extras": sorted(extras)}


def _current() -> dict | None:
    try:
        return json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return None


def _up_to_date(extras: set[str]) -> bool:
    cur = _current()
    if cur is None or not _venv_python().exists():
        return False
    want = _wanted(extras)
    return cur.get("pyproject") == want["pyproject"] and extras <= set(cur.get("extras", []))


def ensure(extras: set[str]) -> Path:
    """Make sure .venv exists with the project (editable) and `extras` installed."""
    if sys.version_info < (3, 11):
        sys.exit(f"fcsoft needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if _up_to_date(extras):
        return _venv_python()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    lock_path = TOP / ".venv.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _up_to_date(extras):
            return _venv_python()
        cur = _current() or {}
        # keep extras someone else asked for earlier, so bin/fcsoft after bin/test does not
        # strip the test tools out again
        extras = extras | set(cur.get("extras", []))
        if not _venv_python().exists():
            print(f"fcsoft: creating virtual environment in {VENV}", file=sys.stderr)
            try:
                venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
            except Exception as exc:  # noqa: BLE001 - report any venv failure in one line
                sys.exit(
                    f"fcsoft: could not create {VENV}: {exc} "
                    "(on Debian/Ubuntu: apt-get install python3-venv)"
                )
        spec = "." + (f"[{','.join(sorted(extras))}]" if extras else "")
        print(f"fcsoft: installing {spec} into {VENV}", file=sys.stderr)
        pip = [str(_venv_python()), "-m", "pip", "--disable-pip-version-check", "-q"]
        rc = subprocess.call(pip + ["install", "-e", spec], cwd=TOP)
        if rc != 0:
            sys.exit(f"fcsoft: pip install failed with status {rc}")
        STAMP.write_text(json.dumps(_wanted(extras)))
    return _venv_python()


def run(module: str, args: list[str], extras: set[str]) -> None:
    """Bootstrap, then replace this process with `python -m module args...` in the venv."""
    py = ensure(extras)
    os.execv(str(py), [str(py), "-m", module, *args])
