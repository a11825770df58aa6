"""The routing verdict cache and the raw data path keep every rule of docs/behaviour.md 2.

The fabric computes whether a frame from S_ID to D_ID arriving on a link may pass (the S_ID
is assigned on that link, the D_ID is logged in, the two share a zone) once per (link,
S_ID, D_ID) and keeps the answer until a login, a logout or a zoning change. These tests
change each of those after a pair's verdict is cached and check that the next frame sees
the new state, on both ways into routing: a decoded frame (`frame_received`, from a TCP
link) and raw bytes from a port attached in process (`route_raw`, which may carry several
frames of one sequence).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from fcsoft.wire.encap import encode_sequence, split_frames
from fcsoft.wire.header import FcType, RCtl

from .conftest import FabricHarness, wwpn, zones_toml


def _raw(s_id: int, d_id: int, data: bytes = bytes(5000), size: int = 2048) -> bytes:
    """A read's data-in sequence, several frames back to back, as a target port builds it."""
    return encode_sequence(RCtl.SOLICITED_DATA, d_id, s_id, FcType.FCP, 0x880008, 1, 0x1234,
                           0x5678, data, size)


def _route_raw(h: FabricHarness, link: int, s_id: int, d_id: int,
               raw: bytes) -> tuple[bool, list]:
    h.take()
    ok = h.fabric.route_raw(link, s_id, d_id, raw)
    return ok, h.take()


def _routed_to(h: FabricHarness, sender, d_id: int) -> int | None:
    """The link a decoded frame from `sender` to `d_id` reached (None: discarded)."""
    _raw_bytes, out = sender.send(d_id)
    assert len(out) <= 1
    return out[0].link if out else None


def test_zoning_change_applies_to_the_next_frame():
    h = FabricHarness(f"[fabric]\n{zones_toml({'ab': [wwpn(1), wwpn(2)]})}\n")
    a, b = h.port(1, wwpn(1)), h.port(2, wwpn(2))
    assert _routed_to(h, a, b.fcid) == 2  # the verdict is now cached
    assert _route_raw(h, 1, a.fcid, b.fcid, _raw(a.fcid, b.fcid))[0]
    h.fabric.set_zoning({"a": [wwpn(1)], "b": [wwpn(2)]}, h.now)
    assert _routed_to(h, a, b.fcid) is None
    ok, out = _route_raw(h, 1, a.fcid, b.fcid, _raw(a.fcid, b.fcid))
    assert not ok and out == []
    assert h.fabric.links[1].counters["discard_not_zoned"] == 2
    h.fabric.set_zoning({"ab": [wwpn(1), wwpn(2)]}, h.now)
    assert _routed_to(h, a, b.fcid) == 2


def test_logout_of_the_destination_applies_to_the_next_frame():
    h = FabricHarness()
    a, b = h.port(1, wwpn(1)), h.port(2, wwpn(2))
    gone = b.fcid
    assert _routed_to(h, a, gone) == 2
    assert _route_raw(h, 1, a.fcid, gone, _raw(a.fcid, gone))[0]
    b.logo()
    assert _routed_to(h, a, gone) is None
    assert not _route_raw(h, 1, a.fcid, gone, _raw(a.fcid, gone))[0]
    assert h.fabric.links[1].counters["discard_unknown_d_id"] == 2


def test_an_n_port_id_given_again_routes_to_its_new_link():
    h = FabricHarness()
    a = h.port(1, wwpn(1))
    b = h.port(2, wwpn(2))
    old = b.fcid
    assert _routed_to(h, a, old) == 2
    h.link_down(2)
    # the allocator hands IDs out round robin, so a reuse takes thousands of logins:
    # make the next login get the old ID at once
    alloc = h.fabric.addresses
    real = alloc.allocate
    alloc.allocate = lambda area: old if not alloc.in_use(old) else real(area)
    c = h.port(5, wwpn(5))
    assert c.fcid == old
    assert _routed_to(h, a, old) == c.link
    ok, out = _route_raw(h, 1, a.fcid, old, _raw(a.fcid, old))
    assert ok and {s.link for s in out} == {c.link}


def test_a_logged_out_vport_can_no_longer_send():
    """Anti-spoofing after a cached verdict: the S_ID of an NPIV port that logged out is no
    longer assigned on its link."""
    h = FabricHarness()
    base = h.port(1, wwpn(1))
    vport = h.port(1, wwpn(2))
    other = h.port(2, wwpn(3))
    assert _routed_to(h, vport, other.fcid) == 2
    assert _route_raw(h, 1, vport.fcid, other.fcid, _raw(vport.fcid, other.fcid))[0]
    vport.logo()
    assert _routed_to(h, vport, other.fcid) is None
    assert not _route_raw(h, 1, vport.fcid, other.fcid, _raw(vport.fcid, other.fcid))[0]
    assert h.fabric.links[1].counters["discard_s_id_not_assigned_on_link"] == 2
    assert _routed_to(h, base, other.fcid) == 2


def test_a_link_that_comes_back_owns_nothing_until_it_logs_in():
    h = FabricHarness()
    a, b = h.port(1, wwpn(1)), h.port(2, wwpn(2))
    assert _routed_to(h, a, b.fcid) == 2
    h.link_down(1)
    h.link_up(1)  # the same link id again, no FLOGI yet
    assert _routed_to(h, a, b.fcid) is None
    assert not _route_raw(h, 1, a.fcid, b.fcid, _raw(a.fcid, b.fcid))[0]


def test_route_raw_forwards_a_whole_sequence_unchanged():
    h = FabricHarness()
    a, b = h.port(1, wwpn(1)), h.port(2, wwpn(2))
    raw = _raw(a.fcid, b.fcid, bytes(range(256)) * 20)
    ok, out = _route_raw(h, 1, a.fcid, b.fcid, raw)
    assert ok
    assert b"".join(s.raw for s in out) == raw
    assert [s.raw for s in out] == [bytes(f) for f in split_frames(raw)]
    assert {s.link for s in out} == {2}


def test_route_raw_discards_are_counted_and_never_raise():
    h = FabricHarness(f"[fabric]\n{zones_toml({'ab': [wwpn(1), wwpn(2)], 'c': [wwpn(3)]})}\n")
    a, b, c = (h.port(n, wwpn(n)) for n in (1, 2, 3))
    assert not _route_raw(h, 1, b.fcid, c.fcid, _raw(b.fcid, c.fcid))[0]  # spoofed S_ID
    assert not _route_raw(h, 1, a.fcid, c.fcid, _raw(a.fcid, c.fcid))[0]  # not zoned
    assert not _route_raw(h, 1, a.fcid, 0x01FE01, _raw(a.fcid, 0x01FE01))[0]  # nobody
    assert not _route_raw(h, 99, a.fcid, b.fcid, _raw(a.fcid, b.fcid))[0]  # no such link
    counters = h.fabric.links[1].counters
    assert counters["discard_s_id_not_assigned_on_link"] == 1
    assert counters["discard_not_zoned"] == 1
    assert counters["discard_unknown_d_id"] == 1
    h.queue_full.add(2)
    assert not _route_raw(h, 1, a.fcid, b.fcid, _raw(a.fcid, b.fcid))[0]
    assert counters["discard_destination_queue_full"] == 1


# -- the cache never changes a decision ------------------------------------------------

_OPS = st.lists(st.tuples(st.sampled_from(["login", "logout", "link_down", "zone"]),
                          st.integers(0, 5)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(_OPS, st.integers(0, 2**32 - 1))
def test_cached_verdicts_equal_fresh_ones(ops, seed):
    """After any sequence of logins, logouts, link losses and zoning changes, every frame is
    routed (or discarded, for the same reason) exactly as with an empty cache."""
    rng = random.Random(seed)
    h = FabricHarness()
    ports: dict[int, object] = {}  # port number -> Port (logged in)
    links_up: set[int] = set()
    for op, x in ops:
        n = x + 1
        if op == "login" and n not in ports:
            link = rng.choice([n, n + 10]) if n not in links_up else n
            ports[n] = h.port(link, wwpn(n))
            links_up.add(ports[n].link)
        elif op == "logout" and n in ports:
            ports.pop(n).logo()
        elif op == "link_down" and n in ports:
            link = ports[n].link
            h.link_down(link)
            links_up.discard(link)
            for k in [k for k, p in ports.items() if p.link == link]:
                del ports[k]
        elif op == "zone":
            members = [wwpn(k + 1) for k in range(6) if rng.random() < 0.6]
            rest = [wwpn(k + 1) for k in range(6) if wwpn(k + 1) not in members]
            h.fabric.set_zoning({"z1": members, "z2": rest[:3]} if members else None, h.now)
        # every pair, including stale IDs of ports that left: all through the cache as
        # the operations left it, then all again with the cache emptied
        pairs = [(sender.link, s_id, d_id) for sender in ports.values()
                 for d_id in {p.fcid for p in ports.values()} | {0x010f01}
                 for s_id in (sender.fcid, 0x010e01)]
        cached = [_outcome(h, *pair) for pair in pairs]
        h.fabric._verdicts.clear()
        fresh = [_outcome(h, *pair) for pair in pairs]
        assert cached == fresh


def _outcome(h: FabricHarness, link: int, s_id: int, d_id: int) -> object:
    before = dict(h.fabric.links[link].counters) if link in h.fabric.links else {}
    ok, out = _route_raw(h, link, s_id, d_id, _raw(s_id, d_id, bytes(100)))
    after = dict(h.fabric.links[link].counters) if link in h.fabric.links else {}
    reasons = sorted(k for k in after if k.startswith("discard_") and after[k] != before.get(k))
    return ok, sorted({s.link for s in out}), reasons
