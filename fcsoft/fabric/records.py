"""The name server's database (FC-GS-8 5.2): one record per logged-in N_Port_ID, kept in
sorted indexes so that every query is a range scan or a lookup, even with tens of
thousands of ports.

Indexes: N_Port_ID -> record (SortedDict, gives GA_NXT's "next" and ordered lists),
WWPN -> N_Port_ID, WWNN -> N_Port_IDs, FC-4 type -> N_Port_IDs (SortedSet each).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sortedcontainers import SortedDict, SortedSet

from fcsoft.wire.wwn import WWN

PORT_TYPE_N_PORT = 0x01
CLASS_3 = 0x08  # class of service bit mask (FC-GS-8 5.2.3.5: bit 3 = class 3)


@dataclass(slots=True, eq=False)
class PortRecord:
    """What the fabric knows of one logged-in N_Port_ID."""

    fcid: int
    wwpn: WWN
    wwnn: WWN
    link_id: int
    port_type: int = PORT_TYPE_N_PORT
    class_of_service: int = CLASS_3
    symbolic_port_name: bytes = b""
    fc4_types: frozenset[int] = frozenset()
    fc4_features: dict[int, int] = field(default_factory=dict)  # FC-4 type -> 4-bit features
    in_name_server: bool = True  # False after DA_ID until the port registers again
    ns_session: bool = False  # PLOGI to FFFFFC done
    scr_function: int = 0  # 0 = not registered for RSCN
    rscns: int = 0  # RSCNs the fabric has sent to this N_Port_ID (retries not counted)


class PortDatabase:
    """Records and their indexes. All mutation goes through these methods so the indexes
    never drift from the records."""

    def __init__(self) -> None:
        self.by_fcid: SortedDict[int, PortRecord] = SortedDict()
        self._by_wwpn: dict[WWN, int] = {}
        self._by_wwnn: dict[WWN, SortedSet[int]] = {}
        self._by_type: dict[int, SortedSet[int]] = {}
        self.symbolic_node_names: dict[WWN, bytes] = {}

    def __len__(self) -> int:
        return len(self.by_fcid)

    def __iter__(self) -> Iterator[PortRecord]:
        return iter(self.by_fcid.values())

    def get(self, fcid: int) -> PortRecord | None:
        return self.by_fcid.get(fcid)

    def fcid_of(self, wwpn: WWN) -> int | None:
        return self._by_wwpn.get(wwpn)

    def by_wwpn(self, wwpn: WWN) -> PortRecord | None:
        fcid = self._by_wwpn.get(wwpn)
        return None if fcid is None else self.by_fcid[fcid]

    def add(self, rec: PortRecord) -> None:
        if rec.fcid in self.by_fcid:
            raise KeyError(f"N_Port_ID {rec.fcid:06x} already in use")
        if rec.wwpn in self._by_wwpn:
            raise KeyError(f"WWPN {rec.wwpn} already logged in")
        self.by_fcid[rec.fcid] = rec
        self._by_wwpn[rec.wwpn] = rec.fcid
        self._by_wwnn.setdefault(rec.wwnn, SortedSet()).add(rec.fcid)
        for t in rec.fc4_types:
            self._by_type.setdefault(t, SortedSet()).add(rec.fcid)

    def remove(self, fcid: int) -> PortRecord | None:
        rec = self.by_fcid.pop(fcid, None)
        if rec is None:
            return None
        del self._by_wwpn[rec.wwpn]
        nodes = self._by_wwnn[rec.wwnn]
        nodes.discard(fcid)
        if not nodes:
            del self._by_wwnn[rec.wwnn]
            self.symbolic_node_names.pop(rec.wwnn, None)
        self._drop_types(rec)
        return rec

    def _drop_types(self, rec: PortRecord) -> None:
        for t in rec.fc4_types:
            s = self._by_type.get(t)
            if s is not None:
                s.discard(rec.fcid)
                if not s:
                    del self._by_type[t]

    def set_fc4_types(self, rec: PortRecord, types: Iterable[int]) -> None:
        self._drop_types(rec)
        rec.fc4_types = frozenset(types)
        for t in rec.fc4_types:
            self._by_type.setdefault(t, SortedSet()).add(rec.fcid)

    def set_node_name(self, rec: PortRecord, wwnn: WWN) -> None:
        if wwnn == rec.wwnn:
            return
        nodes = self._by_wwnn[rec.wwnn]
        nodes.discard(rec.fcid)
        if not nodes:
            del self._by_wwnn[rec.wwnn]
        rec.wwnn = wwnn
        self._by_wwnn.setdefault(wwnn, SortedSet()).add(rec.fcid)

    def deregister(self, rec: PortRecord) -> None:
        """DA_ID: drop the port's registered objects; it stays logged in."""
        self._drop_types(rec)
        rec.fc4_types = frozenset()
        rec.fc4_features = {}
        rec.symbolic_port_name = b""
        rec.in_name_server = False

    def with_type(self, fc4_type: int) -> Iterable[int]:
        """N_Port_IDs registered for `fc4_type`, in ascending order."""
        return self._by_type.get(fc4_type, ())

    def with_node(self, wwnn: WWN) -> Iterable[int]:
        return self._by_wwnn.get(wwnn, ())

    def after(self, fcid: int) -> Iterator[int]:
        """N_Port_IDs above `fcid`, ascending, then wrapping to the lowest (GA_NXT)."""
        yield from self.by_fcid.irange(fcid, inclusive=(False, True))
        yield from self.by_fcid.irange(None, fcid, inclusive=(True, True))
