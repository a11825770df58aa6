"""Frame traces: every frame the fabric receives or sends, as a pcap of link type 225.

Records are buffered in memory and written by a background task at least once a second
(in a worker thread, so a slow disk never stalls the links), and once more at close.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio

from fcsoft.wire import pcap
from fcsoft.wire.encap import trace_record
from fcsoft.wire.types import BytesLike

FLUSH_INTERVAL = 1.0  # seconds; the issue asks for at least once a second
FLUSH_BYTES = 1 << 20  # flush early when this much is buffered


class Tracer:
    """Collects pcap records; `run` flushes them periodically; `close` flushes the rest."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(pcap.file_header())
        self._file.flush()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._wakeup = trio.Event()
        self.records = 0

    def frame(self, raw: BytesLike) -> None:
        """Trace one encapsulated FC frame (as received or as sent)."""
        if self._file.closed:
            return
        rec = pcap.record(time.time(), trace_record(raw))
        self._pending.append(rec)
        self._pending_bytes += len(rec)
        self.records += 1
        if self._pending_bytes >= FLUSH_BYTES:
            self._wakeup.set()

    def _take(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        return data

    def _write(self, data: bytes) -> None:
        if self._file.closed:
            return
        self._file.write(data)
        self._file.flush()

    async def run(self) -> None:
        """Flush loop; runs until cancelled."""
        while True:
            with trio.move_on_after(FLUSH_INTERVAL):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
            if self._pending and not self._file.closed:
                data = self._take()
                await trio.to_thread.run_sync(self._write, data)

    def close(self) -> None:
        """Write what is left and close the file (synchronous: used at shutdown)."""
        if self._file.closed:
            return
        if self._pending:
            self._write(self._take())
        self._file.close()
