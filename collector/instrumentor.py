"""The OpenTelemetry instrumentor: a route table of SDK methods, wrapped with wrapt, and the registrations.

Patched while instrumented (``_uninstrument`` restores every one):

- the SDK methods in :data:`ROUTES` (class level, so every client and ``with_raw_response`` /
  ``with_streaming_response`` / ``responses.stream`` go through them); a call is recorded only if its
  client is registered (``instrument(client)``, or ``instrument()`` for all clients) and the route's request
  extractor says it is an image call;
- ``httpx2.Client.send`` / ``httpx2.AsyncClient.send``: one attempt per HTTP request (collector.attempts);
- ``httpx2.Response.close`` / ``aclose``: a stream closed early ends its call (collector.streams).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from openai import AsyncStream, Stream
from openai._legacy_response import LegacyAPIResponse
from openai._response import APIResponse, AsyncAPIResponse
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from collector import attempts, config, streams
from collector import guard as guard_mod
from collector import telemetry as telemetry_mod
from collector.call import CURRENT, Call, Registration
from collector.extract import (
    Observation,
    Request,
    edit_request,
    images_request,
    images_response,
    responses_request,
    responses_response,
)
from collector.safety import internal, report
from collector.storage import ImageStore


@dataclass(frozen=True)
class Route:
    """One instrumented SDK method."""

    module: str
    owner: str  # class holding the method
    method: str
    label: str  # semconv ROUTE value
    request: Callable[[Mapping[str, Any]], Request | None]  # None: not an image call, not recorded
    response: Callable[[Any, Observation], None]  # non-streamed result -> observation
    is_async: bool


_IMAGES = "openai.resources.images"
_RESPONSES = "openai.resources.responses.responses"
ROUTES: tuple[Route, ...] = (
    Route(_IMAGES, "Images", "generate", "images.generate", images_request, images_response, False),
    Route(_IMAGES, "AsyncImages", "generate", "images.generate", images_request, images_response, True),
    Route(_IMAGES, "Images", "edit", "images.edit", edit_request, images_response, False),
    Route(_IMAGES, "AsyncImages", "edit", "images.edit", edit_request, images_response, True),
    # responses.stream(...) calls create(stream=True) on __enter__, so it is covered here too.
    Route(_RESPONSES, "Responses", "create", "responses", responses_request, responses_response, False),
    Route(_RESPONSES, "AsyncResponses", "create", "responses", responses_request, responses_response, True),
)
# (module, attribute, wrapper) for everything below the SDK methods.
_TRANSPORT_PATCHES: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("httpx2", "Client.send", attempts.send),
    ("httpx2", "AsyncClient.send", attempts.send_async),
    ("httpx2", "Response.close", streams.response_close),
    ("httpx2", "Response.aclose", streams.response_aclose),
)

# --- registrations ---------------------------------------------------------------------------------------

_all_clients: Registration | None = None
# Keyed by the SDK client's httpx2 client, which with_options()/copy() share: copies stay instrumented.
_clients: weakref.WeakKeyDictionary[Any, Registration] = weakref.WeakKeyDictionary()


def register(
    client: Any = None, *, tracer_provider: Any = None, meter_provider: Any = None, guard: Any = None, **options: Any
) -> None:
    """Record calls of ``client`` (None: of every client) with these options (see collector.instrument)."""
    global _all_clients
    guard_mod.validate(guard)
    settings = config.resolve(options)
    store = (
        ImageStore(settings.image_store, settings.public_url_prefix, settings.retention_days)
        if settings.image_store
        else None
    )
    reg = Registration(
        settings=settings,
        telemetry=telemetry_mod.build(settings, tracer_provider, meter_provider),
        store=store,
        salt=settings.prompt_salt or _install_salt(settings),
        guard=guard,
    )
    if client is None:
        _all_clients = reg
    else:
        _clients[client._client] = reg


@internal
def _install_salt(settings: config.Settings) -> str:
    return config.install_salt(settings.spool)


def _lookup(sdk_client: Any) -> Registration | None:
    if _clients:
        http_client = getattr(sdk_client, "_client", None)
        if http_client is not None and (reg := _clients.get(http_client)) is not None:
            return reg
    return _all_clients


# --- wrappers ----------------------------------------------------------------------------------------------


@internal
def _start(route: Route, instance: Any, kwargs: Mapping[str, Any]) -> Call | None:
    if CURRENT.get() is not None:  # already inside a recorded call (e.g. an SDK helper calling create)
        return None
    sdk_client = instance._client
    reg = _lookup(sdk_client)
    if reg is None:
        return None
    req = route.request(kwargs)
    return Call(reg, route.label, route.response, req, sdk_client) if req is not None else None


def _sync_wrapper(route: Route) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = _start(route, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        if (refusal := guard_mod.gate(call)) is not None:
            raise refusal
        token = CURRENT.set(call)
        ctx = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            otel_context.detach(ctx)
            CURRENT.reset(token)
        try:
            parsed = result.parse() if isinstance(result, LegacyAPIResponse | APIResponse) else result
        except Exception as exc:  # the caller's own parse() will meet the same problem
            report("parse", exc)
            call.finish()
            return result
        _deliver(call, parsed)
        return result

    return wrapper


def _async_wrapper(route: Route) -> Callable[..., Any]:
    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        call = _start(route, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        if (refusal := guard_mod.gate(call)) is not None:
            raise refusal
        token = CURRENT.set(call)
        ctx = otel_context.attach(trace.set_span_in_context(call.span))
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            otel_context.detach(ctx)
            CURRENT.reset(token)
        try:
            if isinstance(result, AsyncAPIResponse):
                parsed = await result.parse()
            else:
                parsed = result.parse() if isinstance(result, LegacyAPIResponse) else result
        except Exception as exc:
            report("parse", exc)
            call.finish()
            return result
        _deliver(call, parsed)
        return result

    return wrapper


def _deliver(call: Call, parsed: Any) -> None:
    """Hand the parsed result to the call: observe a stream, or extract a response and end the call.

    ``with_raw_response`` / ``with_streaming_response`` results were parsed above with their own ``parse()``,
    which caches: the caller's later ``parse()`` returns that same object (for a stream, the observed one).
    """
    if isinstance(parsed, Stream | AsyncStream):
        try:
            streams.observe(parsed, call)
        except Exception as exc:
            report("observe", exc)
            call.finish()
    else:
        call.on_parsed(parsed)


# --- the instrumentor ----------------------------------------------------------------------------------------


class ImagecostInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments the openai SDK's image calls; ``opentelemetry-instrument`` loads it by entry point."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 3.0",)

    def _instrument(self, **kwargs: Any) -> None:
        register(**kwargs)  # first: a bad option raises before anything is patched
        for route in ROUTES:
            wrapper = _async_wrapper(route) if route.is_async else _sync_wrapper(route)
            wrap_function_wrapper(route.module, f"{route.owner}.{route.method}", wrapper)
        for module, name, wrapper in _TRANSPORT_PATCHES:
            wrap_function_wrapper(module, name, wrapper)

    def _uninstrument(self, **kwargs: Any) -> None:
        global _all_clients
        for route in ROUTES:
            unwrap(f"{route.module}.{route.owner}", route.method)
        for module, name, _ in _TRANSPORT_PATCHES:
            owner, attr = name.split(".")
            unwrap(f"{module}.{owner}", attr)
        _all_clients = None
        _clients.clear()
        telemetry_mod.flush()
