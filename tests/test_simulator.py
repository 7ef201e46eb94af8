"""The simulator's routes, driven by the real openai SDK over real HTTP on loopback.

Token expectations are computed by hand from the rules in simulator/tokens.py:
text input = ceil(len(prompt) / 4); gpt-image-2 1024x1024 medium = 1756 output tokens per image (reference §5.7);
+100 output tokens per partial image sent (§3.2); one W×H input image = 65 + 129 × tiles (+4160 square / +6240
otherwise at high fidelity, always for gpt-image-2), tiles counted after scaling the shortest side to 512 px.
"""

from __future__ import annotations

import base64
import io
import re
import socket
import subprocess
import sys

import openai
import pytest
from click.testing import CliRunner
from openai.types import (
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
)
from openai.types.responses import ResponseImageGenCallPartialImageEvent
from openai.types.responses.response_output_item import ImageGenerationCall
from PIL import Image

from ledger.cli import cli
from simulator import Simulator
from tests.fixtures.simulator import openai_client, served_row

PROMPT = "a lighthouse at dawn"  # 20 characters -> 5 text tokens
PROMPT_TOKENS = 5


def decode(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), (10, 20, 30, 0) if mode == "RGBA" else (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_generate_reports_exact_usage_and_effective_settings(sim: Simulator) -> None:
    client = openai_client(sim)
    resp = client.images.generate(model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="medium")

    assert resp.usage is not None
    assert resp.usage.to_dict() == {
        "input_tokens": 5,
        "input_tokens_details": {"text_tokens": 5, "image_tokens": 0},
        "output_tokens": 1756,
        "output_tokens_details": {"image_tokens": 1756, "text_tokens": 0},
        "total_tokens": 5 + 1756,
    }
    assert (resp.size, resp.quality, resp.background, resp.output_format) == ("1024x1024", "medium", "opaque", "png")
    assert resp.data is not None and len(resp.data) == 1
    picture = decode(resp.data[0].b64_json or "")
    assert (picture.format, picture.size) == ("PNG", (32, 32))
    row = served_row(sim, resp._request_id or "")
    assert {k: row[k] for k in ("route", "status_code", "requested_model", "billed_model", "reported_model")} == {
        "route": "images.generate",
        "status_code": 200,
        "requested_model": "gpt-image-2",
        "billed_model": "gpt-image-2",
        "reported_model": None,
    }
    assert (row["text_input_tokens"], row["image_output_tokens"], row["total_tokens"]) == (5, 1756, 1761)
    assert "b64_json" not in str(row) and PROMPT not in str(row)


def test_generate_n2_auto_resolves_to_1024_medium(sim: Simulator) -> None:
    resp = openai_client(sim).images.generate(model="gpt-image-2", prompt=PROMPT, n=2)

    assert (resp.size, resp.quality) == ("1024x1024", "medium")  # documented auto resolution
    assert resp.data is not None and len(resp.data) == 2
    assert resp.usage is not None
    assert (resp.usage.output_tokens, resp.usage.total_tokens) == (2 * 1756, 2 * 1756 + PROMPT_TOKENS)
    assert served_row(sim, resp._request_id or "")["images_returned"] == 2


def test_older_model_uses_official_table_and_jpeg(sim: Simulator) -> None:
    resp = openai_client(sim).images.generate(
        model="gpt-image-1", prompt="x" * 9, size="1536x1024", quality="low", output_format="jpeg"
    )
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (3, 400)  # ceil(9/4) = 3; §5.5 low 1536x1024
    assert decode(resp.data[0].b64_json or "").format == "JPEG"  # type: ignore[index]


def test_transparent_webp_is_rgba(sim: Simulator) -> None:
    resp = openai_client(sim).images.generate(
        model="gpt-image-2", prompt=PROMPT, background="transparent", output_format="webp", quality="low"
    )
    picture = decode(resp.data[0].b64_json or "")  # type: ignore[index]
    assert (resp.background, picture.format, picture.mode) == ("transparent", "WEBP", "RGBA")
    assert resp.usage is not None and resp.usage.output_tokens == 196  # §5.7 low 1024x1024


def test_pictures_are_deterministic_per_seed_and_prompt(sim: Simulator) -> None:
    client = openai_client(sim)
    first, again, other = (
        client.images.generate(model="gpt-image-2", prompt=p).data[0].b64_json  # type: ignore[index]
        for p in (PROMPT, PROMPT, PROMPT + "!")
    )
    assert first == again != other
    with Simulator(seed=7) as seeded:
        assert openai_client(seeded).images.generate(model="gpt-image-2", prompt=PROMPT).data[0].b64_json != first  # type: ignore[index]


def test_edit_two_images_and_mask(sim: Simulator) -> None:
    resp = openai_client(sim).images.edit(
        model="gpt-image-2",
        image=[("a.png", png(32, 32)), ("b.png", png(64, 32))],
        mask=("mask.png", png(32, 32, "RGBA")),
        prompt=PROMPT,
        size="1024x1024",
        quality="medium",
    )
    # gpt-image-2 reads inputs at high fidelity (stand-in rule):
    # 32x32 -> 512x512 -> 1 tile -> 65 + 129 + 4160 (square) = 4354
    # 64x32 -> 1024x512 -> 2 tiles -> 65 + 2*129 + 6240 (not square) = 6563; the mask adds nothing
    image_tokens = 4354 + 6563
    assert resp.usage is not None
    assert resp.usage.input_tokens_details.to_dict() == {"text_tokens": PROMPT_TOKENS, "image_tokens": image_tokens}
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (PROMPT_TOKENS + image_tokens, 1756)
    row = served_row(sim, resp._request_id or "")
    assert (row["route"], row["input_images"], row["image_input_tokens"]) == ("images.edit", 2, 10917)


@pytest.mark.parametrize(("fidelity", "expected"), [(None, 65 + 129), ("high", 65 + 129 + 4160)])
def test_edit_gpt_image_1_low_and_high_fidelity(sim: Simulator, fidelity: str | None, expected: int) -> None:
    extra = {"input_fidelity": fidelity} if fidelity else {}
    resp = openai_client(sim).images.edit(
        model="gpt-image-1", image=("a.png", png(32, 32)), prompt=PROMPT, quality="low", size="1024x1024", **extra
    )
    assert resp.usage is not None
    assert (resp.usage.input_tokens_details.image_tokens, resp.usage.output_tokens) == (expected, 272)


def test_stream_two_partials(sim: Simulator) -> None:
    stream = openai_client(sim).images.generate(
        model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="medium", stream=True, partial_images=2
    )
    events = list(stream)

    assert [type(e) for e in events] == [ImageGenPartialImageEvent, ImageGenPartialImageEvent, ImageGenCompletedEvent]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]  # type: ignore[union-attr]
    completed = events[2]
    assert isinstance(completed, ImageGenCompletedEvent)
    # the smaller stream usage (§2.2): no output_tokens_details; +100 per partial (§3.2)
    assert completed.usage.to_dict() == {
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"text_tokens": PROMPT_TOKENS, "image_tokens": 0},
        "output_tokens": 1756 + 200,
        "total_tokens": PROMPT_TOKENS + 1756 + 200,
    }
    request_id = stream.response.headers["x-request-id"]
    row = served_row(sim, request_id)
    assert (row["stream"], row["partial_images_requested"], row["partial_images_sent"]) == (True, 2, 2)
    assert row["image_output_tokens"] == 1956


def test_stream_edit_n2_usage_adds_up(sim: Simulator) -> None:
    events = list(
        openai_client(sim).images.edit(
            model="gpt-image-2", image=("a.png", png(32, 32)), prompt=PROMPT, n=2, stream=True, partial_images=1
        )
    )
    assert [type(e) for e in events] == [ImageEditPartialImageEvent, ImageEditCompletedEvent, ImageEditCompletedEvent]
    first, second = events[1].usage, events[2].usage  # type: ignore[union-attr]
    # first completed: input (5 text + 4354 image) + its image (1756) + 1 partial (100); second: its image only
    assert (first.input_tokens, first.output_tokens) == (PROMPT_TOKENS + 4354, 1756 + 100)
    assert (second.input_tokens, second.output_tokens) == (0, 1756)


def test_responses_non_stream(sim: Simulator) -> None:
    prompt = "Draw a red bicycle"  # 18 characters -> 5 tokens
    resp = openai_client(sim).responses.create(
        model="gpt-5.5",
        input=[{"role": "user", "content": [{"type": "input_text", "text": prompt}]}],
        tools=[{"type": "image_generation", "model": "gpt-image-2", "quality": "low", "size": "1536x1024"}],
    )
    assert resp.model == "gpt-5.5"
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (5, 30, 35)
    assert resp.usage.input_tokens_details.cached_tokens == 0
    assert resp.tool_usage is not None
    image_gen = resp.tool_usage.image_gen
    assert (image_gen.input_tokens, image_gen.output_tokens, image_gen.total_tokens) == (5, 158, 163)  # §5.7 low
    assert image_gen.output_tokens_details is not None and image_gen.output_tokens_details.image_tokens == 158
    assert resp.tool_usage.web_search.num_requests == 0
    (item,) = resp.output
    assert isinstance(item, ImageGenerationCall)
    assert (item.size, item.quality, item.status) == ("1536x1024", "low", "completed")
    assert decode(item.result or "").size == (32, 32)
    row = served_row(sim, resp._request_id or "")
    assert (row["route"], row["mainline_model"], row["mainline_input_tokens"]) == ("responses", "gpt-5.5", 5)


def test_responses_default_tool_model(sim: Simulator) -> None:
    resp = openai_client(sim).responses.create(model="gpt-5.5", input="a cat", tools=[{"type": "image_generation"}])
    assert resp.tools[0].model == "gpt-image-2.6-sunburst"  # type: ignore[union-attr]
    assert served_row(sim, resp._request_id or "")["requested_model"] == "gpt-image-2.6-sunburst"


def test_responses_stream_event_order(sim: Simulator) -> None:
    stream = openai_client(sim).responses.create(
        model="gpt-5.5",
        input="a cat",
        stream=True,
        tools=[{"type": "image_generation", "model": "gpt-image-2", "partial_images": 2}],
    )
    events = list(stream)
    call = "response.image_generation_call"
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        f"{call}.in_progress",
        f"{call}.generating",
        f"{call}.partial_image",
        f"{call}.partial_image",
        f"{call}.completed",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(10))
    partials = [e for e in events if isinstance(e, ResponseImageGenCallPartialImageEvent)]
    assert [decode(p.partial_image_b64).size for p in partials] == [(32, 32), (32, 32)]
    final = events[-1].response  # type: ignore[union-attr]
    assert final.tool_usage is not None
    assert final.tool_usage.image_gen.output_tokens == 1756 + 200  # auto -> 1024x1024 medium, + 2 partials
    assert events[0].response.usage is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("model", "size", "rule"),
    [("gpt-image-2", "1000x1000", "multiples of 16"), ("gpt-image-1", "2048x2048", "accepts only")],
)
def test_invalid_size_is_400_param_size(sim: Simulator, model: str, size: str, rule: str) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        openai_client(sim).images.generate(model=model, prompt=PROMPT, size=size)  # type: ignore[arg-type]
    assert (err.value.param, err.value.type, err.value.status_code) == ("size", "invalid_request_error", 400)
    assert rule in err.value.message


def test_unknown_model_is_404(sim: Simulator) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        openai_client(sim).images.generate(model="dall-e-9", prompt=PROMPT)
    assert err.value.code == "model_not_found"


def test_request_ids_are_unique_and_recorded(sim: Simulator) -> None:
    client = openai_client(sim)
    ids = [client.images.generate(model="gpt-image-2", prompt=PROMPT, quality="low")._request_id for _ in range(5)]
    assert all(re.fullmatch(r"req_[0-9a-f]{32}", i or "") for i in ids)
    assert len(set(ids)) == 5
    assert {r["request_id"] for r in sim.served} >= set(ids)


def test_gateway_reports_mapped_model(gateway_sim: Simulator) -> None:
    raw = openai_client(gateway_sim).images.with_raw_response.generate(model="gpt-image-2", prompt=PROMPT)
    resp = raw.parse()
    assert raw.headers["x-gateway"] == "laozhang.ai"
    assert resp.model_extra == {"model": "gpt-image-2-2026-04-21"}  # extra top-level field, kept by the SDK
    assert resp.usage is not None and resp.usage.output_tokens == 1756
    row = served_row(gateway_sim, raw.request_id or "")
    assert (row["route_owner"], row["requested_model"], row["reported_model"]) == (
        "laozhang.ai",
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
    )


def test_gateway_missing_usage_everywhere() -> None:
    with Simulator(personality="gateway", gateway_name="acme", missing_usage=True) as gw:
        client = openai_client(gw)
        assert client.images.generate(model="gpt-image-2", prompt=PROMPT).usage is None
        *_, completed = client.images.generate(model="gpt-image-2", prompt=PROMPT, stream=True)
        assert completed.usage is None  # lenient parsing: the missing "required" field comes back as None
        resp = client.responses.create(model="gpt-5.5", input="x", tools=[{"type": "image_generation"}])
        assert (resp.usage, resp.tool_usage) == (None, None)
        assert [(r["usage_reported"], r["image_output_tokens"]) for r in gw.served] == [(False, 1756)] * 3


def test_cli_prints_base_url_and_serves() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ledger.cli import main; main()",
            "simulate",
            "--port",
            "0",
            "--personality",
            "gateway",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = (proc.stdout.readline() if proc.stdout else "").strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
        client = openai.OpenAI(api_key="sk-test-not-a-real-key", base_url=base_url)
        raw = client.images.with_raw_response.generate(model="gpt-image-2", prompt=PROMPT)
        assert raw.headers["x-gateway"] == "laozhang.ai"
    finally:
        proc.send_signal(2)  # Ctrl-C
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "stopped after 1 requests" in err


def test_cli_rejects_bad_arguments_in_one_line() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["simulate", "--port", "0", "--fault", "x=nope"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: fault plan entry 'x': unknown fault 'nope'; use one of rate_limit, ")
    result = runner.invoke(cli, ["simulate", "--model-map", "gpt-image-2"])
    assert (result.exit_code, result.output) == (1, "Error: --model-map 'gpt-image-2' must look like KEY=VALUE\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["simulate", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "pick another --port" in result.output
