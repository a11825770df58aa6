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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import trio

from fcsoft.scsi.sense import Sense, SenseKey, Status
from fcsoft.wire import ns
from fcsoft.wire.ct import NsCommand
from fcsoft.wire.els import (
    ElsCommand,
    FcpServiceParameters,
    Logo,
    LsRjt,
    Prli,
    Prlo,
    ServiceParameterPage,
    ServiceParameters,
)
from fcsoft.wire.encap import EOF, SOF, Frame, encode_frame
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.fcp import FcpCmnd, decode_fcp_rsp, decode_fcp_xfer_rdy, int_to_lun
from fcsoft.wire.header import FCtl, FcType, RCtl, make_header
from fcsoft.wire.wwn import WWN

from .host import CtRejected, ElsRejected

if TYPE_CHECKING:
    from .host import NPort

__all__ = ["ITNexus", "ScsiResult", "ScsiCommandError", "ScsiTimeout", "connect"]

_R_DATA = int(RCtl.SOLICITED_DATA)
_R_XFER = int(RCtl.DATA_DESCRIPTOR)
_R_RSP = int(RCtl.COMMAND_STATUS)
_R_BA_ACC = int(RCtl.BA_ACC)
_R_BA_RJT = int(RCtl.BA_RJT)
_REL_OFF = int(FCtl.RELATIVE_OFFSET)


class ScsiTimeout(TimeoutError):
    """No FCP_RSP within the command's timeout; the exchange was aborted (ABTS)."""


@dataclass(slots=True)
class ScsiResult:
    """What a command came back with."""

    status: int
    data: bytes = b""
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
        try:
            name = Status(self.status).name
        except ValueError:
            name = f"{self.status:#04x}"
        sense = self.sense
        return f"{name}{f' [{sense}]' if sense else ''}" + (
            f" response code {self.response_code}" if self.response_code else "")


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


@dataclass(slots=True, eq=False)
class _Exchange:
    """One outstanding FCP command on the initiator side."""

    nexus: ITNexus
    ox_id: int
    data_out: memoryview
    data_in: bytearray
    done: trio.Event = field(default_factory=trio.Event)
    result: ScsiResult | None = None
    data_received: int = 0
    seq_id: int = 1
    lost: bool = False

    def frame(self, frame: Frame | None) -> None:
        if frame is None:  # link lost
            self.lost = True
            self.done.set()
            return
        h = frame.header
        r = h.r_ctl
        if r == _R_DATA:
            off = h.parameter if h.f_ctl & _REL_OFF else self.data_received
            payload = frame.payload
            end = off + len(payload)
            if end <= len(self.data_in):
                self.data_in[off:end] = payload
                self.data_received = max(self.data_received, end)
        elif r == _R_XFER:
            try:
                xr = decode_fcp_xfer_rdy(frame.payload)
            except DecodeError:
                return
            self.nexus._send_data(self, h.rx_id, xr.relative_offset, xr.burst_length)
        elif r == _R_RSP:
            try:
                rsp = decode_fcp_rsp(frame.payload)
            except DecodeError:
                rsp = None
            if rsp is None:
                self.result = ScsiResult(Status.CHECK_CONDITION, response_code=2)
            else:
                resid = rsp.residual_under - rsp.residual_over
                data = bytes(self.data_in[:self.data_received]) if self.data_in else b""
                self.result = ScsiResult(rsp.scsi_status, data, bytes(rsp.sense), resid,
                                         rsp.response_code)
            self.done.set()
        elif r in (_R_BA_ACC, _R_BA_RJT):
            self.done.set()


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
        self.lost = False  # the target ended the session (LOGO/PRLO): log in again first

    def __repr__(self) -> str:
        return f"<ITNexus {self.port.wwpn} -> {self.target_wwpn} ({self.target_fcid:06x})>"

    # -- login ----------------------------------------------------------------------
    async def login(self) -> None:
        reply = await self.port.els(self.target_fcid,
                                    ServiceParameters.plogi(
                                        self.port.wwpn, self.port.wwnn,
                                        receive_data_field_size=self.port.hl.frame_size
                                    ).encode())
        if reply[:1] == bytes([ElsCommand.LS_RJT]):
            raise ElsRejected("PLOGI", LsRjt.decode(reply))
        sp = ServiceParameters.decode(reply)
        sizes = [x for x in (sp.receive_data_field_size, sp.class3.receive_data_field_size)
                 if x]
        self.target_receive_size = min([*sizes, self.port.hl.frame_size]) & ~3
        page = ServiceParameterPage(type=FcType.FCP, establish_image_pair=True,
                                    service_parameters=FcpServiceParameters.INITIATOR_FUNCTION
                                    | FcpServiceParameters.READ_XFER_RDY_DISABLED)
        reply = await self.port.els(self.target_fcid, Prli((page,)).encode())
        if reply[:1] == bytes([ElsCommand.LS_RJT]):
            raise ElsRejected("PRLI", LsRjt.decode(reply))
        acc = Prli.decode(reply)
        code = acc.pages[0].response_code if acc.pages else 0
        if code != 1:
            raise ElsRejected("PRLI", LsRjt(0x09, 0))  # type: ignore[arg-type]
        self.logged_in = True

    async def _revalidate(self) -> None:
        """After an RSCN, or when the target ended the session: find the target port again
        (it may have a new N_Port_ID) and log in again if the session is gone."""
        self.stale = False
        fcid = await _find(self.port, self.target_wwpn)
        if fcid != self.target_fcid or self.lost:
            self.target_fcid = fcid
            self.lost = False
            self.port.log.info("logging in to the target again", target=str(self.target_wwpn),
                               fcid=fcid)
            await self.login()

    async def logout(self) -> None:
        """LOGO to the target (ends the I_T nexus), unless the session or link is gone."""
        if self.logged_in and self.port.logged_in:
            self.logged_in = False
            try:
                await self.port.els(self.target_fcid,
                                    Logo(self.port.fcid, self.port.wwpn).encode(), timeout=5)
            except (TimeoutError, ConnectionError):
                pass

    async def prlo(self) -> None:
        await self.port.els(self.target_fcid, Prlo((ServiceParameterPage(
            type=FcType.FCP),)).encode())

    # -- commands -------------------------------------------------------------------
    async def scsi(self, lun: int, cdb: bytes, *, data_out: bytes | memoryview | None = None,
                   data_in_len: int = 0, timeout: float | None = None,
                   task_attribute: int = 0, task_management: int = 0) -> ScsiResult:
        """Send one command and wait for its FCP_RSP. `data_out` for writes, `data_in_len`
        the most data-in to accept (FCP_DL)."""
        if self.stale or self.lost:
            await self._revalidate()
        ex = self.port.hl.exchanges
        ox = ex.new_ox_id()
        dl = len(data_out) if data_out is not None else data_in_len
        cmnd = FcpCmnd(lun=int_to_lun(lun), task_attribute=task_attribute,
                       task_management_flags=task_management,
                       rddata=data_in_len > 0 and data_out is None,
                       wrdata=data_out is not None and len(data_out) > 0, cdb=bytes(cdb),
                       fcp_dl=dl)
        x = _Exchange(self, ox, memoryview(data_out or b""),
                      bytearray(data_in_len) if data_in_len else bytearray())
        ex.attach(ox, x.frame)
        try:
            hdr = make_header(RCtl.UNSOLICITED_COMMAND, self.target_fcid, self.port.fcid,
                              FcType.FCP, ox_id=ox)
            ex.send(hdr, cmnd.encode())
            with trio.move_on_after(timeout or self.timeout):
                await x.done.wait()
            if x.lost:
                raise ConnectionError(f"link lost: {self.port.hl.closed_reason}")
            if x.result is None:
                await self._abort(x)
                raise ScsiTimeout(f"{cdb[:1].hex()} on LUN {lun}: no response within "
                                  f"{timeout or self.timeout:g} s (exchange aborted)")
            return x.result
        finally:
            ex.detach(ox)

    def _send_data(self, x: _Exchange, rx_id: int, offset: int, length: int) -> None:
        """Answer an FCP_XFER_RDY: the burst as one sequence of FCP_DATA frames."""
        data = x.data_out[offset:offset + length]
        size = self.target_receive_size
        n = len(data)
        frames = max(1, -(-n // size))
        ex = self.port.hl.exchanges
        for i in range(frames):
            last = i == frames - 1
            f_ctl = int(FCtl.RELATIVE_OFFSET)
            if last:
                f_ctl |= int(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)
            hdr = make_header(RCtl.SOLICITED_DATA, self.target_fcid, self.port.fcid,
                              FcType.FCP, f_ctl, ox_id=x.ox_id, rx_id=rx_id, seq_id=x.seq_id,
                              seq_cnt=i, parameter=offset + i * size)
            ex._send(encode_frame(hdr, data[i * size:(i + 1) * size],
                                  SOF.SOFn3 if i else SOF.SOFi3, EOF.EOFt if last else EOF.EOFn))
        x.seq_id = (x.seq_id + 1) & 0xFF

    async def _abort(self, x: _Exchange) -> None:
        hdr = make_header(RCtl.ABTS, self.target_fcid, self.port.fcid, FcType.BLS,
                          int(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE), ox_id=x.ox_id)
        x.done = trio.Event()
        self.port.hl.exchanges.send(hdr, b"")
        with trio.move_on_after(5):
            await x.done.wait()

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
        with trio.CancelScope(shield=True):
            await it.logout()
