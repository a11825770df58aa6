"""The whole fcsoft process: the fabric on TCP, the trace, and every array of the config
attached to the fabric through in-process links."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from fcsoft.config import Config
from fcsoft.fabric import Fabric

from .array_runner import ArrayRuntime
from .fabric_server import FabricServer
from .trace import Tracer


class StartupError(Exception):
    """Something in the config cannot be started (a locked backing file, a damaged
    reservation state file ...): reported as one line, exit status 1."""


@dataclass
class Lab:
    """A running fabric with its arrays: what `run_process` reports when it is up."""

    server: FabricServer
    arrays: list[ArrayRuntime]
    address: tuple[str, int]
    config: Config
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def fabric(self) -> Fabric:
        return self.server.core  # type: ignore[return-value]

    def array(self, name: str) -> ArrayRuntime:
        for a in self.arrays:
            if a.name == name:
                return a
        raise KeyError(f"no array named {name!r}")

    @property
    def ready(self) -> bool:
        """Every array port has logged in and registered."""
        return all(p.ready for a in self.arrays for p in a.ports)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while not self.ready:
                await trio.sleep(0.01)


def build_arrays(conf: Config, *, fault: str | None = None) -> list[ArrayRuntime]:
    """Construct every array of the config (opens backing files, loads APTPL state)."""
    arrays: list[ArrayRuntime] = []
    try:
        for a in conf.arrays:
            arrays.append(ArrayRuntime(a, fault=fault, e_d_tov=conf.fabric.e_d_tov_ms / 1000,
                                       r_a_tov=conf.fabric.r_a_tov_ms / 1000))
    except (OSError, ValueError) as exc:
        for built in arrays:
            built.close()
        name = conf.arrays[len(arrays)].name
        raise StartupError(f"{conf.source}: array {name!r}: {exc}") from exc
    return arrays


async def run_process(conf: Config, listen: tuple[str, int], trace: Path | None = None, *,
                      fault: str | None = None, wait_ready: bool = False,
                      task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `conf` on `listen` until cancelled; reports a `Lab` once listening (and, with
    `wait_ready`, once every array port has registered)."""
    arrays = build_arrays(conf, fault=fault)
    tracer = Tracer(trace) if trace is not None else None
    try:
        core = Fabric(conf.fabric, zones=conf.zones)
        server = FabricServer(core, max_links=conf.fabric.max_links,
                              r_a_tov=conf.fabric.r_a_tov_ms / 1000, tracer=tracer)
        async with trio.open_nursery() as nursery:
            address = await nursery.start(server.serve, listen[0], listen[1])
            for a in arrays:
                await a.run_in_process(server.run_link, nursery)
            lab = Lab(server, arrays, address, conf)
            if wait_ready:
                await lab.wait_ready()
            task_status.started(lab)
    finally:
        for a in arrays:
            a.close()
        if tracer is not None:
            tracer.close()
