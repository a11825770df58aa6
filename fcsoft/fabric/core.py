"""The fabric: F_Port logins, the well-known services, zoning-aware routing (sans-IO).

Theory of operation
-------------------
The trio shell (fcsoft.server.fabric_server) tells the fabric about links coming up and
going down, hands it every frame a link received, and calls `handle_timer` when
`next_timer` says so. The fabric answers by calling `transmit(link_id, frame_bytes)` for
the frames it originates and `forward` for the frames it routes.
It never does I/O and never reads a clock: every entry point takes `now`.

A frame addressed to a well-known address (FFFFF0-FFFFFF) is for the fabric itself:
  FFFFFE  F_Port login server: FLOGI, FDISC (NPIV), LOGO          (FC-LS-3 4.2.7/4.2.8/4.2.9)
  FFFFFC  directory server: PLOGI/LOGO, then name-server CT_IUs   (FC-GS-8 5.2)
  FFFFFD  fabric controller: SCR, N_Port-detected RSCN; RSCNs come from here
  FFFFFA  management server: PLOGI/LOGO accepted, CT answered "not supported"
Any other frame is routed by D_ID to the link that owns the destination N_Port_ID,
unchanged, if the source N_Port_ID was assigned on the link it came in on and the two ports
share a zone; otherwise it is discarded, logged and counted, as a class 3 fabric does.

Login state per link is a two-state table (LOGIN_TABLE below): a link is UNLOGGED until
FLOGI succeeds and LOGGED_IN after; every (state, request) pair has exactly one action.
"""

from __future__ import annotations

import enum
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fcsoft import names
from fcsoft.logs import get_logger
from fcsoft.wire.ct import (
    CtRejectReason,
    CtRevisionError,
    NsRejectExplanation,
    ct_reject,
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
    RscnAddressFormat,
    RscnEventQualifier,
    RscnPage,
    Scr,
    ScrFunction,
)
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.encap import EOF, SOF, Frame, FrameRun, each_frame, encode_frame, frame_count
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.header import (
    F_CTL_REPLY,
    F_CTL_REQUEST,
    FcHeader,
    FCtl,
    FcType,
    RCtl,
    WellKnownAddress,
    decode_header,
    make_header,
)
from fcsoft.wire.wwn import WWN

from .addresses import AddressAllocator, AddressSpaceFull
from .nameserver import NameServer
from .records import PortDatabase, PortRecord
from .rscn import Page, RscnQueue
from .zoning import Zoning

F_PORT = WellKnownAddress.FABRIC_F_PORT
DIRECTORY = WellKnownAddress.DIRECTORY_SERVER
CONTROLLER = WellKnownAddress.FABRIC_CONTROLLER
MANAGEMENT = WellKnownAddress.MANAGEMENT_SERVER
WELL_KNOWN_BASE = 0xFFFFF0
CT_CHUNK = 2048  # bytes of CT payload per frame when an accept spans several frames

_ACC = LsAcc().encode()
_LOGIN_ELS = (ElsCommand.FLOGI, ElsCommand.FDISC)


class LinkState(enum.Enum):
    UNLOGGED = "unlogged"  # connected, no FLOGI yet (or logged out)
    LOGGED_IN = "logged-in"  # FLOGI accepted; FDISC may add N_Port_IDs


class Request(enum.Enum):
    """Inputs of the login table: what arrived at FFFFFE, and link loss."""

    FLOGI = "FLOGI"
    FDISC = "FDISC"
    LOGO = "LOGO"
    OTHER_ELS = "other ELS"
    LINK_DOWN = "link down"


#: (state, input) -> (action method name, state after success). The action may refuse
#: (LS_RJT) and leave the state as it was.
LOGIN_TABLE: dict[tuple[LinkState, Request], tuple[str, LinkState]] = {
    (LinkState.UNLOGGED, Request.FLOGI): ("_flogi", LinkState.LOGGED_IN),
    (LinkState.UNLOGGED, Request.FDISC): ("_reject_login_required", LinkState.UNLOGGED),
    (LinkState.UNLOGGED, Request.LOGO): ("_reject_login_required", LinkState.UNLOGGED),
    (LinkState.UNLOGGED, Request.OTHER_ELS): ("_reject_login_required", LinkState.UNLOGGED),
    (LinkState.UNLOGGED, Request.LINK_DOWN): ("_forget_link", LinkState.UNLOGGED),
    # FC-LS-3 4.2.7: a FLOGI on a logged-in link is an implicit logout of everything the
    # link had, then a fresh login
    (LinkState.LOGGED_IN, Request.FLOGI): ("_flogi", LinkState.LOGGED_IN),
    (LinkState.LOGGED_IN, Request.FDISC): ("_fdisc", LinkState.LOGGED_IN),
    # LOGO of an NPIV port keeps the link logged in; LOGO of the FLOGI port takes the
    # whole link back to UNLOGGED (the action sets that state itself and returns False)
    (LinkState.LOGGED_IN, Request.LOGO): ("_logo", LinkState.LOGGED_IN),
    (LinkState.LOGGED_IN, Request.OTHER_ELS): ("_reject_not_supported", LinkState.LOGGED_IN),
    (LinkState.LOGGED_IN, Request.LINK_DOWN): ("_forget_link", LinkState.UNLOGGED),
}


@dataclass(slots=True)
class LinkRecord:
    """What the fabric knows of one link (one F_Port)."""

    link_id: int
    state: LinkState = LinkState.UNLOGGED
    base_fcid: int | None = None  # the FLOGI N_Port_ID
    fcids: set[int] = field(default_factory=set)  # base + NPIV
    areas: list[int] = field(default_factory=list)
    receive_size: int = 2112  # the N_Port's receive data field size (from FLOGI)
    login_accept: bytes = b""  # the LS_ACC payload for FLOGI/FDISC on this F_Port
    counters: Counter[str] = field(default_factory=Counter)


class Fabric:
    """One fabric (one domain). See the module docstring."""

    def __init__(self, conf: Any, zones: Iterable[Any] = (), *,
                 transmit: Callable[[int, bytes | memoryview], bool] | None = None) -> None:
        self.conf = conf
        self.domain_id: int = conf.domain_id
        self.fabric_name = WWN(conf.wwn)
        self.r_a_tov_ms: int = getattr(conf, "r_a_tov_ms", 10000)
        self.e_d_tov_ms: int = getattr(conf, "e_d_tov_ms", 2000)
        self.max_npiv: int = getattr(conf, "max_npiv_per_link", 255)
        self.duplicate_policy: str = conf.duplicate_wwpn
        self.zoning = Zoning.from_config(zones, conf.default_zone)
        self.addresses = AddressAllocator(self.domain_id)
        self.db = PortDatabase()
        self.ns = NameServer(self.db, lambda: self.zoning)
        self.links: dict[int, LinkRecord] = {}
        self.rscn = RscnQueue(conf.rscn_coalesce_ms / 1000, self.e_d_tov_ms / 1000)
        self._scr: dict[int, int] = {}  # N_Port_ID -> SCR function, for RSCN fan-out
        self.counters: Counter[str] = Counter()
        self.transmit: Callable[[int, bytes | memoryview], bool] = \
            transmit or (lambda _l, _d: False)
        #: routed frames go out here (the shell traces what `transmit` sends, the frames
        #: the fabric originates, but a routed frame was traced as it came in): `forward`
        #: gets a decoded Frame, `forward_raw` the bytes of one or more frames that
        #: share S_ID and D_ID (from a port attached in process)
        self.forward: Callable[[int, Frame], bool] = \
            lambda link_id, frame: self.transmit(link_id, frame.raw)
        self.forward_raw: Callable[[int, bytes | memoryview], bool] = \
            lambda link_id, data: self.transmit(link_id, data)
        #: routed frames (and runs of frames) that share S_ID and D_ID, handed over
        #: together; returns how many frames the destination took
        self.forward_run: Callable[[int, list[Frame | FrameRun]], int] = \
            lambda link_id, frames: sum([frame_count([f]) for f in frames
                                         if self.forward_raw(link_id, f.raw)])
        # (link id, S_ID, D_ID) -> destination link id: the routing verdict of a frame
        # that may pass (S_ID assigned on the link, D_ID logged in, both in one zone),
        # kept until logins, logouts or zoning change anything (see _routes_changed)
        self._verdicts: dict[int, int] = {}
        #: told of every frame the fabric discards: (link id, reason)
        self.on_discard: Callable[[int, str], None] = lambda _l, _r: None
        self.log = get_logger(component="fabric")
        self._xids = itertools.cycle(range(0x0001, 0xFFFF))
        self._discard_logged: Counter[tuple[int, str]] = Counter()
        self._service_accepts: dict[tuple[int, int], bytes] = {}
        #: WWPNs an administrator disabled: their FLOGI and FDISC get LS_RJT until enabled
        self.disabled: set[WWN] = set()

    # ------------------------------------------------------------------ core API
    def link_up(self, link_id: int, now: float) -> None:
        self.links[link_id] = LinkRecord(link_id)

    def link_down(self, link_id: int, now: float) -> None:
        link = self.links.get(link_id)
        if link is None:
            return
        getattr(self, LOGIN_TABLE[(link.state, Request.LINK_DOWN)][0])(link, now)
        del self.links[link_id]

    def next_timer(self) -> float | None:
        return self.rscn.next_deadline()

    def handle_timer(self, now: float) -> None:
        for recipient, pages in self.rscn.due(now):
            self._send_rscn(recipient, pages, now)
        retry, gone = self.rscn.expired(now)
        for o in retry:
            self.counters["rscn_retried"] += 1
            self.log.info("RSCN retried", fcid=o.recipient, ox_id=o.ox_id,
                          reason="no LS_ACC within E_D_TOV")
            self.transmit(o.link_id, o.payload)
        for o in gone:
            self.counters["rscn_unanswered"] += 1
            self.log.warning("RSCN unanswered", fcid=o.recipient, ox_id=o.ox_id)

    def frame_received(self, link_id: int, frame: Frame, now: float) -> None:
        link = self.links.get(link_id)
        if link is None:
            return
        h = frame.header
        if h.d_id >= WELL_KNOWN_BASE:
            self._well_known(link, frame, now)
        else:
            self._route(link, frame)

    def route(self, link_id: int, frame: Frame) -> None:
        """The data path: a frame for an N_Port (D_ID below FFFFF0), no clock needed."""
        link = self.links.get(link_id)
        if link is not None:
            self._route(link, frame)

    # ------------------------------------------------------------------ Python API
    def set_zoning(self, zones: Mapping[str, Iterable[WWN]] | None, now: float,
                   default_zone: str | None = None) -> None:
        """Replace the zone set at run time. Name-server answers, routing and RSCN delivery
        follow at once; ports whose visibility changed get RSCNs."""
        new = Zoning(zones, default_zone or self.zoning.default_zone)
        old = self.zoning
        affected = old.affected_by_change(new)
        self.zoning = new
        self._routes_changed()
        self.counters["zoning_changes"] += 1
        self.log.info("zoning changed", zones=len(new.zones), default_zone=new.default_zone)
        ports = list(self.db)
        changed = ports if affected is None else [p for p in ports if p.wwpn in affected]
        for p in changed:
            recipients = [r for r, fn in self._scr.items() if r != p.fcid and fn in (1, 3)
                          and (q := self.db.get(r)) is not None
                          and old.visible(p.wwpn, q.wwpn) != new.visible(p.wwpn, q.wwpn)]
            self.rscn.note(recipients, (int(RscnEventQualifier.NOT_SPECIFIED),
                                        int(RscnAddressFormat.PORT), p.fcid), now)

    def port(self, wwpn: WWN | str) -> PortRecord | None:
        """The logged-in port with this WWPN, if any."""
        return self.db.by_wwpn(WWN(wwpn))

    def set_port_disabled(self, wwpn: WWN | str, disabled: bool) -> bool:
        """Mark a WWPN disabled (its FLOGI and FDISC are refused with LS_RJT) or enabled
        again; True when that changed something. Taking a logged-in port off the fabric is
        the caller's business (`logout_port`, or the shell closing its link)."""
        w = WWN(wwpn)
        if disabled == (w in self.disabled):
            return False
        if disabled:
            self.disabled.add(w)
        else:
            self.disabled.discard(w)
        self.log.info("port disabled" if disabled else "port enabled", wwpn=w)
        return True

    def logout_port(self, wwpn: WWN | str, now: float, reason: str = "administrative") -> bool:
        """Take one logged-in port off the fabric (as on a switch CLI); it is sent a LOGO."""
        rec = self.db.by_wwpn(WWN(wwpn))
        if rec is None:
            return False
        self._send_logo(rec)
        link = self.links[rec.link_id]
        if rec.fcid == link.base_fcid:
            self._release_link_ports(link, now, reason)
            link.state = LinkState.UNLOGGED
        else:
            self._release(link, rec.fcid, now, reason)
        return True

    # ------------------------------------------------------------------ sending
    def _xid(self) -> int:
        return next(self._xids)

    def _send(self, link: LinkRecord, header: FcHeader, payload: bytes,
              sof: int = SOF.SOFi3, eof: int = EOF.EOFt) -> None:
        self.transmit(link.link_id, encode_frame(header, payload, sof, eof))

    def _reply(self, link: LinkRecord, h: FcHeader, payload: bytes, *,
               r_ctl: int = RCtl.ELS_REPLY, d_id: int | None = None) -> None:
        rh = h.reply(r_ctl, rx_id=self._xid())
        if d_id is not None:
            rh = rh._replace(d_id=d_id)
        self._send(link, rh, payload)

    def _reply_sequence(self, link: LinkRecord, h: FcHeader, payload: bytes,
                        r_ctl: int) -> None:
        """A reply that may need several frames (a long name-server accept): one sequence,
        SOFi3/SOFn3, EOFn/EOFt, SEQ_CNT counting up, relative offset in PARAMETER."""
        size = min(CT_CHUNK, link.receive_size & ~3) or CT_CHUNK
        if len(payload) <= size:
            self._reply(link, h, payload, r_ctl=r_ctl)
            return
        rx_id = self._xid()
        chunks = [payload[i:i + size] for i in range(0, len(payload), size)]
        middle = (F_CTL_REPLY & ~(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)) \
            | FCtl.RELATIVE_OFFSET
        last = F_CTL_REPLY | FCtl.RELATIVE_OFFSET
        for i, chunk in enumerate(chunks):
            final = i == len(chunks) - 1
            rh = h.reply(r_ctl, f_ctl=last if final else middle, rx_id=rx_id,
                         parameter=i * size)._replace(seq_cnt=i)
            self._send(link, rh, chunk, SOF.SOFi3 if i == 0 else SOF.SOFn3,
                       EOF.EOFt if final else EOF.EOFn)

    def _ls_rjt(self, link: LinkRecord, h: FcHeader, reason: int,
                explanation: int = LsRjtExplanation.NO_ADDITIONAL_EXPLANATION) -> None:
        link.counters["ls_rjt_sent"] += 1
        self._reply(link, h, LsRjt(LsRjtReason(reason), LsRjtExplanation(explanation)).encode())

    def _reject(self, link: LinkRecord, h: FcHeader, reason: LsRjtReason,
                explanation: LsRjtExplanation, event: str, **fields: Any) -> None:
        """Answer LS_RJT, logging `event` with the codes sent (and `fields`: `detail` says
        why in words)."""
        self.log.info(event, link=link.link_id, reason=reason, explanation=explanation,
                      **fields)
        self._ls_rjt(link, h, reason, explanation)

    def _decode(self, link: LinkRecord, frame: Frame, codec: Any, what: str) -> Any:
        """`codec.decode(payload)`, or None after answering LS_RJT protocol error (too
        short: invalid payload length) and logging why."""
        try:
            return codec.decode(frame.payload)
        except DecodeError as exc:
            self._reject(link, frame.header, LsRjtReason.PROTOCOL_ERROR,
                         LsRjtExplanation.INVALID_PAYLOAD_LENGTH, f"{what} rejected",
                         fcid=frame.header.s_id, detail=str(exc))
            return None

    def _send_logo(self, rec: PortRecord) -> None:
        link = self.links.get(rec.link_id)
        if link is None:
            return
        hdr = make_header(RCtl.ELS_REQUEST, rec.fcid, F_PORT, FcType.ELS, F_CTL_REQUEST,
                          ox_id=self._xid())
        self._send(link, hdr, Logo(rec.fcid, rec.wwpn).encode())

    # ------------------------------------------------------------------ discards
    def _discard(self, link: LinkRecord, frame: Frame, reason: str) -> None:
        self.counters[f"discard_{reason}"] += 1
        link.counters[f"discard_{reason}"] += 1
        self.on_discard(link.link_id, reason)
        # every discard is logged, but a flood is summarised: the first 100 per link and
        # reason, then every 1000th with the running count
        key = (link.link_id, reason)
        self._discard_logged[key] += 1
        n = self._discard_logged[key]
        if n <= 100 or n % 1000 == 0:
            h = frame.header
            self.log.info("frame discarded", reason=reason, link=link.link_id, s_id=h.s_id,
                          d_id=h.d_id, r_ctl=h.r_ctl, type=h.type, ox_id=h.ox_id, count=n)

    # ------------------------------------------------------------------ routing
    def _routes_changed(self) -> None:
        self._verdicts.clear()

    def _verdict(self, link: LinkRecord, s_id: int, d_id: int) -> int | str:
        """The destination link of a frame from `s_id` to `d_id` arriving on `link`, or
        the reason it must be discarded."""
        if s_id not in link.fcids:
            return "s_id_not_assigned_on_link"
        dst = self.db.by_fcid.get(d_id)
        if dst is None:
            return "unknown_d_id"
        if not self.zoning.visible(self.db.by_fcid[s_id].wwpn, dst.wwpn):
            return "not_zoned"
        self._verdicts[(link.link_id << 48) | (s_id << 24) | d_id] = dst.link_id
        return dst.link_id

    def _route(self, link: LinkRecord, frame: Frame) -> None:
        h = frame.header
        dst = self._verdicts.get((link.link_id << 48) | (h.s_id << 24) | h.d_id)
        if dst is None:
            verdict = self._verdict(link, h.s_id, h.d_id)
            if isinstance(verdict, str):
                self._discard(link, frame, verdict)
                return
            dst = verdict
        if self.forward(dst, frame):
            link.counters["routed"] += 1
        else:
            self._discard(link, frame, "destination_queue_full")

    def route_run(self, link_id: int, frames: list[Frame | FrameRun]) -> None:
        """Frames (and runs of one sequence's frames) that arrived back to back on one link,
        all with the S_ID and D_ID of the first (below FFFFF0): one verdict for the run (a
        write's data frames)."""
        link = self.links.get(link_id)
        if link is None:
            return
        h = frames[0].header
        dst = self._verdicts.get((link_id << 48) | (h.s_id << 24) | h.d_id)
        if dst is None:
            verdict = self._verdict(link, h.s_id, h.d_id)
            if isinstance(verdict, str):
                for frame in each_frame(frames):
                    self._discard(link, frame, verdict)
                return
            dst = verdict
        taken = self.forward_run(dst, frames)  # (frames, each frame of a run counted)
        link.counters["routed"] += taken
        if taken < frame_count(frames):  # the destination's queue filled up on the way
            for frame in each_frame(frames)[taken:]:
                self._discard(link, frame, "destination_queue_full")

    def route_raw(self, link_id: int, s_id: int, d_id: int, raw: bytes | memoryview) -> bool:
        """The data path for a port attached in process: one or more encapsulated frames
        from `s_id` to `d_id` (below FFFFF0) in `raw`; True when forwarded."""
        dst = self._verdicts.get((link_id << 48) | (s_id << 24) | d_id)
        if dst is None:
            link = self.links.get(link_id)
            if link is None:
                return False
            verdict = self._verdict(link, s_id, d_id)
            if isinstance(verdict, str):
                self._discard_raw(link, raw, verdict)
                return False
            dst = verdict
        if self.forward_raw(dst, raw):
            return True
        link = self.links.get(link_id)
        if link is not None:
            self._discard_raw(link, raw, "destination_queue_full")
        return False

    def _discard_raw(self, link: LinkRecord, raw: bytes | memoryview, reason: str) -> None:
        header = decode_header(raw, 32)
        self._discard(link, Frame(0, 0, header, b"", raw), reason)

    # ------------------------------------------------------------------ well-known
    def _well_known(self, link: LinkRecord, frame: Frame, now: float) -> None:
        h = frame.header
        if h.type == FcType.ELS:
            if h.r_ctl == RCtl.ELS_REQUEST:
                self._els_request(link, frame, now)
            elif h.r_ctl == RCtl.ELS_REPLY:
                self._els_reply(link, frame)
            else:
                self._discard(link, frame, "bad_els_r_ctl")
        elif h.type == FcType.CT and h.r_ctl == RCtl.UNSOLICITED_CONTROL:
            self._ct_request(link, frame, now)
        elif h.type == FcType.BLS and h.r_ctl == RCtl.ABTS:
            self._abts(link, frame)
        else:
            self._discard(link, frame, "unsupported_at_well_known_address")

    def _els_request(self, link: LinkRecord, frame: Frame, now: float) -> None:
        h = frame.header
        payload = frame.payload
        if not payload:
            self._discard(link, frame, "empty_els")
            return
        cmd = payload[0]
        if h.d_id == F_PORT and cmd in _LOGIN_ELS:
            req = Request.FLOGI if cmd == ElsCommand.FLOGI else Request.FDISC
        elif h.d_id == F_PORT and cmd == ElsCommand.LOGO:
            req = Request.LOGO
        else:
            req = Request.OTHER_ELS
        if req in (Request.FLOGI, Request.FDISC):
            pass  # S_ID is 0 (or a stale ID) by definition before the login completes
        elif h.s_id not in link.fcids:
            if link.state is LinkState.LOGGED_IN:
                self._discard(link, frame, "s_id_not_assigned_on_link")
                return
            # a request before FLOGI: LS_RJT "N_Port login required" (table)
        elif h.d_id != F_PORT:
            self._service_els(link, frame, cmd, now)
            return
        action, next_state = LOGIN_TABLE[(link.state, req)]
        if getattr(self, action)(link, frame, now):
            link.state = next_state

    # -- login table actions ------------------------------------------------------
    def _reject_login_required(self, link: LinkRecord, frame: Frame, now: float) -> bool:
        self._reject(link, frame.header, LsRjtReason.LOGICAL_ERROR,
                     LsRjtExplanation.N_PORT_LOGIN_REQUIRED,
                     "request before fabric login rejected",
                     command=names.els_command(frame.payload[0]), s_id=frame.header.s_id)
        return False

    def _reject_not_supported(self, link: LinkRecord, frame: Frame, now: float) -> bool:
        self._ls_rjt(link, frame.header, LsRjtReason.COMMAND_NOT_SUPPORTED,
                     LsRjtExplanation.REQUEST_NOT_SUPPORTED)
        return False

    def _forget_link(self, link: LinkRecord, now: float) -> bool:
        self._release_link_ports(link, now, "link down")
        return True

    def _decode_login(self, link: LinkRecord, frame: Frame) -> ServiceParameters | None:
        try:
            return ServiceParameters.decode(frame.payload)
        except DecodeError as exc:
            self._reject(link, frame.header, LsRjtReason.PROTOCOL_ERROR,
                         LsRjtExplanation.INVALID_PAYLOAD_LENGTH
                         if len(frame.payload) < 116 else
                         LsRjtExplanation.INVALID_COMMON_SERVICE_PARAMETERS,
                         "login rejected", command=names.els_command(frame.payload[0]),
                         detail=str(exc))
            return None

    def _disabled_refused(self, link: LinkRecord, frame: Frame, sp: ServiceParameters) -> bool:
        """A disabled WWPN's FLOGI or FDISC: LS_RJT "unable to perform", as a switch port
        that is administratively down lets nothing log in."""
        if sp.port_name not in self.disabled:
            return False
        self.counters["disabled_login_rejected"] += 1
        link.counters["disabled_login_rejected"] += 1
        self._reject(link, frame.header, LsRjtReason.UNABLE_TO_PERFORM,
                     LsRjtExplanation.NO_ADDITIONAL_EXPLANATION, "login rejected",
                     detail="port disabled", wwpn=sp.port_name)
        return True

    def _duplicate_refused(self, link: LinkRecord, frame: Frame, sp: ServiceParameters,
                           now: float) -> bool:
        existing = self.db.by_wwpn(sp.port_name)
        if existing is None:
            return False
        # an FDISC cannot replace its own link's FLOGI port: logging that one out would end
        # the link's fabric login the FDISC depends on, so it is refused under either policy
        own_base = existing.link_id == link.link_id and existing.fcid == link.base_fcid
        if self.duplicate_policy == "replace" and not own_base:
            self.log.info("duplicate WWPN replaces earlier login", wwpn=sp.port_name,
                          fcid=existing.fcid, link=link.link_id)
            self.counters["duplicate_wwpn_replaced"] += 1
            self._send_logo(existing)
            old_link = self.links[existing.link_id]
            if existing.fcid == old_link.base_fcid and old_link is not link:
                self._release_link_ports(old_link, now, "replaced by duplicate WWPN")
                old_link.state = LinkState.UNLOGGED
            else:
                self._release(old_link, existing.fcid, now, "replaced by duplicate WWPN")
            return False
        self.counters["duplicate_wwpn_rejected"] += 1
        link.counters["duplicate_wwpn_rejected"] += 1
        # FC-LS-3 LS_RJT: "unable to perform command request", "invalid N_Port_Name"
        self._reject(link, frame.header, LsRjtReason.UNABLE_TO_PERFORM,
                     LsRjtExplanation.INVALID_PORT_NAME, "login rejected",
                     detail="WWPN already logged in", wwpn=sp.port_name, fcid=existing.fcid)
        return True

    def _flogi(self, link: LinkRecord, frame: Frame, now: float) -> bool:
        sp = self._decode_login(link, frame)
        if sp is None:
            return False
        if self._disabled_refused(link, frame, sp):
            return False
        if link.state is LinkState.LOGGED_IN:
            self._release_link_ports(link, now, "implicit logout by FLOGI")
            link.state = LinkState.UNLOGGED
        if self._duplicate_refused(link, frame, sp, now):
            return False
        areas: list[int] = []
        try:
            fcid = self.addresses.allocate_for_link(areas)
        except AddressSpaceFull:
            self._reject(link, frame.header, LsRjtReason.UNABLE_TO_PERFORM,
                         LsRjtExplanation.INSUFFICIENT_RESOURCES, "login rejected",
                         detail="no N_Port_ID left", wwpn=sp.port_name)
            return False
        link.areas = areas
        link.base_fcid = fcid
        link.receive_size = _receive_size(sp)
        # the same accept answers every FDISC on this F_Port: build it once
        link.login_accept = ServiceParameters.flogi_accept(
            self._f_port_name(link), self.fabric_name, e_d_tov=self.e_d_tov_ms,
            r_a_tov=self.r_a_tov_ms).encode()
        self._login(link, frame, sp, fcid, "FLOGI", now)
        return True

    def _fdisc(self, link: LinkRecord, frame: Frame, now: float) -> bool:
        sp = self._decode_login(link, frame)
        if sp is None:
            return False
        if self._disabled_refused(link, frame, sp):
            return False
        if len(link.fcids) - 1 >= self.max_npiv:
            self._reject(link, frame.header, LsRjtReason.UNABLE_TO_PERFORM,
                         LsRjtExplanation.INSUFFICIENT_RESOURCES, "login rejected",
                         detail="NPIV limit reached", wwpn=sp.port_name, limit=self.max_npiv)
            return False
        if self._duplicate_refused(link, frame, sp, now):
            return False
        try:
            fcid = self.addresses.allocate_for_link(link.areas)
        except AddressSpaceFull:
            self._reject(link, frame.header, LsRjtReason.UNABLE_TO_PERFORM,
                         LsRjtExplanation.INSUFFICIENT_RESOURCES, "login rejected",
                         detail="no N_Port_ID left", wwpn=sp.port_name)
            return False
        self._login(link, frame, sp, fcid, "FDISC", now)
        return True

    def _login(self, link: LinkRecord, frame: Frame, sp: ServiceParameters, fcid: int,
               kind: str, now: float) -> None:
        rec = PortRecord(fcid, sp.port_name, sp.node_name, link.link_id)
        self.db.add(rec)
        link.fcids.add(fcid)
        self._routes_changed()
        self._reply(link, frame.header, link.login_accept, d_id=fcid)
        self.counters["logins"] += 1
        link.counters["logins"] += 1
        self.log.info("login", kind=kind, wwpn=sp.port_name, wwnn=sp.node_name, fcid=fcid,
                      link=link.link_id)
        self._changed(rec, RscnEventQualifier.NAME_SERVER_OBJECT, now)

    def _derived_name(self, index: int) -> WWN:
        # names of the fabric's own ports and services: NAA 2 with `index` in the 12-bit
        # vendor-specific field, then the fabric name's low 6 bytes, as switches name theirs
        return WWN((0x2 << 60) | ((index & 0xFFF) << 48)
                   | (int(self.fabric_name) & 0xFFFFFFFFFFFF))

    def _f_port_name(self, link: LinkRecord) -> WWN:
        return self._derived_name(link.areas[0] if link.areas else 0)

    def _logo(self, link: LinkRecord, frame: Frame, now: float) -> bool:
        h = frame.header
        if self._decode(link, frame, Logo, "LOGO") is None:
            return False
        self._reply(link, h, _ACC)
        if h.s_id == link.base_fcid:
            # the physical N_Port logging out takes its NPIV ports with it
            self._release_link_ports(link, now, "LOGO")
            link.state = LinkState.UNLOGGED
            return False
        self._release(link, h.s_id, now, "LOGO")
        return True

    # -- releasing ----------------------------------------------------------------
    def _release_link_ports(self, link: LinkRecord, now: float, reason: str) -> None:
        # vports first, the base N_Port_ID last, so RSCNs list them in that order
        for fcid in sorted(link.fcids, key=lambda f: f == link.base_fcid):
            self._release(link, fcid, now, reason)
        link.base_fcid = None
        link.areas = []

    def _release(self, link: LinkRecord, fcid: int, now: float, reason: str) -> None:
        link.fcids.discard(fcid)
        self._routes_changed()
        rec = self.db.remove(fcid)
        self.addresses.release(fcid)
        self._scr.pop(fcid, None)
        self.rscn.forget(fcid)
        if rec is None:
            return
        self.counters["logouts"] += 1
        link.counters["logouts"] += 1
        self.log.info("logout", wwpn=rec.wwpn, fcid=fcid, link=link.link_id, reason=reason)
        self._changed(rec, RscnEventQualifier.NOT_SPECIFIED, now)

    # -- RSCN ---------------------------------------------------------------------
    def _changed(self, rec: PortRecord, qualifier: int, now: float,
                 functions: tuple[int, ...] = (1, 3)) -> None:
        """Queue an RSCN about `rec` for every SCR-registered port zoned with it."""
        if not self._scr:
            return
        zoning = self.zoning
        recipients = []
        for r, fn in self._scr.items():
            if r == rec.fcid or fn not in functions:
                continue
            q = self.db.by_fcid.get(r)
            if q is not None and zoning.visible(rec.wwpn, q.wwpn):
                recipients.append(r)
        self.rscn.note(recipients, (int(qualifier), int(RscnAddressFormat.PORT), rec.fcid), now)

    def _send_rscn(self, recipient: int, pages: list[Page], now: float) -> None:
        rec = self.db.get(recipient)
        if rec is None:
            return
        link = self.links.get(rec.link_id)
        if link is None:
            return
        payload = Rscn(tuple(RscnPage(aid, RscnAddressFormat(fmt), RscnEventQualifier(q))
                             for q, fmt, aid in pages)).encode()
        ox = self._xid()
        frame = encode_frame(make_header(RCtl.ELS_REQUEST, recipient, CONTROLLER, FcType.ELS,
                                         F_CTL_REQUEST, ox_id=ox), payload)
        self.transmit(link.link_id, frame)
        self.rscn.sent(recipient, link.link_id, ox, frame, now)
        self.counters["rscn_sent"] += 1
        rec.rscns += 1
        self.log.debug("RSCN sent", fcid=recipient, wwpn=rec.wwpn, pages=len(pages),
                      affected=[aid for _q, _f, aid in pages])

    # -- services behind the well-known addresses ------------------------------------
    def _service_els(self, link: LinkRecord, frame: Frame, cmd: int, now: float) -> None:
        h = frame.header
        rec = self.db.by_fcid[h.s_id]
        if cmd == ElsCommand.PLOGI and h.d_id in (DIRECTORY, CONTROLLER, MANAGEMENT):
            try:
                sp = ServiceParameters.decode(frame.payload)
            except DecodeError as exc:
                self._reject(link, h, LsRjtReason.PROTOCOL_ERROR,
                             LsRjtExplanation.INVALID_COMMON_SERVICE_PARAMETERS,
                             "PLOGI rejected", fcid=h.s_id, d_id=h.d_id, detail=str(exc))
                return
            if h.d_id == DIRECTORY:
                rec.ns_session = True
            self._reply(link, h, self._service_accept(h.d_id, _receive_size(sp)))
            self.log.debug("service login", fcid=h.s_id, wwpn=rec.wwpn, service=h.d_id)
        elif cmd == ElsCommand.LOGO and h.d_id in (DIRECTORY, CONTROLLER, MANAGEMENT):
            if h.d_id == DIRECTORY:
                rec.ns_session = False
            self._reply(link, h, _ACC)
        elif cmd == ElsCommand.SCR and h.d_id == CONTROLLER:
            self._scr_request(link, frame, rec)
        elif cmd == ElsCommand.RSCN and h.d_id == CONTROLLER:
            self._nport_rscn(link, frame, rec, now)
        else:
            self._ls_rjt(link, h, LsRjtReason.COMMAND_NOT_SUPPORTED,
                         LsRjtExplanation.REQUEST_NOT_SUPPORTED)

    def _service_accept(self, address: int, receive_size: int) -> bytes:
        key = (address, receive_size)
        acc = self._service_accepts.get(key)
        if acc is None:
            acc = ServiceParameters.plogi(self._service_name(address), self.fabric_name,
                                          command=ElsCommand.LS_ACC, e_d_tov=self.e_d_tov_ms,
                                          receive_data_field_size=receive_size).encode()
            self._service_accepts[key] = acc
        return acc

    def _service_name(self, address: int) -> WWN:
        # a well-known service: the low byte of its address, e.g. 0xFC for the name server
        return self._derived_name(0xF00 | (address & 0xFF))

    def _scr_request(self, link: LinkRecord, frame: Frame, rec: PortRecord) -> None:
        h = frame.header
        scr = self._decode(link, frame, Scr, "SCR")
        if scr is None:
            return
        fn = int(scr.function)
        if fn == ScrFunction.CLEAR:
            self._scr.pop(rec.fcid, None)
        elif fn in (ScrFunction.FABRIC_DETECTED, ScrFunction.N_PORT_DETECTED, ScrFunction.FULL):
            self._scr[rec.fcid] = fn
        else:
            self._ls_rjt(link, h, LsRjtReason.UNABLE_TO_PERFORM,
                         LsRjtExplanation.NO_ADDITIONAL_EXPLANATION)
            return
        rec.scr_function = self._scr.get(rec.fcid, 0)
        self._reply(link, h, _ACC)
        self.log.debug("registration", object="SCR", function=ScrFunction(fn), fcid=rec.fcid,
                       wwpn=rec.wwpn)

    def _nport_rscn(self, link: LinkRecord, frame: Frame, rec: PortRecord, now: float) -> None:
        """An N_Port-detected RSCN: accept it and pass its pages on to the ports that asked
        for N_Port-detected events (SCR function 2 or 3) and are zoned with the sender."""
        h = frame.header
        rscn = self._decode(link, frame, Rscn, "RSCN")
        if rscn is None:
            return
        self._reply(link, h, _ACC)
        zoning = self.zoning
        recipients = [r for r, fn in self._scr.items()
                      if r != rec.fcid and fn in (2, 3) and (q := self.db.by_fcid.get(r))
                      and zoning.visible(rec.wwpn, q.wwpn)]
        for p in rscn.pages:
            self.rscn.note(recipients, (int(p.event_qualifier), int(p.address_format),
                                        p.affected_id), now)

    def _els_reply(self, link: LinkRecord, frame: Frame) -> None:
        h = frame.header
        # only the recipient's own link can answer its RSCN: a reply forged on another link
        # with its S_ID must not stop the retry (docs/behaviour.md 2, anti-spoofing)
        if h.d_id == CONTROLLER and h.s_id in link.fcids and \
                self.rscn.answered(h.s_id, h.ox_id) is not None:
            link.counters["rscn_answered"] += 1
            return
        # the answer to a LOGO the fabric sent, or a late RSCN answer: nothing to do
        link.counters["els_reply_ignored"] += 1

    def _ct_request(self, link: LinkRecord, frame: Frame, now: float) -> None:
        h = frame.header
        if h.s_id not in link.fcids:
            self._discard(link, frame, "s_id_not_assigned_on_link")
            return
        rec = self.db.by_fcid[h.s_id]
        try:
            iu = decode_ct(frame.payload)
        except CtRevisionError as exc:
            # FC-GS-8 4.3.2.8: answer a CT_IU of another revision "invalid version level"
            self._reply(link, h, ct_reject(exc.preamble, CtRejectReason.INVALID_VERSION_LEVEL),
                        r_ctl=RCtl.SOLICITED_CONTROL)
            return
        except DecodeError as exc:
            self.log.info("CT_IU discarded", fcid=h.s_id, reason=str(exc))
            self._discard(link, frame, "malformed_ct_iu")
            return
        if h.d_id != DIRECTORY:
            self._reply(link, h, ct_reject(iu.preamble, CtRejectReason.COMMAND_NOT_SUPPORTED),
                        r_ctl=RCtl.SOLICITED_CONTROL)
            return
        if not rec.ns_session:
            # FC-LS-3: a port that did not log in with the server gets a LOGO, not service
            self.log.info("name server request without PLOGI", fcid=h.s_id, wwpn=rec.wwpn)
            link.counters["ct_without_plogi"] += 1
            hdr = make_header(RCtl.ELS_REQUEST, h.s_id, DIRECTORY, FcType.ELS, F_CTL_REQUEST,
                              ox_id=self._xid())
            self._send(link, hdr, Logo(DIRECTORY, self._service_name(DIRECTORY)).encode())
            return
        result = self.ns.handle(rec, iu)
        self._reply_sequence(link, h, result.response, RCtl.SOLICITED_CONTROL)
        cmd = iu.preamble.command
        if result.rejected is not None:
            self.counters["ns_rejects"] += 1
            self.log.info("name server reject", fcid=h.s_id, wwpn=rec.wwpn,
                          command=names.ct_command(cmd),
                          reason=names.code(result.rejected[0], CtRejectReason),
                          explanation=names.code(result.rejected[1], NsRejectExplanation))
        elif result.changed is not None:
            self.counters["ns_registrations"] += 1
            self.log.debug("registration", object=_ns_name(cmd), fcid=result.changed.fcid,
                          wwpn=result.changed.wwpn)
            # FC-4 types/features and deregistration change what others see (docs/behaviour.md 2)
            if cmd in (0x0217, 0x021F, 0x0300):
                self._changed(result.changed, RscnEventQualifier.NAME_SERVER_OBJECT, now)
        else:
            self.counters["ns_queries"] += 1

    def _abts(self, link: LinkRecord, frame: Frame) -> None:
        # the fabric's services answer within one frame, so an ABTS always finds the
        # exchange finished: accept it (FC-LS-3 3.3.2: BA_ACC with the exchange's IDs)
        h = frame.header
        payload = bytes([0, 0, 0, 0]) + h.ox_id.to_bytes(2, "big") + \
            h.rx_id.to_bytes(2, "big") + b"\x00\x00\xff\xff"
        self._reply(link, h, payload, r_ctl=RCtl.BA_ACC)


def _receive_size(sp: ServiceParameters) -> int:
    size = sp.receive_data_field_size or 2112
    c3 = sp.class3.receive_data_field_size if sp.class3.valid else 0
    if c3:
        size = min(size, c3)
    return max(256, min(size, 2112))


def _ns_name(code: int) -> str:
    from fcsoft.wire.ct import NsCommand

    try:
        return NsCommand(code).name
    except ValueError:
        return f"{code:#06x}"


__all__ = ["Fabric", "LinkState", "Request", "LOGIN_TABLE"]
