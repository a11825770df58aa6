"""The trio shell around an array: its SCSI front, one TargetPort per configured port, and
a link for each port to the fabric (in-process for `fcsoft serve`, TCP for `fcsoft array`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from fcsoft.logs import get_logger
from fcsoft.scsi.types import Nexus
from fcsoft.target import TargetPort
from fcsoft.wire.encap import Frame
from fcsoft.wire.fcp import ScsiStatus

from .link import Link
from .timers import TimerLoop

RECONNECT_DELAY = 1.0  # seconds between attempts to reach a remote fabric


class PortDriver:
    """Runs one TargetPort over one link at a time (LinkHandler for fcsoft.server.link)."""

    def __init__(self, port: TargetPort) -> None:
        self.port = port
        self.link: Link | None = None
        self.timers = TimerLoop(port)
        #: set while the port may have a link; cleared by `disable` (fcsoft ctl port disable)
        self.enabled = trio.Event()
        self.enabled.set()

    @property
    def disabled(self) -> bool:
        return not self.enabled.is_set()

    def disable(self) -> bool:
        """Take the port's link down and keep it down (the fabric logs the port out and
        sends RSCNs); False when it already was disabled."""
        if self.disabled:
            return False
        self.enabled = trio.Event()
        if self.link is not None:
            self.link.close("port disabled")
        return True

    def enable(self) -> bool:
        """Let the port bring its link up again (FLOGI and registrations follow); False
        when it was not disabled."""
        if not self.disabled:
            return False
        self.enabled.set()
        return True

    def frame_received(self, link: Link, frame: Frame) -> None:
        self.port.frame_received(frame, trio.current_time())
        self.timers.poke()

    def link_closed(self, link: Link, reason: str) -> None:
        self.port.link_down(trio.current_time())
        self.port.transmit = lambda _d: False

    async def run(self, stream: trio.abc.Stream, peer: str) -> None:
        """Drive the port over `stream` until the link closes."""
        link = Link(stream, self, peer=peer, name=f"port-{self.port.wwpn}",
                    r_a_tov=self.port.fabric.r_a_tov)
        self.link = link
        self.port.transmit = link.send
        async with trio.open_nursery() as nursery:
            self.port.defer = lambda delay, fn: nursery.start_soon(self._later, delay, fn)
            nursery.start_soon(self.timers.run)
            self.port.link_up(trio.current_time())
            self.timers.poke()
            await link.run()
            self.port.defer = None
            nursery.cancel_scope.cancel()

    async def _later(self, delay: float, fn: Callable[[], None]) -> None:
        """A command completion held back by LU latency (fcsoft.target.fcp)."""
        await trio.sleep(delay)
        fn()
        self.timers.poke()


class ArrayRuntime:
    """One configured array: SCSI front shared by its ports, and the ports."""

    def __init__(self, conf: Any, *, fault: str | None = None, e_d_tov: float = 2.0,
                 r_a_tov: float = 10.0, max_burst: int = 256 * 1024,
                 scsi: Any = None) -> None:
        self.conf = conf
        self.name = conf.name
        self.log = get_logger(component="array", array=conf.name)
        if scsi is None:
            from fcsoft.scsi.array import ScsiArray

            scsi = ScsiArray(conf, abort_tasks=self.abort_tasks, fault=fault)
        self.scsi = scsi
        self.ports = [
            TargetPort(wwpn, conf.node_wwn, self.scsi, relative_port=i + 1,
                       symbolic_name=f"fcsoft {conf.name} port {i + 1}",
                       symbolic_node_name=f"fcsoft {conf.name} {conf.vendor} {conf.product}",
                       e_d_tov=e_d_tov,
                       r_a_tov=r_a_tov, max_burst=max_burst, name=f"{conf.name}/{i + 1}")
            for i, wwpn in enumerate(conf.ports)]
        for p in self.ports:
            p.abort_everywhere = self.abort_everywhere  # type: ignore[attr-defined]
        self.drivers = [PortDriver(p) for p in self.ports]

    def abort_everywhere(self, pred: Callable[[Any], bool], issuer: Any = None) -> int:
        return sum(p.fcp.abort_matching(pred, issuer=issuer) for p in self.ports)

    def abort_tasks(self, victims: set[Nexus], by: Nexus, luns: Any = None) -> set[Nexus]:
        """PREEMPT AND ABORT from the SCSI layer: the victims' outstanding commands complete
        with TASK ABORTED status, as the control mode page's TAS=1 promises (SAM-5 5.6).
        With TAS=1 no COMMANDS CLEARED BY ANOTHER INITIATOR unit attention follows, so the
        set of nexuses owed one is empty."""
        def pred(x: Any) -> bool:
            return x.session.nexus in victims and (luns is None or x.lun in luns)

        aborted = sum(p.fcp.abort_matching(pred, status=ScsiStatus.TASK_ABORTED)
                      for p in self.ports)
        if aborted:
            self.log.info("tasks aborted", count=aborted, by=str(by),
                          victims=sorted(str(v) for v in victims))
        return set()

    def close(self) -> None:
        self.scsi.close()

    async def run_in_process(self, attach: Callable[[trio.abc.Stream, str], Awaitable[None]],
                             nursery: trio.Nursery) -> None:
        """Connect every port to an in-process fabric: `attach(stream, peer)` runs the
        fabric's end of a socketpair. A port whose link goes down connects again after
        RECONNECT_DELAY, unless it was disabled: then once it is enabled."""
        for driver in self.drivers:
            a, b = trio.socket.socketpair()
            peer = f"{self.name}/{driver.port.relative_port}"
            nursery.start_soon(attach, trio.SocketStream(b), peer)
            nursery.start_soon(self._keep_in_process, driver, attach, trio.SocketStream(a))

    async def _keep_in_process(self, driver: PortDriver,
                               attach: Callable[[trio.abc.Stream, str], Awaitable[None]],
                               first: trio.abc.Stream) -> None:
        peer = f"{self.name}/{driver.port.relative_port}"
        stream: trio.abc.Stream | None = first
        while True:
            if stream is None:
                if driver.disabled:
                    await driver.enabled.wait()
                else:
                    await trio.sleep(RECONNECT_DELAY)
                    if driver.disabled:
                        continue
                a, b = trio.socket.socketpair()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(attach, trio.SocketStream(b), peer)
                    await driver.run(trio.SocketStream(a), "fabric")
            else:
                await driver.run(stream, "fabric")
            stream = None

    def driver(self, wwpn: Any) -> PortDriver | None:
        """The driver of the port with this WWPN, if the array has it."""
        for d in self.drivers:
            if d.port.wwpn == wwpn:
                return d
        return None

    async def run_remote(self, host: str, port: int) -> None:
        """Connect every port to a fabric over TCP, reconnecting when a link drops."""
        async def keep(driver: PortDriver) -> None:
            while True:
                try:
                    stream = await trio.open_tcp_stream(host, port)
                except OSError as exc:
                    self.log.warning("cannot reach fabric", address=f"{host}:{port}",
                                     reason=str(exc), retry_in=RECONNECT_DELAY)
                else:
                    await driver.run(stream, f"{host}:{port}")
                await trio.sleep(RECONNECT_DELAY)

        async with trio.open_nursery() as nursery:
            for d in self.drivers:
                nursery.start_soon(keep, d)
