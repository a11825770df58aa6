"""ELS payload codecs (fcsoft.wire.els): byte vectors, length policy, dispatch, properties.

Each vector is written out byte by byte with its source beside it. Layout facts come from
Linux include/uapi/scsi/fc/fc_els.h (structs named per test) and Wireshark packet-fcels.c
(field offsets); field values from Linux include/scsi/fc_encode.h (libfc's *_fill helpers),
drivers/scsi/fcoe/fcoe.c (service_params), docs/behaviour.md 2 (the fabric's FLOGI LS_ACC).
The WWNs are illustrative (Emulex OUI 00:00:c9 for the host, Brocade 00:05:1e for the fabric).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fcsoft.wire.els import (
    CLASS_NOT_SUPPORTED,
    Adisc,
    ClassServiceOptions,
    ClassServiceParameters,
    CommonFeatures,
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
    RtvQualifier,
    Scr,
    ScrFunction,
    ServiceParameterPage,
    ServiceParameters,
    UnknownEls,
    decode_els_reply,
    decode_els_request,
)
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.wwn import WWN

HOST_WWPN = WWN("10:00:00:00:c9:00:00:01")
HOST_WWNN = WWN("20:00:00:00:c9:00:00:01")
FPORT_NAME = WWN("20:01:00:05:1e:00:00:01")
FABRIC_NAME = WWN("10:00:00:05:1e:00:00:01")


def h(text: str) -> bytes:
    """Hex with spaces and line breaks allowed, so vectors can be laid out by word."""
    return bytes.fromhex(text)


# ---- service parameters --------------------------------------------------------------------

# FLOGI as Linux libfc fc_flogi_fill builds it (fc_encode.h) for an fcoe lport with
# does_npiv = 1 and mfs 2112; layout fc_els.h struct fc_els_flogi / fc_els_csp / fc_els_cssp.
FLOGI = h("""
    04 00 00 00
    20 20 00 0a  80 00 08 40  00 00 00 00  00 00 00 00
    10 00 00 00 c9 00 00 01   20 00 00 00 c9 00 00 01
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    88 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
""")
# (cmd word; csp: ver 20/20, BB_Credit 10, features NPIV 0x8000, rx size 0x840, word 2 and
#  E_D_TOV 0; WWPN; WWNN; class 1, 2; class 3 = FC_CPC_VALID | FC_CPC_SEQ; class 4; vendor)

# FDISC as libfc fc_fdisc_fill builds it: the FLOGI shape with command 0x51, no NPIV bit.
FDISC = h("""
    51 00 00 00
    20 20 00 0a  00 00 08 40  00 00 00 00  00 00 00 00
    10 00 00 00 c9 00 00 02   20 00 00 00 c9 00 00 01
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    88 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
""")

# The fabric's FLOGI LS_ACC, docs/behaviour.md 2 / FC-LS-4 FLOGI: F_Port 0x1000 and
# multiple N_Port_ID assignment 0x2000, word 2 = R_A_TOV 10000 (fc_els.h sp_r_a_tov),
# E_D_TOV 2000, class 3 valid + sequential delivery with receive size 2112.
FLOGI_ACC = h("""
    02 00 00 00
    20 20 00 10  30 00 08 40  00 00 27 10  00 00 07 d0
    20 01 00 05 1e 00 00 01   10 00 00 05 1e 00 00 01
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    88 00 00 00 00 00 08 40 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
""")

# PLOGI as libfc fc_plogi_fill builds it: CIRO feature, sp_tot_seq 255, sp_rel_off 0x1f,
# E_D_TOV 2000; class 3 cp_rdfs 2112, cp_con_seq 255, cp_open_seq 1.
PLOGI = h("""
    03 00 00 00
    20 20 00 0a  80 00 08 40  00 ff 00 1f  00 00 07 d0
    10 00 00 00 c9 00 00 01   20 00 00 00 c9 00 00 01
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    88 00 00 00 00 00 08 40 00 ff 00 00 00 01 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
""")


def test_flogi_vector_round_trip() -> None:
    sp = ServiceParameters.decode(FLOGI)
    assert sp.command is ElsCommand.FLOGI
    assert sp.port_name == HOST_WWPN and sp.node_name == HOST_WWNN
    assert sp.fc_ph_version_high == sp.fc_ph_version_low == 0x20
    assert sp.bb_credit == 10
    assert CommonFeatures.NPIV_SUPPORT in sp.common_features
    assert sp.receive_data_field_size == 2112 and sp.bb_sc_n == 0
    assert sp.class3.valid and sp.class3.service_options == 0x8800
    assert not any(c.valid for i, c in enumerate(sp.classes) if i != 2)
    assert sp.encode() == FLOGI
    assert ServiceParameters.flogi(HOST_WWPN, HOST_WWNN) == sp


def test_fdisc_vector_round_trip() -> None:
    sp = ServiceParameters.decode(FDISC)
    assert sp.command is ElsCommand.FDISC and sp.common_features == 0
    assert sp.encode() == FDISC
    assert ServiceParameters.fdisc("10:00:00:00:c9:00:00:02", HOST_WWNN) == sp


def test_flogi_accept_vector_round_trip() -> None:
    sp = ServiceParameters.decode(FLOGI_ACC)
    assert sp.command is ElsCommand.LS_ACC
    assert sp.from_f_port
    assert CommonFeatures.MULTIPLE_N_PORT_ID_ASSIGNMENT in sp.common_features
    assert sp.r_a_tov == 10000 and sp.e_d_tov == 2000
    assert sp.class3.valid and sp.class3.receive_data_field_size == 2112
    assert sp.port_name == FPORT_NAME and sp.node_name == FABRIC_NAME
    assert sp.encode() == FLOGI_ACC
    assert ServiceParameters.flogi_accept(FPORT_NAME, FABRIC_NAME) == sp
    assert decode_els_reply(FLOGI_ACC, ElsCommand.FLOGI) == sp
    assert decode_els_reply(FLOGI_ACC, ElsCommand.FDISC) == sp


def test_plogi_vector_round_trip() -> None:
    sp = ServiceParameters.decode(PLOGI)
    assert sp.command is ElsCommand.PLOGI
    assert sp.total_concurrent_sequences == 255
    assert sp.relative_offset_by_category == 0x1F
    assert sp.e_d_tov == 2000 and not sp.from_f_port
    c3 = sp.class3
    assert (c3.receive_data_field_size, c3.concurrent_sequences,
            c3.open_sequences_per_exchange) == (2112, 255, 1)
    assert sp.encode() == PLOGI
    assert ServiceParameters.plogi(HOST_WWPN, HOST_WWNN) == sp
    assert decode_els_request(PLOGI) == sp
    # the PLOGI LS_ACC is the same layout with command 0x02
    acc = bytes([0x02]) + PLOGI[1:]
    assert decode_els_reply(acc, ElsCommand.PLOGI) == ServiceParameters.plogi(
        HOST_WWPN, HOST_WWNN, command=ElsCommand.LS_ACC)


def test_common_feature_aliases_share_bits() -> None:
    # fc_els.h: FC_SP_FT_NPIV == FC_SP_FT_CIRO == FC_SP_FT_CLAD == 0x8000,
    # FC_SP_FT_VAL == FC_SP_FT_NPIV_ACC == 0x2000, FC_SP_FT_FPORT == 0x1000
    assert CommonFeatures.NPIV_SUPPORT == CommonFeatures.CLEAN_ADDRESS == 0x8000
    assert CommonFeatures.CONTINUOUSLY_INCREASING_RELATIVE_OFFSET == 0x8000
    assert CommonFeatures.MULTIPLE_N_PORT_ID_ASSIGNMENT == 0x2000
    assert CommonFeatures.VALID_VENDOR_VERSION_LEVEL == 0x2000
    assert CommonFeatures.F_PORT == 0x1000
    assert CommonFeatures.PAYLOAD_LENGTH == 0x0001
    assert ClassServiceOptions.CLASS_VALID == 0x8000


def test_service_parameters_length_policy() -> None:
    # a 256-byte FLOGI (payload length bit, services availability) decodes; excess ignored
    long = FLOGI + bytes(140)
    assert ServiceParameters.decode(long) == ServiceParameters.decode(FLOGI)
    for n in range(116):
        with pytest.raises(DecodeError):
            ServiceParameters.decode(FLOGI[:n])
    with pytest.raises(DecodeError, match=r"FLOGI service parameters: payload is 115 bytes, "
                                          r"need at least 116"):
        ServiceParameters.decode(FLOGI[:115])
    with pytest.raises(DecodeError, match="command byte 0x05"):
        ServiceParameters.decode(bytes([0x05]) + FLOGI[1:])


def test_service_parameters_rejects_bad_values_locally() -> None:
    with pytest.raises(ValueError):
        ServiceParameters(ElsCommand.LOGO, HOST_WWPN, HOST_WWNN)
    with pytest.raises(ValueError):
        ServiceParameters(ElsCommand.FLOGI, HOST_WWPN, HOST_WWNN, receive_data_field_size=4096)
    with pytest.raises(ValueError):
        ServiceParameters(ElsCommand.FLOGI, HOST_WWPN, HOST_WWNN, classes=(CLASS_NOT_SUPPORTED,))


# ---- LOGO, ADISC, RRQ, RTV, SCR, ECHO, LS_ACC, LS_RJT --------------------------------------

# LOGO as libfc fc_logo_fill builds it (fc_els.h struct fc_els_logo): N_Port_ID 010203, WWPN.
LOGO = h("05 00 00 00  00 01 02 03  10 00 00 00 c9 00 00 01")

# ADISC, fc_els.h struct fc_els_adisc / Wireshark dissect_fcels_adisc: hard address 0,
# WWPN, WWNN, N_Port_ID 010203. The LS_ACC has the same layout.
ADISC = h("52 00 00 00  00 00 00 00  10 00 00 00 c9 00 00 01  20 00 00 00 c9 00 00 01"
          "  00 01 02 03")

# RRQ, fc_els.h struct fc_els_rrq: originator S_ID 010203, OX_ID 1234, RX_ID 0x0042.
RRQ = h("12 00 00 00  00 01 02 03  12 34 00 42")

# RTV request (fc_els.h struct fc_els_rtv, libfc fc_rtv_fill) and its LS_ACC
# (struct fc_els_rtv_acc): R_A_TOV 10000, E_D_TOV 2000, TOQ 0.
RTV = h("0e 00 00 00")
RTV_ACC = h("02 00 00 00  00 00 27 10  00 00 07 d0  00 00 00 00")
# TOQ with FC_ELS_RTV_EDRES (1 << 26): E_D_TOV 1000000 ns
RTV_ACC_NS = h("02 00 00 00  00 00 27 10  00 0f 42 40  04 00 00 00")

# SCR as libfc fc_scr_fill builds it: full registration (fc_els.h ELS_SCRF_FULL = 3).
SCR = h("62 00 00 00  00 00 00 03")

# ECHO: command word + data, echoed back in the LS_ACC (FC-LS-4 ECHO).
ECHO = h("10 00 00 00  66 63 73 6f 66 74 21 00")
ECHO_ACC = h("02 00 00 00  66 63 73 6f 66 74 21 00")

# fc_els.h struct fc_els_ls_acc and struct fc_els_ls_rjt.
LS_ACC = h("02 00 00 00")
# logical error / N_Port login required: the reject docs/behaviour.md 3 names, and what
# the Linux fnic driver sends for an ADISC it cannot match (reason 0x03, explanation 0x1E).
LS_RJT_PLOGI_REQUIRED = h("01 00 00 00  00 03 1e 00")
LS_RJT_NOT_SUPPORTED = h("01 00 00 00  00 0b 00 00")


def test_logo_vector_round_trip() -> None:
    logo = Logo.decode(LOGO)
    assert logo == Logo(0x010203, HOST_WWPN)
    assert logo.encode() == LOGO
    assert decode_els_request(LOGO) == logo
    assert decode_els_reply(LS_ACC, ElsCommand.LOGO) == LsAcc()


def test_adisc_vector_round_trip() -> None:
    adisc = Adisc.decode(ADISC)
    assert adisc == Adisc(0, HOST_WWPN, HOST_WWNN, 0x010203)
    assert adisc.encode() == ADISC
    acc_bytes = bytes([0x02]) + ADISC[1:]
    acc = decode_els_reply(acc_bytes, ElsCommand.ADISC)
    assert acc == Adisc(0, HOST_WWPN, HOST_WWNN, 0x010203, ElsCommand.LS_ACC)
    assert acc.encode() == acc_bytes


def test_rrq_vector_round_trip() -> None:
    rrq = Rrq.decode(RRQ)
    assert rrq == Rrq(0x010203, 0x1234, 0x0042)
    assert rrq.encode() == RRQ
    assert decode_els_request(RRQ) == rrq


def test_rtv_vectors_round_trip() -> None:
    assert Rtv.decode(RTV) == Rtv() and Rtv().encode() == RTV
    acc = decode_els_reply(RTV_ACC, ElsCommand.RTV)
    assert acc == RtvAccept(10000, 2000)
    assert isinstance(acc, RtvAccept) and not acc.e_d_tov_in_ns
    assert acc.encode() == RTV_ACC
    ns = RtvAccept.decode(RTV_ACC_NS)
    assert ns.e_d_tov_in_ns and ns.e_d_tov == 1_000_000
    assert ns.qualifier == RtvQualifier.E_D_TOV_RESOLUTION_NS == 1 << 26
    assert ns.encode() == RTV_ACC_NS


def test_scr_vector_round_trip() -> None:
    scr = Scr.decode(SCR)
    assert scr == Scr(ScrFunction.FULL)
    assert scr.encode() == SCR
    assert decode_els_request(SCR) == scr
    # a reserved function still decodes, so the fabric can answer it with LS_RJT
    odd = Scr.decode(h("62 00 00 00  00 00 00 07"))
    assert odd.function == 7 and odd.function.name == "UNKNOWN_0x07"


def test_echo_vectors_round_trip() -> None:
    echo = decode_els_request(ECHO)
    assert echo == Echo(b"fcsoft!\x00")
    assert isinstance(echo, Echo)
    assert echo.accept().encode() == ECHO_ACC
    assert decode_els_reply(ECHO_ACC, ElsCommand.ECHO) == echo.accept()
    biggest = bytes([0x10, 0, 0, 0]) + bytes(range(256)) * 8 + bytes(60)
    assert len(biggest) == 2112
    assert Echo.decode(biggest).encode() == biggest
    with pytest.raises(DecodeError, match="ECHO: data is 2109 bytes, at most 2108"):
        Echo.decode(biggest + b"\x00")
    with pytest.raises(ValueError):
        Echo(bytes(2109))


def test_ls_acc_and_ls_rjt_vectors_round_trip() -> None:
    assert LsAcc.decode(LS_ACC) == LsAcc() and LsAcc().encode() == LS_ACC
    rjt = decode_els_reply(LS_RJT_PLOGI_REQUIRED, ElsCommand.PRLI)
    assert rjt == LsRjt(LsRjtReason.LOGICAL_ERROR, LsRjtExplanation.N_PORT_LOGIN_REQUIRED)
    assert rjt.encode() == LS_RJT_PLOGI_REQUIRED
    unsup = LsRjt.decode(LS_RJT_NOT_SUPPORTED)
    assert unsup.reason is LsRjtReason.COMMAND_NOT_SUPPORTED
    assert unsup.encode() == LS_RJT_NOT_SUPPORTED


def test_reject_code_values() -> None:
    # Linux fc_els.h enum fc_els_rjt_reason / fc_els_rjt_explan, Wireshark packet-fcels.c
    assert [int(r) for r in LsRjtReason] == [0x01, 0x03, 0x05, 0x07, 0x09, 0x0B, 0x0E, 0x20,
                                             0xFF]
    e = LsRjtExplanation
    assert (e.SERVICE_PARAMETER_ERROR_OPTIONS, e.SERVICE_PARAMETER_ERROR_INITIATOR_CONTROL,
            e.INVALID_ORIGINATOR_S_ID, e.INVALID_OX_ID_RX_ID, e.REQUEST_ALREADY_IN_PROGRESS,
            e.N_PORT_LOGIN_REQUIRED, e.INSUFFICIENT_RESOURCES,
            e.UNABLE_TO_SUPPLY_REQUESTED_DATA, e.REQUEST_NOT_SUPPORTED,
            e.INVALID_PAYLOAD_LENGTH) == (0x01, 0x03, 0x15, 0x17, 0x19, 0x1E, 0x29, 0x2A,
                                          0x2C, 0x2D)
    # a code the table lacks (Wireshark knows 0x0D as a second "unable to perform")
    odd = LsRjt.decode(h("01 00 00 00  00 0d 99 00"))
    assert odd.reason == 0x0D and odd.explanation == 0x99
    assert odd.encode() == h("01 00 00 00  00 0d 99 00")


# every ELS code of FC-LS-4 (Linux fc_els.h enum fc_els_cmd), written out here
ELS_CODES = {
    "LS_RJT": 0x01, "LS_ACC": 0x02, "PLOGI": 0x03, "FLOGI": 0x04, "LOGO": 0x05, "ABTX": 0x06,
    "RCS": 0x07, "RES": 0x08, "RSS": 0x09, "RSI": 0x0A, "ESTS": 0x0B, "ESTC": 0x0C,
    "ADVC": 0x0D, "RTV": 0x0E, "RLS": 0x0F, "ECHO": 0x10, "TEST": 0x11, "RRQ": 0x12,
    "REC": 0x13, "SRR": 0x14, "FPIN": 0x16, "EDC": 0x17, "RDP": 0x18, "RDF": 0x19,
    "PRLI": 0x20, "PRLO": 0x21, "SCN": 0x22, "TPLS": 0x23, "TPRLO": 0x24, "LCLM": 0x25,
    "GAID": 0x30, "FACT": 0x31, "FDACDT": 0x32, "NACT": 0x33, "NDACT": 0x34, "QOSR": 0x40,
    "RVCS": 0x41, "PDISC": 0x50, "FDISC": 0x51, "ADISC": 0x52, "RNC": 0x53,
    "FARP_REQ": 0x54, "FARP_REPL": 0x55, "RPS": 0x56, "RPL": 0x57, "RPBC": 0x58, "FAN": 0x60,
    "RSCN": 0x61, "SCR": 0x62, "RNFT": 0x63, "CSR": 0x68, "CSU": 0x69, "LINIT": 0x70,
    "LSTS": 0x72, "RNID": 0x78, "RLIR": 0x79, "LIRR": 0x7A, "SRL": 0x7B, "SBRP": 0x7C,
    "RPSC": 0x7D, "QSA": 0x7E, "EVFP": 0x7F, "LKA": 0x80, "AUTH_ELS": 0x90,
}


def test_els_command_table_is_complete() -> None:
    assert {c.name: int(c) for c in ElsCommand} == ELS_CODES


# ---- PRLI / PRLO ---------------------------------------------------------------------------

# PRLI as libfc fc_prli_fill builds it (fc_els.h struct fc_els_prli + fc_els_spp): FCP page,
# establish image pair, service parameters of the Linux fcoe driver's lport
# (INIT_FCN | RD_XRDY_DIS | RETRY | CONF_COMPL = 0x1a2).
PRLI = h("20 10 00 14  08 00 20 00  00 00 00 00  00 00 00 00  00 00 01 a2")
# Its accept from a target: response code 1 (request executed), image pair established,
# target function + read XFER_RDY disabled (0x12, what the Open-FCoE target openfct sets).
PRLI_ACC = h("02 10 00 14  08 00 21 00  00 00 00 00  00 00 00 00  00 00 00 12")
# PRLO for the FCP image pair (fc_els.h struct fc_els_prlo: page length "shall be 10h"),
# and its accept with response code 1.
PRLO = h("21 10 00 14  08 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00")
PRLO_ACC = h("02 10 00 14  08 00 01 00  00 00 00 00  00 00 00 00  00 00 00 00")


def test_prli_vectors_round_trip() -> None:
    prli = decode_els_request(PRLI)
    initiator = (FcpServiceParameters.INITIATOR_FUNCTION
                 | FcpServiceParameters.READ_XFER_RDY_DISABLED | FcpServiceParameters.RETRY
                 | FcpServiceParameters.CONFIRMED_COMPLETION)
    assert prli == Prli((ServiceParameterPage(0x08, establish_image_pair=True,
                                              service_parameters=initiator),))
    assert isinstance(prli, Prli) and prli.encode() == PRLI
    acc = decode_els_reply(PRLI_ACC, ElsCommand.PRLI)
    assert isinstance(acc, Prli) and acc.command is ElsCommand.LS_ACC
    page = acc.pages[0]
    assert page.response_code is PrliResponseCode.REQUEST_EXECUTED
    assert page.establish_image_pair
    assert FcpServiceParameters.TARGET_FUNCTION in page.service_parameters
    assert acc.encode() == PRLI_ACC


def test_prlo_vectors_round_trip() -> None:
    prlo = decode_els_request(PRLO)
    assert prlo == Prlo((ServiceParameterPage(0x08),))
    assert isinstance(prlo, Prlo) and prlo.encode() == PRLO
    acc = decode_els_reply(PRLO_ACC, ElsCommand.PRLO)
    assert acc == Prlo((ServiceParameterPage(0x08, response_code=PrliResponseCode(1)),),
                       ElsCommand.LS_ACC)
    assert acc.encode() == PRLO_ACC


def test_prli_page_flags_and_values() -> None:
    # fc_els.h FC_SPP_OPA_VAL 0x80, FC_SPP_RPA_VAL 0x40, FC_SPP_EST_IMG_PAIR 0x20, and
    # fc_fcp.h / Wireshark fcpflags bit values
    page = ServiceParameterPage.decode(h("08 00 e8 00  00 00 00 07  00 00 00 09  00 00 03 f3"))
    assert page.originator_pa_valid and page.responder_pa_valid and page.establish_image_pair
    assert page.response_code is PrliResponseCode.INVALID_SERVICE_PARAMETERS
    assert (page.originator_pa, page.responder_pa) == (7, 9)
    f = FcpServiceParameters
    assert page.service_parameters == (f.TASK_RETRY_ID | f.RETRY | f.CONFIRMED_COMPLETION
                                       | f.DATA_OVERLAY | f.INITIATOR_FUNCTION
                                       | f.TARGET_FUNCTION | f.READ_XFER_RDY_DISABLED
                                       | f.WRITE_XFER_RDY_DISABLED)
    assert [int(c) for c in PrliResponseCode] == list(range(9))


def test_prli_length_fields_are_strict() -> None:
    two = Prli((ServiceParameterPage(0x08), ServiceParameterPage(0x28)))
    data = two.encode()
    assert data[:4] == h("20 10 00 24") and Prli.decode(data) == two
    with pytest.raises(DecodeError, match="PRLI: payload length field says 20 bytes, "
                                          "received 24"):
        Prli.decode(PRLI + bytes(4))
    with pytest.raises(DecodeError, match="page length 0x14, must be 0x10"):
        Prli.decode(h("20 14 00 14") + PRLI[4:])
    with pytest.raises(DecodeError, match="payload length 22 is not 4 \\+ 16 \\* pages"):
        Prli.decode(h("20 10 00 16") + PRLI[4:] + bytes(2))
    with pytest.raises(DecodeError, match="at least one page"):
        Prli.decode(h("20 10 00 04"))
    for n in range(len(PRLI)):
        with pytest.raises(DecodeError):
            Prli.decode(PRLI[:n])
    with pytest.raises(DecodeError, match="PRLO"):
        Prlo.decode(PRLO[:19])
    with pytest.raises(ValueError):
        Prli(())


# ---- RSCN ----------------------------------------------------------------------------------

# fc_els.h struct fc_els_rscn / fc_els_rscn_page; Wireshark masks event qualifier 0x3C and
# address format 0x03. One port page for 010200.
RSCN = h("61 04 00 08  00 01 02 00")
# Two pages: port 010200 removed object (5 << 2 = 0x14), domain 02 name server object
# change in domain format (1 << 2 | 2 = 0x06).
RSCN2 = h("61 04 00 0c  14 01 02 00  06 02 00 00")


def test_rscn_vectors_round_trip() -> None:
    rscn = decode_els_request(RSCN)
    assert rscn == Rscn((RscnPage(0x010200),)) == Rscn.for_ports([0x010200])
    assert isinstance(rscn, Rscn) and rscn.encode() == RSCN
    two = Rscn.decode(RSCN2)
    assert two.pages == (
        RscnPage(0x010200, RscnAddressFormat.PORT, RscnEventQualifier.REMOVED_OBJECT),
        RscnPage(0x020000, RscnAddressFormat.DOMAIN, RscnEventQualifier.NAME_SERVER_OBJECT))
    assert two.encode() == RSCN2
    assert decode_els_reply(LS_ACC, ElsCommand.RSCN) == LsAcc()


def test_rscn_length_fields_are_strict() -> None:
    with pytest.raises(DecodeError, match="RSCN: page length 8, must be 4"):
        Rscn.decode(h("61 08 00 08  00 01 02 00"))
    with pytest.raises(DecodeError, match="payload length field says 8 bytes, received 12"):
        Rscn.decode(RSCN + bytes(4))
    with pytest.raises(DecodeError, match="payload length 10 is not 4 \\+ 4 \\* pages"):
        Rscn.decode(h("61 04 00 0a  00 01 02 00  00 00"))
    with pytest.raises(DecodeError, match="at least one page"):
        Rscn.decode(h("61 04 00 04"))
    for n in range(len(RSCN2)):
        with pytest.raises(DecodeError):
            Rscn.decode(RSCN2[:n])


# ---- length policy of the fixed-layout payloads --------------------------------------------

FIXED = [  # (decoder, vector, minimum length)
    (Logo.decode, LOGO, 16), (Adisc.decode, ADISC, 28), (Rrq.decode, RRQ, 12),
    (Rtv.decode, RTV, 4), (RtvAccept.decode, RTV_ACC, 16), (Scr.decode, SCR, 8),
    (LsAcc.decode, LS_ACC, 4), (LsRjt.decode, LS_RJT_PLOGI_REQUIRED, 8),
    (ServiceParameters.decode, PLOGI, 116),
]


@pytest.mark.parametrize(("decode", "vector", "minimum"), FIXED)
def test_fixed_payloads_truncated_and_trailing(decode, vector, minimum) -> None:  # type: ignore[no-untyped-def]
    assert len(vector) == minimum
    value = decode(vector)
    for n in range(minimum):  # fed byte by byte: every prefix is an error, never a crash
        with pytest.raises(DecodeError):
            decode(vector[:n])
    # trailing bytes (padding, a longer revision of the payload) are tolerated and ignored
    assert decode(vector + h("de ad be ef")) == value
    assert decode(bytearray(vector)) == value
    assert decode(memoryview(vector)) == value


def test_truncation_messages_name_the_payload() -> None:
    with pytest.raises(DecodeError, match="LOGO: payload is 15 bytes, need at least 16"):
        Logo.decode(LOGO[:15])
    with pytest.raises(DecodeError, match="ADISC: payload is 8 bytes, need at least 28"):
        Adisc.decode(ADISC[:8])
    with pytest.raises(DecodeError, match="LS_RJT: payload is 0 bytes, need at least 1"):
        LsRjt.decode(b"")
    with pytest.raises(DecodeError, match="LOGO: command byte 0x03 is not LOGO"):
        Logo.decode(PLOGI)


# ---- dispatch ------------------------------------------------------------------------------


def test_request_dispatch_covers_every_codec() -> None:
    for vector, cls in [(FLOGI, ServiceParameters), (FDISC, ServiceParameters),
                        (PLOGI, ServiceParameters), (LOGO, Logo), (PRLI, Prli), (PRLO, Prlo),
                        (SCR, Scr), (RSCN, Rscn), (ADISC, Adisc), (ECHO, Echo), (RTV, Rtv),
                        (RRQ, Rrq)]:
        assert type(decode_els_request(vector)) is cls


def test_unknown_request_is_returned_not_raised() -> None:
    # RNID (fc_els.h struct fc_els_rnid) with the general topology format 0xDF: no codec here
    rnid = h("78 00 00 00  df 00 00 00")
    unknown = decode_els_request(rnid)
    assert unknown == UnknownEls(ElsCommand.RNID, h("00 00 00 df 00 00 00"))
    assert isinstance(unknown, UnknownEls) and unknown.known
    assert unknown.encode() == rnid
    unassigned = decode_els_request(h("e0 00 00 00"))
    assert isinstance(unassigned, UnknownEls) and unassigned.command == 0xE0
    assert not unassigned.known
    # a reply code arriving as a request is not decoded as a reply either
    assert isinstance(decode_els_request(LS_ACC), UnknownEls)
    with pytest.raises(DecodeError, match="ELS request: payload is 3 bytes"):
        decode_els_request(h("78 00 00"))
    with pytest.raises(DecodeError, match="LOGO"):
        decode_els_request(LOGO[:12])


def test_reply_dispatch() -> None:
    assert decode_els_reply(LS_ACC, ElsCommand.SCR) == LsAcc()
    assert decode_els_reply(LS_ACC + bytes(8), ElsCommand.RRQ) == LsAcc()
    assert decode_els_reply(LS_RJT_NOT_SUPPORTED, ElsCommand.FLOGI) == LsRjt(
        LsRjtReason.COMMAND_NOT_SUPPORTED)
    with pytest.raises(DecodeError, match="neither LS_ACC"):
        decode_els_reply(LOGO, ElsCommand.LOGO)
    with pytest.raises(DecodeError, match="service parameters"):
        decode_els_reply(LS_ACC, ElsCommand.FLOGI)


def test_els_modules_are_sans_io() -> None:
    from fcsoft.wire import els, els_codes, els_login

    for module in (els, els_codes, els_login):
        source = Path(str(module.__file__)).read_text(encoding="utf-8")
        for banned in ("import trio", "import socket", "import time", "import asyncio"):
            assert banned not in source, (module.__name__, banned)


# ---- hypothesis ----------------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u24 = st.integers(0, 0xFFFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
wwns = st.integers(0, 2**64 - 1).map(WWN)

class_params = st.builds(ClassServiceParameters, u16.map(ClassServiceOptions), u16, u16, u16,
                         u16, u16, u8)
service_parameters = st.builds(
    ServiceParameters,
    st.sampled_from([ElsCommand.FLOGI, ElsCommand.FDISC, ElsCommand.PLOGI, ElsCommand.PDISC,
                     ElsCommand.LS_ACC]),
    wwns, wwns, u16.map(CommonFeatures), u16, st.integers(0, 0xFFF), st.integers(0, 15), u32,
    u32, st.tuples(class_params, class_params, class_params, class_params),
    st.binary(min_size=16, max_size=16), u8, u8)
pages = st.builds(ServiceParameterPage, u8, u8, st.booleans(), st.booleans(), st.booleans(),
                  st.integers(0, 15), u32, u32, u32)
rscn_pages = st.builds(RscnPage, u24, st.sampled_from(list(RscnAddressFormat)),
                       st.integers(0, 15))
requests = st.one_of(
    service_parameters.filter(lambda s: s.command != ElsCommand.LS_ACC),
    st.builds(Logo, u24, wwns),
    st.builds(Prli, st.lists(pages, min_size=1, max_size=8)),
    st.builds(Prlo, st.lists(pages, min_size=1, max_size=8)),
    st.builds(Scr, u8),
    st.builds(Rscn, st.lists(rscn_pages, min_size=1, max_size=40)),
    st.builds(Adisc, u24, wwns, wwns, u24),
    st.builds(Echo, st.binary(max_size=2108)),
    st.just(Rtv()),
    st.builds(Rrq, u24, u16, u16),
)
# (reply value, the request command it answers)
replies = st.one_of(
    st.tuples(st.just(LsAcc()), st.sampled_from([ElsCommand.LOGO, ElsCommand.SCR,
                                                 ElsCommand.RSCN, ElsCommand.RRQ])),
    st.tuples(st.builds(LsRjt, u8, u8, u8), st.sampled_from(list(ElsCommand))),
    service_parameters.map(lambda s: (ServiceParameters(**{**s.__dict__,
                                                           "command": ElsCommand.LS_ACC}),
                                      s.command if s.command != ElsCommand.LS_ACC
                                      else ElsCommand.FLOGI)),
    st.tuples(st.builds(RtvAccept, u32, u32, u32), st.just(ElsCommand.RTV)),
    st.tuples(st.builds(Prli, st.lists(pages, min_size=1, max_size=4),
                        st.just(ElsCommand.LS_ACC)), st.just(ElsCommand.PRLI)),
    st.tuples(st.builds(Prlo, st.lists(pages, min_size=1, max_size=4),
                        st.just(ElsCommand.LS_ACC)), st.just(ElsCommand.PRLO)),
    st.tuples(st.builds(Adisc, u24, wwns, wwns, u24, st.just(ElsCommand.LS_ACC)),
              st.just(ElsCommand.ADISC)),
    st.tuples(st.builds(Echo, st.binary(max_size=64), st.just(ElsCommand.LS_ACC)),
              st.just(ElsCommand.ECHO)),
)


@given(requests)
def test_requests_round_trip(value) -> None:  # type: ignore[no-untyped-def]
    data = value.encode()
    assert type(value).decode(data) == value
    decoded = decode_els_request(data)
    assert decoded == value
    assert decoded.encode() == data


@given(replies)
def test_replies_round_trip(pair) -> None:  # type: ignore[no-untyped-def]
    value, request = pair
    data = value.encode()
    decoded = decode_els_reply(data, request)
    assert decoded == value
    assert decoded.encode() == data


DECODERS = [ServiceParameters.decode, ClassServiceParameters.decode,
            ServiceParameterPage.decode, Prli.decode, Prlo.decode, Logo.decode, Adisc.decode,
            Rrq.decode, Rtv.decode, RtvAccept.decode, Scr.decode, Rscn.decode, Echo.decode,
            LsAcc.decode, LsRjt.decode, UnknownEls.decode, decode_els_request]


def _only_decode_errors(fn, data) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(DecodeError):
        fn(data)


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    for fn in DECODERS:
        _only_decode_errors(fn, data)
    for command in (ElsCommand.FLOGI, ElsCommand.RTV, ElsCommand.PRLI, ElsCommand.PRLO,
                    ElsCommand.ADISC, ElsCommand.ECHO, ElsCommand.LOGO, 0x99):
        _only_decode_errors(lambda d, c=command: decode_els_reply(d, c), data)


@given(st.sampled_from([*sorted(ELS_CODES.values()), 0xE0]), st.integers(0, 255),
       u16, st.binary(max_size=2200))
def test_random_bodies_behind_real_headers_raise_only_decode_error(
        command: int, byte1: int, length: int, body: bytes) -> None:
    # a plausible command word (and, for PRLI/RSCN, a random length field) gets past the
    # first check and exercises the deeper paths
    data = bytes([command, byte1]) + length.to_bytes(2, "big") + body
    _only_decode_errors(decode_els_request, data)
    _only_decode_errors(lambda d: decode_els_reply(d, command), bytes([0x02]) + data[1:])
    # whatever does decode is a fixed point: encoding it and decoding again changes nothing
    try:
        value = decode_els_request(data)
    except DecodeError:
        return
    assert decode_els_request(value.encode()) == value


@given(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=8),
       st.sampled_from([ElsCommand.PRLI, ElsCommand.PRLO]))
def test_well_framed_prli_with_random_pages_decodes(raw_pages, command) -> None:  # type: ignore[no-untyped-def]
    data = bytes([command, 0x10]) + (4 + 16 * len(raw_pages)).to_bytes(2, "big")
    data += b"".join(raw_pages)
    value = decode_els_request(data)
    assert isinstance(value, (Prli, Prlo)) and len(value.pages) == len(raw_pages)
    assert decode_els_request(value.encode()) == value


@given(st.lists(pages, min_size=1, max_size=6), st.binary(min_size=1, max_size=20))
def test_prli_with_garbage_appended_is_rejected(page_list, junk: bytes) -> None:  # type: ignore[no-untyped-def]
    data = Prli(page_list).encode()
    with pytest.raises(DecodeError):
        Prli.decode(data + junk)


# ---- interoperability: Wireshark decodes what we encode ------------------------------------


@pytest.mark.tools
def test_tshark_decodes_the_vectors(tmp_path: Path) -> None:
    import subprocess

    from fcsoft.wire.encap import encode_frame, trace_record
    from fcsoft.wire.header import FcType, RCtl, make_header
    from fcsoft.wire.pcap import file_header, record
    from tests.conftest import require_tool

    tshark = require_tool("tshark")
    plogi_acc = bytes([0x02]) + PLOGI[1:]
    pairs = [(FLOGI, FLOGI_ACC, 0xFFFFFE), (PLOGI, plogi_acc, 0x010200),
             (PRLI, PRLI_ACC, 0x010200), (PRLO, PRLO_ACC, 0x010200), (LOGO, LS_ACC, 0x010200),
             (SCR, LS_ACC, 0xFFFFFD), (RSCN2, LS_ACC, 0x010203), (RRQ, LS_ACC, 0x010200),
             (PRLI, LS_RJT_PLOGI_REQUIRED, 0x010200)]
    records = [file_header()]
    for n, (request, reply, d_id) in enumerate(pairs):
        hdr = make_header(RCtl.ELS_REQUEST, d_id, 0x010203, FcType.ELS, ox_id=0x100 + n)
        records.append(record(2 * n, trace_record(encode_frame(hdr, request))))
        rsp = hdr.reply(RCtl.ELS_REPLY, rx_id=0x200 + n)
        records.append(record(2 * n + 1, trace_record(encode_frame(rsp, reply))))
    pcap = tmp_path / "els.pcap"
    pcap.write_bytes(b"".join(records))
    fields = ["_ws.col.Info", "fcels.logi.rcvsize", "fcels.logi.cmnfeatures",
              "fcels.prlilo.response_code", "fcels.fcpflags", "fcels.scr.regn",
              "fcels.rscn.evqual", "fcels.rscn.addrfmt", "fcels.rjt.reason",
              "fcels.rjt.detail", "_ws.malformed", "_ws.expert"]
    out = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-E", "separator=|",
                          *[a for f in fields for a in ("-e", f)]],
                         capture_output=True, text=True, check=True).stdout
    rows = [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()]
    assert [r["_ws.col.Info"] for r in rows] == [
        "FLOGI", "ACC (FLOGI)", "PLOGI", "ACC (PLOGI)", "PRLI", "ACC (PRLI)", "PRLO",
        "ACC (PRLO)", "LOGO", "ACC (LOGO)", "SCR", "ACC (SCR)", "RSCN", "ACC (RSCN)", "RRQ",
        "ACC (RRQ)", "PRLI", "LS_RJT (PRLI)"]
    assert not any(r["_ws.malformed"] or r["_ws.expert"] for r in rows)
    assert rows[1]["fcels.logi.cmnfeatures"] == "0x3000"  # F_Port + NPIV assignment
    assert rows[1]["fcels.logi.rcvsize"] == "2112"
    assert rows[4]["fcels.fcpflags"] == "0x000001a2"
    assert (rows[5]["fcels.prlilo.response_code"], rows[5]["fcels.fcpflags"]) == (
        "0x21", "0x00000012")
    assert rows[10]["fcels.scr.regn"] == "0x03"
    assert (rows[12]["fcels.rscn.evqual"], rows[12]["fcels.rscn.addrfmt"]) == (
        "0x05,0x01", "0x00,0x02")
    assert (rows[17]["fcels.rjt.reason"], rows[17]["fcels.rjt.detail"]) == ("0x03", "0x1e")
