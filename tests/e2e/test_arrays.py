"""Storage arrays end to end over TCP through the fabric (docs/behaviour.md 3): LUN masking as
each initiator sees it, one LU through several ports and LUN numbers, run-time map changes,
unit attentions of new and lost nexuses, sessions ended by RSCN, file-backed LUs across a
restart, and a backing file two labs cannot share."""

from __future__ import annotations

import struct

import pytest

from fcsoft.scsi.sense import Sense
from fcsoft.server.process import StartupError
from fcsoft.wire.fcp import TaskManagementFlags
from fcsoft.wire.wwn import WWN

from .helpers import (
    CHECK,
    CONFLICT,
    LU_NOT_SUPPORTED,
    LUNS_CHANGED,
    NEXUS_LOSS,
    POWER_ON,
    TASK_ABORTED,
    config,
    hold_write,
    inquiry_raw,
    lun_list,
    rd,
    read_keys,
    ready,
    register,
    report_luns_raw,
    running_lab,
    sense3,
    unit_attentions,
    wait_for,
    wr,
)

H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"
H3 = "10:00:00:00:c9:00:00:03"  # in no host entry
H4 = "10:00:00:00:c9:00:00:04"  # host1's second initiator
T1 = "50:01:43:80:00:00:00:01"
T2 = "50:01:43:80:00:00:00:02"

ARRAY = f"""
[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{T1}", "{T2}"]

[[array.lun]]
name = "alpha"
size = "1MiB"

[[array.lun]]
name = "shared"
size = "1MiB"

[[array.lun]]
name = "gamma"
size = "1MiB"
block_size = 4096

[[array.host]]
name = "host1"
initiators = ["{H1}", "{H4}"]
luns = {{ 0 = "alpha", 1 = "shared" }}

[[array.host]]
name = "host2"
initiators = ["{H2}"]
luns = {{ 2 = "gamma", 300 = "shared" }}
"""


def designators(page83: bytes) -> dict[tuple[int, int], bytes]:
    """VPD 0x83 designators by (association, designator type) (SPC-4 7.8.6)."""
    assert page83[1] == 0x83
    (length,) = struct.unpack_from(">H", page83, 2)
    out = {}
    off = 4
    while off < 4 + length:
        kind, n = page83[off + 1], page83[off + 3]
        out[((kind >> 4) & 3, kind & 0x0F)] = page83[off + 4:off + 4 + n]
        off += 4 + n
    return out


LU_NAA = (0, 3)  # association: logical unit, type: NAA
PORT_NAA = (1, 3)  # association: target port, type: NAA
RELATIVE_PORT = (1, 4)


async def test_each_initiator_sees_exactly_its_luns(traced):
    async with running_lab(config(ARRAY), traced) as lab, \
            lab.host(H1) as h1, lab.host(H2) as h2, lab.host(H3) as h3, \
            h1.connect(T1) as it1, h2.connect(T2) as it2, h3.connect(T1) as it3:
        # REPORT LUNS to LUN 0 and to an unmapped number: the initiator's own list
        for lun in (0, 9):
            r = await report_luns_raw(it1, lun)
            assert r.good and lun_list(r.data) == [0, 1]
        for lun in (0, 7):  # host2 has no LUN 0 at all
            r = await report_luns_raw(it2, lun)
            assert r.good and lun_list(r.data) == [2, 300]
        r = await report_luns_raw(it3, 0)
        assert r.good and r.data == bytes(8)  # in no host entry: an empty list

        # LUN 2 is host2's, not host1's
        r = await inquiry_raw(it1, 2)
        assert r.good and r.data[0] == 0x7F  # peripheral qualifier 3, type 1Fh
        r = await inquiry_raw(it1, 0)
        assert r.good and r.data[0] == 0x00  # a disk, connected
        r = await it1.scsi(2, bytes([0x03, 0, 0, 0, 18, 0]), data_in_len=18)  # REQUEST SENSE
        assert r.good and not r.sense_data
        s = Sense.decode(r.data)
        assert (int(s.key), *s.code) == LU_NOT_SUPPORTED
        r = await rd(it1, lun=2)
        assert r.status == CHECK and sense3(r) == LU_NOT_SUPPORTED
        r = await wr(it1, b"x" * 512, lun=2)
        assert r.status == CHECK and sense3(r) == LU_NOT_SUPPORTED
        # the stranger: every LUN number is unmapped
        r = await inquiry_raw(it3, 0)
        assert r.good and r.data[0] == 0x7F
        r = await rd(it3, lun=0)
        assert r.status == CHECK and sense3(r) == LU_NOT_SUPPORTED
        # and what host1 reaches works
        await ready(it1, 0)
        assert (await rd(it1, lun=0)).good


async def test_one_lu_through_both_target_ports():
    async with running_lab(config(ARRAY)) as lab, lab.host(H1) as h1, \
            h1.connect(T1) as via1, h1.connect(T2) as via2:
        data = bytes(range(256)) * 8  # 4 blocks
        await via1.write(0, 10, data)
        assert await via2.read(0, 10, 4) == data
        pages = [designators(await it.inquiry(0, page=0x83)) for it in (via1, via2)]
        assert pages[0][LU_NAA] == pages[1][LU_NAA]  # one LU for multipath
        assert pages[0][LU_NAA][0] >> 4 == 6  # NAA 6
        assert [WWN.from_bytes8(p[PORT_NAA]) for p in pages] == [WWN(T1), WWN(T2)]
        assert [struct.unpack(">2xH", p[RELATIVE_PORT])[0] for p in pages] == [1, 2]
        # another LU of the same array has another designator
        other = designators(await via1.inquiry(1, page=0x83))
        assert other[LU_NAA] != pages[0][LU_NAA]


async def test_same_lu_at_different_lun_numbers_for_two_hosts_is_one_lu():
    async with running_lab(config(ARRAY)) as lab, lab.host(H1) as h1, lab.host(H2) as h2, \
            h1.connect(T1) as it1, h2.connect(T2) as it2:
        data = b"shared by host1 (LUN 1) and host2 (LUN 300)".ljust(512, b".")
        await it1.write(1, 3, data)
        assert await it2.read(300, 3, 1) == data
        assert (designators(await it1.inquiry(1, page=0x83))[LU_NAA]
                == designators(await it2.inquiry(300, page=0x83))[LU_NAA])
        # and the other way round
        await it2.write(300, 4, data[::-1])
        assert await it1.read(1, 4, 1) == data[::-1]


async def test_power_on_unit_attention_on_first_command_of_each_new_nexus():
    async with running_lab(config(ARRAY)) as lab, lab.host(H1) as h1, \
            h1.connect(T1) as via1, h1.connect(T2) as via2:
        # INQUIRY and REPORT LUNS are not blocked by the pending condition, nor clear it
        assert (await inquiry_raw(via1, 0)).good
        assert (await report_luns_raw(via1, 0)).good
        r = await rd(via1, lun=0)
        assert r.status == CHECK and sense3(r) == (0x6, *POWER_ON)
        assert (await rd(via1, lun=0)).good
        # each LU and each nexus has its own: the other LU, the other port
        assert await unit_attentions(via1, 1) == [POWER_ON]
        r = await rd(via2, lun=0)
        assert r.status == CHECK and sense3(r) == (0x6, *POWER_ON)
        assert (await rd(via2, lun=0)).good


async def test_run_time_lun_map_change_reported_to_that_hosts_nexuses():
    async with running_lab(config(ARRAY)) as lab, lab.host(H1) as h1, lab.host(H2) as h2, \
            h1.connect(T1) as via1, h1.connect(T2) as via2, h2.connect(T1) as other:
        for it, lun in ((via1, 0), (via2, 0), (other, 2)):
            await ready(it, lun)
        scsi = lab.scsi()
        scsi.map_lun("host1", 7, "gamma")
        # the nexus that asks with a command first learns it from the unit attention
        assert await unit_attentions(via1, 0) == [LUNS_CHANGED]
        assert lun_list((await report_luns_raw(via1)).data) == [0, 1, 7]
        # REPORT LUNS itself clears the condition (SPC-4 6.33)
        assert lun_list((await report_luns_raw(via2, 7)).data) == [0, 1, 7]
        assert await unit_attentions(via2, 0) == []
        # host2 is not concerned
        assert await unit_attentions(other, 2) == []
        # the new LUN works (4096-byte blocks); its first command is a power-on for it
        assert await unit_attentions(via1, 7) == [POWER_ON]
        assert await via1.read_capacity(7) == (256, 4096)

        scsi.unmap_lun("host1", 1)
        assert await unit_attentions(via1, 0) == [LUNS_CHANGED]
        r = await rd(via1, lun=1)
        assert r.status == CHECK and sense3(r) == LU_NOT_SUPPORTED
        assert lun_list((await report_luns_raw(via1)).data) == [0, 7]

        # an initiator in no host entry gets one of its own
        async with lab.host(H3) as h3, h3.connect(T2) as stranger:
            assert lun_list((await report_luns_raw(stranger)).data) == []
            scsi.map_lun(H3, 4, "alpha")
            assert lun_list((await report_luns_raw(stranger)).data) == [4]
            assert await unit_attentions(stranger, 4) == [POWER_ON]
            assert (await rd(stranger, lun=4)).good

        scsi.set_host_luns("host2", {0: "alpha"})
        assert await unit_attentions(other, 0) == [POWER_ON, LUNS_CHANGED]
        assert lun_list((await report_luns_raw(other)).data) == [0]
        assert await unit_attentions(via1, 0) == []


@pytest.mark.parametrize("how", ["LOGO", "PRLO"])
async def test_logout_ends_the_nexus_spc2_reservation_released_registrations_kept(how):
    async with running_lab(config(ARRAY)) as lab, lab.host(H1) as h1, lab.host(H2) as h2, \
            h2.connect(T1) as it2:
        spc2 = lab.scsi().units["shared"].reservations
        alpha = lab.scsi().units["alpha"].reservations
        await ready(it2, 300)
        async with h1.connect(T1) as it1:
            await ready(it1, 0)
            await ready(it1, 1)
            await register(it1, 0xA1)  # a persistent registration on "alpha" (LUN 0)
            assert (await it1.reserve(1)).good  # SPC-2 RESERVE(6) on "shared" (LUN 1)
            assert (await rd(it2, lun=300)).status == CONFLICT
            if how == "LOGO":
                await it1.logout()
                await wait_for(lambda: lab.array().ports[0].session_by_wwpn(WWN(H1)) is None,
                               what="the session to end")
            else:
                await it1.prlo()
                # the port login stays; the FCP image pair (and the nexus) is gone
                assert lab.array().ports[0].session_by_wwpn(WWN(H1)) is not None
            assert spc2.spc2_holder is None
            assert (await rd(it2, lun=300)).good
            assert [r.key for r in alpha.registrations.values()] == [0xA1]
            # logged in again: told of the nexus loss, still registered
            await it1.login()
            assert await unit_attentions(it1, 1) == [NEXUS_LOSS]
            assert await unit_attentions(it1, 0) == [NEXUS_LOSS]
            assert await read_keys(it1, 0) == (1, [0xA1])
            assert (await wr(it1, b"k" * 512, lun=0)).good


async def test_rscn_after_initiator_link_drop_ends_its_sessions_on_every_port():
    async with running_lab(config(ARRAY)) as lab, lab.host(H2) as h2, \
            h2.connect(T1) as it2:
        ports = lab.array().ports
        shared = lab.scsi().units["shared"].reservations
        alpha = lab.scsi().units["alpha"].reservations
        async with lab.host(H1) as h1, h1.connect(T1) as via1, h1.connect(T2) as via2:
            await ready(via1, 0)
            await register(via1, 0xB1, all_tg_pt=True)
            await ready(via2, 1)
            await ready(it2, 300)
            assert (await via2.reserve(1)).good
            assert all(p.session_by_wwpn(WWN(H1)) is not None for p in ports)
            assert (await rd(it2, lun=300)).status == CONFLICT
            await hold_write(via1, lun=0, lba=9)  # outstanding when the link goes
            ended = [p.counters["sessions_ended"] for p in ports]
            aborted = ports[0].counters["exchanges_aborted"]
            assert lab.drop_link(H1)  # no LOGO to anyone: the fabric sends the RSCN
            await wait_for(lambda: all(p.session_by_wwpn(WWN(H1)) is None for p in ports),
                           what="the array to end H1's sessions after the RSCN")
            assert [p.counters["sessions_ended"] for p in ports] == [n + 1 for n in ended]
            assert ports[0].counters["exchanges_aborted"] == aborted + 1
            assert shared.spc2_holder is None
            assert (await rd(it2, lun=300)).good
            assert [(n.relative_port, r.key) for n, r in alpha.registrations.items()] == \
                [(1, 0xB1), (2, 0xB1)]
            assert h2.logged_in and ports[0].session_by_wwpn(WWN(H2)) is not None
        async with lab.host(H1) as h1, h1.connect(T2) as via2:
            assert await unit_attentions(via2, 1) == [NEXUS_LOSS]
            assert await unit_attentions(via2, 0) == [POWER_ON]  # never used that LU there
            assert (await rd(via2, lun=0, lba=9)).data == bytes(512)  # the WRITE never ran
            assert (await read_keys(via2, 0))[1] == [0xB1, 0xB1]
            assert (await wr(via2, b"w" * 512, lun=0)).good  # registered through port 2


def file_backed(path) -> str:
    return f"""
[[array]]
name = "filer"
node_wwn = "50:01:43:80:00:00:01:00"
ports = ["{T1}"]

[[array.lun]]
name = "disk"
size = "4MiB"
backing = "{path}"

[[array.host]]
name = "host1"
initiators = ["{H1}"]
luns = {{ 0 = "disk" }}
"""


async def test_file_backed_lun_keeps_its_data_across_a_restart(tmp_path):
    disk = tmp_path / "disk.img"
    data = b"survives a restart".ljust(1024, b"!")
    async with running_lab(config(file_backed(disk))) as lab, lab.host(H1) as h1, \
            h1.connect(T1) as it:
        await it.write(0, 100, data, fua=True)
        await it.write(0, 200, data[::-1])
        await it.synchronize_cache(0)
    assert disk.stat().st_size == 4 << 20
    async with running_lab(config(file_backed(disk))) as lab, lab.host(H1) as h1, \
            h1.connect(T1) as it:
        assert await it.read(0, 100, 2) == data
        assert await it.read(0, 200, 2) == data[::-1]
        assert await it.read(0, 0, 1) == bytes(512)


async def test_two_labs_on_one_backing_file_second_fails_naming_the_file(tmp_path):
    disk = tmp_path / "locked.img"
    async with running_lab(config(file_backed(disk))) as lab, lab.host(H1) as h1, \
            h1.connect(T1) as it:
        with pytest.raises(StartupError) as info:
            async with running_lab(config(file_backed(disk))):
                pass  # pragma: no cover - must not start
        message = str(info.value)
        assert str(disk) in message and "filer" in message
        assert "\n" not in message
        # the first lab is not disturbed
        await it.write(0, 0, b"z" * 512, fua=True)
        assert await it.read(0, 0, 1) == b"z" * 512
    # and once it is gone, the file can be used again
    async with running_lab(config(file_backed(disk))) as lab, lab.host(H1) as h1, \
            h1.connect(T1) as it:
        assert await it.read(0, 0, 1) == b"z" * 512
        caps = await it.persistent_reserve_in(0, 2)  # REPORT CAPABILITIES
        assert caps.good and caps.data[2] & 0x01  # PTPL_C: a file-backed LU persists them


async def test_zoning_an_initiator_away_ends_its_sessions_and_only_its():
    async with running_lab(config(ARRAY)) as lab, lab.host(H1) as h1, lab.host(H2) as h2, \
            h1.connect(T1) as it1, h2.connect(T1) as it2, h2.connect(T2) as it2b:
        ports = lab.array().ports
        await ready(it1)
        assert (await it1.reserve(0)).good
        lab.set_zones({"h2_array": [H2, T1, T2], "h1_alone": [H1]})
        await wait_for(lambda: ports[0].session_by_wwpn(WWN(H1)) is None,
                       what="the array to end H1's session after the zoning RSCN")
        assert lab.scsi().units["alpha"].reservations.spc2_holder is None
        # H2, still zoned with both ports, keeps its sessions and works on
        assert ports[0].session_by_wwpn(WWN(H2)) is not None
        assert ports[1].session_by_wwpn(WWN(H2)) is not None
        assert await it2.report_luns() == [2, 300]
        assert await it2b.report_luns() == [2, 300]
        assert await h1.discover() == []
        # zoned back in, H1 logs in again and is told of the nexus loss
        lab.set_zones({"h2_array": [H2, T1, T2], "h1_array": [H1, T1]})
        await it1.login()
        assert await unit_attentions(it1, 0) == [NEXUS_LOSS]


# --- task management reaching other initiators' commands ---------------------------------

# host2 reaches "gamma" as LUN 1, the number under which host1 reaches "shared"
CROSSED = ARRAY.replace('luns = { 2 = "gamma", 300 = "shared" }',
                        'luns = { 1 = "gamma", 300 = "shared" }')
assert CROSSED != ARRAY
# the control mode page says TST=000b: one task set per LU, shared by every I_T nexus


def tmf_name(tmf: TaskManagementFlags) -> str:
    return str(tmf.name)


@pytest.mark.parametrize("tmf", [TaskManagementFlags.LUN_RESET,
                                 TaskManagementFlags.CLEAR_TASK_SET], ids=tmf_name)
async def test_lu_task_management_reaches_that_lus_commands_whatever_their_lun_number(tmf):
    async with running_lab(config(CROSSED)) as lab, lab.host(H1) as h1, lab.host(H2) as h2, \
            h1.connect(T1) as it1, h2.connect(T2) as it2:
        await ready(it1, 1)
        await ready(it2, 1)
        await ready(it2, 300)
        same_lu = await hold_write(it2, lun=300)  # "shared", as host1's LUN 1
        same_number = await hold_write(it2, lun=1, block_size=4096)  # "gamma"
        r = await it1.task_management(1, tmf)
        assert r.response_code == 0
        assert await same_lu.result() == TASK_ABORTED  # this LU: aborted (TAS=1)
        r = await it2.scsi(300, bytes(6))  # a round trip on H2's link
        assert r.good or sense3(r)[:2] == (0x6, 0x29), str(r)  # (a reset's unit attention)
        assert not same_number.done.is_set()  # another LU: untouched
        session = lab.array().ports[1].session_by_wwpn(WWN(H2))
        assert same_number.ox_id in session.exchanges and same_lu.ox_id not in session.exchanges


@pytest.mark.parametrize("tmf", [TaskManagementFlags.LUN_RESET,
                                 TaskManagementFlags.CLEAR_TASK_SET,
                                 TaskManagementFlags.TARGET_RESET], ids=tmf_name)
async def test_commands_of_other_initiators_aborted_by_task_management_end_task_aborted(tmf):
    async with running_lab(config(ARRAY)) as lab, lab.host(H1) as h1, lab.host(H4) as h4, \
            h1.connect(T1) as it1, h4.connect(T2) as it4:
        await ready(it1, 1)
        await ready(it4, 1)
        held = await hold_write(it4, lun=1)
        r = await it1.task_management(1, tmf)
        assert r.response_code == 0
        assert await held.result() == TASK_ABORTED
        # a reset is reported as one (29h); a cleared task set only by the status
        codes = await unit_attentions(it4, 1)
        if tmf == TaskManagementFlags.CLEAR_TASK_SET:
            assert codes == []
        else:
            assert [c[0] for c in codes] == [0x29]
