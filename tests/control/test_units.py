"""The sans-IO pieces behind the control API: fault rules (parsing and matching), target
port groups (states, command checks, REPORT TARGET PORT GROUPS layout), injected LU errors,
and the log level that changes at run time."""

from __future__ import annotations

import random
import struct

import pytest

from fcsoft import logs
from fcsoft.fabric.faults import FaultError, parse_rule
from fcsoft.scsi.alua import AluaState, PortGroups
from fcsoft.scsi.inject import InjectedError, parse_sense
from fcsoft.scsi.sense import SenseKey, Status
from fcsoft.wire.header import make_header
from fcsoft.wire.wwn import WWN

H1 = WWN("10:00:00:00:c9:00:00:01")


def header(r_ctl=0x22, d_id=0x010200, s_id=0x010300, type_=0x01):
    return make_header(r_ctl, d_id, s_id, type_, ox_id=1)


def fcid_of(wwpn):
    return {H1: 0x010300}.get(wwpn)


@pytest.mark.parametrize(("spec", "hdr", "payload", "inbound", "hit"), [
    ({"els": "PLOGI"}, header(), b"\x03" + bytes(115), True, True),
    ({"els": "PLOGI"}, header(), b"\x20" + bytes(15), True, False),
    ({"els": "0x03", "direction": "out"}, header(), b"\x03" + bytes(115), True, False),
    ({"s_id": "010300"}, header(), b"\x03", True, True),
    ({"s_id": str(H1)}, header(), b"\x03", True, True),
    ({"d_id": str(H1)}, header(), b"\x03", True, False),
    ({"wwpn": str(H1)}, header(s_id=0x010400, d_id=0x010300), b"\x02", False, True),
    # a FLOGI is matched by the port name in its payload
    ({"wwpn": str(H1)}, header(s_id=0, d_id=0xFFFFFE),
     b"\x04" + bytes(19) + int(H1).to_bytes(8, "big") + bytes(88), True, True),
    ({"ct": "GPN_FT"}, header(r_ctl=0x02, type_=0x20), bytes(8) + b"\x01\x72" + bytes(6),
     True, True),
    ({"opcodes": "read"}, header(r_ctl=0x06, type_=0x08), bytes(12) + b"\x28" + bytes(19),
     True, True),
    ({"opcodes": "write,0x35"}, header(r_ctl=0x06, type_=0x08),
     bytes(12) + b"\x28" + bytes(19), True, False),
    ({"r_ctl": "0x22", "type": 1}, header(), b"", True, True),
])
def test_fault_rule_matching(spec, hdr, payload, inbound, hit):
    rule = parse_rule(1, {"action": "drop", **spec})
    assert rule.matches(hdr, payload, inbound, fcid_of) is hit


@pytest.mark.parametrize(("spec", "error"), [
    ({"action": "drop", "s_id": "zz"}, "neither an N_Port_ID"),
    ({"action": "drop", "wwpn": "010200"}, "expected a WWPN"),
    ({"action": "drop", "els": "NOPE"}, "not a number"),
    ({"action": "drop", "opcodes": []}, "no operation code"),
    ({"action": "drop", "opcodes": "0x100"}, "not 0..255"),
    ({"action": "drop", "count": 0}, "count must be"),
    ({"action": "drop", "direction": "sideways"}, "direction must be"),
    ({"action": "duplicate", "delay_ms": 5}, "delay_ms goes with"),
    ({"action": "delay", "delay_ms": 100_000}, "delay_ms must be"),
])
def test_fault_rule_errors(spec, error):
    with pytest.raises(FaultError, match=error):
        parse_rule(1, spec)


def test_port_groups_states_and_report():
    groups = PortGroups({1: [1], 2: [2, 3]})
    assert groups.group_id(3) == 2 and groups.state_of(3) is AluaState.ACTIVE_OPTIMIZED
    assert groups.set_state(2, AluaState.STANDBY) and not groups.set_state(2,
                                                                           AluaState.STANDBY)
    read10 = bytes([0x28]) + bytes(9)
    assert groups.check(read10, 1) is None
    sense = groups.check(read10, 2)
    assert sense.key == SenseKey.NOT_READY and tuple(sense.code) == (0x04, 0x0B)
    for allowed in (0x12, 0xA0, 0x03, 0x5E, 0x5F, 0x1A, 0xA3):
        assert groups.check(bytes([allowed]) + bytes(9), 2) is None
    assert groups.check(bytes([0x3C, 0x0A]) + bytes(8), 2) is None  # echo buffer
    groups.set_state(2, AluaState.UNAVAILABLE)
    assert tuple(groups.check(bytes([0x5E]) + bytes(9), 2).code) == (0x04, 0x0C)
    groups.set_state(2, AluaState.OFFLINE)
    assert tuple(groups.check(bytes([0xA3, 0x0A]) + bytes(10), 2).code) == (0x04, 0x12)
    assert groups.check(bytes([0x12]) + bytes(5), 2) is None
    data = groups.report()
    assert struct.unpack_from(">I", data)[0] == len(data) - 4 == (8 + 4) + (8 + 8)
    assert data[4:12] == bytes([0x00, 0x4F, 0, 1, 0, 0, 0, 1])
    assert data[16:24] == bytes([0x0E, 0x4F, 0, 2, 0, 2, 0, 2])
    assert data[24:32] == bytes([0, 0, 0, 2, 0, 0, 0, 3])
    ext = groups.report(extended=True)
    assert ext[4] == 0x10 and ext[8:] == data[4:]
    assert AluaState.parse("active-non-optimized") is AluaState.ACTIVE_NON_OPTIMIZED
    with pytest.raises(ValueError, match="ALUA state must be"):
        AluaState.parse("asleep")


def test_injected_errors():
    err = InjectedError.build(sense="medium-error/11/00", opcodes=frozenset({0x28}), count=2)
    draw = random.Random(1)
    assert not err.applies(0x2A, draw)
    assert err.applies(0x28, draw) and err.applies(0x28, draw)
    assert not err.applies(0x28, draw) and err.spent and err.hits == 2
    result = InjectedError.build(sense="3/11/00").result()
    assert result.status == Status.CHECK_CONDITION and result.sense.key == SenseKey.MEDIUM_ERROR
    busy = InjectedError.build(status="busy")
    assert not busy.applies(0x12, draw)  # INQUIRY is spared unless named
    assert busy.applies(0x00, draw) and busy.result().status == Status.BUSY
    assert parse_sense("2/04/01").key == SenseKey.NOT_READY
    for bad, why in (("6/29/00", "cannot be injected"), ("3/11", "KEY/ASC/ASCQ"),
                     ("3/zz/00", "hex bytes"), ("q/11/00", "not a sense key")):
        with pytest.raises(ValueError, match=why):
            parse_sense(bad)
    with pytest.raises(ValueError, match="either sense"):
        InjectedError.build()


def test_log_level_changes_at_run_time():
    import io

    import structlog

    out = io.StringIO()
    logs.configure("json", stream=out)
    log = logs.get_logger(component="t")  # bound before the change
    log.debug("quiet")
    logs.set_level("debug")
    log.debug("loud")
    logs.set_level("warning")
    log.info("quiet again")
    log.warning("seen")
    assert [line.split('"event": ')[1].split('"')[1] for line in out.getvalue().splitlines()] \
        == ["loud", "seen"]
    assert logs.current_level() == "warning"
    with pytest.raises(ValueError, match="log level must be"):
        logs.parse_level("chatty")
    structlog.reset_defaults()  # as the other tests found it
    logs.set_level("info")
