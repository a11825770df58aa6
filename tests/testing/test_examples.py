"""examples/migrate_pr.sh runs as shipped against `fcsoft serve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "migrate_pr.sh"


def test_migrate_pr_script(tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    server = subprocess.Popen([sys.executable, "-m", "fcsoft", "serve", "--listen",
                               "127.0.0.1:0", "--log-format", "json"],
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        address = None
        assert server.stderr is not None
        for line in server.stderr:
            event = json.loads(line)
            if event["event"] == "listening":
                address = event["address"]
                break
        assert address is not None
        # keep reading the server's log, so that it never blocks on a full pipe
        drain = threading.Thread(target=server.stderr.read, daemon=True)
        drain.start()
        env = dict(os.environ, FABRIC=address, FCSOFT=f"{sys.executable} -m fcsoft")
        run = subprocess.run([bash, str(EXAMPLE)], env=env, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "migrate-pr pattern: OK" in run.stdout
        assert "type: Write Exclusive, registrants only" in run.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()
