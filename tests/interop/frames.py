"""A catalogue of sample frames: every frame kind the fcsoft codecs build, in the order of a
real conversation, for third-party decoders (tshark) to judge.

Wireshark decodes a reply only in the context of its request (an ELS LS_ACC, a CT accept, the
FCP_DATA / FCP_XFER_RDY / FCP_RSP of an FCP_CMND): it pairs them by exchange (S_ID/D_ID and
OX_ID). So the catalogue is a conversation: each request gets a fresh OX_ID with RX_ID FFFF,
and every frame of the responder carries S_ID/D_ID swapped, the same OX_ID, an RX_ID of its
own and F_CTL EXCHANGE_CONTEXT (FC-FS-4 9.7). Class 3 delimiters as docs/wire.md says:
SOFi3 on the first frame of a sequence, SOFn3 on the others, EOFt on the last frame of a
sequence, EOFn on the others.

Each `SampleFrame` names what tshark should see in it (`els_opcode` -> fcels.opcode,
`ct_opcode` -> fcdns.opcode, `scsi_opcode` -> scsi_sbc.opcode / scsi.spc.opcode), so the test
can check that the decoder understood the intended command, not just that it did not complain.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from fcsoft.wire import ns
from fcsoft.wire.bls import Abts, BaAcc, BaRjt, BaRjtExplanation, BaRjtReason
from fcsoft.wire.ct import (
    CtPreamble,
    CtRejectReason,
    GsType,
    NsCommand,
    NsRejectExplanation,
    ct_accept,
    ct_reject,
    ct_request,
)
from fcsoft.wire.els import (
    Adisc,
    Echo,
    ElsCommand,
    FcpServiceParameters,
    Logo,
    LsAcc,
    LsRjt,
    LsRjtExplanation,
    LsRjtReason,
    Prli,
    PrliResponseCode,
    Prlo,
    Rrq,
    Rscn,
    RscnAddressFormat,
    RscnEventQualifier,
    RscnPage,
    Rtv,
    RtvAccept,
    Scr,
    ServiceParameterPage,
    ServiceParameters,
)
from fcsoft.wire.encap import EOF, SOF, encode_frame
from fcsoft.wire.fcp import (
    FcpCmnd,
    FcpRsp,
    FcpRspCode,
    FcpRspFlags,
    FcpXferRdy,
    ScsiStatus,
    TaskManagementFlags,
    int_to_lun,
    make_fcp_rsp,
)
from fcsoft.wire.header import (
    F_CTL_REPLY,
    F_CTL_REQUEST,
    FCtl,
    FcHeader,
    FcType,
    RCtl,
    UNKNOWN_XID,
    WellKnownAddress,
    make_header,
)
from fcsoft.wire.wwn import WWN

F_PORT = WellKnownAddress.FABRIC_F_PORT
CONTROLLER = WellKnownAddress.FABRIC_CONTROLLER
DIRECTORY = WellKnownAddress.DIRECTORY_SERVER

FABRIC_WWN = WWN("10:00:00:05:1e:00:00:01")
F_PORT_WWN = WWN("20:01:00:05:1e:00:00:01")
HOST_WWPN = WWN("10:00:00:00:c9:00:00:01")
HOST_WWNN = WWN("20:00:00:00:c9:00:00:01")
VPORT_WWPN = WWN("c0:50:76:00:00:00:00:01")
TARGET_WWPN = WWN("50:01:43:80:00:00:00:01")
TARGET_WWNN = WWN("50:01:43:80:00:00:00:00")
HOST = 0x010100
VPORT = 0x010101
TARGET = 0x010200

# FCP sequences other than the last: F_CTL of a responder's data sequence, which keeps the
# sequence initiative so that it can send FCP_RSP next (FCP-4 table 4)
_RESPONDER_SEQ = FCtl.EXCHANGE_CONTEXT | FCtl.END_SEQUENCE
_RESPONDER_SEQ_SI = _RESPONDER_SEQ | FCtl.SEQUENCE_INITIATIVE
# an originator's sequence in the middle of its exchange (FCP_DATA of a write)
_ORIGINATOR_SEQ_SI = FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE


@dataclass(frozen=True)
class SampleFrame:
    """One FC frame of the catalogue and what a decoder should recognise in it."""

    name: str
    header: FcHeader
    payload: bytes
    sof: int = SOF.SOFi3
    eof: int = EOF.EOFt
    els_opcode: int | None = None  # fcels.opcode (an LS_ACC is 0x02, an LS_RJT 0x01)
    ct_opcode: int | None = None  # fcdns.opcode: request code, or 0x8001 / 0x8002
    scsi_opcode: int | None = None  # the CDB opcode of an FCP_CMND

    def encode(self) -> bytes:
        """The RFC 3643 encapsulated frame (what travels over TCP)."""
        return encode_frame(self.header, self.payload, self.sof, self.eof)


class _Conversation:
    """Builds exchanges: requests with fresh OX_IDs, replies with swapped addresses."""

    def __init__(self) -> None:
        self.frames: list[SampleFrame] = []
        self._ox = itertools.count(0x0101)
        self._rx = itertools.count(0x8001)

    def request(self, name: str, r_ctl: int, type_: int, s_id: int, d_id: int,
                payload: bytes, *, f_ctl: int = F_CTL_REQUEST, parameter: int = 0,
                **expect: object) -> FcHeader:
        h = make_header(r_ctl, d_id, s_id, type_, f_ctl, ox_id=next(self._ox),
                        rx_id=UNKNOWN_XID, parameter=parameter)
        self.add(name, h, payload, **expect)
        return h

    def reply(self, name: str, request: FcHeader, r_ctl: int, payload: bytes, *,
              type_: int | None = None, d_id: int | None = None, f_ctl: int = F_CTL_REPLY,
              **expect: object) -> FcHeader:
        rx_id = request.rx_id if request.rx_id != UNKNOWN_XID else next(self._rx)
        h = request.reply(r_ctl, type_, f_ctl, rx_id=rx_id)
        if d_id is not None:  # FLOGI / FDISC LS_ACC go to the newly assigned N_Port_ID
            h = h._replace(d_id=d_id)
        self.add(name, h, payload, **expect)
        return h

    def add(self, name: str, header: FcHeader, payload: bytes, **kw: object) -> None:
        self.frames.append(SampleFrame(name, header, payload, **kw))  # type: ignore[arg-type]

    # -- ELS -------------------------------------------------------------------------------
    def els(self, name: str, s_id: int, d_id: int, payload: bytes,
            reply: bytes | None, *, reply_name: str | None = None,
            reply_d_id: int | None = None) -> None:
        h = self.request(name, RCtl.ELS_REQUEST, FcType.ELS, s_id, d_id, payload,
                         els_opcode=payload[0])
        if reply is not None:
            self.reply(reply_name or f"{name} {_reply_word(reply)}", h, RCtl.ELS_REPLY, reply,
                       d_id=reply_d_id, els_opcode=reply[0])

    # -- CT (name server) ---------------------------------------------------------------------
    def ns(self, command: NsCommand, s_id: int, body: bytes,
           accept: bytes | None = None, *, reject: tuple[int, int] | None = None,
           label: str | None = None) -> None:
        req = ct_request(GsType.DIRECTORY, 0x02, command, body)
        h = self.request(label or command.name, RCtl.UNSOLICITED_CONTROL, FcType.CT, s_id,
                         DIRECTORY, req, ct_opcode=int(command))
        pre = CtPreamble(GsType.DIRECTORY, 0x02, command)
        if reject is not None:
            self.reply(f"{command.name} CT reject", h, RCtl.SOLICITED_CONTROL,
                       ct_reject(pre, *reject), ct_opcode=0x8001)
        else:
            self.reply(f"{command.name} CT accept", h, RCtl.SOLICITED_CONTROL,
                       ct_accept(pre, accept or b""), ct_opcode=0x8002)


def _reply_word(payload: bytes) -> str:
    return "LS_RJT" if payload[0] == ElsCommand.LS_RJT else "LS_ACC"


# standard INQUIRY data (SPC-4 6.6.2): direct-access block device, SPC-4, 36 bytes
INQUIRY_DATA = (bytes((0x00, 0x00, 0x06, 0x02, 31, 0x00, 0x00, 0x02))
                + b"FCSOFT  " + b"VDISK           " + b"0001")
# fixed-format sense data (SPC-4 4.5.3): ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED 25/00
SENSE_LUN_NOT_SUPPORTED = bytes((0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0, 0, 0,
                                 0, 0))


def _read10(lba: int, blocks: int) -> bytes:
    return bytes((0x28, 0)) + lba.to_bytes(4, "big") + bytes((0,)) + blocks.to_bytes(2, "big") \
        + bytes(1)


def _write10(lba: int, blocks: int) -> bytes:
    return bytes((0x2A, 0)) + lba.to_bytes(4, "big") + bytes((0,)) + blocks.to_bytes(2, "big") \
        + bytes(1)


def _read32(lba: int, blocks: int) -> bytes:
    """READ(32) (SBC-4 5.17): a 32-byte variable-length CDB, so FCP_CMND carries 16 bytes of
    additional CDB (ADDITIONAL FCP_CDB LENGTH = 4 words)."""
    return (bytes((0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0x00, 0x09, 0, 0))
            + lba.to_bytes(8, "big") + bytes(8) + blocks.to_bytes(4, "big"))


def _data_frames(conv: _Conversation, name: str, cmnd: FcHeader, data: bytes, *,
                 from_target: bool, frame_size: int, rx_id: int, seq_id: int) -> None:
    """An FCP_DATA sequence: `data` split into frames of `frame_size` with relative offsets
    (FCP-4 9.4: PARAMETER holds the offset, F_CTL RELATIVE_OFFSET says so)."""
    chunks = [data[i:i + frame_size] for i in range(0, len(data), frame_size)]
    direction = "in" if from_target else "out"
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        if from_target:  # the target keeps the sequence initiative: FCP_RSP follows
            f_ctl = (_RESPONDER_SEQ if last else FCtl.EXCHANGE_CONTEXT) | FCtl.RELATIVE_OFFSET
            s_id, d_id = cmnd.d_id, cmnd.s_id
        else:  # the initiator hands the initiative back with its last data frame
            f_ctl = (_ORIGINATOR_SEQ_SI if last else 0) | FCtl.RELATIVE_OFFSET
            s_id, d_id = cmnd.s_id, cmnd.d_id
        h = make_header(RCtl.SOLICITED_DATA, d_id, s_id, FcType.FCP, f_ctl, ox_id=cmnd.ox_id,
                        rx_id=rx_id, seq_id=seq_id, seq_cnt=n, parameter=n * frame_size)
        conv.add(f"{name} FCP_DATA {direction} {n + 1}/{len(chunks)}", h, chunk,
                 sof=SOF.SOFi3 if n == 0 else SOF.SOFn3, eof=EOF.EOFt if last else EOF.EOFn)


def _fcp_exchange(conv: _Conversation, name: str, cmnd: FcpCmnd, *, data_in: bytes = b"",
                  data_out: bytes = b"", rsp: FcpRsp, scsi_opcode: int | None,
                  frame_size: int = 1024) -> None:
    """FCP_CMND -> [FCP_XFER_RDY -> FCP_DATA out] -> [FCP_DATA in] -> FCP_RSP, each
    sequence with a SEQ_ID of its own."""
    h = conv.request(f"{name} FCP_CMND", RCtl.UNSOLICITED_COMMAND, FcType.FCP, HOST, TARGET,
                     cmnd.encode(), scsi_opcode=scsi_opcode)
    rx_id = next(conv._rx)
    seq_ids = itertools.count(1)
    if data_out:
        xh = h.reply(RCtl.DATA_DESCRIPTOR, None, _RESPONDER_SEQ_SI,
                     rx_id=rx_id)._replace(seq_id=next(seq_ids))
        conv.add(f"{name} FCP_XFER_RDY", xh, FcpXferRdy(0, len(data_out)).encode())
        _data_frames(conv, name, h, data_out, from_target=False, frame_size=frame_size,
                     rx_id=rx_id, seq_id=next(seq_ids))
    if data_in:
        _data_frames(conv, name, h, data_in, from_target=True, frame_size=frame_size,
                     rx_id=rx_id, seq_id=next(seq_ids))
    rh = h.reply(RCtl.COMMAND_STATUS, None, F_CTL_REPLY,
                 rx_id=rx_id)._replace(seq_id=next(seq_ids))
    conv.add(f"{name} FCP_RSP", rh, rsp.encode())


def conversation() -> list[SampleFrame]:
    """Every frame kind, in conversation order (see module doc)."""
    c = _Conversation()

    # -- fabric login, NPIV, name server registrations (libfc order), SCR -------------------
    c.els("FLOGI", 0, F_PORT, ServiceParameters.flogi(HOST_WWPN, HOST_WWNN).encode(),
          ServiceParameters.flogi_accept(F_PORT_WWN, FABRIC_WWN).encode(), reply_d_id=HOST)
    c.els("FDISC", 0, F_PORT, ServiceParameters.fdisc(VPORT_WWPN, HOST_WWNN).encode(),
          ServiceParameters.flogi_accept(F_PORT_WWN, FABRIC_WWN).encode(), reply_d_id=VPORT)
    plogi = ServiceParameters.plogi
    c.els("PLOGI to the name server", HOST, DIRECTORY,
          plogi(HOST_WWPN, HOST_WWNN).encode(),
          plogi(WWN("20:fc:00:05:1e:00:00:01"), FABRIC_WWN, command=ElsCommand.LS_ACC).encode())
    c.ns(NsCommand.RNN_ID, HOST, ns.RnnIdRequest(HOST, HOST_WWNN).encode())
    c.ns(NsCommand.RSNN_NN, HOST, ns.RsnnNnRequest(HOST_WWNN, b"fcsoft host").encode())
    c.ns(NsCommand.RSPN_ID, HOST, ns.RspnIdRequest(HOST, b"fcsoft initiator").encode())
    c.ns(NsCommand.RFT_ID, HOST,
         ns.RftIdRequest(HOST, ns.Fc4Types({FcType.FCP})).encode())
    c.ns(NsCommand.RFF_ID, HOST,
         ns.RffIdRequest(HOST, FcType.FCP, ns.FcpFeatures.INITIATOR).encode())
    c.els("SCR", HOST, CONTROLLER, Scr().encode(), LsAcc().encode())

    # -- name server queries, accepts and rejects ---------------------------------------------
    targets = (TARGET, 0x010300)
    c.ns(NsCommand.GID_FT, HOST, ns.GidFtRequest(FcType.FCP).encode(),
         ns.GidFtAccept(targets).encode())
    c.ns(NsCommand.GPN_FT, HOST, ns.GpnFtRequest(FcType.FCP).encode(),
         ns.GpnFtAccept(((TARGET, TARGET_WWPN),
                         (0x010300, WWN("50:01:43:80:00:00:00:02")))).encode())
    c.ns(NsCommand.GNN_FT, HOST, ns.GnnFtRequest(FcType.FCP).encode(),
         ns.GnnFtAccept(((TARGET, TARGET_WWNN), (0x010300, TARGET_WWNN))).encode())
    c.ns(NsCommand.GID_PT, HOST, ns.GidPtRequest(ns.PortType.N_PORT).encode(),
         ns.GidPtAccept((HOST, VPORT, TARGET)).encode())
    c.ns(NsCommand.GFF_ID, HOST, ns.GffIdRequest(TARGET).encode(),
         ns.GffIdAccept(ns.Fc4Features({FcType.FCP: ns.FcpFeatures.TARGET})).encode())
    c.ns(NsCommand.GID_PN, HOST, ns.GidPnRequest(TARGET_WWPN).encode(),
         ns.GidPnAccept(TARGET).encode())
    c.ns(NsCommand.GPN_ID, HOST, ns.GpnIdRequest(TARGET).encode(),
         ns.GpnIdAccept(TARGET_WWPN).encode())
    c.ns(NsCommand.GNN_ID, HOST, ns.GnnIdRequest(TARGET).encode(),
         ns.GnnIdAccept(TARGET_WWNN).encode())
    c.ns(NsCommand.GFT_ID, HOST, ns.GftIdRequest(TARGET).encode(),
         ns.GftIdAccept(ns.Fc4Types({FcType.FCP})).encode())
    c.ns(NsCommand.GSPN_ID, HOST, ns.GspnIdRequest(TARGET).encode(),
         ns.GspnIdAccept(b"FCSOFT array1 port 1").encode())
    c.ns(NsCommand.GSNN_NN, HOST, ns.GsnnNnRequest(TARGET_WWNN).encode(),
         ns.GsnnNnAccept(b"FCSOFT array1").encode())
    c.ns(NsCommand.GA_NXT, HOST, ns.GaNxtRequest(HOST).encode(),
         ns.GaNxtAccept(ns.PortType.N_PORT, TARGET, TARGET_WWPN, b"FCSOFT array1 port 1",
                        TARGET_WWNN, b"FCSOFT array1", class_of_service=ns.ClassOfService(8),
                        fc4_types=ns.Fc4Types({FcType.FCP}),
                        fabric_port_name=F_PORT_WWN).encode())
    # a query that matches nothing: CT reject 09 (unable to perform), 07 (FC-4 types)
    c.ns(NsCommand.GID_FT, HOST, ns.GidFtRequest(0x05).encode(), label="GID_FT for IP",
         reject=(CtRejectReason.UNABLE_TO_PERFORM,
                 NsRejectExplanation.FC4_TYPES_NOT_REGISTERED))
    # a command the fabric does not serve: CT reject 0B (command not supported)
    c.ns(NsCommand.GID_NN, HOST, HOST_WWNN.to_bytes8(),
         reject=(CtRejectReason.COMMAND_NOT_SUPPORTED,
                 NsRejectExplanation.NO_ADDITIONAL_EXPLANATION))

    # -- RSCN from the fabric controller, answered by the host ---------------------------------
    c.els("RSCN", CONTROLLER, HOST,
          Rscn((RscnPage(TARGET, RscnAddressFormat.PORT,
                         RscnEventQualifier.NAME_SERVER_OBJECT),
                RscnPage(0x010300, RscnAddressFormat.PORT, RscnEventQualifier.NOT_SPECIFIED),
                RscnPage(0x010000, RscnAddressFormat.DOMAIN,
                         RscnEventQualifier.NOT_SPECIFIED))).encode(),
          LsAcc().encode())

    # -- port login and process login with the target ------------------------------------------
    c.els("PLOGI", HOST, TARGET, plogi(HOST_WWPN, HOST_WWNN).encode(),
          plogi(TARGET_WWPN, TARGET_WWNN, command=ElsCommand.LS_ACC).encode())
    init_sp = (FcpServiceParameters.INITIATOR_FUNCTION
               | FcpServiceParameters.READ_XFER_RDY_DISABLED)
    c.els("PRLI", HOST, TARGET,
          Prli((ServiceParameterPage(establish_image_pair=True,
                                     service_parameters=init_sp),)).encode(),
          Prli((ServiceParameterPage(establish_image_pair=True,
                                     response_code=PrliResponseCode.REQUEST_EXECUTED,
                                     service_parameters=FcpServiceParameters.TARGET_FUNCTION
                                     | FcpServiceParameters.READ_XFER_RDY_DISABLED),),
               ElsCommand.LS_ACC).encode())
    c.els("ADISC", HOST, TARGET, Adisc(0, HOST_WWPN, HOST_WWNN, HOST).encode(),
          Adisc(0, TARGET_WWPN, TARGET_WWNN, TARGET, ElsCommand.LS_ACC).encode())
    echo = Echo(b"fcsoft echo data")
    c.els("ECHO", HOST, TARGET, echo.encode(), echo.accept().encode())
    c.els("RTV", HOST, TARGET, Rtv().encode(), RtvAccept(10_000, 2_000).encode())
    c.els("PDISC", HOST, TARGET, plogi(HOST_WWPN, HOST_WWNN, command=ElsCommand.PDISC).encode(),
          plogi(TARGET_WWPN, TARGET_WWNN, command=ElsCommand.LS_ACC).encode())
    c.els("PLOGI from the vport", VPORT, TARGET, plogi(VPORT_WWPN, HOST_WWNN).encode(),
          LsRjt(LsRjtReason.UNABLE_TO_PERFORM,
                LsRjtExplanation.INSUFFICIENT_RESOURCES).encode())

    # -- SCSI over FCP ---------------------------------------------------------------------------
    lun0, lun1 = int_to_lun(0), int_to_lun(1)
    _fcp_exchange(c, "INQUIRY", FcpCmnd(lun=lun0, cdb=bytes((0x12, 0, 0, 0, 36, 0)),
                                        rddata=True, fcp_dl=36),
                  data_in=INQUIRY_DATA, rsp=FcpRsp(), scsi_opcode=0x12)
    _fcp_exchange(c, "READ(10)", FcpCmnd(lun=lun1, cdb=_read10(0, 4), rddata=True,
                                         fcp_dl=2048),
                  data_in=bytes(range(256)) * 8, rsp=FcpRsp(), scsi_opcode=0x28)
    _fcp_exchange(c, "WRITE(10)", FcpCmnd(lun=lun1, cdb=_write10(8, 3), wrdata=True,
                                          fcp_dl=1536),
                  data_out=bytes(255 - (i & 0xFF) for i in range(1536)), rsp=FcpRsp(),
                  scsi_opcode=0x2A)
    _fcp_exchange(c, "READ(10) short", FcpCmnd(lun=lun1, cdb=_read10(16, 2), rddata=True,
                                               fcp_dl=1024),
                  data_in=bytes(512), rsp=make_fcp_rsp(residual_under=512), scsi_opcode=0x28)
    _fcp_exchange(c, "READ(32)", FcpCmnd(lun=lun1, cdb=_read32(32, 1), rddata=True,
                                         fcp_dl=512),
                  data_in=bytes(512), rsp=FcpRsp(), scsi_opcode=0x7F)
    # a bidirectional command: FCP_BIDIRECTIONAL_READ_DL in FCP_CMND, the bidirectional
    # read residual in FCP_RSP (FCP-4 9.2, 9.5)
    _fcp_exchange(c, "XDWRITEREAD(10)",
                  FcpCmnd(lun=lun1, cdb=bytes((0x53, 0, 0, 0, 0, 64, 0, 0, 1, 0)),
                          rddata=True, wrdata=True, fcp_dl=512, bidirectional_read_dl=1024),
                  data_out=bytes(512), data_in=bytes(512),
                  rsp=FcpRsp(flags=FcpRspFlags.FCP_BIDI_RSP
                             | FcpRspFlags.FCP_BIDI_READ_RESID_UNDER,
                             bidirectional_read_residual=512), scsi_opcode=0x53)
    _fcp_exchange(c, "READ(10) unmapped LUN", FcpCmnd(lun=int_to_lun(7), cdb=_read10(0, 1),
                                                      rddata=True, fcp_dl=512),
                  rsp=make_fcp_rsp(ScsiStatus.CHECK_CONDITION, residual_under=512,
                                   sense=SENSE_LUN_NOT_SUPPORTED), scsi_opcode=0x28)
    _fcp_exchange(c, "LUN RESET", FcpCmnd(lun=lun1,
                                          task_management_flags=TaskManagementFlags.LUN_RESET),
                  rsp=make_fcp_rsp(response_code=FcpRspCode.TMF_COMPLETE), scsi_opcode=None)

    # -- aborts: ABTS -> BA_ACC, ABTS of an unknown exchange -> BA_RJT, then RRQ ----------------
    cmnd = c.request("READ(10) aborted FCP_CMND", RCtl.UNSOLICITED_COMMAND, FcType.FCP, HOST,
                     TARGET, FcpCmnd(lun=lun1, cdb=_read10(0, 1), rddata=True,
                                     fcp_dl=512).encode(), scsi_opcode=0x28)
    abts_f_ctl = FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE  # Linux fc_exch_abort_locked
    abts = make_header(RCtl.ABTS, TARGET, HOST, FcType.BLS, abts_f_ctl, ox_id=cmnd.ox_id,
                       rx_id=UNKNOWN_XID, seq_id=1)
    c.add("ABTS", abts, Abts().encode())
    rx = next(c._rx)
    c.add("BA_ACC", abts.reply(RCtl.BA_ACC, rx_id=rx), BaAcc.for_exchange(cmnd.ox_id, rx).encode())
    c.els("RRQ", HOST, TARGET, Rrq(HOST, cmnd.ox_id, rx).encode(), LsAcc().encode())
    stale = make_header(RCtl.ABTS, TARGET, HOST, FcType.BLS, abts_f_ctl, ox_id=0x0FFF,
                        rx_id=UNKNOWN_XID)
    c.add("ABTS of an unknown exchange", stale, Abts().encode())
    c.add("BA_RJT", stale.reply(RCtl.BA_RJT),
          BaRjt(BaRjtReason.LOGICAL_ERROR, BaRjtExplanation.INVALID_OX_ID_RX_ID).encode())

    # -- logging out: PRLO, LOGO to the target, DA_ID, LOGO to the fabric ----------------------
    c.els("PRLO", HOST, TARGET, Prlo((ServiceParameterPage(),)).encode(),
          Prlo((ServiceParameterPage(response_code=PrliResponseCode.REQUEST_EXECUTED),),
               ElsCommand.LS_ACC).encode())
    c.els("LOGO", HOST, TARGET, Logo(HOST, HOST_WWPN).encode(), LsAcc().encode())
    c.ns(NsCommand.DA_ID, VPORT, ns.DaIdRequest(VPORT).encode())
    c.els("LOGO to the fabric", HOST, F_PORT, Logo(HOST, HOST_WWPN).encode(), LsAcc().encode())
    return c.frames


def iter_encoded() -> Iterator[bytes]:
    """The encapsulated frames of `conversation()`, in order."""
    for f in conversation():
        yield f.encode()
