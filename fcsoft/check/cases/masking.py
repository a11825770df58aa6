"""LUN masking as an initiator the LUN is not mapped to sees it (docs/behaviour.md 3).

An unmapped LUN number is an incorrect logical unit for the outsider (SAM-5): INQUIRY
answers peripheral qualifier 011b (SPC-4 6.6.2), REQUEST SENSE answers GOOD with 25/00, and
other commands CHECK CONDITION 25/00. Some targets put a placeholder logical unit at LUN 0
for an initiator that has no LUN 0 mapped (Linux LIO: a read-only virtual device whose
INQUIRY answers peripheral qualifier 001b, "no device connected"), which SPC-4 6.6.2 allows.
At such a LUN the outsider reaches that placeholder, not the LU under check, so these cases
cannot observe the masking there: they are skipped, and should be run at another LUN.
"""

from __future__ import annotations

from .. import commands as c
from ..commands import PrIn, PrOut
from ..runner import (
    CHECK,
    CaseFailed,
    CaseSkipped,
    Context,
    describe,
    describe_expected,
    expect,
    expect_equal,
    matches,
)
from .base import (
    LU_NOT_SUPPORTED,
    case,
)

# =============================================================================================
# LUN masking (docs/behaviour.md 3)
# =============================================================================================

PQ_NOT_CONNECTED = 0b001  # peripheral qualifier: a logical unit, no device connected


async def _skip_at_placeholder(ctx: Context) -> None:
    """Skip when the outsider's INQUIRY at the LUN finds a placeholder logical unit
    (peripheral qualifier 001b) rather than an incorrect logical unit (module docstring)."""
    r = await ctx.o.scsi(c.inquiry(96), data_in=96)
    if r.good and r.data and r.data[0] >> 5 == PQ_NOT_CONNECTED:
        raise CaseSkipped(f"LUN {ctx.o.lun} answers the outsider from a placeholder logical "
                          f"unit (INQUIRY byte 0 = {r.data[0]:#04x}, peripheral qualifier "
                          "001b): masking cannot be observed at this LUN; check another LUN")


@case("masking.report-luns.mapped")
async def _luns_mapped(ctx: Context) -> None:
    """REPORT LUNS from a mapped initiator lists the LUN under check."""
    r = expect(await ctx.a.scsi(c.report_luns(), data_in=4096), step="REPORT LUNS from A")
    luns = c.lun_numbers(r.data)
    if ctx.a.lun not in luns:
        raise CaseFailed("REPORT LUNS from A", f"a list with LUN {ctx.a.lun}", str(luns))


@case("masking.report-luns.outsider", outsider=True)
async def _luns_outsider(ctx: Context) -> None:
    """REPORT LUNS from the outsider (to LUN 0 and the LUN): GOOD, without the LUN."""
    o = ctx.o
    await _skip_at_placeholder(ctx)
    for lun in sorted({0, o.lun}):
        r = await o.scsi(c.report_luns(), data_in=4096, lun=lun)
        if lun != 0 and matches(r, CHECK, LU_NOT_SUPPORTED):
            # SPC-4 6.33 asks REPORT LUNS of LUN 0; sent to an incorrect logical unit it
            # may end like any other command there (fcsoft answers it, docs/behaviour.md 3)
            continue
        expect(r, step=f"REPORT LUNS to LUN {lun} from the outsider")
        luns = c.lun_numbers(r.data)
        if o.lun in luns:
            raise CaseFailed(f"REPORT LUNS to LUN {lun} from the outsider",
                             f"a list without LUN {o.lun}", str(luns))


@case("masking.inquiry.outsider", outsider=True)
async def _inquiry_outsider(ctx: Context) -> None:
    """INQUIRY to an unmapped LUN: GOOD, peripheral qualifier 3, type 1Fh (byte 0 = 7Fh)."""
    await _skip_at_placeholder(ctx)
    r = expect(await ctx.o.scsi(c.inquiry(96), data_in=96), step="INQUIRY from the outsider")
    expect_equal("INQUIRY byte 0 from the outsider", "0x7f",
                 f"{r.data[0]:#04x}" if r.data else "no data")


@case("masking.request-sense.outsider", outsider=True)
async def _request_sense_outsider(ctx: Context) -> None:
    """REQUEST SENSE to an unmapped LUN: GOOD with 25/00 in the sense data."""
    await _skip_at_placeholder(ctx)
    r = expect(await ctx.o.scsi(c.request_sense(), data_in=252),
               step="REQUEST SENSE from the outsider")
    got = "no sense data"
    if len(r.data) >= 14 and r.data[0] & 0x7F in (0x70, 0x71):
        got = f"{r.data[2] & 0xF:X}/{r.data[12]:02X}/{r.data[13]:02X}"
    elif len(r.data) >= 4 and r.data[0] & 0x7F in (0x72, 0x73):
        got = f"{r.data[1] & 0xF:X}/{r.data[2]:02X}/{r.data[3]:02X}"
    expect_equal("REQUEST SENSE data from the outsider (key/ASC/ASCQ)", "5/25/00", got)


@case("masking.commands.outsider", outsider=True)
async def _commands_outsider(ctx: Context) -> None:
    """Other commands to an unmapped LUN: CHECK CONDITION, ILLEGAL REQUEST 25/00."""
    o = ctx.o
    await _skip_at_placeholder(ctx)
    tests: list[tuple[str, bytes, bytes | None, int]] = [
        ("TEST UNIT READY", c.test_unit_ready(), None, 0),
        ("READ CAPACITY(10)", c.read_capacity_10(), None, 8),
        ("MODE SENSE(6)", c.mode_sense_6(), None, 255),
        ("READ(10)", c.read_10(ctx.scratch_lba), None, ctx.block_size),
        ("WRITE(10)", c.write_10(ctx.scratch_lba), ctx.block(b"outsider"), 0),
        ("SYNCHRONIZE CACHE(10)", c.synchronize_cache_10(), None, 0),
        ("PERSISTENT RESERVE IN", c.persistent_reserve_in(PrIn.READ_KEYS, 1024), None, 1024),
        ("PERSISTENT RESERVE OUT", c.persistent_reserve_out(PrOut.REGISTER, 24),
         c.basic_parameters(0, o.key), 0),
        ("RESERVE(6)", c.reserve_6(), None, 0),
    ]
    want_text, got_text = [], []
    for name, cdb, data_out, data_in in tests:
        result = await o.scsi(cdb, data_out=data_out, data_in=data_in)
        if not matches(result, CHECK, LU_NOT_SUPPORTED):
            want_text.append(f"{name}: {describe_expected(CHECK, LU_NOT_SUPPORTED)}")
            got_text.append(f"{name}: {describe(result)}")
    if want_text:
        raise CaseFailed("commands from the outsider", "; ".join(want_text),
                         "; ".join(got_text))
    await ctx.expect_keys("READ KEYS after the outsider's REGISTER", [])
