"""Responses API calls with the image_generation tool (reference §2.3, §3.3, §4).

Simulator rules (simulator.responses_route): mainline usage input = ceil(len(input) / 4), cached 0, output 30;
tool_usage.image_gen text input = ceil(len(input) / 4), image input 0, output = output_tokens(tool model, size,
quality) + 100 x partials sent; an unset tool model is gpt-image-2.6-sunburst, whose 1024x1024 medium output is
1756 tokens like gpt-image-2 (same calculator, reference §5.1 / §5.7).
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from collector import semconv as sc
from collector.extract import DEFAULT_TOOL_MODEL, Observation, responses_response
from simulator import Simulator
from tests.fixtures.collector import Otel, attrs, events, tokens
from tests.fixtures.simulator import FAKE_API_KEY, openai_client

INPUT = "Draw a hero image of a red bicycle"  # 34 characters -> 9 tokens
INPUT_TOKENS = 9
TOOL = {"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "medium"}


def test_create_records_mainline_and_tool_usage(instrumented: Otel, sim: Simulator) -> None:
    response = openai_client(sim).responses.create(model="gpt-5.4", input=INPUT, tools=[TOOL])
    span = instrumented.span()
    a = attrs(span)
    assert span.name == "generate_content gpt-5.4"  # the top-level model names the span
    assert a[sc.ROUTE] == "responses"
    assert a[sc.MAINLINE_MODEL] == "gpt-5.4" and a[sc.GEN_AI_RESPONSE_MODEL] == response.model
    assert a[sc.IMAGE_MODEL_REQUESTED] == "gpt-image-2" and a[sc.IMAGE_MODEL_ASSUMED] is False
    assert (a[sc.MAINLINE_INPUT_TOKENS], a[sc.MAINLINE_CACHED_INPUT_TOKENS], a[sc.MAINLINE_OUTPUT_TOKENS]) == (
        INPUT_TOKENS,
        0,
        30,
    )
    assert tokens(span) == {
        "text_in": INPUT_TOKENS,
        "image_in": 0,
        "image_out": 1756,
        "text_out": 0,
        # billed totals = tool usage + mainline usage
        "input": INPUT_TOKENS + INPUT_TOKENS,
        "output": 1756 + 30,
    }
    # no cached_tokens_details in tool_usage: cache use is unknown, not zero (reference §5.2)
    assert a[sc.USAGE_CACHE] == "unknown"
    assert (a[sc.IMAGE_SIZE_EFFECTIVE], a[sc.IMAGE_QUALITY_EFFECTIVE]) == ("1024x1024", "medium")
    assert a[sc.IMAGES_RETURNED] == 1 and len(events(span, sc.EVENT_IMAGE)) == 1
    assert a[sc.REQUEST_ID] == response._request_id


def test_unset_tool_model_records_the_documented_default_as_assumed(instrumented: Otel, sim: Simulator) -> None:
    openai_client(sim).responses.create(model="gpt-5.4", input=INPUT, tools=[{"type": "image_generation"}])
    a = attrs(instrumented.span())
    assert a[sc.IMAGE_MODEL_REQUESTED] == DEFAULT_TOOL_MODEL == "gpt-image-2.6-sunburst"
    assert a[sc.IMAGE_MODEL_ASSUMED] is True
    assert a[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 1756  # auto -> 1024x1024 medium


def test_calls_without_the_image_tool_are_not_recorded(instrumented: Otel, sim: Simulator) -> None:
    client = openai_client(sim)
    # The simulator models only image calls and answers 400 to others; the calls still go out over HTTP.
    for tools in ([{"type": "web_search"}], None):
        kwargs = {"tools": tools} if tools else {}
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt-5.4", input="hello", **kwargs)
        assert info.value.request_id
    assert instrumented.spans() == []


def test_responses_stream_manager(instrumented: Otel, sim: Simulator) -> None:
    tool = {**TOOL, "partial_images": 2}
    with openai_client(sim).responses.stream(model="gpt-5.4", input=INPUT, tools=[tool]) as stream:
        assert instrumented.spans() == []
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert types.count("response.image_generation_call.partial_image") == 2
    span = instrumented.span()
    a = attrs(span)
    assert a[sc.PARTIAL_IMAGES_REQUESTED] == a[sc.PARTIAL_IMAGES_RECEIVED] == 2
    assert a[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 1756 + 2 * 100
    assert a[sc.MAINLINE_OUTPUT_TOKENS] == 30
    assert a[sc.GEN_AI_RESPONSE_MODEL] == final.model
    assert a[sc.STATUS] == "ok" and a[sc.IMAGES_RETURNED] == 1


def test_responses_stream_left_early_ends_the_span_at_exit(instrumented: Otel, sim: Simulator) -> None:
    with openai_client(sim).responses.stream(model="gpt-5.4", input=INPUT, tools=[TOOL]) as stream:
        next(iter(stream))
        assert instrumented.spans() == []
    a = attrs(instrumented.span())
    assert a[sc.STATUS] == "ok" and a[sc.USAGE_SOURCE] == "missing"  # response.completed never read


def test_create_stream_true(instrumented: Otel, sim: Simulator) -> None:
    stream = openai_client(sim).responses.create(
        model="gpt-5.4", input=INPUT, tools=[{**TOOL, "partial_images": 1}], stream=True
    )
    assert [e.type for e in stream][-1] == "response.completed"
    a = attrs(instrumented.span())
    assert a[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 1756 + 100 and a[sc.PARTIAL_IMAGES_RECEIVED] == 1


async def test_async_create_and_stream(instrumented: Otel, sim: Simulator) -> None:
    client = openai.AsyncOpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url)
    await client.responses.create(model="gpt-5.4", input=INPUT, tools=[TOOL])
    async with client.responses.stream(model="gpt-5.4", input=INPUT, tools=[{**TOOL, "partial_images": 1}]) as s:
        async for _ in s:
            pass
    first, second = instrumented.spans()
    assert attrs(first)[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 1756
    assert attrs(second)[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 1756 + 100
    assert attrs(second)[sc.PARTIAL_IMAGES_RECEIVED] == 1


class OldSdkResponse(openai.BaseModel):
    """A Response as an SDK older than 3.45 parses it: no typed tool_usage, so it lands in the extra fields."""

    model: str


def test_tool_usage_is_read_from_extra_fields_and_cache_details_are_reported() -> None:
    body: dict[str, Any] = {
        "model": "gpt-5.4",
        "usage": {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 8}, "output_tokens": 30},
        "tool_usage": {
            "image_gen": {
                "input_tokens": 112,
                "input_tokens_details": {"image_tokens": 100, "text_tokens": 12},
                "cached_tokens_details": {"cached_image_tokens": 64, "cached_text_tokens": 4},
                "output_tokens": 1756,
                "total_tokens": 1868,
            }
        },
        "output": [{"type": "image_generation_call", "result": None, "size": "1024x1024", "quality": "medium"}],
    }
    old = OldSdkResponse.model_validate(body)
    assert "tool_usage" in (old.model_extra or {})  # not a typed field here
    obs = Observation(store=None)
    responses_response(old, obs)
    u = obs.usage
    assert u is not None
    assert (u.text_input, u.image_input, u.cached_text_input, u.cached_image_input) == (12, 100, 4, 64)
    assert (u.image_output, u.output, u.cache) == (1756, 1756, "reported")
    assert obs.mainline == (20, 8, 30)
    assert obs.images_returned == 0  # an item without a result is not an image
