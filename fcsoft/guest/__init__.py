"""The guest lab: boot a Linux guest whose FCoE initiator (libfc/libfcoe) is attached to an
FCF, run commands in it, and get their status and output (`fcsoft guest`, and
`fcsoft.testing.open_guest`).

Modules: `image` (kernel and initramfs, cached), `cpio` (the archive writer), `qemu` (the
command line and the process), `protocol` (the command agent's wire format), `qmp` (QEMU's
monitor), `fcoe` (ENode addresses and the guest-side shell), `session` (`open_guest` and
`Guest`), `cli` (the `fcsoft guest` subcommand).
"""

from .errors import BootError, GuestError, GuestTimeout, MissingTool
from .image import ImageSpec
from .session import CommandFailed, CommandResult, FcHost, Guest, open_guest

__all__ = [
    "BootError", "CommandFailed", "CommandResult", "FcHost", "Guest", "GuestError",
    "GuestTimeout", "ImageSpec", "MissingTool", "open_guest",
]
