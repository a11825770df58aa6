"""The control API end to end over real HTTP (Hypercorn + Starlette inside the lab's trio
process): views, changes and what initiators see of them, bad input, and path failover and
failback of fcsoft's initiator library across a disabled and re-enabled array port."""

from __future__ import annotations

import struct

import pytest
import trio

from fcsoft.initiator import open_host
from fcsoft.initiator.host import CtRejected, ElsRejected, LoginRejected
from fcsoft.initiator.scsi import ScsiCommandError, ScsiTimeout
from fcsoft.scsi.sense import SenseKey, Status
from fcsoft.wire.els import Echo

from .helpers import CONFIG, H1, H2, P1, P2, Api, wait_for

pytestmark = pytest.mark.fcsoft_config(CONFIG)


def api(lab) -> Api:
    assert lab.control_address is not None
    return Api(lab.control_address)


class Multipath:
    """A minimal multipath policy on top of the initiator library: the first path that
    works, in order of preference; a path that failed is tried again only after an RSCN
    (as a path checker would after the fabric says something changed)."""

    def __init__(self, host, paths) -> None:
        self.host = host
        self.paths = paths  # [(name, ITNexus)], preferred first
        self.failed: dict[str, int] = {}

    async def io(self, op):
        errors = []
        for name, it in self.paths:
            if self.failed.get(name) == self.host.rscn_count:
                continue
            try:
                result = await op(it)
            except (ConnectionError, LookupError, ScsiTimeout, ScsiCommandError, ElsRejected,
                    CtRejected) as exc:
                self.failed[name] = self.host.rscn_count
                errors.append(f"{name}: {exc!r}")
                continue
            self.failed.pop(name, None)
            return name, result
        raise AssertionError(f"every path failed: {errors}")


async def test_failover_and_failback_of_an_array_port(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H1) as host, \
            host.connect(P1, timeout=5) as it1, host.connect(P2, timeout=5) as it2:
        mp = Multipath(host, [("port1", it1), ("port2", it2)])
        await it1.test_unit_ready(0)
        await it2.test_unit_ready(0)
        path, _ = await mp.io(lambda it: it.write(0, 0, b"A" * 512))
        assert path == "port1"

        seen = host.rscn_count
        answer = await http.call("POST", f"/api/ports/{P1}/disable", {})
        assert answer == {"wwpn": P1, "kind": "array", "disabled": True, "changed": True}
        await wait_for(lambda: host.rscn_count > seen)
        switch = await http.get("/api/switch")
        assert P1 not in [p["wwpn"] for link in switch["links"] for p in link["ports"]]
        assert switch["disabled"] == [{"wwpn": P1, "kind": "array", "logged_in": False}]
        arrays = await http.get("/api/arrays")
        assert [p["state"] for p in arrays[0]["ports"]] == ["disabled", "online"]

        # failover: the I/O goes through port 2, and sees what went through port 1
        path, _ = await mp.io(lambda it: it.write(0, 1, b"B" * 512))
        assert path == "port2"
        path, data = await mp.io(lambda it: it.read(0, 0, 1))
        assert (path, data) == ("port2", b"A" * 512)

        seen = host.rscn_count
        answer = await http.call("POST", f"/api/ports/{P1}/enable", {"wait": 10})
        assert answer["online"] is True and answer["changed"] is True
        await wait_for(lambda: host.rscn_count > seen)

        # failback: port 1 is the preferred path again and carries the I/O
        path, data = await mp.io(lambda it: it.read(0, 1, 1))
        assert (path, data) == ("port1", b"B" * 512)
        shown = await http.get(f"/api/ports/{P1}")
        assert shown["state"] == "online" and not shown["disabled"]
        assert [s["initiator"] for s in shown["sessions"]] == [H1]
        assert (await http.get("/api/switch"))["disabled"] == []


async def test_host_port_disable_refuses_its_login_until_enabled(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H2) as host:
        await http.call("POST", f"/api/ports/{H2}/disable", {})
        await wait_for(lambda: host.hl.closed_reason is not None)
    refused = False
    try:
        async with open_host(fcsoft_lab.address, H2):
            pass
    except* LoginRejected:
        refused = True
    assert refused
    assert fcsoft_lab.fabric.counters["disabled_login_rejected"] == 1
    shown = await http.get(f"/api/ports/{H2}")
    assert shown["disabled"] and shown["state"] == "offline"
    answer = await http.call("POST", f"/api/ports/{H2}/enable", {"wait": 0})
    assert answer["changed"] is True
    async with open_host(fcsoft_lab.address, H2) as host:
        assert host.logged_in


async def test_npiv_port_disable_logs_out_that_port_only(fcsoft_lab):
    http = api(fcsoft_lab)
    vport_wwpn = "c0:50:76:00:00:00:00:07"
    async with open_host(fcsoft_lab.address, H1) as host:
        vport = await host.add_vport(vport_wwpn)
        switch = await http.get("/api/switch")
        mine = [link for link in switch["links"]
                if any(p["wwpn"] == H1 for p in link["ports"])][0]
        assert [(p["wwpn"], p["login"]) for p in mine["ports"]] == [
            (H1, "FLOGI"), (vport_wwpn, "FDISC")]
        answer = await http.call("POST", f"/api/ports/{vport_wwpn}/disable", {})
        assert answer["kind"] == "tcp-npiv"
        await wait_for(lambda: not vport.logged_in)
        assert fcsoft_lab.logged_in(H1) and not fcsoft_lab.logged_in(vport_wwpn)
        with pytest.raises(LoginRejected):
            await host.add_vport(vport_wwpn)
        await http.call("POST", f"/api/ports/{vport_wwpn}/enable", {})
        await host.add_vport(vport_wwpn)


async def test_views(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H1) as host, host.connect(P1) as it:
        await it.test_unit_ready(0)
        ns = await http.get("/api/ns")
        assert {r["wwpn"] for r in ns} == {H1, P1, P2}
        assert {r["wwpn"]: r["role"] for r in ns}[P1] == "target"
        assert {r["wwpn"]: r["role"] for r in ns}[H1] == "initiator"
        zones = await http.get("/api/zones")
        assert zones["default_zone"] == "allow" and zones["default_applies"]
        seen_by = {v["wwpn"]: set(v["sees"]) for v in zones["visibility"]}
        assert seen_by[H1] == {P1, P2}
        port = await http.get(f"/api/ports/{H1}")
        assert port["login"] == "FLOGI" and port["link"]["kind"] == "tcp"
        assert port["sessions"] == [{"array": "array1", "target": P1, "prli": True,
                                     "outstanding": 0}]
        assert port["link"]["counters"]["rx_frames"] > 0
        by_fcid = await http.get(f"/api/ports/{port['fcid']}")
        assert by_fcid["wwpn"] == H1
        luns = await http.get("/api/arrays/array1/luns")
        assert [(u["name"], u["size"], u["maps"]) for u in luns["luns"]] == [
            ("data", 16 << 20, [{"host": "host1", "lun": 0}]), ("spare", 8 << 20, [])]
        counters = await http.get("/api/counters")
        assert counters["fabric"]["logins"] >= 3
        assert counters["array_ports"][P1]["commands"] >= 1
        state = await http.get("/api/state")
        assert set(state) == {"switch", "zones", "arrays", "faults", "log_level"}


async def test_zoning_changes_take_effect_at_once(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H1) as host:
        assert {str(t.wwpn) for t in await host.discover()} == {P1, P2}
        seen = host.rscn_count
        zones = await http.call("PUT", "/api/zones/h1_p1", {"members": [H1, P1]})
        assert zones["zones"] == [{"name": "h1_p1", "members": [
            {"wwpn": H1, "online": True}, {"wwpn": P1, "online": True}]}]
        await wait_for(lambda: host.rscn_count > seen)
        assert {str(t.wwpn) for t in await host.discover()} == {P1}
        seen = host.rscn_count
        await http.call("DELETE", "/api/zones/h1_p1")
        await wait_for(lambda: host.rscn_count > seen)
        assert {str(t.wwpn) for t in await host.discover()} == {P1, P2}
        seen = host.rscn_count
        zones = await http.call("PUT", "/api/default-zone", {"default_zone": "deny"})
        assert zones["default_zone"] == "deny"
        await wait_for(lambda: host.rscn_count > seen)
        assert await host.discover() == []


async def test_lun_add_map_resize_unmap_remove(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H1) as host, host.connect(P1) as it:
        await it.test_unit_ready(0)
        added = await http.call("POST", "/api/arrays/array1/luns",
                                {"name": "new", "size": "4MiB", "block_size": 4096})
        assert (added["size"], added["block_size"], added["maps"]) == (4 << 20, 4096, [])
        await http.call("PUT", "/api/arrays/array1/maps/host1/3", {"lu": "new"})
        result = await it.scsi(0, bytes(6))
        assert result.sense is not None and tuple(result.sense.code) == (0x3F, 0x0E)
        assert await it.report_luns() == [0, 3]
        assert await it.read_capacity(3) == (1024, 4096)
        await it.test_unit_ready(3)  # its power-on unit attention
        await http.call("PATCH", "/api/arrays/array1/luns/new", {"size": "8MiB"})
        result = await it.scsi(3, bytes(6))
        assert result.sense is not None and tuple(result.sense.code) == (0x2A, 0x09)
        assert await it.read_capacity(3) == (2048, 4096)
        status, body = await http.raw("DELETE", "/api/arrays/array1/luns/new")
        assert status == 409 and "unmap it first" in body["error"]
        await http.call("DELETE", "/api/arrays/array1/maps/host1/3")
        await http.call("DELETE", "/api/arrays/array1/luns/new")
        assert [u["name"] for u in (await http.get("/api/arrays/array1/luns"))["luns"]] == \
            ["data", "spare"]
        assert await it.report_luns() == [0]


async def test_file_backed_lun_add(fcsoft_lab, tmp_path):
    http = api(fcsoft_lab)
    path = tmp_path / "new.img"
    added = await http.call("POST", "/api/arrays/array1/luns",
                            {"name": "filed", "size": "1MiB", "backing": f"file:{path}"})
    assert added["backing"] == f"file:{path}" and path.stat().st_size == 1 << 20
    status, body = await http.raw("POST", "/api/arrays/array1/luns", data=(
        b'{"name": "again", "size": "1MiB", "backing": "file:' + str(path).encode() + b'"}'))
    assert status == 409 and "already the backing" in body["error"]
    status, body = await http.raw("PATCH", "/api/arrays/array1/luns/filed",
                                  data=b'{"size": "512KiB"}')
    assert status == 409 and "only grows" in body["error"]
    await http.call("DELETE", "/api/arrays/array1/luns/filed")
    assert path.exists()


async def test_alua_states_over_the_api(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H1) as host, \
            host.connect(P1) as it1, host.connect(P2) as it2:
        await it1.test_unit_ready(0)
        await it2.test_unit_ready(0)
        answer = await http.call("PUT", f"/api/arrays/array1/ports/{P2}/alua",
                                 {"state": "standby"})
        assert answer["port_group"] == 2 and answer["changed"]
        for it in (it1, it2):  # every nexus of the LU hears of it
            result = await it.scsi(0, bytes(6))
            assert result.sense is not None and tuple(result.sense.code) == (0x2A, 0x06)
        await it1.test_unit_ready(0)
        result = await it2.scsi(0, bytes(6))
        assert result.status == Status.CHECK_CONDITION
        assert result.sense.key == SenseKey.NOT_READY and tuple(result.sense.code) == (4, 0x0B)
        # REPORT TARGET PORT GROUPS works through the standby port, and shows both groups
        cdb = struct.pack(">BBxxxxIxx", 0xA3, 0x0A, 1024)
        rtpg = await it2.scsi(0, cdb, data_in_len=1024)
        assert rtpg.good, rtpg
        data = rtpg.data
        assert struct.unpack_from(">I", data)[0] == len(data) - 4 == 24
        groups = [(data[4 + 12 * i] & 0xF, struct.unpack_from(">H", data, 6 + 12 * i)[0],
                   data[9 + 12 * i]) for i in range(2)]
        assert groups == [(0, 1, 0), (2, 2, 2)]  # (state, group, status code)
        await http.call("PUT", "/api/arrays/array1/ports/2/alua", {"state": "unavailable"})
        await it2.scsi(0, bytes(6))  # 2A/06 again
        result = await it2.scsi(0, bytes(6))
        assert tuple(result.sense.code) == (4, 0x0C)
        await http.call("PUT", "/api/arrays/array1/ports/2/alua", {"state": "offline"})
        await it2.scsi(0, bytes(6))
        result = await it2.scsi(0, bytes(6))
        assert tuple(result.sense.code) == (4, 0x12)
        assert (await it2.inquiry(0))[0] == 0  # INQUIRY still answers
        await http.call("PUT", "/api/arrays/array1/ports/2/alua",
                        {"state": "active-non-optimized"})
        await it2.scsi(0, bytes(6))
        await it2.test_unit_ready(0)
        arrays = await http.get("/api/arrays")
        assert [p["alua_state"] for p in arrays[0]["ports"]] == [
            "active-optimized", "active-non-optimized"]


async def test_lu_errors(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H1) as host, host.connect(P1) as it:
        await it.test_unit_ready(0)
        await it.read(0, 0, 1)
        shown = await http.call("PUT", "/api/arrays/array1/luns/data/error",
                                {"sense": "3/11/00", "ops": "read", "count": 1})
        assert shown["sense"] == "3/11/00" and shown["count_left"] == 1
        with pytest.raises(ScsiCommandError) as failed:
            await it.read(0, 0, 1)
        assert failed.value.sense.key == SenseKey.MEDIUM_ERROR
        await it.read(0, 0, 1)  # the count is spent
        await it.write(0, 0, b"x" * 512)
        await http.call("PUT", "/api/arrays/array1/luns/data/error", {"status": "busy"})
        result = await it.scsi(0, bytes(6))
        assert result.status == Status.BUSY
        assert (await it.inquiry(0))[0] == 0  # a host can still see the LU
        luns = await http.get("/api/arrays/array1/luns")
        assert luns["luns"][0]["error"]["status"] == "busy"
        await http.call("DELETE", "/api/arrays/array1/luns/data/error")
        await it.test_unit_ready(0)


async def test_frame_faults(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H1, timeout=2) as host, host.connect(P1):
        target = fcsoft_lab.fabric.port(P1).fcid
        echo = Echo(b"ping").encode()
        rule = await http.call("POST", "/api/faults", {"action": "drop", "els": "ECHO",
                                                       "wwpn": H1, "count": 1})
        assert rule["els"] == "ECHO" and rule["count_left"] == 1
        with pytest.raises(TimeoutError):
            await host.els(target, echo, timeout=1)
        assert (await host.els(target, echo))[0] == 0x02  # LS_ACC: the count is spent
        await http.call("POST", "/api/faults", {"action": "duplicate", "els": "ECHO",
                                                "direction": "in"})
        assert (await host.els(target, echo))[0] == 0x02
        before = fcsoft_lab.switchshow()["faults"]["injected"]
        assert before == {"drop": 1, "duplicate": 1}
        await http.call("DELETE", "/api/faults")
        await http.call("POST", "/api/faults", {"action": "delay", "delay_ms": 50,
                                                "s_id": H1, "type": 1})
        assert (await host.els(target, echo))[0] == 0x02
        await http.call("DELETE", "/api/faults")
        await http.call("POST", "/api/faults", {"action": "corrupt", "d_id": P1,
                                                "count": 1})
        with pytest.raises(TimeoutError):
            await host.els(target, echo, timeout=1)
        link = fcsoft_lab.array("array1").drivers[0].link
        assert link.counters["rx_drop_fc_crc"] == 1
        faults = await http.get("/api/faults")
        assert faults["injected"] == {"drop": 1, "duplicate": 1, "delay": 1, "corrupt": 1}
        shown = await http.get(f"/api/ports/{H1}")
        assert shown["faults_injected"] == 4
        assert shown["link"]["counters"]["faults_injected"] == 4


def without_counters(state):
    """`state` without its traffic counters (which keep moving on a live fabric)."""
    if isinstance(state, dict):
        return {k: without_counters(v) for k, v in state.items()
                if k not in ("counters", "rscn_sent")}
    if isinstance(state, list):
        return [without_counters(v) for v in state]
    return state


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), [
    ("GET", "/api/arrays/nope/luns", None, 404, "no array named 'nope'"),
    ("GET", "/api/arrays/array1/luns/nope/pr", None, 404, "array 'array1' has no LU 'nope'"),
    ("GET", "/api/ports/10:00:00:00:00:00:00:99", None, 404, "is logged in"),
    ("GET", "/api/ports/zz", None, 400, "bad WWPN or N_Port_ID"),
    ("DELETE", "/api/zones/nope", None, 404, "no zone named 'nope'"),
    ("PUT", "/api/zones/z", b'{"members": []}', 400, "at least one member"),
    ("PUT", "/api/zones/z", b'{"members": ["bad"]}', 400, "bad WWPN"),
    ("PUT", "/api/zones/z", b"{not json", 400, "not JSON"),
    ("PUT", "/api/zones/z", b"[1]", 400, "JSON object"),
    ("PUT", "/api/default-zone", b'{"default_zone": "maybe"}', 400, "'allow' or 'deny'"),
    ("PUT", "/api/arrays/array1/maps/host1/0", b'{"lu": "spare"}', 409, "already mapped"),
    ("PUT", "/api/arrays/array1/maps/host1/99999", b'{"lu": "spare"}', 400, "0..16383"),
    ("PUT", "/api/arrays/array1/maps/host1/5", b'{"lu": "nope"}', 404, "no LU 'nope'"),
    ("DELETE", "/api/arrays/array1/maps/host1/7", None, 404, "not mapped"),
    ("POST", "/api/arrays/array1/luns", b'{"name": "data", "size": "1MiB"}', 409,
     "already has an LU"),
    ("POST", "/api/arrays/array1/luns", b'{"name": "x", "size": "12XB"}', 400, "bad size"),
    ("POST", "/api/arrays/array1/luns", b'{"name": "x", "size": "1000B"}', 400,
     "not a multiple of block_size"),
    ("POST", "/api/arrays/array1/luns", b'{"name": "x", "size": "1MiB", "backing": "a.img"}',
     400, "absolute path"),
    ("PATCH", "/api/arrays/array1/luns/data", b'{"size": "1000B"}', 409, "multiple"),
    ("PUT", "/api/arrays/array1/ports/3/alua", b'{"state": "standby"}', 404, "no port 3"),
    ("PUT", "/api/arrays/array1/ports/1/alua", b'{"state": "sleepy"}', 400, "ALUA state"),
    ("POST", "/api/ports/10:00:00:00:00:00:00:99/disable", None, 404, "is logged in"),
    ("POST", "/api/faults", b'{"action": "explode"}', 400, "action must be"),
    ("POST", "/api/faults", b'{"action": "delay"}', 400, "delay_ms"),
    ("POST", "/api/faults", b'{"action": "drop", "colour": 1}', 400, "unknown key"),
    ("POST", "/api/faults", b'{"action": "drop", "probability": 2}', 400, "probability"),
    ("DELETE", "/api/faults/42", None, 404, "no fault with id 42"),
    ("PUT", "/api/arrays/array1/luns/data/error", b'{"sense": "6/29/00"}', 400,
     "cannot be injected"),
    ("PUT", "/api/arrays/array1/luns/data/error", b'{}', 400, "either sense"),
    ("PUT", "/api/arrays/array1/luns/data/latency", b'{"ms": -1}', 400, "0..60000"),
    ("PUT", "/api/log-level", b'{"level": "loud"}', 400, "log level"),
    ("GET", "/api/nothing", None, 404, "no such endpoint"),
    ("DELETE", "/api/switch", None, 405, "not allowed"),
])
async def test_bad_requests(fcsoft_lab, method, path, body, status, error):
    http = api(fcsoft_lab)
    before = fcsoft_lab.control.state()
    got, answer = await http.raw(method, path, body)
    assert got == status, answer
    assert set(answer) == {"error"} and error in answer["error"]
    assert "\n" not in answer["error"]
    # nothing half done (traffic counters aside: the lab's own RSCNs may still flow)
    assert without_counters(fcsoft_lab.control.state()) == without_counters(before)


async def test_log_level(fcsoft_lab):
    http = api(fcsoft_lab)
    assert await http.call("PUT", "/api/log-level", {"level": "debug"}) == {"level": "debug"}
    assert await http.get("/api/log-level") == {"level": "debug"}
    await http.call("PUT", "/api/log-level", {"level": "info"})


async def test_server_survives_a_broken_connection(fcsoft_lab):
    host, port = fcsoft_lab.control_address
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(b"GARBAGE / HTTP/9.9\r\n\r\n")
    await stream.aclose()
    assert (await api(fcsoft_lab).get("/api/arrays"))[0]["name"] == "array1"


@pytest.mark.fcsoft_config(CONFIG.replace('listen = "127.0.0.1:0"',
                                          'listen = "127.0.0.1:0"\ntoken_file = "token.txt"'))
async def test_bearer_token(fcsoft_lab):
    http = api(fcsoft_lab)
    got, answer = await http.raw("GET", "/api/arrays")
    assert got == 401 and answer == {"error": "missing or wrong bearer token"}
    got, _ = await http.raw("GET", "/api/arrays", headers={"Authorization": "Bearer wrong"})
    assert got == 401
    got, answer = await http.raw("GET", "/api/arrays",
                                 headers={"Authorization": "Bearer s3cret-token"})
    assert got == 200 and answer[0]["name"] == "array1"
    got, _ = await http.raw("GET", "/api/arrays?token=s3cret-token")
    assert got == 200


async def test_lu_latency_holds_completions_back(fcsoft_lab):
    http = api(fcsoft_lab)
    async with open_host(fcsoft_lab.address, H1) as host, host.connect(P1) as it:
        await it.test_unit_ready(0)
        await it.write(0, 0, b"L" * 512)
        assert await http.call("PUT", "/api/arrays/array1/luns/data/latency", {"ms": 300}) == \
            {"array": "array1", "lu": "data", "latency_ms": 300}
        done = trio.Event()
        got = []

        async def read() -> None:
            got.append(await it.read(0, 0, 1))
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            # while it is held back, the command is an outstanding exchange of the port
            await wait_for(lambda: fcsoft_lab.portshow(P1)["sessions"][0]["outstanding"] == 1)
            assert not done.is_set()
        assert got == [b"L" * 512]
        # a command whose initiator gives up first is aborted (ABTS) and never completes
        await http.call("PUT", "/api/arrays/array1/luns/data/latency", {"ms": 5000})
        with pytest.raises(ScsiTimeout):
            await it.scsi(0, bytes(6), timeout=0.5)
        assert fcsoft_lab.portshow(P1)["sessions"][0]["outstanding"] == 0
        await http.call("PUT", "/api/arrays/array1/luns/data/latency", {"ms": 0})
        await it.test_unit_ready(0)
        assert (await http.get("/api/arrays/array1/luns"))["luns"][0]["latency_ms"] == 0
