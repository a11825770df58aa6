"""Shared helpers for the end-to-end array and reservation tests: labs that can be stopped
and started again on the same files, raw SCSI commands (status as the target sent it, no
retry on UNIT ATTENTION), unit attention collection, PERSISTENT RESERVE IN decoders, and a
WRITE held outstanding at the target (its data never sent)."""

from __future__ import annotations

import functools
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from fcsoft.config import parse_config
from fcsoft.initiator.scsi import ITNexus, ScsiResult
from fcsoft.scsi.sense import Status
from fcsoft.server.process import StartupError, run_process
from fcsoft.testing.lab import LabHandle
from fcsoft.wire.encap import Frame
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.fcp import FcpCmnd, decode_fcp_rsp, int_to_lun
from fcsoft.wire.header import FcType, RCtl, make_header
from fcsoft.wire.wwn import WWN

GOOD = int(Status.GOOD)
CHECK = int(Status.CHECK_CONDITION)
CONFLICT = int(Status.RESERVATION_CONFLICT)
TASK_ABORTED = int(Status.TASK_ABORTED)

# PERSISTENT RESERVE OUT service actions (SPC-4 6.15.2) and IN (6.16.1)
REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_AND_ABORT, REG_IGNORE, REG_MOVE = range(8)
READ_KEYS, READ_RESERVATION, REPORT_CAPABILITIES, READ_FULL_STATUS = range(4)

# unit attention conditions (ASC, ASCQ)
POWER_ON = (0x29, 0x00)
NEXUS_LOSS = (0x29, 0x07)
RES_PREEMPTED = (0x2A, 0x03)
RES_RELEASED = (0x2A, 0x04)
REG_PREEMPTED = (0x2A, 0x05)
CMDS_CLEARED = (0x2F, 0x00)
LUNS_CHANGED = (0x3F, 0x0E)
LU_NOT_SUPPORTED = (0x05, 0x25, 0x00)  # ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED


def config(toml: str, base_dir: Path | None = None) -> Any:
    """A parsed config from TOML text (faster RSCNs unless the text sets them)."""
    if "[fabric]" not in toml:
        toml = "[fabric]\nrscn_coalesce_ms = 5\n" + toml
    return parse_config(toml, source="<e2e config>", base_dir=base_dir)


@asynccontextmanager
async def running_lab(conf: Any, trace: Path | None = None) -> AsyncIterator[LabHandle]:
    """Run the fabric and arrays of `conf` on 127.0.0.1 (ephemeral port) for the block;
    leaving it stops everything and closes the backing files (as a process exit would).
    A config that cannot start raises StartupError."""
    failed: StartupError | None = None
    async with trio.open_nursery() as nursery:
        try:
            lab = await nursery.start(functools.partial(run_process, conf, ("127.0.0.1", 0),
                                                        trace, wait_ready=True))
        except StartupError as exc:
            failed = exc  # raised below, outside the nursery (not in an exception group)
        else:
            try:
                yield LabHandle(lab)
            finally:
                nursery.cancel_scope.cancel()
    if failed is not None:
        raise failed


# --- raw commands ------------------------------------------------------------------------


def sense3(r: ScsiResult) -> tuple[int, int, int] | None:
    """(sense key, ASC, ASCQ) of a result's sense, None without sense."""
    s = r.sense
    return None if s is None else (int(s.key), s.code[0], s.code[1])


def read10(lba: int = 0, blocks: int = 1) -> bytes:
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def write10(lba: int = 0, blocks: int = 1, fua: bool = False) -> bytes:
    return struct.pack(">BBIBHB", 0x2A, 0x08 if fua else 0, lba, 0, blocks, 0)


TUR = bytes(6)


async def rd(it: ITNexus, lun: int = 0, lba: int = 0, blocks: int = 1,
             block_size: int = 512) -> ScsiResult:
    """READ(10), as the target answered it."""
    return await it.scsi(lun, read10(lba, blocks), data_in_len=blocks * block_size)


async def wr(it: ITNexus, data: bytes, lun: int = 0, lba: int = 0, block_size: int = 512,
             fua: bool = False) -> ScsiResult:
    """WRITE(10), as the target answered it."""
    return await it.scsi(lun, write10(lba, len(data) // block_size, fua), data_out=data)


async def inquiry_raw(it: ITNexus, lun: int, page: int | None = None,
                      alloc: int = 255) -> ScsiResult:
    cdb = struct.pack(">BBBHB", 0x12, 1 if page is not None else 0, page or 0, alloc, 0)
    return await it.scsi(lun, cdb, data_in_len=alloc)


async def report_luns_raw(it: ITNexus, lun: int = 0) -> ScsiResult:
    alloc = 4096
    return await it.scsi(lun, struct.pack(">BxBxxxIxx", 0xA0, 0, alloc), data_in_len=alloc)


def lun_list(data: bytes) -> list[int]:
    """LUN numbers of REPORT LUNS data (single level: peripheral or flat addressing)."""
    (length,) = struct.unpack_from(">I", data, 0)
    assert length == len(data) - 8, "LUN LIST LENGTH disagrees with the data sent"
    out = []
    for off in range(8, 8 + length, 8):
        b0, b1 = data[off], data[off + 1]
        assert data[off + 2:off + 8] == bytes(6)
        out.append(((b0 & 0x3F) << 8 | b1) if b0 & 0xC0 == 0x40 else b1)
    return out


async def unit_attentions(it: ITNexus, lun: int = 0, limit: int = 8) -> list[tuple[int, int]]:
    """Every pending unit attention of the nexus for `lun`, in the order reported, taken
    with TEST UNIT READY until it answers GOOD (which it must)."""
    codes: list[tuple[int, int]] = []
    for _ in range(limit):
        r = await it.scsi(lun, TUR)
        if r.good:
            return codes
        s = sense3(r)
        assert r.status == CHECK and s is not None and s[0] == 0x6, \
            f"TEST UNIT READY: {r} after unit attentions {codes}"
        codes.append((s[1], s[2]))
    raise AssertionError(f"more than {limit} unit attentions: {codes}")


async def ready(it: ITNexus, lun: int = 0) -> None:
    """Take the first contact's POWER ON unit attention (and only that)."""
    assert await unit_attentions(it, lun) == [POWER_ON]


# --- persistent reservations ----------------------------------------------------------


async def prout(it: ITNexus, sa: int, key: int = 0, sa_key: int = 0, type: int = 0,
                lun: int = 0, **kw: Any) -> ScsiResult:
    return await it.persistent_reserve_out(lun, sa, key=key, sa_key=sa_key, type=type, **kw)


async def prout_ok(it: ITNexus, sa: int, key: int = 0, sa_key: int = 0, type: int = 0,
                   lun: int = 0, **kw: Any) -> None:
    r = await prout(it, sa, key, sa_key, type, lun, **kw)
    assert r.good, f"PR OUT {sa} from {it.port.wwpn} via {it.target_wwpn}: {r}"


async def register(it: ITNexus, key: int, lun: int = 0, **kw: Any) -> None:
    await prout_ok(it, REGISTER, 0, key, lun=lun, **kw)


async def _prin(it: ITNexus, sa: int, lun: int) -> bytes:
    r = await it.persistent_reserve_in(lun, sa)
    assert r.good, f"PR IN {sa} from {it.port.wwpn}: {r}"
    return r.data


async def read_keys(it: ITNexus, lun: int = 0) -> tuple[int, list[int]]:
    """(PRGENERATION, keys) from READ KEYS."""
    data = await _prin(it, READ_KEYS, lun)
    gen, length = struct.unpack_from(">II", data)
    assert len(data) == 8 + length
    return gen, [struct.unpack_from(">Q", data, 8 + i)[0] for i in range(0, length, 8)]


async def read_reservation(it: ITNexus, lun: int = 0) -> tuple[int, tuple[int, int] | None]:
    """(PRGENERATION, (key, type) or None) from READ RESERVATION."""
    data = await _prin(it, READ_RESERVATION, lun)
    gen, length = struct.unpack_from(">II", data)
    if length == 0:
        assert len(data) == 8
        return gen, None
    assert length == 16 and len(data) == 24
    key, scope_type = struct.unpack_from(">Q", data, 8)[0], data[21]
    assert scope_type >> 4 == 0  # LU_SCOPE
    return gen, (key, scope_type & 0x0F)


@dataclass(frozen=True)
class StatusDescriptor:
    """One READ FULL STATUS descriptor (SPC-4 6.16.5)."""

    key: int
    all_tg_pt: bool
    holder: bool
    type: int
    relative_port: int
    wwpn: WWN


async def read_full_status(it: ITNexus, lun: int = 0) -> tuple[int, list[StatusDescriptor]]:
    data = await _prin(it, READ_FULL_STATUS, lun)
    gen, length = struct.unpack_from(">II", data)
    assert len(data) == 8 + length
    out = []
    off = 8
    while off < len(data):
        key, flags, scope_type, rtpi, tlen = struct.unpack_from(">Q4xBB4xHI", data, off)
        tid = data[off + 24:off + 24 + tlen]
        assert tlen == 24 and tid[0] == 0x00 and tid[1:8] == bytes(7) and \
            tid[16:24] == bytes(8), f"not an FC TransportID: {tid.hex()}"
        out.append(StatusDescriptor(key, bool(flags & 2), bool(flags & 1), scope_type & 0x0F,
                                    rtpi, WWN.from_bytes8(tid, 8)))
        off += 24 + tlen
    return gen, out


def full(key: int, wwpn: str, rtpi: int, *, holder: bool = False, type: int = 0,
         all_tg_pt: bool = False) -> StatusDescriptor:
    """The READ FULL STATUS descriptor expected for a registration."""
    return StatusDescriptor(key, all_tg_pt, holder, type if holder else 0, rtpi, WWN(wwpn))


async def access(it: ITNexus) -> tuple[str, str]:
    """("ok" | "conflict") for a READ(10) and a WRITE(10) of one block at LBA 0."""
    out = []
    for r in (await rd(it), await wr(it, b"\xa5" * 512)):
        assert r.good or r.status == CONFLICT, str(r)
        out.append("ok" if r.good else "conflict")
    return out[0], out[1]


def fc_transport_id(wwpn: str | WWN) -> bytes:
    """FC TransportID (SPC-4 7.6.4.2): protocol 0, N_Port_Name at bytes 8-15."""
    return bytes(8) + WWN(wwpn).to_bytes8() + bytes(8)


def register_and_move_list(key: int, sa_key: int, relative_port: int, wwpn: str | WWN, *,
                           unreg: bool = False, aptpl: bool = False) -> bytes:
    """REGISTER AND MOVE parameter list (SPC-4 6.15.4) naming one FC TransportID."""
    tid = fc_transport_id(wwpn)
    return struct.pack(">QQxBHI", key, sa_key, (2 if unreg else 0) | (1 if aptpl else 0),
                       relative_port, len(tid)) + tid


# --- a WRITE held outstanding ----------------------------------------------------------


@dataclass(eq=False)
class HeldWrite:
    """A WRITE(10) sent as a bare FCP_CMND whose data is never sent: once the target asked
    for the data (FCP_XFER_RDY) the command is outstanding there until it is aborted."""

    it: ITNexus
    ox_id: int
    xfer_rdy: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)
    status: int | None = None

    def _frame(self, frame: Frame | None) -> None:
        if frame is None:
            self.done.set()
            self.xfer_rdy.set()
            return
        r = frame.header.r_ctl
        if r == RCtl.DATA_DESCRIPTOR:
            self.xfer_rdy.set()
        elif r == RCtl.COMMAND_STATUS:
            try:
                self.status = decode_fcp_rsp(frame.payload).scsi_status
            except DecodeError:
                self.status = -1
            self.it.port.hl.exchanges.detach(self.ox_id)
            self.done.set()
            self.xfer_rdy.set()

    async def result(self, timeout: float = 5.0) -> int | None:
        """The SCSI status the command completed with."""
        with trio.fail_after(timeout):
            await self.done.wait()
        return self.status


async def hold_write(it: ITNexus, lun: int = 0, lba: int = 0, blocks: int = 1,
                     block_size: int = 512) -> HeldWrite:
    """Start a WRITE and wait until the target asks for its data (which never comes)."""
    ex = it.port.hl.exchanges
    ox = ex.new_ox_id()
    held = HeldWrite(it, ox)
    ex.attach(ox, held._frame)
    cmnd = FcpCmnd(lun=int_to_lun(lun), wrdata=True, cdb=write10(lba, blocks),
                   fcp_dl=blocks * block_size)
    ex.send(make_header(RCtl.UNSOLICITED_COMMAND, it.target_fcid, it.port.fcid, FcType.FCP,
                        ox_id=ox), cmnd.encode())
    with trio.fail_after(5):
        await held.xfer_rdy.wait()
    assert not held.done.is_set(), f"the WRITE completed at once with status {held.status}"
    return held


async def wait_for(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `predicate()` until true (state the fabric and array reach asynchronously)."""
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.005)
        return
    raise AssertionError(f"timed out waiting for {what}")
