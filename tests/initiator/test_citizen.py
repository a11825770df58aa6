"""The initiator library as an N_Port that FC-LS-3 and FCP-4 can live with, against a
scripted peer (tests/initiator/peer.py) on trio's autojump clock: what it answers to the
ELS requests of other ports, implicit logout, PLOGI collisions, the back-off on busy, and
logging in again after the target ends the session."""

from __future__ import annotations

import pytest
import trio

from fcsoft.initiator import ElsRejected
from fcsoft.initiator.els_server import LoginPolicy
from fcsoft.wire.els import (
    Adisc,
    Echo,
    ElsCommand,
    FcpServiceParameters,
    Logo,
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
from fcsoft.wire.header import FcType
from fcsoft.wire.wwn import WWN

from .peer import FAST, PEER_FCID, PEER_WWNN, PEER_WWPN, ScriptedFabric, open_scripted

HIGH_WWPN = WWN("c0:50:76:00:00:00:00:07")  # an NPIV vport's name: higher than the peer's
BUSY = LsRjt(LsRjtReason.LOGICAL_BUSY).encode()
IN_PROGRESS = LsRjt(LsRjtReason.COMMAND_ALREADY_IN_PROGRESS).encode()
GUARD = 600  # virtual seconds: a hang guard only


def plogi_from_peer() -> bytes:
    return ServiceParameters.plogi(PEER_WWPN, PEER_WWNN).encode()


def prli_from_target(ftype: int = FcType.FCP) -> bytes:
    page = ServiceParameterPage(type=ftype, establish_image_pair=True,
                                service_parameters=FcpServiceParameters.INITIATOR_FUNCTION
                                | FcpServiceParameters.TARGET_FUNCTION)
    return Prli((page,)).encode()


def command(frame) -> int:
    return frame.payload[0] if frame.header.type == FcType.ELS else -1


async def test_plogi_from_any_port_is_accepted_with_our_service_parameters(autojump_clock):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            acc = await fabric.request(host.fcid, plogi_from_peer())
        ours = ServiceParameters.plogi(host.wwpn, host.wwnn, command=ElsCommand.LS_ACC,
                                       receive_data_field_size=host.hl.frame_size)
        assert acc == ours.encode()
        sp = ServiceParameters.decode(acc)
        assert sp.port_name == host.wwpn and sp.class3.valid
        entry = host.logins.get(PEER_FCID)
        assert entry.logged_in and entry.port_name == PEER_WWPN


async def test_prli_from_a_target_is_answered_as_an_initiator(autojump_clock):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            # before any PLOGI: FC-LS-3 "N_Port login required"
            rjt = LsRjt.decode(await fabric.request(host.fcid, prli_from_target()))
            assert (rjt.reason, rjt.explanation) == (LsRjtReason.UNABLE_TO_PERFORM,
                                                     LsRjtExplanation.N_PORT_LOGIN_REQUIRED)
            await fabric.request(host.fcid, plogi_from_peer())
            acc = Prli.decode(await fabric.request(host.fcid, prli_from_target()))
            (page,) = acc.pages
            assert acc.command == ElsCommand.LS_ACC
            assert page.type == FcType.FCP
            assert page.response_code == PrliResponseCode.REQUEST_EXECUTED
            assert page.establish_image_pair  # "image pair established"
            assert page.service_parameters & FcpServiceParameters.INITIATOR_FUNCTION
            assert not page.service_parameters & FcpServiceParameters.TARGET_FUNCTION
            assert host.logins.get(PEER_FCID).image_pair
            # an FC-4 type we are not: the page says so, the login stays
            other = Prli.decode(await fabric.request(host.fcid, prli_from_target(0x05)))
            assert other.pages[0].response_code == PrliResponseCode.CONFIGURATION_PRECLUDES
            assert host.logins.get(PEER_FCID).logged_in


async def test_discovery_and_timer_requests_are_answered(autojump_clock):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            await fabric.request(host.fcid, plogi_from_peer())
            adisc = Adisc.decode(await fabric.request(
                host.fcid, Adisc(0, PEER_WWPN, PEER_WWNN, PEER_FCID).encode()))
            assert (adisc.command, adisc.port_id, adisc.port_name, adisc.node_name) == (
                ElsCommand.LS_ACC, host.fcid, host.wwpn, host.wwnn)
            rtv = RtvAccept.decode(await fabric.request(host.fcid, bytes([0x0E, 0, 0, 0])))
            assert (rtv.r_a_tov, rtv.e_d_tov) == (10000, 2000)
            echo = Echo.decode(await fabric.request(host.fcid, Echo(b"hello!!!").encode()))
            assert echo.data == b"hello!!!"
            pdisc = ServiceParameters.decode(await fabric.request(
                host.fcid, bytes([ElsCommand.PDISC]) + plogi_from_peer()[1:]))
            assert pdisc.port_name == host.wwpn
            rnid = LsRjt.decode(await fabric.request(host.fcid, bytes([0x78]) + bytes(7)))
            assert rnid.reason == LsRjtReason.COMMAND_NOT_SUPPORTED
            # LOGO ends the login: ADISC now needs a PLOGI first
            await fabric.request(host.fcid, Logo(PEER_FCID, PEER_WWPN).encode())
            rjt = LsRjt.decode(await fabric.request(
                host.fcid, Adisc(0, PEER_WWPN, PEER_WWNN, PEER_FCID).encode()))
            assert rjt.explanation == LsRjtExplanation.N_PORT_LOGIN_REQUIRED


async def test_plogi_from_a_logged_in_target_is_an_implicit_logout_then_prli(autojump_clock):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(fabric.login_target)
                async with host.connect(PEER_WWPN) as it:
                    assert it.logged_in
                    acc = await fabric.request(host.fcid, plogi_from_peer())
                    assert acc[0] == ElsCommand.LS_ACC
                    # the login the target ended: PRLI again, at once and without a PLOGI
                    # (the target's PLOGI is the N_Port login now)
                    again = await fabric.next()
                    assert command(again) == ElsCommand.PRLI
                    fabric.accept_prli(again)
                    seen: list[int] = []

                    async def target() -> None:
                        frame = await fabric.next()
                        seen.append(command(frame))
                        fabric.fcp_good(frame)
                        seen.append(command(await fabric.next()))

                    nursery.start_soon(target)
                    assert (await it.test_unit_ready()).good
                    assert it.logged_in and not it.lost
            assert seen == [-1, ElsCommand.LOGO]  # the command, and LOGO at the end


async def test_plogi_collision_the_higher_port_name_wins_theirs(autojump_clock):
    """The target's name is the higher: we accept its PLOGI, it rejects ours with "command
    already in progress", and we go on with PRLI on its login."""
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            async with trio.open_nursery() as nursery:
                async def peer() -> None:
                    ours = await fabric.next(ElsCommand.PLOGI)
                    acc = await fabric.request(host.fcid, plogi_from_peer())
                    assert acc[0] == ElsCommand.LS_ACC  # the lower name answers
                    fabric.reply(ours, IN_PROGRESS)
                    prli = await fabric.next()
                    assert command(prli) == ElsCommand.PRLI  # no second PLOGI
                    fabric.accept_prli(prli)

                nursery.start_soon(peer)
                async with host.connect(PEER_WWPN) as it:
                    assert it.logged_in
                    nursery.start_soon(lambda: fabric.next(ElsCommand.LOGO))
    assert host.els_server.counters["plogi_collision_lost"] == 1


async def test_plogi_collision_the_higher_port_name_wins_ours(autojump_clock):
    """Our name is the higher: their PLOGI gets LS_RJT "command already in progress" and
    ours stands."""
    async with open_scripted(HIGH_WWPN) as (host, fabric):
        with trio.fail_after(GUARD):
            async with trio.open_nursery() as nursery:
                async def peer() -> None:
                    ours = await fabric.next(ElsCommand.PLOGI)
                    rjt = LsRjt.decode(await fabric.request(host.fcid, plogi_from_peer()))
                    assert rjt.reason == LsRjtReason.COMMAND_ALREADY_IN_PROGRESS
                    fabric.accept_plogi(ours)
                    fabric.accept_prli(await fabric.next(ElsCommand.PRLI))

                nursery.start_soon(peer)
                async with host.connect(PEER_WWPN) as it:
                    assert it.logged_in
                    nursery.start_soon(lambda: fabric.next(ElsCommand.LOGO))
    assert host.els_server.counters["plogi_collision_won"] == 1


@pytest.mark.parametrize("reject", [BUSY, IN_PROGRESS], ids=["logical-busy", "in-progress"])
async def test_busy_plogi_is_sent_again_after_a_back_off(autojump_clock, reject):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            arrivals: list[float] = []

            async def peer() -> None:
                for _ in range(3):
                    frame = await fabric.next(ElsCommand.PLOGI)
                    arrivals.append(trio.current_time())
                    fabric.reply(frame, reject)
                frame = await fabric.next(ElsCommand.PLOGI)
                arrivals.append(trio.current_time())
                fabric.accept_plogi(frame)
                fabric.accept_prli(await fabric.next(ElsCommand.PRLI))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer)
                async with host.connect(PEER_WWPN) as it:
                    assert it.logged_in
                    nursery.start_soon(lambda: fabric.next(ElsCommand.LOGO))
            # on the virtual clock, each PLOGI went out after the policy's next wait
            gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
            assert gaps == pytest.approx(list(FAST.delays())[:3])


async def test_busy_for_ever_gives_up_once_the_back_off_is_spent(autojump_clock):
    policy = LoginPolicy(e_d_tov=1.0, r_a_tov=3.0)
    async with open_scripted(policy=policy) as (host, fabric):
        with trio.fail_after(GUARD):
            attempts = 0

            async def peer() -> None:
                nonlocal attempts
                while True:
                    fabric.reply(await fabric.next(ElsCommand.PLOGI), BUSY)
                    attempts += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer)
                with pytest.raises(ElsRejected) as exc:
                    async with host.connect(PEER_WWPN):
                        pass
                nursery.cancel_scope.cancel()
    assert exc.value.rjt.reason == LsRjtReason.LOGICAL_BUSY
    assert attempts == len(list(policy.delays())) + 1
    assert f"sent {attempts} times" in str(exc.value)


async def test_prli_that_overtakes_our_plogi_accept_is_accepted(autojump_clock):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            async def peer() -> None:
                ours = await fabric.next(ElsCommand.PLOGI)
                acc = await fabric.request(host.fcid, prli_from_target())
                assert acc[0] == ElsCommand.LS_ACC
                fabric.accept_plogi(ours)
                fabric.accept_prli(await fabric.next(ElsCommand.PRLI))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer)
                async with host.connect(PEER_WWPN) as it:
                    assert it.logged_in
                    nursery.start_soon(lambda: fabric.next(ElsCommand.LOGO))


async def _connected_target_then(fabric: ScriptedFabric, host, ended: bytes,
                                 expect: list[int]) -> None:
    """Connect, let the target send `ended` (LOGO or PRLO), and check the next command
    logs in again first with the ELS commands `expect`, then runs."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(fabric.login_target)
        async with host.connect(PEER_WWPN) as it:
            acc = await fabric.request(host.fcid, ended)
            assert acc[0] == ElsCommand.LS_ACC
            assert it.lost
            seen: list[int] = []

            async def target() -> None:
                while True:
                    frame = await fabric.next()
                    seen.append(command(frame))
                    if command(frame) == ElsCommand.PLOGI:
                        fabric.accept_plogi(frame)
                    elif command(frame) == ElsCommand.PRLI:
                        fabric.accept_prli(frame)
                    else:
                        fabric.fcp_good(frame)
                        return

            nursery.start_soon(target)
            assert (await it.test_unit_ready()).good
            assert seen == [*expect, -1]
            nursery.start_soon(lambda: fabric.next(ElsCommand.LOGO))


async def test_logo_from_the_target_means_plogi_and_prli_before_the_next_command(
        autojump_clock):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            await _connected_target_then(fabric, host, Logo(PEER_FCID, PEER_WWPN).encode(),
                                         [ElsCommand.PLOGI, ElsCommand.PRLI])


async def test_prlo_from_the_target_means_prli_before_the_next_command(autojump_clock):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            prlo = Prlo((ServiceParameterPage(type=FcType.FCP),)).encode()
            await _connected_target_then(fabric, host, prlo, [ElsCommand.PRLI])


async def test_a_target_that_forgot_the_login_gets_a_plogi_again(autojump_clock):
    async with open_scripted() as (host, fabric):
        with trio.fail_after(GUARD):
            # the target logged in to us earlier (as LIO does on seeing a new initiator)
            await fabric.request(host.fcid, plogi_from_peer())

            async def peer() -> None:
                prli = await fabric.next()
                assert command(prli) == ElsCommand.PRLI  # a login is in place: no PLOGI
                fabric.reply(prli, LsRjt(LsRjtReason.UNABLE_TO_PERFORM,
                                         LsRjtExplanation.N_PORT_LOGIN_REQUIRED).encode())
                await fabric.login_target()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(peer)
                async with host.connect(PEER_WWPN) as it:
                    assert it.logged_in
                    nursery.start_soon(lambda: fabric.next(ElsCommand.LOGO))
