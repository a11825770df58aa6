"""SPC-2 RESERVE / RELEASE on their own and beside persistent reservations, CRH=1
(SPC-4 5.14.3, docs/behaviour.md 3)."""

from __future__ import annotations

from functools import partial

from .. import commands as c
from ..commands import PrIn, PrOut, PrType
from ..runner import (
    CONFLICT,
    CaseSkipped,
    Context,
    expect,
)
from .base import (
    add,
    case,
    tname,
)

# =============================================================================================
# SPC-2 RESERVE / RELEASE, and with persistent reservations (SPC-4 5.14.3, docs/behaviour.md 3)
# =============================================================================================


@case("spc2.reserve-release", initiators=2)
async def _spc2_basic(ctx: Context) -> None:
    """RESERVE(6) and RELEASE(6) by one nexus, then the other may reserve."""
    expect(await ctx.a.scsi(c.reserve_6()), step="RESERVE(6) from A")
    expect(await ctx.a.scsi(c.reserve_6()), step="RESERVE(6) again from the holder A")
    expect(await ctx.a.scsi(c.release_6()), step="RELEASE(6) from A")
    expect(await ctx.b.scsi(c.reserve_6()), step="RESERVE(6) from B after A released")
    expect(await ctx.b.scsi(c.release_6()), step="RELEASE(6) from B")


@case("spc2.reserve-10", initiators=2)
async def _spc2_ten(ctx: Context) -> None:
    """RESERVE(10) and RELEASE(10) work as the 6-byte forms."""
    expect(await ctx.a.scsi(c.reserve_10()), step="RESERVE(10) from A")
    expect(await ctx.b.scsi(c.reserve_10()), CONFLICT, step="RESERVE(10) from B")
    expect(await ctx.a.scsi(c.release_10()), step="RELEASE(10) from A")
    expect(await ctx.b.scsi(c.reserve_10()), step="RESERVE(10) from B after A released")


@case("spc2.conflicts", initiators=2)
async def _spc2_conflicts(ctx: Context) -> None:
    """Under RESERVE(6): the holder does anything; others conflict but for INQUIRY."""
    expect(await ctx.a.scsi(c.reserve_6()), step="RESERVE(6) from A")
    expect(await ctx.a.scsi(c.read_10(ctx.scratch_lba), data_in=ctx.block_size),
           step="READ(10) from the holder A")
    expect(await ctx.write_block(ctx.a), step="WRITE(10) from the holder A")
    expect(await ctx.b.scsi(c.inquiry(96), data_in=96), step="INQUIRY from B")
    expect(await ctx.b.scsi(c.read_10(ctx.scratch_lba), data_in=ctx.block_size), CONFLICT,
           step="READ(10) from B")
    expect(await ctx.write_block(ctx.b), CONFLICT, step="WRITE(10) from B")
    expect(await ctx.b.scsi(c.reserve_6()), CONFLICT, step="RESERVE(6) from B")


@case("spc2.release-by-other", initiators=2)
async def _spc2_release_other(ctx: Context) -> None:
    """RELEASE(6) from a non-holder: GOOD and nothing is released."""
    expect(await ctx.a.scsi(c.reserve_6()), step="RESERVE(6) from A")
    expect(await ctx.b.scsi(c.release_6()), step="RELEASE(6) from B")
    expect(await ctx.write_block(ctx.b), CONFLICT, step="WRITE(10) from B after its RELEASE")


@case("spc2.blocks-persistent-reservations", initiators=2)
async def _spc2_blocks_pr(ctx: Context) -> None:
    """Under RESERVE(6), PR IN and PR OUT conflict for everyone, holder too (SPC-2 5.5.1)."""
    expect(await ctx.a.scsi(c.reserve_6()), step="RESERVE(6) from A")
    for port in (ctx.a, ctx.b):
        expect(await port.prin(PrIn.READ_KEYS), CONFLICT,
               step=f"PERSISTENT RESERVE IN from {port.label}")
        expect(await port.prout(PrOut.REGISTER, sa_key=port.key), CONFLICT,
               step=f"PERSISTENT RESERVE OUT REGISTER from {port.label}")


@case("spc2.released-on-logout", initiators=2)
async def _spc2_logout(ctx: Context) -> None:
    """An I_T nexus loss (LOGO) releases that nexus's RESERVE(6) (docs/behaviour.md 3)."""
    expect(await ctx.a.scsi(c.reserve_6()), step="RESERVE(6) from A")
    await ctx.a.logout_and_login()
    expect(await ctx.write_block(ctx.b), step="WRITE(10) from B after A logged out")
    expect(await ctx.b.scsi(c.reserve_6()), step="RESERVE(6) from B after A logged out")


async def _needs_crh(ctx: Context) -> None:
    if not (await ctx.capabilities()).crh:
        raise CaseSkipped("REPORT CAPABILITIES says CRH=0")


@case("spc2.crh.holder")
async def _crh_holder(ctx: Context) -> None:
    """CRH: RESERVE/RELEASE(6) from the PR holder: GOOD, no SPC-2 reservation made."""
    await _needs_crh(ctx)
    await ctx.setup(ctx.a, PrType.WR_EX)
    expect(await ctx.a.scsi(c.reserve_6()), step="RESERVE(6) from the WR EX holder A")
    expect(await ctx.a.prin(PrIn.READ_KEYS), step="PR IN from A (no SPC-2 reservation made)")
    expect(await ctx.a.scsi(c.release_6()), step="RELEASE(6) from the holder A")
    await ctx.expect_held("READ RESERVATION after it (unchanged)", PrType.WR_EX, ctx.a.key)


async def _crh_registrant(ctx: Context, pr_type: PrType) -> None:
    await _needs_crh(ctx)
    await ctx.setup(ctx.a, pr_type, [ctx.b])
    expect(await ctx.b.scsi(c.reserve_6()), step=f"RESERVE(6) from registrant B under "
                                                 f"{tname(pr_type)}")
    expect(await ctx.b.prin(PrIn.READ_KEYS), step="PR IN from B (no SPC-2 reservation made)")
    expect(await ctx.b.scsi(c.release_6()), step="RELEASE(6) from registrant B")
    await ctx.expect_held("READ RESERVATION after it (unchanged)", pr_type,
                          0 if pr_type.all_registrants else ctx.a.key)


for _t in (PrType.WR_EX_RO, PrType.EX_AC_RO, PrType.WR_EX_AR, PrType.EX_AC_AR):
    add(f"spc2.crh.registrant.type-{int(_t)}", partial(_crh_registrant, pr_type=_t),
        initiators=2, summary=f"CRH: RESERVE/RELEASE(6) from a registrant under {tname(_t)} "
                              "is GOOD and does nothing")


@case("spc2.crh.registered-non-holder", initiators=2)
async def _crh_non_holder(ctx: Context) -> None:
    """CRH: RESERVE/RELEASE(6) from a registered non-holder under type 1: CONFLICT."""
    await _needs_crh(ctx)
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    expect(await ctx.b.scsi(c.reserve_6()), CONFLICT, step="RESERVE(6) from registered B")
    expect(await ctx.b.scsi(c.release_6()), CONFLICT, step="RELEASE(6) from registered B")


@case("spc2.crh.unregistered", initiators=2)
async def _crh_unregistered(ctx: Context) -> None:
    """CRH: RESERVE/RELEASE(6) from an unregistered nexus while registrations exist: CONFLICT."""
    await _needs_crh(ctx)
    await ctx.setup(ctx.a, PrType.WR_EX_RO)
    expect(await ctx.b.scsi(c.reserve_6()), CONFLICT, step="RESERVE(6) from unregistered B")
    expect(await ctx.b.scsi(c.release_6()), CONFLICT, step="RELEASE(6) from unregistered B")


@case("spc2.crh.registered-no-reservation")
async def _crh_no_res(ctx: Context) -> None:
    """CRH: RESERVE(6) from a registered nexus with nothing reserved: CONFLICT."""
    await _needs_crh(ctx)
    await ctx.register(ctx.a)
    expect(await ctx.a.scsi(c.reserve_6()), CONFLICT, step="RESERVE(6) from registered A")
