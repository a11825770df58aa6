"""World Wide Names (FC-FS-4 clause 19): 64-bit port and node names.

Written as 8 colon-separated hex byte pairs ("10:00:00:00:c9:00:00:01"), the form switches,
Linux sysfs (with 0x prefix stripped) and the config file use.
"""

from __future__ import annotations

import re

from .errors import DecodeError
from .types import BytesLike

_WWN_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){7}$")


class WWN(int):
    """A 64-bit World Wide Name. An int (so it sorts, hashes and packs like one) that
    prints in colon form."""

    __slots__ = ()

    def __new__(cls, value: int | str | BytesLike) -> WWN:
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return cls.from_bytes8(value)
        if not 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
            raise ValueError(f"WWN {value:#x} does not fit in 64 bits")
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, text: str) -> WWN:
        """Parse "xx:xx:xx:xx:xx:xx:xx:xx"; also accepts 16 hex digits with or without 0x."""
        t = text.strip()
        if _WWN_RE.match(t):
            return int.__new__(cls, int(t.replace(":", ""), 16))
        bare = t[2:] if t[:2].lower() == "0x" else t
        if len(bare) == 16 and all(c in "0123456789abcdefABCDEF" for c in bare):
            return int.__new__(cls, int(bare, 16))
        raise ValueError(f"bad WWN {text!r}: expected 8 colon-separated hex bytes "
                         "like 10:00:00:00:c9:00:00:01")

    @classmethod
    def from_bytes8(cls, data: BytesLike, offset: int = 0) -> WWN:
        """Decode 8 big-endian bytes at `offset`."""
        chunk = bytes(data[offset:offset + 8])
        if len(chunk) != 8:
            raise DecodeError("WWN", f"need 8 bytes, have {len(chunk)}")
        return int.__new__(cls, int.from_bytes(chunk, "big"))

    def to_bytes8(self) -> bytes:
        return self.to_bytes(8, "big")

    @property
    def naa(self) -> int:
        """The Network Address Authority nibble (FC-FS-4 19.2): 1, 2, 5, 6, ..."""
        return self >> 60

    def __str__(self) -> str:
        h = f"{int(self):016x}"
        return ":".join(h[i:i + 2] for i in range(0, 16, 2))

    def __repr__(self) -> str:
        return f"WWN('{self}')"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else int(self).__format__(spec)
