"""Serving the control API inside the lab's trio process: Hypercorn's trio worker running
the Starlette application of api.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from .api import create_app
from .ops import LabControl

__all__ = ["read_token", "serve_control"]


class TokenError(Exception):
    """The token file cannot be used: one line."""


def read_token(path: Path) -> str:
    """The bearer token: the first line of the file, which must not be empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"cannot read token file {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    token = text.splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise TokenError(f"token file {path} is empty")
    return token


def _address(bind: str) -> tuple[str, int]:
    hostport = bind.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    return host.strip("[]"), int(port)


async def serve_control(control: LabControl, host: str, port: int, *, token: str | None = None,
                        task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the control API on host:port (port 0: any free port) until cancelled; reports
    the bound (host, port)."""
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1.0
    app = create_app(control, token)

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await serve(app, config, task_status=task_status)  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(run)
        task_status.started(_address(binds[0]))
