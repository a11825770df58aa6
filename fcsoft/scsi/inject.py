"""Errors an administrator makes an LU answer (`fcsoft ctl lu-error`): CHECK CONDITION with
a chosen sense, BUSY or TASK SET FULL, for some operation codes (or all), a number of times
or with a probability (sans-IO: the draw comes from the `random` the caller hands in)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .sense import Asc, Sense, SenseKey, Status
from .types import Result

__all__ = ["InjectedError"]

_STATUSES = {"busy": Status.BUSY, "task-set-full": Status.TASK_SET_FULL}


@dataclass(slots=True, eq=False)
class InjectedError:
    """One LU's injected error. `opcodes` None: every command but the ones a host needs to
    see the LU at all is hit (INQUIRY, REPORT LUNS and REQUEST SENSE are never hit unless
    named)."""

    status: Status
    sense: Sense | None = None
    opcodes: frozenset[int] | None = None
    count: int | None = None  # commands it may still hit (None: no limit)
    probability: float | None = None
    hits: int = 0

    _EXEMPT = frozenset({0x12, 0xA0, 0x03})

    @classmethod
    def build(cls, *, sense: str | None = None, status: str | None = None,
              opcodes: frozenset[int] | None = None, count: int | None = None,
              probability: float | None = None) -> InjectedError:
        """From the control API's fields; ValueError (one line) when they do not fit."""
        if (sense is None) == (status is None):
            raise ValueError("give either sense (KEY/ASC/ASCQ) or status (busy, task-set-full)")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 1):
            raise ValueError(f"count must be a whole number of at least 1, not {count!r}")
        if probability is not None and (isinstance(probability, bool)
                                        or not isinstance(probability, (int, float))
                                        or not 0 < probability <= 1):
            raise ValueError(f"probability must be more than 0 and at most 1, not "
                             f"{probability!r}")
        if status is not None:
            st = _STATUSES.get(str(status).lower())
            if st is None:
                raise ValueError(f"status must be busy or task-set-full, not {status!r}")
            return cls(st, None, opcodes, count, probability)
        return cls(Status.CHECK_CONDITION, parse_sense(str(sense)), opcodes, count,
                   None if probability is None else float(probability))

    def applies(self, op: int, draw: random.Random) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.opcodes is None:
            if op in self._EXEMPT:
                return False
        elif op not in self.opcodes:
            return False
        if self.probability is not None and draw.random() >= self.probability:
            return False
        self.hits += 1
        if self.count is not None:
            self.count -= 1
        return True

    def result(self) -> Result:
        if self.sense is not None:
            return Result.check(self.sense)
        return Result(self.status)

    @property
    def spent(self) -> bool:
        return self.count is not None and self.count <= 0

    def describe(self) -> dict[str, Any]:
        return {
            "status": self.status.name.lower().replace("_", "-"),
            "sense": (f"{int(self.sense.key):x}/{self.sense.code[0]:02x}/"
                      f"{self.sense.code[1]:02x}" if self.sense is not None else None),
            "opcodes": sorted(f"{o:#04x}" for o in self.opcodes) if self.opcodes else None,
            "count_left": self.count, "probability": self.probability, "hits": self.hits,
        }


def parse_sense(text: str) -> Sense:
    """`KEY/ASC/ASCQ` in hex (`3/11/00`: MEDIUM ERROR, UNRECOVERED READ ERROR); the key
    may be named (`medium-error/11/00`). A UNIT ATTENTION or NO SENSE key is refused: a
    host treats those as conditions, not errors."""
    parts = text.strip().split("/")
    if len(parts) != 3:
        raise ValueError(f"sense must be KEY/ASC/ASCQ in hex (e.g. 3/11/00), not {text!r}")
    key_text = parts[0].strip()
    try:
        key = SenseKey[key_text.upper().replace("-", "_")]
    except KeyError:
        try:
            key = SenseKey(int(key_text, 16))
        except ValueError:
            raise ValueError(f"sense key {key_text!r} is not a sense key (0..f or a name "
                             "such as not-ready, medium-error)") from None
    if key in (SenseKey.NO_SENSE, SenseKey.UNIT_ATTENTION):
        raise ValueError(f"sense key {key.name} cannot be injected (use an error key: "
                         "NOT_READY, MEDIUM_ERROR, HARDWARE_ERROR, ABORTED_COMMAND ...)")
    try:
        asc, ascq = int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        raise ValueError(f"ASC and ASCQ must be hex bytes, not {parts[1]!r}/{parts[2]!r}") \
            from None
    if not (0 <= asc <= 0xFF and 0 <= ascq <= 0xFF):
        raise ValueError("ASC and ASCQ must be 00..ff")
    return Sense(key, Asc(asc, ascq))
