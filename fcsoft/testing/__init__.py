"""Helpers shipped to users: the pytest plugin (`fcsoft_lab`) and the lab handle."""

from .lab import LabHandle, load_lab_config

__all__ = ["LabHandle", "load_lab_config"]
