"""One FC link: a byte stream (a TCP connection, or an in-process memory stream) carrying
RFC 3643 encapsulated frames between an N_Port and an F_Port of the fabric.

Theory of operation: a reader task feeds received bytes to the sans-IO `FrameDecoder` and
hands each good frame to the link's owner (`LinkHandler.frame_received`) synchronously;
the protocol core answers by calling `Link.send`, which only queues. A writer task sends
whatever is queued, joining frames that are ready at the same moment into one write. The
send queue is bounded: when a peer stops reading and its queue is full, class 3 frames for
it are discarded and counted, never blocking the sender (docs/behaviour.md 2).

A broken encapsulation header resets only this link; a bad CRC or delimiter drops only
that frame. Both are logged with the link's identity and counted. Good frames are traced by
the link's owner (the fabric traces each frame once, as it enters); a frame the link itself
drops is traced here, when a tracer is given, with the reason as its comment.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
from typing import Any, Protocol

import trio

from fcsoft.logs import get_logger
from fcsoft.wire.encap import DroppedFrame, Frame, FrameDecoder, SpecialFrame
from fcsoft.wire.errors import FramingError

RECEIVE_SIZE = 65536
DEFAULT_SEND_QUEUE = 4096  # frames


class LinkHandler(Protocol):
    """What a link's owner (the fabric, or a host/array port) must provide."""

    def frame_received(self, link: Link, frame: Frame) -> None: ...

    def link_closed(self, link: Link, reason: str) -> None: ...


class FrameTap(Protocol):
    def frame(self, raw: Any, link_id: int | None = None, *, inbound: bool = True,
              comment: str | None = None) -> Any: ...


_ids = itertools.count(1)


def new_link_id() -> int:
    """A link id no other link of this process has (TCP, in-process or FCoE)."""
    return next(_ids)



class Link:
    """A link over `stream`. Use `run()` (in a nursery) to drive it; `send()` to queue."""

    def __init__(self, stream: trio.abc.Stream, handler: LinkHandler, *, peer: str = "?",
                 tracer: FrameTap | None = None, send_queue: int = DEFAULT_SEND_QUEUE,
                 r_a_tov: float = 10.0, name: str | None = None) -> None:
        self.id = new_link_id()
        self.name = name or f"link{self.id}"
        self.peer = peer
        self.stream = stream
        self.handler = handler
        self.tracer = tracer
        self.r_a_tov = r_a_tov
        self.counters: Counter[str] = Counter()
        self.log = get_logger(link=self.name, peer=peer)
        # a deque and a wake-up event rather than a trio memory channel: send() runs once
        # per frame and must be as cheap as it can be
        self._queue: deque[bytes | memoryview] = deque()
        self._queue_max = send_queue
        self._wakeup = trio.Event()
        self._cancel = trio.CancelScope()
        self._closed_reason: str | None = None
        self._decoder = FrameDecoder()

    def __repr__(self) -> str:
        return f"<Link {self.name} {self.peer}>"

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    # -- sending -----------------------------------------------------------------------
    def send(self, data: bytes | memoryview) -> bool:
        """Queue one encapsulated frame. Returns False (and counts it) when the frame had
        to be discarded because the link is closed or its send queue is full."""
        if self._closed_reason is not None:
            self.counters["tx_discard_closed"] += 1
            return False
        queue = self._queue
        if len(queue) >= self._queue_max:
            self.counters["tx_discard_queue_full"] += 1
            n = self.counters["tx_discard_queue_full"]
            if n == 1 or n % 1000 == 0:
                self.log.warning("frame discarded", reason="send queue full", discarded=n)
            return False
        queue.append(data)
        if len(queue) == 1:
            self._wakeup.set()
        return True

    async def _writer(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            # everything ready now goes out in one write (at most 256 frames, so one slow
            # peer's backlog does not become one enormous buffer)
            if len(queue) == 1:
                batch = [queue.popleft()]
                data = batch[0]
            else:
                batch = [queue.popleft() for _ in range(min(256, len(queue)))]
                data = b"".join(batch)
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._close(f"connection lost while sending: {exc or type(exc).__name__}")
                return
            self.counters["tx_frames"] += len(batch)
            self.counters["tx_bytes"] += len(data)
            self.counters["tx_writes"] += 1

    # -- receiving ---------------------------------------------------------------------
    def _deadline(self, connected_at: float, partial_since: float | None) -> float:
        # docs/behaviour.md 2: a link that sends nothing for 2 x R_A_TOV after connecting,
        # or holds a partial frame for longer than R_A_TOV, is reset.
        if self._decoder.frames_seen == 0 and self._decoder.pending == 0:
            return connected_at + 2 * self.r_a_tov
        if partial_since is not None:
            return partial_since + self.r_a_tov
        return math.inf

    async def _reader(self) -> None:
        connected_at = trio.current_time()
        partial_since: float | None = None
        decoder = self._decoder
        while self._closed_reason is None:
            data = None
            with trio.move_on_at(self._deadline(connected_at, partial_since)):
                try:
                    data = await self.stream.receive_some(RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self._close(f"connection lost: {exc or type(exc).__name__}")
                    return
            if data is None:  # the deadline passed
                if decoder.frames_seen == 0 and decoder.pending == 0:
                    why = f"nothing received for {2 * self.r_a_tov:g} s after connecting"
                else:
                    why = f"partial frame held for more than R_A_TOV ({self.r_a_tov:g} s)"
                self.counters["rx_timeout"] += 1
                self.log.warning("link reset", reason=why)
                self._close(why)
                return
            if not data:
                self._close("peer closed the connection")
                return
            self.counters["rx_bytes"] += len(data)
            try:
                events = decoder.feed(data)
            except FramingError as exc:
                self.counters["rx_framing_error"] += 1
                self.log.warning("link reset", reason=str(exc))
                self._close(f"framing error: {exc}")
                return
            for ev in events:
                self._event(ev)
                if self._closed_reason is not None:
                    return
            # the R_A_TOV clock runs for one partial frame: it restarts whenever a read
            # completed frames, else a busy link whose reads never end on a frame
            # boundary would be reset while it is making progress
            if not decoder.pending:
                partial_since = None
            elif partial_since is None or events:
                partial_since = trio.current_time()

    def _event(self, ev: Frame | SpecialFrame | DroppedFrame) -> None:
        if isinstance(ev, Frame):
            self.counters["rx_frames"] += 1
            try:
                self.handler.frame_received(self, ev)
            except Exception:  # noqa: BLE001 - a bug handling one frame must not kill the link
                self.counters["rx_handler_error"] += 1
                self.log.exception("frame handling failed; frame discarded",
                                   r_ctl=ev.header.r_ctl, s_id=ev.header.s_id,
                                   d_id=ev.header.d_id, ox_id=ev.header.ox_id)
        elif isinstance(ev, SpecialFrame):
            # RFC 3821 6.4.2.2: the acceptor echoes the FCIP Special Frame it receives
            self.counters["rx_special_frames"] += 1
            self.log.info("FCIP special frame echoed")
            self.send(ev.raw)
        else:
            key = "rx_drop_" + ev.error.what.lower().replace(" ", "_")
            self.counters[key] += 1
            if self.tracer is not None:
                # a frame that entered the fabric's port and died there: traced with why
                self.tracer.frame(ev.raw, self.id, comment=f"dropped: {ev.error}")
            self.log.warning("frame dropped", reason=str(ev.error))

    # -- lifetime ----------------------------------------------------------------------
    def _close(self, reason: str) -> None:
        if self._closed_reason is None:
            self._closed_reason = reason
            self._cancel.cancel()

    def close(self, reason: str = "closed locally") -> None:
        """Reset the link: stop both tasks and close the stream."""
        self._close(reason)

    async def run(self) -> None:
        """Drive the link until it is closed by either side; then tell the handler."""
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    await self._reader()
                    nursery.cancel_scope.cancel()
        finally:
            if self._closed_reason is None:
                self._closed_reason = "cancelled"
            with trio.CancelScope(shield=True):
                with trio.move_on_after(1):
                    await trio.aclose_forcefully(self.stream)
            self._queue.clear()
            self.log.info("link down", reason=self._closed_reason)
            self.handler.link_closed(self, self._closed_reason)
