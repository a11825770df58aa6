"""FC-LS-3 Basic Link Service payloads: ABTS, BA_ACC and BA_RJT (FC-LS-3 Basic link services
clause; FC-FS-4 for the frame header fields they rely on).

A BLS frame has TYPE 0x00 and names its command in R_CTL, not in the payload: ABTS 0x81,
BA_ACC 0x84, BA_RJT 0x85 (`header.RCtl`). Layouts (Linux include/uapi/scsi/fc/fc_fs.h struct
fc_ba_acc / fc_ba_rjt; the BA_ACC table of the Seagate and Hitachi FC drive manuals):

    ABTS    no payload. FC header PARAMETER bit 0: 1 = abort sequence (the sequence named
            by SEQ_ID), 0 = abort exchange (Linux qla2xxx qla_target.h ABTS_PARAM_ABORT_SEQ =
            BIT_0). FCP recovery aborts whole exchanges: libfc sends 0, and the qla2xxx
            target rejects the sequence form.
    BA_ACC  SEQ_ID validity (0x80 valid / 0x00) | SEQ_ID of the last deliverable sequence |
            2 reserved | OX_ID(2) RX_ID(2) | low SEQ_CNT(2) high SEQ_CNT(2)   -- 12 bytes
    BA_RJT  reserved | reason | explanation | vendor unique                    -- 4 bytes

Length policy as in els.py: shorter than the layout is a DecodeError, longer is accepted and
the excess ignored; reserved bytes are ignored; unknown reject codes decode as `UNKNOWN_0x..`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .els_codes import OpenIntEnum, check_range, decode_guard, need
from .types import BytesLike

__all__ = [
    "ABTS_ABORT_SEQUENCE", "Abts", "BaAcc", "BaRjt", "BaRjtExplanation", "BaRjtReason",
]

#: FC header PARAMETER bit of an ABTS frame: set = abort sequence, clear = abort exchange
ABTS_ABORT_SEQUENCE = 0x00000001


class BaRjtReason(OpenIntEnum):
    """BA_RJT reason codes (FC-LS-3 BA_RJT clause; fc_fs.h enum fc_ba_rjt_reason)."""

    INVALID_COMMAND = 0x01
    LOGICAL_ERROR = 0x03
    LOGICAL_BUSY = 0x05
    PROTOCOL_ERROR = 0x07
    UNABLE_TO_PERFORM = 0x09
    VENDOR_UNIQUE = 0xFF  # see the vendor unique byte


class BaRjtExplanation(OpenIntEnum):
    """BA_RJT reason explanations (FC-LS-3 BA_RJT clause; fc_fs.h enum fc_ba_rjt_explan).

    Wireshark's packet-fcbls.h lists "no details" as 0x01; Linux and the standard use 0x00.
    """

    NO_ADDITIONAL = 0x00
    INVALID_OX_ID_RX_ID = 0x03  # no such exchange, or it is complete
    SEQUENCE_ABORTED_NO_SEQUENCE_INFO = 0x05


@dataclass(frozen=True)
class Abts:
    """ABTS (R_CTL 0x81): its payload is empty.

    What it aborts is in the frame header, not here: OX_ID / RX_ID name the exchange and
    PARAMETER bit 0 (`ABTS_ABORT_SEQUENCE`) chooses sequence (1) or whole exchange (0).
    """

    def encode(self) -> bytes:
        """The empty payload."""
        return b""

    @classmethod
    def decode(cls, data: BytesLike) -> Abts:
        """Decode an ABTS payload. Any bytes present are ignored (the standard sends none)."""
        return cls()

    @staticmethod
    def aborts_sequence(parameter: int) -> bool:
        """Read the header PARAMETER of an ABTS: True = abort sequence, False = exchange."""
        return bool(parameter & ABTS_ABORT_SEQUENCE)


_BA_ACC = struct.Struct(">BB2xHHHH")
_SEQ_ID_VALID = 0x80


@dataclass(frozen=True)
class BaAcc:
    """BA_ACC (R_CTL 0x84), the answer to ABTS.

    For a whole-exchange abort the SEQ_ID is invalid and the SEQ_CNT range is 0..0xFFFF, as
    Linux libfc (fc_exch.c fc_exch_recv_abts) and FC disk drives answer: see `for_exchange`.
    """

    seq_id_valid: bool
    seq_id: int
    ox_id: int
    rx_id: int
    low_seq_cnt: int = 0
    high_seq_cnt: int = 0xFFFF

    def __post_init__(self) -> None:
        check_range("seq_id", self.seq_id, 8)
        check_range("ox_id", self.ox_id, 16)
        check_range("rx_id", self.rx_id, 16)
        check_range("low_seq_cnt", self.low_seq_cnt, 16)
        check_range("high_seq_cnt", self.high_seq_cnt, 16)

    @classmethod
    def for_exchange(cls, ox_id: int, rx_id: int) -> BaAcc:
        """The BA_ACC for an ABTS that aborted the whole exchange OX_ID / RX_ID."""
        return cls(False, 0, ox_id, rx_id, 0, 0xFFFF)

    def encode(self) -> bytes:
        """The 12-byte payload."""
        return _BA_ACC.pack(_SEQ_ID_VALID if self.seq_id_valid else 0, self.seq_id,
                            self.ox_id, self.rx_id, self.low_seq_cnt, self.high_seq_cnt)

    @classmethod
    @decode_guard("BA_ACC")
    def decode(cls, data: BytesLike) -> BaAcc:
        """Decode a BA_ACC (12 bytes; extra bytes ignored). SEQ_ID validity is bit 7."""
        need(data, _BA_ACC.size, "BA_ACC")
        valid, seq_id, ox, rx, low, high = _BA_ACC.unpack_from(data, 0)
        return cls(bool(valid & _SEQ_ID_VALID), seq_id, ox, rx, low, high)


_BA_RJT = struct.Struct(">xBBB")


@dataclass(frozen=True)
class BaRjt:
    """BA_RJT (R_CTL 0x85): reason, explanation, vendor unique byte."""

    reason: BaRjtReason
    explanation: BaRjtExplanation = BaRjtExplanation.NO_ADDITIONAL
    vendor_unique: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", BaRjtReason(self.reason))
        object.__setattr__(self, "explanation", BaRjtExplanation(self.explanation))
        check_range("vendor_unique", self.vendor_unique, 8)

    def encode(self) -> bytes:
        """The 4-byte payload."""
        return _BA_RJT.pack(self.reason, self.explanation, self.vendor_unique)

    @classmethod
    @decode_guard("BA_RJT")
    def decode(cls, data: BytesLike) -> BaRjt:
        """Decode a BA_RJT (4 bytes; extra bytes ignored)."""
        need(data, _BA_RJT.size, "BA_RJT")
        reason, explanation, vendor = _BA_RJT.unpack_from(data, 0)
        return cls(BaRjtReason(reason), BaRjtExplanation(explanation), vendor)
