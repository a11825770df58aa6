"""Live-migration patterns for persistent reservations, end to end over TCP through the
fabric: QEMU's migrate-pr (the destination preempts with the shared key), a VM's NPIV WWPN
moving to another host's link with its registration intact, and REGISTER AND MOVE of the
reservation to a new nexus."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio

from fcsoft.wire.wwn import WWN

from .helpers import (
    CHECK,
    CONFLICT,
    NEXUS_LOSS,
    PREEMPT,
    REG_MOVE,
    REG_PREEMPTED,
    RESERVE,
    access,
    config,
    full,
    prout,
    prout_ok,
    read_full_status,
    read_keys,
    read_reservation,
    ready,
    register,
    register_and_move_list,
    running_lab,
    sense3,
    unit_attentions,
    wait_for,
)

SRC = "10:00:00:00:c9:00:0a:01"  # source hypervisor
DST = "10:00:00:00:c9:00:0b:01"  # destination hypervisor
OUT = "10:00:00:00:c9:00:0c:01"  # a host outside the VM, mapped to the same LU
W1 = "c0:50:76:00:00:00:01:01"  # the VM's two NPIV WWPNs
W2 = "c0:50:76:00:00:00:01:02"
T1 = "50:01:43:80:00:00:00:01"
T2 = "50:01:43:80:00:00:00:02"

VM_KEY = 0x00C0FFEE00000001

ARRAY = f"""
[fabric]
rscn_coalesce_ms = 5

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{T1}", "{T2}"]

[[array.lun]]
name = "vmdisk"
size = "1MiB"

[[array.host]]
name = "hypervisors"
initiators = ["{SRC}", "{DST}", "{OUT}", "{W1}", "{W2}"]
luns = {{ 0 = "vmdisk" }}
"""


@pytest.mark.fcsoft_config(ARRAY)
@pytest.mark.parametrize("rtype", [1, 3, 5, 6])
async def test_qemu_migrate_pr_destination_preempts_with_the_shared_key(fcsoft_lab, rtype):
    lab = fcsoft_lab
    async with lab.host(SRC) as src_host, lab.host(DST) as dst_host, \
            src_host.connect(T1) as src, dst_host.connect(T2) as dst:
        await ready(src)
        await ready(dst)
        await register(src, VM_KEY)
        await register(dst, VM_KEY)  # both hypervisors register the VM's one key
        await prout_ok(src, RESERVE, VM_KEY, type=rtype)
        assert await read_reservation(dst) == (2, (VM_KEY, rtype))

        # the switch-over: the destination preempts the holder's key, which is its own
        await prout_ok(dst, PREEMPT, VM_KEY, VM_KEY, type=rtype)
        assert await unit_attentions(src) == [REG_PREEMPTED]
        assert await unit_attentions(dst) == []
        assert await read_reservation(dst) == (3, (VM_KEY, rtype))
        assert await read_full_status(src) == (3, [full(VM_KEY, DST, 2, holder=True,
                                                        type=rtype)])
        assert await read_keys(src) == (3, [VM_KEY])
        assert lab.scsi().units["vmdisk"].reservations.holder.initiator == WWN(DST)

        assert await access(dst) == ("ok", "ok")
        read_ok = rtype in (1, 5)  # write-exclusive types let anyone read
        assert await access(src) == ("ok" if read_ok else "conflict", "conflict")
        # the source, unregistered now, cannot take it back
        assert (await prout(src, PREEMPT, VM_KEY, VM_KEY, type=rtype)).status == CONFLICT
        assert (await prout(src, RESERVE, VM_KEY, type=rtype)).status == CONFLICT


@pytest.mark.fcsoft_config(ARRAY)
@pytest.mark.parametrize("departure", ["LOGO to the target, then to the fabric",
                                       "fabric LOGO only (the array learns by RSCN)",
                                       "logged out by the switch administrator"])
async def test_npiv_wwpn_moves_to_another_hosts_link_and_keeps_its_reservation(fcsoft_lab,
                                                                                departure):
    lab = fcsoft_lab
    ports = lab.array().ports
    async with AsyncExitStack() as stack, lab.host(SRC) as src_host, \
            lab.host(DST) as dst_host, lab.host(OUT) as out_host, \
            out_host.connect(T1) as outsider:
        w1 = await src_host.add_vport(W1)
        w2 = await src_host.add_vport(W2)
        w1_stack = await stack.enter_async_context(AsyncExitStack())
        via_w1 = await w1_stack.enter_async_context(w1.connect(T1))
        via_w2 = await stack.enter_async_context(w2.connect(T2))
        for it in (via_w1, via_w2, outsider):
            await ready(it)
        await register(via_w1, VM_KEY)
        await register(via_w2, VM_KEY)
        await prout_ok(via_w1, RESERVE, VM_KEY, type=5)
        before = await read_full_status(outsider)
        assert before == (2, [full(VM_KEY, W1, 1, holder=True, type=5), full(VM_KEY, W2, 2)])

        # W1 leaves the source hypervisor
        if departure.startswith("LOGO to the target"):
            await w1_stack.aclose()
        if departure.startswith("logged out by the switch"):
            assert lab.logout(W1)
            await wait_for(lambda: not w1.logged_in, what="the fabric's LOGO to W1")
        else:
            await w1.logout()
        await wait_for(lambda: lab.fabric.port(W1) is None, what="W1's fabric logout")
        await wait_for(lambda: ports[0].session_by_wwpn(WWN(W1)) is None,
                       what="the array to end W1's session")
        await w1_stack.aclose()
        # the registrations and the reservation outlive the nexus; the VM's other WWPN works
        assert await read_full_status(outsider) == before
        assert await access(via_w2) == ("ok", "ok")
        assert await access(outsider) == ("ok", "conflict")

        # ... and logs in again on the destination hypervisor's link
        w1_again = await dst_host.add_vport(W1)
        assert w1_again.hl is dst_host.hl
        via_w1 = await stack.enter_async_context(w1_again.connect(T1))
        assert await unit_attentions(via_w1) == [NEXUS_LOSS]
        assert await read_full_status(via_w1) == before
        assert await access(via_w1) == ("ok", "ok")  # the holder again, same nexus
        assert await access(outsider) == ("ok", "conflict")
        assert await unit_attentions(via_w2) == []


@pytest.mark.parametrize("unreg", [True, False])
async def test_register_and_move_hands_the_reservation_to_a_new_nexus(traced, unreg):
    async with running_lab(config(ARRAY), traced) as lab, lab.host(SRC) as src_host, lab.host(OUT) as out_host, \
            src_host.connect(T1) as src, out_host.connect(T2) as outsider:
        await ready(src)
        await ready(outsider)
        await register(src, 0x51)
        await prout_ok(src, RESERVE, 0x51, type=6)
        # the destination has not logged in yet; the CDB's TYPE is ignored (SPC-4 6.15.4)
        move = register_and_move_list(0x51, 0xD2, 2, DST, unreg=unreg)
        await prout_ok(src, REG_MOVE, type=1, parameters=move)
        expected = [full(0xD2, DST, 2, holder=True, type=6)]
        if not unreg:
            expected.insert(0, full(0x51, SRC, 1))
        assert await read_full_status(outsider) == (2, expected)
        assert await read_reservation(outsider) == (2, (0xD2, 6))
        assert await unit_attentions(src) == []
        # the source keeps access only as a registrant (UNREG=0)
        assert await access(src) == (("conflict",) * 2 if unreg else ("ok", "ok"))
        assert await access(outsider) == ("conflict", "conflict")

        async with lab.host(DST) as dst_host, dst_host.connect(T2) as dst, \
                dst_host.connect(T1) as dst_other_port:
            await ready(dst)
            await ready(dst_other_port)
            assert await access(dst) == ("ok", "ok")  # the holder, with the same type
            assert await access(dst_other_port) == ("conflict", "conflict")  # another nexus
            # the new holder can move it on, or release it
            assert (await prout(src, REG_MOVE, parameters=register_and_move_list(
                0x51, 0x99, 1, OUT))).status == CONFLICT  # no longer the holder
            await prout_ok(dst, 2, 0xD2, type=6)  # RELEASE
            assert await read_reservation(outsider) == (2, None)


@pytest.mark.fcsoft_config(ARRAY)
async def test_register_and_move_refusals(fcsoft_lab):
    lab = fcsoft_lab
    async with lab.host(SRC) as src_host, lab.host(DST) as dst_host, \
            src_host.connect(T1) as src, dst_host.connect(T2) as dst:
        await ready(src)
        await ready(dst)
        await register(src, 0x51)
        await register(dst, 0xD1)
        # no reservation: ILLEGAL REQUEST 24/00 (docs/behaviour.md 3)
        r = await prout(src, REG_MOVE, parameters=register_and_move_list(0x51, 0xD2, 2, DST))
        assert r.status == CHECK and sense3(r) == (0x5, 0x24, 0x00)
        await prout_ok(src, RESERVE, 0x51, type=5)
        for params in (register_and_move_list(0x51, 0xD2, 2, SRC),  # to itself
                       register_and_move_list(0x51, 0xD2, 3, DST)):  # no such port
            r = await prout(src, REG_MOVE, parameters=params)
            assert r.status == CHECK and sense3(r) == (0x5, 0x26, 0x00), str(r)
        # key 0: SPC-4 and LIO say the parameter list is wrong, SCST says the CDB
        r = await prout(src, REG_MOVE, parameters=register_and_move_list(0x51, 0, 2, DST))
        assert r.status == CHECK and sense3(r) in ((0x5, 0x26, 0x00), (0x5, 0x24, 0x00))
        # only the holder may move it; a wrong key conflicts
        r = await prout(dst, REG_MOVE, parameters=register_and_move_list(0xD1, 0xD2, 1, SRC))
        assert r.status == CONFLICT
        r = await prout(src, REG_MOVE, parameters=register_and_move_list(0x52, 0xD2, 2, DST))
        assert r.status == CONFLICT
        assert await read_reservation(dst) == (2, (0x51, 5))  # nothing moved


SLOW_RSCN = ARRAY.replace("rscn_coalesce_ms = 5", "rscn_coalesce_ms = 400")
assert SLOW_RSCN != ARRAY


@pytest.mark.fcsoft_config(SLOW_RSCN)
async def test_wwpn_back_on_another_link_before_the_array_noticed_it_left(fcsoft_lab):
    lab = fcsoft_lab
    port = lab.array().ports[0]

    def sessions() -> list:
        return [s for s in port.sessions.values() if s.wwpn == WWN(W1)]

    async with AsyncExitStack() as stack, lab.host(SRC) as src_host, \
            lab.host(DST) as dst_host:
        w1 = await src_host.add_vport(W1)
        await ready(await stack.enter_async_context(w1.connect(T1)))
        old_fcid = w1.fcid
        await w1.logout()  # gone from the fabric; the RSCN is still in its coalescing window
        moved = await dst_host.add_vport(W1)
        it = await stack.enter_async_context(moved.connect(T1))
        assert [s.s_id for s in sessions()] == [moved.fcid]  # the old login is over
        assert await unit_attentions(it) == [NEXUS_LOSS]  # ... and so was the nexus
        assert (await it.reserve()).good
        # the RSCN about the old N_Port_ID comes; the live nexus must not suffer from it
        with trio.fail_after(3):
            while old_fcid not in {p.affected_id for p in await src_host.next_rscn()}:
                pass
        for _ in range(2):  # the array got the same RSCN: let its GPN_ID round trip finish
            assert (await it.scsi(0, bytes(6))).good
        assert [s.s_id for s in sessions()] == [moved.fcid]
        spc2 = lab.scsi().units["vmdisk"].reservations
        assert spc2.spc2_holder is not None and spc2.spc2_holder.initiator == WWN(W1)
        assert await unit_attentions(it) == []
