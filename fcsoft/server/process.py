"""The whole fcsoft process: the fabric on TCP, the trace, every array of the config
attached to the fabric through in-process links, and the config's FCoE Forwarders."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from fcsoft.config import Config, FcoeConfig
from fcsoft.fabric import Fabric
from fcsoft.fcoe import FcfSettings
from fcsoft.logs import get_logger

from .array_runner import ArrayRuntime
from .fabric_server import FabricServer, format_address
from .fcoe_server import FcoeServer, FcoeSetupError
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
    fcfs: list[FcoeServer] = field(default_factory=list)
    #: the process's nursery (for run-time additions)
    nursery: trio.Nursery | None = None
    #: where the control API listens ([control] listen / serve --control), if it does
    control_address: tuple[str, int] | None = None
    _control: Any = None

    @property
    def control(self) -> Any:
        """The lab's operations (fcsoft.control.ops.LabControl), shared by the HTTP API
        and the pytest handle."""
        if self._control is None:
            from fcsoft.control.ops import LabControl

            self._control = LabControl(self)
        return self._control

    def fcf(self, name: str | None = None) -> FcoeServer:
        """The FCoE Forwarder called `name` (the only one when None)."""
        if name is None:
            if len(self.fcfs) != 1:
                raise KeyError(f"this lab has {len(self.fcfs)} FCoE forwarders: name one")
            return self.fcfs[0]
        for f in self.fcfs:
            if f.settings.name == name:
                return f
        raise KeyError(f"no FCoE forwarder named {name!r}")

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
    """Construct every array of the config (opens backing files, loads APTPL state). On a
    failure nothing stays open and no backing file it created is left behind."""
    arrays: list[ArrayRuntime] = []
    try:
        for a in conf.arrays:
            arrays.append(ArrayRuntime(a, fault=fault, e_d_tov=conf.fabric.e_d_tov_ms / 1000,
                                       r_a_tov=conf.fabric.r_a_tov_ms / 1000))
    except (OSError, ValueError) as exc:
        discard_arrays(arrays)
        name = conf.arrays[len(arrays)].name
        raise StartupError(f"{conf.source}: array {name!r}: {exc}") from exc
    return arrays


def fcf_settings(f: FcoeConfig, conf: Config) -> FcfSettings:
    """The forwarder's identity: the fabric's name serves as both switch and fabric name
    (fcsoft's fabric is one switch)."""
    return FcfSettings(f.name, f.mac, f.fc_map, conf.fabric.wwn, conf.fabric.wwn,
                       fka_adv_period_ms=f.fka_adv_period_ms, priority=f.priority,
                       vlan=f.vlan)


async def start_fcf(f: FcoeConfig, conf: Config, server: FabricServer,
                    nursery: trio.Nursery) -> FcoeServer:
    """Start one FCoE Forwarder in `nursery`; raises StartupError when its transport cannot
    be opened."""
    fcf = FcoeServer(fcf_settings(f, conf), server)
    if f.listen is not None:
        await nursery.start(fcf.serve_tcp, f.listen[0], f.listen[1])
    else:
        assert f.interface is not None
        try:
            sock = fcf.open_interface(f.interface)
        except FcoeSetupError as exc:
            raise StartupError(f"{conf.source}: fcoe {f.name!r}: {exc}") from None
        await nursery.start(fcf.serve_interface, f.interface, sock)
    return fcf


def log_backings(arrays: list[ArrayRuntime]) -> None:
    """Once the start has succeeded: say which backing files it created, and which it grew
    (sparse) to their LU's size."""
    log = get_logger(component="array")
    for runtime in arrays:
        for lu in runtime.scsi.units.values():
            backing = lu.backing
            if getattr(backing, "created", False):
                log.info("backing file created", array=runtime.name, lu=lu.name,
                         path=str(backing.path), size=backing.size)
            elif getattr(backing, "grown_from", None) is not None:
                log.warning("backing file grown", array=runtime.name, lu=lu.name,
                            path=str(backing.path), from_size=backing.grown_from,
                            size=backing.size)


def discard_arrays(arrays: list[ArrayRuntime]) -> None:
    """Close arrays whose start failed: the backing files their start created are removed,
    those it grew get their old size back."""
    for runtime in arrays:
        runtime.scsi.discard()


async def run_process(conf: Config, listen: tuple[str, int], trace: Path | None = None, *,
                      fault: str | None = None, wait_ready: bool = False,
                      task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve `conf` on `listen` until cancelled; reports a `Lab` once listening (and, with
    `wait_ready`, once every array port has registered). The `listening` event names every
    bound address: `fabric` (also as `address`) and, with FCoE forwarders, `fcoe` (the first
    one's) and `fcoe_forwarders` (each by name)."""
    arrays = build_arrays(conf, fault=fault)
    # the trace file is created only once the addresses are bound (frames until then wait
    # in memory), so that a start that fails leaves no file behind
    tracer = Tracer(trace) if trace is not None else None
    started = False
    try:
        core = Fabric(conf.fabric, zones=conf.zones)
        server = FabricServer(core, max_links=conf.fabric.max_links,
                              r_a_tov=conf.fabric.r_a_tov_ms / 1000, tracer=tracer)
        async with trio.open_nursery() as nursery:
            address = await nursery.start(server.serve, listen[0], listen[1])
            fcfs = [await start_fcf(f, conf, server, nursery) for f in conf.fcoe]
            if tracer is not None:
                try:
                    tracer.open()
                except OSError as exc:
                    raise StartupError(f"--trace: cannot write {trace}: "
                                       f"{exc.strerror or exc}") from None
            started = True
            log_backings(arrays)
            lab = Lab(server, arrays, address, conf, fcfs=fcfs, nursery=nursery)
            if conf.control.listen is not None:
                lab.control_address = await start_control(lab, nursery)
            _log_listening(lab)
            for a in arrays:
                await a.run_in_process(server, nursery)
            if wait_ready:
                await lab.wait_ready()
            task_status.started(lab)
    finally:
        if started:
            for a in arrays:
                a.close()
        else:
            discard_arrays(arrays)
        if tracer is not None:
            tracer.close()


async def start_control(lab: Lab, nursery: trio.Nursery) -> tuple[str, int]:
    """Start the control API ([control]); StartupError when its token file cannot be read
    or its address bound."""
    from fcsoft.control.server import TokenError, read_token, serve_control

    conf = lab.config.control
    assert conf.listen is not None
    token = None
    if conf.token_file is not None:
        try:
            token = read_token(conf.token_file)
        except TokenError as exc:
            raise StartupError(f"{lab.config.source}: control.token_file: {exc}") from None
    host, port = conf.listen
    try:
        address: tuple[str, int] = await nursery.start(
            functools.partial(serve_control, lab.control, host, port, token=token))
    except (OSError, BaseExceptionGroup) as exc:
        err = _first_oserror(exc)
        if err is None:
            raise
        raise StartupError(f"control: cannot listen on {format_address(conf.listen)}: "
                           f"{err.strerror or err}") from None
    return address


def _first_oserror(exc: BaseException) -> OSError | None:
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first_oserror(inner)
            if found is not None:
                return found
    return None


def _log_listening(lab: Lab) -> None:
    where: dict[str, Any] = {"address": format_address(lab.address),
                             "fabric": format_address(lab.address)}
    if lab.control_address is not None:
        where["control"] = format_address(lab.control_address)
    if lab.fcfs:
        shown = {f.settings.name: format_address(f.address) if f.address is not None
                 else f"interface {f.interface}" for f in lab.fcfs}
        where["fcoe"] = next(iter(shown.values()))
        where["fcoe_forwarders"] = shown
    get_logger(component="process").info("listening", **where)
