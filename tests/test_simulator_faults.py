"""Fault injection: each fault reaches the real openai SDK as the exception (and retries) the real API would cause.

Attempts are counted by the SDK's `x-stainless-retry-count`, so `fault:N` fails attempts 0..N-1 and the next
retry succeeds. Error bodies follow reference §8.1.
"""

from __future__ import annotations

import httpx2
import openai
import pytest
from openai.types import ImageGenPartialImageEvent

from ledger.errors import UserError
from simulator import Simulator
from simulator.config import SimConfig
from tests.fixtures.simulator import openai_client, served_since

PROMPT = "a lighthouse at dawn"


def generate(client: openai.OpenAI, fault: str, **kwargs: object) -> openai.types.ImagesResponse:
    return client.images.generate(
        model="gpt-image-2", prompt=PROMPT, quality="low", extra_headers={"X-Sim-Fault": fault}, **kwargs
    )


def test_rate_limit_twice_then_success(sim: Simulator) -> None:
    mark = len(sim.served)
    raw = openai_client(sim).images.with_raw_response.generate(
        model="gpt-image-2", prompt=PROMPT, quality="low", extra_headers={"X-Sim-Fault": "rate_limit:2"}
    )
    assert raw.retries_taken == 2
    assert raw.parse().usage.output_tokens == 196  # type: ignore[union-attr]
    rows = served_since(sim, mark, 3)
    assert [(r["retry_count"], r["status_code"], r["error_code"], r["fault"]) for r in rows] == [
        (0, 429, "rate_limit_exceeded", "rate_limit:2"),
        (1, 429, "rate_limit_exceeded", "rate_limit:2"),
        (2, 200, None, None),
    ]
    assert rows[-1]["request_id"] == raw.request_id
    assert len({r["request_id"] for r in rows}) == 3  # every attempt has its own request id


def test_rate_limit_headers(sim: Simulator) -> None:
    resp = httpx2.post(
        f"{sim.base_url}/images/generations",
        json={"model": "gpt-image-2", "prompt": PROMPT},
        headers={"X-Sim-Fault": "rate_limit:1:250"},  # no x-stainless-retry-count -> attempt 0
    )
    assert resp.status_code == 429
    assert (resp.headers["retry-after-ms"], resp.headers["retry-after"]) == ("250", "1")
    assert resp.headers["x-request-id"].startswith("req_")
    assert resp.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("spec", "code"),
    [("billing:9", "insufficient_quota"), ("billing:9:project_spend_limit_exceeded", "project_spend_limit_exceeded")],
)
def test_billing_is_a_rate_limit_error_with_code(sim: Simulator, spec: str, code: str) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        generate(openai_client(sim, max_retries=0), spec)
    assert (err.value.code, err.value.type, err.value.status_code) == (code, "insufficient_quota", 429)
    assert err.value.request_id and err.value.request_id.startswith("req_")


@pytest.mark.parametrize("stage", ["input", "output"])
def test_moderation_blocked_is_not_retried(sim: Simulator, stage: str) -> None:
    mark = len(sim.served)
    with pytest.raises(openai.BadRequestError) as err:
        generate(openai_client(sim), f"moderation_{stage}:5:violence,other")
    assert (err.value.code, err.value.type) == ("moderation_blocked", "image_generation_user_error")
    assert err.value.body["moderation_details"] == {  # type: ignore[index]
        "moderation_stage": stage,
        "categories": ["violence", "other"],
    }
    assert len(served_since(sim, mark, 1)) == 1  # 400 is not retried


@pytest.mark.parametrize(
    ("spec", "exc", "status", "code", "param"),
    [
        ("content_policy", openai.BadRequestError, 400, "content_policy_violation", None),
        ("invalid_size", openai.BadRequestError, 400, "invalid_value", "size"),
        ("auth", openai.AuthenticationError, 401, "invalid_api_key", None),
        ("server_error", openai.InternalServerError, 500, None, None),
        ("unavailable", openai.InternalServerError, 503, "service_unavailable", None),
    ],
)
def test_error_faults(sim: Simulator, spec: str, exc: type[openai.APIStatusError], status: int, code, param) -> None:
    with pytest.raises(exc) as err:
        generate(openai_client(sim, max_retries=0), spec)
    assert (err.value.status_code, err.value.code, err.value.param) == (status, code, param)
    assert sim.served[-1]["request_id"] == err.value.request_id


def test_unavailable_once_is_retried(sim: Simulator) -> None:
    raw = openai_client(sim).images.with_raw_response.generate(
        model="gpt-image-2", prompt=PROMPT, quality="low", extra_headers={"X-Sim-Fault": "unavailable"}
    )
    assert raw.retries_taken == 1


def test_timeout(sim: Simulator) -> None:
    mark = len(sim.served)
    with pytest.raises(openai.APITimeoutError):
        generate(openai_client(sim, max_retries=0, timeout=0.2), "timeout:1:5")
    (row,) = served_since(sim, mark, 1)  # recorded once the server notices the client has gone
    assert (row["fault"], row["status_code"]) == ("timeout:1:5", None)


def test_stream_error_after_partials(sim: Simulator) -> None:
    mark = len(sim.served)
    stream = openai_client(sim).images.generate(
        model="gpt-image-2",
        prompt=PROMPT,
        stream=True,
        partial_images=2,
        extra_headers={"X-Sim-Fault": "stream_error"},
    )
    received = []
    with pytest.raises(openai.APIError) as err:
        for event in stream:
            received.append(event)
    assert [type(e) for e in received] == [ImageGenPartialImageEvent, ImageGenPartialImageEvent]
    assert err.value.body["type"] == "server_error"  # type: ignore[index]
    (row,) = served_since(sim, mark, 1)
    assert (row["status_code"], row["partial_images_sent"], row["error_code"]) == (200, 2, "server_error")
    assert (row["usage_reported"], row["output_tokens"], row["images_returned"]) == (False, None, 0)


def test_disconnect_is_a_connection_error(sim: Simulator) -> None:
    mark = len(sim.served)
    with pytest.raises(openai.APIConnectionError) as err:
        generate(openai_client(sim, max_retries=0), "disconnect")
    assert not isinstance(err.value, openai.APITimeoutError)
    (row,) = served_since(sim, mark, 1)
    assert (row["fault"], row["status_code"]) == ("disconnect:1", None)


def test_missing_usage_fault(sim: Simulator) -> None:
    resp = generate(openai_client(sim), "missing_usage")
    assert resp.usage is None
    assert resp.data is not None and len(resp.data) == 1


def test_unknown_fault_is_rejected(sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        generate(openai_client(sim), "gremlins")
    assert err.value.code == "invalid_sim_fault"
    assert "rate_limit" in err.value.message  # lists the known faults


def test_default_fault_plan_matches_prompt_substring() -> None:
    with Simulator(faults={"FLAKY": "rate_limit:1", "BROKE": "billing:9"}) as planned:
        client = openai_client(planned)
        raw = client.images.with_raw_response.generate(model="gpt-image-2", prompt="a FLAKY lighthouse")
        assert raw.retries_taken == 1
        assert client.images.with_raw_response.generate(model="gpt-image-2", prompt=PROMPT).retries_taken == 0
        with pytest.raises(openai.RateLimitError):
            client.with_options(max_retries=0).responses.create(
                model="gpt-5.5", input="BROKE", tools=[{"type": "image_generation"}]
            )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"faults": {"x": "nope"}}, "fault plan entry 'x': unknown fault 'nope'"),
        ({"faults": {"x": "billing:1:bogus"}}, "fault plan entry 'x': billing takes one of insufficient_quota"),
        ({"faults": {"x": "rate_limit:two"}}, "fault count must be an integer, got 'two'"),
        ({"personality": "azure"}, "unknown simulator personality 'azure'; use one of openai, gateway"),
        ({"model_map": {"a": "b"}}, "a model map applies only to the gateway personality"),
        ({"latency_scale": -1.0}, "latency scale must be >= 0"),
    ],
)
def test_bad_settings_are_user_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        Simulator(**kwargs)
    assert message in str(err.value)


def test_latency_model() -> None:
    config = SimConfig(latency_scale=2.0)
    assert config.latency_s(20_000) == pytest.approx(2.0 * (0.3 + 1.0))
    assert SimConfig().latency_s(20_000) == 0.0
