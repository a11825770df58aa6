"""FC-GS-8 Common Transport: the CT_IU preamble (FC-GS-8 clause 4.3) and the codes it carries.

Every Generic Service request and response (name server, management server, fabric
controller) is one CT_IU: a 16-byte basic preamble (`PREAMBLE`, a construct layout), then the
command's payload. Linux include/uapi/scsi/fc/fc_gs.h struct fc_ct_hdr and Wireshark
packet-fcct.h agree on the layout; byte 12 is "reserved" in both, FC-GS-8 uses it for the
fragment ID.

Requests carry a command code below 8000h; a response carries ACCEPT (8002h) or REJECT
(8001h), and a reject carries the reason code, explanation and vendor byte, with no payload.

Maximum/residual size: FC-GS-8 counts it in 4-byte words, not counting the preamble, with 0
meaning "no limit" in a request and "nothing left out" in a response. Not everybody agrees:
the Linux efct driver (libefc efc_cmds.c) fills words, fcoe-utils' fcnsq fills a byte
count, fcping a byte count in host byte order, libfc leaves 0. fcsoft writes words, and on
receipt reads the field as words, the more generous of the two readings, so that a
byte-count sender gets at least what it asked for; see `ct_max_response_bytes`.

The options byte is kept but not acted on: its X bit (80h) announces an extended preamble
(FC-GS-8 4.3.3, authentication), which fcsoft does not implement; such a preamble stays at
the front of `CtIu.body` for the service to reject.

This is control-plane code: frozen dataclasses and construct are fine here (see fcp.py for
the hot path).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum

from construct import Int8ub, Int16ub, Int24ub, Padding, Struct

from .errors import DecodeError
from .layout import Layout, Payload
from .types import BytesLike

CT_REVISION = 0x01
CT_PREAMBLE_LEN = 16
OPTIONS_EXTENDED_PREAMBLE = 0x80  # X bit: an extended CT_IU preamble follows (unsupported)

#: the basic CT_IU preamble, FC-GS-8 4.3.2 (fc_gs.h struct fc_ct_hdr)
PREAMBLE = Layout("CT_IU preamble", Struct(
    "revision" / Int8ub,  # 0: 01h
    "in_id" / Int24ub,  # 1: IN_ID
    "gs_type" / Int8ub,  # 4
    "gs_subtype" / Int8ub,  # 5
    "options" / Int8ub,  # 6
    Padding(1),  # 7: reserved
    "command" / Int16ub,  # 8: command/response code
    "max_residual_size" / Int16ub,  # 10: maximum/residual size, in words
    "fragment_id" / Int8ub,  # 12
    "reason" / Int8ub,  # 13: reason code
    "explanation" / Int8ub,  # 14: reason code explanation
    "vendor" / Int8ub,  # 15: vendor unique
))


class GsType(IntEnum):
    """GS_Type (FC-GS-8 4.3.2.3): which Generic Service the CT_IU is for."""

    KEY_DISTRIBUTION = 0xF7
    ALIAS = 0xF8
    MANAGEMENT = 0xFA
    TIME = 0xFB
    DIRECTORY = 0xFC
    FABRIC_CONTROLLER = 0xFD


class DirectorySubtype(IntEnum):
    """GS_Subtype of GsType.DIRECTORY (FC-GS-8 4.3.2.4)."""

    NAME_SERVER = 0x02
    IP_ADDRESS = 0x03


class ManagementSubtype(IntEnum):
    """GS_Subtype of GsType.MANAGEMENT (FC-GS-8 4.3.2.4)."""

    FABRIC_CONFIGURATION = 0x01
    ZONE_SERVER = 0x03
    FDMI = 0x10


class GsSubtype:
    """GS_Subtype values depend on GS_Type, so they live in one IntEnum per type (one enum
    could not tell ZONE_SERVER from IP_ADDRESS, both 03h). This namespace groups them:
    ``GsSubtype.DIRECTORY.NAME_SERVER``, ``GsSubtype.MANAGEMENT.ZONE_SERVER``."""

    DIRECTORY = DirectorySubtype
    MANAGEMENT = ManagementSubtype

    @staticmethod
    def lookup(gs_type: int, gs_subtype: int) -> int:
        """The named member for (type, subtype) when there is one, else the plain int."""
        enum = _SUBTYPES.get(gs_type)
        if enum is not None:
            try:
                return enum(gs_subtype)
            except ValueError:
                pass
        return gs_subtype


_SUBTYPES: dict[int, type[IntEnum]] = {
    GsType.DIRECTORY: DirectorySubtype,
    GsType.MANAGEMENT: ManagementSubtype,
}


class CtResponseCode(IntEnum):
    """Command/response code of a response CT_IU (FC-GS-8 4.3.2.6); requests are < 8000h."""

    REJECT = 0x8001
    ACCEPT = 0x8002


class CtRejectReason(IntEnum):
    """Reason code of a CT reject (FC-GS-8 4.3.2.8, table 4; Wireshark packet-fcct.h)."""

    INVALID_COMMAND_CODE = 0x01
    INVALID_VERSION_LEVEL = 0x02
    LOGICAL_ERROR = 0x03
    INVALID_CT_IU_SIZE = 0x04
    LOGICAL_BUSY = 0x05
    PROTOCOL_ERROR = 0x07
    UNABLE_TO_PERFORM = 0x09
    COMMAND_NOT_SUPPORTED = 0x0B
    SERVER_NOT_AVAILABLE = 0x0D
    SESSION_NOT_ESTABLISHED = 0x0E
    # FC-GS "vendor unique error", the vendor byte says more; not checked against FC-GS-8's table
    VENDOR_UNIQUE = 0xFF


class NsRejectExplanation(IntEnum):
    """Reason code explanations of the directory/name server (FC-GS-8 5.2.4; Wireshark
    packet-fcdns.h, fcoe-utils fcnsq, Linux ibmvfc)."""

    NO_ADDITIONAL_EXPLANATION = 0x00
    PORT_ID_NOT_REGISTERED = 0x01
    PORT_NAME_NOT_REGISTERED = 0x02
    NODE_NAME_NOT_REGISTERED = 0x03
    CLASS_OF_SERVICE_NOT_REGISTERED = 0x04
    IP_ADDRESS_NODE_NOT_REGISTERED = 0x05
    IPA_NOT_REGISTERED = 0x06  # initial process associator
    FC4_TYPES_NOT_REGISTERED = 0x07
    SYMBOLIC_PORT_NAME_NOT_REGISTERED = 0x08
    SYMBOLIC_NODE_NAME_NOT_REGISTERED = 0x09
    PORT_TYPE_NOT_REGISTERED = 0x0A
    IP_ADDRESS_PORT_NOT_REGISTERED = 0x0B
    FABRIC_PORT_NAME_NOT_REGISTERED = 0x0C
    HARD_ADDRESS_NOT_REGISTERED = 0x0D
    FC4_DESCRIPTOR_NOT_REGISTERED = 0x0E
    FC4_FEATURES_NOT_REGISTERED = 0x0F
    ACCESS_DENIED = 0x10
    UNACCEPTABLE_PORT_ID = 0x11
    DATABASE_EMPTY = 0x12
    NO_OBJECT_REGISTERED_IN_SCOPE = 0x13
    DOMAIN_ID_NOT_PRESENT = 0x14
    PORT_NUMBER_NOT_PRESENT = 0x15
    NO_DEVICE_ATTACHED = 0x16
    AUTHORIZATION_EXCEPTION = 0xF0
    AUTHENTICATION_EXCEPTION = 0xF1
    DATABASE_FULL = 0xF2
    # fcnsq, ibmvfc and Wireshark all call F3h "data base empty" too, distinct from 12h;
    # the name keeps the code so the two stay apart
    DATABASE_EMPTY_F3 = 0xF3
    PROCESSING_REQUEST = 0xF4
    UNABLE_TO_VERIFY_CONNECTION = 0xF5
    DEVICES_NOT_IN_COMMON_ZONE = 0xF6


class NsCommand(IntEnum):
    """Directory (name) server command codes, named as FC-GS-8 5.2.5 names them
    (Wireshark packet-fcdns.h; a subset in Linux fc_ns.h enum fc_ns_req)."""

    # queries: G<object>_<key>
    GA_NXT = 0x0100
    GID_A = 0x0101
    GPN_ID = 0x0112
    GNN_ID = 0x0113
    GCS_ID = 0x0114
    GFT_ID = 0x0117
    GSPN_ID = 0x0118
    GPT_ID = 0x011A
    GIPP_ID = 0x011B
    GFPN_ID = 0x011C
    GHA_ID = 0x011D
    GFD_ID = 0x011E
    GFF_ID = 0x011F
    GID_PN = 0x0121
    GIPP_PN = 0x012B
    GID_NN = 0x0131
    GPN_NN = 0x0132
    GIP_NN = 0x0135
    GIPA_NN = 0x0136
    GSNN_NN = 0x0139
    GNN_IP = 0x0153
    GIPA_IP = 0x0156
    GID_FT = 0x0171
    GPN_FT = 0x0172
    GNN_FT = 0x0173
    GID_PT = 0x01A1
    GID_IPP = 0x01B1
    GPN_IPP = 0x01B2
    GID_FF = 0x01F1
    # registrations: R<object>_<key>
    RPN_ID = 0x0212
    RNN_ID = 0x0213
    RCS_ID = 0x0214
    RFT_ID = 0x0217
    RSPN_ID = 0x0218
    RPT_ID = 0x021A
    RIPP_ID = 0x021B
    RHA_ID = 0x021D
    RFD_ID = 0x021E
    RFF_ID = 0x021F
    RIP_NN = 0x0235
    RSNN_NN = 0x0239
    # de-registration
    DA_ID = 0x0300


@dataclass(frozen=True)
class CtPreamble(Payload):
    """The 16-byte basic CT_IU preamble (FC-GS-8 4.3.2, `PREAMBLE`). `command` is the command
    code of a request or the CtResponseCode of a response; `max_residual_size` is in words
    (module doc). Fields are ints; compare them with the enums above. A value that does not
    fit its field is refused by encode() (ValueError), not on construction: a preamble is
    made for every CT_IU, and encode() checks anyway."""

    gs_type: int
    gs_subtype: int
    command: int
    max_residual_size: int = 0
    in_id: int = 0
    options: int = 0
    fragment_id: int = 0
    reason: int = 0
    explanation: int = 0
    vendor: int = 0
    revision: int = CT_REVISION
    _layout = PREAMBLE
    _memoize = True

    def __post_init__(self) -> None:
        pass  # encode() holds the fields to the layout (class doc)

    @property
    def is_request(self) -> bool:
        return self.command < 0x8000

    @property
    def is_accept(self) -> bool:
        return self.command == CtResponseCode.ACCEPT

    @property
    def is_reject(self) -> bool:
        return self.command == CtResponseCode.REJECT



@dataclass(frozen=True, slots=True)
class CtIu:
    """One CT_IU: the preamble and what follows it (bytes, or a memoryview of the frame)."""

    preamble: CtPreamble
    body: BytesLike

    def encode(self) -> bytes:
        return encode_ct(self.preamble, self.body)


class CtRevisionError(DecodeError):
    """A CT_IU whose revision is not 01h. `preamble` holds the rest of what was decoded, so a
    server can still answer with CT reject INVALID_VERSION_LEVEL (FC-GS-8 4.3.2.8)."""

    def __init__(self, preamble: CtPreamble) -> None:
        self.preamble = preamble
        super().__init__("CT_IU revision", f"{preamble.revision:#04x} is not {CT_REVISION:#04x}")


def decode_ct(payload: BytesLike) -> CtIu:
    """Split an FC frame payload (TYPE 20h) into preamble and body.

    DecodeError when fewer than 16 bytes; CtRevisionError (a DecodeError) when the revision
    is not 01h. The reserved byte 7 is ignored; the body is not length-checked here (its
    layout belongs to the command, and senders such as libfc do not pad names to a word)."""
    preamble = CtPreamble.decode(payload)
    if preamble.revision != CT_REVISION:
        raise CtRevisionError(preamble)
    return CtIu(preamble, payload[CT_PREAMBLE_LEN:])


def encode_ct(preamble: CtPreamble, body: BytesLike = b"") -> bytes:
    """The CT_IU bytes: preamble then body, unpadded (the frame layer adds fill bytes)."""
    return preamble.encode() + bytes(body)


@functools.lru_cache(maxsize=1024)
def _preamble(gs_type: int, gs_subtype: int, command: int, size: int, in_id: int,
              reason: int = 0, explanation: int = 0, vendor: int = 0) -> bytes:
    # the preambles fcsoft writes carry no options and no fragment ID, and a service sends
    # the same few again and again: cached by the fields that vary
    return CtPreamble(gs_type, gs_subtype, command, size, in_id, 0, 0, reason, explanation,
                      vendor).encode()


def ct_request(gs_type: int, gs_subtype: int, command: int, body: BytesLike = b"", *,
               max_size: int = 0, in_id: int = 0) -> bytes:
    """A request CT_IU. `max_size` is the largest accept payload wanted, in words, not
    counting the preamble (0 = no limit), as FC-GS-8 defines it."""
    if not 0 <= command < 0x8000:
        raise ValueError(f"command code {command:#x} is not a request code (< 8000h)")
    return _preamble(gs_type, gs_subtype, command, max_size, in_id) + bytes(body)


# A switch answers in the service it was asked in. IN_ID is echoed: requesters put 0 there
# (libfc) or their own idea (fcoe-utils fcping sends FFFFFCh), and no initiator we know checks
# it in the answer. Options and fragment ID are not echoed: fcsoft implements neither the
# extended preamble nor fragmentation.

def ct_accept(request: CtPreamble, body: BytesLike = b"", *, residual: int = 0) -> bytes:
    """The accept CT_IU answering `request`: same GS type/subtype, ACCEPT, `body` after it.
    `residual` is the number of words left out because of the request's maximum size."""
    return _preamble(request.gs_type, request.gs_subtype, CtResponseCode.ACCEPT, residual,
                     request.in_id) + bytes(body)


def ct_reject(request: CtPreamble, reason: int, explanation: int = 0, vendor: int = 0) -> bytes:
    """The reject CT_IU answering `request`: same GS type/subtype, REJECT, the reason code
    and explanation (e.g. CtRejectReason.UNABLE_TO_PERFORM, NsRejectExplanation.*), no body."""
    return _preamble(request.gs_type, request.gs_subtype, CtResponseCode.REJECT, 0,
                     request.in_id, reason, explanation, vendor)


def ct_max_response_bytes(request: CtPreamble) -> int | None:
    """How many bytes of accept payload (after the preamble) `request` allows, None for no
    limit. Reads the field as words (see module doc: lenient towards byte-count senders)."""
    return request.max_residual_size * 4 if request.max_residual_size else None
