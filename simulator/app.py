"""The simulator's ASGI app (starlette): route table, fault handling, JSON/SSE delivery, the served log.

Every answer (errors included) carries `x-request-id: req_<32 hex>`; the gateway personality adds
`x-gateway: <name>`. A handler parses the request, lets a fault (header or default plan) take over, then
asks the route's builder for a `Reply` and delivers it after the simulated latency.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulator.admin import admin_routes
from simulator.config import ServedLog, SimConfig
from simulator.faults import ERROR_FAULTS, STREAM_ERROR, ApiError, Fault, choose_fault, retry_count, sse_error
from simulator.images_route import build_image_reply, parse_edit, parse_generation
from simulator.reply import RECORD_DEFAULTS, Reply
from simulator.responses_route import build_responses_reply, parse_responses
from simulator.tokens import NO_USAGE_RECORD

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "imagecost.sim.request_id"  # scope keys set by the envelope
HANG_UP_KEY = "imagecost.sim.hang_up"
DEFAULT_TIMEOUT_FAULT_S = 2.0


class ParsedRequest(Protocol):
    @property
    def prompt(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def stream(self) -> bool: ...


@dataclass(frozen=True)
class RouteSpec:
    """One served endpoint: its route label, how to read a request, how to build the answer."""

    route: str
    parse: Callable[[Request], Awaitable[Any]]
    build: Callable[..., Reply]  # (parsed, config, *, with_usage) -> Reply; raises ApiError


ROUTES: dict[str, RouteSpec] = {
    "/v1/images/generations": RouteSpec("images.generate", parse_generation, build_image_reply),
    "/v1/images/edits": RouteSpec("images.edit", parse_edit, build_image_reply),
    "/v1/responses": RouteSpec("responses", parse_responses, build_responses_reply),
}


@dataclass
class SimState:
    config: SimConfig
    served: ServedLog


def build_app(state: SimState) -> ASGIApp:
    """The ASGI app for one simulator: starlette routes wrapped in the request-id/gateway-header envelope."""
    routes = [Route(path, partial(_handle, spec, state), methods=["POST"]) for path, spec in ROUTES.items()]
    routes += admin_routes(state.served.snapshot)  # GET /v1/organization/costs, /usage/images (simulator.admin)
    handlers = {404: _not_found, 405: _not_found}
    app = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
    return _Envelope(app, state.config)


class _Envelope:
    """Outermost ASGI layer: a fresh request id per request, extra headers, and the raw connection for hang-ups."""

    def __init__(self, app: ASGIApp, config: SimConfig) -> None:
        self.app = app
        self.extra = [(b"x-gateway", config.gateway_name.encode())] if config.is_gateway else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{secrets.token_hex(16)}"
        scope[REQUEST_ID_KEY] = request_id
        scope[HANG_UP_KEY] = partial(_hang_up, send)
        headers = [(b"x-request-id", request_id.encode()), *self.extra]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _hang_up(send: Send) -> None:
    """Close the TCP connection without writing a byte (uvicorn's cycle object owns the transport)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("the disconnect fault needs the uvicorn server the Simulator starts")
    transport.close()
    for _ in range(200):  # uvicorn marks the cycle disconnected on its next loop turn; then no 500 is sent
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.001)


class _HangUpResponse(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope[HANG_UP_KEY]()


async def _not_found(request: Request, exc: Exception) -> Response:
    error = ApiError(404, f"Invalid URL ({request.method} {request.url.path})")
    return JSONResponse(error.body(), error.status)


async def _handle(spec: RouteSpec, state: SimState, request: Request) -> Response:
    config = state.config
    record = {
        **RECORD_DEFAULTS,
        "time": datetime.now(UTC),
        "route": spec.route,
        "route_owner": config.route_owner,
        "request_id": request.scope[REQUEST_ID_KEY],
        "retry_count": retry_count(request.headers),
        "project_id": request.headers.get("openai-project"),
    }
    try:
        parsed: ParsedRequest = await spec.parse(request)
        record.update(stream=parsed.stream, requested_model=parsed.model)
        fault = choose_fault(request.headers, parsed.prompt, config.faults)
        active = fault if fault is not None and fault.active(record["retry_count"]) else None
        record["fault"] = active.spec if active else None
        if active is not None and active.name in ERROR_FAULTS:
            raise ERROR_FAULTS[active.name](active, parsed.model)
        if active is not None and active.name in PRE_REPLY_FAULTS:
            instead = await PRE_REPLY_FAULTS[active.name](request, active)
            if instead is not None:
                state.served.append(record)  # status_code None: nothing was delivered
                return instead
        with_usage = not config.missing_usage and not (active is not None and active.name == "missing_usage")
        reply = spec.build(parsed, config, with_usage=with_usage)
    except ApiError as err:
        state.served.append({**record, "status_code": err.status, "error_code": err.code})
        return JSONResponse(err.body(), err.status, headers=err.headers)
    except Exception:  # a simulator bug: answer like the API would, keep the record
        log.exception("simulator failed on %s", spec.route)
        err = ERROR_FAULTS["server_error"](Fault("server_error"), "")
        state.served.append({**record, "status_code": err.status, "error_code": "simulator_bug"})
        return JSONResponse(err.body(), err.status)
    record.update(reply.record, status_code=200)
    latency = config.latency_s(reply.output_tokens)
    if not reply.streamed:
        await asyncio.sleep(latency)
        state.served.append(record)
        return JSONResponse(reply.body)
    stream_error = active is not None and active.name == "stream_error"
    events = _sse(reply, record, state.served, latency=latency, stream_error=stream_error)
    return StreamingResponse(events, media_type="text/event-stream", headers={"cache-control": "no-cache"})


async def _delay(request: Request, fault: Fault) -> Response | None:
    """timeout: sleep the fault's seconds in small steps; stop (nothing to send) once the client hangs up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + float(fault.arg or DEFAULT_TIMEOUT_FAULT_S)
    while (remaining := deadline - loop.time()) > 0:
        if await request.is_disconnected():
            return Response(status_code=499)  # never reaches the client
        await asyncio.sleep(min(0.02, remaining))
    return None


async def _disconnect(request: Request, fault: Fault) -> Response | None:
    return _HangUpResponse()


# Behaviour faults acting before the answer is built: return a Response to send instead, or None to carry on.
# (missing_usage and stream_error change the answer itself; see _handle and _sse.)
PRE_REPLY_FAULTS: dict[str, Callable[[Request, Fault], Awaitable[Response | None]]] = {
    "timeout": _delay,
    "disconnect": _disconnect,
}


async def _sse(
    reply: Reply, record: dict[str, Any], served: ServedLog, *, latency: float, stream_error: bool
) -> AsyncIterator[bytes]:
    """Send the events; the latency is spread evenly before each partial and before the result."""
    steps = sum(e.phase == "partial" for e in reply.events) + 1
    first_after = next(i for i, e in enumerate(reply.events) if e.phase == "after")
    sent_partials, finished = 0, False
    try:
        for i, event in enumerate(reply.events):
            if event.phase == "partial" or i == first_after:
                await asyncio.sleep(latency / steps)
            if stream_error and event.phase == "after":
                record["error_code"] = STREAM_ERROR.code
                yield sse_error(STREAM_ERROR)
                break
            yield event.encode()
            sent_partials += event.phase == "partial"
        else:
            finished = True
    finally:
        record["partial_images_sent"] = sent_partials
        if not finished:  # no completed event reached the client: nothing generated is reported
            record.update(NO_USAGE_RECORD, images_returned=0, usage_reported=False)
        served.append(record)
