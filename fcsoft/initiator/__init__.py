"""The host side: an N_Port that logs into a fabric, registers, discovers and (later) issues
SCSI commands. trio-based."""

from .els_server import LoginPolicy
from .exchange import ExchangeTimeout
from .host import CtRejected, ElsRejected, Host, LoginRejected, NPort, TargetInfo, open_host
from .scsi import ITNexus, ScsiCommandError, ScsiResult, ScsiTimeout

__all__ = ["open_host", "Host", "NPort", "TargetInfo", "CtRejected", "ElsRejected",
           "LoginRejected", "LoginPolicy", "ExchangeTimeout", "ITNexus", "ScsiResult",
           "ScsiCommandError", "ScsiTimeout"]
