"""The guest lab: boot a Linux guest whose FCoE initiator (libfc/libfcoe) is attached to an
FCF, run commands in it, and get their status and output (`fcsoft guest`, and
`fcsoft.testing.open_guest`).

Modules: `image` (kernel and initramfs, cached), `cpio` (the archive writer), `qemu` (the
command line and the process), `protocol` (the command agent's wire format), `qmp` (QEMU's
monitor), `fcoe` (ENode addresses and the guest-side shell), `lio` (the guest as an FC
target: Linux LIO over tcm_fc), `session` (`open_guest`, `open_lio_target` and `Guest`),
`migration` (`Guest.migrate`: live migration to a new QEMU), `verified_io` (`VerifiedIo`:
a background I/O loop in the guest that checks what it reads back), `multipath`
(multipath-tools' multipathd in the guest without udev, and a map's state), `npiv` (the
remote ports each fc_host found, vport deletion), `cli` (the `fcsoft guest` subcommand).

The names below are imported on first use, so that `fcsoft --help` (which imports
fcsoft.guest.cli) does not load trio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import BootError, GuestError, GuestTimeout, MissingTool
    from .image import ImageSpec
    from .lio import LioAcl, LioLun, LioSpec
    from .migration import MigrationError, MigrationResult
    from .session import (
        CommandFailed,
        CommandResult,
        FcHost,
        Guest,
        ScsiDevice,
        open_guest,
        open_lio_target,
    )
    from .verified_io import IoReport, VerifiedIo

_WHERE = {
    "BootError": "errors", "GuestError": "errors", "GuestTimeout": "errors",
    "MissingTool": "errors", "ImageSpec": "image", "CommandFailed": "session",
    "CommandResult": "session", "FcHost": "session", "Guest": "session", "ScsiDevice": "session",
    "open_guest": "session", "open_lio_target": "session", "LioAcl": "lio", "LioLun": "lio",
    "LioSpec": "lio", "MigrationError": "migration", "MigrationResult": "migration",
    "IoReport": "verified_io", "VerifiedIo": "verified_io",
}

__all__ = [
    "BootError", "CommandFailed", "CommandResult", "FcHost", "Guest", "GuestError",
    "GuestTimeout", "ImageSpec", "IoReport", "LioAcl", "LioLun", "LioSpec", "MigrationError",
    "MigrationResult", "MissingTool", "ScsiDevice", "VerifiedIo", "open_guest",
    "open_lio_target",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
