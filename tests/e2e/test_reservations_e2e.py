"""Persistent reservations end to end over TCP through the fabric (issue "Persistent
reservations", docs/behaviour.md 3): initiators on separate links and NPIV vports, through both
target ports of one array; what each party may do under each type, the unit attentions each
receives, PREEMPT AND ABORT of an outstanding command, ALL_TG_PT against per-port nexuses,
READ FULL STATUS, and APTPL across a restart."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from fcsoft.initiator.scsi import ITNexus
from fcsoft.server.process import StartupError
from fcsoft.wire.wwn import WWN

from .helpers import (
    CHECK,
    CLEAR,
    CONFLICT,
    PREEMPT,
    PREEMPT_AND_ABORT,
    REG_IGNORE,
    REG_PREEMPTED,
    REGISTER,
    RELEASE,
    REPORT_CAPABILITIES,
    RES_PREEMPTED,
    RES_RELEASED,
    RESERVE,
    TASK_ABORTED,
    access,
    config,
    fc_transport_id,
    full,
    hold_write,
    prout,
    prout_ok,
    rd,
    read_full_status,
    read_keys,
    read_reservation,
    ready,
    register,
    running_lab,
    sense3,
    unit_attentions,
)

H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"
H3 = "10:00:00:00:c9:00:00:03"
V1 = "c0:50:76:00:00:00:00:01"  # NPIV vport on H1's link
V2 = "c0:50:76:00:00:00:00:02"  # NPIV vport on H2's link
STRANGER = "10:00:00:00:c9:00:00:99"  # in no host entry
T1 = "50:01:43:80:00:00:00:01"
T2 = "50:01:43:80:00:00:00:02"

def array_toml(backing: str = "memory") -> str:
    return f"""
[fabric]
rscn_coalesce_ms = 5

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{T1}", "{T2}"]

[[array.lun]]
name = "disk"
size = "1MiB"
backing = "{backing}"

[[array.host]]
name = "cluster"
initiators = ["{H1}", "{H2}", "{H3}", "{V1}", "{V2}"]
luns = {{ 0 = "disk" }}
"""


ARRAY = array_toml()


@dataclass
class Ports:
    """The logged-in N_Ports: three links, and one NPIV vport on each of the first two."""

    h1: Any
    h2: Any
    h3: Any
    v1: Any
    v2: Any


@asynccontextmanager
async def san(lab: Any) -> AsyncIterator[tuple[Ports, AsyncExitStack]]:
    async with AsyncExitStack() as stack, lab.host(H1) as h1, lab.host(H2) as h2, \
            lab.host(H3) as h3:
        ports = Ports(h1, h2, h3, await h1.add_vport(V1), await h2.add_vport(V2))
        yield ports, stack


async def nexus(stack: AsyncExitStack, port: Any, target: str, *,
                fresh: bool = True) -> ITNexus:
    """PLOGI + PRLI from `port` to `target` (LOGO when the stack closes); with `fresh`, the
    first contact's POWER ON unit attention is taken."""
    it = await stack.enter_async_context(port.connect(target))
    if fresh:
        await ready(it)
    return it


async def test_registrations_from_links_and_vports_through_both_ports(traced):
    async with running_lab(config(ARRAY), traced) as lab, san(lab) as (p, stack):
        h1 = await nexus(stack, p.h1, T1)
        h2 = await nexus(stack, p.h2, T2)
        h3 = await nexus(stack, p.h3, T1)
        v1 = await nexus(stack, p.v1, T2)
        v2 = await nexus(stack, p.v2, T1)
        assert await read_keys(v2) == (0, [])
        # RESERVE from an unregistered nexus conflicts even with nothing reserved
        assert (await prout(v1, RESERVE, type=1)).status == CONFLICT
        await register(h1, 0x11, all_tg_pt=True)  # through T1 and T2 at once
        await register(h2, 0x22)
        await register(h3, 0x33)
        await register(v1, 0x44)
        await prout_ok(v2, REG_IGNORE, 0, 0x55)
        # REGISTER with a wrong key from a registered nexus conflicts, and changes nothing
        assert (await prout(h2, REGISTER, 0x99, 0x77)).status == CONFLICT
        # every PR OUT REGISTER command counts once
        assert await read_keys(h2) == (5, [0x11, 0x11, 0x22, 0x33, 0x44, 0x55])
        await prout_ok(h3, RESERVE, 0x33, type=1)
        gen, status = await read_full_status(v1)
        assert gen == 5
        assert status == [
            full(0x11, H1, 1, all_tg_pt=True), full(0x11, H1, 2, all_tg_pt=True),
            full(0x22, H2, 2), full(0x33, H3, 1, holder=True, type=1), full(0x44, V1, 2),
            full(0x55, V2, 1)]
        caps = (await h1.persistent_reserve_in(0, REPORT_CAPABILITIES)).data
        assert caps[:2] == b"\x00\x08" and caps[2] & 0x0C == 0x0C  # SIP_C, ATP_C
        assert caps[2] & 0x01 == 0  # memory-backed: PTPL_C = 0
        # unregistering with ALL_TG_PT removes the registration through both ports
        await prout_ok(h1, REGISTER, 0x11, 0, all_tg_pt=True)
        assert await read_keys(h3) == (6, [0x22, 0x33, 0x44, 0x55])
        assert lab.scsi().units["disk"].reservations.holder.initiator == WWN(H3)


@pytest.mark.fcsoft_config(ARRAY)
async def test_spec_i_pt_registers_other_initiators_all_or_nothing(fcsoft_lab):
    async with san(fcsoft_lab) as (p, stack):
        a = await nexus(stack, p.h1, T1)
        b = await nexus(stack, p.h2, T1)
        v = await nexus(stack, p.v1, T2)

        def listing(*wwpns: str) -> bytes:
            tids = b"".join(fc_transport_id(w) for w in wwpns)
            return struct.pack(">QQ4xBxxxI", 0, 0x5E, 0x08, len(tids)) + tids

        # a TransportID the LU is not mapped for: nothing at all is registered
        r = await prout(a, REGISTER, parameters=listing(H2, STRANGER))
        assert r.status == CHECK and sense3(r) == (0x5, 0x26, 0x00)
        assert await read_keys(a) == (0, [])
        await prout_ok(a, REGISTER, parameters=listing(H2, V1))
        # the listed initiators are registered through the port the command came by
        assert await read_full_status(v) == (1, [full(0x5E, H1, 1), full(0x5E, H2, 1),
                                                 full(0x5E, V1, 1)])
        await prout_ok(b, RESERVE, 0x5E, type=1)  # H2 never sent a REGISTER itself
        assert await access(b) == ("ok", "ok")
        assert await access(v) == ("ok", "conflict")  # V1 is registered through T1 only


# what a READ and a WRITE get, for (registered non-holder, unregistered), per type
ACCESS = {
    1: (("ok", "conflict"), ("ok", "conflict")),
    3: (("conflict", "conflict"), ("conflict", "conflict")),
    5: (("ok", "ok"), ("ok", "conflict")),
    6: (("ok", "ok"), ("conflict", "conflict")),
    7: (("ok", "ok"), ("ok", "conflict")),
    8: (("ok", "ok"), ("conflict", "conflict")),
}


@pytest.mark.fcsoft_config(ARRAY)
@pytest.mark.parametrize("rtype", sorted(ACCESS))
async def test_reservation_type_decides_access_and_release_unit_attentions(fcsoft_lab,
                                                                            rtype):
    async with san(fcsoft_lab) as (p, stack):
        holder = await nexus(stack, p.h1, T1)
        registrant = await nexus(stack, p.h2, T2)
        stranger = await nexus(stack, p.v1, T2)  # NPIV vport, never registered
        other_port = await nexus(stack, p.h2, T1)  # H2 is registered through T2 only
        await register(holder, 0xA)
        await register(registrant, 0xB)
        await prout_ok(holder, RESERVE, 0xA, type=rtype)
        all_registrants = rtype in (7, 8)
        for it in (holder, registrant, stranger):  # every nexus sees the same
            assert await read_reservation(it) == (2, (0 if all_registrants else 0xA, rtype))
        _, status = await read_full_status(stranger)
        assert status == [full(0xA, H1, 1, holder=True, type=rtype),
                          full(0xB, H2, 2, holder=all_registrants, type=rtype)]

        assert await access(holder) == ("ok", "ok")
        reg_access, unreg_access = ACCESS[rtype]
        assert await access(registrant) == reg_access
        assert await access(stranger) == unreg_access
        assert await access(other_port) == unreg_access  # the registration is per nexus
        # SYNCHRONIZE CACHE conflicts wherever WRITE does (docs/behaviour.md 3)
        for it, (_, write) in ((registrant, reg_access), (stranger, unreg_access)):
            r = await it.scsi(0, bytes([0x35]) + bytes(9))
            assert ("ok" if r.good else "conflict" if r.status == CONFLICT else r) == write

        # RELEASE must name the type held
        wrong = 3 if rtype != 3 else 1
        r = await prout(holder, RELEASE, 0xA, type=wrong)
        assert r.status == CHECK and sense3(r) == (0x5, 0x26, 0x04)
        assert (await prout(stranger, RELEASE, 0, type=rtype)).status == CONFLICT
        await prout_ok(holder, RELEASE, 0xA, type=rtype)
        assert await read_reservation(stranger) == (2, None)  # RELEASE: no PRGENERATION
        # 5/6/7/8: the other registrants are told; 1/3: nobody
        told = [RES_RELEASED] if rtype >= 5 else []
        assert await unit_attentions(registrant) == told
        assert await unit_attentions(holder) == []
        assert await unit_attentions(stranger) == []
        assert await unit_attentions(other_port) == []
        assert await access(stranger) == ("ok", "ok")


@pytest.mark.fcsoft_config(ARRAY)
async def test_preempt_clear_and_the_unit_attentions_each_party_receives(fcsoft_lab):
    async with san(fcsoft_lab) as (p, stack):
        a = await nexus(stack, p.h1, T1)
        b = await nexus(stack, p.h2, T2)
        c = await nexus(stack, p.h3, T1)
        n = await nexus(stack, p.v2, T2)  # never registered
        everyone = (a, b, c, n)
        for it, key in ((a, 0xA), (b, 0xB), (c, 0xC)):
            await register(it, key)
        await prout_ok(a, RESERVE, 0xA, type=5)
        assert (await read_keys(n))[0] == 3

        # B preempts the holder A, same type: A loses its registration and learns it
        await prout_ok(b, PREEMPT, 0xB, 0xA, type=5)
        assert await read_reservation(n) == (4, (0xB, 5))
        assert await read_keys(n) == (4, [0xB, 0xC])
        assert [await unit_attentions(it) for it in everyone] == [[REG_PREEMPTED], [], [], []]
        assert await access(a) == ("ok", "conflict")  # unregistered under WE-RO
        assert await access(c) == ("ok", "ok")
        assert (await prout(a, PREEMPT, 0xA, 0xB, type=5)).status == CONFLICT

        # B preempts itself into another type: the remaining registrant hears of it
        await prout_ok(b, PREEMPT, 0xB, 0xB, type=6)
        assert await read_reservation(n) == (5, (0xB, 6))
        assert [await unit_attentions(it) for it in everyone] == [[], [], [RES_RELEASED], []]

        # preempting a registration that does not hold: the reservation stays
        await prout_ok(b, PREEMPT, 0xB, 0xC, type=6)
        assert await read_reservation(n) == (6, (0xB, 6))
        assert [await unit_attentions(it) for it in everyone] == [[], [], [REG_PREEMPTED], []]
        assert await access(c) == ("conflict", "conflict")  # unregistered under EA-RO
        # a key nobody holds: conflict; key 0 while a non-AR reservation exists: 26/00
        assert (await prout(b, PREEMPT, 0xB, 0xD, type=6)).status == CONFLICT
        r = await prout(b, PREEMPT, 0xB, 0, type=6)
        assert r.status == CHECK and sense3(r) == (0x5, 0x26, 0x00)
        assert (await read_keys(n))[0] == 6  # failed commands leave PRGENERATION alone

        # CLEAR: every other registrant is told the reservation was preempted
        await register(a, 0xA)
        await register(c, 0xC)
        assert (await prout(n, CLEAR)).status == CONFLICT  # unregistered
        await prout_ok(b, CLEAR, 0xB)
        assert await read_keys(n) == (9, [])
        assert await read_reservation(n) == (9, None)
        assert [await unit_attentions(it) for it in everyone] == \
            [[RES_PREEMPTED], [], [RES_PREEMPTED], []]
        assert await access(n) == ("ok", "ok")


@pytest.mark.fcsoft_config(ARRAY)
async def test_all_registrants_preempt_with_key_zero_takes_over(fcsoft_lab):
    async with san(fcsoft_lab) as (p, stack):
        a = await nexus(stack, p.h1, T1)
        b = await nexus(stack, p.v1, T2)
        c = await nexus(stack, p.h3, T2)
        for it, key in ((a, 0xA), (b, 0xB), (c, 0xC)):
            await register(it, key)
        await prout_ok(a, RESERVE, 0xA, type=8)
        await prout_ok(c, PREEMPT, 0xC, 0, type=3)  # SARK 0 under an AR type: all others go
        assert [await unit_attentions(it) for it in (a, b, c)] == \
            [[REG_PREEMPTED], [REG_PREEMPTED], []]
        assert await read_keys(a) == (4, [0xC])
        assert await read_reservation(a) == (4, (0xC, 3))
        assert await access(a) == ("conflict", "conflict")
        assert await access(c) == ("ok", "ok")


async def test_preempt_and_abort_ends_the_victims_outstanding_write(traced):
    async with running_lab(config(ARRAY), traced) as lab, san(lab) as (p, stack):
        victim = await nexus(stack, p.h1, T1)
        idle = await nexus(stack, p.h1, T2)  # the victim through the other port, nothing sent
        preemptor = await nexus(stack, p.h2, T2)
        bystander = await nexus(stack, p.h3, T1)  # registered under its own key
        # the control mode page promises TAS=1: aborted commands end with TASK ABORTED
        control = await victim.scsi(0, bytes([0x1A, 0x08, 0x0A, 0, 255, 0]), data_in_len=255)
        assert control.good and control.data[4] == 0x0A and control.data[4 + 5] & 0x40
        await register(victim, 0xA, all_tg_pt=True)
        await register(preemptor, 0xB)
        await register(bystander, 0xC)
        await prout_ok(victim, RESERVE, 0xA, type=5)
        held = await hold_write(victim, lba=7)
        kept = await hold_write(bystander, lba=8)
        await prout_ok(preemptor, PREEMPT_AND_ABORT, 0xB, 0xA, type=5)
        assert await held.result() == TASK_ABORTED
        assert (await unit_attentions(bystander)) == []  # a round trip on its link ...
        assert not kept.done.is_set()  # ... and its command is still waiting for its data
        # with TAS=1 the status says it all: no COMMANDS CLEARED BY ANOTHER INITIATOR (SAM-5 5.6)
        assert await unit_attentions(victim) == [REG_PREEMPTED]
        assert await unit_attentions(idle) == [REG_PREEMPTED]
        assert await read_reservation(bystander) == (4, (0xB, 5))
        assert await read_keys(bystander) == (4, [0xB, 0xC])
        assert await access(victim) == ("ok", "conflict")
        assert (await rd(preemptor, lba=7)).data == bytes(512)  # the aborted write wrote nothing
        assert await unit_attentions(preemptor) == []


TWO_LUS = f"""
[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{T1}", "{T2}"]

[[array.lun]]
name = "disk"
size = "1MiB"

[[array.lun]]
name = "other"
size = "1MiB"

[[array.host]]
name = "a"
initiators = ["{H1}"]
luns = {{ 3 = "disk", 0 = "other" }}

[[array.host]]
name = "b"
initiators = ["{H2}"]
luns = {{ 0 = "disk" }}
"""


@pytest.mark.fcsoft_config(TWO_LUS)
async def test_preempt_and_abort_aborts_only_that_lus_commands_whatever_the_lun_number(
        fcsoft_lab):
    async with fcsoft_lab.host(H1) as h1, fcsoft_lab.host(H2) as h2, \
            h1.connect(T1) as victim, h2.connect(T2) as preemptor:
        await ready(victim, 3)
        await ready(victim, 0)
        await ready(preemptor, 0)
        for lun in (3, 0):  # the same key on both LUs
            await register(victim, 0xA, lun=lun)
            await prout_ok(victim, RESERVE, 0xA, type=1, lun=lun)
        await register(preemptor, 0xB)
        on_disk = await hold_write(victim, lun=3)
        on_other = await hold_write(victim, lun=0)
        await prout_ok(preemptor, PREEMPT_AND_ABORT, 0xB, 0xA, type=1)  # "disk", its LUN 0
        assert await on_disk.result() == TASK_ABORTED
        assert await unit_attentions(victim, 0) == []  # round trip: nothing for "other"
        assert not on_other.done.is_set()
        assert await unit_attentions(victim, 3) == [REG_PREEMPTED]
        assert await read_reservation(victim, 0) == (1, (0xA, 1))  # "other" untouched
        assert await read_reservation(victim, 3) == (3, (0xB, 1))


@pytest.mark.fcsoft_config(ARRAY)
async def test_all_tg_pt_registration_against_per_port_nexuses(fcsoft_lab):
    async with san(fcsoft_lab) as (p, stack):
        a1 = await nexus(stack, p.h1, T1)
        a2 = await nexus(stack, p.h1, T2)
        b1 = await nexus(stack, p.h2, T1)
        b2 = await nexus(stack, p.h2, T2)
        await register(a1, 0x1, all_tg_pt=True)
        await register(b1, 0x2)  # through T1 only
        # registered through T2 by the ALL_TG_PT registration: it may reserve there
        await prout_ok(a2, RESERVE, 0x1, type=1)
        assert await read_reservation(b2) == (2, (0x1, 1))
        # the holder is the nexus through T2; the same initiator through T1 is not
        assert await access(a2) == ("ok", "ok")
        assert await access(a1) == ("ok", "conflict")
        assert (await prout(b2, RESERVE, 0x2, type=1)).status == CONFLICT  # unregistered
        # H2 registers through T2 separately, with another key
        await register(b2, 0x3)
        _, status = await read_full_status(b1)
        assert status == [full(0x1, H1, 1, all_tg_pt=True),
                          full(0x1, H1, 2, all_tg_pt=True, holder=True, type=1),
                          full(0x2, H2, 1), full(0x3, H2, 2)]
        # a RELEASE through the sibling nexus is a registered non-holder's: nothing happens
        await prout_ok(a1, RELEASE, 0x1, type=1)
        assert await read_reservation(b1) == (3, (0x1, 1))
        # a preempt names a key: both of H1's nexuses go, and both are told
        await prout_ok(b2, PREEMPT, 0x3, 0x1, type=5)
        assert await unit_attentions(a1) == [REG_PREEMPTED]
        assert await unit_attentions(a2) == [REG_PREEMPTED]
        assert await unit_attentions(b1) == [RES_RELEASED]  # the type changed
        assert await read_full_status(b1) == (4, [full(0x2, H2, 1),
                                                  full(0x3, H2, 2, holder=True, type=5)])
        assert await access(b1) == ("ok", "ok")  # registrant under WE-RO
        assert await access(a2) == ("ok", "conflict")


@pytest.mark.fcsoft_config(ARRAY)
async def test_spc2_reserve_shuts_out_persistent_reservation_commands(fcsoft_lab):
    async with san(fcsoft_lab) as (p, stack):
        a = await nexus(stack, p.h1, T1)
        b = await nexus(stack, p.v2, T2)
        assert (await a.reserve()).good
        assert (await a.persistent_reserve_in(0, 0)).status == CONFLICT  # the holder too
        assert (await prout(b, REGISTER, 0, 0xB)).status == CONFLICT
        assert (await access(b)) == ("conflict", "conflict")
        assert (await b.release()).good  # not the holder: GOOD, nothing happens
        assert (await access(a)) == ("ok", "ok")
        assert (await a.release()).good
        await register(b, 0xB)
        # with a registration present, RESERVE(6) from an unregistered nexus conflicts
        assert (await a.reserve()).status == CONFLICT


# --- APTPL ----------------------------------------------------------------------------


def aptpl_config(tmp_path: Any) -> Any:
    return config(array_toml(str(tmp_path / "disk.img")))


async def test_aptpl_registrations_and_reservation_survive_a_restart(tmp_path):
    async with running_lab(aptpl_config(tmp_path)) as lab, san(lab) as (p, stack):
        a = await nexus(stack, p.h1, T1)
        b = await nexus(stack, p.v2, T2)
        await register(a, 0xAA, aptpl=True)
        await register(b, 0xBB, aptpl=True, all_tg_pt=True)
        await prout_ok(a, RESERVE, 0xAA, type=5)
        caps = (await a.persistent_reserve_in(0, REPORT_CAPABILITIES)).data
        assert caps[2] & 0x01 and caps[3] & 0x01  # PTPL_C, PTPL_A
        assert await read_reservation(a) == (2, (0xAA, 5))
        gen, before = await read_full_status(a)
        assert gen == 2 and sorted(before, key=lambda d: (d.key, d.relative_port)) == [
            full(0xAA, H1, 1, holder=True, type=5), full(0xBB, V2, 1, all_tg_pt=True),
            full(0xBB, V2, 2, all_tg_pt=True)]
    assert (tmp_path / "disk.img.aptpl").exists()

    async with running_lab(aptpl_config(tmp_path)) as lab, san(lab) as (p, stack):
        n = await nexus(stack, p.h3, T1)
        assert await read_keys(n) == (0, [d.key for d in before])  # PRGENERATION: 0 again
        assert await read_reservation(n) == (0, (0xAA, 5))
        assert await read_full_status(n) == (0, before)
        caps = (await n.persistent_reserve_in(0, REPORT_CAPABILITIES)).data
        assert caps[3] & 0x01  # PTPL_A
        a = await nexus(stack, p.h1, T1)
        b = await nexus(stack, p.v2, T1)  # registered through every port
        assert await access(a) == ("ok", "ok")
        assert await access(b) == ("ok", "ok")
        assert await access(n) == ("ok", "conflict")
        await register(n, 0xCC)
        assert await read_keys(n) == (1, [0xAA, 0xBB, 0xBB, 0xCC])


@pytest.mark.parametrize("how", ["never", "switched off"])
async def test_without_aptpl_nothing_survives_a_restart(tmp_path, how):
    async with running_lab(aptpl_config(tmp_path)) as lab, san(lab) as (p, stack):
        a = await nexus(stack, p.h1, T1)
        b = await nexus(stack, p.h2, T2)
        await register(a, 0xAA, aptpl=how != "never")
        await prout_ok(a, RESERVE, 0xAA, type=6)
        await register(b, 0xBB)  # APTPL=0: the last APTPL bit received decides
        caps = (await a.persistent_reserve_in(0, REPORT_CAPABILITIES)).data
        assert caps[2] & 0x01 and not caps[3] & 0x01  # PTPL_C, not PTPL_A
    async with running_lab(aptpl_config(tmp_path)) as lab, san(lab) as (p, stack):
        n = await nexus(stack, p.h1, T1)
        assert await read_keys(n) == (0, [])
        assert await read_reservation(n) == (0, None)
        assert await access(n) == ("ok", "ok")



async def test_damaged_aptpl_state_stops_the_start_naming_the_file(tmp_path):
    state = tmp_path / "disk.img.aptpl"
    state.write_text("{ not the state fcsoft wrote")
    with pytest.raises(StartupError) as info:
        async with running_lab(aptpl_config(tmp_path)):
            pass  # pragma: no cover - must not start
    assert str(state) in str(info.value) and "\n" not in str(info.value)
    # nothing was left locked or half-started: with the file gone, the lab starts
    state.unlink()
    async with running_lab(aptpl_config(tmp_path)) as lab, lab.host(H1) as h1, \
            h1.connect(T1) as it:
        await ready(it)
        assert await read_keys(it) == (0, [])
