"""FCP exchanges on the target side (FCP-4 clause 9 and annex; sans-IO).

Theory of operation
-------------------
One exchange per command, keyed by the initiator's OX_ID within its session:

    FCP_CMND --> precheck --(answer now)------------------------------> FCP_RSP
                     |--(read / no data)--> execute --> FCP_DATA... --> FCP_RSP
                     '--(write)--> FCP_XFER_RDY --> FCP_DATA... (burst) --> [next burst]
                                                      --> execute --> FCP_RSP

Read data leaves as one sequence of FCP_DATA frames cut at the initiator's receive data
field size, each with its relative offset; the response follows as a new sequence that
passes the sequence initiative back. Write data is gathered into one buffer per exchange
by relative offset, in bursts of at most `max_burst` bytes (one FCP_XFER_RDY each, unless
the initiator disabled write XFER_RDY at PRLI: then the whole FCP_DL comes unasked).

Residuals (FCP-4 9.5): data-in shorter than FCP_DL is an underrun (FCP_RESID_UNDER), data
the SCSI layer had but FCP_DL could not hold is an overrun (FCP_RESID_OVER); for writes,
what the command used against what FCP_DL offered. Malformed IUs get FCP_RSP with response
code 2 (FCP_CMND fields invalid); data that does not fit the burst asked for gets
response code 1 or 3; neither ever reaches the SCSI layer.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fcsoft.scsi.sense import Status
from fcsoft.scsi.types import Command, Deferral, Result
from fcsoft.wire.encap import (
    EOF,
    SOF,
    Frame,
    FrameRun,
    each_frame,
    encode_frame_of,
    encode_sequence,
)
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.fcp import (
    FCP_RSP_GOOD,
    FcpRspCode,
    FcpXferRdy,
    TaskManagementFlags,
    decode_fcp_cmnd,
    lun_to_int,
    make_fcp_rsp,
)
from fcsoft.wire.header import FcHeader, FCtl, FcType, RCtl

if TYPE_CHECKING:
    from .port import Session, TargetPort

FCP = int(FcType.FCP)
_R_DATA = int(RCtl.SOLICITED_DATA)
_R_XFER = int(RCtl.DATA_DESCRIPTOR)
_R_RSP = int(RCtl.COMMAND_STATUS)
_R_CMND = int(RCtl.UNSOLICITED_COMMAND)
# F_CTL of frames the target sends in an exchange it is the responder of
_CTX = int(FCtl.EXCHANGE_CONTEXT)
_REL_OFF = int(FCtl.RELATIVE_OFFSET)
_DATA_MID = _CTX | _REL_OFF
_DATA_LAST = _DATA_MID | int(FCtl.END_SEQUENCE)
_XFER_F_CTL = _CTX | int(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)
_RSP_F_CTL = _CTX | int(FCtl.LAST_SEQUENCE | FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE)
_SOFi3, _SOFn3, _EOFn, _EOFt = int(SOF.SOFi3), int(SOF.SOFn3), int(EOF.EOFn), int(EOF.EOFt)


class XState(enum.Enum):
    DATA_OUT = "waiting for write data"
    EXECUTING = "running off the event loop"  # a worker thread, or an injected delay
    DONE = "done"


@dataclass(slots=True, eq=False)
class Exchange:
    ox_id: int
    rx_id: int
    session: Any
    cmd: Command
    fcp_dl: int
    lun: int
    buf: bytearray
    received: int = 0
    burst_end: int = 0
    seq_id: int = 1
    state: XState = XState.DATA_OUT
    rddata: bool = False
    # where write data goes as it arrives (the SCSI layer's data_out_sink), else into buf
    sink: Callable[[int, memoryview], None] | None = None


class FcpEngine:
    """The FCP side of one target port."""

    def __init__(self, port: TargetPort, *, max_burst: int, max_exchanges: int) -> None:
        self.port = port
        # SEQ_IDs of the sequences this port starts rotate through 1..255 across exchanges
        # (FC-FS-4 only asks that open sequences differ). Initiators reuse OX_IDs at once
        # (Linux does), and a trace reader that keys reassembly on OX_ID and SEQ_ID, as
        # Wireshark does, then does not mistake the next exchange's data for a retransmission.
        self._seq = 0
        self.max_burst = max(512, max_burst)
        self.max_exchanges = max_exchanges
        self.counters = port.counters
        # optional SCSI front hooks (a test's stand-in may not have them)
        self._sink_of = getattr(port.scsi, "data_out_sink", None)
        self._fast_read = getattr(port.scsi, "fast_read", None)
        self._deferral_of = getattr(port.scsi, "deferral", None)

    # ------------------------------------------------------------------ frames
    def frame(self, frame: Frame) -> None:
        h = frame.header
        r = h.r_ctl
        if r == _R_DATA:
            self._data(frame)
        elif r == _R_CMND:
            self._command(frame)
        else:
            self.counters["fcp_discard_unexpected_r_ctl"] += 1

    def frames(self, frames: list[Frame | FrameRun]) -> None:
        """FCP frames that arrived back to back from one initiator: runs of FCP_DATA of
        one exchange are taken in one loop (`_data_run`), anything else one by one."""
        n = len(frames)
        i = 0
        while i < n:
            frame = frames[i]
            if frame.header.r_ctl != _R_DATA:  # (a FrameRun is always data)
                self.frame(frame)  # type: ignore[arg-type]
                i += 1
                continue
            j = self._data_run(frames, i, n)
            if j == i:  # not one the run could take: the checked way, frame by frame
                for f in each_frame([frame]):
                    self._data(f)
                j += 1
            i = j

    def _data_run(self, frames: list[Frame | FrameRun], i: int, n: int) -> int:
        """FCP_DATA frames of one exchange from frames[i] on, as long as they are data of
        that exchange in order and inside the burst, each checked as `_data` checks it, the
        exchange looked up once; returns the index of the first item not taken. A
        FrameRun's frames are in order by construction (the decoder saw to it): it is
        taken whole when its first frame is where the data stands and its last ends
        inside the burst. The frame that ends the burst, or is out of order, is left for
        `_data` (the exchange's state changes there)."""
        h = frames[i].header
        session = self.port.sessions.get(h.s_id)
        x = session.exchanges.get(h.ox_id) if session is not None else None
        if x is None or x.state is not XState.DATA_OUT:
            return i
        ox = h.ox_id
        sink = x.sink
        buf = x.buf
        start = received = x.received
        burst_end = x.burst_end
        pieces: list[bytes | memoryview] = []  # for a sink: handed over together, in order
        while i < n:
            frame = frames[i]
            fh = frame.header
            if fh.ox_id != ox or fh.r_ctl != _R_DATA:
                break  # another exchange's frame, or not data: the run ends
            if fh.f_ctl & _REL_OFF and fh.parameter != received:
                break  # out of order: the checked way
            if isinstance(frame, FrameRun):
                payloads = frame.payloads
                end = received + sum(map(len, payloads))
                if end >= burst_end:
                    break  # the burst's last frame (or beyond) in it: frame by frame
                if sink is not None:
                    pieces += payloads
                else:
                    at = received
                    for payload in payloads:
                        buf[at:at + len(payload)] = payload
                        at += len(payload)
                received = end
                i += 1
                continue
            payload = frame.payload
            end = received + len(payload)
            if end >= burst_end:
                break  # the burst's last frame (or beyond): the checked way
            if sink is not None:
                pieces.append(payload)
            else:
                buf[received:end] = payload
            received = end
            i += 1
        if pieces:
            many = getattr(sink, "many", None)
            if many is not None:
                many(start, pieces)
            else:
                for payload in pieces:
                    sink(start, payload)
                    start += len(payload)
        x.received = received
        return i

    def _send(self, session: Session, ox: int, rx: int, r_ctl: int, f_ctl: int, seq_id: int,
              seq_cnt: int, param: int, payload: bytes | memoryview, sof: int = _SOFi3,
              eof: int = _EOFt) -> None:
        port = self.port
        port.transmit(encode_frame_of(r_ctl, session.s_id, port.fcid, FCP, f_ctl, seq_id,
                                      seq_cnt, ox, rx, param, payload, sof, eof))

    def _next_seq_id(self, span: int = 1) -> int:
        """A SEQ_ID for the first of `span` sequences (they take the next ones)."""
        seq = self._seq
        self._seq = (seq + span) % 255
        return seq + 1

    def _rsp_code(self, session: Session, h: FcHeader, code: int) -> None:
        rsp = make_fcp_rsp(response_code=code).encode()
        self._send(session, h.ox_id, self.port.new_xid(), _R_RSP, _RSP_F_CTL,
                   self._next_seq_id(), 0, 0, rsp)

    # ------------------------------------------------------------------ commands
    def _command(self, frame: Frame) -> None:
        port = self.port
        h = frame.header
        session = port.sessions.get(h.s_id)
        if session is None:
            # FC-LS-3 / FCP-4: FCP from a port that has no PLOGI session gets LOGO
            self.counters["fcp_without_plogi"] += 1
            port.send_logo(h.s_id)
            return
        if not session.image_pair:
            self.counters["fcp_without_prli"] += 1
            port.send_prlo(h.s_id)
            return
        try:
            cmnd = decode_fcp_cmnd(frame.payload)
        except DecodeError as exc:
            self.counters["fcp_malformed_cmnd"] += 1
            port.log.info("malformed FCP_CMND", s_id=h.s_id, ox_id=h.ox_id, reason=str(exc),
                          response=FcpRspCode.FCP_CMND_FIELDS_INVALID)
            self._rsp_code(session, h, FcpRspCode.FCP_CMND_FIELDS_INVALID)
            return
        if h.ox_id in session.exchanges:
            self.counters["fcp_duplicate_ox_id"] += 1
            self._rsp_code(session, h, FcpRspCode.FCP_CMND_FIELDS_INVALID)
            return
        lun = lun_to_int(cmnd.lun)
        if cmnd.task_management_flags:
            self._task_management(session, h, cmnd.task_management_flags, lun)
            return
        if cmnd.bidirectional:
            self._rsp_code(session, h, FcpRspCode.FCP_CMND_FIELDS_INVALID)
            return
        if len(session.exchanges) >= self.max_exchanges:
            self.counters["task_set_full"] += 1
            rsp = make_fcp_rsp(Status.TASK_SET_FULL).encode()
            self._send(session, h.ox_id, port.new_xid(), _R_RSP, _RSP_F_CTL,
                       self._next_seq_id(), 0, 0, rsp)
            return
        if cmnd.rddata and self._fast_read is not None:
            data = self._fast_read(session.nexus, lun, cmnd.cdb, cmnd.fcp_dl)
            if data is not None:  # a READ the SCSI layer answers GOOD with no more ado
                self.counters["commands"] += 1
                self._answer(session, h.ox_id, port.new_xid(), self._next_seq_id(2), data,
                             FCP_RSP_GOOD)
                return
        cmd = Command(session.nexus, lun, cmnd.cdb, b"", cmnd.fcp_dl, h.ox_id,
                      cmnd.task_attribute)
        rx = port.new_xid()
        self.counters["commands"] += 1
        result = port.scsi.precheck(cmd)
        if result is not None:
            self._respond(session, h.ox_id, rx, cmd, result, self._next_seq_id(2), cmnd.rddata)
            return
        if cmnd.wrdata and cmnd.fcp_dl:
            sink = self._sink_of(cmd) if self._sink_of is not None else None
            x = Exchange(h.ox_id, rx, session, cmd, cmnd.fcp_dl, lun,
                         bytearray(0 if sink is not None else cmnd.fcp_dl),
                         seq_id=self._next_seq_id(4), sink=sink)
            session.exchanges[h.ox_id] = x
            if session.write_xfer_rdy_disabled:
                x.burst_end = cmnd.fcp_dl  # FCP-4: the initiator sends everything unasked
            else:
                self._xfer_rdy(x)
            return
        self._execute(session, h.ox_id, rx, cmd, cmnd.rddata, self._next_seq_id(2))

    def _xfer_rdy(self, x: Exchange) -> None:
        burst = min(self.max_burst, x.fcp_dl - x.received)
        x.burst_end = x.received + burst
        payload = FcpXferRdy(x.received, burst).encode()
        self._send(x.session, x.ox_id, x.rx_id, _R_XFER, _XFER_F_CTL, x.seq_id, 0, 0, payload)
        x.seq_id = x.seq_id % 255 + 1

    def _data(self, frame: Frame) -> None:
        h = frame.header
        session = self.port.sessions.get(h.s_id)
        x = session.exchanges.get(h.ox_id) if session is not None else None
        if x is None or x.state is not XState.DATA_OUT:
            self.counters["fcp_data_unknown_exchange"] += 1
            return
        payload = frame.payload
        n = len(payload)
        offset = h.parameter if h.f_ctl & _REL_OFF else x.received
        if offset != x.received:
            self._protocol_error(x, FcpRspCode.DATA_RO_MISMATCH,
                                 f"data at offset {offset}, expected {x.received}")
            return
        end = offset + n
        if end > x.burst_end:
            self._protocol_error(x, FcpRspCode.DATA_LENGTH_INVALID,
                                 f"data up to {end} beyond the {x.burst_end} bytes asked for "
                                 f"(FCP_DL {x.fcp_dl})")
            return
        if x.sink is not None:
            x.sink(offset, payload)
        else:
            x.buf[offset:end] = payload
        x.received = end
        if end < x.burst_end:
            return
        if end < x.fcp_dl:
            self._xfer_rdy(x)
            return
        del session.exchanges[x.ox_id]  # type: ignore[union-attr]
        x.state = XState.DONE
        if x.sink is not None:
            x.cmd.data_in_place = True
        else:
            x.cmd.data_out = memoryview(x.buf)
        self._execute(x.session, x.ox_id, x.rx_id, x.cmd, False, x.seq_id, x)

    def _protocol_error(self, x: Exchange, code: int, why: str) -> None:
        self.counters["fcp_data_protocol_error"] += 1
        self.port.log.info("write data refused", s_id=x.session.s_id, ox_id=x.ox_id, reason=why)
        x.session.exchanges.pop(x.ox_id, None)
        x.state = XState.DONE
        rsp = make_fcp_rsp(response_code=code).encode()
        self._send(x.session, x.ox_id, x.rx_id, _R_RSP, _RSP_F_CTL, x.seq_id, 0, 0, rsp)

    def _execute(self, session: Session, ox: int, rx: int, cmd: Command, rddata: bool,
                 seq_id: int, x: Exchange | None = None) -> None:
        """Run a command and answer it: at once, or, when the SCSI layer wants it off the
        event loop (file I/O, an injected latency) and the port has a `defer` hook, later,
        the exchange waiting meanwhile where aborts find it."""
        deferral = self._deferral_of(cmd) if self._deferral_of is not None else None
        delay = self._latency(cmd)
        if delay:
            deferral = Deferral(thread=deferral is not None and deferral.thread, delay=delay)
        if deferral is None or self.port.defer is None:
            self._respond(session, ox, rx, cmd, self._run(cmd), seq_id, rddata)
            return
        if x is None:
            x = Exchange(ox, rx, session, cmd, cmd.expected_length, 0, bytearray(),
                         seq_id=seq_id)
        x.lun = cmd.lun
        x.rddata = rddata
        x.seq_id = seq_id
        x.state = XState.EXECUTING
        session.exchanges[ox] = x
        self.port.defer(lambda: self._run(cmd), lambda result: self._completed(x, result),
                        deferral)

    def _latency(self, cmd: Command) -> float:
        """Seconds the LU's completions are held back (fcsoft ctl lu-latency), when the
        shell gave the port a way to wait (`defer`)."""
        port = self.port
        if port.defer is None or not getattr(port.scsi, "any_latency", False):
            return 0.0
        lu = port.scsi.lookup(cmd.nexus, cmd.lun)
        ms = getattr(lu, "latency_ms", 0) if lu is not None else 0
        return ms / 1000 if isinstance(ms, int) and ms > 0 else 0.0

    def _run(self, cmd: Command) -> Result:
        try:
            result: Result = self.port.scsi.execute(cmd)
            return result
        except Exception:  # noqa: BLE001 - a bug in one command must not take the port down
            self.port.log.exception("SCSI command failed", cdb=cmd.cdb[:16].hex())
            from fcsoft.scsi.sense import Asc, Sense, SenseKey

            return Result.check(Sense(SenseKey.HARDWARE_ERROR, Asc(0x44, 0x00)))

    def _completed(self, x: Exchange, result: Result) -> None:
        """A deferred command finished: answer it, unless it was aborted meanwhile (its
        session ended, ABTS, a task management function or PREEMPT AND ABORT)."""
        if x.state is not XState.EXECUTING:
            return
        x.state = XState.DONE
        session: Session = x.session
        if session.exchanges.get(x.ox_id) is x:
            del session.exchanges[x.ox_id]
        if self.port.sessions.get(session.s_id) is not session:
            return
        self._respond(session, x.ox_id, x.rx_id, x.cmd, result, x.seq_id, x.rddata)

    def _respond(self, session: Session, ox: int, rx: int, cmd: Command, result: Result,
                 seq_id: int, rddata: bool) -> None:
        """Data-in (if any) and FCP_RSP. Data-in is one sequence of FCP_DATA frames of at
        most the initiator's receive size, relative offsets in PARAMETER; it and the
        FCP_RSP that follows are built into one buffer and sent as one transmit."""
        fcp_dl = cmd.expected_length
        data = result.data
        under = over = sent = 0
        if rddata:
            n = len(data)
            sent = min(n, fcp_dl)
            if n < fcp_dl:
                under = fcp_dl - n
            elif n > fcp_dl:
                over = n - fcp_dl
        elif data:
            over = len(data)  # data-in the initiator did not ask for (no RDDATA)
        elif cmd.data_out:
            used = result.data_out_used
            if used is not None and used < fcp_dl:
                under = fcp_dl - used
            elif used is not None and used > fcp_dl:
                over = used - fcp_dl
        sense = result.sense.encode() if result.sense is not None else b""
        if result.status == Status.GOOD and not (under or over or sense):
            rsp = FCP_RSP_GOOD
        else:
            rsp = make_fcp_rsp(int(result.status), residual_under=under, residual_over=over,
                               sense=sense).encode()
        if sent:
            mv = data if isinstance(data, memoryview) else memoryview(data)
            self._answer(session, ox, rx, seq_id, mv[:sent], rsp)
        else:
            self._answer(session, ox, rx, seq_id, None, rsp)

    def _answer(self, session: Session, ox: int, rx: int, seq_id: int,
                data: bytes | bytearray | memoryview | None, rsp: bytes) -> None:
        """Data-in (when `data`, the whole of it) as one sequence with SEQ_ID `seq_id`,
        then the FCP_RSP `rsp` (SEQ_ID the next one), in one buffer and one transmit."""
        port = self.port
        s_id = session.s_id
        fcid = port.fcid
        rsp_frame = encode_frame_of(_R_RSP, s_id, fcid, FCP, _RSP_F_CTL,
                                    seq_id % 255 + 1 if data else seq_id, 0, ox, rx, 0, rsp)
        if not data:
            port.transmit(rsp_frame)
            return
        port.transmit(encode_sequence(_R_DATA, s_id, fcid, FCP, _DATA_MID, seq_id, ox, rx,
                                      data, session.receive_size, 0, _DATA_LAST,
                                      trailer=rsp_frame))

    # ------------------------------------------------------------------ task management
    def _task_management(self, session: Session, h: FcHeader, flags: int, lun: int) -> None:
        port = self.port
        scsi = port.scsi
        nexus = session.nexus
        tmf = TaskManagementFlags(flags)
        code = FcpRspCode.TMF_COMPLETE
        lu = scsi.lookup(nexus, lun)

        def same_lu(x: Exchange) -> bool:
            # another initiator may reach this LU under another LUN number
            return scsi.lookup(x.session.nexus, x.lun) is lu

        if tmf == TaskManagementFlags.TARGET_RESET:
            self.abort_all(lambda x: True, nexus)
            scsi.target_reset(nexus)
        elif lu is None:
            code = FcpRspCode.INVALID_LUN
        elif tmf == TaskManagementFlags.ABORT_TASK_SET:
            self.abort_matching(lambda x: x.session is session and x.lun == lun)
        elif tmf == TaskManagementFlags.CLEAR_TASK_SET:
            self.abort_all(same_lu, nexus)
        elif tmf == TaskManagementFlags.LUN_RESET:
            self.abort_all(same_lu, nexus)
            scsi.lun_reset(nexus, lun)
        elif tmf == TaskManagementFlags.CLEAR_ACA:
            pass  # NormACA is 0: there is never an ACA condition to clear
        else:
            code = FcpRspCode.TMF_REJECTED  # several bits at once, or reserved ones
        self.counters["task_management"] += 1
        port.log.info("task management", initiator=session.wwpn, lun=lun, function=tmf,
                      response=FcpRspCode(code))
        self._rsp_code(session, h, code)

    # ------------------------------------------------------------------ aborts
    def abort_exchange(self, session: Session, ox_id: int) -> bool:
        """ABTS: forget the exchange (its command never runs). True if it existed."""
        x = session.exchanges.pop(ox_id, None)
        if x is None:
            return False
        x.state = XState.DONE
        self.counters["exchanges_aborted"] += 1
        return True

    def abort_session(self, session: Session) -> None:
        for x in session.exchanges.values():
            x.state = XState.DONE
        self.counters["exchanges_aborted"] += len(session.exchanges)
        session.exchanges.clear()

    def abort_matching(self, pred: Any, status: int | None = None,
                       issuer: Any = None) -> int:
        """Abort this port's exchanges for which pred(exchange) holds. With `status`, each
        is completed with that SCSI status; with `issuer` (the nexus of a task management
        request), the other nexuses' commands end with TASK ABORTED (TAS=1, SAM-5 5.6) and
        the issuer's own end silently (it learns of them from the TMF response)."""
        n = 0
        for session in list(self.port.sessions.values()):
            for ox in [ox for ox, x in session.exchanges.items() if pred(x)]:
                x = session.exchanges.pop(ox)
                x.state = XState.DONE
                n += 1
                st = status
                if st is None and issuer is not None and session.nexus != issuer:
                    st = Status.TASK_ABORTED
                if st is not None:
                    rsp = make_fcp_rsp(st).encode()
                    self._send(session, x.ox_id, x.rx_id, _R_RSP, _RSP_F_CTL, x.seq_id, 0, 0,
                               rsp)
        self.counters["exchanges_aborted"] += n
        return n

    def abort_all(self, pred: Any, issuer: Any) -> int:
        """Abort on every port of the array (a LUN reset reaches all initiators)."""
        hook = getattr(self.port, "abort_everywhere", None)
        if hook is not None:
            return int(hook(pred, issuer))
        return self.abort_matching(pred, issuer=issuer)
