"""RESERVE, RELEASE and CLEAR (SPC-4 5.14.9, 5.14.11.2, 5.14.11.6)."""

from __future__ import annotations

from functools import partial

from ..commands import PR_TYPES, PrOut, PrType
from ..runner import (
    CHECK,
    CONFLICT,
    Context,
    expect,
)
from .base import (
    INVALID_RELEASE,
    add,
    case,
    tname,
)

# =============================================================================================
# RESERVE (SPC-4 5.14.9, 5.14.11.2, 5.14.11.6)
# =============================================================================================


async def _reserve_type(ctx: Context, pr_type: PrType) -> None:
    await ctx.register(ctx.a)
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.RESERVE, key=ctx.a.key, type=pr_type),
           step=f"RESERVE {tname(pr_type)} from registered A")
    await ctx.expect_held("READ RESERVATION after RESERVE", pr_type,
                          0 if pr_type.all_registrants else ctx.a.key)
    await ctx.expect_generation("PRGENERATION after RESERVE (SPC-4 6.15.2: unchanged)", g, 0)


for _t in PR_TYPES:
    add(f"pr-out.reserve.type-{int(_t)}", partial(_reserve_type, pr_type=_t),
        summary=f"RESERVE {tname(_t)}: held with that type; PRGENERATION unchanged")


@case("pr-out.reserve.unregistered")
async def _reserve_unregistered(ctx: Context) -> None:
    """RESERVE from an unregistered nexus, nothing reserved: CONFLICT (docs/behaviour.md 3)."""
    expect(await ctx.a.prout(PrOut.RESERVE, type=PrType.WR_EX), CONFLICT,
           step="RESERVE from unregistered A")
    await ctx.expect_held("READ RESERVATION after it", None)


@case("pr-out.reserve.wrong-key")
async def _reserve_wrong_key(ctx: Context) -> None:
    """RESERVE with a RESERVATION KEY that is not the nexus's: RESERVATION CONFLICT."""
    await ctx.register(ctx.a)
    expect(await ctx.a.prout(PrOut.RESERVE, key=ctx.a.key + 1, type=PrType.WR_EX), CONFLICT,
           step="RESERVE from A with a wrong key")
    await ctx.expect_held("READ RESERVATION after it", None)


@case("pr-out.reserve.holder-same-type")
async def _reserve_again(ctx: Context) -> None:
    """The holder reserving the same type and scope again: GOOD, nothing changes."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.RESERVE, key=ctx.a.key, type=PrType.WR_EX),
           step="RESERVE WR EX again from the holder")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)
    await ctx.expect_generation("PRGENERATION after it", g, 0)


@case("pr-out.reserve.holder-other-type")
async def _reserve_other_type(ctx: Context) -> None:
    """The holder asking for another type: RESERVATION CONFLICT, reservation unchanged."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    expect(await ctx.a.prout(PrOut.RESERVE, key=ctx.a.key, type=PrType.EX_AC), CONFLICT,
           step="RESERVE EX AC from the WR EX holder")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)


@case("pr-out.reserve.other-registrant", initiators=2)
async def _reserve_other(ctx: Context) -> None:
    """A registered non-holder reserving while another holds: RESERVATION CONFLICT."""
    await ctx.setup(ctx.a, PrType.WR_EX_RO, [ctx.b])
    expect(await ctx.b.prout(PrOut.RESERVE, key=ctx.b.key, type=PrType.WR_EX_RO), CONFLICT,
           step="RESERVE WR EX RO from registered B while A holds it")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX_RO, ctx.a.key)


@case("pr-out.reserve.all-registrants-any-registrant", initiators=2)
async def _reserve_ar(ctx: Context) -> None:
    """Under type 7 every registrant is a holder: RESERVE type 7 from another is GOOD."""
    await ctx.setup(ctx.a, PrType.WR_EX_AR, [ctx.b])
    expect(await ctx.b.prout(PrOut.RESERVE, key=ctx.b.key, type=PrType.WR_EX_AR),
           step="RESERVE WR EX AR from registered B")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX_AR, 0)


# =============================================================================================
# RELEASE (SPC-4 5.14.11.2)
# =============================================================================================


async def _release_type(ctx: Context, pr_type: PrType) -> None:
    await ctx.setup(ctx.a, pr_type, [ctx.b])
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.RELEASE, key=ctx.a.key, type=pr_type),
           step=f"RELEASE {tname(pr_type)} from the holder A")
    await ctx.expect_held("READ RESERVATION after RELEASE", None)
    await ctx.expect_keys("READ KEYS after RELEASE (registrations stay)",
                          [ctx.a.key, ctx.b.key])
    await ctx.expect_generation("PRGENERATION after RELEASE (2.9: unchanged)", g, 0)


for _t in PR_TYPES:
    add(f"pr-out.release.type-{int(_t)}", partial(_release_type, pr_type=_t), initiators=2,
        summary=f"RELEASE {tname(_t)} by the holder: released, registrations kept")


@case("pr-out.release.no-reservation")
async def _release_none(ctx: Context) -> None:
    """RELEASE from a registered nexus with no reservation: GOOD."""
    await ctx.register(ctx.a)
    expect(await ctx.a.prout(PrOut.RELEASE, key=ctx.a.key, type=PrType.WR_EX),
           step="RELEASE from registered A, nothing reserved")


@case("pr-out.release.unregistered")
async def _release_unregistered(ctx: Context) -> None:
    """RELEASE from an unregistered nexus: CONFLICT, even unreserved (docs/behaviour.md 3)."""
    expect(await ctx.a.prout(PrOut.RELEASE, type=PrType.WR_EX), CONFLICT,
           step="RELEASE from unregistered A, nothing reserved")


@case("pr-out.release.registered-non-holder", initiators=2)
async def _release_non_holder(ctx: Context) -> None:
    """RELEASE from a registered non-holder: GOOD and nothing happens."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    expect(await ctx.b.prout(PrOut.RELEASE, key=ctx.b.key, type=PrType.WR_EX),
           step="RELEASE from registered non-holder B")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)


@case("pr-out.release.wrong-type")
async def _release_wrong_type(ctx: Context) -> None:
    """RELEASE by the holder with the wrong TYPE: ILLEGAL REQUEST 26/04 (docs/behaviour.md 3)."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    expect(await ctx.a.prout(PrOut.RELEASE, key=ctx.a.key, type=PrType.EX_AC), CHECK,
           INVALID_RELEASE, step="RELEASE EX AC by the WR EX holder")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)


@case("pr-out.release.wrong-key")
async def _release_wrong_key(ctx: Context) -> None:
    """RELEASE by the holder with a wrong RESERVATION KEY: RESERVATION CONFLICT."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    expect(await ctx.a.prout(PrOut.RELEASE, key=ctx.a.key + 1, type=PrType.WR_EX), CONFLICT,
           step="RELEASE by the holder with a wrong key")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)


@case("pr-out.release.all-registrants-any-registrant", initiators=2)
async def _release_ar(ctx: Context) -> None:
    """Under type 8 any registrant is a holder, so its RELEASE releases."""
    await ctx.setup(ctx.a, PrType.EX_AC_AR, [ctx.b])
    expect(await ctx.b.prout(PrOut.RELEASE, key=ctx.b.key, type=PrType.EX_AC_AR),
           step="RELEASE EX AC AR from registrant B")
    await ctx.expect_held("READ RESERVATION after it", None)


# =============================================================================================
# CLEAR (SPC-4 5.14.11.6)
# =============================================================================================


@case("pr-out.clear", initiators=2)
async def _clear(ctx: Context) -> None:
    """CLEAR removes the reservation and every registration; PRGENERATION +1 (once)."""
    await ctx.setup(ctx.a, PrType.WR_EX_RO, [ctx.b])
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.CLEAR, key=ctx.a.key), step="CLEAR from the holder A")
    await ctx.expect_keys("READ KEYS after CLEAR", [])
    await ctx.expect_held("READ RESERVATION after CLEAR", None)
    await ctx.expect_generation("PRGENERATION after CLEAR", g, +1)


@case("pr-out.clear.by-non-holder", initiators=2)
async def _clear_non_holder(ctx: Context) -> None:
    """Any registered nexus may CLEAR, holder or not."""
    await ctx.setup(ctx.a, PrType.EX_AC, [ctx.b])
    expect(await ctx.b.prout(PrOut.CLEAR, key=ctx.b.key), step="CLEAR from registered B")
    await ctx.expect_keys("READ KEYS after CLEAR", [])
    await ctx.expect_held("READ RESERVATION after CLEAR", None)


@case("pr-out.clear.unregistered", initiators=2)
async def _clear_unregistered(ctx: Context) -> None:
    """CLEAR from an unregistered nexus: RESERVATION CONFLICT (docs/behaviour.md 3)."""
    await ctx.register(ctx.a)
    expect(await ctx.b.prout(PrOut.CLEAR), CONFLICT, step="CLEAR from unregistered B")
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key])


@case("pr-out.clear.wrong-key")
async def _clear_wrong_key(ctx: Context) -> None:
    """CLEAR with a wrong RESERVATION KEY: RESERVATION CONFLICT."""
    await ctx.register(ctx.a)
    expect(await ctx.a.prout(PrOut.CLEAR, key=ctx.a.key + 1), CONFLICT,
           step="CLEAR from A with a wrong key")
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key])
