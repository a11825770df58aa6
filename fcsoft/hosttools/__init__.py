"""Host-side command-line tools: `fcsoft ns`, `ping`, `inq`, `luns`, `readcap`, `persist`,
`check`, `perf`. Each module adds its subcommand in `add_parser`."""

from __future__ import annotations

import argparse

from . import check, inq, luns, ns, perf, persist, ping, readcap

TOOLS = (ns, ping, inq, luns, readcap, persist, check, perf)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for module in TOOLS:
        module.add_parser(sub)
