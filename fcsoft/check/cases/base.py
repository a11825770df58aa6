"""The case registry (`CASES`, `@case`, `add`) and the names every group shares: sense
codes, unit attention codes, type and service action names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..commands import PrOut, PrType
from ..runner import Case, Context, Ua

__all__ = ["CASES", "COMMANDS_CLEARED", "INVALID_FIELD_IN_CDB", "INVALID_FIELD_IN_PARAMETER_LIST",
           "INVALID_RELEASE", "LU_NOT_SUPPORTED", "PARAMETER_LIST_LENGTH_ERROR",
           "REGISTRATIONS_PREEMPTED", "RESERVATIONS_PREEMPTED", "RESERVATIONS_RELEASED", "add",
           "case", "sa_name", "tname"]

CASES: list[Case] = []

# sense codes (key, ASC, ASCQ)
INVALID_FIELD_IN_CDB = (0x5, 0x24, 0x00)
INVALID_FIELD_IN_PARAMETER_LIST = (0x5, 0x26, 0x00)
INVALID_RELEASE = (0x5, 0x26, 0x04)
PARAMETER_LIST_LENGTH_ERROR = (0x5, 0x1A, 0x00)
LU_NOT_SUPPORTED = (0x5, 0x25, 0x00)
# unit attentions (ASC, ASCQ)
RESERVATIONS_PREEMPTED: Ua = (0x2A, 0x03)
RESERVATIONS_RELEASED: Ua = (0x2A, 0x04)
REGISTRATIONS_PREEMPTED: Ua = (0x2A, 0x05)
COMMANDS_CLEARED: Ua = (0x2F, 0x00)

CaseFn = Callable[[Context], Awaitable[None]]


def case(name: str, *, initiators: int = 1, outsider: bool = False, second_port: bool = False
         ) -> Callable[[CaseFn], CaseFn]:
    """Register the decorated function as case `name`; its docstring's first line is the
    summary."""
    def register(fn: CaseFn) -> CaseFn:
        add(name, fn, initiators=initiators, outsider=outsider, second_port=second_port)
        return fn
    return register


def add(name: str, fn: CaseFn, *, initiators: int = 1, outsider: bool = False,
        summary: str | None = None, second_port: bool = False) -> None:
    if any(k.name == name for k in CASES):
        raise ValueError(f"duplicate case name {name!r}")
    doc = summary if summary is not None else (fn.__doc__ or "").strip().splitlines()[0]
    CASES.append(Case(name, fn, initiators, outsider, doc, second_port))


def tname(t: int) -> str:
    return PrType(t).name.replace("_", " ")


def sa_name(sa: int) -> str:
    return PrOut(sa).name.replace("_", " ")
