"""A storage array's target port: an N_Port that logs into the fabric and serves
initiators over FCP (sans-IO). docs/behaviour.md 3.

Theory of operation
-------------------
The trio shell hands the port link events, frames and `now`; the port answers through
`transmit`. The port is three things:

- a fabric client (fabric_client.py): FLOGI, the name-server registrations, SCR; RSCNs from
  the fabric make the port check the sessions they name (GPN_ID) and end those of
  initiators that are gone, as if they had logged out;
- an ELS server for initiators: PLOGI opens a session (the I_T nexus), PRLI establishes
  the FCP image pair, PRLO/LOGO end them, ADISC, RTV, ECHO and RRQ are answered. An ELS
  other than PLOGI from a port without a session gets LS_RJT "N_Port login required";
- the FCP exchange engine (fcp.py): commands, data, responses, task management, ABTS.

Ending a session (LOGO, PLOGI again, link loss, RSCN) aborts its outstanding exchanges
and tells the SCSI layer the nexus is lost (SPC-2 reservations go; registrations stay).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fcsoft import names
from fcsoft.logs import get_logger
from fcsoft.scsi.types import Nexus
from fcsoft.wire import ns
from fcsoft.wire.bls import BaAcc, BaRjt, BaRjtExplanation, BaRjtReason
from fcsoft.wire.ct import CtResponseCode, GsType, NsCommand, ct_request, decode_ct
from fcsoft.wire.els import (
    Adisc,
    Echo,
    ElsCommand,
    FcpServiceParameters,
    Logo,
    LsAcc,
    LsRjt,
    LsRjtExplanation,
    LsRjtReason,
    Prli,
    PrliResponseCode,
    Prlo,
    Rscn,
    RscnAddressFormat,
    RtvAccept,
    ServiceParameterPage,
    ServiceParameters,
)
from fcsoft.wire.encap import Frame, FrameRun, each_frame, encode_frame
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.header import (
    F_CTL_REPLY,
    FcHeader,
    FcType,
    RCtl,
    WellKnownAddress,
    make_header,
)
from fcsoft.wire.wwn import WWN

from .fabric_client import FabricClient, FabricState
from .fcp import FcpEngine

DIRECTORY = WellKnownAddress.DIRECTORY_SERVER
WELL_KNOWN_BASE = 0xFFFFF0
_ACC = LsAcc().encode()
_new = tuple.__new__


@dataclass(slots=True, eq=False)
class Session:
    """A port login (PLOGI) from one initiator N_Port: the I_T nexus, plus its FCP state."""

    s_id: int
    wwpn: WWN
    wwnn: WWN
    nexus: Nexus
    receive_size: int = 2048  # largest FCP_DATA payload we may send this initiator
    image_pair: bool = False  # PRLI done
    write_xfer_rdy_disabled: bool = False
    exchanges: dict[int, Any] = field(default_factory=dict)  # OX_ID -> fcp.Exchange


class TargetPort:
    """One array port. `scsi` is the array's SCSI front (fcsoft.scsi.array.ScsiArray)."""

    def __init__(self, wwpn: WWN, wwnn: WWN, scsi: Any, *, relative_port: int,
                 symbolic_name: str = "fcsoft array port",
                 symbolic_node_name: str | None = None,
                 transmit: Callable[[bytes], bool] | None = None,
                 max_burst: int = 256 * 1024, max_exchanges: int = 2048,
                 e_d_tov: float = 2.0, r_a_tov: float = 10.0, name: str = "") -> None:
        self.wwpn = WWN(wwpn)
        self.wwnn = WWN(wwnn)
        self.scsi = scsi
        self.relative_port = relative_port
        self.transmit: Callable[[bytes], bool] = transmit or (lambda _d: False)
        #: the shell's hook for commands the SCSI layer wants run later (see fcp.py):
        #: defer(run, done, deferral) calls done(run()) in a worker thread and/or after a
        #: delay; None runs every command at once (sans-IO tests)
        self.defer: Callable[[Callable[[], Any], Callable[[Any], None], Any], None] | None = None
        self.log = get_logger(component="array", port=name or str(self.wwpn), wwpn=self.wwpn)
        self.counters: Counter[str] = Counter()
        self.sessions: dict[int, Session] = {}  # by initiator N_Port_ID
        # OX_IDs start where the WWPN says, so that ports logging in at the same moment (all
        # from S_ID 0) use different exchange IDs (see fcsoft.initiator.exchange)
        start = int(self.wwpn) % 0xFFFE + 1
        self._xids = itertools.chain(range(start, 0xFFFF), itertools.cycle(range(1, 0xFFFF)))
        self._requests: dict[int, Callable[[Frame, float], None]] = {}  # our OX_ID -> handler
        self.fabric = FabricClient(self.wwpn, self.wwnn, symbolic_name=symbolic_name,
                                   symbolic_node_name=symbolic_node_name,
                                   fc4_features=ns.FcpFeatures.TARGET,
                                   send=self._send_raw, new_ox_id=self.new_xid,
                                   on_ready=self._ready, log=self.log, e_d_tov=e_d_tov,
                                   r_a_tov=r_a_tov)
        self.fcp = FcpEngine(self, max_burst=max_burst, max_exchanges=max_exchanges)

    def __repr__(self) -> str:
        return f"<TargetPort {self.wwpn} {self.fcid:06x} {self.fabric.state.value}>"

    @property
    def fcid(self) -> int:
        return self.fabric.fcid

    @property
    def ready(self) -> bool:
        return self.fabric.state is FabricState.READY

    def _send_raw(self, data: bytes) -> bool:
        return self.transmit(data)

    def new_xid(self) -> int:
        return next(self._xids)

    def send(self, header: FcHeader, payload: bytes | memoryview, sof: int = 0x2E,
             eof: int = 0x42) -> bool:
        return self.transmit(encode_frame(header, payload, sof, eof))

    def reply(self, h: FcHeader, payload: bytes, r_ctl: int = RCtl.ELS_REPLY) -> None:
        self.send(h.reply(r_ctl, rx_id=self.new_xid()), payload)

    def ls_rjt(self, h: FcHeader, reason: int, explanation: int, command: int,
               detail: str | None = None) -> None:
        """Answer the ELS request `command` with LS_RJT, logged with its codes: at info
        when `detail` says what was malformed, at debug otherwise."""
        self.counters["ls_rjt_sent"] += 1
        rjt = LsRjt(LsRjtReason(reason), LsRjtExplanation(explanation))
        log = self.log.info if detail else self.log.debug
        log("ELS rejected", s_id=h.s_id, command=names.els_command(command),
            reason=rjt.reason, explanation=rjt.explanation, **({"detail": detail} if detail
                                                               else {}))
        self.reply(h, rjt.encode())

    # ------------------------------------------------------------------ link events
    def link_up(self, now: float) -> None:
        self.fabric.start(now)

    def link_down(self, now: float) -> None:
        self.fabric.stop()
        self._requests.clear()
        for s in list(self.sessions.values()):
            self.end_session(s, "link down")

    def next_timer(self) -> float | None:
        return self.fabric.next_timer()

    def handle_timer(self, now: float) -> None:
        self.fabric.handle_timer(now)

    def _ready(self) -> None:
        self.log.info("target port online", fcid=self.fcid, wwpn=self.wwpn)

    # ------------------------------------------------------------------ frames
    def frame_received(self, frame: Frame, now: float) -> None:
        h = frame.header
        if self.fcid and h.d_id != self.fcid:
            self.counters["discard_not_for_us"] += 1
            return
        t = h.type
        if t == FcType.FCP:
            self.fcp.frame(frame)
        elif t == FcType.ELS:
            if h.r_ctl == RCtl.ELS_REQUEST:
                self._els_request(frame, now)
            elif h.r_ctl == RCtl.ELS_REPLY:
                self._reply_to_us(frame, now)
        elif t == FcType.CT and h.r_ctl == RCtl.SOLICITED_CONTROL:
            self._reply_to_us(frame, now)
        elif t == FcType.BLS and h.r_ctl == RCtl.ABTS:
            self._abts(frame)
        else:
            self.counters["discard_unexpected"] += 1

    def fcp_frames(self, frames: list[Frame | FrameRun]) -> None:
        """FCP frames (and runs of one sequence's frames) that arrived together from one
        S_ID to one D_ID (the data path's batch: the fabric routes a run only when every
        frame has the first one's S_ID and D_ID, so the first frame's D_ID speaks for
        all)."""
        fcid = self.fcid
        if fcid and frames[0].header.d_id != fcid:
            for frame in each_frame(frames):
                self.frame_received(frame, 0.0)
            return
        self.fcp.frames(frames)

    def _reply_to_us(self, frame: Frame, now: float) -> None:
        ox = frame.header.ox_id
        if self.fabric.owns(ox):
            self.fabric.reply(frame, now)
            return
        handler = self._requests.pop(ox, None)
        if handler is not None:
            handler(frame, now)

    def request(self, d_id: int, r_ctl: int, type_: int, payload: bytes,
                on_reply: Callable[[Frame, float], None] | None = None) -> None:
        """Originate a request (ELS or CT) from this port."""
        ox = self.new_xid()
        if on_reply is not None:
            self._requests[ox] = on_reply
        self.send(make_header(r_ctl, d_id, self.fcid, type_, ox_id=ox), payload)

    # ------------------------------------------------------------------ ELS from initiators
    def _els_request(self, frame: Frame, now: float) -> None:
        h = frame.header
        payload = frame.payload
        if not payload:
            return
        cmd = payload[0]
        if h.s_id >= WELL_KNOWN_BASE:
            self._fabric_els(frame, cmd, now)
            return
        if cmd == ElsCommand.PLOGI:
            self._plogi(frame)
            return
        session = self.sessions.get(h.s_id)
        if session is None:
            # FC-LS-3: ELS other than PLOGI from an N_Port that is not logged in
            self.ls_rjt(h, LsRjtReason.UNABLE_TO_PERFORM, LsRjtExplanation.N_PORT_LOGIN_REQUIRED,
                        cmd)
            return
        handler = _ELS_HANDLERS.get(cmd)
        if handler is None:
            self.ls_rjt(h, LsRjtReason.COMMAND_NOT_SUPPORTED,
                        LsRjtExplanation.REQUEST_NOT_SUPPORTED, cmd)
            return
        try:
            handler(self, session, frame)
        except DecodeError as exc:
            self.ls_rjt(h, LsRjtReason.PROTOCOL_ERROR, LsRjtExplanation.INVALID_PAYLOAD_LENGTH,
                        cmd, str(exc))

    def _plogi(self, frame: Frame) -> None:
        h = frame.header
        try:
            sp = ServiceParameters.decode(frame.payload)
        except DecodeError as exc:
            self.ls_rjt(h, LsRjtReason.PROTOCOL_ERROR, LsRjtExplanation.INVALID_PAYLOAD_LENGTH,
                        ElsCommand.PLOGI, str(exc))
            return
        c3 = sp.class3
        if not c3.valid:
            self.ls_rjt(h, LsRjtReason.UNABLE_TO_PERFORM,
                        LsRjtExplanation.SERVICE_PARAMETER_ERROR_OPTIONS, ElsCommand.PLOGI,
                        "class 3 service parameters not valid")
            return
        size = min(x for x in (sp.receive_data_field_size, c3.receive_data_field_size, 2048)
                   if x)
        if size < 256:
            self.ls_rjt(h, LsRjtReason.UNABLE_TO_PERFORM,
                        LsRjtExplanation.SERVICE_PARAMETER_ERROR_RECEIVE_DATA_FIELD_SIZE,
                        ElsCommand.PLOGI, f"receive data field size {size} below 256")
            return
        old = self.sessions.get(h.s_id)
        if old is not None:
            # a PLOGI from a logged-in port is an implicit logout first (FC-LS-3 PLOGI)
            self.end_session(old, "PLOGI again")
        stale = self.session_by_wwpn(sp.port_name)
        if stale is not None:
            # the same port name back under another N_Port_ID (it logged in to the fabric
            # again before the RSCN about its old address reached us): the old login is
            # gone, and its nexus loss happens now, before the new login's nexus exists
            self.end_session(stale, "port name logged in again under a new N_Port_ID")
        nexus = Nexus(sp.port_name, self.wwpn, self.relative_port)
        session = Session(h.s_id, sp.port_name, sp.node_name, nexus, receive_size=size & ~3)
        self.sessions[h.s_id] = session
        acc = ServiceParameters.plogi(self.wwpn, self.wwnn, command=ElsCommand.LS_ACC,
                                      receive_data_field_size=2048)
        self.reply(h, acc.encode())
        self.counters["plogi"] += 1
        self.log.debug("port login", initiator=sp.port_name, s_id=h.s_id, receive_size=size)

    def _prli(self, session: Session, frame: Frame) -> None:
        h = frame.header
        prli = Prli.decode(frame.payload)
        pages = []
        for page in prli.pages:
            if page.type != FcType.FCP:
                pages.append(ServiceParameterPage(
                    type=page.type, type_extension=page.type_extension,
                    response_code=PrliResponseCode.CONFIGURATION_PRECLUDES))
                continue
            params = FcpServiceParameters(page.service_parameters)
            if not params & FcpServiceParameters.INITIATOR_FUNCTION:
                code = PrliResponseCode.CONFIGURATION_PRECLUDES
            else:
                code = PrliResponseCode.REQUEST_EXECUTED
                session.image_pair = page.establish_image_pair or session.image_pair or True
                session.write_xfer_rdy_disabled = bool(
                    params & FcpServiceParameters.WRITE_XFER_RDY_DISABLED)
            ours = FcpServiceParameters.TARGET_FUNCTION | \
                FcpServiceParameters.READ_XFER_RDY_DISABLED
            if session.write_xfer_rdy_disabled:
                ours |= FcpServiceParameters.WRITE_XFER_RDY_DISABLED
            pages.append(ServiceParameterPage(
                type=FcType.FCP, establish_image_pair=page.establish_image_pair,
                response_code=code, service_parameters=ours))
        self.reply(h, Prli(tuple(pages), command=ElsCommand.LS_ACC).encode())
        self.log.debug("process login", initiator=session.wwpn, s_id=h.s_id,
                      image_pair=session.image_pair,
                      write_xfer_rdy_disabled=session.write_xfer_rdy_disabled)

    def _prlo(self, session: Session, frame: Frame) -> None:
        prlo = Prlo.decode(frame.payload)
        pages = tuple(ServiceParameterPage(type=p.type, type_extension=p.type_extension,
                                           response_code=PrliResponseCode.REQUEST_EXECUTED)
                      for p in prlo.pages)
        self.reply(frame.header, Prlo(pages, command=ElsCommand.LS_ACC).encode())
        if any(p.type == FcType.FCP for p in prlo.pages):
            self.fcp.abort_session(session)
            session.image_pair = False
            self.scsi.nexus_lost(session.nexus)
            self.log.info("process logout", initiator=session.wwpn, s_id=session.s_id)

    def _logo(self, session: Session, frame: Frame) -> None:
        Logo.decode(frame.payload)
        self.reply(frame.header, _ACC)
        self.end_session(session, "LOGO from the initiator")

    def _adisc(self, session: Session, frame: Frame) -> None:
        Adisc.decode(frame.payload)
        self.reply(frame.header, Adisc(self.fcid, self.wwpn, self.wwnn, self.fcid,
                                       command=ElsCommand.LS_ACC).encode())

    def _rtv(self, session: Session, frame: Frame) -> None:
        self.reply(frame.header, RtvAccept(int(self.fabric.r_a_tov * 1000),
                                           int(self.fabric.e_d_tov * 1000)).encode())

    def _echo(self, session: Session, frame: Frame) -> None:
        self.reply(frame.header, Echo.decode(frame.payload).accept().encode())

    def _rrq(self, session: Session, frame: Frame) -> None:
        # exchanges are forgotten as soon as they end, so there is nothing to recover
        self.reply(frame.header, _ACC)

    # ------------------------------------------------------------------ from the fabric
    def _fabric_els(self, frame: Frame, cmd: int, now: float) -> None:
        h = frame.header
        if cmd == ElsCommand.RSCN:
            self.reply(h, _ACC)
            try:
                rscn = Rscn.decode(frame.payload)
            except DecodeError as exc:
                self.log.info("bad RSCN ignored", reason=str(exc))
                return
            self._check_sessions(rscn)
        elif cmd == ElsCommand.LOGO:
            self.reply(h, _ACC)
            self.log.warning("logged out by the fabric; logging in again")
            for s in list(self.sessions.values()):
                self.end_session(s, "fabric logout")
            self.fabric.start(now)
        else:
            self.ls_rjt(h, LsRjtReason.COMMAND_NOT_SUPPORTED,
                        LsRjtExplanation.REQUEST_NOT_SUPPORTED, cmd)

    def _check_sessions(self, rscn: Rscn) -> None:
        """For every session an RSCN page covers, ask the name server whether that port is
        still there (GPN_ID); end the session when it is not, or is another port now."""
        masks = {RscnAddressFormat.PORT: 0xFFFFFF, RscnAddressFormat.AREA: 0xFFFF00,
                 RscnAddressFormat.DOMAIN: 0xFF0000, RscnAddressFormat.FABRIC: 0}
        for page in rscn.pages:
            mask = masks.get(page.address_format, 0)
            for s_id, session in list(self.sessions.items()):
                if s_id & mask == page.affected_id & mask:
                    self._verify(session)

    def _verify(self, session: Session) -> None:
        def answered(frame: Frame, now: float) -> None:
            current = self.sessions.get(session.s_id)
            if current is not session:
                return
            try:
                iu = decode_ct(frame.payload)
                gone = iu.preamble.command != CtResponseCode.ACCEPT or \
                    ns.GpnIdAccept.decode(iu.body).port_name != session.wwpn
            except DecodeError:
                gone = True
            if gone:
                self.end_session(session, "initiator gone (RSCN)")

        body = ct_request(GsType.DIRECTORY, 0x02, NsCommand.GPN_ID,
                          ns.GpnIdRequest(session.s_id).encode())
        self.request(DIRECTORY, RCtl.UNSOLICITED_CONTROL, FcType.CT, body, answered)

    # ------------------------------------------------------------------ sessions
    def end_session(self, session: Session, reason: str) -> None:
        """The I_T nexus is gone: abort its exchanges, tell the SCSI layer."""
        if self.sessions.get(session.s_id) is session:
            del self.sessions[session.s_id]
        self.fcp.abort_session(session)
        if self.session_by_wwpn(session.wwpn) is None:
            # only when no other login carries the same I_T nexus (see _plogi)
            self.scsi.nexus_lost(session.nexus)
        self.counters["sessions_ended"] += 1
        self.log.info("port logout", initiator=session.wwpn, s_id=session.s_id, reason=reason)

    def session_by_wwpn(self, wwpn: WWN) -> Session | None:
        for s in self.sessions.values():
            if s.wwpn == wwpn:
                return s
        return None

    # ------------------------------------------------------------------ BLS
    def _abts(self, frame: Frame) -> None:
        h = frame.header
        session = self.sessions.get(h.s_id)
        if session is not None and self.fcp.abort_exchange(session, h.ox_id):
            payload = BaAcc.for_exchange(h.ox_id, h.rx_id).encode()
            self.send(h.reply(RCtl.BA_ACC, f_ctl=F_CTL_REPLY), payload)
            self.counters["abts_accepted"] += 1
            self.log.info("exchange aborted by ABTS", s_id=h.s_id, ox_id=h.ox_id)
        else:
            rjt = BaRjt(BaRjtReason.LOGICAL_ERROR, BaRjtExplanation.INVALID_OX_ID_RX_ID)
            self.send(h.reply(RCtl.BA_RJT, f_ctl=F_CTL_REPLY), rjt.encode())
            self.counters["abts_rejected"] += 1
            self.log.info("ABTS rejected", s_id=h.s_id, ox_id=h.ox_id, reason=rjt.reason,
                          explanation=rjt.explanation)

    def send_logo(self, d_id: int) -> None:
        """An unsolicited LOGO (to a port that sent FCP without logging in)."""
        self.request(d_id, RCtl.ELS_REQUEST, FcType.ELS, Logo(self.fcid, self.wwpn).encode(),
                     lambda _f, _n: None)

    def send_prlo(self, d_id: int) -> None:
        """An unsolicited PRLO (to a port that sent FCP without PRLI)."""
        page = ServiceParameterPage(type=FcType.FCP)
        self.request(d_id, RCtl.ELS_REQUEST, FcType.ELS, Prlo((page,)).encode(),
                     lambda _f, _n: None)


_ELS_HANDLERS: dict[int, Callable[[TargetPort, Session, Frame], None]] = {
    ElsCommand.PRLI: TargetPort._prli,
    ElsCommand.PRLO: TargetPort._prlo,
    ElsCommand.LOGO: TargetPort._logo,
    ElsCommand.ADISC: TargetPort._adisc,
    ElsCommand.RTV: TargetPort._rtv,
    ElsCommand.ECHO: TargetPort._echo,
    ElsCommand.RRQ: TargetPort._rrq,
}

