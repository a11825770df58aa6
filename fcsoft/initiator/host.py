"""A host N_Port on an fcsoft (or any FC-over-TCP) fabric: the initiator library's base.

    async with open_host(("127.0.0.1", 3225), "10:00:00:00:c9:00:00:01") as host:
        targets = await host.discover()           # GPN_FT + GFF_ID, zoning applied
        vport = await host.add_vport("c0:50:76:00:00:00:00:01")   # FDISC (NPIV)
        async for event in host.rscn_events():    # RSCNs the fabric sends
            ...

`open_host` connects one TCP link, logs in with FLOGI and, unless told not to, registers the
way Linux libfc does: PLOGI FFFFFC, RNN_ID, RSNN_NN, RSPN_ID, RFT_ID, RFF_ID, then SCR. Each
NPIV vport is an `NPort` of its own on the same link, logged in with FDISC.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from fcsoft import names
from fcsoft.logs import get_logger
from fcsoft.server.link import Link
from fcsoft.wire import ns
from fcsoft.wire.ct import (
    CtPreamble,
    CtRejectReason,
    CtResponseCode,
    GsType,
    NsCommand,
    NsRejectExplanation,
    ct_request,
    decode_ct,
)
from fcsoft.wire.els import (
    ElsCommand,
    Logo,
    LsAcc,
    LsRjt,
    LsRjtExplanation,
    LsRjtReason,
    Rscn,
    RscnPage,
    Scr,
    ScrFunction,
)
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.encap import Frame, FrameRun
from fcsoft.wire.header import FcType, RCtl, WellKnownAddress, make_header
from fcsoft.wire.wwn import WWN

from .els_server import ElsServer, LoginPolicy, LoginTable
from .exchange import ExchangeManager, ExchangeTimeout

F_PORT = WellKnownAddress.FABRIC_F_PORT
DIRECTORY = WellKnownAddress.DIRECTORY_SERVER
CONTROLLER = WellKnownAddress.FABRIC_CONTROLLER
FCP_TYPE = FcType.FCP

__all__ = ["open_host", "NPort", "HostLink", "LoginRejected", "CtRejected", "ElsRejected",
           "TargetInfo", "ExchangeTimeout"]


class ElsRejected(Exception):
    """The other side answered LS_RJT."""

    def __init__(self, command: str, rjt: LsRjt) -> None:
        super().__init__(f"{command} rejected: {names.rejected(rjt.reason, rjt.explanation)}")
        self.rjt = rjt


class LoginRejected(ElsRejected):
    """FLOGI or FDISC answered with LS_RJT."""


class CtRejected(Exception):
    """A CT request answered with a CT reject."""

    def __init__(self, command: int, preamble: CtPreamble) -> None:
        super().__init__(
            f"{names.ct_command(command)} rejected: "
            f"{names.code(preamble.reason, CtRejectReason)}, "
            f"{names.code(preamble.explanation, NsRejectExplanation)}")
        self.command = command
        self.reason = preamble.reason
        self.explanation = preamble.explanation


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """A port found by discovery."""

    port_id: int
    wwpn: WWN
    features: int = 0  # FC-4 features for FCP (ns.FcpFeatures)

    def __repr__(self) -> str:
        return (f"TargetInfo(port_id=0x{self.port_id:06x}, wwpn={self.wwpn!r}, "
                f"features={self.features:#x})")

    @property
    def is_target(self) -> bool:
        return bool(self.features & ns.FcpFeatures.TARGET)


class HostLink:
    """One TCP link to the fabric, shared by the base N_Port and its NPIV vports."""

    def __init__(self, stream: trio.abc.Stream, peer: str, *, r_a_tov: float = 10.0,
                 frame_size: int = 2048, login_policy: LoginPolicy | None = None) -> None:
        self.link = Link(stream, self, peer=peer, r_a_tov=r_a_tov, name=f"host-{peer}")
        #: the largest FC payload this link takes (FLOGI/PLOGI receive data field size)
        #: and sends: an HBA's maximum frame size (1452 on FCoE over a 1500-byte MTU)
        self.frame_size = frame_size
        self.exchanges = ExchangeManager(self.link.send, self._unsolicited)
        self.ports: dict[int, NPort] = {}
        #: outstanding FCP commands by OX_ID (fcsoft.initiator.scsi._Command), watched for
        #: their deadlines by one sweeper task per link
        self.commands: dict[int, Any] = {}
        self.closed_reason: str | None = None
        #: timers of the port logins (PLOGI/PRLI back-off, RTV)
        self.login_policy = login_policy or LoginPolicy()
        #: where background work runs (logging in again after an implicit logout); None:
        #: that work waits for the nexus's next command
        self.nursery: trio.Nursery | None = None
        self.log = get_logger(component="host", peer=peer)
        # the link's own lines (link down, framing errors) are the host's: the `link` key
        # names the fabric's links, which a host does not know
        self.link.log = self.log

    async def sweep(self, interval: float = 0.25) -> None:
        """The link's one deadline timer: every `interval` seconds, commands whose time
        is up are told so (they send ABTS, or are forgotten if their caller gave up)."""
        while True:
            await trio.sleep(interval)
            if not self.commands:
                continue
            now = trio.current_time()
            for cmd in [c for c in self.commands.values() if c.deadline <= now]:
                cmd.expired()

    # LinkHandler
    def frame_received(self, link: Link, frame: Frame) -> None:
        self.exchanges.frame_received(frame)

    #: a read's data frames that come in one read arrive as one FrameRun
    takes_runs = True

    def frames_received(self, link: Link, frames: list[Frame | FrameRun]) -> None:
        """The frames of one read together (a read's data frames go to their command in
        one call)."""
        self.exchanges.frames_received(frames)

    def link_closed(self, link: Link, reason: str) -> None:
        self.closed_reason = reason
        self.exchanges.fail_all()
        for p in list(self.ports.values()):
            p._link_lost()

    def _unsolicited(self, frame: Frame) -> None:
        port = self.ports.get(frame.header.d_id)
        if port is not None:
            port._unsolicited(frame)


class NPort:
    """One logged-in N_Port_ID (the FLOGI port or an NPIV vport) and what it can ask."""

    def __init__(self, hl: HostLink, wwpn: WWN, wwnn: WWN, *, timeout: float = 10.0) -> None:
        self.hl = hl
        self.wwpn = wwpn
        self.wwnn = wwnn
        self.fcid = 0
        self.timeout = timeout
        self.fabric_parameters: ServiceParameters | None = None
        self.logged_in = False
        self._rscn_send, self._rscn_recv = trio.open_memory_channel[tuple[RscnPage, ...]](1000)
        self.rscn_count = 0
        # this port's I_T nexuses (ITNexus), told when the fabric or a target says their
        # login may have gone, so that their next command logs in again first
        self.nexuses: weakref.WeakSet[Any] = weakref.WeakSet()
        self.log = hl.log.bind(wwpn=wwpn)
        #: our port logins with other N_Ports, and the server for their ELS requests
        self.logins = LoginTable()
        self.els_server = ElsServer(self)

    @property
    def login_policy(self) -> LoginPolicy:
        return self.hl.login_policy

    def __repr__(self) -> str:
        return f"<NPort {self.wwpn} {self.fcid:06x}>"

    # -- plumbing -------------------------------------------------------------------
    def _link_lost(self) -> None:
        self.logged_in = False
        self.logins.clear()
        self._rscn_send.close()

    async def els(self, d_id: int, payload: bytes, *, s_id: int | None = None,
                  timeout: float | None = None) -> bytes:
        """Send an ELS request and return the reply payload (LS_ACC or LS_RJT bytes)."""
        ex = self.hl.exchanges
        h = make_header(RCtl.ELS_REQUEST, d_id, self.fcid if s_id is None else s_id,
                        FcType.ELS, ox_id=ex.new_ox_id())
        p = await ex.request(h, payload, timeout or self.timeout)
        if not p.frames:
            raise ConnectionError(f"link lost: {self.hl.closed_reason}")
        return p.payload

    async def els_checked(self, name: str, d_id: int, payload: bytes) -> bytes:
        """Like `els`, raising ElsRejected on LS_RJT."""
        reply = await self.els(d_id, payload)
        if reply[:1] == bytes([ElsCommand.LS_RJT]):
            raise ElsRejected(name, LsRjt.decode(reply))
        return reply

    async def ct(self, command: int, body: bytes = b"", *, d_id: int = DIRECTORY,
                 gs_type: int = GsType.DIRECTORY, gs_subtype: int = 0x02,
                 max_size: int = 0) -> bytes:
        """Send a CT request; return the accept's body, or raise CtRejected."""
        ex = self.hl.exchanges
        h = make_header(RCtl.UNSOLICITED_CONTROL, d_id, self.fcid, FcType.CT,
                        ox_id=ex.new_ox_id())
        p = await ex.request(h, ct_request(gs_type, gs_subtype, command, body,
                                           max_size=max_size), self.timeout)
        if not p.frames:
            raise ConnectionError(f"link lost: {self.hl.closed_reason}")
        iu = decode_ct(p.payload)
        if iu.preamble.command != CtResponseCode.ACCEPT:
            raise CtRejected(command, iu.preamble)
        return bytes(iu.body)

    def _reply(self, frame: Frame, payload: bytes) -> None:
        h = frame.header
        self.hl.exchanges.send(h.reply(RCtl.ELS_REPLY, rx_id=self.hl.exchanges.new_ox_id()),
                               payload)

    def _unsolicited(self, frame: Frame) -> None:
        self.els_server.received(frame)

    def _fabric_els(self, frame: Frame, cmd: int) -> None:
        """An ELS request from a well-known address: RSCN, or the fabric's LOGO."""
        h = frame.header
        if cmd == ElsCommand.RSCN:
            self._reply(frame, LsAcc().encode())
            try:
                rscn = Rscn.decode(frame.payload)
            except Exception:  # noqa: BLE001 - a bad RSCN is still acknowledged
                return
            self.rscn_count += 1
            for nexus in self.nexuses:
                nexus.stale = True  # the target may have moved: check before the next command
            try:
                self._rscn_send.send_nowait(rscn.pages)
            except (trio.WouldBlock, trio.ClosedResourceError):
                pass
        elif cmd == ElsCommand.LOGO and h.s_id == F_PORT:
            self._reply(frame, LsAcc().encode())
            self.logged_in = False
            self.log.info("logged out by the fabric")
            for entry in self.logins:
                self._session_lost(entry.fcid, "LOGO")
            self.logins.clear()
        else:
            self._reply(frame, LsRjt(LsRjtReason.COMMAND_NOT_SUPPORTED,
                                     LsRjtExplanation.REQUEST_NOT_SUPPORTED).encode())

    def _session_lost(self, s_id: int, why: str, *, relogin: bool = False) -> None:
        """The port at `s_id` ended our login (LOGO, or a PLOGI: an implicit logout) or our
        image pair (PRLO). The nexuses to it log in again: with `relogin` at once in the
        background (when the link runs a nursery), else before their next command."""
        for nexus in self.nexuses:
            if nexus.target_fcid == s_id and nexus.logged_in:
                if why != "PRLO":
                    nexus.logged_in = False
                nexus.lost = True
                self.log.info("target ended the session", target=nexus.target_wwpn,
                              s_id=s_id, reason=f"{why} from the target")
                if relogin and self.hl.nursery is not None:
                    from .login import relogin as task

                    self.hl.nursery.start_soon(task, nexus)

    # -- fabric login ---------------------------------------------------------------
    async def logout(self) -> None:
        """LOGO to the fabric: gives up this N_Port_ID."""
        await self.els_checked("LOGO", F_PORT, Logo(self.fcid, self.wwpn).encode())
        self.logged_in = False
        self.hl.ports.pop(self.fcid, None)

    async def register(self, symbolic_name: str = "fcsoft initiator", *,
                       fc4_features: int = ns.FcpFeatures.INITIATOR, scr: bool = True) -> None:
        """Name-server registrations in Linux libfc's order, then SCR."""
        await self.els_checked("PLOGI", DIRECTORY,
                               ServiceParameters.plogi(
                                   self.wwpn, self.wwnn,
                                   receive_data_field_size=self.hl.frame_size).encode())
        name = symbolic_name.encode()[:255]
        await self.ct(NsCommand.RNN_ID, ns.RnnIdRequest(self.fcid, self.wwnn).encode())
        await self.ct(NsCommand.RSNN_NN, ns.RsnnNnRequest(self.wwnn, name).encode())
        await self.ct(NsCommand.RSPN_ID, ns.RspnIdRequest(self.fcid, name).encode())
        await self.ct(NsCommand.RFT_ID,
                      ns.RftIdRequest(self.fcid, ns.Fc4Types({FCP_TYPE})).encode())
        await self.ct(NsCommand.RFF_ID,
                      ns.RffIdRequest(self.fcid, FCP_TYPE, fc4_features).encode())
        if scr:
            await self.scr()

    async def scr(self, function: int = ScrFunction.FULL) -> None:
        await self.els_checked("SCR", CONTROLLER, Scr(ScrFunction(function)).encode())

    # -- queries --------------------------------------------------------------------
    async def gpn_ft(self, fc4_type: int = FCP_TYPE) -> list[ns.GpnFtEntry]:
        """Ports with `fc4_type` visible to us; [] when the fabric says there are none."""
        try:
            body = await self.ct(NsCommand.GPN_FT, ns.GpnFtRequest(fc4_type=fc4_type).encode())
        except CtRejected as exc:
            if exc.explanation == 0x07:  # FC-4 types not registered: nothing visible
                return []
            raise
        return list(ns.GpnFtAccept.decode(body).entries)

    async def gid_ft(self, fc4_type: int = FCP_TYPE) -> list[int]:
        try:
            body = await self.ct(NsCommand.GID_FT, ns.GidFtRequest(fc4_type=fc4_type).encode())
        except CtRejected as exc:
            if exc.explanation == 0x07:
                return []
            raise
        return list(ns.GidFtAccept.decode(body).port_ids)

    async def gff_id(self, port_id: int) -> ns.Fc4Features:
        body = await self.ct(NsCommand.GFF_ID, ns.GffIdRequest(port_id).encode())
        return ns.GffIdAccept.decode(body).features

    async def discover(self, *, targets_only: bool = True) -> list[TargetInfo]:
        """GPN_FT for FCP, then GFF_ID for each port (as libfc does); by default only the
        ports that registered the FCP target feature, ourselves excluded."""
        found = []
        for entry in await self.gpn_ft():
            if entry.port_id in self.hl.ports:
                continue
            try:
                features = (await self.gff_id(entry.port_id)).features_for(FCP_TYPE)
            except CtRejected:
                features = 0
            info = TargetInfo(entry.port_id, WWN(entry.port_name), features)
            if info.is_target or not targets_only:
                found.append(info)
        return found

    def connect(self, target_wwpn: WWN | str, *, timeout: float = 30.0) -> Any:
        """`async with port.connect(wwpn) as it:` PLOGI + PRLI to that target port (one
        I_T nexus, an `ITNexus`), LOGO at the end of the block."""
        from .scsi import connect

        return connect(self, target_wwpn, timeout=timeout)

    async def rscn_events(self) -> AsyncIterator[tuple[RscnPage, ...]]:
        """RSCNs received by this port, each as its tuple of pages."""
        async for pages in self._rscn_recv:
            yield pages

    async def watch_targets(self) -> AsyncIterator[list[TargetInfo]]:
        """Follow the fabric: yield the visible targets now, then again after every RSCN
        that arrives (re-discovery, as libfc does), until the link goes down.

            async for targets in host.watch_targets():
                ...
        """
        yield await self.discover()
        async for _pages in self._rscn_recv:
            # an RSCN often comes in a burst: take the ones already queued before asking
            while True:
                try:
                    self._rscn_recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            yield await self.discover()

    async def next_rscn(self, timeout: float = 10.0) -> tuple[RscnPage, ...]:
        with trio.fail_after(timeout):
            return await self._rscn_recv.receive()


class Host(NPort):
    """The FLOGI N_Port of a link: adds NPIV vports."""

    def __init__(self, hl: HostLink, wwpn: WWN, wwnn: WWN, *, timeout: float = 10.0) -> None:
        super().__init__(hl, wwpn, wwnn, timeout=timeout)
        self.vports: list[NPort] = []

    async def add_vport(self, wwpn: WWN | str, wwnn: WWN | str | None = None, *,
                        register: bool = True, scr: bool = True,
                        symbolic_name: str = "fcsoft NPIV vport") -> NPort:
        """FDISC a further N_Port_ID on this link; registers it like libfc unless told not
        to."""
        vp = NPort(self.hl, WWN(wwpn), WWN(wwnn) if wwnn is not None else self.wwnn,
                   timeout=self.timeout)
        await _login(vp, fdisc=True)
        self.vports.append(vp)
        if register:
            await vp.register(symbolic_name, scr=scr)
        return vp


async def _login(port: NPort, fdisc: bool) -> None:
    ex = port.hl.exchanges
    sp = (ServiceParameters.fdisc if fdisc else ServiceParameters.flogi)(
        port.wwpn, port.wwnn, receive_data_field_size=port.hl.frame_size)
    h = make_header(RCtl.ELS_REQUEST, F_PORT, 0, FcType.ELS, ox_id=ex.new_ox_id())
    p = await ex.request(h, sp.encode(), port.timeout)
    if not p.frames:
        raise ConnectionError(f"link lost: {port.hl.closed_reason}")
    reply = p.payload
    name = "FDISC" if fdisc else "FLOGI"
    if reply[:1] == bytes([ElsCommand.LS_RJT]):
        raise LoginRejected(name, LsRjt.decode(reply))
    port.fabric_parameters = ServiceParameters.decode(reply)
    port.fcid = p.header.d_id  # the LS_ACC's D_ID is the assigned N_Port_ID
    port.logged_in = True
    port.hl.ports[port.fcid] = port
    port.log = port.log.bind(fcid=port.fcid)
    port.log.info("fabric login", kind=name)


@asynccontextmanager
async def open_host(address: tuple[str, int], wwpn: WWN | str, wwnn: WWN | str | None = None,
                    *, register: bool = True, scr: bool = True,
                    symbolic_name: str = "fcsoft initiator", timeout: float = 10.0,
                    stream: trio.abc.Stream | None = None,
                    frame_size: int = 2048,
                    login_policy: LoginPolicy | None = None) -> AsyncIterator[Host]:
    """Connect to the fabric at `address` (or use `stream`), FLOGI as `wwpn`, register
    (unless told not to), and yield the `Host`. `frame_size` caps the FC payload of every
    frame this host takes or sends (256..2112); `login_policy` sets the timers of port
    logins (PLOGI/PRLI back-off; fcsoft.initiator.els_server.LoginPolicy). Leaving the block
    closes the link (the fabric logs us out)."""
    if not 256 <= frame_size <= 2112:
        raise ValueError(f"frame_size {frame_size} outside 256..2112")
    wwpn = WWN(wwpn)
    wwnn = WWN(wwnn) if wwnn is not None else WWN((0x2 << 60) | (int(wwpn) & ((1 << 60) - 1)))
    if stream is None:
        stream = await trio.open_tcp_stream(*address)
    hl = HostLink(stream, f"{address[0]}:{address[1]}", frame_size=frame_size & ~3,
                  login_policy=login_policy)
    async with trio.open_nursery() as nursery:
        hl.nursery = nursery
        nursery.start_soon(hl.link.run)
        nursery.start_soon(hl.sweep)
        host = Host(hl, wwpn, wwnn, timeout=timeout)
        try:
            await _login(host, fdisc=False)
            if register:
                await host.register(symbolic_name, scr=scr)
            yield host
        finally:
            hl.link.close("host closed")
            nursery.cancel_scope.cancel()
