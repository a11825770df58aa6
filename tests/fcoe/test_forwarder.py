"""The FCoE Forwarder against a real fabric core, fed frames Linux's libfcoe wrote
(linux_frames.py) and frames a scripted ENode builds (FC-BB-6 clause 7)."""

from __future__ import annotations

import pytest

from fcsoft.wire.els import ElsCommand, LsRjt, Rscn, ScrFunction, Scr
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.encap import EOF, SOF, encode_frame
from fcsoft.wire.fcoe import ALL_ENODE_MACS, encode_fcoe, fpma, parse_ethernet
from fcsoft.wire.fip import (
    ControlSub,
    DescriptorType,
    DiscoverySub,
    Encapsulated,
    Fabric,
    FipFlags,
    FipOp,
    FkaAdvPeriod,
    LinkServiceSub,
    MacAddress,
    NameIdentifier,
    Priority,
    Vlan,
    VlanSub,
    VxPortId,
)
from fcsoft.wire.header import F_CTL_REQUEST, FcType, RCtl, decode_header, make_header
from fcsoft.wire.wwn import WWN
from tests.fcoe import linux_frames as linux
from tests.fcoe.enode import FC_MAP, ScriptedEnode
from tests.fcoe.harness import FcfHarness, fcoe_of, fip_of

STAND_IN_FCF = bytes.fromhex("0efc00aabbcc")  # the MAC Linux's captured frames are sent to
GUEST_WWPN = WWN("20:00:52:54:00:12:34:56")


def linux_harness(**kw) -> FcfHarness:
    return FcfHarness(mac=STAND_IN_FCF, **kw)


def els_reply(fip) -> tuple[int, bytes, bytes | None]:
    """(ELS command byte of the reply, encapsulated frame, granted MAC or None)."""
    enc = fip.descriptors[0]
    assert isinstance(enc, Encapsulated)
    mac = fip.find(MacAddress)
    return enc.frame[24], enc.frame, mac.mac if mac else None


def login_linux(h: FcfHarness) -> int:
    """The captured solicitation and FIP FLOGI; returns the N_Port_ID granted."""
    h.rx(linux.SOLICITATION)
    (seg, frame), = h.rx(linux.FIP_FLOGI)
    cmd, enc, mac = els_reply(fip_of(frame))
    assert cmd == ElsCommand.LS_ACC
    fcid = decode_header(enc).d_id
    assert mac == fpma(FC_MAP, fcid)
    return fcid


def test_solicitation_gets_a_unicast_solicited_advertisement_padded_to_max_fcoe_size():
    h = linux_harness()
    sent = h.rx(linux.SOLICITATION)
    assert len(sent) == 1
    seg, frame = sent[0]
    eth = parse_ethernet(frame)
    assert seg == 1 and eth.dst == linux.GUEST_MAC and eth.src == STAND_IN_FCF
    # FC-BB-6 7.8.4: padded to the Max FCoE Size the ENode gave (1498)
    assert len(frame) - eth.offset == 1498
    adv = fip_of(frame)
    assert (adv.op, adv.subcode) == (FipOp.DISCOVERY, DiscoverySub.ADVERTISEMENT)
    # libfcoe selects an FCF only once a solicited (S) and available (A) advertisement came
    assert adv.flags == FipFlags.FP | FipFlags.A | FipFlags.S | FipFlags.F
    assert [type(d) for d in adv.descriptors] == [Priority, MacAddress, NameIdentifier, Fabric,
                                                  FkaAdvPeriod]
    assert adv.find(MacAddress).mac == STAND_IN_FCF
    fab = adv.find(Fabric)
    assert fab.fc_map == FC_MAP and fab.fabric_name == WWN("10:00:00:05:1e:00:00:01")
    assert adv.find(FkaAdvPeriod).period_ms == 8000
    assert h.fcf.enodes[linux.GUEST_MAC].max_fcoe_size == 1498


def test_linux_fip_flogi_is_a_fabric_login_answered_with_the_fpma_mac():
    h = linux_harness()
    fcid = login_linux(h)
    rec = h.fabric.port(GUEST_WWPN)
    assert rec is not None and rec.fcid == fcid
    assert rec.wwnn == WWN("10:00:52:54:00:12:34:56")
    # the fabric honours the receive size Linux derived from its 1500-byte MTU
    assert h.fabric.links[rec.link_id].receive_size == 1452


def test_fip_flogi_reply_echoes_the_exchange_and_carries_the_flogi_accept():
    h = linux_harness()
    h.rx(linux.SOLICITATION)
    (_, frame), = h.rx(linux.FIP_FLOGI)
    fip = fip_of(frame)
    assert (fip.op, fip.subcode) == (FipOp.LINK_SERVICE, LinkServiceSub.REPLY)
    # libfcoe: the ELS descriptor first, then the MAC descriptor
    assert fip.descriptors[0].kind == DescriptorType.FLOGI
    assert isinstance(fip.descriptors[1], MacAddress)
    cmd, enc, _ = els_reply(fip)
    hdr = decode_header(enc)
    assert hdr.r_ctl == RCtl.ELS_REPLY and hdr.s_id == 0xFFFFFE and hdr.ox_id == 0x0001
    sp = ServiceParameters.decode(enc[24:])
    assert sp.from_f_port


def test_fcoe_frames_from_the_vn_port_reach_the_name_server_and_answers_come_back():
    h = linux_harness()
    fcid = login_linux(h)
    # the captured PLOGI to FFFFFC was sent from 010101; rewrite its S_ID to ours
    plogi = fcoe_of(linux.FCOE_PLOGI)
    hdr = plogi.header._replace(s_id=fcid)
    frame = encode_fcoe(STAND_IN_FCF, fpma(FC_MAP, fcid), encode_frame(hdr, bytes(plogi.payload)))
    (seg, answer), = h.rx(frame)
    eth = parse_ethernet(answer)
    assert eth.dst == fpma(FC_MAP, fcid) and eth.src == STAND_IN_FCF
    acc = fcoe_of(answer)
    assert acc.header.r_ctl == RCtl.ELS_REPLY and acc.header.s_id == 0xFFFFFC
    assert acc.header.d_id == fcid and bytes(acc.payload[:1]) == b"\x02"
    assert h.fabric.db.by_fcid[fcid].ns_session


def test_fcoe_frame_from_a_mac_that_is_not_its_s_ids_fpma_is_dropped():
    h = linux_harness()
    fcid = login_linux(h)
    enode = ScriptedEnode(bytes.fromhex("525400aa0001"), fcf_mac=STAND_IN_FCF)
    # a frame claiming the guest's S_ID but sent from another FPMA
    hdr = dict(r_ctl=RCtl.ELS_REQUEST, d_id=0xFFFFFC, type=FcType.ELS, f_ctl=F_CTL_REQUEST)
    frame = enode.fcoe(fcid + 1, hdr, bytes(4))
    frame = frame[:6] + fpma(FC_MAP, fcid + 7) + frame[12:]
    assert h.rx(frame) == []
    assert h.fcf.counters["drop_unknown_source_mac"] == 1
    # the right MAC with another port's S_ID
    frame = encode_fcoe(STAND_IN_FCF, fpma(FC_MAP, fcid), encode_frame(
        make_header(s_id=fcid + 1, **hdr), ServiceParameters.plogi(1, 2).encode()))
    assert h.rx(frame) == []
    assert h.fcf.counters["drop_s_id_not_mac"] == 1


@pytest.mark.parametrize("damage", ["crc", "sof", "eof", "version", "short", "long"])
def test_damaged_fcoe_frames_are_dropped_and_counted(damage):
    h = linux_harness()
    fcid = login_linux(h)
    plogi = fcoe_of(linux.FCOE_PLOGI)
    raw = encode_frame(plogi.header._replace(s_id=fcid), bytes(plogi.payload))
    frame = bytearray(encode_fcoe(STAND_IN_FCF, fpma(FC_MAP, fcid), raw))
    if damage == "crc":
        frame[-8] ^= 1
    elif damage == "sof":
        frame[27] = 0x11
    elif damage == "eof":
        frame[-4] = 0x99
    elif damage == "version":
        frame[14] = 0x10
    elif damage == "short":
        frame = frame[:14 + 40]
    else:
        frame = frame[:-8] + bytes(2200) + frame[-8:]
    assert h.rx(bytes(frame)) == []
    assert h.fcf.counters["drop_bad_fcoe_frame"] == 1
    assert h.fabric.db.by_fcid[fcid].ns_session is False  # nothing reached the fabric


def test_fdisc_through_fip_adds_an_npiv_vn_port_with_its_own_mac():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    h.rx(e.solicitation())
    (_, f1), = h.rx(e.flogi())
    base = decode_header(els_reply(fip_of(f1))[1]).d_id
    vport = WWN("c0:50:76:00:00:00:00:01")
    (_, f2), = h.rx(e.fdisc(vport))
    fip = fip_of(f2)
    cmd, enc, mac = els_reply(fip)
    assert fip.descriptors[0].kind == DescriptorType.FDISC and cmd == ElsCommand.LS_ACC
    fcid = decode_header(enc).d_id
    assert fcid != base and mac == fpma(FC_MAP, fcid)
    assert h.fabric.port(vport).fcid == fcid
    assert h.fabric.port(vport).link_id == h.fabric.port(e.wwpn).link_id


def test_fip_logo_logs_the_vn_port_out_and_forgets_its_mac():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    h.rx(e.solicitation())
    h.rx(e.flogi())
    vport = WWN("c0:50:76:00:00:00:00:01")
    (_, f2), = h.rx(e.fdisc(vport))
    fcid = decode_header(els_reply(fip_of(f2))[1]).d_id
    (_, f3), = h.rx(e.logo(fcid, vport))
    fip = fip_of(f3)
    assert fip.descriptors[0].kind == DescriptorType.LOGO
    assert els_reply(fip)[0] == ElsCommand.LS_ACC
    assert h.fabric.port(vport) is None and h.fabric.port(e.wwpn) is not None
    assert fpma(FC_MAP, fcid) not in h.fcf._by_vn_mac


def test_fdisc_before_flogi_is_rejected_with_login_required():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    h.rx(e.solicitation())
    (_, f), = h.rx(e.fdisc(WWN("c0:50:76:00:00:00:00:01")))
    cmd, enc, mac = els_reply(fip_of(f))
    assert cmd == ElsCommand.LS_RJT and mac is None
    assert LsRjt.decode(enc[24:]).explanation == 0x1E


def test_duplicate_wwpn_flogi_is_rejected_through_fip():
    h = FcfHarness()
    a = ScriptedEnode(bytes.fromhex("525400aa0001"))
    b = ScriptedEnode(bytes.fromhex("525400aa0002"))
    h.rx(a.solicitation())
    h.rx(a.flogi())
    h.rx(b.solicitation())
    (_, f), = h.rx(b.flogi(wwpn=a.wwpn))
    cmd, enc, _ = els_reply(fip_of(f))
    assert cmd == ElsCommand.LS_RJT
    assert h.fabric.port(a.wwpn).link_id != None  # noqa: E711 - the first login stays


def test_periodic_multicast_advertisements():
    h = FcfHarness(fka_adv_period_ms=4000)
    sent = h.advance(8.5)
    adverts = [f for _s, f in sent if parse_ethernet(f).dst == ALL_ENODE_MACS]
    assert len(adverts) == 2
    adv = fip_of(adverts[0])
    assert adv.flags == FipFlags.FP | FipFlags.A | FipFlags.F  # unsolicited: no S
    assert adv.find(FkaAdvPeriod).period_ms == 4000


def test_enode_keep_alive_timeout_logs_out_with_rscn_and_clears_virtual_links():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    watcher = ScriptedEnode(bytes.fromhex("525400aa0002"))
    for en in (e, watcher):
        h.rx(en.solicitation())
        h.rx(en.flogi())
    wfcid = h.fabric.port(watcher.wwpn).fcid
    # the watcher registers for RSCNs (SCR) over FCoE
    hdr = dict(r_ctl=RCtl.ELS_REQUEST, d_id=0xFFFFFD, type=FcType.ELS, f_ctl=F_CTL_REQUEST,
               ox_id=9)
    h.rx(watcher.fcoe(wfcid, hdr, Scr(ScrFunction.FULL).encode()))
    efcid = h.fabric.port(e.wwpn).fcid
    # the watcher keeps sending keep-alives, e stops: 2.5 x 8 s later e is gone
    sent = []
    for _ in range(2):
        sent += h.advance(8)
        h.rx(watcher.keep_alive())
    assert h.fabric.port(e.wwpn) is not None  # 16 s: still within 2.5 x 8 s
    sent += h.advance(4.5)
    assert h.fabric.port(e.wwpn) is None
    assert h.fabric.port(watcher.wwpn) is not None
    cvls = [fip_of(f) for _s, f in sent if parse_ethernet(f).dst == e.mac]
    assert [(c.op, c.subcode) for c in cvls] == [(FipOp.CONTROL, ControlSub.CLEAR_VIRTUAL_LINKS)]
    assert [v.fcid for v in cvls[0].all(VxPortId)] == [efcid]
    assert cvls[0].find(NameIdentifier) is not None and cvls[0].find(MacAddress).mac == h.fcf.mac
    # and the watcher hears of it
    sent += h.advance(0.2)
    rscns = [fcoe_of(f) for _s, f in sent if parse_ethernet(f).dst == fpma(FC_MAP, wfcid)
             and parse_ethernet(f).ethertype == 0x8906]
    pages = [p.affected_id for r in rscns for p in Rscn.decode(r.payload).pages]
    assert efcid in pages


def test_keep_alives_keep_an_enode_logged_in():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    h.rx(e.solicitation())
    h.rx(e.flogi())
    for _ in range(10):
        h.advance(8)
        h.rx(e.keep_alive())
    assert h.fabric.port(e.wwpn) is not None


def test_keep_alive_from_an_unknown_enode_gets_clear_virtual_links():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    (_, f), = h.rx(e.keep_alive())
    cvl = fip_of(f)
    assert (cvl.op, cvl.subcode) == (FipOp.CONTROL, ControlSub.CLEAR_VIRTUAL_LINKS)
    assert list(cvl.all(VxPortId)) == []  # all of the ENode's VN_Ports


def test_fabric_logout_of_a_vn_port_becomes_clear_virtual_links():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    h.rx(e.solicitation())
    h.rx(e.flogi())
    vport = WWN("c0:50:76:00:00:00:00:01")
    h.rx(e.fdisc(vport))
    fcid = h.fabric.port(vport).fcid
    h.out.clear()
    assert h.fabric.logout_port(vport, h.now)
    (_, f), = h.out
    cvl = fip_of(f)
    assert cvl.subcode == ControlSub.CLEAR_VIRTUAL_LINKS
    assert [(v.fcid, v.wwpn, v.mac) for v in cvl.all(VxPortId)] == [
        (fcid, vport, fpma(FC_MAP, fcid))]
    assert h.fabric.port(e.wwpn) is not None


def test_an_enode_moves_to_another_segment_and_keeps_its_login():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    h.rx(e.solicitation())
    h.rx(e.flogi())
    fcid = h.fabric.port(e.wwpn).fcid
    h.fcf.segment_up(2, h.now)
    h.fcf.segment_down(1, h.now)
    h.rx(e.keep_alive(), segment=2)
    hdr = dict(r_ctl=RCtl.ELS_REQUEST, d_id=0xFFFFFC, type=FcType.ELS, f_ctl=F_CTL_REQUEST)
    sent = h.rx(e.fcoe(fcid, hdr, ServiceParameters.plogi(e.wwpn, e.wwnn).encode()),
                segment=2)
    assert [s for s, _f in sent] == [2]
    assert h.fabric.port(e.wwpn).fcid == fcid


def rarp(mac: bytes) -> bytes:
    """The RARP request QEMU broadcasts for a NIC after a migration (announce-self): a
    60-byte frame, ethertype 0x8035, from the NIC's MAC."""
    body = bytes.fromhex("0001080006040003") + mac + bytes(4) + mac + bytes(4)
    return b"\xff" * 6 + mac + b"\x80\x35" + body + bytes(60 - 14 - len(body))


def logged_in_enode(h: FcfHarness, mac: str = "525400aa0001",
                    vport: WWN | None = None) -> tuple[ScriptedEnode, int, int | None]:
    """An ENode logged in on segment 1 (and a vport): (enode, FLOGI fcid, vport fcid)."""
    e = ScriptedEnode(bytes.fromhex(mac))
    h.rx(e.solicitation())
    h.rx(e.flogi())
    vfcid = None
    if vport is not None:
        h.rx(e.fdisc(vport))
        vfcid = h.fabric.port(vport).fcid
    return e, h.fabric.port(e.wwpn).fcid, vfcid


def to_vn_port(h: FcfHarness, e: ScriptedEnode, fcid: int) -> list[tuple[int | None, bytes]]:
    """Have the fabric send the VN_Port something (an RSCN-like ELS from FFFFFD); what the
    forwarder puts on the wire for it."""
    h.out.clear()
    frame = encode_frame(make_header(RCtl.ELS_REQUEST, fcid, 0xFFFFFD, FcType.ELS), bytes(8))
    h.fcf.from_fabric(h.fcf.enodes[e.mac], frame)
    sent, h.out = h.out, []
    return sent


def test_rarp_after_a_migration_moves_the_enode_to_the_new_segment():
    h = FcfHarness()
    vport = WWN("c0:50:76:00:00:00:00:01")
    e, fcid, vfcid = logged_in_enode(h, vport=vport)
    heard = h.fcf.enodes[e.mac].last_heard
    h.fcf.segment_up(2, h.now)  # the destination QEMU connects
    assert [s for s, _f in to_vn_port(h, e, vfcid)] == [1]  # still the source's
    h.now += 1
    assert h.rx(rarp(e.mac), segment=2) == []  # not answered: only learned from
    assert h.fcf.enodes[e.mac].segment == 2
    assert h.fcf.enodes[e.mac].counters["enode_moves"] == 1
    assert h.fcf.enodes[e.mac].learned_from == "RARP"
    assert h.fcf.counters["ignored_ethertype"] == 1
    for port in (fcid, vfcid):
        sent = to_vn_port(h, e, port)
        assert [s for s, _f in sent] == [2]
        assert parse_ethernet(sent[0][1]).dst == fpma(FC_MAP, port)
    # learning is not a sign of life: the keep-alive timer was not refreshed
    assert h.fcf.enodes[e.mac].last_heard == heard
    # the logins are untouched: same N_Port_IDs, no detach, nothing sent to the ENode
    assert h.fabric.port(e.wwpn).fcid == fcid and h.fabric.port(vport).fcid == vfcid
    assert h.detached == []


def test_frames_from_a_vn_port_mac_of_any_kind_move_the_enode():
    h = FcfHarness()
    e, fcid, _ = logged_in_enode(h)
    h.fcf.segment_up(2, h.now)
    arp = b"\xff" * 6 + fpma(FC_MAP, fcid) + b"\x08\x06" + bytes(46)
    h.rx(arp, segment=2)
    assert h.fcf.enodes[e.mac].segment == 2
    assert h.fcf.enodes[e.mac].learned_from == "ARP"
    # and an FCoE frame from the VN_Port, back on segment 1
    hdr = dict(r_ctl=RCtl.ELS_REQUEST, d_id=0xFFFFFC, type=FcType.ELS, f_ctl=F_CTL_REQUEST)
    h.rx(e.fcoe(fcid, hdr, ServiceParameters.plogi(e.wwpn, e.wwnn).encode()), segment=1)
    assert h.fcf.enodes[e.mac].segment == 1
    assert h.fcf.enodes[e.mac].learned_from == "FCoE"


def test_a_damaged_fcoe_frame_moves_the_enode_but_is_no_sign_of_life():
    h = FcfHarness()
    e, fcid, _ = logged_in_enode(h)
    heard = h.fcf.enodes[e.mac].last_heard
    h.fcf.segment_up(2, h.now)
    h.now += 1
    hdr = dict(r_ctl=RCtl.ELS_REQUEST, d_id=0xFFFFFC, type=FcType.ELS, f_ctl=F_CTL_REQUEST)
    frame = bytearray(e.fcoe(fcid, hdr, ServiceParameters.plogi(e.wwpn, e.wwnn).encode()))
    frame[-8] ^= 1  # bad CRC
    assert h.rx(bytes(frame), segment=2) == []
    assert h.fcf.counters["drop_bad_fcoe_frame"] == 1
    assert h.fcf.enodes[e.mac].segment == 2
    assert h.fcf.enodes[e.mac].last_heard == heard


def test_frames_from_unknown_macs_teach_nothing():
    h = FcfHarness()
    e, _fcid, _ = logged_in_enode(h)
    h.fcf.segment_up(2, h.now)
    h.rx(rarp(bytes.fromhex("525400aa0009")), segment=2)
    assert h.fcf.enodes[e.mac].segment == 1
    assert bytes.fromhex("525400aa0009") not in h.fcf.enodes


def test_an_enode_heard_alternately_on_two_segments_follows_each_frame():
    h = FcfHarness()
    e, fcid, _ = logged_in_enode(h)
    h.fcf.segment_up(2, h.now)
    for seg in (2, 1, 2):
        h.rx(e.keep_alive(), segment=seg)
        assert [s for s, _f in to_vn_port(h, e, fcid)] == [seg]
        assert h.fcf.enodes[e.mac].learned_from == "FIP"
    assert h.fcf.enodes[e.mac].counters["enode_moves"] == 3
    assert h.fcf.counters["clear_virtual_links"] == 0


def test_the_old_segment_closing_after_the_move_logs_nothing_out():
    h = FcfHarness()
    vport = WWN("c0:50:76:00:00:00:00:01")
    e, fcid, vfcid = logged_in_enode(h, vport=vport)
    h.fcf.segment_up(2, h.now)
    h.rx(rarp(e.mac), segment=2)
    h.out.clear()
    h.fcf.segment_down(1, h.now)  # the source QEMU is killed
    assert h.out == [] and h.detached == []
    assert h.fcf.enodes[e.mac].segment == 2
    assert h.fabric.port(e.wwpn).fcid == fcid and h.fabric.port(vport).fcid == vfcid
    # keep-alives on the new segment keep it all logged in, with no Clear Virtual Links
    sent = []
    for _ in range(10):
        sent += h.advance(8)
        sent += h.rx(e.keep_alive(), segment=2)
        sent += h.rx(e.keep_alive(((vfcid, vport),)), segment=2)
    assert h.fabric.port(vport).fcid == vfcid
    assert not [f for _s, f in sent if parse_ethernet(f).ethertype == 0x8914
                and fip_of(f).subcode == ControlSub.CLEAR_VIRTUAL_LINKS
                and fip_of(f).op == FipOp.CONTROL]
    assert {s for s, f in sent if parse_ethernet(f).dst == e.mac} <= {2}


def test_an_enode_whose_segment_closed_is_flooded_to_until_heard_again():
    h = FcfHarness()
    e, fcid, _ = logged_in_enode(h)
    h.fcf.segment_up(2, h.now)
    h.fcf.segment_down(1, h.now)  # closed before the ENode spoke on segment 2
    assert h.fabric.port(e.wwpn).fcid == fcid  # still logged in
    sent = to_vn_port(h, e, fcid)
    assert [s for s, _f in sent] == [None]  # every segment
    assert h.fcf.enodes[e.mac].counters["tx_flooded"] == 1
    h.rx(rarp(e.mac), segment=2)
    assert [s for s, _f in to_vn_port(h, e, fcid)] == [2]
    assert h.fcf.enodes[e.mac].counters["enode_moves"] == 1


def test_an_enode_whose_segment_closed_and_stays_silent_is_logged_out():
    h = FcfHarness()
    e, _fcid, _ = logged_in_enode(h)
    h.fcf.segment_down(1, h.now)
    h.advance(16)
    assert h.fabric.port(e.wwpn) is not None
    h.advance(4.5)  # 2.5 x 8 s after it was last heard
    assert h.fabric.port(e.wwpn) is None
    assert e.mac not in h.fcf.enodes


def test_learning_from_other_frames_does_not_keep_an_enode_alive():
    h = FcfHarness()
    e, _fcid, _ = logged_in_enode(h)
    for _ in range(3):
        h.advance(8)
        h.rx(rarp(e.mac))
    assert h.fabric.port(e.wwpn) is None  # only FIP and FCoE are signs of life


def test_vlan_request_is_answered_with_the_configured_vlan():
    h = FcfHarness(vlan=100)
    e = ScriptedEnode(bytes.fromhex("525400aa0001"))
    (_, f), = h.rx(e.vlan_request())
    note = fip_of(f)
    assert (note.op, note.subcode) == (FipOp.VLAN, VlanSub.NOTIFICATION)
    assert note.find(Vlan).vlan == 100 and note.find(MacAddress).mac == h.fcf.mac
    # without a VLAN: a notification naming none (FCoE runs untagged)
    h = FcfHarness()
    (_, f), = h.rx(e.vlan_request())
    assert fip_of(f).find(Vlan) is None


def test_non_fip_flogi_is_not_answered_and_is_counted():
    h = linux_harness()
    assert h.rx(linux.NON_FIP_FLOGI) == []
    assert h.fcf.counters["drop_non_fip_flogi"] == 1


def test_other_ethertypes_and_foreign_fip_are_ignored():
    h = FcfHarness()
    arp = bytes(6) + bytes.fromhex("525400aa0001") + b"\x08\x06" + bytes(28)
    assert h.rx(arp) == []
    assert h.fcf.counters["ignored_ethertype"] == 1
    e = ScriptedEnode(bytes.fromhex("525400aa0001"), fcf_mac=bytes.fromhex("0efc00010203"))
    assert h.rx(e.flogi()) == []  # FIP to another FCF's MAC
    assert h.fabric.port(e.wwpn) is None


@pytest.mark.parametrize("cut", [10, 14, 20, 30, 60])
def test_truncated_fip_frames_are_dropped(cut):
    h = linux_harness()
    assert h.rx(linux.FIP_FLOGI[:cut]) == []
    assert h.fabric.port(GUEST_WWPN) is None


def test_larger_than_max_fcoe_size_is_not_sent():
    h = FcfHarness()
    e = ScriptedEnode(bytes.fromhex("525400aa0001"), max_fcoe_size=200)
    h.rx(e.solicitation())
    h.rx(e.flogi())
    fcid = h.fabric.port(e.wwpn).fcid
    enode = h.fcf.enodes[e.mac]
    big = encode_frame(make_header(RCtl.ELS_REQUEST, fcid, 0xFFFFFD, FcType.ELS), bytes(400))
    assert enode and h.fcf.from_fabric(enode, big) is False
    assert h.fcf.counters["drop_larger_than_max_fcoe_size"] == 1
