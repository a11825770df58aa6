"""Login payloads: FLOGI / FDISC / PLOGI / PDISC service parameters and PRLI / PRLO pages.

Service parameters (FC-LS-3 FLOGI / PLOGI / FDISC clauses and the Login service parameters
clause: common service parameters and class service parameters tables; byte offsets as in
Linux fc_els.h struct fc_els_flogi and Wireshark packet-fcels.c dissect_fcels_logi). One
116-byte layout serves FLOGI, FDISC, PLOGI, PDISC and the LS_ACC of each:

    0    command (FLOGI 04 / FDISC 51 / PLOGI 03 / PDISC 50 / LS_ACC 02), 3 reserved bytes
    4    common service parameters, 16 bytes:
           FC-PH version highest, lowest, BB_Credit (16)
           common features (16), BB_SC_N (4) | receive data field size (12)
           word 2: total concurrent sequences (16) | relative offset by info category (16)
                   in PLOGI and its LS_ACC, but R_A_TOV (32) in a FLOGI / FDISC LS_ACC
           E_D_TOV (32)
    20   N_Port_Name / F_Port_Name (8)
    28   Node_Name / Fabric_Name (8)
    36   class 1, 2, 3, 4 service parameters, 16 bytes each
    100  vendor version level (16)

Process login (FC-LS-3 PRLI and PRLO clauses; FCP-4 for the FCP page; Linux fc_els.h struct
fc_els_prli / fc_els_spp):

    0    command (PRLI 20 / PRLO 21 / LS_ACC 02), page length 0x10, payload length (16)
    4    pages of 16 bytes: TYPE, TYPE extension, flags, reserved,
         originator process associator (32), responder process associator (32),
         service parameters (32)

The LS_ACC of PRLI and PRLO has the same layout with command 0x02, and carries the response
code in the low nibble of each page's flags byte.

Length rules (see also els.py): the service parameter payload has a fixed length, so a longer
payload decodes and the excess is ignored (FLOGI may carry 256 bytes when the payload-length
feature bit is set; some ports pad). PRLI and PRLO carry a payload length field, so it must
equal the bytes received and the page length must be 0x10.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntFlag

from .els_codes import (
    ElsCommand,
    OpenIntEnum,
    check_command,
    check_range,
    decode_guard,
    expect_command,
    need,
    trusted,
)
from .errors import DecodeError
from .header import MAX_PAYLOAD, FcType
from .types import BytesLike
from .wwn import WWN

SERVICE_PARAMETERS_LEN = 116
CLASS_SERVICE_PARAMETERS_LEN = 16
DEFAULT_RECEIVE_DATA_FIELD_SIZE = MAX_PAYLOAD  # 2112
DEFAULT_E_D_TOV = 2000  # ms, FC-FS-4 default (Linux fc_fs.h FC_DEF_E_D_TOV)
DEFAULT_R_A_TOV = 10000  # ms, FC-FS-4 default (Linux fc_fs.h FC_DEF_R_A_TOV)
FC_PH_VERSION = 0x20  # the version fields are obsolete (fc_els.h); Linux libfc sends 0x20


class CommonFeatures(IntFlag):
    """Common features, bits 31-16 of common service parameter word 1 (FC-LS-3 common
    service parameters table).

    Several bits mean different things in a fabric login and a port login, and in a request
    and its accept; those share a value and are aliases here (Linux fc_els.h FC_SP_FT_*,
    lpfc_hw.h struct csp). Use the name that fits the payload you look at; repr() shows the
    first name defined for a value.
    """

    # 0x8000: PLOGI/PDISC and their LS_ACC | FLOGI/FDISC request | FLOGI/FDISC LS_ACC
    CONTINUOUSLY_INCREASING_RELATIVE_OFFSET = 0x8000
    NPIV_SUPPORT = 0x8000  # "Multiple N_Port_ID support": the N_Port will send FDISC
    CLEAN_ADDRESS = 0x8000  # the fabric: the assigned address has no stale logins
    # 0x4000: PLOGI | FLOGI request
    RANDOM_RELATIVE_OFFSET = 0x4000
    VIRTUAL_FABRICS = 0x4000  # the N_Port supports Virtual Fabrics (VFT headers)
    # 0x2000: FLOGI/FDISC LS_ACC | requests and PLOGI LS_ACC
    MULTIPLE_N_PORT_ID_ASSIGNMENT = 0x2000  # the fabric accepts FDISC (NPIV)
    VALID_VENDOR_VERSION_LEVEL = 0x2000
    F_PORT = 0x1000  # sent by an F_Port; clear from an N_Port (so: point-to-point)
    ALTERNATE_BB_CREDIT_MANAGEMENT = 0x0800
    E_D_TOV_RESOLUTION = 0x0400  # E_D_TOV counts nanoseconds instead of milliseconds
    MULTICAST = 0x0200  # obsolete
    BROADCAST = 0x0100  # obsolete
    HUNT_GROUP = 0x0080  # obsolete
    DEDICATED_SIMPLEX = 0x0040  # obsolete
    SECURITY = 0x0020  # FC-SP
    CLOCK_SYNCHRONIZATION = 0x0010
    R_T_TOV_VALUE = 0x0008  # R_T_TOV is 100 us instead of 100 ms
    DYNAMIC_HALF_DUPLEX = 0x0004
    SEQ_CNT = 0x0002  # continuously increasing SEQ_CNT
    PAYLOAD_LENGTH = 0x0001  # FLOGI payload is 256 bytes (with services availability)


class ClassServiceOptions(IntFlag):
    """Service options, word 0 bits 31-16 of a class service parameter block (FC-LS-3 class
    service parameters table; Linux fc_els.h FC_CPC_*, Wireshark packet-fcels.c)."""

    CLASS_VALID = 0x8000  # this class of service is supported
    INTERMIX = 0x4000  # class 1
    SEQUENTIAL_DELIVERY = 0x0800  # FLOGI: in-order delivery requested of the fabric
    CAMP_ON = 0x0200  # class 1
    PRIORITY = 0x0080
    NON_ZERO_CS_CTL = 0x0040  # FLOGI: non-zero CS_CTL tolerated


_CLASS = struct.Struct(">HHHHHHxBxx")


@dataclass(frozen=True)
class ClassServiceParameters:
    """One 16-byte class service parameter block (FC-LS-3 class service parameters table;
    Linux fc_els.h struct fc_els_cssp).

    All zero (the default) means "class not supported". The initiator and recipient control
    words are kept raw: fcsoft only speaks class 3, where FC-LS-3 leaves most of them
    reserved.
    """

    service_options: ClassServiceOptions = ClassServiceOptions(0)  # noqa: RUF009 - immutable
    initiator_control: int = 0
    recipient_control: int = 0
    receive_data_field_size: int = 0
    concurrent_sequences: int = 0
    end_to_end_credit: int = 0
    open_sequences_per_exchange: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "service_options", ClassServiceOptions(self.service_options))
        for name in ("service_options", "initiator_control", "recipient_control",
                     "receive_data_field_size", "concurrent_sequences", "end_to_end_credit"):
            check_range(name, int(getattr(self, name)), 16)
        check_range("open_sequences_per_exchange", self.open_sequences_per_exchange, 8)

    @classmethod
    def class3(cls, receive_data_field_size: int = DEFAULT_RECEIVE_DATA_FIELD_SIZE, *,
               concurrent_sequences: int = 0,
               open_sequences_per_exchange: int = 0) -> ClassServiceParameters:
        """A valid class 3 block with sequential delivery, as Linux libfc and switches send."""
        return cls(ClassServiceOptions.CLASS_VALID | ClassServiceOptions.SEQUENTIAL_DELIVERY,
                   receive_data_field_size=receive_data_field_size,
                   concurrent_sequences=concurrent_sequences,
                   open_sequences_per_exchange=open_sequences_per_exchange)

    @property
    def valid(self) -> bool:
        """True when the class-valid bit is set (the class is supported)."""
        return bool(self.service_options & ClassServiceOptions.CLASS_VALID)

    def encode(self) -> bytes:
        """The 16 bytes of the block."""
        return _CLASS.pack(int(self.service_options), self.initiator_control,
                           self.recipient_control, self.receive_data_field_size,
                           self.concurrent_sequences, self.end_to_end_credit,
                           self.open_sequences_per_exchange)

    @classmethod
    @decode_guard("class service parameters")
    def decode(cls, data: BytesLike, offset: int = 0) -> ClassServiceParameters:
        """Decode the 16-byte block at `offset`; reserved bytes are ignored."""
        if len(data) - offset < CLASS_SERVICE_PARAMETERS_LEN:
            raise DecodeError("class service parameters",
                              f"need 16 bytes at offset {offset}, have {len(data) - offset}")
        opts, ini, rcp, rdfs, seqs, e2e, open_seq = _CLASS.unpack_from(data, offset)
        if not (opts or ini or rcp or rdfs or seqs or e2e or open_seq):
            return CLASS_NOT_SUPPORTED
        return trusted(cls, ClassServiceOptions(opts), ini, rcp, rdfs, seqs, e2e, open_seq)


CLASS_NOT_SUPPORTED = ClassServiceParameters()

_LOGIN_COMMANDS = (ElsCommand.FLOGI, ElsCommand.FDISC, ElsCommand.PLOGI, ElsCommand.PDISC,
                   ElsCommand.LS_ACC)
_COMMON = struct.Struct(">B3xBBHHHII8s8s")


def _no_class_parameters() -> tuple[ClassServiceParameters, ...]:
    return (CLASS_NOT_SUPPORTED,) * 4


@dataclass(frozen=True)
class ServiceParameters:
    """The FLOGI / FDISC / PLOGI / PDISC payload and its LS_ACC (FC-LS-3 login clauses).

    `command` tells which: the request code, or LS_ACC for an accept. `sequences_or_r_a_tov`
    is common service parameter word 2 kept raw, because its meaning depends on the exchange:
    read it through `total_concurrent_sequences` / `relative_offset_by_category` in a PLOGI
    or its accept, and through `r_a_tov` in a FLOGI or FDISC accept. `classes` holds the four
    class service parameter blocks, class 1 first. Names and ports are coerced to WWN, so
    strings like "10:00:00:00:c9:00:00:01" are accepted.
    """

    command: ElsCommand
    port_name: WWN
    node_name: WWN
    common_features: CommonFeatures = CommonFeatures(0)  # noqa: RUF009 - immutable
    bb_credit: int = 0
    receive_data_field_size: int = DEFAULT_RECEIVE_DATA_FIELD_SIZE
    bb_sc_n: int = 0  # BB_SC_N, bits 15-12 of the receive data field size word
    sequences_or_r_a_tov: int = 0
    e_d_tov: int = 0
    classes: tuple[ClassServiceParameters, ...] = field(default_factory=_no_class_parameters)
    vendor_version: bytes = bytes(16)
    fc_ph_version_high: int = FC_PH_VERSION
    fc_ph_version_low: int = FC_PH_VERSION

    def __post_init__(self) -> None:
        check_command("ServiceParameters", self.command, _LOGIN_COMMANDS)
        object.__setattr__(self, "command", ElsCommand(self.command))
        object.__setattr__(self, "port_name", WWN(self.port_name))
        object.__setattr__(self, "node_name", WWN(self.node_name))
        object.__setattr__(self, "common_features", CommonFeatures(self.common_features))
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "vendor_version", bytes(self.vendor_version))
        if len(self.classes) != 4:
            raise ValueError(f"ServiceParameters needs 4 class blocks, got {len(self.classes)}")
        if len(self.vendor_version) != 16:
            raise ValueError("vendor_version must be 16 bytes")
        check_range("common_features", int(self.common_features), 16)
        check_range("bb_credit", self.bb_credit, 16)
        check_range("receive_data_field_size", self.receive_data_field_size, 12)
        check_range("bb_sc_n", self.bb_sc_n, 4)
        check_range("sequences_or_r_a_tov", self.sequences_or_r_a_tov, 32)
        check_range("e_d_tov", self.e_d_tov, 32)
        check_range("fc_ph_version_high", self.fc_ph_version_high, 8)
        check_range("fc_ph_version_low", self.fc_ph_version_low, 8)

    # -- the two readings of common service parameter word 2 --------------------------------

    @property
    def total_concurrent_sequences(self) -> int:
        """PLOGI reading of word 2, bits 31-16 (FC-LS-3 uses bits 23-16; 31-24 are 0)."""
        return self.sequences_or_r_a_tov >> 16

    @property
    def relative_offset_by_category(self) -> int:
        """PLOGI reading of word 2, bits 15-0: one bit per information category."""
        return self.sequences_or_r_a_tov & 0xFFFF

    @property
    def r_a_tov(self) -> int:
        """FLOGI / FDISC LS_ACC reading of word 2: R_A_TOV in milliseconds."""
        return self.sequences_or_r_a_tov

    @property
    def class3(self) -> ClassServiceParameters:
        """The class 3 service parameters, the only class fcsoft uses."""
        return self.classes[2]

    @property
    def from_f_port(self) -> bool:
        """True when an F_Port sent this (fabric present); False for point-to-point."""
        return bool(self.common_features & CommonFeatures.F_PORT)

    # -- typical payloads ----------------------------------------------------------------------

    @classmethod
    def flogi(cls, port_name: WWN | int | str, node_name: WWN | int | str, *,
              npiv: bool = True, bb_credit: int = 10,
              receive_data_field_size: int = DEFAULT_RECEIVE_DATA_FIELD_SIZE,
              ) -> ServiceParameters:
        """The FLOGI an N_Port sends, shaped as Linux libfc builds it (fc_encode.h
        fc_flogi_fill): version 0x20/0x20, NPIV support if `npiv`, class 3 valid with
        sequential delivery, timeouts left 0 for the fabric to fill in."""
        features = CommonFeatures.NPIV_SUPPORT if npiv else CommonFeatures(0)
        return cls(ElsCommand.FLOGI, WWN(port_name), WWN(node_name), features, bb_credit,
                   receive_data_field_size,
                   classes=(CLASS_NOT_SUPPORTED, CLASS_NOT_SUPPORTED,
                            ClassServiceParameters.class3(0), CLASS_NOT_SUPPORTED))

    @classmethod
    def fdisc(cls, port_name: WWN | int | str, node_name: WWN | int | str, *,
              bb_credit: int = 10,
              receive_data_field_size: int = DEFAULT_RECEIVE_DATA_FIELD_SIZE,
              ) -> ServiceParameters:
        """The FDISC an NPIV port sends for a further N_Port_ID (libfc fc_fdisc_fill)."""
        return cls(ElsCommand.FDISC, WWN(port_name), WWN(node_name), CommonFeatures(0),
                   bb_credit, receive_data_field_size,
                   classes=(CLASS_NOT_SUPPORTED, CLASS_NOT_SUPPORTED,
                            ClassServiceParameters.class3(0), CLASS_NOT_SUPPORTED))

    @classmethod
    def flogi_accept(cls, port_name: WWN | int | str, fabric_name: WWN | int | str, *,
                     npiv: bool = True, bb_credit: int = 16,
                     receive_data_field_size: int = DEFAULT_RECEIVE_DATA_FIELD_SIZE,
                     e_d_tov: int = DEFAULT_E_D_TOV,
                     r_a_tov: int = DEFAULT_R_A_TOV) -> ServiceParameters:
        """The LS_ACC a fabric F_Port returns to FLOGI or FDISC (docs/behaviour.md 2).

        `port_name` is the F_Port's name, `fabric_name` goes in the node name field. Sets
        F_PORT and, with `npiv`, MULTIPLE_N_PORT_ID_ASSIGNMENT; class 3 valid; word 2 holds
        R_A_TOV. BB_Credit is nominal: TCP does the flow control.
        """
        features = CommonFeatures.F_PORT
        if npiv:
            features |= CommonFeatures.MULTIPLE_N_PORT_ID_ASSIGNMENT
        return cls(ElsCommand.LS_ACC, WWN(port_name), WWN(fabric_name), features, bb_credit,
                   receive_data_field_size, sequences_or_r_a_tov=r_a_tov, e_d_tov=e_d_tov,
                   classes=(CLASS_NOT_SUPPORTED, CLASS_NOT_SUPPORTED,
                            ClassServiceParameters.class3(receive_data_field_size),
                            CLASS_NOT_SUPPORTED))

    @classmethod
    def plogi(cls, port_name: WWN | int | str, node_name: WWN | int | str, *,
              command: ElsCommand = ElsCommand.PLOGI, bb_credit: int = 10,
              receive_data_field_size: int = DEFAULT_RECEIVE_DATA_FIELD_SIZE,
              e_d_tov: int = DEFAULT_E_D_TOV) -> ServiceParameters:
        """A PLOGI (or, with command=LS_ACC, its accept) shaped as libfc fc_plogi_fill
        builds it: continuously increasing relative offset, 255 total concurrent sequences,
        relative offset for categories 0-4 (0x1F), class 3 with 255 concurrent sequences and
        one open sequence per exchange."""
        return cls(command, WWN(port_name), WWN(node_name),
                   CommonFeatures.CONTINUOUSLY_INCREASING_RELATIVE_OFFSET, bb_credit,
                   receive_data_field_size, sequences_or_r_a_tov=(255 << 16) | 0x1F,
                   e_d_tov=e_d_tov,
                   classes=(CLASS_NOT_SUPPORTED, CLASS_NOT_SUPPORTED,
                            ClassServiceParameters.class3(receive_data_field_size,
                                                          concurrent_sequences=255,
                                                          open_sequences_per_exchange=1),
                            CLASS_NOT_SUPPORTED))

    # -- codec ---------------------------------------------------------------------------------

    def encode(self) -> bytes:
        """The 116-byte payload."""
        head = _COMMON.pack(self.command, self.fc_ph_version_high, self.fc_ph_version_low,
                            self.bb_credit, int(self.common_features),
                            (self.bb_sc_n << 12) | self.receive_data_field_size,
                            self.sequences_or_r_a_tov, self.e_d_tov,
                            self.port_name.to_bytes8(), self.node_name.to_bytes8())
        return head + b"".join(c.encode() for c in self.classes) + self.vendor_version

    @classmethod
    @decode_guard("service parameters")
    def decode(cls, data: BytesLike) -> ServiceParameters:
        """Decode a FLOGI / FDISC / PLOGI / PDISC payload or its LS_ACC.

        At least 116 bytes; bytes beyond (a 256-byte FLOGI's services availability, or
        padding) are ignored. Reserved bytes are not checked.
        """
        what = "service parameters"
        command = expect_command(data, _LOGIN_COMMANDS, what)
        need(data, SERVICE_PARAMETERS_LEN, f"{command.name} {what}")
        (_, hi, lo, credit, features, bb_data, word2, edtov, wwpn,
         wwnn) = _COMMON.unpack_from(data, 0)
        classes = tuple(ClassServiceParameters.decode(data, 36 + 16 * i) for i in range(4))
        return trusted(cls, command, WWN.from_bytes8(wwpn), WWN.from_bytes8(wwnn),
                       CommonFeatures(features), credit, bb_data & 0x0FFF, bb_data >> 12, word2,
                       edtov, classes, bytes(data[100:116]), hi, lo)


# ------------------------------------------------------------------------------------------
# PRLI / PRLO


class PrliResponseCode(OpenIntEnum):
    """Accept response code, low nibble of a page's flags in PRLI / PRLO LS_ACC
    (FC-LS-3 PRLI accept response code table; Linux fc_els.h enum fc_els_spp_resp).
    Requests carry 0."""

    NOT_SET = 0x0  # in requests
    REQUEST_EXECUTED = 0x1
    NO_RESOURCES = 0x2  # no resources for image pairs (terminal)
    INITIALIZATION_NOT_COMPLETE = 0x3  # for this TYPE; may be retried
    NO_SUCH_PROCESS_ASSOCIATOR = 0x4  # target process associator does not exist
    CONFIGURATION_PRECLUDES = 0x5  # predefined configuration precludes the image pair
    REQUEST_EXECUTED_CONDITIONALLY = 0x6  # some service parameters not accepted
    MULTIPLE_PAGES_NOT_SUPPORTED = 0x7  # responder handles one page per request only
    INVALID_SERVICE_PARAMETERS = 0x8


class FcpServiceParameters(IntFlag):
    """FCP service parameter word of a TYPE 08h page (FCP-4 PRLI service parameter page;
    Linux fc_fcp.h FCP_SPPF_*, Wireshark packet-fcels.c fcpflags). Other TYPEs define their
    own bits; they pass through unnamed."""

    TASK_RETRY_ID = 0x0200  # task retry identification requested / accepted
    RETRY = 0x0100  # FCP sequence-level error recovery
    CONFIRMED_COMPLETION = 0x0080  # FCP_CONF allowed
    DATA_OVERLAY = 0x0040  # data overlay allowed
    INITIATOR_FUNCTION = 0x0020
    TARGET_FUNCTION = 0x0010
    READ_XFER_RDY_DISABLED = 0x0002  # obsolete in FCP-4 but still set (libfc does)
    WRITE_XFER_RDY_DISABLED = 0x0001  # the target sends no FCP_XFER_RDY for writes


_PAGE = struct.Struct(">BBBxIII")
_PRLI_HEADER = struct.Struct(">BBH")
PRLI_PAGE_LEN = 0x10
_FLAG_ORIGINATOR_PA_VALID = 0x80
_FLAG_RESPONDER_PA_VALID = 0x40
_FLAG_ESTABLISH_IMAGE_PAIR = 0x20


@dataclass(frozen=True)
class ServiceParameterPage:
    """One 16-byte PRLI / PRLO service parameter page (FC-LS-3 PRLI and PRLO clauses).

    `establish_image_pair` is "establish image pair" in a PRLI request and "image pair
    established" in its accept; PRLO leaves it 0. `response_code` is meaningful in accepts
    only. `service_parameters` is the FCP word for TYPE 08h.
    """

    type: int = FcType.FCP
    type_extension: int = 0
    originator_pa_valid: bool = False
    responder_pa_valid: bool = False
    establish_image_pair: bool = False
    response_code: PrliResponseCode = PrliResponseCode.NOT_SET
    originator_pa: int = 0
    responder_pa: int = 0
    service_parameters: FcpServiceParameters = FcpServiceParameters(0)  # noqa: RUF009

    def __post_init__(self) -> None:
        object.__setattr__(self, "response_code", PrliResponseCode(self.response_code))
        object.__setattr__(self, "service_parameters",
                           FcpServiceParameters(self.service_parameters))
        check_range("type", self.type, 8)
        check_range("type_extension", self.type_extension, 8)
        check_range("response_code", int(self.response_code), 4)
        check_range("originator_pa", self.originator_pa, 32)
        check_range("responder_pa", self.responder_pa, 32)
        check_range("service_parameters", int(self.service_parameters), 32)

    def encode(self) -> bytes:
        """The 16 bytes of the page."""
        flags = ((_FLAG_ORIGINATOR_PA_VALID if self.originator_pa_valid else 0)
                 | (_FLAG_RESPONDER_PA_VALID if self.responder_pa_valid else 0)
                 | (_FLAG_ESTABLISH_IMAGE_PAIR if self.establish_image_pair else 0)
                 | int(self.response_code))
        return _PAGE.pack(self.type, self.type_extension, flags, self.originator_pa,
                          self.responder_pa, int(self.service_parameters))

    @classmethod
    @decode_guard("service parameter page")
    def decode(cls, data: BytesLike, offset: int = 0) -> ServiceParameterPage:
        """Decode the 16-byte page at `offset`. Flag bit 0x10 and byte 3 are reserved."""
        if len(data) - offset < PRLI_PAGE_LEN:
            raise DecodeError("service parameter page",
                              f"need 16 bytes at offset {offset}, have {len(data) - offset}")
        type_, ext, flags, opa, rpa, params = _PAGE.unpack_from(data, offset)
        return cls(type_, ext, bool(flags & _FLAG_ORIGINATOR_PA_VALID),
                   bool(flags & _FLAG_RESPONDER_PA_VALID),
                   bool(flags & _FLAG_ESTABLISH_IMAGE_PAIR), PrliResponseCode(flags & 0x0F),
                   opa, rpa, FcpServiceParameters(params))


MAX_PRLI_PAGES = (0xFFFF - 4) // PRLI_PAGE_LEN  # the payload length field is 16 bits


def _pages_tuple(what: str, pages: Iterable[ServiceParameterPage]) -> tuple[
        ServiceParameterPage, ...]:
    result = tuple(pages)
    if not 1 <= len(result) <= MAX_PRLI_PAGES:
        raise ValueError(f"{what} needs 1..{MAX_PRLI_PAGES} pages, got {len(result)}")
    return result


def _encode_pages(command: int, pages: tuple[ServiceParameterPage, ...]) -> bytes:
    return (_PRLI_HEADER.pack(command, PRLI_PAGE_LEN, 4 + PRLI_PAGE_LEN * len(pages))
            + b"".join(p.encode() for p in pages))


def _decode_pages(data: BytesLike, what: str) -> tuple[ServiceParameterPage, ...]:
    """Check the PRLI/PRLO header lengths strictly and decode the pages."""
    need(data, 4, what)
    _, page_len, payload_len = _PRLI_HEADER.unpack_from(data, 0)
    if page_len != PRLI_PAGE_LEN:
        raise DecodeError(what, f"page length {page_len:#04x}, must be 0x10")
    if payload_len < 4 + PRLI_PAGE_LEN or (payload_len - 4) % PRLI_PAGE_LEN:
        raise DecodeError(what, f"payload length {payload_len} is not 4 + 16 * pages "
                                "with at least one page")
    if payload_len != len(data):
        raise DecodeError(what, f"payload length field says {payload_len} bytes, "
                                f"received {len(data)}")
    return tuple(ServiceParameterPage.decode(data, off)
                 for off in range(4, payload_len, PRLI_PAGE_LEN))


@dataclass(frozen=True)
class Prli:
    """PRLI request, or its LS_ACC with command=LS_ACC (FC-LS-3 PRLI clause)."""

    pages: tuple[ServiceParameterPage, ...]
    command: ElsCommand = ElsCommand.PRLI

    def __post_init__(self) -> None:
        check_command("Prli", self.command, (ElsCommand.PRLI, ElsCommand.LS_ACC))
        object.__setattr__(self, "command", ElsCommand(self.command))
        object.__setattr__(self, "pages", _pages_tuple("Prli", self.pages))

    def encode(self) -> bytes:
        """Header (command, page length 0x10, payload length) and the pages."""
        return _encode_pages(self.command, self.pages)

    @classmethod
    @decode_guard("PRLI")
    def decode(cls, data: BytesLike) -> Prli:
        """Decode a PRLI or PRLI LS_ACC; the payload length field must match exactly."""
        command = expect_command(data, (ElsCommand.PRLI, ElsCommand.LS_ACC), "PRLI")
        return cls(_decode_pages(data, "PRLI"), command)


@dataclass(frozen=True)
class Prlo:
    """PRLO request, or its LS_ACC with command=LS_ACC (FC-LS-3 PRLO clause).

    The page length byte is obsolete for PRLO but FC-LS-3 still requires 0x10 there.
    """

    pages: tuple[ServiceParameterPage, ...]
    command: ElsCommand = ElsCommand.PRLO

    def __post_init__(self) -> None:
        check_command("Prlo", self.command, (ElsCommand.PRLO, ElsCommand.LS_ACC))
        object.__setattr__(self, "command", ElsCommand(self.command))
        object.__setattr__(self, "pages", _pages_tuple("Prlo", self.pages))

    def encode(self) -> bytes:
        """Header (command, page length 0x10, payload length) and the pages."""
        return _encode_pages(self.command, self.pages)

    @classmethod
    @decode_guard("PRLO")
    def decode(cls, data: BytesLike) -> Prlo:
        """Decode a PRLO or PRLO LS_ACC; the payload length field must match exactly."""
        command = expect_command(data, (ElsCommand.PRLO, ElsCommand.LS_ACC), "PRLO")
        return cls(_decode_pages(data, "PRLO"), command)
