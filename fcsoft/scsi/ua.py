"""Unit attention conditions, queued per I_T nexus per logical unit (SAM-5 5.14, SPC-4 5.8).

Rules kept here (SPC-4 5.14, following SPC rather than LIO):
- a condition is not queued twice (same ASC/ASCQ);
- the highest-priority condition is reported first: 29h (power on / reset family) above
  2Ah (parameters / reservations changed) above everything else, oldest first in a class;
- reporting a condition clears only the one reported (UA_INTLCK_CTRL = 00b);
- INQUIRY, REPORT LUNS and REQUEST SENSE are not blocked by a pending unit attention
  (REQUEST SENSE returns and clears the highest one); the LU decides that, not this class.
"""

from __future__ import annotations

from collections.abc import Iterable

from .sense import Asc, Sense, SenseKey
from .types import Nexus


def _priority(code: Asc) -> int:
    if code[0] == 0x29:
        return 0
    if code[0] == 0x2A:
        return 1
    return 2


class UnitAttentions:
    """Pending unit attention conditions for every nexus of one LU."""

    def __init__(self) -> None:
        self._pending: dict[Nexus, list[Asc]] = {}

    def establish(self, nexus: Nexus, code: Asc) -> None:
        """Queue `code` for `nexus` unless already pending."""
        queue = self._pending.setdefault(nexus, [])
        if code not in queue:
            queue.append(code)
            queue.sort(key=_priority)  # stable: keeps age order within a priority

    def establish_all(self, nexuses: Iterable[Nexus], code: Asc) -> None:
        for n in nexuses:
            self.establish(n, code)

    def pending(self, nexus: Nexus) -> tuple[Asc, ...]:
        return tuple(self._pending.get(nexus, ()))

    def has(self, nexus: Nexus) -> bool:
        return bool(self._pending.get(nexus))

    def take(self, nexus: Nexus) -> Sense | None:
        """Report (and clear) the highest-priority condition for `nexus`, as sense data."""
        queue = self._pending.get(nexus)
        if not queue:
            return None
        code = queue.pop(0)
        if not queue:
            del self._pending[nexus]
        return Sense(SenseKey.UNIT_ATTENTION, code)

    def clear(self, nexus: Nexus) -> None:
        self._pending.pop(nexus, None)

    def clear_code(self, code: Asc) -> None:
        """Withdraw `code` from every nexus (e.g. a superseded condition)."""
        for n in list(self._pending):
            q = self._pending[n]
            if code in q:
                q.remove(code)
                if not q:
                    del self._pending[n]
