"""Unit attentions: who hears of CLEAR, RELEASE, PREEMPT and unregistering, and how they
are reported (SPC-4 5.14, docs/behaviour.md 3)."""

from __future__ import annotations

from functools import partial

from .. import commands as c
from ..commands import PR_TYPES, PrOut, PrType
from ..runner import (
    Context,
    expect,
    expect_equal,
)
from .base import (
    COMMANDS_CLEARED,
    REGISTRATIONS_PREEMPTED,
    RESERVATIONS_PREEMPTED,
    RESERVATIONS_RELEASED,
    add,
    case,
    sa_name,
    tname,
)

# =============================================================================================
# Unit attentions: who hears of what (SPC-4 5.14)
# =============================================================================================


@case("ua.clear", initiators=3)
async def _ua_clear(ctx: Context) -> None:
    """CLEAR: 2A/03 RESERVATIONS PREEMPTED to every other registered nexus, nobody else."""
    await ctx.setup(ctx.a, PrType.WR_EX_RO, [ctx.b])
    expect(await ctx.a.prout(PrOut.CLEAR, key=ctx.a.key), step="CLEAR from A")
    await ctx.expect_uas("unit attentions after CLEAR",
                         {ctx.a: [], ctx.b: [RESERVATIONS_PREEMPTED], ctx.c: []})


async def _ua_release(ctx: Context, pr_type: PrType) -> None:
    await ctx.setup(ctx.a, pr_type, [ctx.b])
    expect(await ctx.a.prout(PrOut.RELEASE, key=ctx.a.key, type=pr_type),
           step=f"RELEASE {tname(pr_type)} from A")
    told = [RESERVATIONS_RELEASED] if pr_type >= PrType.WR_EX_RO else []
    await ctx.expect_uas(f"unit attentions after RELEASE of {tname(pr_type)}",
                         {ctx.a: [], ctx.b: told, ctx.c: []})


for _t in PR_TYPES:
    add(f"ua.release.type-{int(_t)}", partial(_ua_release, pr_type=_t), initiators=3,
        summary=(f"RELEASE of {tname(_t)}: " + ("2A/04 to the other registrants"
                                                  if _t >= PrType.WR_EX_RO else "no UA")))


async def _ua_preempt(ctx: Context, sa: PrOut, new_type: PrType) -> None:
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b, ctx.c])
    expect(await ctx.b.prout(sa, key=ctx.b.key, sa_key=ctx.a.key, type=new_type),
           step=f"{sa_name(sa)} {tname(new_type)} from B naming the holder A")
    changed = [RESERVATIONS_RELEASED] if new_type != PrType.WR_EX else []
    await ctx.expect_uas(f"unit attentions after {sa_name(sa)}",
                         {ctx.a: [REGISTRATIONS_PREEMPTED], ctx.b: [], ctx.c: changed},
                         tolerate=[COMMANDS_CLEARED] if sa == PrOut.PREEMPT_AND_ABORT else [])


add("ua.preempt", partial(_ua_preempt, sa=PrOut.PREEMPT, new_type=PrType.WR_EX),
    initiators=3, summary="PREEMPT: 2A/05 to the preempted nexus only")
add("ua.preempt.type-change", partial(_ua_preempt, sa=PrOut.PREEMPT, new_type=PrType.EX_AC),
    initiators=3, summary="PREEMPT changing the type: also 2A/04 to the other registrants")
add("ua.preempt-and-abort", partial(_ua_preempt, sa=PrOut.PREEMPT_AND_ABORT,
                                    new_type=PrType.WR_EX),
    initiators=3, summary="PREEMPT AND ABORT: 2A/05 to the preempted nexus")


@case("ua.preempt.registration-only", initiators=3)
async def _ua_preempt_reg(ctx: Context) -> None:
    """PREEMPT of a non-holder's key: 2A/05 to it, nothing to the holder."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b, ctx.c])
    expect(await ctx.b.prout(PrOut.PREEMPT, key=ctx.b.key, sa_key=ctx.c.key, type=PrType.WR_EX),
           step="PREEMPT from B naming C")
    await ctx.expect_uas("unit attentions after PREEMPT",
                         {ctx.a: [], ctx.b: [], ctx.c: [REGISTRATIONS_PREEMPTED]})


@case("ua.preempt.all-registrants", initiators=3)
async def _ua_preempt_ar(ctx: Context) -> None:
    """PREEMPT key 0 under type 7: 2A/05 to every other registrant."""
    await ctx.setup(ctx.a, PrType.WR_EX_AR, [ctx.b, ctx.c])
    expect(await ctx.b.prout(PrOut.PREEMPT, key=ctx.b.key, sa_key=0, type=PrType.WR_EX_AR),
           step="PREEMPT key 0 from B under WR EX AR")
    await ctx.expect_uas("unit attentions after PREEMPT",
                         {ctx.a: [REGISTRATIONS_PREEMPTED], ctx.b: [],
                          ctx.c: [REGISTRATIONS_PREEMPTED]})


async def _ua_holder_unregisters(ctx: Context, pr_type: PrType) -> None:
    await ctx.setup(ctx.a, pr_type, [ctx.b])
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key, sa_key=0),
           step=f"the {tname(pr_type)} holder A unregisters")
    told = [RESERVATIONS_RELEASED] if pr_type.registrants_only else []
    await ctx.expect_uas("unit attentions after it", {ctx.a: [], ctx.b: told, ctx.c: []})


for _t in PR_TYPES:
    add(f"ua.holder-unregisters.type-{int(_t)}", partial(_ua_holder_unregisters, pr_type=_t),
        initiators=3, summary=(f"the {tname(_t)} holder unregistering: "
                               + ("2A/04 to the other registrants" if _t.registrants_only
                                  else "no UA")))


@case("ua.none-for-register-reserve", initiators=3)
async def _ua_none(ctx: Context) -> None:
    """REGISTER, key changes and RESERVE tell nobody anything."""
    await ctx.setup(ctx.a, PrType.EX_AC_RO, [ctx.b])
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key, sa_key=ctx.a.key + 0x100),
           step="the holder A changes its key")
    await ctx.expect_uas("unit attentions after REGISTER, RESERVE and a key change",
                         {ctx.a: [], ctx.b: [], ctx.c: []})


@case("ua.inquiry-not-blocked", initiators=2)
async def _ua_inquiry(ctx: Context) -> None:
    """A pending UA does not block INQUIRY or REPORT LUNS, nor do they clear it (SAM-5 5.14)."""
    await ctx.setup(ctx.a, PrType.WR_EX_RO, [ctx.b])
    expect(await ctx.a.prout(PrOut.CLEAR, key=ctx.a.key), step="CLEAR from A")
    expect(await ctx.b.scsi(c.inquiry(96), data_in=96), step="INQUIRY from B (2A/03 pending)")
    expect(await ctx.b.scsi(c.report_luns(), data_in=4096),
           step="REPORT LUNS from B (2A/03 pending)")
    await ctx.expect_uas("unit attentions of B after INQUIRY and REPORT LUNS",
                         {ctx.b: [RESERVATIONS_PREEMPTED]})


@case("ua.reported-one-at-a-time", initiators=2)
async def _ua_one_at_a_time(ctx: Context) -> None:
    """Reporting a UA clears only that one: 2A/04 then 2A/03 (SAM-5 5.14)."""
    await ctx.setup(ctx.a, PrType.WR_EX_RO, [ctx.b])
    expect(await ctx.a.prout(PrOut.RELEASE, key=ctx.a.key, type=PrType.WR_EX_RO),
           step="RELEASE WR EX RO from A")
    expect(await ctx.a.prout(PrOut.CLEAR, key=ctx.a.key), step="CLEAR from A")
    got = await ctx.b.drain_uas()
    expect_equal("unit attentions of B, in the order reported",
                 "2A/04, 2A/03", ", ".join(f"{x:02X}/{y:02X}" for x, y in got) or "none")
