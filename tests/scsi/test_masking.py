"""LUN masking and dispatch by the array's SCSI front (fcsoft.scsi.array), docs/behaviour.md 3:
REPORT LUNS, INQUIRY and REQUEST SENSE to unmapped LUN numbers, one LU across ports and
hosts, run-time map changes and their unit attentions, nexus loss and resets."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from fcsoft.config import HostConfig, LunConfig
from fcsoft.scsi.array import ScsiArray, aptpl_path_for
from fcsoft.scsi.backing import FileBacking
from fcsoft.scsi.sense import Sense, SenseKey
from fcsoft.scsi.types import Command, Nexus

from .conftest import array_config
from .fakes import (
    HOST1,
    HOST1B,
    HOST2,
    PORT1,
    PORT2,
    STRANGER,
    fake_factory,
    inquiry,
    nexus,
    read10,
    report_luns,
    request_sense,
    run,
    sense_of,
    tur,
    write10,
)

ILLEGAL = int(SenseKey.ILLEGAL_REQUEST)
UA = int(SenseKey.UNIT_ATTENTION)
NOT_SUPPORTED = (ILLEGAL, 0x25, 0x00)


def luns_in(data: bytes | memoryview) -> list[bytes]:
    data = bytes(data)
    length = struct.unpack_from(">I", data)[0]
    assert length == len(data) - 8
    return [data[i:i + 8] for i in range(8, len(data), 8)]


def lun_bytes(number: int) -> bytes:
    if number < 256:
        return bytes((0, number)) + bytes(6)
    return bytes((0x40 | number >> 8, number & 0xFF)) + bytes(6)


def ready(array: ScsiArray, nx: Nexus, lun: int) -> None:
    assert sense_of(run(array, tur(), nx=nx, lun=lun)) == (UA, 0x29, 0x00)
    assert run(array, tur(), nx=nx, lun=lun).good


# --- REPORT LUNS ------------------------------------------------------------------------------


@pytest.mark.parametrize("lun", [0, 1, 300, 7, 16383])
def test_report_luns_to_any_lun_number_lists_the_initiators_luns(array: ScsiArray,
                                                                 lun: int) -> None:
    r = run(array, report_luns(), lun=lun)
    assert r.good
    assert luns_in(r.data) == [lun_bytes(0), lun_bytes(1), lun_bytes(300)]
    assert lun_bytes(300) == bytes.fromhex("412c000000000000")  # flat space addressing


def test_report_luns_for_each_host_and_a_stranger(array: ScsiArray) -> None:
    assert luns_in(run(array, report_luns(), nx=nexus(HOST1B, PORT2, 2)).data) == [
        lun_bytes(0), lun_bytes(1), lun_bytes(300)]
    assert luns_in(run(array, report_luns(), nx=nexus(HOST2)).data) == [lun_bytes(5)]
    r = run(array, report_luns(), nx=nexus(STRANGER))
    assert r.good and bytes(r.data) == bytes(8)  # empty list, not LIO's LUN 0


def test_report_luns_allocation_length_and_select_report(array: ScsiArray) -> None:
    full = bytes(run(array, report_luns()).data)
    assert bytes(run(array, report_luns(alloc=12)).data) == full[:12]
    assert struct.unpack_from(">I", full)[0] == 24  # the full count in any case
    assert bytes(run(array, report_luns(select=0x02)).data) == full
    assert bytes(run(array, report_luns(select=0x01)).data) == bytes(8)
    assert bytes(run(array, report_luns(select=0x10)).data) == bytes(8)
    assert bytes(run(array, report_luns(select=0x12)).data) == bytes(8)
    assert bytes(run(array, report_luns(select=0x11), lun=0).data) == full
    assert bytes(run(array, report_luns(select=0x11), lun=1).data) == bytes(8)
    r = run(array, report_luns(select=0x03), lun=42)
    assert sense_of(r) == (ILLEGAL, 0x24, 0x00)


# --- unmapped LUN numbers ---------------------------------------------------------------------


def test_inquiry_to_an_unmapped_lun_is_peripheral_qualifier_3(array: ScsiArray) -> None:
    for nx, lun in ((nexus(), 2), (nexus(HOST2), 0), (nexus(STRANGER), 0)):
        r = run(array, inquiry(), nx=nx, lun=lun)
        assert r.good
        data = bytes(r.data)
        assert data[0] == 0x7F
        assert data[8:16] == b"FCSOFT  "
    assert bytes(run(array, inquiry(alloc=1), lun=2).data) == b"\x7f"
    vpd = bytes(run(array, inquiry(evpd=True, page=0), lun=2).data)
    assert vpd == bytes((0x7F, 0, 0, 1, 0))
    r = run(array, inquiry(evpd=True, page=0x83), lun=2)
    assert sense_of(r) == (ILLEGAL, 0x24, 0x00)


def test_request_sense_to_an_unmapped_lun_returns_25_00_as_data(array: ScsiArray) -> None:
    r = run(array, request_sense(), lun=2)
    assert r.good
    s = Sense.decode(bytes(r.data))
    assert (s.key, s.code) == (SenseKey.ILLEGAL_REQUEST, (0x25, 0x00))
    assert len(run(array, request_sense(alloc=14), lun=2).data) == 14


@pytest.mark.parametrize("cdb", [tur(), read10(0, 1), write10(0, 1), bytes((0xC0,)) + bytes(9)])
def test_other_commands_to_an_unmapped_lun_get_25_00(array: ScsiArray, cdb: bytes) -> None:
    assert sense_of(run(array, cdb, bytes(512), lun=2)) == NOT_SUPPORTED
    assert sense_of(run(array, cdb, bytes(512), nx=nexus(STRANGER))) == NOT_SUPPORTED
    assert sense_of(run(array, cdb, bytes(512), nx=nexus(HOST2), lun=0)) == NOT_SUPPORTED


def test_unmapped_execute_without_precheck(array: ScsiArray) -> None:
    assert sense_of(array.execute(Command(nexus(), 9, tur()))) == NOT_SUPPORTED


# --- one LU -----------------------------------------------------------------------------------


def test_one_lu_through_two_ports_and_two_hosts(array: ScsiArray) -> None:
    via_host1 = nexus(HOST1, PORT1, 1)
    via_host2 = nexus(HOST2, PORT2, 2)
    ready(array, via_host1, 1)
    ready(array, via_host2, 5)
    assert run(array, write10(3, 1), b"\x42" * 512, nx=via_host1, lun=1).good
    assert bytes(run(array, read10(3, 1), nx=via_host2, lun=5).data) == b"\x42" * 512
    id1 = bytes(run(array, inquiry(evpd=True, page=0x83), nx=via_host1, lun=1).data)
    id2 = bytes(run(array, inquiry(evpd=True, page=0x83), nx=via_host2, lun=5).data)
    assert id1[4:24] == id2[4:24]
    assert array.lookup(via_host1, 1) is array.lookup(via_host2, 5) is array.units["data"]
    other = bytes(run(array, inquiry(evpd=True, page=0x83), nx=via_host1, lun=0).data)
    assert other[8:24] != id1[8:24]


def test_relative_port_comes_from_the_array(array: ScsiArray) -> None:
    skewed = Nexus(HOST1, PORT2, 1)  # a transport that got it wrong
    page = bytes(run(array, inquiry(evpd=True, page=0x83), nx=skewed).data)
    assert bytes((0x01, 0x94, 0, 4, 0, 0, 0, 2)) in page
    assert array.units["boot"].unit_attentions.pending(Nexus(HOST1, PORT2, 2))


def test_lookup_helpers(array: ScsiArray) -> None:
    assert array.lun_visible(nexus(), 300)
    assert not array.lun_visible(nexus(), 5)
    assert not array.lun_visible(nexus(STRANGER), 0)
    assert array.luns_of(nexus(HOST2)) == [5]
    assert array.luns_of(HOST1B) == [0, 1, 300]
    assert array.host_luns("host2") == {5: "data"}
    assert array.ports == (PORT1, PORT2)


# --- run-time map changes ---------------------------------------------------------------------


def test_set_host_luns_raises_reported_luns_changed_for_that_host_only(array: ScsiArray
                                                                       ) -> None:
    h1p1, h1bp2, h2 = nexus(HOST1, PORT1, 1), nexus(HOST1B, PORT2, 2), nexus(HOST2)
    ready(array, h1p1, 1)
    ready(array, h1bp2, 1)
    ready(array, h2, 5)
    array.set_host_luns("host1", {1: "data", 2: "boot"})
    for nx in (h1p1, h1bp2):
        assert sense_of(run(array, tur(), nx=nx, lun=1)) == (UA, 0x3F, 0x0E)
        assert run(array, tur(), nx=nx, lun=1).good
    assert run(array, tur(), nx=h2, lun=5).good  # host2's view did not change
    assert luns_in(run(array, report_luns(), nx=h1p1).data) == [lun_bytes(1), lun_bytes(2)]
    assert sense_of(run(array, tur(), nx=h1p1, lun=300)) == NOT_SUPPORTED
    # LUN 2 is the boot LU: first contact there; REPORT LUNS cleared its 3F/0E
    assert sense_of(run(array, tur(), nx=h1p1, lun=2)) == (UA, 0x29, 0x00)
    assert run(array, tur(), nx=h1p1, lun=2).good
    assert sense_of(run(array, tur(), nx=h1bp2, lun=2)) == (UA, 0x29, 0x00)
    assert sense_of(run(array, tur(), nx=h1bp2, lun=2)) == (UA, 0x3F, 0x0E)


def test_report_luns_clears_the_change_on_every_lu(array: ScsiArray) -> None:
    nx = nexus()
    ready(array, nx, 0)
    ready(array, nx, 1)
    array.unmap_lun("host1", 300)  # 3F/0E on LUs 0 and 1 for this nexus
    assert run(array, report_luns(), nx=nx).good
    assert run(array, tur(), nx=nx, lun=0).good
    assert run(array, tur(), nx=nx, lun=1).good


def test_map_lun_for_an_unknown_initiator_creates_a_host(array: ScsiArray) -> None:
    nx = nexus(STRANGER)
    assert bytes(run(array, report_luns(), nx=nx).data) == bytes(8)
    array.map_lun(STRANGER, 4, "boot")
    assert array.luns_of(nx) == [4]
    assert array.host_luns(str(STRANGER)) == {4: "boot"}
    # first contact comes before the (older) map change
    assert sense_of(run(array, tur(), nx=nx, lun=4)) == (UA, 0x29, 0x00)
    assert sense_of(run(array, tur(), nx=nx, lun=4)) == (UA, 0x3F, 0x0E)
    array.map_lun(str(STRANGER), 5, "data")  # by WWPN string: same host entry
    assert array.luns_of(nx) == [4, 5]
    array.unmap_lun(STRANGER, 4)
    assert array.luns_of(nx) == [5]


def test_map_changes_are_validated(array: ScsiArray) -> None:
    with pytest.raises(KeyError):
        array.map_lun("host1", 7, "nope")
    with pytest.raises(ValueError, match="already mapped"):
        array.map_lun("host1", 0, "data")
    with pytest.raises(ValueError, match="already mapped"):
        array.map_lun("host1", 7, "boot")
    with pytest.raises(ValueError):
        array.map_lun("host1", 16384, "data")
    with pytest.raises(KeyError):
        array.map_lun("no such host", 1, "data")
    with pytest.raises(KeyError):
        array.unmap_lun("host2", 0)
    with pytest.raises(KeyError):
        array.unmap_lun(STRANGER, 0)
    with pytest.raises(KeyError):
        array.set_host_luns("host9", {})
    with pytest.raises(ValueError, match="twice"):
        array.set_host_luns("host2", {1: "data", 2: "data"})
    with pytest.raises(KeyError):
        array.set_host_luns("host2", {1: "ghost"})
    assert array.host_luns("host1") == {0: "boot", 1: "data", 300: "big4k"}


def test_unchanged_map_raises_nothing(array: ScsiArray) -> None:
    nx = nexus(HOST2)
    ready(array, nx, 5)
    array.set_host_luns("host2", {5: "data"})
    assert run(array, tur(), nx=nx, lun=5).good


# --- nexus loss and resets ----------------------------------------------------------------------


def test_nexus_loss_reaches_every_lu(array: ScsiArray) -> None:
    nx = nexus()
    ready(array, nx, 0)
    array.nexus_lost(nx)
    assert sense_of(run(array, tur(), nx=nx, lun=0)) == (UA, 0x29, 0x07)
    for lu in array.units.values():
        assert ("nexus_lost", nx) in lu.reservations.calls


def test_lun_reset_and_target_reset(array: ScsiArray) -> None:
    nx = nexus()
    ready(array, nx, 0)
    ready(array, nx, 1)
    assert array.lun_reset(nx, 0)
    assert not array.lun_reset(nx, 5)  # not mapped for this initiator
    assert sense_of(run(array, tur(), nx=nx, lun=0)) == (UA, 0x29, 0x00)
    assert run(array, tur(), nx=nx, lun=1).good
    array.target_reset(nx)
    assert sense_of(run(array, tur(), nx=nx, lun=1)) == (UA, 0x29, 0x00)
    assert sense_of(run(array, tur(), nx=nexus(HOST2), lun=5)) == (UA, 0x29, 0x00)


def test_abort_hook_gets_the_victims_lun_numbers(config: object) -> None:
    calls = []

    def abort(victims: set[Nexus], caller: Nexus, luns: object) -> int:
        calls.append((victims, caller, luns))
        return 1

    array = ScsiArray(config, engine_factory=fake_factory, abort_tasks=abort)  # type: ignore
    try:
        data = array.units["data"]
        victims = {nexus(HOST2), nexus(HOST1B, PORT2, 2)}
        assert data.abort_tasks(victims, nexus()) is None  # a count: "all of them"
        assert calls == [(victims, nexus(), {1, 5})]
    finally:
        array.close()
    array = ScsiArray(config, engine_factory=fake_factory)  # type: ignore[arg-type]
    try:
        assert tuple(array.units["data"].abort_tasks({nexus()}, nexus())) == ()
    finally:
        array.close()


# --- files, close, the real engine --------------------------------------------------------------


def test_close_releases_file_backings(tmp_path: Path) -> None:
    config = array_config(luns=(LunConfig("disk", 1 << 20, backing=tmp_path / "d.img"),),
                          hosts=(HostConfig("h", (HOST1,), ((0, "disk"),)),))
    with ScsiArray(config, engine_factory=fake_factory) as array:
        assert isinstance(array.units["disk"].backing, FileBacking)
        ready(array, nexus(), 0)
        assert run(array, write10(0, 1), b"\x33" * 512).good
        with pytest.raises(Exception, match="in use"):
            ScsiArray(config, engine_factory=fake_factory)
    with ScsiArray(config, engine_factory=fake_factory) as again:
        ready(again, nexus(), 0)
        assert bytes(run(again, read10(0, 1)).data) == b"\x33" * 512
    assert aptpl_path_for(again.units["disk"]) == Path(f"{tmp_path / 'd.img'}.aptpl")


def test_failed_construction_closes_what_it_opened(tmp_path: Path) -> None:
    config = array_config(luns=(LunConfig("a", 1 << 20, backing=tmp_path / "a.img"),
                                LunConfig("b", 1 << 20, backing=tmp_path / "b.img")),
                          hosts=())
    with FileBacking(tmp_path / "b.img", 1 << 20):
        with pytest.raises(Exception, match="b.img"):
            ScsiArray(config, engine_factory=fake_factory)
    with FileBacking(tmp_path / "a.img", 1 << 20):  # a.img was released
        pass


def test_reservations_are_shared_through_every_port() -> None:
    pytest.importorskip("fcsoft.scsi.reservations")
    with ScsiArray(array_config()) as array:  # the default engine factory
        via1, via2 = nexus(HOST1, PORT1, 1), nexus(HOST2, PORT2, 2)
        ready(array, via1, 1)
        ready(array, via2, 5)
        param = struct.pack(">QQ4xB3x", 0, 0xABCD, 0)
        register = struct.pack(">BBB2xIB", 0x5F, 0, 0, len(param), 0)
        assert run(array, register, param, nx=via1, lun=1).good
        read_keys = struct.pack(">BB5xHB", 0x5E, 0, 64, 0)
        data = bytes(run(array, read_keys, nx=via2, lun=5).data)
        assert data[8:16] == struct.pack(">Q", 0xABCD)
        assert array.units["boot"].reservations is not array.units["data"].reservations
