"""The disk logical unit: one per configured LUN, shared by every target port of its array.

Theory of operation
-------------------
The transport drives a `LogicalUnit` through two calls per command (see types.py):

    precheck(cmd) -> Result | None      before any data moves
    execute(cmd)  -> Result             after the data-out buffer (if any) is in cmd.data_out

precheck runs, in this order (the order LIO applies, SAM-5 5.14 / SPC-4 5.9):

1. first contact: a nexus the LU has not seen since power on or the last reset gets
   POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29/00) queued;
2. unit attention: any command but INQUIRY, REPORT LUNS and REQUEST SENSE is answered CHECK
   CONDITION with the highest-priority pending condition, which that clears (only that one);
3. reservations: `reservations.check(cmd)` for every command except PERSISTENT RESERVE IN/OUT
   and RESERVE/RELEASE(6)/(10), which the engine judges when they execute;
4. the CDB: opcode (20/00), service action (24/00 on byte 1), reserved bits (24/00 with field
   and bit pointer, see cdb.py), then the command's own checks (LBA range 21/00, transfer
   length, fields that need no data).

execute repeats step 4 (it is cheap, and keeps execute safe on its own) and runs the command.
Handlers raise `CheckCondition`; this module turns it into the Result. Data-in is always cut
to the CDB's ALLOCATION LENGTH here; the transport cuts further to FCP_DL. An OSError from the
backing store becomes MEDIUM ERROR (11/00 reading, 0C/00 writing) or, for ENOSPC, DATA
PROTECT 27/07 (space allocation failed).

Block commands live in block.py (a mixin), mode pages in modes.py, INQUIRY data in
inquiry.py, CDB layouts in cdb.py. The LU holds no reservation logic: it calls the engine it
was given (duck typed; fcsoft.scsi.reservations.ReservationEngine in production).

Choices where the standards leave room:
- START STOP UNIT is validated and flushes on a stop, but the LU never leaves the active
  state: it is shared by hosts, and one host's shutdown must not stop it for the others (what
  arrays do). LOEJ on this non-removable medium is a no-op (GOOD).
- REQUEST SENSE with DESC=1 is INVALID FIELD IN CDB: only fixed-format sense is offered.
- LU reset and target reset: the next command from every nexus gets 29/00 (SAM-5 6.3.3 allows
  the generic code), mode parameters return to their defaults, the engine's `reset()` runs.
"""

from __future__ import annotations

import dataclasses
import errno
import random
import struct
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from fcsoft.config import ArrayConfig
from fcsoft.wire.wwn import WWN

from .alua import ASYMMETRIC_ACCESS_STATE_CHANGED, PortGroups
from .backing import CHUNK_SIZE, Backing, MemoryBacking, open_backing
from .block import BlockCommands
from .cdb import (
    SERVICE_ACTION_OPCODES,
    SERVICE_ACTION_SUPPORTED,
    SUPPORTED_COMMANDS,
    CommandInfo,
    MaintenanceIn,
    Opcode,
    ServiceActionIn16,
    check_reserved_bits,
    command_info,
    lba_length,
    reserved_bits,
    supported_operation_codes,
    u16,
    u32,
)
from .inject import InjectedError
from .inquiry import (
    BlockLimits,
    LuIdentity,
    lu_naa_designator,
    parse_inquiry_cdb,
    standard_inquiry,
    target_port_groups,
    vpd_page,
)
from .modes import ModePages
from .sense import (
    CAPACITY_DATA_HAS_CHANGED,
    I_T_NEXUS_LOSS_OCCURRED,
    INVALID_COMMAND_OPERATION_CODE,
    MODE_PARAMETERS_CHANGED,
    NO_ADDITIONAL_SENSE,
    POWER_ON_RESET_OR_BUS_DEVICE_RESET,
    REPORTED_LUNS_DATA_HAS_CHANGED,
    Asc,
    CheckCondition,
    Sense,
    SenseKey,
    illegal_request,
    invalid_field_in_cdb,
)
from .types import GOOD, Command, Deferral, Nexus, Result
from .ua import UnitAttentions

__all__ = ["EngineFactory", "LogicalUnit", "encode_lun", "report_luns_data"]

UNRECOVERED_READ_ERROR = Asc(0x11, 0x00)
WRITE_ERROR = Asc(0x0C, 0x00)
SPACE_ALLOCATION_FAILED_WRITE_PROTECT = Asc(0x27, 0x07)

#: not blocked by a pending unit attention (SAM-5 5.14, SPC-4 5.8.7)
_UA_EXEMPT = frozenset({Opcode.INQUIRY, Opcode.REPORT_LUNS, Opcode.REQUEST_SENSE})
#: the reservation engine applies its own rules to these (no `check` call)
_DELEGATED = frozenset({Opcode.PERSISTENT_RESERVE_IN, Opcode.PERSISTENT_RESERVE_OUT,
                        Opcode.RESERVE_6, Opcode.RELEASE_6, Opcode.RESERVE_10,
                        Opcode.RELEASE_10})

#: builds the reservation engine of a LU (called once, from LogicalUnit.__init__)
EngineFactory = Callable[["LogicalUnit"], Any]
ResetKind = Literal["lun", "target", "power_on"]


# --- REPORT LUNS (shared with the array, which answers it for unmapped LUN numbers) --------


def encode_lun(number: int) -> bytes:
    """A LUN number as an 8-byte single-level LUN (SAM-5 4.7): peripheral device addressing
    below 256, flat space addressing (01b) up to 16383."""
    if number < 256:
        return bytes((0, number)) + bytes(6)
    return bytes((0x40 | (number >> 8), number & 0xFF)) + bytes(6)


def report_luns_data(cdb: bytes, luns: Iterable[int], addressed_lun: int) -> bytes:
    """REPORT LUNS parameter data (SPC-4 6.33) for the initiator's LUN numbers `luns`, cut to
    the ALLOCATION LENGTH (LUN LIST LENGTH keeps the full count). SELECT REPORT 00h and 02h
    list them; 01h (well known), 10h (administrative) and 12h (subsidiary) list none, as
    fcsoft has no such LUs; 11h lists them when sent to LUN 0. Others: INVALID FIELD IN CDB."""
    select = cdb[2]
    if select in (0x00, 0x02) or (select == 0x11 and addressed_lun == 0):
        numbers = sorted(luns)
    elif select in (0x01, 0x10, 0x11, 0x12):
        numbers = []
    else:
        raise invalid_field_in_cdb(2, 7)
    data = struct.pack(">I4x", 8 * len(numbers)) + b"".join(map(encode_lun, numbers))
    return data[:u32(cdb, 6)]


# --- dispatch table -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Handler:
    run: Callable[[LogicalUnit, Command, bytes], Result]
    check: Callable[[LogicalUnit, Command, bytes], None] | None = None
    writes: bool = False  # an OSError is a write error


def _withdraw(ua: UnitAttentions, nexus: Nexus, code: Asc) -> None:
    """Clear one pending condition of one nexus, keeping the others in their order."""
    pending = ua.pending(nexus)
    if code in pending:
        ua.clear(nexus)
        for other in pending:
            if other != code:
                ua.establish(nexus, other)


# the READs the data path may answer through fast_read (each one's CDB layout and reserved bits)
_FAST_READS: dict[int, CommandInfo] = {
    int(op): info for op in (Opcode.READ_10, Opcode.READ_16)
    if (info := command_info(op)) is not None}
#: the commands that read, write or flush the backing store (the rest touch memory only)
_BACKING_IO = frozenset({
    Opcode.READ_6, Opcode.READ_10, Opcode.READ_12, Opcode.READ_16,
    Opcode.WRITE_6, Opcode.WRITE_10, Opcode.WRITE_12, Opcode.WRITE_16,
    Opcode.WRITE_AND_VERIFY_10, Opcode.WRITE_AND_VERIFY_12, Opcode.WRITE_AND_VERIFY_16,
    Opcode.VERIFY_10, Opcode.VERIFY_12, Opcode.VERIFY_16,
    Opcode.SYNCHRONIZE_CACHE_10, Opcode.SYNCHRONIZE_CACHE_16,
    Opcode.WRITE_SAME_10, Opcode.WRITE_SAME_16, Opcode.UNMAP, Opcode.FORMAT_UNIT,
})
_PLAIN_WRITES = frozenset({Opcode.WRITE_6, Opcode.WRITE_10, Opcode.WRITE_12, Opcode.WRITE_16})
_IN_THREAD = Deferral(thread=True)


class _Sink:
    """Where a WRITE's data goes as it arrives (`LogicalUnit.data_out_sink`): called with
    (offset relative to the command's first block, data); `many` takes consecutive pieces
    from an offset at once (a run of data frames), in one call to the backing store when
    it has `write_many`."""

    __slots__ = ("_write", "_write_many", "_base")

    def __init__(self, backing: Any, base: int) -> None:
        self._write = backing.write
        self._write_many = getattr(backing, "write_many", None)
        self._base = base

    def __call__(self, offset: int, data: bytes | memoryview) -> None:
        self._write(self._base + offset, data)

    def many(self, offset: int, pieces: list[bytes | memoryview]) -> None:
        if self._write_many is not None:
            self._write_many(self._base + offset, pieces)
            return
        at = self._base + offset
        for data in pieces:
            self._write(at, data)
            at += len(data)


class LogicalUnit(BlockCommands):
    """A direct-access block device (SBC-3) with its unit attentions, mode pages, backing
    store and reservation engine.

    `array` and `index` name the LU's config (array.luns[index]); `ports` maps the array's
    target port WWPNs to relative target port identifiers (default: array.ports in order,
    from 1). `backing` defaults to the store the config names. The reservation engine is
    `reservations` if given, else `engine_factory(self)` (default: fcsoft.scsi.array's
    `default_engine_factory`).
    """

    def __init__(self, array: ArrayConfig, index: int, *, backing: Backing | None = None,
                 ports: Mapping[WWN, int] | Sequence[WWN] | None = None,
                 reservations: Any = None, engine_factory: EngineFactory | None = None
                 ) -> None:
        config = array.luns[index]
        self.config = config
        self.name = config.name
        self.index = index
        self.block_size = config.block_size
        self.blocks = config.blocks
        if ports is None:
            ports = array.ports
        self.ports: dict[WWN, int] = (dict(ports) if isinstance(ports, Mapping)
                                      else {WWN(p): i + 1 for i, p in enumerate(ports)})
        naa = config.naa or lu_naa_designator(array.node_wwn, config.name)
        self.identity = LuIdentity(array.vendor, array.product, naa, array.node_wwn,
                                   multiport=len(self.ports) > 1,
                                   pinned_serial=config.serial)
        self.unit_attentions = UnitAttentions()
        self.modes = ModePages()
        #: transport hook for PREEMPT AND ABORT: (lu, victims, caller) -> aborted nexuses
        self.on_abort_tasks: Callable[[LogicalUnit, set[Nexus], Nexus], Any] | None = None
        #: REPORT LUNS: the LUN numbers a nexus sees (default: just the one it addressed)
        self.lun_lister: Callable[[Nexus], Collection[int]] | None = None
        self._seen: set[Nexus] = set()
        #: the array's target port groups (ALUA, alua.py); None: every port active/optimized
        self.port_groups: PortGroups | None = None
        #: an error the administrator made this LU answer (inject.py), and its draws
        self.injected: InjectedError | None = None
        #: milliseconds every command's completion is held back (fcsoft ctl lu-latency);
        #: the transport does the waiting (fcsoft.target.fcp)
        self.latency_ms = 0
        self.random = random.Random()
        opened = backing is None
        self.backing = open_backing(config.backing, config.size) if backing is None else backing
        try:
            self.limits = BlockLimits.for_block_size(
                self.block_size, getattr(self.backing, "chunk_size", CHUNK_SIZE))
            if reservations is None:
                if engine_factory is None:
                    from .array import default_engine_factory
                    engine_factory = default_engine_factory
                reservations = engine_factory(self)
        except BaseException:
            if opened:
                self._discard_backing()
            raise
        self.reservations = reservations
        self._file_backed = not isinstance(self.backing, MemoryBacking)

    def __repr__(self) -> str:
        return (f"LogicalUnit({self.name!r}, blocks={self.blocks}, "
                f"block_size={self.block_size})")

    @property
    def serial(self) -> str:
        """Unit serial number (VPD 0x80)."""
        return self.identity.serial

    @property
    def naa(self) -> bytes:
        """The 16-byte NAA 6 LU designator (VPD 0x83), the same through every port."""
        return self.identity.naa

    # --- how a command is run (for the transport) -------------------------------------------

    def deferral(self, cmd: Command) -> Deferral | None:
        """Whether `cmd` (past its precheck) must run off the event loop: the commands that
        read, write or flush a file backing do blocking I/O, so they go to a worker thread.
        None: run it at once."""
        if self._file_backed and cmd.cdb and cmd.cdb[0] in _BACKING_IO:
            return _IN_THREAD
        return None

    def data_out_sink(self, cmd: Command) -> Callable[[int, memoryview], None] | None:
        """For a plain WRITE whose data lands in memory, a function taking (relative
        offset, data) that stores the data where it belongs as it arrives, so that the
        transport need not gather it first; the command then runs with
        `data_in_place`. None for anything else (the transport gathers the data)."""
        if self._file_backed or not cmd.cdb or cmd.cdb[0] not in _PLAIN_WRITES:
            return None
        try:
            lba, n = self._range(cmd.cdb, protect=cmd.cdb[0] >= 0x20)
        except CheckCondition:
            return None
        if not n or n * self.block_size != cmd.expected_length:
            return None
        return _Sink(self.backing, lba * self.block_size)

    # --- the two entry points ---------------------------------------------------------------

    def precheck(self, cmd: Command) -> Result | None:
        """Unit attention, reservation and CDB checks before any data moves (module
        docstring); None when the command may go on to `execute`."""
        nexus = cmd.nexus
        ua = self.unit_attentions
        if nexus not in self._seen:
            self._seen.add(nexus)
            ua.establish(nexus, POWER_ON_RESET_OR_BUS_DEVICE_RESET)
        cdb = cmd.cdb
        if not cdb:
            return Result.check(illegal_request(INVALID_COMMAND_OPERATION_CODE, 0).sense)
        op = cdb[0]
        if op not in _UA_EXEMPT and ua.has(nexus):
            return Result.check(ua.take(nexus))  # type: ignore[arg-type]
        groups = self.port_groups
        if groups is not None and not groups.all_active:
            refused = groups.check(cdb, self.relative_port(nexus))
            if refused is not None:
                return Result.check(refused)
        if op not in _DELEGATED:
            conflict = self.reservations.check(cmd)
            if conflict is not None:
                return conflict  # type: ignore[no-any-return]
        try:
            decoded = self._decode(cdb)
            handler, cdb = decoded
            if handler.check is not None:
                handler.check(self, cmd, cdb)
        except CheckCondition as exc:
            return Result.check(exc.sense)
        cmd.decoded = decoded  # the decode depends on the CDB alone: execute reuses it
        return None

    def fast_read(self, nexus: Nexus, cdb: bytes, expected: int
                  ) -> bytes | bytearray | memoryview | None:
        """The data of a READ(10) or READ(16) from `nexus` that precheck and execute would
        answer GOOD with exactly `expected` bytes, with nothing else to do on the way; None
        for anything else, which then takes the general path (the transport's data path
        asks this first). The same checks as the general path, for the state in which they
        all pass: a nexus already seen, no unit attention pending, every port group
        active/optimized, nothing reserved, no injected error or latency, a memory store,
        no reserved CDB bit, PROTECT 0, the transfer within the limits and the capacity,
        and FCP_DL equal to it."""
        if (self.injected is not None or self.latency_ms or self._file_backed
                or nexus not in self._seen or self.unit_attentions.has(nexus)
                or not getattr(self.reservations, "nothing_reserved", False)):
            return None
        groups = self.port_groups
        if groups is not None and not groups.all_active:
            return None
        info = _FAST_READS.get(cdb[0]) if cdb else None
        if info is None or len(cdb) < info.cdb_length or reserved_bits(cdb, info):
            return None
        try:
            lba, n = self._range(cdb)  # PROTECT, transfer length and capacity, as _read
        except CheckCondition:
            return None  # the general path says which
        bs = self.block_size
        if not n or n * bs != expected:
            return None
        return self.backing.read(lba * bs, n * bs)

    def execute(self, cmd: Command) -> Result:
        """Run the command (after a precheck that returned None)."""
        handler: _Handler | None = None
        injected = self.injected
        if injected is not None and cmd.cdb and injected.applies(cmd.cdb[0], self.random):
            return injected.result()
        try:
            decoded = cast("tuple[_Handler, bytes] | None", cmd.decoded)
            if decoded is None:
                if not cmd.cdb:
                    raise illegal_request(INVALID_COMMAND_OPERATION_CODE, 0)
                decoded = self._decode(cmd.cdb)
            handler = decoded[0]
            return handler.run(self, cmd, decoded[1])
        except CheckCondition as exc:
            return Result.check(exc.sense)
        except OSError as exc:
            return Result.check(_io_error(exc, handler is not None and handler.writes))

    def _decode(self, cdb: bytes) -> tuple[_Handler, bytes]:
        """The handler for `cdb`, and the CDB padded to its full length; raises for an
        unsupported opcode or service action and for reserved bits set."""
        op = cdb[0]
        if op in SERVICE_ACTION_OPCODES:
            sa = cdb[1] & 0x1F if len(cdb) > 1 else 0
            info = command_info(op, sa)
            if info is None:
                if op in SERVICE_ACTION_SUPPORTED:
                    raise invalid_field_in_cdb(1, 4)
                raise illegal_request(INVALID_COMMAND_OPERATION_CODE, 0)
            entry = _DISPATCH.get(op) or _DISPATCH[op << 8 | sa]
            handler = entry[0]
        else:
            found = _DISPATCH.get(op)
            if found is None:
                raise illegal_request(INVALID_COMMAND_OPERATION_CODE, 0)
            handler, info = found
        if len(cdb) < info.cdb_length:
            cdb = bytes(cdb).ljust(info.cdb_length, b"\0")
        check_reserved_bits(cdb, info)
        return handler, cdb

    def data_out_length(self, cdb: bytes) -> int:
        """Bytes of data-out the CDB asks for (0 for commands without a data-out phase or
        CDBs that will be refused); a transport may use it to size its buffer."""
        try:
            return _data_out_length(cdb, self.block_size)
        except (IndexError, struct.error):
            return 0

    # --- events from the transport and the array --------------------------------------------

    def nexus_lost(self, nexus: Nexus) -> None:
        """I_T nexus loss (logout, link down): the engine drops what dies with the nexus;
        the nexus, if it had been in contact, gets I_T NEXUS LOSS OCCURRED (29/07)."""
        self.reservations.nexus_lost(nexus)
        if nexus in self._seen:
            self.unit_attentions.establish(nexus, I_T_NEXUS_LOSS_OCCURRED)

    def reset(self, kind: ResetKind = "lun") -> None:
        """LOGICAL UNIT RESET, target reset or power on: pending unit attentions go, every
        nexus gets 29/00 at its next command, mode parameters return to their defaults, the
        engine releases what resets release (SPC-2 reservations)."""
        if kind not in ("lun", "target", "power_on"):
            raise ValueError(f"unknown reset kind {kind!r}")
        for nexus in self._seen:
            self.unit_attentions.clear(nexus)
        self._seen.clear()
        self.modes.reset()
        self.reservations.reset()

    def luns_changed(self, nexuses: Iterable[Nexus]) -> None:
        """The LUN inventory of these nexuses changed: REPORTED LUNS DATA HAS CHANGED."""
        self.unit_attentions.establish_all(nexuses, REPORTED_LUNS_DATA_HAS_CHANGED)

    def alua_changed(self) -> None:
        """A target port group's state changed: ASYMMETRIC ACCESS STATE CHANGED (2A/06) for
        every nexus in contact with this LU."""
        self.unit_attentions.establish_all(self._seen, ASYMMETRIC_ACCESS_STATE_CHANGED)

    def resize(self, size: int, nexuses: Iterable[Nexus]) -> None:
        """Change the capacity to `size` bytes (a multiple of the block size): the backing
        grows or shrinks first (ValueError when it cannot, nothing changed then), and the
        nexuses that see the LU get CAPACITY DATA HAS CHANGED (2A/09)."""
        if size <= 0 or size % self.block_size:
            raise ValueError(f"size must be a positive multiple of the block size "
                             f"{self.block_size}, not {size}")
        resize = getattr(self.backing, "resize", None)
        if resize is None:
            raise ValueError("this LU's backing store cannot change size")
        resize(size)
        self.config = dataclasses.replace(self.config, size=size)
        self.blocks = size // self.block_size
        self.unit_attentions.establish_all(nexuses, CAPACITY_DATA_HAS_CHANGED)

    def report_luns_seen(self, nexus: Nexus) -> None:
        """A REPORT LUNS from `nexus` completed: its 3F/0E is no longer pending here."""
        _withdraw(self.unit_attentions, nexus, REPORTED_LUNS_DATA_HAS_CHANGED)

    def abort_tasks(self, victims: set[Nexus], caller: Nexus) -> Any:
        """The engine's PREEMPT AND ABORT hook: forwarded to `on_abort_tasks`; with no
        transport attached there is nothing outstanding to abort."""
        if self.on_abort_tasks is None:
            return ()
        return self.on_abort_tasks(self, victims, caller)

    def close(self) -> None:
        """Close the backing store (releases a file's lock)."""
        self.backing.close()

    def discard(self) -> None:
        """Close the backing store and remove its file if opening it created the file: a
        start that failed leaves no new files behind."""
        self._discard_backing()

    def _discard_backing(self) -> None:
        discard = getattr(self.backing, "discard", None)
        if discard is not None:
            discard()
        else:
            self.backing.close()

    def relative_port(self, nexus: Nexus) -> int:
        """The relative target port identifier of the nexus's target port."""
        return self.ports.get(nexus.target, nexus.relative_port)

    # --- SPC commands ----------------------------------------------------------------------

    def _test_unit_ready(self, cmd: Command, cdb: bytes) -> Result:
        return GOOD

    def _request_sense(self, cmd: Command, cdb: bytes) -> Result:
        """REQUEST SENSE (SPC-4 6.39): the highest pending unit attention as sense data
        (and cleared), else NO SENSE; always GOOD."""
        if cdb[1] & 0x01:
            raise invalid_field_in_cdb(1, 0)
        sense = self.unit_attentions.take(cmd.nexus)
        if sense is None:
            sense = Sense(SenseKey.NO_SENSE, NO_ADDITIONAL_SENSE)
        return Result(data=sense.encode()[:cdb[4]])

    def _check_inquiry(self, cmd: Command, cdb: bytes) -> None:
        evpd, page, _ = parse_inquiry_cdb(cdb)
        if evpd and page not in _VPD_PAGES:
            raise invalid_field_in_cdb(2)

    def _inquiry(self, cmd: Command, cdb: bytes) -> Result:
        """INQUIRY: standard data or a VPD page (inquiry.py), cut to the allocation length."""
        evpd, page, alloc = parse_inquiry_cdb(cdb)
        if evpd:
            rp = self.relative_port(cmd.nexus)
            data = vpd_page(page, self.identity, self.limits, target_port=cmd.nexus.target,
                            relative_port=rp,
                            port_group=(self.port_groups.group_id(rp)
                                        if self.port_groups is not None else None))
        else:
            data = standard_inquiry(self.identity)
        return Result(data=data[:alloc])

    def _report_luns(self, cmd: Command, cdb: bytes) -> Result:
        luns = self.lun_lister(cmd.nexus) if self.lun_lister is not None else (cmd.lun,)
        data = report_luns_data(cdb, luns, cmd.lun)
        self.report_luns_seen(cmd.nexus)
        return Result(data=data)

    def _check_mode_sense(self, cmd: Command, cdb: bytes) -> None:
        self.modes.sense(cdb, self.blocks, self.block_size)

    def _mode_sense(self, cmd: Command, cdb: bytes) -> Result:
        """MODE SENSE(6)/(10) (modes.py)."""
        data = self.modes.sense(cdb, self.blocks, self.block_size)
        alloc = cdb[4] if cdb[0] == Opcode.MODE_SENSE_6 else u16(cdb, 7)
        return Result(data=data[:alloc])

    def _check_mode_select(self, cmd: Command, cdb: bytes) -> None:
        if cdb[1] & 0x01:
            raise invalid_field_in_cdb(1, 0)

    def _mode_select(self, cmd: Command, cdb: bytes) -> Result:
        """MODE SELECT(6)/(10) (modes.py); a change raises MODE PARAMETERS CHANGED (2A/01)
        for every other nexus in contact (SPC-4 7.5.1)."""
        from .block import data_out
        length = cdb[4] if cdb[0] == Opcode.MODE_SELECT_6 else u16(cdb, 7)
        self._check_mode_select(cmd, cdb)
        param = data_out(cmd, length) if length else b""
        if self.modes.select(cdb, param, self.blocks, self.block_size):
            self.unit_attentions.establish_all(
                (n for n in self._seen if n != cmd.nexus), MODE_PARAMETERS_CHANGED)
        return Result(data_out_used=None if len(cmd.data_out) == length else length)

    def _check_start_stop(self, cmd: Command, cdb: bytes) -> None:
        if cdb[4] >> 4 not in (0x0, 0x1, 0x2, 0x3, 0x7, 0xA, 0xB):
            raise invalid_field_in_cdb(4, 7)  # POWER CONDITION (SBC-3 table 50)

    def _start_stop_unit(self, cmd: Command, cdb: bytes) -> Result:
        """START STOP UNIT (SBC-3 5.20): a stop flushes the cache (unless NO_FLUSH) and is
        otherwise a no-op (module docstring); power conditions are accepted and ignored."""
        self._check_start_stop(cmd, cdb)
        if cdb[4] >> 4 == 0 and not cdb[4] & 0x01 and not cdb[4] & 0x04:
            self.backing.flush()
        return GOOD

    def _check_prevent_allow(self, cmd: Command, cdb: bytes) -> None:
        if cdb[4] & 0x03 > 1:
            raise invalid_field_in_cdb(4, 1)  # 10b/11b: medium changer values

    def _prevent_allow(self, cmd: Command, cdb: bytes) -> Result:
        """PREVENT ALLOW MEDIUM REMOVAL (SBC-3 5.9): nothing to prevent on a fixed medium."""
        self._check_prevent_allow(cmd, cdb)
        return GOOD

    def _check_rsoc(self, cmd: Command, cdb: bytes) -> None:
        if cdb[2] & 0x07 > 3:
            raise invalid_field_in_cdb(2, 2)

    def _report_supported_operation_codes(self, cmd: Command, cdb: bytes) -> Result:
        """REPORT SUPPORTED OPERATION CODES (cdb.py)."""
        return Result(data=supported_operation_codes(cdb)[:u32(cdb, 6)])

    def _check_rtpg(self, cmd: Command, cdb: bytes) -> None:
        if cdb[1] >> 5 > 1:
            raise invalid_field_in_cdb(1, 7)  # PARAMETER DATA FORMAT

    def _report_target_port_groups(self, cmd: Command, cdb: bytes) -> Result:
        """REPORT TARGET PORT GROUPS (alua.py; without port groups: one group holding
        every port, inquiry.py)."""
        self._check_rtpg(cmd, cdb)
        extended = cdb[1] >> 5 == 1
        if self.port_groups is not None:
            data = self.port_groups.report(extended=extended)
        else:
            data = target_port_groups(self.ports.values(), extended=extended)
        return Result(data=data[:u32(cdb, 6)])

    # --- delegated to the reservation engine --------------------------------------------------

    def _persistent_reserve_in(self, cmd: Command, cdb: bytes) -> Result:
        result: Result = self.reservations.persistent_reserve_in(cmd)
        alloc = u16(cdb, 7)
        if len(result.data) > alloc:
            result = dataclasses.replace(result, data=result.data[:alloc])
        return result

    def _persistent_reserve_out(self, cmd: Command, cdb: bytes) -> Result:
        """Handed to the engine with data_out = exactly the PARAMETER LIST LENGTH bytes."""
        from .block import data_out
        length = u32(cdb, 5)
        sent = len(cmd.data_out)
        if sent != length:
            cmd = Command(cmd.nexus, cmd.lun, cmd.cdb, data_out(cmd, length),
                          cmd.expected_length, cmd.task_tag, cmd.task_attribute)
        result: Result = self.reservations.persistent_reserve_out(cmd)
        if sent != length and result.data_out_used is None:
            result = dataclasses.replace(result, data_out_used=length)  # may be shared
        return result

    def _reserve(self, cmd: Command, cdb: bytes) -> Result:
        return self.reservations.reserve(cmd)  # type: ignore[no-any-return]

    def _release(self, cmd: Command, cdb: bytes) -> Result:
        return self.reservations.release(cmd)  # type: ignore[no-any-return]


_VPD_PAGES = frozenset((0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2))


def _io_error(exc: OSError, writing: bool) -> Sense:
    if exc.errno == errno.ENOSPC:
        return Sense(SenseKey.DATA_PROTECT, SPACE_ALLOCATION_FAILED_WRITE_PROTECT)
    if writing:
        return Sense(SenseKey.MEDIUM_ERROR, WRITE_ERROR)
    return Sense(SenseKey.MEDIUM_ERROR, UNRECOVERED_READ_ERROR)


def _data_out_length(cdb: bytes, block_size: int) -> int:
    op = cdb[0]
    if op in _BLOCK_WRITES:
        n = lba_length(bytes(cdb).ljust(16, b"\0"))[1]
        if op in (Opcode.VERIFY_10, Opcode.VERIFY_12, Opcode.VERIFY_16):
            bytchk = (cdb[1] >> 1) & 0x3
            return {1: n * block_size, 3: block_size if n else 0}.get(bytchk, 0)
        return n * block_size
    if op in (Opcode.WRITE_SAME_10, Opcode.WRITE_SAME_16):
        return 0 if op == Opcode.WRITE_SAME_16 and cdb[1] & 0x01 else block_size
    if op == Opcode.COMPARE_AND_WRITE:
        return 2 * cdb[13] * block_size
    if op == Opcode.UNMAP or op == Opcode.MODE_SELECT_10:
        return u16(cdb, 7)
    if op == Opcode.MODE_SELECT_6:
        return cdb[4]
    if op == Opcode.PERSISTENT_RESERVE_OUT:
        return u32(cdb, 5)
    return 0


_BLOCK_WRITES = frozenset({
    Opcode.WRITE_6, Opcode.WRITE_10, Opcode.WRITE_12, Opcode.WRITE_16,
    Opcode.WRITE_AND_VERIFY_10, Opcode.WRITE_AND_VERIFY_12, Opcode.WRITE_AND_VERIFY_16,
    Opcode.VERIFY_10, Opcode.VERIFY_12, Opcode.VERIFY_16,
})

_LU = LogicalUnit
_HANDLERS: dict[tuple[int, int | None], _Handler] = {}


def _add(ops: Iterable[int], run: Callable[..., Result], check: Callable[..., None] | None = None,
         *, sa: int | None = None, writes: bool = False) -> None:
    for op in ops:
        _HANDLERS[(op, sa)] = _Handler(run, check, writes)


_add([Opcode.TEST_UNIT_READY], _LU._test_unit_ready)
_add([Opcode.REQUEST_SENSE], _LU._request_sense)
_add([Opcode.INQUIRY], _LU._inquiry, _LU._check_inquiry)
_add([Opcode.REPORT_LUNS], _LU._report_luns)
_add([Opcode.MODE_SENSE_6, Opcode.MODE_SENSE_10], _LU._mode_sense, _LU._check_mode_sense)
_add([Opcode.MODE_SELECT_6, Opcode.MODE_SELECT_10], _LU._mode_select, _LU._check_mode_select)
_add([Opcode.START_STOP_UNIT], _LU._start_stop_unit, _LU._check_start_stop, writes=True)
_add([Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL], _LU._prevent_allow, _LU._check_prevent_allow)
_add([Opcode.READ_CAPACITY_10], _LU._read_capacity_10)
_add([Opcode.SERVICE_ACTION_IN_16], _LU._read_capacity_16,
     sa=ServiceActionIn16.READ_CAPACITY_16)
_add([Opcode.MAINTENANCE_IN], _LU._report_target_port_groups, _LU._check_rtpg,
     sa=MaintenanceIn.REPORT_TARGET_PORT_GROUPS)
_add([Opcode.MAINTENANCE_IN], _LU._report_supported_operation_codes, _LU._check_rsoc,
     sa=MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES)
_add([Opcode.READ_6, Opcode.READ_10, Opcode.READ_12, Opcode.READ_16], _LU._read,
     _LU._check_rw)
_add([Opcode.WRITE_6, Opcode.WRITE_10, Opcode.WRITE_12, Opcode.WRITE_16], _LU._write,
     _LU._check_rw, writes=True)
_add([Opcode.WRITE_AND_VERIFY_10, Opcode.WRITE_AND_VERIFY_12, Opcode.WRITE_AND_VERIFY_16],
     _LU._write_and_verify, _LU._check_rw, writes=True)
_add([Opcode.VERIFY_10, Opcode.VERIFY_12, Opcode.VERIFY_16], _LU._verify, _LU._check_verify)
_add([Opcode.SYNCHRONIZE_CACHE_10, Opcode.SYNCHRONIZE_CACHE_16], _LU._synchronize_cache,
     _LU._check_sync, writes=True)
_add([Opcode.WRITE_SAME_10, Opcode.WRITE_SAME_16], _LU._write_same, _LU._check_write_same,
     writes=True)
_add([Opcode.UNMAP], _LU._unmap, _LU._check_unmap, writes=True)
_add([Opcode.COMPARE_AND_WRITE], _LU._compare_and_write, _LU._check_compare_and_write,
     writes=True)
_add([Opcode.PERSISTENT_RESERVE_IN], _LU._persistent_reserve_in)
_add([Opcode.PERSISTENT_RESERVE_OUT], _LU._persistent_reserve_out)
_add([Opcode.RESERVE_6, Opcode.RESERVE_10], _LU._reserve)
_add([Opcode.RELEASE_6, Opcode.RELEASE_10], _LU._release)

# opcode -> (handler, info) for plain opcodes; opcode << 8 | SA -> (handler, info) for the
# service-action ones; PR IN/OUT are found by opcode alone (the engine judges the SA)
_DISPATCH: dict[int, tuple[_Handler, CommandInfo]] = {}


def _listed(opcode: int, sa: int | None = None) -> CommandInfo:
    """The CommandInfo of a command the handler table serves: it is always listed."""
    info = command_info(opcode, sa)
    if info is None:
        raise LookupError(f"opcode {opcode:#04x} SA {sa} has a handler but no CommandInfo")
    return info


for (_op, _sa), _handler in _HANDLERS.items():
    if _op in (Opcode.PERSISTENT_RESERVE_IN, Opcode.PERSISTENT_RESERVE_OUT):
        _DISPATCH[_op] = (_handler, _listed(_op, 0x1F))
    elif _sa is None:
        _DISPATCH[_op] = (_handler, _listed(_op))
    else:
        _DISPATCH[_op << 8 | _sa] = (_handler, _listed(_op, _sa))
del _op, _sa, _handler
assert {c.opcode for c in SUPPORTED_COMMANDS} == {op for op, _ in _HANDLERS}
