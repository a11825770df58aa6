"""Name server payload codecs (fcsoft.wire.ns, FC-GS-8 clause 5.2).

Byte vectors are written out from the layouts in the sources named beside each: Linux
include/uapi/scsi/fc/fc_ns.h structs, qla2xxx qla_def.h (ct_sns_req / ct_sns_rsp), lpfc
lpfc_hw.h, fcoe-utils fcnsq.c, and the field offsets of Wireshark packet-fcdns.c.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fcsoft.wire.errors import DecodeError
from fcsoft.wire.header import FcType
from fcsoft.wire.ns import (
    FC4_FEATURES_LEN,
    GA_NXT_ACCEPT_LEN,
    NS_ACCEPTS,
    NS_REQUESTS,
    ClassOfService,
    DaIdRequest,
    EmptyAccept,
    Fc4Features,
    Fc4Types,
    FcpFeatures,
    GaNxtAccept,
    GaNxtRequest,
    GffIdAccept,
    GffIdRequest,
    GftIdAccept,
    GftIdRequest,
    GidFtAccept,
    GidFtRequest,
    GidPnAccept,
    GidPnRequest,
    GidPtAccept,
    GidPtRequest,
    GnnFtAccept,
    GnnFtEntry,
    GnnFtRequest,
    GnnIdAccept,
    GnnIdRequest,
    GpnFtAccept,
    GpnFtEntry,
    GpnFtRequest,
    GpnIdAccept,
    GpnIdRequest,
    GsnnNnAccept,
    GsnnNnRequest,
    GspnIdAccept,
    GspnIdRequest,
    PortType,
    RffIdRequest,
    RftIdRequest,
    RnnIdRequest,
    RsnnNnRequest,
    RspnIdRequest,
    UnsupportedCommand,
    decode_ns_accept,
    decode_ns_request,
    symbolic_name_text,
)
from fcsoft.wire.wwn import WWN

h = bytes.fromhex

HOST_WWPN = WWN("10:00:00:00:c9:00:00:01")
HOST_WWNN = WWN("20:00:00:00:c9:00:00:01")
ARRAY_WWPN = WWN("50:01:43:80:00:00:00:01")
ARRAY_WWNN = WWN("50:01:43:80:00:00:00:00")
FABRIC_PORT = WWN("20:01:00:05:1e:00:00:01")

FCP_ONLY_TYPES = h("00000100" + "00" * 28)  # FC-4 TYPEs object with only FCP (word 0 bit 8)

# ---------------------------------------------------------------------------------------------
# (command code, request or accept, payload object, canonical bytes, source)

VECTORS: list[tuple[int, str, object, bytes, str]] = [
    # registrations
    (0x0213, "req", RnnIdRequest(0x010200, HOST_WWNN), h("00 010200 20000000c9000001"),
     "fc_ns.h struct fc_ns_rn_id (fc_ns_fid + __be64, packed); Wireshark dissect_fcdns_rnnid"),
    (0x0239, "req", RsnnNnRequest(HOST_WWNN, b"fcsoft"),
     h("20000000c9000001 06") + b"fcsoft",
     "fc_ns.h struct fc_ns_rsnn; Wireshark dissect_fcdns_rsnnnn (len at 8, name at 9)"),
    (0x0218, "req", RspnIdRequest(0x010200, b"port1"), h("00 010200 05") + b"port1",
     "fc_ns.h struct fc_ns_rspn; Wireshark dissect_fcdns_rspnid (len at 4, name at 5)"),
    (0x0217, "req", RftIdRequest(0x010200, Fc4Types({FcType.FCP, FcType.CT})),
     h("00 010200  00000100 00000001" + "00000000" * 6),
     "fc_ns.h fc_ns_rft_id / fc_ns_fts (FC_NS_BPW 32); Wireshark dissect_fc4type: FCP 0x0100 "
     "in word 0, GS3 (CT) 0x0001 in word 1"),
    (0x021F, "req", RffIdRequest(0x010200, FcType.FCP, FcpFeatures.TARGET),
     h("00 010200 0000 01 08"),
     "fc_ns.h struct fc_ns_rff_id; Wireshark fc4features T=0x01 I=0x02"),
    (0x021F, "req", RffIdRequest(0x010300, FcType.FCP, FcpFeatures.INITIATOR),
     h("00 010300 0000 02 08"), "fc_ns.h struct fc_ns_rff_id (FCP_FEAT_INIT 2)"),
    (0x0300, "req", DaIdRequest(0x010200), h("00 010200"),
     "Wireshark dissect_fcdns_daid (port ID at offset 1)"),
    # queries by port ID
    (0x0100, "req", GaNxtRequest(0x000000), h("00 000000"),
     "qla2xxx GA_NXT_REQ_SIZE 16 + 4; Wireshark dissect_fcdns_ganxt"),
    (0x0112, "req", GpnIdRequest(0x010200), h("00 010200"),
     "fcnsq gn_id request {resv, port_id[3]}"),
    (0x0112, "acc", GpnIdAccept(ARRAY_WWPN), h("5001438000000001"),
     "fcnsq gn_id response (u64 wwn); qla2xxx GPN_ID_RSP_SIZE 16 + 8"),
    (0x0113, "req", GnnIdRequest(0x010200), h("00 010200"), "fcnsq gn_id request"),
    (0x0113, "acc", GnnIdAccept(ARRAY_WWNN), h("5001438000000000"), "fcnsq gn_id response"),
    (0x0117, "req", GftIdRequest(0x010200), h("00 010200"), "Wireshark dissect_fcdns_gftid"),
    (0x0117, "acc", GftIdAccept(Fc4Types({FcType.FCP})), FCP_ONLY_TYPES,
     "qla2xxx ct_sns_rsp.gft_id fc4_types[32]; lpfc gft_acc fc4_types[8] words"),
    (0x0118, "req", GspnIdRequest(0x010200), h("00 010200"), "fcnsq gspn request"),
    (0x0118, "acc", GspnIdAccept(b"port1"), h("05") + b"port1",
     "fc_ns.h struct fc_gspn_resp {fp_name_len, fp_name[]}"),
    (0x011F, "req", GffIdRequest(0x010200), h("00 010200"),
     "qla2xxx ct_sns_req.gff_id {reserved, port_id[3]}"),
    (0x011F, "acc", GffIdAccept(Fc4Features({FcType.FCP: FcpFeatures.TARGET})),
     h("00000000 00000001") + bytes(120),
     "qla2xxx GFF_FCP_SCSI_OFFSET 7 ('w1 b00:03'), lpfc FCP_TYPE_FEATURE_OFFSET 7"),
    (0x011F, "acc", GffIdAccept(Fc4Features({0x28: 0x3})), bytes(23) + h("03") + bytes(104),
     "qla2xxx GFF_NVME_OFFSET 23 ('w5 [00:03]/28h')"),
    # queries by name
    (0x0121, "req", GidPnRequest(ARRAY_WWPN), h("5001438000000001"),
     "fc_ns.h struct fc_ns_gid_pn {__be64 fn_wwpn}"),
    (0x0121, "acc", GidPnAccept(0x010200), h("00 010200"),
     "fc_ns.h struct fc_gid_pn_resp {fp_resvd, fp_fid[3]}"),
    (0x0139, "req", GsnnNnRequest(HOST_WWNN), h("20000000c9000001"),
     "fcnsq gsnn request {hdr, u64 wwnn}"),
    (0x0139, "acc", GsnnNnAccept(b"fcsoft"), h("06") + b"fcsoft",
     "fcnsq gsnn response {len, name[255]}; Wireshark dissect_fcdns_gsnnnn"),
    # queries by FC-4 TYPE / port type
    (0x0171, "req", GidFtRequest(FcType.FCP), h("00 00 00 08"),
     "fc_ns.h struct fc_ns_gid_ft {fn_resvd, domain scope, area scope, fc4 type}"),
    (0x0171, "req", GidFtRequest(FcType.FCP, domain_id_scope=1), h("00 01 00 08"),
     "Wireshark dissect_fcdns_gidft (domain scope at 1, area at 2, type at 3)"),
    (0x0171, "acc", GidFtAccept((0x010200, 0x010300)), h("00 010200  80 010300"),
     "fc_ns.h struct fc_ns_fid, FC_NS_FID_LAST 0x80"),
    (0x0172, "req", GpnFtRequest(FcType.FCP), h("00 00 00 08"), "fc_ns.h fc_ns_gid_ft"),
    (0x0172, "acc", GpnFtAccept((GpnFtEntry(0x010200, HOST_WWPN),
                                 GpnFtEntry(0x010300, ARRAY_WWPN))),
     h("00 010200 00000000 10000000c9000001  80 010300 00000000 5001438000000001"),
     "fc_ns.h struct fc_gpn_ft_resp {fp_flags, fp_fid[3], fp_resvd, fp_wwpn}"),
    (0x0173, "req", GnnFtRequest(FcType.FCP), h("00 00 00 08"), "qla2xxx GNN_FT_REQ_SIZE 16+4"),
    (0x0173, "acc", GnnFtAccept((GnnFtEntry(0x010300, ARRAY_WWNN),)),
     h("80 010300 00000000 5001438000000000"),
     "qla2xxx ct_sns_gpn_ft_data ('same for both GPN_FT and GNN_FT')"),
    (0x01A1, "req", GidPtRequest(PortType.NX_PORT), h("7f 00 00 00"),
     "fc_ns.h struct fc_ns_gid_pt; qla2xxx NS_NX_PORT_TYPE 0x7F"),
    (0x01A1, "acc", GidPtAccept((0x010200,)), h("80 010200"),
     "qla2xxx struct ct_sns_gid_pt_data {control_byte, port_id}"),
]


def _name_field(name: bytes) -> bytes:
    return (bytes((len(name),)) + name).ljust(256, b"\0")


# GA_NXT accept, field by field at the offsets of qla2xxx ct_sns_rsp.ga_nxt and Wireshark
# dissect_fcdns_ganxt (offset+268 node name, +276 symbolic node name, +532 IPA, +540 node IP,
# +556 class of service, +560 FC-4 types, +592 port IP, +608 fabric port name, +617 hard addr).
GA_NXT_BYTES = b"".join([
    h("01 010200"),  # 0: port type N_Port, port ID
    HOST_WWPN.to_bytes8(),  # 4
    _name_field(b"port1"),  # 12
    HOST_WWNN.to_bytes8(),  # 268
    _name_field(b"fcsoft"),  # 276
    h("0102030405060708"),  # 532: initial process associator
    h("00000000000000000000ffff7f000001"),  # 540: IP address (node)
    h("00000008"),  # 556: class of service, class 3
    FCP_ONLY_TYPES,  # 560
    bytes(16),  # 592: IP address (port)
    FABRIC_PORT.to_bytes8(),  # 608
    h("00 0000ef"),  # 616: rsvd, hard address
])
GA_NXT_VALUE = GaNxtAccept(
    port_type=PortType.N_PORT, port_id=0x010200, port_name=HOST_WWPN,
    symbolic_port_name=b"port1", node_name=HOST_WWNN, symbolic_node_name=b"fcsoft",
    initial_process_associator=h("0102030405060708"),
    node_ip_address=h("00000000000000000000ffff7f000001"),
    class_of_service=ClassOfService.CLASS_3, fc4_types=Fc4Types({FcType.FCP}),
    port_ip_address=bytes(16), fabric_port_name=FABRIC_PORT, hard_address=0xEF,
)
VECTORS.append((0x0100, "acc", GA_NXT_VALUE, GA_NXT_BYTES,
                "qla2xxx ct_sns_rsp.ga_nxt, GA_NXT_RSP_SIZE 16 + 620; Wireshark "
                "dissect_fcdns_ganxt offsets"))
VECTOR_IDS = [f"{code:#06x}-{kind}-{type(obj).__name__}-{i}"
              for i, (code, kind, obj, _, _) in enumerate(VECTORS)]


def _decode(code: int, kind: str, body: bytes) -> object:
    return (decode_ns_request if kind == "req" else decode_ns_accept)(code, body)


@pytest.mark.parametrize(("code", "kind", "obj", "wire", "source"), VECTORS, ids=VECTOR_IDS)
def test_vector_round_trip(code: int, kind: str, obj: object, wire: bytes, source: str) -> None:
    assert source
    assert obj.encode() == wire  # type: ignore[attr-defined]
    assert type(obj).decode(wire) == obj  # type: ignore[attr-defined]
    assert _decode(code, kind, wire) == obj
    assert _decode(code, kind, memoryview(bytearray(wire))) == obj


@pytest.mark.parametrize(("code", "kind", "obj", "wire", "source"), VECTORS, ids=VECTOR_IDS)
def test_vector_truncated(code: int, kind: str, obj: object, wire: bytes, source: str) -> None:
    for n in range(len(wire)):
        with pytest.raises(DecodeError):
            _decode(code, kind, wire[:n])


@pytest.mark.parametrize(("code", "kind", "obj", "wire", "source"), VECTORS, ids=VECTOR_IDS)
def test_vector_trailing_data_ignored(code: int, kind: str, obj: object, wire: bytes,
                                      source: str) -> None:
    for tail in (b"\0", b"\0\0\0\0", b"\xff" * 7, bytes(300)):
        assert _decode(code, kind, wire + tail) == obj


def test_ga_nxt_offsets() -> None:
    assert len(GA_NXT_BYTES) == GA_NXT_ACCEPT_LEN == len(GA_NXT_VALUE.encode())
    assert GA_NXT_BYTES[268:276] == HOST_WWNN.to_bytes8()
    assert GA_NXT_BYTES[276] == 6 and GA_NXT_BYTES[277:283] == b"fcsoft"
    assert GA_NXT_BYTES[556:560] == h("00000008")
    assert GA_NXT_BYTES[560:564] == h("00000100")
    assert GA_NXT_BYTES[608:616] == FABRIC_PORT.to_bytes8()
    assert GA_NXT_BYTES[617:620] == h("0000ef")
    assert GA_NXT_VALUE.symbolic_port_name_text == "port1"
    assert GA_NXT_VALUE.symbolic_node_name_text == "fcsoft"


def test_ga_nxt_ignores_name_padding_and_reserved() -> None:
    wire = bytearray(GA_NXT_BYTES)
    wire[12 + 1 + 5] = 0x41  # garbage after the 5-byte symbolic port name, inside its field
    wire[616] = 0xFF  # reserved byte before the hard address
    assert GaNxtAccept.decode(bytes(wire)) == GA_NXT_VALUE


def test_ga_nxt_full_length_names() -> None:
    value = GaNxtAccept(PortType.NX_PORT, 0xFFFFFF, WWN(1), b"p" * 255, WWN(2), b"n" * 255)
    assert GaNxtAccept.decode(value.encode()) == value


def test_lpfc_padded_symbolic_name_requests() -> None:
    # lpfc sends RSPN_ID and RSNN_NN with the whole name area: RSPN_REQUEST_SZ covers struct
    # rspn {PortId, len, symbname[255]} and RSNN_REQUEST_SZ struct rsnn likewise.
    rspn = h("00 010200 05") + b"port1" + bytes(250)
    assert len(rspn) == 4 + 1 + 255
    assert RspnIdRequest.decode(rspn) == RspnIdRequest(0x010200, b"port1")
    rsnn = HOST_WWNN.to_bytes8() + h("06") + b"fcsoft" + bytes(249)
    assert RsnnNnRequest.decode(rsnn) == RsnnNnRequest(HOST_WWNN, b"fcsoft")
    # fcnsq reads GSPN_ID / GSNN_NN accepts into {len, name[255]}
    assert GspnIdAccept.decode(h("05") + b"port1" + bytes(250)).symbolic_name == b"port1"


# ---------------------------------------------------------------------------------------------
# FC-4 TYPEs and Features objects


def test_fc4_types_words() -> None:
    # Linux fc_ns.h: FC_NS_BPW 32, type t -> word t / 32, bit t % 32
    assert Fc4Types({8}).words == (0x100, 0, 0, 0, 0, 0, 0, 0)
    assert Fc4Types({0x20}).words == (0, 1, 0, 0, 0, 0, 0, 0)
    assert Fc4Types({0xFF}).words[7] == 0x8000_0000
    assert Fc4Types.from_words((0x100, 1, 0, 0, 0, 0, 0, 0)) == {8, 0x20}
    assert Fc4Types.decode(FCP_ONLY_TYPES) == Fc4Types({FcType.FCP})
    assert Fc4Types() == frozenset()
    assert 8 in Fc4Types([8, 8])
    assert repr(Fc4Types({0x20, 8})) == "Fc4Types({0x08, 0x20})"


def test_fc4_features_nibbles() -> None:
    # FC-GS-7 5.2.3.12 order as qla2xxx reads it: type t in word t // 8, bits 4*(t % 8)..+3
    assert Fc4Features({8: 1}).encode()[7] == 0x01
    assert Fc4Features({9: 1}).encode()[7] == 0x10  # odd type: high nibble, same byte
    assert Fc4Features({0: 0xF}).encode()[3] == 0x0F
    assert Fc4Features({7: 0x2}).encode()[0] == 0x20
    assert Fc4Features({0xFF: 0x1}).encode()[124] == 0x10
    both = Fc4Features.from_dict({FcType.FCP: FcpFeatures.TARGET | FcpFeatures.INITIATOR,
                                  0x28: 1})
    wire = both.encode()
    assert len(wire) == FC4_FEATURES_LEN
    assert wire[7] == 0x03 and wire[23] == 0x01 and wire.count(0) == 126
    assert both.features_for(8) == 3 and both.features_for(0x20) == 0
    assert FcpFeatures(both.features_for(FcType.FCP)) & FcpFeatures.TARGET
    assert dict(both) == {8: 3, 0x28: 1}
    assert Fc4Features({8: 0}) == Fc4Features() and len(Fc4Features({8: 0})) == 0
    assert hash(Fc4Features({8: 1})) == hash(Fc4Features.decode(Fc4Features({8: 1}).encode()))
    assert GffIdAccept(Fc4Features({8: 2})).features_for(8) == FcpFeatures.INITIATOR


def test_fc4_objects_refuse_bad_values() -> None:
    with pytest.raises(ValueError):
        Fc4Types({256})
    with pytest.raises(ValueError):
        Fc4Types({-1})
    with pytest.raises(ValueError):
        Fc4Types.from_words((0,) * 7)
    with pytest.raises(ValueError):
        Fc4Features({8: 0x10})
    with pytest.raises(ValueError):
        Fc4Features({256: 1})
    with pytest.raises(ValueError):
        Fc4Features().features_for(300)


# ---------------------------------------------------------------------------------------------
# lists


@pytest.mark.parametrize("cls", [GidFtAccept, GidPtAccept])
def test_port_id_list_control_bytes(cls: type) -> None:
    wire = cls((1, 2, 3)).encode()
    assert [wire[i] for i in (0, 4, 8)] == [0, 0, 0x80]
    assert cls.decode(wire).port_ids == (1, 2, 3)


def test_list_stops_at_last_entry() -> None:
    wire = h("00 010200  80 010300  00 010400")  # an entry after the last one is ignored
    assert GidFtAccept.decode(wire).port_ids == (0x010200, 0x010300)
    wire16 = h("80 010300 00000000 5001438000000001") + h("00 010400 00000000") + bytes(8)
    assert GpnFtAccept.decode(wire16).entries == (GpnFtEntry(0x010300, ARRAY_WWPN),)


def test_list_other_control_bits_ignored() -> None:
    assert GidPtAccept.decode(h("7f 010200 ff 010300")).port_ids == (0x010200, 0x010300)


@pytest.mark.parametrize(("cls", "wire"), [
    (GidFtAccept, b""),
    (GidFtAccept, h("00 010200 00 010300")),
    (GidPtAccept, h("00 010200 00")),
    (GpnFtAccept, h("00 010200 00000000 5001438000000001")),
    (GnnFtAccept, h("00 010200 00000000 5001438000000001 80 01")),
])
def test_list_without_last_entry(cls: type, wire: bytes) -> None:
    with pytest.raises(DecodeError, match="last|truncated"):
        cls.decode(wire)


@pytest.mark.parametrize("make", [
    lambda: GidFtAccept(()), lambda: GidPtAccept([]), lambda: GpnFtAccept(()),
    lambda: GnnFtAccept(()),
])
def test_empty_list_accept_refused(make: object) -> None:
    with pytest.raises(ValueError, match="CT reject"):
        make()  # type: ignore[operator]


def test_list_entries_coerced() -> None:
    acc = GpnFtAccept([(0x010200, 0x10000000C9000001)])
    assert acc.entries == (GpnFtEntry(0x010200, HOST_WWPN),)
    assert isinstance(acc.entries[0].port_name, WWN)
    assert GidFtAccept([5]).port_ids == (5,)


# ---------------------------------------------------------------------------------------------
# values, construction, dispatch


def test_decoded_value_types() -> None:
    rff = RffIdRequest.decode(h("00 010200 0000 03 08"))
    assert rff.features == FcpFeatures.TARGET | FcpFeatures.INITIATOR
    assert isinstance(rff.features, FcpFeatures)
    other = RffIdRequest.decode(h("00 010200 ffff f0 05"))  # reserved bytes ignored
    assert other == RffIdRequest(0x010200, 5, 0xF0) and not isinstance(other.features,
                                                                       FcpFeatures)
    assert GidPtRequest.decode(h("01 00 00 00")).port_type is PortType.N_PORT
    assert GidPtRequest.decode(h("55 00 00 ff")) == GidPtRequest(0x55)  # unknown type kept
    assert isinstance(GpnIdAccept.decode(HOST_WWPN.to_bytes8()).port_name, WWN)
    assert GidFtRequest.decode(h("80 01 02 08")) == GidFtRequest(8, 1, 2, flags=0x80)
    assert GaNxtAccept.decode(GA_NXT_BYTES).port_type is PortType.N_PORT
    assert GaNxtAccept.decode(GA_NXT_BYTES).class_of_service == ClassOfService.CLASS_3


def test_symbolic_name_text() -> None:
    assert symbolic_name_text(b"QLE2562 FW:v8.07.00") == "QLE2562 FW:v8.07.00"
    assert symbolic_name_text(b"host\0junk") == "host"  # a NUL counted in the length
    assert symbolic_name_text(b"\xff\xfe") == "\ufffd\ufffd"
    assert symbolic_name_text("caf\u00e9".encode()) == "caf\u00e9"
    assert RspnIdRequest(1, b"port1\0").symbolic_name_text == "port1"
    assert RsnnNnRequest(HOST_WWNN, b"n").symbolic_name_text == "n"
    assert GsnnNnAccept(b"fcsoft").symbolic_name_text == "fcsoft"


@pytest.mark.parametrize("make", [
    lambda: GpnIdRequest(0x1000000), lambda: DaIdRequest(-1),
    lambda: RspnIdRequest(1, b"x" * 256), lambda: GspnIdAccept(b"x" * 256),
    lambda: RffIdRequest(1, 8, 0x100), lambda: RffIdRequest(1, 0x100, 1),
    lambda: GidFtRequest(0x100), lambda: GidPtRequest(1, domain_id_scope=256),
    lambda: GidFtAccept((0x1000000,)), lambda: GpnFtAccept(((-1, WWN(1)),)),
    lambda: GaNxtAccept(1, 1, WWN(1), initial_process_associator=b"\0"),
    lambda: GaNxtAccept(1, 1, WWN(1), node_ip_address=bytes(4)),
    lambda: GaNxtAccept(0x100, 1, WWN(1)), lambda: GaNxtAccept(1, 1, WWN(1), hard_address=-1),
    lambda: RnnIdRequest(1, "not a wwn"),
])
def test_construction_refuses_bad_values(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_construction_refuses_int_as_name() -> None:
    with pytest.raises(TypeError):
        RspnIdRequest(1, 5)  # type: ignore[arg-type]


EXPECTED_REQUESTS = {
    0x0100: GaNxtRequest, 0x0112: GpnIdRequest, 0x0113: GnnIdRequest, 0x0117: GftIdRequest,
    0x0118: GspnIdRequest, 0x011F: GffIdRequest, 0x0121: GidPnRequest, 0x0139: GsnnNnRequest,
    0x0171: GidFtRequest, 0x0172: GpnFtRequest, 0x0173: GnnFtRequest, 0x01A1: GidPtRequest,
    0x0213: RnnIdRequest, 0x0217: RftIdRequest, 0x0218: RspnIdRequest, 0x021F: RffIdRequest,
    0x0239: RsnnNnRequest, 0x0300: DaIdRequest,
}
EXPECTED_ACCEPTS = {
    0x0100: GaNxtAccept, 0x0112: GpnIdAccept, 0x0113: GnnIdAccept, 0x0117: GftIdAccept,
    0x0118: GspnIdAccept, 0x011F: GffIdAccept, 0x0121: GidPnAccept, 0x0139: GsnnNnAccept,
    0x0171: GidFtAccept, 0x0172: GpnFtAccept, 0x0173: GnnFtAccept, 0x01A1: GidPtAccept,
    0x0213: EmptyAccept, 0x0217: EmptyAccept, 0x0218: EmptyAccept, 0x021F: EmptyAccept,
    0x0239: EmptyAccept, 0x0300: EmptyAccept,
}


def test_dispatch_tables() -> None:
    assert dict(NS_REQUESTS) == EXPECTED_REQUESTS
    assert dict(NS_ACCEPTS) == EXPECTED_ACCEPTS
    with pytest.raises(TypeError):
        NS_REQUESTS[0x0101] = GaNxtRequest  # type: ignore[index]


def test_registration_accept_is_empty() -> None:
    assert decode_ns_accept(0x0217, b"") == EmptyAccept()
    assert decode_ns_accept(0x0300, b"\0\0\0\0") == EmptyAccept()
    assert EmptyAccept().encode() == b""


@pytest.mark.parametrize("code", [0x0101, 0x0114, 0x0131, 0x01F1, 0x0212, 0x0410, 0x8002, 0])
def test_unsupported_command(code: int) -> None:
    for decode in (decode_ns_request, decode_ns_accept):
        with pytest.raises(UnsupportedCommand) as info:
            decode(code, b"\0" * 16)
        assert info.value.command_code == code
        assert isinstance(info.value, DecodeError)
        assert f"{code:#06x}" in str(info.value)


def test_decode_error_names_the_payload() -> None:
    with pytest.raises(DecodeError) as info:
        decode_ns_request(0x0218, h("00 010200 09") + b"short")
    assert info.value.what == "RSPN_ID request"
    assert "symbolic name length 9" in str(info.value)
    with pytest.raises(DecodeError, match="GA_NXT accept: need 620 bytes, have 619"):
        GaNxtAccept.decode(GA_NXT_BYTES[:-1])


# ---------------------------------------------------------------------------------------------
# property tests

DECODERS = (
    [cls.decode for cls in {*EXPECTED_REQUESTS.values(), *EXPECTED_ACCEPTS.values()}]
    + [Fc4Types.decode, Fc4Features.decode]
)


@given(st.sampled_from(DECODERS), st.binary(max_size=700))
def test_random_bytes_only_raise_decode_error(decode: object, body: bytes) -> None:
    try:
        decode(body)  # type: ignore[operator]
    except DecodeError:
        pass


@given(st.integers(0, 0xFFFF), st.binary(max_size=700), st.booleans())
def test_random_dispatch_only_raises_decode_error(code: int, body: bytes, accept: bool) -> None:
    try:
        (decode_ns_accept if accept else decode_ns_request)(code, body)
    except DecodeError:
        pass


@given(st.binary(min_size=4, max_size=200).map(lambda b: b[:-4] + b"\x80" + b[-3:]))
def test_random_lists_decode_up_to_a_last_entry(body: bytes) -> None:
    try:
        acc = GidFtAccept.decode(body)
    except DecodeError:
        return
    assert GidFtAccept.decode(acc.encode()) == acc


port_ids = st.integers(0, 0xFFFFFF)
wwns = st.integers(0, 2**64 - 1).map(WWN)
names = st.binary(max_size=255)
octets = st.integers(0, 0xFF)
fc4_types = st.frozensets(octets, max_size=20).map(Fc4Types)
fc4_features = st.dictionaries(octets, st.integers(0, 0xF), max_size=20).map(Fc4Features)
port_types = st.one_of(st.sampled_from(PortType), octets)

GENERATED = {
    0x0213: (st.builds(RnnIdRequest, port_ids, wwns),
             st.just(EmptyAccept())),
    0x0239: (st.builds(RsnnNnRequest, wwns, names), st.just(EmptyAccept())),
    0x0218: (st.builds(RspnIdRequest, port_ids, names), st.just(EmptyAccept())),
    0x0217: (st.builds(RftIdRequest, port_ids, fc4_types), st.just(EmptyAccept())),
    0x021F: (st.builds(RffIdRequest, port_ids, octets, octets), st.just(EmptyAccept())),
    0x0300: (st.builds(DaIdRequest, port_ids), st.just(EmptyAccept())),
    0x0100: (st.builds(GaNxtRequest, port_ids),
             st.builds(GaNxtAccept, port_types, port_ids, wwns, names, wwns, names,
                       st.binary(min_size=8, max_size=8), st.binary(min_size=16, max_size=16),
                       st.integers(0, 0xFFFF_FFFF), fc4_types,
                       st.binary(min_size=16, max_size=16), wwns, port_ids)),
    0x0112: (st.builds(GpnIdRequest, port_ids), st.builds(GpnIdAccept, wwns)),
    0x0113: (st.builds(GnnIdRequest, port_ids), st.builds(GnnIdAccept, wwns)),
    0x0117: (st.builds(GftIdRequest, port_ids), st.builds(GftIdAccept, fc4_types)),
    0x0118: (st.builds(GspnIdRequest, port_ids), st.builds(GspnIdAccept, names)),
    0x011F: (st.builds(GffIdRequest, port_ids), st.builds(GffIdAccept, fc4_features)),
    0x0121: (st.builds(GidPnRequest, wwns), st.builds(GidPnAccept, port_ids)),
    0x0139: (st.builds(GsnnNnRequest, wwns), st.builds(GsnnNnAccept, names)),
    0x0171: (st.builds(GidFtRequest, octets, octets, octets, octets),
             st.builds(GidFtAccept, st.lists(port_ids, min_size=1, max_size=40))),
    0x0172: (st.builds(GpnFtRequest, octets, octets, octets, octets),
             st.builds(GpnFtAccept, st.lists(st.tuples(port_ids, wwns), min_size=1,
                                             max_size=40))),
    0x0173: (st.builds(GnnFtRequest, octets, octets, octets, octets),
             st.builds(GnnFtAccept, st.lists(st.tuples(port_ids, wwns), min_size=1,
                                             max_size=40))),
    0x01A1: (st.builds(GidPtRequest, port_types, octets, octets),
             st.builds(GidPtAccept, st.lists(port_ids, min_size=1, max_size=40))),
}


def test_generated_covers_every_command() -> None:
    assert set(GENERATED) == set(EXPECTED_REQUESTS)


@given(st.sampled_from(sorted(GENERATED)).flatmap(
    lambda code: st.tuples(st.just(code), st.one_of(*GENERATED[code]))))
def test_generated_round_trip(case: tuple[int, object]) -> None:
    code, obj = case
    wire = obj.encode()  # type: ignore[attr-defined]
    again = type(obj).decode(wire)  # type: ignore[attr-defined]
    assert again == obj
    assert again.encode() == wire
    kind = "acc" if type(obj) is NS_ACCEPTS[code] else "req"
    assert _decode(code, kind, wire) == obj
    assert _decode(code, kind, wire + b"\xaa\x55") == obj  # trailing data ignored


@given(fc4_features)
def test_fc4_features_round_trip(features: Fc4Features) -> None:
    wire = features.encode()
    assert Fc4Features.decode(wire) == features
    for t in range(256):
        byte = wire[4 * (t // 8) + 3 - (t % 8) // 2]
        assert (byte >> (4 * (t % 2))) & 0xF == features.features_for(t)


@given(fc4_types)
def test_fc4_types_round_trip(types: Fc4Types) -> None:
    wire = types.encode()
    assert Fc4Types.decode(wire) == types
    for t in range(256):
        assert bool(wire[4 * (t // 32) + 3 - (t % 32) // 8] >> (t % 8) & 1) == (t in types)


@given(st.lists(st.tuples(st.integers(0, 0xFFFFFF), st.integers(0, 2**64 - 1)), min_size=1,
                max_size=50))
def test_fast_list_encoders_match_the_accept_classes(entries):
    from fcsoft.wire.ns import (
        GidFtAccept,
        GnnFtAccept,
        GnnFtEntry,
        GpnFtAccept,
        GpnFtEntry,
        encode_name_entries,
        encode_port_id_list,
    )

    ids = [pid for pid, _ in entries]
    assert encode_port_id_list(ids) == GidFtAccept(tuple(ids)).encode()
    assert encode_name_entries(entries) == GpnFtAccept(
        tuple(GpnFtEntry(p, WWN(n)) for p, n in entries)).encode()
    assert encode_name_entries(entries) == GnnFtAccept(
        tuple(GnnFtEntry(p, WWN(n)) for p, n in entries)).encode()


# ---------------------------------------------------------------------------------------------
# the command table


def test_command_table_pairs_each_request_with_its_accept() -> None:
    from fcsoft.wire.ct import NsCommand
    from fcsoft.wire.ns import NS_COMMANDS, PortIdPayload, PortNamePayload

    assert set(NS_COMMANDS) == set(EXPECTED_REQUESTS)
    for code, payloads in NS_COMMANDS.items():
        assert payloads == (EXPECTED_REQUESTS[code], EXPECTED_ACCEPTS[code])
        assert NsCommand(code).name  # every served command has its FC-GS name
    # "port ID in, port name out" is one shape each way, shared by the messages that use it
    assert NS_COMMANDS[NsCommand.GPN_ID] == (PortIdPayload, PortNamePayload)
    assert GpnIdRequest is GnnIdRequest is GffIdRequest is DaIdRequest is GidPnAccept


def test_dispatch_errors_name_the_command() -> None:
    with pytest.raises(DecodeError) as info:
        decode_ns_request(0x0112, h("00 01"))
    assert info.value.what == "GPN_ID request" and "need 4 bytes, have 2" in str(info.value)
    with pytest.raises(DecodeError) as info:
        decode_ns_accept(0x0113, h("00"))
    assert info.value.what == "GNN_ID accept"
    with pytest.raises(DecodeError, match="GPN_FT accept: entry 1 truncated"):
        decode_ns_accept(0x0172, h("00 010200 00000000 5001438000000001 80 01"))
