"""Frame traces: every frame once, as it enters the fabric from any link (TCP, FCoE or
in-process), and every frame the fabric itself originates, with link type 225.

Two formats, chosen by the file name: `.pcapng` writes one interface per link (named by
the link, its peer and the WWPN that logged in on it), the direction in each packet's
flags, and frames the fabric discarded with the reason as a packet comment; anything else
writes a plain pcap.

Records are buffered in memory and written by a background task at least once a second
(in a worker thread, so a slow disk never stalls the links), and once more at close.
A pcapng interface block is written with the first flush that has a packet of its link,
so the name carries the WWPN when the link logged in within that second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import trio

from fcsoft.wire import pcap
from fcsoft.wire.encap import trace_record
from fcsoft.wire.types import BytesLike

FLUSH_INTERVAL = 1.0  # seconds
FLUSH_BYTES = 1 << 20  # flush early when this much is buffered


@dataclass(slots=True)
class TraceRecord:
    """One buffered frame; the fabric may still add the reason it discarded it."""

    link_id: int | None
    timestamp: float
    data: bytes
    inbound: bool
    comment: str | None = None


class Tracer:
    """Collects frames; `run` flushes them periodically; `close` flushes the rest."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.pcapng = self.path.suffix.lower() == ".pcapng"
        self._file: BinaryIO | None = None  # until open(): records wait in memory
        self._closed = False
        self._pending: list[TraceRecord] = []
        self._pending_bytes = 0
        self._wakeup = trio.Event()
        self._interfaces: dict[int | None, int] = {}  # link id -> pcapng interface index
        #: link id -> (interface name, description); set by the fabric's shell
        self.describe_link: Callable[[int | None], tuple[str, str]] = \
            lambda link_id: (f"link{link_id}", "")
        self.records = 0

    def open(self) -> None:
        """Create (or truncate) the file and write its header; the records collected so far
        follow at the next flush. Until then nothing touches the file system, so a start
        that fails before this leaves no trace file behind. Raises OSError."""
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(pcap.pcapng_section_header() if self.pcapng else pcap.file_header())
        self._file.flush()

    def frame(self, raw: BytesLike, link_id: int | None = None, *, inbound: bool = True,
              comment: str | None = None) -> TraceRecord | None:
        """Trace one encapsulated FC frame entering (`inbound`) or leaving the fabric on
        `link_id`. Returns the record, to which a discard reason may still be added."""
        if self._closed:
            return None
        rec = TraceRecord(link_id, time.time(), trace_record(raw), inbound, comment)
        self._pending.append(rec)
        self._pending_bytes += len(rec.data) + 32
        self.records += 1
        if self._pending_bytes >= FLUSH_BYTES:
            self._wakeup.set()
        return rec

    def _take(self) -> bytes:
        records, self._pending = self._pending, []
        self._pending_bytes = 0
        if not self.pcapng:
            return b"".join(pcap.record(r.timestamp, r.data) for r in records)
        out: list[bytes] = []
        for r in records:
            index = self._interfaces.get(r.link_id)
            if index is None:
                index = self._interfaces[r.link_id] = len(self._interfaces)
                out.append(pcap.pcapng_interface(*self.describe_link(r.link_id)))
            out.append(pcap.pcapng_packet(index, r.timestamp, r.data,
                                          pcap.INBOUND if r.inbound else pcap.OUTBOUND,
                                          r.comment))
        return b"".join(out)

    def _write(self, data: bytes) -> None:
        if self._file is None or self._file.closed:
            return
        self._file.write(data)
        self._file.flush()

    async def run(self) -> None:
        """Flush loop; runs until cancelled."""
        while True:
            with trio.move_on_after(FLUSH_INTERVAL):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            if self._pending and self._file is not None and not self._file.closed:
                data = self._take()
                await trio.to_thread.run_sync(self._write, data)

    def close(self) -> None:
        """Write what is left and close the file (synchronous: used at shutdown); never
        opened, nothing is written."""
        self._closed = True
        if self._file is None or self._file.closed:
            self._pending.clear()
            return
        if self._pending:
            self._write(self._take())
        self._file.close()
