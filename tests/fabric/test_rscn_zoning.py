"""SCR, RSCN delivery (coalescing, zone filtering, retry) and run-time zoning changes, with
the fake clock.

docs/behaviour.md 2 (SCR to FFFFFD; RSCN to every SCR-registered port zoned with the changed
port on login, LOGO, link loss, DA_ID, FC-4 type/feature registration and zoning changes;
changes inside rscn_coalesce_ms sent as one RSCN); FC-LS-3 SCR and RSCN clauses (functions
1, 2, 3, 255; page layout; LS_ACC); FC-FS-4 E_D_TOV.
"""

from __future__ import annotations

import pytest

from fcsoft.wire import ns
from fcsoft.wire.ct import NsCommand
from fcsoft.wire.els import (
    ElsCommand,
    LsAcc,
    LsRjtReason,
    Rscn,
    RscnAddressFormat,
    RscnEventQualifier,
    RscnPage,
)
from fcsoft.wire.encap import EOF, SOF
from fcsoft.wire.header import F_CTL_REQUEST, FcType, RCtl

from .conftest import (
    CONTROLLER,
    FabricHarness,
    ls_rjt,
    rscn_ids,
    rscns,
    wwpn,
    zones_toml,
)

C = NsCommand
COALESCE = 0.050  # rscn_coalesce_ms = 50 (the default)
E_D_TOV = 2.0  # e_d_tov_ms = 2000 (the default)
NS_OBJECT = RscnEventQualifier.NAME_SERVER_OBJECT


def ft(fc4_type: int = FcType.FCP) -> bytes:
    return bytes((0, 0, 0, fc4_type))


# =================================================================================== SCR


@pytest.mark.parametrize("function", [1, 2, 3, 255])
def test_scr_functions_are_accepted(h, function):
    """FC-LS-3 SCR: functions 1 (fabric detected), 2 (N_Port detected), 3 (full) and 255
    (clear) are accepted with a plain LS_ACC from FFFFFD."""
    p = h.port(1, wwpn(1))
    reply = p.scr(function)
    assert reply.header.s_id == CONTROLLER and reply.header.d_id == p.fcid
    assert isinstance(reply.els_reply(ElsCommand.SCR), LsAcc)
    assert h.fabric.port(p.wwpn).scr_function == (0 if function == 255 else function)


def test_scr_reserved_function_is_rejected(h):
    """FC-LS-3 SCR: a reserved registration function gets LS_RJT (unable to perform)."""
    p = h.port(1, wwpn(1))
    assert ls_rjt(p.scr(7), ElsCommand.SCR)[0] == LsRjtReason.UNABLE_TO_PERFORM
    assert p.fcid not in h.fabric._scr


def _nport_rscn(h, port, affected: int) -> None:
    """Port sends an N_Port-detected RSCN to FFFFFD (FC-LS-3 RSCN clause)."""
    reply = h.els_one(port.link, port.fcid, CONTROLLER, Rscn.for_ports([affected]).encode())
    assert isinstance(reply.els_reply(ElsCommand.RSCN), LsAcc)


@pytest.mark.parametrize(("function", "fabric_detected", "nport_detected"), [
    (1, True, False), (2, False, True), (3, True, True), (255, False, False)])
def test_scr_function_selects_the_events(h, function, fabric_detected, nport_detected):
    """FC-LS-3 SCR: function 1 gets fabric-detected RSCNs, 2 N_Port-detected ones (another
    port's RSCN to FFFFFD passed on), 3 both, 255 clears the registration (none at all)."""
    w = h.port(1, wwpn(1), scr=3)
    sender = h.port(2, wwpn(2))
    w.scr(function)
    h.flush_rscns()
    p = h.port(3, wwpn(3))  # fabric detected: a login
    got = rscn_ids(h.run_until(h.now + 1))
    assert (w.fcid in got) == fabric_detected
    h.flush_rscns()
    _nport_rscn(h, sender, 0x0A0B0C)
    got = rscn_ids(h.run_until(h.now + 1))
    assert got.get(w.fcid, []) == ([0x0A0B0C] if nport_detected else [])
    assert p.fcid not in got and sender.fcid not in got  # never to the sender itself


# ==================================================================== coalescing (clock)


def test_logins_inside_the_window_make_one_multi_page_rscn():
    """docs/behaviour.md 2: changes inside rscn_coalesce_ms are sent as one RSCN: several logins in
    the window give each registered port one RSCN listing them all, at the window's end
    and not before (FC-LS-3 RSCN: payload 61 04 len, one page per affected port)."""
    h = FabricHarness()
    w1 = h.port(1, wwpn(1), scr=3)
    w2 = h.port(2, wwpn(2), scr=3)
    h.flush_rscns()
    t0 = 100.0
    ids = []
    for i, dt in enumerate((0.0, 0.010, 0.049)):
        h.now = t0 + dt
        ids.append(h.port(10 + i, wwpn(10 + i), ns_login=False).fcid)
    assert h.take() == []
    deadline = h.fabric.next_timer()
    assert deadline == pytest.approx(t0 + COALESCE)
    # nothing before the window closes, even if the shell wakes early
    h.fabric.handle_timer(t0 + COALESCE - 0.001)
    assert h.take() == []
    sent = h.run_until(deadline)
    got = rscns(sent)
    assert set(got) == {w1.fcid, w2.fcid}
    for w in (w1, w2):
        assert len(got[w.fcid]) == 1
        rscn = got[w.fcid][0]
        assert [p.affected_id for p in rscn.pages] == ids
        assert all(p.address_format == RscnAddressFormat.PORT for p in rscn.pages)
        assert all(p.event_qualifier == NS_OBJECT for p in rscn.pages)
    for s in sent:
        hd = s.header
        assert hd.r_ctl == RCtl.ELS_REQUEST and hd.type == FcType.ELS
        assert hd.f_ctl & 0xFFFFFC == F_CTL_REQUEST
        assert s.frame.sof == SOF.SOFi3 and s.frame.eof == EOF.EOFt
        assert s.link == h.fabric.port(wwpn(1 if hd.d_id == w1.fcid else 2)).link_id
        assert s.payload[:4] == bytes((0x61, 4, 0, 4 + 4 * 3))
    # the window closed; changes after it open a new one
    h.now = deadline + 0.001
    h.port(20, wwpn(20), ns_login=False)
    assert h.fabric.next_timer() == pytest.approx(h.now + COALESCE)


def test_zero_coalescing_sends_at_the_next_timer():
    """rscn_coalesce_ms = 0: each change is due at once (the shell's next timer)."""
    h = FabricHarness("[fabric]\nrscn_coalesce_ms = 0\n")
    w = h.port(1, wwpn(1), scr=3)
    h.flush_rscns()
    p = h.port(2, wwpn(2))
    assert h.fabric.next_timer() == h.now
    assert rscn_ids(h.run_until(h.now)) == {w.fcid: [p.fcid]}


def test_many_changes_are_split_to_fit_a_frame():
    """FC-LS-3 RSCN / FC-FS-4 max payload 2112: a burst of more pages than one RSCN can
    carry is split over several RSCNs, each within 2112 bytes, none lost."""
    h = FabricHarness("[fabric]\nmax_npiv_per_link = 1000\n")
    w = h.port(1, wwpn(1), scr=3)
    h.flush_rscns()
    ids = [h.port(2, wwpn(n), ns_login=False).fcid for n in range(2, 602)]
    sent = h.run_until(h.now + 1)
    assert all(len(s.payload) <= 2112 for s in sent)
    got = rscns(sent)[w.fcid]
    assert len(got) == 2
    assert [p.affected_id for r in got for p in r.pages] == ids


# ============================================================================ the events


def _setup_event(h):
    w = h.port(1, wwpn(1), scr=3)
    base = h.port(2, wwpn(2))
    p = h.port(2, wwpn(3))  # a vport of base
    base.register_fcp()
    p.register_fcp()
    h.flush_rscns()
    return w, base, p


@pytest.mark.parametrize(("event", "qualifier"), [
    ("login", NS_OBJECT), ("logo", RscnEventQualifier.NOT_SPECIFIED),
    ("link_down", RscnEventQualifier.NOT_SPECIFIED), ("da_id", NS_OBJECT),
    ("rft_id", NS_OBJECT), ("rff_id", NS_OBJECT)])
def test_rscn_on_each_event(h, event, qualifier):
    """docs/behaviour.md 2: an RSCN about the port goes to SCR-registered zone-mates when it logs in,
    logs out (LOGO), loses its link, deregisters (DA_ID) or registers FC-4 types (RFT_ID)
    or features (RFF_ID)."""
    w, base, p = _setup_event(h)
    affected = [p.fcid]
    if event == "login":
        affected = [h.port(3, wwpn(4)).fcid]
    elif event == "logo":
        p.logo()
    elif event == "link_down":
        h.link_down(2)
        affected = [p.fcid, base.fcid]
    elif event == "da_id":
        p.ns_ok(C.DA_ID, ns.DaIdRequest(p.fcid))
    elif event == "rft_id":
        p.ns_ok(C.RFT_ID, ns.RftIdRequest(p.fcid, ns.Fc4Types({FcType.FCP, FcType.NVME})))
    else:
        p.ns_ok(C.RFF_ID, ns.RffIdRequest(p.fcid, FcType.FCP, ns.FcpFeatures.TARGET))
    got = rscns(h.run_until(h.now + 1))
    assert list(got) == [w.fcid] and len(got[w.fcid]) == 1
    pages = got[w.fcid][0].pages
    assert sorted(pg.affected_id for pg in pages) == sorted(affected)
    assert {pg.event_qualifier for pg in pages} == {qualifier}


def test_no_rscn_to_a_port_that_left_before_the_window_closed(h):
    """RSCN bookkeeping: pages owed to a port that logs out are dropped with it."""
    w = h.port(1, wwpn(1), scr=3)
    other = h.port(2, wwpn(2), scr=3)
    h.flush_rscns()
    h.port(3, wwpn(3))
    w.logo()
    got = rscn_ids(h.run_until(h.now + 1))
    assert w.fcid not in got and set(got[other.fcid]) >= {w.fcid}


# ============================================================================ zone filter

ZONED = f"""
[fabric]
rscn_coalesce_ms = 50
{zones_toml({"ab": [wwpn(1), wwpn(2)], "cd": [wwpn(3), wwpn(4)]})}
"""


def test_rscn_only_to_zone_mates():
    """docs/behaviour.md 2 / FC-GS-8 zoning: an SCR port not zoned with the changed port gets no
    RSCN about it."""
    h = FabricHarness(ZONED)
    a = h.port(1, wwpn(1), scr=3)
    c = h.port(3, wwpn(3), scr=3)
    h.flush_rscns()
    b = h.port(2, wwpn(2))
    assert h.rscns_due() == {a.fcid: [b.fcid]}
    d = h.port(4, wwpn(4))
    assert h.rscns_due() == {c.fcid: [d.fcid]}
    h.port(5, wwpn(5))  # in no zone: nobody hears of it
    assert h.rscns_due() == {}
    # N_Port-detected RSCNs are filtered the same way
    c.scr(2)
    a.scr(2)
    _nport_rscn(h, d, d.fcid)
    assert h.rscns_due() == {c.fcid: [d.fcid]}


def test_each_port_counts_the_rscns_sent_to_it():
    """PortRecord.rscns (portshow's name_server.rscns): the RSCNs the fabric sent to that
    N_Port, one per RSCN whatever its pages, retries not counted; zone filtering shows in
    it: a port hears nothing of another zone's logouts."""
    h = FabricHarness(ZONED)
    a = h.port(1, wwpn(1), scr=3)
    c = h.port(3, wwpn(3), scr=3)
    h.flush_rscns()
    b = h.port(2, wwpn(2))
    d = h.port(4, wwpn(4))
    h.run_until(h.now + COALESCE)  # sent, not answered: one retry after E_D_TOV
    h.run_until(h.now + E_D_TOV + 0.01)
    assert h.fabric.port(a.wwpn).rscns == 1 and h.fabric.port(c.wwpn).rscns == 1
    assert h.fabric.port(b.wwpn).rscns == 0
    h.flush_rscns()
    b.logo()
    h.flush_rscns()
    assert h.fabric.port(a.wwpn).rscns == 2  # b left a's zone
    assert h.fabric.port(c.wwpn).rscns == 1  # nothing about another zone
    assert h.fabric.port(d.wwpn).rscns == 0


# ================================================================================= retry


def _one_rscn(h):
    """A watcher, and one RSCN sent to it; returns (watcher, the sent frame, send time)."""
    w = h.port(1, wwpn(1), scr=3)
    h.flush_rscns()
    h.port(2, wwpn(2))
    sent = h.run_until(h.now + COALESCE)
    assert len(sent) == 1 and sent[0].header.d_id == w.fcid
    return w, sent[0], h.now


def test_unanswered_rscn_is_retried_once_then_given_up(h):
    """FC-LS-3 / FC-FS-4 E_D_TOV: an RSCN without LS_ACC is sent once more after E_D_TOV,
    then given up after another E_D_TOV (logged and counted)."""
    _w, first, t = _one_rscn(h)
    assert h.fabric.next_timer() == pytest.approx(t + E_D_TOV)
    assert h.run_until(t + E_D_TOV - 0.01) == []
    retry = h.run_until(t + E_D_TOV)
    assert len(retry) == 1
    assert retry[0].raw == first.raw and retry[0].link == first.link
    assert h.fabric.counters["rscn_retried"] == 1
    assert h.fabric.next_timer() == pytest.approx(t + 2 * E_D_TOV)
    assert h.run_until(t + 10 * E_D_TOV) == []
    assert h.fabric.counters["rscn_unanswered"] == 1
    assert h.fabric.next_timer() is None


def test_ls_acc_stops_the_retry(h):
    """FC-LS-3 RSCN: the recipient's LS_ACC completes the exchange; no retry follows."""
    _w, first, t = _one_rscn(h)
    assert h.ack(first) == []
    assert h.fabric.next_timer() is None
    assert h.run_until(t + 10 * E_D_TOV) == []
    assert h.fabric.counters["rscn_retried"] == 0
    assert h.fabric.links[first.link].counters["rscn_answered"] == 1


def test_ls_acc_to_the_retry_stops_the_give_up(h):
    """FC-LS-3 RSCN: an LS_ACC to the retransmission completes it too."""
    _w, first, t = _one_rscn(h)
    (retry,) = h.run_until(t + E_D_TOV)
    h.ack(retry)
    assert h.fabric.next_timer() is None
    assert h.fabric.counters["rscn_unanswered"] == 0


def test_spoofed_ls_acc_from_another_link_does_not_stop_the_retry(h):
    """docs/wire.md and 2 (nothing one link sends affects another; a frame whose S_ID is not
    assigned on its link is dropped): an LS_ACC forged on another link with the
    recipient's S_ID and OX_ID does not complete the RSCN exchange."""
    _w, first, t = _one_rscn(h)
    h.port(3, wwpn(3))
    forged = first.header.reply(RCtl.ELS_REPLY, rx_id=0x4242)
    assert h.deliver(3, forged, LsAcc().encode()) == []
    assert h.fabric.links[3].counters["rscn_answered"] == 0
    # (port 3's login makes a second RSCN to the watcher; the first one is retried as is)
    retry = [s for s in h.run_until(t + E_D_TOV) if s.raw == first.raw]
    assert len(retry) == 1 and retry[0].link == first.link


# ========================================================================= zoning changes

RUNTIME = f"""
[fabric]
rscn_coalesce_ms = 50
{zones_toml({"ab": [wwpn(1), wwpn(2)], "c": [wwpn(3)]})}
"""


def test_set_zoning_changes_answers_routing_and_sends_rscns():
    """docs/behaviour.md 2 (RSCN when zoning changes) / zoning.py: Fabric.set_zoning at run time
    changes name-server answers and routing at once, and the ports whose visibility
    changed, and only they, get an RSCN about each other."""
    h = FabricHarness(RUNTIME)
    a, b, c = (h.port(n, wwpn(n), scr=3) for n in (1, 2, 3))
    for p in (a, b, c):
        p.register_fcp()
    h.flush_rscns()
    assert set(a.ns_ok(C.GID_FT, ft()).port_ids) == {a.fcid, b.fcid}
    _raw, out = a.send(c.fcid)
    assert out == [] and h.fabric.counters["discard_not_zoned"] == 1

    h.fabric.set_zoning({"ab": [wwpn(1), wwpn(2)], "c": [wwpn(3)],
                         "ac": [wwpn(1), wwpn(3)]}, h.now)
    assert h.fabric.counters["zoning_changes"] == 1
    # answers and routing follow at once
    assert set(a.ns_ok(C.GID_FT, ft()).port_ids) == {a.fcid, b.fcid, c.fcid}
    assert c.ns_ok(C.GPN_ID, ns.GpnIdRequest(a.fcid)).port_name == a.wwpn
    raw, out = a.send(c.fcid)
    assert [(s.link, s.raw) for s in out] == [(c.link, raw)]
    # RSCNs: a hears of c and c of a; b's view did not change
    got = rscn_ids(h.run_until(h.now + 1))
    assert got == {a.fcid: [c.fcid], c.fcid: [a.fcid]}

    # and back: c disappears from a's view, routing stops, RSCNs again
    h.flush_rscns()
    h.fabric.set_zoning({"ab": [wwpn(1), wwpn(2)], "c": [wwpn(3)]}, h.now)
    assert set(a.ns_ok(C.GID_FT, ft()).port_ids) == {a.fcid, b.fcid}
    assert a.send(c.fcid)[1] == []
    assert rscn_ids(h.run_until(h.now + 1)) == {a.fcid: [c.fcid], c.fcid: [a.fcid]}


def test_set_zoning_from_default_allow_to_zones():
    """docs/behaviour.md 2: defining the first zone ends default_zone; every registered port whose
    view changed hears about the ports it lost."""
    h = FabricHarness()
    a, b, c = (h.port(n, wwpn(n), scr=3) for n in (1, 2, 3))
    h.flush_rscns()
    h.fabric.set_zoning({"ab": [wwpn(1), wwpn(2)]}, h.now)
    got = rscn_ids(h.run_until(h.now + 1))
    assert {k: sorted(v) for k, v in got.items()} == {
        a.fcid: [c.fcid], b.fcid: [c.fcid], c.fcid: sorted([a.fcid, b.fcid])}
    # and to "deny" with no zones: a and b lose each other
    h.flush_rscns()
    h.fabric.set_zoning(None, h.now, default_zone="deny")
    got = rscn_ids(h.run_until(h.now + 1))
    assert got == {a.fcid: [b.fcid], b.fcid: [a.fcid]}
    assert a.send(b.fcid)[1] == []


def test_rscn_pages_for_the_same_port_are_not_repeated(h):
    """RSCN coalescing: the same change twice in one window is one page."""
    w = h.port(1, wwpn(1), scr=3)
    p = h.port(2, wwpn(2))
    h.flush_rscns()
    for _ in range(3):
        p.ns_ok(C.RFT_ID, ns.RftIdRequest(p.fcid, ns.Fc4Types({FcType.FCP})))
    got = rscns(h.run_until(h.now + 1))
    assert got[w.fcid][0].pages == (RscnPage(p.fcid, RscnAddressFormat.PORT, NS_OBJECT),)
