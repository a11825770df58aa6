"""The trio shell around the FCoE Forwarder (fcsoft.fcoe): Ethernet segments in, fabric
links out.

Segments:
- a TCP listener speaking QEMU's `-netdev stream` / `-netdev socket` framing (each Ethernet
  frame preceded by its length, 4 bytes big-endian); every connection is one segment, so
  several guests may connect;
- a Linux network interface through an AF_PACKET socket (a veth pair, a real NIC), which
  needs CAP_NET_RAW.
Each ENode that logs in becomes an `EnodeLink` on the FabricServer, an ordinary fabric link
whose frames the forwarder turns into FCoE. Frames entering the fabric from an ENode are
traced by the FabricServer like any link's.
"""

from __future__ import annotations

import itertools
import socket
import struct
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import trio

from fcsoft.fcoe import FcfSettings, Forwarder
from fcsoft.logs import get_logger
from fcsoft.wire.encap import Frame, split_frames
from fcsoft.wire.fcoe import ALL_FCF_MACS, ALL_FCOE_MACS, ETH_P_FCOE, ETH_P_FIP

from .fabric_server import FabricServer, format_address
from .link import flusher, new_link_id
from .timers import TimerLoop

_LEN = struct.Struct(">I")
MAX_ETHERNET_FRAME = 16384  # a length prefix above this is not QEMU's framing: reset
MIN_ETHERNET_FRAME = 14
SEGMENT_QUEUE = 4096  # frames queued for one segment before they are discarded
RECEIVE_SIZE = 65536
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # sll_pkttype of a frame this host sent
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_MULTICAST = 0
PACKET_MR_PROMISC = 1


class FcoeSetupError(Exception):
    """An FCoE transport cannot be opened (no such interface, no CAP_NET_RAW): one line."""


class EnodeLink:
    """One ENode as the fabric sees it: a link whose frames go to the forwarder. Its `peer`
    names the FCF, the ENode's MAC and the Ethernet segment it was last heard on (which
    changes when the ENode moves, as a migrated guest does)."""

    def __init__(self, name: str, peer: str, send: Callable[[bytes], bool],
                 close: Callable[[int, str], None],
                 where: Callable[[int], str | None] | None = None) -> None:
        self.id = new_link_id()
        self.name = name
        self._peer = peer
        self.counters: Counter[str] = Counter()
        self._send = send
        self._close = close
        self._where = where

    @property
    def peer(self) -> str:
        where = self._where(self.id) if self._where is not None else None
        return self._peer if where is None else f"{self._peer} via {where}"

    @peer.setter
    def peer(self, value: str) -> None:
        self._peer = value

    def send(self, data: bytes | memoryview) -> bool:
        """Frames for the ENode: one, or several back to back (a read's data and
        response from a port attached in process)."""
        ok = True
        for raw in split_frames(data):
            sent = self._send(raw)  # type: ignore[arg-type]
            self.counters["tx_frames" if sent else "tx_discard"] += 1
            ok = ok and sent
        return ok

    def send_frame(self, frame: Frame) -> bool:
        ok = self._send(frame.raw)  # type: ignore[arg-type]
        self.counters["tx_frames" if ok else "tx_discard"] += 1
        return ok

    def close(self, reason: str = "closed locally") -> None:
        """Take the ENode off the fabric (as a switch port disable would): Clear Virtual
        Links to the ENode, implicit logout on the fabric."""
        self._close(self.id, reason)


class _FabricSide:
    """The forwarder's FabricSide, bound to a FabricServer."""

    def __init__(self, server: FabricServer, fcf: FcoeServer) -> None:
        self.server = server
        self.fcf = fcf
        self.links: dict[int, EnodeLink] = {}

    def attach(self, name: str, peer: str, send: Callable[[bytes], bool]) -> int | None:
        link = EnodeLink(name, peer, send, self.fcf.clear_link, self.fcf.segment_of_link)
        if not self.server.attach(link):
            return None
        self.links[link.id] = link
        return link.id

    def deliver(self, link_id: int, frame: Frame) -> None:
        link = self.links.get(link_id)
        if link is not None:
            link.counters["rx_frames"] += 1
            self.server.frame_received(link, frame)

    def detach(self, link_id: int, reason: str) -> None:
        link = self.links.pop(link_id, None)
        if link is not None:
            self.server.detach(link, reason)


class Segment:
    """One Ethernet segment's send side: a bounded queue drained by a writer task."""

    def __init__(self, segment_id: int, peer: str, write: Callable[[list[bytes]], Any]) -> None:
        self.id = segment_id
        self.peer = peer
        self.counters: Counter[str] = Counter()
        self._write = write
        self._queue: deque[bytes] = deque()
        self._wakeup = trio.Event()
        self.closed = False

    def send(self, frame: bytes) -> bool:
        if self.closed or len(self._queue) >= SEGMENT_QUEUE:
            self.counters["tx_discard"] += 1
            return False
        self._queue.append(frame)
        if len(self._queue) == 1:
            self._wakeup.set()
        return True

    async def writer(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            batch = [queue.popleft() for _ in range(min(256, len(queue)))]
            await self._write(batch)
            self.counters["tx_frames"] += len(batch)


class FcoeServer:
    """One FCF: its forwarder, its segments and its timers."""

    def __init__(self, settings: FcfSettings, fabric: FabricServer) -> None:
        self.settings = settings
        self.fabric = fabric
        self.side = _FabricSide(fabric, self)
        self.forwarder = Forwarder(settings, self.side, self._send, trio.current_time())
        self.timers = TimerLoop(self.forwarder)
        self.segments: dict[int, Segment] = {}
        self._segment_ids = itertools.count(1)
        self.log = get_logger(component="fcoe", fcf=settings.name)
        self.address: tuple[str, int] | None = None
        self.interface: str | None = None

    # -- forwarder callbacks ---------------------------------------------------------------
    def _send(self, segment: int | None, frame: bytes) -> bool:
        if segment is not None:
            seg = self.segments.get(segment)
            return seg is not None and seg.send(frame)
        for seg in self.segments.values():
            seg.send(frame)
        return True

    def segment_of_link(self, link_id: int) -> str | None:
        """Where the ENode behind fabric link `link_id` was last heard: the segment's peer
        address (or interface), "?" while it is unknown (its segment went away)."""
        enode = self.forwarder.enode_for_link(link_id)
        if enode is None:
            return None
        seg = self.segments.get(enode.segment) if enode.segment is not None else None
        return seg.peer if seg is not None else "?"

    def clear_link(self, link_id: int, reason: str) -> None:
        """An administrative drop of an ENode's link (LabHandle.drop_link, port disable)."""
        self.forwarder.clear_enode(link_id, reason, trio.current_time())
        self.timers.poke()

    def _received(self, segment: int, frame: bytes | memoryview) -> None:
        f = flusher()
        f.begin()  # what the frame causes is sent when it has been handled, in one go
        try:
            self.forwarder.ethernet_received(segment, frame, trio.current_time())
        except Exception:  # noqa: BLE001 - a bug handling one frame must not kill the FCF
            self.forwarder.counters["handler_error"] += 1
            self.log.exception("FCoE frame handling failed; frame discarded", segment=segment)
        finally:
            f.end()
        self.timers.poke()

    async def _run_segment(self, seg: Segment, reader: Callable[[], Any]) -> None:
        self.segments[seg.id] = seg
        self.forwarder.segment_up(seg.id, trio.current_time())
        self.timers.poke()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(seg.writer)
                await reader()
                nursery.cancel_scope.cancel()
        finally:
            seg.closed = True
            del self.segments[seg.id]
            self.forwarder.segment_down(seg.id, trio.current_time())

    # -- QEMU stream connections -----------------------------------------------------------
    async def _connection(self, stream: trio.SocketStream) -> None:
        try:
            peer = format_address(stream.socket.getpeername())
        except OSError:
            peer = "?"
        log = self.log.bind(peer=peer)

        async def write(batch: list[bytes]) -> None:
            await stream.send_all(b"".join(_LEN.pack(len(f)) + f for f in batch))

        seg = Segment(next(self._segment_ids), peer, write)
        log = log.bind(segment=seg.id)

        async def read() -> None:
            buf = bytearray()
            while True:
                try:
                    data = await stream.receive_some(RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    log.info("segment down", reason=f"connection lost: {exc}")
                    return
                if not data:
                    log.info("segment down", reason="peer closed the connection")
                    return
                buf += data
                off = 0
                while len(buf) - off >= 4:
                    (n,) = _LEN.unpack_from(buf, off)
                    if not MIN_ETHERNET_FRAME <= n <= MAX_ETHERNET_FRAME:
                        seg.counters["framing_error"] += 1
                        log.warning("segment reset", reason=f"frame length {n} outside "
                                    f"{MIN_ETHERNET_FRAME}..{MAX_ETHERNET_FRAME}: not QEMU's "
                                    "stream framing")
                        return
                    if len(buf) - off - 4 < n:
                        break
                    seg.counters["rx_frames"] += 1
                    self._received(seg.id, bytes(buf[off + 4:off + 4 + n]))
                    off += 4 + n
                del buf[:off]

        log.info("segment up")
        try:
            await self._run_segment(seg, read)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("segment down", reason=f"connection lost while sending: {exc}")
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    async def serve_tcp(self, host: str, port: int, *,
                        task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen for QEMU stream connections until cancelled; reports the bound address."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        sockname = listeners[0].socket.getsockname()
        self.address = (sockname[0], sockname[1])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.timers.run)
            task_status.started(self.address)
            await trio.serve_listeners(self._connection, listeners, handler_nursery=nursery)

    # -- AF_PACKET -------------------------------------------------------------------------
    def open_interface(self, ifname: str) -> Any:
        """A raw socket on `ifname` taking every frame (promiscuous: the FCF's MAC and
        the FPMA MACs are not the interface's own). Raises FcoeSetupError."""
        if not hasattr(socket, "AF_PACKET"):
            raise FcoeSetupError(f"interface {ifname!r}: AF_PACKET sockets exist on Linux only")
        try:
            index = socket.if_nametoindex(ifname)
        except OSError:
            raise FcoeSetupError(f"interface {ifname!r}: no such network interface") from None
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise FcoeSetupError(f"interface {ifname!r}: raw Ethernet (AF_PACKET) needs "
                                 "CAP_NET_RAW; run as root or grant the capability "
                                 "(setcap cap_net_raw+ep on the Python binary)") from None
        try:
            sock.bind((ifname, 0))
            mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            for group in (ALL_FCF_MACS, ALL_FCOE_MACS):
                mreq = struct.pack("iHH8s", index, PACKET_MR_MULTICAST, 6, group)
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except OSError as exc:
            sock.close()
            raise FcoeSetupError(f"interface {ifname!r}: {exc.strerror or exc}") from None
        return trio.socket.from_stdlib_socket(sock)

    async def serve_interface(self, ifname: str, sock: Any = None, *,
                              task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the FCF on a network interface until cancelled."""
        sock = sock if sock is not None else self.open_interface(ifname)
        self.interface = ifname
        log = self.log.bind(interface=ifname)

        async def write(batch: list[bytes]) -> None:
            for frame in batch:
                try:
                    await sock.send(frame)
                except OSError as exc:
                    # one frame the interface refuses (larger than its MTU: a solicited
                    # advertisement padded to what the ENode claimed) is dropped, not fatal
                    seg.counters["tx_error"] += 1
                    if seg.counters["tx_error"] <= 20:
                        log.info("frame not sent", reason=exc.strerror or str(exc),
                                 size=len(frame))

        seg = Segment(next(self._segment_ids), ifname, write)

        async def read() -> None:
            while True:
                data, addr = await sock.recvfrom(RECEIVE_SIZE)
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own frames, seen again on the way out
                if len(data) >= 14 and _ethertype(data) not in (ETH_P_FIP, ETH_P_FCOE,
                                                                0x8100):
                    continue
                seg.counters["rx_frames"] += 1
                self._received(seg.id, data)

        with sock:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.timers.run)
                task_status.started(ifname)
                log.info("segment up")
                await self._run_segment(seg, read)


def _ethertype(frame: bytes) -> int:
    return (frame[12] << 8) | frame[13]


def describe(server: FcoeServer) -> str:
    """Where the FCF listens, for the `listening` event."""
    if server.address is not None:
        return format_address(server.address)
    return f"interface {server.interface}" if server.interface else "?"


__all__ = ["EnodeLink", "FcoeServer", "FcoeSetupError", "describe"]
