"""Zoning: which ports may see each other (docs/behaviour.md 2; FC-GS-8 zoning).

This is the one place visibility is decided. Name-server answers, RSCN delivery and frame
routing all ask `Zoning.visible`, so a zoning change takes effect for all three at once.

Rules: zones list member WWPNs. With no zone defined, `default_zone` decides: "allow" lets
everyone see everyone, "deny" lets nobody see anybody. Once any zone exists, `default_zone`
no longer applies and two ports see each other exactly when they share a zone. A port
always "sees" itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fcsoft.wire.wwn import WWN

_EMPTY: frozenset[str] = frozenset()


class Zoning:
    """An immutable zone set. Build a new one to change zoning."""

    __slots__ = ("zones", "default_zone", "_member_zones")

    def __init__(self, zones: Mapping[str, Iterable[WWN]] | None = None,
                 default_zone: str = "allow") -> None:
        if default_zone not in ("allow", "deny"):
            raise ValueError(f"default_zone must be 'allow' or 'deny', not {default_zone!r}")
        self.zones: dict[str, frozenset[WWN]] = {
            name: frozenset(WWN(m) for m in members) for name, members in (zones or {}).items()}
        self.default_zone = default_zone
        member_zones: dict[WWN, set[str]] = {}
        for name, members in self.zones.items():
            for m in members:
                member_zones.setdefault(m, set()).add(name)
        self._member_zones = {k: frozenset(v) for k, v in member_zones.items()}

    @classmethod
    def from_config(cls, zones: Iterable[object], default_zone: str) -> Zoning:
        """From config ZoneConfig objects (anything with .name and .members)."""
        return cls({z.name: z.members for z in zones}, default_zone)  # type: ignore[attr-defined]

    @property
    def zoned(self) -> bool:
        """True when at least one zone is defined (default_zone no longer applies)."""
        return bool(self.zones)

    def visible(self, a: WWN, b: WWN) -> bool:
        """May ports a and b see each other?"""
        if a == b:
            return True
        if not self.zones:
            return self.default_zone == "allow"
        za = self._member_zones.get(a)
        return za is not None and not za.isdisjoint(self._member_zones.get(b, _EMPTY))

    def zones_of(self, wwpn: WWN) -> frozenset[str]:
        return self._member_zones.get(wwpn, _EMPTY)

    def affected_by_change(self, new: Zoning) -> set[WWN] | None:
        """WWPNs whose visibility may differ between self and `new`; None means everyone
        (the default-zone mode itself changed)."""
        if (not self.zones and not new.zones) and self.default_zone == new.default_zone:
            return set()
        if not self.zones or not new.zones:
            return None
        changed: set[WWN] = set()
        for name in self.zones.keys() | new.zones.keys():
            old_m = self.zones.get(name, frozenset())
            new_m = new.zones.get(name, frozenset())
            if old_m != new_m:
                changed |= old_m | new_m
        return changed

    def __repr__(self) -> str:
        return f"Zoning({len(self.zones)} zones, default_zone={self.default_zone!r})"
