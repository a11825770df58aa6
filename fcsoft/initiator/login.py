"""Logging an I_T nexus in to its target port: PLOGI and PRLI, with FC-LS-3's collision
rule and a bounded back-off.

Theory of operation
-------------------
`login(nexus)` brings the nexus's N_Port login and FCP image pair into place, using the
port's `LoginTable` (fcsoft.initiator.els_server) to see what already is:

1. no N_Port login with the target: PLOGI. While it is outstanding the ELS server knows
   (`RemoteLogin.plogi_pending`), so a PLOGI from the target that crosses ours is decided
   by port name. An LS_RJT "logical busy" or "command already in progress" (the target's
   own PLOGI to us is pending, or it is still tearing down an old login) is answered by
   waiting: the `LoginPolicy` back-off (E_D_TOV / 4, doubling to E_D_TOV, 2 x R_A_TOV in
   all), each wait ending early when the target's PLOGI reaches us and we accept it, in
   which case that login is ours too and PLOGI is done. Then PLOGI is sent again; when the
   back-off is spent the last LS_RJT is raised (`ElsRejected`).
2. PRLI (FCP, establish image pair, initiator function). LS_RJT "N_Port login required"
   means the target forgot the login: back to 1. Busy and "initialization not complete"
   are retried with the same back-off. If the target logged in to us again (a new PLOGI)
   while our PRLI was on its way, the PRLI is sent again.

Only the login of one nexus runs at a time (a lock per nexus); a caller that waited for a
login that completed meanwhile does not log in again. `relogin` is the background task the
ELS server starts after an implicit logout (a PLOGI from the target to a port it was logged
in with): the N_Port login is then in place, so it sends PRLI only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from fcsoft import names
from fcsoft.wire.els import (
    ElsCommand,
    LsRjt,
    LsRjtExplanation,
    LsRjtReason,
    Prli,
    PrliResponseCode,
    ServiceParameterPage,
    ServiceParameters,
)
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.header import FcType

from .els_server import INITIATOR_PARAMETERS, LoginPolicy, RemoteLogin
from .host import ElsRejected

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .scsi import ITNexus

__all__ = ["LoginPolicy", "ProcessLoginRejected", "login", "relogin", "revalidate"]

#: LS_RJT reasons that mean "not now": the request is sent again after a back-off
RETRY_REASONS = frozenset({LsRjtReason.LOGICAL_BUSY, LsRjtReason.COMMAND_ALREADY_IN_PROGRESS})


class ProcessLoginRejected(ElsRejected):
    """PRLI answered LS_ACC whose FCP page did not establish the image pair."""

    def __init__(self, code: int) -> None:
        self.response_code = PrliResponseCode(code)
        Exception.__init__(self, f"PRLI not accepted: response code "
                                 f"{names.label(self.response_code)}")
        self.rjt = LsRjt(LsRjtReason.UNABLE_TO_PERFORM)


class _Backoff:
    """The waits of one login; raises the LS_RJT once they are spent."""

    def __init__(self, policy: LoginPolicy) -> None:
        self._delays: Iterator[float] = policy.delays()
        self.attempts = 1
        self.waited = 0.0

    def next(self, what: str, rjt: LsRjt) -> float:
        delay = next(self._delays, None)
        if delay is None:
            exc = ElsRejected(what, rjt)
            exc.args = (f"{exc} (sent {self.attempts} times over {self.waited:g} s)",)
            raise exc
        self.attempts += 1
        self.waited += delay
        return delay


def _rjt(reply: bytes) -> LsRjt | None:
    if reply[:1] == bytes([ElsCommand.LS_RJT]):
        return LsRjt.decode(reply)
    return None


async def login(nexus: ITNexus) -> None:
    """PLOGI (unless a login is in place) and PRLI to the nexus's target (module
    docstring); ElsRejected when the target will not have us, TimeoutError when it does
    not answer."""
    seen = nexus._logins_done
    async with nexus._login_lock:
        if nexus._logins_done != seen and nexus.logged_in and not nexus.lost:
            return  # somebody else logged in while we waited
        await _login(nexus)
        nexus._logins_done += 1


async def _login(nexus: ITNexus) -> None:
    port = nexus.port
    backoff = _Backoff(port.login_policy)
    while True:
        entry = port.logins.get(nexus.target_fcid)
        if not entry.logged_in:
            await _plogi(nexus, entry, backoff)
        _take_parameters(nexus, entry)
        epoch = entry.epoch
        if not await _prli(nexus, entry, backoff):
            continue  # the target forgot the N_Port login: PLOGI again
        if entry.epoch != epoch or not entry.logged_in:
            # the target logged in to us again (or out) while our PRLI was under way
            backoff.next("PRLI", LsRjt(LsRjtReason.LOGICAL_BUSY))
            continue
        nexus.logged_in = True
        nexus.lost = False
        return


async def _plogi(nexus: ITNexus, entry: RemoteLogin, backoff: _Backoff) -> None:
    port = nexus.port
    payload = ServiceParameters.plogi(port.wwpn, port.wwnn,
                                      receive_data_field_size=port.hl.frame_size).encode()
    while True:
        entry.plogi_pending = True
        try:
            reply = await port.els(nexus.target_fcid, payload)
        finally:
            entry.plogi_pending = False
        rjt = _rjt(reply)
        if rjt is None:
            entry.logged_in_by_plogi(ServiceParameters.decode(reply))
            return
        if entry.logged_in:
            # the target's own PLOGI won the collision and we accepted it: logged in
            port.log.info("PLOGI rejected, but the target logged in to us",
                          target=nexus.target_wwpn, reason=rjt.reason,
                          explanation=rjt.explanation)
            return
        if rjt.reason not in RETRY_REASONS:
            raise ElsRejected("PLOGI", rjt)
        delay = backoff.next("PLOGI", rjt)
        port.log.info("PLOGI rejected, will retry", target=nexus.target_wwpn,
                      reason=rjt.reason, explanation=rjt.explanation, delay=delay)
        await entry.wait_change(delay)
        if entry.logged_in:
            return


def _take_parameters(nexus: ITNexus, entry: RemoteLogin) -> None:
    """The target's receive data field size (from whichever PLOGI made the login)."""
    sp = entry.parameters
    if sp is None:
        return
    sizes = [x for x in (sp.receive_data_field_size, sp.class3.receive_data_field_size) if x]
    nexus.target_receive_size = min([*sizes, nexus.port.hl.frame_size]) & ~3


async def _prli(nexus: ITNexus, entry: RemoteLogin, backoff: _Backoff) -> bool:
    """PRLI until the image pair stands (True), or the target wants a PLOGI (False)."""
    port = nexus.port
    page = ServiceParameterPage(type=FcType.FCP, establish_image_pair=True,
                                service_parameters=INITIATOR_PARAMETERS)
    while True:
        reply = await port.els(nexus.target_fcid, Prli((page,)).encode())
        rjt = _rjt(reply)
        if rjt is not None:
            if rjt.explanation == LsRjtExplanation.N_PORT_LOGIN_REQUIRED:
                entry.logged_out()
                backoff.next("PRLI", rjt)  # bounds PLOGI/PRLI rounds
                return False
            if rjt.reason not in RETRY_REASONS:
                raise ElsRejected("PRLI", rjt)
            delay = backoff.next("PRLI", rjt)
            port.log.info("PRLI rejected, will retry", target=nexus.target_wwpn,
                          reason=rjt.reason, explanation=rjt.explanation, delay=delay)
            await trio.sleep(delay)
            continue
        try:
            acc = Prli.decode(reply)
        except DecodeError:
            raise ProcessLoginRejected(PrliResponseCode.INVALID_SERVICE_PARAMETERS) from None
        fcp = [p for p in acc.pages if p.type == FcType.FCP]
        code = fcp[0].response_code if fcp else PrliResponseCode.NOT_SET
        if code in (PrliResponseCode.REQUEST_EXECUTED,
                    PrliResponseCode.REQUEST_EXECUTED_CONDITIONALLY):
            entry.image_pair = True
            entry.touch()
            return True
        if code == PrliResponseCode.INITIALIZATION_NOT_COMPLETE:
            delay = backoff.next("PRLI", LsRjt(LsRjtReason.LOGICAL_BUSY))
            await trio.sleep(delay)
            continue
        raise ProcessLoginRejected(code)


async def revalidate(nexus: ITNexus) -> None:
    """After an RSCN, or when the target ended the session: find the target port again
    (it may have a new N_Port_ID) and log in again if the session is gone."""
    from .scsi import _find

    nexus.stale = False
    fcid = await _find(nexus.port, nexus.target_wwpn)
    if fcid != nexus.target_fcid or nexus.lost or not nexus.logged_in:
        if fcid != nexus.target_fcid:
            nexus.logged_in = False
        nexus.target_fcid = fcid
        nexus.port.log.info("logging in to the target again", target=nexus.target_wwpn,
                            d_id=fcid)
        await login(nexus)


async def relogin(nexus: ITNexus) -> None:
    """Log the nexus in again after an implicit logout (a background task: failures are
    logged, and the next command tries again)."""
    if nexus.closed:
        return
    try:
        await login(nexus)
    except (ElsRejected, TimeoutError, ConnectionError, DecodeError) as exc:
        nexus.port.log.info("logging in again failed", target=nexus.target_wwpn,
                            reason=str(exc))
