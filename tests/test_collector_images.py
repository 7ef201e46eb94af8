"""Images API calls through the real openai SDK against the simulator: one span each, exact tokens.

Token rules (simulator.tokens, reference §5.7): gpt-image-2 1024x1024 medium = 1756 output tokens per image,
+100 per partial image sent; text input = ceil(len(prompt) / 4); a 32x32 upload on gpt-image-2 = 4354 input
image tokens (65 + 129 x 1 tile + 4160 high fidelity).
"""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import pytest
from PIL import Image

from collector import semconv as sc
from collector.storage import ImageStore
from simulator import Simulator
from tests.fixtures.collector import Otel, attrs, events, tokens
from tests.fixtures.simulator import FAKE_API_KEY, openai_client

PROMPT = "a lighthouse at dusk"  # 20 characters -> 5 text tokens
PROMPT_TOKENS = 5


def png_bytes(alpha: bool = False) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA" if alpha else "RGB", (32, 32), (10, 20, 30, 0) if alpha else (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_generate_records_one_span_with_exact_tokens_and_shape(instrumented: Otel, sim: Simulator) -> None:
    client = openai_client(sim)
    result = client.images.generate(model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="medium")

    span = instrumented.span()
    a = attrs(span)
    assert span.name == "generate_content gpt-image-2"
    assert span.kind.name == "CLIENT"
    assert tokens(span) == {
        "text_in": PROMPT_TOKENS,
        "image_in": 0,
        "image_out": 1756,
        "text_out": 0,
        "input": PROMPT_TOKENS,
        "output": 1756,
    }
    host, port = sim.host_port.split(":")
    assert {k: a[k] for k in (sc.SERVER_ADDRESS, sc.SERVER_PORT, sc.ROUTE, sc.ROUTE_OWNER)} == {
        sc.SERVER_ADDRESS: host,
        sc.SERVER_PORT: int(port),
        sc.ROUTE: "images.generate",
        sc.ROUTE_OWNER: "openai",
    }
    assert a[sc.GEN_AI_OPERATION_NAME] == "generate_content"
    assert a[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[sc.GEN_AI_REQUEST_MODEL] == a[sc.IMAGE_MODEL_REQUESTED] == "gpt-image-2"
    assert a[sc.GEN_AI_OUTPUT_TYPE] == "image"
    assert (a[sc.IMAGE_SIZE_REQUESTED], a[sc.IMAGE_SIZE_EFFECTIVE]) == ("1024x1024", "1024x1024")
    assert (a[sc.IMAGE_QUALITY_REQUESTED], a[sc.IMAGE_QUALITY_EFFECTIVE]) == ("medium", "medium")
    assert a[sc.IMAGE_FORMAT_EFFECTIVE] == "png"
    assert a[sc.IMAGE_N] == 1 and sc.GEN_AI_REQUEST_CHOICE_COUNT not in a
    assert a[sc.IMAGES_RETURNED] == 1
    assert a[sc.USAGE_SOURCE] == "reported" and a[sc.USAGE_CACHE] == "not_applicable"
    assert a[sc.STATUS] == "ok" and a[sc.ATTEMPT_COUNT] == 1
    assert a[sc.REQUEST_ID] == result._request_id
    assert sc.PARTIAL_IMAGES_RECEIVED not in a and sc.ERROR_TYPE not in a and sc.RETRY_REASON not in a


def test_auto_settings_are_resolved_from_the_echo(instrumented: Otel, sim: Simulator) -> None:
    openai_client(sim).images.generate(model="gpt-image-2", prompt=PROMPT, size="auto", quality="auto")
    a = attrs(instrumented.span())
    assert (a[sc.IMAGE_SIZE_REQUESTED], a[sc.IMAGE_QUALITY_REQUESTED]) == ("auto", "auto")
    # the simulator resolves auto to 1024x1024 medium (simulator.params AUTO_SIZE / AUTO_QUALITY)
    assert (a[sc.IMAGE_SIZE_EFFECTIVE], a[sc.IMAGE_QUALITY_EFFECTIVE]) == ("1024x1024", "medium")
    assert a[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 1756


def test_n_greater_than_one(instrumented: Otel, sim: Simulator) -> None:
    openai_client(sim).images.generate(model="gpt-image-2", prompt=PROMPT, n=3, size="1536x1024", quality="low")
    span = instrumented.span()
    a = attrs(span)
    # 1536x1024 low = 158 per image (reference §5.7 table), 3 images
    assert a[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 3 * 158
    assert a[sc.IMAGE_N] == a[sc.GEN_AI_REQUEST_CHOICE_COUNT] == 3
    assert a[sc.IMAGES_RETURNED] == 3
    assert [e[sc.IMAGE_INDEX] for e in events(span, sc.EVENT_IMAGE)] == [0, 1, 2]


def test_edit_with_two_images_and_mask(instrumented: Otel, sim: Simulator) -> None:
    client = openai_client(sim)
    images = [("a.png", png_bytes(), "image/png"), ("b.png", png_bytes(), "image/png")]
    client.images.edit(
        model="gpt-image-2",
        image=images,
        mask=("m.png", png_bytes(alpha=True), "image/png"),
        prompt=PROMPT,
        size="1024x1024",
        quality="medium",
    )
    a = attrs(instrumented.span())
    assert a[sc.ROUTE] == "images.edit"
    assert a[sc.INPUT_IMAGE_COUNT] == 2 and a[sc.IMAGE_MASK] is True
    assert tokens(instrumented.span()) == {
        "text_in": PROMPT_TOKENS,
        "image_in": 2 * 4354,
        "image_out": 1756,
        "text_out": 0,
        "input": PROMPT_TOKENS + 2 * 4354,
        "output": 1756,
    }


def test_edit_single_image_without_mask(instrumented: Otel, sim: Simulator) -> None:
    openai_client(sim).images.edit(
        model="gpt-image-1.5", image=("a.png", png_bytes(), "image/png"), prompt=PROMPT, size="1024x1024", quality="low"
    )
    a = attrs(instrumented.span())
    assert a[sc.INPUT_IMAGE_COUNT] == 1 and a[sc.IMAGE_MASK] is False
    # gpt-image-1.5 low-fidelity 32x32 input: 65 + 129 = 194; 1024x1024 low output = 272 (reference §5.5, §6)
    assert (a[sc.USAGE_IMAGE_INPUT_TOKENS], a[sc.USAGE_IMAGE_OUTPUT_TOKENS]) == (194, 272)


def test_stream_with_partials(instrumented: Otel, sim: Simulator) -> None:
    stream = openai_client(sim).images.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="medium", stream=True, partial_images=2
    )
    types = [event.type for event in stream]
    assert types == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    span = instrumented.span()
    a = attrs(span)
    # the completed event's usage has no output_tokens_details: all output is image output (§2.2)
    assert tokens(span) == {
        "text_in": PROMPT_TOKENS,
        "image_in": 0,
        "image_out": 1756 + 2 * 100,
        "input": PROMPT_TOKENS,
        "output": 1756 + 2 * 100,
    }
    assert a[sc.PARTIAL_IMAGES_REQUESTED] == 2 and a[sc.PARTIAL_IMAGES_RECEIVED] == 2
    assert a[sc.IMAGE_STREAM] is True and a[sc.GEN_AI_REQUEST_STREAM] is True
    assert a[sc.IMAGES_RETURNED] == 1
    assert a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert len(events(span, sc.EVENT_IMAGE)) == 1  # only the final image is stored, never partials


def test_stream_n2_sums_the_completed_events(instrumented: Otel, sim: Simulator) -> None:
    stream = openai_client(sim).images.generate(
        model="gpt-image-2", prompt=PROMPT, n=2, size="1024x1024", quality="medium", stream=True, partial_images=1
    )
    assert [e.type for e in stream].count("image_generation.completed") == 2
    a = attrs(instrumented.span())
    assert a[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 2 * 1756 + 100
    assert a[sc.IMAGES_RETURNED] == 2 and a[sc.PARTIAL_IMAGES_RECEIVED] == 1


def test_edit_stream(instrumented: Otel, sim: Simulator) -> None:
    stream = openai_client(sim).images.edit(
        model="gpt-image-2",
        image=[("a.png", png_bytes(), "image/png")],
        prompt=PROMPT,
        size="1024x1024",
        quality="low",
        stream=True,
        partial_images=3,
    )
    assert [e.type for e in stream][-1] == "image_edit.completed"
    a = attrs(instrumented.span())
    assert (a[sc.USAGE_IMAGE_INPUT_TOKENS], a[sc.USAGE_IMAGE_OUTPUT_TOKENS]) == (4354, 196 + 3 * 100)
    assert a[sc.PARTIAL_IMAGES_RECEIVED] == 3 and a[sc.ROUTE] == "images.edit"


async def test_async_generate_and_stream(instrumented: Otel, sim: Simulator) -> None:
    client = openai.AsyncOpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url)
    await client.images.generate(model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="high")
    stream = await client.images.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="medium", stream=True, partial_images=1
    )
    assert len([e async for e in stream]) == 2
    first, second = instrumented.spans()
    assert attrs(first)[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 7024  # 1024x1024 high
    assert attrs(second)[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 1756 + 100
    assert attrs(second)[sc.PARTIAL_IMAGES_RECEIVED] == 1


def test_with_raw_response(instrumented: Otel, sim: Simulator) -> None:
    raw = openai_client(sim).images.with_raw_response.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="medium"
    )
    assert raw.parse().usage.output_tokens == 1756
    a = attrs(instrumented.span())
    assert a[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 1756 and a[sc.REQUEST_ID] == raw.request_id


def test_with_raw_response_stream(instrumented: Otel, sim: Simulator) -> None:
    raw = openai_client(sim).images.with_raw_response.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="medium", stream=True, partial_images=2
    )
    assert instrumented.spans() == []  # the call lasts until the stream is read
    assert len(list(raw.parse())) == 3
    assert attrs(instrumented.span())[sc.PARTIAL_IMAGES_RECEIVED] == 2


def test_with_streaming_response(instrumented: Otel, sim: Simulator) -> None:
    client = openai_client(sim)
    with client.images.with_streaming_response.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="low"
    ) as response:
        assert response.parse().usage.output_tokens == 196
    with client.images.with_streaming_response.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="low", stream=True, partial_images=1
    ) as response:
        assert [e.type for e in response.parse()][-1] == "image_generation.completed"
    plain, streamed = instrumented.spans()
    assert attrs(plain)[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 196
    assert attrs(streamed)[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 196 + 100


async def test_async_with_streaming_response(instrumented: Otel, sim: Simulator) -> None:
    client = openai.AsyncOpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url)
    async with client.images.with_streaming_response.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="low"
    ) as response:
        assert (await response.parse()).usage.output_tokens == 196
    assert attrs(instrumented.span())[sc.USAGE_IMAGE_OUTPUT_TOKENS] == 196


def test_missing_usage_leaves_token_attributes_absent(instrumented: Otel, sim: Simulator) -> None:
    openai_client(sim).images.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", extra_headers={"X-Sim-Fault": "missing_usage"}
    )
    a = attrs(instrumented.span())
    assert a[sc.USAGE_SOURCE] == "missing"
    assert tokens(instrumented.span()) == {}  # absent, not 0
    assert a[sc.STATUS] == "ok" and a[sc.IMAGES_RETURNED] == 1


def test_gateway_route_owner_and_reported_model(instrumented: Otel, gateway_sim: Simulator) -> None:
    openai_client(gateway_sim).images.generate(model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="low")
    a = attrs(instrumented.span())
    assert a[sc.ROUTE_OWNER] == "laozhang.ai"
    assert a[sc.IMAGE_MODEL_REQUESTED] == "gpt-image-2"
    assert a[sc.IMAGE_MODEL_REPORTED] == "gpt-image-2-2026-04-21"


def test_image_store_is_content_addressed(instrumented: Otel, sim: Simulator, image_store: Path) -> None:
    client = openai_client(sim)
    for _ in range(2):  # same prompt, same simulator seed: the same image bytes twice
        client.images.generate(model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="low")
    first, second = (events(s, sc.EVENT_IMAGE)[0] for s in instrumented.spans())
    assert first[sc.IMAGE_SHA256] == second[sc.IMAGE_SHA256]
    sha = first[sc.IMAGE_SHA256]
    stored = [p for p in image_store.rglob("*") if p.is_file()]
    assert stored == [image_store / sha[:2] / f"{sha}.png"]
    assert first[sc.IMAGE_URI] == stored[0].resolve().as_uri()
    assert first[sc.IMAGE_BYTES] == stored[0].stat().st_size
    assert first[sc.IMAGE_FORMAT] == "png"
    assert first[sc.IMAGE_DELETE_AFTER] > "2026"  # now + 30 days, ISO 8601 UTC
    assert not any(p.name.startswith(".tmp-") for p in image_store.rglob("*"))


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_image_store_extension_follows_the_format(instrumented: Otel, sim: Simulator, output_format: str) -> None:
    openai_client(sim).images.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="low", output_format=output_format
    )
    (image,) = events(instrumented.span(), sc.EVENT_IMAGE)
    assert image[sc.IMAGE_URI].endswith({"jpeg": ".jpg", "webp": ".webp"}[output_format])


def test_public_url_and_retention(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, public_url_prefix="https://cdn.example/img/", retention_days=7)
    data = png_bytes()
    before = datetime.now(UTC)
    stored = store.put_b64(base64.b64encode(data).decode(), "png")
    sha = hashlib.sha256(data).hexdigest()
    assert stored.public_url == f"https://cdn.example/img/{sha[:2]}/{sha}.png"
    assert (tmp_path / sha[:2] / f"{sha}.png").read_bytes() == data
    delete_after = datetime.fromisoformat(stored.delete_after or "")
    assert before + timedelta(days=7) - timedelta(seconds=1) <= delete_after <= datetime.now(UTC) + timedelta(days=7)


async def test_async_edit(instrumented: Otel, sim: Simulator) -> None:
    client = openai.AsyncOpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url)
    await client.images.edit(
        model="gpt-image-2", image=[("a.png", png_bytes(), "image/png")], prompt=PROMPT, size="1024x1024", quality="low"
    )
    a = attrs(instrumented.span())
    assert (a[sc.ROUTE], a[sc.USAGE_IMAGE_INPUT_TOKENS], a[sc.USAGE_IMAGE_OUTPUT_TOKENS]) == ("images.edit", 4354, 196)
