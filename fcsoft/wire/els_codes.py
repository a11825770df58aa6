"""FC-LS-3 code tables shared by the ELS and BLS codecs, and the helpers those codecs use.

- `ElsCommand`: the ELS command codes, byte 0 of every ELS payload (FC-LS-3, ELS command
  code table; values as in Linux include/uapi/scsi/fc/fc_els.h enum fc_els_cmd).
- `LsRjtReason`, `LsRjtExplanation`: the LS_RJT reason codes and reason code explanations
  (FC-LS-3, LS_RJT clause, "LS_RJT reason codes" and "LS_RJT reason code explanations"
  tables; values cross-checked against fc_els.h and Wireshark packet-fcels.c).
- `OpenIntEnum`: the base of every code table a peer can fill with a value the table lacks.
- `LinkServicePayload`: the base of the ELS and BLS payload classes, each one construct
  layout (layout.py), with the length and command-byte policy of els.py.

FC-LS-3 section and table numbers are not quoted on purpose: the values were taken from the
Linux and Wireshark sources named beside them, not re-read from the standard's text.

Theory of operation: the decoders report what the bytes say and leave policy to the state
machines. A reserved or unassigned code in a field that does not change the layout (a reject
reason, a PRLI response code, an SCR function) therefore decodes to a pseudo-member named
`UNKNOWN_0x..` that still compares equal to its int, so a port can answer it with the right
LS_RJT instead of the decoder raising. Only structure (lengths, page sizes, the command byte a
payload class stands for) makes a decoder raise `DecodeError`.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

from .errors import DecodeError
from .layout import Payload
from .types import BytesLike


class OpenIntEnum(IntEnum):
    """An IntEnum that accepts unassigned 8-bit values as `UNKNOWN_0x..` pseudo-members.

    Code tables on the wire have holes (reserved values) and grow with each standard
    revision; a value we do not know must still decode so the caller can reject it politely.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFF:
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value:#04x}"
            member._value_ = value
            return member
        return None


class ElsCommand(IntEnum):
    """ELS command codes (FC-LS-3 ELS command code table; Linux fc_els.h enum fc_els_cmd)."""

    LS_RJT = 0x01  # link service reject (a reply)
    LS_ACC = 0x02  # link service accept (a reply)
    PLOGI = 0x03  # N_Port login
    FLOGI = 0x04  # F_Port (fabric) login
    LOGO = 0x05  # logout
    ABTX = 0x06  # abort exchange (obsolete)
    RCS = 0x07  # read connection status (obsolete)
    RES = 0x08  # read exchange status block
    RSS = 0x09  # read sequence status block
    RSI = 0x0A  # request sequence initiative
    ESTS = 0x0B  # establish streaming
    ESTC = 0x0C  # estimate credit
    ADVC = 0x0D  # advise credit
    RTV = 0x0E  # read timeout value
    RLS = 0x0F  # read link error status block
    ECHO = 0x10
    TEST = 0x11
    RRQ = 0x12  # reinstate recovery qualifier
    REC = 0x13  # read exchange concise
    SRR = 0x14  # sequence retransmission request
    FPIN = 0x16  # fabric performance impact notification
    EDC = 0x17  # exchange diagnostic capabilities
    RDP = 0x18  # read diagnostic parameters
    RDF = 0x19  # register diagnostic functions
    PRLI = 0x20  # process login
    PRLO = 0x21  # process logout
    SCN = 0x22  # state change notification
    TPLS = 0x23  # test process login state
    TPRLO = 0x24  # third party process logout
    LCLM = 0x25  # login control list management (obsolete)
    GAID = 0x30  # get alias_ID
    FACT = 0x31  # fabric activate alias_ID
    FDACDT = 0x32  # fabric deactivate alias_ID
    NACT = 0x33  # N_Port activate alias_ID
    NDACT = 0x34  # N_Port deactivate alias_ID
    QOSR = 0x40  # quality of service request
    RVCS = 0x41  # read virtual circuit status
    PDISC = 0x50  # discover N_Port service parameters
    FDISC = 0x51  # discover F_Port service parameters (NPIV login)
    ADISC = 0x52  # discover address
    RNC = 0x53  # report node capability (obsolete)
    FARP_REQ = 0x54  # FC address resolution request
    FARP_REPL = 0x55  # FC address resolution reply
    RPS = 0x56  # read port status block
    RPL = 0x57  # read port list
    RPBC = 0x58  # read port buffer condition
    FAN = 0x60  # fabric address notification
    RSCN = 0x61  # registered state change notification
    SCR = 0x62  # state change registration
    RNFT = 0x63  # report node FC-4 types
    CSR = 0x68  # clock synchronization request
    CSU = 0x69  # clock synchronization update
    LINIT = 0x70  # loop initialize
    LSTS = 0x72  # loop status
    RNID = 0x78  # request node identification data
    RLIR = 0x79  # registered link incident report
    LIRR = 0x7A  # link incident record registration
    SRL = 0x7B  # scan remote loop
    SBRP = 0x7C  # set bit-error reporting parameters
    RPSC = 0x7D  # report port speed capabilities
    QSA = 0x7E  # query security attributes
    EVFP = 0x7F  # exchange virtual fabrics parameters
    LKA = 0x80  # link keep alive
    AUTH_ELS = 0x90  # authentication (FC-SP)


class LsRjtReason(OpenIntEnum):
    """LS_RJT reason codes (FC-LS-3 LS_RJT clause; fc_els.h enum fc_els_rjt_reason)."""

    INVALID_COMMAND = 0x01  # invalid ELS command code
    LOGICAL_ERROR = 0x03
    LOGICAL_BUSY = 0x05
    PROTOCOL_ERROR = 0x07
    UNABLE_TO_PERFORM = 0x09  # unable to perform command request
    COMMAND_NOT_SUPPORTED = 0x0B
    COMMAND_ALREADY_IN_PROGRESS = 0x0E
    FIP_ERROR = 0x20  # FC-BB-5/6 FCoE Initialization Protocol error
    VENDOR_UNIQUE = 0xFF  # see the vendor unique byte


class LsRjtExplanation(OpenIntEnum):
    """LS_RJT reason code explanations (FC-LS-3 LS_RJT clause).

    Values from Linux fc_els.h enum fc_els_rjt_explan (which marks itself incomplete),
    completed from Wireshark packet-fcels.c fc_els_rjt_det_val and the fcoe-utils LS_RJT
    table. The alias_ID, QoS and class 4 codes come from FC-PH-3 era ELSs that FC-LS-3 keeps
    for compatibility; the MAC-address and VN2VN codes are FC-BB-5/6 (FCoE).
    """

    NO_ADDITIONAL_EXPLANATION = 0x00
    SERVICE_PARAMETER_ERROR_OPTIONS = 0x01
    SERVICE_PARAMETER_ERROR_INITIATOR_CONTROL = 0x03
    SERVICE_PARAMETER_ERROR_RECIPIENT_CONTROL = 0x05
    SERVICE_PARAMETER_ERROR_RECEIVE_DATA_FIELD_SIZE = 0x07
    SERVICE_PARAMETER_ERROR_CONCURRENT_SEQUENCES = 0x09
    SERVICE_PARAMETER_ERROR_CREDIT = 0x0B
    INVALID_PORT_NAME = 0x0D  # invalid N_Port_Name / F_Port_Name
    INVALID_NODE_OR_FABRIC_NAME = 0x0E
    INVALID_COMMON_SERVICE_PARAMETERS = 0x0F
    INVALID_ASSOCIATION_HEADER = 0x11
    ASSOCIATION_HEADER_REQUIRED = 0x13
    INVALID_ORIGINATOR_S_ID = 0x15
    INVALID_OX_ID_RX_ID = 0x17  # invalid OX_ID-RX_ID combination
    REQUEST_ALREADY_IN_PROGRESS = 0x19
    N_PORT_LOGIN_REQUIRED = 0x1E
    INVALID_N_PORT_ID = 0x1F
    INVALID_SEQ_ID = 0x21
    ABORT_INVALID_EXCHANGE = 0x23  # attempt to abort an invalid exchange
    ABORT_INACTIVE_EXCHANGE = 0x25  # attempt to abort an inactive exchange
    RECOVERY_QUALIFIER_REQUIRED = 0x27
    INSUFFICIENT_RESOURCES = 0x29  # insufficient resources to support login
    UNABLE_TO_SUPPLY_REQUESTED_DATA = 0x2A
    REQUEST_NOT_SUPPORTED = 0x2C
    INVALID_PAYLOAD_LENGTH = 0x2D
    NO_ALIAS_IDS_AVAILABLE = 0x30
    ALIAS_ID_NOT_ACTIVATED_NO_RESOURCES = 0x31  # cannot be activated: no resources
    ALIAS_ID_NOT_ACTIVATED_INVALID = 0x32  # cannot be activated: invalid alias_ID
    ALIAS_ID_NOT_DEACTIVATED_NO_SUCH_ID = 0x33  # cannot be deactivated: does not exist
    ALIAS_ID_NOT_DEACTIVATED_NO_RESOURCES = 0x34  # cannot be deactivated: resource problem
    SERVICE_PARAMETER_CONFLICT = 0x35
    INVALID_ALIAS_TOKEN = 0x36
    UNSUPPORTED_ALIAS_TOKEN = 0x37
    ALIAS_GROUP_CANNOT_BE_FORMED = 0x38
    QOS_PARAMETER_ERROR = 0x40
    VC_ID_NOT_FOUND = 0x41
    INSUFFICIENT_RESOURCES_CLASS_4 = 0x42  # no resources for a class 4 connection
    INVALID_PORT_OR_NODE_NAME = 0x44
    LOGIN_EXTENSION_NOT_SUPPORTED = 0x46
    AUTHENTICATION_REQUIRED = 0x48
    PERIODIC_SCAN_VALUE_NOT_ALLOWED = 0x50
    PERIODIC_SCANNING_NOT_SUPPORTED = 0x51
    MAC_ADDRESSING_MODE_NOT_SUPPORTED = 0x60
    PROPOSED_MAC_ADDRESS_INCORRECTLY_FORMED = 0x61
    VN2VN_PORT_NOT_IN_NEIGHBOR_SET = 0x62


# ------------------------------------------------------------------------------------------
# Helpers for the codecs (not part of the public API)

_T = TypeVar("_T")
_P = ParamSpec("_P")


def decode_guard(what: str) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Decorate a decoder so that nothing but DecodeError can escape it.

    The decoders check lengths before unpacking, so this is a safety net: should a check be
    missing, the peer's bytes still surface as DecodeError naming `what`, never as a bare
    struct.error or IndexError that would take a link task down.
    """

    def wrap(fn: Callable[_P, _T]) -> Callable[_P, _T]:
        @functools.wraps(fn)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            try:
                return fn(*args, **kwargs)
            except DecodeError:
                raise
            except (struct.error, IndexError, ValueError, TypeError, OverflowError) as exc:
                raise DecodeError(what, f"malformed payload ({exc})") from None

        return guarded

    return wrap


def need(data: BytesLike, length: int, what: str) -> None:
    """Raise DecodeError unless `data` holds at least `length` bytes."""
    if len(data) < length:
        raise DecodeError(what, f"payload is {len(data)} bytes, need at least {length}")


def expect_command(data: BytesLike, allowed: tuple[int, ...], what: str) -> ElsCommand:
    """Check byte 0 against the command codes a payload class stands for; return it typed."""
    need(data, 1, what)
    code = data[0]
    if code not in allowed:
        names = "/".join(f"{ElsCommand(c).name} ({c:#04x})" for c in allowed)
        raise DecodeError(what, f"command byte {code:#04x} is not {names}")
    return ElsCommand(code)


def check_range(what: str, value: int, bits: int) -> None:
    """Raise ValueError when `value` does not fit an unsigned field of `bits` bits.

    Encoding is local: a bad value is our bug, not the peer's, so it is a ValueError.
    """
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ValueError(f"{what} {value!r} does not fit in {bits} bits")


def check_command(what: str, command: int, allowed: tuple[int, ...]) -> None:
    """Raise ValueError if a dataclass is built with a command it cannot stand for."""
    if command not in allowed:
        names = "/".join(ElsCommand(c).name for c in allowed)
        raise ValueError(f"{what}: command {command!r} must be one of {names}")


def check_page_list(data: BytesLike, what: str, page_len: int, page_len_format: str = "d") -> int:
    """Hold the header of a PRLI / PRLO / RSCN payload [command, page length, payload length(2)]
    to els.py's length policy: the page length must be `page_len`, the payload length
    4 + pages * page length with at least one page, and equal to the bytes received. Returns
    the number of pages. `page_len_format` is how the messages print page lengths."""
    need(data, 4, what)
    got, length = data[1], int.from_bytes(data[2:4], "big")
    if got != page_len:
        raise DecodeError(what, f"page length {got:{page_len_format}}, must be "
                                f"{page_len:{page_len_format}}")
    if length < 4 + page_len or (length - 4) % page_len:
        raise DecodeError(what, f"payload length {length} is not 4 + {page_len} * pages "
                                "with at least one page")
    if length != len(data):
        raise DecodeError(what, f"payload length field says {length} bytes, "
                                f"received {len(data)}")
    return (length - 4) // page_len


class LinkServicePayload(Payload):
    """An ELS or BLS payload with one layout (layout.Payload). For an ELS, byte 0 is the
    command: one of `_commands`, checked before anything else is read, and kept as an
    ElsCommand when the class has a `command` field (a payload that stands for a request and
    its LS_ACC); a BLS names its command in R_CTL and has no `_commands`. Too short is a
    DecodeError naming the payload and both lengths; extra bytes after a fixed layout are
    ignored."""

    __slots__ = ()
    _commands: ClassVar[tuple[int, ...]] = ()

    def _coerce(self) -> None:
        command = getattr(self, "command", None)
        if command is not None:
            check_command(type(self).__name__, command, self._commands)
            object.__setattr__(self, "command", ElsCommand(command))
        super()._coerce()

    @classmethod
    def decode(cls, data: BytesLike) -> Self:
        """Decode the payload at the start of `data` (els.py length policy)."""
        layout = cls._layout
        if cls._commands:
            expect_command(data, cls._commands, layout.what)
        need(data, layout.size or 4, layout.what)
        return super().decode(data)
