"""FCP-4 information units (T10 FCP-4 clause 9): FCP_CMND, FCP_XFER_RDY, FCP_RSP.

Theory of operation: these IUs travel on every SCSI exchange, so this module is built like
`header`: one precompiled `struct.Struct` per IU, results are NamedTuples of plain ints and
bytes made with `tuple.__new__` (no frozen dataclasses: those cost ~4 us each here), and the
common shapes (a 32-byte FCP_CMND, a 24-byte FCP_RSP with GOOD status) take a fast path that
does one `unpack_from` and a couple of comparisons. Fields hold ints; compare them with the
IntEnum/IntFlag members below, which compare equal.

Errors: the decoders raise only `DecodeError`, naming the field. What the target does about a
bad field (FCP_RSP with FCP_CMND_FIELDS_INVALID, or dropping the frame) is its decision, so
values that are well-formed but unsupported (reserved task attributes, unknown TMF bits,
bidirectional commands) decode normally and are left to the target.

FCP_DATA (FCP-4 9.4 / FC-FS-4): the IU has no header of its own. The frame payload is the
data; its position in the transfer is the relative offset, carried in the FC header's
PARAMETER field with F_CTL RELATIVE_OFFSET set (FCtl.RELATIVE_OFFSET in `header`). Sequences
are split at the receive data field size negotiated at PLOGI; nothing here is needed for it.

Clause numbers follow the FCP-3 r04 order (9.2 FCP_CMND, 9.3 FCP_XFER_RDY, 9.4 FCP_DATA,
9.5 FCP_RSP; Linux fc_fcp.h cites FCP-3 9.5.13 for FCP_RSP); check them against FCP-4 before
quoting them elsewhere.

Byte layouts (Linux include/scsi/fc/fc_fcp.h; the bidirectional fields as Wireshark
packet-fcp.c reads them):

    FCP_CMND   0 LUN(8)  8 CRN  9 rsvd|priority<<3|task attribute  10 TMF flags
               11 additional CDB length<<2 | RDDATA 0x02 | WRDATA 0x01
               12 CDB(16 + 4*additional)  then FCP_DL(4)
               then FCP_BIDIRECTIONAL_READ_DL(4) when RDDATA and WRDATA are both set
    XFER_RDY   0 FCP_DATA_RO(4)  4 FCP_BURST_LEN(4)  8 reserved(4)
    FCP_RSP    0 reserved(8)  8 retry delay timer(2)  10 flags  11 SCSI status
               12 FCP_RESID(4)  16 FCP_SNS_LEN(4)  20 FCP_RSP_LEN(4)
               24 FCP_RSP_INFO(FCP_RSP_LEN)  then FCP_SNS_INFO(FCP_SNS_LEN)
               then FCP_BIDIRECTIONAL_READ_RESID(4) when FCP_BIDI_RSP is set
"""

from __future__ import annotations

import struct
from enum import IntEnum, IntFlag
from typing import NamedTuple

from .errors import DecodeError
from .types import BytesLike

FCP_CMND_LEN = 32  # without additional CDB bytes or the bidirectional read DL
FCP_XFER_RDY_LEN = 12
FCP_RSP_LEN = 24  # up to and including FCP_RSP_LEN, before response info and sense
FCP_RSP_SHORT_LEN = 12  # FCP-3 note: early targets omitted words 3-5 when all flags are 0
MAX_ADDITIONAL_CDB_WORDS = 63  # 6-bit field


class TaskAttribute(IntEnum):
    """FCP_CMND byte 9 bits 2-0 (FCP-4 9.2; SAM-5 task attributes)."""

    SIMPLE = 0
    HEAD_OF_QUEUE = 1
    ORDERED = 2
    ACA = 4
    UNTAGGED = 5  # FCP-2 value; Wireshark still names it


class TaskManagementFlags(IntFlag):
    """FCP_CMND byte 10 (FCP-4 9.2). At most one bit may be set in a command."""

    ABORT_TASK_SET = 0x02
    CLEAR_TASK_SET = 0x04
    LUN_RESET = 0x10
    TARGET_RESET = 0x20  # deprecated since FCP-3 (fc_fcp.h), still sent by some initiators
    CLEAR_ACA = 0x40


class FcpRspFlags(IntFlag):
    """FCP_RSP byte 10 (FCP-4 9.5; fc_fcp.h fr_flags)."""

    FCP_RSP_LEN_VALID = 0x01
    FCP_SNS_LEN_VALID = 0x02
    FCP_RESID_OVER = 0x04  # FCP_DL too small: FCP_RESID = bytes not transferred
    FCP_RESID_UNDER = 0x08  # fewer bytes than FCP_DL moved: FCP_RESID = the shortfall
    FCP_CONF_REQ = 0x10
    FCP_BIDI_READ_RESID_OVER = 0x20
    FCP_BIDI_READ_RESID_UNDER = 0x40
    FCP_BIDI_RSP = 0x80  # FCP_BIDIRECTIONAL_READ_RESID follows the sense data


class FcpRspCode(IntEnum):
    """RSP_CODE, byte 3 of FCP_RSP_INFO (FCP-4 9.5; fc_fcp.h enum fcp_resp_rsp_codes)."""

    TMF_COMPLETE = 0
    DATA_LENGTH_INVALID = 1  # FCP_DATA length differs from FCP_BURST_LEN
    FCP_CMND_FIELDS_INVALID = 2
    DATA_RO_MISMATCH = 3  # FCP_DATA parameter does not match FCP_DATA_RO
    TMF_REJECTED = 4  # task management function not supported
    TMF_FAILED = 5
    INVALID_LUN = 9  # task management function addressed to an incorrect LUN


class ScsiStatus(IntEnum):
    """The SCSI status byte carried in FCP_RSP byte 11 (SAM-5 5.3)."""

    GOOD = 0x00
    CHECK_CONDITION = 0x02
    CONDITION_MET = 0x04
    BUSY = 0x08
    RESERVATION_CONFLICT = 0x18
    TASK_SET_FULL = 0x28
    ACA_ACTIVE = 0x30
    TASK_ABORTED = 0x40


_new = tuple.__new__

# ---------------------------------------------------------------------------------------------
# LUN (SAM-5 4.7): the 8-byte LUN field of FCP_CMND

_LUN_CACHE = [bytes((0, n)) + bytes(6) for n in range(256)]  # peripheral addressing, 0..255
_LUN_NUMBERS = {lun: n for n, lun in enumerate(_LUN_CACHE)}


def lun_to_int(lun: BytesLike) -> int:
    """The LUN number of an 8-byte single-level LUN (SAM-5 4.7.3).

    Peripheral device addressing (byte 0 = 00h, LUN in byte 1) gives 0..255, flat space
    addressing (byte 0 = 01b<<6 | LUN bits 13-8, byte 1 = LUN bits 7-0) gives 0..16383; in
    both, bytes 2-7 must be zero. Anything else (logical unit or extended addressing, a
    peripheral address with a non-zero bus identifier, a multi-level LUN) comes back as the
    raw big-endian 64-bit value, so it cannot match a configured LUN number unless its raw
    value is itself below 16384: that happens only for 00 00 00 00 00 00 xx xx with xx xx
    non-zero (a fourth-level address under three zero levels), which callers that need an
    exact answer can rule out with `is_single_level_lun`.
    """
    if type(lun) is bytes:
        n = _LUN_NUMBERS.get(lun)  # the common case, LUNs 0..255, without arithmetic
        if n is not None:
            return n
    v = int.from_bytes(lun, "big")
    if v & 0xFFFF_FFFF_FFFF == 0:
        hi = v >> 56
        if hi == 0:
            return v >> 48
        if hi >> 6 == 1:
            return (v >> 48) & 0x3FFF
    return v


def is_single_level_lun(lun: BytesLike) -> bool:
    """True when `lun` uses peripheral (bus 0) or flat space addressing with bytes 2-7 zero."""
    v = int.from_bytes(lun, "big")
    return v & 0xFFFF_FFFF_FFFF == 0 and (v >> 56 == 0 or v >> 62 == 1)




def int_to_lun(n: int) -> bytes:
    """The 8-byte LUN field for LUN number `n` (SAM-5 4.7.3): peripheral device addressing
    for 0..255, flat space addressing for 256..16383 (the forms REPORT LUNS should list).

    Linux numbers LUNs differently above 255: scsilun_to_int keeps the addressing method bits,
    so the flat-space LUN 256 (bytes 41 00) is Linux LUN 16640 (4100h); the bytes on the wire
    are the same. Other LUN formats have no number here: put their 8 raw bytes in
    `FcpCmnd.lun`."""
    if 0 <= n < 256:
        return _LUN_CACHE[n]
    if 256 <= n < 0x4000:
        return bytes((0x40 | (n >> 8), n & 0xFF)) + bytes(6)
    raise ValueError(f"LUN {n} is outside the single-level range 0..16383")


# ---------------------------------------------------------------------------------------------
# FCP_CMND (FCP-4 9.2)

_CMND = struct.Struct(">8sBBBB16sI")
_CMND_HEAD = struct.Struct(">8sBBBB")
_U32 = struct.Struct(">I")
_cmnd_unpack_from = _CMND.unpack_from
_cmnd_pack = _CMND.pack
_u32_unpack_from = _U32.unpack_from


def encode_fcp_cmnd_payload(lun: bytes, crn: int, task_attribute: int, tmf: int, flags: int,
                            cdb: BytesLike, fcp_dl: int) -> bytes:
    """The 32-byte FCP_CMND of the data path (a CDB of at most 16 bytes, no additional CDB
    bytes; flags: RDDATA 2 | WRDATA 1): one pack, no NamedTuple."""
    return _cmnd_pack(lun, crn, task_attribute, tmf, flags, bytes(cdb), fcp_dl)


class FcpCmnd(NamedTuple):
    """One FCP_CMND IU. `lun` is the raw 8-byte LUN field (see `lun_to_int`), `cdb` the
    whole FCP_CDB field (16 bytes plus any additional CDB bytes; a shorter CDB is zero-filled
    to 16 when encoding). `bidirectional_read_dl` is FCP_BIDIRECTIONAL_READ_DL: present only
    when RDDATA and WRDATA are both set, None when such a command omits it (FCP-3 layout).
    Fields are plain ints/bools/bytes; build with keywords, e.g.
    ``FcpCmnd(lun=int_to_lun(1), cdb=read10, rddata=True, fcp_dl=4096)``."""

    lun: bytes = bytes(8)
    crn: int = 0
    task_priority: int = 0
    task_attribute: int = 0  # TaskAttribute.SIMPLE
    task_management_flags: int = 0
    rddata: bool = False
    wrdata: bool = False
    cdb: bytes = bytes(16)
    fcp_dl: int = 0
    bidirectional_read_dl: int | None = None

    @property
    def additional_cdb_length(self) -> int:
        """ADDITIONAL FCP_CDB LENGTH in 4-byte words (the CDB bytes beyond 16)."""
        return max(0, len(self.cdb) - 16) >> 2

    @property
    def bidirectional(self) -> bool:
        """RDDATA and WRDATA both set: FCP-4 allows it only for bidirectional commands."""
        return self.rddata and self.wrdata

    @property
    def lun_number(self) -> int:
        """`lun_to_int(self.lun)`."""
        return lun_to_int(self.lun)

    def encode(self) -> bytes:
        """The FCP_CMND payload. ValueError for values that do not fit their fields."""
        lun, crn, prio, attr, tmf, rd, wr, cdb, dl, bidi_dl = self
        if (prio >> 4) | (attr >> 3):  # non-zero for >15 / >7, and for negatives (-1 >> n)
            raise ValueError(f"task priority {prio} / attribute {attr} out of range 0..15 / 0..7")
        flags = 2 if rd else 0
        if wr:
            flags |= 1
        n = len(cdb)
        try:
            if n <= 16 and flags != 3:
                return _cmnd_pack(lun, crn, (prio << 3) | attr, tmf, flags, cdb, dl)
            if n > 16:
                if n & 3 or n > 16 + 4 * MAX_ADDITIONAL_CDB_WORDS:
                    raise ValueError(f"CDB of {n} bytes: beyond 16 it must grow in 4-byte "
                                     f"words, at most {16 + 4 * MAX_ADDITIONAL_CDB_WORDS}")
                flags |= n - 16  # (n - 16) / 4 words, in bits 7-2: the same number
            parts = [_CMND_HEAD.pack(lun, crn, (prio << 3) | attr, tmf, flags),
                     bytes(cdb) if n >= 16 else bytes(cdb) + bytes(16 - n), _U32.pack(dl)]
            if flags & 3 == 3 and bidi_dl is not None:
                parts.append(_U32.pack(bidi_dl))
            return b"".join(parts)
        except struct.error as exc:
            raise ValueError(f"FCP_CMND field invalid: {exc}") from None


def decode_fcp_cmnd(payload: BytesLike) -> FcpCmnd:
    """Decode an FCP_CMND IU payload.

    The payload must be exactly 32 + 4 * ADDITIONAL FCP_CDB LENGTH bytes (+4 for
    FCP_BIDIRECTIONAL_READ_DL when RDDATA and WRDATA are both set). Extra bytes are accepted
    only when they are all zero (a sender padding the IU); non-zero extra bytes mean the
    additional-length field disagrees with what was sent, which would put FCP_DL in the wrong
    place, so they raise DecodeError. More than one task management flag raises DecodeError.
    """
    try:
        lun, crn, pta, tmf, flags, cdb, dl = _cmnd_unpack_from(payload)
    except struct.error:
        raise DecodeError("FCP_CMND", f"need {FCP_CMND_LEN} bytes, have {len(payload)}") from None
    if flags < 3 and not tmf and len(payload) == 32:
        # the per-command fast path: plain read/write/no-data command, 16-byte CDB
        return _new(FcpCmnd, (lun, crn, (pta >> 3) & 0xF, pta & 7, 0, flags == 2, flags == 1,
                              cdb, dl, None))
    return _decode_fcp_cmnd_slow(payload, lun, crn, pta, tmf, flags, cdb, dl)


def _decode_fcp_cmnd_slow(payload: BytesLike, lun: bytes, crn: int, pta: int, tmf: int,
                          flags: int, cdb: bytes, dl: int) -> FcpCmnd:
    if tmf & (tmf - 1):
        raise DecodeError("FCP_CMND task management flags",
                          f"{tmf:#04x} sets more than one function")
    n = len(payload)
    extra = flags & 0xFC  # additional length in words << 2 == additional length in bytes
    end = 32 + extra
    if n < end:
        raise DecodeError("FCP_CMND additional FCP_CDB length",
                          f"{extra >> 2} words need {end} bytes, have {n}")
    if extra:
        cdb += bytes(payload[28:28 + extra])
        (dl,) = _u32_unpack_from(payload, 28 + extra)
    bidi_dl = None
    if flags & 3 == 3 and n >= end + 4:
        (bidi_dl,) = _u32_unpack_from(payload, end)
        end += 4
    if n > end and any(payload[end:]):
        raise DecodeError("FCP_CMND length",
                          f"{n - end} bytes after the IU, not all zero; additional FCP_CDB "
                          f"length and RDDATA/WRDATA say it is {end} bytes")
    return _new(FcpCmnd, (lun, crn, (pta >> 3) & 0xF, pta & 7, tmf, (flags & 2) != 0,
                          (flags & 1) != 0, cdb, dl, bidi_dl))


# ---------------------------------------------------------------------------------------------
# FCP_XFER_RDY (FCP-4 9.3)

_XFER_RDY = struct.Struct(">II4x")
_xfer_unpack_from = _XFER_RDY.unpack_from
_xfer_pack = _XFER_RDY.pack


class FcpXferRdy(NamedTuple):
    """FCP_XFER_RDY: the target is ready for `burst_length` bytes at `relative_offset`."""

    relative_offset: int
    burst_length: int

    def encode(self) -> bytes:
        """The 12-byte payload (last word reserved, zero)."""
        try:
            return _xfer_pack(self.relative_offset, self.burst_length)
        except struct.error as exc:
            raise ValueError(f"FCP_XFER_RDY field out of range: {exc}") from None


def decode_fcp_xfer_rdy(payload: BytesLike) -> FcpXferRdy:
    """Decode FCP_XFER_RDY. Bytes after the 12 are ignored (the reserved word is not checked:
    FCP-4 reserved fields are ignored by the recipient)."""
    try:
        return _new(FcpXferRdy, _xfer_unpack_from(payload))
    except struct.error:
        raise DecodeError("FCP_XFER_RDY",
                          f"need {FCP_XFER_RDY_LEN} bytes, have {len(payload)}") from None


# ---------------------------------------------------------------------------------------------
# FCP_RSP (FCP-4 9.5)

_RSP = struct.Struct(">8xHBBIII")
_RSP_SHORT = struct.Struct(">8xHBB")
_rsp_unpack_from = _RSP.unpack_from
_rsp_pack = _RSP.pack
_RSP_INFO = struct.Struct(">3xB4x")
_LENGTH_FLAGS = FcpRspFlags.FCP_SNS_LEN_VALID | FcpRspFlags.FCP_RSP_LEN_VALID
_NOT_LENGTH_FLAGS = 0xFF & ~_LENGTH_FLAGS
_SLOW_RSP_FLAGS = int(_LENGTH_FLAGS | FcpRspFlags.FCP_BIDI_RSP)
_LONG_RSP_FLAGS = int(_LENGTH_FLAGS | FcpRspFlags.FCP_RESID_OVER | FcpRspFlags.FCP_RESID_UNDER
                      | FcpRspFlags.FCP_BIDI_RSP)

#: The whole FCP_RSP for GOOD status, nothing else: send it as is.
FCP_RSP_GOOD = bytes(FCP_RSP_LEN)


class FcpRsp(NamedTuple):
    """One FCP_RSP IU.

    `flags` is the FCP_RSP flags byte (FcpRspFlags). On encoding, FCP_SNS_LEN_VALID and
    FCP_RSP_LEN_VALID are recomputed from `sense` and `response_code`; the residual flags and
    FCP_CONF_REQ are sent as given, and FCP_BIDI_RSP appends `bidirectional_read_residual`.
    `residual` is FCP_RESID as on the wire (meaningful when a residual flag is set).
    `response_code` is RSP_CODE from FCP_RSP_INFO, or None when there is no response info.
    Build ordinary responses with `make_fcp_rsp`.
    """

    scsi_status: int = 0
    flags: int = 0
    residual: int = 0
    response_code: int | None = None
    sense: bytes = b""
    retry_delay_timer: int = 0
    bidirectional_read_residual: int = 0

    @property
    def residual_under(self) -> int:
        """Bytes fewer than FCP_DL that were moved, 0 unless FCP_RESID_UNDER."""
        return self.residual if self.flags & 0x08 else 0  # FCP_RESID_UNDER

    @property
    def residual_over(self) -> int:
        """Bytes beyond FCP_DL that were not moved, 0 unless FCP_RESID_OVER."""
        return self.residual if self.flags & 0x04 else 0  # FCP_RESID_OVER

    def encode(self) -> bytes:
        """The FCP_RSP payload (24 bytes + 8 of response info + sense [+ 4])."""
        status, flags, resid, code, sense, timer, bidi = self
        if not (flags | timer | resid | status) and code is None and not sense:
            return FCP_RSP_GOOD
        flags &= _NOT_LENGTH_FLAGS
        if sense:
            flags |= 0x02
        try:
            if code is None:
                head = _rsp_pack(timer, flags, status, resid, len(sense), 0)
                tail = b""
            else:
                # FCP-4 allows 4 or 8 bytes of response info; Linux and FCP-4 senders use 8
                head = _rsp_pack(timer, flags | 0x01, status, resid, len(sense), 8)
                tail = _RSP_INFO.pack(code)
            if flags & 0x80:
                return b"".join((head, tail, sense, _U32.pack(bidi)))
        except struct.error as exc:
            raise ValueError(f"FCP_RSP field out of range: {exc}") from None
        return b"".join((head, tail, sense)) if tail or sense else head


_RSP_GOOD_IU = FcpRsp()


def make_fcp_rsp(scsi_status: int = ScsiStatus.GOOD, *, residual_under: int = 0,
                 residual_over: int = 0, sense: bytes = b"",
                 response_code: int | None = None, conf_req: bool = False,
                 retry_delay_timer: int = 0) -> FcpRsp:
    """An FcpRsp with the residual flags set from `residual_under` / `residual_over`
    (at most one non-zero). `FcpRsp()` alone is GOOD with nothing else."""
    flags = FcpRspFlags.FCP_CONF_REQ if conf_req else 0
    if residual_under and residual_over:
        raise ValueError("a response has an underrun or an overrun, not both")
    if residual_under:
        flags |= FcpRspFlags.FCP_RESID_UNDER
    elif residual_over:
        flags |= FcpRspFlags.FCP_RESID_OVER
    return _new(FcpRsp, (int(scsi_status), int(flags), residual_under or residual_over,
                         response_code, bytes(sense), retry_delay_timer, 0))


def decode_fcp_rsp(payload: BytesLike) -> FcpRsp:
    """Decode an FCP_RSP IU.

    FCP_SNS_LEN / FCP_RSP_LEN are read only when their valid flag is set, and must fit in
    the payload; FCP_RSP_LEN must be 0, 4 or 8. A 12-byte FCP_RSP with none of the residual,
    length-valid or bidirectional flags set is accepted (FCP-3 note: some early targets
    omitted the last three words). Bytes after the IU are ignored: the length fields say where
    it ends, so nothing in it can be misplaced by them.
    """
    if payload == FCP_RSP_GOOD:
        return _RSP_GOOD_IU  # most responses: one 24-byte compare, one shared immutable tuple
    n = len(payload)
    if n >= 24:
        timer, flags, status, resid, sns_len, rsp_len = _rsp_unpack_from(payload)
        if not flags & _SLOW_RSP_FLAGS:
            return _new(FcpRsp, (status, flags, resid, None, b"", timer, 0))
    elif n >= 12:
        timer, flags, status = _RSP_SHORT.unpack_from(payload)
        if flags & _LONG_RSP_FLAGS:
            raise DecodeError("FCP_RSP", f"flags {flags:#04x} need {FCP_RSP_LEN} bytes, "
                              f"have {n}")
        return _new(FcpRsp, (status, flags, 0, None, b"", timer, 0))
    else:
        raise DecodeError("FCP_RSP", f"need {FCP_RSP_LEN} bytes, have {n}")

    off = 24
    code = None
    if flags & 0x01:
        if rsp_len not in (0, 4, 8):
            raise DecodeError("FCP_RSP_LEN", f"{rsp_len} is not 0, 4 or 8")
        if off + rsp_len > n:
            raise DecodeError("FCP_RSP_LEN", f"{rsp_len} bytes of response info, "
                              f"{n - off} present")
        if rsp_len:
            code = payload[off + 3]
        off += rsp_len
    sense = b""
    if flags & 0x02:
        if off + sns_len > n:
            raise DecodeError("FCP_SNS_LEN", f"{sns_len} bytes of sense data, "
                              f"{n - off} present")
        sense = bytes(payload[off:off + sns_len])
        off += sns_len
    bidi = 0
    if flags & 0x80:
        if off + 4 > n:
            raise DecodeError("FCP_BIDIRECTIONAL_READ_RESID",
                              f"needs 4 bytes at offset {off}, payload is {n} bytes")
        (bidi,) = _u32_unpack_from(payload, off)
    return _new(FcpRsp, (status, flags, resid, code, sense, timer, bidi))
