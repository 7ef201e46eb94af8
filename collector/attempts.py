"""Every HTTP attempt of an image call, the SDK's own retries included.

The SDK retries inside ``BaseClient.request`` (reference §9), below the resource methods, so attempts are
seen at ``httpx2.Client.send`` / ``httpx2.AsyncClient.send``. Those wrappers run for all of the app's
httpx2 traffic: they do nothing unless the contextvar says an instrumented image call is in progress.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

import httpx2

from collector.call import CURRENT, Call
from collector.classify import ErrorInfo, classify, error_body_info, transport_info
from collector.safety import internal


class Attempt(NamedTuple):
    number: int | None  # x-stainless-retry-count of the request
    started_ns: int
    duration_s: float
    status_code: int | None
    error: ErrorInfo | None
    retry_reason: str | None
    request_id: str | None
    retry_after_s: float | None

    def interrupted(self, error: ErrorInfo) -> Attempt:
        """This attempt's stream broke after it had started (reference §3.1: an SSE error raises APIError)."""
        return self._replace(error=error, retry_reason=classify(error))


def send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> httpx2.Response:
    call = CURRENT.get()
    if call is None:
        return wrapped(*args, **kwargs)
    started_ns, t0 = time.time_ns(), time.perf_counter()
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as exc:
        _failed(call, _request(args, kwargs), exc, started_ns, time.perf_counter() - t0)
        raise
    body = _read_error_body(response) if response.status_code >= 400 else None
    _answered(call, response, body, started_ns, time.perf_counter() - t0)
    return response


async def send_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> httpx2.Response:
    call = CURRENT.get()
    if call is None:
        return await wrapped(*args, **kwargs)
    started_ns, t0 = time.time_ns(), time.perf_counter()
    try:
        response = await wrapped(*args, **kwargs)
    except BaseException as exc:
        _failed(call, _request(args, kwargs), exc, started_ns, time.perf_counter() - t0)
        raise
    body = await _aread_error_body(response) if response.status_code >= 400 else None
    _answered(call, response, body, started_ns, time.perf_counter() - t0)
    return response


def _request(args: Any, kwargs: Any) -> httpx2.Request | None:
    return args[0] if args else kwargs.get("request")


def _read_error_body(response: httpx2.Response) -> Any:
    # The SDK reads (or discards) an error body anyway; for non-streamed requests it is already in memory.
    try:
        response.read()
        return response.json()
    except Exception:  # not JSON, or unreadable: classify by status alone
        return None


async def _aread_error_body(response: httpx2.Response) -> Any:
    try:
        await response.aread()
        return response.json()
    except Exception:  # not JSON, or unreadable: classify by status alone
        return None


@internal
def _answered(call: Call, response: httpx2.Response, body: Any, started_ns: int, duration: float) -> None:
    status = response.status_code
    error = error_body_info(status, body) if status >= 400 else None
    call.attempts.append(
        Attempt(
            number=_retry_count(response.request),
            started_ns=started_ns,
            duration_s=duration,
            status_code=status,
            error=error,
            retry_reason=classify(error) if error else None,
            request_id=response.headers.get("x-request-id"),
            retry_after_s=_retry_after(response.headers) if error else None,
        )
    )


@internal
def _failed(call: Call, request: httpx2.Request | None, exc: BaseException, started_ns: int, duration: float) -> None:
    error = transport_info(exc) if isinstance(exc, Exception) else ErrorInfo(type=type(exc).__name__)
    call.attempts.append(
        Attempt(
            number=_retry_count(request),
            started_ns=started_ns,
            duration_s=duration,
            status_code=None,
            error=error,
            retry_reason=classify(error),
            request_id=None,
            retry_after_s=None,
        )
    )


def _retry_count(request: httpx2.Request | None) -> int | None:
    value = request.headers.get("x-stainless-retry-count") if request is not None else None
    return int(value) if value is not None and value.isdigit() else None


def _retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is not None:
        try:
            return float(value)
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None
