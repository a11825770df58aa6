"""The directory name server at FFFFFC, driven through the fabric core with CT frames.

docs/behaviour.md 2 (name server: commands, zoning of answers, CT reject 0x09 with the key
object's explanation, 0x0B for other codes) and section 6 (registration only for one's own
N_Port_IDs: 0x09/0x10); FC-GS-8 4.3 (CT_IU, max/residual size) and 5.2 (name server
objects, request and accept layouts); FC-FS-4 9 (sequences of several frames).
"""

from __future__ import annotations

import pytest

from fcsoft.wire import ns
from fcsoft.wire.ct import CtRejectReason, NsCommand, NsRejectExplanation, decode_ct
from fcsoft.wire.els import ElsCommand, Logo
from fcsoft.wire.encap import EOF, SOF
from fcsoft.wire.header import FcType, FCtl, RCtl
from fcsoft.wire.wwn import WWN

from .conftest import (
    DIRECTORY,
    MANAGEMENT,
    FabricHarness,
    Port,
    reassemble,
    wwnn,
    wwpn,
    zones_toml,
)

UNABLE = CtRejectReason.UNABLE_TO_PERFORM  # 0x09
NOT_SUPPORTED = (CtRejectReason.COMMAND_NOT_SUPPORTED, 0)  # 0x0B
PORT_ID = (UNABLE, NsRejectExplanation.PORT_ID_NOT_REGISTERED)  # 09/01
PORT_NAME = (UNABLE, NsRejectExplanation.PORT_NAME_NOT_REGISTERED)  # 09/02
NODE_NAME = (UNABLE, NsRejectExplanation.NODE_NAME_NOT_REGISTERED)  # 09/03
FC4_TYPES = (UNABLE, NsRejectExplanation.FC4_TYPES_NOT_REGISTERED)  # 09/07
SYM_PORT = (UNABLE, NsRejectExplanation.SYMBOLIC_PORT_NAME_NOT_REGISTERED)  # 09/08
SYM_NODE = (UNABLE, NsRejectExplanation.SYMBOLIC_NODE_NAME_NOT_REGISTERED)  # 09/09
PORT_TYPE = (UNABLE, NsRejectExplanation.PORT_TYPE_NOT_REGISTERED)  # 09/0A
FC4_FEATURES = (UNABLE, NsRejectExplanation.FC4_FEATURES_NOT_REGISTERED)  # 09/0F
ACCESS_DENIED = (UNABLE, NsRejectExplanation.ACCESS_DENIED)  # 09/10

C = NsCommand
FCP = FcType.FCP
NVME = FcType.NVME
UNUSED_FCID = 0x01FE77  # never assigned in these tests


def ft(fc4_type: int = FCP, domain: int = 0, area: int = 0) -> bytes:
    """GID_FT / GPN_FT / GNN_FT request payload (FC-GS-8 5.2.5; fc_ns.h fc_ns_gid_ft)."""
    return bytes((0, domain, area, fc4_type))


def entries_ctl(body: bytes, size: int) -> list[int]:
    """The control bytes of a list accept's entries (FC-GS-8 5.2.5: bit 0x80 on the last)."""
    return [body[i] for i in range(0, len(body), size)]


@pytest.fixture
def two(h) -> tuple[Port, Port]:
    """Two ports on two links, both logged in with the name server, default zone allow."""
    return h.port(1, wwpn(1)), h.port(2, wwpn(2))


# ======================================================================= registrations


def test_every_registration_is_accepted_and_answered(h, two):
    """docs/behaviour.md 2 registrations RNN_ID, RSNN_NN, RSPN_ID, RFT_ID, RFF_ID (FC-GS-8 5.2.5):
    each accept carries no payload, and the matching query from another port returns the
    object (GNN_ID, GSNN_NN, GSPN_ID, GFT_ID, GFF_ID)."""
    a, b = two
    node = WWN("20:00:00:00:aa:bb:cc:01")
    for cmd, req in [
        (C.RNN_ID, ns.RnnIdRequest(a.fcid, node)),
        (C.RSNN_NN, ns.RsnnNnRequest(node, b"host A node")),
        (C.RSPN_ID, ns.RspnIdRequest(a.fcid, b"host A port 0")),
        (C.RFT_ID, ns.RftIdRequest(a.fcid, ns.Fc4Types({FCP, FcType.CT}))),
        (C.RFF_ID, ns.RffIdRequest(a.fcid, FCP, ns.FcpFeatures.TARGET)),
    ]:
        r = a.ct(cmd, req)
        assert r.accepted and r.body == b"", cmd
        assert len(r.frames) == 1
        assert r.iu.preamble.gs_type == 0xFC and r.iu.preamble.gs_subtype == 0x02
    assert b.ns_ok(C.GNN_ID, ns.GnnIdRequest(a.fcid)) == ns.GnnIdAccept(node)
    assert b.ns_ok(C.GSNN_NN, ns.GsnnNnRequest(node)) == ns.GsnnNnAccept(b"host A node")
    assert b.ns_ok(C.GSPN_ID, ns.GspnIdRequest(a.fcid)) == ns.GspnIdAccept(b"host A port 0")
    assert b.ns_ok(C.GFT_ID, ns.GftIdRequest(a.fcid)).fc4_types == {FCP, FcType.CT}
    gff = b.ns_ok(C.GFF_ID, ns.GffIdRequest(a.fcid))
    assert gff.features_for(FCP) == ns.FcpFeatures.TARGET
    # raw accept shapes: GFT_ID 32 bytes, FCP = word 0 bit 8; GFF_ID 128 bytes, FCP = low
    # nibble of byte 7 (FC-GS-8 5.2.5)
    raw = b.ct(C.GFT_ID, ns.GftIdRequest(a.fcid)).body
    assert len(raw) == 32 and raw[:8] == bytes.fromhex("00000100" "00000001")
    raw = b.ct(C.GFF_ID, ns.GffIdRequest(a.fcid)).body
    assert len(raw) == 128 and raw[7] & 0x0F == 1
    rec = h.fabric.port(wwpn(1))
    assert rec.wwnn == node and rec.fc4_types == {FCP, FcType.CT}


def test_queries_by_port_id_and_name(h, two):
    """GPN_ID, GNN_ID, GID_PN (FC-GS-8 5.2.5) with their accept layouts."""
    a, b = two
    assert b.ns_ok(C.GPN_ID, ns.GpnIdRequest(a.fcid)).port_name == a.wwpn
    assert b.ns_ok(C.GNN_ID, ns.GnnIdRequest(a.fcid)).node_name == a.wwnn
    acc = b.ct(C.GID_PN, ns.GidPnRequest(a.wwpn))
    assert acc.body == a.fcid.to_bytes(4, "big")  # rsvd, port ID(3)
    assert acc.accept().port_id == a.fcid
    assert b.ct(C.GPN_ID, ns.GpnIdRequest(a.fcid)).body == a.wwpn.to_bytes8()


def test_list_queries_mark_the_last_entry(h):
    """GID_FT / GPN_FT / GNN_FT / GID_PT accepts (FC-GS-8 5.2.5): entries in
    ascending N_Port_ID order, control byte 0x80 on the last entry only."""
    ports = [h.port(n, wwpn(n)) for n in (1, 2, 3)]
    ports[0].register_fcp(ns.FcpFeatures.INITIATOR)
    ports[1].register_fcp(ns.FcpFeatures.TARGET)
    ports[2].register_fcp(ns.FcpFeatures.TARGET)
    q = ports[0]
    ids = sorted(p.fcid for p in ports)
    by_id = {p.fcid: p for p in ports}

    r = q.ct(C.GID_FT, ft())
    assert entries_ctl(r.body, 4) == [0, 0, 0x80]
    assert list(r.accept().port_ids) == ids
    r = q.ct(C.GPN_FT, ft())
    assert entries_ctl(r.body, 16) == [0, 0, 0x80] and len(r.body) == 48
    assert [(e.port_id, e.port_name) for e in r.accept().entries] == [
        (f, by_id[f].wwpn) for f in ids]
    r = q.ct(C.GNN_FT, ft())
    assert entries_ctl(r.body, 16) == [0, 0, 0x80]
    assert [(e.port_id, e.node_name) for e in r.accept().entries] == [
        (f, by_id[f].wwnn) for f in ids]
    r = q.ct(C.GID_PT, ns.GidPtRequest(ns.PortType.N_PORT))
    assert entries_ctl(r.body, 4) == [0, 0, 0x80]
    assert list(r.accept().port_ids) == ids
    assert list(q.ns_ok(C.GID_PT, ns.GidPtRequest(ns.PortType.NX_PORT)).port_ids) == ids
    # a one-entry list has the bit on its only entry
    ports[1].ns_ok(C.RFT_ID, ns.RftIdRequest(ports[1].fcid, ns.Fc4Types({NVME})))
    r = q.ct(C.GID_FT, ft(NVME))
    assert r.body == (0x80 << 24 | ports[1].fcid).to_bytes(4, "big")


def test_ft_query_scope(h):
    """GID_FT domain / area scope (FC-GS-8 5.2.5): a foreign domain matches nothing; the
    area narrows to one link's IDs."""
    a = h.port(1, wwpn(1))
    a2 = h.port(1, wwpn(3))
    b = h.port(2, wwpn(2))
    for p in (a, a2, b):
        p.register_fcp()
    area = (a.fcid >> 8) & 0xFF
    got = a.ns_ok(C.GID_FT, ft(FCP, domain=1, area=area)).port_ids
    assert sorted(got) == sorted([a.fcid, a2.fcid])
    assert a.ns_reject(C.GID_FT, ft(FCP, domain=7)) == FC4_TYPES


def test_ga_nxt_walks_the_database(h):
    """GA_NXT (FC-GS-8 5.2.5): the whole object of the next registered port above the
    given ID, wrapping; the 620-byte accept layout."""
    a = h.port(1, wwpn(1))
    b = h.port(2, wwpn(2))
    b.register_fcp()
    b.ns_ok(C.RSPN_ID, ns.RspnIdRequest(b.fcid, b"bee"))
    b.ns_ok(C.RSNN_NN, ns.RsnnNnRequest(b.wwnn, b"bee node"))
    r = a.ct(C.GA_NXT, ns.GaNxtRequest(a.fcid))
    assert len(r.body) == ns.GA_NXT_ACCEPT_LEN
    obj = r.accept()
    assert (obj.port_id, obj.port_name, obj.node_name) == (b.fcid, b.wwpn, b.wwnn)
    assert obj.port_type == ns.PortType.N_PORT
    assert obj.symbolic_port_name == b"bee" and obj.symbolic_node_name == b"bee node"
    assert obj.fc4_types == {FCP}
    assert obj.class_of_service & ns.ClassOfService.CLASS_3
    # from 0: the lowest ID; after the highest: wraps to the lowest
    assert a.ns_ok(C.GA_NXT, ns.GaNxtRequest(0)).port_id == min(a.fcid, b.fcid)
    assert a.ns_ok(C.GA_NXT, ns.GaNxtRequest(max(a.fcid, b.fcid))).port_id == min(
        a.fcid, b.fcid)


def test_da_id_deregisters(h, two):
    """DA_ID (FC-GS-8 5.2.5): the port's objects go; queries about it are rejected 09/01
    and it leaves GID_FT; it stays logged in and may register again."""
    a, b = two
    a.register_fcp()
    b.register_fcp()
    r = a.ct(C.DA_ID, ns.DaIdRequest(a.fcid))
    assert r.accepted and r.body == b""
    assert b.ns_reject(C.GPN_ID, ns.GpnIdRequest(a.fcid)) == PORT_ID
    assert b.ns_reject(C.GID_PN, ns.GidPnRequest(a.wwpn)) == PORT_NAME
    assert list(b.ns_ok(C.GID_FT, ft()).port_ids) == [b.fcid]
    assert h.fabric.port(a.wwpn) is not None  # still logged in
    a.register_fcp()
    assert sorted(b.ns_ok(C.GID_FT, ft()).port_ids) == sorted([a.fcid, b.fcid])


# ============================================================================ rejects


@pytest.mark.parametrize(("cmd", "request_for"), [
    (C.GPN_ID, lambda f: ns.GpnIdRequest(f)),
    (C.GNN_ID, lambda f: ns.GnnIdRequest(f)),
    (C.GFT_ID, lambda f: ns.GftIdRequest(f)),
    (C.GSPN_ID, lambda f: ns.GspnIdRequest(f)),
    (C.GFF_ID, lambda f: ns.GffIdRequest(f)),
], ids=lambda v: getattr(v, "name", ""))
def test_query_of_unknown_port_id(h, two, cmd, request_for):
    """docs/behaviour.md 2 / FC-GS-8 5.2.4: a query about an N_Port_ID nobody has gets CT reject
    0x09 'unable to perform', explanation 0x01 'port ID not registered'."""
    a, _b = two
    assert a.ns_reject(cmd, request_for(UNUSED_FCID)) == PORT_ID


def test_query_of_unknown_port_name(h, two):
    """GID_PN for a WWPN nobody logged in with: 0x09/0x02 (port name not registered)."""
    a, _b = two
    assert a.ns_reject(C.GID_PN, ns.GidPnRequest(wwpn(77))) == PORT_NAME


@pytest.mark.parametrize("cmd", [C.GID_FT, C.GPN_FT, C.GNN_FT], ids=lambda c: c.name)
def test_query_of_unregistered_fc4_type(h, two, cmd):
    """GID_FT / GPN_FT / GNN_FT for an FC-4 type nobody registered: 0x09/0x07, not an
    empty accept (docs/behaviour.md 2)."""
    a, b = two
    a.register_fcp()
    b.register_fcp()
    assert a.ns_reject(cmd, ft(NVME)) == FC4_TYPES


def test_rejects_for_objects_not_registered(h, two):
    """FC-GS-8 5.2.4 explanations for a known port whose object is missing: FC-4 types
    (07), symbolic port name (08), FC-4 features (0F); an unknown node name (03) and a
    node without symbolic name (09); a port type nobody has (0A)."""
    a, b = two
    assert a.ns_reject(C.GFT_ID, ns.GftIdRequest(b.fcid)) == FC4_TYPES
    assert a.ns_reject(C.GSPN_ID, ns.GspnIdRequest(b.fcid)) == SYM_PORT
    assert a.ns_reject(C.GFF_ID, ns.GffIdRequest(b.fcid)) == FC4_FEATURES
    assert a.ns_reject(C.GSNN_NN, ns.GsnnNnRequest(wwnn(77))) == NODE_NAME
    assert a.ns_reject(C.GSNN_NN, ns.GsnnNnRequest(b.wwnn)) == SYM_NODE
    assert a.ns_reject(C.GID_PT, ns.GidPtRequest(ns.PortType.F_PORT)) == PORT_TYPE


@pytest.mark.parametrize("code", [C.GID_A, C.GCS_ID, C.GPT_ID, C.RPN_ID, C.RCS_ID, C.GID_NN,
                                  0x0999], ids=lambda c: getattr(c, "name", hex(c)))
def test_unsupported_command_code(h, two, code):
    """docs/behaviour.md 2: name-server codes other than the listed ones get CT reject 0x0B."""
    a, _b = two
    assert a.ns_reject(code, a.fcid.to_bytes(4, "big") + bytes(12)) == NOT_SUPPORTED


def test_ct_to_other_services(h, two):
    """docs/behaviour.md 2 / FC-GS-8: the management server (FFFFFA) answers CT 'not
    supported' after PLOGI; a directory request with a subtype other than the name
    server's is rejected (invalid command code)."""
    a, _b = two
    assert a.plogi(MANAGEMENT).els_reply(ElsCommand.PLOGI)
    assert a.ct(0x0100, bytes(4), d_id=MANAGEMENT, gs_type=0xFA,
                gs_subtype=0x03).reject == NOT_SUPPORTED
    assert a.ct(C.GID_FT, ft(), gs_subtype=0x03).reject == (
        CtRejectReason.INVALID_COMMAND_CODE, 0)


@pytest.mark.parametrize(("cmd", "make"), [
    (C.RNN_ID, lambda f: ns.RnnIdRequest(f, wwnn(50))),
    (C.RSPN_ID, lambda f: ns.RspnIdRequest(f, b"not mine")),
    (C.RFT_ID, lambda f: ns.RftIdRequest(f, ns.Fc4Types({FCP}))),
    (C.RFF_ID, lambda f: ns.RffIdRequest(f, FCP, 1)),
    (C.DA_ID, lambda f: ns.DaIdRequest(f)),
], ids=lambda v: getattr(v, "name", ""))
def test_registering_for_another_ports_id_is_denied(h, two, cmd, make):
    """docs/behaviour.md 2: a port may register or deregister objects only for its own N_Port_IDs;
    for another link's port, or an ID nobody holds: CT reject 0x09/0x10 (access denied),
    and the other port's record is unchanged."""
    a, b = two
    b.register_fcp(ns.FcpFeatures.TARGET)
    before = h.fabric.port(b.wwpn)
    snapshot = (before.wwnn, before.symbolic_port_name, before.fc4_types,
                dict(before.fc4_features), before.in_name_server)
    assert a.ns_reject(cmd, make(b.fcid)) == ACCESS_DENIED
    assert a.ns_reject(cmd, make(UNUSED_FCID)) == ACCESS_DENIED
    after = h.fabric.port(b.wwpn)
    assert (after.wwnn, after.symbolic_port_name, after.fc4_types, dict(after.fc4_features),
            after.in_name_server) == snapshot


def test_rsnn_nn_for_another_node_is_denied(h, two):
    """docs/behaviour.md 2: RSNN_NN for a node name none of the requester's ports has: 0x09/0x10."""
    a, b = two
    assert a.ns_reject(C.RSNN_NN, ns.RsnnNnRequest(b.wwnn, b"mine now")) == ACCESS_DENIED
    assert b.wwnn not in h.fabric.db.symbolic_node_names


def test_npiv_host_registers_for_its_own_ids(h):
    """docs/behaviour.md 2 'its own N_Port_IDs': an NPIV host's N_Port_IDs all share its link, so
    the FLOGI port may register objects for one of its vports."""
    base = h.port(1, wwpn(1))
    vport = h.port(1, wwpn(2))
    assert base.ct(C.RFT_ID, ns.RftIdRequest(vport.fcid, ns.Fc4Types({FCP}))).accepted
    assert h.fabric.port(vport.wwpn).fc4_types == {FCP}


def test_malformed_request_payload(h, two):
    """FC-GS-8 4.3.2.8: a request too short for its payload gets a CT reject (protocol
    error, or invalid IU size when empty), never an exception."""
    a, _b = two
    assert a.ns_reject(C.RFT_ID, a.fcid.to_bytes(4, "big") + bytes(4))[0] == \
        CtRejectReason.PROTOCOL_ERROR
    assert a.ns_reject(C.GPN_ID, b"")[0] == CtRejectReason.INVALID_CT_IU_SIZE


# ======================================================= session: PLOGI FFFFFC required


def test_ct_before_plogi_gets_logo(h):
    """docs/behaviour.md 2 (name server reached after PLOGI to FFFFFC), FC-LS-3: a CT_IU from a port
    without a name-server login is answered with a LOGO from FFFFFC, not a CT response."""
    a = h.port(1, wwpn(1), ns_login=False)
    out = a.ct_frames(C.GID_FT, ft())
    assert len(out) == 1
    s = out[0]
    assert s.link == 1 and s.is_els_request
    assert s.header.s_id == DIRECTORY and s.header.d_id == a.fcid
    logo = s.els_request()
    assert isinstance(logo, Logo) and logo.port_id == DIRECTORY
    assert h.fabric.links[1].counters["ct_without_plogi"] == 1
    # after PLOGI it works; after LOGO to FFFFFC it is refused again
    a.plogi()
    assert a.ct(C.GPN_ID, ns.GpnIdRequest(a.fcid)).accepted
    assert a.logo(DIRECTORY).els_reply(ElsCommand.LOGO)
    assert a.ct_frames(C.GPN_ID, ns.GpnIdRequest(a.fcid).encode())[0].is_els_request


def test_plogi_to_name_server_accept(h):
    """FC-LS-3 PLOGI LS_ACC from FFFFFC: class 3 valid, a name derived from the fabric's."""
    a = h.port(1, wwpn(1), ns_login=False)
    acc = a.plogi().els_reply(ElsCommand.PLOGI)
    assert acc.command == ElsCommand.LS_ACC and acc.class3.valid
    assert acc.node_name == h.fabric.fabric_name
    assert h.fabric.port(a.wwpn).ns_session


# ===================================================================== records vanish


@pytest.mark.parametrize("how", ["logo", "da_id", "link_down", "vport_logo", "base_logo"])
def test_records_vanish(h, how):
    """docs/behaviour.md 2: a port's name-server record vanishes at LOGO, DA_ID and link loss
    (for a vport, and for every vport when its FLOGI port logs out)."""
    watcher = h.port(9, wwpn(99))
    base = h.port(1, wwpn(1))
    vport = h.port(1, wwpn(2))
    for p in (watcher, base, vport):
        p.register_fcp()
    gone = {"logo": [base, vport], "base_logo": [base, vport], "link_down": [base, vport],
            "da_id": [vport], "vport_logo": [vport]}[how]
    if how in ("logo", "base_logo"):
        base.logo()
    elif how == "vport_logo":
        vport.logo()
    elif how == "da_id":
        vport.ns_ok(C.DA_ID, ns.DaIdRequest(vport.fcid))
    else:
        h.link_down(1)
    for p in gone:
        assert watcher.ns_reject(C.GPN_ID, ns.GpnIdRequest(p.fcid)) == PORT_ID
        assert watcher.ns_reject(C.GID_PN, ns.GidPnRequest(p.wwpn)) == PORT_NAME
        assert watcher.ns_reject(C.GFT_ID, ns.GftIdRequest(p.fcid)) == PORT_ID
    remaining = {watcher.fcid, base.fcid, vport.fcid} - {p.fcid for p in gone}
    assert set(watcher.ns_ok(C.GID_FT, ft()).port_ids) == remaining
    assert set(watcher.ns_ok(C.GID_PT, ns.GidPtRequest(ns.PortType.NX_PORT)).port_ids) == \
        remaining - ({vport.fcid} if how == "da_id" else set())


# ============================================================================== zoning


ZONED = f"""
[fabric]
rscn_coalesce_ms = 10
{zones_toml({"ab": [wwpn(1), wwpn(2)], "cd": [wwpn(3), wwpn(4)]})}
"""


def test_query_results_contain_only_zoned_ports():
    """docs/behaviour.md 2 / FC-GS-8 zoning: query results only contain ports zoned with the
    requester; ports outside its zones are 'not registered' as far as it can tell."""
    h = FabricHarness(ZONED)
    a, b, c, d = (h.port(n, wwpn(n)) for n in (1, 2, 3, 4))
    for p in (a, b, c, d):
        p.register_fcp()
        p.ns_ok(C.RSNN_NN, ns.RsnnNnRequest(p.wwnn, b"node"))
    for cmd in (C.GID_FT, C.GPN_FT, C.GNN_FT):
        got = a.ns_ok(cmd, ft())
        ids = got.port_ids if cmd == C.GID_FT else [e.port_id for e in got.entries]
        assert set(ids) <= {a.fcid, b.fcid} and b.fcid in ids
    assert set(a.ns_ok(C.GID_PT, ns.GidPtRequest(ns.PortType.NX_PORT)).port_ids) <= {
        a.fcid, b.fcid}
    assert a.ns_ok(C.GPN_ID, ns.GpnIdRequest(b.fcid)).port_name == b.wwpn
    assert a.ns_reject(C.GPN_ID, ns.GpnIdRequest(c.fcid)) == PORT_ID
    assert a.ns_reject(C.GNN_ID, ns.GnnIdRequest(d.fcid)) == PORT_ID
    assert a.ns_reject(C.GFT_ID, ns.GftIdRequest(c.fcid)) == PORT_ID
    assert a.ns_reject(C.GID_PN, ns.GidPnRequest(c.wwpn)) == PORT_NAME
    assert a.ns_reject(C.GSNN_NN, ns.GsnnNnRequest(c.wwnn)) == NODE_NAME
    # GA_NXT walks past invisible ports
    seen = set()
    f = 0
    for _ in range(4):
        f = a.ns_ok(C.GA_NXT, ns.GaNxtRequest(f)).port_id
        seen.add(f)
    assert seen == {a.fcid, b.fcid}
    # c's view is the mirror image
    assert set(c.ns_ok(C.GID_FT, ft()).port_ids) <= {c.fcid, d.fcid}


def test_port_in_no_zone_sees_nobody():
    """docs/behaviour.md 2: once a zone exists, a port in no zone sees nobody (maybe itself)."""
    h = FabricHarness(ZONED)
    a = h.port(1, wwpn(1))
    e = h.port(5, wwpn(5))
    a.register_fcp()
    e.register_fcp()
    assert set(e.ns_ok(C.GID_FT, ft()).port_ids) <= {e.fcid}
    assert e.ns_reject(C.GPN_ID, ns.GpnIdRequest(a.fcid)) == PORT_ID


def test_default_zone_deny():
    """docs/behaviour.md 2: no zone and default_zone = "deny": nobody sees anybody."""
    h = FabricHarness('[fabric]\ndefault_zone = "deny"\n')
    a, b = h.port(1, wwpn(1)), h.port(2, wwpn(2))
    a.register_fcp()
    b.register_fcp()
    assert set(a.ns_ok(C.GID_FT, ft()).port_ids) == {a.fcid}
    assert a.ns_reject(C.GID_PN, ns.GidPnRequest(b.wwpn)) == PORT_NAME
    b.ns_ok(C.DA_ID, ns.DaIdRequest(b.fcid))
    assert b.ns_reject(C.GID_FT, ft()) == FC4_TYPES


# ======================================================== long answers and max/residual


def _many_fcp_ports(n: int, receive_size: int = 2112) -> tuple[FabricHarness, Port]:
    h = FabricHarness("[fabric]\nmax_npiv_per_link = 1000\nrscn_coalesce_ms = 0\n")
    h.link_up(1)
    if receive_size != 2112:
        reply = h.flogi(1, wwpn(1), receive_data_field_size=receive_size)
        base = Port(h, 1, reply.header.d_id, wwpn(1), wwnn(1))
        base.plogi()
    else:
        base = h.port(1, wwpn(1))
    base.register_fcp()
    for i in range(2, n + 1):
        v = h.port(1, wwpn(i), ns_login=False)
        # an NPIV host registers for its vports (docs/behaviour.md 2: its own IDs)
        base.ns_ok(C.RFT_ID, ns.RftIdRequest(v.fcid, ns.Fc4Types({FCP})))
    return h, base


def test_long_gpn_ft_is_a_multi_frame_sequence():
    """FC-FS-4 9 (sequences), FC-GS-8 4.3: a 300-port GPN_FT accept (16 + 300 x 16 bytes)
    does not fit one frame: one sequence with SEQ_CNT counting up, SOFi3 then SOFn3, EOFn
    then EOFt, END_SEQUENCE (and sequence initiative) only on the last frame, relative
    offsets in PARAMETER; reassembled it is a correct accept listing all 300 ports."""
    h, base = _many_fcp_ports(300)
    frames = base.ct_frames(C.GPN_FT, ft())
    assert len(frames) == 3
    total = 16 + 300 * 16
    assert [len(s.payload) for s in frames] == [2048, 2048, total - 4096]
    first = frames[0].header
    for i, s in enumerate(frames):
        hd = s.header
        last = i == len(frames) - 1
        assert s.link == 1 and hd.d_id == base.fcid and hd.s_id == DIRECTORY
        assert hd.r_ctl == RCtl.SOLICITED_CONTROL and hd.type == FcType.CT
        assert hd.seq_cnt == i
        assert (hd.ox_id, hd.rx_id, hd.seq_id) == (first.ox_id, first.rx_id, first.seq_id)
        assert s.frame.sof == (SOF.SOFi3 if i == 0 else SOF.SOFn3)
        assert s.frame.eof == (EOF.EOFt if last else EOF.EOFn)
        assert bool(hd.f_ctl & FCtl.END_SEQUENCE) == last
        assert bool(hd.f_ctl & FCtl.SEQUENCE_INITIATIVE) == last
        assert hd.f_ctl & FCtl.EXCHANGE_CONTEXT
        assert hd.f_ctl & FCtl.RELATIVE_OFFSET and hd.parameter == i * 2048
        assert len(s.payload) <= 2112
    iu = decode_ct(reassemble(frames))
    assert iu.preamble.command == 0x8002 and iu.preamble.max_residual_size == 0
    acc = ns.GpnFtAccept.decode(iu.body)
    assert len(acc.entries) == 300
    expected = sorted((r.fcid, r.wwpn) for r in h.fabric.db)
    assert [(e.port_id, e.port_name) for e in acc.entries] == expected
    assert entries_ctl(bytes(iu.body), 16) == [0] * 299 + [0x80]


def test_sequence_respects_the_ports_receive_size():
    """FC-FS-4 / FC-LS-3: no frame carries more than the receive data field size the
    N_Port gave at FLOGI (here 512)."""
    h, base = _many_fcp_ports(40, receive_size=512)
    frames = base.ct_frames(C.GID_FT, ft())
    body = reassemble(frames)
    assert all(len(s.payload) <= 512 for s in frames) and len(frames) == 1
    frames = base.ct_frames(C.GPN_FT, ft())
    assert len(frames) == -(-(16 + 40 * 16) // 512)
    assert all(len(s.payload) <= 512 for s in frames)
    assert len(ns.GpnFtAccept.decode(decode_ct(reassemble(frames)).body).entries) == 40
    assert body


def test_max_size_truncates_with_residual(h):
    """FC-GS-8 4.3.2.5: the request's maximum/residual size (words) limits the accept;
    the answer is cut there and the residual says how many words were left out."""
    ports = [h.port(n, wwpn(n)) for n in range(1, 6)]
    for p in ports:
        p.register_fcp()
    q = ports[0]
    r = q.ct(C.GID_FT, ft(), max_size=2)
    assert r.accepted
    assert len(r.body) == 8
    assert r.iu.preamble.max_residual_size == 3
    ids = sorted(p.fcid for p in ports)
    assert r.body == b"".join(f.to_bytes(4, "big") for f in ids[:2])  # no 0x80: cut short
    r = q.ct(C.GPN_FT, ft(), max_size=5)  # 20 bytes: one entry and a piece
    assert len(r.body) == 20 and r.iu.preamble.max_residual_size == (80 - 20) // 4
    # a limit the answer fits in changes nothing
    r = q.ct(C.GID_FT, ft(), max_size=100)
    assert len(r.body) == 20 and r.iu.preamble.max_residual_size == 0
    assert entries_ctl(r.body, 4)[-1] == 0x80
