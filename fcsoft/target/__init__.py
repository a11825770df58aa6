"""The array port: fabric login, PLOGI/PRLI sessions, FCP exchanges <-> SCSI (sans-IO)."""

from .port import Session, TargetPort

__all__ = ["TargetPort", "Session"]
