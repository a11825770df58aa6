"""A scripted fabric and remote N_Port for initiator tests, over an in-memory link.

`open_scripted(...)` runs `open_host` over a trio memory stream whose far end is a
`ScriptedFabric`: it answers FLOGI/FDISC (assigning N_Port_IDs from 010100 up) and GID_PN
(the scripted peer's port ID), and plays the peer N_Port at `PEER_FCID`. Every frame the
host sends to the peer that is not a reply lands in `fabric.inbox` for the test to answer
(`reply`, `fcp_good`); the peer's own requests (`request`) wait for the host's reply. No
sockets and no real timers, so tests run under trio's autojump clock.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

from fcsoft.initiator.els_server import LoginPolicy
from fcsoft.initiator.host import Host, open_host
from fcsoft.wire import ns
from fcsoft.wire.ct import NsCommand, ct_accept, ct_reject, decode_ct
from fcsoft.wire.els import (
    ElsCommand,
    FcpServiceParameters,
    LsAcc,
    Prli,
    PrliResponseCode,
    ServiceParameterPage,
    ServiceParameters,
)
from fcsoft.wire.encap import Frame, FrameDecoder, encode_frame
from fcsoft.wire.fcp import make_fcp_rsp
from fcsoft.wire.header import F_CTL_REPLY, FCtl, FcType, RCtl, make_header
from fcsoft.wire.wwn import WWN

F_PORT = 0xFFFFFE
DIRECTORY = 0xFFFFFC
HOST_WWPN = WWN("10:00:00:00:c9:00:00:01")
PEER_WWPN = WWN("20:00:52:54:00:fc:10:01")  # higher than HOST_WWPN, as LIO's is
PEER_WWNN = WWN("10:00:52:54:00:fc:10:01")
PEER_FCID = 0x010900
FAST = LoginPolicy(e_d_tov=2.0, r_a_tov=10.0)


class ScriptedFabric:
    """The far end of the host's link: fabric services and the peer N_Port."""

    def __init__(self, stream: trio.abc.Stream, peer_wwpn: WWN = PEER_WWPN) -> None:
        self.stream = stream
        self.peer_wwpn = peer_wwpn
        self.decoder = FrameDecoder()
        self.sent_by_host: list[Frame] = []
        self._fcids = itertools.count(0x010100, 0x100)
        self._ox = itertools.count(0x7000)
        self._pending: dict[int, tuple[trio.Event, list[bytes]]] = {}
        self._inbox_send, self.inbox = trio.open_memory_channel[Frame](100)
        self.host_fcids: list[int] = []
        self._out: list[bytes] = []
        self._wake = trio.Event()

    # -- the link -------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return
            for event in self.decoder.feed(data):
                if isinstance(event, Frame):
                    self._received(event)

    def send(self, header: Any, payload: bytes) -> None:
        """Queue a frame to the host (sent in order by `writer`)."""
        self._out.append(encode_frame(header, payload))
        self._wake.set()

    async def writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            batch, self._out = self._out, []
            for raw in batch:
                await self.stream.send_all(raw)

    def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self.run)
        nursery.start_soon(self.writer)

    # -- what the host sends ------------------------------------------------------------
    def _received(self, frame: Frame) -> None:
        self.sent_by_host.append(frame)
        h = frame.header
        payload = bytes(frame.payload)
        if h.d_id == F_PORT and h.type == FcType.ELS:
            cmd = payload[0]
            if cmd in (ElsCommand.FLOGI, ElsCommand.FDISC):
                fcid = next(self._fcids)
                self.host_fcids.append(fcid)
                acc = ServiceParameters.flogi_accept(WWN("20:00:00:05:1e:00:00:01"),
                                                     WWN("10:00:00:05:1e:00:00:01"))
                self.send(make_header(RCtl.ELS_REPLY, fcid, F_PORT, FcType.ELS, F_CTL_REPLY,
                                      ox_id=h.ox_id, rx_id=next(self._ox)), acc.encode())
            else:
                self._reply_to(frame, LsAcc().encode())
            return
        if h.d_id == DIRECTORY and h.type == FcType.CT:
            iu = decode_ct(payload)
            if iu.preamble.command == NsCommand.GID_PN and \
                    ns.GidPnRequest.decode(iu.body).port_name == self.peer_wwpn:
                body = ct_accept(iu.preamble, ns.GidPnAccept(PEER_FCID).encode())
            else:
                body = ct_reject(iu.preamble, 0x09, 0x01)
            self.send(h.reply(RCtl.SOLICITED_CONTROL, rx_id=next(self._ox)), body)
            return
        if h.d_id != PEER_FCID:
            return
        if h.f_ctl & FCtl.EXCHANGE_CONTEXT:  # the host answers one of the peer's requests
            pending = self._pending.get(h.ox_id)
            if pending is not None:
                pending[1].append(payload)
                pending[0].set()
            return
        self._inbox_send.send_nowait(frame)

    def _reply_to(self, frame: Frame, payload: bytes) -> None:
        self.send(frame.header.reply(RCtl.ELS_REPLY, rx_id=next(self._ox)), payload)

    # -- the peer N_Port ------------------------------------------------------------------
    async def next(self, *commands: int) -> Frame:
        """The next frame the host sent the peer (with one of the ELS `commands`, if given:
        others are dropped)."""
        while True:
            frame = await self.inbox.receive()
            if not commands or (frame.header.type == FcType.ELS
                                and frame.payload[0] in commands):
                return frame

    def reply(self, frame: Frame, payload: bytes) -> None:
        """Answer an ELS request of the host."""
        self._reply_to(frame, payload)

    def accept_plogi(self, frame: Frame) -> None:
        self.reply(frame, ServiceParameters.plogi(self.peer_wwpn, PEER_WWNN,
                                                  command=ElsCommand.LS_ACC).encode())

    def accept_prli(self, frame: Frame) -> None:
        page = ServiceParameterPage(
            type=FcType.FCP, establish_image_pair=True,
            response_code=PrliResponseCode.REQUEST_EXECUTED,
            service_parameters=FcpServiceParameters.TARGET_FUNCTION
            | FcpServiceParameters.READ_XFER_RDY_DISABLED)
        self.reply(frame, Prli((page,), command=ElsCommand.LS_ACC).encode())

    def fcp_good(self, frame: Frame) -> None:
        """Answer an FCP_CMND with FCP_RSP GOOD (no data)."""
        h = frame.header
        f_ctl = int(FCtl.EXCHANGE_CONTEXT | FCtl.LAST_SEQUENCE | FCtl.END_SEQUENCE)
        self.send(make_header(RCtl.COMMAND_STATUS, h.s_id, PEER_FCID, FcType.FCP, f_ctl,
                              ox_id=h.ox_id, rx_id=next(self._ox), seq_id=1),
                  make_fcp_rsp().encode())

    async def request(self, host_fcid: int, payload: bytes) -> bytes:
        """Send an ELS request from the peer to the host; its reply payload."""
        ox = next(self._ox)
        event = trio.Event()
        self._pending[ox] = (event, [])
        self.send(make_header(RCtl.ELS_REQUEST, host_fcid, PEER_FCID, FcType.ELS, ox_id=ox),
                  payload)
        await event.wait()
        return self._pending.pop(ox)[1][0]

    async def login_target(self) -> tuple[Frame, Frame]:
        """Play the target for a host logging in: accept its PLOGI and PRLI."""
        plogi = await self.next(ElsCommand.PLOGI)
        self.accept_plogi(plogi)
        prli = await self.next(ElsCommand.PRLI)
        self.accept_prli(prli)
        return plogi, prli


@asynccontextmanager
async def open_scripted(wwpn: WWN = HOST_WWPN, *, policy: LoginPolicy = FAST,
                        peer_wwpn: WWN = PEER_WWPN,
                        **kw: Any) -> AsyncIterator[tuple[Host, ScriptedFabric]]:
    """A Host logged in over a memory link, and the ScriptedFabric at the other end."""
    host_end, fabric_end = trio.testing.memory_stream_pair()
    fabric = ScriptedFabric(fabric_end, peer_wwpn)
    async with trio.open_nursery() as nursery:
        fabric.start(nursery)
        async with open_host(("scripted", 0), wwpn, stream=host_end, register=False,
                             login_policy=policy, **kw) as host:
            yield host, fabric
        nursery.cancel_scope.cancel()
