"""The API key, image base64 and (unless opted in) the prompt reach no span, event, metric, spool line or log."""

from __future__ import annotations

import hashlib
import io
import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import collector
from collector import semconv as sc
from collector.telemetry import flush
from simulator import Simulator
from tests.fixtures.collector import TEST_SALT, Otel, attrs
from tests.fixtures.simulator import FAKE_API_KEY, openai_client

PROMPT = "a secret product launch poster for project nightingale"
TOOL = {"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low", "partial_images": 1}


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def make_calls(sim: Simulator) -> list[str]:
    """Calls on every route; returns the base64 payloads the caller received."""
    client = openai_client(sim)
    args: dict[str, Any] = {"model": "gpt-image-2", "prompt": PROMPT, "size": "1024x1024", "quality": "low"}
    payloads = [d.b64_json for d in client.images.generate(**args).data]
    payloads += [e.b64_json for e in client.images.generate(**args, stream=True, partial_images=2)]
    payloads += [d.b64_json for d in client.images.edit(image=("in.png", png(), "image/png"), **args).data]
    with client.responses.stream(model="gpt-5.4", input=PROMPT, tools=[TOOL]) as stream:
        for event in stream:
            if event.type == "response.image_generation_call.partial_image":
                payloads.append(event.partial_image_b64)
        payloads += [item.result for item in stream.get_final_response().output if item.type == "image_generation_call"]
    with pytest.raises(Exception):  # noqa: B017 - any error: the point is what gets recorded
        client.images.generate(**args, extra_headers={"X-Sim-Fault": "moderation_input"})
    return [p for p in payloads if p]


def recorded_text(otel: Otel, spool: Path, caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for span in otel.spans():
        parts += [span.name, repr(attrs(span))] + [repr(dict(e.attributes or {})) for e in span.events]
    parts += [
        repr(p.attributes)
        for name in (sc.METRIC_OPERATION_DURATION, sc.METRIC_TOKEN_USAGE)
        for p in otel.metric_points(name)
    ]
    parts += [p.read_text() for p in spool.glob("*.jsonl*")]
    parts += [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    return "\n".join(parts)


def test_no_key_no_base64_no_prompt_anywhere(
    otel: Otel, sim: Simulator, tmp_path: Path, clean_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="imagecost")
    spool = tmp_path / "spool"
    collector.instrument(
        tracer_provider=otel.tracer_provider,
        meter_provider=otel.meter_provider,
        spool=spool,
        image_store=tmp_path / "i",
    )
    try:
        payloads = make_calls(sim)
    finally:
        collector.uninstrument()
    flush()
    assert len(otel.spans()) == 5 and len(payloads) >= 6
    text = recorded_text(otel, spool, caplog)
    assert "generate_content gpt-image-2" in text  # the spool really holds the spans
    assert FAKE_API_KEY not in text
    assert PROMPT not in text
    for payload in payloads:
        assert payload[:64] not in text
    expected_hash = hashlib.sha256(f"{TEST_SALT}\x00{PROMPT}".encode()).hexdigest()
    assert {attrs(s)[sc.PROMPT_HASH] for s in otel.spans()} == {expected_hash}
    assert {attrs(s)[sc.PROMPT_LENGTH] for s in otel.spans()} == {len(PROMPT)}


def test_capture_prompt_opt_in(otel: Otel, sim: Simulator, clean_env: None) -> None:
    collector.instrument(tracer_provider=otel.tracer_provider, capture_prompt=True)
    try:
        openai_client(sim).images.generate(model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="low")
    finally:
        collector.uninstrument()
    assert attrs(otel.span())[sc.PROMPT_TEXT] == PROMPT


def test_per_install_salt_file(
    otel: Otel, sim: Simulator, tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGECOST_PROMPT_SALT")
    spool = tmp_path / "spool"
    hashes = []
    for _ in range(2):  # the second instrument() reads the salt the first one created
        collector.instrument(tracer_provider=otel.tracer_provider, spool=spool)
        try:
            openai_client(sim).images.generate(model="gpt-image-2", prompt=PROMPT, size="1024x1024", quality="low")
        finally:
            collector.uninstrument()
    salt_file = spool / ".prompt_salt"
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    salt = salt_file.read_text()
    assert len(salt) == 64
    hashes = {attrs(s)[sc.PROMPT_HASH] for s in otel.spans()}
    assert hashes == {hashlib.sha256(f"{salt}\x00{PROMPT}".encode()).hexdigest()}
