"""The control API over HTTP/JSON (docs/control.md): a Starlette application whose every
endpoint is one `LabControl` call, plus the web page and its server-sent events.

Errors are `{"error": "one line"}` with a 4xx status (400 bad input, 401 no or wrong
token, 404 unknown array/LU/zone/port/route, 405 wrong method, 409 a change that conflicts
with the lab's state, 413 a body over 1 MiB); an unexpected failure is a 500 with the same
shape, logged with its traceback, and the server goes on.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fcsoft.logs import get_logger

from .ops import ControlError, LabControl

__all__ = ["create_app", "STATIC_DIR"]

MAX_BODY = 1 << 20
EVENT_INTERVAL = 0.25  # seconds between looks at the lab for the page's event stream
KEEPALIVE = 15.0
STATIC_DIR = str(files("fcsoft.control") / "static")

Handler = Callable[[Request], Awaitable[Any]]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.replace("\n", " ")}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ControlError(413, f"request body over {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(400, f"request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlError(400, "request body must be a JSON object")
    return data


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...] = str,
           required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise ControlError(400, f"missing field {name!r}")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ControlError(400, f"field {name!r} has the wrong type")
    return value


def create_app(control: LabControl, token: str | None = None) -> Starlette:
    """The ASGI application for `control`; with `token`, every request must carry
    `Authorization: Bearer TOKEN` (or, for the web page, `?token=TOKEN`)."""
    log = get_logger(component="control")

    def endpoint(fn: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                result = await fn(request)
            except ControlError as exc:
                return _error(exc.status, exc.message)
            except Exception as exc:  # noqa: BLE001 - a bug answers 500, the server goes on
                log.exception("control request failed", method=request.method,
                              path=request.url.path)
                return _error(500, f"internal error: {type(exc).__name__}: {exc}")
            if isinstance(result, Response):
                return result
            return JSONResponse(result)
        return run

    c = control
    p = "path_params"

    async def switchshow(r: Request) -> Any:
        return c.switchshow()

    async def nsshow(r: Request) -> Any:
        return c.nsshow()

    async def zoneshow(r: Request) -> Any:
        return c.zoneshow()

    async def zone_set(r: Request) -> Any:
        body = await _body(r)
        return c.zone_set(getattr(r, p)["name"], _field(body, "members", list))

    async def zone_delete(r: Request) -> Any:
        return c.zone_delete(getattr(r, p)["name"])

    async def zone_default(r: Request) -> Any:
        return c.zone_default(_field(await _body(r), "default_zone"))

    async def portshow(r: Request) -> Any:
        return c.portshow(getattr(r, p)["port"])

    async def port_disable(r: Request) -> Any:
        return c.port_disable(getattr(r, p)["port"])

    async def port_enable(r: Request) -> Any:
        body = await _body(r)
        wait = _field(body, "wait", (int, float), required=False)
        if wait is not None and not 0 <= wait <= 60:
            raise ControlError(400, "wait must be 0..60 seconds")
        return await c.port_enable(getattr(r, p)["port"], wait=10.0 if wait is None else wait)

    async def arrays(r: Request) -> Any:
        return c.arrays()

    async def luns(r: Request) -> Any:
        return c.luns(getattr(r, p)["array"])

    async def lun_add(r: Request) -> Any:
        body = await _body(r)
        block_size = _field(body, "block_size", int, required=False)
        return c.lun_add(getattr(r, p)["array"], _field(body, "name"),
                         _field(body, "size", (str, int)),
                         block_size=512 if block_size is None else block_size,
                         backing=_field(body, "backing", required=False) or "memory")

    async def lun_resize(r: Request) -> Any:
        body = await _body(r)
        pp = getattr(r, p)
        return c.lun_resize(pp["array"], pp["lu"], _field(body, "size", (str, int)))

    async def lun_remove(r: Request) -> Any:
        pp = getattr(r, p)
        return c.lun_remove(pp["array"], pp["lu"])

    async def pr(r: Request) -> Any:
        pp = getattr(r, p)
        return c.pr(pp["array"], pp["lu"])

    async def lu_error(r: Request) -> Any:
        body = await _body(r)
        pp = getattr(r, p)
        return c.lu_error(pp["array"], pp["lu"], sense=_field(body, "sense", required=False),
                          status=_field(body, "status", required=False),
                          ops=_field(body, "ops", (str, list), required=False),
                          count=_field(body, "count", int, required=False),
                          probability=_field(body, "probability", (int, float),
                                             required=False))

    async def lu_error_clear(r: Request) -> Any:
        pp = getattr(r, p)
        return c.lu_error_clear(pp["array"], pp["lu"])

    async def lu_latency(r: Request) -> Any:
        body = await _body(r)
        pp = getattr(r, p)
        return c.lu_latency(pp["array"], pp["lu"], _field(body, "ms", int))

    async def map_lun(r: Request) -> Any:
        body = await _body(r)
        pp = getattr(r, p)
        return c.map(pp["array"], pp["host"], pp["lun"], _field(body, "lu"))

    async def unmap_lun(r: Request) -> Any:
        pp = getattr(r, p)
        return c.unmap(pp["array"], pp["host"], pp["lun"])

    async def alua(r: Request) -> Any:
        body = await _body(r)
        pp = getattr(r, p)
        return c.alua(pp["array"], pp["port"], _field(body, "state"))

    async def counters(r: Request) -> Any:
        return c.counters()

    async def faults(r: Request) -> Any:
        return c.fault_list()

    async def fault_add(r: Request) -> Any:
        return c.fault_add(await _body(r))

    async def fault_clear(r: Request) -> Any:
        return c.fault_clear(getattr(r, p).get("id"))

    async def log_level(r: Request) -> Any:
        if r.method == "GET":
            from fcsoft import logs
            return {"level": logs.current_level()}
        return c.log_level(_field(await _body(r), "level"))

    async def state(r: Request) -> Any:
        return c.state()

    async def events(r: Request) -> Any:
        async def stream() -> AsyncIterator[str]:
            last = None
            quiet = 0.0
            while True:
                text = c.state_json(max_age=EVENT_INTERVAL / 2)
                if text != last:
                    last = text
                    quiet = 0.0
                    yield f"event: state\ndata: {text}\n\n"
                elif quiet >= KEEPALIVE:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                await trio.sleep(EVENT_INTERVAL)
                quiet += EVENT_INTERVAL

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def index(r: Request) -> Any:
        return FileResponse(f"{STATIC_DIR}/index.html", headers={"Cache-Control": "no-store"})

    a = "/api/arrays/{array}"
    lu = a + "/luns/{lu}"
    routes = [
        Route("/", endpoint(index)),
        Route("/api/switch", endpoint(switchshow)),
        Route("/api/ns", endpoint(nsshow)),
        Route("/api/zones", endpoint(zoneshow)),
        Route("/api/zones/{name}", endpoint(zone_set), methods=["PUT"]),
        Route("/api/zones/{name}", endpoint(zone_delete), methods=["DELETE"]),
        Route("/api/default-zone", endpoint(zone_default), methods=["PUT"]),
        Route("/api/ports/{port}", endpoint(portshow)),
        Route("/api/ports/{port}/disable", endpoint(port_disable), methods=["POST"]),
        Route("/api/ports/{port}/enable", endpoint(port_enable), methods=["POST"]),
        Route("/api/arrays", endpoint(arrays)),
        Route(a + "/luns", endpoint(luns)),
        Route(a + "/luns", endpoint(lun_add), methods=["POST"]),
        Route(lu, endpoint(lun_resize), methods=["PATCH"]),
        Route(lu, endpoint(lun_remove), methods=["DELETE"]),
        Route(lu + "/pr", endpoint(pr)),
        Route(lu + "/error", endpoint(lu_error), methods=["PUT"]),
        Route(lu + "/error", endpoint(lu_error_clear), methods=["DELETE"]),
        Route(lu + "/latency", endpoint(lu_latency), methods=["PUT"]),
        Route(a + "/maps/{host}/{lun}", endpoint(map_lun), methods=["PUT"]),
        Route(a + "/maps/{host}/{lun}", endpoint(unmap_lun), methods=["DELETE"]),
        Route(a + "/ports/{port}/alua", endpoint(alua), methods=["PUT"]),
        Route("/api/counters", endpoint(counters)),
        Route("/api/faults", endpoint(faults)),
        Route("/api/faults", endpoint(fault_add), methods=["POST"]),
        Route("/api/faults", endpoint(fault_clear), methods=["DELETE"]),
        Route("/api/faults/{id}", endpoint(fault_clear), methods=["DELETE"]),
        Route("/api/log-level", endpoint(log_level), methods=["GET", "PUT"]),
        Route("/api/state", endpoint(state)),
        Route("/api/events", events),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or "error"
        if status == 404:
            detail = f"no such endpoint: {request.method} {request.url.path}"
        elif status == 405:
            detail = f"method {request.method} not allowed on {request.url.path}"
        return _error(status, str(detail))

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    if token is None:
        return app
    return _BearerAuth(app, token)  # type: ignore[return-value]


class _BearerAuth:
    """ASGI middleware: 401 unless the request carries the token (constant-time compare)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given = value[7:].strip()
        if not given:
            from urllib.parse import parse_qs

            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = (query.get("token") or [""])[0].encode()
        if not hmac.compare_digest(given, self.token):
            response = _error(401, "missing or wrong bearer token")
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
