"""PREEMPT, PREEMPT AND ABORT and REGISTER AND MOVE (SPC-4 5.14.11.4, 5.14.8)."""

from __future__ import annotations

from functools import partial

from fcsoft.initiator.scsi import ScsiResult
from fcsoft.wire.wwn import WWN

from .. import commands as c
from ..commands import PrOut, PrType
from ..runner import (
    CHECK,
    CONFLICT,
    Context,
    Port,
    expect,
    expect_equal,
)
from .base import (
    INVALID_FIELD_IN_CDB,
    INVALID_FIELD_IN_PARAMETER_LIST,
    add,
    case,
    sa_name,
    tname,
)

# =============================================================================================
# PREEMPT and PREEMPT AND ABORT (SPC-4 5.14.11.4)
# =============================================================================================


async def _preempt_holder(ctx: Context, sa: PrOut, new_type: PrType) -> None:
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    g = await ctx.generation()
    expect(await ctx.b.prout(sa, key=ctx.b.key, sa_key=ctx.a.key, type=new_type),
           step=f"{sa_name(sa)} {tname(new_type)} from B naming the holder A's key")
    await ctx.expect_keys(f"READ KEYS after {sa_name(sa)}", [ctx.b.key])
    await ctx.expect_held(f"READ RESERVATION after {sa_name(sa)}", new_type, ctx.b.key)
    await ctx.expect_generation(f"PRGENERATION after {sa_name(sa)}", g, +1)


async def _preempt_registration(ctx: Context, sa: PrOut) -> None:
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b, ctx.c])
    g = await ctx.generation()
    expect(await ctx.b.prout(sa, key=ctx.b.key, sa_key=ctx.c.key, type=PrType.EX_AC),
           step=f"{sa_name(sa)} (TYPE EX AC) from B naming non-holder C's key")
    await ctx.expect_keys(f"READ KEYS after {sa_name(sa)}", [ctx.a.key, ctx.b.key])
    await ctx.expect_held(f"READ RESERVATION after {sa_name(sa)} (A keeps it, TYPE ignored)",
                          PrType.WR_EX, ctx.a.key)
    await ctx.expect_generation(f"PRGENERATION after {sa_name(sa)}", g, +1)


async def _preempt_ar_zero(ctx: Context, sa: PrOut) -> None:
    await ctx.setup(ctx.a, PrType.WR_EX_AR, [ctx.b, ctx.c])
    g = await ctx.generation()
    expect(await ctx.b.prout(sa, key=ctx.b.key, sa_key=0, type=PrType.WR_EX),
           step=f"{sa_name(sa)} WR EX with key 0 from B under WR EX AR")
    await ctx.expect_keys(f"READ KEYS after {sa_name(sa)}", [ctx.b.key])
    await ctx.expect_held(f"READ RESERVATION after {sa_name(sa)}", PrType.WR_EX, ctx.b.key)
    await ctx.expect_generation(f"PRGENERATION after {sa_name(sa)}", g, +1)


async def _preempt_ar_key(ctx: Context, sa: PrOut) -> None:
    await ctx.setup(ctx.a, PrType.EX_AC_AR, [ctx.b, ctx.c])
    g = await ctx.generation()
    expect(await ctx.b.prout(sa, key=ctx.b.key, sa_key=ctx.c.key, type=PrType.WR_EX),
           step=f"{sa_name(sa)} (TYPE WR EX) from B naming C's key under EX AC AR")
    await ctx.expect_keys(f"READ KEYS after {sa_name(sa)}", [ctx.a.key, ctx.b.key])
    await ctx.expect_held(f"READ RESERVATION after {sa_name(sa)} (unchanged)",
                          PrType.EX_AC_AR, 0)
    await ctx.expect_generation(f"PRGENERATION after {sa_name(sa)}", g, +1)


for _sa, _p in ((PrOut.PREEMPT, "pr-out.preempt"),
                (PrOut.PREEMPT_AND_ABORT, "pr-out.preempt-and-abort")):
    _n = sa_name(_sa)
    add(f"{_p}.holder", partial(_preempt_holder, sa=_sa, new_type=PrType.WR_EX),
        initiators=2, summary=f"{_n} naming the holder's key takes the reservation over")
    add(f"{_p}.holder-new-type", partial(_preempt_holder, sa=_sa, new_type=PrType.EX_AC),
        initiators=2, summary=f"{_n} naming the holder's key may change the type")
    add(f"{_p}.registration-only", partial(_preempt_registration, sa=_sa), initiators=3,
        summary=f"{_n} naming a non-holder's key removes it; reservation and type stay")
    add(f"{_p}.all-registrants-zero-key", partial(_preempt_ar_zero, sa=_sa), initiators=3,
        summary=f"{_n} key 0 under type 7: everyone else goes, caller reserves")
    add(f"{_p}.all-registrants-key", partial(_preempt_ar_key, sa=_sa), initiators=3,
        summary=f"{_n} naming a key under type 8 removes only those; reservation stays")


@case("pr-out.preempt.no-reservation", initiators=2)
async def _preempt_no_res(ctx: Context) -> None:
    """PREEMPT with nothing reserved removes the named registrations, reserves nothing."""
    await ctx.register(ctx.a, ctx.b)
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.PREEMPT, key=ctx.a.key, sa_key=ctx.b.key, type=PrType.WR_EX),
           step="PREEMPT from A naming B's key, nothing reserved")
    await ctx.expect_keys("READ KEYS after PREEMPT", [ctx.a.key])
    await ctx.expect_held("READ RESERVATION after PREEMPT (TYPE ignored)", None)
    await ctx.expect_generation("PRGENERATION after PREEMPT", g, +1)


@case("pr-out.preempt.every-registration-with-key", initiators=3)
async def _preempt_shared_key(ctx: Context) -> None:
    """PREEMPT removes every registration holding the named key."""
    await ctx.register(ctx.a)
    shared = ctx.b.key
    await ctx.register(ctx.b, ctx.c, key=shared)
    expect(await ctx.a.prout(PrOut.PREEMPT, key=ctx.a.key, sa_key=shared, type=PrType.WR_EX),
           step="PREEMPT from A naming the key B and C share")
    await ctx.expect_keys("READ KEYS after PREEMPT", [ctx.a.key])


@case("pr-out.preempt.zero-key", initiators=2)
async def _preempt_zero(ctx: Context) -> None:
    """PREEMPT with key 0 under a non-all-registrants reservation: ILLEGAL REQUEST 26/00."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    expect(await ctx.b.prout(PrOut.PREEMPT, key=ctx.b.key, sa_key=0, type=PrType.WR_EX), CHECK,
           INVALID_FIELD_IN_PARAMETER_LIST, step="PREEMPT key 0 from B under WR EX")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key, ctx.b.key])


async def _preempt_zero_unreserved(ctx: Context, sa: PrOut) -> None:
    await ctx.register(ctx.a, ctx.b)
    g = await ctx.generation()
    expect(await ctx.a.prout(sa, key=ctx.a.key, sa_key=0, type=PrType.WR_EX), CHECK,
           INVALID_FIELD_IN_PARAMETER_LIST,
           step=f"{sa_name(sa)} key 0 from A, nothing reserved")
    await ctx.expect_held("READ RESERVATION after it", None)
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key, ctx.b.key])
    await ctx.expect_generation("PRGENERATION after it", g, 0)


for _sa, _p in ((PrOut.PREEMPT, "pr-out.preempt"),
                (PrOut.PREEMPT_AND_ABORT, "pr-out.preempt-and-abort")):
    add(f"{_p}.zero-key.no-reservation", partial(_preempt_zero_unreserved, sa=_sa),
        initiators=2, summary=f"{sa_name(_sa)} with key 0 and nothing reserved: ILLEGAL "
                              "REQUEST 26/00 (SPC-4 5.14.11.4)")


@case("pr-out.preempt.unknown-key", initiators=2)
async def _preempt_unknown(ctx: Context) -> None:
    """PREEMPT naming a key nobody holds: RESERVATION CONFLICT, nothing changes."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    g = await ctx.generation()
    expect(await ctx.b.prout(PrOut.PREEMPT, key=ctx.b.key, sa_key=0xBAD0BAD, type=PrType.WR_EX),
           CONFLICT, step="PREEMPT from B naming an unregistered key")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)
    await ctx.expect_generation("PRGENERATION after it", g, 0)


@case("pr-out.preempt.self", initiators=2)
async def _preempt_self(ctx: Context) -> None:
    """The holder preempting its own key changes the type and keeps its registration."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    expect(await ctx.a.prout(PrOut.PREEMPT, key=ctx.a.key, sa_key=ctx.a.key, type=PrType.EX_AC),
           step="PREEMPT EX AC from the holder A naming its own key")
    await ctx.expect_held("READ RESERVATION after it", PrType.EX_AC, ctx.a.key)
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key, ctx.b.key])


@case("pr-out.preempt.unregistered", initiators=2)
async def _preempt_unregistered(ctx: Context) -> None:
    """PREEMPT from an unregistered nexus: RESERVATION CONFLICT."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    expect(await ctx.b.prout(PrOut.PREEMPT, sa_key=ctx.a.key, type=PrType.WR_EX), CONFLICT,
           step="PREEMPT from unregistered B naming the holder's key")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)


@case("pr-out.preempt.wrong-key", initiators=2)
async def _preempt_wrong_key(ctx: Context) -> None:
    """PREEMPT with a wrong RESERVATION KEY: RESERVATION CONFLICT."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    expect(await ctx.b.prout(PrOut.PREEMPT, key=ctx.b.key + 1, sa_key=ctx.a.key,
                             type=PrType.WR_EX), CONFLICT,
           step="PREEMPT from B with a wrong RESERVATION KEY")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)


# =============================================================================================
# REGISTER AND MOVE (SPC-4 5.14.8)
# =============================================================================================


async def _move(ctx: Context, src: Port, dest: WWN, *, sa_key: int | None = None,
                unreg: bool = False, pr_type: int = 0) -> ScsiResult:
    """REGISTER AND MOVE from `src` to initiator `dest` through this target port; the key
    registered for `dest` is B's unless `sa_key` says otherwise."""
    rtpi = await ctx.relative_port()
    params = c.move_parameters(src.key, ctx.b.key if sa_key is None else sa_key, rtpi, dest,
                               unreg=unreg)
    return await src.prout(PrOut.REGISTER_AND_MOVE, parameters=params, type=pr_type)


@case("pr-out.register-and-move", initiators=2)
async def _move_ok(ctx: Context) -> None:
    """REGISTER AND MOVE: the destination is registered and holds the same type; +1."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    g = await ctx.generation()
    expect(await _move(ctx, ctx.a, ctx.b.wwpn, pr_type=PrType.EX_AC),
           step="REGISTER AND MOVE (CDB TYPE EX AC) from the holder A to B")
    await ctx.expect_held("READ RESERVATION after the move (type kept)", PrType.WR_EX,
                          ctx.b.key)
    await ctx.expect_keys("READ KEYS after the move (UNREG=0: A stays)", [ctx.a.key, ctx.b.key])
    fs = await ctx.full_status()
    holders = sorted(str(d.wwpn) for d in fs.descriptors if d.holder)
    expect_equal("R_HOLDER in READ FULL STATUS after the move", [str(ctx.b.wwpn)], holders)
    await ctx.expect_generation("PRGENERATION after the move", g, +1)


@case("pr-out.register-and-move.unreg", initiators=2)
async def _move_unreg(ctx: Context) -> None:
    """REGISTER AND MOVE with UNREG=1 also unregisters the source."""
    await ctx.setup(ctx.a, PrType.EX_AC_RO)
    expect(await _move(ctx, ctx.a, ctx.b.wwpn, unreg=True),
           step="REGISTER AND MOVE with UNREG=1 from the holder A to B")
    await ctx.expect_keys("READ KEYS after the move", [ctx.b.key])
    await ctx.expect_held("READ RESERVATION after the move", PrType.EX_AC_RO, ctx.b.key)


@case("pr-out.register-and-move.no-reservation", initiators=2)
async def _move_none(ctx: Context) -> None:
    """REGISTER AND MOVE with nothing reserved: ILLEGAL REQUEST 24/00 (docs/behaviour.md 3)."""
    await ctx.register(ctx.a)
    expect(await _move(ctx, ctx.a, ctx.b.wwpn), CHECK,
           INVALID_FIELD_IN_CDB, step="REGISTER AND MOVE from registered A, nothing reserved")
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key])


@case("pr-out.register-and-move.non-holder", initiators=2)
async def _move_non_holder(ctx: Context) -> None:
    """REGISTER AND MOVE from a registered non-holder: RESERVATION CONFLICT."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    rtpi = await ctx.relative_port()
    params = c.move_parameters(ctx.b.key, ctx.b.key + 0x100, rtpi, ctx.a.wwpn)
    expect(await ctx.b.prout(PrOut.REGISTER_AND_MOVE, parameters=params), CONFLICT,
           step="REGISTER AND MOVE from non-holder B to A")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)


@case("pr-out.register-and-move.all-registrants", initiators=2)
async def _move_ar(ctx: Context) -> None:
    """REGISTER AND MOVE under an all-registrants reservation: RESERVATION CONFLICT."""
    await ctx.setup(ctx.a, PrType.WR_EX_AR)
    expect(await _move(ctx, ctx.a, ctx.b.wwpn), CONFLICT,
           step="REGISTER AND MOVE from A under WR EX AR")
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key])


@case("pr-out.register-and-move.to-self")
async def _move_self(ctx: Context) -> None:
    """REGISTER AND MOVE naming the caller's own port: ILLEGAL REQUEST 26/00."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    expect(await _move(ctx, ctx.a, ctx.a.wwpn, sa_key=ctx.a.key + 0x100),
           CHECK, INVALID_FIELD_IN_PARAMETER_LIST, step="REGISTER AND MOVE from A to A")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)


@case("pr-out.register-and-move.zero-key", initiators=2)
async def _move_zero_key(ctx: Context) -> None:
    """REGISTER AND MOVE with key 0: ILLEGAL REQUEST (26/00 per SPC/LIO, 24/00 per SCST)."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    expect(await _move(ctx, ctx.a, ctx.b.wwpn, sa_key=0), CHECK,
           [INVALID_FIELD_IN_PARAMETER_LIST, INVALID_FIELD_IN_CDB],
           step="REGISTER AND MOVE with SERVICE ACTION RESERVATION KEY 0")
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key])


@case("pr-out.register-and-move.unregistered", initiators=2)
async def _move_unregistered(ctx: Context) -> None:
    """REGISTER AND MOVE from an unregistered nexus: RESERVATION CONFLICT (SPC-4 5.14.8)."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    rtpi = await ctx.relative_port()
    params = c.move_parameters(0, ctx.b.key, rtpi, ctx.a.wwpn)
    expect(await ctx.b.prout(PrOut.REGISTER_AND_MOVE, parameters=params), CONFLICT,
           step="REGISTER AND MOVE from unregistered B")


@case("pr-out.register-and-move.to-unmapped-initiator", outsider=True)
async def _move_outsider(ctx: Context) -> None:
    """REGISTER AND MOVE to an initiator the LU is not mapped to: ILLEGAL REQUEST 26/00."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    expect(await _move(ctx, ctx.a, ctx.o.wwpn, sa_key=ctx.o.key), CHECK,
           INVALID_FIELD_IN_PARAMETER_LIST, step="REGISTER AND MOVE from A to the outsider")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, ctx.a.key)
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key])
