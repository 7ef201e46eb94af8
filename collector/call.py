"""One logical image call: its span, its attempts, what came back, and its metrics.

A :class:`Call` is started by the SDK method wrapper, receives attempts from the httpx2 hooks (through the
``CURRENT`` contextvar), then either the response or the events of a stream, and ends exactly once in
:meth:`Call.finish`: attributes, attempt and image events, status, span end, metrics.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openai
from opentelemetry.trace import SpanKind, Status, StatusCode

from collector import guard as guard_mod
from collector import semconv as sc
from collector import tagging
from collector.classify import ErrorInfo, classify, error_body_info
from collector.config import Settings
from collector.extract import EVENT_HANDLERS, Observation, Request, Usage, plus
from collector.safety import report
from collector.storage import ImageStore
from collector.telemetry import Telemetry

if TYPE_CHECKING:
    from collector.attempts import Attempt

CURRENT: ContextVar[Call | None] = ContextVar("imagecost_call", default=None)


@dataclass(frozen=True, slots=True)
class Target:
    """What every call to one base URL, route and model records alike: built once, then shared by those calls.

    The dicts are never mutated: the span copies ``start`` (with the request's own attributes) and the metric
    SDK copies the attributes of each measurement.
    """

    span_name: str
    start: dict[str, Any]  # span start attributes shared by these calls
    metric: dict[str, Any]  # metric attributes of a call that succeeded
    input_tokens: dict[str, Any]  # metric plus gen_ai.token.type
    output_tokens: dict[str, Any]


_DEFAULT_PORTS = {"https": 443, "http": 80}
_MAX_TARGETS = 256  # more base URLs x routes x models than this: the cache starts over


@dataclass(frozen=True)
class Registration:
    """What ``instrument()`` set up for a client (or for every client)."""

    settings: Settings
    telemetry: Telemetry
    store: ImageStore | None
    salt: str | None  # prompt-hash salt; None if it could not be set up (then no prompt hash)
    guard: guard_mod.Guard | None = None  # asked before each call is sent (collector.guard)
    # (id(base_url), route, model) -> (base_url, target). Keyed by identity: str(URL) costs more than a call's
    # whole lookup; the base URL object kept in the value keeps its id from being reused.
    targets: dict[tuple[int, str, str | None], tuple[Any, Target]] = field(default_factory=dict)


def _base_url(sdk_client: Any) -> Any:
    # openai's base_url property runs an import statement on every read (3.57: ~2 us); the field behind it is free.
    url = getattr(sdk_client, "_base_url", None)
    return url if url is not None else sdk_client.base_url


def _target(reg: Registration, base_url: Any, route: str, model: str | None) -> Target:
    """The :class:`Target` of a call to ``base_url`` on ``route`` with ``model``, cached per registration."""
    key = (id(base_url), route, model)
    cached = reg.targets.get(key)
    if cached is not None and cached[0] is base_url:
        return cached[1]
    host, port = base_url.host, base_url.port or _DEFAULT_PORTS.get(base_url.scheme)
    metric: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: sc.OPERATION_GENERATE_CONTENT,
        sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
        sc.SERVER_ADDRESS: host,
        sc.ROUTE: route,
        sc.ROUTE_OWNER: reg.settings.owner_for(host, port),
    }
    if port is not None:
        metric[sc.SERVER_PORT] = port
    if model:
        metric[sc.GEN_AI_REQUEST_MODEL] = model
    target = Target(
        span_name=f"{sc.OPERATION_GENERATE_CONTENT} {model}" if model else sc.OPERATION_GENERATE_CONTENT,
        start={**metric, sc.GEN_AI_OUTPUT_TYPE: sc.OUTPUT_TYPE_IMAGE},
        metric=metric,
        input_tokens={**metric, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT},
        output_tokens={**metric, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT},
    )
    if len(reg.targets) >= _MAX_TARGETS:
        reg.targets.clear()
    reg.targets[key] = (base_url, target)
    return target


class Call:
    # Per-call state that starts out empty (class defaults: fewer stores per call).
    first_chunk_s: float | None = None
    in_next = False  # a stream observer is inside next(): a transport close then is not "closed early"
    _failure: ErrorInfo | None = None
    _failure_type: str | None = None
    _exc_request_id: str | None = None
    input_total: int | None = None
    output_total: int | None = None
    _done = False

    def __init__(
        self,
        reg: Registration,
        route: str,
        extract: Callable[[Any, Observation], None],
        req: Request,
        sdk_client: Any,
    ) -> None:
        self.reg = reg
        self.extract = extract
        self.stream = req.stream
        settings = reg.settings
        self.target = target = _target(reg, _base_url(sdk_client), route, req.model)
        attrs = {**target.start, **req.attributes}
        if req.stream:
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if req.prompt is not None and reg.salt is not None:
            attrs[sc.PROMPT_HASH] = hashlib.sha256(f"{reg.salt}\x00{req.prompt}".encode()).hexdigest()
            attrs[sc.PROMPT_LENGTH] = len(req.prompt)
            if settings.capture_prompt:
                attrs[sc.PROMPT_TEXT] = req.prompt
        tags = tagging.current()
        if settings.tags or tags:
            for key, value in {**settings.tags, **tags}.items():
                attrs[sc.TAG_PREFIX + key] = value
        self.span = reg.telemetry.tracer.start_span(target.span_name, kind=SpanKind.CLIENT, attributes=attrs)
        self.guard_request = (
            guard_mod.build_request(self.span.get_span_context().span_id, attrs, req.prompt)
            if reg.guard is not None
            else None
        )
        self.t0 = time.perf_counter()
        self.attempts: list[Attempt] = []
        self.obs = Observation(reg.store)
        self._lock = threading.RLock()  # re-entrant: a GC finalizer may fire while finish() runs

    # --- inputs ----------------------------------------------------------------------------------------

    def on_parsed(self, parsed: Any) -> None:
        """A non-streamed result: extract what it says, then end the call."""
        try:
            self.extract(parsed, self.obs)
        except Exception as exc:
            report("Call.on_parsed", exc)
        self.finish()

    def on_event(self, event: Any) -> None:
        """One stream event (the stream observer calls this for every event received)."""
        try:
            if self.first_chunk_s is None:
                self.first_chunk_s = time.perf_counter() - self.t0
            handler = EVENT_HANDLERS.get(getattr(event, "type", None) or "")
            if handler is not None:
                handler(event, self.obs)
        except Exception as exc:
            report("Call.on_event", exc)

    def fail(self, exc: BaseException, *, in_stream: bool = False) -> None:
        """The SDK raised (before returning, or while a stream was read): end the call as an error."""
        try:
            self._failure, self._failure_type = _exception_info(exc, in_stream)
            self._exc_request_id = getattr(exc, "request_id", None)
            if in_stream and self.attempts:
                self.attempts[-1] = self.attempts[-1].interrupted(self._failure)
        except Exception as err:
            report("Call.fail", err)
        self.finish()

    # --- the end ---------------------------------------------------------------------------------------

    def finish(self) -> None:
        """End the span and record metrics, exactly once whatever calls it (also from GC finalizers)."""
        with self._lock:
            if self._done:
                return
            self._done = True
        error_type: str | None = None
        try:
            attrs, error_type = self._outcome()
            span = self.span
            span.set_attributes(attrs)
            for attempt in self.attempts:
                span.add_event(sc.EVENT_ATTEMPT, _attempt_attributes(attempt), timestamp=attempt.started_ns)
            for index, image in enumerate(self.obs.images):
                image_attrs = {
                    sc.IMAGE_INDEX: index,
                    sc.IMAGE_URI: image.uri,
                    sc.IMAGE_SHA256: image.sha256,
                    sc.IMAGE_BYTES: image.bytes,
                    sc.IMAGE_FORMAT: image.format,
                    sc.IMAGE_PUBLIC_URL: image.public_url,
                    sc.IMAGE_DELETE_AFTER: image.delete_after,
                }
                span.add_event(sc.EVENT_IMAGE, {k: v for k, v in image_attrs.items() if v is not None})
            if error_type is not None:
                span.set_status(Status(StatusCode.ERROR))
        except Exception as exc:
            report("Call.finish", exc)
        finally:
            self.span.end()
            self._record_metrics(error_type)
            guard_mod.settle(self, ok=error_type is None)

    def _outcome(self) -> tuple[dict[str, Any], str | None]:
        obs, attrs = self.obs, {}
        usage = obs.usage
        _usage_attributes(usage, attrs)
        mainline_in = mainline_out = None
        if obs.mainline is not None:
            mainline_in, mainline_cached, mainline_out = obs.mainline
            if mainline_in is not None:
                attrs[sc.MAINLINE_INPUT_TOKENS] = mainline_in
            if mainline_cached is not None:
                attrs[sc.MAINLINE_CACHED_INPUT_TOKENS] = mainline_cached
            if mainline_out is not None:
                attrs[sc.MAINLINE_OUTPUT_TOKENS] = mainline_out
        # Billed totals: the image model's usage plus, on Responses, the mainline model's (semconv).
        self.input_total = plus(usage.input if usage else None, mainline_in)
        self.output_total = plus(usage.output if usage else None, mainline_out)
        if self.input_total is not None:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = self.input_total
        if self.output_total is not None:
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_total
        attrs.update(obs.effective)
        attrs[sc.IMAGES_RETURNED] = obs.images_returned
        if self.stream:
            attrs[sc.PARTIAL_IMAGES_RECEIVED] = obs.partials
            if self.first_chunk_s is not None:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk_s
        if obs.reported_model:
            attrs[sc.IMAGE_MODEL_REPORTED] = obs.reported_model
        if obs.response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = obs.response_model

        attempts = self.attempts
        failure, error_type = self._failure, self._failure_type
        if failure is None and obs.error is not None:  # the response itself reports a failure
            failure, error_type = obs.error, obs.error.code or sc.ERROR_TYPE_OTHER
        attrs[sc.STATUS] = "error" if error_type else "ok"
        attrs[sc.ATTEMPT_COUNT] = len(attempts)
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = error_type
        if failure is not None:
            if failure.code is not None:
                attrs[sc.ERROR_CODE] = failure.code
            if failure.moderation_stage is not None:
                attrs[sc.MODERATION_STAGE] = failure.moderation_stage
        retry_reason = classify(failure) if failure else None
        if retry_reason is None:
            retry_reason = next((a.retry_reason for a in reversed(attempts) if a.retry_reason), None)
        if retry_reason is not None:
            attrs[sc.RETRY_REASON] = retry_reason
        request_id = (attempts[-1].request_id if attempts else None) or self._exc_request_id
        if request_id is not None:
            attrs[sc.REQUEST_ID] = request_id
        return attrs, error_type

    def _record_metrics(self, error_type: str | None) -> None:
        try:
            tel, target, obs = self.reg.telemetry, self.target, self.obs
            if error_type is None:
                attrs, input_attrs, output_attrs = target.metric, target.input_tokens, target.output_tokens
            else:
                attrs = {**target.metric, sc.ERROR_TYPE: error_type}
                input_attrs = {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT}
                output_attrs = {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT}
            tel.duration.record(time.perf_counter() - self.t0, attrs)
            if self.input_total is not None:
                tel.tokens.record(self.input_total, input_attrs)
            if self.output_total is not None:
                tel.tokens.record(self.output_total, output_attrs)
            if obs.images_returned:
                tel.images.add(obs.images_returned, attrs)
            if obs.partials:
                tel.partial_images.add(obs.partials, attrs)
        except Exception as exc:
            report("Call._record_metrics", exc)


_USAGE_ATTRIBUTES = (
    (sc.USAGE_TEXT_INPUT_TOKENS, "text_input"),
    (sc.USAGE_IMAGE_INPUT_TOKENS, "image_input"),
    (sc.USAGE_CACHED_TEXT_INPUT_TOKENS, "cached_text_input"),
    (sc.USAGE_CACHED_IMAGE_INPUT_TOKENS, "cached_image_input"),
    (sc.USAGE_IMAGE_OUTPUT_TOKENS, "image_output"),
    (sc.USAGE_TEXT_OUTPUT_TOKENS, "text_output"),
)


def _usage_attributes(usage: Usage | None, attrs: dict[str, Any]) -> None:
    """Token attributes of the image model; absent (never 0) when not reported (reference §2)."""
    if usage is None:
        attrs[sc.USAGE_SOURCE] = "missing"
        return
    attrs[sc.USAGE_SOURCE] = "reported"
    attrs[sc.USAGE_CACHE] = usage.cache
    for key, name in _USAGE_ATTRIBUTES:
        if (value := getattr(usage, name)) is not None:
            attrs[key] = value


def _attempt_attributes(a: Attempt) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if a.number is not None:
        attrs[sc.ATTEMPT_NUMBER] = a.number
    if a.status_code is not None:
        attrs[sc.ATTEMPT_STATUS_CODE] = a.status_code
    if (error := a.error) is not None:
        if error.type is not None:
            attrs[sc.ATTEMPT_ERROR_TYPE] = error.type
        if error.code is not None:
            attrs[sc.ATTEMPT_ERROR_CODE] = error.code
    if a.retry_reason is not None:
        attrs[sc.ATTEMPT_RETRY_REASON] = a.retry_reason
    attrs[sc.ATTEMPT_DURATION] = a.duration_s
    if a.request_id is not None:
        attrs[sc.ATTEMPT_REQUEST_ID] = a.request_id
    if a.retry_after_s is not None:
        attrs[sc.ATTEMPT_RETRY_AFTER] = a.retry_after_s
    return attrs


def _exception_info(exc: BaseException, in_stream: bool) -> tuple[ErrorInfo, str]:
    """ErrorInfo and ``error.type`` (the error code if there is one, else the exception class)."""
    if isinstance(exc, openai.APIStatusError):
        info = error_body_info(exc.status_code, {"error": exc.body} if isinstance(exc.body, dict) else None)
    elif isinstance(exc, openai.APITimeoutError):
        info = ErrorInfo(type=type(exc).__name__, transport="timeout")
    elif isinstance(exc, openai.APIConnectionError):
        info = ErrorInfo(type=type(exc).__name__, transport="connection")
    elif isinstance(exc, openai.APIError):  # e.g. an SSE error event (reference §3.1)
        info = error_body_info(None, {"error": exc.body} if isinstance(exc.body, dict) else None)
    else:
        info = ErrorInfo(type=type(exc).__name__)
    if in_stream:
        info = ErrorInfo(type=info.type, code=info.code, param=info.param, in_stream=True)
    return info, info.code or type(exc).__name__
