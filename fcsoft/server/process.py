"""The whole fcsoft process: the fabric on TCP, the trace, and (later) the config's arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from fcsoft.config import Config
from fcsoft.fabric import Fabric

from .fabric_server import FabricServer
from .trace import Tracer


async def run_process(conf: Config, listen: tuple[str, int], trace: Path | None = None, *,
                      task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `conf` on `listen` until cancelled; reports the FabricServer when listening."""
    tracer = Tracer(trace) if trace is not None else None
    try:
        core = Fabric(conf.fabric, zones=conf.zones)
        server = FabricServer(core, max_links=conf.fabric.max_links,
                              r_a_tov=conf.fabric.r_a_tov_ms / 1000, tracer=tracer)
        await server.serve(listen[0], listen[1], task_status=task_status)
    finally:
        if tracer is not None:
            tracer.close()
