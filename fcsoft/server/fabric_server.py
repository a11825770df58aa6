"""The trio shell around the sans-IO fabric core: TCP listener, links, timers, trace.

`FabricServer.serve` is started with `nursery.start` (trio's `serve_*` convention) and
reports the bound address; every accepted connection becomes a `Link`. Other kinds of
port attach themselves with `attach` (an FCoE ENode is one more link: see
fcoe_server.py), and a port in this process (an array's target port) with `attach_local`:
a `LocalLink` exchanges frames with it by function call, with no socket and no second
decode. The core sees link ids, frames and `now`; it transmits through
`FabricServer.transmit` (frames it originates) and `FabricServer.forward` /
`forward_raw` (frames it routes).

Traces record every frame once: as it enters the fabric (`frame_received`), and as the
fabric originates it (`transmit`); a routed frame is not traced again on its way out. A
frame the fabric discards gets the reason as its trace comment.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import trio

from fcsoft.logs import get_logger
from fcsoft.wire.encap import (
    Frame,
    FrameRun,
    crc_ok,
    each_frame,
    frame_count,
    frame_of,
    split_frames,
)
from fcsoft.wire.header import format_fcid

from .core_api import Core
from .link import Link, flusher, new_link_id
from .timers import TimerLoop
from .trace import Tracer, TraceRecord

_IDS = struct.Struct(">II").unpack_from  # header words 0 and 1: R_CTL|D_ID, CS_CTL|S_ID
WELL_KNOWN_BASE = 0xFFFFF0


class Attachment(Protocol):
    """Anything the fabric can hold as a link: a `Link`, or another kind of port."""

    id: int
    name: str
    peer: str

    def send(self, data: bytes | memoryview) -> bool: ...

    def send_frame(self, frame: Frame) -> bool: ...

    def close(self, reason: str = ...) -> None: ...


class LocalLink:
    """A port in this process attached to the fabric by function call (an array's target
    port in `fcsoft serve`).

    Fabric to port: frames are queued and handed to `deliver` when the current step of
    work ends (the Flusher calls `_flush`), never inside the fabric core's own processing,
    so a port that answers at once cannot re-enter the core. A routed frame is handed over
    as the Frame the fabric decoded at its ingress; a frame the fabric originated is read
    from its bytes without a CRC check (fcsoft built it).

    Port to fabric: `transmit` goes into the fabric at once. Its bytes may hold several
    frames back to back, all with the same S_ID and D_ID (a read's data frames and
    response)."""

    def __init__(self, server: FabricServer, peer: str, deliver: Callable[[Frame], None],
                 on_close: Callable[[str], None],
                 deliver_run: Callable[[list[Frame | FrameRun]], None] | None = None) -> None:
        self.id = new_link_id()
        self.name = f"link{self.id}"  # as the fabric's own events name it
        self.peer = peer
        self.counters: Counter[str] = Counter()
        self.log = get_logger(component="link", link=self.name, peer=peer)
        self._server = server
        self._deliver = deliver
        self._deliver_run = deliver_run  # several routed frames at once, if the port can
        self._on_close = on_close
        self._in: list[Any] = []
        self._dirty = False
        self._flusher = flusher()
        self.closed = False

    def __repr__(self) -> str:
        return f"<LocalLink {self.name} {self.peer}>"

    # -- fabric to port ------------------------------------------------------------------
    def send(self, data: bytes | memoryview) -> bool:
        if self.closed:
            return False
        self._in.append(data)
        if not self._dirty:
            self._dirty = True
            self._flusher.mark(self)
        return True

    def send_frame(self, frame: Frame) -> bool:
        """A frame the fabric routed here: handed to the port at once. Routing changes no
        state of the fabric core, so the port may answer (and re-enter the fabric's
        routing) right away; the data path's way in."""
        if self.closed:
            return False
        self._hand_over(frame)
        return True

    def send_run(self, frames: list[Frame | FrameRun]) -> int:
        """Frames (and runs of frames) the fabric routed here together (one S_ID and D_ID):
        handed to the port in one call when it takes runs; returns how many frames it
        took (all, or none when the link is closed)."""
        if self.closed:
            return 0
        if self._deliver_run is None or self._server.faults is not None:
            plain = each_frame(frames)
            for frame in plain:
                self._hand_over(frame)
            return len(plain)
        count = frame_count(frames)
        self.counters["rx_frames"] += count
        try:
            self._deliver_run(frames)
        except Exception:  # noqa: BLE001 - one frame's bug must not stop the port
            self.counters["rx_handler_error"] += 1
            h = frames[0].header
            self.log.exception("frame handling failed; frames discarded", frames=count,
                               r_ctl=h.r_ctl, s_id=h.s_id, d_id=h.d_id, ox_id=h.ox_id)
        return count

    def _hand_over(self, frame: Frame) -> None:
        if self._server.faults is not None and not crc_ok(frame.raw):
            # a frame a fault corrupted: the port's receiver drops it, as on a real link
            # (without faults, frames fcsoft built or checked at ingress need no check)
            self.counters["rx_drop_fc_crc"] += 1
            self.log.warning("frame dropped", reason="bad FC CRC")
            return
        self.counters["rx_frames"] += 1
        try:
            self._deliver(frame)
        except Exception:  # noqa: BLE001 - one frame's bug must not stop the port
            self.counters["rx_handler_error"] += 1
            h = frame.header
            self.log.exception("frame handling failed; frame discarded", r_ctl=h.r_ctl,
                               s_id=h.s_id, d_id=h.d_id, ox_id=h.ox_id)

    def _flush(self) -> None:
        self._dirty = False
        items, self._in = self._in, []
        for item in items:
            for frame in map(frame_of, split_frames(item)):
                if self.closed:
                    return
                self._hand_over(frame)

    # -- port to fabric ------------------------------------------------------------------
    def transmit(self, data: bytes | memoryview) -> bool:
        """The port's transmit callback."""
        if self.closed:
            return False
        self.counters["tx_frames"] += 1
        return self._server.local_ingress(self, data)

    def close(self, reason: str = "closed locally") -> None:
        """Take the port off the fabric (its logins end, as on link loss)."""
        if self.closed:
            return
        self.closed = True
        self._in.clear()
        self._server.detach(self, reason)
        self._on_close(reason)


class FabricServer:
    """Runs one fabric core over TCP links (and links attached in process)."""

    def __init__(self, core: Core, *, max_links: int = 4096, r_a_tov: float = 10.0,
                 tracer: Tracer | None = None, send_queue: int = 4096) -> None:
        self.core = core
        self.max_links = max_links
        self.r_a_tov = r_a_tov
        self.tracer = tracer
        self.send_queue = send_queue
        self.links: dict[int, Attachment] = {}
        self.log = get_logger(component="fabric")
        self.address: tuple[str, int] | None = None
        self.refused_links = 0
        self.timers = TimerLoop(core)
        self._tracing: TraceRecord | None = None  # the frame being handled, for discards
        self._link_names: dict[int | None, tuple[str, str]] = {}
        #: fault injection (fcsoft.server.faults), None until a rule is first installed
        self.faults: Any = None
        self._nursery: trio.Nursery | None = None
        core.transmit = self.transmit
        core.forward = self.forward
        core.forward_raw = self.forward_raw
        core.forward_run = self.forward_run
        core.on_discard = self._discarded
        if tracer is not None:
            tracer.describe_link = self._describe_link

    # -- the core's side ---------------------------------------------------------------
    def transmit(self, link_id: int, data: bytes | memoryview) -> bool:
        if self.faults is not None:
            data = self.faults.outbound(link_id, data)
            if data is None:
                return True
        link = self.links.get(link_id)
        if link is None:
            return False
        if self.tracer is not None:
            self.tracer.frame(data, link_id, inbound=False)
        return link.send(data)

    def forward(self, link_id: int, frame: Frame) -> bool:
        link = self.links.get(link_id)
        return link is not None and link.send_frame(frame)

    def forward_raw(self, link_id: int, data: bytes | memoryview) -> bool:
        link = self.links.get(link_id)
        return link is not None and link.send(data)

    def forward_run(self, link_id: int, frames: list[Frame | FrameRun]) -> int:
        link = self.links.get(link_id)
        if link is None:
            return 0
        send_run = getattr(link, "send_run", None)
        if send_run is not None:
            return send_run(frames)  # type: ignore[no-any-return]
        taken = 0
        for frame in frames:
            if isinstance(frame, FrameRun):
                # frame by frame, so that the link's bounded queue counts each (its bytes
                # as received: no Frame objects)
                for raw in split_frames(frame.raw):
                    if not link.send(raw):
                        return taken
                    taken += 1
            elif link.send_frame(frame):
                taken += 1
            else:
                break
        return taken

    def _discarded(self, link_id: int, reason: str) -> None:
        if self._tracing is not None:
            self._tracing.comment = f"discarded: {reason.replace('_', ' ')}"

    def _after_core(self) -> None:
        self.timers.poke()

    def apply(self, change: Any) -> Any:
        """Run `change(now)` against the core (a zoning change, a forced logout ...) and
        reschedule its timers: the Python API for changing a running fabric."""
        result = change(trio.current_time())
        self._after_core()
        return result

    # -- the links' side ---------------------------------------------------------------
    def frame_received(self, link: Attachment, frame: Frame) -> None:
        if self.faults is not None:
            frame = self.faults.inbound(link, frame)
            if frame is None:
                return
        if self.tracer is not None:
            self._tracing = self.tracer.frame(frame.raw, link.id)
        try:
            if frame.header.d_id < 0xFFFFF0:
                # N_Port to N_Port: routing needs no clock and starts no timer (the data path)
                self.core.route(link.id, frame)
                return
            self.core.frame_received(link.id, frame, trio.current_time())
            self._after_core()
        finally:
            self._tracing = None

    #: a link may hand frames_received a sequence's data frames as one FrameRun
    takes_runs = True

    def frames_received(self, link: Attachment, frames: list[Frame | FrameRun]) -> None:
        """Frames a link's reader decoded from one read, in order. Runs of frames for
        N_Ports with one S_ID and D_ID (a write's data frames) are routed as one; with
        faults or a trace, every frame goes its own way (frame_received)."""
        if self.faults is not None or self.tracer is not None:
            for frame in each_frame(frames):
                self.frame_received(link, frame)
            return
        core = self.core
        n = len(frames)
        if n == 1 and type(frames[0]) is Frame:
            self.frame_received(link, frames[0])
            return
        i = 0
        while i < n:
            h = frames[i].header
            d_id = h.d_id
            if d_id >= WELL_KNOWN_BASE:
                for frame in each_frame(frames[i:i + 1]):
                    self.frame_received(link, frame)
                i += 1
                continue
            s_id = h.s_id
            j = i + 1
            while j < n and frames[j].header.d_id == d_id and frames[j].header.s_id == s_id:
                j += 1
            if j - i == 1 and type(frames[i]) is Frame:
                core.route(link.id, frames[i])  # type: ignore[arg-type]
            else:
                core.route_run(link.id, frames[i:j])
            i = j

    def local_ingress(self, link: LocalLink, data: bytes | memoryview) -> bool:
        """Frames from a port attached in process (see LocalLink)."""
        w0, w1 = _IDS(data, 32)
        d_id = w0 & 0xFFFFFF
        tracer = self.tracer
        if d_id < WELL_KNOWN_BASE and self.faults is None:
            if tracer is None:
                return self.core.route_raw(link.id, w1 & 0xFFFFFF, d_id, data)
            frames = split_frames(data)
            for raw in frames[:-1]:
                tracer.frame(raw, link.id)
            self._tracing = tracer.frame(frames[-1], link.id)
            try:
                return self.core.route_raw(link.id, w1 & 0xFFFFFF, d_id, data)
            finally:
                self._tracing = None
        for raw in split_frames(data):
            self.frame_received(link, frame_of(raw))
        return True

    def link_closed(self, link: Attachment, reason: str) -> None:
        self.detach(link, reason)

    def attach(self, link: Attachment) -> bool:
        """Bring a link up on the fabric; False (and logged) when max_links is reached."""
        if len(self.links) >= self.max_links:
            self.refused_links += 1
            self.log.warning("link refused", peer=link.peer,
                             reason=f"max_links ({self.max_links}) reached")
            return False
        self.links[link.id] = link
        self._link_names[link.id] = (link.name, link.peer)
        self.core.link_up(link.id, trio.current_time())
        self._after_core()
        return True

    def detach(self, link: Attachment, reason: str) -> None:
        """The link is gone: implicit logout of everything that logged in over it."""
        if self.links.pop(link.id, None) is not None:
            self._describe_link(link.id)  # keep the WWPN for a trace not yet written
            self.core.link_down(link.id, trio.current_time())
            self._after_core()

    def _describe_link(self, link_id: int | None) -> tuple[str, str]:
        """(pcapng interface name, description): the link, its peer and, once it logged
        in, its N_Port_ID and WWPN."""
        name, peer = self._link_names.get(link_id, (f"link{link_id}", ""))
        record = getattr(self.core, "links", {}).get(link_id)
        base = getattr(record, "base_fcid", None)
        port = self.core.db.get(base) if base is not None and hasattr(self.core, "db") \
            else None
        if port is not None:
            name = f"{name.split(' ')[0]} {format_fcid(port.fcid)} {port.wwpn}"
            self._link_names[link_id] = (name, peer)
        return name, f"peer {peer}" if peer else ""

    def attach_local(self, peer: str, deliver: Callable[[Frame], None],
                     on_close: Callable[[str], None],
                     deliver_run: Callable[[list[Frame | FrameRun]], None] | None = None
                     ) -> LocalLink | None:
        """Attach a port in this process (`peer` names it in logs; `deliver_run`, if the
        port has it, takes several routed frames of one S_ID and D_ID at once); None when
        max_links is reached."""
        link = LocalLink(self, peer, deliver, on_close, deliver_run)
        if not self.attach(link):
            return None
        link.log.info("link up")
        return link

    def fault_injector(self) -> Any:
        """The fault injector (fcsoft.server.faults), created and started on first use."""
        if self.faults is None:
            from .faults import FaultInjector

            if self._nursery is None:
                raise RuntimeError("the fabric is not serving")
            injector = FaultInjector(self)
            self._nursery.start_soon(injector.run)
            self.faults = injector
        return self.faults

    # -- running -----------------------------------------------------------------------
    async def run_link(self, stream: trio.abc.Stream, peer: str) -> None:
        """Run one link over `stream` until it closes (used for TCP and in-process links)."""
        link = Link(stream, self, peer=peer, tracer=self.tracer, r_a_tov=self.r_a_tov,
                    send_queue=self.send_queue, pause_reading=True)
        if not self.attach(link):
            await trio.aclose_forcefully(stream)
            return
        link.log.info("link up")
        await link.run()

    async def _tcp_connection(self, stream: trio.SocketStream) -> None:
        try:
            host, port = stream.socket.getpeername()[:2]
            peer = f"{host}:{port}"
        except OSError:
            peer = "?"
        await self.run_link(stream, peer)

    async def serve(self, host: str, port: int, *,
                    task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on host:port (port 0 = ephemeral) and serve until cancelled."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        sockname = listeners[0].socket.getsockname()
        self.address = (sockname[0], sockname[1])
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.timers.run)
            if self.tracer is not None:
                nursery.start_soon(self.tracer.run)
            task_status.started(self.address)
            await trio.serve_listeners(self._tcp_connection, listeners, handler_nursery=nursery)


def format_address(sockname: Any) -> str:
    """host:port, with brackets around an IPv6 host."""
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
