"""Routing between N_Ports and the discards of a class 3 fabric.

docs/behaviour.md 2 (frames routed by D_ID only between ports that share a zone; otherwise,
or to an unknown D_ID, discarded, logged and counted; a frame whose S_ID is not assigned on
its link is dropped) and section 6 (a full destination queue discards class 3 frames, never
blocking); section 1 (frames keep their bytes: the fabric forwards them unchanged);
FC-FS-4 clause 9 / RFC 3643.
"""

from __future__ import annotations

import pytest

from fcsoft.wire.bls import BaAcc
from fcsoft.wire.encap import EOF, SOF, encode_frame
from fcsoft.wire.header import F_CTL_REQUEST, FcType, RCtl, make_header

from .conftest import DIRECTORY, FabricHarness, wwpn, zones_toml

ZONED = f"""
[fabric]
{zones_toml({"ab": [wwpn(1), wwpn(2)], "c": [wwpn(3)]})}
"""


def _discards(h, link: int) -> tuple[dict[str, int], dict[str, int]]:
    """Non-zero discard counters: (fabric-wide, the link's)."""
    fab = {k: v for k, v in h.fabric.counters.items() if k.startswith("discard_") and v}
    lnk = {k: v for k, v in h.fabric.links[link].counters.items()
           if k.startswith("discard_") and v}
    return fab, lnk


def test_frames_are_forwarded_unchanged(h):
    """docs/wire.md-2: a frame between two zoned N_Ports goes to the destination's link
    byte for byte (header, payload, CRC, delimiters, encapsulation timestamp)."""
    a = h.port(1, wwpn(1))
    b = h.port(2, wwpn(2))
    raw, out = a.send(b.fcid, bytes(range(32)))
    assert [(s.link, s.raw) for s in out] == [(2, raw)]
    # any frame type and delimiter: FCP_DATA in the middle of a sequence, with fill bytes
    hdr = make_header(RCtl.SOLICITED_DATA, a.fcid, b.fcid, FcType.FCP, 0x880008,
                      ox_id=0x1234, rx_id=0x5678, seq_cnt=7, parameter=4096)
    raw2 = encode_frame(hdr, b"\xAA" * 1023, SOF.SOFn3, EOF.EOFn, timestamp=(12345, 678))
    out = h.deliver_raw(2, raw2)
    assert [(s.link, s.raw) for s in out] == [(1, raw2)]
    assert h.fabric.links[1].counters["routed"] == 1
    assert h.fabric.links[2].counters["routed"] == 1
    assert _discards(h, 1) == ({}, {})


def test_npiv_ports_route_like_any_other(h):
    """docs/behaviour.md 2: NPIV vports are N_Ports: frames from and to them are routed, also
    between two IDs of one link (back down the same link)."""
    base = h.port(1, wwpn(1))
    vport = h.port(1, wwpn(2))
    other = h.port(2, wwpn(3))
    raw, out = vport.send(other.fcid)
    assert [(s.link, s.raw) for s in out] == [(2, raw)]
    raw, out = other.send(vport.fcid)
    assert [(s.link, s.raw) for s in out] == [(1, raw)]
    raw, out = base.send(vport.fcid)
    assert [(s.link, s.raw) for s in out] == [(1, raw)]


def test_spoofed_s_id_is_discarded(h):
    """docs/behaviour.md 2 anti-spoofing: a frame whose S_ID is not an N_Port_ID assigned on the
    link it arrived on is dropped and counted, even when the S_ID exists elsewhere."""
    a = h.port(1, wwpn(1))
    b = h.port(2, wwpn(2))
    c = h.port(3, wwpn(3))
    _raw, out = a.send(c.fcid, s_id=b.fcid)
    assert out == []
    _raw, out = a.send(c.fcid, s_id=0x01FE01)  # assigned to nobody
    assert out == []
    reason = "discard_s_id_not_assigned_on_link"
    assert _discards(h, 1) == ({reason: 2}, {reason: 2})
    assert h.fabric.links[1].counters["routed"] == 0


def test_frames_before_flogi_are_discarded(h):
    """docs/behaviour.md 2: a link that has not logged in owns no N_Port_ID, so nothing it sends
    to an N_Port is routed."""
    b = h.port(2, wwpn(2))
    h.link_up(1)
    hdr = make_header(RCtl.UNSOLICITED_COMMAND, b.fcid, 0, FcType.FCP, F_CTL_REQUEST)
    assert h.deliver(1, hdr, bytes(32)) == []
    assert _discards(h, 1)[1] == {"discard_s_id_not_assigned_on_link": 1}


def test_unknown_d_id_is_discarded(h):
    """docs/behaviour.md 2: a class 3 frame to an N_Port_ID nobody holds is discarded and counted
    (also a logged-out port's old ID, and a domain controller address)."""
    a = h.port(1, wwpn(1))
    b = h.port(2, wwpn(2))
    gone = b.fcid
    b.logo()
    assert a.send(gone)[1] == []
    assert a.send(0x02_01_00)[1] == []  # another domain
    assert a.send(0xFFFC01)[1] == []  # domain controller: not served
    reason = "discard_unknown_d_id"
    assert _discards(h, 1) == ({reason: 3}, {reason: 3})


def test_not_zoned_is_discarded():
    """docs/behaviour.md 2 / FC-GS-8 zoning: frames between ports that share no zone are discarded
    and counted; zone-mates are routed."""
    h = FabricHarness(ZONED)
    a, b, c = (h.port(n, wwpn(n)) for n in (1, 2, 3))
    assert a.send(c.fcid)[1] == []
    assert c.send(a.fcid)[1] == []
    raw, out = a.send(b.fcid)
    assert [(s.link, s.raw) for s in out] == [(b.link, raw)]
    reason = "discard_not_zoned"
    assert h.fabric.counters[reason] == 2
    assert h.fabric.links[1].counters[reason] == 1
    assert h.fabric.links[3].counters[reason] == 1


def test_default_zone_deny_routes_nothing():
    """docs/behaviour.md 2: default_zone = "deny" with no zones: nobody reaches anybody."""
    h = FabricHarness('[fabric]\ndefault_zone = "deny"\n')
    a, b = h.port(1, wwpn(1)), h.port(2, wwpn(2))
    assert a.send(b.fcid)[1] == []
    assert h.fabric.counters["discard_not_zoned"] == 1


def test_full_destination_queue_discards(h):
    """docs/behaviour.md 2: when the destination link's bounded send queue is full (transmit returns
    False), the class 3 frame is discarded and counted on the fabric and the sending link;
    other destinations are not affected."""
    a = h.port(1, wwpn(1))
    b = h.port(2, wwpn(2))
    c = h.port(3, wwpn(3))
    h.queue_full.add(2)
    raw, out = a.send(b.fcid)
    assert out == [] and [s.raw for s in h.refused] == [raw]
    raw, out = a.send(c.fcid)
    assert [(s.link, s.raw) for s in out] == [(3, raw)]
    reason = "discard_destination_queue_full"
    assert _discards(h, 1) == ({reason: 1}, {reason: 1})
    h.queue_full.clear()
    assert a.send(b.fcid)[1]


@pytest.mark.parametrize("reason", ["s_id", "unknown", "zone", "full"])
def test_discards_are_counted_per_reason(reason):
    """docs/behaviour.md 2 and 6: every discard reason has its own counter, on the fabric and on
    the link the frame came in on, and nothing else is counted."""
    h = FabricHarness(ZONED)
    a, b, c = (h.port(n, wwpn(n)) for n in (1, 2, 3))
    n = 5
    for _ in range(n):
        if reason == "s_id":
            a.send(b.fcid, s_id=c.fcid)
        elif reason == "unknown":
            a.send(0x01FE01)
        elif reason == "zone":
            a.send(c.fcid)
        else:
            h.queue_full.add(b.link)
            a.send(b.fcid)
    key = {"s_id": "discard_s_id_not_assigned_on_link", "unknown": "discard_unknown_d_id",
           "zone": "discard_not_zoned", "full": "discard_destination_queue_full"}[reason]
    assert _discards(h, 1) == ({key: n}, {key: n})
    for link in (2, 3):
        assert _discards(h, link)[1] == {}


def test_abts_to_a_service_is_accepted(h):
    """FC-LS-3 BLS: an ABTS to a well-known service finds the exchange finished and gets
    BA_ACC naming the exchange."""
    a = h.port(1, wwpn(1))
    hdr = make_header(RCtl.ABTS, DIRECTORY, a.fcid, FcType.BLS, F_CTL_REQUEST,
                      ox_id=0x0777, rx_id=0x0100)
    (reply,) = h.deliver(1, hdr)
    assert reply.header.r_ctl == RCtl.BA_ACC and reply.header.d_id == a.fcid
    acc = BaAcc.decode(reply.payload)
    assert (acc.ox_id, acc.rx_id) == (0x0777, 0x0100)
