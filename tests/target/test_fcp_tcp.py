"""FCP end to end through the fabric over real TCP: the initiator library, the fabric, and
a target port (fcsoft.target) in front of a fake SCSI layer (tests/target/fake_scsi.py).
Storage arrays issue: multi-frame reads and writes with odd sizes, residuals, ABTS
mid-transfer, task management, data beyond FCP_DL, FCP without PLOGI / PRLI."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import trio

from fcsoft.config import parse_config
from fcsoft.fabric import Fabric
from fcsoft.initiator import open_host
from fcsoft.initiator.scsi import connect
from fcsoft.scsi.sense import Status
from fcsoft.server.array_runner import ArrayRuntime
from fcsoft.server.fabric_server import FabricServer
from fcsoft.wire.fcp import FcpCmnd, FcpRspCode, TaskManagementFlags, decode_fcp_rsp, int_to_lun
from fcsoft.wire.header import FCtl, FcType, RCtl, make_header

from .fake_scsi import FakeScsi

H1 = "10:00:00:00:c9:00:00:01"
T1 = "50:01:43:80:00:00:00:01"
CONF = f"""
[fabric]
rscn_coalesce_ms = 10
[[array]]
name = "a1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{T1}"]
[[array.lun]]
name = "d"
size = "2MiB"
[[array.host]]
name = "h"
initiators = ["{H1}"]
luns = {{ 0 = "d" }}
"""


def read10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def write10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


async def start_lab(nursery, *, max_burst: int = 4096, tcp: bool = False,
                    tracer: Any = None, real: bool = False):
    """A fabric and one array port (in process, or `tcp`: attached over TCP) in front of
    the fake SCSI layer, or (`real`) the array's own disk model."""
    conf = parse_config(CONF)
    server = FabricServer(Fabric(conf.fabric, conf.zones), tracer=tracer)
    addr = await nursery.start(server.serve, "127.0.0.1", 0)
    scsi = None if real else FakeScsi()
    array = ArrayRuntime(conf.arrays[0], scsi=scsi, max_burst=max_burst)
    if tcp:
        nursery.start_soon(array.run_remote, *addr)
    else:
        await array.run_in_process(server, nursery)
    port = array.ports[0]
    with trio.fail_after(5):
        while not port.ready:
            await trio.sleep(0.01)
    return addr, array, scsi, server


@pytest.fixture
async def lab(nursery):
    return await start_lab(nursery)


async def test_discover_login_inquiry(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host:
        targets = await host.discover()
        assert [str(t.wwpn) for t in targets] == [T1]
        async with connect(host, targets[0].wwpn) as it:
            data = await it.inquiry(0)
            assert data[8:16] == b"FCSOFT  "
            sess = array.ports[0].session_by_wwpn(host.wwpn)
            assert sess is not None and sess.image_pair
        # LOGO ended the nexus, and the SCSI layer heard of it
        assert [n.initiator for n in scsi.lost] == [host.wwpn]


@pytest.mark.parametrize("blocks", [1, 3, 4, 5, 9, 64])
async def test_multi_frame_read_and_write(lab, blocks):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        data = bytes((i * 7) & 0xFF for i in range(blocks * 512))
        r = await it.scsi(0, write10(10, blocks), data_out=data)
        assert r.good and r.residual == 0
        assert scsi.disk[10 * 512:(10 + blocks) * 512] == data
        r = await it.scsi(0, read10(10, blocks), data_in_len=blocks * 512)
        assert r.good and r.data == data and r.residual == 0


async def test_residual_under_and_over(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        # INQUIRY with 36 bytes of data but FCP_DL 100: underrun 64
        r = await it.scsi(0, struct.pack(">BBBHB", 0x12, 0, 0, 100, 0), data_in_len=100)
        assert r.good and len(r.data) == 36 and r.residual == 64
        # READ of 4 blocks into FCP_DL 1000 (odd): overrun 1048, the first 1000 bytes arrive
        scsi.disk[0:2048] = bytes(range(256)) * 8
        r = await it.scsi(0, read10(0, 4), data_in_len=1000)
        assert r.good and r.residual == -1048 and r.data == bytes(scsi.disk[:1000])


async def test_many_outstanding_commands(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        results = {}

        async def one(i):
            results[i] = await it.scsi(0, read10(i, 1), data_in_len=512)

        async with trio.open_nursery() as n:
            for i in range(300):
                n.start_soon(one, i)
        assert len(results) == 300 and all(r.good for r in results.values())


async def test_unmapped_lun_precheck_answers_without_data_phase(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        r = await it.scsi(3, write10(0, 1), data_out=bytes(512))
        assert r.status == Status.CHECK_CONDITION and r.sense.code == (0x25, 0x00)


async def test_task_management(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        for flag in (TaskManagementFlags.ABORT_TASK_SET, TaskManagementFlags.CLEAR_TASK_SET,
                     TaskManagementFlags.LUN_RESET, TaskManagementFlags.CLEAR_ACA):
            r = await it.task_management(0, flag)
            assert r.response_code == FcpRspCode.TMF_COMPLETE, flag
        r = await it.task_management(5, TaskManagementFlags.LUN_RESET)
        assert r.response_code == FcpRspCode.INVALID_LUN
        r = await it.task_management(0, TaskManagementFlags.TARGET_RESET)
        assert r.response_code == FcpRspCode.TMF_COMPLETE
        assert [k[0] for k in scsi.resets] == ["lun", "target"]


class RawPort:
    """Speak raw frames from a logged-in host N_Port (for protocol violations)."""

    def __init__(self, it):
        self.it = it
        self.frames = []
        self.got = trio.Event()
        self.ex = it.port.hl.exchanges

    def attach(self, ox):
        def handler(frame):
            self.frames.append(frame)
            self.got.set()
        self.ex.attach(ox, handler)

    def send(self, r_ctl, type_, payload, ox, f_ctl=0x290000, rx=0xFFFF, param=0):
        hdr = make_header(r_ctl, self.it.target_fcid, self.it.port.fcid, type_, f_ctl,
                          ox_id=ox, rx_id=rx, parameter=param)
        self.ex.send(hdr, payload)

    async def wait(self, r_ctl):
        with trio.fail_after(5):
            while True:
                for f in self.frames:
                    if f.header.r_ctl == r_ctl:
                        return f
                self.got = trio.Event()
                await self.got.wait()


async def test_abts_mid_transfer(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x700)
        cmnd = FcpCmnd(lun=int_to_lun(0), wrdata=True, cdb=write10(0, 16), fcp_dl=8192)
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, cmnd.encode(), 0x700)
        xr = await raw.wait(RCtl.DATA_DESCRIPTOR)
        # half a burst, then abort
        raw.send(RCtl.SOLICITED_DATA, FcType.FCP, bytes(1024), 0x700, 0x010008,
                 rx=xr.header.rx_id)
        raw.send(RCtl.ABTS, FcType.BLS, b"", 0x700, 0x090000, rx=xr.header.rx_id)
        acc = await raw.wait(RCtl.BA_ACC)
        assert acc.payload[4:6] == (0x700).to_bytes(2, "big")
        assert not array.ports[0].session_by_wwpn(host.wwpn).exchanges
        assert not any(c.cdb[0] == 0x2A for c in scsi.executed)  # never executed
        # the nexus still works
        assert (await it.scsi(0, read10(0, 1), data_in_len=512)).good


async def test_data_beyond_fcp_dl_is_refused(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x701)
        cmnd = FcpCmnd(lun=int_to_lun(0), wrdata=True, cdb=write10(0, 1), fcp_dl=512)
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, cmnd.encode(), 0x701)
        xr = await raw.wait(RCtl.DATA_DESCRIPTOR)
        raw.send(RCtl.SOLICITED_DATA, FcType.FCP, bytes(1024), 0x701,
                 0x010008 | int(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE),
                 rx=xr.header.rx_id)
        rsp = decode_fcp_rsp((await raw.wait(RCtl.COMMAND_STATUS)).payload)
        assert rsp.response_code == FcpRspCode.DATA_LENGTH_INVALID
        assert not any(c.cdb[0] == 0x2A for c in scsi.executed)


async def test_malformed_fcp_cmnd_gets_response_code_2(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x702)
        bad = bytearray(FcpCmnd(lun=int_to_lun(0), cdb=bytes(16)).encode())
        bad[10] = 0x14  # two task management bits at once
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, bytes(bad[:20]), 0x702)  # short too
        rsp = decode_fcp_rsp((await raw.wait(RCtl.COMMAND_STATUS)).payload)
        assert rsp.response_code == FcpRspCode.FCP_CMND_FIELDS_INVALID


async def test_fcp_without_prli_gets_prlo_and_without_plogi_gets_logo(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        await it.prlo()
        got = []
        host._unsolicited_seen = got
        original = host._unsolicited

        def spy(frame):
            got.append(frame.payload[0])
            original(frame)

        host._unsolicited = spy
        raw = RawPort(it)
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP,
                 FcpCmnd(lun=int_to_lun(0), cdb=bytes(16)).encode(), 0x703)
        with trio.fail_after(5):
            while 0x21 not in got:
                await trio.sleep(0.01)
        await it.logout()
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP,
                 FcpCmnd(lun=int_to_lun(0), cdb=bytes(16)).encode(), 0x704)
        with trio.fail_after(5):
            while 0x05 not in got:
                await trio.sleep(0.01)


async def test_link_loss_ends_nexus(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host:
        async with connect(host, T1) as it:
            await it.test_unit_ready()
            await host.hl.link.stream.aclose()
    with trio.fail_after(5):
        while not scsi.lost:
            await trio.sleep(0.01)
    assert array.ports[0].session_by_wwpn(host.wwpn) is None




# -- data frames that arrive together (one read): the fabric routes them as one run and
# the target takes a run of one exchange's FCP_DATA in one loop (FcpEngine._data_run);
# every check of the frame-by-frame path holds inside a run

_DATA_F_CTL = 0x010008  # relative offset present, exchange originator
_LAST_F_CTL = _DATA_F_CTL | int(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)


def _count_runs(monkeypatch, engine) -> list[int]:
    runs: list[int] = []
    real = engine._data_run

    def counting(frames, i, n):
        taken = real(frames, i, n)
        runs.append(taken - i)  # frames the run took (the burst's last goes the checked way)
        return taken

    monkeypatch.setattr(engine, "_data_run", counting)
    return runs


def _send_data(raw, ox, rx, data, piece, *, offsets=None):
    """The data frames of one burst, queued back to back (they leave in one write)."""
    offsets = offsets or list(range(0, len(data), piece))
    for n, off in enumerate(offsets):
        last = n == len(offsets) - 1
        raw.send(RCtl.SOLICITED_DATA, FcType.FCP, data[off:off + piece], ox,
                 _LAST_F_CTL if last else _DATA_F_CTL, rx=rx, param=off)


async def test_a_burst_in_one_read_is_taken_as_a_run(lab, monkeypatch):
    addr, array, scsi, _ = lab
    runs = _count_runs(monkeypatch, array.ports[0].fcp)
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x710)
        data = bytes((i * 13) & 0xFF for i in range(4096))
        cmnd = FcpCmnd(lun=int_to_lun(0), wrdata=True, cdb=write10(20, 8), fcp_dl=4096)
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, cmnd.encode(), 0x710)
        xr = await raw.wait(RCtl.DATA_DESCRIPTOR)
        _send_data(raw, 0x710, xr.header.rx_id, data, 512)
        rsp = decode_fcp_rsp((await raw.wait(RCtl.COMMAND_STATUS)).payload)
        assert rsp.scsi_status == Status.GOOD and not rsp.response_code
        assert scsi.disk[20 * 512:28 * 512] == data
    assert runs and sum(runs) >= 2


async def test_an_out_of_order_frame_inside_a_run_is_refused(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x711)
        cmnd = FcpCmnd(lun=int_to_lun(0), wrdata=True, cdb=write10(0, 8), fcp_dl=4096)
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, cmnd.encode(), 0x711)
        xr = await raw.wait(RCtl.DATA_DESCRIPTOR)
        _send_data(raw, 0x711, xr.header.rx_id, bytes(4096), 512,
                   offsets=[0, 512, 1536, 1024, 2048, 2560, 3072, 3584])
        rsp = decode_fcp_rsp((await raw.wait(RCtl.COMMAND_STATUS)).payload)
        assert rsp.response_code == FcpRspCode.DATA_RO_MISMATCH
        assert not any(c.cdb[0] == 0x2A for c in scsi.executed)
        assert not array.ports[0].session_by_wwpn(host.wwpn).exchanges
        assert (await it.scsi(0, read10(0, 1), data_in_len=512)).good


async def test_data_beyond_the_burst_inside_a_run_is_refused(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x712)
        cmnd = FcpCmnd(lun=int_to_lun(0), wrdata=True, cdb=write10(0, 8), fcp_dl=4096)
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, cmnd.encode(), 0x712)
        xr = await raw.wait(RCtl.DATA_DESCRIPTOR)
        rx = xr.header.rx_id
        for off in range(0, 3584, 512):  # seven frames in order, then one that overruns
            raw.send(RCtl.SOLICITED_DATA, FcType.FCP, bytes(512), 0x712, _DATA_F_CTL, rx=rx,
                     param=off)
        raw.send(RCtl.SOLICITED_DATA, FcType.FCP, bytes(1024), 0x712, _LAST_F_CTL, rx=rx,
                 param=3584)
        rsp = decode_fcp_rsp((await raw.wait(RCtl.COMMAND_STATUS)).payload)
        assert rsp.response_code == FcpRspCode.DATA_LENGTH_INVALID
        assert not any(c.cdb[0] == 0x2A for c in scsi.executed)


async def test_two_exchanges_interleaved_in_one_read(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x713)
        raw.attach(0x714)
        a = bytes([0xA5]) * 2048
        b = bytes(range(256)) * 8
        for ox, lba in ((0x713, 40), (0x714, 50)):
            cmnd = FcpCmnd(lun=int_to_lun(0), wrdata=True, cdb=write10(lba, 4), fcp_dl=2048)
            raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, cmnd.encode(), ox)
        with trio.fail_after(5):
            while len([f for f in raw.frames if f.header.r_ctl == RCtl.DATA_DESCRIPTOR]) < 2:
                raw.got = trio.Event()
                await raw.got.wait()
        rx = {f.header.ox_id: f.header.rx_id for f in raw.frames}
        for off in range(0, 2048, 512):  # A, B, A, B ... in one write
            last = off == 1536
            for ox, data in ((0x713, a), (0x714, b)):
                raw.send(RCtl.SOLICITED_DATA, FcType.FCP, data[off:off + 512], ox,
                         _LAST_F_CTL if last else _DATA_F_CTL, rx=rx[ox], param=off)
        with trio.fail_after(5):
            while len([f for f in raw.frames if f.header.r_ctl == RCtl.COMMAND_STATUS]) < 2:
                raw.got = trio.Event()
                await raw.got.wait()
        assert scsi.disk[40 * 512:44 * 512] == a
        assert scsi.disk[50 * 512:54 * 512] == b


async def test_abts_inside_a_run_of_data(lab):
    addr, array, scsi, _ = lab
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x715)
        cmnd = FcpCmnd(lun=int_to_lun(0), wrdata=True, cdb=write10(0, 8), fcp_dl=4096)
        raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, cmnd.encode(), 0x715)
        xr = await raw.wait(RCtl.DATA_DESCRIPTOR)
        rx = xr.header.rx_id
        for off in (0, 512, 1024):
            raw.send(RCtl.SOLICITED_DATA, FcType.FCP, bytes(512), 0x715, _DATA_F_CTL, rx=rx,
                     param=off)
        raw.send(RCtl.ABTS, FcType.BLS, b"", 0x715, 0x090000, rx=rx)
        for off in (1536, 2048):  # after the abort: for an exchange that is gone
            raw.send(RCtl.SOLICITED_DATA, FcType.FCP, bytes(512), 0x715, _DATA_F_CTL, rx=rx,
                     param=off)
        await raw.wait(RCtl.BA_ACC)
        assert not array.ports[0].session_by_wwpn(host.wwpn).exchanges
        assert not any(c.cdb[0] == 0x2A for c in scsi.executed)
        assert (await it.scsi(0, read10(0, 1), data_in_len=512)).good
