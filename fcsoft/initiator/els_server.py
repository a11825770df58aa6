"""What an initiator N_Port answers: unsolicited ELS requests from other N_Ports, and the
state of its port logins with them.

Theory of operation
-------------------
Every `NPort` has a `LoginTable`: one `RemoteLogin` per remote N_Port_ID, saying whether
an N_Port login (PLOGI, sent by either side) is in place, whether our own PLOGI to that port
is outstanding, whether an FCP image pair exists (PRLI, either side), and the remote port's
service parameters. Both directions write it: `fcsoft.initiator.login` (our PLOGI and PRLI)
and the `ElsServer` (requests that arrive). `RemoteLogin.changed` wakes a login waiting in
a back-off as soon as the other side logs in to us.

The `ElsServer` answers the ELS requests that reach the port unsolicited, synchronously and
without blocking (each answer is one frame), as FC-LS-3 and FCP-4 expect of an N_Port that
is an FCP initiator:

- PLOGI from any N_Port is accepted with our own service parameters (those of our PLOGI).
  A PLOGI from a port we are logged in with is an implicit logout of that login (its
  image pair is gone); the I_T nexuses to that port are told, and each logs in again at
  once (PRLI: the new N_Port login is in place) when the port's link runs a nursery, else
  before its next command. A PLOGI that crosses our own outstanding PLOGI to the same port
  (a collision) is decided by port name: the port with the higher name wins and rejects
  the other's PLOGI with LS_RJT "command already in progress"; the lower one accepts.
- PRLI for FCP is accepted as an initiator answers it: response code "request executed",
  the initiator function and no target function, "image pair established" when asked for.
  Other FC-4 types get the page response code "predefined configuration precludes
  establishing this image pair", as fcsoft's target answers a type it does not serve.
- PRLO is accepted (the image pair ends); LOGO is accepted (the login ends). Either way the
  nexuses to that port log in again before their next command.
- ADISC, PDISC, RTV, RRQ and ECHO are answered; they, PRLI, PRLO and REC need a login
  (LS_RJT "unable to perform command request" / "N_Port login required" otherwise), but a
  PRLI that overtakes the LS_ACC of our own PLOGI is accepted.
- RSCN and the fabric's LOGO go to the port (see host.py); anything else gets LS_RJT
  "command not supported".

`LoginPolicy` holds the timers: E_D_TOV and R_A_TOV (FC-FS), which the RTV accept reports
and from which the login's back-off is derived (see fcsoft.initiator.login).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from fcsoft import names
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
    RtvAccept,
    ServiceParameterPage,
    ServiceParameters,
)
from fcsoft.wire.encap import Frame
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.header import FcType, RCtl, WellKnownAddress
from fcsoft.wire.wwn import WWN

if TYPE_CHECKING:
    from .host import NPort

__all__ = ["ElsServer", "LoginPolicy", "LoginTable", "RemoteLogin", "INITIATOR_PARAMETERS"]

WELL_KNOWN_BASE = 0xFFFFF0
F_PORT = WellKnownAddress.FABRIC_F_PORT

#: the FCP service parameters of our PRLI and of our accept of a target's PRLI
INITIATOR_PARAMETERS = (FcpServiceParameters.INITIATOR_FUNCTION
                        | FcpServiceParameters.READ_XFER_RDY_DISABLED)


@dataclass(frozen=True)
class LoginPolicy:
    """Timers of the login and its retries (seconds).

    - `e_d_tov`, `r_a_tov`: FC-FS's error detect and resource allocation timeouts (2 s and
      10 s by default, the values of a fabric login), reported in our RTV accept;
    - a PLOGI or PRLI answered LS_RJT "logical busy" or "command already in progress" is
      sent again after `first_delay` (E_D_TOV / 4), then doubling up to `max_delay`
      (E_D_TOV), until `bound` (2 x R_A_TOV) seconds of back-off have been spent; each wait
      ends early when the other port logs in to us meanwhile.
    """

    e_d_tov: float = 2.0
    r_a_tov: float = 10.0
    first_delay: float | None = None
    max_delay: float | None = None
    bound: float | None = None

    def __post_init__(self) -> None:
        for name in ("e_d_tov", "r_a_tov", "first_delay", "max_delay", "bound"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"LoginPolicy.{name} must be more than 0 s, not {value!r}")

    def delays(self) -> Iterator[float]:
        """The back-off waits, in order; they add up to at most `bound`."""
        delay = self.first_delay if self.first_delay is not None else self.e_d_tov / 4
        cap = self.max_delay if self.max_delay is not None else self.e_d_tov
        left = self.bound if self.bound is not None else 2 * self.r_a_tov
        while left > 0:
            step = min(delay, cap, left)
            yield step
            left -= step
            delay = min(delay * 2, cap)


@dataclass(eq=False)
class RemoteLogin:
    """Our login state with one remote N_Port (by N_Port_ID)."""

    fcid: int
    port_name: WWN | None = None
    #: an N_Port login is in place (our PLOGI accepted, or theirs accepted by us)
    logged_in: bool = False
    #: our own PLOGI to this port is outstanding
    plogi_pending: bool = False
    #: an FCP image pair exists (our PRLI accepted, or theirs accepted by us)
    image_pair: bool = False
    #: the remote port's service parameters (from the latest PLOGI either way)
    parameters: ServiceParameters | None = None
    #: counts N_Port logins and logouts: a login that sees it move was overtaken
    epoch: int = 0
    changed: trio.Event = field(default_factory=trio.Event)

    def touch(self) -> None:
        """Wake whoever waits for a change."""
        self.changed.set()
        self.changed = trio.Event()

    def logged_in_by_plogi(self, parameters: ServiceParameters) -> None:
        """A PLOGI (either way) was accepted: a new N_Port login, no image pair yet."""
        self.logged_in = True
        self.image_pair = False
        self.parameters = parameters
        self.port_name = parameters.port_name
        self.epoch += 1
        self.touch()

    def logged_out(self) -> None:
        self.logged_in = False
        self.image_pair = False
        self.epoch += 1
        self.touch()

    async def wait_change(self, timeout: float) -> None:
        """Return at the next change, or after `timeout` seconds."""
        event = self.changed
        with trio.move_on_after(timeout):
            await event.wait()


class LoginTable:
    """Our port's logins, one `RemoteLogin` per remote N_Port_ID."""

    def __init__(self) -> None:
        self._logins: dict[int, RemoteLogin] = {}

    def get(self, fcid: int) -> RemoteLogin:
        """The entry for `fcid` (created, logged out, when there is none)."""
        entry = self._logins.get(fcid)
        if entry is None:
            entry = self._logins[fcid] = RemoteLogin(fcid)
        return entry

    def find(self, fcid: int) -> RemoteLogin | None:
        return self._logins.get(fcid)

    def clear(self) -> None:
        """The fabric login or the link is gone: so is every port login."""
        for entry in self._logins.values():
            entry.plogi_pending = False
            entry.logged_out()

    def __iter__(self) -> Iterator[RemoteLogin]:
        return iter(list(self._logins.values()))


_Handler = Callable[["ElsServer", Frame, RemoteLogin], None]


class ElsServer:
    """Answers the ELS requests that reach one of our N_Ports (module docstring)."""

    def __init__(self, port: NPort) -> None:
        self.port = port
        self.counters: dict[str, int] = {}

    # -- plumbing -------------------------------------------------------------------------
    @property
    def table(self) -> LoginTable:
        return self.port.logins

    def _reply(self, frame: Frame, payload: bytes) -> None:
        ex = self.port.hl.exchanges
        ex.send(frame.header.reply(RCtl.ELS_REPLY, rx_id=ex.new_ox_id()), payload)

    def _reject(self, frame: Frame, reason: int, explanation: int = 0,
                detail: str | None = None) -> None:
        """Answer LS_RJT, logged with its codes: at info when `detail` says what was
        malformed, at debug otherwise."""
        self._count("ls_rjt")
        rjt = LsRjt(LsRjtReason(reason), LsRjtExplanation(explanation))
        log = self.port.log.info if detail else self.port.log.debug
        log("ELS rejected", s_id=frame.header.s_id,
            command=names.els_command(frame.payload[0]) if frame.payload else None,
            reason=rjt.reason, explanation=rjt.explanation,
            **({"detail": detail} if detail else {}))
        self._reply(frame, rjt.encode())

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    def our_parameters(self, command: ElsCommand = ElsCommand.PLOGI) -> ServiceParameters:
        """Our PLOGI's service parameters (or, with LS_ACC, the accept of a PLOGI)."""
        port = self.port
        return ServiceParameters.plogi(port.wwpn, port.wwnn, command=command,
                                       receive_data_field_size=port.hl.frame_size)

    # -- dispatch -------------------------------------------------------------------------
    def received(self, frame: Frame) -> None:
        """An unsolicited frame for our N_Port."""
        h = frame.header
        if h.type != FcType.ELS or h.r_ctl != RCtl.ELS_REQUEST or not frame.payload:
            return  # FCP or BLS to an initiator: nothing to answer
        cmd = frame.payload[0]
        if h.s_id >= WELL_KNOWN_BASE:
            self.port._fabric_els(frame, cmd)
            return
        handler = _HANDLERS.get(cmd)
        if handler is None:
            self._reject(frame, LsRjtReason.COMMAND_NOT_SUPPORTED,
                         LsRjtExplanation.REQUEST_NOT_SUPPORTED)
            return
        entry = self.table.get(h.s_id)
        if cmd not in _NO_LOGIN_NEEDED and not (entry.logged_in or (
                cmd == ElsCommand.PRLI and entry.plogi_pending)):
            self._reject(frame, LsRjtReason.UNABLE_TO_PERFORM,
                         LsRjtExplanation.N_PORT_LOGIN_REQUIRED)
            return
        try:
            handler(self, frame, entry)
        except DecodeError as exc:
            self._reject(frame, LsRjtReason.PROTOCOL_ERROR,
                         LsRjtExplanation.INVALID_PAYLOAD_LENGTH, str(exc))

    # -- PLOGI ----------------------------------------------------------------------------
    def _plogi(self, frame: Frame, entry: RemoteLogin) -> None:
        h = frame.header
        sp = ServiceParameters.decode(frame.payload)
        log = self.port.log.bind(s_id=h.s_id, peer_wwpn=sp.port_name)
        if not sp.class3.valid:
            self._reject(frame, LsRjtReason.UNABLE_TO_PERFORM,
                         LsRjtExplanation.SERVICE_PARAMETER_ERROR_OPTIONS)
            return
        if entry.plogi_pending and int(self.port.wwpn) > int(sp.port_name):
            # a collision, and our port name is the higher: ours stands, theirs waits
            # (FC-LS-3 PLOGI: the port with the lower name accepts the other's PLOGI)
            self._count("plogi_collision_won")
            log.info("PLOGI collision: ours stands (higher port name)")
            self._reject(frame, LsRjtReason.COMMAND_ALREADY_IN_PROGRESS)
            return
        implicit_logout = entry.logged_in
        if entry.plogi_pending:
            self._count("plogi_collision_lost")
            log.info("PLOGI collision: theirs stands (higher port name)")
        self._reply(frame, self.our_parameters(ElsCommand.LS_ACC).encode())
        self._count("plogi")
        entry.logged_in_by_plogi(sp)
        if implicit_logout:
            # FC-LS-3: a PLOGI from a port we are logged in with ends that login first
            self._count("implicit_logout")
            log.info("PLOGI from a logged-in port: implicit logout, logging in again")
            self.port._session_lost(h.s_id, "PLOGI", relogin=True)
        else:
            log.info("accepted a PLOGI")

    # -- PRLI / PRLO ----------------------------------------------------------------------
    def _prli(self, frame: Frame, entry: RemoteLogin) -> None:
        prli = Prli.decode(frame.payload)
        pages = []
        for page in prli.pages:
            if page.type != FcType.FCP:
                pages.append(ServiceParameterPage(
                    type=page.type, type_extension=page.type_extension,
                    response_code=PrliResponseCode.CONFIGURATION_PRECLUDES))
                continue
            if page.establish_image_pair:
                entry.image_pair = True
                entry.touch()
            # as an initiator answers (FCP-4 PRLI): initiator function, no target function
            pages.append(ServiceParameterPage(
                type=FcType.FCP, establish_image_pair=page.establish_image_pair,
                response_code=PrliResponseCode.REQUEST_EXECUTED,
                service_parameters=INITIATOR_PARAMETERS))
        self._reply(frame, Prli(tuple(pages), command=ElsCommand.LS_ACC).encode())
        self._count("prli")
        self.port.log.info("accepted a PRLI", s_id=frame.header.s_id,
                           image_pair=entry.image_pair)

    def _prlo(self, frame: Frame, entry: RemoteLogin) -> None:
        pages = Prlo.decode(frame.payload).pages
        acc = tuple(ServiceParameterPage(type=p.type, type_extension=p.type_extension,
                                         response_code=PrliResponseCode.REQUEST_EXECUTED)
                    for p in pages)
        self._reply(frame, Prlo(acc, command=ElsCommand.LS_ACC).encode())
        self._count("prlo")
        if any(p.type == FcType.FCP for p in pages):
            entry.image_pair = False
            entry.touch()
            self.port._session_lost(frame.header.s_id, "PRLO")

    def _logo(self, frame: Frame, entry: RemoteLogin) -> None:
        Logo.decode(frame.payload)
        self._reply(frame, LsAcc().encode())
        self._count("logo")
        entry.plogi_pending = False
        entry.logged_out()
        self.port._session_lost(frame.header.s_id, "LOGO")

    # -- discovery and timers -------------------------------------------------------------
    def _adisc(self, frame: Frame, entry: RemoteLogin) -> None:
        Adisc.decode(frame.payload)
        port = self.port
        self._reply(frame, Adisc(0, port.wwpn, port.wwnn, port.fcid,
                                 command=ElsCommand.LS_ACC).encode())
        self._count("adisc")

    def _pdisc(self, frame: Frame, entry: RemoteLogin) -> None:
        ServiceParameters.decode(frame.payload)
        self._reply(frame, self.our_parameters(ElsCommand.LS_ACC).encode())
        self._count("pdisc")

    def _rtv(self, frame: Frame, entry: RemoteLogin) -> None:
        policy = self.port.login_policy
        self._reply(frame, RtvAccept(round(policy.r_a_tov * 1000),
                                     round(policy.e_d_tov * 1000)).encode())
        self._count("rtv")

    def _rrq(self, frame: Frame, entry: RemoteLogin) -> None:
        # an exchange is forgotten as soon as it ends: no recovery qualifier to reinstate
        self._reply(frame, LsAcc().encode())
        self._count("rrq")

    def _echo(self, frame: Frame, entry: RemoteLogin) -> None:
        self._reply(frame, Echo.decode(frame.payload).accept().encode())
        self._count("echo")

    def _rec(self, frame: Frame, entry: RemoteLogin) -> None:
        # FCP-4 REC: we keep no exchange status to report
        self._reject(frame, LsRjtReason.UNABLE_TO_PERFORM,
                     LsRjtExplanation.UNABLE_TO_SUPPLY_REQUESTED_DATA)


_HANDLERS: dict[int, Any] = {
    ElsCommand.PLOGI: ElsServer._plogi,
    ElsCommand.PRLI: ElsServer._prli,
    ElsCommand.PRLO: ElsServer._prlo,
    ElsCommand.LOGO: ElsServer._logo,
    ElsCommand.ADISC: ElsServer._adisc,
    ElsCommand.PDISC: ElsServer._pdisc,
    ElsCommand.RTV: ElsServer._rtv,
    ElsCommand.RRQ: ElsServer._rrq,
    ElsCommand.ECHO: ElsServer._echo,
    ElsCommand.REC: ElsServer._rec,
}
#: requests answered whether or not the sender is logged in with us
_NO_LOGIN_NEEDED = frozenset({ElsCommand.PLOGI, ElsCommand.LOGO, ElsCommand.ECHO})
