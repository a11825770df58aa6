"""One FC link: a byte stream (a TCP connection, or an in-process memory stream) carrying
RFC 3643 encapsulated frames between an N_Port and an F_Port of the fabric.

Theory of operation
-------------------
The reader feeds received bytes to the sans-IO `FrameDecoder` and hands each good frame to
the link's owner (`LinkHandler.frame_received`) synchronously; the protocol core answers
by calling `Link.send`, which only appends to the link's output list. Sending is lean, for
the data path's sake:

- Whatever a reader's step produced, on any link, is sent at the end of that step: the
  reader calls `Flusher.flush()`, which joins each dirty link's frames into one buffer and
  writes it straight to the socket without blocking (`socket.send` on the non-blocking
  socket). No task switch, no event, no cancel scope per frame or per step.
- Only when a socket would block (or for a stream that is not a socket, such as a trio
  memory stream in tests) does the link's writer task take over: it waits until the
  stream can take the rest, sends it and keeps sending until the link is drained, then
  hands back to the direct path.
- Frames queued outside any reader (a timer's RSCN, a host library task's command) are
  flushed by the Flusher's own task, woken once per batch of such sends.
- The output is bounded: when a peer stops reading and `send_queue` frames wait, class 3
  frames for it are discarded and counted, never blocking the sender (docs/behaviour.md,
  "Load and faults").
- A link made with `pause_reading=True` (the fabric's) stops reading from its peer while
  more than `send_queue` frames' worth of bytes wait to be written to that peer, and goes
  on once half of it is written: the answers of a port in this process to a peer that
  keeps sending commands but does not read them (which may be whole sequences, many
  frames in one queued item) wait in the peer's own socket, not in our memory. This is
  the part of FC's buffer-to-buffer flow control a TCP link can have: a peer that does not
  take frames is not given more to answer.

The reader likewise reads the socket directly (`recv` on the non-blocking socket) and
waits for readability only when there is nothing to read; one cancel scope with a moving
deadline enforces the R_A_TOV rules (docs/behaviour.md, "Load and faults"), instead of one
per read.

A broken encapsulation header resets only this link; a bad CRC or delimiter drops only
that frame. Both are logged with the link's identity and counted. Good frames are traced by
the link's owner (the fabric traces each frame once, as it enters); a frame the link itself
drops is traced here, when a tracer is given, with the reason as its comment.
"""

from __future__ import annotations

import errno
import itertools
import math
from collections import Counter
from typing import Any, Protocol

import trio

from fcsoft.logs import get_logger
from fcsoft.wire.encap import (
    MAX_FRAME_LEN,
    DroppedFrame,
    Frame,
    FrameDecoder,
    FrameRun,
    SpecialFrame,
    frame_count,
)
from fcsoft.wire.errors import FramingError

RECEIVE_SIZE = 262144
DEFAULT_SEND_QUEUE = 4096  # frames
# a reader that keeps finding data yields after this many reads, so other tasks run
READS_BEFORE_YIELD = 8
# queued output of this many bytes is written at once, not at the end of the reader's step
EARLY_FLUSH_BYTES = 65536
# a link that pauses reading (pause_reading) handles a read's frames this many at a time,
# so that one read of many commands cannot queue all their answers past the limit
PAUSE_SLICE = 8


class LinkHandler(Protocol):
    """What a link's owner (the fabric, or a host/array port) must provide. A handler may
    also have `frames_received(link, frames)`: the link then hands it the frames of one
    read together, in order (the fabric routes a write's data frames as one run). A
    handler whose `takes_runs` is true gets a sequence's data frames that came in one read
    as one `FrameRun` among them (no header object per frame)."""

    def frame_received(self, link: Link, frame: Frame) -> None: ...

    def link_closed(self, link: Link, reason: str) -> None: ...


class FrameTap(Protocol):
    def frame(self, raw: Any, link_id: int | None = None, *, inbound: bool = True,
              comment: str | None = None) -> Any: ...


_ids = itertools.count(1)


def new_link_id() -> int:
    """A link id no other link of this process has (TCP, in-process or FCoE)."""
    return next(_ids)


class Flusher:
    """The links with frames waiting, and the one place they are sent from.

    Readers bracket their work with `begin()`/`end()`: frames queued meanwhile are sent
    when the outermost reader step ends, on the reader's own time. A frame queued outside
    any reader step wakes the flusher task, which sends everything queued by then."""

    def __init__(self) -> None:
        self._dirty: list[Any] = []  # Link, or any object with _flush()
        self._depth = 0
        self._wakeup: trio.Event | None = None
        self._task_running = False

    def mark(self, link: Any) -> None:
        self._dirty.append(link)
        if self._depth == 0 and self._wakeup is not None:
            self._wakeup.set()

    def begin(self) -> None:
        self._depth += 1

    def end(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._dirty:
            self.flush()

    def flush(self) -> None:
        # what flushing one link queues on others (a port attached in process answers at
        # once) is sent in the same loop, without waking the task
        self._depth += 1
        try:
            dirty = self._dirty
            while dirty:
                self._dirty = []
                for link in dirty:
                    link._flush()
                dirty = self._dirty
        finally:
            self._depth -= 1

    async def run(self) -> None:
        """Send what was queued outside reader steps (until cancelled)."""
        while True:
            self._wakeup = trio.Event()
            if not self._dirty:
                await self._wakeup.wait()
            self.flush()


_flusher: trio.lowlevel.RunVar[Flusher] = trio.lowlevel.RunVar("fcsoft_flusher")


def flusher() -> Flusher:
    """This trio run's Flusher; its task is started in the system nursery on first use."""
    try:
        return _flusher.get()
    except LookupError:
        f = Flusher()
        _flusher.set(f)
        trio.lowlevel.spawn_system_task(f.run, name="fcsoft link flusher")
        return f


class Link:
    """A link over `stream`. Use `run()` (in a nursery) to drive it; `send()` to queue."""

    def __init__(self, stream: trio.abc.Stream, handler: LinkHandler, *, peer: str = "?",
                 tracer: FrameTap | None = None, send_queue: int = DEFAULT_SEND_QUEUE,
                 r_a_tov: float = 10.0, name: str | None = None,
                 pause_reading: bool = False) -> None:
        self.id = new_link_id()
        self.name = name or f"link{self.id}"
        self.peer = peer
        self.stream = stream
        self.handler = handler
        self.tracer = tracer
        self.r_a_tov = r_a_tov
        self.counters: Counter[str] = Counter()
        self.log = get_logger(component="link", link=self.name, peer=peer)
        self._out: list[bytes | memoryview] = []  # frames waiting to be written
        self._out_bytes = 0  # their size since the last flush, for the early flush
        self._queue_max = send_queue
        self._queued = 0  # bytes queued and not yet written (the backlog)
        # pause_reading: read no more from the peer while the backlog is above this
        self._pause_above = send_queue * MAX_FRAME_LEN if pause_reading else None
        self._drained: trio.Event | None = None  # set when the backlog is down to half
        self._dirty = False
        self._writer_busy = False  # the writer task owns the stream's send side
        self._writer_wakeup = trio.Event()
        sock = getattr(stream, "socket", None)
        # the stdlib socket under a trio SocketStream: written and read without blocking
        self._sock: Any = getattr(sock, "_sock", None) if sock is not None else None
        self._flusher = flusher()
        self._cancel = trio.CancelScope()
        self._closed_reason: str | None = None
        # a handler that takes the frames of one read together (the fabric does)
        self._frames_received = getattr(handler, "frames_received", None)
        self._decoder = FrameDecoder(runs=self._frames_received is not None and
                                     bool(getattr(handler, "takes_runs", False)))

    def __repr__(self) -> str:
        return f"<Link {self.name} {self.peer}>"

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    # -- sending -----------------------------------------------------------------------
    def send(self, data: bytes | memoryview) -> bool:
        """Queue one encapsulated frame (or several, back to back). Returns False (and
        counts it) when it had to be discarded because the link is closed or its output
        is full."""
        if self._closed_reason is not None:
            self.counters["tx_discard_closed"] += 1
            return False
        out = self._out
        if len(out) >= self._queue_max:
            self.counters["tx_discard_queue_full"] += 1
            n = self.counters["tx_discard_queue_full"]
            if n == 1 or n % 1000 == 0:
                self.log.warning("frame discarded", reason="send queue full", discarded=n)
            return False
        out.append(data)
        self._queued += len(data)
        if not self._dirty:
            self._dirty = True
            self._flusher.mark(self)
        n = self._out_bytes + len(data)
        if n >= EARLY_FLUSH_BYTES and not self._writer_busy:
            # enough for a good write: send it now rather than at the end of the reader's
            # step, so the peer works on it while this side goes on (both sides of a busy
            # link otherwise take turns, each idle while the other works)
            self._flush()
        else:
            self._out_bytes = n
        return True

    def send_frame(self, frame: Frame) -> bool:
        """Queue a decoded frame the fabric routes here (its raw bytes go out)."""
        return self.send(frame.raw)

    def _flush(self) -> None:
        """Write what is queued, now, if the stream can take it without waiting; else
        leave it to the writer task."""
        self._dirty = False
        self._out_bytes = 0
        out = self._out
        if not out or self._closed_reason is not None:
            return
        if self._writer_busy or self._sock is None:
            self._writer_wakeup.set()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        frames = len(out)
        out.clear()
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._close(f"connection lost while sending: {exc.strerror or exc}")
            return
        self._written(sent)
        self.counters["tx_frames"] += frames
        self.counters["tx_bytes"] += len(data)
        self.counters["tx_writes"] += 1
        if sent < len(data):
            # the socket is full: the writer waits until it drains, then sends the rest
            out.insert(0, memoryview(data)[sent:])
            self._writer_busy = True
            self._writer_wakeup.set()

    async def _writer(self) -> None:
        out = self._out
        while True:
            if not out:
                self._writer_busy = False
                self._out_bytes = 0
                self._writer_wakeup = trio.Event()
                await self._writer_wakeup.wait()
                continue
            self._writer_busy = True
            # everything ready now goes out in one write (at most 256 frames, so one slow
            # peer's backlog does not become one enormous buffer)
            n = min(256, len(out))
            data = out[0] if n == 1 else b"".join(out[:n])
            del out[:n]
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._close(f"connection lost while sending: {exc or type(exc).__name__}")
                return
            self._written(len(data))
            self.counters["tx_frames"] += n
            self.counters["tx_bytes"] += len(data)
            self.counters["tx_writes"] += 1

    def _written(self, n: int) -> None:
        """`n` queued bytes went out: a reader paused for the backlog may go on once half
        of its limit is left."""
        self._queued -= n
        drained = self._drained
        if drained is not None and self._queued <= self._pause_above // 2:  # type: ignore[operator]
            self._drained = None
            drained.set()

    async def _pause(self, timer: trio.CancelScope, connected_at: float,
                     partial_since: float | None) -> float | None:
        """Read nothing more from the peer until what waits for it is down to half the
        limit (the peer reads, or the link closes). No R_A_TOV clock runs meanwhile (the
        wait is ours): a partial frame's clock starts again after it. Returns the partial
        frame's new start."""
        timer.deadline = math.inf
        await self._wait_for_backlog()
        if partial_since is not None:
            partial_since = trio.current_time()
        timer.deadline = self._deadline(connected_at, partial_since)
        return partial_since

    async def _wait_for_backlog(self) -> None:
        self.counters["rx_paused"] += 1
        n = self.counters["rx_paused"]
        if n == 1 or n % 1000 == 0:
            self.log.info("reading paused", reason="peer is not taking its frames",
                          backlog_bytes=self._queued, pauses=n)
        self._drained = trio.Event()
        await self._drained.wait()

    # -- receiving ---------------------------------------------------------------------
    def _deadline(self, connected_at: float, partial_since: float | None) -> float:
        # docs/behaviour.md, "Load and faults": a link that sends nothing for 2 x R_A_TOV
        # after connecting, or holds a partial frame for longer than R_A_TOV, is reset.
        if self._decoder.frames_seen == 0 and self._decoder.pending == 0:
            return connected_at + 2 * self.r_a_tov
        if partial_since is not None:
            return partial_since + self.r_a_tov
        return math.inf

    async def _receive(self, drained: bool) -> bytes:
        """The next bytes from the peer (b"" at end of stream). `drained`: the last read
        came back short, so the socket is most likely empty: wait for readability before
        reading rather than spend a system call learning that it would block."""
        sock = self._sock
        if sock is None:
            return bytes(await self.stream.receive_some(RECEIVE_SIZE))
        if drained:
            await trio.lowlevel.wait_readable(sock)
        while True:
            try:
                return sock.recv(RECEIVE_SIZE)  # type: ignore[no-any-return]
            except BlockingIOError:
                await trio.lowlevel.wait_readable(sock)
            except InterruptedError:
                continue

    async def _reader(self) -> None:
        connected_at = trio.current_time()
        partial_since: float | None = None
        decoder = self._decoder
        flusher = self._flusher
        reads = 0
        drained = False
        pause_above = self._pause_above
        with trio.CancelScope(deadline=connected_at + 2 * self.r_a_tov) as timer:
            while self._closed_reason is None:
                if pause_above is not None and self._queued > pause_above:
                    # the peer is not reading what it asked for: ask it for nothing more
                    # until it does
                    partial_since = await self._pause(timer, connected_at, partial_since)
                    continue
                try:
                    data = await self._receive(drained)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    if isinstance(exc, OSError) and exc.errno == errno.EBADF:
                        why = "closed locally"
                    self._close(f"connection lost: {why or type(exc).__name__}")
                    return
                if not data:
                    self._close("peer closed the connection")
                    return
                self.counters["rx_bytes"] += len(data)
                drained = len(data) < RECEIVE_SIZE
                seen = decoder.frames_seen
                try:
                    events = decoder.feed(data)
                except FramingError as exc:
                    self.counters["rx_framing_error"] += 1
                    self.log.warning("link reset", reason=str(exc))
                    self._close(f"framing error: {exc}")
                    return
                if pause_above is not None and len(events) > PAUSE_SLICE:
                    # a read may ask for a lot at once: it is handled a slice at a time,
                    # pausing between slices while the answers wait for the peer
                    # (one step of work, as below, unless it has to pause)
                    only = decoder.only_frames
                    flusher.begin()
                    stepping = True
                    try:
                        for k in range(0, len(events), PAUSE_SLICE):
                            if k and self._queued > pause_above:
                                stepping = False
                                flusher.end()  # what is queued goes first
                                partial_since = await self._pause(timer, connected_at,
                                                                  partial_since)
                                flusher.begin()
                                stepping = True
                            self._dispatch(events[k:k + PAUSE_SLICE], only, None)
                            if self._closed_reason is not None:
                                break
                    finally:
                        if stepping:
                            flusher.end()
                    if self._closed_reason is not None:
                        return
                elif events:
                    flusher.begin()
                    try:
                        self._dispatch(events, decoder.only_frames, decoder.frames_seen - seen)
                    finally:
                        flusher.end()
                    if self._closed_reason is not None:
                        return
                # the R_A_TOV clock runs for one partial frame: it restarts whenever a read
                # completed frames, else a busy link whose reads never end on a frame
                # boundary would be reset while it is making progress
                if not decoder.pending:
                    partial_since = None
                elif partial_since is None or events:
                    partial_since = trio.current_time()
                deadline = self._deadline(connected_at, partial_since)
                if deadline != timer.deadline:  # the setter costs more than the comparison
                    timer.deadline = deadline
                if drained:
                    reads = 0  # the wait for readability is a checkpoint
                else:
                    reads += 1
                    if reads >= READS_BEFORE_YIELD:
                        reads = 0
                        await trio.lowlevel.checkpoint()
        if self._closed_reason is None:  # the deadline passed
            if decoder.frames_seen == 0 and decoder.pending == 0:
                why = f"nothing received for {2 * self.r_a_tov:g} s after connecting"
            else:
                why = f"partial frame held for more than R_A_TOV ({self.r_a_tov:g} s)"
            self.counters["rx_timeout"] += 1
            self.log.warning("link reset", reason=why)
            self._close(why)

    def _dispatch(self, events: list[Frame | FrameRun | SpecialFrame | DroppedFrame],
                  only_frames: bool, count: int | None) -> None:
        """Events from one read to the handler (inside a Flusher step). `only_frames`: no
        event but frames (`count` of them, when known)."""
        if self._frames_received is not None and len(events) > 1:
            if only_frames:  # one run of frames
                self._run(events, count)  # type: ignore[arg-type]
            else:
                self._events_in_runs(events)
        else:
            for ev in events:
                self._event(ev)
                if self._closed_reason is not None:
                    break

    def _events_in_runs(self, events: list[Frame | FrameRun | SpecialFrame | DroppedFrame]
                        ) -> None:
        """Hand the frames of one read to a handler that takes them together
        (`frames_received`), in order, with any other event between them on its own."""
        run: list[Frame | FrameRun] = []
        for ev in events:
            if type(ev) is Frame or type(ev) is FrameRun:
                run.append(ev)  # type: ignore[arg-type]
                continue
            if run:
                self._run(run)
                run = []
            if self._closed_reason is not None:
                return
            self._event(ev)
            if self._closed_reason is not None:
                return
        if run:
            self._run(run)

    def _run(self, frames: list[Frame | FrameRun], count: int | None = None) -> None:
        """Frames (and runs of frames) of one read to the handler, together; `count`: how
        many frames they hold, when known."""
        self.counters["rx_frames"] += count if count is not None else frame_count(frames)
        try:
            self._frames_received(self, frames)  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - a bug handling frames must not kill the link
            self.counters["rx_handler_error"] += 1
            h = frames[0].header
            self.log.exception("frame handling failed; frames discarded", frames=len(frames),
                               r_ctl=h.r_ctl, s_id=h.s_id, d_id=h.d_id, ox_id=h.ox_id)

    def _event(self, ev: Frame | FrameRun | SpecialFrame | DroppedFrame) -> None:
        if isinstance(ev, FrameRun):  # (only for a handler that takes runs)
            self._run([ev])
        elif isinstance(ev, Frame):
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
            self._out.clear()
            self._queued = 0
            self.log.info("link down", reason=self._closed_reason)
            self.handler.link_closed(self, self._closed_reason)
