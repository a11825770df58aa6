"""An N_Port's conversation with the fabric: FLOGI, then the registrations (sans-IO).

Theory of operation: `FabricClient` runs a fixed script of requests, one at a time, the
way Linux libfc does it: FLOGI, PLOGI FFFFFC, RNN_ID, RSNN_NN, RSPN_ID, RFT_ID (FCP),
RFF_ID, SCR. A rejected registration is logged and the script goes on (a port that could
not register a symbolic name still works); a rejected FLOGI or a request that goes
unanswered for 2 x E_D_TOV starts the script again after R_A_TOV. Each request carries an
OX_ID the owner routes replies back by (`reply`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fcsoft import names
from fcsoft.wire import ns
from fcsoft.wire.ct import (
    CtRejectReason,
    CtResponseCode,
    GsType,
    NsCommand,
    NsRejectExplanation,
    ct_request,
    decode_ct,
)
from fcsoft.wire.els import ElsCommand, LsRjt, Scr, ScrFunction
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.encap import Frame, encode_frame
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.header import FcType, RCtl, WellKnownAddress, make_header
from fcsoft.wire.wwn import WWN

F_PORT = WellKnownAddress.FABRIC_F_PORT
DIRECTORY = WellKnownAddress.DIRECTORY_SERVER
CONTROLLER = WellKnownAddress.FABRIC_CONTROLLER


class FabricState(enum.Enum):
    OFFLINE = "offline"  # no link
    LOGGING_IN = "logging in"  # FLOGI and registrations under way
    READY = "ready"  # logged in and registered
    WAITING = "waiting"  # login failed; retrying after R_A_TOV


@dataclass(slots=True)
class Step:
    name: str
    d_id: int
    r_ctl: int
    type: int
    payload: Callable[[], bytes]


class FabricClient:
    """Logs one N_Port into the fabric and registers it. The owner supplies `send` (a
    frame's bytes onto the link) and `new_ox_id`."""

    def __init__(self, wwpn: WWN, wwnn: WWN, *, symbolic_name: str, fc4_features: int,
                 symbolic_node_name: str | None = None,
                 send: Callable[[bytes], bool], new_ox_id: Callable[[], int],
                 on_ready: Callable[[], None], log: object, e_d_tov: float = 2.0,
                 r_a_tov: float = 10.0, scr_function: int = ScrFunction.FULL) -> None:
        self.wwpn = wwpn
        self.wwnn = wwnn
        self.symbolic_name = symbolic_name.encode()[:255]
        # RSNN_NN names the node (shared by all ports of an array), RSPN_ID the port
        self.symbolic_node_name = (symbolic_node_name or symbolic_name).encode()[:255]
        self.fc4_features = fc4_features
        self.send = send
        self.new_ox_id = new_ox_id
        self.on_ready = on_ready
        self.log = log
        self.e_d_tov = e_d_tov
        self.r_a_tov = r_a_tov
        self.scr_function = scr_function
        self.state = FabricState.OFFLINE
        self.fcid = 0
        self.fabric_parameters: ServiceParameters | None = None
        self.rejected: list[str] = []  # registrations the fabric refused (for diagnostics)
        self._steps: list[Step] = []
        self._ox: int | None = None
        self._deadline: float | None = None
        self._retry_at: float | None = None
        self._attempts = 0

    # -- script ---------------------------------------------------------------------
    def _script(self) -> list[Step]:
        fcp = FcType.FCP
        ctl = RCtl.UNSOLICITED_CONTROL

        def ct(cmd: int, body: Callable[[], bytes]) -> Callable[[], bytes]:
            return lambda: ct_request(GsType.DIRECTORY, 0x02, cmd, body())

        return [
            Step("PLOGI FFFFFC", DIRECTORY, RCtl.ELS_REQUEST, FcType.ELS,
                 lambda: ServiceParameters.plogi(self.wwpn, self.wwnn).encode()),
            Step("RNN_ID", DIRECTORY, ctl, FcType.CT,
                 ct(NsCommand.RNN_ID, lambda: ns.RnnIdRequest(self.fcid, self.wwnn).encode())),
            Step("RSNN_NN", DIRECTORY, ctl, FcType.CT,
                 ct(NsCommand.RSNN_NN,
                    lambda: ns.RsnnNnRequest(self.wwnn, self.symbolic_node_name).encode())),
            Step("RSPN_ID", DIRECTORY, ctl, FcType.CT,
                 ct(NsCommand.RSPN_ID,
                    lambda: ns.RspnIdRequest(self.fcid, self.symbolic_name).encode())),
            Step("RFT_ID", DIRECTORY, ctl, FcType.CT,
                 ct(NsCommand.RFT_ID,
                    lambda: ns.RftIdRequest(self.fcid, ns.Fc4Types({fcp})).encode())),
            Step("RFF_ID", DIRECTORY, ctl, FcType.CT,
                 ct(NsCommand.RFF_ID,
                    lambda: ns.RffIdRequest(self.fcid, fcp, self.fc4_features).encode())),
            Step("SCR", CONTROLLER, RCtl.ELS_REQUEST, FcType.ELS,
                 lambda: Scr(ScrFunction(self.scr_function)).encode()),
        ]

    def start(self, now: float) -> None:
        """The link is up: FLOGI."""
        self.state = FabricState.LOGGING_IN
        self.fcid = 0
        self._retry_at = None
        self._attempts += 1
        self._steps = []
        sp = ServiceParameters.flogi(self.wwpn, self.wwnn, npiv=False)
        self._request(Step("FLOGI", F_PORT, RCtl.ELS_REQUEST, FcType.ELS, sp.encode), now,
                      s_id=0)

    def stop(self) -> None:
        """The link is down."""
        self.state = FabricState.OFFLINE
        self._ox = None
        self._deadline = None
        self._retry_at = None

    def _request(self, step: Step, now: float, s_id: int | None = None) -> None:
        self._ox = self.new_ox_id()
        self._current = step
        self._deadline = now + 2 * self.e_d_tov
        hdr = make_header(step.r_ctl, step.d_id, self.fcid if s_id is None else s_id,
                          step.type, ox_id=self._ox)
        self.send(encode_frame(hdr, step.payload()))

    def _next(self, now: float) -> None:
        if self._steps:
            self._request(self._steps.pop(0), now)
            return
        self._ox = None
        self._deadline = None
        self.state = FabricState.READY
        self.log.debug("registered with the fabric", fcid=self.fcid,  # type: ignore[attr-defined]
                      rejected=self.rejected or None)
        self.on_ready()

    def _fail(self, why: str, now: float, payload: Any = b"") -> None:
        """Give up this login and try again after R_A_TOV; an LS_RJT `payload` is logged
        with its codes."""
        codes = _ls_rjt_codes(payload)
        fields = {**codes, "detail": why} if codes else {"reason": why}
        self.log.warning("fabric login failed; retrying",  # type: ignore[attr-defined]
                         **fields, retry_in=self.r_a_tov)
        self.state = FabricState.WAITING
        self._ox = None
        self._deadline = None
        self._retry_at = now + self.r_a_tov

    # -- events ---------------------------------------------------------------------
    def owns(self, ox_id: int) -> bool:
        return self._ox is not None and ox_id == self._ox

    def reply(self, frame: Frame, now: float) -> None:
        """A reply to our outstanding request (the owner checked `owns`)."""
        step = self._current
        payload = frame.payload
        if step.name == "FLOGI":
            if payload[:1] != bytes([ElsCommand.LS_ACC]):
                self._fail("FLOGI rejected", now, payload)
                return
            try:
                self.fabric_parameters = ServiceParameters.decode(payload)
            except DecodeError as exc:
                self._fail(f"bad FLOGI LS_ACC: {exc}", now)
                return
            self.fcid = frame.header.d_id  # the LS_ACC's D_ID is our new N_Port_ID
            self.log.info("fabric login", fcid=self.fcid)  # type: ignore[attr-defined]
            self.rejected = []
            self._steps = self._script()
            self._next(now)
            return
        ok = True
        codes: dict[str, Any] = {}
        if step.type == FcType.CT:
            try:
                preamble = decode_ct(payload).preamble
                ok = preamble.command == CtResponseCode.ACCEPT
                if preamble.command == CtResponseCode.REJECT:
                    codes = {"reason": names.code(preamble.reason, CtRejectReason),
                             "explanation": names.code(preamble.explanation,
                                                       NsRejectExplanation)}
            except DecodeError:
                ok = False
        else:
            ok = payload[:1] == bytes([ElsCommand.LS_ACC])
            codes = _ls_rjt_codes(payload)
        if not ok:
            if step.name.startswith("PLOGI"):
                self._fail("name server PLOGI rejected", now, payload)
                return
            self.rejected.append(step.name)
            self.log.warning("registration rejected", what=step.name,  # type: ignore[attr-defined]
                             **codes)
        self._next(now)

    def next_timer(self) -> float | None:
        return self._deadline if self._deadline is not None else self._retry_at

    def handle_timer(self, now: float) -> None:
        if self._retry_at is not None and now >= self._retry_at:
            self.start(now)
        elif self._deadline is not None and now >= self._deadline:
            self._fail(f"no answer to {self._current.name} within {2 * self.e_d_tov:g} s",
                       now)


def _ls_rjt_codes(payload: Any) -> dict[str, Any]:
    """The reason and explanation of an LS_RJT payload, for a log line ({} if it is not
    one)."""
    if bytes(payload[:1]) != bytes([ElsCommand.LS_RJT]):
        return {}
    try:
        rjt = LsRjt.decode(payload)
    except DecodeError:
        return {}
    return {"reason": rjt.reason, "explanation": rjt.explanation}
