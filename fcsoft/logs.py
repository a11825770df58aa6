"""structlog set-up for the fcsoft process.

Every log line is one event with key/value context: `link` (the link's identity), `wwpn`
and `fcid` (N_Port_ID) where known. `console` renders for people, `json` renders one JSON
object per line for machines.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

LOG_FORMATS = ("console", "json")


def _stringify_wwns(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    # WWN is an int subclass; JSON would print it as a number. Logs want the colon form,
    # and N_Port_IDs as six hex digits.
    from fcsoft.wire.wwn import WWN

    for key, value in event.items():
        if isinstance(value, WWN):
            event[key] = str(value)
        elif key in ("fcid", "s_id", "d_id", "port_id") and isinstance(value, int):
            event[key] = f"{value:06x}"
        elif key == "link" and isinstance(value, int) and not isinstance(value, bool):
            # the fabric core knows a link by its id, the shell by its name (Link.name is
            # "link<id>"): render both the same way so a login can be matched to its link
            event[key] = f"link{value}"
    return event


def configure(fmt: str = "console", level: int = logging.INFO,
              stream: TextIO | None = None) -> None:
    """Configure structlog process-wide for `fmt` ("console" or "json")."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    out = stream if stream is not None else sys.stderr
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _stringify_wwns,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    """A bound logger carrying `context` on every event."""
    return structlog.get_logger("fcsoft").bind(**context)
