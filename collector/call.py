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


@dataclass(frozen=True)
class Registration:
    """What ``instrument()`` set up for a client (or for every client)."""

    settings: Settings
    telemetry: Telemetry
    store: ImageStore | None
    salt: str | None  # prompt-hash salt; None if it could not be set up (then no prompt hash)
    guard: guard_mod.Guard | None = None  # asked before each call is sent (collector.guard)
    servers: dict[str, tuple[str, int | None, str]] = field(default_factory=dict)  # base URL -> host, port, owner


def _server(reg: Registration, base_url: Any) -> tuple[str, int | None, str]:
    """(host, port, route owner) of a client's base URL under this registration, cached."""
    key = str(base_url)
    if (server := reg.servers.get(key)) is None:
        host, port = base_url.host, base_url.port or {"https": 443, "http": 80}.get(base_url.scheme)
        server = reg.servers[key] = (host, port, reg.settings.owner_for(host, port))
    return server


class Call:
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
        host, port, owner = _server(reg, sdk_client.base_url)
        self.metric_attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_GENERATE_CONTENT,
            sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
            sc.SERVER_ADDRESS: host,
            sc.ROUTE: route,
            sc.ROUTE_OWNER: owner,
        }
        if port is not None:
            self.metric_attrs[sc.SERVER_PORT] = port
        if req.model:
            self.metric_attrs[sc.GEN_AI_REQUEST_MODEL] = req.model
        attrs = {**self.metric_attrs, sc.GEN_AI_OUTPUT_TYPE: sc.OUTPUT_TYPE_IMAGE, **req.attributes}
        if req.stream:
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        if req.prompt is not None and reg.salt is not None:
            attrs[sc.PROMPT_HASH] = hashlib.sha256(f"{reg.salt}\x00{req.prompt}".encode()).hexdigest()
            attrs[sc.PROMPT_LENGTH] = len(req.prompt)
            if settings.capture_prompt:
                attrs[sc.PROMPT_TEXT] = req.prompt
        for key, value in {**settings.tags, **tagging.current()}.items():
            attrs[sc.TAG_PREFIX + key] = value
        name = f"{sc.OPERATION_GENERATE_CONTENT} {req.model}" if req.model else sc.OPERATION_GENERATE_CONTENT
        self.span = reg.telemetry.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        self.guard_request = (
            guard_mod.build_request(self.span.get_span_context().span_id, attrs, req.prompt)
            if reg.guard is not None
            else None
        )
        self.t0 = time.perf_counter()
        self.attempts: list[Attempt] = []
        self.obs = Observation(reg.store)
        self.first_chunk_s: float | None = None
        self.in_next = False  # a stream observer is inside next(): a transport close then is not "closed early"
        self._failure: ErrorInfo | None = None
        self._failure_type: str | None = None
        self._exc_request_id: str | None = None
        self.input_total: int | None = None
        self.output_total: int | None = None
        self._done = False
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
            mainline_in, _, mainline_out = obs.mainline
            for key, value in zip(
                (sc.MAINLINE_INPUT_TOKENS, sc.MAINLINE_CACHED_INPUT_TOKENS, sc.MAINLINE_OUTPUT_TOKENS),
                obs.mainline,
                strict=True,
            ):
                if value is not None:
                    attrs[key] = value
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

        failure, error_type = self._failure, self._failure_type
        if failure is None and obs.error is not None:  # the response itself reports a failure
            failure, error_type = obs.error, obs.error.code or sc.ERROR_TYPE_OTHER
        reasons = [a.retry_reason for a in self.attempts if a.retry_reason]
        retry_reason = (classify(failure) if failure else None) or (reasons[-1] if reasons else None)
        attrs[sc.STATUS] = "error" if error_type else "ok"
        attrs[sc.ATTEMPT_COUNT] = len(self.attempts)
        optional = {
            sc.ERROR_TYPE: error_type,
            sc.ERROR_CODE: failure.code if failure else None,
            sc.MODERATION_STAGE: failure.moderation_stage if failure else None,
            sc.RETRY_REASON: retry_reason,
            sc.REQUEST_ID: (self.attempts[-1].request_id if self.attempts else None) or self._exc_request_id,
        }
        attrs.update({k: v for k, v in optional.items() if v is not None})
        return attrs, error_type

    def _record_metrics(self, error_type: str | None) -> None:
        try:
            tel = self.reg.telemetry
            attrs = self.metric_attrs if error_type is None else {**self.metric_attrs, sc.ERROR_TYPE: error_type}
            tel.duration.record(time.perf_counter() - self.t0, attrs)
            for total, token_type in (
                (self.input_total, sc.TOKEN_TYPE_INPUT),
                (self.output_total, sc.TOKEN_TYPE_OUTPUT),
            ):
                if total is not None:
                    tel.tokens.record(total, {**attrs, sc.GEN_AI_TOKEN_TYPE: token_type})
            if self.obs.images_returned:
                tel.images.add(self.obs.images_returned, attrs)
            if self.obs.partials:
                tel.partial_images.add(self.obs.partials, attrs)
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
    error = a.error
    attrs = {
        sc.ATTEMPT_NUMBER: a.number,
        sc.ATTEMPT_STATUS_CODE: a.status_code,
        sc.ATTEMPT_ERROR_TYPE: error.type if error else None,
        sc.ATTEMPT_ERROR_CODE: error.code if error else None,
        sc.ATTEMPT_RETRY_REASON: a.retry_reason,
        sc.ATTEMPT_DURATION: a.duration_s,
        sc.ATTEMPT_REQUEST_ID: a.request_id,
        sc.ATTEMPT_RETRY_AFTER: a.retry_after_s,
    }
    return {k: v for k, v in attrs.items() if v is not None}


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
