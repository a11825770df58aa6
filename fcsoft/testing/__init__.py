"""Helpers shipped to users: the pytest plugin (`fcsoft_lab`), the lab handle, and the
guest lab (`open_guest`: a Linux guest whose FCoE initiator logs into a fabric's FCF;
`open_lio_target`: a Linux guest that is an FC target, LIO over tcm_fc)."""

from fcsoft.guest import (
    BootError,
    CommandFailed,
    CommandResult,
    Guest,
    GuestError,
    GuestTimeout,
    ImageSpec,
    LioAcl,
    LioLun,
    LioSpec,
    MissingTool,
    open_guest,
    open_lio_target,
)

from .lab import LabHandle, load_lab_config

__all__ = [
    "BootError", "CommandFailed", "CommandResult", "Guest", "GuestError", "GuestTimeout",
    "ImageSpec", "LabHandle", "LioAcl", "LioLun", "LioSpec", "MissingTool", "load_lab_config",
    "open_guest", "open_lio_target",
]
