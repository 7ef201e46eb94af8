"""Every HTTP attempt (SDK retries included) and the retry-reason taxonomy, driven by the simulator's faults.

`X-Sim-Fault: <fault>:<count>` fails the first `count` attempts (attempt = x-stainless-retry-count); the SDK
retries 429 / 5xx / timeouts / connection errors up to max_retries (2 here), never 4xx validation errors.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from collector import semconv as sc
from simulator import Simulator
from tests.fixtures.collector import Otel, attempts, attrs
from tests.fixtures.simulator import openai_client


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own backoff (0.5 s, doubling) without the wait: retries stay real, the suite stays fast."""
    monkeypatch.setattr("openai._base_client.INITIAL_RETRY_DELAY", 0.005)


ARGS: dict[str, Any] = {"model": "gpt-image-2", "prompt": "a busy street", "size": "1024x1024", "quality": "low"}


def call(sim: Simulator, fault: str | None = None, **options: Any) -> Any:
    headers = {"X-Sim-Fault": fault} if fault else {}
    return openai_client(sim, **options).images.generate(**ARGS, extra_headers=headers)


def test_rate_limit_retried_twice_gives_one_span_with_three_attempts(instrumented: Otel, sim: Simulator) -> None:
    result = call(sim, "rate_limit:2")
    span = instrumented.span()
    a = attrs(span)
    assert (a[sc.STATUS], a[sc.ATTEMPT_COUNT], a[sc.RETRY_REASON]) == ("ok", 3, "rate_limit")
    assert a[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 196  # the successful attempt's usage, once
    tries = attempts(span)
    assert [t[sc.ATTEMPT_NUMBER] for t in tries] == [0, 1, 2]
    assert [t[sc.ATTEMPT_STATUS_CODE] for t in tries] == [429, 429, 200]
    assert [t.get(sc.ATTEMPT_RETRY_REASON) for t in tries] == ["rate_limit", "rate_limit", None]
    assert [t.get(sc.ATTEMPT_ERROR_CODE) for t in tries] == ["rate_limit_exceeded", "rate_limit_exceeded", None]
    assert tries[0][sc.ATTEMPT_RETRY_AFTER] == 0.01  # retry-after-ms: 10
    assert all(t[sc.ATTEMPT_DURATION] > 0 for t in tries)
    assert len({t[sc.ATTEMPT_REQUEST_ID] for t in tries}) == 3
    assert a[sc.REQUEST_ID] == tries[-1][sc.ATTEMPT_REQUEST_ID] == result._request_id
    assert [e.timestamp for e in span.events if e.name == sc.EVENT_ATTEMPT] == sorted(
        e.timestamp for e in span.events if e.name == sc.EVENT_ATTEMPT
    )


@pytest.mark.parametrize(
    ("fault", "exc_type", "error_type", "reason", "tries", "stage"),
    [
        ("billing:5", openai.RateLimitError, "insufficient_quota", "billing_limit", 3, None),
        (
            "billing:5:credit_balance_exhausted",
            openai.RateLimitError,
            "credit_balance_exhausted",
            "billing_limit",
            3,
            None,
        ),
        ("unavailable:5", openai.InternalServerError, "service_unavailable", "provider_5xx", 3, None),
        ("server_error:5", openai.InternalServerError, "InternalServerError", "provider_5xx", 3, None),
        ("moderation_input", openai.BadRequestError, "moderation_blocked", "policy", 1, "input"),
        ("moderation_output", openai.BadRequestError, "moderation_blocked", "policy", 1, "output"),
        ("content_policy", openai.BadRequestError, "content_policy_violation", "policy", 1, None),
        ("invalid_size", openai.BadRequestError, "invalid_value", "size_error", 1, None),
        ("auth", openai.AuthenticationError, "invalid_api_key", "auth", 1, None),
    ],
)
def test_failed_calls_are_classified(
    instrumented: Otel,
    sim: Simulator,
    fault: str,
    exc_type: type[Exception],
    error_type: str,
    reason: str,
    tries: int,
    stage: str | None,
) -> None:
    with pytest.raises(exc_type) as info:
        call(sim, fault, max_retries=2)
    span = instrumented.span()
    a = attrs(span)
    assert (a[sc.STATUS], a[sc.ERROR_TYPE], a[sc.RETRY_REASON], a[sc.ATTEMPT_COUNT]) == (
        "error",
        error_type,
        reason,
        tries,
    )
    assert a.get(sc.ERROR_CODE) == info.value.code
    assert a.get(sc.MODERATION_STAGE) == stage
    assert a[sc.REQUEST_ID] == info.value.request_id
    assert [t[sc.ATTEMPT_RETRY_REASON] for t in attempts(span)] == [reason] * tries
    assert a[sc.USAGE_SOURCE] == "missing" and a[sc.IMAGES_RETURNED] == 0
    assert span.status.status_code.name == "ERROR"


def test_server_error_then_success(instrumented: Otel, sim: Simulator) -> None:
    call(sim, "server_error:1")
    a = attrs(instrumented.span())
    assert (a[sc.STATUS], a[sc.ATTEMPT_COUNT], a[sc.RETRY_REASON]) == ("ok", 2, "provider_5xx")
    assert sc.ERROR_TYPE not in a


def test_real_size_validation_is_a_size_error(instrumented: Otel, sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError):
        openai_client(sim).images.generate(model="gpt-image-2", prompt="a poster", size="1000x1000")
    a = attrs(instrumented.span())
    assert (a[sc.RETRY_REASON], a[sc.ATTEMPT_COUNT]) == ("size_error", 1)


def test_other_bad_parameters_are_validation(instrumented: Otel, sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_client(sim).images.generate(**{**ARGS, "n": 50})
    assert info.value.param == "n"
    assert attrs(instrumented.span())[sc.RETRY_REASON] == "validation"


def test_timeout_then_success(instrumented: Otel, sim: Simulator) -> None:
    call(sim, "timeout:1:0.5", timeout=0.1, max_retries=1)
    span = instrumented.span()
    a = attrs(span)
    assert (a[sc.STATUS], a[sc.ATTEMPT_COUNT], a[sc.RETRY_REASON]) == ("ok", 2, "timeout")
    first, second = attempts(span)
    assert sc.ATTEMPT_STATUS_CODE not in first and first[sc.ATTEMPT_ERROR_TYPE] == "ReadTimeout"
    assert second[sc.ATTEMPT_STATUS_CODE] == 200


def test_timeout_exhausted(instrumented: Otel, sim: Simulator) -> None:
    with pytest.raises(openai.APITimeoutError):
        call(sim, "timeout:1:0.5", timeout=0.1, max_retries=0)
    a = attrs(instrumented.span())
    assert (a[sc.STATUS], a[sc.ERROR_TYPE], a[sc.RETRY_REASON]) == ("error", "APITimeoutError", "timeout")


def test_connection_dropped_then_success(instrumented: Otel, sim: Simulator) -> None:
    call(sim, "disconnect:1", max_retries=1)
    span = instrumented.span()
    a = attrs(span)
    assert (a[sc.STATUS], a[sc.ATTEMPT_COUNT], a[sc.RETRY_REASON]) == ("ok", 2, "connection")
    assert attempts(span)[0][sc.ATTEMPT_RETRY_REASON] == "connection"


def test_connection_refused(instrumented: Otel) -> None:
    client = openai.OpenAI(api_key="sk-test-not-a-real-key", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        client.images.generate(**ARGS)
    a = attrs(instrumented.span())
    assert (a[sc.ERROR_TYPE], a[sc.RETRY_REASON], a[sc.ATTEMPT_COUNT]) == ("APIConnectionError", "connection", 1)
    assert a[sc.ROUTE_OWNER] == "127.0.0.1"  # an unknown host is its own owner, never "openai"


def test_stream_interrupted(instrumented: Otel, sim: Simulator) -> None:
    stream = openai_client(sim).images.generate(
        **ARGS, stream=True, partial_images=2, extra_headers={"X-Sim-Fault": "stream_error"}
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        for event in stream:
            received.append(event.type)
    assert received == ["image_generation.partial_image"] * 2
    span = instrumented.span()
    a = attrs(span)
    assert (a[sc.STATUS], a[sc.RETRY_REASON], a[sc.ERROR_TYPE]) == ("error", "stream_interrupted", info.value.code)
    assert a[sc.PARTIAL_IMAGES_RECEIVED] == 2 and a[sc.USAGE_SOURCE] == "missing"
    (attempt,) = attempts(span)
    assert attempt[sc.ATTEMPT_STATUS_CODE] == 200 and attempt[sc.ATTEMPT_RETRY_REASON] == "stream_interrupted"
