"""Never break the app: what the caller gets is the same with and without instrumentation, streams end their
span exactly once, internal failures are swallowed and logged once, instrumenting is idempotent and reversible."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import openai
import pytest
from openai.resources.images import Images
from openai.resources.responses.responses import Responses

import collector
from collector import semconv as sc
from simulator import Simulator
from tests.fixtures.collector import Otel, attrs
from tests.fixtures.simulator import openai_client

ARGS: dict[str, Any] = {"model": "gpt-image-2", "prompt": "a red kite", "size": "1024x1024", "quality": "low"}
TOOL = {"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low"}
VOLATILE = {"created", "created_at", "completed_at", "id", "item_id", "_request_id"}


def normalized(value: Any) -> Any:
    """A comparable form: pydantic models -> (type, dump); timestamps and random ids -> their type only."""
    if isinstance(value, openai.BaseModel):
        return (type(value).__qualname__, normalized(value.model_dump()))
    if isinstance(value, dict):
        return {k: type(v).__name__ if k in VOLATILE else normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def error_fingerprint(fn: Callable[[], Any]) -> Any:
    try:
        fn()
    except openai.APIStatusError as exc:
        return (type(exc), exc.status_code, exc.code, exc.param, exc.type, exc.body, bool(exc.request_id))
    raise AssertionError("expected an error")


def run_scenarios(client: openai.OpenAI) -> dict[str, Any]:
    out: dict[str, Any] = {}
    result = client.images.generate(**ARGS)
    out["generate"] = (type(result), normalized(result), isinstance(result._request_id, str))
    raw = client.images.with_raw_response.generate(**ARGS)
    out["raw"] = (type(raw), raw.status_code, sorted(raw.headers.keys()), normalized(raw.parse()))
    stream = client.images.generate(**ARGS, stream=True, partial_images=2)
    out["stream"] = (type(stream), type(stream.response), [normalized(e) for e in stream])
    with client.images.with_streaming_response.generate(**ARGS) as response:
        out["streaming_response"] = (type(response), normalized(response.parse()))
    created = client.responses.create(model="gpt-5.4", input="draw a kite", tools=[TOOL])
    out["responses"] = (type(created), normalized(created))
    with client.responses.stream(model="gpt-5.4", input="draw a kite", tools=[TOOL]) as rstream:
        events = [normalized(e) for e in rstream]
        out["responses_stream"] = (type(rstream), events, normalized(rstream.get_final_response()))
    out["moderation"] = error_fingerprint(
        lambda: client.images.generate(**ARGS, extra_headers={"X-Sim-Fault": "moderation_output"})
    )
    out["billing"] = error_fingerprint(
        lambda: client.images.generate(**ARGS, extra_headers={"X-Sim-Fault": "billing:3"})
    )
    out["size"] = error_fingerprint(lambda: client.images.generate(**{**ARGS, "size": "1000x1000"}))
    return out


def test_caller_sees_the_same_results_and_errors(
    otel: Otel, sim: Simulator, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("openai._base_client.INITIAL_RETRY_DELAY", 0.005)  # real retries, short backoff
    plain = run_scenarios(openai_client(sim, max_retries=2))
    collector.instrument(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    try:
        # A fresh client: the SDK caches client.images.with_raw_response (bound to the method as it was then).
        observed = run_scenarios(openai_client(sim, max_retries=2))
    finally:
        collector.uninstrument()
    assert observed == plain
    assert len(otel.spans()) == len(plain)  # and every call was recorded


def test_stream_objects_keep_their_type(instrumented: Otel, sim: Simulator) -> None:
    stream = openai_client(sim).images.generate(**ARGS, stream=True)
    assert type(stream) is openai.Stream
    assert isinstance(stream.response, httpx2.Response)


def duration_count(otel: Otel) -> int:
    return sum(p.count for p in otel.metric_points(sc.METRIC_OPERATION_DURATION))


def test_stream_closed_early_ends_the_span_once(instrumented: Otel, sim: Simulator) -> None:
    stream = openai_client(sim).images.generate(**ARGS, stream=True, partial_images=3)
    assert next(stream).type == "image_generation.partial_image"
    assert instrumented.spans() == []
    stream.close()
    a = attrs(instrumented.span())
    assert (a[sc.STATUS], a[sc.PARTIAL_IMAGES_RECEIVED], a[sc.USAGE_SOURCE]) == ("ok", 1, "missing")
    stream.close()
    del stream
    gc.collect()
    assert len(instrumented.spans()) == 1 and duration_count(instrumented) == 1


def test_stream_left_by_with_ends_the_span(instrumented: Otel, sim: Simulator) -> None:
    with openai_client(sim).images.generate(**ARGS, stream=True, partial_images=2) as stream:
        for _event in stream:
            break
    assert attrs(instrumented.span())[sc.PARTIAL_IMAGES_RECEIVED] == 1


def test_stream_dropped_unread_ends_the_span(instrumented: Otel, sim: Simulator) -> None:
    stream = openai_client(sim).images.generate(**ARGS, stream=True, partial_images=1)
    next(stream)
    del stream
    gc.collect()
    assert attrs(instrumented.span())[sc.PARTIAL_IMAGES_RECEIVED] == 1
    assert duration_count(instrumented) == 1


def test_exhausted_then_closed_then_dropped_is_still_one_span(instrumented: Otel, sim: Simulator) -> None:
    with openai_client(sim).images.generate(**ARGS, stream=True, partial_images=1) as stream:
        assert len(list(stream)) == 2
        assert len(instrumented.spans()) == 1
        stream.close()
    del stream
    gc.collect()
    assert len(instrumented.spans()) == 1 and duration_count(instrumented) == 1


def test_internal_failures_are_swallowed_and_logged_once(
    instrumented: Otel, sim: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("collector bug")

    monkeypatch.setattr("collector.extract.Observation.echo", broken)
    monkeypatch.setattr("collector.attempts._retry_count", broken)
    caplog.set_level(logging.DEBUG, logger="imagecost")
    client = openai_client(sim)
    results = [client.images.generate(**ARGS) for _ in range(3)]
    assert all(r.usage.output_tokens == 196 for r in results)
    assert len(instrumented.spans()) == 3  # every span still ended
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sorted(r.getMessage().split(" (")[0] for r in warnings) == [
        "imagecost: internal error in Call.on_parsed",
        "imagecost: internal error in _answered",
    ]


def test_a_failure_before_the_span_leaves_the_call_uninstrumented(
    instrumented: Otel, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("collector.call.Call.__init__", lambda *a, **k: (_ for _ in ()).throw(ValueError("bug")))
    assert openai_client(sim).images.generate(**ARGS).usage.output_tokens == 196
    assert instrumented.spans() == []


def test_instrument_twice_is_harmless_and_uninstrument_restores(otel: Otel, sim: Simulator, clean_env: None) -> None:
    originals = (Images.generate, Responses.create, httpx2.Client.send, httpx2.Response.close)
    collector.instrument(tracer_provider=otel.tracer_provider)
    collector.instrument(tracer_provider=otel.tracer_provider)
    try:
        assert Images.generate.__wrapped__ is originals[0]  # wrapped once, not twice
        openai_client(sim).images.generate(**ARGS)
        assert len(otel.spans()) == 1
    finally:
        collector.uninstrument()
    collector.uninstrument()  # twice is harmless too
    assert (Images.generate, Responses.create, httpx2.Client.send, httpx2.Response.close) == originals
    openai_client(sim).images.generate(**ARGS)
    assert len(otel.spans()) == 1


def test_instrument_one_client_only(otel: Otel, sim: Simulator, clean_env: None) -> None:
    chosen, other = openai_client(sim), openai_client(sim)
    collector.instrument(chosen, tracer_provider=otel.tracer_provider, tags={"team": "growth"})
    try:
        chosen.images.generate(**ARGS)
        chosen.with_options(max_retries=0).images.generate(**ARGS)  # a copy shares the client's transport
        other.images.generate(**ARGS)
    finally:
        collector.uninstrument()
    spans = otel.spans()
    assert len(spans) == 2
    assert all(attrs(s)[sc.TAG_PREFIX + "team"] == "growth" for s in spans)
