"""A writer for the cpio "newc" format the Linux kernel unpacks as an initramfs
(Documentation/driver-api/early-userspace/buffer-format.rst).

Each entry is a 110-byte ASCII header (magic 070701 and thirteen 8-digit hex fields), the
NUL-terminated name padded to a multiple of 4, then the data padded to a multiple of 4.
The archive ends with an entry named TRAILER!!!.
"""

from __future__ import annotations

import stat
from typing import BinaryIO

_MAGIC = b"070701"


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


class CpioWriter:
    """Writes entries to `out`; call `close()` to write the trailer."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._ino = 1
        self._dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        raw = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(raw), 0)
        head = _MAGIC + b"".join(b"%08X" % f for f in fields)
        self._out.write(head + raw + _pad(len(head) + len(raw)))
        self._out.write(data + _pad(len(data)))
        self._ino += 1

    def directory(self, name: str, mode: int = 0o755) -> None:
        """Add directory `name` (and its parents), once."""
        name = name.strip("/")
        if not name or name in self._dirs:
            return
        parent = name.rpartition("/")[0]
        if parent:
            self.directory(parent)
        self._dirs.add(name)
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """Add regular file `name` with `data` (parent directories added as needed)."""
        name = name.strip("/")
        self.directory(name.rpartition("/")[0])
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        """Add symbolic link `name` -> `target`."""
        name = name.strip("/")
        self.directory(name.rpartition("/")[0])
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def close(self) -> None:
        self._entry("TRAILER!!!", 0)
