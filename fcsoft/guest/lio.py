"""A Linux FC target in the guest: LIO (the kernel's SCSI target) over tcm_fc.

`LioSpec` says what the target serves: LUNs (`LioLun`: number, size, a memory or file
backstore) and ACLs (`LioAcl`: an initiator's WWPN and the LUNs it sees). `open_guest(...,
lio=LioSpec(...))` (fcsoft.guest.session) loads the target modules, runs
`configure_script` and only then starts FCoE, so that libfc's local port registers the FCP
target feature (RFF_ID) from the start. Every FCoE NIC of the guest is one target port
(its ENode WWPN, 20:00 + MAC); every port serves the same LUNs from the same backstores,
so with two NICs the LUNs are one logical unit behind two target ports, as in an array.

How LIO is configured (facts found on Debian 12's kernel 6.1; configfs only, no targetcli):

- configfs is mounted on /sys/kernel/config; /etc/target/pr and /var/target/pr must exist,
  or LIO answers PERSISTENT RESERVE OUT with NOT READY 08/00 (it keeps APTPL state there);
- a memory backstore is `core/rd_mcp_0/<name>` with `rd_pages=N` (4 KiB pages, all
  allocated when it is enabled: the guest needs the memory); a file backstore is
  `core/fileio_0/<name>` with `fd_dev_name=PATH,fd_dev_size=BYTES` (a sparse file in the
  guest's RAM file system; written blocks take guest memory);
- the target is `fc/<WWPN>/tpgt_1` (WWPN as 8 colon-separated lower-case hex bytes); its
  LUNs are `lun/lun_N` directories with a symlink to the backstore; tcm_fc has neither
  `generate_node_acls` (demo mode) nor `tpgt_1/enable`: an initiator with no ACL cannot log
  in at all (PRLI gets no image pair);
- an ACL is `acls/<initiator WWPN>`, and each LUN it sees a `lun_N` directory in it with a
  symlink to the target's `lun/lun_N`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fcsoft.wire.wwn import WWN

from .image import TARGET_MODULES

__all__ = ["TARGET_MODULES", "LioAcl", "LioLun", "LioSpec", "configure_script", "parse_acl",
           "parse_lun"]

CONFIGFS = "/sys/kernel/config"
TARGET = f"{CONFIGFS}/target"
PAGE = 4096  # rd_mcp counts pages of this size
MAX_LUN = 16383  # LIO's TRANSPORT_MAX_LUNS_PER_TPG is larger; fcsoft's flat LUNs stop here
BASE_MEMORY_MIB = 384  # guest memory besides the backstores (kernel, initramfs, libfc)
FILE_DIR = "/var/lib/fcsoft-lio"

Backstore = Literal["memory", "file"]


@dataclass(frozen=True)
class LioLun:
    """One LUN: its number, size in bytes and backstore ("memory": rd_mcp, "file":
    target_core_file on a sparse file in the guest)."""

    number: int
    size: int
    backstore: Backstore = "memory"

    def __post_init__(self) -> None:
        if not 0 <= self.number <= MAX_LUN:
            raise ValueError(f"LUN {self.number} is out of range (0 to {MAX_LUN})")
        if self.size < 1 << 20 or self.size % PAGE:
            raise ValueError(f"LUN {self.number}: size {self.size} bytes is not a whole "
                             f"number of {PAGE}-byte pages of at least 1 MiB")
        if self.backstore not in ("memory", "file"):
            raise ValueError(f"LUN {self.number}: backstore {self.backstore!r} is not "
                             "'memory' or 'file'")

    @property
    def name(self) -> str:
        """The backstore's configfs name."""
        return f"lun{self.number}"


@dataclass(frozen=True)
class LioAcl:
    """An initiator allowed to log in, and the LUNs it sees (None: every LUN)."""

    initiator: WWN
    luns: tuple[int, ...] | None = None


@dataclass(frozen=True)
class LioSpec:
    """What the guest's LIO target serves: LUNs and ACLs."""

    luns: tuple[LioLun, ...] = field(default_factory=lambda: (LioLun(0, 64 << 20),))
    acls: tuple[LioAcl, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "luns", tuple(self.luns))
        object.__setattr__(self, "acls", tuple(self.acls))
        if not self.luns:
            raise ValueError("an LIO target needs at least one LUN")
        numbers = [lun.number for lun in self.luns]
        dup = sorted({n for n in numbers if numbers.count(n) > 1})
        if dup:
            raise ValueError(f"LUN {dup[0]} is given twice")
        seen: set[WWN] = set()
        for acl in self.acls:
            if acl.initiator in seen:
                raise ValueError(f"ACL {acl.initiator} is given twice")
            seen.add(acl.initiator)
            for n in acl.luns or ():
                if n not in numbers:
                    raise ValueError(f"ACL {acl.initiator}: LUN {n} is not one of the "
                                     "target's LUNs")

    @property
    def memory_bytes(self) -> int:
        """Bytes of guest memory the backstores can take (rd_mcp allocates all at once)."""
        return sum(lun.size for lun in self.luns)

    def min_memory_mib(self) -> int:
        """The least guest memory (MiB) that holds every backstore fully written."""
        return BASE_MEMORY_MIB + -(-self.memory_bytes // (1 << 20))


_LUN_RE = re.compile(r"^(\d+):([^:]+)(?::(memory|file))?$")


def parse_lun(text: str) -> LioLun:
    """`N:SIZE[:memory|:file]` ("0:64MiB", "1:1GiB:file") -> LioLun; ValueError with a
    one-line reason."""
    from fcsoft.config import parse_size

    m = _LUN_RE.match(text.strip())
    if m is None:
        raise ValueError(f"bad LUN {text!r}: use N:SIZE or N:SIZE:file, e.g. 0:64MiB")
    try:
        size = parse_size(m.group(2))
    except ValueError as exc:
        raise ValueError(f"bad LUN {text!r}: {exc}") from None
    backstore: Backstore = "file" if m.group(3) == "file" else "memory"
    return LioLun(int(m.group(1)), size, backstore)


def parse_acl(text: str) -> LioAcl:
    """`WWPN` (every LUN) or `WWPN=N,N...` (those LUNs; `WWPN=` none) -> LioAcl."""
    name, eq, luns = text.strip().partition("=")
    try:
        wwpn = WWN.parse(name)
    except ValueError as exc:
        raise ValueError(f"bad ACL {text!r}: {exc}") from None
    if not eq:
        return LioAcl(wwpn)
    numbers: list[int] = []
    for part in filter(None, (p.strip() for p in luns.split(","))):
        if not part.isdigit():
            raise ValueError(f"bad ACL {text!r}: {part!r} is not a LUN number")
        numbers.append(int(part))
    return LioAcl(wwpn, tuple(numbers))


def wwn_name(wwn: WWN) -> str:
    """A WWN as tcm_fc names it in configfs: 8 colon-separated lower-case hex bytes."""
    return ":".join(f"{b:02x}" for b in wwn.to_bytes8())


def _backstore_dir(lun: LioLun) -> str:
    hba = "rd_mcp_0" if lun.backstore == "memory" else "fileio_0"
    return f"{TARGET}/core/{hba}/{lun.name}"


def unit_serial(lun: LioLun, first_port: WWN) -> str:
    """The VPD unit serial number the LUN gets: stable per target and LUN number."""
    return f"fcsoft-{int(first_port):016x}-{lun.number}"


# before target_core_mod loads: it looks for its database root (/etc/target) at load time,
# and keeps persistent reservation state (APTPL) under /etc/target/pr and /var/target/pr
PREPARE_SCRIPT = f"mkdir -p /etc/target/pr /var/target/pr {FILE_DIR}\n"


def configure_script(spec: LioSpec, ports: Sequence[WWN]) -> str:
    """The guest shell that configures LIO for `spec` on target ports `ports` (run once,
    after the modules are loaded, before FCoE is started)."""
    if not ports:
        raise ValueError("an LIO target needs an FCoE port")
    lines = [
        "set -e",
        f"grep -q ' {CONFIGFS} ' /proc/mounts || mount -t configfs none {CONFIGFS}",
        PREPARE_SCRIPT.strip(),
        f"T={TARGET}",
    ]
    for lun in spec.luns:
        d = _backstore_dir(lun)
        lines.append(f"mkdir -p {d}")
        if lun.backstore == "memory":
            lines.append(f"echo rd_pages={lun.size // PAGE} > {d}/control")
        else:
            path = f"{FILE_DIR}/{lun.name}.img"
            lines += [f"truncate -s {lun.size} {path}",
                      f"echo fd_dev_name={path},fd_dev_size={lun.size} > {d}/control"]
        lines += [f"echo {unit_serial(lun, ports[0])} > {d}/wwn/vpd_unit_serial",
                  f"echo 1 > {d}/enable"]
    for port in ports:
        tpg = f"$T/fc/{wwn_name(port)}/tpgt_1"
        lines.append(f"mkdir -p {tpg}")
        for lun in spec.luns:
            lines += [f"mkdir -p {tpg}/lun/lun_{lun.number}",
                      f"ln -s {_backstore_dir(lun)} {tpg}/lun/lun_{lun.number}/{lun.name}"]
        for acl in spec.acls:
            a = f"{tpg}/acls/{wwn_name(acl.initiator)}"
            lines.append(f"mkdir -p {a}")
            numbers = [lun.number for lun in spec.luns] if acl.luns is None else acl.luns
            for n in numbers:
                lines += [f"mkdir -p {a}/lun_{n}", f"ln -s {tpg}/lun/lun_{n} {a}/lun_{n}/lun_{n}"]
    return "\n".join(lines) + "\n"


def describe(spec: LioSpec) -> str:
    """One line: the LUNs and ACLs."""
    luns = ", ".join(f"LUN {lun.number} {_size(lun.size)} {lun.backstore}" for lun in spec.luns)
    acls = ", ".join(str(a.initiator) + ("" if a.luns is None else
                                          f" (LUNs {','.join(map(str, a.luns)) or 'none'})")
                     for a in spec.acls) or "none"
    return f"{luns}; ACLs: {acls}"


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def acls_for(initiators: Iterable[WWN | str]) -> tuple[LioAcl, ...]:
    """ACLs that let each initiator see every LUN."""
    return tuple(LioAcl(WWN(w) if isinstance(w, str) else w) for w in initiators)
