"""Type aliases shared by the codecs."""

from __future__ import annotations

from typing import TypeAlias

#: anything the codecs accept as input bytes (collections.abc.Buffer arrives only in 3.12)
BytesLike: TypeAlias = bytes | bytearray | memoryview
