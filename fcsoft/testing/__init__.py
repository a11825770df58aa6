"""Helpers shipped to users: the pytest plugin (`fcsoft_lab`), the lab handle, and the
guest lab (`open_guest`: a Linux guest whose FCoE initiator logs into a fabric's FCF)."""

from fcsoft.guest import (
    BootError,
    CommandFailed,
    CommandResult,
    Guest,
    GuestError,
    GuestTimeout,
    ImageSpec,
    MissingTool,
    open_guest,
)

from .lab import LabHandle, load_lab_config

__all__ = [
    "BootError", "CommandFailed", "CommandResult", "Guest", "GuestError", "GuestTimeout",
    "ImageSpec", "LabHandle", "MissingTool", "load_lab_config", "open_guest",
]
