"""The trio shell around the sans-IO fabric core: TCP listener, links, timers, trace.

`FabricServer.serve` is started with `nursery.start` (trio's `serve_*` convention) and
reports the bound address; every accepted connection becomes a `Link`. The core sees link
ids, frames and `now`; it transmits through `FabricServer.transmit`.
"""

from __future__ import annotations

from typing import Any

import trio

from fcsoft.logs import get_logger
from fcsoft.wire.encap import Frame

from .core_api import Core
from .link import Link
from .timers import TimerLoop
from .trace import Tracer


class FabricServer:
    """Runs one fabric core over TCP links (and in-process links added with `attach`)."""

    def __init__(self, core: Core, *, max_links: int = 4096, r_a_tov: float = 10.0,
                 tracer: Tracer | None = None, send_queue: int = 4096) -> None:
        self.core = core
        self.max_links = max_links
        self.r_a_tov = r_a_tov
        self.tracer = tracer
        self.send_queue = send_queue
        self.links: dict[int, Link] = {}
        self.log = get_logger(component="fabric")
        self.address: tuple[str, int] | None = None
        self.refused_links = 0
        self.timers = TimerLoop(core)
        core.transmit = self.transmit

    # -- the core's side ---------------------------------------------------------------
    def transmit(self, link_id: int, data: bytes) -> bool:
        link = self.links.get(link_id)
        if link is None:
            return False
        return link.send(data)

    def _after_core(self) -> None:
        self.timers.poke()

    def apply(self, change: Any) -> Any:
        """Run `change(now)` against the core (a zoning change, a forced logout ...) and
        reschedule its timers: the Python API for changing a running fabric."""
        result = change(trio.current_time())
        self._after_core()
        return result

    # -- the links' side (LinkHandler) -------------------------------------------------
    def frame_received(self, link: Link, frame: Frame) -> None:
        if frame.header.d_id < 0xFFFFF0:
            # N_Port to N_Port: routing needs no clock and starts no timer (the data path)
            self.core.route(link.id, frame)
            return
        self.core.frame_received(link.id, frame, trio.current_time())
        self._after_core()

    def link_closed(self, link: Link, reason: str) -> None:
        if self.links.pop(link.id, None) is not None:
            self.core.link_down(link.id, trio.current_time())
            self._after_core()

    # -- running -----------------------------------------------------------------------
    async def run_link(self, stream: trio.abc.Stream, peer: str) -> None:
        """Run one link over `stream` until it closes (used for TCP and in-process links)."""
        if len(self.links) >= self.max_links:
            self.refused_links += 1
            self.log.warning("link refused", peer=peer,
                             reason=f"max_links ({self.max_links}) reached")
            await trio.aclose_forcefully(stream)
            return
        link = Link(stream, self, peer=peer, tracer=self.tracer, r_a_tov=self.r_a_tov,
                    send_queue=self.send_queue)
        self.links[link.id] = link
        link.log.info("link up")
        self.core.link_up(link.id, trio.current_time())
        self._after_core()
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
        shown = f"[{sockname[0]}]:{sockname[1]}" if ":" in sockname[0] else \
            f"{sockname[0]}:{sockname[1]}"
        self.log.info("listening", address=shown)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.timers.run)
            if self.tracer is not None:
                nursery.start_soon(self.tracer.run)
            task_status.started(self.address)
            await trio.serve_listeners(self._tcp_connection, listeners, handler_nursery=nursery)
