"""The control API's JSON (what `fcsoft ctl --json` prints) and `fcsoft ctl`'s tables print
identities one way: N_Port_IDs as six lowercase hex digits, WWNs in colon form; the tables
name the codes the JSON gives as hex (FC-4 TYPE, R_CTL, sense)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fcsoft.control import cli
from fcsoft.wire.wwn import WWN

from .helpers import H1, P1, P2

FCID = re.compile(r"[0-9a-f]{6}")
WWN_TEXT = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){7}")
FCID_KEYS = {"fcid", "s_id", "d_id"}
WWN_KEYS = {"wwpn", "wwnn", "wwn", "node_wwn", "initiator", "target", "sees", "initiators"}
#: never in the JSON or a table: a WWN repr, a WWN as 16 hex digits, a decimal-ish N_Port_ID
FORBIDDEN = [re.compile(r"WWN\("), re.compile(r"0[xX][0-9a-fA-F]{16}(?![0-9a-fA-F])"),
             re.compile(r"(?<![0-9a-fA-F:x])[0-9a-fA-F]{16}(?![0-9a-fA-F:])")]


def walk(value: Any, key: str = "", path: str = "") -> list[str]:
    """What in the JSON does not print identities one way."""
    bad = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and k.count(":") == 7 and not WWN_TEXT.fullmatch(k):
                bad.append(f"{path}: key {k!r}")
            bad += walk(v, k, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            bad += walk(v, key, f"{path}[{i}]")
    elif value is not None:
        if key in FCID_KEYS and not (isinstance(value, str) and (
                FCID.fullmatch(value) or WWN_TEXT.fullmatch(value))):
            bad.append(f"{path} = {value!r}")
        if key in WWN_KEYS and not (isinstance(value, str) and WWN_TEXT.fullmatch(value)):
            bad.append(f"{path} = {value!r}")
        # a reservation key is 0x and 16 hex digits too, but no WWN
        if isinstance(value, str) and key != "key" and any(p.search(value) for p in FORBIDDEN):
            bad.append(f"{path} = {value!r}")
    return bad


def forbidden_in(text: str, keys: set[str] = frozenset()) -> list[str]:
    """What in a table is not one way; `keys` are the reservation keys it may show."""
    return [m.group(0) for p in FORBIDDEN for m in p.finditer(text) if m.group(0) not in keys]


async def test_the_api_json_and_the_ctl_tables_print_identities_one_way(fcsoft_lab):
    control = fcsoft_lab.control
    async with fcsoft_lab.host(H1) as host, host.connect(P1) as it:
        await it.test_unit_ready()  # the login's unit attention
        r = await it.persistent_reserve_out(0, 0, key=0, sa_key=0xABC)  # REGISTER
        assert r.good, r
        control.zone_set("z1", [H1, P1, P2])
        fcid = f"{fcsoft_lab.fabric.port(WWN(H1)).fcid:06x}"
        control.fault_add({"action": "drop", "s_id": fcid, "d_id": P2, "r_ctl": "0x22",
                           "type": 1, "opcodes": "read", "count": 1})
        control.lu_error("array1", "boot", sense="3/11/00", ops="write", count=1)
        views: dict[str, Any] = {
            "switchshow": control.switchshow(), "nsshow": control.nsshow(),
            "zoneshow": control.zoneshow(), "portshow host": control.portshow(H1),
            "portshow array": control.portshow(P1), "portshow fcid": control.portshow(fcid),
            "arrays": control.arrays(), "luns": control.luns("array1"),
            "pr": control.pr("array1", "boot"), "counters": control.counters(),
            "faults": control.fault_list(), "state": control.state()}
        assert [b for name, v in views.items() for b in walk(v, path=name)] == []
        host_port = views["portshow host"]
        assert (host_port["fcid"], host_port["wwpn"]) == (fcid, H1)
        assert views["portshow array"]["sessions"][0] == {
            **views["portshow array"]["sessions"][0], "initiator": H1, "s_id": fcid}
        assert {r["initiator"] for r in views["pr"]["registrations"]} == {H1}

        tables = {"switchshow": cli.show_switch(views["switchshow"]),
                  "nsshow": cli.show_ns(views["nsshow"]),
                  "zoneshow": cli.show_zones(views["zoneshow"]),
                  "portshow": cli.show_port(views["portshow array"]),
                  "portshow host": cli.show_port(host_port),
                  "arrays": cli.show_arrays(views["arrays"]),
                  "luns": cli.show_luns(views["luns"]), "pr": cli.show_pr(views["pr"]),
                  "counters": cli.show_counters(views["counters"]),
                  "faults": cli.show_faults(views["faults"])}
        keys = {g["key"] for g in views["pr"]["registrations"]}
        assert keys == {"0x0000000000000abc"}
        assert {k: forbidden_in(t, keys) for k, t in tables.items()
                if forbidden_in(t, keys)} == {}
        assert f"{fcid}  {H1}" in tables["nsshow"]
        assert "FCP (0x08)" in tables["nsshow"] and "fc4=FCP (0x08)" in tables["portshow"]
        rule = tables["faults"].splitlines()[1]
        assert f"s_id={fcid} d_id={P2}" in rule
        assert "r_ctl=ELS request (0x22) type=ELS (0x01)" in rule
        assert "opcodes=READ(6) (0x08),READ(10) (0x28)" in rule
        assert "error medium error: unrecovered read error (3/11/00)" in tables["luns"]


@pytest.mark.parametrize("fc4, shown", [(["0x08"], "FCP (0x08)"), ([], "-"),
                                        (["0x08", "0x20"], "FCP (0x08), CT (0x20)")])
def test_fc4_types_are_named_in_tables(fc4, shown):
    assert cli._fc4_types(fc4) == shown
