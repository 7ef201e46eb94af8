"""OpenAI's admin endpoints on the simulator, plus controls to plant discrepancies in tests.

    GET /v1/organization/costs          daily buckets of amount × line item × project (reference §10.2)
    GET /v1/organization/usage/images   images and requests × model × size × source × project (§10.1)

Both are computed from what the simulator served (``simulator.billing`` has the rules). Simulator-only
controls (not OpenAI endpoints):
    GET/PUT /_sim/billing              default_project, partials ("reported" | "requested"), rate_overrides
    POST/DELETE /_sim/billing/history  synthetic, backdated served records billed like real ones
A stale price book is a rate override from some day on; an uninstrumented app is traffic the collector
never saw (a plain client, or history records with no ledger rows).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ledger.pricebook import load_books
from simulator.billing import (
    BUCKET_SECONDS,
    COSTS_GROUPS,
    COSTS_LIMITS,
    DAY_S,
    IMAGES_GROUPS,
    IMAGES_LIMITS,
    BillingConfig,
    InvalidParameter,
    RateOverride,
    costs_page,
    images_page,
    parse_time,
)


class AdminError(Exception):
    """An OpenAI-style 4xx answer."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": "invalid_request_error", "param": self.param, "code": None}}
        return JSONResponse(body, self.status)


def _list(request: Request, name: str) -> list[str]:
    """Array query parameters, as the SDK sends them (``name[]=a&name[]=b``) or repeated (``name=a``)."""
    return request.query_params.getlist(f"{name}[]") + request.query_params.getlist(name)


def _int(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise AdminError(400, f"{name} must be an integer, got {value!r}", name) from None


def _window(request: Request) -> tuple[int, int]:
    start = _int(request, "start_time")
    if start is None:
        raise AdminError(400, "Missing required parameter: 'start_time'.", "start_time")
    tomorrow = (int(datetime.now(UTC).timestamp()) // DAY_S + 1) * DAY_S
    end = _int(request, "end_time", tomorrow)
    return start, end if end is not None else tomorrow


def _check(values: list[str], allowed: tuple[str, ...], name: str) -> list[str]:
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise AdminError(400, f"invalid {name} value(s) {wrong}; allowed: {', '.join(allowed)}", name)
    return values


def _limit(request: Request, default: int, maximum: int) -> int:
    limit = _int(request, "limit", default) or default
    if not 1 <= limit <= maximum:
        raise AdminError(400, f"limit must be between 1 and {maximum}", "limit")
    return limit


@dataclass
class AdminState:
    """What the admin routes read: the served log (a callable returning a copy) and the billing config."""

    served: Callable[[], list[dict[str, Any]]]
    config: BillingConfig = field(default_factory=BillingConfig)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            history = list(self.config.history)
        return history + self.served()


def _authorized(request: Request) -> None:
    if not request.headers.get("authorization", "").startswith("Bearer "):
        raise AdminError(401, "You didn't provide an API key. Use an admin key (OPENAI_ADMIN_KEY).")


async def _costs(state: AdminState, request: Request) -> JSONResponse:
    _authorized(request)
    start, end = _window(request)
    if request.query_params.get("bucket_width", "1d") != "1d":
        raise AdminError(400, "bucket_width must be 1d for costs", "bucket_width")
    body = costs_page(
        state.records(),
        load_books(),
        state.config,
        start_time=start,
        end_time=end,
        group_by=_check(_list(request, "group_by"), COSTS_GROUPS, "group_by"),
        limit=_limit(request, *COSTS_LIMITS),
        page=request.query_params.get("page"),
        project_ids=_list(request, "project_ids"),
        line_items=_list(request, "line_items"),
    )
    return JSONResponse(body)


async def _images(state: AdminState, request: Request) -> JSONResponse:
    _authorized(request)
    start, end = _window(request)
    width = request.query_params.get("bucket_width", "1d")
    if width not in BUCKET_SECONDS:
        raise AdminError(400, "bucket_width must be one of 1m, 1h, 1d", "bucket_width")
    body = images_page(
        state.records(),
        state.config,
        start_time=start,
        end_time=end,
        bucket_width=width,
        group_by=_check(_list(request, "group_by"), IMAGES_GROUPS, "group_by"),
        limit=_limit(request, *IMAGES_LIMITS[width]),
        page=request.query_params.get("page"),
        project_ids=_list(request, "project_ids"),
        models=_list(request, "models"),
        sources=_list(request, "sources"),
        sizes=_list(request, "sizes"),
    )
    return JSONResponse(body)


def _config_json(config: BillingConfig) -> dict[str, Any]:
    overrides = [
        {**asdict(o), "effective_from": str(o.effective_from), "effective_to": o.effective_to and str(o.effective_to)}
        for o in config.rate_overrides
    ]
    return {
        "default_project": config.default_project,
        "partials": config.partials,
        "rate_overrides": overrides,
        "history_records": len(config.history),
    }


async def _billing(state: AdminState, request: Request) -> JSONResponse:
    if request.method == "PUT":
        body = await request.json()
        try:
            overrides = [
                RateOverride(
                    model=o["model"],
                    token_class=o["token_class"],
                    usd_per_1m=float(o["usd_per_1m"]),
                    effective_from=date.fromisoformat(o["effective_from"]),
                    effective_to=date.fromisoformat(o["effective_to"]) if o.get("effective_to") else None,
                    tier=o.get("tier", "standard"),
                )
                for o in body.get("rate_overrides", [])
            ]
        except (KeyError, TypeError, ValueError) as exc:
            return AdminError(400, f"bad rate override: {exc}", "rate_overrides").response()
        if body.get("partials", "reported") not in ("reported", "requested"):
            return AdminError(400, "partials must be 'reported' or 'requested'", "partials").response()
        with state.lock:
            state.config.default_project = body.get("default_project", state.config.default_project)
            state.config.partials = body.get("partials", state.config.partials)
            if "rate_overrides" in body:
                state.config.rate_overrides = overrides
    return JSONResponse(_config_json(state.config))


async def _history(state: AdminState, request: Request) -> JSONResponse:
    records = [] if request.method == "DELETE" else (await request.json()).get("records", [])
    parsed = [{**r, "time": parse_time(r["time"])} for r in records]
    with state.lock:  # never held across an await: the handlers share one event loop
        if request.method == "DELETE":
            state.config.history.clear()
        state.config.history.extend(parsed)
        return JSONResponse({"history_records": len(state.config.history)})


def admin_routes(served: Callable[[], list[dict[str, Any]]], config: BillingConfig | None = None) -> list[Route]:
    """The admin and control routes, reading ``served()`` (e.g. ``ServedLog.snapshot``) on every request."""
    state = AdminState(served=served, config=config or BillingConfig())

    def bind(handler: Callable[[AdminState, Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            try:
                return await handler(state, request)
            except InvalidParameter as err:
                return AdminError(400, str(err), err.param).response()
            except AdminError as err:
                return err.response()

        return endpoint

    return [
        Route("/v1/organization/costs", bind(_costs), methods=["GET"]),
        Route("/v1/organization/usage/images", bind(_images), methods=["GET"]),
        Route("/_sim/billing", bind(_billing), methods=["GET", "PUT"]),
        Route("/_sim/billing/history", bind(_history), methods=["POST", "DELETE"]),
    ]
