"""FC-GS-8 CT_IU preamble codec: byte vectors with their sources, errors, properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fcsoft.wire.ct import (
    CT_PREAMBLE_LEN,
    CtIu,
    CtPreamble,
    CtRejectReason,
    CtResponseCode,
    CtRevisionError,
    DirectorySubtype,
    GsSubtype,
    GsType,
    ManagementSubtype,
    NsCommand,
    NsRejectExplanation,
    ct_accept,
    ct_max_response_bytes,
    ct_reject,
    ct_request,
    decode_ct,
    encode_ct,
)
from fcsoft.wire.errors import DecodeError

h = bytes.fromhex

# Preamble layout: Linux include/uapi/scsi/fc/fc_gs.h struct fc_ct_hdr (ct_rev, ct_in_id[3],
# ct_fs_type, ct_fs_subtype, ct_options, rsvd, be16 ct_cmd, be16 ct_mr_size, rsvd, ct_reason,
# ct_explan, ct_vendor), FC_CT_REV 1, FC_FST_DIR 0xfc, FC_NS_SUBTYPE 2.

# GPN_FT for FC-4 type FCP, as libfc's fc_ct_fill builds it: IN_ID 0, max size 0, payload
# struct fc_ns_gid_ft {rsvd, domain scope, area scope, fc4 type = FC_TYPE_FCP 8}.
GPN_FT_REQUEST = h("01000000" "fc020000" "01720000" "00000000") + h("00000008")

# The matching accept with one entry (FC-GS-8 5.2.5: GPN_FT ACC = [ctl|pid, rsvd(4), WWPN],
# ctl 0x80 on the last entry): FC_FS_ACC 0x8002.
GPN_FT_ACCEPT = (h("01000000" "fc020000" "80020000" "00000000")
                 + h("80010200" "00000000" "2100001b32000001"))

# The reject a switch gives a GID_FT that matches nothing (docs/behaviour.md 2): FC_FS_RJT 0x8001,
# reason 09h unable to perform, explanation 07h FC-4 types not registered (packet-fcct.h
# FCCT_RJT_GENFAIL 0x9, packet-fcdns.h FCDNS_RJT_FC4NOTREG 0x07).
GID_FT_REJECT = h("01000000" "fc020000" "80010000" "00090700")

# efct's request header (libefc efc_cmds.c fcct_build_req_header) writes the maximum size in
# words: a 4096-byte response limit is 0400h. Here with an RFF_ID (21Fh) payload
# [rsvd, port ID 010200, rsvd(2), features = target 1, type FCP 8].
RFF_ID_REQUEST = h("01000000" "fc020000" "021f0400" "00000000") + h("00010200" "00000108")


def test_request_vector() -> None:
    iu = decode_ct(GPN_FT_REQUEST)
    p = iu.preamble
    assert (p.revision, p.in_id, p.gs_type, p.gs_subtype) == (1, 0, GsType.DIRECTORY,
                                                             DirectorySubtype.NAME_SERVER)
    assert p.command == NsCommand.GPN_FT and p.is_request
    assert not p.is_accept and not p.is_reject
    assert iu.body == h("00000008")
    assert ct_request(GsType.DIRECTORY, GsSubtype.DIRECTORY.NAME_SERVER, NsCommand.GPN_FT,
                      h("00000008")) == GPN_FT_REQUEST
    assert iu.encode() == GPN_FT_REQUEST


def test_accept_vector() -> None:
    request = decode_ct(GPN_FT_REQUEST).preamble
    body = GPN_FT_ACCEPT[16:]
    assert ct_accept(request, body) == GPN_FT_ACCEPT
    reply = decode_ct(GPN_FT_ACCEPT)
    assert reply.preamble.is_accept and reply.preamble.command == CtResponseCode.ACCEPT
    assert reply.body == body


def test_reject_vector() -> None:
    request = CtPreamble(GsType.DIRECTORY, DirectorySubtype.NAME_SERVER, NsCommand.GID_FT)
    assert ct_reject(request, CtRejectReason.UNABLE_TO_PERFORM,
                     NsRejectExplanation.FC4_TYPES_NOT_REGISTERED) == GID_FT_REJECT
    p = decode_ct(GID_FT_REJECT).preamble
    assert p.is_reject and p.reason == CtRejectReason.UNABLE_TO_PERFORM
    assert p.explanation == NsRejectExplanation.FC4_TYPES_NOT_REGISTERED
    assert decode_ct(GID_FT_REJECT).body == b""


def test_max_size_in_words_vector() -> None:
    p = decode_ct(RFF_ID_REQUEST).preamble
    assert p.command == NsCommand.RFF_ID and p.max_residual_size == 0x400
    assert ct_max_response_bytes(p) == 4096
    assert ct_max_response_bytes(decode_ct(GPN_FT_REQUEST).preamble) is None  # 0: no limit
    assert ct_request(GsType.DIRECTORY, DirectorySubtype.NAME_SERVER, NsCommand.RFF_ID,
                      RFF_ID_REQUEST[16:], max_size=0x400) == RFF_ID_REQUEST


def test_response_mirrors_the_request() -> None:
    # an FDMI request from IN_ID 010203 with options set: the answer keeps type, subtype and
    # IN_ID, sets the response code and leaves options, size and reason fields clear
    request = CtPreamble(GsType.MANAGEMENT, ManagementSubtype.FDMI, 0x0200,
                         max_residual_size=5, in_id=0x010203, options=0x40, fragment_id=3)
    acc = decode_ct(ct_accept(request, b"xyzw", residual=2)).preamble
    assert (acc.gs_type, acc.gs_subtype, acc.in_id) == (0xFA, 0x10, 0x010203)
    assert acc.command == CtResponseCode.ACCEPT and acc.max_residual_size == 2
    assert (acc.options, acc.fragment_id, acc.reason, acc.explanation) == (0, 0, 0, 0)
    rjt = decode_ct(ct_reject(request, CtRejectReason.COMMAND_NOT_SUPPORTED, 0, vendor=0x5A))
    assert rjt.preamble.command == CtResponseCode.REJECT
    assert (rjt.preamble.reason, rjt.preamble.explanation, rjt.preamble.vendor) == (0x0B, 0,
                                                                                   0x5A)
    assert rjt.body == b""


def test_short_input() -> None:
    for n in range(CT_PREAMBLE_LEN):
        with pytest.raises(DecodeError, match="CT_IU preamble"):
            decode_ct(GPN_FT_REQUEST[:n])
    assert decode_ct(GPN_FT_REQUEST[:16]).body == b""


def test_bad_revision_keeps_the_preamble_for_the_reject() -> None:
    data = b"\x02" + GPN_FT_REQUEST[1:]
    with pytest.raises(CtRevisionError) as info:
        decode_ct(data)
    assert isinstance(info.value, DecodeError) and "revision" in str(info.value)
    p = info.value.preamble
    assert p.revision == 2 and p.command == NsCommand.GPN_FT
    rjt = decode_ct(ct_reject(p, CtRejectReason.INVALID_VERSION_LEVEL)).preamble
    assert rjt.revision == 1 and rjt.reason == 0x02


def test_trailing_data_is_body_and_not_copied() -> None:
    # CT payloads need not be word multiples (libfc sends RSPN_ID names unpadded)
    frame = bytearray(b"\xaa" * 24) + GPN_FT_REQUEST + b"odd"
    iu = decode_ct(memoryview(frame)[24:])
    assert isinstance(iu.body, memoryview) and bytes(iu.body) == h("00000008") + b"odd"


def test_encode_range_checks() -> None:
    with pytest.raises(ValueError):
        CtPreamble(GsType.DIRECTORY, 2, 0x10000).encode()
    with pytest.raises(ValueError):
        CtPreamble(GsType.DIRECTORY, 2, 0x100, in_id=1 << 24).encode()
    with pytest.raises(ValueError):
        ct_request(GsType.DIRECTORY, 2, CtResponseCode.ACCEPT)


def test_reserved_byte_is_ignored() -> None:
    data = bytearray(GPN_FT_REQUEST)
    data[7] = 0x55
    assert decode_ct(bytes(data)) == decode_ct(GPN_FT_REQUEST)


def test_subtypes_depend_on_type() -> None:
    assert GsSubtype.lookup(GsType.DIRECTORY, 3) is DirectorySubtype.IP_ADDRESS
    assert GsSubtype.lookup(GsType.MANAGEMENT, 3) is ManagementSubtype.ZONE_SERVER
    assert GsSubtype.lookup(GsType.MANAGEMENT, 0x10) is ManagementSubtype.FDMI
    assert GsSubtype.lookup(GsType.MANAGEMENT, 0x77) == 0x77
    assert GsSubtype.lookup(GsType.TIME, 1) == 1
    assert GsSubtype.MANAGEMENT.FABRIC_CONFIGURATION == 0x01


# Every CT and name-server code of FC-GS-8 (as Wireshark's packet-fcct.h / packet-fcdns.h),
# written out here so that the enums are checked against the table, not against themselves.
NS_COMMANDS = {
    "GA_NXT": 0x0100, "GID_A": 0x0101, "GPN_ID": 0x0112, "GNN_ID": 0x0113, "GCS_ID": 0x0114,
    "GFT_ID": 0x0117, "GSPN_ID": 0x0118, "GPT_ID": 0x011A, "GIPP_ID": 0x011B,
    "GFPN_ID": 0x011C, "GHA_ID": 0x011D, "GFD_ID": 0x011E, "GFF_ID": 0x011F,
    "GID_PN": 0x0121, "GIPP_PN": 0x012B, "GID_NN": 0x0131, "GPN_NN": 0x0132,
    "GIP_NN": 0x0135, "GIPA_NN": 0x0136, "GSNN_NN": 0x0139, "GNN_IP": 0x0153,
    "GIPA_IP": 0x0156, "GID_FT": 0x0171, "GPN_FT": 0x0172, "GNN_FT": 0x0173,
    "GID_PT": 0x01A1, "GID_IPP": 0x01B1, "GPN_IPP": 0x01B2, "GID_FF": 0x01F1,
    "RPN_ID": 0x0212, "RNN_ID": 0x0213, "RCS_ID": 0x0214, "RFT_ID": 0x0217,
    "RSPN_ID": 0x0218, "RPT_ID": 0x021A, "RIPP_ID": 0x021B, "RHA_ID": 0x021D,
    "RFD_ID": 0x021E, "RFF_ID": 0x021F, "RIP_NN": 0x0235, "RSNN_NN": 0x0239,
    "DA_ID": 0x0300,
}
REJECT_REASONS = [0x01, 0x02, 0x03, 0x04, 0x05, 0x07, 0x09, 0x0B, 0x0D, 0x0E]
NS_EXPLANATIONS = [*range(0x17), *range(0xF0, 0xF7)]


def test_ns_command_codes() -> None:
    assert {c.name: c.value for c in NsCommand} == NS_COMMANDS


def test_reject_codes() -> None:
    assert set(REJECT_REASONS) <= {r.value for r in CtRejectReason}
    assert [e.value for e in NsRejectExplanation] == NS_EXPLANATIONS
    assert NsRejectExplanation(0x10).name == "ACCESS_DENIED"
    assert NsRejectExplanation(0xF6).name == "DEVICES_NOT_IN_COMMON_ZONE"
    assert CtRejectReason(0x0B).name == "COMMAND_NOT_SUPPORTED"


def test_gs_types() -> None:
    assert [t.value for t in GsType] == [0xF7, 0xF8, 0xFA, 0xFB, 0xFC, 0xFD]


# ------------------------------------------------------------------------------------------
# Properties

@given(st.binary(max_size=64))
def test_decode_raises_only_decode_error(data: bytes) -> None:
    try:
        iu = decode_ct(data)
    except DecodeError:
        return
    assert len(data) >= 16 and data[0] == 1 and bytes(iu.body) == data[16:]


@given(st.binary(min_size=16, max_size=64))
def test_decode_encode_is_identity_but_for_the_reserved_byte(data: bytes) -> None:
    data = b"\x01" + data[1:7] + b"\x00" + data[8:]
    assert encode_ct(decode_ct(data).preamble, decode_ct(data).body) == data


byte = st.integers(0, 255)
preambles = st.builds(
    CtPreamble, gs_type=byte, gs_subtype=byte, command=st.integers(0, 0xFFFF),
    max_residual_size=st.integers(0, 0xFFFF), in_id=st.integers(0, 0xFFFFFF), options=byte,
    fragment_id=byte, reason=byte, explanation=byte, vendor=byte,
)


@given(preambles, st.binary(max_size=40))
def test_round_trip(preamble: CtPreamble, body: bytes) -> None:
    iu = decode_ct(encode_ct(preamble, body))
    assert iu == CtIu(preamble, body)


@given(preambles, st.binary(max_size=40), st.integers(0, 0xFFFF), byte, byte)
def test_responses_answer_in_the_requests_service(req: CtPreamble, body: bytes,
                                                  residual: int, reason: int,
                                                  explanation: int) -> None:
    acc = decode_ct(ct_accept(req, body, residual=residual))
    assert (acc.preamble.gs_type, acc.preamble.gs_subtype) == (req.gs_type,
                                                               req.gs_subtype)
    assert acc.preamble.is_accept and bytes(acc.body) == body
    rjt = decode_ct(ct_reject(req, reason, explanation)).preamble
    assert rjt.is_reject and (rjt.reason, rjt.explanation) == (reason, explanation)
