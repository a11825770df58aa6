"""Links of the fabric server (docs/wire.md and 2): real TCP on 127.0.0.1 with the real
Fabric, and a few memory-stream runs where a deterministic clock or back-pressure is simpler.

What is checked is outcome only (a connection closed or not, a frame answered or not, a
counter and a log line), never how fast anything happened: time limits are generous bounds
against hangs.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from fcsoft.config import parse_config
from fcsoft.fabric import Fabric
from fcsoft.initiator import open_host
from fcsoft.server.fabric_server import FabricServer
from fcsoft.server.link import Link
from fcsoft.wire import ns
from fcsoft.wire.ct import GsType, NsCommand, ct_request, decode_ct
from fcsoft.wire.els import ElsCommand
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.encap import (
    Frame,
    FrameDecoder,
    SpecialFrame,
    encode_frame,
    encode_special_frame,
)
from fcsoft.wire.header import FcType, RCtl, WellKnownAddress, make_header
from fcsoft.wire.wwn import WWN

F_PORT = WellKnownAddress.FABRIC_F_PORT
DIRECTORY = WellKnownAddress.DIRECTORY_SERVER
H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"
H3 = "10:00:00:00:c9:00:00:03"
BOUND = 15  # seconds: a hang guard, never a speed requirement


# -- helpers ---------------------------------------------------------------------------------

async def start_server(nursery: trio.Nursery, **kw: Any) -> tuple[FabricServer, tuple[str, int]]:
    conf = parse_config("")
    server = FabricServer(Fabric(conf.fabric, conf.zones), **kw)
    addr = await nursery.start(server.serve, "127.0.0.1", 0)
    return server, addr


def flogi_frame(wwpn: str, ox_id: int = 1) -> bytes:
    wwpn_ = WWN(wwpn)
    wwnn = WWN((0x2 << 60) | (int(wwpn_) & ((1 << 60) - 1)))
    h = make_header(RCtl.ELS_REQUEST, F_PORT, 0, FcType.ELS, ox_id=ox_id)
    return encode_frame(h, ServiceParameters.flogi(wwpn_, wwnn).encode())


def plogi_ns_frame(wwpn: str, fcid: int, ox_id: int) -> bytes:
    h = make_header(RCtl.ELS_REQUEST, DIRECTORY, fcid, FcType.ELS, ox_id=ox_id)
    return encode_frame(h, ServiceParameters.plogi(WWN(wwpn), WWN(wwpn)).encode())


def ct_frame(fcid: int, ox_id: int, command: int, body: bytes) -> bytes:
    h = make_header(RCtl.UNSOLICITED_CONTROL, DIRECTORY, fcid, FcType.CT, ox_id=ox_id)
    return encode_frame(h, ct_request(GsType.DIRECTORY, 0x02, command, body))


class RawClient:
    """A TCP peer that speaks frames by hand: what a conformance tester would do."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder()
        self.events: list[Frame | SpecialFrame] = []

    @classmethod
    async def connect(cls, addr: tuple[str, int], *, rcvbuf: int | None = None) -> RawClient:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the advertised window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await sock.connect(addr)
        return cls(trio.SocketStream(sock))

    @property
    def local(self) -> str:
        host, port = self.stream.socket.getsockname()[:2]  # type: ignore[attr-defined]
        return f"{host}:{port}"

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def next_event(self) -> Frame | SpecialFrame:
        """The next frame (or special frame) from the fabric; fails at EOF."""
        with trio.fail_after(BOUND):
            while not self.events:
                data = await self.stream.receive_some(65536)
                assert data, "the fabric closed the connection"
                for ev in self.decoder.feed(data):
                    assert isinstance(ev, (Frame, SpecialFrame)), ev
                    self.events.append(ev)
            return self.events.pop(0)

    async def next_frame(self) -> Frame:
        ev = await self.next_event()
        assert isinstance(ev, Frame), ev
        return ev

    async def closed_by_peer(self) -> bool:
        """Read until the fabric closes the connection; True when it did (within BOUND)."""
        with trio.move_on_after(BOUND):
            while True:
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, ConnectionError):
                    return True
                if not data:
                    return True
        return False

    async def flogi(self, wwpn: str, ox_id: int = 1) -> int:
        """FLOGI and return the assigned N_Port_ID (asserting an LS_ACC)."""
        await self.send(flogi_frame(wwpn, ox_id))
        reply = await self.next_frame()
        assert reply.header.ox_id == ox_id
        assert reply.payload[0] == ElsCommand.LS_ACC, bytes(reply.payload[:8]).hex()
        return reply.header.d_id

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def wait_for(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(BOUND):
        while not predicate():
            await trio.sleep(0.01)


async def link_of(server: FabricServer, client: RawClient) -> Link:
    """The server-side Link of `client`'s connection (once the server has it)."""
    peer = client.local
    await wait_for(lambda: any(lk.peer == peer for lk in server.links.values()))
    return next(lk for lk in server.links.values() if lk.peer == peer)


def events(logs: list[dict[str, Any]], name: str, **match: Any) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == name
            and all(k in e and (v(e[k]) if callable(v) else e[k] == v)
                    for k, v in match.items())]


# -- TCP: framing errors, dropped frames, special frames ----------------------------------------

async def test_garbage_resets_only_that_link(nursery):
    server, addr = await start_server(nursery)
    with capture_logs() as logs:
        async with open_host(addr, H1) as good:
            bad = await RawClient.connect(addr)
            bad_link = await link_of(server, bad)
            await bad.send(b"GET / HTTP/1.1\r\nHost: fabric\r\n\r\n")
            assert await bad.closed_by_peer()
            await wait_for(lambda: bad_link.id not in server.links)
            assert bad_link.counters["rx_framing_error"] == 1
            resets = events(logs, "link reset", link=bad_link.name,
                            reason=lambda r: "encapsulation header" in r)
            assert len(resets) == 1, logs
            assert events(logs, "link down", link=bad_link.name)
            # the other link is untouched: a name server query still works, and so does a
            # fresh FLOGI on another connection
            assert await good.gid_ft() == [good.fcid]
            other = await RawClient.connect(addr)
            assert await other.flogi(H2) >> 16 == 1
            await other.aclose()
            await bad.aclose()


@pytest.mark.parametrize("damage", ["crc", "sof", "eof"])
async def test_bad_frame_dropped_and_next_processed(nursery, damage):
    server, addr = await start_server(nursery)
    client = await RawClient.connect(addr)
    link = await link_of(server, client)
    frame = bytearray(flogi_frame(H1, ox_id=7))
    if damage == "crc":
        frame[-8] ^= 0xFF
    elif damage == "sof":
        frame[28:32] = bytes.fromhex("2e2e2e2e")  # complement bytes wrong
    else:
        frame[-4:] = bytes.fromhex("99996666")  # not an EOF code
    with capture_logs() as logs:
        await client.send(bytes(frame) + flogi_frame(H1, ox_id=8))
        reply = await client.next_frame()
    assert reply.header.ox_id == 8 and reply.payload[0] == ElsCommand.LS_ACC
    key = {"crc": "rx_drop_fc_crc", "sof": "rx_drop_sof", "eof": "rx_drop_eof"}[damage]
    assert link.counters[key] == 1
    assert link.counters["rx_frames"] == 1  # the damaged frame never reached the fabric
    assert events(logs, "frame dropped", link=link.name)
    assert not link.closed
    await client.aclose()


async def test_special_frame_echoed_byte_for_byte(nursery):
    server, addr = await start_server(nursery)
    client = await RawClient.connect(addr)
    # RFC 3821 5.6.2: a 76-byte FSF; the body's content is the sender's business
    fsf = encode_special_frame(bytes(range(48)))
    assert len(fsf) == 76
    await client.send(fsf)
    echo = await client.next_event()
    assert isinstance(echo, SpecialFrame) and echo.raw == fsf
    assert await client.flogi(H1) >> 16 == 1
    link = await link_of(server, client)
    assert link.counters["rx_special_frames"] == 1
    await client.aclose()


async def test_bytes_fed_one_at_a_time(nursery):
    server, addr = await start_server(nursery)
    client = await RawClient.connect(addr)
    data = flogi_frame(H1, ox_id=3)
    for i in range(len(data)):
        await client.send(data[i:i + 1])
        await trio.sleep(0)
    reply = await client.next_frame()
    assert reply.header.ox_id == 3 and reply.payload[0] == ElsCommand.LS_ACC
    await client.aclose()


async def test_many_frames_in_one_send_all_answered(nursery):
    server, addr = await start_server(nursery)
    client = await RawClient.connect(addr)
    fcid = await client.flogi(H1)
    frames = [plogi_ns_frame(H1, fcid, 2),
              ct_frame(fcid, 3, NsCommand.RFT_ID,
                       ns.RftIdRequest(fcid, ns.Fc4Types({FcType.FCP})).encode())]
    frames += [ct_frame(fcid, ox, NsCommand.GPN_ID, ns.GpnIdRequest(fcid).encode())
               for ox in range(4, 104)]
    await client.send(b"".join(frames))
    answered = {}
    while len(answered) < len(frames):
        f = await client.next_frame()
        answered[f.header.ox_id] = f
    assert sorted(answered) == list(range(2, 104))
    assert answered[2].payload[0] == ElsCommand.LS_ACC
    accepts = [decode_ct(answered[ox].payload) for ox in range(3, 104)]
    assert all(a.preamble.is_accept for a in accepts)
    assert {ns.GpnIdAccept.decode(a.body).port_name for a in accepts[1:]} == {WWN(H1)}
    await client.aclose()


# -- TCP: limits and timeouts ------------------------------------------------------------------

async def test_max_links_refuses_extra_connection_others_keep_working(nursery):
    server, addr = await start_server(nursery, max_links=2)
    a = await RawClient.connect(addr)
    b = await RawClient.connect(addr)
    await link_of(server, a)
    await link_of(server, b)
    with capture_logs() as logs:
        c = await RawClient.connect(addr)
        assert await c.closed_by_peer()
    assert server.refused_links == 1
    assert events(logs, "link refused", reason=lambda r: "max_links" in r)
    assert len(server.links) == 2
    assert await a.flogi(H1) != await b.flogi(H2)
    for cl in (a, b, c):
        await cl.aclose()


async def test_partial_frame_held_too_long_resets_link(nursery):
    server, addr = await start_server(nursery, r_a_tov=0.2)
    client = await RawClient.connect(addr)
    link = await link_of(server, client)
    assert await client.flogi(H1) >> 16 == 1
    with capture_logs() as logs:
        await client.send(flogi_frame(H1, ox_id=2)[:40])  # header fine, frame unfinished
        assert await client.closed_by_peer()
        await wait_for(lambda: link.closed)
    assert link.counters["rx_timeout"] == 1
    assert events(logs, "link reset", link=link.name, reason=lambda r: "partial frame" in r)
    await client.aclose()


async def test_silent_connection_reset_but_quiet_logged_in_link_kept(nursery):
    server, addr = await start_server(nursery, r_a_tov=0.2)
    with capture_logs() as logs:
        silent = await RawClient.connect(addr)
        talker = await RawClient.connect(addr)
        silent_link = await link_of(server, silent)
        talker_link = await link_of(server, talker)
        fcid = await talker.flogi(H1)
        assert await silent.closed_by_peer()
        assert silent_link.counters["rx_timeout"] == 1
        assert events(logs, "link reset", link=silent_link.name,
                      reason=lambda r: "nothing received" in r)
    await trio.sleep(0.3)  # the talker has now been quiet for more than 2 x R_A_TOV
    # the talker, quiet for longer than 2 x R_A_TOV after its FLOGI, is still up and served
    assert not talker_link.closed
    await talker.send(plogi_ns_frame(H1, fcid, 2))
    reply = await talker.next_frame()
    assert reply.payload[0] == ElsCommand.LS_ACC
    for cl in (silent, talker):
        await cl.aclose()


async def test_slow_reader_frames_discarded_not_blocking_others(nursery):
    server, addr = await start_server(nursery, send_queue=4)
    slow = await RawClient.connect(addr, rcvbuf=4096)
    slow_link = await link_of(server, slow)
    # shrink the fabric's side too, so that a stalled reader fills the path quickly
    fabric_socket = slow_link.stream.socket  # type: ignore[attr-defined]
    fabric_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fcid = await slow.flogi(H1)
    await slow.send(plogi_ns_frame(H1, fcid, 2))
    await slow.next_frame()
    with capture_logs() as logs:
        # from here on `slow` never reads: keep asking until the fabric had to discard
        query = b"".join(ct_frame(fcid, ox, NsCommand.GA_NXT, ns.GaNxtRequest(0).encode())
                         for ox in range(3, 103))
        with trio.fail_after(BOUND):
            while slow_link.counters["tx_discard_queue_full"] == 0:
                await slow.send(query)
                await trio.sleep(0.01)
        # meanwhile another link logs in, registers and queries as if nothing happened
        async with open_host(addr, H2) as other:
            assert other.fcid in await other.gid_ft()
    assert slow_link.counters["tx_discard_queue_full"] > 0
    assert not slow_link.closed
    assert events(logs, "frame discarded", link=slow_link.name, reason="send queue full")
    await slow.aclose()


# -- memory streams: deterministic clock and back-pressure ---------------------------------------

async def test_memory_stream_host_login(nursery):
    conf = parse_config("")
    server = FabricServer(Fabric(conf.fabric, conf.zones))
    client_side, fabric_side = trio.testing.memory_stream_pair()
    nursery.start_soon(server.run_link, fabric_side, "memory")
    async with open_host(("memory", 0), H1, stream=client_side) as host:
        assert host.fcid >> 16 == 1
        assert await host.gid_ft() == [host.fcid]
        (link,) = server.links.values()
        assert link.peer == "memory" and link.counters["rx_frames"] >= 8


async def test_memory_stream_fed_byte_by_byte():
    conf = parse_config("")
    server = FabricServer(Fabric(conf.fabric, conf.zones))
    client, fabric_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run_link, fabric_side, "memory")
        data = flogi_frame(H1, ox_id=5)
        for i in range(len(data)):
            await client.send_all(data[i:i + 1])
            await trio.testing.wait_all_tasks_blocked()  # the link has read that one byte
        decoder = FrameDecoder()
        got: list[Any] = []
        with trio.fail_after(BOUND):
            while not got:
                got = decoder.feed(await client.receive_some())
        (reply,) = got
        assert reply.header.ox_id == 5 and reply.payload[0] == ElsCommand.LS_ACC
        nursery.cancel_scope.cancel()


async def test_memory_stream_silence_timeout_virtual_clock(autojump_clock):
    conf = parse_config("")
    server = FabricServer(Fabric(conf.fabric, conf.zones), r_a_tov=10.0)
    client, fabric_side = trio.testing.memory_stream_pair()
    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.run_link, fabric_side, "memory")
            start = trio.current_time()
            with trio.fail_after(60):
                assert await client.receive_some() == b""  # the fabric closed the link
            elapsed = trio.current_time() - start
    assert 20.0 <= elapsed < 21.0  # virtual time: exactly 2 x R_A_TOV, deterministic
    assert events(logs, "link reset", reason=lambda r: "nothing received for 20 s" in r)


async def test_memory_stream_stalled_reader_discards(nursery):
    # lockstep streams have no buffer at all: a peer that does not read stalls the writer
    conf = parse_config("")
    server = FabricServer(Fabric(conf.fabric, conf.zones), send_queue=2)
    stalled, stalled_fabric_side = trio.testing.lockstep_stream_pair()
    nursery.start_soon(server.run_link, stalled_fabric_side, "stalled")
    await stalled.send_all(flogi_frame(H1, ox_id=1))  # its LS_ACC is never read
    await trio.testing.wait_all_tasks_blocked()
    (link,) = server.links.values()
    fcid = 0x010100
    await stalled.send_all(plogi_ns_frame(H1, fcid, 2))
    for ox in range(3, 13):
        await stalled.send_all(ct_frame(fcid, ox, NsCommand.GPN_ID,
                                        ns.GpnIdRequest(fcid).encode()))
    await trio.testing.wait_all_tasks_blocked()
    assert link.counters["tx_discard_queue_full"] >= 8  # 12 answers, 1 in flight, 2 queued
    # a second link is served meanwhile
    client, fabric_side = trio.testing.memory_stream_pair()
    nursery.start_soon(server.run_link, fabric_side, "other")
    async with open_host(("memory", 0), H3, stream=client) as host:
        assert host.fcid != fcid


async def test_memory_stream_busy_link_never_on_a_frame_boundary_kept(autojump_clock):
    # every read ends inside a frame, but each one completes frames: the link is making
    # progress, so no partial frame is ever held for R_A_TOV (docs/behaviour.md 2)
    conf = parse_config("")
    server = FabricServer(Fabric(conf.fabric, conf.zones), r_a_tov=1.0)
    client, fabric_side = trio.testing.memory_stream_pair()
    fcid = 0x010100
    frames = [flogi_frame(H1, ox_id=1), plogi_ns_frame(H1, fcid, 2)]
    frames += [ct_frame(fcid, ox, NsCommand.GPN_ID, ns.GpnIdRequest(fcid).encode())
               for ox in range(3, 43)]
    data = b"".join(frames)
    cuts, off = [], 0
    for f in frames:  # cut in the middle of every frame
        cuts.append(off + len(f) // 2)
        off += len(f)
    answered: set[int] = set()
    decoder = FrameDecoder()

    async def read_answers() -> None:
        while len(answered) < len(frames):
            data = await client.receive_some()
            if not data:
                return  # the fabric closed the link
            for ev in decoder.feed(data):
                answered.add(ev.header.ox_id)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run_link, fabric_side, "busy")
        nursery.start_soon(read_answers)
        start = 0
        for cut in cuts + [len(data)]:
            try:
                await client.send_all(data[start:cut])
            except trio.BrokenResourceError:
                break  # the fabric reset the link: the assertions below say so
            start = cut
            await trio.sleep(0.4)  # 40 pieces x 0.4 s: far longer than R_A_TOV in all
        with trio.move_on_after(BOUND):
            while len(answered) < len(frames):
                await trio.sleep(0.1)
        links = list(server.links.values())
        nursery.cancel_scope.cancel()
    assert len(links) == 1 and links[0].counters["rx_timeout"] == 0
    assert answered == set(range(1, 43))


async def test_echoed_special_frame_not_in_trace(tmp_path):
    from fcsoft.server.trace import Tracer
    from tests.server.test_cli import read_pcap

    conf = parse_config("")
    tracer = Tracer(tmp_path / "t.pcap")
    tracer.open()
    server = FabricServer(Fabric(conf.fabric, conf.zones), tracer=tracer)
    client, fabric_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run_link, fabric_side, "memory")
        await client.send_all(encode_special_frame(bytes(48)) + flogi_frame(H1))
        decoder, got = FrameDecoder(), []
        with trio.fail_after(BOUND):
            while len(got) < 2:  # the echo and the LS_ACC
                got += decoder.feed(await client.receive_some())
        nursery.cancel_scope.cancel()
    tracer.close()
    records = read_pcap(tmp_path / "t.pcap")
    # the FLOGI and its LS_ACC; the FCIP special frame is not an FC frame
    assert [r[4] for r in records] == [0x22, 0x23]


# -- output: when queued frames are written ----------------------------------------------------

class _Quiet:
    def frame_received(self, link: Link, frame: Frame) -> None:
        pass

    def link_closed(self, link: Link, reason: str) -> None:
        pass


async def test_output_written_at_step_end_or_early_when_large(nursery):
    """Frames queued during a reader's step go out in one write when the step ends; once
    EARLY_FLUSH_BYTES are queued they go out at once, so the peer can start on them while
    this side goes on (a busy link's two ends otherwise take turns)."""
    from fcsoft.server import link as link_mod

    a, b = socket.socketpair()
    b.setblocking(False)
    link = Link(trio.SocketStream(trio.socket.from_stdlib_socket(a)), _Quiet(), peer="pair")
    nursery.start_soon(link.run)
    await trio.testing.wait_all_tasks_blocked()
    frame = encode_frame(make_header(RCtl.SOLICITED_DATA, 0x010101, 0x010201, FcType.FCP),
                         bytes(2048))
    fl = link_mod.flusher()

    def pending() -> int:
        try:
            return len(b.recv(1 << 20))
        except BlockingIOError:
            return 0

    fl.begin()
    link.send(frame)
    link.send(frame)
    assert pending() == 0 and link.counters["tx_writes"] == 0  # held to the step's end
    fl.end()
    assert pending() == 2 * len(frame) and link.counters["tx_writes"] == 1

    fl.begin()
    sent = 0
    while sent + len(frame) < link_mod.EARLY_FLUSH_BYTES:
        link.send(frame)
        sent += len(frame)
    assert pending() == 0
    link.send(frame)  # this one crosses the threshold: everything queued goes out now
    assert pending() == sent + len(frame) and link.counters["tx_writes"] == 2
    link.send(frame)
    assert pending() == 0
    fl.end()
    assert pending() == len(frame) and link.counters["tx_writes"] == 3
    assert link.counters["tx_frames"] == 2 + sent // len(frame) + 2
    link.close()
    b.close()
