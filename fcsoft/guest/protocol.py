"""The host's half of the guest agent protocol (sans-IO: bytes in, events out).

The agent (fcsoft/guest/files/agent, a busybox sh loop that is PID 1 in the guest) and the
host talk over one virtio-serial port, which QEMU joins to a unix socket on the host. The
port is a plain byte pipe (no terminal line discipline), so any byte goes through as is.

    guest -> host, once at start:   FCSOFT-READY <kernel release>\\n
    host -> guest, per command:     RUN <id> <timeout> <n script> <n stdin>\\n
                                    <n script bytes of script><n stdin bytes of stdin>
    guest -> host, per command:     FCSOFT-RESULT <id> <status> <ok|timeout> <n out> <n err>\\n
                                    <n out bytes of stdout><n err bytes of stderr>

A second port, the control port, carries one message, host to guest, read by a second loop
in the agent while a command runs:

    host -> guest:                  KILL <id>\n

which kills that command's session (the host gave up waiting for it: its caller was
cancelled); the reply still comes, and the host drops it.

`<timeout>` is in seconds (decimals allowed), or `-` for none. The agent runs the script as
`sh SCRIPT` in a session of its own, collects stdout and stderr in files, and on timeout
kills the whole session (status 137, `timeout`). Commands run one at a time; the host sends
the next request only after the reply to the previous one. Because every payload is
length-prefixed, output may contain anything, including newlines, NUL bytes and text that
looks like a header.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import GuestError

READY = b"FCSOFT-READY"
RESULT = b"FCSOFT-RESULT"
MAX_HEADER = 4096  # a header line longer than this is garbage


class ProtocolError(GuestError):
    """The agent sent something that does not follow the protocol."""


@dataclass(frozen=True)
class Ready:
    """The agent is up; `kernel` is the guest's `uname -r`."""

    kernel: str


@dataclass(frozen=True)
class Reply:
    """The result of request `id`."""

    id: int
    status: int
    timed_out: bool
    stdout: bytes
    stderr: bytes


def encode_kill(request_id: int) -> bytes:
    """The bytes of a KILL message (control port)."""
    return f"KILL {request_id}\n".encode()


def encode_request(request_id: int, script: bytes, stdin: bytes = b"",
                   timeout: float | None = None) -> bytes:
    """The bytes of one RUN request."""
    tmo = "-" if timeout is None else f"{max(timeout, 0.001):.3f}"
    head = f"RUN {request_id} {tmo} {len(script)} {len(stdin)}\n".encode()
    return head + script + stdin


class AgentParser:
    """Turns the bytes read from the agent's port into `Ready` and `Reply` events."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending: tuple[int, int, bool, int, int] | None = None

    def feed(self, data: bytes) -> list[Ready | Reply]:
        """Add `data`; return the events it completes. ProtocolError on garbage."""
        self._buf += data
        events: list[Ready | Reply] = []
        while True:
            if self._pending is None:
                end = self._buf.find(b"\n")
                if end < 0:
                    if len(self._buf) > MAX_HEADER:
                        raise ProtocolError("the guest agent sent an over-long header line")
                    return events
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                event = self._header(line)
                if event is not None:
                    events.append(event)
                continue
            rid, status, timed_out, nout, nerr = self._pending
            if len(self._buf) < nout + nerr:
                return events
            out = bytes(self._buf[:nout])
            err = bytes(self._buf[nout: nout + nerr])
            del self._buf[: nout + nerr]
            self._pending = None
            events.append(Reply(rid, status, timed_out, out, err))

    def _header(self, line: bytes) -> Ready | None:
        words = line.split()
        if words[:1] == [READY]:
            return Ready(b" ".join(words[1:]).decode(errors="replace"))
        if words[:1] == [RESULT] and len(words) == 6 and words[3] in (b"ok", b"timeout"):
            try:
                rid, status, nout, nerr = (int(words[i]) for i in (1, 2, 4, 5))
            except ValueError:
                pass
            else:
                self._pending = (rid, status, words[3] == b"timeout", nout, nerr)
                return None
        shown = line[:80].decode(errors="replace")
        raise ProtocolError(f"the guest agent sent an unexpected line: {shown!r}")
