"""Reservations across two target ports of one array (--target2): one LU behind both ports
has one reservation state, while an I_T nexus is (initiator port, target port), so a
registration made through one port is not one through the other unless ALL_TG_PT said so
(SPC-4 5.14.1, 5.14.7, 6.16). A2 and B2 are initiators A and B through the second port."""

from __future__ import annotations

from .. import commands as c
from ..commands import PrOut, PrType
from ..runner import CONFLICT, Context, expect, expect_equal
from .base import REGISTRATIONS_PREEMPTED, RESERVATIONS_PREEMPTED, RESERVATIONS_RELEASED, case

# =============================================================================================
# One LU, one reservation state; registrations per I_T nexus (SPC-4 5.14.1, 5.14.7)
# =============================================================================================


@case("multiport.registration-is-per-nexus", second_port=True)
async def _per_nexus(ctx: Context) -> None:
    """A registration through one port shows through the other, but is not that nexus's."""
    await ctx.register(ctx.a)
    await ctx.expect_keys("READ KEYS through port 1", [ctx.a.key])
    keys = (await ctx.keys(via=ctx.a2)).keys
    expect_equal("READ KEYS from A2 through port 2", [ctx.a.key], list(keys))
    expect(await ctx.a2.prout(PrOut.RESERVE, key=ctx.a.key, type=PrType.WR_EX), CONFLICT,
           step="RESERVE from A2 (A is registered through port 1 only)")
    await ctx.register(ctx.a2)
    await ctx.expect_keys("READ KEYS after A2 registers too (one key per nexus)",
                          [ctx.a.key, ctx.a.key])


@case("multiport.reservation-is-shared", initiators=2, second_port=True)
async def _shared(ctx: Context) -> None:
    """A reservation taken through port 1 binds B through port 2 (WRITE conflicts)."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b2])
    held = await ctx.held(via=ctx.b2)
    expect_equal("READ RESERVATION from B2 through port 2", (True, PrType.WR_EX, ctx.a.key),
                 (held.reserved, held.type, held.key))
    expect(await ctx.b2.scsi(c.write_10(ctx.scratch_lba), data_out=ctx.block()), CONFLICT,
           step="WRITE(10) from registered B2 under A's WRITE EXCLUSIVE")
    expect(await ctx.b2.scsi(c.read_10(ctx.scratch_lba), data_in=ctx.block_size),
           step="READ(10) from B2 under WRITE EXCLUSIVE")
    expect(await ctx.a.scsi(c.write_10(ctx.scratch_lba), data_out=ctx.block()),
           step="WRITE(10) from the holder A through port 1")


@case("multiport.holder-is-a-nexus", second_port=True)
async def _holder_nexus(ctx: Context) -> None:
    """The holder through port 1 is not the holder through port 2: its WRITE there conflicts."""
    await ctx.setup(ctx.a, PrType.EX_AC)
    expect(await ctx.a2.scsi(c.write_10(ctx.scratch_lba), data_out=ctx.block()), CONFLICT,
           step="WRITE(10) from A2 (A holds EXCLUSIVE ACCESS through port 1)")
    expect(await ctx.a.scsi(c.write_10(ctx.scratch_lba), data_out=ctx.block()),
           step="WRITE(10) from the holder A")


# =============================================================================================
# Service actions from one port acting on nexuses of the other (SPC-4 5.14.11)
# =============================================================================================


@case("multiport.preempt", initiators=2, second_port=True)
async def _preempt(ctx: Context) -> None:
    """PREEMPT through port 2 of a holder on port 1: B2 holds, A hears 2A/05."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b2])
    g = await ctx.generation()
    expect(await ctx.b2.prout(PrOut.PREEMPT, key=ctx.b.key, sa_key=ctx.a.key,
                              type=PrType.WR_EX),
           step="PREEMPT from B2 naming the holder A's key")
    await ctx.expect_uas("unit attentions after the PREEMPT",
                         {ctx.a: [REGISTRATIONS_PREEMPTED], ctx.b2: []})
    await ctx.expect_held("READ RESERVATION after the PREEMPT", PrType.WR_EX, ctx.b.key)
    await ctx.expect_keys("READ KEYS after the PREEMPT", [ctx.b.key])
    await ctx.expect_generation("PRGENERATION after the PREEMPT", g, +1)


@case("multiport.release", initiators=2, second_port=True)
async def _release(ctx: Context) -> None:
    """RELEASE of a registrants-only reservation through port 1: B2 hears 2A/04."""
    await ctx.setup(ctx.a, PrType.WR_EX_RO, [ctx.b2])
    expect(await ctx.a.prout(PrOut.RELEASE, key=ctx.a.key, type=PrType.WR_EX_RO),
           step="RELEASE from the holder A")
    await ctx.expect_uas("unit attentions after the RELEASE",
                         {ctx.b2: [RESERVATIONS_RELEASED], ctx.a: []})
    await ctx.expect_held("READ RESERVATION after the RELEASE", None)


@case("multiport.clear", initiators=2, second_port=True)
async def _clear(ctx: Context) -> None:
    """CLEAR through port 2 removes the registrations of port 1; A hears 2A/03."""
    await ctx.setup(ctx.a, PrType.EX_AC, [ctx.b2])
    expect(await ctx.b2.prout(PrOut.CLEAR, key=ctx.b.key), step="CLEAR from B2")
    await ctx.expect_uas("unit attentions after the CLEAR",
                         {ctx.a: [RESERVATIONS_PREEMPTED], ctx.b2: []})
    await ctx.expect_keys("READ KEYS after the CLEAR", [])
    await ctx.expect_held("READ RESERVATION after the CLEAR", None)


@case("multiport.all-target-ports", second_port=True)
async def _all_tg_pt(ctx: Context) -> None:
    """REGISTER with ALL_TG_PT=1 through port 1 registers A through port 2 too."""
    if not (await ctx.capabilities()).atp_c:
        expect(await ctx.a.prout(PrOut.REGISTER, sa_key=ctx.a.key, flags=c.ALL_TG_PT),
               status=0x02, step="REGISTER ALL_TG_PT=1 where ATP_C=0")
        return
    expect(await ctx.a.prout(PrOut.REGISTER, sa_key=ctx.a.key, flags=c.ALL_TG_PT),
           step="REGISTER with ALL_TG_PT=1 from A")
    expect(await ctx.a2.prout(PrOut.RESERVE, key=ctx.a.key, type=PrType.WR_EX),
           step="RESERVE from A2 with the key registered through every port")
    await ctx.expect_held("READ RESERVATION after A2's RESERVE", PrType.WR_EX, ctx.a.key)


@case("multiport.register-and-move", initiators=2, second_port=True)
async def _move(ctx: Context) -> None:
    """REGISTER AND MOVE from port 1 to B through port 2's RELATIVE TARGET PORT ID."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    rtpi = await ctx.relative_port(second=True)
    params = c.move_parameters(ctx.a.key, ctx.b.key, rtpi, ctx.b.wwpn)
    expect(await ctx.a.prout(PrOut.REGISTER_AND_MOVE, parameters=params),
           step=f"REGISTER AND MOVE from A to B through relative port {rtpi}")
    await ctx.expect_held("READ RESERVATION after the move", PrType.WR_EX, ctx.b.key)
    expect(await ctx.b2.scsi(c.write_10(ctx.scratch_lba), data_out=ctx.block()),
           step="WRITE(10) from the new holder B2")
    expect(await ctx.b.prout(PrOut.RESERVE, key=ctx.b.key, type=PrType.WR_EX), CONFLICT,
           step="RESERVE from B through port 1 (not the nexus the reservation moved to)")
