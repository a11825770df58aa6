"""`fcsoft serve` as a user runs it (docs/config.md and 4): a subprocess started with
`python -m fcsoft`, its exit status, its stderr, its JSON log lines and its trace file.

Config and usage errors must end the program with one line on stderr that names the file, the
key and the problem, and no traceback. A running server logs a `listening` event with the
address it bound, serves initiators, and exits 0 on SIGTERM or SIGINT with a complete trace.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from fcsoft.initiator import open_host
from fcsoft.wire.encap import SOF_ORDERED_SET, EOF_ORDERED_SET
from fcsoft.wire.pcap import LINKTYPE_FC_2_WITH_FRAME_DELIMS, PCAP_MAGIC

REPO = Path(__file__).resolve().parents[2]
H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"
VPORT = "c0:50:76:00:00:00:00:01"
BOUND = 30  # seconds: a hang guard, never a speed requirement

ARRAY = """
[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["50:01:43:80:00:00:00:01"]

[[array.lun]]
name = "data"
size = "1MiB"
"""
HOST = """
[[array.host]]
name = "host1"
initiators = ["10:00:00:00:c9:00:00:01"]
luns = { 0 = "data" }
"""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), e.get("PYTHONPATH"))))
    e.pop("PYTHONWARNINGS", None)
    return e


def fcsoft(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fcsoft", *args], cwd=cwd, env=env(),
                          capture_output=True, text=True, timeout=BOUND)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


# -- config and usage errors -------------------------------------------------------------------

CONFIG_ERRORS = {
    # name: (file content, key path, words of the problem)
    "unknown key": ('[fabric]\nnmae = "lab"\n', "fabric.nmae", "unknown key"),
    "bad WWN": ('[fabric]\nwwn = "10:00:00:05"\n', "fabric.wwn", "bad WWN"),
    "bad size": (ARRAY.replace('"1MiB"', '"12XB"'), "array[0].lun[0].size", "bad size"),
    "unknown LUN name": (ARRAY + HOST.replace('"data"', '"nope"'), "array[0].host[0].luns.0",
                         "unknown LUN"),
    "duplicate WWPN": (ARRAY.replace('ports = ["50:01:43:80:00:00:00:01"]',
                                     'ports = ["50:01:43:80:00:00:00:01", '
                                     '"50:01:43:80:00:00:00:01"]'),
                       "array[0].ports[1]", "duplicate WWPN"),
    "port twice as initiator": (ARRAY + HOST.replace("10:00:00:00:c9:00:00:01",
                                                     "50:01:43:80:00:00:00:01"),
                                "array[0].host[0].initiators[0]", "duplicate WWPN"),
    "bad listen address": ('[fabric]\nlisten = "127.0.0.1:99999"\n', "fabric.listen",
                           "port must be 0..65535"),
    "TOML syntax error": ('[fabric\nname = "lab"\n', "line 1, column", "TOML syntax error"),
}
USAGE_ERRORS = {
    # name: (arguments after "serve", words the one line must contain)
    "missing config file": (["nonexistent.toml"],
                            ["nonexistent.toml", "cannot read config file", "No such file"]),
    "--listen not HOST:PORT": (["--listen", "nonsense"], ["--listen", "bad listen address"]),
    "--listen bad port": (["--listen", "127.0.0.1:70000"], ["--listen", "port must be"]),
    "--trace in a missing directory": (["--listen", "127.0.0.1:0", "--trace", "no/such/t.pcap"],
                                       ["--trace", "no/such/t.pcap"]),
    "--trace is a directory": (["--listen", "127.0.0.1:0", "--trace", "."],
                               ["--trace", "cannot write"]),
}


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every error case at once (they are independent processes): name -> (result,
    config path or None)."""
    cwd = tmp_path_factory.mktemp("cli-errors")
    commands: dict[str, tuple[list[str], Path | None]] = {}
    for i, (name, (text, _key, _problem)) in enumerate(sorted(CONFIG_ERRORS.items())):
        path = cwd / f"bad{i}.toml"
        path.write_text(text)
        commands[name] = (["serve", str(path), "--listen", "127.0.0.1:0"], path)
    for name, (args, _parts) in USAGE_ERRORS.items():
        commands[name] = (["serve", *args], None)
    procs = {name: subprocess.Popen([sys.executable, "-m", "fcsoft", *args], cwd=cwd,
                                    env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name, (args, _path) in commands.items()}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=BOUND)
        results[name] = (subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
                         commands[name][1])
    return results


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_config_error_one_line(error_runs, case):
    result, path = error_runs[case]
    _text, key, problem = CONFIG_ERRORS[case]
    assert_one_line_error(result, str(path), key, problem)


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_error_one_line(error_runs, case):
    result, _path = error_runs[case]
    assert_one_line_error(result, *USAGE_ERRORS[case][1])


def test_listen_address_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = fcsoft(tmp_path, "serve", "--listen", f"127.0.0.1:{port}")
    assert_one_line_error(result, f"127.0.0.1:{port}", "cannot listen")


def test_a_failed_start_leaves_no_new_files(tmp_path):
    """Backing files the start created and the trace file: none is left when the start
    fails, and an existing trace file is not truncated."""
    (tmp_path / "big.img").write_bytes(bytes(8192))
    config = tmp_path / "lab.toml"
    config.write_text("""
[[array]]
name = "a1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["50:01:43:80:00:00:00:01"]
[[array.lun]]
name = "new"
size = "1MiB"
backing = "new.img"
[[array.lun]]
name = "big"
size = "4KiB"
backing = "big.img"
""")
    result = fcsoft(tmp_path, "serve", str(config), "--listen", "127.0.0.1:0", "--trace",
                    "t.pcap")
    assert_one_line_error(result, "big.img holds 8192 bytes, more than the configured size")
    assert result.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.img", "lab.toml"]

    config.write_text(config.read_text().replace('size = "4KiB"', 'size = "8KiB"'))
    (tmp_path / "old.pcap").write_bytes(b"keep me")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for trace in ("t.pcap", "old.pcap"):
            result = fcsoft(tmp_path, "serve", str(config), "--listen", f"127.0.0.1:{port}",
                            "--trace", trace)
            assert_one_line_error(result, f"127.0.0.1:{port}", "cannot listen")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.img", "lab.toml", "old.pcap"]
    assert (tmp_path / "old.pcap").read_bytes() == b"keep me"
    # a file the failed start had grown has its old size back
    config.write_text(config.read_text().replace('size = "8KiB"', 'size = "64KiB"'))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = fcsoft(tmp_path, "serve", str(config), "--listen",
                        f"127.0.0.1:{busy.getsockname()[1]}")
    assert_one_line_error(result, "cannot listen")
    assert (tmp_path / "big.img").stat().st_size == 8192
    assert not (tmp_path / "new.img").exists()


def test_backing_files_created_or_grown_are_logged(tmp_path):
    from structlog.testing import capture_logs

    from fcsoft.config import parse_config
    from fcsoft.server.process import build_arrays, log_backings

    (tmp_path / "small.img").write_bytes(bytes(512))
    conf = parse_config("""
[[array]]
name = "a1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["50:01:43:80:00:00:00:01"]
[[array.lun]]
name = "new"
size = "1MiB"
backing = "new.img"
[[array.lun]]
name = "small"
size = "1MiB"
backing = "small.img"
""", base_dir=tmp_path)
    arrays = build_arrays(conf)
    with capture_logs() as events:
        log_backings(arrays)
    for a in arrays:
        a.close()
    found = {e["event"]: e for e in events}
    assert found["backing file created"]["path"] == str(tmp_path / "new.img")
    grown = found["backing file grown"]
    assert (grown["path"], grown["from_size"], grown["size"], grown["log_level"]) == (
        str(tmp_path / "small.img"), 512, 1 << 20, "warning")


# -- a running server --------------------------------------------------------------------------

class ServeProcess:
    """A running `fcsoft serve --log-format json`: its JSON log events as they come."""

    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._buf = b""
        self.address: tuple[str, int] | None = None

    async def _read_line(self) -> str | None:
        assert self.proc.stderr is not None
        while b"\n" not in self._buf:
            chunk = await self.proc.stderr.receive_some(65536)
            if not chunk:
                if self._buf:
                    line, self._buf = self._buf, b""
                    return line.decode()
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    async def _next(self) -> dict[str, Any] | None:
        line = await self._read_line()
        if line is None:
            return None
        self.lines.append(line)
        event = json.loads(line)  # every line of --log-format json is one JSON object
        assert isinstance(event, dict) and "event" in event, line
        self.events.append(event)
        return event

    async def wait_for(self, name: str, **match: Any) -> dict[str, Any]:
        """The first event `name` (with `match` fields), reading the log as it comes."""
        for e in self.events:
            if e["event"] == name and all(e.get(k) == v for k, v in match.items()):
                return e
        with trio.fail_after(BOUND):
            while True:
                e = await self._next()
                assert e is not None, f"no {name!r} event before exit: {self.lines}"
                if e["event"] == name and all(e.get(k) == v for k, v in match.items()):
                    return e

    async def stop(self, signum: int) -> int:
        """Send `signum`, read the log to its end and return the exit status."""
        self.proc.send_signal(signum)
        with trio.fail_after(BOUND):
            while await self._next() is not None:
                pass
            return await self.proc.wait()


@asynccontextmanager
async def serve_process(cwd: Path, *args: str) -> AsyncIterator[ServeProcess]:
    """Start `fcsoft serve --listen 127.0.0.1:0 --log-format json *args`; yield it once it
    logged `listening` (its `address` set from that event). Killed if still running after."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "fcsoft", "serve", "--listen", "127.0.0.1:0",
         "--log-format", "json", *args],
        cwd=cwd, env=env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    sp = ServeProcess(proc)
    try:
        listening = await sp.wait_for("listening")
        host, _, port = listening["address"].rpartition(":")
        sp.address = (host.strip("[]"), int(port))
        yield sp
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
            if proc.stderr is not None:
                await proc.stderr.aclose()


def read_pcap(path: Path) -> list[bytes]:
    """The records of a pcap file, checking the global header and every record header and
    that the file ends exactly after the last record."""
    data = path.read_bytes()
    magic, major, minor, _zone, _sig, snaplen, linktype = struct.unpack_from("<IHHiIII", data)
    assert (magic, major, minor) == (PCAP_MAGIC, 2, 4)
    assert linktype == LINKTYPE_FC_2_WITH_FRAME_DELIMS
    off, records = 24, []
    while off < len(data):
        assert off + 16 <= len(data), "truncated record header"
        _sec, usec, incl, orig = struct.unpack_from("<IIII", data, off)
        assert usec < 1_000_000 and incl == orig and incl <= snaplen
        assert off + 16 + incl <= len(data), "truncated record"
        records.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return records


async def session(address: tuple[str, int]) -> None:
    """Two hosts log in, register and discover each other (the first hears of the second
    by RSCN); one adds an NPIV port. The config's array ports may be there too."""
    async with open_host(address, H1) as h1, open_host(address, H2) as h2:
        with trio.fail_after(BOUND):
            while h2.fcid not in {p.affected_id for p in await h1.next_rscn(timeout=BOUND)}:
                pass
        assert h2.wwpn in {t.wwpn for t in await h1.discover(targets_only=False)}
        vport = await h2.add_vport(VPORT)
        assert vport.fcid in await h1.gid_ft()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_json_log_login_and_clean_exit(tmp_path, signum):
    trace = tmp_path / "trace.pcap"
    async with serve_process(tmp_path, "--trace", str(trace)) as sp:
        assert sp.address is not None and sp.address[0] == "127.0.0.1" and sp.address[1] > 0
        await session(sp.address)
        status = await sp.stop(signum)
    assert status == 0, sp.lines
    assert "Traceback" not in "\n".join(sp.lines)
    names = [e["event"] for e in sp.events]
    assert names[0] == "listening"
    (stopping,) = [e for e in sp.events if e["event"] == "shutting down"]
    assert stopping["signal"] == signal.Signals(signum).name

    # link events name their link; login events carry the WWPN and N_Port_ID (the built-in
    # lab's array ports log in over in-process links as well)
    ups = [e for e in sp.events if e["event"] == "link up"]
    downs = [e for e in sp.events if e["event"] == "link down"]
    assert all(isinstance(e.get("link"), str) and e["link"] for e in ups + downs)
    tcp_ups = [e for e in ups if e["peer"].startswith("127.0.0.1:")]
    tcp_downs = [e for e in downs if e["peer"].startswith("127.0.0.1:")]
    assert len(tcp_ups) == 2 and {e["link"] for e in tcp_downs} == {e["link"] for e in tcp_ups}
    logins = {e["wwpn"]: e for e in sp.events if e["event"] == "login"}
    assert {H1, H2, VPORT} <= set(logins)
    for e in logins.values():
        assert len(e["fcid"]) == 6 and int(e["fcid"], 16) >> 16 == 1
        assert e["link"] in {u["link"] for u in ups}  # the same name as its link's events
    assert logins[H2]["link"] == logins[VPORT]["link"]
    assert {logins[H1]["link"], logins[H2]["link"]} == {e["link"] for e in tcp_ups}

    # the trace is complete: every record is a whole FC frame with valid delimiters, and
    # the FLOGIs and the FDISC of the session are there (port name at payload offset 20)
    records = read_pcap(trace)
    sofs, eofs = set(SOF_ORDERED_SET.values()), set(EOF_ORDERED_SET.values())
    for rec in records:
        assert len(rec) >= 4 + 24 + 4 + 4 and len(rec) % 4 == 0
        assert struct.unpack(">I", rec[:4])[0] in sofs
        assert struct.unpack(">I", rec[-4:])[0] in eofs
    logins_traced = {(r[28], r[48:56].hex(":")) for r in records
                     if r[4] == 0x22 and r[5:8] == b"\xff\xff\xfe" and r[28] in (0x04, 0x51)}
    assert {(0x04, H1), (0x04, H2), (0x51, VPORT)} <= logins_traced


async def test_serve_without_trace_exits_zero_on_sigterm(tmp_path):
    async with serve_process(tmp_path) as sp:
        assert sp.address is not None
        async with open_host(sp.address, H1) as h1:
            assert h1.fcid >> 16 == 1
        status = await sp.stop(signal.SIGTERM)
    assert status == 0, sp.lines
    assert not list(tmp_path.iterdir())  # nothing written where it was not asked for
