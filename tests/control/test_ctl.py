"""`fcsoft ctl` against `fcsoft serve --control`: every command, its tables and --json, the
exit statuses (0 done, 1 refused, 2 usage, 3 unreachable), the `control` address in the
`listening` event, and what the log says at info level."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import trio

from tests.server.test_cli import env, serve_process

from .helpers import H1, P1, P2

BOUND = 60


async def ctl(url: str | None, *args: str) -> tuple[int, str, str]:
    cmd = [sys.executable, "-m", "fcsoft", "ctl"]
    if url is not None:
        cmd += ["--control", url]
    with trio.fail_after(BOUND):
        proc = await trio.run_process(cmd + list(args), capture_stdout=True,
                                      capture_stderr=True, check=False, env=env())
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


async def test_ctl_against_serve(tmp_path):
    async with serve_process(tmp_path, "--control", "127.0.0.1:0") as sp:
        listening = await sp.wait_for("listening")
        url = "http://" + listening["control"]
        assert listening["control"].startswith("127.0.0.1:")

        status, out, err = await ctl(url, "switchshow")
        assert status == 0, err
        assert "array1/1" in out and P1 in out and "FLOGI" in out
        status, out, _ = await ctl(url, "--json", "arrays")
        arrays = json.loads(out)
        assert [p["wwpn"] for p in arrays[0]["ports"]] == [P1, P2]

        status, out, _ = await ctl(url, "zone", "set", "z1", H1, P1)
        assert status == 0 and "zone z1:" in out
        status, out, _ = await ctl(url, "zoneshow")
        assert f"zone z1: {H1} (offline), {P1}" in out

        status, out, err = await ctl(url, "lun", "add", "array1", "extra", "--size", "2MiB",
                                     "--backing", f"file:{tmp_path / 'extra.img'}")
        assert status == 0, err
        assert (tmp_path / "extra.img").stat().st_size == 2 << 20
        status, out, _ = await ctl(url, "map", "array1", "host1", "7", "extra")
        assert status == 0 and "7=extra" in out
        status, out, _ = await ctl(url, "lun", "resize", "array1", "extra", "--size", "4MiB")
        assert status == 0 and "size: 4194304" in out
        status, out, _ = await ctl(url, "luns", "array1")
        assert "extra" in out and "4MiB" in out and "host1:7" in out
        status, _, err = await ctl(url, "lun", "remove", "array1", "extra")
        assert status == 1 and err.strip().endswith("unmap it first")
        assert (await ctl(url, "unmap", "array1", "host1", "7"))[0] == 0
        assert (await ctl(url, "lun", "remove", "array1", "extra"))[0] == 0

        status, out, _ = await ctl(url, "port", "disable", P2)
        assert status == 0 and "disabled: True" in out
        status, out, _ = await ctl(url, "arrays")
        assert "disabled" in out
        status, out, _ = await ctl(url, "port", "enable", P2)
        assert status == 0 and "online: True" in out

        status, out, _ = await ctl(url, "alua", "array1", "2", "standby")
        assert status == 0 and "state: standby" in out
        status, out, _ = await ctl(url, "fault", "add", "delay", "5", "--els", "ECHO",
                                   "--count", "3")
        assert status == 0 and "els: ECHO" in out
        status, out, _ = await ctl(url, "fault", "list")
        assert "delay 5ms" in out and "els=ECHO" in out
        assert (await ctl(url, "fault", "clear", "1"))[0] == 0
        status, _, err = await ctl(url, "fault", "clear", "1")
        assert (status, err.strip()) == (1, "fcsoft: no fault with id 1")
        status, out, _ = await ctl(url, "lu-error", "array1", "data", "--status", "busy",
                                   "--ops", "read,write", "--count", "2")
        assert status == 0 and "count_left: 2" in out
        assert (await ctl(url, "lu-error", "array1", "data", "--clear"))[0] == 0
        assert (await ctl(url, "lu-latency", "array1", "data", "20"))[0] == 0
        status, out, _ = await ctl(url, "pr", "array1", "data")
        assert status == 0 and "reservation: none" in out
        status, out, _ = await ctl(url, "portshow", P1)
        assert status == 0 and "array array1 port 1" in out
        status, out, _ = await ctl(url, "nsshow")
        assert status == 0 and P1 in out and "target" in out
        status, out, _ = await ctl(url, "counters")
        assert status == 0 and "fabric:" in out
        status, out, _ = await ctl(url, "log-level", "debug")
        assert status == 0 and "level: debug" in out

        # refused, bad usage, unreachable
        status, out, err = await ctl(url, "zone", "delete", "nope")
        assert (status, out, err) == (1, "", "fcsoft: no zone named 'nope'\n")
        status, _, err = await ctl(url, "luns", "nope")
        assert status == 1 and "no array named 'nope'" in err
        status, _, err = await ctl(url, "alua", "array1", "1", "sleepy")
        assert status == 2 and "invalid choice" in err
        status, _, err = await ctl(url, "fault", "add", "delay")
        assert status == 2 and err.strip() == "fcsoft: fault add delay needs MS (milliseconds)"
        status, _, err = await ctl("http://127.0.0.1:1", "switchshow")
        assert status == 3 and err.startswith("fcsoft: cannot reach the control API at ")
        assert err.count("\n") == 1

        status = await sp.stop(signal.SIGTERM)
    assert status == 0
    events = [e["event"] for e in sp.events]
    # changes are logged with what changed; per-port chatter stays out at info level
    assert {"zone set", "LU added", "LUN mapped", "LU resized", "LU removed",
            "port disabled by the administrator", "ALUA state set", "fault added"} <= set(events)
    zone = next(e for e in sp.events if e["event"] == "zone set")
    assert zone["members"] == [H1, P1]
    before_debug = events[:events.index("log level set")]
    assert "login" in before_debug
    assert not {"registration", "service login", "port login", "process login",
                "RSCN sent"} & set(before_debug)


def test_serve_control_needs_a_token_off_loopback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fcsoft", "serve", "--control", "0.0.0.0:0"],
                          cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=BOUND)
    assert proc.returncode == 2
    assert proc.stderr == ("fcsoft: --control: binding to 0.0.0.0 (not a loopback address) "
                           "needs token_file (a file holding the bearer token)\n")


def test_control_config_errors(tmp_path):
    conf = tmp_path / "lab.toml"
    conf.write_text('[control]\nlisten = "10.0.0.1:3227"\n')
    proc = subprocess.run([sys.executable, "-m", "fcsoft", "serve", str(conf)], cwd=tmp_path,
                          env=env(), capture_output=True, text=True, timeout=BOUND)
    assert proc.returncode == 2
    assert proc.stderr == (f"fcsoft: {conf}: control.listen: binding to 10.0.0.1 (not a "
                           "loopback address) needs token_file (a file holding the bearer "
                           "token)\n")
    conf.write_text('[control]\nlisten = "127.0.0.1:0"\ntoken_file = "missing.txt"\n')
    proc = subprocess.run([sys.executable, "-m", "fcsoft", "serve", str(conf)], cwd=tmp_path,
                          env=env(), capture_output=True, text=True, timeout=BOUND)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"fcsoft: {conf}: control.token_file: cannot read token "
                                  "file ")
    assert proc.stderr.count("\n") == 1
