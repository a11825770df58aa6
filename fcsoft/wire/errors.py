"""The one exception family every decoder in fcsoft.wire raises on malformed input.

Following h11's split, DecodeError is always "the peer sent something illegal"; the
message names the field or structure that was wrong so that logs and rejects can say why.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """Malformed input. `what` names the structure or field; str() is a readable sentence."""

    def __init__(self, what: str, detail: str = "") -> None:
        self.what = what
        self.detail = detail
        super().__init__(f"{what}: {detail}" if detail else what)


class FramingError(DecodeError):
    """The byte stream itself is broken (bad encapsulation header or length).

    The stream cannot be resynchronised, so the link that produced it must be reset.
    """


class FrameError(DecodeError):
    """One frame is bad (FC CRC, SOF/EOF delimiters); the stream is intact, drop the frame."""
