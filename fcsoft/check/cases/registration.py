"""PERSISTENT RESERVE OUT: checks of the command itself, REGISTER and REGISTER AND IGNORE
EXISTING KEY with their SPEC_I_PT and ALL_TG_PT options (SPC-4 5.14.7, 6.16.3)."""

from __future__ import annotations

from fcsoft.wire.wwn import WWN

from .. import commands as c
from ..commands import PrIn, PrOut, PrType
from ..runner import (
    CHECK,
    CONFLICT,
    CaseSkipped,
    Context,
    expect,
    expect_equal,
)
from .base import (
    INVALID_FIELD_IN_CDB,
    INVALID_FIELD_IN_PARAMETER_LIST,
    PARAMETER_LIST_LENGTH_ERROR,
    case,
)

# =============================================================================================
# PERSISTENT RESERVE OUT: checks of the command itself (SPC-4 6.16)
# =============================================================================================


@case("pr-out.invalid-service-action")
async def _prout_bad_sa(ctx: Context) -> None:
    """PERSISTENT RESERVE OUT with a reserved service action: ILLEGAL REQUEST 24/00."""
    await ctx.register(ctx.a)
    expect(await ctx.a.prout(0x1F, key=ctx.a.key), CHECK, INVALID_FIELD_IN_CDB,
           step="PERSISTENT RESERVE OUT service action 1Fh from registered A")


@case("pr-out.parameter-list-length")
async def _prout_length(ctx: Context) -> None:
    """A basic parameter list of other than 24 bytes: ILLEGAL REQUEST 1A/00 (SPC-4 6.16)."""
    await ctx.register(ctx.a)
    for size in (20, 32):
        params = c.basic_parameters(ctx.a.key, ctx.a.key + 1).ljust(size, b"\0")[:size]
        expect(await ctx.a.prout(PrOut.REGISTER, parameters=params), CHECK,
               PARAMETER_LIST_LENGTH_ERROR,
               step=f"REGISTER with a {size}-byte parameter list")
    await ctx.expect_keys("READ KEYS after the refused REGISTERs", [ctx.a.key])


@case("pr-out.scope-must-be-lu")
async def _prout_scope(ctx: Context) -> None:
    """RESERVE with SCOPE 1h: ILLEGAL REQUEST 24/00 (SPC-4 6.16)."""
    await ctx.register(ctx.a)
    expect(await ctx.a.prout(PrOut.RESERVE, key=ctx.a.key, type=PrType.WR_EX, scope=1),
           CHECK, INVALID_FIELD_IN_CDB, step="RESERVE type 1 with SCOPE 1h")
    await ctx.expect_held("READ RESERVATION after it", None)


@case("pr-out.reserve.invalid-type")
async def _reserve_bad_type(ctx: Context) -> None:
    """RESERVE with TYPE 0h, 2h, 4h or 9h: ILLEGAL REQUEST 24/00 (SPC-4 6.16)."""
    await ctx.register(ctx.a)
    for t in (0x0, 0x2, 0x4, 0x9):
        expect(await ctx.a.prout(PrOut.RESERVE, key=ctx.a.key, type=t), CHECK,
               INVALID_FIELD_IN_CDB, step=f"RESERVE with TYPE {t:X}h")
    await ctx.expect_held("READ RESERVATION after them", None)


@case("pr-out.aptpl")
async def _aptpl(ctx: Context) -> None:
    """APTPL=1 is refused (26/00) without PTPL_C, else sets PTPL_A until APTPL=0."""
    caps = await ctx.capabilities()
    a = ctx.a
    if not caps.ptpl_c:
        expect(await a.prout(PrOut.REGISTER, sa_key=a.key, flags=c.APTPL), CHECK,
               INVALID_FIELD_IN_PARAMETER_LIST, step="REGISTER with APTPL=1 (PTPL_C=0)")
        await ctx.expect_keys("READ KEYS after it", [])
        return
    expect(await a.prout(PrOut.REGISTER, sa_key=a.key, flags=c.APTPL),
           step="REGISTER with APTPL=1 (PTPL_C=1)")
    r = expect(await a.prin(PrIn.REPORT_CAPABILITIES), step="REPORT CAPABILITIES")
    expect_equal("PTPL_A after REGISTER with APTPL=1", True,
                 c.decode_report_capabilities(r.data).ptpl_a)
    expect(await a.prout(PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, sa_key=a.key),
           step="REGISTER AND IGNORE EXISTING KEY with APTPL=0")
    r = expect(await a.prin(PrIn.REPORT_CAPABILITIES), step="REPORT CAPABILITIES")
    expect_equal("PTPL_A after APTPL=0", False, c.decode_report_capabilities(r.data).ptpl_a)


# =============================================================================================
# REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4 5.14.7, 6.15.2)
# =============================================================================================


@case("pr-out.register.new")
async def _register_new(ctx: Context) -> None:
    """REGISTER from an unregistered nexus (RK 0): GOOD, key listed, PRGENERATION +1."""
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.REGISTER, sa_key=ctx.a.key), step="REGISTER from A")
    await ctx.expect_generation("PRGENERATION after REGISTER", g, +1)
    await ctx.expect_keys("READ KEYS after REGISTER", [ctx.a.key])


@case("pr-out.register.unregistered-nonzero-key")
async def _register_nonzero_rk(ctx: Context) -> None:
    """REGISTER from an unregistered nexus with RESERVATION KEY != 0: RESERVATION CONFLICT."""
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key, sa_key=ctx.a.key), CONFLICT,
           step="REGISTER from unregistered A with RESERVATION KEY != 0")
    await ctx.expect_generation("PRGENERATION after the conflict", g, 0)
    await ctx.expect_keys("READ KEYS after the conflict", [])


@case("pr-out.register.change-key")
async def _register_change(ctx: Context) -> None:
    """REGISTER with the registered key and a new one replaces it; PRGENERATION +1."""
    await ctx.register(ctx.a)
    g = await ctx.generation()
    new = ctx.a.key + 0x100
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key, sa_key=new),
           step="REGISTER from A replacing its key")
    await ctx.expect_generation("PRGENERATION after the key change", g, +1)
    await ctx.expect_keys("READ KEYS after the key change", [new])


@case("pr-out.register.wrong-key")
async def _register_wrong(ctx: Context) -> None:
    """REGISTER with a RESERVATION KEY that is not the registered one: RESERVATION CONFLICT."""
    await ctx.register(ctx.a)
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key + 1, sa_key=ctx.a.key + 0x100),
           CONFLICT, step="REGISTER from A with a wrong RESERVATION KEY")
    await ctx.expect_generation("PRGENERATION after the conflict", g, 0)
    await ctx.expect_keys("READ KEYS after the conflict", [ctx.a.key])


@case("pr-out.register.unregister")
async def _register_unregister(ctx: Context) -> None:
    """REGISTER with SERVICE ACTION RESERVATION KEY 0 unregisters; PRGENERATION +1 (6.15.2)."""
    await ctx.register(ctx.a)
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key, sa_key=0),
           step="REGISTER from A with SERVICE ACTION RESERVATION KEY 0")
    await ctx.expect_keys("READ KEYS after unregistering", [])
    await ctx.expect_generation("PRGENERATION after unregistering", g, +1)


@case("pr-out.register.unregistered-zero-key")
async def _register_zero(ctx: Context) -> None:
    """REGISTER of key 0 from an unregistered nexus: GOOD, nothing registered (SPC-4 5.14.7)."""
    expect(await ctx.a.prout(PrOut.REGISTER, sa_key=0), step="REGISTER key 0 from A")
    await ctx.expect_keys("READ KEYS after it", [])


@case("pr-out.register.same-key-two-nexuses", initiators=2)
async def _register_same_key(ctx: Context) -> None:
    """Two nexuses may register the same key; READ KEYS lists it twice."""
    await ctx.register(ctx.a)
    await ctx.register(ctx.b, key=ctx.a.key)
    await ctx.expect_keys("READ KEYS", [ctx.a.key, ctx.a.key])


@case("pr-out.register-ignore.unregistered")
async def _riek_new(ctx: Context) -> None:
    """REGISTER AND IGNORE EXISTING KEY registers whatever RESERVATION KEY says; +1."""
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, key=0xDEAD,
                             sa_key=ctx.a.key), step="REGISTER AND IGNORE EXISTING KEY from A")
    await ctx.expect_generation("PRGENERATION after it", g, +1)
    await ctx.expect_keys("READ KEYS after it", [ctx.a.key])


@case("pr-out.register-ignore.replaces-key")
async def _riek_replace(ctx: Context) -> None:
    """REGISTER AND IGNORE EXISTING KEY replaces a registered key without knowing it; +1."""
    await ctx.register(ctx.a)
    g = await ctx.generation()
    new = ctx.a.key + 0x100
    expect(await ctx.a.prout(PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, key=0xDEAD, sa_key=new),
           step="REGISTER AND IGNORE EXISTING KEY from registered A")
    await ctx.expect_generation("PRGENERATION after it", g, +1)
    await ctx.expect_keys("READ KEYS after it", [new])


@case("pr-out.register-ignore.unregister")
async def _riek_unregister(ctx: Context) -> None:
    """REGISTER AND IGNORE EXISTING KEY with key 0 unregisters; PRGENERATION +1."""
    await ctx.register(ctx.a)
    g = await ctx.generation()
    expect(await ctx.a.prout(PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, key=0xDEAD, sa_key=0),
           step="REGISTER AND IGNORE EXISTING KEY key 0 from A")
    await ctx.expect_keys("READ KEYS after it", [])
    await ctx.expect_generation("PRGENERATION after it", g, +1)


def _spec_i_pt_parameters(key: int, sa_key: int, *initiators: WWN) -> bytes:
    tids = b"".join(c.fc_transport_id(w) for w in initiators)
    return c.basic_parameters(key, sa_key, c.SPEC_I_PT) + len(tids).to_bytes(4, "big") + tids


@case("pr-out.register.spec-i-pt", initiators=2)
async def _spec_i_pt(ctx: Context) -> None:
    """REGISTER with SPEC_I_PT=1 also registers the listed initiator with the key (SPC-4 6.16)."""
    if not (await ctx.capabilities()).sip_c:
        raise CaseSkipped("REPORT CAPABILITIES says SIP_C=0")
    expect(await ctx.a.prout(PrOut.REGISTER, parameters=_spec_i_pt_parameters(
        0, ctx.a.key, ctx.b.wwpn)), step="REGISTER from A with SPEC_I_PT=1 naming B")
    fs = await ctx.full_status()
    got = sorted((str(d.wwpn), hex(d.key)) for d in fs.descriptors)
    expect_equal("READ FULL STATUS (initiator, key) after it",
                 sorted([(str(ctx.a.wwpn), hex(ctx.a.key)), (str(ctx.b.wwpn), hex(ctx.a.key))]),
                 got)


@case("pr-out.register.spec-i-pt-all-or-nothing", initiators=2, outsider=True)
async def _spec_i_pt_atomic(ctx: Context) -> None:
    """SPEC_I_PT naming an initiator the LU is not mapped to: 26/00, nobody registered."""
    if not (await ctx.capabilities()).sip_c:
        raise CaseSkipped("REPORT CAPABILITIES says SIP_C=0")
    expect(await ctx.a.prout(PrOut.REGISTER, parameters=_spec_i_pt_parameters(
        0, ctx.a.key, ctx.b.wwpn, ctx.o.wwpn)), CHECK, INVALID_FIELD_IN_PARAMETER_LIST,
        step="REGISTER from A with SPEC_I_PT=1 naming B and the outsider")
    await ctx.expect_keys("READ KEYS after it (all or nothing, SPC-4 6.15.3)", [])


@case("pr-out.spec-i-pt.other-service-action")
async def _spec_i_pt_other(ctx: Context) -> None:
    """SPEC_I_PT=1 with other than REGISTER: ILLEGAL REQUEST 26/00 (SPC-4 6.16)."""
    expect(await ctx.a.prout(PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, sa_key=ctx.a.key,
                             flags=c.SPEC_I_PT), CHECK, INVALID_FIELD_IN_PARAMETER_LIST,
           step="REGISTER AND IGNORE EXISTING KEY with SPEC_I_PT=1")
    await ctx.expect_keys("READ KEYS after it", [])


@case("pr-out.register.all-tg-pt")
async def _all_tg_pt(ctx: Context) -> None:
    """REGISTER with ALL_TG_PT=1: each descriptor of the initiator says ALL_TG_PT (SPC-4 6.15.5)."""
    if not (await ctx.capabilities()).atp_c:
        raise CaseSkipped("REPORT CAPABILITIES says ATP_C=0")
    a = ctx.a
    expect(await a.prout(PrOut.REGISTER, sa_key=a.key, flags=c.ALL_TG_PT),
           step="REGISTER from A with ALL_TG_PT=1")
    mine = (await ctx.full_status()).of(a.wwpn)
    got = sorted({(hex(d.key), d.all_tg_pt) for d in mine})
    expect_equal("READ FULL STATUS descriptors of A (key, ALL_TG_PT)", [(hex(a.key), True)],
                 got)
    expect(await a.prout(PrOut.REGISTER, key=a.key, sa_key=0, flags=c.ALL_TG_PT),
           step="REGISTER key 0 from A with ALL_TG_PT=1 (unregister everywhere)")
    await ctx.expect_keys("READ KEYS after unregistering", [])
