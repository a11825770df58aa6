"""Driving a sans-IO core's timers from trio (the aioquic get_timer / handle_timer shape)."""

from __future__ import annotations

import math
from typing import Protocol

import trio


class TimedCore(Protocol):
    def next_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


class TimerLoop:
    """Calls `core.handle_timer(now)` when `core.next_timer()` comes due. Call `poke()`
    after anything that may have moved the core's next deadline earlier."""

    def __init__(self, core: TimedCore) -> None:
        self.core = core
        self._changed = trio.Event()
        self._scheduled = math.inf

    def poke(self) -> None:
        nxt = self.core.next_timer()
        if nxt is not None and nxt < self._scheduled:
            self._changed.set()

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            nxt = self.core.next_timer()
            self._scheduled = math.inf if nxt is None else nxt
            with trio.move_on_at(self._scheduled):
                await self._changed.wait()
            self._changed = trio.Event()
            now = trio.current_time()
            if now >= self._scheduled:
                self.core.handle_timer(now)
