"""Fault injection in the fabric's shell: the rules of fcsoft.fabric.faults applied to
frames as they enter the fabric (`FabricServer.frame_received`) and as the fabric
originates them (`FabricServer.transmit`).

The FabricServer holds `faults = None` until the first rule is installed, so a fabric with
no fault costs one attribute check per frame. Actions:

- drop: the frame goes nowhere (as if lost on the wire);
- delay MS: the frame is handled MS milliseconds later (a timer in this module's task);
  frames behind it are not held up, so a delay can reorder them;
- duplicate: the frame is handled twice;
- corrupt: the frame travels on with its CRC inverted, so the receiving port drops it as
  a bad CRC (counted there); a corrupted frame for the fabric's own services is dropped
  by the fabric port, as its CRC check would.

Every hit is counted per rule and per link, logged (the first 20 per rule, then every
1000th), and shown in switchshow / portshow.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from fcsoft.fabric.faults import FaultRule, parse_rule
from fcsoft.logs import get_logger
from fcsoft.wire.encap import Frame
from fcsoft.wire.header import decode_header
from fcsoft.wire.wwn import WWN

if TYPE_CHECKING:
    from .fabric_server import Attachment, FabricServer

LOGGED_PER_RULE = 20


def _corrupted(raw: bytes | memoryview) -> bytes:
    """The encapsulated frame with its FC CRC inverted (the 4 bytes before the EOF word)."""
    b = bytearray(raw)
    for i in range(len(b) - 8, len(b) - 4):
        b[i] ^= 0xFF
    return bytes(b)


class FaultInjector:
    """The installed rules of one FabricServer and the frames they hold back."""

    def __init__(self, server: FabricServer, *, seed: int | None = None) -> None:
        self.server = server
        self.rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self.random = random.Random(seed)
        self.counters: Counter[str] = Counter()  # action -> hits
        self.by_link: Counter[int] = Counter()  # link id -> hits
        self.log = get_logger(component="faults")
        self._passing: Any = None  # a frame being handed back in: not matched again
        self._delayed: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wakeup = trio.Event()

    # -- rules ---------------------------------------------------------------------------
    def add(self, data: Mapping[str, Any]) -> FaultRule:
        """Install a rule from the control API's JSON (FaultError when malformed)."""
        rule = parse_rule(next(self._ids), data)
        self.rules.append(rule)
        fields: dict[str, Any] = {k: v for k, v in rule.describe().items()
                                  if v is not None and k not in ("matched", "hits")}
        for key in ("r_ctl", "type", "opcodes"):  # as numbers: the log names them
            if getattr(rule, key) is not None:
                fields[key] = getattr(rule, key)
        self.log.info("fault added", **fields)
        return rule

    def remove(self, rule_id: int) -> FaultRule | None:
        for rule in self.rules:
            if rule.id == rule_id:
                self.rules.remove(rule)
                self.log.info("fault removed", id=rule_id, hits=rule.hits)
                return rule
        return None

    def clear(self) -> int:
        n = len(self.rules)
        self.rules.clear()
        self.log.info("faults cleared", removed=n)
        return n

    # -- the frames ----------------------------------------------------------------------
    def _fcid_of(self, wwpn: WWN) -> int | None:
        db = getattr(self.server.core, "db", None)
        return db.fcid_of(wwpn) if db is not None else None

    def _hit(self, header: Any, payload: bytes | memoryview, inbound: bool,
             link_id: int) -> FaultRule | None:
        for rule in self.rules:
            if rule.spent or not rule.matches(header, payload, inbound, self._fcid_of):
                continue
            rule.matched += 1
            if rule.probability is not None and self.random.random() >= rule.probability:
                continue
            rule.hits += 1
            rule.by_link[link_id] = rule.by_link.get(link_id, 0) + 1
            if rule.count is not None:
                rule.count -= 1
            self.counters[rule.action] += 1
            self.by_link[link_id] += 1
            if rule.hits <= LOGGED_PER_RULE or rule.hits % 1000 == 0:
                self.log.info("fault injected", id=rule.id, action=rule.action,
                              link=link_id, s_id=header.s_id, d_id=header.d_id,
                              r_ctl=header.r_ctl, type=header.type, ox_id=header.ox_id,
                              hits=rule.hits)
            return rule
        return None

    def inbound(self, link: Attachment, frame: Frame) -> Frame | None:
        """A frame entering the fabric: the frame to handle now, or None when a rule took
        it (dropped, or held back to be handed in again later)."""
        if frame is self._passing or not self.rules:
            return frame
        rule = self._hit(frame.header, frame.payload, True, link.id)
        if rule is None:
            return frame
        action = rule.action
        if action == "drop":
            self._trace(frame.raw, link.id, True, f"fault {rule.id}: dropped")
            return None
        if action == "corrupt":
            if frame.header.d_id >= 0xFFFFF0:
                # the fabric's own port drops a frame with a bad CRC
                self._trace(frame.raw, link.id, True, f"fault {rule.id}: corrupted, dropped")
                return None
            return frame._replace(raw=_corrupted(frame.raw))
        if action == "duplicate":
            self._hand_in(link, frame)
            return frame
        # delay: hand the same frame in again later (a copy: the link reuses its buffer)
        copy = frame._replace(raw=bytes(frame.raw), payload=bytes(frame.payload))
        self._later(rule.delay_ms, lambda: self._hand_in(link, copy))
        return None

    def _hand_in(self, link: Attachment, frame: Frame) -> None:
        if self.server.links.get(link.id) is not link:
            return  # the link went away meanwhile
        self._passing = frame
        try:
            self.server.frame_received(link, frame)
        finally:
            self._passing = None

    def outbound(self, link_id: int, data: bytes | memoryview) -> bytes | memoryview | None:
        """A frame the fabric originates: the bytes to send now, or None when a rule took
        them."""
        if data is self._passing or not self.rules or len(data) < 64:
            return data
        header = decode_header(data, 32)
        rule = self._hit(header, memoryview(data)[56:-8], False, link_id)
        if rule is None:
            return data
        if rule.action == "drop":
            self._trace(data, link_id, False, f"fault {rule.id}: dropped")
            return None
        if rule.action == "corrupt":
            return _corrupted(data)
        if rule.action == "duplicate":
            self._send_again(link_id, data)
            return data
        copy = bytes(data)
        self._later(rule.delay_ms, lambda: self._send_again(link_id, copy))
        return None

    def _send_again(self, link_id: int, data: bytes | memoryview) -> None:
        self._passing = data
        try:
            self.server.transmit(link_id, data)
        finally:
            self._passing = None

    def _trace(self, raw: bytes | memoryview, link_id: int, inbound: bool,
               comment: str) -> None:
        """A frame a rule dropped goes into the trace (if any) with the rule as comment."""
        tracer = self.server.tracer
        if tracer is not None:
            tracer.frame(raw, link_id, inbound=inbound, comment=comment)

    # -- delays --------------------------------------------------------------------------
    def _later(self, delay_ms: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._delayed, (trio.current_time() + delay_ms / 1000,
                                       next(self._seq), action))
        self._wakeup.set()

    async def run(self) -> None:
        """Hand delayed frames in when their time comes (runs beside the fabric)."""
        while True:
            if not self._delayed:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            when = self._delayed[0][0]
            self._wakeup = trio.Event()
            with trio.move_on_at(when):
                await self._wakeup.wait()
            now = trio.current_time()
            while self._delayed and self._delayed[0][0] <= now:
                _when, _seq, action = heapq.heappop(self._delayed)
                try:
                    action()
                except Exception:  # noqa: BLE001 - one frame must not stop the others
                    self.log.exception("delayed frame failed")

    def describe(self) -> dict[str, Any]:
        return {"rules": [r.describe() for r in self.rules],
                "injected": dict(self.counters), "held_back": len(self._delayed)}
