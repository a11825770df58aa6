"""Login payloads: FLOGI / FDISC / PLOGI / PDISC service parameters and PRLI / PRLO pages.

Service parameters (FC-LS-4 FLOGI, FDISC, PLOGI, PDISC and their login service parameters:
the common service parameters and class service parameters; offsets as in Linux fc_els.h
struct fc_els_flogi / fc_els_csp / fc_els_cssp and Wireshark packet-fcels.c
dissect_fcels_logi). One 116-byte layout, `ServiceParameters._layout`, serves FLOGI, FDISC,
PLOGI, PDISC and the LS_ACC of each: the command word, 16 bytes of common service
parameters, the port and node (or fabric) names, four 16-byte class blocks
(`ClassServiceParameters`) and the vendor version level. Common service parameter word 2 is
total concurrent sequences | relative offset by information category in a PLOGI and its
LS_ACC, but R_A_TOV in a FLOGI / FDISC LS_ACC, so it is kept raw.

Process login (FC-LS-4 PRLI and PRLO; FCP-4 for the FCP page; Linux fc_els.h struct
fc_els_prli / fc_els_spp): [command, page length 10h, payload length], then 16-byte pages
(`ServiceParameterPage`). The LS_ACC of PRLI and PRLO has the same layout with command 0x02,
and carries the response code in the low nibble of each page's flags byte.

Length rules (see also els.py): the service parameter payload has a fixed length, so a longer
payload decodes and the excess is ignored (FLOGI may carry 256 bytes when the payload-length
feature bit is set; some ports pad). PRLI and PRLO carry a payload length field, so it must
equal the bytes received and the page length must be 0x10.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Self

from construct import (
    Array,
    BitsInteger,
    BitStruct,
    Bytes,
    Const,
    Flag,
    Int8ub,
    Int16ub,
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
    OpenIntEnum,
    check_page_list,
    check_range,
    expect_command,
    need,
)
from .header import MAX_PAYLOAD, FcType
from .layout import Fields, Layout, unsigned
from .types import BytesLike
from .wwn import WWN

SERVICE_PARAMETERS_LEN = 116
CLASS_SERVICE_PARAMETERS_LEN = 16
DEFAULT_RECEIVE_DATA_FIELD_SIZE = MAX_PAYLOAD  # 2112
DEFAULT_E_D_TOV = 2000  # ms, FC-FS-4 default (Linux fc_fs.h FC_DEF_E_D_TOV)
DEFAULT_R_A_TOV = 10000  # ms, FC-FS-4 default (Linux fc_fs.h FC_DEF_R_A_TOV)
FC_PH_VERSION = 0x20  # the version fields are obsolete (fc_els.h); Linux libfc sends 0x20


class CommonFeatures(IntFlag):
    """Common features, bits 31-16 of common service parameter word 1 (FC-LS-4 common
    service parameters).

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


@dataclass(frozen=True)
class ClassServiceParameters(LinkServicePayload):
    """One 16-byte class service parameter block (FC-LS-4 class service parameters; Linux
    fc_els.h struct fc_els_cssp).

    All zero (the default) means "class not supported". The initiator and recipient control
    words are kept raw: fcsoft only speaks class 3, where FC-LS-4 leaves most of them
    reserved. Memoized: every login carries one of a few blocks.
    """

    service_options: ClassServiceOptions = ClassServiceOptions(0)  # noqa: RUF009 - immutable
    initiator_control: int = 0
    recipient_control: int = 0
    receive_data_field_size: int = 0
    concurrent_sequences: int = 0
    end_to_end_credit: int = 0
    open_sequences_per_exchange: int = 0
    _layout = Layout("class service parameters", Struct(
        "service_options" / Int16ub,  # word 0
        "initiator_control" / Int16ub,
        "recipient_control" / Int16ub,  # word 1
        "receive_data_field_size" / Int16ub,
        "concurrent_sequences" / Int16ub,  # word 2
        "end_to_end_credit" / Int16ub,
        Padding(1), "open_sequences_per_exchange" / Int8ub,  # word 3
        Padding(2)))
    _convert = {"service_options": unsigned(ClassServiceOptions)}
    _memoize = True

    @classmethod
    @functools.lru_cache(maxsize=64)
    def class3(cls, receive_data_field_size: int = DEFAULT_RECEIVE_DATA_FIELD_SIZE, *,
               concurrent_sequences: int = 0,
               open_sequences_per_exchange: int = 0) -> ClassServiceParameters:
        """A valid class 3 block with sequential delivery, as Linux libfc and switches send
        (one value per set of arguments: logins share it, and its encoding)."""
        return cls(ClassServiceOptions.CLASS_VALID | ClassServiceOptions.SEQUENTIAL_DELIVERY,
                   receive_data_field_size=receive_data_field_size,
                   concurrent_sequences=concurrent_sequences,
                   open_sequences_per_exchange=open_sequences_per_exchange)

    @property
    def valid(self) -> bool:
        """True when the class-valid bit is set (the class is supported)."""
        return bool(self.service_options & ClassServiceOptions.CLASS_VALID)


CLASS_NOT_SUPPORTED = ClassServiceParameters()

_LOGIN_COMMANDS = (ElsCommand.FLOGI, ElsCommand.FDISC, ElsCommand.PLOGI, ElsCommand.PDISC,
                   ElsCommand.LS_ACC)


def _no_class_parameters() -> tuple[ClassServiceParameters, ...]:
    return (CLASS_NOT_SUPPORTED,) * 4


@dataclass(frozen=True)
class ServiceParameters(LinkServicePayload):
    """The FLOGI / FDISC / PLOGI / PDISC payload and its LS_ACC (FC-LS-4 FLOGI, FDISC, PLOGI
    and PDISC; the layout in the module doc).

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
    _layout = Layout("service parameters", Struct(
        "command" / Int8ub, Padding(3),  # 0
        # common service parameters
        "fc_ph_version_high" / Int8ub,  # 4
        "fc_ph_version_low" / Int8ub,  # 5
        "bb_credit" / Int16ub,  # 6
        "common_features" / Int16ub,  # 8
        "bb_sc_n_receive_data_field_size" / Int16ub,  # 10: BB_SC_N (15-12) | size (11-0)
        "sequences_or_r_a_tov" / Int32ub,  # 12
        "e_d_tov" / Int32ub,  # 16
        "port_name" / Int64ub,  # 20: N_Port_Name / F_Port_Name
        "node_name" / Int64ub,  # 28: Node_Name / Fabric_Name
        # 36: class 1, 2, 3, 4 service parameters, each a ClassServiceParameters
        "classes" / Array(4, Bytes(CLASS_SERVICE_PARAMETERS_LEN)),
        "vendor_version" / Bytes(16),  # 100
    ))
    _commands = _LOGIN_COMMANDS
    _convert = {"port_name": WWN, "node_name": WWN,
                "common_features": unsigned(CommonFeatures), "classes": tuple}
    _wire = {"classes": ClassServiceParameters.array()}

    def _validate(self) -> None:
        if len(self.classes) != 4:
            raise ValueError(f"ServiceParameters needs 4 class blocks, got {len(self.classes)}")
        check_range("receive_data_field_size", self.receive_data_field_size, 12)
        check_range("bb_sc_n", self.bb_sc_n, 4)

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

    def _to_fields(self) -> Mapping[str, object]:
        values = dict(vars(self))
        values["classes"] = [block.encode() for block in self.classes]
        values["bb_sc_n_receive_data_field_size"] = self.bb_sc_n << 12 | \
            self.receive_data_field_size
        return values

    @classmethod
    def _from_fields(cls, parsed: Fields) -> Self:
        word = parsed["bb_sc_n_receive_data_field_size"]
        return super()._from_fields({**parsed, "bb_sc_n": word >> 12,
                                     "receive_data_field_size": word & 0x0FFF})

    @classmethod
    def decode(cls, data: BytesLike) -> Self:
        """Decode a FLOGI / FDISC / PLOGI / PDISC payload or its LS_ACC.

        At least 116 bytes; bytes beyond (a 256-byte FLOGI's services availability, or
        padding) are ignored. Reserved bytes are not checked.
        """
        what = "service parameters"
        command = expect_command(data, _LOGIN_COMMANDS, what)
        need(data, SERVICE_PARAMETERS_LEN, f"{command.name} {what}")
        return cls.from_parsed(cls._layout.parse(data), what)


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


PRLI_PAGE_LEN = 0x10
MAX_PRLI_PAGES = (0xFFFF - 4) // PRLI_PAGE_LEN  # the payload length field is 16 bits


@dataclass(frozen=True)
class ServiceParameterPage(LinkServicePayload):
    """One 16-byte PRLI / PRLO service parameter page (FC-LS-4 PRLI and PRLO; fc_els.h
    struct fc_els_spp).

    `establish_image_pair` is "establish image pair" in a PRLI request and "image pair
    established" in its accept; PRLO leaves it 0. `response_code` is meaningful in accepts
    only. `service_parameters` is the FCP word for TYPE 08h. Flag bit 0x10 and byte 3 are
    reserved. Memoized: a port sends the same pages login after login.
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
    _layout = Layout("service parameter page", Struct(
        "type" / Int8ub,
        "type_extension" / Int8ub,
        "flags" / BitStruct(
            "originator_pa_valid" / Flag,  # 0x80
            "responder_pa_valid" / Flag,  # 0x40
            "establish_image_pair" / Flag,  # 0x20
            Padding(1),
            "response_code" / BitsInteger(4)),  # accepts only
        Padding(1),
        "originator_pa" / Int32ub,
        "responder_pa" / Int32ub,
        "service_parameters" / Int32ub))
    _convert = {"response_code": PrliResponseCode,
                "service_parameters": unsigned(FcpServiceParameters)}
    _memoize = True

    def _validate(self) -> None:
        check_range("response_code", int(self.response_code), 4)

    _FLAGS = ("originator_pa_valid", "responder_pa_valid", "establish_image_pair",
              "response_code")

    def _to_fields(self) -> Mapping[str, object]:
        return {**vars(self), "flags": {name: getattr(self, name) for name in self._FLAGS}}

    @classmethod
    def _from_fields(cls, parsed: Fields) -> Self:
        return cls(**{name: parsed[name] for name in cls._field_names() if name in parsed},
                   **{name: parsed["flags"][name] for name in cls._FLAGS})


# [command, page length 10h, payload length(2)], then the pages (FC-LS-4 PRLI and PRLO;
# fc_els.h struct fc_els_prli / fc_els_prlo)
_PROCESS_LOGIN = Struct(
    "command" / Int8ub,
    "page_length" / Const(PRLI_PAGE_LEN, Int8ub),
    "payload_length" / Rebuild(Int16ub, 4 + PRLI_PAGE_LEN * len_(this.pages)),
    "pages" / Array((this.payload_length - 4) // PRLI_PAGE_LEN,
                    Bytes(PRLI_PAGE_LEN)))  # each a ServiceParameterPage


class _ProcessLogin(LinkServicePayload):
    """PRLI and PRLO: the same header and pages. The header's lengths are strict (els.py)."""

    pages: tuple[ServiceParameterPage, ...]
    command: ElsCommand
    _convert = {"pages": tuple}
    _wire = {"pages": ServiceParameterPage.array()}

    def _validate(self) -> None:
        if not 1 <= len(self.pages) <= MAX_PRLI_PAGES:
            raise ValueError(f"{type(self).__name__} needs 1..{MAX_PRLI_PAGES} pages, "
                             f"got {len(self.pages)}")

    @classmethod
    def decode(cls, data: BytesLike) -> Self:
        """Decode the request or its LS_ACC; the payload length field must match exactly."""
        what = cls._layout.what
        expect_command(data, cls._commands, what)
        check_page_list(data, what, PRLI_PAGE_LEN, "#04x")
        return cls.from_parsed(cls._layout.parse(data), what)


@dataclass(frozen=True)
class Prli(_ProcessLogin):
    """PRLI request, or its LS_ACC with command=LS_ACC (FC-LS-4 PRLI)."""

    pages: tuple[ServiceParameterPage, ...]
    command: ElsCommand = ElsCommand.PRLI
    # the header is checked before parsing (check_page_list)
    _layout = Layout("PRLI", _PROCESS_LOGIN, compiled=True)
    _commands = (ElsCommand.PRLI, ElsCommand.LS_ACC)


@dataclass(frozen=True)
class Prlo(_ProcessLogin):
    """PRLO request, or its LS_ACC with command=LS_ACC (FC-LS-4 PRLO).

    The page length byte is obsolete for PRLO but FC-LS-4 still requires 0x10 there.
    """

    pages: tuple[ServiceParameterPage, ...]
    command: ElsCommand = ElsCommand.PRLO
    _layout = Layout("PRLO", _PROCESS_LOGIN, compiled=True)
    _commands = (ElsCommand.PRLO, ElsCommand.LS_ACC)
