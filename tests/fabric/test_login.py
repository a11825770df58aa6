"""F_Port logins of the fabric core: the login state table, FLOGI LS_ACC content, NPIV
(FDISC), LOGO, link loss, duplicate WWPNs, N_Port_ID assignment.

docs/behaviour.md 2 (FLOGI / FDISC / LOGO, duplicate WWPN policy), section 6 (a closed link's
IDs are free at once); FC-LS-3 FLOGI, FDISC and LOGO clauses; FC-FS-4 11.2 (N_Port_IDs).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fcsoft.fabric.core import LOGIN_TABLE, Fabric, LinkState, Request
from fcsoft.wire.els import (
    ClassServiceOptions,
    CommonFeatures,
    ElsCommand,
    Logo,
    LsAcc,
    LsRjtExplanation,
    LsRjtReason,
)
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.header import F_CTL_REPLY, FcType, RCtl
from fcsoft.wire.wwn import WWN

from .conftest import (
    CONTROLLER,
    DIRECTORY,
    F_PORT,
    FabricHarness,
    ls_rjt,
    node_of,
    rscn_ids,
    rscns,
    wwpn,
)

LOGIN_REQUIRED = (LsRjtReason.LOGICAL_ERROR, LsRjtExplanation.N_PORT_LOGIN_REQUIRED)  # 03/1E
NOT_SUPPORTED = (LsRjtReason.COMMAND_NOT_SUPPORTED, LsRjtExplanation.REQUEST_NOT_SUPPORTED)
DUPLICATE = (LsRjtReason.UNABLE_TO_PERFORM, LsRjtExplanation.INVALID_PORT_NAME)  # 09/0D
NO_RESOURCES = (LsRjtReason.UNABLE_TO_PERFORM, LsRjtExplanation.INSUFFICIENT_RESOURCES)  # 09/29


def accepted_fcid(reply) -> int:
    """The N_Port_ID an FLOGI / FDISC LS_ACC assigns: its D_ID (FC-LS-3 FLOGI clause)."""
    acc = reply.els_reply(ElsCommand.FLOGI)
    assert isinstance(acc, ServiceParameters) and acc.command == ElsCommand.LS_ACC, acc
    return reply.header.d_id


# =========================================================================== the login table
# STYLE "state tables get property tests over every (state, input) pair"; core.LOGIN_TABLE.

def test_login_table_covers_every_state_and_request():
    """Every (LinkState, Request) pair has exactly one entry, naming an existing action."""
    assert set(LOGIN_TABLE) == set(itertools.product(LinkState, Request))
    assert len(LOGIN_TABLE) == len(LinkState) * len(Request)
    for action, next_state in LOGIN_TABLE.values():
        assert callable(getattr(Fabric, action)), action
        assert isinstance(next_state, LinkState)


def _bring_to(h: FabricHarness, state: LinkState, link: int = 1):
    """A link in `state`; when logged in it holds a FLOGI port and one FDISC vport, and a
    second link holds a watcher registered for RSCNs. Returns (base, vport)."""
    h.port(9, wwpn(99), scr=3)
    h.link_up(link)
    base = vport = None
    if state is LinkState.LOGGED_IN:
        base = h.port(link, wwpn(1))
        vport = h.port(link, wwpn(2))
    h.flush_rscns()
    assert h.fabric.links[link].state is state
    return base, vport


def _drive(h: FabricHarness, state: LinkState, req: Request, link: int = 1):
    """Feed `req` to the link and return what the fabric sent."""
    base, vport = _bring_to(h, state, link)
    if req is Request.FLOGI:
        return h.els(link, 0, F_PORT, ServiceParameters.flogi(wwpn(3), node_of(wwpn(3))).encode())
    if req is Request.FDISC:
        return h.els(link, 0, F_PORT, ServiceParameters.fdisc(wwpn(3), node_of(wwpn(3))).encode())
    if req is Request.LOGO:
        # logged in: the vport logs out (the base N_Port's LOGO is tested on its own below)
        s_id, name = (vport.fcid, vport.wwpn) if vport else (0, wwpn(3))
        return h.els(link, s_id, F_PORT, Logo(s_id, name).encode())
    if req is Request.OTHER_ELS:
        if base is None:
            # before FLOGI, even a PLOGI to the name server is "other"
            return h.els(link, 0, DIRECTORY,
                         ServiceParameters.plogi(wwpn(3), node_of(wwpn(3))).encode())
        # an ELS to FFFFFE that is neither FLOGI, FDISC nor LOGO (here RNID)
        return h.els(link, base.fcid, F_PORT, bytes((ElsCommand.RNID, 0, 0, 0, 0, 0, 0, 0)))
    assert req is Request.LINK_DOWN
    return h.link_down(link)


@pytest.mark.parametrize(("state", "req"), sorted(LOGIN_TABLE, key=lambda k: (k[0].value,
                                                                             k[1].value)),
                         ids=lambda v: v.name)
def test_login_table_entry(state, req):
    """FC-LS-3 FLOGI/FDISC/LOGO clauses, docs/behaviour.md 2: each table entry gives the
    exact reply and the state after it."""
    h = FabricHarness()
    link = 1
    out = _drive(h, state, req, link)
    after = h.fabric.links.get(link)
    expected_state = LOGIN_TABLE[(state, req)][1]
    replies = [s for s in out if s.link == link and s.is_els_reply]
    # RSCNs are only queued (coalescing), so the reply is all that goes out at once
    assert [s for s in out if s not in replies] == []

    if req is Request.LINK_DOWN:
        # nothing is sent on a link that is gone; the link and its IDs are forgotten
        assert not [s for s in out if s.link == link]
        assert after is None
        assert not [r for r in h.fabric.db if r.link_id == link]
        h.check_invariants()
        return

    assert len(replies) == 1, out
    reply = replies[0]
    assert reply.header.f_ctl & 0xFFFFFC == F_CTL_REPLY
    assert reply.header.s_id == (DIRECTORY if (state, req) == (LinkState.UNLOGGED,
                                                              Request.OTHER_ELS) else F_PORT)

    match (state, req):
        case (LinkState.UNLOGGED, Request.FLOGI):
            fcid = accepted_fcid(reply)
            assert h.fabric.links[link].fcids == {fcid}
        case (LinkState.LOGGED_IN, Request.FLOGI):
            # implicit logout of the link's old logins, then a fresh login (FC-LS-3 4.2.7)
            fcid = accepted_fcid(reply)
            assert h.fabric.port(wwpn(1)) is None and h.fabric.port(wwpn(2)) is None
            assert h.fabric.links[link].fcids == {fcid} == {h.fabric.port(wwpn(3)).fcid}
        case (LinkState.LOGGED_IN, Request.FDISC):
            fcid = accepted_fcid(reply)
            assert len(h.fabric.links[link].fcids) == 3 and fcid in h.fabric.links[link].fcids
        case (LinkState.LOGGED_IN, Request.LOGO):
            assert isinstance(reply.els_reply(ElsCommand.LOGO), LsAcc)
            assert h.fabric.port(wwpn(2)) is None and h.fabric.port(wwpn(1)) is not None
        case (LinkState.LOGGED_IN, Request.OTHER_ELS):
            assert ls_rjt(reply) == NOT_SUPPORTED
        case (LinkState.UNLOGGED, _):
            assert ls_rjt(reply) == LOGIN_REQUIRED
            assert not h.fabric.links[link].fcids
        case _:
            pytest.fail(f"no expectation for {state}, {req}")
    assert h.fabric.links[link].state is expected_state
    h.check_invariants()


def test_logo_of_the_flogi_port_ends_the_links_login(h):
    """FC-LS-3 LOGO clause / docs/behaviour.md 2: LOGO of the N_Port_ID assigned by FLOGI logs the
    link out, its NPIV vports included; afterwards FDISC needs a new FLOGI."""
    base = h.port(1, wwpn(1))
    v1 = h.port(1, wwpn(2))
    v2 = h.port(1, wwpn(3))
    assert isinstance(base.logo().els_reply(ElsCommand.LOGO), LsAcc)
    link = h.fabric.links[1]
    assert link.state is LinkState.UNLOGGED and not link.fcids
    assert all(h.fabric.db.get(p.fcid) is None for p in (base, v1, v2))
    assert ls_rjt(h.fdisc(1, wwpn(4))) == LOGIN_REQUIRED
    h.check_invariants()


# ==================================================================== FLOGI LS_ACC content


def test_flogi_accept_content():
    """docs/behaviour.md 2 / FC-LS-3 FLOGI LS_ACC: D_ID = assigned N_Port_ID DD AA PP with the
    configured domain, F_Port (0x1000) and multiple-N_Port_ID-assignment (0x2000) bits,
    class 3 valid, R_A_TOV / E_D_TOV and the fabric name from the config."""
    h = FabricHarness("""
        [fabric]
        domain_id = 0x2a
        wwn = "10:00:00:05:1e:aa:bb:cc"
        r_a_tov_ms = 12000
        e_d_tov_ms = 1500
    """)
    h.link_up(1)
    reply = h.flogi(1, wwpn(1))
    hdr = reply.header
    assert hdr.r_ctl == RCtl.ELS_REPLY and hdr.type == FcType.ELS
    assert hdr.s_id == F_PORT
    fcid = hdr.d_id
    assert fcid >> 16 == 0x2A and fcid & 0xFFFF != 0
    acc = reply.els_reply(ElsCommand.FLOGI)
    assert isinstance(acc, ServiceParameters)
    assert acc.command == ElsCommand.LS_ACC
    assert acc.common_features & 0x1000 and acc.from_f_port
    assert acc.common_features & 0x2000
    assert acc.common_features & CommonFeatures.MULTIPLE_N_PORT_ID_ASSIGNMENT
    assert acc.class3.valid
    assert acc.class3.service_options & ClassServiceOptions.CLASS_VALID
    assert acc.r_a_tov == 12000
    assert acc.e_d_tov == 1500
    assert acc.node_name == WWN("10:00:00:05:1e:aa:bb:cc")  # the fabric name
    assert acc.port_name != acc.node_name  # the F_Port's own name
    # the N_Port_ID is what the fabric now knows the port by
    rec = h.fabric.port(wwpn(1))
    assert rec is not None and rec.fcid == fcid and rec.link_id == 1
    assert rec.wwnn == node_of(wwpn(1))


def test_flogi_accept_echoes_exchange(h):
    """FC-FS-4 exchange rules: the reply keeps OX_ID and SEQ_ID and sets the responder's
    exchange context; it answers on the same link."""
    h.link_up(3)
    out = h.els(3, 0, F_PORT, ServiceParameters.flogi(wwpn(1), node_of(wwpn(1))).encode(),
                ox_id=0x1234)
    assert len(out) == 1
    assert out[0].link == 3 and out[0].header.ox_id == 0x1234
    assert out[0].header.f_ctl & 0xFFFFFC == F_CTL_REPLY


def test_malformed_flogi_is_rejected(h):
    """FC-LS-3 LS_RJT: a FLOGI payload too short for the service parameters gets
    protocol error / invalid payload length and changes nothing."""
    h.link_up(1)
    reply = h.els_one(1, 0, F_PORT, bytes((ElsCommand.FLOGI, 0, 0, 0)) + bytes(40))
    assert ls_rjt(reply) == (LsRjtReason.PROTOCOL_ERROR, LsRjtExplanation.INVALID_PAYLOAD_LENGTH)
    assert h.fabric.links[1].state is LinkState.UNLOGGED
    h.check_invariants()


def test_domain_and_areas_per_link(h):
    """FC-FS-4 11.2 / docs/behaviour.md 2: N_Port_IDs are DD AA PP with DD the configured domain;
    each link (F_Port) has its own area, never 00."""
    ports = [h.port(i, wwpn(i)) for i in range(1, 6)]
    areas = {(p.fcid >> 8) & 0xFF for p in ports}
    assert len(areas) == 5 and 0 not in areas
    assert all(p.fcid >> 16 == 1 for p in ports)


# ========================================================================= requests before FLOGI


@pytest.mark.parametrize("what", ["fdisc", "logo", "plogi_ns", "scr", "plogi_f_port"])
def test_requests_before_flogi_are_rejected(h, what):
    """docs/behaviour.md 2, FC-LS-3 LS_RJT: before FLOGI every ELS, FDISC included, is answered
    LS_RJT logical error / N_Port login required (03/1E) and nothing is assigned."""
    h.link_up(1)
    if what == "fdisc":
        reply = h.fdisc(1, wwpn(1))
    elif what == "logo":
        reply = h.logo(1, 0, wwpn(1))
    elif what == "plogi_ns":
        reply = h.plogi(1, 0, wwpn(1))
    elif what == "scr":
        reply = h.scr(1, 0)
    else:
        reply = h.plogi(1, 0, wwpn(1), d_id=F_PORT)
    assert ls_rjt(reply) == LOGIN_REQUIRED
    assert h.fabric.links[1].state is LinkState.UNLOGGED
    assert len(h.fabric.db) == 0 and len(h.fabric.addresses) == 0


def test_ct_before_flogi_is_discarded(h):
    """docs/behaviour.md 2 anti-spoofing: a CT_IU from an S_ID not assigned on the link (there is
    none before FLOGI) is dropped and counted, not answered."""
    h.link_up(1)
    assert h.ct(1, 0, 0x0171, bytes((0, 0, 0, 8))) == []
    assert h.fabric.counters["discard_s_id_not_assigned_on_link"] == 1


# ============================================================================== NPIV (FDISC)


def test_fdisc_assigns_further_ids_on_the_same_link(h):
    """docs/behaviour.md 2 / FC-LS-3 FDISC: FDISC on a link that did FLOGI assigns a further
    N_Port_ID (NPIV); the LS_ACC has the FLOGI LS_ACC shape, D_ID = the new ID."""
    base = h.port(1, wwpn(1))
    reply = h.fdisc(1, wwpn(2))
    acc = reply.els_reply(ElsCommand.FDISC)
    assert isinstance(acc, ServiceParameters) and acc.from_f_port
    assert acc.common_features & CommonFeatures.MULTIPLE_N_PORT_ID_ASSIGNMENT
    v1 = reply.header.d_id
    v2 = h.port(1, wwpn(3)).fcid
    assert len({base.fcid, v1, v2}) == 3
    # same domain and area as the FLOGI port: the link is one F_Port
    assert {f >> 8 for f in (base.fcid, v1, v2)} == {base.fcid >> 8}
    assert h.fabric.links[1].fcids == {base.fcid, v1, v2}
    assert h.fabric.port(wwpn(2)).link_id == 1
    h.check_invariants()


def test_npiv_limit_per_link():
    """fabric.max_npiv_per_link (README: N_Port_IDs a link may add with FDISC): the FDISC
    beyond it gets LS_RJT unable to perform / insufficient resources; other links are not
    affected, and a LOGO frees a place again."""
    h = FabricHarness("[fabric]\nmax_npiv_per_link = 2\n")
    h.port(1, wwpn(1))
    vports = [h.port(1, wwpn(n)) for n in (2, 3)]
    reply = h.fdisc(1, wwpn(4))
    assert ls_rjt(reply) == NO_RESOURCES
    assert h.fabric.port(wwpn(4)) is None
    assert len(h.fabric.links[1].fcids) == 3
    # another link has its own allowance
    h.port(2, wwpn(5))
    h.port(2, wwpn(6))
    # a vport LOGO makes room
    vports[0].logo()
    assert isinstance(h.fdisc(1, wwpn(4)).els_reply(ElsCommand.FDISC), ServiceParameters)
    h.check_invariants()


def test_vport_logo_releases_only_that_id(h):
    """FC-LS-3 LOGO / docs/behaviour.md 2: LOGO to FFFFFE from an NPIV vport releases that one
    N_Port_ID; the link and its other IDs stay logged in; an RSCN reports it."""
    watcher = h.port(9, wwpn(99), scr=3)
    base = h.port(1, wwpn(1))
    v1 = h.port(1, wwpn(2))
    v2 = h.port(1, wwpn(3))
    h.flush_rscns()
    reply = v1.logo()
    assert reply.header.d_id == v1.fcid and reply.header.s_id == F_PORT
    assert isinstance(reply.els_reply(ElsCommand.LOGO), LsAcc)
    assert h.fabric.links[1].fcids == {base.fcid, v2.fcid}
    assert h.fabric.links[1].state is LinkState.LOGGED_IN
    assert h.fabric.port(wwpn(2)) is None
    assert not h.fabric.addresses.in_use(v1.fcid)
    assert rscn_ids(h.run_until(h.now + 1)) == {watcher.fcid: [v1.fcid]}
    h.check_invariants()


def test_logo_of_flogi_port_releases_vports_with_rscn(h):
    """docs/behaviour.md 2: LOGO of the FLOGI port releases the link's vports too; one coalesced
    RSCN names every released ID."""
    watcher = h.port(9, wwpn(99), scr=3)
    base = h.port(1, wwpn(1))
    v1 = h.port(1, wwpn(2))
    v2 = h.port(1, wwpn(3))
    h.flush_rscns()
    base.logo()
    assert h.fabric.links[1].fcids == set()
    assert all(h.fabric.port(wwpn(n)) is None for n in (1, 2, 3))
    got = rscns(h.run_until(h.now + 1))
    assert list(got) == [watcher.fcid] and len(got[watcher.fcid]) == 1
    assert sorted(p.affected_id for p in got[watcher.fcid][0].pages) == sorted(
        [base.fcid, v1.fcid, v2.fcid])
    h.check_invariants()


def test_link_down_releases_everything(h):
    """docs/behaviour.md 2 and 6: losing the connection releases all the link's N_Port_IDs and
    WWPNs at once (the WWPN can log in again elsewhere immediately); RSCNs follow."""
    watcher = h.port(9, wwpn(99), scr=3)
    ids = [h.port(1, wwpn(n)).fcid for n in (1, 2, 3)]
    h.flush_rscns()
    assert h.link_down(1) == []
    assert 1 not in h.fabric.links
    assert all(h.fabric.db.get(f) is None for f in ids)
    assert not any(h.fabric.addresses.in_use(f) for f in ids)
    # free at once: the same WWPN logs in on another link, reject policy notwithstanding
    h.port(2, wwpn(1))
    got = rscn_ids(h.run_until(h.now + 1))
    assert set(got[watcher.fcid]) >= set(ids)
    h.check_invariants()


def test_link_down_of_unknown_or_unlogged_link_is_harmless(h):
    """The LINK_DOWN row for UNLOGGED, and a link the fabric never saw."""
    h.link_up(1)
    assert h.link_down(1) == []
    assert h.link_down(42) == []
    assert h.fabric.links == {}


def test_released_ids_are_not_reused_at_once(h):
    """FC-FS-4 11.2 / addresses.py: IDs are handed out round robin, so a port that logs
    out and back in gets a new N_Port_ID and stale frames to the old one reach nobody."""
    h.port(1, wwpn(1))
    v = h.port(1, wwpn(2))
    v.logo()
    again = h.port(1, wwpn(2))
    assert again.fcid != v.fcid
    # the same for a whole link: a new FLOGI after link loss gets a new area
    old = h.port(2, wwpn(3)).fcid
    h.link_down(2)
    new = h.port(2, wwpn(3)).fcid
    assert new != old and new >> 8 != old >> 8
    h.check_invariants()


def test_re_flogi_is_implicit_logout(h):
    """docs/behaviour.md 2 / FC-LS-3 FLOGI clause: a second FLOGI on a logged-in link logs out the
    link's old logins (old IDs released, RSCN for them), then logs in afresh."""
    watcher = h.port(9, wwpn(99), scr=3)
    base = h.port(1, wwpn(1))
    v = h.port(1, wwpn(2))
    h.flush_rscns()
    reply = h.flogi(1, wwpn(1))
    new = accepted_fcid(reply)
    assert new not in (base.fcid, v.fcid)
    assert h.fabric.links[1].fcids == {new}
    assert h.fabric.port(wwpn(2)) is None
    assert not h.fabric.addresses.in_use(base.fcid)
    assert not h.fabric.addresses.in_use(v.fcid)
    got = rscn_ids(h.run_until(h.now + 1))
    assert {base.fcid, v.fcid, new} <= set(got[watcher.fcid])
    # the re-logged port lost its name-server session with its old ID
    assert not h.fabric.port(wwpn(1)).ns_session
    h.check_invariants()


def test_more_links_than_areas_share_areas():
    """docs/config.md max_links defaults to 4096: past 255 links (one area each) new links
    share areas instead of being refused."""
    h = FabricHarness()
    for link in range(1, 301):
        h.port(link, wwpn(link), ns_login=False)
    ids = [h.fabric.links[link].base_fcid for link in range(1, 301)]
    assert len(set(ids)) == 300 and all(i >> 16 == h.fabric.domain_id for i in ids)
    h.check_invariants()


def test_fabric_ids_per_domain_run_out_cleanly():
    """FC-FS-4 11.2: when no N_Port_ID is left in the domain the login gets LS_RJT
    insufficient resources instead of an exception."""
    h = FabricHarness()
    alloc = h.fabric.addresses
    for area in range(1, 256):  # every ID of the domain taken (as if by other logins)
        for port in range(256):
            alloc._in_use.add((alloc.domain << 16) | (area << 8) | port)
        alloc._area_used[area] = 256
    h.link_up(1)
    assert ls_rjt(h.flogi(1, wwpn(1))) == NO_RESOURCES


# ======================================================================== duplicate WWPNs


def test_duplicate_wwpn_reject_across_links(h):
    """docs/behaviour.md 2, duplicate_wwpn = "reject" (default): a second FLOGI with a WWPN logged in
    on another link gets LS_RJT and the first login is kept."""
    first = h.port(1, wwpn(1))
    h.link_up(2)
    reply = h.flogi(2, wwpn(1))
    assert ls_rjt(reply) == DUPLICATE
    assert h.fabric.links[2].state is LinkState.UNLOGGED
    rec = h.fabric.port(wwpn(1))
    assert rec.fcid == first.fcid and rec.link_id == 1
    h.check_invariants()


def test_duplicate_wwpn_reject_fdisc_same_link(h):
    """docs/behaviour.md 2, "reject": an FDISC for a WWPN already logged in (same link, another
    N_Port_ID) gets LS_RJT; the first vport keeps its ID."""
    h.port(1, wwpn(1))
    v = h.port(1, wwpn(2))
    assert ls_rjt(h.fdisc(1, wwpn(2))) == DUPLICATE
    assert ls_rjt(h.fdisc(1, wwpn(1))) == DUPLICATE
    assert h.fabric.port(wwpn(2)).fcid == v.fcid
    assert len(h.fabric.links[1].fcids) == 2
    h.check_invariants()


def test_duplicate_wwpn_reject_fdisc_across_links(h):
    """docs/behaviour.md 2, "reject": an FDISC on another link with a logged-in WWPN gets LS_RJT."""
    h.port(1, wwpn(1))
    h.port(2, wwpn(2))
    assert ls_rjt(h.fdisc(2, wwpn(1))) == DUPLICATE
    assert h.fabric.port(wwpn(1)).link_id == 1


REPLACE = '[fabric]\nduplicate_wwpn = "replace"\nrscn_coalesce_ms = 10\n'


def _logos(sent, fcid):
    """LOGOs the fabric sent from FFFFFE to `fcid`."""
    out = []
    for s in sent:
        if s.is_els_request and s.payload[0] == ElsCommand.LOGO and s.header.d_id == fcid:
            assert s.header.s_id == F_PORT
            out.append(s.els_request())
    return out


def test_duplicate_wwpn_replace_across_links():
    """docs/behaviour.md 2, duplicate_wwpn = "replace": the first login is logged out (it is sent a
    LOGO from FFFFFE, an RSCN reports it) and the second is accepted."""
    h = FabricHarness(REPLACE)
    watcher = h.port(9, wwpn(99), scr=3)
    first = h.port(1, wwpn(1))
    fv = h.port(1, wwpn(5))  # a vport of the first port: goes with it
    h.flush_rscns()
    h.link_up(2)
    out = h.els(2, 0, F_PORT, ServiceParameters.flogi(wwpn(1), node_of(wwpn(1))).encode())
    logos = _logos(out, first.fcid)
    assert len(logos) == 1 and isinstance(logos[0], Logo)
    assert logos[0].port_id == first.fcid and logos[0].port_name == wwpn(1)
    assert [s.link for s in out if s.is_els_request and s.payload[0] == ElsCommand.LOGO] == [1]
    replies = [s for s in out if s.link == 2]
    assert len(replies) == 1
    second = accepted_fcid(replies[0])
    assert second != first.fcid
    rec = h.fabric.port(wwpn(1))
    assert rec.fcid == second and rec.link_id == 2
    assert h.fabric.links[1].state is LinkState.UNLOGGED
    assert h.fabric.port(wwpn(5)) is None
    got = rscn_ids(h.run_until(h.now + 1))
    assert {first.fcid, fv.fcid, second} <= set(got[watcher.fcid])
    assert h.fabric.counters["duplicate_wwpn_replaced"] == 1
    h.check_invariants()


def test_duplicate_wwpn_replace_fdisc_same_link():
    """docs/behaviour.md 2, "replace", FDISC on the same link: the vport holding the WWPN is sent a
    LOGO and released alone; the new FDISC is accepted with a new N_Port_ID."""
    h = FabricHarness(REPLACE)
    watcher = h.port(9, wwpn(99), scr=3)
    base = h.port(1, wwpn(1))
    v = h.port(1, wwpn(2))
    h.flush_rscns()
    out = h.els(1, 0, F_PORT, ServiceParameters.fdisc(wwpn(2), node_of(wwpn(2))).encode())
    assert len(_logos(out, v.fcid)) == 1
    replies = [s for s in out if s.is_els_reply]
    assert len(replies) == 1
    new = accepted_fcid(replies[0])
    assert new != v.fcid
    assert h.fabric.links[1].fcids == {base.fcid, new}
    assert h.fabric.port(wwpn(2)).fcid == new
    got = rscn_ids(h.run_until(h.now + 1))
    assert set(got[watcher.fcid]) == {v.fcid, new}
    h.check_invariants()


def test_duplicate_wwpn_replace_fdisc_of_vport_on_other_link():
    """"replace" for an FDISC whose WWPN is a vport on another link: only that vport goes."""
    h = FabricHarness(REPLACE)
    h.port(1, wwpn(1))
    v = h.port(1, wwpn(2))
    h.port(2, wwpn(3))
    out = h.els(2, 0, F_PORT, ServiceParameters.fdisc(wwpn(2), node_of(wwpn(2))).encode())
    assert len(_logos(out, v.fcid)) == 1
    assert h.fabric.links[1].state is LinkState.LOGGED_IN
    assert h.fabric.port(wwpn(1)) is not None
    assert h.fabric.port(wwpn(2)).link_id == 2
    h.check_invariants()


def test_fdisc_with_the_links_own_flogi_wwpn_is_refused():
    """An FDISC carrying the WWPN of its own link's FLOGI port cannot replace it (the
    physical N_Port's logout would end the link's login the FDISC depends on): LS_RJT
    invalid port name under either policy, the link keeps its logins."""
    for policy in ("reject", "replace"):
        h = FabricHarness(f'[fabric]\nduplicate_wwpn = "{policy}"\n')
        base = h.port(1, wwpn(1))
        h.port(1, wwpn(2))
        out = h.els(1, 0, F_PORT, ServiceParameters.fdisc(wwpn(1), node_of(wwpn(1))).encode())
        assert len(out) == 1, out
        assert ls_rjt(out[0]) == DUPLICATE
        assert h.fabric.port(wwpn(1)).fcid == base.fcid
        assert h.fabric.links[1].base_fcid == base.fcid
        h.check_invariants()


def test_administrative_logout(h):
    """Fabric.logout_port (switch CLI): the port is sent a LOGO from FFFFFE and released."""
    h.port(1, wwpn(1))
    v = h.port(1, wwpn(2))
    h.take()
    assert h.fabric.logout_port(wwpn(2), h.now)
    logos = _logos(h.take(), v.fcid)
    assert len(logos) == 1
    assert h.fabric.port(wwpn(2)) is None and h.fabric.links[1].state is LinkState.LOGGED_IN
    assert h.fabric.logout_port(wwpn(1), h.now)
    assert h.fabric.links[1].state is LinkState.UNLOGGED
    assert not h.fabric.logout_port(wwpn(1), h.now)
    h.check_invariants()


def test_els_from_unassigned_s_id_after_login_is_discarded(h):
    """docs/behaviour.md 2: once the link is logged in, an ELS whose S_ID is not assigned on it is
    dropped (anti-spoofing), not answered."""
    h.port(1, wwpn(1))
    other = h.port(2, wwpn(2))
    assert h.els(1, other.fcid, CONTROLLER, bytes((ElsCommand.SCR, 0, 0, 0, 0, 0, 0, 3))) == []
    assert h.fabric.links[1].counters["discard_s_id_not_assigned_on_link"] == 1
    assert other.fcid not in h.fabric._scr


# ============================================================ random sequences (hypothesis)

LINKS = st.integers(1, 4)
NAMES = st.integers(1, 6).map(wwpn)


class LoginMachine(RuleBasedStateMachine):
    """Random FLOGI / FDISC / LOGO / link-up / link-down sequences (docs/behaviour.md 2 and 6).

    After every step: each logged-in record's N_Port_ID is in its link's fcids and vice
    versa; no two records share a WWPN or N_Port_ID; the allocator's in-use set is the
    database's N_Port_IDs. Each reply is checked against what the state before it implies.
    """

    policy = "reject"

    def __init__(self) -> None:
        super().__init__()
        self.h = FabricHarness(f'[fabric]\nduplicate_wwpn = "{self.policy}"\n'
                               "max_npiv_per_link = 3\n")
        self.ever: set[int] = set()  # every N_Port_ID handed out so far

    def _link(self, link: int):
        return self.h.fabric.links.get(link)

    @rule(link=LINKS)
    def link_up(self, link):
        if link not in self.h.fabric.links:
            self.h.link_up(link)

    @rule(link=LINKS)
    def link_down(self, link):
        before = set(self._link(link).fcids) if self._link(link) else set()
        self.h.link_down(link)  # RSCNs are queued, nothing is sent at once
        assert link not in self.h.fabric.links
        assert not any(self.h.fabric.addresses.in_use(f) for f in before)

    def _login(self, link, name, fdisc):
        fab = self.h.fabric
        lk = self._link(link)
        if lk is None:
            return
        was_state = lk.state
        held_elsewhere = fab.port(name)
        if fdisc:
            out = self.h.els(link, 0, F_PORT, ServiceParameters.fdisc(name, node_of(name)).encode())
        else:
            out = self.h.els(link, 0, F_PORT, ServiceParameters.flogi(name, node_of(name)).encode())
        replies = [s for s in out if s.link == link and s.is_els_reply]
        assert len(replies) == 1, out
        reply = replies[0]
        acc = reply.els_reply(ElsCommand.FLOGI)
        if fdisc and was_state is LinkState.UNLOGGED:
            assert ls_rjt(reply) == LOGIN_REQUIRED
            return
        own_base = (held_elsewhere is not None and held_elsewhere.link_id == link
                    and held_elsewhere.fcid == lk.base_fcid)
        if isinstance(acc, ServiceParameters):
            fcid = reply.header.d_id
            assert fcid not in self.ever, "released IDs are not reused at once"
            self.ever.add(fcid)
            assert fab.port(name).fcid == fcid and fcid in lk.fcids
            assert fcid >> 16 == 1
            if held_elsewhere is not None:
                # only "replace", or a re-FLOGI's implicit logout of its own link, lets a
                # logged-in WWPN through
                assert self.policy == "replace" or (not fdisc and held_elsewhere.link_id == link)
                assert fab.db.get(held_elsewhere.fcid) is None or held_elsewhere.fcid == fcid
            if not fdisc:
                assert lk.fcids == {fcid} and lk.base_fcid == fcid
        else:
            reason = ls_rjt(reply)
            assert reason in (DUPLICATE, NO_RESOURCES), reason
            if reason == DUPLICATE:
                assert held_elsewhere is not None
                assert self.policy == "reject" or (fdisc and own_base)
                assert fab.port(name) is not None  # the first login is kept
            else:
                assert fdisc and len(lk.fcids) == 1 + 3  # max_npiv_per_link = 3 vports

    @rule(link=LINKS, name=NAMES)
    def flogi(self, link, name):
        self._login(link, name, fdisc=False)

    @rule(link=LINKS, name=NAMES)
    def fdisc(self, link, name):
        self._login(link, name, fdisc=True)

    @precondition(lambda self: len(self.h.fabric.db) > 0)
    @rule(data=st.data())
    def logo(self, data):
        rec = data.draw(st.sampled_from(sorted(self.h.fabric.db, key=lambda r: r.fcid)))
        link = self._link(rec.link_id)
        was_base = rec.fcid == link.base_fcid
        reply = self.h.logo(rec.link_id, rec.fcid, rec.wwpn)
        assert isinstance(reply.els_reply(ElsCommand.LOGO), LsAcc)
        assert self.h.fabric.db.get(rec.fcid) is None
        if was_base:
            assert link.state is LinkState.UNLOGGED and not link.fcids

    @rule(link=LINKS)
    def logo_before_login(self, link):
        lk = self._link(link)
        if lk is not None and lk.state is LinkState.UNLOGGED:
            assert ls_rjt(self.h.logo(link, 0, wwpn(1))) == LOGIN_REQUIRED

    @invariant()
    def bookkeeping(self):
        self.h.check_invariants()


class ReplaceLoginMachine(LoginMachine):
    policy = "replace"


_machine_settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])
TestLoginMachineReject = LoginMachine.TestCase
TestLoginMachineReject.settings = _machine_settings
TestLoginMachineReplace = ReplaceLoginMachine.TestCase
TestLoginMachineReplace.settings = _machine_settings
