"""FC-LS-3 Extended Link Service payloads: typed values <-> bytes, and the request/reply dispatch.

Every ELS payload starts with a command word whose byte 0 is the command code (`ElsCommand`);
requests travel with R_CTL 0x22, replies (LS_ACC 0x02 or LS_RJT 0x01) with R_CTL 0x23. An
LS_ACC does not say which request it answers, so `decode_els_reply` takes the request's
command code. Layouts (byte offsets as in Linux include/uapi/scsi/fc/fc_els.h and Wireshark
epan/dissectors/packet-fcels.c; FC-LS-3 clauses named on each class):

    LS_ACC   02 00 00 00
    LS_RJT   01 00 00 00 | rsvd reason explanation vendor-unique
    LOGO     05 00 00 00 | rsvd N_Port_ID(3) | port name(8)
    ADISC    52 00 00 00 | rsvd hard address(3) | port name(8) | node name(8) | rsvd N_Port_ID(3)
    RRQ      12 00 00 00 | rsvd originator S_ID(3) | OX_ID(2) RX_ID(2)
    RTV      0E 00 00 00;    LS_ACC: 02 00 00 00 | R_A_TOV(4) | E_D_TOV(4) | TOQ(4)
    SCR      62 00 00 00 | 00 00 00 function
    RSCN     61 04 payload length(2) | pages: [rsvd(2b) event qualifier(4b) format(2b), ID(3)]
    ECHO     10 00 00 00 | up to 2108 bytes echoed back in the LS_ACC
    FLOGI/FDISC/PLOGI/PDISC, PRLI/PRLO: see els_login.py

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

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import TypeAlias

from .els_codes import (
    ElsCommand,
    LsRjtExplanation,
    LsRjtReason,
    OpenIntEnum,
    check_command,
    check_range,
    decode_guard,
    expect_command,
    need,
    port_id_bytes,
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

_ACC_WORD = bytes((ElsCommand.LS_ACC, 0, 0, 0))
_ASSIGNED_CODES = frozenset(int(c) for c in ElsCommand)


def _command_word(command: int) -> bytes:
    return bytes((command, 0, 0, 0))


@dataclass(frozen=True)
class LsAcc:
    """A plain LS_ACC with no body (FC-LS-3 LS_ACC clause): the reply to LOGO, SCR, RSCN,
    RRQ and every request whose accept carries nothing fcsoft reads."""

    def encode(self) -> bytes:
        """The 4-byte payload."""
        return _ACC_WORD

    @classmethod
    @decode_guard("LS_ACC")
    def decode(cls, data: BytesLike) -> LsAcc:
        """Decode an LS_ACC; a body after the command word is ignored."""
        expect_command(data, (ElsCommand.LS_ACC,), "LS_ACC")
        need(data, 4, "LS_ACC")
        return cls()


_LS_RJT = struct.Struct(">B4xBBB")


@dataclass(frozen=True)
class LsRjt:
    """LS_RJT (FC-LS-3 LS_RJT clause): reason, explanation, vendor unique byte."""

    reason: LsRjtReason
    explanation: LsRjtExplanation = LsRjtExplanation.NO_ADDITIONAL_EXPLANATION
    vendor_unique: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", LsRjtReason(self.reason))
        object.__setattr__(self, "explanation", LsRjtExplanation(self.explanation))
        check_range("vendor_unique", self.vendor_unique, 8)

    def encode(self) -> bytes:
        """The 8-byte payload."""
        return _LS_RJT.pack(ElsCommand.LS_RJT, self.reason, self.explanation,
                            self.vendor_unique)

    @classmethod
    @decode_guard("LS_RJT")
    def decode(cls, data: BytesLike) -> LsRjt:
        """Decode an LS_RJT (8 bytes; extra bytes ignored)."""
        expect_command(data, (ElsCommand.LS_RJT,), "LS_RJT")
        need(data, _LS_RJT.size, "LS_RJT")
        _, reason, explanation, vendor = _LS_RJT.unpack_from(data, 0)
        return cls(LsRjtReason(reason), LsRjtExplanation(explanation), vendor)


_LOGO = struct.Struct(">B3xI8s")


@dataclass(frozen=True)
class Logo:
    """LOGO request (FC-LS-3 LOGO clause): the N_Port_ID and port name logging out.

    Its accept is a plain `LsAcc`.
    """

    port_id: int
    port_name: WWN

    def __post_init__(self) -> None:
        object.__setattr__(self, "port_name", WWN(self.port_name))
        check_range("port_id", self.port_id, 24)

    def encode(self) -> bytes:
        """The 16-byte payload."""
        return _LOGO.pack(ElsCommand.LOGO, self.port_id, self.port_name.to_bytes8())

    @classmethod
    @decode_guard("LOGO")
    def decode(cls, data: BytesLike) -> Logo:
        """Decode a LOGO (16 bytes; extra bytes ignored)."""
        expect_command(data, (ElsCommand.LOGO,), "LOGO")
        need(data, _LOGO.size, "LOGO")
        _, word1, name = _LOGO.unpack_from(data, 0)
        return cls(word1 & 0xFFFFFF, WWN(name))


_ADISC = struct.Struct(">B3xI8s8sI")


@dataclass(frozen=True)
class Adisc:
    """ADISC request and its LS_ACC (FC-LS-3 ADISC clause): same layout both ways.

    `hard_address` is the port's hard (loop) address, 0 when it has none.
    """

    hard_address: int
    port_name: WWN
    node_name: WWN
    port_id: int
    command: ElsCommand = ElsCommand.ADISC

    def __post_init__(self) -> None:
        check_command("Adisc", self.command, (ElsCommand.ADISC, ElsCommand.LS_ACC))
        object.__setattr__(self, "command", ElsCommand(self.command))
        object.__setattr__(self, "port_name", WWN(self.port_name))
        object.__setattr__(self, "node_name", WWN(self.node_name))
        check_range("hard_address", self.hard_address, 24)
        check_range("port_id", self.port_id, 24)

    def encode(self) -> bytes:
        """The 28-byte payload."""
        return _ADISC.pack(self.command, self.hard_address, self.port_name.to_bytes8(),
                           self.node_name.to_bytes8(), self.port_id)

    @classmethod
    @decode_guard("ADISC")
    def decode(cls, data: BytesLike) -> Adisc:
        """Decode an ADISC or its LS_ACC (28 bytes; extra bytes ignored)."""
        command = expect_command(data, (ElsCommand.ADISC, ElsCommand.LS_ACC), "ADISC")
        need(data, _ADISC.size, "ADISC")
        _, hard, wwpn, wwnn, pid = _ADISC.unpack_from(data, 0)
        return cls(hard & 0xFFFFFF, WWN(wwpn), WWN(wwnn), pid & 0xFFFFFF, command)


_RRQ = struct.Struct(">B3xIHH")


@dataclass(frozen=True)
class Rrq:
    """RRQ request (FC-LS-3 RRQ clause): the exchange whose recovery qualifier to reinstate,
    named by the exchange originator's S_ID, OX_ID and RX_ID. Its accept is a plain `LsAcc`."""

    originator_s_id: int
    ox_id: int
    rx_id: int

    def __post_init__(self) -> None:
        check_range("originator_s_id", self.originator_s_id, 24)
        check_range("ox_id", self.ox_id, 16)
        check_range("rx_id", self.rx_id, 16)

    def encode(self) -> bytes:
        """The 12-byte payload."""
        return _RRQ.pack(ElsCommand.RRQ, self.originator_s_id, self.ox_id, self.rx_id)

    @classmethod
    @decode_guard("RRQ")
    def decode(cls, data: BytesLike) -> Rrq:
        """Decode an RRQ (12 bytes; extra bytes ignored)."""
        expect_command(data, (ElsCommand.RRQ,), "RRQ")
        need(data, _RRQ.size, "RRQ")
        _, sid, ox, rx = _RRQ.unpack_from(data, 0)
        return cls(sid & 0xFFFFFF, ox, rx)


@dataclass(frozen=True)
class Rtv:
    """RTV request (FC-LS-3 RTV clause): just the command word. The answer is `RtvAccept`."""

    def encode(self) -> bytes:
        """The 4-byte payload."""
        return _command_word(ElsCommand.RTV)

    @classmethod
    @decode_guard("RTV")
    def decode(cls, data: BytesLike) -> Rtv:
        """Decode an RTV (4 bytes; extra bytes ignored)."""
        expect_command(data, (ElsCommand.RTV,), "RTV")
        need(data, 4, "RTV")
        return cls()


class RtvQualifier(IntFlag):
    """Timeout qualifier word of the RTV LS_ACC (FC-LS-3 RTV clause; fc_els.h FC_ELS_RTV_*)."""

    E_D_TOV_RESOLUTION_NS = 1 << 26  # E_D_TOV counts nanoseconds instead of milliseconds
    R_T_TOV_100_US = 1 << 19  # R_T_TOV is 100 us instead of 100 ms


_RTV_ACC = struct.Struct(">B3xIII")


@dataclass(frozen=True)
class RtvAccept:
    """The LS_ACC of RTV: R_A_TOV and E_D_TOV (ms unless the qualifier says ns) and the
    timeout qualifier word."""

    r_a_tov: int
    e_d_tov: int
    qualifier: RtvQualifier = RtvQualifier(0)  # noqa: RUF009 - IntFlag values are immutable

    def __post_init__(self) -> None:
        object.__setattr__(self, "qualifier", RtvQualifier(self.qualifier))
        check_range("r_a_tov", self.r_a_tov, 32)
        check_range("e_d_tov", self.e_d_tov, 32)
        check_range("qualifier", int(self.qualifier), 32)

    @property
    def e_d_tov_in_ns(self) -> bool:
        """True when E_D_TOV is given in nanoseconds (TOQ E_D_TOV resolution bit)."""
        return bool(self.qualifier & RtvQualifier.E_D_TOV_RESOLUTION_NS)

    def encode(self) -> bytes:
        """The 16-byte payload."""
        return _RTV_ACC.pack(ElsCommand.LS_ACC, self.r_a_tov, self.e_d_tov, int(self.qualifier))

    @classmethod
    @decode_guard("RTV LS_ACC")
    def decode(cls, data: BytesLike) -> RtvAccept:
        """Decode an RTV LS_ACC (16 bytes; extra bytes ignored)."""
        expect_command(data, (ElsCommand.LS_ACC,), "RTV LS_ACC")
        need(data, _RTV_ACC.size, "RTV LS_ACC")
        _, ratov, edtov, toq = _RTV_ACC.unpack_from(data, 0)
        return cls(ratov, edtov, RtvQualifier(toq))


class ScrFunction(OpenIntEnum):
    """SCR registration function (FC-LS-3 SCR clause; fc_els.h enum fc_els_scr_func)."""

    FABRIC_DETECTED = 1  # RSCNs for changes the fabric detects
    N_PORT_DETECTED = 2  # RSCNs other Nx_Ports send
    FULL = 3  # both
    CLEAR = 255  # remove this port's registration


_SCR = struct.Struct(">B6xB")


@dataclass(frozen=True)
class Scr:
    """SCR request (FC-LS-3 SCR clause), sent to the fabric controller FFFFFD."""

    function: ScrFunction = ScrFunction.FULL

    def __post_init__(self) -> None:
        object.__setattr__(self, "function", ScrFunction(self.function))

    def encode(self) -> bytes:
        """The 8-byte payload."""
        return _SCR.pack(ElsCommand.SCR, self.function)

    @classmethod
    @decode_guard("SCR")
    def decode(cls, data: BytesLike) -> Scr:
        """Decode an SCR (8 bytes; extra bytes ignored). A reserved function is kept."""
        expect_command(data, (ElsCommand.SCR,), "SCR")
        need(data, _SCR.size, "SCR")
        _, function = _SCR.unpack_from(data, 0)
        return cls(ScrFunction(function))


class RscnEventQualifier(OpenIntEnum):
    """RSCN page event qualifier, bits 5-2 of the page's first byte (FC-LS-3 RSCN clause;
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
_RSCN_HEADER = struct.Struct(">BBH")


@dataclass(frozen=True)
class RscnPage:
    """One RSCN affected port page: the affected N_Port_ID / area / domain, its address
    format and the event qualifier."""

    affected_id: int
    address_format: RscnAddressFormat = RscnAddressFormat.PORT
    event_qualifier: RscnEventQualifier = RscnEventQualifier.NOT_SPECIFIED

    def __post_init__(self) -> None:
        object.__setattr__(self, "address_format", RscnAddressFormat(self.address_format))
        object.__setattr__(self, "event_qualifier", RscnEventQualifier(self.event_qualifier))
        check_range("affected_id", self.affected_id, 24)
        check_range("event_qualifier", int(self.event_qualifier), 4)

    def encode(self) -> bytes:
        """The 4 bytes of the page."""
        flags = (int(self.event_qualifier) << 2) | int(self.address_format)
        return bytes((flags,)) + port_id_bytes(self.affected_id)


@dataclass(frozen=True)
class Rscn:
    """RSCN request (FC-LS-3 RSCN clause): a list of affected port pages. The accept is a
    plain `LsAcc`."""

    pages: tuple[RscnPage, ...]

    def __post_init__(self) -> None:
        pages = tuple(self.pages)
        if not 1 <= len(pages) <= MAX_RSCN_PAGES:
            raise ValueError(f"Rscn needs 1..{MAX_RSCN_PAGES} pages, got {len(pages)}")
        object.__setattr__(self, "pages", pages)

    @classmethod
    def for_ports(cls, port_ids: Iterable[int],
                  event_qualifier: RscnEventQualifier = RscnEventQualifier.NOT_SPECIFIED,
                  ) -> Rscn:
        """An RSCN with one port-format page per N_Port_ID."""
        return cls(tuple(RscnPage(p, RscnAddressFormat.PORT, event_qualifier)
                         for p in port_ids))

    def encode(self) -> bytes:
        """Header (0x61, page length 4, payload length) and the pages."""
        return (_RSCN_HEADER.pack(ElsCommand.RSCN, RSCN_PAGE_LEN,
                                  4 + RSCN_PAGE_LEN * len(self.pages))
                + b"".join(p.encode() for p in self.pages))

    @classmethod
    @decode_guard("RSCN")
    def decode(cls, data: BytesLike) -> Rscn:
        """Decode an RSCN; page length must be 4 and the payload length field must equal
        4 + 4 * pages and the bytes received."""
        expect_command(data, (ElsCommand.RSCN,), "RSCN")
        need(data, 4, "RSCN")
        _, page_len, payload_len = _RSCN_HEADER.unpack_from(data, 0)
        if page_len != RSCN_PAGE_LEN:
            raise DecodeError("RSCN", f"page length {page_len}, must be 4")
        if payload_len < 8 or payload_len % RSCN_PAGE_LEN:
            raise DecodeError("RSCN", f"payload length {payload_len} is not 4 + 4 * pages "
                                      "with at least one page")
        if payload_len != len(data):
            raise DecodeError("RSCN", f"payload length field says {payload_len} bytes, "
                                      f"received {len(data)}")
        pages = []
        for off in range(4, payload_len, RSCN_PAGE_LEN):
            flags = data[off]
            pages.append(RscnPage(int.from_bytes(data[off + 1:off + 4], "big"),
                                  RscnAddressFormat(flags & 0x03),
                                  RscnEventQualifier((flags >> 2) & 0x0F)))
        return cls(tuple(pages))


MAX_ECHO_DATA = MAX_PAYLOAD - 4  # 2108: one frame, minus the command word


@dataclass(frozen=True)
class Echo:
    """ECHO request and its LS_ACC (FC-LS-3 ECHO clause): the accept returns the data."""

    data: bytes = b""
    command: ElsCommand = ElsCommand.ECHO

    def __post_init__(self) -> None:
        check_command("Echo", self.command, (ElsCommand.ECHO, ElsCommand.LS_ACC))
        object.__setattr__(self, "command", ElsCommand(self.command))
        object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) > MAX_ECHO_DATA:
            raise ValueError(f"ECHO data is {len(self.data)} bytes, at most {MAX_ECHO_DATA}")

    def accept(self) -> Echo:
        """The LS_ACC that answers this ECHO: the same data."""
        return Echo(self.data, ElsCommand.LS_ACC)

    def encode(self) -> bytes:
        """Command word and data."""
        return _command_word(self.command) + self.data

    @classmethod
    @decode_guard("ECHO")
    def decode(cls, data: BytesLike) -> Echo:
        """Decode an ECHO or its LS_ACC: everything after the command word is the data,
        at most 2108 bytes."""
        command = expect_command(data, (ElsCommand.ECHO, ElsCommand.LS_ACC), "ECHO")
        need(data, 4, "ECHO")
        if len(data) - 4 > MAX_ECHO_DATA:
            raise DecodeError("ECHO", f"data is {len(data) - 4} bytes, at most {MAX_ECHO_DATA}")
        return cls(bytes(data[4:]), command)


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
