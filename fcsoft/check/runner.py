"""The check engine: log in once per initiator, give each case a clean logical unit, judge
what comes back, and report.

Theory of operation
-------------------
`run_check(options)` logs every initiator into the fabric over TCP (`open_host`; a `--vport`
initiator with FDISC on the first initiator's link), opens one I_T nexus per initiator to
the target port (PLOGI + PRLI) and keeps it for the whole run. A case that needs an I_T
nexus loss logs that nexus out of the target (LOGO) and back in; `Port.scsi` logs in again
by itself whenever a nexus is logged out.

Before every case, `Context.reset` makes the LU clean: it drains pending unit attentions
from every nexus (TEST UNIT READY until no UNIT ATTENTION), releases an SPC-2 reservation if
PERSISTENT RESERVE IN conflicts, and when anything is registered takes a registration with
REGISTER AND IGNORE EXISTING KEY (again with ALL_TG_PT=1 if the target refuses to change a
registration made with it otherwise, as LIO does) and CLEARs, then drains the 2A/03s that
causes. The same
reset, unconditional, runs before the first case and after the last (the suite's clean-up).

A case is an async function of a `Context`. It states what it expects with `expect(result,
status=..., sense=(key, asc, ascq), step=...)` and the `Context` helpers; the first unmet
expectation raises `CaseFailed` (expected and observed, as text), `CaseSkipped` skips it.
Setup steps are held to GOOD the same way, so a case never passes on a broken setup.

Unit attentions: commands whose status a case checks are sent once (a UNIT ATTENTION there
is an observation). State queries (`Context.keys`, `.held`, ...) and setup steps retry
through unit attentions, so a case that cares about unit attentions checks them
(`Context.expect_uas`) before it queries state from that nexus.
"""

from __future__ import annotations

import fnmatch
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TextIO, TypeVar

from fcsoft.initiator.scsi import ITNexus, ScsiResult
from fcsoft.scsi.sense import SenseKey, Status
from fcsoft.wire.wwn import WWN

from . import commands
from .commands import PrIn, PrOut

if TYPE_CHECKING:
    from fcsoft.initiator.host import Host, NPort

__all__ = ["CannotRun", "Case", "CaseFailed", "CaseResult", "CaseSkipped", "CheckOptions",
           "Context", "Port", "Summary", "describe", "expect", "run_check"]

GOOD = Status.GOOD
CONFLICT = Status.RESERVATION_CONFLICT
CHECK = Status.CHECK_CONDITION

SenseCode = tuple[int, int, int]  # (sense key, ASC, ASCQ)
Ua = tuple[int, int]  # (ASC, ASCQ) of a UNIT ATTENTION

#: names for the codes the suite meets (SPC-4 Annex D), for readable reports
ASC_NAMES: dict[tuple[int, int], str] = {
    (0x1A, 0x00): "PARAMETER LIST LENGTH ERROR",
    (0x20, 0x00): "INVALID COMMAND OPERATION CODE",
    (0x24, 0x00): "INVALID FIELD IN CDB",
    (0x25, 0x00): "LOGICAL UNIT NOT SUPPORTED",
    (0x26, 0x00): "INVALID FIELD IN PARAMETER LIST",
    (0x26, 0x04): "INVALID RELEASE OF PERSISTENT RESERVATION",
    (0x29, 0x00): "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED",
    (0x29, 0x07): "I_T NEXUS LOSS OCCURRED",
    (0x2A, 0x03): "RESERVATIONS PREEMPTED",
    (0x2A, 0x04): "RESERVATIONS RELEASED",
    (0x2A, 0x05): "REGISTRATIONS PREEMPTED",
    (0x2F, 0x00): "COMMANDS CLEARED BY ANOTHER INITIATOR",
    (0x3F, 0x0E): "REPORTED LUNS DATA HAS CHANGED",
}

_T = TypeVar("_T")

UA_DRAIN_LIMIT = 16  # a nexus with more pending unit attentions than this is broken


# --- outcomes and their descriptions -------------------------------------------------------


class CaseFailed(Exception):
    """An expectation of a case was not met."""

    def __init__(self, step: str, expected: str, observed: str) -> None:
        super().__init__(f"{step}: expected {expected}, observed {observed}")
        self.step = step
        self.expected = expected
        self.observed = observed


class CaseSkipped(Exception):
    """The case cannot run here (the reason says why)."""


class CannotRun(Exception):
    """The suite cannot start: the fabric, the target or the LU is out of reach."""


def describe_code(key: int, asc: int, ascq: int) -> str:
    try:
        key_name = SenseKey(key).name.replace("_", " ")
    except ValueError:
        key_name = f"sense key {key:#x}"
    name = ASC_NAMES.get((asc, ascq))
    return f"{key_name} {asc:02X}/{ascq:02X}" + (f" ({name})" if name else "")


def describe_ua(code: Ua) -> str:
    name = ASC_NAMES.get(code)
    return f"{code[0]:02X}/{code[1]:02X}" + (f" {name}" if name else "")


def _status_name(status: int) -> str:
    try:
        return Status(status).name.replace("_", " ")
    except ValueError:
        return f"status {status:#04x}"


def _rsp_code_name(code: int) -> str:
    from fcsoft.names import code as named
    from fcsoft.wire.fcp import FcpRspCode

    return named(code, FcpRspCode)


def describe(result: ScsiResult) -> str:
    """A result as a report shows it: "GOOD", "RESERVATION CONFLICT", "CHECK CONDITION,
    ILLEGAL REQUEST 24/00 (INVALID FIELD IN CDB)"."""
    text = _status_name(result.status)
    if result.response_code:
        text += f" (FCP_RSP response code {_rsp_code_name(result.response_code)})"
    if result.status == CHECK:
        sense = result.sense
        text += (f", {describe_code(sense.key, *sense.code)}" if sense is not None
                 else " without sense data")
    return text


def describe_expected(status: int, sense: SenseCode | Sequence[SenseCode] | None) -> str:
    text = _status_name(status)
    codes = _codes(sense)
    if codes:
        text += ", " + " or ".join(describe_code(*code) for code in codes)
    return text


def _codes(sense: SenseCode | Sequence[SenseCode] | None) -> list[SenseCode]:
    if sense is None:
        return []
    if sense and isinstance(sense[0], int):
        return [sense]  # type: ignore[list-item]
    return list(sense)  # type: ignore[arg-type]


def matches(result: ScsiResult, status: int = GOOD,
            sense: SenseCode | Sequence[SenseCode] | None = None) -> bool:
    """Whether `result` has `status` (and, if given, one of the sense codes)."""
    if result.status != status or result.response_code not in (None, 0):
        return False
    codes = _codes(sense)
    if not codes:
        return True
    got = result.sense
    return got is not None and (int(got.key), *got.code) in codes


def expect(result: ScsiResult, status: int = GOOD,
           sense: SenseCode | Sequence[SenseCode] | None = None, *, step: str) -> ScsiResult:
    """`result` if it has `status` (and one of the `sense` codes, each (key, asc, ascq));
    raises CaseFailed naming `step` otherwise."""
    if not matches(result, status, sense):
        raise CaseFailed(step, describe_expected(status, sense), describe(result))
    return result


def expect_equal(step: str, expected: object, observed: object,
                 show: Callable[[object], str] = str) -> None:
    """Raise CaseFailed unless `observed == expected`."""
    if observed != expected:
        raise CaseFailed(step, show(expected), show(observed))


def hex_key(key: object) -> str:
    return f"{key:#018x}" if isinstance(key, int) else str(key)


def show_keys(keys: object) -> str:
    if isinstance(keys, (list, tuple)):
        return "[" + ", ".join(hex_key(k) for k in keys) + "]" if keys else "no keys"
    return str(keys)


# --- one initiator's nexus -------------------------------------------------------------------


class Port:
    """One initiator's I_T nexus to the target under check (A, B, C or the outsider O)."""

    def __init__(self, label: str, wwpn: WWN, key: int, it: ITNexus, lun: int) -> None:
        self.label = label
        self.wwpn = wwpn
        self.key = key  #: the reservation key this initiator registers
        self.it = it
        self.lun = lun

    def __repr__(self) -> str:
        return f"<Port {self.label} {self.wwpn}>"

    async def scsi(self, cdb: bytes, *, data_out: bytes | None = None, data_in: int = 0,
                   lun: int | None = None) -> ScsiResult:
        """Send one command to the LUN under check (or `lun`), logging in again first if
        a case logged this nexus out."""
        if not self.it.logged_in:
            await self.it.login()
        return await self.it.scsi(self.lun if lun is None else lun, cdb, data_out=data_out,
                                  data_in_len=data_in)

    async def settled(self, cdb: bytes, *, data_out: bytes | None = None,
                      data_in: int = 0) -> ScsiResult:
        """`scsi`, repeated while it answers UNIT ATTENTION (for queries and setup)."""
        for _ in range(UA_DRAIN_LIMIT):
            result = await self.scsi(cdb, data_out=data_out, data_in=data_in)
            if not _is_ua(result):
                return result
        return result

    async def drain_uas(self) -> list[Ua]:
        """Report every pending unit attention (TEST UNIT READY until something else
        answers); the codes in the order the LU reported them."""
        seen: list[Ua] = []
        for _ in range(UA_DRAIN_LIMIT):
            result = await self.scsi(commands.test_unit_ready())
            if not _is_ua(result):
                return seen
            sense = result.sense
            assert sense is not None
            seen.append(sense.code)
        raise CaseFailed(f"TEST UNIT READY from {self.label}",
                         "the unit attentions to run out",
                         f"{UA_DRAIN_LIMIT} unit attentions in a row: "
                         + ", ".join(describe_ua(u) for u in seen[:4]))

    async def prin(self, sa: int, allocation: int = 8192) -> ScsiResult:
        return await self.scsi(commands.persistent_reserve_in(sa, allocation),
                               data_in=allocation)

    async def prout(self, sa: int, *, key: int = 0, sa_key: int = 0, type: int = 0,
                    scope: int = 0, flags: int = 0,
                    parameters: bytes | None = None) -> ScsiResult:
        """PERSISTENT RESERVE OUT, sent once: the basic parameter list from `key` (RESERVATION
        KEY), `sa_key` (SERVICE ACTION RESERVATION KEY) and `flags`, or `parameters`."""
        if parameters is None:
            parameters = commands.basic_parameters(key, sa_key, flags)
        cdb = commands.persistent_reserve_out(sa, len(parameters), type, scope)
        return await self.scsi(cdb, data_out=parameters)

    async def logout_and_login(self) -> None:
        """I_T nexus loss on purpose: LOGO to the target port, then PLOGI + PRLI again."""
        await self.it.logout()
        await self.it.login()


def _is_ua(result: ScsiResult) -> bool:
    sense = result.sense
    return (result.status == CHECK and sense is not None
            and sense.key == SenseKey.UNIT_ATTENTION)


# --- what a case sees ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One check: `run(context)` raises CaseFailed / CaseSkipped, or returns (pass)."""

    name: str
    run: Callable[[Context], Awaitable[None]]
    initiators: int = 1  #: how many of --initiators it needs
    outsider: bool = False  #: needs --outsider
    summary: str = ""
    second_port: bool = False  #: needs --target2 (A2, B2: A and B through another port)

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]


class Context:
    """What a case works with: the ports A, B, C (the initiators) and O (the outsider),
    the LU's geometry, and helpers that query the reservation state and set it up."""

    def __init__(self, ports: Sequence[Port], outsider: Port | None,
                 outsider_error: str | None = None,
                 second: Sequence[Port] = ()) -> None:
        self.ports = list(ports)
        self._outsider = outsider
        self.outsider_error = outsider_error
        #: the initiators' nexuses with the second target port (--target2), A2 and B2
        self.second = list(second)
        self._rtpi2: int | None = None
        self.block_size = 512
        self.blocks = 0
        self._rtpi: int | None = None
        self._caps: commands.Capabilities | None = None

    # -- the ports ------------------------------------------------------------------------
    @property
    def a(self) -> Port:
        return self.ports[0]

    @property
    def b(self) -> Port:
        return self.ports[1]

    @property
    def c(self) -> Port:
        return self.ports[2]

    @property
    def a2(self) -> Port:
        """Initiator A through the second target port."""
        return self.second[0]

    @property
    def b2(self) -> Port:
        """Initiator B through the second target port."""
        return self.second[1]

    @property
    def o(self) -> Port:
        if self._outsider is None:
            raise CaseFailed("outsider login", "PLOGI and PRLI to the target accepted",
                             self.outsider_error or "no outsider")
        return self._outsider

    @property
    def scratch_lba(self) -> int:
        """The block the suite writes (the middle of the LU)."""
        return self.blocks // 2

    def block(self, tag: bytes = b"fcsoft check") -> bytes:
        return (tag * (self.block_size // len(tag) + 1))[:self.block_size]

    # -- queries (through unit attentions) --------------------------------------------------
    async def _prin(self, sa: PrIn, via: Port | None, allocation: int = 8192) -> bytes:
        port = via or self.a
        result = await port.settled(commands.persistent_reserve_in(sa, allocation),
                                    data_in=allocation)
        expect(result, step=f"PERSISTENT RESERVE IN {sa.name.replace('_', ' ')} from "
                            f"{port.label}")
        return result.data

    async def _decoded(self, sa: PrIn, decoder: Callable[[bytes], _T], via: Port | None) -> _T:
        data = await self._prin(sa, via)
        try:
            return decoder(data)
        except commands.BadData as exc:
            raise CaseFailed(f"PERSISTENT RESERVE IN {sa.name.replace('_', ' ')}",
                             "well-formed parameter data", str(exc)) from None

    async def keys(self, via: Port | None = None) -> commands.Keys:
        return await self._decoded(PrIn.READ_KEYS, commands.decode_read_keys, via)

    async def generation(self, via: Port | None = None) -> int:
        return (await self.keys(via)).generation

    async def held(self, via: Port | None = None) -> commands.Held:
        return await self._decoded(PrIn.READ_RESERVATION, commands.decode_read_reservation, via)

    async def full_status(self, via: Port | None = None) -> commands.FullStatus:
        return await self._decoded(PrIn.READ_FULL_STATUS, commands.decode_read_full_status, via)

    async def capabilities(self) -> commands.Capabilities:
        if self._caps is None:
            self._caps = await self._decoded(PrIn.REPORT_CAPABILITIES,
                                             commands.decode_report_capabilities, None)
        return self._caps

    async def relative_port(self, second: bool = False) -> int:
        """The RELATIVE TARGET PORT IDENTIFIER (VPD 83h) of the target port, or with
        `second` of the second target port."""
        cached = self._rtpi2 if second else self._rtpi
        if cached is None:
            via = self.a2 if second else self.a
            result = await via.settled(commands.inquiry(252, page=0x83), data_in=252)
            cached = commands.relative_port_from_vpd83(result.data) if result.good else None
            if cached is None:
                raise CaseFailed(f"INQUIRY VPD page 83h from {via.label}",
                                 "a relative target port designator", "none")
            if second:
                self._rtpi2 = cached
            else:
                self._rtpi = cached
        return cached

    # -- expectations about state ---------------------------------------------------------
    async def expect_keys(self, step: str, expected: Iterable[int]) -> None:
        """READ KEYS lists exactly `expected` (in any order)."""
        keys = (await self.keys()).keys
        expect_equal(step, sorted(expected), sorted(keys), show_keys)

    async def expect_held(self, step: str, pr_type: int | None, key: int = 0) -> None:
        """READ RESERVATION shows a reservation of `pr_type` with `key` (None: no
        reservation)."""
        held = await self.held()
        if pr_type is None:
            want = "no reservation"
        else:
            want = f"type {pr_type} reservation, key {hex_key(key)}, scope 0"
        got = (f"type {held.type} reservation, key {hex_key(held.key)}, scope {held.scope}"
               if held.reserved else "no reservation")
        if want != got:
            raise CaseFailed(step, want, got)

    async def expect_generation(self, step: str, before: int, delta: int) -> int:
        """PRGENERATION is `before + delta` (32-bit); returns it."""
        now = await self.generation()
        want = (before + delta) & 0xFFFF_FFFF
        if now != want:
            raise CaseFailed(step, f"PRGENERATION {want} ({before} {delta:+d})",
                             f"PRGENERATION {now} ({before} "
                             f"{((now - before + 2**31) % 2**32) - 2**31:+d})")
        return now

    async def expect_uas(self, step: str, expected: Mapping[Port, Iterable[Ua]],
                         tolerate: Iterable[Ua] = ()) -> None:
        """Drain every listed nexus's unit attentions; each must have had exactly the
        codes given (any order; `tolerate`d codes may also appear)."""
        extra = set(tolerate)
        want_text, got_text, wrong = [], [], False
        for port, codes in expected.items():
            want = set(codes)
            got = await port.drain_uas()
            if {u for u in got if u not in extra} != want:
                wrong = True
            want_text.append(f"{port.label}: " + (", ".join(map(describe_ua, sorted(want)))
                                                  or "none"))
            got_text.append(f"{port.label}: " + (", ".join(map(describe_ua, got)) or "none"))
        if wrong:
            raise CaseFailed(step, "; ".join(want_text), "; ".join(got_text))

    # -- setup ------------------------------------------------------------------------------
    async def register(self, *ports: Port, key: int | None = None) -> None:
        """REGISTER each port with its key (or `key`), from unregistered."""
        for p in ports:
            k = p.key if key is None else key
            result = await p.settled(commands.persistent_reserve_out(PrOut.REGISTER, 24),
                                     data_out=commands.basic_parameters(0, k))
            expect(result, step=f"setup: REGISTER from {p.label} (key {hex_key(k)})")

    async def reserve(self, port: Port, pr_type: int) -> None:
        result = await port.settled(
            commands.persistent_reserve_out(PrOut.RESERVE, 24, pr_type),
            data_out=commands.basic_parameters(port.key))
        expect(result, step=f"setup: RESERVE type {pr_type} from {port.label}")

    async def setup(self, holder: Port | None = None, pr_type: int | None = None,
                    registered: Iterable[Port] = ()) -> None:
        """Register `holder` and `registered`, then let `holder` reserve `pr_type`."""
        ports = ([holder] if holder is not None else []) + [
            p for p in registered if p is not holder]
        await self.register(*ports)
        if holder is not None and pr_type is not None:
            await self.reserve(holder, pr_type)

    async def write_block(self, port: Port) -> ScsiResult:
        return await port.scsi(commands.write_10(self.scratch_lba), data_out=self.block())

    # -- isolation between cases ------------------------------------------------------------
    async def reset(self, *, force: bool = False) -> None:
        """No registrations, no reservation, no SPC-2 reservation, no pending unit
        attentions (module docstring). `force`: CLEAR even when nothing is registered."""
        for p in self._every_port():
            await p.drain_uas()
        a = self.a
        read_keys = commands.persistent_reserve_in(PrIn.READ_KEYS, 8192)
        result = await a.settled(read_keys, data_in=8192)
        if result.status == CONFLICT:  # an SPC-2 reservation: whoever of us holds it releases
            for p in self.ports:
                await p.settled(commands.release_6())
            result = await a.settled(read_keys, data_in=8192)
        expect(result, step="reset: PERSISTENT RESERVE IN READ KEYS from A")
        if force or commands.decode_read_keys(result.data).additional_length:
            riek = commands.persistent_reserve_out(PrOut.REGISTER_AND_IGNORE_EXISTING_KEY, 24)
            result = await a.settled(riek, data_out=commands.basic_parameters(0, a.key))
            if matches(result, CHECK) and result.sense is not None and \
                    result.sense.key == SenseKey.ILLEGAL_REQUEST:
                # A still holds a registration made with ALL_TG_PT=1 (multiport cases), and
                # the target wants the bit again to change it (LIO: 24/00 otherwise)
                result = await a.settled(riek, data_out=commands.basic_parameters(
                    0, a.key, commands.ALL_TG_PT))
            expect(result, step="reset: REGISTER AND IGNORE EXISTING KEY from A")
            expect(await a.settled(commands.persistent_reserve_out(PrOut.CLEAR, 24),
                                   data_out=commands.basic_parameters(a.key)),
                   step="reset: CLEAR from A")
            for p in self._every_port():
                await p.drain_uas()

    def _every_port(self) -> list[Port]:
        """Every nexus of the run: A, B, C, their second-port nexuses and the outsider."""
        return self.ports + self.second + ([self._outsider] if self._outsider else [])


# --- running the suite -----------------------------------------------------------------------

#: reservation keys of initiators A, B, C (and the outsider), recognisable in any trace
KEYS = (0xA1A1_0000_0000_00A1, 0xB2B2_0000_0000_00B2, 0xC3C3_0000_0000_00C3,
        0x0505_0000_0000_0005)


@dataclass(frozen=True)
class CheckOptions:
    """What `fcsoft check` was asked to do."""

    fabric: tuple[str, int]
    target: WWN
    lun: int
    initiators: tuple[WWN, ...]
    outsider: WWN | None = None
    target2: WWN | None = None  #: another target port of the array (multiport cases)
    vports: frozenset[WWN] = frozenset()  #: log these in with FDISC on the first link
    timeout: float = 10.0
    patterns: tuple[str, ...] = ()  #: fnmatch patterns of case names; () = every case


@dataclass
class CaseResult:
    name: str
    outcome: Literal["pass", "fail", "skip"]
    seconds: float = 0.0
    step: str = ""
    expected: str = ""
    observed: str = ""
    reason: str = ""  #: why it was skipped


@dataclass
class Summary:
    results: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0
    cleanup_error: str | None = None

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count("fail") == 0 and self.cleanup_error is None

    def line(self) -> str:
        return (f"{self.count('pass')} passed, {self.count('fail')} failed, "
                f"{self.count('skip')} skipped")


WARNING = ("WARNING: fcsoft check is destructive: it writes data to LUN {lun} of target "
           "{target} and clears and changes its reservations (persistent and SPC-2), "
           "including those of other initiators.")


def select(cases: Sequence[Case], patterns: Sequence[str]) -> list[Case]:
    if not patterns:
        return list(cases)
    return [k for k in cases if any(fnmatch.fnmatchcase(k.name, p) for p in patterns)]


def _skip_reason(case: Case, options: CheckOptions) -> str | None:
    have = len(options.initiators)
    if case.initiators > have:
        return f"needs {case.initiators} initiators, {have} given with --initiators"
    if case.outsider and options.outsider is None:
        return "needs --outsider (an initiator the LUN is not mapped to)"
    if case.second_port and options.target2 is None:
        return "needs --target2 (another target port of the same array)"
    return None


def report_line(result: CaseResult) -> str:
    head = f"{result.outcome.upper()}  {result.name}"
    if result.outcome == "skip":
        return f"{head}  ({result.reason})"
    if result.outcome == "fail":
        return (f"{head}\n      step:     {result.step}\n      expected: {result.expected}"
                f"\n      observed: {result.observed}")
    return head


async def run_case(case: Case, ctx: Context) -> CaseResult:
    """Reset the LU, run one case, and say how it went."""
    start = time.perf_counter()
    try:
        try:
            await ctx.reset()
        except CaseFailed as exc:
            raise CaseFailed(f"before the case, {exc.step}", exc.expected,
                             exc.observed) from None
        await case.run(ctx)
    except CaseSkipped as exc:
        return CaseResult(case.name, "skip", time.perf_counter() - start, reason=str(exc))
    except CaseFailed as exc:
        return CaseResult(case.name, "fail", time.perf_counter() - start, exc.step,
                          exc.expected, exc.observed)
    except Exception as exc:  # noqa: BLE001 - a timeout or a lost link fails this case only
        return CaseResult(case.name, "fail", time.perf_counter() - start,
                          "sending the case's commands", "answers to every command",
                          f"{type(exc).__name__}: {exc}")
    return CaseResult(case.name, "pass", time.perf_counter() - start)


async def run_check(options: CheckOptions, cases: Sequence[Case] | None = None, *,
                    out: TextIO | None = None, err: TextIO | None = None) -> Summary:
    """Run the suite (default: every case of fcsoft.check.cases) against the target,
    printing one line per case to `out` and the warning to `err`. Raises CannotRun when
    the initiators cannot reach the LU at all."""
    if cases is None:
        from .cases import CASES
        cases = CASES
    try:
        return await _run_check(options, select(cases, options.patterns),
                                out if out is not None else sys.stdout,
                                err if err is not None else sys.stderr)
    except BaseExceptionGroup as group:  # raised inside open_host's nursery
        cannot = _first(group, CannotRun)
        if cannot is None:
            raise
        raise cannot from None


def _first(exc: BaseException, kind: type[Exception]) -> Exception | None:
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _first(inner, kind)
            if found is not None:
                return found
    return None


async def _run_check(options: CheckOptions, chosen: Sequence[Case], out: TextIO,
                     err: TextIO) -> Summary:
    from fcsoft.initiator.host import open_host

    print(WARNING.format(lun=options.lun, target=options.target), file=err, flush=True)
    summary = Summary()
    start = time.perf_counter()
    async with AsyncExitStack() as stack:
        initiators = list(options.initiators[:3])
        first: Host | None = None

        async def login(wwpn: WWN) -> NPort:
            """Fabric login: the first initiator opens a link, the others open their own
            or, with --vport, FDISC on the first one's."""
            nonlocal first
            if first is not None and wwpn in options.vports:
                return await first.add_vport(wwpn)
            host = await stack.enter_async_context(
                open_host(options.fabric, wwpn, timeout=options.timeout))
            first = first or host
            return host

        nports: dict[WWN, NPort] = {}

        async def nexus(wwpn: WWN, target: WWN | None = None) -> ITNexus:
            """Fabric login (once per initiator), then PLOGI + PRLI to the target (kept for
            the whole run)."""
            if wwpn not in nports:
                nports[wwpn] = await login(wwpn)
            return await stack.enter_async_context(  # type: ignore[no-any-return]
                nports[wwpn].connect(target or options.target, timeout=options.timeout))

        ports = []
        for i, wwpn in enumerate(initiators):
            try:
                it = await nexus(wwpn)
            except (OSError, TimeoutError) as exc:
                raise CannotRun(f"cannot log in to the fabric at {options.fabric[0]}:"
                                f"{options.fabric[1]} as {wwpn}: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - LoginRejected, LookupError, ElsRejected
                raise CannotRun(f"initiator {wwpn} cannot log in to target "
                                f"{options.target}: {exc}") from None
            ports.append(Port("ABC"[i], wwpn, KEYS[i], it, options.lun))
        second = []
        if options.target2 is not None:
            for i, wwpn in enumerate(initiators[:2]):
                try:
                    it = await nexus(wwpn, options.target2)
                except Exception as exc:  # noqa: BLE001 - LookupError, ElsRejected, timeouts
                    raise CannotRun(f"initiator {wwpn} cannot log in to --target2 "
                                    f"{options.target2}: {exc}") from None
                second.append(Port("AB"[i] + "2", wwpn, KEYS[i], it, options.lun))
        outsider = None
        outsider_error = None
        if options.outsider is not None:
            try:
                outsider = Port("O", options.outsider, KEYS[3], await nexus(options.outsider),
                                options.lun)
            except Exception as exc:  # noqa: BLE001 - reported by the outsider's cases
                outsider_error = f"{type(exc).__name__}: {exc}"
        ctx = Context(ports, outsider, outsider_error, second)
        try:
            await _prepare(ctx, options)
        except CannotRun:
            raise
        except CaseFailed as exc:
            raise CannotRun(f"{exc.step}: expected {exc.expected}, observed "
                            f"{exc.observed}") from None
        except Exception as exc:  # noqa: BLE001 - a timeout or a lost link
            raise CannotRun(f"preparing the LU: {type(exc).__name__}: {exc}") from None
        for case in chosen:
            reason = _skip_reason(case, options)
            result = (CaseResult(case.name, "skip", reason=reason) if reason
                      else await run_case(case, ctx))
            summary.results.append(result)
            print(report_line(result), file=out, flush=True)
        try:
            await ctx.reset(force=True)
        except Exception as exc:  # noqa: BLE001 - reported, and the exit status says so
            summary.cleanup_error = str(exc)
            print(f"WARNING: clean-up at the end failed: {exc}", file=err, flush=True)
    summary.seconds = time.perf_counter() - start
    print(summary.line(), file=out, flush=True)
    return summary


async def _prepare(ctx: Context, options: CheckOptions) -> None:
    """Every initiator sees the LU (through each target port), the outsider does not; learn
    the LU's geometry; the clean-up at the start."""
    for p in ctx.ports + ctx.second:
        result = expect(await p.settled(commands.inquiry(96), data_in=96),
                        step=f"INQUIRY to LUN {options.lun} from {p.label} ({p.wwpn})")
        if not result.data or result.data[0] >> 5 != 0:
            raise CaseFailed(f"INQUIRY to LUN {options.lun} from {p.label} ({p.wwpn})",
                             "peripheral qualifier 0 (the LUN is mapped to this initiator)",
                             f"byte 0 = {result.data[0]:#04x}" if result.data else "no data")
    if ctx.outsider_error is None and options.outsider is not None:
        o = ctx.o
        result = await o.settled(commands.inquiry(96), data_in=96)
        if result.good and result.data and result.data[0] >> 5 == 0:
            raise CannotRun(f"--outsider {o.wwpn} reaches LUN {options.lun} (INQUIRY "
                            "answers peripheral qualifier 0): the LUN is mapped to it; give "
                            "an initiator the LUN is not mapped to")
    result = expect(await ctx.a.settled(commands.read_capacity_16(), data_in=32),
                    step="READ CAPACITY(16) from A")
    if len(result.data) < 12:
        raise CaseFailed("READ CAPACITY(16) from A", "32 bytes of data",
                         f"{len(result.data)} bytes")
    last = int.from_bytes(result.data[0:8], "big")
    ctx.blocks = last + 1
    ctx.block_size = int.from_bytes(result.data[8:12], "big")
    await ctx.reset(force=True)

