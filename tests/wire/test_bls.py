"""BLS payload codecs (fcsoft.wire.bls): ABTS, BA_ACC, BA_RJT vectors, lengths, properties.

Layouts from Linux include/uapi/scsi/fc/fc_fs.h (struct fc_ba_acc, struct fc_ba_rjt, enums
fc_ba_rjt_reason / fc_ba_rjt_explan); values from libfc fc_exch.c (fc_exch_recv_abts,
fc_exch_send_ba_rjt) and the BA_ACC table of the Seagate Fibre Channel Interface Manual.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fcsoft.wire.bls import (
    ABTS_ABORT_SEQUENCE,
    Abts,
    BaAcc,
    BaRjt,
    BaRjtExplanation,
    BaRjtReason,
)
from fcsoft.wire.errors import DecodeError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# Seagate FC Interface Manual, "BA_ACC payload": a drive aborting the whole exchange answers
# SEQ_ID invalid (00), the OX_ID it received, RX_ID FFFF, lowest SEQ_CNT 0, highest FFFF.
# libfc fc_exch_recv_abts sends the same shape (high SEQ_CNT 0xffff, SEQ_ID not valid).
BA_ACC_EXCHANGE = h("00 00 00 00  12 34 ff ff  00 00 ff ff")
# libfc when the aborted sequence was open at the responder: SEQ_ID valid (FC_BA_SEQ_ID_VAL
# 0x80), SEQ_ID 5, OX_ID 1234, RX_ID 0042, SEQ_CNT range 0..3.
BA_ACC_SEQUENCE = h("80 05 00 00  12 34 00 42  00 00 00 03")
# libfc fc_exch_send_ba_rjt(FC_BA_RJT_UNABLE, FC_BA_RJT_INV_XID): an ABTS for an exchange
# that is complete or unknown.
BA_RJT_UNKNOWN_EXCHANGE = h("00 09 03 00")


def test_ba_acc_exchange_vector_round_trip() -> None:
    acc = BaAcc.decode(BA_ACC_EXCHANGE)
    assert acc == BaAcc(False, 0, 0x1234, 0xFFFF, 0, 0xFFFF)
    assert acc == BaAcc.for_exchange(0x1234, 0xFFFF)
    assert acc.encode() == BA_ACC_EXCHANGE


def test_ba_acc_sequence_vector_round_trip() -> None:
    acc = BaAcc.decode(BA_ACC_SEQUENCE)
    assert acc.seq_id_valid and acc.seq_id == 5
    assert (acc.ox_id, acc.rx_id, acc.low_seq_cnt, acc.high_seq_cnt) == (0x1234, 0x42, 0, 3)
    assert acc.encode() == BA_ACC_SEQUENCE


def test_ba_rjt_vector_round_trip() -> None:
    rjt = BaRjt.decode(BA_RJT_UNKNOWN_EXCHANGE)
    assert rjt == BaRjt(BaRjtReason.UNABLE_TO_PERFORM, BaRjtExplanation.INVALID_OX_ID_RX_ID)
    assert rjt.encode() == BA_RJT_UNKNOWN_EXCHANGE


def test_ba_rjt_code_values() -> None:
    # fc_fs.h enum fc_ba_rjt_reason / fc_ba_rjt_explan
    assert [int(r) for r in BaRjtReason] == [0x01, 0x03, 0x05, 0x07, 0x09, 0xFF]
    assert [int(e) for e in BaRjtExplanation] == [0x00, 0x03, 0x05]
    odd = BaRjt.decode(h("00 42 77 09"))
    assert odd.reason == 0x42 and odd.reason.name == "UNKNOWN_0x42"
    assert odd.explanation == 0x77 and odd.vendor_unique == 9
    assert odd.encode() == h("00 42 77 09")


def test_abts_has_no_payload_and_reads_the_parameter_bit() -> None:
    assert Abts().encode() == b""
    assert Abts.decode(b"") == Abts()
    assert Abts.decode(h("00 00 00 00")) == Abts()  # stray bytes are ignored
    # qla2xxx qla_target.h ABTS_PARAM_ABORT_SEQ = BIT_0
    assert ABTS_ABORT_SEQUENCE == 1
    assert Abts.aborts_sequence(0x00000001)
    assert not Abts.aborts_sequence(0x00000000)
    assert not Abts.aborts_sequence(0x80000000)


@pytest.mark.parametrize(("decode", "vector"), [
    (BaAcc.decode, BA_ACC_EXCHANGE), (BaAcc.decode, BA_ACC_SEQUENCE),
    (BaRjt.decode, BA_RJT_UNKNOWN_EXCHANGE),
])
def test_truncated_and_trailing(decode, vector: bytes) -> None:  # type: ignore[no-untyped-def]
    value = decode(vector)
    for n in range(len(vector)):
        with pytest.raises(DecodeError):
            decode(vector[:n])
    assert decode(vector + h("ff ff ff ff")) == value
    assert decode(memoryview(vector)) == value


def test_truncation_messages_name_the_payload() -> None:
    with pytest.raises(DecodeError, match="BA_ACC: payload is 11 bytes, need at least 12"):
        BaAcc.decode(BA_ACC_EXCHANGE[:11])
    with pytest.raises(DecodeError, match="BA_RJT: payload is 2 bytes, need at least 4"):
        BaRjt.decode(b"\x00\x09")


def test_bad_values_are_local_errors() -> None:
    with pytest.raises(ValueError):
        BaAcc(False, 0, 0x10000, 0)
    with pytest.raises(ValueError):
        BaRjt(BaRjtReason.LOGICAL_ERROR, vendor_unique=256)


u16 = st.integers(0, 0xFFFF)
u8 = st.integers(0, 0xFF)


@given(st.builds(BaAcc, st.booleans(), u8, u16, u16, u16, u16))
def test_ba_acc_round_trips(acc: BaAcc) -> None:
    data = acc.encode()
    assert len(data) == 12
    assert BaAcc.decode(data) == acc
    assert BaAcc.decode(data).encode() == data


@given(st.builds(BaRjt, u8, u8, u8))
def test_ba_rjt_round_trips(rjt: BaRjt) -> None:
    data = rjt.encode()
    assert BaRjt.decode(data) == rjt
    assert BaRjt.decode(data).encode() == data


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    for decode in (BaAcc.decode, BaRjt.decode, Abts.decode):
        with contextlib.suppress(DecodeError):
            decode(data)
