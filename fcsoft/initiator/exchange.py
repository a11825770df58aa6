"""Exchanges on the host side of a link: send a request, wait for its reply sequence.

Theory of operation: `ExchangeManager` owns one link's originator exchange IDs (OX_ID). A
request is sent with a fresh OX_ID and the caller waits on a `Pending` until the reply
sequence is complete (END_SEQUENCE seen, frames put in SEQ_CNT order), or a timeout runs
out. Unsolicited frames (an RSCN or LOGO from the fabric, a PLOGI from a peer) go to the
`unsolicited` callback.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from fcsoft.wire.encap import EOF, SOF, Frame, FrameRun, each_frame, encode_frame
from fcsoft.wire.header import FcHeader, FCtl

# plain ints: IntFlag arithmetic runs in Python, and these are tested on every frame
_EXCHANGE_CONTEXT = int(FCtl.EXCHANGE_CONTEXT)
_END_SEQUENCE = int(FCtl.END_SEQUENCE)
_R_DATA = 0x01  # R_CTL of FCP_DATA (solicited data)


class ExchangeTimeout(TimeoutError):
    """No complete reply within the time allowed."""


@dataclass(slots=True)
class Pending:
    """A request waiting for its reply sequence."""

    ox_id: int
    done: trio.Event = field(default_factory=trio.Event)
    frames: list[Frame] = field(default_factory=list)

    @property
    def header(self) -> FcHeader:
        return self.frames[0].header

    @property
    def payload(self) -> bytes:
        if len(self.frames) == 1:
            return bytes(self.frames[0].payload)
        ordered = sorted(self.frames, key=lambda f: f.header.seq_cnt)
        return b"".join(bytes(f.payload) for f in ordered)


class ExchangeManager:
    """OX_ID allocation and reply matching for one link."""

    def __init__(self, send: Callable[[bytes], bool],
                 unsolicited: Callable[[Frame], None]) -> None:
        self._send = send
        self._unsolicited = unsolicited
        self._pending: dict[int, Pending] = {}
        self._handlers: dict[int, Callable[[Frame], None]] = {}
        self._data_runs: dict[int, Callable[[list[Frame | FrameRun], int, int], None]] = {}
        # start at a random OX_ID: FLOGIs from many ports all come from S_ID 0 to FFFFFE,
        # and a merged trace (or a decoder) can only tell them apart by OX_ID
        start = random.randrange(1, 0xFFFF)
        self._ids = itertools.chain(range(start, 0xFFFF), itertools.cycle(range(1, 0xFFFF)))

    def new_ox_id(self) -> int:
        pending, handlers = self._pending, self._handlers
        for _ in range(0xFFFF):
            ox = next(self._ids)
            if ox not in handlers and ox not in pending:
                return ox
        raise RuntimeError("all 65534 exchange IDs are in use")

    def send(self, header: FcHeader, payload: bytes, sof: int = SOF.SOFi3,
             eof: int = EOF.EOFt) -> None:
        self._send(encode_frame(header, payload, sof, eof))

    def send_raw(self, data: bytes) -> None:
        """Send frames already encapsulated (one or several, back to back)."""
        self._send(data)

    async def request(self, header: FcHeader, payload: bytes, timeout: float) -> Pending:
        """Send `header`+`payload` (its OX_ID must come from new_ox_id) and wait for the
        whole reply sequence."""
        p = Pending(header.ox_id)
        self._pending[header.ox_id] = p
        try:
            self.send(header, payload)
            with trio.move_on_after(timeout):
                await p.done.wait()
            if not p.done.is_set():
                raise ExchangeTimeout(f"no reply to exchange {header.ox_id:#06x} "
                                      f"within {timeout:g} s")
            return p
        finally:
            self._pending.pop(header.ox_id, None)

    def attach(self, ox_id: int, handler: Callable[[Frame], None],
               data_run: Callable[[list[Frame | FrameRun], int, int], None] | None = None
               ) -> None:
        """Route every responder frame of exchange `ox_id` to `handler` (FCP exchanges,
        which see several sequences: XFER_RDY, DATA, RSP); `data_run(frames, i, j)`, if
        given, takes frames[i:j], FCP_DATA of the exchange that arrived together."""
        self._handlers[ox_id] = handler
        if data_run is not None:
            self._data_runs[ox_id] = data_run

    def detach(self, ox_id: int) -> None:
        self._handlers.pop(ox_id, None)
        self._data_runs.pop(ox_id, None)

    def frames_received(self, frames: list[Frame | FrameRun]) -> None:
        """The frames of one read, in order (a FrameRun among them: one sequence's data
        frames): runs of one exchange's FCP_DATA go to its `data_run` in one call,
        everything else to `frame_received`, frame by frame."""
        runs = self._data_runs
        n = len(frames)
        i = 0
        while i < n:
            h = frames[i].header
            if h.r_ctl == _R_DATA and h.f_ctl & _EXCHANGE_CONTEXT and h.ox_id in runs:
                ox = h.ox_id
                j = i + 1
                while j < n:
                    hj = frames[j].header
                    if hj.ox_id != ox or hj.r_ctl != _R_DATA or \
                            not hj.f_ctl & _EXCHANGE_CONTEXT:
                        break
                    j += 1
                runs[ox](frames, i, j)
                i = j
                continue
            for frame in each_frame(frames[i:i + 1]):
                self.frame_received(frame)
            i += 1

    def frame_received(self, frame: Frame) -> None:
        h = frame.header
        if h.f_ctl & _EXCHANGE_CONTEXT:  # sent by the responder: a reply to us
            handler = self._handlers.get(h.ox_id)
            if handler is not None:
                handler(frame)
                return
            p = self._pending.get(h.ox_id)
            if p is not None and not p.done.is_set():
                p.frames.append(frame)
                if h.f_ctl & _END_SEQUENCE:
                    p.done.set()
                return
        self._unsolicited(frame)

    def fail_all(self) -> None:
        """The link went down: wake every waiter (they will see no frames)."""
        for p in self._pending.values():
            p.done.set()
        for handler in list(self._handlers.values()):
            handler(None)  # type: ignore[arg-type]
