"""What can go wrong in the guest lab, each error one line for the user.

`GuestError` is the base class: its message is a single line meant to be printed after
`fcsoft: ` with no traceback. `MissingTool` names the Debian package to install.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# host programs the guest lab runs or copies into the guest -> the Debian package with it
PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "depmod": "kmod",
    "dpkg": "dpkg",
    "apt-get": "apt",
    "apt-cache": "apt",
    "ldd": "libc-bin",
    "dmsetup": "dmsetup",
    "multipathd": "multipath-tools",
    "multipath": "multipath-tools",
}


def package_for(program: str) -> str:
    """The Debian package that ships `program` (sg3_utils' sg_* tools: sg3-utils)."""
    if program.startswith(("sg_", "sginfo")):
        return "sg3-utils"
    return PACKAGES.get(program, program)


class GuestError(Exception):
    """A guest-lab failure, reported as one line."""


class MissingTool(GuestError):
    """A host program the guest lab needs is not installed."""

    def __init__(self, program: str) -> None:
        self.program = program
        self.package = package_for(program)
        super().__init__(f"{program} not found (install {self.package})")


class BootError(GuestError):
    """The guest did not come up (QEMU failed, the kernel panicked, or a deadline passed)."""


class GuestTimeout(GuestError):
    """A command or a wait in the guest ran past its timeout.

    `stdout` and `stderr` hold what the command had written by then (empty for a wait)."""

    def __init__(self, message: str, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


def which(program: str, path: str | None = None) -> Path:
    """The full path of `program` on PATH (or on `path`); MissingTool when absent."""
    found = shutil.which(program, path=path)
    if found is None:
        raise MissingTool(program)
    return Path(found)
