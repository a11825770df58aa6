"""Property tests: random sequences of PERSISTENT RESERVE OUT commands (random service
action, type, scope, keys, SPEC_I_PT / ALL_TG_PT / APTPL, REGISTER AND MOVE destinations)
from 3 initiators x 2 target ports, mixed with SPC-2 RESERVE/RELEASE, nexus loss and
resets, never break the invariants:

- at most one reservation; its holder is a registrant, or the type is all-registrants and
  somebody is registered;
- READ KEYS lists exactly the registrations, READ FULL STATUS and READ RESERVATION agree;
- PRGENERATION moves by exactly +1 on a successful REGISTER, R&IEK, CLEAR, PREEMPT,
  PREEMPT AND ABORT or REGISTER AND MOVE and by 0 on everything else;
- a command that fails changes nothing and has no side effects;
- nobody gets a unit attention from their own command; preempted nexuses get 2A/05,
  cleared ones 2A/03;
- with APTPL active, a restart restores exactly the registrations and the reservation;
  without it, nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fcsoft.scsi.sense import Status
from fcsoft.scsi.types import Nexus

from .test_reservations import (
    CLEAR,
    I1,
    I2,
    I3,
    P1,
    P2,
    PREEMPT,
    PREEMPT_AND_ABORT,
    R_AND_M,
    R_IEK,
    READ_FULL_STATUS,
    READ_KEYS,
    REGISTER,
    RESERVE,
    UA_REG_PREEMPTED,
    UA_RES_PREEMPTED,
    Lu,
    cmd,
    nx,
    params,
    rm_params,
    tid,
)

NEXUSES = [nx(i, p) for i in (I1, I2, I3) for p in (P1, P2)]
KEYS = st.sampled_from([1, 2, 3, 1, 2, 3, 0xFFFF_FFFF_FFFF_FFFF, 0])
BUMPS = {REGISTER, CLEAR, PREEMPT, PREEMPT_AND_ABORT, R_IEK, R_AND_M}


def mostly(usual: Any, *rare: Any) -> st.SearchStrategy[Any]:
    """`usual` nine times out of ten: valid commands dominate, errors still
    happen. Plain values or strategies."""
    def strat(x: Any) -> st.SearchStrategy[Any]:
        return x if isinstance(x, st.SearchStrategy) else st.just(x)
    rare_strategy = st.one_of(*map(strat, rare))
    return st.sampled_from([True] * 9 + [False]).flatmap(
        lambda common: strat(usual) if common else rare_strategy)


prout_op = st.fixed_dictionaries({
    "op": st.just("prout"),
    "who": st.one_of(st.integers(0, 5), st.just(-1)),  # -1: the reservation holder
    "sa": st.sampled_from([0, 0, 0, 1, 1, 2, 2, 3, 4, 4, 4, 5, 5, 5, 6, 7, 7, 7, 7, 8]),
    "type": mostly(st.sampled_from([1, 3, 5, 6, 7, 8]), st.sampled_from([0, 2, 4, 9, 15])),
    "scope": mostly(0, 1),
    "rk": KEYS,
    "sark": KEYS,
    "spec_i_pt": mostly(False, True),
    "all_tg_pt": mostly(False, True),
    "aptpl": st.booleans(),
    "tids": st.lists(st.sampled_from([I1, I2, I3, 0x5555]), max_size=3),
    "rtpi": mostly(st.sampled_from([1, 2]), 3),
    "dest": mostly(st.sampled_from([1, 2]), 0),  # initiator offset from the caller's
    "unreg": st.booleans(),
    "honest_key": mostly(True, False),  # RK = the caller's registered key (0 if none)
})
other_op = st.fixed_dictionaries({
    "op": st.sampled_from(["reserve6", "release6", "release6", "nexus_lost", "reset"]),
    "who": st.integers(0, 5),
})
# a prefix of plain registrations (and a RESERVE) so that the random commands after it
# mostly meet a populated LU, then anything
register_op = prout_op.map(lambda o: dict(o, sa=REGISTER, honest_key=True, spec_i_pt=False,
                                          sark=o["sark"] or 1))
reserve_op = prout_op.map(lambda o: dict(o, sa=RESERVE, honest_key=True, scope=0,
                                         type=o["type"] if o["type"] in (1, 3, 5, 6, 7, 8)
                                         else 1))
ops = st.tuples(st.lists(register_op, max_size=6), st.lists(reserve_op, max_size=1),
                st.lists(st.one_of(prout_op, other_op.filter(lambda o: o["op"] != "reserve6"),
                                   prout_op, prout_op, other_op), min_size=1, max_size=40),
                ).map(lambda t: t[0] + t[1] + t[2])


def snapshot(lu: Lu) -> tuple[Any, ...]:
    e = lu.engine
    return (e.registrations, e.reservation, e.generation, e.aptpl_active, e.spc2_holder)


def caller(lu: Lu, o: dict[str, Any]) -> Nexus:
    if o["who"] == -1:
        holders = sorted(lu.engine.holders, key=str)
        return holders[0] if holders else NEXUSES[0]
    return NEXUSES[int(o["who"])]


def run_prout(lu: Lu, o: dict[str, Any], allow_aptpl: bool) -> tuple[int, Any]:
    nexus = caller(lu, o)
    reg = lu.engine.registrations.get(nexus)
    rk = (0 if reg is None else reg.key) if o["honest_key"] else o["rk"]
    sa = o["sa"]
    aptpl = o["aptpl"] and allow_aptpl
    if sa == R_AND_M:
        initiators = [I1, I2, I3]
        dest = initiators[(initiators.index(nexus.initiator) + o["dest"]) % 3]
        data = rm_params(rk, o["sark"], o["rtpi"], dest, unreg=o["unreg"],
                         aptpl=aptpl)
    else:
        spec = o["spec_i_pt"] and sa == REGISTER
        data = params(rk, o["sark"], spec_i_pt=spec, all_tg_pt=o["all_tg_pt"],
                      aptpl=aptpl, tids=[tid(t) for t in o["tids"]] if spec else None)
    return sa, lu.prout(nexus, sa, type_=o["type"], scope=o["scope"], data=data)


def check_invariants(lu: Lu) -> None:
    e = lu.engine
    regs = e.registrations
    res = e.reservation
    # at most one reservation, held by a registrant (or every registrant for 7/8)
    if res is not None:
        if res.type.all_registrants:
            assert res.holder is None and regs
            assert e.holders == frozenset(regs)
        else:
            assert res.holder in regs and e.holders == {res.holder}
    assert all(r.key != 0 for r in regs.values())
    # ALL_TG_PT marks are truthful: one key on every port of that initiator
    for n, r in regs.items():
        if r.all_tg_pt:
            siblings = [m for m in regs if m.initiator == n.initiator]
            assert {m.target for m in siblings} == {P1, P2}
            assert len({regs[m].key for m in siblings}) == 1
    if e.spc2_holder is not None:
        assert not regs  # SPC-2 and persistent registrations exclude each other
        return  # PR IN conflicts while an SPC-2 reservation is held
    gen, keys = lu.read_keys()
    assert gen == e.generation
    assert keys == [r.key for r in regs.values()]
    ds = lu.full_status()
    assert [(d.wwpn, d.rtpi, d.key, d.all_tg_pt) for d in ds] == [
        (n.initiator, n.relative_port, r.key, r.all_tg_pt) for n, r in regs.items()]
    assert [d.r_holder for d in ds] == [e.is_holder(n) for n in regs]
    rr = lu.read_reservation()
    if res is None:
        assert rr is None
    else:
        key = 0 if res.type.all_registrants else regs[res.holder].key  # type: ignore[index]
        assert rr == (key, 0, res.type)


def check_restart(lu: Lu, path: Path) -> None:
    e = lu.engine
    again = Lu(aptpl_path=path)
    if e.aptpl_active:
        assert again.engine.registrations == e.registrations
        assert again.engine.reservation == e.reservation
        assert again.engine.aptpl_active
    else:
        assert again.engine.registrations == {} and again.engine.reservation is None
    assert again.engine.generation == 0


def play(lu: Lu, sequence: list[dict[str, Any]], path: Path | None) -> None:
    for o in sequence:
        for n in NEXUSES:
            lu.ua.clear(n)
        lu.aborts.clear()
        before = snapshot(lu)
        nexus = caller(lu, o)
        if o["op"] == "prout":
            sa, result = run_prout(lu, o, path is not None)
            after = snapshot(lu)
            delta = (after[2] - before[2]) & 0xFFFF_FFFF
            if result.status != Status.GOOD:
                assert after == before, "a failed command changed state"
                assert all(lu.ua.pending(n) == () for n in NEXUSES)
                assert lu.aborts == []
                assert delta == 0
            else:
                assert delta == (1 if sa in BUMPS else 0), (sa, delta)
                if sa in (RESERVE, 2):
                    assert after[0] == before[0]  # RESERVE / RELEASE keep registrations
                assert lu.ua.pending(nexus) == (), "UA to the command's own nexus"
                gone = set(before[0]) - set(after[0])
                if sa in (PREEMPT, PREEMPT_AND_ABORT):
                    for n in gone - {nexus}:
                        assert UA_REG_PREEMPTED in lu.ua.pending(n)
                if sa == CLEAR:
                    for n in gone - {nexus}:
                        assert lu.ua.pending(n)[0] == UA_RES_PREEMPTED
                if sa != PREEMPT_AND_ABORT:
                    assert lu.aborts == []
        else:
            c = cmd(nexus, bytes((0x16 if o["op"] == "reserve6" else 0x17,)) + bytes(5))
            if o["op"] == "reserve6":
                lu.engine.reserve(c)
            elif o["op"] == "release6":
                lu.engine.release(c)
            elif o["op"] == "nexus_lost":
                lu.engine.nexus_lost(nexus)
            else:
                lu.engine.reset()
            after = snapshot(lu)
            assert after[:4] == before[:4], "SPC-2 commands touched persistent state"
        check_invariants(lu)
        if path is not None:
            check_restart(lu, path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_prout_sequences_keep_invariants(sequence: list[dict[str, Any]]) -> None:
    play(Lu(), sequence, None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_sequences_with_aptpl_survive_restarts(sequence: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "pr.json"
        play(Lu(aptpl_path=path), sequence, path)


@settings(max_examples=100, deadline=None)
@given(ops, st.sampled_from([READ_KEYS, READ_FULL_STATUS]), st.integers(0, 200))
def test_truncation_never_changes_additional_length(sequence: list[dict[str, Any]], sa: int,
                                                    alloc: int) -> None:
    lu = Lu()
    play(lu, sequence, None)
    if lu.engine.spc2_holder is not None:
        return
    full = bytes(lu.prin(NEXUSES[0], sa).data)
    cut = lu.prin(NEXUSES[0], sa, alloc)
    assert cut.status == Status.GOOD and bytes(cut.data) == full[:alloc]
