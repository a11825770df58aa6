"""The fcsoft config file (docs/config.md): TOML in, frozen and validated dataclasses out.

Theory of operation
-------------------
Loading is two steps, so that each rule lives in one place:

1. The reader (`_read` and the `_to_*` converters) walks the TOML tables, rejects unknown keys
   and missing required ones, checks each value's TOML type and turns it into the Python type of
   its field: WWN strings -> `WWN`, "64MiB" -> bytes, "HOST:PORT" -> `(host, port)`, a relative
   backing path -> an absolute `Path` under the config file's directory.
2. Each dataclass checks its own values in `__post_init__` (ranges, choices, names that must
   exist or be unique, WWNs that must not repeat), so a config built in code (as tests do) is
   held to the same rules as one read from a file.

Every failure is a `ConfigError`. Its str() is one line, `SOURCE: KEY: PROBLEM`, where KEY is a
key path a user can find in the file: dotted TOML keys, with a 0-based `[index]` for each
`[[array-of-tables]]` entry or list item, counted in file order:

    fabric.domain_id    zone[0].members[1]    array[0].lun[2].size    array[0].host[0].luns.0

A TOML syntax error has `line L, column C` in place of the key path.

The module does no I/O beyond reading the one config file and imports nothing heavy
(tomllib, ipaddress, importlib.resources, difflib and json are imported when first needed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal

from .wire.wwn import WWN

__all__ = [
    "ArrayConfig", "Config", "ConfigError", "ControlConfig", "FabricConfig", "FcoeConfig",
    "HostConfig", "LunConfig", "PortGroupConfig",
    "ZoneConfig", "builtin_config_path", "load_builtin", "load_config", "parse_config",
    "parse_listen", "parse_size",
]

#: highest LUN number of the single-level flat addressing method (SAM-5 4.7.7: 14 bits)
MAX_LUN_NUMBER = 16383
#: a LUN's size must stay below 2**63 bytes, the largest file offset (off_t) a backing file has
MAX_LUN_SIZE = 2**63 - 1
BLOCK_SIZES = (512, 4096)
MEMORY: Final = "memory"


# --- errors -----------------------------------------------------------------------------------

# characters that str.splitlines() treats as line boundaries: escaped so a message stays one line
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


class ConfigError(ValueError):
    """A config file that cannot be used.

    `source` names the file (or "<string>"), `key` is the key path of the offending value (or
    "line L, column C" for a TOML syntax error, "" for a file that cannot be read), `problem`
    says what is wrong. str() is always one line: "SOURCE: KEY: PROBLEM".
    """

    def __init__(self, problem: str, key: str = "", source: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.key = key
        self.source = source

    def __str__(self) -> str:
        text = ": ".join(part for part in (self.source, self.key, self.problem) if part)
        return text.translate(_LINE_BREAKS)


def _show(value: object, limit: int = 60) -> str:
    """repr() of a user's value, shortened: it goes into a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _describe(value: object) -> str:
    """'an integer (5)': the TOML type of a value, for 'expected X, not Y' messages."""
    kind = {"bool": "a boolean", "int": "an integer", "float": "a float", "str": "a string",
            "list": "a list", "dict": "a table", "datetime": "a date-time", "date": "a date",
            "time": "a time"}.get(type(value).__name__, type(value).__name__)
    if isinstance(value, (list, dict)):
        return kind
    return f"{kind} ({_show(value)})"


def _key_part(key: str) -> str:
    """A TOML key as it may be written in a key path: bare when it can be, quoted otherwise."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return key
    import json
    return json.dumps(key)  # ensure_ascii: no line breaks or control characters survive


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and not key.startswith("[") else path + key


# --- size and listen address (also used by the command line) --------------------------------

_UNITS = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_SIZE_RE = re.compile(r"([0-9]{1,30})(?:\.([0-9]{1,30}))?[ \t]*([A-Za-z]{1,3})")


def parse_size(text: str | int) -> int:
    """Bytes in a size such as "64MiB", "1.5GiB" or "512B" (units B, KiB, MiB, GiB, TiB, in any
    case; an int is taken as bytes). Raises ValueError unless the result is a positive whole
    number of bytes (TypeError for neither a str nor an int)."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise TypeError(f"bad size {_show(text)} (use a number with B, KiB, MiB, GiB or TiB)")
    if isinstance(text, int):
        size = text
    else:
        m = _SIZE_RE.fullmatch(text.strip())
        unit = _UNITS.get(m.group(3).lower()) if m else None
        if m is None or unit is None:
            raise ValueError(f"bad size {_show(text)} (use a number with B, KiB, MiB, GiB or TiB)")
        whole, frac = m.group(1), m.group(2) or ""
        scaled, scale = int(whole + frac) * unit, 10 ** len(frac)
        if scaled % scale:
            raise ValueError(f"bad size {_show(text)}: not a whole number of bytes")
        size = scaled // scale
    if size <= 0:
        raise ValueError(f"bad size {_show(text)}: must be more than 0 bytes")
    return size


_HOST_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")


def parse_listen(text: str) -> tuple[str, int]:
    """(host, port) from "HOST:PORT": a host name, an IPv4 address or a bracketed IPv6 address
    ("[::1]:3225", returned without brackets), and a port 0..65535 (0: any free port).
    Raises ValueError with a one-line reason (TypeError for a non-str)."""
    usage = "use HOST:PORT, e.g. 127.0.0.1:3225 or [::1]:3225"
    if not isinstance(text, str):
        raise TypeError(f"bad listen address {_show(text)} ({usage})")
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"bad listen address {_show(text)} ({usage})")
    import ipaddress
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"bad listen address {_show(text)}: {_show(host)} is not an IPv6 "
                             "address") from None
    elif ":" in host:
        raise ValueError(f"bad listen address {_show(text)}: write an IPv6 address in brackets, "
                         "e.g. [::1]:3225")
    else:
        ok = len(host) <= 253 and _HOSTNAME_RE.fullmatch(host) is not None
        if ok and host.rsplit(".", 1)[-1].isdigit():  # no top-level domain is all digits
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                ok = False
        if not ok:
            raise ValueError(f"bad listen address {_show(text)}: {_show(host)} is not a host "
                             "name or IP address")
    if not re.fullmatch(r"[0-9]{1,5}", port) or int(port) > 65535:
        raise ValueError(f"bad listen address {_show(text)}: port must be 0..65535")
    return host, int(port)


# --- the dataclasses --------------------------------------------------------------------------


def _check_name(value: str, key: str = "name") -> None:
    if not value.strip():
        raise ConfigError("must not be empty", key)
    if not value.isprintable():
        raise ConfigError(f"{_show(value)} contains control characters", key)


def _check_range(value: int, key: str, low: int, high: int | None = None, why: str = "") -> None:
    if value < low or (high is not None and value > high):
        wanted = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ConfigError(f"must be {wanted}{why}, not {value}", key)


def _check_choice(value: str, key: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"must be {' or '.join(map(repr, choices))}, not {_show(value)}", key)


def _check_ascii(value: str, key: str, limit: int) -> None:
    """SPC-4 6.6.2: the INQUIRY identification fields are printable ASCII, left-aligned."""
    if not value:
        raise ConfigError("must not be empty", key)
    if not all(" " <= c <= "~" for c in value):
        raise ConfigError(f"{_show(value)} is not printable ASCII (SCSI INQUIRY data)", key)
    if len(value) > limit:
        raise ConfigError(f"{_show(value)} is longer than {limit} characters (SCSI INQUIRY "
                          "data)", key)


@dataclass(frozen=True)
class FabricConfig:
    """The `[fabric]` table: the switch and its policies (docs/behaviour.md 2 and 2)."""

    name: str = "fcsoft"
    listen: tuple[str, int] = ("127.0.0.1", 3225)
    domain_id: int = 1
    wwn: WWN = WWN(0x10_00_00_05_1E_00_00_01)  # noqa: RUF009 (a WWN is an immutable int)
    default_zone: Literal["allow", "deny"] = "allow"
    duplicate_wwpn: Literal["reject", "replace"] = "reject"
    rscn_coalesce_ms: int = 50
    max_links: int = 4096
    #: fcsoft extension: N_Port_IDs one link may add with FDISC (NPIV), beyond its FLOGI one
    max_npiv_per_link: int = 255
    #: fcsoft extensions: the timeouts the fabric uses and advertises in FLOGI LS_ACC
    r_a_tov_ms: int = 10_000
    e_d_tov_ms: int = 2_000

    def __post_init__(self) -> None:
        _check_name(self.name)
        host, port = self.listen
        if not host:
            raise ConfigError("missing host", "listen")
        _check_range(port, "listen", 0, 65535, " (port)")
        _check_range(self.domain_id, "domain_id", 1, 239, " (FC-SW domain IDs)")
        _check_choice(self.default_zone, "default_zone", ("allow", "deny"))
        _check_choice(self.duplicate_wwpn, "duplicate_wwpn", ("reject", "replace"))
        _check_range(self.rscn_coalesce_ms, "rscn_coalesce_ms", 0)
        _check_range(self.max_links, "max_links", 1)
        # one domain has 65535 non-zero area+port values to hand out
        _check_range(self.max_npiv_per_link, "max_npiv_per_link", 1, 65535)
        # both travel as 32-bit millisecond counts in the FLOGI common service parameters
        _check_range(self.r_a_tov_ms, "r_a_tov_ms", 1, 0xFFFF_FFFF)
        _check_range(self.e_d_tov_ms, "e_d_tov_ms", 1, 0xFFFF_FFFF)
        if self.e_d_tov_ms > self.r_a_tov_ms:
            raise ConfigError(f"must not exceed r_a_tov_ms ({self.r_a_tov_ms}), not "
                              f"{self.e_d_tov_ms}", "e_d_tov_ms")


@dataclass(frozen=True)
class ZoneConfig:
    """One `[[zone]]`: ports (by WWPN) that may see each other."""

    name: str
    members: tuple[WWN, ...]

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.members:
            raise ConfigError("a zone needs at least one member WWPN", "members")
        seen: dict[WWN, int] = {}
        for i, wwpn in enumerate(self.members):
            if wwpn in seen:
                raise ConfigError(f"{wwpn} is listed twice (also members[{seen[wwpn]}])",
                                  f"members[{i}]")
            seen[wwpn] = i


@dataclass(frozen=True)
class LunConfig:
    """One `[[array.lun]]`: a logical unit. `backing` is "memory" (sparse, lost at exit) or the
    absolute path of a file (created sparse if missing)."""

    name: str
    size: int
    block_size: int = 512
    backing: Literal["memory"] | Path = MEMORY
    serial: str | None = None  #: pins the unit serial number (VPD 0x80)
    naa: bytes | None = None  #: pins the 16-byte NAA 6 LU name (VPD 0x83)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.serial is not None:
            _check_serial(self.serial)
        if self.naa is not None and (len(self.naa) != 16 or self.naa[0] >> 4 != 6):
            raise ConfigError("must be 16 bytes starting with NAA 6", "naa")
        if self.block_size not in BLOCK_SIZES:
            raise ConfigError(f"must be 512 or 4096, not {self.block_size}", "block_size")
        if self.size <= 0:
            raise ConfigError(f"must be more than 0 bytes, not {self.size}", "size")
        if self.size > MAX_LUN_SIZE:
            raise ConfigError(f"{self.size} bytes is too large (at most 2**63 - 1)", "size")
        if self.size % self.block_size:
            raise ConfigError(f"{self.size} bytes is not a multiple of block_size "
                              f"{self.block_size}", "size")
        if self.backing != MEMORY and not (isinstance(self.backing, Path)
                                           and self.backing.is_absolute()):
            raise ConfigError(f"must be 'memory' or an absolute Path, not {_show(self.backing)}",
                              "backing")

    @property
    def blocks(self) -> int:
        """The number of logical blocks."""
        return self.size // self.block_size


@dataclass(frozen=True)
class HostConfig:
    """One `[[array.host]]`: LUN masking for a set of initiators.

    `luns` is a tuple of (LUN number, LUN name) pairs sorted by LUN number, so the dataclass
    stays immutable and hashable; `dict(host.luns)` or `host.lun_map` gives a mapping.
    """

    name: str
    initiators: tuple[WWN, ...]
    luns: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.initiators:
            raise ConfigError("a host needs at least one initiator WWPN", "initiators")
        numbers: set[int] = set()
        names: dict[str, int] = {}
        for number, lun_name in self.luns:
            key = f"luns.{number}"
            _check_lun_number(number, key)
            if number in numbers:
                raise ConfigError(f"LUN {number} is mapped twice", key)
            if lun_name in names:
                raise ConfigError(f"LUN {lun_name!r} is already mapped as LUN {names[lun_name]}",
                                  key)
            numbers.add(number)
            names[lun_name] = number

    @property
    def lun_map(self) -> Mapping[int, str]:
        """LUN number -> LUN name, as a fresh dict."""
        return dict(self.luns)


SERIAL_MAX = 64  # characters of a pinned unit serial number


def _check_serial(value: str) -> None:
    """A pinned unit serial number (SPC-4 7.8.15): printable ASCII; fcsoft also keeps out
    spaces (udev and multipath turn them into underscores) and caps the length."""
    if not value:
        raise ConfigError("must not be empty", "serial")
    if not all("!" <= c <= "~" for c in value):
        raise ConfigError(f"{_show(value)} is not printable ASCII without spaces (VPD page "
                          "0x80)", "serial")
    if len(value) > SERIAL_MAX:
        raise ConfigError(f"{_show(value)} is longer than {SERIAL_MAX} characters", "serial")


def _check_lun_number(number: int, key: str) -> None:
    _check_range(number, key, 0, MAX_LUN_NUMBER, " (flat LUN addressing)")


@dataclass(frozen=True)
class PortGroupConfig:
    """One `[[array.port_group]]`: a target port group (ALUA, SPC-4 5.15) of the array."""

    id: int
    ports: tuple[WWN, ...]

    def __post_init__(self) -> None:
        _check_range(self.id, "id", 1, 0xFFFF, " (target port group identifier)")
        if not self.ports:
            raise ConfigError("a port group needs at least one of the array's ports", "ports")


@dataclass(frozen=True)
class ArrayConfig:
    """One `[[array]]`: a storage array with its target ports, LUNs and host entries."""

    name: str
    node_wwn: WWN
    ports: tuple[WWN, ...]
    vendor: str = "FCSOFT"
    product: str = "VDISK"
    luns: tuple[LunConfig, ...] = ()
    hosts: tuple[HostConfig, ...] = ()
    #: target port groups; none configured: each port is a group of its own, with the
    #: port's relative target port identifier as its group identifier
    port_groups: tuple[PortGroupConfig, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not self.ports:
            raise ConfigError("an array needs at least one target port WWPN", "ports")
        self._check_port_groups()
        _check_ascii(self.vendor, "vendor", 8)
        _check_ascii(self.product, "product", 16)
        _check_unique((lun.name for lun in self.luns), "lun", "LUN")
        _check_unique((host.name for host in self.hosts), "host", "host")
        lun_names = [lun.name for lun in self.luns]
        for h, host in enumerate(self.hosts):
            for number, lun_name in host.luns:
                if lun_name not in lun_names:
                    have = (f"this array's LUNs: {', '.join(map(repr, lun_names))}" if lun_names
                            else "this array has no LUNs")
                    raise ConfigError(f"unknown LUN {_show(lun_name)} ({have})",
                                      f"host[{h}].luns.{number}")

    def _check_port_groups(self) -> None:
        if not self.port_groups:
            return
        ids: dict[int, int] = {}
        where: dict[WWN, int] = {}
        for g, group in enumerate(self.port_groups):
            if group.id in ids:
                raise ConfigError(f"duplicate port group id {group.id} (also "
                                  f"port_group[{ids[group.id]}])", f"port_group[{g}].id")
            ids[group.id] = g
            for p, wwpn in enumerate(group.ports):
                key = f"port_group[{g}].ports[{p}]"
                if wwpn not in self.ports:
                    raise ConfigError(f"{wwpn} is not one of this array's ports", key)
                if wwpn in where:
                    raise ConfigError(f"{wwpn} is already in port_group[{where[wwpn]}]", key)
                where[wwpn] = g
        for p, wwpn in enumerate(self.ports):
            if wwpn not in where:
                raise ConfigError(f"{wwpn} is in no [[array.port_group]] (once groups are "
                                  "configured, every port needs one)", f"ports[{p}]")

    def port_group_of(self, relative_port: int) -> int:
        """The target port group identifier of the port at `relative_port` (from 1)."""
        wwpn = self.ports[relative_port - 1]
        for group in self.port_groups:
            if wwpn in group.ports:
                return group.id
        return relative_port

    def lun(self, name: str) -> LunConfig:
        """The LUN called `name` (KeyError if none)."""
        for lun in self.luns:
            if lun.name == name:
                return lun
        raise KeyError(name)


def _check_unique(names: Iterable[str], table: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"duplicate {what} name {_show(name)} (also {table}[{seen[name]}])",
                              f"{table}[{i}].name")
        seen[name] = i


_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_FC_MAP_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){2}")


@dataclass(frozen=True)
class FcoeConfig:
    """One `[[fcoe]]`: an FCoE Forwarder (docs/fcoe.md) on a TCP listener speaking
    QEMU's stream netdev framing (`listen`) or on a network interface (`interface`).

    `mac` is the FCF's MAC address (6 bytes), `fc_map` the FC-MAP (the upper 24 bits of
    every fabric-provided MAC address it grants)."""

    name: str
    listen: tuple[str, int] | None = None
    interface: str | None = None
    fc_map: int = 0x0EFC00
    mac: bytes = bytes.fromhex("0efc00fffffe")
    fka_adv_period_ms: int = 8000
    priority: int = 128
    vlan: int | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if (self.listen is None) == (self.interface is None):
            raise ConfigError("give either listen = \"HOST:PORT\" or interface = \"IFNAME\"",
                              "listen")
        if self.interface is not None and (not self.interface or "/" in self.interface
                                           or len(self.interface) > 15
                                           or not self.interface.isprintable()):
            raise ConfigError(f"{_show(self.interface)} is not a network interface name",
                              "interface")
        if len(self.mac) != 6 or self.mac[0] & 1 or self.mac == bytes(6):
            raise ConfigError(f"{self.mac.hex(':')} is not an individual (unicast) MAC "
                              "address", "mac")
        _check_range(self.fc_map, "fc_map", 0, 0xFFFFFF)
        if self.fc_map & 0x010000:
            raise ConfigError(f"{self.fc_map:06x}: the FC-MAP's group bit is set, so its "
                              "MAC addresses would be multicast", "fc_map")
        # FC-BB-6 7.8.5.1: FKA_ADV_PERIOD; libfcoe ignores values below 500 ms
        _check_range(self.fka_adv_period_ms, "fka_adv_period_ms", 500, 90_000)
        _check_range(self.priority, "priority", 0, 255)
        if self.vlan is not None:
            _check_range(self.vlan, "vlan", 1, 4094, " (802.1Q VLAN ID)")


def _to_mac(value: Any, key: str) -> bytes:
    text = _to_str(value, key)
    if not _MAC_RE.fullmatch(text):
        raise ConfigError(f"bad MAC address {_show(text)} (use 6 colon-separated hex bytes "
                          "like 0e:fc:00:ff:ff:fe)", key)
    return bytes.fromhex(text.replace(":", ""))


def _to_fc_map(value: Any, key: str) -> int:
    text = _to_str(value, key)
    if not _FC_MAP_RE.fullmatch(text):
        raise ConfigError(f"bad FC-MAP {_show(text)} (use 3 colon-separated hex bytes like "
                          "0e:fc:00)", key)
    return int(text.replace(":", ""), 16)


def _is_loopback(host: str) -> bool:
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ControlConfig:
    """The `[control]` table: the control API and web page (docs/control.md). Off while
    `listen` is None. Binding to anything but a loopback address needs `token_file`: every
    request must then carry `Authorization: Bearer <the file's first line>`."""

    listen: tuple[str, int] | None = None
    token_file: Path | None = None

    def __post_init__(self) -> None:
        if self.listen is not None and self.token_file is None and \
                not _is_loopback(self.listen[0]):
            raise ConfigError(f"binding to {self.listen[0]} (not a loopback address) needs "
                              "token_file (a file holding the bearer token)", "listen")

    @property
    def needs_token(self) -> bool:
        return self.token_file is not None


_WWN_ROLES = {"fabric": "the fabric WWN", "node": "an array's node WWN",
              "port": "an array target port", "initiator": "a host initiator"}


@dataclass(frozen=True)
class Config:
    """A whole config file. `source` names where it came from (file path or "<string>")."""

    fabric: FabricConfig = field(default_factory=FabricConfig)
    zones: tuple[ZoneConfig, ...] = ()
    arrays: tuple[ArrayConfig, ...] = ()
    fcoe: tuple[FcoeConfig, ...] = ()
    control: ControlConfig = field(default_factory=ControlConfig)
    source: str = "<string>"

    def __post_init__(self) -> None:
        _check_unique((zone.name for zone in self.zones), "zone", "zone")
        _check_unique((array.name for array in self.arrays), "array", "array")
        _check_unique((f.name for f in self.fcoe), "fcoe", "FCoE forwarder")
        self._check_fcfs()
        self._check_wwns()
        self._check_backings()
        self._check_lu_identities()

    def _check_fcfs(self) -> None:
        """Two FCFs cannot share a MAC address, a listen address or an interface."""
        for attr, what in (("mac", "MAC address"), ("listen", "listen address"),
                           ("interface", "interface")):
            seen: dict[Any, int] = {}
            for i, f in enumerate(self.fcoe):
                value = getattr(f, attr)
                if value is None:
                    continue
                if value in seen:
                    raise ConfigError(f"the same {what} as fcoe[{seen[value]}]",
                                      f"fcoe[{i}].{attr}")
                seen[value] = i

    def _check_wwns(self) -> None:
        """Names must be unique (FC-FS-4 19.1), except that one initiator may be a host of
        several arrays: it may appear once in each array's host entries."""
        seen: dict[int, tuple[str, str, int]] = {}  # wwn -> (role, key path, array index)
        for wwn, role, key, a in self._wwn_uses():
            if wwn in seen:
                role0, key0, a0 = seen[wwn]
                if not (role == role0 == "initiator" and a != a0):
                    kind = "WWPN" if {role, role0} <= {"port", "initiator"} else "WWN"
                    raise ConfigError(f"duplicate {kind} {wwn}: already {_WWN_ROLES[role0]} at "
                                      f"{key0}", key)
            seen.setdefault(wwn, (role, key, a))

    def _wwn_uses(self) -> Iterator[tuple[WWN, str, str, int]]:
        yield self.fabric.wwn, "fabric", "fabric.wwn", -1
        for a, array in enumerate(self.arrays):
            yield array.node_wwn, "node", f"array[{a}].node_wwn", a
            for p, wwpn in enumerate(array.ports):
                yield wwpn, "port", f"array[{a}].ports[{p}]", a
            for h, host in enumerate(array.hosts):
                for i, wwpn in enumerate(host.initiators):
                    yield wwpn, "initiator", f"array[{a}].host[{h}].initiators[{i}]", a

    def _check_backings(self) -> None:
        """Two LUNs on one file would overwrite each other's data."""
        seen: dict[str, str] = {}
        for a, array in enumerate(self.arrays):
            for n, lun in enumerate(array.luns):
                if lun.backing == MEMORY:
                    continue
                key = f"array[{a}].lun[{n}].backing"
                path = os.path.normpath(lun.backing)
                if path in seen:
                    raise ConfigError(f"file {_show(path)} is already the backing of "
                                      f"{seen[path].removesuffix('.backing')}", key)
                seen[path] = key

    def _check_lu_identities(self) -> None:
        """Every LU's NAA name and serial number (pinned or derived) is its own: multipath
        would take two LUs sharing one for two paths to the same disk."""
        from fcsoft.scsi.inquiry import lu_naa_designator

        naas: dict[bytes, str] = {}
        serials: dict[str, str] = {}
        for a, array in enumerate(self.arrays):
            for n, lun in enumerate(array.luns):
                naa = lun.naa or lu_naa_designator(array.node_wwn, lun.name)
                serial = lun.serial or naa.hex().upper()
                where = f"array[{a}].lun[{n}]"
                if naa in naas:
                    raise ConfigError(f"NAA name {naa.hex()} is already the one of "
                                      f"{naas[naa]}", f"{where}.naa")
                if serial in serials:
                    raise ConfigError(f"serial number {_show(serial)} is already the one of "
                                      f"{serials[serial]}", f"{where}.serial")
                naas[naa] = serials[serial] = where

    def array(self, name: str) -> ArrayConfig:
        """The array called `name` (KeyError if none)."""
        for array in self.arrays:
            if array.name == name:
                return array
        raise KeyError(name)


# --- the reader: TOML values -> dataclass fields ----------------------------------------------

Converter = Callable[[Any, str], Any]


def _to_str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, not {_describe(value)}", key)
    return value


def _to_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"expected an integer, not {_describe(value)}", key)
    return value


def _to_wwn(value: Any, key: str) -> WWN:
    try:
        return WWN.parse(_to_str(value, key))
    except ValueError as exc:
        raise ConfigError(str(exc), key) from None


def _to_naa(value: Any, key: str) -> bytes:
    """`naa = "6..."`: 32 hex digits (colons between bytes and a 0x prefix allowed)."""
    text = _to_str(value, key)
    digits = text.removeprefix("0x").removeprefix("0X").replace(":", "")
    if len(digits) != 32 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise ConfigError(f"expected 32 hex digits (an NAA 6 name of 16 bytes), not "
                          f"{_show(text)}", key)
    if digits[0] != "6":
        raise ConfigError(f"{_show(text)} is not an NAA 6 name (the first hex digit must be 6)",
                          key)
    return bytes.fromhex(digits)


def _to_wwns(value: Any, key: str) -> tuple[WWN, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"expected a list of WWN strings, not {_describe(value)}", key)
    return tuple(_to_wwn(item, f"{key}[{i}]") for i, item in enumerate(value))


def _to_listen(value: Any, key: str) -> tuple[str, int]:
    try:
        return parse_listen(_to_str(value, key))
    except ValueError as exc:
        raise ConfigError(str(exc), key) from None


def _to_size(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"expected a size such as \"64MiB\" or a number of bytes, not "
                          f"{_describe(value)}", key)
    try:
        return parse_size(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key) from None


def _to_lun_map(value: Any, key: str) -> tuple[tuple[int, str], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"expected a table of LUN number = \"LUN name\", e.g. "
                          f"{{ 0 = \"data\" }}, not {_describe(value)}", key)
    pairs: dict[int, str] = {}
    for text, lun_name in value.items():
        item_key = _join(key, _key_part(text))
        if not re.fullmatch(r"[0-9]{1,9}", text):
            raise ConfigError(f"LUN number must be an integer 0..{MAX_LUN_NUMBER}, not "
                              f"{_show(text)}", item_key)
        number = int(text)
        _check_lun_number(number, item_key)
        if number in pairs:
            raise ConfigError(f"LUN {number} is mapped twice", item_key)
        if not isinstance(lun_name, str):
            raise ConfigError(f"expected a LUN name (a string), not {_describe(lun_name)}",
                              item_key)
        pairs[number] = lun_name
    return tuple(sorted(pairs.items()))


def _to_tables(value: Any, key: str) -> list[Any]:
    """The entries of an array of tables such as [[array.lun]]."""
    if not isinstance(value, list):
        header = re.sub(r"\[[0-9]+\]", "", key)  # array[0].lun -> [[array.lun]]
        raise ConfigError(f"expected a list of tables (write [[{header}]]), not "
                          f"{_describe(value)}", key)
    return value


def _read(cls: type[Any], value: Any, key: str,
          converters: Mapping[str, tuple[str, Converter]]) -> Any:
    """Build `cls` from the TOML table `value` found at `key`. `converters` maps each allowed
    TOML key to (field name, converter); fields without a default are required."""
    if not isinstance(value, dict):
        raise ConfigError(f"expected a table, not {_describe(value)}", key)
    for name in value:
        if name not in converters:
            raise ConfigError("unknown key" + _suggest(name, converters), _join(key,
                                                                                _key_part(name)))
    required = {f.name for f in fields(cls)
                if f.default is MISSING and f.default_factory is MISSING}
    kwargs: dict[str, Any] = {}
    for name, (field_name, convert) in converters.items():
        if name in value:
            kwargs[field_name] = convert(value[name], _join(key, name))
        elif field_name in required:
            raise ConfigError("required key is missing", _join(key, name))
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        exc.key = _join(key, exc.key)
        raise


def _suggest(name: str, choices: Mapping[str, Any]) -> str:
    import difflib
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _build(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """The keyword arguments of Config for a parsed TOML document."""

    def to_backing(value: Any, key: str) -> Literal["memory"] | Path:
        text = _to_str(value, key)
        if text == MEMORY:
            return MEMORY
        if not text or "\0" in text:
            raise ConfigError(f"bad path {_show(text)} (use \"memory\" or a file path)", key)
        try:
            path = Path(text).expanduser()
        except RuntimeError as exc:  # "~" with no home directory
            raise ConfigError(f"bad path {_show(text)}: {exc}", key) from None
        return path if path.is_absolute() else base_dir / path

    def many(cls: type[Any], converters: Mapping[str, tuple[str, Converter]]) -> Converter:
        def convert(value: Any, key: str) -> tuple[Any, ...]:
            return tuple(_read(cls, item, f"{key}[{i}]", converters)
                         for i, item in enumerate(_to_tables(value, key)))
        return convert

    fabric = {"name": ("name", _to_str), "listen": ("listen", _to_listen),
              "domain_id": ("domain_id", _to_int), "wwn": ("wwn", _to_wwn),
              "default_zone": ("default_zone", _to_str),
              "duplicate_wwpn": ("duplicate_wwpn", _to_str),
              "rscn_coalesce_ms": ("rscn_coalesce_ms", _to_int),
              "max_links": ("max_links", _to_int),
              "max_npiv_per_link": ("max_npiv_per_link", _to_int),
              "r_a_tov_ms": ("r_a_tov_ms", _to_int), "e_d_tov_ms": ("e_d_tov_ms", _to_int)}
    zone = {"name": ("name", _to_str), "members": ("members", _to_wwns)}
    lun = {"name": ("name", _to_str), "size": ("size", _to_size),
           "block_size": ("block_size", _to_int), "backing": ("backing", to_backing),
           "serial": ("serial", _to_str), "naa": ("naa", _to_naa)}
    port_group = {"id": ("id", _to_int), "ports": ("ports", _to_wwns)}

    def to_path(value: Any, key: str) -> Path:
        text = _to_str(value, key)
        if not text or "\0" in text:
            raise ConfigError(f"bad path {_show(text)}", key)
        path = Path(text).expanduser()
        return path if path.is_absolute() else base_dir / path

    control = {"listen": ("listen", _to_listen), "token_file": ("token_file", to_path)}
    host = {"name": ("name", _to_str), "initiators": ("initiators", _to_wwns),
            "luns": ("luns", _to_lun_map)}
    array = {"name": ("name", _to_str), "node_wwn": ("node_wwn", _to_wwn),
             "ports": ("ports", _to_wwns), "vendor": ("vendor", _to_str),
             "product": ("product", _to_str), "lun": ("luns", many(LunConfig, lun)),
             "host": ("hosts", many(HostConfig, host)),
             "port_group": ("port_groups", many(PortGroupConfig, port_group))}
    fcoe = {"name": ("name", _to_str), "listen": ("listen", _to_listen),
            "interface": ("interface", _to_str), "fc_map": ("fc_map", _to_fc_map),
            "mac": ("mac", _to_mac), "fka_adv_period_ms": ("fka_adv_period_ms", _to_int),
            "priority": ("priority", _to_int), "vlan": ("vlan", _to_int)}
    top: dict[str, tuple[str, Converter]] = {
        "fabric": ("fabric", lambda v, k: _read(FabricConfig, v, k, fabric)),
        "zone": ("zones", many(ZoneConfig, zone)),
        "array": ("arrays", many(ArrayConfig, array)),
        "fcoe": ("fcoe", many(FcoeConfig, fcoe)),
        "control": ("control", lambda v, k: _read(ControlConfig, v, k, control)),
    }
    for name in data:
        if name not in top:
            raise ConfigError("unknown key" + _suggest(name, top), _key_part(name))
    return {field_name: convert(data[name], name)
            for name, (field_name, convert) in top.items() if name in data}


# --- public entry points ----------------------------------------------------------------------

_TOML_POS_RE = re.compile(r"\s*\((at line (\d+), column (\d+)|at end of document)\)$")


def parse_config(text: str, source: str = "<string>", base_dir: str | os.PathLike[str] | None
                 = None) -> Config:
    """Parse config TOML `text`. `source` names it in errors and in Config.source; relative
    backing paths are resolved against `base_dir` (default: the current directory).
    Raises ConfigError."""
    import tomllib
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _TOML_POS_RE.search(message)
        where = ""
        if m:
            message = message[:m.start()]
            where = f"line {m.group(2)}, column {m.group(3)}" if m.group(2) else "end of file"
        raise ConfigError(f"TOML syntax error: {message}", where, source) from None
    except RecursionError:
        raise ConfigError("TOML syntax error: nested too deeply", "", source) from None
    base = Path(base_dir if base_dir is not None else ".").absolute()
    try:
        return Config(**_build(data, base), source=source)
    except ConfigError as exc:
        exc.source = source
        raise


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and parse the config file at `path` (errors and Config.source name it as given).
    Relative backing paths are resolved against the file's directory. Raises ConfigError."""
    source = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", "", source) from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate the BOM some Windows editors write
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError("not UTF-8 text (TOML files are UTF-8)", f"line {line}",
                          source) from None
    return parse_config(text, source, Path(path).parent)


def builtin_config_path() -> Path:
    """The built-in lab config shipped in the package (fcsoft/configs/lab.toml)."""
    from importlib.resources import files
    return Path(str(files("fcsoft") / "configs" / "lab.toml"))


def load_builtin() -> Config:
    """The built-in lab config (what `fcsoft serve` runs without a CONFIG)."""
    return load_config(builtin_config_path())
