"""What the guest-lab tests share: the tools they need, a cpio reader, and a stand-in FCF
that records the Ethernet frames a guest sends over QEMU's -netdev stream."""

from __future__ import annotations

import importlib.util
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import trio

from tests.conftest import require_tool

FIP_ETHERTYPE = 0x8914
ALL_FCF_MACS = bytes.fromhex("011018010002")


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    """examples/NAME.py as a module (the scenario tests run the examples' own code)."""
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def require_guest_tools() -> None:
    """Skip (or fail under FCSOFT_REQUIRE_TOOLS=1) unless a guest can be built and booted."""
    for tool in ("qemu-system-x86_64", "busybox", "depmod", "dpkg", "apt-get", "sg_inq"):
        require_tool(tool)


def read_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    """A newc cpio archive as {name: (mode, data)}."""
    entries: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while True:
        head = data[pos: pos + 110]
        assert head[:6] == b"070701", f"bad cpio magic at {pos}"
        fields = [int(head[6 + 8 * i: 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos: pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, body)


@dataclass
class Frame:
    dst: bytes
    src: bytes
    ethertype: int
    payload: bytes


def parse_fip(payload: bytes) -> tuple[int, int, dict[int, bytes]]:
    """(operation code, subcode, {descriptor type: descriptor bytes after type and length})
    of a FIP frame's payload (FC-BB-5 7.8.1)."""
    version = payload[0] >> 4
    assert version == 1, f"FIP version {version}"
    op, _, sub, words, _flags = struct.unpack_from(">HBBHH", payload, 2)
    descs: dict[int, bytes] = {}
    pos, end = 10, 10 + 4 * words
    while pos < end:
        dtype, dlen = payload[pos], payload[pos + 1]
        assert dlen > 0, "zero-length FIP descriptor"
        descs[dtype] = payload[pos + 2: pos + 4 * dlen]
        pos += 4 * dlen
    return op, sub, descs


@dataclass
class FrameSink:
    """Listens on 127.0.0.1 like an FCF's stream listener and records every frame, per
    connection, without answering."""

    port: int = 0
    frames: list[Frame] = field(default_factory=list)
    connections: int = 0
    arrived: trio.Event = field(default_factory=trio.Event)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buf = bytearray()
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            buf += data
            while len(buf) >= 4:
                n = int.from_bytes(buf[:4], "big")
                if len(buf) < 4 + n:
                    break
                raw = bytes(buf[4: 4 + n])
                del buf[: 4 + n]
                self.frames.append(Frame(raw[:6], raw[6:12],
                                         int.from_bytes(raw[12:14], "big"), raw[14:]))
                self.arrived.set()
                self.arrived = trio.Event()

    def solicitations(self, mac: str) -> list[dict[int, bytes]]:
        """The descriptors of every FIP Discovery Solicitation from `mac`."""
        src = bytes.fromhex(mac.replace(":", ""))
        found = []
        for f in self.frames:
            if f.ethertype == FIP_ETHERTYPE and f.src == src:
                op, sub, descs = parse_fip(f.payload)
                if (op, sub) == (1, 1):
                    assert f.dst == ALL_FCF_MACS
                    found.append(descs)
        return found

    async def wait_for_solicitation(self, mac: str) -> dict[int, bytes]:
        while True:
            found = self.solicitations(mac)
            if found:
                return found[0]
            await self.arrived.wait()
