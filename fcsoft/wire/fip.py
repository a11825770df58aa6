"""FIP, the FCoE Initialization Protocol (FC-BB-6 clause 7.8; ethertype 0x8914).

A FIP PDU is a 10-byte header and a list of descriptors:

    0   version (upper 4 bits, 1) and reserved
    2   operation code (1 discovery, 2 link service, 3 control, 4 VLAN)
    4   reserved, subcode
    6   descriptor list length, in 32-bit words
    8   flags (FP, SP, A, S, F)
    10  descriptors: type (1 byte), length in words (1 byte, the type and length bytes
        included), value; then Ethernet padding, which the length excludes

Theory of operation: FIP is control plane (a handful of frames per login), so its layouts
are declared with construct, one compiled `Struct` per descriptor type in `_LAYOUTS`,
serving both directions. `decode_fip` walks the descriptor list itself, so that a
descriptor whose length overruns the list, or a known descriptor of the wrong length (which
Linux's libfcoe also refuses), is a DecodeError naming it, never a construct exception.
Callers see frozen dataclasses only.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import construct as cs

from .errors import DecodeError
from .types import BytesLike
from .wwn import WWN

FIP_VERSION = 1
FIP_HEADER_LEN = 10
#: FC-BB-6 7.8.5: default and bounds of the FCF's advertisement/keep-alive period (ms)
DEFAULT_FKA_ADV_PERIOD = 8000
#: FC-BB-6: the period at which a VN_Port sends its own keep-alive (ms)
FKA_VN_PERIOD = 90000
DEFAULT_PRIORITY = 128


class FipOp(enum.IntEnum):
    """FIP operation codes (FC-BB-6 table 45)."""

    DISCOVERY = 1
    LINK_SERVICE = 2
    CONTROL = 3
    VLAN = 4
    VN2VN = 5


class DiscoverySub(enum.IntEnum):
    SOLICITATION = 1
    ADVERTISEMENT = 2


class LinkServiceSub(enum.IntEnum):
    REQUEST = 1
    REPLY = 2


class ControlSub(enum.IntEnum):
    KEEP_ALIVE = 1
    CLEAR_VIRTUAL_LINKS = 2


class VlanSub(enum.IntEnum):
    REQUEST = 1
    NOTIFICATION = 2


class FipFlags(enum.IntFlag):
    """FIP header flags (FC-BB-6 table 46)."""

    NONE = 0
    FP = 0x8000  # fabric-provided MAC addresses supported / granted
    SP = 0x4000  # server-provided MAC addresses
    REC = 0x0008  # recorded / point-to-point (VN2VN)
    A = 0x0004  # available for login
    S = 0x0002  # solicited
    F = 0x0001  # sent by an FCF


class DescriptorType(enum.IntEnum):
    """FIP descriptor types (FC-BB-6 table 47)."""

    PRIORITY = 1
    MAC_ADDRESS = 2
    FC_MAP = 3
    NAME_IDENTIFIER = 4
    FABRIC = 5
    MAX_FCOE_SIZE = 6
    FLOGI = 7
    FDISC = 8
    LOGO = 9
    ELP = 10
    VX_PORT_ID = 11
    FKA_ADV_PERIOD = 12
    VENDOR_ID = 13
    VLAN = 14


#: descriptor types that carry an encapsulated ELS (FC header + payload, no CRC)
ENCAPSULATED_TYPES = frozenset({DescriptorType.FLOGI, DescriptorType.FDISC,
                                DescriptorType.LOGO, DescriptorType.ELP})
#: FC-BB-6 7.8.2: types 128 and above are vendor-specific and ignored when not understood
VENDOR_SPECIFIC_BASE = 128


# -- the descriptors -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Priority:
    """FCF priority for selection (lower is preferred)."""

    TYPE: ClassVar[int] = DescriptorType.PRIORITY
    priority: int


@dataclass(frozen=True, slots=True)
class MacAddress:
    TYPE: ClassVar[int] = DescriptorType.MAC_ADDRESS
    mac: bytes


@dataclass(frozen=True, slots=True)
class FcMap:
    TYPE: ClassVar[int] = DescriptorType.FC_MAP
    fc_map: int


@dataclass(frozen=True, slots=True)
class NameIdentifier:
    """The ENode's node name (in a solicitation) or the FCF's switch name."""

    TYPE: ClassVar[int] = DescriptorType.NAME_IDENTIFIER
    name: WWN


@dataclass(frozen=True, slots=True)
class Fabric:
    TYPE: ClassVar[int] = DescriptorType.FABRIC
    vf_id: int
    fc_map: int
    fabric_name: WWN


@dataclass(frozen=True, slots=True)
class MaxFcoeSize:
    """The largest FCoE PDU the ENode can receive, in bytes."""

    TYPE: ClassVar[int] = DescriptorType.MAX_FCOE_SIZE
    size: int


@dataclass(frozen=True, slots=True)
class Encapsulated:
    """An ELS carried in FIP: `kind` is FLOGI, FDISC, LOGO or ELP; `frame` is the FC
    header (24 bytes) and payload, without SOF, CRC or EOF."""

    kind: DescriptorType
    frame: bytes

    @property
    def TYPE(self) -> int:  # noqa: N802 - the same attribute the fixed descriptors have
        return int(self.kind)


@dataclass(frozen=True, slots=True)
class VxPortId:
    """One VN_Port: its MAC address, N_Port_ID and port name."""

    TYPE: ClassVar[int] = DescriptorType.VX_PORT_ID
    mac: bytes
    fcid: int
    wwpn: WWN


@dataclass(frozen=True, slots=True)
class FkaAdvPeriod:
    """The keep-alive / advertisement period in ms; `no_vn_keepalive` is the D bit (the
    FCF does not want VN_Port keep-alives)."""

    TYPE: ClassVar[int] = DescriptorType.FKA_ADV_PERIOD
    period_ms: int
    no_vn_keepalive: bool = False


@dataclass(frozen=True, slots=True)
class VendorId:
    TYPE: ClassVar[int] = DescriptorType.VENDOR_ID
    vendor: bytes
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Vlan:
    TYPE: ClassVar[int] = DescriptorType.VLAN
    vlan: int


@dataclass(frozen=True, slots=True)
class UnknownDescriptor:
    """A descriptor fcsoft does not interpret (vendor-specific, or a later standard's)."""

    type: int
    body: bytes

    @property
    def TYPE(self) -> int:  # noqa: N802
        return self.type


Descriptor = (Priority | MacAddress | FcMap | NameIdentifier | Fabric | MaxFcoeSize
              | Encapsulated | VxPortId | FkaAdvPeriod | VendorId | Vlan | UnknownDescriptor)

# -- layouts (FC-BB-6 7.8.2, figures 43-62): the body after the type and length bytes ----
_Mac = cs.Bytes(6)
_Int24 = cs.BytesInteger(3)
_LAYOUTS: dict[int, Any] = {
    DescriptorType.PRIORITY: cs.Struct(cs.Padding(1), "priority" / cs.Int8ub),
    DescriptorType.MAC_ADDRESS: cs.Struct("mac" / _Mac),
    DescriptorType.FC_MAP: cs.Struct(cs.Padding(3), "fc_map" / _Int24),
    DescriptorType.NAME_IDENTIFIER: cs.Struct(cs.Padding(2), "name" / cs.Int64ub),
    DescriptorType.FABRIC: cs.Struct("vf_id" / cs.Int16ub, cs.Padding(1), "fc_map" / _Int24,
                                     "fabric_name" / cs.Int64ub),
    DescriptorType.MAX_FCOE_SIZE: cs.Struct("size" / cs.Int16ub),
    DescriptorType.VX_PORT_ID: cs.Struct("mac" / _Mac, cs.Padding(1), "fcid" / _Int24,
                                         "wwpn" / cs.Int64ub),
    DescriptorType.FKA_ADV_PERIOD: cs.Struct(cs.Padding(1), "flags" / cs.Int8ub,
                                             "period_ms" / cs.Int32ub),
    DescriptorType.VLAN: cs.Struct("vlan" / cs.Int16ub),
}
_COMPILED = {t: s.compile() for t, s in _LAYOUTS.items()}
#: the body size in bytes of each fixed-size descriptor
_SIZES = {t: s.sizeof() for t, s in _LAYOUTS.items()}
_VENDOR = cs.Struct(cs.Padding(2), "vendor" / cs.Bytes(8), "data" / cs.GreedyBytes).compile()
_HEADER = cs.Struct("version" / cs.Int8ub, cs.Padding(1), "op" / cs.Int16ub, cs.Padding(1),
                    "subcode" / cs.Int8ub, "desc_words" / cs.Int16ub,
                    "flags" / cs.Int16ub).compile()
_DESC_HEAD = struct.Struct(">BB")
_FKA_D = 0x01


def _from_container(dtype: int, c: Any) -> Descriptor:
    """The typed descriptor for a parsed body (the one place construct containers are
    read)."""
    if dtype == DescriptorType.PRIORITY:
        return Priority(c.priority)
    if dtype == DescriptorType.MAC_ADDRESS:
        return MacAddress(bytes(c.mac))
    if dtype == DescriptorType.FC_MAP:
        return FcMap(c.fc_map)
    if dtype == DescriptorType.NAME_IDENTIFIER:
        return NameIdentifier(WWN(c.name))
    if dtype == DescriptorType.FABRIC:
        return Fabric(c.vf_id, c.fc_map, WWN(c.fabric_name))
    if dtype == DescriptorType.MAX_FCOE_SIZE:
        return MaxFcoeSize(c.size)
    if dtype == DescriptorType.VX_PORT_ID:
        return VxPortId(bytes(c.mac), c.fcid, WWN(c.wwpn))
    if dtype == DescriptorType.FKA_ADV_PERIOD:
        return FkaAdvPeriod(c.period_ms, bool(c.flags & _FKA_D))
    if dtype == DescriptorType.VLAN:
        return Vlan(c.vlan & 0x0FFF)
    raise AssertionError(dtype)  # every key of _LAYOUTS is handled above


def _to_fields(d: Descriptor) -> dict[str, Any]:
    """The construct fields for building a fixed-size descriptor's body."""
    if isinstance(d, FkaAdvPeriod):
        return {"flags": _FKA_D if d.no_vn_keepalive else 0, "period_ms": d.period_ms}
    fields: dict[str, Any] = {f: getattr(d, f) for f in d.__dataclass_fields__}
    return fields


def encode_descriptor(d: Descriptor) -> bytes:
    """One descriptor: type, length in words, body (padded to a word)."""
    if isinstance(d, Encapsulated):
        body = b"\0\0" + d.frame
    elif isinstance(d, VendorId):
        body = bytes(_VENDOR.build({"vendor": d.vendor, "data": d.data}))
    elif isinstance(d, UnknownDescriptor):
        body = d.body
    else:
        body = bytes(_COMPILED[d.TYPE].build(_to_fields(d)))
    body += bytes(-(len(body) + 2) & 3)
    words = (len(body) + 2) >> 2
    if words > 255:
        raise ValueError(f"FIP descriptor of {words} words is longer than 255")
    return _DESC_HEAD.pack(d.TYPE, words) + body


def decode_descriptor(dtype: int, body: BytesLike) -> Descriptor:
    """The typed descriptor for `body` (what follows its type and length bytes)."""
    data = bytes(body)
    if dtype in _SIZES:
        # FC-BB-6 gives each of these one length; libfcoe drops a frame that differs
        if len(data) != _SIZES[dtype]:
            raise DecodeError(f"FIP {DescriptorType(dtype).name} descriptor",
                              f"length {(len(data) + 2) // 4} words, expected "
                              f"{(_SIZES[dtype] + 2) // 4}")
        try:
            return _from_container(dtype, _COMPILED[dtype].parse(data))
        except cs.ConstructError as exc:  # pragma: no cover - sizes are checked above
            raise DecodeError(f"FIP {DescriptorType(dtype).name} descriptor", str(exc)) from None
    if dtype in ENCAPSULATED_TYPES:
        if len(data) < 2 + 24:
            raise DecodeError(f"FIP {DescriptorType(dtype).name} descriptor",
                              f"{len(data) - 2} bytes cannot hold an FC header")
        return Encapsulated(DescriptorType(dtype), data[2:])
    if dtype == DescriptorType.VENDOR_ID:
        if len(data) < 10:
            raise DecodeError("FIP VENDOR_ID descriptor", f"{len(data)} bytes, need 10")
        c = _VENDOR.parse(data)
        return VendorId(bytes(c.vendor), bytes(c.data))
    return UnknownDescriptor(dtype, data)


@dataclass(frozen=True, slots=True)
class FipFrame:
    """One FIP PDU (what follows the Ethernet header)."""

    op: int
    subcode: int
    flags: FipFlags
    descriptors: tuple[Descriptor, ...]

    def encode(self, pad_to: int = 0) -> bytes:
        """The PDU, padded with zeros to `pad_to` bytes (a solicited advertisement is padded
        to the ENode's maximum FCoE size, FC-BB-6 7.8.4) and to Ethernet's minimum."""
        descs = b"".join(encode_descriptor(d) for d in self.descriptors)
        head: bytes = _HEADER.build({"version": FIP_VERSION << 4, "op": self.op,
                              "subcode": self.subcode, "desc_words": len(descs) >> 2,
                              "flags": int(self.flags)})
        pdu = head + descs
        # 46 bytes: the smallest Ethernet payload
        return pdu + bytes(max(pad_to, 46) - len(pdu)) if len(pdu) < max(pad_to, 46) else pdu

    def find(self, kind: type[_D]) -> _D | None:
        """The first descriptor of class `kind`, if any."""
        for d in self.descriptors:
            if isinstance(d, kind):
                return d
        return None

    def all(self, kind: type[_D]) -> Iterator[_D]:
        return (d for d in self.descriptors if isinstance(d, kind))

    def describe(self) -> str:
        """A one-line summary for logs: operation, subcode and descriptor types."""
        names = ", ".join(_desc_name(d) for d in self.descriptors)
        return f"{_op_name(self.op, self.subcode)} [{names}]"


_D = TypeVar("_D")


def decode_fip(pdu: BytesLike) -> FipFrame:
    """Decode one FIP PDU. Raises DecodeError on a wrong version, a descriptor list longer
    than the frame, a descriptor of length 0 or one that overruns the list, or a known
    descriptor of the wrong length."""
    n = len(pdu)
    if n < FIP_HEADER_LEN:
        raise DecodeError("FIP header", f"{n} bytes, need {FIP_HEADER_LEN}")
    h = _HEADER.parse(bytes(pdu[:FIP_HEADER_LEN]))
    version = h.version >> 4
    if version != FIP_VERSION:
        raise DecodeError("FIP version", f"{version}, expected {FIP_VERSION}")
    end = FIP_HEADER_LEN + h.desc_words * 4
    if end > n:
        raise DecodeError("FIP descriptor list", f"{h.desc_words} words but only "
                          f"{(n - FIP_HEADER_LEN) // 4} in the frame")
    view = memoryview(pdu)
    descs: list[Descriptor] = []
    off = FIP_HEADER_LEN
    while off < end:
        if end - off < 2:
            raise DecodeError("FIP descriptor", f"truncated at byte {off}")
        dtype, words = _DESC_HEAD.unpack_from(view, off)
        size = words * 4
        if size == 0 or off + size > end:
            raise DecodeError("FIP descriptor", f"type {dtype} of {words} words at byte "
                              f"{off} does not fit the {h.desc_words}-word list")
        descs.append(decode_descriptor(dtype, view[off + 2:off + size]))
        off += size
    return FipFrame(h.op, h.subcode, FipFlags(h.flags), tuple(descs))


_OP_NAMES = {
    (1, 1): "discovery solicitation", (1, 2): "discovery advertisement",
    (2, 1): "link service request", (2, 2): "link service reply",
    (3, 1): "keep-alive", (3, 2): "clear virtual links",
    (4, 1): "VLAN request", (4, 2): "VLAN notification",
}


def _op_name(op: int, sub: int) -> str:
    return _OP_NAMES.get((op, sub), f"operation {op:#06x} subcode {sub:#04x}")


def _desc_name(d: Descriptor) -> str:
    try:
        return DescriptorType(d.TYPE).name
    except ValueError:
        return f"type {d.TYPE}"
