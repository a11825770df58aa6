"""SCSI over FCP from the host side: PLOGI + PRLI to a target port (one I_T nexus), then
commands with many outstanding at once.

    async with host.connect(target_wwpn) as it:
        luns = await it.report_luns()
        await it.write(lun=0, lba=0, data=b"x" * 512)
        data = await it.read(lun=0, lba=0, blocks=1)
        result = await it.scsi(0, cdb, data_in_len=1024)     # any CDB, typed result

`scsi()` never raises for a SCSI status: it returns a `ScsiResult` (status, data, sense,
residual). The helpers (`read`, `write`, `inquiry` ...) raise `ScsiCommandError` for any
status but GOOD, after retrying once on a UNIT ATTENTION (as an OS's SCSI layer does).
A command without an answer within its timeout is aborted with ABTS and raises
`ScsiTimeout`.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import outcome
import trio

from fcsoft.scsi.sense import Sense, SenseKey, Status
from fcsoft.wire import ns
from fcsoft.wire.ct import NsCommand
from fcsoft.wire.els import (
    Logo,
    Prlo,
    ServiceParameterPage,
)
from fcsoft.wire.encap import Frame, FrameRun, encode_sequence
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.fcp import (
    FcpCmnd,
    decode_fcp_rsp,
    decode_fcp_xfer_rdy,
    encode_fcp_cmnd_payload,
    int_to_lun,
)
from fcsoft.wire.header import FCtl, FcType, RCtl, make_header
from fcsoft.wire.wwn import WWN

from .host import CtRejected

if TYPE_CHECKING:
    from .host import NPort

__all__ = ["ITNexus", "ScsiResult", "ScsiCommandError", "ScsiTimeout", "connect"]

_R_DATA = int(RCtl.SOLICITED_DATA)
_R_XFER = int(RCtl.DATA_DESCRIPTOR)
_R_RSP = int(RCtl.COMMAND_STATUS)
_R_BA_ACC = int(RCtl.BA_ACC)
_R_BA_RJT = int(RCtl.BA_RJT)
_REL_OFF = int(FCtl.RELATIVE_OFFSET)
_R_CMND = int(RCtl.UNSOLICITED_COMMAND)
_R_DATA_OUT = int(RCtl.SOLICITED_DATA)
_FCP = int(FcType.FCP)
_CMND_F_CTL = int(FCtl.FIRST_SEQUENCE | FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)
_DATA_F_CTL = int(FCtl.RELATIVE_OFFSET)
_DATA_LAST_F_CTL = int(FCtl.RELATIVE_OFFSET | FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)
_EMPTY = memoryview(b"")
_cmnd_pack = encode_fcp_cmnd_payload


class ScsiTimeout(TimeoutError):
    """No FCP_RSP within the command's timeout; the exchange was aborted (ABTS)."""


@dataclass(slots=True)
class ScsiResult:
    """What a command came back with."""

    status: int
    data: bytes = b""  # empty when the command read into a caller's buffer (data_in=)
    sense_data: bytes = b""
    residual: int = 0  # > 0: underrun (bytes not moved); < 0: overrun (bytes that did not fit)
    response_code: int | None = None  # FCP_RSP_INFO, for task management and FCP errors

    @property
    def sense(self) -> Sense | None:
        if not self.sense_data:
            return None
        try:
            return Sense.decode(self.sense_data)
        except ValueError:
            return None

    @property
    def good(self) -> bool:
        return self.status == Status.GOOD and self.response_code in (None, 0)

    def __str__(self) -> str:
        # "check condition (0x02) [medium error: unrecovered read error (3/11/00)]"
        from fcsoft import names
        from fcsoft.wire.fcp import FcpRspCode

        sense = self.sense
        return f"{names.code(self.status, Status)}{f' [{sense}]' if sense else ''}" + (
            f" FCP_RSP response code {names.code(self.response_code, FcpRspCode)}"
            if self.response_code else "")


class ScsiCommandError(Exception):
    """A helper's command ended with a status other than GOOD."""

    def __init__(self, what: str, result: ScsiResult) -> None:
        super().__init__(f"{what}: {result}")
        self.result = result

    @property
    def status(self) -> int:
        return self.result.status

    @property
    def sense(self) -> Sense | None:
        return self.result.sense


_WAITING = object()
_LINK_LOST = object()  # the value a waiting command is woken with when its link goes
_TIMED_OUT = object()  # ... and when its deadline passes (the link's sweeper says so)
_ABORTED = object()  # ... and when its ABTS is answered (BA_ACC / BA_RJT)


class _Command:
    """One outstanding FCP command on the initiator side: its buffers and who waits for
    it. The link's reader hands it the exchange's frames (`frame`); the final one wakes
    the waiting task with `trio.lowlevel.reschedule`, or calls the submitter's callback:
    no Event, cancel scope or task per command."""

    __slots__ = ("nexus", "ox_id", "data_out", "data_in", "data_received", "seq_id", "task",
                 "deadline", "value", "own_buffer", "on_done")

    def __init__(self, nexus: ITNexus, ox_id: int, data_out: memoryview,
                 data_in: bytearray, deadline: float, own_buffer: bool = True,
                 on_done: Callable[[object], None] | None = None) -> None:
        self.nexus = nexus
        self.ox_id = ox_id
        self.data_out = data_out
        self.data_in = data_in
        self.own_buffer = own_buffer  # False: the caller's (data_in=), left in place
        self.data_received = 0
        self.seq_id = 1
        self.on_done = on_done
        self.task: trio.lowlevel.Task | None = (
            None if on_done is not None else trio.lowlevel.current_task())
        self.deadline = deadline
        self.value: object = _WAITING

    def _wake(self, value: object) -> None:
        self.value = value
        on_done = self.on_done
        if on_done is not None:
            self.on_done = None
            on_done(value)
            return
        task, self.task = self.task, None
        if task is not None:
            trio.lowlevel.reschedule(task, outcome.Value(value))

    def frame(self, frame: Frame | None) -> None:
        if frame is None:  # link lost
            self._done(_LINK_LOST)
            return
        h = frame.header
        r = h.r_ctl
        if r == _R_DATA:
            off = h.parameter if h.f_ctl & _REL_OFF else self.data_received
            payload = frame.payload
            end = off + len(payload)
            if end <= len(self.data_in):
                self.data_in[off:end] = payload
                if end > self.data_received:
                    self.data_received = end
        elif r == _R_XFER:
            try:
                xr = decode_fcp_xfer_rdy(frame.payload)
            except DecodeError:
                return
            self.nexus._send_data(self, h.rx_id, xr.relative_offset, xr.burst_length)
        elif r == _R_RSP:
            self._done(self._result(frame))
        elif r in (_R_BA_ACC, _R_BA_RJT):
            self._done(_ABORTED)

    def data_run(self, frames: list[Frame | FrameRun], i: int, j: int) -> None:
        """frames[i:j]: FCP_DATA of this exchange that arrived together (as `frame` takes
        each, in one loop; a FrameRun's frames follow one another's relative offsets)."""
        data_in = self.data_in
        size = len(data_in)
        received = self.data_received
        for k in range(i, j):
            frame = frames[k]
            h = frame.header
            rel = h.f_ctl & _REL_OFF
            param = h.parameter
            for payload in (frame.payloads if isinstance(frame, FrameRun) else
                            (frame.payload,)):
                off = param if rel else received
                end = off + len(payload)
                if end <= size:
                    data_in[off:end] = payload
                    if end > received:
                        received = end
                param = (param + len(payload)) & 0xFFFFFFFF  # (as the frames carry it)
        self.data_received = received

    def _result(self, frame: Frame) -> ScsiResult:
        try:
            rsp = decode_fcp_rsp(frame.payload)
        except DecodeError:
            return ScsiResult(Status.CHECK_CONDITION, response_code=2)
        data = self.data_in
        got = b""
        if data and self.own_buffer:
            got = bytes(data[:self.data_received]) if self.data_received < len(data) \
                else bytes(data)
        return ScsiResult(rsp.scsi_status, got, bytes(rsp.sense),
                          rsp.residual_under - rsp.residual_over, rsp.response_code)

    def _done(self, value: object) -> None:
        nexus = self.nexus
        nexus.port.hl.exchanges.detach(self.ox_id)
        nexus.port.hl.commands.pop(self.ox_id, None)
        if self.on_done is not None and not isinstance(value, ScsiResult):
            value = self._failure(value)
        self._wake(value)

    def _failure(self, value: object) -> Exception:
        """What a submitter's callback gets for a command that did not complete."""
        if value is _LINK_LOST:
            return ConnectionError(f"link lost: {self.nexus.port.hl.closed_reason}")
        return ScsiTimeout(f"exchange {self.ox_id:#06x}: no response in time (aborted)")

    def expired(self) -> None:
        """The deadline passed (the link's sweeper calls this)."""
        if self.task is not None:
            self._wake(_TIMED_OUT)  # the waiting task sends ABTS and waits for BA_ACC
        elif self.value is _WAITING:
            # a submitted command, or one whose caller gave up: ABTS now; its BA_ACC (or,
            # 5 s on, the sweeper) ends it
            self.value = _TIMED_OUT
            self.deadline += 5
            self.nexus._send_abts(self.ox_id)
        else:
            self._done(_ABORTED)


class ITNexus:
    """A logged-in (PLOGI + PRLI) session from one of our N_Ports to one target port."""

    def __init__(self, port: NPort, target_wwpn: WWN, target_fcid: int, *,
                 timeout: float = 30.0) -> None:
        self.port = port
        self.target_wwpn = target_wwpn
        self.target_fcid = target_fcid
        self.timeout = timeout
        self.target_receive_size = 2048
        self.block_sizes: dict[int, int] = {}
        self.logged_in = False
        self.stale = False  # an RSCN came: check the target's N_Port_ID before the next command
        self.lost = False  # the target ended the session (LOGO/PRLO/PLOGI): log in again first
        self.closed = False  # the connect() block ended: never log in again
        self._login_lock = trio.Lock()
        self._logins_done = 0

    def __repr__(self) -> str:
        return f"<ITNexus {self.port.wwpn} -> {self.target_wwpn} ({self.target_fcid:06x})>"

    # -- login (the policy lives in fcsoft.initiator.login) ---------------------------
    async def login(self) -> None:
        """PLOGI (unless a login with the target is in place) and PRLI, with FC-LS-3's
        collision rule and a bounded back-off on "busy" (fcsoft.initiator.login)."""
        from .login import login

        await login(self)

    async def _revalidate(self) -> None:
        """After an RSCN, or when the target ended the session: find the target port again
        (it may have a new N_Port_ID) and log in again if the session is gone."""
        from .login import revalidate

        await revalidate(self)

    async def logout(self) -> None:
        """LOGO to the target (ends the I_T nexus), unless the session or link is gone."""
        if self.logged_in and self.port.logged_in:
            self.logged_in = False
            self.port.logins.get(self.target_fcid).logged_out()
            try:
                await self.port.els(self.target_fcid,
                                    Logo(self.port.fcid, self.port.wwpn).encode(), timeout=5)
            except (TimeoutError, ConnectionError):
                pass

    async def prlo(self) -> None:
        entry = self.port.logins.get(self.target_fcid)
        entry.image_pair = False
        self.lost = True
        await self.port.els(self.target_fcid, Prlo((ServiceParameterPage(
            type=FcType.FCP),)).encode())

    # -- commands -------------------------------------------------------------------
    async def scsi(self, lun: int, cdb: bytes, *, data_out: bytes | memoryview | None = None,
                   data_in_len: int = 0, timeout: float | None = None,
                   task_attribute: int = 0, task_management: int = 0,
                   data_in: bytearray | None = None) -> ScsiResult:
        """Send one command and wait for its FCP_RSP. `data_out` for writes, `data_in_len`
        the most data-in to accept (FCP_DL), or `data_in`, a buffer the data is read into
        (its length is FCP_DL; the result's `data` then stays empty and `residual` says
        how much of the buffer did not arrive)."""
        if self.stale or self.lost:
            await self._revalidate()
        wait = timeout or self.timeout
        cmd = self._start(lun, cdb, data_out, data_in_len, data_in, wait, task_attribute,
                          task_management, None)

        def abort(_raise_cancel: object) -> trio.lowlevel.Abort:
            cmd.task = None  # the answer, if it comes, is dropped; the sweeper forgets it
            return trio.lowlevel.Abort.SUCCEEDED

        value = await trio.lowlevel.wait_task_rescheduled(abort)
        if isinstance(value, ScsiResult):
            return value
        if value is _LINK_LOST:
            raise ConnectionError(f"link lost: {self.port.hl.closed_reason}")
        await self._abort(cmd)
        raise ScsiTimeout(f"{bytes(cdb[:1]).hex()} on LUN {lun}: no response within "
                          f"{wait:g} s (exchange aborted)")

    def submit(self, lun: int, cdb: bytes, on_done: Callable[[object], None], *,
               data_out: bytes | memoryview | None = None, data_in_len: int = 0,
               data_in: bytearray | None = None, timeout: float | None = None) -> None:
        """Start one command without waiting for it: `on_done` is called from the link's
        reader with the `ScsiResult`, or with the exception (ConnectionError, ScsiTimeout)
        for a command that did not complete. The fast path of load generators: no task
        switch per command, and what `on_done` submits goes out with the same write.
        Unlike `scsi`, it does not first check a nexus an RSCN made stale."""
        self._start(lun, cdb, data_out, data_in_len, data_in, timeout or self.timeout, 0, 0,
                    on_done)

    def _start(self, lun: int, cdb: bytes, data_out: bytes | memoryview | None,
               data_in_len: int, data_in: bytearray | None, wait: float,
               task_attribute: int, task_management: int,
               on_done: Callable[[object], None] | None) -> _Command:
        port = self.port
        hl = port.hl
        ex = hl.exchanges
        ox = ex.new_ox_id()
        if data_in is not None:
            data_in_len = len(data_in)
        out = memoryview(data_out) if data_out is not None else _EMPTY
        dl = len(out) if data_out is not None else data_in_len
        flags = 2 if data_in_len > 0 and data_out is None else 0
        if len(out):
            flags |= 1
        if len(cdb) <= 16 and not task_management and (task_attribute >> 3) == 0:
            payload = _cmnd_pack(int_to_lun(lun), 0, task_attribute, 0, flags, cdb, dl)
        else:
            payload = FcpCmnd(lun=int_to_lun(lun), task_attribute=task_attribute,
                              task_management_flags=task_management, rddata=bool(flags & 2),
                              wrdata=bool(flags & 1), cdb=bytes(cdb), fcp_dl=dl).encode()
        buf = data_in if data_in is not None else (bytearray(data_in_len) if data_in_len
                                                   else bytearray())
        cmd = _Command(self, ox, out, buf, trio.current_time() + wait, data_in is None,
                       on_done)
        ex.attach(ox, cmd.frame, cmd.data_run)
        hl.commands[ox] = cmd
        ex.send_raw(encode_sequence(_R_CMND, self.target_fcid, port.fcid, _FCP, _CMND_F_CTL,
                                    0, ox, 0xFFFF, payload, 64))
        return cmd

    def _send_abts(self, ox_id: int) -> None:
        hdr = make_header(RCtl.ABTS, self.target_fcid, self.port.fcid, FcType.BLS,
                          int(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE), ox_id=ox_id)
        self.port.hl.exchanges.send(hdr, b"")

    def _send_data(self, x: _Command, rx_id: int, offset: int, length: int) -> None:
        """Answer an FCP_XFER_RDY: the burst as one sequence of FCP_DATA frames."""
        data = x.data_out[offset:offset + length]
        self.port.hl.exchanges.send_raw(encode_sequence(
            _R_DATA_OUT, self.target_fcid, self.port.fcid, _FCP, _DATA_F_CTL, x.seq_id,
            x.ox_id, rx_id, data, self.target_receive_size, offset, _DATA_LAST_F_CTL))
        x.seq_id = x.seq_id % 255 + 1

    async def _abort(self, x: _Command) -> None:
        """ABTS for a command that got no answer in time; waits (5 s at most) for the
        BA_ACC, then forgets the exchange."""
        hl = self.port.hl
        x.task = trio.lowlevel.current_task()
        x.value = _WAITING
        x.deadline = trio.current_time() + 5
        hl.exchanges.attach(x.ox_id, x.frame)
        hl.commands[x.ox_id] = x
        self._send_abts(x.ox_id)

        def abort(_raise_cancel: object) -> trio.lowlevel.Abort:
            x.task = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        hl.exchanges.detach(x.ox_id)
        hl.commands.pop(x.ox_id, None)

    async def task_management(self, lun: int, flags: int) -> ScsiResult:
        """Send a task management function (fcsoft.wire.fcp.TaskManagementFlags)."""
        return await self.scsi(lun, bytes(16), task_management=flags)

    # -- helpers --------------------------------------------------------------------
    async def _checked(self, what: str, lun: int, cdb: bytes, **kw: object) -> ScsiResult:
        result = await self.scsi(lun, cdb, **kw)  # type: ignore[arg-type]
        if result.status == Status.CHECK_CONDITION and result.sense is not None and \
                result.sense.key == SenseKey.UNIT_ATTENTION:
            result = await self.scsi(lun, cdb, **kw)  # type: ignore[arg-type]
        if not result.good:
            raise ScsiCommandError(what, result)
        return result

    async def test_unit_ready(self, lun: int = 0) -> ScsiResult:
        return await self._checked("TEST UNIT READY", lun, bytes(6))

    async def inquiry(self, lun: int = 0, page: int | None = None,
                      allocation: int = 255) -> bytes:
        cdb = struct.pack(">BBBHB", 0x12, 1 if page is not None else 0, page or 0,
                          allocation, 0)
        return (await self._checked("INQUIRY", lun, cdb, data_in_len=allocation)).data

    async def report_luns(self, select_report: int = 0) -> list[int]:
        """LUN numbers from REPORT LUNS (sent to LUN 0)."""
        alloc = 16384
        cdb = struct.pack(">BxBxxxIxx", 0xA0, select_report, alloc)
        data = (await self._checked("REPORT LUNS", 0, cdb, data_in_len=alloc)).data
        (length,) = struct.unpack_from(">I", data, 0)
        from fcsoft.wire.fcp import lun_to_int

        return [lun_to_int(data[8 + i:16 + i]) for i in range(0, min(length, len(data) - 8), 8)]

    async def read_capacity(self, lun: int = 0) -> tuple[int, int]:
        """(number of blocks, block size) from READ CAPACITY(16)."""
        cdb = struct.pack(">BBQIBB", 0x9E, 0x10, 0, 32, 0, 0)
        data = (await self._checked("READ CAPACITY(16)", lun, cdb, data_in_len=32)).data
        last, size = struct.unpack_from(">QI", data, 0)
        self.block_sizes[lun] = size
        return last + 1, size

    async def _block_size(self, lun: int) -> int:
        if lun not in self.block_sizes:
            await self.read_capacity(lun)
        return self.block_sizes[lun]

    async def read(self, lun: int, lba: int, blocks: int, *, fua: bool = False) -> bytes:
        size = await self._block_size(lun)
        cdb = struct.pack(">BBQIBB", 0x88, 0x08 if fua else 0, lba, blocks, 0, 0)
        return (await self._checked("READ(16)", lun, cdb, data_in_len=blocks * size)).data

    async def write(self, lun: int, lba: int, data: bytes | memoryview, *,
                    fua: bool = False) -> None:
        size = await self._block_size(lun)
        if len(data) % size:
            raise ValueError(f"{len(data)} bytes is not a whole number of {size}-byte blocks")
        cdb = struct.pack(">BBQIBB", 0x8A, 0x08 if fua else 0, lba, len(data) // size, 0, 0)
        await self._checked("WRITE(16)", lun, cdb, data_out=data)

    async def synchronize_cache(self, lun: int = 0) -> None:
        await self._checked("SYNCHRONIZE CACHE(10)", lun, bytes([0x35]) + bytes(9))

    async def persistent_reserve_in(self, lun: int, service_action: int,
                                    allocation: int = 8192) -> ScsiResult:
        cdb = struct.pack(">BB5xHB", 0x5E, service_action, allocation, 0)
        return await self.scsi(lun, cdb, data_in_len=allocation)

    async def persistent_reserve_out(self, lun: int, service_action: int, *, key: int = 0,
                                     sa_key: int = 0, type: int = 0, scope: int = 0,
                                     aptpl: bool = False, all_tg_pt: bool = False,
                                     spec_i_pt: bool = False,
                                     parameters: bytes | None = None) -> ScsiResult:
        """PERSISTENT RESERVE OUT with the basic 24-byte parameter list (or `parameters`)."""
        if parameters is None:
            flags = (8 if spec_i_pt else 0) | (4 if all_tg_pt else 0) | (1 if aptpl else 0)
            parameters = struct.pack(">QQIBxH", key, sa_key, 0, flags, 0)
        cdb = struct.pack(">BBBxxIB", 0x5F, service_action, (scope << 4) | type,
                          len(parameters), 0)
        return await self.scsi(lun, cdb, data_out=parameters)

    async def reserve(self, lun: int = 0) -> ScsiResult:
        return await self.scsi(lun, bytes([0x16, 0, 0, 0, 0, 0]))

    async def release(self, lun: int = 0) -> ScsiResult:
        return await self.scsi(lun, bytes([0x17, 0, 0, 0, 0, 0]))


async def _find(port: NPort, target_wwpn: WWN) -> int:
    try:
        body = await port.ct(NsCommand.GID_PN, ns.GidPnRequest(target_wwpn).encode())
    except CtRejected as exc:
        raise LookupError(f"target {target_wwpn} is not visible to {port.wwpn} "
                          f"(name server explanation {exc.explanation:#04x})") from None
    return ns.GidPnAccept.decode(body).port_id


@asynccontextmanager
async def connect(port: NPort, target_wwpn: WWN | str, *,
                  timeout: float = 30.0) -> AsyncIterator[ITNexus]:
    """PLOGI + PRLI to the target port named `target_wwpn`; LOGO when the block ends."""
    wwpn = WWN(target_wwpn)
    fcid = await _find(port, wwpn)
    it = ITNexus(port, wwpn, fcid, timeout=timeout)
    await it.login()
    port.nexuses.add(it)
    try:
        yield it
    finally:
        it.closed = True
        with trio.CancelScope(shield=True):
            await it.logout()
