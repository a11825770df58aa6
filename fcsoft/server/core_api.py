"""The contract between the trio shell and a sans-IO protocol core (fabric, array, host).

A core never does I/O and never reads a clock. The shell tells it about links, frames and
time (`now`, seconds on a monotonic clock); the core answers by calling the `transmit`
callback it was given, and says when it next wants `handle_timer` through `next_timer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from fcsoft.wire.encap import Frame, FrameRun

#: transmit(link_id, encapsulated_frame) -> False when the frame had to be discarded
Transmit = Callable[[int, bytes | memoryview], bool]


class Core(Protocol):
    transmit: Transmit  # set by the shell before the first link comes up: frames it originates
    # frames it routes (the shell traces only what `transmit` sends): decoded, or raw
    forward: Callable[[int, Frame], bool]
    forward_raw: Transmit
    # frames (and runs of frames) sharing S_ID and D_ID; returns how many frames the
    # destination took (each frame of a run counted)
    forward_run: Callable[[int, list[Frame | FrameRun]], int]
    on_discard: Callable[[int, str], None]  # (link id, reason) of each frame it discards

    def link_up(self, link_id: int, now: float) -> None: ...

    def frame_received(self, link_id: int, frame: Frame, now: float) -> None: ...

    def route(self, link_id: int, frame: Frame) -> None:
        """A frame for an N_Port (D_ID below FFFFF0): forward or discard; needs no clock."""

    def route_raw(self, link_id: int, s_id: int, d_id: int, raw: bytes | memoryview) -> bool:
        """The same for the bytes of frames from a port attached in process."""

    def route_run(self, link_id: int, frames: list[Frame | FrameRun]) -> None:
        """The same for decoded frames that arrived back to back with one S_ID and D_ID
        (a write's data frames, runs of one sequence among them): one routing decision
        for all of them."""

    def link_down(self, link_id: int, now: float) -> None: ...

    def next_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...
