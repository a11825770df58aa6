"""A small QMP (QEMU Machine Protocol) client: JSON objects, one per line, over a socket.

QEMU greets with {"QMP": ...}; the client answers {"execute": "qmp_capabilities"} and then
sends commands, each answered by {"return": ...} or {"error": {...}}. Asynchronous events
({"event": ...}) may come in between; they are kept in `events`.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from .errors import GuestError


class QmpError(GuestError):
    """QEMU answered a QMP command with an error, or the monitor went away."""


class Qmp:
    """One QMP connection; commands are sent one at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._lock = trio.Lock()
        self.events: list[dict[str, Any]] = []

    async def _message(self) -> dict[str, Any]:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                if line.strip():
                    msg: dict[str, Any] = json.loads(line)
                    return msg
                continue
            data = await self._stream.receive_some(65536)
            if not data:
                raise QmpError("QEMU's monitor closed the connection")
            self._buf += data

    async def handshake(self) -> None:
        """Read the greeting and leave capabilities negotiation mode."""
        greeting = await self._message()
        if "QMP" not in greeting:
            raise QmpError(f"unexpected QMP greeting: {greeting!r}")
        await self.execute("qmp_capabilities")

    async def execute(self, command: str, **arguments: Any) -> Any:
        """Run `command`; its "return" value, or QmpError."""
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        async with self._lock:
            await self._stream.send_all(json.dumps(msg).encode() + b"\n")
            while True:
                reply = await self._message()
                if "event" in reply:
                    self.events.append(reply)
                    continue
                if "error" in reply:
                    err = reply["error"]
                    raise QmpError(f"QMP {command}: {err.get('desc', err)}")
                return reply.get("return")

    async def aclose(self) -> None:
        await self._stream.aclose()
