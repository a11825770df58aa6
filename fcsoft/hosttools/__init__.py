"""Host-side command-line tools: `fcsoft ns`, `ping`, `inq`, `luns`, `readcap`, `persist`,
`check`. Each module adds its subcommand in `register`."""

from __future__ import annotations

import argparse
import importlib

#: modules that provide `add_parser(subparsers)`; a missing one is skipped so that the
#: tools can land one by one
TOOL_MODULES = ("ns", "ping", "inq", "luns", "readcap", "persist", "check")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name in TOOL_MODULES:
        try:
            module = importlib.import_module(f"fcsoft.hosttools.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fcsoft.hosttools.{name}":
                raise
            continue
        module.add_parser(sub)
