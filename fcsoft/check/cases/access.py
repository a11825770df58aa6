"""What each nexus may do under each reservation type (SPC-4 5.14.1, SBC-3 4.17), who
holds a reservation and for how long (SPC-4 5.14), and PRGENERATION arithmetic (6.15.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from fcsoft.initiator.scsi import ScsiResult

from .. import commands as c
from ..commands import PR_TYPES, PrIn, PrOut, PrType
from ..runner import (
    CONFLICT,
    GOOD,
    CaseFailed,
    Context,
    Port,
    describe,
    describe_expected,
    expect,
    matches,
)
from .base import (
    add,
    case,
    tname,
)

# =============================================================================================
# The access matrix (SPC-4 5.14.1 / 7.2, docs/behaviour.md 3: SYNCHRONIZE CACHE like WRITE)
# =============================================================================================

ALWAYS, READ, WRITE = "always", "read", "write"

# (name, class, command builder: ctx -> (cdb, data_out, data_in))
CommandSpec = tuple[str, str, Callable[[Context], tuple[bytes, bytes | None, int]]]
ACCESS_COMMANDS: tuple[CommandSpec, ...] = (
    ("TEST UNIT READY", ALWAYS, lambda ctx: (c.test_unit_ready(), None, 0)),
    ("INQUIRY", ALWAYS, lambda ctx: (c.inquiry(96), None, 96)),
    ("REPORT LUNS", ALWAYS, lambda ctx: (c.report_luns(), None, 4096)),
    ("REQUEST SENSE", ALWAYS, lambda ctx: (c.request_sense(), None, 252)),
    ("READ CAPACITY(10)", ALWAYS, lambda ctx: (c.read_capacity_10(), None, 8)),
    ("READ CAPACITY(16)", ALWAYS, lambda ctx: (c.read_capacity_16(), None, 32)),
    ("PERSISTENT RESERVE IN", ALWAYS,
     lambda ctx: (c.persistent_reserve_in(PrIn.READ_KEYS, 1024), None, 1024)),
    ("MODE SENSE(6)", READ, lambda ctx: (c.mode_sense_6(), None, 255)),
    ("READ(10)", READ, lambda ctx: (c.read_10(ctx.scratch_lba), None, ctx.block_size)),
    ("VERIFY(10)", READ, lambda ctx: (c.verify_10(ctx.scratch_lba), None, 0)),
    ("WRITE(10)", WRITE, lambda ctx: (c.write_10(ctx.scratch_lba), ctx.block(), 0)),
    ("SYNCHRONIZE CACHE(10)", WRITE, lambda ctx: (c.synchronize_cache_10(), None, 0)),
)


def allowed(access: str, pr_type: PrType | None, role: str) -> bool:
    """Section 7: may a nexus in `role` (holder / registered / unregistered) run a command
    of class `access` under `pr_type`? Registration helps only under types 5-8."""
    if pr_type is None or role == "holder" or access == ALWAYS:
        return True
    if role == "registered" and pr_type >= PrType.WR_EX_RO:
        return True
    return access == READ and pr_type.write_exclusive


async def _commands_from(ctx: Context, port: Port, pr_type: PrType | None, role: str,
                         step: str) -> None:
    want_text, got_text = [], []
    for name, access, build in ACCESS_COMMANDS:
        cdb, data_out, data_in = build(ctx)
        result = await port.scsi(cdb, data_out=data_out, data_in=data_in)
        status = GOOD if allowed(access, pr_type, role) else CONFLICT
        if not matches(result, status):
            want_text.append(f"{name}: {describe_expected(status, None)}")
            got_text.append(f"{name}: {describe(result)}")
    if want_text:
        raise CaseFailed(step, "; ".join(want_text), "; ".join(got_text))


async def _access(ctx: Context, pr_type: PrType, role: str) -> None:
    if role == "holder":
        await ctx.setup(ctx.a, pr_type)
        port = ctx.a
    elif role == "registered":
        await ctx.setup(ctx.a, pr_type, [ctx.b])
        port = ctx.b
    else:
        await ctx.setup(ctx.a, pr_type)
        port = ctx.b
    who = {"holder": "the holder A", "registered": "registered non-holder B",
           "unregistered": "unregistered B"}[role]
    await _commands_from(ctx, port, pr_type, role, f"commands from {who} under "
                                                     f"{tname(pr_type)}")


@case("access.no-reservation", initiators=3)
async def _access_none(ctx: Context) -> None:
    """Registrations without a reservation restrict nobody."""
    await ctx.register(ctx.a, ctx.b)
    for port, role in ((ctx.a, "registered"), (ctx.c, "unregistered")):
        await _commands_from(ctx, port, None, role, f"commands from {role} {port.label} "
                                                    "with nothing reserved")


for _t in PR_TYPES:
    for _role in ("holder", "registered", "unregistered"):
        add(f"access.type-{int(_t)}.{_role}", partial(_access, pr_type=_t, role=_role),
            initiators=1 if _role == "holder" else 2,
            summary=f"what the {_role} nexus may do under {tname(_t)} (section 7)")


# =============================================================================================
# Ownership: who holds a reservation and how long it lives (SPC-4 5.14, docs/behaviour.md 3)
# =============================================================================================


async def _holder_unregisters(ctx: Context, pr_type: PrType) -> None:
    await ctx.setup(ctx.a, pr_type, [ctx.b])
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key, sa_key=0),
           step=f"the {tname(pr_type)} holder A unregisters")
    if pr_type.all_registrants:
        await ctx.expect_held("READ RESERVATION (B is still registered)", pr_type, 0)
    else:
        await ctx.expect_held("READ RESERVATION (released with the holder)", None)
    await ctx.expect_keys("READ KEYS after it", [ctx.b.key])


for _t in PR_TYPES:
    add(f"ownership.holder-unregisters.type-{int(_t)}",
        partial(_holder_unregisters, pr_type=_t), initiators=2,
        summary=(f"{tname(_t)} " + ("outlives its reserving nexus while anyone is registered"
                                    if _t.all_registrants else
                                    "is released when its holder unregisters")))


@case("ownership.all-registrants-last-leaves")
async def _ar_last(ctx: Context) -> None:
    """An all-registrants reservation ends when the last registrant unregisters."""
    await ctx.setup(ctx.a, PrType.EX_AC_AR)
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key, sa_key=0),
           step="the only registrant A unregisters")
    await ctx.expect_held("READ RESERVATION after it", None)


@case("ownership.key-change-keeps-reservation")
async def _key_change(ctx: Context) -> None:
    """The holder changing its key keeps the reservation (under the new key)."""
    await ctx.setup(ctx.a, PrType.WR_EX)
    new = ctx.a.key + 0x100
    expect(await ctx.a.prout(PrOut.REGISTER, key=ctx.a.key, sa_key=new),
           step="the holder A changes its key")
    await ctx.expect_held("READ RESERVATION after it", PrType.WR_EX, new)


@case("ownership.survives-logout", initiators=2)
async def _survives_logout(ctx: Context) -> None:
    """Registrations and the reservation survive the holder's logout (docs/behaviour.md 3)."""
    await ctx.setup(ctx.a, PrType.WR_EX, [ctx.b])
    await ctx.a.logout_and_login()
    await ctx.a.drain_uas()
    await ctx.expect_keys("READ KEYS after A logged out and in", [ctx.a.key, ctx.b.key])
    await ctx.expect_held("READ RESERVATION after A logged out and in", PrType.WR_EX,
                          ctx.a.key)
    expect(await ctx.write_block(ctx.a), step="WRITE(10) from A, the holder still")
    expect(await ctx.write_block(ctx.b), CONFLICT, step="WRITE(10) from registered B")


# =============================================================================================
# PRGENERATION arithmetic (SPC-4 6.15.2 acceptance)
# =============================================================================================


@case("prgeneration.arithmetic", initiators=2)
async def _generation(ctx: Context) -> None:
    """+1 for REGISTER, key change, unregister, CLEAR, PREEMPT; +0 for RESERVE, RELEASE,
    PR IN and anything that fails."""
    a, b = ctx.a, ctx.b
    a2 = a.key + 0x100
    steps: list[tuple[str, Callable[[], Awaitable[ScsiResult]], int, int]] = [
        # (what, the command, expected status, PRGENERATION delta)
        ("REGISTER from A", lambda: a.prout(PrOut.REGISTER, sa_key=a.key), GOOD, 1),
        ("REGISTER from B", lambda: b.prout(PrOut.REGISTER, sa_key=b.key), GOOD, 1),
        ("RESERVE WR EX from A", lambda: a.prout(PrOut.RESERVE, key=a.key, type=1), GOOD, 0),
        ("RESERVE (conflict) from B", lambda: b.prout(PrOut.RESERVE, key=b.key, type=1),
         CONFLICT, 0),
        ("REGISTER with a wrong key (conflict) from A",
         lambda: a.prout(PrOut.REGISTER, key=a.key + 1, sa_key=a2), CONFLICT, 0),
        ("key change from A", lambda: a.prout(PrOut.REGISTER, key=a.key, sa_key=a2), GOOD, 1),
        ("RELEASE from A", lambda: a.prout(PrOut.RELEASE, key=a2, type=1), GOOD, 0),
        ("RESERVE WR EX from A again", lambda: a.prout(PrOut.RESERVE, key=a2, type=1), GOOD, 0),
        ("PREEMPT from B naming A",
         lambda: b.prout(PrOut.PREEMPT, key=b.key, sa_key=a2, type=1), GOOD, 1),
        ("REGISTER AND IGNORE EXISTING KEY from A",
         lambda: a.prout(PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, sa_key=a.key), GOOD, 1),
        ("unregister from B", lambda: b.prout(PrOut.REGISTER, key=b.key, sa_key=0), GOOD, 1),
        ("CLEAR from A", lambda: a.prout(PrOut.CLEAR, key=a.key), GOOD, 1),
    ]
    g = await ctx.generation()
    for what, command, status, delta in steps:
        expect(await command(), status, step=what)
        await ctx.a.drain_uas()
        await ctx.b.drain_uas()
        g = await ctx.expect_generation(f"PRGENERATION after {what}", g, delta)
