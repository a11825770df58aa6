"""Errors every command-line layer shares (the `fcsoft` command, the host tools, `check`).

It sits below them all and imports nothing of fcsoft's, so any layer may raise a
`UserError` without importing the layer above it.
"""

from __future__ import annotations

EXIT_RUNTIME = 1


class UserError(Exception):
    """An error to report as one line on stderr and exit status `status`."""

    def __init__(self, message: str, status: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.status = status


__all__ = ["EXIT_RUNTIME", "UserError"]
