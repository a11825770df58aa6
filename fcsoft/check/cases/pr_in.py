"""PERSISTENT RESERVE IN: the four service actions and their layouts (SPC-4 6.16,
SPC-4 6.15), and PRGENERATION agreeing across them."""

from __future__ import annotations

from functools import partial

from fcsoft.wire.wwn import WWN

from .. import commands as c
from ..commands import PR_TYPES, PrIn, PrType
from ..runner import (
    CHECK,
    CaseFailed,
    Context,
    expect,
    expect_equal,
    show_keys,
)
from .base import (
    INVALID_FIELD_IN_CDB,
    add,
    case,
    tname,
)

# =============================================================================================
# PERSISTENT RESERVE IN (SPC-4 6.15)
# =============================================================================================


@case("pr-in.read-keys.empty")
async def _read_keys_empty(ctx: Context) -> None:
    """READ KEYS with nothing registered: GOOD, ADDITIONAL LENGTH 0."""
    r = expect(await ctx.a.prin(PrIn.READ_KEYS), step="READ KEYS from A")
    expect_equal("READ KEYS ADDITIONAL LENGTH", 0, c.decode_read_keys(r.data).additional_length)


@case("pr-in.read-keys.lists-registrations", initiators=2)
async def _read_keys_lists(ctx: Context) -> None:
    """READ KEYS lists one key per registered I_T nexus; ADDITIONAL LENGTH = 8 x keys."""
    await ctx.register(ctx.a, ctx.b)
    keys = await ctx.keys()
    expect_equal("READ KEYS ADDITIONAL LENGTH", 16, keys.additional_length)
    expect_equal("READ KEYS", sorted([ctx.a.key, ctx.b.key]), sorted(keys.keys), show_keys)


@case("pr-in.read-keys.truncated", initiators=2)
async def _read_keys_truncated(ctx: Context) -> None:
    """READ KEYS cut to ALLOCATION LENGTH 8 still reports the full ADDITIONAL LENGTH (6.15.2)."""
    await ctx.register(ctx.a, ctx.b)
    r = expect(await ctx.a.prin(PrIn.READ_KEYS, 8), step="READ KEYS, ALLOCATION LENGTH 8")
    expect_equal("data returned with ALLOCATION LENGTH 8", 8, len(r.data))
    expect_equal("READ KEYS ADDITIONAL LENGTH (untruncated, SPC-4 6.16.2)", 16,
                 c.decode_read_keys(r.data).additional_length)


@case("pr-in.short-allocation")
async def _short_allocation(ctx: Context) -> None:
    """An ALLOCATION LENGTH below 8 truncates, it is not an error (SPC-4 4.2.5.6)."""
    r = expect(await ctx.a.prin(PrIn.READ_KEYS, 4), step="READ KEYS, ALLOCATION LENGTH 4")
    if len(r.data) > 4:
        raise CaseFailed("READ KEYS, ALLOCATION LENGTH 4", "at most 4 bytes",
                         f"{len(r.data)} bytes")


@case("pr-in.read-reservation.none")
async def _read_reservation_none(ctx: Context) -> None:
    """READ RESERVATION with no reservation: ADDITIONAL LENGTH 0, 8 bytes."""
    r = expect(await ctx.a.prin(PrIn.READ_RESERVATION), step="READ RESERVATION from A")
    expect_equal("READ RESERVATION data length", 8, len(r.data))
    expect_equal("READ RESERVATION ADDITIONAL LENGTH", 0,
                 c.decode_read_reservation(r.data).additional_length)


@case("pr-in.read-reservation.held")
async def _read_reservation_held(ctx: Context) -> None:
    """READ RESERVATION: ADDITIONAL LENGTH 16, the holder's key, SCOPE 0 and TYPE."""
    await ctx.setup(ctx.a, PrType.EX_AC_RO)
    r = expect(await ctx.a.prin(PrIn.READ_RESERVATION), step="READ RESERVATION from A")
    expect_equal("READ RESERVATION data length", 24, len(r.data))
    held = c.decode_read_reservation(r.data)
    expect_equal("READ RESERVATION ADDITIONAL LENGTH", 16, held.additional_length)
    await ctx.expect_held("READ RESERVATION", PrType.EX_AC_RO, ctx.a.key)


@case("pr-in.read-reservation.all-registrants")
async def _read_reservation_ar(ctx: Context) -> None:
    """An all-registrants reservation reports RESERVATION KEY 0 (SPC-4 6.16.3)."""
    await ctx.setup(ctx.a, PrType.WR_EX_AR)
    await ctx.expect_held("READ RESERVATION", PrType.WR_EX_AR, 0)


@case("pr-in.report-capabilities")
async def _report_capabilities(ctx: Context) -> None:
    """REPORT CAPABILITIES: LENGTH 8, TMV=1 with all six types, ALLOW COMMANDS <= 5."""
    r = expect(await ctx.a.prin(PrIn.REPORT_CAPABILITIES),
               step="REPORT CAPABILITIES from A")
    caps = c.decode_report_capabilities(r.data)
    expect_equal("REPORT CAPABILITIES LENGTH", 8, caps.length)
    expect_equal("REPORT CAPABILITIES TMV", True, caps.tmv)
    missing = [t for t in PR_TYPES if not caps.supports(t)]
    expect_equal("types in the PERSISTENT RESERVATION TYPE MASK", "all six",
                 "all six" if not missing else "missing " + ", ".join(map(tname, missing)))
    if caps.allow_commands > 5:
        raise CaseFailed("REPORT CAPABILITIES ALLOW COMMANDS", "0..5",
                         str(caps.allow_commands))


def _transport_id(tid: bytes) -> str:
    """An FC TransportID (SPC-4 7.6.4) as the WWPN it names; any other in hex."""
    if len(tid) >= 16 and tid[0] & 0x0F == 0:
        return f"FC {WWN.from_bytes8(tid, 8)}"
    return tid.hex()


async def _full_status(ctx: Context, pr_type: PrType) -> None:
    await ctx.setup(ctx.a, pr_type, [ctx.b])
    fs = await ctx.full_status()
    step = f"READ FULL STATUS with A holding {tname(pr_type)} and B registered"
    expect_equal(f"{step}: ADDITIONAL LENGTH", sum(24 + len(d.transport_id)
                                                    for d in fs.descriptors),
                 fs.additional_length)
    expect_equal(f"{step}: descriptors", 2, len(fs.descriptors))
    rtpi = await ctx.relative_port()
    for port in (ctx.a, ctx.b):
        mine = fs.of(port.wwpn)
        if len(mine) != 1:
            raise CaseFailed(step, f"one descriptor with an FC TransportID naming {port.wwpn}",
                             f"{len(mine)} (TransportIDs: " + ", ".join(
                                 _transport_id(d.transport_id) for d in fs.descriptors) + ")")
        d = mine[0]
        holder = port is ctx.a or pr_type.all_registrants
        want = (f"key {port.key:#x}, R_HOLDER={int(holder)}"
                + (f", scope 0 type {int(pr_type)}" if holder else "")
                + f", ALL_TG_PT=0, relative port {rtpi}, TransportID length 24")
        got = (f"key {d.key:#x}, R_HOLDER={int(d.holder)}"
               + (f", scope {d.scope} type {d.type}" if d.holder else "")
               + f", ALL_TG_PT={int(d.all_tg_pt)}, relative port {d.relative_port}, "
               f"TransportID length {len(d.transport_id)}")
        expect_equal(f"{step}: descriptor of {port.label}", want, got)


add("pr-in.read-full-status", partial(_full_status, pr_type=PrType.EX_AC), initiators=2,
    summary="READ FULL STATUS: one descriptor per nexus, FC TransportID, R_HOLDER, RTPI")
add("pr-in.read-full-status.all-registrants", partial(_full_status, pr_type=PrType.EX_AC_AR),
    initiators=2, summary="READ FULL STATUS under type 8: every registrant is R_HOLDER")


@case("pr-in.invalid-service-action")
async def _prin_bad_sa(ctx: Context) -> None:
    """PERSISTENT RESERVE IN with a reserved service action: ILLEGAL REQUEST 24/00."""
    expect(await ctx.a.prin(0x1F), CHECK, INVALID_FIELD_IN_CDB,
           step="PERSISTENT RESERVE IN service action 1Fh")


@case("prgeneration.every-report-agrees")
async def _generation_agrees(ctx: Context) -> None:
    """READ KEYS, READ RESERVATION and READ FULL STATUS report the same PRGENERATION."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    gens = [(await ctx.keys()).generation, (await ctx.held()).generation,
            (await ctx.full_status()).generation]
    expect_equal("PRGENERATION in READ KEYS, READ RESERVATION, READ FULL STATUS",
                 [gens[0]] * 3, gens)
