"""Errors every command-line layer shares (the `fcsoft` command, the host tools, `check`).

It sits below them all and imports nothing of fcsoft's, so any layer may raise a
`UserError` without importing the layer above it.
"""

from __future__ import annotations

import os
import sys

EXIT_RUNTIME = 1
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a filter whose reader left


class UserError(Exception):
    """An error to report as one line on stderr and exit status `status`."""

    def __init__(self, message: str, status: int = EXIT_RUNTIME) -> None:
        super().__init__(message)
        self.status = status


def find(exc: BaseException, kinds: type[BaseException] | tuple[type[BaseException], ...]
         ) -> BaseException | None:
    """The first exception of `kinds` in `exc`, looking inside exception groups."""
    if isinstance(exc, kinds):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = find(inner, kinds)
            if found is not None:
                return found
    return None


def output_closed() -> int:
    """Stop quietly because the reader of stdout went away (`fcsoft ns | head -1`), as a
    Unix filter does: nothing more goes to stdout (it now points at /dev/null, so the
    interpreter's final flush cannot complain either) and nothing is said on stderr.
    Returns the exit status to use."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_OUTPUT_CLOSED


__all__ = ["EXIT_OUTPUT_CLOSED", "EXIT_RUNTIME", "UserError", "find", "output_closed"]
