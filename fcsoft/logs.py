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
#: the levels `--log-level` and `ctl log-level` take, lowest first
LOG_LEVELS = ("debug", "info", "warning", "error")
_LEVEL_NUMBERS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
                  "error": logging.ERROR, "critical": logging.CRITICAL,
                  "exception": logging.ERROR}
#: the threshold in force: a list so that the processor below sees every change at once
_threshold = [logging.INFO]


def parse_level(text: str) -> int:
    """The logging level for a name in LOG_LEVELS (any case); ValueError otherwise."""
    level = _LEVEL_NUMBERS.get(str(text).lower())
    if level is None or str(text).lower() not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {text!r}")
    return level


def set_level(level: int | str) -> None:
    """Change the level in force at run time (every logger, even those bound already)."""
    _threshold[0] = parse_level(level) if isinstance(level, str) else int(level)


def current_level() -> str:
    """The name of the level in force."""
    value = _threshold[0]
    return next((n for n in LOG_LEVELS if _LEVEL_NUMBERS[n] >= value), "error")


def _filter_level(_logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    # loggers are bound once (at construction) and keep the wrapper class they got then,
    # so the level is checked here, where a change takes effect for all of them
    if _LEVEL_NUMBERS.get(name, logging.INFO) < _threshold[0]:
        raise structlog.DropEvent
    return event


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
    """Configure structlog process-wide for `fmt` ("console" or "json"), logging events at
    `level` and above (`set_level` changes it later)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    out = stream if stream is not None else sys.stderr
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    set_level(level)
    structlog.configure(
        processors=[
            _filter_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _stringify_wwns,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(**context: Any) -> Any:
    """A bound logger carrying `context` on every event."""
    return structlog.get_logger("fcsoft").bind(**context)
