"""Directory name server payloads (FC-GS-8 clause 5.2, the Name Server): the part of a CT_IU
after its 16-byte preamble, for every request fcsoft serves at FFFFFC and its accept.

The CT_IU preamble, the command-code enum and the CT reject codes live in `ct.py`; this module
refers to commands by their integer codes only (FC-GS-8 5.2, name server command codes, as
listed in Wireshark packet-fcdns.h and Linux fc_ns.h `enum fc_ns_req`).

Payload layouts (byte offsets; "rsvd" is sent as zero and ignored on receipt). Sources: FC-GS-8
5.2; the same layouts as C structs in Linux include/uapi/scsi/fc/fc_ns.h (fc_ns_rn_id,
fc_ns_rsnn, fc_ns_rspn, fc_ns_rft_id, fc_ns_rff_id, fc_ns_gid_ft, fc_ns_gid_pt, fc_gpn_ft_resp,
fc_ns_gid_pn, fc_gid_pn_resp, fc_gspn_resp), qla2xxx qla_def.h (ct_sns_req / ct_sns_rsp),
fcoe-utils fcnsq and Wireshark packet-fcdns.c:

    RNN_ID   req  rsvd, port ID(3), node name(8)
    RSNN_NN  req  node name(8), len, symbolic node name(len)
    RSPN_ID  req  rsvd, port ID(3), len, symbolic port name(len)
    RFT_ID   req  rsvd, port ID(3), FC-4 TYPEs(32)
    RFF_ID   req  rsvd, port ID(3), rsvd(2), FC-4 features, FC-4 type
    DA_ID    req  rsvd, port ID(3)                  (registration accepts carry no payload)
    GA_NXT / GPN_ID / GNN_ID / GFT_ID / GSPN_ID / GFF_ID   req  rsvd, port ID(3)
    GA_NXT   acc  the 620-byte port object (see GaNxtAccept)
    GPN_ID   acc  port name(8)             GNN_ID  acc  node name(8)
    GFT_ID   acc  FC-4 TYPEs(32)           GFF_ID  acc  FC-4 Features(128)
    GSPN_ID  acc  len, symbolic port name  GSNN_NN req node name(8), acc len, symbolic node name
    GID_PN   req  port name(8)             acc  rsvd, port ID(3)
    GID_FT / GPN_FT / GNN_FT  req  flags, domain ID scope, area ID scope, FC-4 type
    GID_PT   req  port type, domain ID scope, area ID scope, rsvd
    GID_FT / GID_PT  acc  entries [control, port ID(3)]
    GPN_FT / GNN_FT  acc  entries [control, port ID(3), rsvd(4), port / node name(8)]

Theory of operation:
- Each payload is a frozen dataclass with `encode()` and a classmethod `decode(body)`.
  Constructing one with out-of-range values raises ValueError (a local bug); decoding
  malformed bytes raises DecodeError naming the payload and what was wrong (the peer's
  fault), never struct.error or IndexError.
- Decoders read their structure from the start of `body` and ignore any bytes after it.
  Real initiators send fixed-size buffers: lpfc sends RSPN_ID and RSNN_NN with the whole
  255-byte name area (RSPN_REQUEST_SZ / RSNN_REQUEST_SZ) whatever the name length, and a CT
  payload may carry padding. Truncation is always an error.
- List accepts end at the entry whose control byte has bit 0x80 (Linux FC_NS_FID_LAST);
  anything after it is ignored, and a list that runs out without it is a DecodeError. A
  list accept cannot be empty: a query that matches nothing is answered with a CT reject,
  not an empty accept (docs/behaviour.md 2), so constructing an empty one is a ValueError.
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from types import MappingProxyType
from typing import ClassVar, NamedTuple, Protocol, Self

from .errors import DecodeError
from .header import FcType
from .types import BytesLike
from .wwn import WWN

__all__ = [
    "LAST_ENTRY", "MAX_SYMBOLIC_NAME", "FC4_TYPES_LEN", "FC4_FEATURES_LEN", "GA_NXT_ACCEPT_LEN",
    "UnsupportedCommand", "PortType", "FcpFeatures", "ClassOfService", "Fc4Types", "Fc4Features",
    "symbolic_name_text", "NsPayload",
    "RnnIdRequest", "RsnnNnRequest", "RspnIdRequest", "RftIdRequest", "RffIdRequest",
    "DaIdRequest", "EmptyAccept",
    "GaNxtRequest", "GaNxtAccept", "GpnIdRequest", "GpnIdAccept", "GnnIdRequest", "GnnIdAccept",
    "GftIdRequest", "GftIdAccept", "GspnIdRequest", "GspnIdAccept", "GffIdRequest",
    "GffIdAccept", "GidPnRequest", "GidPnAccept", "GsnnNnRequest", "GsnnNnAccept",
    "GidFtRequest", "GidFtAccept", "GpnFtRequest", "GpnFtEntry", "GpnFtAccept", "GnnFtRequest",
    "GnnFtEntry", "GnnFtAccept", "GidPtRequest", "GidPtAccept",
    "NS_REQUESTS", "NS_ACCEPTS", "decode_ns_request", "decode_ns_accept",
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


def _check_bytes(what: str, value: BytesLike, size: int | None = None,
                 limit: int = MAX_SYMBOLIC_NAME) -> bytes:
    # bytes(n) of an int would silently make n zero bytes: insist on a real buffer
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    data = bytes(value)
    if size is not None and len(data) != size:
        raise ValueError(f"{what} must be {size} bytes, not {len(data)}")
    if size is None and len(data) > limit:
        raise ValueError(f"{what} is {len(data)} bytes, at most {limit} fit")
    return data


def _wwn(value: int | str | BytesLike) -> WWN:
    return value if isinstance(value, WWN) else WWN(value)


def _port_type(value: int) -> int:
    try:
        return PortType(value)
    except ValueError:
        return value  # kept as read: the fabric answers an unknown type with a reject


def _need(what: str, body: BytesLike, size: int) -> None:
    if len(body) < size:
        raise DecodeError(what, f"need {size} bytes, have {len(body)}")


def _pid(body: BytesLike, offset: int) -> int:
    return int.from_bytes(body[offset:offset + 3], "big")


def _name_at(what: str, body: BytesLike, offset: int) -> bytes:
    """The [len, name] symbolic name at `offset`."""
    _need(what, body, offset + 1)
    end = offset + 1 + body[offset]
    if len(body) < end:
        raise DecodeError(what, f"symbolic name length {body[offset]} needs {end} bytes, "
                                f"have {len(body)}")
    return bytes(body[offset + 1:end])


def _encode_name(name: bytes) -> bytes:
    return bytes((len(name),)) + name


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

_TYPE_WORDS = struct.Struct(">8I")
_FEATURE_WORDS = struct.Struct(">32I")


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
        return cls(i * 32 + bit for i, w in enumerate(ws) for bit in range(32) if w >> bit & 1)

    def encode(self) -> bytes:
        """The 32-byte object."""
        return _TYPE_WORDS.pack(*self.words)

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """The object in the first 32 bytes of `body`."""
        _need("FC-4 TYPEs", body, FC4_TYPES_LEN)
        return cls.from_words(_TYPE_WORDS.unpack_from(body))

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
        words = [0] * 32
        for t, f in self._by_type.items():
            words[t // 8] |= f << (4 * (t % 8))
        return _FEATURE_WORDS.pack(*words)

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """The object in the first 128 bytes of `body`."""
        _need("FC-4 Features", body, FC4_FEATURES_LEN)
        words = _FEATURE_WORDS.unpack_from(body)
        return cls((i * 8 + n, w >> (4 * n) & 0xF) for i, w in enumerate(words) for n in range(8))

    def __repr__(self) -> str:
        inner = ", ".join(f"{t:#04x}: {f:#x}" for t, f in sorted(self._by_type.items()))
        return f"Fc4Features({{{inner}}})"


# ---------------------------------------------------------------------------------------------
# shared shapes


@dataclass(frozen=True)
class _PortIdPayload:
    """[rsvd, port ID(3)]."""

    port_id: int
    _what: ClassVar[str] = "port ID payload"

    def __post_init__(self) -> None:
        _check_range(f"{self._what} port_id", self.port_id, _PORT_ID_MAX)

    def encode(self) -> bytes:
        """The 4-byte payload (reserved byte zero)."""
        return self.port_id.to_bytes(4, "big")

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 4 bytes of `body`."""
        _need(cls._what, body, 4)
        return cls(_pid(body, 1))


@dataclass(frozen=True)
class _PortNamePayload:
    """[port name(8)]."""

    port_name: WWN
    _what: ClassVar[str] = "port name payload"

    def __post_init__(self) -> None:
        object.__setattr__(self, "port_name", _wwn(self.port_name))

    def encode(self) -> bytes:
        """The 8-byte name."""
        return self.port_name.to_bytes8()

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 8 bytes of `body`."""
        _need(cls._what, body, 8)
        return cls(WWN.from_bytes8(body))


@dataclass(frozen=True)
class _NodeNamePayload:
    """[node name(8)]."""

    node_name: WWN
    _what: ClassVar[str] = "node name payload"

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_name", _wwn(self.node_name))

    def encode(self) -> bytes:
        """The 8-byte name."""
        return self.node_name.to_bytes8()

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 8 bytes of `body`."""
        _need(cls._what, body, 8)
        return cls(WWN.from_bytes8(body))


@dataclass(frozen=True)
class _SymbolicNamePayload:
    """[len, symbolic name(len)]."""

    symbolic_name: bytes
    _what: ClassVar[str] = "symbolic name payload"

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbolic_name",
                           _check_bytes(f"{self._what} symbolic_name", self.symbolic_name))

    @property
    def symbolic_name_text(self) -> str:
        """The name as text (see symbolic_name_text())."""
        return symbolic_name_text(self.symbolic_name)

    def encode(self) -> bytes:
        """Length byte and name."""
        return _encode_name(self.symbolic_name)

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the length byte and name at the start of `body`."""
        return cls(_name_at(cls._what, body, 0))


@dataclass(frozen=True)
class _FtRequest:
    """[flags, domain ID scope, area ID scope, FC-4 type] (Linux fc_ns.h fc_ns_gid_ft).

    Domain ID scope 0 means the whole fabric; a non-zero area ID scope narrows a domain.
    Byte 0 is reserved in FC-GS-2 (Linux fn_resvd); some implementations put flags there,
    so it is kept as read and round-trips.
    """

    fc4_type: int
    domain_id_scope: int = 0
    area_id_scope: int = 0
    flags: int = 0
    _what: ClassVar[str] = "FC-4 type query"

    def __post_init__(self) -> None:
        for name in ("fc4_type", "domain_id_scope", "area_id_scope", "flags"):
            _check_range(f"{self._what} {name}", getattr(self, name), 0xFF)

    def encode(self) -> bytes:
        """The 4-byte payload."""
        return bytes((self.flags, self.domain_id_scope, self.area_id_scope, self.fc4_type))

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 4 bytes of `body`."""
        _need(cls._what, body, 4)
        return cls(body[3], body[1], body[2], body[0])


def _entry_offsets(what: str, body: BytesLike, size: int) -> Iterator[int]:
    """Offsets of list entries of `size` bytes, up to the one marked LAST_ENTRY."""
    off = 0
    while True:
        if off + size > len(body):
            if off == len(body):
                raise DecodeError(what, f"list ends after {off // size} entries, none marked "
                                        "last (control bit 0x80)")
            raise DecodeError(what, f"entry {off // size} truncated: need {off + size} bytes, "
                                    f"have {len(body)}")
        yield off
        if body[off] & LAST_ENTRY:
            return
        off += size


def _check_nonempty(what: str, entries: tuple[object, ...]) -> None:
    if not entries:
        raise ValueError(f"{what} needs at least one entry: a query that matches nothing is "
                         "answered with a CT reject, not an empty accept")


def _control(i: int, count: int) -> int:
    return LAST_ENTRY if i == count - 1 else 0


@dataclass(frozen=True)
class _PortIdListAccept:
    """Entries [control, port ID(3)], control bit 0x80 on the last (GID_FT / GID_PT accept)."""

    port_ids: tuple[int, ...]
    _what: ClassVar[str] = "port ID list"

    def __post_init__(self) -> None:
        ids = tuple(self.port_ids)
        _check_nonempty(self._what, ids)
        for pid in ids:
            _check_range(f"{self._what} port ID", pid, _PORT_ID_MAX)
        object.__setattr__(self, "port_ids", ids)

    def encode(self) -> bytes:
        """4 bytes per port ID, the last marked."""
        n = len(self.port_ids)
        return b"".join((_control(i, n) << 24 | pid).to_bytes(4, "big")
                        for i, pid in enumerate(self.port_ids))

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """The entries up to the one marked last; bytes after it are ignored."""
        return cls(tuple(_pid(body, off + 1) for off in _entry_offsets(cls._what, body, 4)))


_NAME_ENTRY = struct.Struct(">I4x8s")  # control|port ID, rsvd(4), name(8)


def _encode_name_list(entries: tuple[tuple[int, WWN], ...]) -> bytes:
    n = len(entries)
    return b"".join(_NAME_ENTRY.pack(_control(i, n) << 24 | pid, name.to_bytes8())
                    for i, (pid, name) in enumerate(entries))


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


def _decode_name_list(what: str, body: BytesLike) -> Iterator[tuple[int, WWN]]:
    for off in _entry_offsets(what, body, 16):
        yield _pid(body, off + 1), WWN.from_bytes8(body, off + 8)


def _check_name_entries(what: str, entries: tuple[tuple[int, WWN], ...]) -> None:
    _check_nonempty(what, entries)
    for pid, _name in entries:
        _check_range(f"{what} port ID", pid, _PORT_ID_MAX)


# ---------------------------------------------------------------------------------------------
# registrations (requests; their accepts carry no payload)


@dataclass(frozen=True)
class RnnIdRequest:
    """RNN_ID (0x0213): register the node name of `port_id`."""

    port_id: int
    node_name: WWN
    _what: ClassVar[str] = "RNN_ID request"

    def __post_init__(self) -> None:
        _check_range(f"{self._what} port_id", self.port_id, _PORT_ID_MAX)
        object.__setattr__(self, "node_name", _wwn(self.node_name))

    def encode(self) -> bytes:
        """rsvd, port ID(3), node name(8)."""
        return self.port_id.to_bytes(4, "big") + self.node_name.to_bytes8()

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 12 bytes of `body`."""
        _need(cls._what, body, 12)
        return cls(_pid(body, 1), WWN.from_bytes8(body, 4))


@dataclass(frozen=True)
class RsnnNnRequest:
    """RSNN_NN (0x0239): register the symbolic name (bytes, up to 255) of a node."""

    node_name: WWN
    symbolic_name: bytes
    _what: ClassVar[str] = "RSNN_NN request"

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_name", _wwn(self.node_name))
        object.__setattr__(self, "symbolic_name",
                           _check_bytes(f"{self._what} symbolic_name", self.symbolic_name))

    @property
    def symbolic_name_text(self) -> str:
        """The name as text (see symbolic_name_text())."""
        return symbolic_name_text(self.symbolic_name)

    def encode(self) -> bytes:
        """node name(8), len, name."""
        return self.node_name.to_bytes8() + _encode_name(self.symbolic_name)

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode from the start of `body` (a padded name area after the name is ignored)."""
        _need(cls._what, body, 9)
        return cls(WWN.from_bytes8(body), _name_at(cls._what, body, 8))


@dataclass(frozen=True)
class RspnIdRequest:
    """RSPN_ID (0x0218): register the symbolic name (bytes, up to 255) of `port_id`."""

    port_id: int
    symbolic_name: bytes
    _what: ClassVar[str] = "RSPN_ID request"

    def __post_init__(self) -> None:
        _check_range(f"{self._what} port_id", self.port_id, _PORT_ID_MAX)
        object.__setattr__(self, "symbolic_name",
                           _check_bytes(f"{self._what} symbolic_name", self.symbolic_name))

    @property
    def symbolic_name_text(self) -> str:
        """The name as text (see symbolic_name_text())."""
        return symbolic_name_text(self.symbolic_name)

    def encode(self) -> bytes:
        """rsvd, port ID(3), len, name."""
        return self.port_id.to_bytes(4, "big") + _encode_name(self.symbolic_name)

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode from the start of `body` (a padded name area after the name is ignored)."""
        _need(cls._what, body, 5)
        return cls(_pid(body, 1), _name_at(cls._what, body, 4))


@dataclass(frozen=True)
class RftIdRequest:
    """RFT_ID (0x0217): register the FC-4 TYPEs of `port_id`."""

    port_id: int
    fc4_types: Fc4Types
    _what: ClassVar[str] = "RFT_ID request"

    def __post_init__(self) -> None:
        _check_range(f"{self._what} port_id", self.port_id, _PORT_ID_MAX)
        if not isinstance(self.fc4_types, Fc4Types):
            object.__setattr__(self, "fc4_types", Fc4Types(self.fc4_types))

    def encode(self) -> bytes:
        """rsvd, port ID(3), FC-4 TYPEs(32)."""
        return self.port_id.to_bytes(4, "big") + self.fc4_types.encode()

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 36 bytes of `body`."""
        _need(cls._what, body, 4 + FC4_TYPES_LEN)
        return cls(_pid(body, 1), Fc4Types.decode(body[4:]))


@dataclass(frozen=True)
class RffIdRequest:
    """RFF_ID (0x021F): register the FC-4 features of `port_id` for one FC-4 TYPE.

    `features` is the whole byte as sent (the FC-4 Features object keeps its low 4 bits);
    for FCP it decodes as FcpFeatures.
    """

    port_id: int
    fc4_type: int
    features: int
    _what: ClassVar[str] = "RFF_ID request"

    def __post_init__(self) -> None:
        _check_range(f"{self._what} port_id", self.port_id, _PORT_ID_MAX)
        _check_range(f"{self._what} fc4_type", self.fc4_type, 0xFF)
        _check_range(f"{self._what} features", self.features, 0xFF)

    def encode(self) -> bytes:
        """rsvd, port ID(3), rsvd(2), features, FC-4 type."""
        return self.port_id.to_bytes(4, "big") + bytes((0, 0, self.features, self.fc4_type))

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 8 bytes of `body`."""
        _need(cls._what, body, 8)
        fc4_type, features = body[7], body[6]
        return cls(_pid(body, 1), fc4_type,
                   FcpFeatures(features) if fc4_type == FcType.FCP else features)


@dataclass(frozen=True)
class DaIdRequest(_PortIdPayload):
    """DA_ID (0x0300): deregister every object of `port_id`."""

    _what: ClassVar[str] = "DA_ID request"


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
# queries by port ID


@dataclass(frozen=True)
class GaNxtRequest(_PortIdPayload):
    """GA_NXT (0x0100): all attributes of the registered port after `port_id`."""

    _what: ClassVar[str] = "GA_NXT request"


_GA_NXT = struct.Struct(">I8s256s8s256s8s16sI32s16s8sI")


@dataclass(frozen=True)
class GaNxtAccept:
    """GA_NXT accept: the whole port object, 620 bytes. Layout (qla2xxx qla_def.h
    ct_sns_rsp.ga_nxt, GA_NXT_RSP_SIZE 16 + 620; the same offsets in Wireshark
    packet-fcdns.c dissect_fcdns_ganxt):

          0  port type              1     268  node name               8
          1  port ID                3     276  symbolic node name    256 (len + 255)
          4  port name              8     532  initial process assoc.  8
         12  symbolic port name   256     540  IP address (node)      16
             (len + 255, zero pad)        556  class of service        4
                                          560  FC-4 TYPEs             32
                                          592  IP address (port)      16
                                          608  fabric port name        8
                                          616  rsvd 1, hard address    3

    IP addresses and the initial process associator are kept as the raw bytes.
    """

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
    _what: ClassVar[str] = "GA_NXT accept"

    def __post_init__(self) -> None:
        w = self._what
        _check_range(f"{w} port_type", self.port_type, 0xFF)
        _check_range(f"{w} port_id", self.port_id, _PORT_ID_MAX)
        _check_range(f"{w} class_of_service", self.class_of_service, 0xFFFF_FFFF)
        _check_range(f"{w} hard_address", self.hard_address, _PORT_ID_MAX)
        set_ = object.__setattr__
        for name in ("port_name", "node_name", "fabric_port_name"):
            set_(self, name, _wwn(getattr(self, name)))
        for name in ("symbolic_port_name", "symbolic_node_name"):
            set_(self, name, _check_bytes(f"{w} {name}", getattr(self, name)))
        set_(self, "initial_process_associator",
             _check_bytes(f"{w} initial_process_associator", self.initial_process_associator, 8))
        for name in ("node_ip_address", "port_ip_address"):
            set_(self, name, _check_bytes(f"{w} {name}", getattr(self, name), 16))
        if not isinstance(self.fc4_types, Fc4Types):
            set_(self, "fc4_types", Fc4Types(self.fc4_types))

    @property
    def symbolic_port_name_text(self) -> str:
        """The symbolic port name as text (see symbolic_name_text())."""
        return symbolic_name_text(self.symbolic_port_name)

    @property
    def symbolic_node_name_text(self) -> str:
        """The symbolic node name as text (see symbolic_name_text())."""
        return symbolic_name_text(self.symbolic_node_name)

    def encode(self) -> bytes:
        """The 620-byte object."""
        # struct's "256s" pads each [len, name] with zeros to its fixed 256-byte field
        return _GA_NXT.pack(
            self.port_type << 24 | self.port_id, self.port_name.to_bytes8(),
            _encode_name(self.symbolic_port_name), self.node_name.to_bytes8(),
            _encode_name(self.symbolic_node_name), self.initial_process_associator,
            self.node_ip_address, self.class_of_service, self.fc4_types.encode(),
            self.port_ip_address, self.fabric_port_name.to_bytes8(), self.hard_address,
        )

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 620 bytes of `body`; name padding and reserved bits are ignored."""
        _need(cls._what, body, GA_NXT_ACCEPT_LEN)
        (w0, pn, spn, nn, snn, ipa, ip_node, cos, fts, ip_port, fpn,
         hard) = _GA_NXT.unpack_from(body)
        return cls(
            port_type=_port_type(w0 >> 24), port_id=w0 & _PORT_ID_MAX,
            port_name=WWN.from_bytes8(pn), symbolic_port_name=spn[1:1 + spn[0]],
            node_name=WWN.from_bytes8(nn), symbolic_node_name=snn[1:1 + snn[0]],
            initial_process_associator=ipa, node_ip_address=ip_node,
            class_of_service=ClassOfService(cos), fc4_types=Fc4Types.decode(fts),
            port_ip_address=ip_port, fabric_port_name=WWN.from_bytes8(fpn),
            hard_address=hard & _PORT_ID_MAX,
        )


@dataclass(frozen=True)
class GpnIdRequest(_PortIdPayload):
    """GPN_ID (0x0112): the port name of `port_id`."""

    _what: ClassVar[str] = "GPN_ID request"


@dataclass(frozen=True)
class GpnIdAccept(_PortNamePayload):
    """GPN_ID accept: port name(8)."""

    _what: ClassVar[str] = "GPN_ID accept"


@dataclass(frozen=True)
class GnnIdRequest(_PortIdPayload):
    """GNN_ID (0x0113): the node name of `port_id`."""

    _what: ClassVar[str] = "GNN_ID request"


@dataclass(frozen=True)
class GnnIdAccept(_NodeNamePayload):
    """GNN_ID accept: node name(8)."""

    _what: ClassVar[str] = "GNN_ID accept"


@dataclass(frozen=True)
class GftIdRequest(_PortIdPayload):
    """GFT_ID (0x0117): the FC-4 TYPEs of `port_id`."""

    _what: ClassVar[str] = "GFT_ID request"


@dataclass(frozen=True)
class GftIdAccept:
    """GFT_ID accept: FC-4 TYPEs(32)."""

    fc4_types: Fc4Types
    _what: ClassVar[str] = "GFT_ID accept"

    def __post_init__(self) -> None:
        if not isinstance(self.fc4_types, Fc4Types):
            object.__setattr__(self, "fc4_types", Fc4Types(self.fc4_types))

    def encode(self) -> bytes:
        """The 32-byte object."""
        return self.fc4_types.encode()

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 32 bytes of `body`."""
        _need(cls._what, body, FC4_TYPES_LEN)
        return cls(Fc4Types.decode(body))


@dataclass(frozen=True)
class GspnIdRequest(_PortIdPayload):
    """GSPN_ID (0x0118): the symbolic port name of `port_id`."""

    _what: ClassVar[str] = "GSPN_ID request"


@dataclass(frozen=True)
class GspnIdAccept(_SymbolicNamePayload):
    """GSPN_ID accept: len, symbolic port name."""

    _what: ClassVar[str] = "GSPN_ID accept"


@dataclass(frozen=True)
class GffIdRequest(_PortIdPayload):
    """GFF_ID (0x011F): the FC-4 features of `port_id`."""

    _what: ClassVar[str] = "GFF_ID request"


@dataclass(frozen=True)
class GffIdAccept:
    """GFF_ID accept: the 128-byte FC-4 Features object (see Fc4Features for the nibbles)."""

    features: Fc4Features
    _what: ClassVar[str] = "GFF_ID accept"

    def __post_init__(self) -> None:
        if not isinstance(self.features, Fc4Features):
            object.__setattr__(self, "features", Fc4Features(self.features))

    def features_for(self, fc4_type: int) -> int:
        """The 4-bit features of `fc4_type` (0 when none)."""
        return self.features.features_for(fc4_type)

    def encode(self) -> bytes:
        """The 128-byte object."""
        return self.features.encode()

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 128 bytes of `body`."""
        _need(cls._what, body, FC4_FEATURES_LEN)
        return cls(Fc4Features.decode(body))


# ---------------------------------------------------------------------------------------------
# queries by name


@dataclass(frozen=True)
class GidPnRequest(_PortNamePayload):
    """GID_PN (0x0121): the port ID of the port named `port_name`."""

    _what: ClassVar[str] = "GID_PN request"


@dataclass(frozen=True)
class GidPnAccept(_PortIdPayload):
    """GID_PN accept: rsvd, port ID(3)."""

    _what: ClassVar[str] = "GID_PN accept"


@dataclass(frozen=True)
class GsnnNnRequest(_NodeNamePayload):
    """GSNN_NN (0x0139): the symbolic node name of the node named `node_name`."""

    _what: ClassVar[str] = "GSNN_NN request"


@dataclass(frozen=True)
class GsnnNnAccept(_SymbolicNamePayload):
    """GSNN_NN accept: len, symbolic node name."""

    _what: ClassVar[str] = "GSNN_NN accept"


# ---------------------------------------------------------------------------------------------
# queries by FC-4 TYPE and by port type


@dataclass(frozen=True)
class GidFtRequest(_FtRequest):
    """GID_FT (0x0171): the port IDs registered for `fc4_type` within the scope."""

    _what: ClassVar[str] = "GID_FT request"


@dataclass(frozen=True)
class GidFtAccept(_PortIdListAccept):
    """GID_FT accept: [control, port ID(3)] per port, bit 0x80 on the last."""

    _what: ClassVar[str] = "GID_FT accept"


@dataclass(frozen=True)
class GpnFtRequest(_FtRequest):
    """GPN_FT (0x0172): port IDs and port names registered for `fc4_type`."""

    _what: ClassVar[str] = "GPN_FT request"


class GpnFtEntry(NamedTuple):
    """One GPN_FT accept entry."""

    port_id: int
    port_name: WWN


@dataclass(frozen=True)
class GpnFtAccept:
    """GPN_FT accept: 16-byte entries [control, port ID(3), rsvd(4), port name(8)], bit 0x80
    on the last (Linux fc_gpn_ft_resp, qla2xxx ct_sns_gpn_ft_data: the name is at entry
    offset 8; the Wireshark version read for this shows it at offset 4, which the drivers
    that talk to real switches contradict)."""

    entries: tuple[GpnFtEntry, ...]
    _what: ClassVar[str] = "GPN_FT accept"

    def __post_init__(self) -> None:
        entries = tuple(GpnFtEntry(pid, _wwn(name)) for pid, name in self.entries)
        _check_name_entries(self._what, entries)
        object.__setattr__(self, "entries", entries)

    def encode(self) -> bytes:
        """16 bytes per entry, the last marked."""
        return _encode_name_list(self.entries)

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """The entries up to the one marked last; bytes after it are ignored."""
        return cls(tuple(GpnFtEntry(*e) for e in _decode_name_list(cls._what, body)))


@dataclass(frozen=True)
class GnnFtRequest(_FtRequest):
    """GNN_FT (0x0173): port IDs and node names registered for `fc4_type`."""

    _what: ClassVar[str] = "GNN_FT request"


class GnnFtEntry(NamedTuple):
    """One GNN_FT accept entry."""

    port_id: int
    node_name: WWN


@dataclass(frozen=True)
class GnnFtAccept:
    """GNN_FT accept: 16-byte entries [control, port ID(3), rsvd(4), node name(8)], bit 0x80
    on the last (same shape as GPN_FT; qla2xxx reads both with one struct)."""

    entries: tuple[GnnFtEntry, ...]
    _what: ClassVar[str] = "GNN_FT accept"

    def __post_init__(self) -> None:
        entries = tuple(GnnFtEntry(pid, _wwn(name)) for pid, name in self.entries)
        _check_name_entries(self._what, entries)
        object.__setattr__(self, "entries", entries)

    def encode(self) -> bytes:
        """16 bytes per entry, the last marked."""
        return _encode_name_list(self.entries)

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """The entries up to the one marked last; bytes after it are ignored."""
        return cls(tuple(GnnFtEntry(*e) for e in _decode_name_list(cls._what, body)))


@dataclass(frozen=True)
class GidPtRequest:
    """GID_PT (0x01A1): the port IDs of ports of `port_type` within the scope
    (Linux fc_ns.h fc_ns_gid_pt: port type, domain ID scope, area ID scope, rsvd)."""

    port_type: int
    domain_id_scope: int = 0
    area_id_scope: int = 0
    _what: ClassVar[str] = "GID_PT request"

    def __post_init__(self) -> None:
        for name in ("port_type", "domain_id_scope", "area_id_scope"):
            _check_range(f"{self._what} {name}", getattr(self, name), 0xFF)

    def encode(self) -> bytes:
        """The 4-byte payload."""
        return bytes((self.port_type, self.domain_id_scope, self.area_id_scope, 0))

    @classmethod
    def decode(cls, body: BytesLike) -> Self:
        """Decode the first 4 bytes of `body`."""
        _need(cls._what, body, 4)
        return cls(_port_type(body[0]), body[1], body[2])


@dataclass(frozen=True)
class GidPtAccept(_PortIdListAccept):
    """GID_PT accept: [control, port ID(3)] per port, bit 0x80 on the last."""

    _what: ClassVar[str] = "GID_PT accept"


# ---------------------------------------------------------------------------------------------
# dispatch by command code

_REQUESTS: dict[int, type[NsPayload]] = {
    0x0100: GaNxtRequest,  # GA_NXT
    0x0112: GpnIdRequest,  # GPN_ID
    0x0113: GnnIdRequest,  # GNN_ID
    0x0117: GftIdRequest,  # GFT_ID
    0x0118: GspnIdRequest,  # GSPN_ID
    0x011F: GffIdRequest,  # GFF_ID
    0x0121: GidPnRequest,  # GID_PN
    0x0139: GsnnNnRequest,  # GSNN_NN
    0x0171: GidFtRequest,  # GID_FT
    0x0172: GpnFtRequest,  # GPN_FT
    0x0173: GnnFtRequest,  # GNN_FT
    0x01A1: GidPtRequest,  # GID_PT
    0x0213: RnnIdRequest,  # RNN_ID
    0x0217: RftIdRequest,  # RFT_ID
    0x0218: RspnIdRequest,  # RSPN_ID
    0x021F: RffIdRequest,  # RFF_ID
    0x0239: RsnnNnRequest,  # RSNN_NN
    0x0300: DaIdRequest,  # DA_ID
}

_ACCEPTS: dict[int, type[NsPayload]] = {
    0x0100: GaNxtAccept,
    0x0112: GpnIdAccept,
    0x0113: GnnIdAccept,
    0x0117: GftIdAccept,
    0x0118: GspnIdAccept,
    0x011F: GffIdAccept,
    0x0121: GidPnAccept,
    0x0139: GsnnNnAccept,
    0x0171: GidFtAccept,
    0x0172: GpnFtAccept,
    0x0173: GnnFtAccept,
    0x01A1: GidPtAccept,
    # registrations and DA_ID are accepted with no payload
    **dict.fromkeys((0x0213, 0x0217, 0x0218, 0x021F, 0x0239, 0x0300), EmptyAccept),
}

#: command code -> request payload class, for every command fcsoft serves
NS_REQUESTS: Mapping[int, type[NsPayload]] = MappingProxyType(_REQUESTS)
#: command code -> accept payload class (EmptyAccept for registrations and DA_ID)
NS_ACCEPTS: Mapping[int, type[NsPayload]] = MappingProxyType(_ACCEPTS)


def decode_ns_request(command_code: int, body: BytesLike) -> NsPayload:
    """Decode the payload of a name server request with `command_code`.

    Raises UnsupportedCommand (a DecodeError) for a code fcsoft does not serve, DecodeError
    for a malformed payload.
    """
    cls = _REQUESTS.get(command_code)
    if cls is None:
        raise UnsupportedCommand(command_code)
    return cls.decode(body)


def decode_ns_accept(command_code: int, body: BytesLike) -> NsPayload:
    """Decode the payload of the accept (CT 0x8002) to a request with `command_code`.

    Raises UnsupportedCommand for a code fcsoft does not serve, DecodeError for a malformed
    payload.
    """
    cls = _ACCEPTS.get(command_code)
    if cls is None:
        raise UnsupportedCommand(command_code)
    return cls.decode(body)
