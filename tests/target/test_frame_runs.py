"""A sequence's data frames that arrive in one read travel the fabric and reach the target as
one FrameRun (no header object per frame). Everything the frame-by-frame path guarantees
holds for them: the data lands where it should, every frame is counted, traced and checked
(offsets, burst, exchange, anti-spoofing), with a target in this process and over TCP."""

from __future__ import annotations

import socket

import pytest
import trio

from fcsoft.initiator import open_host
from fcsoft.initiator.scsi import connect
from fcsoft.scsi.sense import Status
from fcsoft.server.trace import Tracer
from fcsoft.wire.encap import FrameRun, encode_sequence
from fcsoft.wire.fcp import FcpCmnd, FcpRspCode, decode_fcp_rsp, int_to_lun
from fcsoft.wire.header import FCtl, FcType, RCtl

from .test_fcp_tcp import H1, T1, RawPort, read10, write10
from .test_fcp_tcp import start_lab as fcp_lab

DATA_F_CTL = 0x010008  # exchange originator, relative offset
LAST_F_CTL = DATA_F_CTL | int(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)


async def start_lab(nursery, **kw):
    """The lab of test_fcp_tcp with bursts of 64 KiB (a 64 KiB write is one sequence)."""
    return await fcp_lab(nursery, max_burst=65536, **kw)


def record_runs(monkeypatch, obj, name) -> list[object]:
    """What `obj.name` (a function taking a list of frames and runs) is handed."""
    seen: list[object] = []
    real = getattr(obj, name)

    def spy(*args):
        seen.extend(a for arg in args if isinstance(arg, list) for a in arg)
        return real(*args)

    monkeypatch.setattr(obj, name, spy)
    return seen


def fabric_link_of(server, host):
    (link,) = [lk for lk in server.links.values() if lk.peer != "in-process"
               and host.fcid in server.core.links[lk.id].fcids]
    return link


@pytest.mark.parametrize(("tcp", "real"), [(False, False), (False, True), (True, False)],
                         ids=["in-process", "in-process-disk", "tcp"])
async def test_a_write_burst_travels_as_a_run(nursery, monkeypatch, tcp, real):
    addr, array, scsi, server = await start_lab(nursery, tcp=tcp, real=real)
    routed = record_runs(monkeypatch, server.core, "route_run")
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        data = bytes((i * 29 + 3) & 0xFF for i in range(65536))
        await it.scsi(0, bytes(6))  # TEST UNIT READY: the disk's power-on unit attention
        r = await it.scsi(0, write10(100, 128), data_out=data)
        assert r.good and r.residual == 0
        if scsi is not None:
            assert scsi.disk[100 * 512:228 * 512] == data
        r = await it.scsi(0, read10(100, 128), data_in_len=65536)
        assert r.good and r.data == data
        link = fabric_link_of(server, host)
        # every frame counted once, runs or not: as many as the link's decoder delimited
        assert link.counters["rx_frames"] == link._decoder.frames_seen > 32
        assert server.core.links[link.id].counters["routed"] > 32
    assert any(isinstance(item, FrameRun) for item in routed)


@pytest.mark.parametrize("tcp", [False, True], ids=["in-process", "tcp"])
async def test_runs_reach_the_target_port_whole(nursery, monkeypatch, tcp):
    addr, array, scsi, server = await start_lab(nursery, tcp=tcp)
    taken = record_runs(monkeypatch, array.ports[0].fcp, "frames")
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        data = bytes(range(256)) * 128  # 32 KiB: 16 frames
        assert (await it.scsi(0, write10(8, 64), data_out=data)).good
        assert scsi.disk[8 * 512:72 * 512] == data
    runs = [item for item in taken if isinstance(item, FrameRun)]
    assert runs and sum(len(r) for r in runs) >= 8


def send_sequence(it, ox, rx, data, piece, offset=0, seq_id=1, s_id=None, last=LAST_F_CTL):
    """One sequence of FCP_DATA frames in one write (SEQ_CNT counting, SOFn3/EOFn)."""
    port = it.port
    port.hl.exchanges.send_raw(encode_sequence(
        RCtl.SOLICITED_DATA, it.target_fcid, s_id if s_id is not None else port.fcid,
        FcType.FCP, DATA_F_CTL, seq_id, ox, rx, data, piece, offset, last))


async def open_write(raw, ox, lba, length):
    cmnd = FcpCmnd(lun=int_to_lun(0), wrdata=True, cdb=write10(lba, length // 512),
                   fcp_dl=length)
    raw.send(RCtl.UNSOLICITED_COMMAND, FcType.FCP, cmnd.encode(), ox)
    return (await raw.wait(RCtl.DATA_DESCRIPTOR)).header.rx_id


async def test_a_run_that_goes_beyond_the_burst_is_refused(nursery):
    addr, array, scsi, _ = await start_lab(nursery)
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x720)
        rx = await open_write(raw, 0x720, 0, 4096)
        # four frames of 1.5 KiB for a burst of 4 KiB, none but the last ending the
        # sequence: the third runs over the burst's end
        unknown = array.ports[0].counters["fcp_data_unknown_exchange"]
        send_sequence(it, 0x720, rx, bytes(6144), 1536)
        rsp = decode_fcp_rsp((await raw.wait(RCtl.COMMAND_STATUS)).payload)
        assert rsp.response_code == FcpRspCode.DATA_LENGTH_INVALID
        # refused at the third frame, as frame by frame: the fourth finds no exchange
        assert array.ports[0].counters["fcp_data_unknown_exchange"] == unknown + 1
        assert not any(c.cdb[0] == 0x2A for c in scsi.executed)
        assert (await it.scsi(0, read10(0, 1), data_in_len=512)).good


async def test_a_run_at_the_wrong_offset_is_refused(nursery):
    addr, array, scsi, _ = await start_lab(nursery)
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x721)
        rx = await open_write(raw, 0x721, 0, 8192)
        unknown = array.ports[0].counters["fcp_data_unknown_exchange"]
        send_sequence(it, 0x721, rx, bytes(8192), 1024, offset=1024)
        rsp = decode_fcp_rsp((await raw.wait(RCtl.COMMAND_STATUS)).payload)
        assert rsp.response_code == FcpRspCode.DATA_RO_MISMATCH
        # refused at the first frame: the seven after it find no exchange
        with trio.fail_after(5):
            while array.ports[0].counters["fcp_data_unknown_exchange"] < unknown + 7:
                await trio.sleep(0.01)
        assert not array.ports[0].session_by_wwpn(host.wwpn).exchanges


async def test_a_run_for_no_exchange_is_counted_frame_by_frame(nursery):
    addr, array, scsi, _ = await start_lab(nursery)
    port = array.ports[0]
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        before = port.counters["fcp_data_unknown_exchange"]
        send_sequence(it, 0x7FE, 0x123, bytes(8192), 1024)
        with trio.fail_after(5):
            while port.counters["fcp_data_unknown_exchange"] < before + 8:
                await trio.sleep(0.01)
        assert (await it.scsi(0, read10(0, 1), data_in_len=512)).good
        assert port.counters["fcp_data_unknown_exchange"] == before + 8


async def test_a_spoofed_run_is_discarded_frame_by_frame(nursery):
    addr, array, scsi, server = await start_lab(nursery)
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        raw = RawPort(it)
        raw.attach(0x722)
        rx = await open_write(raw, 0x722, 0, 8192)
        send_sequence(it, 0x722, rx, bytes([0xEE]) * 8192, 1024, s_id=host.fcid ^ 0x0000FF)
        counters = server.core.counters
        with trio.fail_after(5):
            while counters["discard_s_id_not_assigned_on_link"] < 8:
                await trio.sleep(0.01)
        await trio.sleep(0.05)
        assert counters["discard_s_id_not_assigned_on_link"] == 8
        assert scsi.disk[:8192] == bytes(8192)  # nothing of it was stored
        assert array.ports[0].session_by_wwpn(host.wwpn).exchanges  # still waiting


async def test_a_traced_run_records_every_frame(nursery, tmp_path):
    from tests.server.test_cli import read_pcap

    tracer = Tracer(tmp_path / "t.pcap")
    tracer.open()
    addr, array, scsi, _ = await start_lab(nursery, tracer=tracer)
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        data = bytes(range(256)) * 128  # 32 KiB: 16 data frames of 2 KiB
        assert (await it.scsi(0, write10(0, 64), data_out=data)).good
        r = await it.scsi(0, read10(0, 64), data_in_len=len(data))
        assert r.status == Status.GOOD and r.data == data
    tracer.close()
    records = read_pcap(tmp_path / "t.pcap")
    # data frames from the host (S_ID its own): SEQ_CNT 0..15, relative offsets in order
    out = [r for r in records if r[4] == 0x01 and int.from_bytes(r[9:12], "big") == host.fcid]
    assert [int.from_bytes(r[18:20], "big") for r in out] == list(range(16))
    assert [int.from_bytes(r[24:28], "big") for r in out] == [2048 * k for k in range(16)]
    assert b"".join(r[28:28 + 2048] for r in out) == data


# -- the initiator's side: a READ's data-in frames that come in one read are one FrameRun

async def test_read_data_reaches_the_initiator_as_runs(nursery, monkeypatch):
    addr, array, scsi, _ = await start_lab(nursery, tcp=True)
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        seen = record_runs(monkeypatch, host.hl.exchanges, "frames_received")
        data = bytes((i * 11 + 5) & 0xFF for i in range(65536))
        scsi.disk[512 * 300:512 * 428] = data
        r = await it.scsi(0, read10(300, 128), data_in_len=len(data))
        assert r.good and r.data == data and r.residual == 0
        buf = bytearray(len(data))  # into the caller's buffer too
        r = await it.scsi(0, read10(300, 128), data_in=buf)
        assert r.good and buf == data
    assert any(isinstance(item, FrameRun) for item in seen)


@pytest.mark.parametrize("rel", [True, False], ids=["relative-offset", "in-order"])
@pytest.mark.parametrize("room", [8192, 5000], ids=["fits", "overflows"])
def test_a_run_fills_the_initiators_buffer_as_its_frames_would(rel, room):
    """_Command.data_run with a FrameRun does what it does with the run's frames one by
    one: payloads at their relative offsets (or in arrival order without them), and a
    frame that would not fit the buffer left out."""
    from fcsoft.initiator.scsi import _Command
    from fcsoft.wire.encap import EOF, SOF, FrameDecoder, each_frame, encode_frame
    from fcsoft.wire.header import FcHeader

    data = bytes((i * 3) & 0xFF for i in range(8192))
    f_ctl = 0x800000 | (0x08 if rel else 0)  # responder's exchange, relative offset or not
    # eight frames of 1 KiB, the parameter their offset or (no relative offset) 0
    stream = b"".join(encode_frame(
        FcHeader(RCtl.SOLICITED_DATA, 0x010200, 0, 0x010100, FcType.FCP,
                 f_ctl | (0x090000 if k == 7 else 0), 1, 0, k, 0x42, 0x43,
                 1024 * k if rel else 0),
        data[1024 * k:1024 * (k + 1)], SOF.SOFi3 if k == 0 else SOF.SOFn3,
        EOF.EOFt if k == 7 else EOF.EOFn) for k in range(8))
    items = FrameDecoder(runs=True).feed(stream)
    assert isinstance(items[0], FrameRun)

    def command():
        cmd = _Command.__new__(_Command)
        cmd.data_in = bytearray(room)
        cmd.data_received = 0
        return cmd

    whole, one_by_one = command(), command()
    whole.data_run(items, 0, len(items))
    frames = each_frame(items)
    one_by_one.data_run(frames, 0, len(frames))
    assert whole.data_in == one_by_one.data_in
    assert whole.data_received == one_by_one.data_received == (8192 if room == 8192 else 4096)
    assert whole.data_in[:4096] == data[:4096]


def test_a_run_routed_to_a_link_without_runs_is_queued_frame_by_frame():
    """A TCP link's (or an FCoE ENode's) send queue is bounded in frames: a run routed to
    it is queued frame by frame, and when the queue fills on the way, the frames that did
    not fit are what the fabric counts as discarded."""
    from fcsoft.config import parse_config
    from fcsoft.fabric import Fabric
    from fcsoft.server.fabric_server import FabricServer
    from fcsoft.wire.encap import FrameDecoder, split_frames

    class Full:  # a link whose queue takes three more frames
        id, name, peer = 99, "link99", "test"

        def __init__(self):
            self.sent = []

        def send(self, data):
            if len(self.sent) == 3:
                return False
            self.sent.append(bytes(data))
            return True

        def send_frame(self, frame):
            return self.send(frame.raw)

    conf = parse_config("")
    server = FabricServer(Fabric(conf.fabric, conf.zones))
    link = Full()
    server.links[link.id] = link
    stream = encode_sequence(RCtl.SOLICITED_DATA, 0x010200, 0x010100, FcType.FCP, DATA_F_CTL,
                             1, 0x42, 0xFFFF, bytes(range(256)) * 32, 1024, 0, LAST_F_CTL)
    items = FrameDecoder(runs=True).feed(stream)
    assert isinstance(items[0], FrameRun) and len(items[0]) == 7
    assert server.forward_run(link.id, items) == 3
    assert link.sent == [bytes(f) for f in split_frames(stream)[:3]]


@pytest.mark.parametrize("one_write", [False, True], ids=["one-by-one", "all-in-one-write"])
async def test_a_peer_that_asks_but_does_not_read_is_read_no_more(nursery, one_write):
    """The answers of a port in this process go out whole (a READ's data and response in
    one queued item), so the fabric's send queue, bounded in items, would not bound them
    in bytes: a peer that keeps sending READs without reading the answers would make the
    process hold all of them. The fabric stops reading from such a peer while more than
    `send_queue` frames' worth of bytes wait for it, and takes the commands of one read a
    few at a time (PAUSE_SLICE): the rest of its commands wait, unanswered; once it reads,
    everything completes, nothing discarded."""
    from fcsoft.config import parse_config
    from fcsoft.fabric import Fabric
    from fcsoft.server.array_runner import ArrayRuntime
    from fcsoft.server.fabric_server import FabricServer
    from fcsoft.server.link import PAUSE_SLICE

    from .fake_scsi import FakeScsi
    from .test_fcp_tcp import CONF

    conf = parse_config(CONF)
    server = FabricServer(Fabric(conf.fabric, conf.zones), send_queue=64)
    addr = await nursery.start(server.serve, "127.0.0.1", 0)
    array = ArrayRuntime(conf.arrays[0], scsi=FakeScsi())
    await array.run_in_process(server, nursery)
    with trio.fail_after(5):
        while not array.ports[0].ready:
            await trio.sleep(0.01)
    count, size = 48, 1 << 20  # 48 MiB asked for, one READ(10) of 1 MiB at a time
    async with open_host(addr, H1) as host, connect(host, T1) as it:
        link = fabric_link_of(server, host)
        go = trio.Event()
        receive = host.hl.link._receive

        async def stalled(drained):
            await go.wait()
            return await receive(drained)

        host.hl.link._receive = stalled  # the host stops reading
        await trio.sleep(0.05)
        done: list[object] = []
        for _ in range(count):
            it.submit(0, read10(0, size // 512), done.append, data_in_len=size, timeout=60)
            if not one_write:
                await trio.sleep(0.01)  # each command in its own write, answered on its own
        with trio.fail_after(5):
            while not link.counters["rx_paused"]:
                await trio.sleep(0.01)
        await trio.sleep(0.2)
        answered = array.ports[0].counters["commands"]
        # the sockets took some answers, the fabric's queue up to its limit and one more;
        # the rest of the commands wait, unanswered, in the sockets
        if one_write:  # the first slice of the read's commands, then the pause
            assert answered <= 2 * PAUSE_SLICE
            assert link._queued < 64 * 2176 + (PAUSE_SLICE + 1) * (size + 4096)
        else:
            assert answered < count - 8
            assert link._queued < 64 * 2176 + 2 * (size + 4096)
        go.set()  # the host reads again
        with trio.fail_after(60):
            while len(done) < count:
                await trio.sleep(0.01)
        assert all(getattr(r, "good", False) for r in done)  # nothing was discarded
        assert link.counters["tx_discard_queue_full"] == 0
        assert link._queued == 0 and not link.closed
