"""Directory name server payloads (FC-GS-8 clause 5.2, the Name Server): the part of a CT_IU
after its 16-byte preamble, for every request fcsoft serves at FFFFFC and its accept.

The CT_IU preamble, the command codes (`ct.NsCommand`) and the CT reject codes live in
`ct.py`. Sources for the layouts: FC-GS-8 5.2; the same layouts as C structs in Linux
include/uapi/scsi/fc/fc_ns.h (fc_ns_rn_id, fc_ns_rsnn, fc_ns_rspn, fc_ns_rft_id, fc_ns_rff_id,
fc_ns_gid_ft, fc_ns_gid_pt, fc_gpn_ft_resp, fc_ns_gid_pn, fc_gid_pn_resp, fc_gspn_resp),
qla2xxx qla_def.h (ct_sns_req / ct_sns_rsp), fcoe-utils fcnsq and Wireshark packet-fcdns.c.

Most commands share a handful of payload shapes ("port ID in, port name out"), so the module
declares one layout per shape, a typed value for each, and `NS_COMMANDS`, the table from
command code to (request payload, accept payload) that FC-GS-8 5.2.5 lists command by
command. The per-message names (GpnIdRequest, GidPnAccept, ...) are those shapes under the
message's name. Layouts (construct, see layout.py; "rsvd" is sent as zero and ignored):

    port ID         rsvd, port ID(3)          GA_NXT, GPN_ID, GNN_ID, GFT_ID, GSPN_ID,
                                              GFF_ID and DA_ID requests; GID_PN accept
    port name       port name(8)              GPN_ID accept, GID_PN request
    node name       node name(8)              GNN_ID accept, GSNN_NN request
    symbolic name   len, name(len)            GSPN_ID and GSNN_NN accepts
    FC-4 TYPEs      32 bytes (Fc4Types)       GFT_ID accept
    FC-4 Features   128 bytes (Fc4Features)   GFF_ID accept
    FC-4 type scope flags, domain ID scope, area ID scope, FC-4 type: GID_FT, GPN_FT, GNN_FT
    port ID list    [control, port ID(3)]...  GID_FT and GID_PT accepts
    name lists      [control, port ID(3), rsvd(4), name(8)]...   GPN_FT, GNN_FT accepts
    and one each:   GID_PT request, GA_NXT accept (the 620-byte port object), RNN_ID, RSNN_NN,
                    RSPN_ID, RFT_ID, RFF_ID requests; registrations and DA_ID accept empty.

Theory of operation:
- Each payload is a frozen dataclass with `encode()` and a classmethod `decode(body)`.
  Constructing one with out-of-range values raises ValueError (a local bug); decoding
  malformed bytes raises DecodeError naming the payload and what was wrong (the peer's
  fault), never struct.error or a construct error. Through `decode_ns_request` /
  `decode_ns_accept` the error names the command ("GPN_ID request").
- Decoders read their structure from the start of `body` and ignore any bytes after it.
  Real initiators send fixed-size buffers: lpfc sends RSPN_ID and RSNN_NN with the whole
  255-byte name area (RSPN_REQUEST_SZ / RSNN_REQUEST_SZ) whatever the name length, and a CT
  payload may carry padding. Truncation is always an error.
- List accepts end at the entry whose control byte has bit 0x80 (Linux FC_NS_FID_LAST);
  anything after it is ignored, and a list that runs out without it is a DecodeError. A
  list accept cannot be empty: a query that matches nothing is answered with a CT reject,
  not an empty accept (docs/behaviour.md 2), so constructing an empty one is a ValueError.
  A server answering with thousands of entries encodes them with `encode_port_id_list` /
  `encode_name_entries`, straight from its records (the same bytes, no object per entry).
- Symbolic names stay bytes, exactly as registered (up to 255). The `*_text` properties give a
  str for logs and display: FC-GS does not fix an encoding and several HBAs count a
  terminating NUL in the length, so the text stops at the first NUL and is decoded as UTF-8
  with errors="replace" (ASCII, what HBAs send in practice, comes out unchanged).
- decode_ns_request / decode_ns_accept dispatch on the command code; a code fcsoft does not
  serve raises UnsupportedCommand (a DecodeError), which the fabric answers with CT reject
  0x0B (command not supported).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from types import MappingProxyType
from typing import ClassVar, NamedTuple, Protocol, Self

from construct import (
    Array,
    Bytes,
    FixedSized,
    GreedyBytes,
    Int8ub,
    Int24ub,
    Int32ub,
    Int64ub,
    Padding,
    Prefixed,
    RepeatUntil,
    Struct,
    obj_,
)

from .ct import NsCommand
from .errors import DecodeError
from .header import FcType
from .layout import Fields, Layout, Payload, Wire, unsigned
from .types import BytesLike
from .wwn import WWN

__all__ = [
    "LAST_ENTRY", "MAX_SYMBOLIC_NAME", "FC4_TYPES_LEN", "FC4_FEATURES_LEN", "GA_NXT_ACCEPT_LEN",
    "UnsupportedCommand", "PortType", "FcpFeatures", "ClassOfService", "Fc4Types", "Fc4Features",
    "symbolic_name_text", "NsPayload",
    "PortIdPayload", "PortNamePayload", "NodeNamePayload", "SymbolicNamePayload",
    "Fc4TypesPayload", "Fc4FeaturesPayload", "Fc4TypeQuery", "PortIdList",
    "RnnIdRequest", "RsnnNnRequest", "RspnIdRequest", "RftIdRequest", "RffIdRequest",
    "DaIdRequest", "EmptyAccept",
    "GaNxtRequest", "GaNxtAccept", "GpnIdRequest", "GpnIdAccept", "GnnIdRequest", "GnnIdAccept",
    "GftIdRequest", "GftIdAccept", "GspnIdRequest", "GspnIdAccept", "GffIdRequest",
    "GffIdAccept", "GidPnRequest", "GidPnAccept", "GsnnNnRequest", "GsnnNnAccept",
    "GidFtRequest", "GidFtAccept", "GpnFtRequest", "GpnFtEntry", "GpnFtAccept", "GnnFtRequest",
    "GnnFtEntry", "GnnFtAccept", "GidPtRequest", "GidPtAccept",
    "NsCommandPayloads", "NS_COMMANDS", "NS_REQUESTS", "NS_ACCEPTS", "decode_ns_request",
    "decode_ns_accept", "encode_port_id_list", "encode_name_entries",
]

LAST_ENTRY = 0x80  # control byte bit on the last entry of a list accept (FC_NS_FID_LAST)
MAX_SYMBOLIC_NAME = 255  # the length is one byte
FC4_TYPES_LEN = 32  # 256 TYPE bits in 8 words
FC4_FEATURES_LEN = 128  # 256 TYPEs x 4 bits in 32 words
GA_NXT_ACCEPT_LEN = 620  # qla2xxx GA_NXT_RSP_SIZE = 16 + 620
_PORT_ID_MAX = 0xFFFFFF


class UnsupportedCommand(DecodeError):
    """A name server command code fcsoft does not serve (the fabric answers CT reject 0x0B)."""

    def __init__(self, command_code: int) -> None:
        self.command_code = command_code
        super().__init__("name server command", f"{command_code:#06x} is not supported")


class PortType(IntEnum):
    """Port Type object (FC-GS-8 5.2; Linux fc_ns.h `enum fc_ns_pt`, Wireshark packet-fcdns.c)."""

    UNIDENTIFIED = 0x00
    N_PORT = 0x01
    NL_PORT = 0x02
    FNL_PORT = 0x03
    NX_PORT = 0x7F  # GID_PT: any N_Port or NL_Port
    F_PORT = 0x81
    FL_PORT = 0x82
    E_PORT = 0x84
    B_PORT = 0x85


class FcpFeatures(IntFlag):
    """FC-4 Features bits of TYPE 8 (FCP-4; Linux FCP_FEAT_TARG / FCP_FEAT_INIT)."""

    TARGET = 0x01
    INITIATOR = 0x02


class ClassOfService(IntFlag):
    """Class of Service object: bit n = class n, bit 0 = class F (Wireshark packet-fcdns.c)."""

    F = 0x01
    CLASS_1 = 0x02
    CLASS_2 = 0x04
    CLASS_3 = 0x08
    CLASS_4 = 0x10
    CLASS_6 = 0x40


# ---------------------------------------------------------------------------------------------
# small helpers


def _check_range(what: str, value: int, top: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= top:
        raise ValueError(f"{what} {value!r} out of range 0..{top:#x}")


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _port_type(value: int) -> int:
    try:
        return PortType(value)
    except ValueError:
        return value  # kept as read: the fabric answers an unknown type with a reject


def symbolic_name_text(name: bytes) -> str:
    """A symbolic name as text: up to the first NUL, UTF-8 with errors='replace' (see module
    doc: FC-GS fixes no encoding, and some HBAs count a terminating NUL in the length)."""
    return name.split(b"\0", 1)[0].decode("utf-8", "replace")


class NsPayload(Protocol):
    """What every payload class of this module provides."""

    def encode(self) -> bytes: ...

    @classmethod
    def decode(cls, body: BytesLike) -> Self: ...


# ---------------------------------------------------------------------------------------------
# FC-4 TYPEs and FC-4 Features objects


def _set_bits(word: int) -> Iterator[int]:
    while word:
        low = word & -word
        yield low.bit_length() - 1
        word ^= low


class Fc4Types(frozenset[int]):
    """FC-4 TYPEs object (FC-GS-8 5.2; Linux fc_ns.h `struct fc_ns_fts`): the set of FC-4
    TYPE codes, carried as 8 big-endian words where TYPE t is bit t % 32 of word t // 32.
    FCP (8) is word 0 = 0x00000100, CT (0x20) is word 1 = 0x00000001."""

    __slots__ = ()

    def __new__(cls, types: Iterable[int] = ()) -> Self:
        items = frozenset(types)
        for t in items:
            _check_range("FC-4 TYPE", t, 0xFF)
        return super().__new__(cls, (int(t) for t in items))  # plain ints, not enum members

    @property
    def words(self) -> tuple[int, ...]:
        """The 8 words of the bitmap, word 0 first."""
        words = [0] * 8
        for t in self:
            words[t // 32] |= 1 << (t % 32)
        return tuple(words)

    @classmethod
    def from_words(cls, words: Iterable[int]) -> Self:
        """The set whose bitmap is `words` (8 ints, word 0 first)."""
        ws = tuple(words)
        if len(ws) != 8:
            raise ValueError(f"FC-4 TYPEs need 8 words, not {len(ws)}")
        return cls(i * 32 + bit for i, w in enumerate(ws) for bit in _set_bits(w))

    def encode(self) -> bytes:
        """The 32-byte object."""
        return Fc4TypesPayload(self).encode()

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """The object in the first 32 bytes of `body`."""
        return cls(Fc4TypesPayload.decode(body).fc4_types)

    def __repr__(self) -> str:
        return f"Fc4Types({{{', '.join(f'{t:#04x}' for t in sorted(self))}}})"


class Fc4Features(Mapping[int, int]):
    """FC-4 Features object (FC-GS-8 5.2; Linux fc_ns.h `struct fc_ns_ff`): a 4-bit value
    for each of the 256 FC-4 TYPEs, as an immutable mapping TYPE -> features (zeros left out).

    Placement, as FC-GS-7 5.2.3.12 defines it ("an array of 4-bit values, one for each type
    code value") and as qla2xxx and lpfc read it: 32 big-endian words, TYPE t in word t // 8
    at bits 4*(t % 8) .. 4*(t % 8) + 3 (bit 0 = least significant). So TYPE t sits in byte
    4*(t // 8) + 3 - (t % 8) // 2, low nibble for even t, high for odd: FCP (8) is the low
    nibble of byte 7 (qla2xxx GFF_FCP_SCSI_OFFSET 7, lpfc FCP_TYPE_FEATURE_OFFSET 7) and
    NVMe (0x28) the low nibble of byte 23 (qla2xxx GFF_NVME_OFFSET 23).
    """

    __slots__ = ("_by_type",)

    def __init__(self, features: Mapping[int, int] | Iterable[tuple[int, int]] = ()) -> None:
        by_type: dict[int, int] = {}
        for t, f in dict(features).items():
            _check_range("FC-4 TYPE", t, 0xFF)
            _check_range(f"FC-4 features of TYPE {t:#04x}", f, 0xF)
            if f:
                by_type[int(t)] = int(f)
        self._by_type = by_type

    @classmethod
    def from_dict(cls, features: Mapping[int, int]) -> Self:
        """Build from {TYPE: 4-bit features}, e.g. {FcType.FCP: FcpFeatures.TARGET}."""
        return cls(features)

    @property
    def words(self) -> tuple[int, ...]:
        """The 32 words of the object, word 0 first."""
        words = [0] * 32
        for t, f in self._by_type.items():
            words[t // 8] |= f << (4 * (t % 8))
        return tuple(words)

    @classmethod
    def from_words(cls, words: Iterable[int]) -> Self:
        """The object whose words are `words` (32 ints, word 0 first)."""
        ws = tuple(words)
        if len(ws) != 32:
            raise ValueError(f"FC-4 Features need 32 words, not {len(ws)}")
        return cls((i * 8 + n, w >> (4 * n) & 0xF) for i, w in enumerate(ws) if w
                   for n in range(8))

    def features_for(self, fc4_type: int) -> int:
        """The 4-bit features registered for `fc4_type` (0 when none)."""
        _check_range("FC-4 TYPE", fc4_type, 0xFF)
        return self._by_type.get(fc4_type, 0)

    def __getitem__(self, fc4_type: int) -> int:
        return self._by_type[fc4_type]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._by_type))

    def __len__(self) -> int:
        return len(self._by_type)

    def __hash__(self) -> int:
        return hash(frozenset(self._by_type.items()))

    def encode(self) -> bytes:
        """The 128-byte object."""
        return Fc4FeaturesPayload(self).encode()

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """The object in the first 128 bytes of `body`."""
        return cls(Fc4FeaturesPayload.decode(body).features)

    def __repr__(self) -> str:
        inner = ", ".join(f"{t:#04x}: {f:#x}" for t, f in sorted(self._by_type.items()))
        return f"Fc4Features({{{inner}}})"


def _fc4_types(value: Iterable[int]) -> Fc4Types:
    return value if isinstance(value, Fc4Types) else Fc4Types(value)


def _fc4_features(value: Mapping[int, int]) -> Fc4Features:
    return value if isinstance(value, Fc4Features) else Fc4Features(value)


# ---------------------------------------------------------------------------------------------
# fields that several layouts share (FC-GS-8 5.2.3, the name server objects)

FC4_TYPES = Array(8, Int32ub)  # an Fc4Types through _FC4_TYPES_WIRE
FC4_FEATURES = Array(32, Int32ub)  # an Fc4Features through _FC4_FEATURES_WIRE
SYMBOLIC_NAME = Prefixed(Int8ub, GreedyBytes)  # [len, name(len)], len 0..255

_FC4_TYPES_WIRE: Wire = (Fc4Types.from_words, lambda types: types.words)
_FC4_FEATURES_WIRE: Wire = (Fc4Features.from_words, lambda features: features.words)


def _name_fault(offset: int) -> Callable[[BytesLike, Fields | None], str | None]:
    """The Layout fault of a payload whose symbolic name's length byte is at `offset`."""

    def fault(body: BytesLike, parsed: Fields | None) -> str | None:
        if len(body) <= offset:
            return f"need {offset + 1} bytes, have {len(body)}"
        end = offset + 1 + body[offset]
        if len(body) >= end:
            return None
        return f"symbolic name length {body[offset]} needs {end} bytes, have {len(body)}"

    return fault


# ---------------------------------------------------------------------------------------------
# the shapes several commands share


@dataclass(frozen=True)
class PortIdPayload(Payload):
    """[rsvd, port ID(3)]: the request of every query by port ID, of DA_ID, and the GID_PN
    accept (Linux fc_ns.h struct fc_ns_fid / fc_gid_pn_resp)."""

    port_id: int
    _layout = Layout("port ID payload", Struct(Padding(1), "port_id" / Int24ub))


@dataclass(frozen=True)
class PortNamePayload(Payload):
    """[port name(8)]: GPN_ID accept, GID_PN request (fc_ns.h struct fc_ns_gid_pn)."""

    port_name: WWN
    _layout = Layout("port name payload", Struct("port_name" / Int64ub))
    _convert = {"port_name": WWN}


@dataclass(frozen=True)
class NodeNamePayload(Payload):
    """[node name(8)]: GNN_ID accept, GSNN_NN request."""

    node_name: WWN
    _layout = Layout("node name payload", Struct("node_name" / Int64ub))
    _convert = {"node_name": WWN}


class _SymbolicName:
    """The text view of a payload's `symbolic_name`."""

    symbolic_name: bytes

    @property
    def symbolic_name_text(self) -> str:
        """The name as text (see symbolic_name_text())."""
        return symbolic_name_text(self.symbolic_name)


@dataclass(frozen=True)
class SymbolicNamePayload(_SymbolicName, Payload):
    """[len, symbolic name(len)]: GSPN_ID and GSNN_NN accepts (fc_ns.h struct fc_gspn_resp)."""

    symbolic_name: bytes
    _layout = Layout("symbolic name payload", Struct("symbolic_name" / SYMBOLIC_NAME),
                     fault=_name_fault(0))


@dataclass(frozen=True)
class Fc4TypesPayload(Payload):
    """[FC-4 TYPEs(32)]: the GFT_ID accept (qla2xxx ct_sns_rsp.gft_id)."""

    fc4_types: Fc4Types
    _layout = Layout("FC-4 TYPEs", Struct("fc4_types" / FC4_TYPES))
    _convert = {"fc4_types": _fc4_types}
    _wire = {"fc4_types": _FC4_TYPES_WIRE}


@dataclass(frozen=True)
class Fc4FeaturesPayload(Payload):
    """[FC-4 Features(128)]: the GFF_ID accept (see Fc4Features for the nibbles)."""

    features: Fc4Features
    _layout = Layout("FC-4 Features", Struct("features" / FC4_FEATURES))
    _convert = {"features": _fc4_features}
    _wire = {"features": _FC4_FEATURES_WIRE}

    def features_for(self, fc4_type: int) -> int:
        """The 4-bit features of `fc4_type` (0 when none)."""
        return self.features.features_for(fc4_type)


@dataclass(frozen=True)
class Fc4TypeQuery(Payload):
    """[flags, domain ID scope, area ID scope, FC-4 type]: the GID_FT, GPN_FT and GNN_FT
    requests (Linux fc_ns.h fc_ns_gid_ft).

    Domain ID scope 0 means the whole fabric; a non-zero area ID scope narrows a domain.
    Byte 0 is reserved in FC-GS-2 (Linux fn_resvd); some implementations put flags there,
    so it is kept as read and round-trips.
    """

    fc4_type: int
    domain_id_scope: int = 0
    area_id_scope: int = 0
    flags: int = 0
    _layout = Layout("FC-4 type query", Struct(
        "flags" / Int8ub, "domain_id_scope" / Int8ub, "area_id_scope" / Int8ub,
        "fc4_type" / Int8ub))


# ---------------------------------------------------------------------------------------------
# list accepts: entries up to the one whose control byte has LAST_ENTRY


def _list_layout(what: str, entry: object, size: int) -> Layout:
    def fault(body: BytesLike, parsed: Fields | None) -> str | None:
        if parsed is not None:  # the entries read must have been in the body
            n = len(parsed["entries"])
            return None if n * size <= len(body) else \
                f"entry {n - 1} truncated: need {n * size} bytes, have {len(body)}"
        n = len(body) // size
        if len(body) % size == 0:
            return f"list ends after {n} entries, none marked last (control bit 0x80)"
        return f"entry {n} truncated: need {(n + 1) * size} bytes, have {len(body)}"

    return Layout(what, Struct("entries" / RepeatUntil(obj_.control & LAST_ENTRY, entry)),
                  fault=fault)


def _control(i: int, count: int) -> int:
    return LAST_ENTRY if i == count - 1 else 0


def _check_entries(what: str, port_ids: Iterable[int], count: int) -> None:
    if not count:
        raise ValueError(f"{what} needs at least one entry: a query that matches nothing is "
                         "answered with a CT reject, not an empty accept")
    for pid in port_ids:
        _check_range(f"{what} port ID", pid, _PORT_ID_MAX)


@dataclass(frozen=True)
class PortIdList(Payload):
    """[control, port ID(3)] per port, control bit 0x80 on the last: the GID_FT and GID_PT
    accepts (fc_ns.h struct fc_ns_fid, qla2xxx ct_sns_gid_pt_data)."""

    port_ids: tuple[int, ...]
    _layout = _list_layout("port ID list", Struct("control" / Int8ub, "port_id" / Int24ub), 4)

    def __post_init__(self) -> None:
        ids = tuple(self.port_ids)
        _check_entries(self._layout.what, ids, len(ids))
        _set(self, "port_ids", ids)

    def _to_fields(self) -> Mapping[str, object]:
        n = len(self.port_ids)
        return {"entries": [{"control": _control(i, n), "port_id": pid}
                            for i, pid in enumerate(self.port_ids)]}

    @classmethod
    def _from_fields(cls, parsed: Fields) -> Self:
        return cls(tuple(e["port_id"] for e in parsed["entries"]))


class GpnFtEntry(NamedTuple):
    """One GPN_FT accept entry."""

    port_id: int
    port_name: WWN


class GnnFtEntry(NamedTuple):
    """One GNN_FT accept entry."""

    port_id: int
    node_name: WWN


# control, port ID(3), rsvd(4), name(8) (Linux fc_gpn_ft_resp, qla2xxx ct_sns_gpn_ft_data:
# the name is at entry offset 8; the Wireshark version read for this shows it at offset 4,
# which the drivers that talk to real switches contradict)
_NAME_ENTRY = Struct("control" / Int8ub, "port_id" / Int24ub, Padding(4), "name" / Int64ub)


class _NameList(Payload):
    """16-byte entries [control, port ID(3), rsvd(4), name(8)], bit 0x80 on the last."""

    entries: tuple[tuple[int, WWN], ...]
    _entry: ClassVar[type[GpnFtEntry] | type[GnnFtEntry]]

    def __post_init__(self) -> None:
        entries = tuple(self._entry(pid, WWN(name)) for pid, name in self.entries)
        _check_entries(self._layout.what, (pid for pid, _ in entries), len(entries))
        _set(self, "entries", entries)

    def _to_fields(self) -> Mapping[str, object]:
        n = len(self.entries)
        return {"entries": [{"control": _control(i, n), "port_id": pid, "name": name}
                            for i, (pid, name) in enumerate(self.entries)]}

    @classmethod
    def _from_fields(cls, parsed: Fields) -> Self:
        return cls(tuple((e["port_id"], e["name"]) for e in parsed["entries"]))  # type: ignore[call-arg]


@dataclass(frozen=True)
class GpnFtAccept(_NameList):
    """GPN_FT accept: (port ID, port name) entries."""

    entries: tuple[GpnFtEntry, ...]
    _layout = _list_layout("GPN_FT accept", _NAME_ENTRY, 16)
    _entry = GpnFtEntry


@dataclass(frozen=True)
class GnnFtAccept(_NameList):
    """GNN_FT accept: (port ID, node name) entries (same shape as GPN_FT; qla2xxx reads both
    with one struct)."""

    entries: tuple[GnnFtEntry, ...]
    _layout = _list_layout("GNN_FT accept", _NAME_ENTRY, 16)
    _entry = GnnFtEntry


_FAST_NAME_ENTRY = struct.Struct(">I4xQ")
_FAST_PORT_ID = struct.Struct(">I")


def encode_port_id_list(port_ids: Sequence[int]) -> bytes:
    """A GID_FT / GID_PT accept body straight from N_Port_IDs, for a server answering with
    thousands of entries (the same bytes as `GidFtAccept(...).encode()`, without building
    one object per entry). The list must not be empty."""
    if not port_ids:
        raise ValueError("an empty list is a CT reject, not an empty accept")
    pack = _FAST_PORT_ID.pack
    body = [pack(pid) for pid in port_ids[:-1]]
    body.append(pack(LAST_ENTRY << 24 | port_ids[-1]))
    return b"".join(body)


def encode_name_entries(entries: Sequence[tuple[int, int]]) -> bytes:
    """A GPN_FT / GNN_FT accept body from (N_Port_ID, name) pairs, names as ints (WWN is
    one); the same bytes as `GpnFtAccept(...).encode()`, built for large answers."""
    if not entries:
        raise ValueError("an empty list is a CT reject, not an empty accept")
    pack = _FAST_NAME_ENTRY.pack
    body = [pack(pid, name) for pid, name in entries[:-1]]
    pid, name = entries[-1]
    body.append(pack(LAST_ENTRY << 24 | pid, name))
    return b"".join(body)


# ---------------------------------------------------------------------------------------------
# payloads of one command each


@dataclass(frozen=True)
class GaNxtAccept(Payload):
    """GA_NXT accept: the whole port object, 620 bytes (qla2xxx qla_def.h ct_sns_rsp.ga_nxt,
    GA_NXT_RSP_SIZE 16 + 620; the same offsets in Wireshark packet-fcdns.c
    dissect_fcdns_ganxt). IP addresses and the initial process associator are kept as the
    raw bytes; a symbolic name's padding in its 256-byte field is ignored."""

    port_type: int
    port_id: int
    port_name: WWN
    symbolic_port_name: bytes = b""
    node_name: WWN = WWN(0)
    symbolic_node_name: bytes = b""
    initial_process_associator: bytes = bytes(8)
    node_ip_address: bytes = bytes(16)
    class_of_service: int = 0
    fc4_types: Fc4Types = Fc4Types()
    port_ip_address: bytes = bytes(16)
    fabric_port_name: WWN = WWN(0)
    hard_address: int = 0
    _layout = Layout("GA_NXT accept", Struct(
        "port_type" / Int8ub,  # 0
        "port_id" / Int24ub,  # 1
        "port_name" / Int64ub,  # 4
        "symbolic_port_name" / FixedSized(256, SYMBOLIC_NAME),  # 12
        "node_name" / Int64ub,  # 268
        "symbolic_node_name" / FixedSized(256, SYMBOLIC_NAME),  # 276
        "initial_process_associator" / Bytes(8),  # 532
        "node_ip_address" / Bytes(16),  # 540
        "class_of_service" / Int32ub,  # 556
        "fc4_types" / FC4_TYPES,  # 560
        "port_ip_address" / Bytes(16),  # 592
        "fabric_port_name" / Int64ub,  # 608
        Padding(1), "hard_address" / Int24ub,  # 616
    ))
    _convert = {"port_type": _port_type, "class_of_service": unsigned(ClassOfService),
                "port_name": WWN, "node_name": WWN, "fabric_port_name": WWN,
                "fc4_types": _fc4_types}
    _wire = {"fc4_types": _FC4_TYPES_WIRE}

    @property
    def symbolic_port_name_text(self) -> str:
        """The symbolic port name as text (see symbolic_name_text())."""
        return symbolic_name_text(self.symbolic_port_name)

    @property
    def symbolic_node_name_text(self) -> str:
        """The symbolic node name as text (see symbolic_name_text())."""
        return symbolic_name_text(self.symbolic_node_name)


@dataclass(frozen=True)
class GidPtRequest(Payload):
    """GID_PT (0x01A1): the port IDs of ports of `port_type` within the scope
    (Linux fc_ns.h fc_ns_gid_pt: port type, domain ID scope, area ID scope, rsvd)."""

    port_type: int
    domain_id_scope: int = 0
    area_id_scope: int = 0
    _layout = Layout("GID_PT request", Struct(
        "port_type" / Int8ub, "domain_id_scope" / Int8ub, "area_id_scope" / Int8ub,
        Padding(1)))
    _convert = {"port_type": _port_type}


@dataclass(frozen=True)
class RnnIdRequest(Payload):
    """RNN_ID (0x0213): register the node name of `port_id` (fc_ns.h struct fc_ns_rn_id)."""

    port_id: int
    node_name: WWN
    _layout = Layout("RNN_ID request", Struct(
        Padding(1), "port_id" / Int24ub, "node_name" / Int64ub))
    _convert = {"node_name": WWN}


@dataclass(frozen=True)
class RsnnNnRequest(_SymbolicName, Payload):
    """RSNN_NN (0x0239): register the symbolic name (bytes, up to 255) of a node
    (fc_ns.h struct fc_ns_rsnn; a padded name area after the name is ignored)."""

    node_name: WWN
    symbolic_name: bytes
    _layout = Layout("RSNN_NN request", Struct(
        "node_name" / Int64ub, "symbolic_name" / SYMBOLIC_NAME), fault=_name_fault(8))
    _convert = {"node_name": WWN}


@dataclass(frozen=True)
class RspnIdRequest(_SymbolicName, Payload):
    """RSPN_ID (0x0218): register the symbolic name (bytes, up to 255) of `port_id`
    (fc_ns.h struct fc_ns_rspn; a padded name area after the name is ignored)."""

    port_id: int
    symbolic_name: bytes
    _layout = Layout("RSPN_ID request", Struct(
        Padding(1), "port_id" / Int24ub, "symbolic_name" / SYMBOLIC_NAME),
        fault=_name_fault(4))


@dataclass(frozen=True)
class RftIdRequest(Payload):
    """RFT_ID (0x0217): register the FC-4 TYPEs of `port_id` (fc_ns.h fc_ns_rft_id)."""

    port_id: int
    fc4_types: Fc4Types
    _layout = Layout("RFT_ID request", Struct(
        Padding(1), "port_id" / Int24ub, "fc4_types" / FC4_TYPES))
    _convert = {"fc4_types": _fc4_types}
    _wire = {"fc4_types": _FC4_TYPES_WIRE}


@dataclass(frozen=True)
class RffIdRequest(Payload):
    """RFF_ID (0x021F): register the FC-4 features of `port_id` for one FC-4 TYPE
    (fc_ns.h struct fc_ns_rff_id).

    `features` is the whole byte as sent (the FC-4 Features object keeps its low 4 bits);
    for FCP it is an FcpFeatures.
    """

    port_id: int
    fc4_type: int
    features: int
    _layout = Layout("RFF_ID request", Struct(
        Padding(1), "port_id" / Int24ub, Padding(2), "features" / Int8ub, "fc4_type" / Int8ub))

    def _coerce(self) -> None:
        if self.fc4_type == FcType.FCP:
            _set(self, "features", unsigned(FcpFeatures)(self.features))


@dataclass(frozen=True)
class EmptyAccept:
    """The accept of a registration or DA_ID: no payload (bytes after the preamble ignored)."""

    def encode(self) -> bytes:
        """Nothing."""
        return b""

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Always succeeds: there is nothing to read."""
        return cls()


# ---------------------------------------------------------------------------------------------
# every message by its FC-GS name: the shape it has

GaNxtRequest = GpnIdRequest = GnnIdRequest = GftIdRequest = PortIdPayload
GspnIdRequest = GffIdRequest = DaIdRequest = GidPnAccept = PortIdPayload
GpnIdAccept = GidPnRequest = PortNamePayload
GnnIdAccept = GsnnNnRequest = NodeNamePayload
GspnIdAccept = GsnnNnAccept = SymbolicNamePayload
GftIdAccept = Fc4TypesPayload
GffIdAccept = Fc4FeaturesPayload
GidFtRequest = GpnFtRequest = GnnFtRequest = Fc4TypeQuery
GidFtAccept = GidPtAccept = PortIdList


# ---------------------------------------------------------------------------------------------
# the command table (FC-GS-8 5.2.5)


class NsCommandPayloads(NamedTuple):
    """The payloads of one name server command: its request and its accept."""

    request: type[NsPayload]
    accept: type[NsPayload]


_C = NsCommand
_COMMANDS: dict[int, NsCommandPayloads] = {
    code: NsCommandPayloads(request, accept) for code, request, accept in (
        (_C.GA_NXT, PortIdPayload, GaNxtAccept),
        (_C.GPN_ID, PortIdPayload, PortNamePayload),
        (_C.GNN_ID, PortIdPayload, NodeNamePayload),
        (_C.GFT_ID, PortIdPayload, Fc4TypesPayload),
        (_C.GSPN_ID, PortIdPayload, SymbolicNamePayload),
        (_C.GFF_ID, PortIdPayload, Fc4FeaturesPayload),
        (_C.GID_PN, PortNamePayload, PortIdPayload),
        (_C.GSNN_NN, NodeNamePayload, SymbolicNamePayload),
        (_C.GID_FT, Fc4TypeQuery, PortIdList),
        (_C.GPN_FT, Fc4TypeQuery, GpnFtAccept),
        (_C.GNN_FT, Fc4TypeQuery, GnnFtAccept),
        (_C.GID_PT, GidPtRequest, PortIdList),
        (_C.RNN_ID, RnnIdRequest, EmptyAccept),
        (_C.RFT_ID, RftIdRequest, EmptyAccept),
        (_C.RSPN_ID, RspnIdRequest, EmptyAccept),
        (_C.RFF_ID, RffIdRequest, EmptyAccept),
        (_C.RSNN_NN, RsnnNnRequest, EmptyAccept),
        (_C.DA_ID, PortIdPayload, EmptyAccept),
    )}

#: command code -> (request payload class, accept payload class), every command fcsoft serves
NS_COMMANDS: Mapping[int, NsCommandPayloads] = MappingProxyType(_COMMANDS)
#: command code -> request payload class
NS_REQUESTS: Mapping[int, type[NsPayload]] = MappingProxyType(
    {code: c.request for code, c in _COMMANDS.items()})
#: command code -> accept payload class (EmptyAccept for registrations and DA_ID)
NS_ACCEPTS: Mapping[int, type[NsPayload]] = MappingProxyType(
    {code: c.accept for code, c in _COMMANDS.items()})


def _decode(command_code: int, body: BytesLike, accept: bool) -> NsPayload:
    payloads = _COMMANDS.get(command_code)
    if payloads is None:
        raise UnsupportedCommand(command_code)
    try:
        return (payloads.accept if accept else payloads.request).decode(body)
    except DecodeError as exc:
        what = f"{NsCommand(command_code).name} {'accept' if accept else 'request'}"
        raise DecodeError(what, exc.detail) from None


def decode_ns_request(command_code: int, body: BytesLike) -> NsPayload:
    """Decode the payload of a name server request with `command_code`.

    Raises UnsupportedCommand (a DecodeError) for a code fcsoft does not serve, DecodeError
    naming the command for a malformed payload.
    """
    return _decode(command_code, body, False)


def decode_ns_accept(command_code: int, body: BytesLike) -> NsPayload:
    """Decode the payload of the accept (CT 0x8002) to a request with `command_code`.

    Raises UnsupportedCommand for a code fcsoft does not serve, DecodeError for a malformed
    payload.
    """
    return _decode(command_code, body, True)
