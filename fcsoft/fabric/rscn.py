"""RSCN coalescing and delivery bookkeeping (FC-LS-3 4.2.28, 4.2.31; docs/behaviour.md 2).

Theory of operation: the fabric reports each change with `RscnQueue.note(recipients, page,
now)`. The first change opens a window of `coalesce` seconds; when it closes (`due`), each
recipient gets one RSCN listing every page noted for it, so a burst of logins becomes one
multi-page RSCN per registered port. Each RSCN sent is tracked until its LS_ACC arrives;
one without an answer after E_D_TOV is sent once more, then given up (and logged).

Sans-IO: no clock (callers pass `now`), no frames (callers encode the pages).
"""

from __future__ import annotations

from dataclasses import dataclass

# (event qualifier, address format, affected N_Port_ID / area / domain)
Page = tuple[int, int, int]

#: the largest number of pages in one RSCN: a 2112-byte payload, 4-byte header and pages
MAX_PAGES = (2112 - 4) // 4


@dataclass(slots=True)
class Outstanding:
    recipient: int
    link_id: int
    ox_id: int
    payload: bytes
    deadline: float
    retried: bool = False


class RscnQueue:
    """Pending pages per recipient N_Port_ID, and RSCNs awaiting their LS_ACC."""

    def __init__(self, coalesce: float, e_d_tov: float) -> None:
        self.coalesce = coalesce
        self.e_d_tov = e_d_tov
        self._pending: dict[int, dict[Page, None]] = {}  # insertion-ordered sets
        self._window: float | None = None
        self._outstanding: dict[tuple[int, int], Outstanding] = {}

    def note(self, recipients: list[int] | set[int], page: Page, now: float) -> None:
        """Queue `page` for each recipient, opening the coalescing window if closed."""
        if not recipients:
            return
        for r in recipients:
            self._pending.setdefault(r, {})[page] = None
        if self._window is None:
            self._window = now + self.coalesce

    def forget(self, recipient: int) -> None:
        """The recipient logged out: nothing more is owed to it."""
        self._pending.pop(recipient, None)
        for key in [k for k in self._outstanding if k[0] == recipient]:
            del self._outstanding[key]

    def due(self, now: float) -> list[tuple[int, list[Page]]]:
        """When the window has closed: every recipient with the pages owed to it (split so
        that no RSCN exceeds MAX_PAGES)."""
        if self._window is None or now < self._window:
            return []
        self._window = None
        out: list[tuple[int, list[Page]]] = []
        for recipient, pages in self._pending.items():
            plist = list(pages)
            for i in range(0, len(plist), MAX_PAGES):
                out.append((recipient, plist[i:i + MAX_PAGES]))
        self._pending.clear()
        return out

    def sent(self, recipient: int, link_id: int, ox_id: int, payload: bytes, now: float) -> None:
        self._outstanding[(recipient, ox_id)] = Outstanding(recipient, link_id, ox_id, payload,
                                                            now + self.e_d_tov)

    def answered(self, recipient: int, ox_id: int) -> Outstanding | None:
        """The LS_ACC (or LS_RJT) for an RSCN arrived; returns what it answered."""
        return self._outstanding.pop((recipient, ox_id), None)

    def expired(self, now: float) -> tuple[list[Outstanding], list[Outstanding]]:
        """(to retry, given up): RSCNs whose E_D_TOV passed without an answer."""
        retry: list[Outstanding] = []
        gone: list[Outstanding] = []
        # deadlines are now + E_D_TOV, so insertion order is deadline order: stop at the
        # first one still running
        while self._outstanding:
            key, o = next(iter(self._outstanding.items()))
            if now < o.deadline:
                break
            del self._outstanding[key]
            if o.retried:
                gone.append(o)
            else:
                o.retried = True
                o.deadline = now + self.e_d_tov
                retry.append(o)
        for o in retry:
            self._outstanding[(o.recipient, o.ox_id)] = o
        return retry, gone

    def next_deadline(self) -> float | None:
        first = next(iter(self._outstanding.values()), None)
        t = None if first is None else first.deadline
        if self._window is not None and (t is None or self._window < t):
            t = self._window
        return t

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)
