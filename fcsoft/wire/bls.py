"""FC-LS-4 Basic Link Service payloads: ABTS, BA_ACC and BA_RJT (FC-LS-4 basic link services;
FC-FS-4 for the frame header fields they rely on).

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

from dataclasses import dataclass

from construct import Int8ub, Int16ub, Padding, Struct

from .els_codes import LinkServicePayload, OpenIntEnum
from .layout import Layout
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




@dataclass(frozen=True)
class BaAcc(LinkServicePayload):
    """BA_ACC (R_CTL 0x84), the answer to ABTS (FC-LS-4 BA_ACC; fc_fs.h struct fc_ba_acc).

    For a whole-exchange abort the SEQ_ID is invalid and the SEQ_CNT range is 0..0xFFFF, as
    Linux libfc (fc_exch.c fc_exch_recv_abts) and FC disk drives answer: see `for_exchange`.
    """

    seq_id_valid: bool
    seq_id: int
    ox_id: int
    rx_id: int
    low_seq_cnt: int = 0
    high_seq_cnt: int = 0xFFFF
    _layout = Layout("BA_ACC", Struct(
        "seq_id_valid" / Int8ub,  # SEQ_ID validity: 80h valid, 00h not (other bits reserved)
        "seq_id" / Int8ub, Padding(2),
        "ox_id" / Int16ub, "rx_id" / Int16ub,
        "low_seq_cnt" / Int16ub, "high_seq_cnt" / Int16ub))
    _wire = {"seq_id_valid": (lambda byte: bool(byte & 0x80), lambda valid: 0x80 * valid)}

    @classmethod
    def for_exchange(cls, ox_id: int, rx_id: int) -> BaAcc:
        """The BA_ACC for an ABTS that aborted the whole exchange OX_ID / RX_ID."""
        return cls(False, 0, ox_id, rx_id, 0, 0xFFFF)


@dataclass(frozen=True)
class BaRjt(LinkServicePayload):
    """BA_RJT (R_CTL 0x85; FC-LS-4 BA_RJT, fc_fs.h struct fc_ba_rjt): reason, explanation,
    vendor unique byte."""

    reason: BaRjtReason
    explanation: BaRjtExplanation = BaRjtExplanation.NO_ADDITIONAL
    vendor_unique: int = 0
    _layout = Layout("BA_RJT", Struct(
        Padding(1), "reason" / Int8ub, "explanation" / Int8ub, "vendor_unique" / Int8ub))
    _convert = {"reason": BaRjtReason, "explanation": BaRjtExplanation}
