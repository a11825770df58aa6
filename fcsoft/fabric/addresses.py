"""N_Port_ID assignment (FC-FS-4 11.2, FC-LS-3 4.2.7 / 4.2.8).

An N_Port_ID is DD AA PP: the fabric's domain, then area and port. Each link gets its own
area when it logs in with FLOGI (the link is the F_Port, as on a switch where each physical
port has an area); FDISC on the same link takes further port numbers within that area
(NPIV). When a link's area space would be exhausted the allocator moves to a fresh area.

IDs are handed out round-robin and are reused only after every other free ID has been
tried, so a port that logs out and back in normally gets a new N_Port_ID, and a stale frame
to its old ID does not reach someone else.
"""

from __future__ import annotations

from sortedcontainers import SortedSet


class AddressSpaceFull(Exception):
    """No N_Port_ID is free."""


class AddressAllocator:
    """Allocates N_Port_IDs DD AA PP within one domain: areas 1..255 for links, ports
    0..255 within an area. Area 0 is left unused so that no N_Port_ID is DD 00 00."""

    def __init__(self, domain_id: int) -> None:
        if not 1 <= domain_id <= 239:
            raise ValueError(f"domain_id {domain_id} outside 1..239")
        self.domain = domain_id
        self._in_use: SortedSet[int] = SortedSet()
        self._next_area = 1
        self._area_cursor: dict[int, int] = {}
        self._area_used: dict[int, int] = {}  # area -> N_Port_IDs in use, to skip full areas

    def in_use(self, fcid: int) -> bool:
        return fcid in self._in_use

    def __len__(self) -> int:
        return len(self._in_use)

    def new_area(self) -> int:
        """Reserve the least recently used free area for a new link (FLOGI)."""
        for _ in range(256):
            area = self._next_area
            self._next_area = self._next_area % 255 + 1  # areas 1..255, round robin
            base = (self.domain << 16) | (area << 8)
            if self._in_use.bisect_left(base) == self._in_use.bisect_left(base + 0x100):
                return area
        raise AddressSpaceFull(f"no free area in domain {self.domain:02x}")

    def allocate(self, area: int) -> int:
        """A free N_Port_ID in `area` (round robin over ports 0..255 of the area)."""
        if self._area_used.get(area, 0) >= 256:
            raise AddressSpaceFull(f"area {area:02x} of domain {self.domain:02x} is full")
        base = (self.domain << 16) | (area << 8)
        start = self._area_cursor.get(area, 0)
        for i in range(256):
            port = (start + i) & 0xFF
            fcid = base | port
            if fcid not in self._in_use:
                self._in_use.add(fcid)
                self._area_cursor[area] = (port + 1) & 0xFF
                self._area_used[area] = self._area_used.get(area, 0) + 1
                return fcid
        raise AssertionError("area use count out of step")  # pragma: no cover

    def allocate_for_link(self, areas: list[int]) -> int:
        """An N_Port_ID for a link that owns `areas` (appended to when a new area is
        taken): first the link's own areas, then an unused area (one F_Port, one area, as
        long as areas last), then any area with room, so that more than 255 links and tens
        of thousands of NPIV ports still fit the domain's 65280 IDs."""
        for area in areas:
            if self._area_used.get(area, 0) < 256:
                return self.allocate(area)
        try:
            area = self.new_area()
        except AddressSpaceFull:
            free = [a for a in range(1, 256) if self._area_used.get(a, 0) < 256]
            if not free:
                raise AddressSpaceFull(f"domain {self.domain:02x} has no free N_Port_ID") \
                    from None
            area = min(free, key=lambda a: self._area_used.get(a, 0))
        areas.append(area)
        return self.allocate(area)

    def release(self, fcid: int) -> None:
        if fcid in self._in_use:
            self._in_use.discard(fcid)
            area = (fcid >> 8) & 0xFF
            self._area_used[area] -= 1
