"""FC-LS-4 Extended Link Service payloads: typed values <-> bytes, and the request/reply dispatch.

Every ELS payload starts with a command word whose byte 0 is the command code (`ElsCommand`);
requests travel with R_CTL 0x22, replies (LS_ACC 0x02 or LS_RJT 0x01) with R_CTL 0x23. An
LS_ACC does not say which request it answers, so `decode_els_reply` takes the request's
command code.

Each payload class declares its layout once, as a construct Struct (`_layout`, see layout.py)
that serves both directions, field by field as in Linux include/uapi/scsi/fc/fc_els.h (the
struct named on each class) and Wireshark epan/dissectors/packet-fcels.c. Each class names
the FC-LS-4 clause it follows by the ELS's name; these layouts are unchanged from FC-LS-3, and
section numbers are not quoted (see els_codes.py). FLOGI / FDISC / PLOGI / PDISC and PRLI /
PRLO live in els_login.py.

Length policy (decided here once for every decoder):
- Too short is always a DecodeError naming the payload and both lengths.
- Fixed-length payloads accept extra trailing bytes and ignore them: the standard knows the
  length, FLOGI may legally be 256 bytes, and peers pad.
- Payloads with a length field (PRLI, PRLO, RSCN) are strict: page length must be the
  standard's, the payload length must be 4 + pages * page length with at least one page, and it
  must equal the bytes received. These payloads are whole words, so FC fill bytes (stripped by
  the frame layer anyway) cannot explain a mismatch: a mismatch is a broken peer.
- Reserved bytes (including bytes 1-3 of the command word) are ignored on decode and sent as 0.
- A value missing from a code table decodes as an `UNKNOWN_0x..` pseudo-member (els_codes.py).

Theory of operation: `decode_els_request` never raises for a well-formed payload whose command
it has no codec for; it returns `UnknownEls` so the port answers LS_RJT (command not supported)
instead of dropping the exchange. Encoding validates field ranges and raises ValueError: a bad
value there is a local bug, not something the peer did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, Self, TypeAlias

from construct import (
    Array,
    BitsInteger,
    BitStruct,
    Bytes,
    Const,
    GreedyBytes,
    Int8ub,
    Int16ub,
    Int24ub,
    Int32ub,
    Int64ub,
    Padding,
    Rebuild,
    Struct,
    len_,
    this,
)

from .els_codes import (
    ElsCommand,
    LinkServicePayload,
    LsRjtExplanation,
    LsRjtReason,
    OpenIntEnum,
    check_page_list,
    check_range,
    decode_guard,
    expect_command,
    need,
)
from .els_login import (
    CLASS_NOT_SUPPORTED,
    ClassServiceOptions,
    ClassServiceParameters,
    CommonFeatures,
    FcpServiceParameters,
    Prli,
    PrliResponseCode,
    Prlo,
    ServiceParameterPage,
    ServiceParameters,
)
from .errors import DecodeError
from .header import MAX_PAYLOAD
from .layout import Fields, Layout, unsigned
from .types import BytesLike
from .wwn import WWN

__all__ = [
    "CLASS_NOT_SUPPORTED", "Adisc", "ClassServiceOptions", "ClassServiceParameters",
    "CommonFeatures", "Echo", "ElsCommand", "ElsReply", "ElsRequest", "FcpServiceParameters",
    "Logo", "LsAcc", "LsRjt", "LsRjtExplanation", "LsRjtReason", "Prli", "PrliResponseCode",
    "Prlo", "Rrq", "Rscn", "RscnAddressFormat", "RscnEventQualifier", "RscnPage", "Rtv",
    "RtvAccept", "RtvQualifier", "Scr", "ScrFunction", "ServiceParameterPage",
    "ServiceParameters", "UnknownEls", "decode_els_reply", "decode_els_request",
]

_ASSIGNED_CODES = frozenset(int(c) for c in ElsCommand)


def _command(code: int) -> Any:
    """Byte 0 of an ELS payload that stands for one command: that code (the reserved bytes
    1-3 after it are each layout's Padding(3))."""
    return "command" / Const(int(code), Int8ub)


@dataclass(frozen=True)
class LsAcc(LinkServicePayload):
    """A plain LS_ACC with no body (FC-LS-4 LS_ACC): the reply to LOGO, SCR, RSCN, RRQ and
    every request whose accept carries nothing fcsoft reads; a body is ignored."""

    _layout = Layout("LS_ACC", Struct(_command(ElsCommand.LS_ACC), Padding(3)))
    _commands = (ElsCommand.LS_ACC,)


@dataclass(frozen=True)
class LsRjt(LinkServicePayload):
    """LS_RJT (FC-LS-4 LS_RJT; fc_els.h struct fc_els_ls_rjt): reason, explanation, vendor
    unique byte."""

    reason: LsRjtReason
    explanation: LsRjtExplanation = LsRjtExplanation.NO_ADDITIONAL_EXPLANATION
    vendor_unique: int = 0
    _layout = Layout("LS_RJT", Struct(
        _command(ElsCommand.LS_RJT), Padding(3),
        Padding(1), "reason" / Int8ub, "explanation" / Int8ub, "vendor_unique" / Int8ub))
    _commands = (ElsCommand.LS_RJT,)
    _convert = {"reason": LsRjtReason, "explanation": LsRjtExplanation}


@dataclass(frozen=True)
class Logo(LinkServicePayload):
    """LOGO request (FC-LS-4 LOGO; fc_els.h struct fc_els_logo): the N_Port_ID and port name
    logging out. Its accept is a plain `LsAcc`."""

    port_id: int
    port_name: WWN
    _layout = Layout("LOGO", Struct(
        _command(ElsCommand.LOGO), Padding(3),
        Padding(1), "port_id" / Int24ub,
        "port_name" / Int64ub))
    _commands = (ElsCommand.LOGO,)
    _convert = {"port_name": WWN}


@dataclass(frozen=True)
class Adisc(LinkServicePayload):
    """ADISC request and its LS_ACC (FC-LS-4 ADISC; fc_els.h struct fc_els_adisc): the same
    layout both ways. `hard_address` is the port's hard (loop) address, 0 when it has none."""

    hard_address: int
    port_name: WWN
    node_name: WWN
    port_id: int
    command: ElsCommand = ElsCommand.ADISC
    _layout = Layout("ADISC", Struct(
        "command" / Int8ub, Padding(3),
        Padding(1), "hard_address" / Int24ub,
        "port_name" / Int64ub,
        "node_name" / Int64ub,
        Padding(1), "port_id" / Int24ub))
    _commands = (ElsCommand.ADISC, ElsCommand.LS_ACC)
    _convert = {"port_name": WWN, "node_name": WWN}


@dataclass(frozen=True)
class Rrq(LinkServicePayload):
    """RRQ request (FC-LS-4 RRQ; fc_els.h struct fc_els_rrq): the exchange whose recovery
    qualifier to reinstate, named by the exchange originator's S_ID, OX_ID and RX_ID. Its
    accept is a plain `LsAcc`."""

    originator_s_id: int
    ox_id: int
    rx_id: int
    _layout = Layout("RRQ", Struct(
        _command(ElsCommand.RRQ), Padding(3),
        Padding(1), "originator_s_id" / Int24ub,
        "ox_id" / Int16ub, "rx_id" / Int16ub))
    _commands = (ElsCommand.RRQ,)


@dataclass(frozen=True)
class Rtv(LinkServicePayload):
    """RTV request (FC-LS-4 RTV): just the command word. The answer is `RtvAccept`."""

    _layout = Layout("RTV", Struct(_command(ElsCommand.RTV), Padding(3)))
    _commands = (ElsCommand.RTV,)


class RtvQualifier(IntFlag):
    """Timeout qualifier word of the RTV LS_ACC (FC-LS-4 RTV; fc_els.h FC_ELS_RTV_*)."""

    E_D_TOV_RESOLUTION_NS = 1 << 26  # E_D_TOV counts nanoseconds instead of milliseconds
    R_T_TOV_100_US = 1 << 19  # R_T_TOV is 100 us instead of 100 ms


@dataclass(frozen=True)
class RtvAccept(LinkServicePayload):
    """The LS_ACC of RTV (fc_els.h struct fc_els_rtv_acc): R_A_TOV and E_D_TOV (ms unless
    the qualifier says ns) and the timeout qualifier word."""

    r_a_tov: int
    e_d_tov: int
    qualifier: RtvQualifier = RtvQualifier(0)  # noqa: RUF009 - IntFlag values are immutable
    _layout = Layout("RTV LS_ACC", Struct(
        _command(ElsCommand.LS_ACC), Padding(3),
        "r_a_tov" / Int32ub,
        "e_d_tov" / Int32ub,
        "qualifier" / Int32ub))
    _commands = (ElsCommand.LS_ACC,)
    _convert = {"qualifier": unsigned(RtvQualifier)}

    @property
    def e_d_tov_in_ns(self) -> bool:
        """True when E_D_TOV is given in nanoseconds (TOQ E_D_TOV resolution bit)."""
        return bool(self.qualifier & RtvQualifier.E_D_TOV_RESOLUTION_NS)


class ScrFunction(OpenIntEnum):
    """SCR registration function (FC-LS-4 SCR; fc_els.h enum fc_els_scr_func)."""

    FABRIC_DETECTED = 1  # RSCNs for changes the fabric detects
    N_PORT_DETECTED = 2  # RSCNs other Nx_Ports send
    FULL = 3  # both
    CLEAR = 255  # remove this port's registration


@dataclass(frozen=True)
class Scr(LinkServicePayload):
    """SCR request (FC-LS-4 SCR; fc_els.h struct fc_els_scr), sent to the fabric controller
    FFFFFD. A reserved function is kept as read."""

    function: ScrFunction = ScrFunction.FULL
    _layout = Layout("SCR", Struct(
        _command(ElsCommand.SCR), Padding(3),
        Padding(3), "function" / Int8ub))
    _commands = (ElsCommand.SCR,)
    _convert = {"function": ScrFunction}


class RscnEventQualifier(OpenIntEnum):
    """RSCN page event qualifier, bits 5-2 of the page's first byte (FC-LS-4 RSCN;
    fc_els.h enum fc_els_rscn_ev_qual)."""

    NOT_SPECIFIED = 0
    NAME_SERVER_OBJECT = 1  # a name server object of the port changed
    PORT_ATTRIBUTE = 2
    SERVICE_OBJECT = 3
    SWITCH_CONFIGURATION = 4
    REMOVED_OBJECT = 5


class RscnAddressFormat(IntEnum):
    """RSCN page address format, bits 1-0 (fc_els.h enum fc_els_rscn_addr_fmt)."""

    PORT = 0  # the affected ID is one N_Port_ID
    AREA = 1  # every port in domain + area
    DOMAIN = 2  # every port in the domain
    FABRIC = 3  # anything on the fabric may have changed


RSCN_PAGE_LEN = 4
MAX_RSCN_PAGES = (0xFFFF - 4) // RSCN_PAGE_LEN  # the payload length field is 16 bits


@dataclass(frozen=True)
class RscnPage(LinkServicePayload):
    """One RSCN affected port page (fc_els.h struct fc_els_rscn_page): the affected
    N_Port_ID / area / domain, its address format and the event qualifier. Memoized (a
    fabric sends the same page to every registered port)."""

    affected_id: int
    address_format: RscnAddressFormat = RscnAddressFormat.PORT
    event_qualifier: RscnEventQualifier = RscnEventQualifier.NOT_SPECIFIED
    _layout = Layout("RSCN page", Struct(
        "flags" / BitStruct(Padding(2), "event_qualifier" / BitsInteger(4),
                            "address_format" / BitsInteger(2)),
        "affected_id" / Int24ub))
    _convert = {"address_format": RscnAddressFormat, "event_qualifier": RscnEventQualifier}
    _memoize = True

    def _validate(self) -> None:
        check_range("event_qualifier", int(self.event_qualifier), 4)

    def __repr__(self) -> str:
        # the N_Port_ID in hex, six digits, as everything fcsoft prints (fcsoft.names)
        af, eq = self.address_format, self.event_qualifier
        return (f"RscnPage(affected_id=0x{self.affected_id:06x}, "
                f"address_format={type(af).__name__}.{getattr(af, 'name', af)}, "
                f"event_qualifier={type(eq).__name__}.{getattr(eq, 'name', eq)})")

    def _to_fields(self) -> Mapping[str, object]:
        return {"flags": {"event_qualifier": self.event_qualifier,
                          "address_format": self.address_format},
                "affected_id": self.affected_id}

    @classmethod
    def _from_fields(cls, parsed: Fields) -> Self:
        flags = parsed["flags"]
        return cls(parsed["affected_id"], flags["address_format"], flags["event_qualifier"])


@dataclass(frozen=True)
class Rscn(LinkServicePayload):
    """RSCN request (FC-LS-4 RSCN; fc_els.h struct fc_els_rscn): a list of affected port
    pages. The page length must be 4 and the payload length 4 + 4 * pages, equal to the
    bytes received. The accept is a plain `LsAcc`."""

    pages: tuple[RscnPage, ...]
    _layout = Layout("RSCN", Struct(
        _command(ElsCommand.RSCN),
        "page_length" / Const(RSCN_PAGE_LEN, Int8ub),
        "payload_length" / Rebuild(Int16ub, 4 + RSCN_PAGE_LEN * len_(this.pages)),
        "pages" / Array((this.payload_length - 4) // RSCN_PAGE_LEN,
                        Bytes(RSCN_PAGE_LEN))),  # each an RscnPage
        compiled=True)  # the header is checked before parsing (check_page_list)
    _commands = (ElsCommand.RSCN,)
    _convert = {"pages": tuple}
    _wire = {"pages": RscnPage.array()}

    def _validate(self) -> None:
        if not 1 <= len(self.pages) <= MAX_RSCN_PAGES:
            raise ValueError(f"Rscn needs 1..{MAX_RSCN_PAGES} pages, got {len(self.pages)}")

    @classmethod
    def for_ports(cls, port_ids: Iterable[int],
                  event_qualifier: RscnEventQualifier = RscnEventQualifier.NOT_SPECIFIED,
                  ) -> Rscn:
        """An RSCN with one port-format page per N_Port_ID."""
        return cls(tuple(RscnPage(p, RscnAddressFormat.PORT, event_qualifier)
                         for p in port_ids))

    @classmethod
    def decode(cls, data: BytesLike) -> Self:
        """Decode an RSCN; its length fields are strict (class doc)."""
        expect_command(data, cls._commands, "RSCN")
        check_page_list(data, "RSCN", RSCN_PAGE_LEN)
        return cls.from_parsed(cls._layout.parse(data), "RSCN")


MAX_ECHO_DATA = MAX_PAYLOAD - 4  # 2108: one frame, minus the command word


@dataclass(frozen=True)
class Echo(LinkServicePayload):
    """ECHO request and its LS_ACC (FC-LS-4 ECHO; fc_els.h struct fc_els_echo): everything
    after the command word is the data, at most 2108 bytes; the accept returns it."""

    data: bytes = b""
    command: ElsCommand = ElsCommand.ECHO
    _layout = Layout("ECHO", Struct("command" / Int8ub, Padding(3), "data" / GreedyBytes))
    _commands = (ElsCommand.ECHO, ElsCommand.LS_ACC)
    _convert = {"data": bytes}

    def _validate(self) -> None:
        if len(self.data) > MAX_ECHO_DATA:
            raise ValueError(f"data is {len(self.data)} bytes, at most {MAX_ECHO_DATA}")

    def accept(self) -> Echo:
        """The LS_ACC that answers this ECHO: the same data."""
        return Echo(self.data, ElsCommand.LS_ACC)


@dataclass(frozen=True)
class UnknownEls:
    """A well-formed ELS request fcsoft has no codec for (RLS, RNID, REC, ... or an
    unassigned code), or a reply code arriving as a request. `body` is every byte after the
    command byte, so `encode()` gives the payload back unchanged. Answer it with
    LS_RJT COMMAND_NOT_SUPPORTED (or INVALID_COMMAND for a code not in `ElsCommand`)."""

    command: int
    body: bytes

    def __post_init__(self) -> None:
        check_range("command", self.command, 8)
        object.__setattr__(self, "body", bytes(self.body))
        if len(self.body) < 3:
            raise ValueError("an ELS payload is at least one 4-byte word")

    @property
    def known(self) -> bool:
        """True when the command code is in `ElsCommand` (assigned by the standard)."""
        return self.command in _ASSIGNED_CODES

    def encode(self) -> bytes:
        """The payload as received."""
        return bytes((self.command,)) + self.body

    @classmethod
    @decode_guard("ELS")
    def decode(cls, data: BytesLike) -> UnknownEls:
        """Wrap any payload of at least one word."""
        need(data, 4, "ELS")
        code = data[0]
        command = ElsCommand(code) if code in _ASSIGNED_CODES else code
        return cls(command, bytes(data[1:]))


ElsRequest: TypeAlias = (ServiceParameters | Logo | Prli | Prlo | Scr | Rscn | Adisc | Echo
                         | Rtv | Rrq | UnknownEls)
ElsReply: TypeAlias = (LsAcc | LsRjt | ServiceParameters | RtvAccept | Prli | Prlo | Adisc
                       | Echo)

_REQUEST_DECODERS: dict[int, Callable[[BytesLike], ElsRequest]] = {
    ElsCommand.FLOGI: ServiceParameters.decode,
    ElsCommand.FDISC: ServiceParameters.decode,
    ElsCommand.PLOGI: ServiceParameters.decode,
    ElsCommand.PDISC: ServiceParameters.decode,
    ElsCommand.LOGO: Logo.decode,
    ElsCommand.PRLI: Prli.decode,
    ElsCommand.PRLO: Prlo.decode,
    ElsCommand.SCR: Scr.decode,
    ElsCommand.RSCN: Rscn.decode,
    ElsCommand.ADISC: Adisc.decode,
    ElsCommand.ECHO: Echo.decode,
    ElsCommand.RTV: Rtv.decode,
    ElsCommand.RRQ: Rrq.decode,
}

# what the LS_ACC of each request carries; requests not listed get a plain LsAcc
_ACCEPT_DECODERS: dict[int, Callable[[BytesLike], ElsReply]] = {
    ElsCommand.FLOGI: ServiceParameters.decode,
    ElsCommand.FDISC: ServiceParameters.decode,
    ElsCommand.PLOGI: ServiceParameters.decode,
    ElsCommand.PDISC: ServiceParameters.decode,
    ElsCommand.PRLI: Prli.decode,
    ElsCommand.PRLO: Prlo.decode,
    ElsCommand.ADISC: Adisc.decode,
    ElsCommand.ECHO: Echo.decode,
    ElsCommand.RTV: RtvAccept.decode,
}


def decode_els_request(payload: BytesLike) -> ElsRequest:
    """Decode an ELS request payload (R_CTL 0x22) by its command byte.

    A command without a codec here comes back as `UnknownEls`; a malformed payload of a
    command that has one raises DecodeError naming the command and the fault.
    """
    need(payload, 4, "ELS request")
    decoder = _REQUEST_DECODERS.get(payload[0])
    if decoder is None:
        return UnknownEls.decode(payload)
    return decoder(payload)


def decode_els_reply(payload: BytesLike, request_command: int) -> ElsReply:
    """Decode an ELS reply (R_CTL 0x23) in the context of the request it answers.

    LS_RJT gives `LsRjt` whatever the request. LS_ACC gives `ServiceParameters` for FLOGI,
    FDISC, PLOGI and PDISC, `RtvAccept` for RTV, `Prli` / `Prlo` (command LS_ACC) for PRLI /
    PRLO, `Adisc` for ADISC, `Echo` for ECHO, and a plain `LsAcc` for everything else (any
    body is then ignored). Any other command byte is a DecodeError.
    """
    need(payload, 4, "ELS reply")
    code = payload[0]
    if code == ElsCommand.LS_RJT:
        return LsRjt.decode(payload)
    if code != ElsCommand.LS_ACC:
        raise DecodeError("ELS reply", f"command byte {code:#04x} is neither LS_ACC (0x02) "
                                       "nor LS_RJT (0x01)")
    return _ACCEPT_DECODERS.get(request_command, LsAcc.decode)(payload)
