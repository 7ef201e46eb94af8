"""Metrics (GenAI conventions' instruments and buckets), options and environment variables, the taxonomy table."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from collector import semconv as sc
from collector.classify import ErrorInfo, classify
from collector.config import ENV_ROUTES, Settings, resolve
from simulator import Simulator
from tests.fixtures.collector import Otel
from tests.fixtures.simulator import openai_client

ARGS = {"model": "gpt-image-2", "prompt": "a lighthouse at dusk", "size": "1024x1024", "quality": "medium"}


def test_metrics(instrumented: Otel, sim: Simulator) -> None:
    client = openai_client(sim)
    client.images.generate(**ARGS)
    list(client.images.generate(**ARGS, stream=True, partial_images=2))
    with pytest.raises(openai.BadRequestError):
        client.images.generate(**{**ARGS, "size": "1000x1000"})

    durations = instrumented.metric_points(sc.METRIC_OPERATION_DURATION)
    assert all(tuple(p.explicit_bounds) == sc.DURATION_BUCKETS for p in durations)
    by_error = {p.attributes.get(sc.ERROR_TYPE): p.count for p in durations}
    assert by_error == {None: 2, "invalid_value": 1}
    ok = next(p for p in durations if sc.ERROR_TYPE not in p.attributes)
    assert ok.attributes[sc.GEN_AI_OPERATION_NAME] == "generate_content"
    assert ok.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-image-2"
    assert ok.attributes[sc.ROUTE_OWNER] == "openai"

    token_points = instrumented.metric_points(sc.METRIC_TOKEN_USAGE)
    assert all(tuple(p.explicit_bounds) == sc.TOKEN_BUCKETS for p in token_points)
    sums = {p.attributes[sc.GEN_AI_TOKEN_TYPE]: (p.count, p.sum) for p in token_points}
    # 20-char prompt = 5 input tokens per call; 1756 + (1756 + 2 x 100) output; the failed call has no usage
    assert sums == {"input": (2, 5 + 5), "output": (2, 1756 + 1956)}

    assert sum(p.value for p in instrumented.metric_points(sc.METRIC_IMAGES)) == 2
    assert sum(p.value for p in instrumented.metric_points(sc.METRIC_PARTIAL_IMAGES)) == 2


def test_options_win_over_environment_and_defaults() -> None:
    env = {
        "IMAGECOST_ROUTES": "gw.example:8443=acme, api.laozhang.ai=laozhang.ai",
        "IMAGECOST_TAGS": "team=growth,feature=hero",
        "IMAGECOST_IMAGE_STORE": "/var/images",
        "IMAGECOST_RETENTION_DAYS": "90",
        "IMAGECOST_CAPTURE_PROMPT": "true",
        "IMAGECOST_SPOOL": "/var/spool",
        "IMAGECOST_PROMPT_SALT": "pepper",
    }
    s = resolve({"tags": {"feature": "thumbnails"}, "retention_days": 7, "image_store": None}, env)
    assert s.tags == {"team": "growth", "feature": "thumbnails"}
    assert (s.image_store, s.retention_days, s.capture_prompt) == (Path("/var/images"), 7, True)
    assert (s.spool, s.spool_requested, s.prompt_salt) == (Path("/var/spool"), True, "pepper")
    assert s.owner_for("gw.example", 8443) == "acme"
    assert s.owner_for("gw.example", 443) == "gw.example"  # the port is part of that entry
    assert s.owner_for("api.laozhang.ai", 443) == "laozhang.ai"
    assert s.owner_for("api.openai.com", 443) == "openai"  # built in
    assert s.owner_for("proxy.internal", 443) == "proxy.internal"  # unknown: the host itself, never "openai"

    defaults = resolve({}, {})
    assert (defaults.image_store, defaults.capture_prompt, defaults.spool_requested) == (None, False, False)
    assert defaults.spool == Path(".imagecost/spool")
    assert resolve({"route_owner": "azure"}, {}).owner_for("api.openai.com", 443) == "azure"
    assert Settings().owner_for("api.openai.com", None) == "openai"
    assert resolve({}, {"IMAGECOST_IMAGE_STORE": "none"}).image_store is None


def test_malformed_environment_is_named() -> None:
    with pytest.raises(ValueError, match=f"{ENV_ROUTES}: expected key=value items"):
        resolve({}, {ENV_ROUTES: "api.laozhang.ai"})


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (ErrorInfo(status=429, type="insufficient_quota", code="some_new_code"), "billing_limit"),
        (ErrorInfo(status=429, code="project_spend_limit_exceeded"), "billing_limit"),
        (ErrorInfo(status=429, code="slow_down"), "rate_limit"),
        (ErrorInfo(status=403, code="unsupported_country"), "auth"),
        (ErrorInfo(status=408), "timeout"),
        (ErrorInfo(status=404, code="model_not_found"), "validation"),
        (ErrorInfo(status=400, code="image_content_policy_violation"), "policy"),
        (ErrorInfo(status=400, param="size", code="moderation_blocked"), "policy"),
        (ErrorInfo(status=502), "provider_5xx"),
        (ErrorInfo(code="moderation_blocked"), "policy"),  # a failed Responses tool call (no HTTP status)
        (ErrorInfo(status=500, in_stream=True), "stream_interrupted"),
        (ErrorInfo(type="ValueError"), None),
    ],
)
def test_taxonomy_table(info: ErrorInfo, reason: str | None) -> None:
    assert classify(info) == reason
    assert reason is None or reason in sc.RETRY_REASONS


def test_bad_retention_is_named() -> None:
    with pytest.raises(ValueError, match="IMAGECOST_RETENTION_DAYS: expected a number of days, got 'forever'"):
        resolve({}, {"IMAGECOST_RETENTION_DAYS": "forever"})
