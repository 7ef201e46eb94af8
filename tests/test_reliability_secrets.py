"""Secrets: after a realistic session, no API key, image base64 or prompt text anywhere imagecost writes.

One scenario per test session: the real SDK, instrumented (prompt capture off), against a simulator of its
own, with a distinctive key ``sk-secret-<random>``, prompts carrying ``PROMPT-MARKER-<random>``, input
images with known base64, on every route — streams, retries, failures included —, then `imagecost -v
ingest` into a ledger. Scanned afterwards:

- the spool: every file under it (sealed files, done/, rejected/, the salt file);
- the ledger: every text (varchar / json) column of every table;
- the image store: every file name, and the content of every file that is not an image;
- logs: every record of imagecost's own loggers at DEBUG (collector, ledger, simulator, the `imagecost.*`
  loggers), a log file written by the same handlers, and the CLI's output. The openai / httpx2 loggers are
  left out: at DEBUG the SDK logs request bodies by design, which is the app's own choice, not imagecost's.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import random
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner
from opentelemetry.sdk.trace import TracerProvider
from PIL import Image

import collector
from collector.telemetry import flush
from ledger.cli import cli
from ledger.db import connect
from simulator import Simulator
from tests.fixtures.reliability import ledger_rows

OUR_LOGGERS = ("collector", "imagecost", "ledger", "simulator", "dashboard", "uvicorn")
LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")
TOOL = {"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low"}


@dataclass
class Scenario:
    api_key: str
    marker: str
    calls: int
    base64_seen: list[str]  # every image payload the app sent or received
    spool: Path
    ledger: Path
    store: Path
    log_file: Path
    records: list[logging.LogRecord]
    cli_output: str


def noise_png(seed: int) -> bytes:
    """A 48x48 PNG of random pixels: its base64 is long and matches nothing else."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (48, 48), bytes(rng.randrange(256) for _ in range(48 * 48 * 3)))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def make_calls(client: openai.OpenAI, marker: str, inputs: list[bytes]) -> tuple[int, list[str]]:
    """Every route, streams, retries and failures; returns (calls made, base64 the app received)."""
    seen: list[str] = []
    args: dict[str, Any] = {"model": "gpt-image-2", "prompt": f"{marker} a lighthouse", "size": "1024x1024"}
    images = [(f"in{i}.png", data, "image/png") for i, data in enumerate(inputs)]
    calls = 0

    def fails(**headers: str) -> dict[str, Any]:
        return {"extra_headers": headers}

    seen += [d.b64_json for d in client.images.generate(**args, quality="low").data]
    seen += [e.b64_json for e in client.images.generate(**args, quality="low", stream=True, partial_images=2)]
    seen += [
        d.b64_json
        for d in client.images.generate(**args, quality="low", **fails(**{"X-Sim-Fault": "rate_limit:1:5"})).data
    ]
    seen += [d.b64_json for d in client.images.edit(image=images, mask=images[0], **args).data]
    seen += [e.b64_json for e in client.images.edit(image=images[1], stream=True, partial_images=1, **args)]
    response = client.responses.create(model="gpt-5.4", input=f"{marker} a poster", tools=[TOOL])
    seen += [o.result for o in response.output if o.type == "image_generation_call"]
    with client.responses.stream(model="gpt-5.4", input=f"{marker} a mug", tools=[{**TOOL, "partial_images": 1}]) as s:
        seen += [e.partial_image_b64 for e in s if e.type == "response.image_generation_call.partial_image"]
    calls += 7
    for fault in ("moderation_input", "moderation_output", "auth", "content_policy", "server_error:5"):
        with pytest.raises(openai.APIStatusError):
            client.with_options(max_retries=1).images.generate(**args, **fails(**{"X-Sim-Fault": fault}))
        calls += 1
    with pytest.raises(openai.APIError):
        for event in client.images.generate(
            **args, stream=True, partial_images=2, **fails(**{"X-Sim-Fault": "stream_error"})
        ):
            seen.append(event.b64_json)
    calls += 1
    return calls, [b for b in seen if b]


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("secrets")
    api_key, marker = f"sk-secret-{secrets.token_hex(16)}", f"PROMPT-MARKER-{secrets.token_hex(8)}"
    spool, ledger, store, log_file = root / "spool", root / "ledger.duckdb", root / "images", root / "imagecost.log"
    keep, to_file = Keep(), logging.FileHandler(log_file)
    to_file.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in OUR_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(keep)
        lg.addHandler(to_file)
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("IMAGECOST_")}
    inputs = [noise_png(seed) for seed in (1, 2)]
    provider = TracerProvider()
    try:
        with Simulator(personality="openai", port=0) as sim:
            collector.instrument(
                routes={sim.host_port: "openai"}, spool=spool, image_store=store, tracer_provider=provider
            )
            try:
                calls, received = make_calls(openai.OpenAI(api_key=api_key, base_url=sim.base_url), marker, inputs)
                flush()
            finally:
                collector.uninstrument()
                provider.shutdown()
        result = CliRunner().invoke(cli, ["-v", "ingest", "--spool", str(spool), "--ledger", str(ledger)])
        assert result.exit_code == 0, result.output
        sent = [base64.b64encode(data).decode() for data in inputs]
        yield Scenario(
            api_key, marker, calls, sent + received, spool, ledger, store, log_file, keep.records, result.output
        )
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(keep)
            lg.removeHandler(to_file)
            lg.setLevel(level)
        to_file.close()
        os.environ.update(saved)


def spool_text(s: Scenario) -> str:
    return "\n".join(p.read_bytes().decode(errors="replace") for p in sorted(s.spool.rglob("*")) if p.is_file())


def ledger_text(s: Scenario) -> str:
    con = connect(s.ledger, read_only=True)
    try:
        columns = con.sql(
            "select table_name, column_name from information_schema.columns c join information_schema.tables t "
            "using (table_schema, table_name) where t.table_type = 'BASE TABLE' and c.data_type in ('VARCHAR', 'JSON')"
        ).fetchall()
        parts = [f"{len(columns)} text columns"]
        for table, column in columns:
            rows = con.sql(f'select "{column}"::varchar from "{table}" where "{column}" is not null').fetchall()
            parts += [row[0] for row in rows]
    finally:
        con.close()
    return "\n".join(parts)


def store_text(s: Scenario) -> str:
    files = [p for p in sorted(s.store.rglob("*")) if p.is_file()]
    names = [str(p.relative_to(s.store)) for p in files]
    sidecars = [p.read_bytes().decode(errors="replace") for p in files if p.suffix not in (".png", ".jpg", ".webp")]
    return "\n".join(names + sidecars)


def log_text(s: Scenario) -> str:
    formatter = logging.Formatter()
    records = [formatter.format(r) for r in s.records]
    return "\n".join([*records, s.log_file.read_text(), s.cli_output])


PLACES = {"spool": spool_text, "ledger": ledger_text, "image store": store_text, "logs": log_text}


@pytest.fixture(scope="session")
def texts(scenario: Scenario) -> dict[str, str]:
    """Everything each place holds, as text (read once)."""
    return {place: read(scenario) for place, read in PLACES.items()}


def test_the_scenario_really_recorded_everything(scenario: Scenario, texts: dict[str, str]) -> None:
    """The scans below are not vacuous: everything was written where it is scanned."""
    assert ledger_rows(scenario.ledger, "select count(*) as n from calls") == [{"n": scenario.calls}]
    stored = {p.stem for p in scenario.store.rglob("*.png")}  # content-addressed: one file per distinct image
    assert stored == {r["sha256"] for r in ledger_rows(scenario.ledger, "select sha256 from images")} != set()
    assert "generate_content gpt-image-2" in texts["spool"]
    assert "images.generate" in texts["ledger"] and "moderation_blocked" in texts["ledger"]
    assert "ingested" in texts["logs"] and len(scenario.base64_seen) >= 12


@pytest.mark.parametrize("place", sorted(PLACES))
def test_no_api_key(scenario: Scenario, texts: dict[str, str], place: str) -> None:
    text = texts[place]
    assert scenario.api_key not in text
    assert scenario.api_key[-12:] not in text  # not even the tail an error message might quote


@pytest.mark.parametrize("place", sorted(PLACES))
def test_no_image_base64(scenario: Scenario, texts: dict[str, str], place: str) -> None:
    text = texts[place]
    assert [b[:64] for b in scenario.base64_seen if b[:64] in text] == []
    assert LONG_BASE64.findall(text) == []


@pytest.mark.parametrize("place", sorted(PLACES))
def test_no_prompt_text(scenario: Scenario, texts: dict[str, str], place: str) -> None:
    assert scenario.marker not in texts[place]
