"""One way to print identities and codes in the logs (docs/behaviour.md 5; fcsoft.logs,
fcsoft.names), checked on what a representative run logs in both formats, so that a new
log call that formats an identity its own way, leaves a code unnamed or forgets which
component it is fails here rather than in a user's grep.

The run: a host logs in, registers and talks to an array port; a login is rejected (the
WWPN is taken); zoning changes (RSCNs) and a port outside the zone has its frame discarded;
a name-server query is rejected; an injected error answers CHECK CONDITION; a task
management function, an ELS rejected by the array, a fault dropping a frame; an ENode logs
in through the FCoE Forwarder; a port is disabled and its login refused; links go down.
Everything at debug level, in-process, into one stream."""

from __future__ import annotations

import ast
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio

from fcsoft import logs, names
from fcsoft.config import parse_config
from fcsoft.initiator import CtRejected, ElsRejected, ExchangeTimeout, open_host
from fcsoft.initiator.scsi import ScsiCommandError
from fcsoft.server.process import run_process
from fcsoft.wire import ns
from fcsoft.wire.ct import NsCommand
from fcsoft.wire.els import ElsCommand, Prli, ServiceParameterPage
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.fcp import TaskManagementFlags
from fcsoft.wire.header import FcType
from fcsoft.wire.wwn import WWN
from tests.fcoe.enode_stream import EnodeStream

ROOT = Path(__file__).resolve().parents[1]
PORT_1 = WWN("50:01:43:80:00:00:00:01")
PORT_2 = WWN("50:01:43:80:00:00:00:02")
HOST_A = WWN("10:00:00:00:c9:00:00:01")
HOST_B = WWN("10:00:00:00:c9:00:00:02")
ENODE_MAC = bytes.fromhex("525400aa0001")
ENODE_WWPN = WWN("20:00:52:54:00:aa:00:01")
BOUND = 30  # seconds: a hang guard only

CONFIG = f"""
[fabric]
name = "lab"
listen = "127.0.0.1:0"

[[fcoe]]
name = "fcf1"
listen = "127.0.0.1:0"

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{PORT_1}", "{PORT_2}"]

[[array.lun]]
name = "a"
size = "1MiB"

[[array.lun]]
name = "b"
size = "1MiB"

[[array.host]]
name = "hosts"
initiators = ["{HOST_A}", "{HOST_B}", "{ENODE_WWPN}"]
luns = {{ 0 = "a" }}
"""

COMPONENTS = {"fabric", "link", "faults", "fcoe", "array", "host", "control", "process"}
FCID_KEYS = {"fcid", "s_id", "d_id", "port_id", "affected", "recipient", "service"}
WWN_KEYS = {"wwpn", "wwnn", "initiator", "target", "peer_wwpn", "members", "previous"}
#: keys that hold a code: its name must come with it, as `name (0xNN)`
CODE_KEYS = {"explanation", "command", "status", "response", "function", "r_ctl", "type",
             "opcodes"}
FCID = re.compile(r"[0-9a-f]{6}")
WWN_TEXT = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){7}")
NAMED_CODE = re.compile(r".*\w.* \(0x[0-9a-f]{2,4}\)")
#: what must never appear anywhere in a line
FORBIDDEN = [
    (re.compile(r"WWN\("), "a WWN repr"),
    (re.compile(r"0[xX][0-9a-fA-F]{16}(?![0-9a-fA-F])"), "a WWN as 0x and 16 hex digits"),
    (re.compile(r"(?<![0-9a-fA-F:x])[0-9a-fA-F]{16}(?![0-9a-fA-F:])"),
     "a WWN as 16 bare hex digits"),
    (re.compile(r"\b[A-Z]\w+\(\w+="), "a dataclass repr (its IDs in decimal)"),
]
CONSOLE_LINE = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z \[(\w+)\s*\] ")
CONSOLE_PAIR = re.compile(
    r"""(?<!\S)(\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\{[^}]*\}|\S+)""")


# -- what a line may hold -------------------------------------------------------------------

def problems(event: dict[str, Any]) -> list[str]:
    """What is wrong with one event's identities, codes and keys (empty: nothing)."""
    found = []
    text = json.dumps(event)
    for pattern, what in FORBIDDEN:
        m = pattern.search(text)
        if m:
            found.append(f"{what}: {m.group(0)!r}")
    if event.get("component") not in COMPONENTS:
        found.append(f"component {event.get('component')!r} is not one of {sorted(COMPONENTS)}")
    for key, value in event.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if v is None:
                continue
            if key in FCID_KEYS and not (isinstance(v, str) and (
                    FCID.fullmatch(v) or key in ("s_id", "d_id") and WWN_TEXT.fullmatch(v))):
                found.append(f"{key}={v!r} is not six lowercase hex digits")
            if key in WWN_KEYS and not (isinstance(v, str) and WWN_TEXT.fullmatch(v)):
                found.append(f"{key}={v!r} is not a WWN in colon form")
            if key in ("ox_id", "rx_id") and not (isinstance(v, str)
                                                  and re.fullmatch(r"0x[0-9a-f]{4}", v)):
                found.append(f"{key}={v!r} is not 0x and four hex digits")
            if key == "link" and not (isinstance(v, str) and re.fullmatch(r"link\d+", v)):
                found.append(f"link={v!r} is not link<N>")
            coded = key in CODE_KEYS or (key == "reason" and "explanation" in event)
            if coded and not (isinstance(v, str) and NAMED_CODE.fullmatch(v)):
                found.append(f"{key}={v!r} is not a named code, 'name (0xNN)'")
            if key in ("reason", "detail", "sense") and isinstance(v, (int, float)) or \
                    isinstance(v, str) and key in ("reason", *CODE_KEYS) and (
                        re.fullmatch(r"(0x)?[0-9a-fA-F]+", v) or re.fullmatch(r"[A-Z0-9_]+", v)):
                found.append(f"{key}={v!r} is a bare code or an enum's name")
    return found


def parse_console(line: str) -> dict[str, Any]:
    """A console line back into its event (values as the JSON renderer would have them)."""
    m = CONSOLE_LINE.match(line)
    assert m, f"not a console log line: {line!r}"
    rest = line[m.end():]
    # the event (padded to a column, or followed by one space when longer), then the pairs
    cut = re.search(r"\s+(?=[A-Za-z_]\w*=)", rest)
    event_text, pairs = (rest[:cut.start()], rest[cut.start():]) if cut else (rest, "")
    event: dict[str, Any] = {"event": event_text.strip(), "level": m.group(1)}
    for key, raw in CONSOLE_PAIR.findall(pairs):
        if raw[:1] in "'\"[{":
            try:
                event[key] = ast.literal_eval(raw)
                continue
            except (ValueError, SyntaxError):
                pass
        event[key] = None if raw == "None" else raw
    return event


def events_of(fmt: str, output: str) -> list[dict[str, Any]]:
    if fmt == "json":
        return [json.loads(line) for line in output.splitlines() if line.strip()]
    # console: traceback lines (after log.exception) are not events
    return [parse_console(line) for line in output.splitlines() if CONSOLE_LINE.match(line)]


# -- the run ------------------------------------------------------------------------------

@pytest.fixture
def log_stream():
    """Route fcsoft's logs (debug and up) into a buffer for the test, as `fmt` asks."""
    buf = io.StringIO()

    def configure(fmt: str) -> io.StringIO:
        logs.configure(fmt, logging.DEBUG, stream=buf)
        return buf

    yield configure
    structlog.reset_defaults()  # as the other tests found it
    logs.set_level("info")


class raises:  # noqa: N801 - used as pytest.raises is
    """pytest.raises that also finds the exception inside trio's exception groups."""

    def __init__(self, *types: type[BaseException]) -> None:
        self.types = types

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: Any, tb: Any) -> bool:
        def find(e: BaseException) -> bool:
            if isinstance(e, self.types):
                return True
            return isinstance(e, BaseExceptionGroup) and any(find(x) for x in e.exceptions)

        if exc is None:
            pytest.fail(f"did not raise {self.types}")
        return find(exc)


async def representative_run() -> None:
    conf = parse_config(CONFIG)
    async with trio.open_nursery() as nursery:
        lab = await nursery.start(lambda task_status: run_process(
            conf, ("127.0.0.1", 0), None, wait_ready=True, task_status=task_status))
        control = lab.control
        async with open_host(lab.address, HOST_A) as host:
            # a name-server query that matches nothing: CT reject, logged by the fabric
            with raises(CtRejected):
                await host.ct(NsCommand.GPN_ID, ns.GpnIdRequest(0x0A0A0A).encode())
            # a login rejected: the WWPN is logged in already
            with raises(ElsRejected):
                async with open_host(lab.address, HOST_A):
                    pass
            targets = {t.wwpn: t.port_id for t in await host.discover()}
            async with host.connect(PORT_1) as it:
                control.lu_error("array1", "a", sense="3/11/00", ops="read", count=1)
                with raises(ScsiCommandError):
                    await it.read(lun=0, lba=0, blocks=1)
                await it.task_management(0, TaskManagementFlags.LUN_RESET)
            # an ELS other than PLOGI to an array port we are not logged in with: LS_RJT
            page = ServiceParameterPage(type=FcType.FCP, establish_image_pair=True)
            await host.els(targets[PORT_2], Prli((page,)).encode())
            # a fault drops one ECHO (its hit is logged), the next gets through
            control.fault_add({"action": "drop", "els": "ECHO", "count": 1})
            with raises(ExchangeTimeout, TimeoutError):
                await host.els(targets[PORT_1], bytes([ElsCommand.ECHO, 0, 0, 0]), timeout=0.3)
            # an ENode through the FCF
            enode = await EnodeStream.connect(lab.fcf().address, ENODE_MAC)
            async with open_host(lab.address, ENODE_WWPN, stream=enode) as fcoe_host, \
                    open_host(lab.address, HOST_B) as other:
                await fcoe_host.discover()
                # zoning: HOST_B is in no zone now (RSCNs go out), its frame is discarded
                control.zone_set("z1", [str(HOST_A), str(ENODE_WWPN), str(PORT_1)])
                plogi = ServiceParameters.plogi(other.wwpn, other.wwnn).encode()
                with raises(ExchangeTimeout, TimeoutError):
                    await other.els(targets[PORT_1], plogi, timeout=0.3)
                await trio.sleep(0.2)  # the RSCNs are coalesced, then sent
            # an administrator disables a host port: its link is dropped, its next login
            # refused
            try:
                async with open_host(lab.address, HOST_B):
                    control.port_disable(str(HOST_B))
                    await trio.sleep(0.1)
            except BaseException as exc:  # noqa: BLE001 - its link went: so may the logout
                if not isinstance(exc, (Exception, BaseExceptionGroup)):
                    raise
            with raises(ElsRejected):
                async with open_host(lab.address, HOST_B):
                    pass
            await control.port_enable(str(HOST_B))
            control.map("array1", "10000000c9000009", 1, "b")  # a WWPN as 16 hex digits
            control.alua("array1", "2", "standby")
        nursery.cancel_scope.cancel()


#: what the run must have logged, so that the scan below is not vacuous
EXPECTED = {"login", "logout", "login rejected", "name server reject", "RSCN sent",
            "frame discarded", "registration", "zone set", "LU error injected",
            "task management", "ELS rejected", "fault added", "fault injected",
            "VN_Port instantiated", "port disabled by the administrator", "link up",
            "link down", "target port online", "fabric login", "port login", "LUN mapped",
            "ALUA state set", "listening"}


@pytest.mark.parametrize("fmt", ["console", "json"])
async def test_a_representative_run_logs_identities_and_codes_one_way(fmt, log_stream):
    buf = log_stream(fmt)
    with trio.fail_after(BOUND):
        await representative_run()
    events = events_of(fmt, buf.getvalue())
    assert EXPECTED <= {e["event"] for e in events}, \
        sorted(EXPECTED - {e["event"] for e in events})
    bad = [f"{e['event']}: {p}" for e in events for p in problems(e)]
    assert bad == [], "\n".join(bad)

    def first(name: str, **match: Any) -> dict[str, Any]:
        return next(e for e in events if e["event"] == name
                    and all(e.get(k) == v for k, v in match.items()))

    # the spellings themselves, on lines each component wrote
    rejected = first("login rejected", detail="WWPN already logged in")
    assert (rejected["component"], rejected["wwpn"], rejected["reason"],
            rejected["explanation"]) == ("fabric", str(HOST_A),
                                         "unable to perform command (0x09)",
                                         "invalid port name (0x0d)")
    assert FCID.fullmatch(rejected["fcid"]) and re.fullmatch(r"link\d+", rejected["link"])
    nsr = first("name server reject")
    assert (nsr["command"], nsr["reason"], nsr["explanation"]) == (
        "GPN_ID (0x0112)", "unable to perform command (0x09)",
        "port ID not registered (0x01)")
    injected = first("LU error injected")
    assert (injected["component"], injected["status"], injected["sense"]) == (
        "control", "check condition (0x02)", "medium error: unrecovered read error (3/11/00)")
    assert injected["opcodes"] == ["READ(6) (0x08)", "READ(10) (0x28)", "READ(16) (0x88)",
                                   "READ(12) (0xa8)"]
    tmf = first("task management")
    assert (tmf["component"], tmf["initiator"], tmf["function"], tmf["response"]) == (
        "array", str(HOST_A), "LUN reset (0x10)", "task management function complete (0x00)")
    els = first("ELS rejected", component="array")
    assert (els["command"], els["reason"], els["explanation"]) == (
        "PRLI (0x20)", "unable to perform command (0x09)", "N_Port login required (0x1e)")
    hit = first("fault injected")
    assert (hit["r_ctl"], hit["type"]) == ("ELS request (0x22)", "ELS (0x01)")
    discard = first("frame discarded", reason="not_zoned")
    assert FCID.fullmatch(discard["s_id"]) and FCID.fullmatch(discard["d_id"])
    rscn = first("RSCN sent")
    assert rscn["affected"] and all(FCID.fullmatch(a) for a in rscn["affected"])
    assert first("VN_Port instantiated")["wwpn"] == str(ENODE_WWPN)
    assert first("LUN mapped")["host"] == "10:00:00:00:c9:00:00:09"
    assert first("fabric login", component="host", wwpn=str(HOST_A))["fcid"] == \
        first("login", wwpn=str(HOST_A))["fcid"]


# -- the scan itself catches what it should ------------------------------------------------

@pytest.mark.parametrize("event, complaint", [
    ({"component": "fabric", "fcid": 66304}, "six lowercase hex digits"),
    ({"component": "fabric", "fcid": "0x10300"}, "six lowercase hex digits"),
    ({"component": "fabric", "wwpn": "WWN('10:00:00:00:c9:00:00:01')"}, "WWN repr"),
    ({"component": "host", "target": "0x500000000000A001"}, "0x and 16 hex digits"),
    ({"component": "host", "note": "ns says 5001438000000001"}, "16 bare hex digits"),
    ({"component": "fabric", "pages": "RscnPage(affected_id=66048)"}, "dataclass repr"),
    ({"component": "fabric", "reason": "0x09", "explanation": "0x1e"}, "named code"),
    ({"component": "host", "reason": "LOGICAL_BUSY"}, "bare code or an enum"),
    ({"component": "array", "status": "0x02"}, "named code"),
    ({"wwpn": "10:00:00:00:c9:00:00:01"}, "component None"),
    ({"component": "fabric", "ox_id": "0x12"}, "four hex digits"),
])
def test_the_scan_finds(event, complaint):
    assert any(complaint in p for p in problems({"event": "x", **event})), problems(event)


def test_the_console_parser_reads_what_the_console_renderer_writes(log_stream):
    from fcsoft.wire.els_codes import LsRjtReason

    buf = log_stream("console")
    logs.get_logger(component="fabric", link=3).info(
        "login rejected", reason=LsRjtReason.UNABLE_TO_PERFORM, wwpn=HOST_A, fcid=0x010300,
        affected=[0x010200, 0x010300], detail="a b=c")
    (event,) = events_of("console", buf.getvalue())
    assert event == {"event": "login rejected", "level": "info", "component": "fabric",
                     "link": "link3", "reason": "unable to perform command (0x09)",
                     "wwpn": str(HOST_A), "fcid": "010300",
                     "affected": ["010200", "010300"], "detail": "a b=c"}


# -- the processor renders by key and by type ---------------------------------------------

def test_the_processor_renders_ids_wwns_and_codes_wherever_they_are(log_stream):
    from fcsoft.scsi.sense import Asc, Sense, SenseKey, Status
    from fcsoft.wire.bls import BaRjtExplanation, BaRjtReason
    from fcsoft.wire.ct import CtRejectReason, NsRejectExplanation
    from fcsoft.wire.els_codes import LsRjtExplanation, LsRjtReason
    from fcsoft.wire.fcp import FcpRspCode

    buf = log_stream("json")
    logs.get_logger(component="fabric").info(
        "x", fcid=66304, s_id="0x10200", d_id=0xFFFFFC, wwpn=int(HOST_A), wwnn="1000000000000001",
        target=PORT_1, members=[HOST_A, str(PORT_1)], nested={"by": [HOST_A]}, ox_id=0x1A,
        link=7, r_ctl=0x22, type=8, reason=LsRjtReason(0x42), explanation=LsRjtExplanation(0x1E),
        ba=BaRjtReason.LOGICAL_ERROR, bx=BaRjtExplanation.INVALID_OX_ID_RX_ID,
        ct=CtRejectReason.UNABLE_TO_PERFORM, cx=NsRejectExplanation.FC4_TYPES_NOT_REGISTERED,
        status=Status.RESERVATION_CONFLICT, rsp=FcpRspCode.TMF_REJECTED,
        sense=Sense(SenseKey.NOT_READY, Asc(0x04, 0x0B)), ua=Asc(0x2A, 0x09),
        function=TaskManagementFlags(0x06))
    e = json.loads(buf.getvalue())
    assert {k: e[k] for k in e if k not in ("event", "level", "timestamp", "component")} == {
        "fcid": "010300", "s_id": "010200", "d_id": "fffffc",
        "wwpn": "10:00:00:00:c9:00:00:01", "wwnn": "10:00:00:00:00:00:00:01",
        "target": "50:01:43:80:00:00:00:01",
        "members": ["10:00:00:00:c9:00:00:01", "50:01:43:80:00:00:00:01"],
        "nested": {"by": ["10:00:00:00:c9:00:00:01"]}, "ox_id": "0x001a", "link": "link7",
        "r_ctl": "ELS request (0x22)", "type": "FCP (0x08)", "reason": "unknown (0x42)",
        "explanation": "N_Port login required (0x1e)", "ba": "logical error (0x03)",
        "bx": "invalid OX_ID-RX_ID combination (0x03)",
        "ct": "unable to perform command (0x09)",
        "cx": "FC-4 types not registered (0x07)", "status": "reservation conflict (0x18)",
        "rsp": "task management function not supported (0x04)",
        "sense": "not ready: logical unit not accessible, target port in standby state "
                 "(2/04/0b)",
        "ua": "capacity data has changed (2a/09)",
        "function": "abort task set + clear task set (0x06)"}


def test_names_of_the_code_tables():
    from fcsoft.wire.ct import NsCommand as C
    from fcsoft.wire.els_codes import LsRjtExplanation as X
    from fcsoft.wire.els_codes import LsRjtReason as R

    assert names.label(R.UNABLE_TO_PERFORM) == "unable to perform command (0x09)"
    assert names.label(R.LOGICAL_BUSY) == "logical busy (0x05)"
    assert names.label(X.INVALID_OX_ID_RX_ID) == "invalid OX_ID-RX_ID combination (0x17)"
    assert names.label(X.INVALID_N_PORT_ID) == "invalid N_Port_ID (0x1f)"
    assert names.label(C.GID_FT) == "GID_FT (0x0171)"
    assert names.els_command(0x03) == "PLOGI (0x03)"
    assert names.els_command(0xEE) == "unknown (0xee)"
    assert names.ct_command(0x8001) == "REJECT (0x8001)"
    assert names.r_ctl(0x06) == "unsolicited command (0x06)"
    assert names.r_ctl(0x81) == "ABTS (0x81)"
    assert names.fc_type(0x20) == "CT (0x20)"
    assert (names.fcid(0x10200), names.fcid("0x10200"), names.fcid("FFFFFC")) == (
        "010200", "010200", "fffffc")
    assert names.wwn("5001438000000001") == names.wwn(0x5001438000000001) == \
        "50:01:43:80:00:00:00:01"


# -- every logger says which component it is ------------------------------------------------

def _logger_calls() -> list[tuple[str, int, set[str]]]:
    found = []
    for path in sorted((ROOT / "fcsoft").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (
                    isinstance(node.func, ast.Name) and node.func.id == "get_logger"
                    or isinstance(node.func, ast.Attribute) and node.func.attr == "get_logger"
                    and ast.unparse(node.func.value) == "logs"):
                keys = {k.arg for k in node.keywords if k.arg}
                found.append((str(path.relative_to(ROOT)), node.lineno, keys))
    return found


def test_every_logger_is_created_with_its_component():
    calls = _logger_calls()
    assert len(calls) > 10
    missing = [f"{p}:{line}" for p, line, keys in calls
               if "component" not in keys and not p.endswith("fcsoft/logs.py")]
    assert missing == []


# -- messages outside the logs name their codes too -----------------------------------------

def test_errors_and_results_name_their_codes(capsys):
    from fcsoft.check.runner import describe
    from fcsoft.hosttools.verbose import show_result
    from fcsoft.initiator import CtRejected, ElsRejected, ScsiResult
    from fcsoft.initiator.login import ProcessLoginRejected
    from fcsoft.scsi.sense import Asc, Sense, SenseKey
    from fcsoft.wire.ct import CtPreamble, CtResponseCode
    from fcsoft.wire.els import LsRjt, LsRjtExplanation, LsRjtReason

    check = ScsiResult(0x02, sense_data=Sense(SenseKey.MEDIUM_ERROR, Asc(0x11, 0)).encode())
    assert str(check) == "check condition (0x02) [medium error: unrecovered read error (3/11/00)]"
    tmf = ScsiResult(0x00, response_code=4)
    assert str(tmf) == ("good (0x00) FCP_RSP response code task management function not "
                        "supported (0x04)")
    assert describe(tmf) == ("GOOD (FCP_RSP response code task management function not "
                             "supported (0x04))")
    show_result("lun reset", tmf)
    assert capsys.readouterr().err == ("lun reset: transport: FCP_RSP response code task "
                                       "management function not supported (0x04)\n")
    rjt = LsRjt(LsRjtReason.LOGICAL_BUSY, LsRjtExplanation.N_PORT_LOGIN_REQUIRED)
    assert str(ElsRejected("PRLI", rjt)) == (
        "PRLI rejected: logical busy (0x05), N_Port login required (0x1e)")
    rejected = CtPreamble(0xFC, 0x02, CtResponseCode.REJECT, reason=0x09, explanation=0x07)
    assert str(CtRejected(0x0171, rejected)) == (
        "GID_FT (0x0171) rejected: unable to perform command (0x09), FC-4 types not "
        "registered (0x07)")
    assert str(ProcessLoginRejected(5)) == (
        "PRLI not accepted: response code predefined configuration precludes establishing "
        "this image pair (0x05)")


def test_unconfigured_fcsoft_logs_render_the_same_way(capsys):
    """fcsoft as a library (the pytest plugin, open_host in a script) logs before anybody
    configured structlog: its lines still read as `fcsoft serve`'s, not as structlog's
    defaults would print them (`fcid=66304 wwpn=WWN('10:00:...')`)."""
    from fcsoft.wire.els_codes import LsRjtReason

    structlog.reset_defaults()
    assert not structlog.is_configured()
    log = logs.get_logger(component="fabric", link=3)
    log.info("login rejected", fcid=0x010300, wwpn=HOST_A, reason=LsRjtReason.LOGICAL_BUSY)
    log.debug("not at info")
    logs.set_level("debug")
    try:
        log.debug("at debug", s_id=0xFFFFFC)
    finally:
        logs.set_level("info")
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].endswith("component=fabric fcid=010300 link=link3 "
                             "reason='logical busy (0x05)' wwpn=10:00:00:00:c9:00:00:01")
    assert lines[1].endswith("at debug                       component=fabric link=link3 "
                             "s_id=fffffc")


def test_check_names_a_transport_id_by_its_wwpn():
    from fcsoft.check.cases.pr_in import _transport_id

    fc = bytes(8) + HOST_A.to_bytes8() + bytes(8)
    assert _transport_id(fc) == f"FC {HOST_A}"
    assert _transport_id(bytes([0x05]) + bytes(23)) == "05" + "00" * 23  # iSCSI: as bytes


# -- the documentation shows what the code does ---------------------------------------------

def _log_section() -> str:
    text = (ROOT / "docs" / "behaviour.md").read_text()
    return text[text.index("## 5. Logs"):]


def test_the_documented_examples_pass_the_scan():
    section = _log_section()
    console = [line for line in section.splitlines() if CONSOLE_LINE.match(line)]
    json_lines = [line for line in section.splitlines() if line.startswith('{"component"')]
    readme = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()
              if CONSOLE_LINE.match(line.strip())]
    assert len(console) >= 3 and len(json_lines) >= 2 and readme
    events = [parse_console(line) for line in console + readme] + \
        [json.loads(line) for line in json_lines]
    assert [p for e in events for p in problems(e)] == []


def test_the_documented_components_and_keys_are_the_codes():
    section = _log_section()
    row = next(line for line in section.splitlines() if line.startswith("| `component` |"))
    assert set(re.findall(r"`(\w+)` \(", row)) == COMPONENTS
    documented = set(re.findall(r"^\| (`.+?`) \|", section, re.M))
    keys = {k for cell in documented for k in re.findall(r"`(\w+)`", cell)}
    assert logs.FCID_KEYS - {"port_id", "affected", "recipient", "service"} <= keys
    assert logs.WWN_KEYS - {"members", "previous"} <= keys
    assert logs.XID_KEYS | {"link", "r_ctl", "type", "reason", "explanation"} <= keys
    # the components the code names are the documented ones
    named = {kw for _p, _l, _k in _logger_calls() for kw in [_component_of(_p, _l)] if kw}
    assert named <= COMPONENTS


def _component_of(path: str, line: int) -> str | None:
    tree = ast.parse((ROOT / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.lineno == line:
            for k in node.keywords:
                if k.arg == "component" and isinstance(k.value, ast.Constant):
                    return str(k.value.value)
    return None


def test_what_the_library_hands_out_prints_ids_in_hex():
    """RSCN pages (`host.next_rscn()`), discovered targets and frame headers print their
    N_Port_IDs as six hex digits, not `affected_id=66048`; the reprs stay valid Python."""
    from fcsoft.initiator.host import TargetInfo
    from fcsoft.wire.els import RscnAddressFormat, RscnEventQualifier, RscnPage
    from fcsoft.wire.header import FcHeader, make_header

    page = RscnPage(0x010200)
    assert repr(page) == ("RscnPage(affected_id=0x010200, address_format=RscnAddressFormat.PORT, "
                          "event_qualifier=RscnEventQualifier.NOT_SPECIFIED)")
    assert eval(repr(page), {"RscnPage": RscnPage, "RscnAddressFormat": RscnAddressFormat,
                             "RscnEventQualifier": RscnEventQualifier}) == page
    target = TargetInfo(0x010100, PORT_1, 1)
    assert repr(target) == ("TargetInfo(port_id=0x010100, wwpn=WWN('50:01:43:80:00:00:00:01'), "
                            "features=0x1)")
    assert eval(repr(target), {"TargetInfo": TargetInfo, "WWN": WWN}) == target
    h = make_header(0x22, 0xFFFFFC, 0x010300, 0x01, ox_id=0x1A)
    assert "d_id=0xfffffc" in repr(h) and "s_id=0x010300" in repr(h) and "ox_id=0x001a" in repr(h)
    assert eval(repr(h), {"FcHeader": FcHeader}) == h


def test_the_processor_never_takes_a_log_call_down(log_stream):
    import enum

    class State(enum.Enum):
        UP = "up"

    buf = log_stream("json")
    logs.get_logger(component="fabric").info("x", state=State.UP, wwpn=1 << 70, fcid="n/a")
    e = json.loads(buf.getvalue())
    assert (e["state"], e["fcid"]) == ("UP", "n/a")
    assert e["wwpn"] == repr(1 << 70)  # not a WWN: shown as it is, and the scan would flag it


def test_the_docs_spell_n_port_ids_as_the_output_does():
    """Lowercase, as every output of fcsoft's own: the docs say `fffffc`, not `FFFFFC`."""
    upper = re.compile(r"\bFFF[0-9A-F]{3}\b")
    found = {str(p.relative_to(ROOT)): upper.findall(p.read_text())
             for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    assert {k: v for k, v in found.items() if v} == {}
