"""Talking to a lab's control API over real HTTP from a trio test (the blocking client of
fcsoft ctl, run in a worker thread), and the config the control tests run."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import trio

from fcsoft.control.cli import request

H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"
P1 = "50:01:43:80:00:00:00:01"
P2 = "50:01:43:80:00:00:00:02"

CONFIG = f"""
[fabric]
rscn_coalesce_ms = 10

[control]
listen = "127.0.0.1:0"

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{P1}", "{P2}"]

[[array.lun]]
name = "data"
size = "16MiB"

[[array.lun]]
name = "spare"
size = "8MiB"

[[array.host]]
name = "host1"
initiators = ["{H1}", "{H2}"]
luns = {{ 0 = "data" }}
"""


class Api:
    """The control API of a running lab, called over HTTP."""

    def __init__(self, address: tuple[str, int], token: str | None = None) -> None:
        self.base = f"http://{address[0]}:{address[1]}"
        self.token = token

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        return await trio.to_thread.run_sync(
            lambda: request(self.base, method, path, body, token=self.token))

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def raw(self, method: str, path: str, data: bytes | None = None,
                  headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """(status, decoded JSON body) for any request, errors included."""
        def go() -> tuple[int, Any]:
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())
        return await trio.to_thread.run_sync(go)


async def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate()` (a hang guard, not a timing assertion)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
