"""structlog set-up for the fcsoft process.

Every log line is one event with key/value context; `console` renders it for people (keys
sorted, values with spaces quoted), `json` as one JSON object per line for machines. Both
go through `render_identities`, so a value reads the same in either and in every component
(fcsoft.names has the spellings). The keys, wherever they appear:

- `component`: which part logged the line: `fabric` (the switch: logins, name server,
  zoning, RSCN, routing), `link` (one TCP or in-process link of the fabric), `faults`
  (injected faults), `fcoe` (an FCoE Forwarder, with `fcf`), `array` (an array and its
  target ports, with `array` or `port`), `host` (the initiator library and the host tools),
  `control` (the control API) and `process` (start-up and shutdown).
- `link`: the fabric link, `link<N>`; `peer`: the address (or in-process name) at its far end.
- `wwpn`, `wwnn`, `fcid`: the N_Port the line is about: the port logging in or out on the
  fabric's lines, the logging port itself on a host's or an array port's lines. WWNs in
  colon form (`50:01:43:80:00:00:00:01`), N_Port_IDs as six lowercase hex digits (`010200`).
- `initiator`, `target`: the two ends of an FCP login or I_T nexus, as WWPNs (an array
  port's lines name the `initiator`, a host's the `target`); `peer_wwpn` the other port of
  a port login whose role is not known yet.
- `s_id`, `d_id`: the S_ID and D_ID of the frame the line is about (six hex digits; an
  array port's lines give the initiator's N_Port_ID as `s_id`); `ox_id`, `rx_id` its
  exchange IDs (`0x1a2b`); `r_ctl`, `type` its R_CTL and TYPE, named (`ELS request (0x22)`).
- `reason`, `explanation`: on a line about a reject (LS_RJT, CT reject, BA_RJT), its reason
  and explanation codes, named (`unable to perform command (0x09)`); elsewhere `reason`
  says in words why something happened. `detail` adds words to a coded reason.
- `command` an ELS or CT command (`PLOGI (0x03)`, `GPN_ID (0x0112)`); `status` a SCSI
  status (`check condition (0x02)`), `sense` sense data (`medium error: unrecovered read
  error (3/11/00)`), `response` an FCP_RSP response code, `function` a task management
  function.
- `array`, `lu`, `lun`, `host`: an array, a logical unit's name, a LUN number, a host entry.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
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


#: keys whose value is an N_Port_ID (an int, or a string in hex), or a list of them
FCID_KEYS = frozenset({"fcid", "s_id", "d_id", "port_id", "affected", "recipient", "service"})
#: keys whose value is a WWN (a WWN, an int or a string WWN.parse takes), or a list of them
WWN_KEYS = frozenset({"wwpn", "wwnn", "initiator", "target", "peer_wwpn", "members",
                      "previous"})
#: keys whose value is an exchange ID
XID_KEYS = frozenset({"ox_id", "rx_id"})
#: keys whose value is a SCSI operation code, or a list of them
OPCODE_KEYS = frozenset({"opcode", "opcodes"})
_ID_KEYS = FCID_KEYS | WWN_KEYS | XID_KEYS | OPCODE_KEYS


def _render(value: Any) -> Any:
    """A value anywhere in an event: WWNs in colon form, code table members named, sense
    data spelled out; containers rendered element by element."""
    from fcsoft import names
    from fcsoft.scsi.sense import Asc, Sense
    from fcsoft.wire.wwn import WWN

    if isinstance(value, WWN):
        return str(value)
    if isinstance(value, Enum):
        # a code table's member is named with its value; another enum by its name
        return names.label(value) if isinstance(value.value, int) else value.name
    if isinstance(value, Sense):
        return names.sense(value)
    if isinstance(value, Asc):
        return names.asc(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_render(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, dict):
        return {str(_render(k)): _render(v) for k, v in value.items()}
    return value


def _by_key(key: str, value: Any) -> Any:
    from fcsoft import names

    if value is None or isinstance(value, bool):
        return value
    if key in _ID_KEYS and isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [_by_key(key, v) for v in items]
    if key in FCID_KEYS and isinstance(value, (int, str)):
        return names.fcid(value)
    if key in WWN_KEYS and isinstance(value, (int, str)):
        return names.wwn(value)
    if key in XID_KEYS and isinstance(value, int):
        return names.xid(value)
    if key in OPCODE_KEYS and isinstance(value, int):
        return names.opcode(value)
    if key == "link" and isinstance(value, int):
        # the fabric core knows a link by its id, the shell by its name (Link.name is
        # "link<id>"): render both the same way so a login can be matched to its link
        return f"link{value}"
    if key == "r_ctl" and isinstance(value, int) and not isinstance(value, Enum):
        return names.r_ctl(value)
    if key == "type" and isinstance(value, int) and not isinstance(value, Enum):
        return names.fc_type(value)
    return _render(value)


def render_identities(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """The processor that gives every log line, console or JSON, one spelling of each
    identity and code (fcsoft.names): N_Port_IDs as six hex digits, WWNs in colon form,
    exchange IDs as 0x and four hex digits, links as `link<N>`, code table members (LS_RJT
    and CT reject reasons, SCSI status, ...) as `name (0xNN)`, R_CTL and TYPE named, sense
    data as `key: ASC name (K/AS/AQ)`. Log calls pass the plain values."""
    for key, value in event.items():
        if key != "event":
            try:
                event[key] = _by_key(key, value)
            except Exception:  # noqa: BLE001 - a log line must never take its caller down
                event[key] = repr(value)
    return event


def _processors(fmt: str) -> list[Any]:
    """fcsoft's processor chain for `fmt`: level filter, context, level and time stamp,
    identities (render_identities), then the renderer."""
    renderer: Any
    extra: list[Any] = []
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        extra = [structlog.processors.format_exc_info]  # the traceback as text
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    return [
        _filter_level,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        render_identities,
        *extra,
        renderer,
    ]


def configure(fmt: str = "console", level: int = logging.INFO,
              stream: TextIO | None = None) -> None:
    """Configure structlog process-wide for `fmt` ("console" or "json"), logging events at
    `level` and above (`set_level` changes it later)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    out = stream if stream is not None else sys.stderr
    set_level(level)
    structlog.configure(
        processors=_processors(fmt),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


class _Stderr:
    """The output of fcsoft's loggers when nobody configured structlog: the sys.stderr of
    the moment of each line (pytest swaps it per test)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def get_logger(**context: Any) -> Any:
    """A bound logger carrying `context` on every event.

    Once structlog is configured (`configure`, or an application's own set-up, or
    structlog.testing.capture_logs) the logger follows that configuration. Before (fcsoft
    used as a library, the pytest plugin), it still renders as `fcsoft serve` does, in the
    console format at the level `set_level` sets, on stderr: structlog's own defaults would
    print N_Port_IDs in decimal and WWNs as reprs."""
    if structlog.is_configured():
        return structlog.get_logger("fcsoft").bind(**context)
    return structlog.wrap_logger(
        _Stderr(), processors=_processors("console"),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        context_class=dict).bind(**context)
