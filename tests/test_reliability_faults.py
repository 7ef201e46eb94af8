"""The simulator failing in every way the reference lists, under concurrency: every attempt recorded and
classified, nothing lost, and the app sees exactly what the SDK does without the collector.

Every case of `CASES` runs twice at once — from 8 threads (OpenAI) and as asyncio tasks (AsyncOpenAI) —
against one fresh simulator, instrumented, spooled and ingested. Then:
- per call: the outcome the app saw (result or exception class, status, error code, request id, image
  hashes, tokens) against the ledger's calls / attempts / images rows and the case's expected SDK behaviour;
- overall: every HTTP request the simulator served is one ledger attempt (same count, same request ids and
  status codes where a response was produced);
- the same cases without instrumentation give the app the same outcomes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from PIL import Image

import collector
from collector.telemetry import flush
from ledger.ingest import ingest_paths
from simulator import Simulator
from tests.fixtures.reliability import ledger_rows
from tests.fixtures.simulator import FAKE_API_KEY, served_since

TOOL = {"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024", "quality": "low"}


@dataclass(frozen=True)
class Case:
    name: str
    route: str  # generate | edit | responses
    fault: str | None = None
    stream: bool = False
    model: str = "gpt-image-2"
    size: str = "1024x1024"
    max_retries: int = 2
    timeout: float = 10.0
    # What the SDK does (the app's outcome) and what the ledger must say about it:
    exc: str | None = None  # exception class the app gets; None = a result
    error_type: str | None = None  # calls.error_type: the error code, else the exception class
    retry_reason: str | None = None
    attempts: tuple[int | None, ...] = (200,)  # status code per HTTP attempt; None = no response


CASES = (
    Case("ok", "generate"),
    Case("ok_stream", "generate", stream=True),
    Case("rate_limit_then_ok", "generate", "rate_limit:2:10", retry_reason="rate_limit", attempts=(429, 429, 200)),
    Case(
        "rate_limit_exhausted",
        "generate",
        "rate_limit:5:10",
        exc="RateLimitError",
        error_type="rate_limit_exceeded",
        retry_reason="rate_limit",
        attempts=(429, 429, 429),
    ),
    Case(
        "billing",
        "generate",
        "billing:5",
        max_retries=1,
        exc="RateLimitError",
        error_type="insufficient_quota",
        retry_reason="billing_limit",
        attempts=(429, 429),
    ),
    Case(
        "billing_no_retry",  # what the reference advises for billing 429s: max_retries=0 (§9)
        "generate",
        "billing:5:credit_balance_exhausted",
        max_retries=0,
        exc="RateLimitError",
        error_type="credit_balance_exhausted",
        retry_reason="billing_limit",
        attempts=(429,),
    ),
    Case(
        "unknown_model",
        "generate",
        model="gpt-image-nope",
        exc="NotFoundError",
        error_type="model_not_found",
        retry_reason="validation",
        attempts=(404,),
    ),
    Case("server_error_then_ok", "generate", "server_error:1", retry_reason="provider_5xx", attempts=(500, 200)),
    Case(
        "unavailable",
        "generate",
        "unavailable:5",
        max_retries=1,
        exc="InternalServerError",
        error_type="service_unavailable",
        retry_reason="provider_5xx",
        attempts=(503, 503),
    ),
    Case("timeout_then_ok", "generate", "timeout:1:3", timeout=0.5, retry_reason="timeout", attempts=(None, 200)),
    Case(
        "timeout",
        "generate",
        "timeout:5:3",
        max_retries=1,
        timeout=0.5,
        exc="APITimeoutError",
        error_type="APITimeoutError",
        retry_reason="timeout",
        attempts=(None, None),
    ),
    Case(
        "moderation_input",
        "generate",
        "moderation_input",
        exc="BadRequestError",
        error_type="moderation_blocked",
        retry_reason="policy",
        attempts=(400,),
    ),
    Case(
        "moderation_output",
        "generate",
        "moderation_output",
        exc="BadRequestError",
        error_type="moderation_blocked",
        retry_reason="policy",
        attempts=(400,),
    ),
    Case(
        "content_policy",
        "edit",
        "content_policy",
        exc="BadRequestError",
        error_type="content_policy_violation",
        retry_reason="policy",
        attempts=(400,),
    ),
    Case(
        "invalid_size_fault",
        "generate",
        "invalid_size",
        exc="BadRequestError",
        error_type="invalid_value",
        retry_reason="size_error",
        attempts=(400,),
    ),
    Case(
        "invalid_size_real",  # gpt-image-2 edges must be multiples of 16 (reference §7.1)
        "generate",
        size="1000x1000",
        exc="BadRequestError",
        error_type="invalid_value",
        retry_reason="size_error",
        attempts=(400,),
    ),
    Case(
        "auth",
        "generate",
        "auth",
        exc="AuthenticationError",
        error_type="invalid_api_key",
        retry_reason="auth",
        attempts=(401,),
    ),
    Case(
        "stream_error",
        "generate",
        "stream_error",
        stream=True,
        exc="APIError",
        error_type="server_error",
        retry_reason="stream_interrupted",
        attempts=(200,),
    ),
    Case("missing_usage", "generate", "missing_usage"),
    Case("disconnect_then_ok", "generate", "disconnect:1", retry_reason="connection", attempts=(None, 200)),
    Case(
        "disconnect",
        "generate",
        "disconnect:5",
        max_retries=1,
        exc="APIConnectionError",
        error_type="APIConnectionError",
        retry_reason="connection",
        attempts=(None, None),
    ),
    Case("edit_rate_limit_then_ok", "edit", "rate_limit:1:10", retry_reason="rate_limit", attempts=(429, 200)),
    Case("edit_stream", "edit", stream=True),
    Case(
        "responses_server_error_then_ok",
        "responses",
        "server_error:1",
        retry_reason="provider_5xx",
        attempts=(500, 200),
    ),
    Case(
        "responses_stream_error",
        "responses",
        "stream_error",
        stream=True,
        exc="APIError",
        error_type="server_error",
        retry_reason="stream_interrupted",
        attempts=(200,),
    ),
)


@dataclass(frozen=True)
class Outcome:
    """What the app saw."""

    case: str
    exc: str | None
    status: int | None
    code: str | None
    request_id: str | None
    image_sha256: tuple[str, ...]
    image_output_tokens: int | None

    def sdk_behaviour(self) -> tuple[Any, ...]:
        """The parts that do not change from run to run (request ids and image bytes do)."""
        return (self.exc, self.status, self.code, len(self.image_sha256), self.image_output_tokens)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 24), (250, 200, 0)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()


def sha(b64: str) -> str:
    return hashlib.sha256(base64.b64decode(b64)).hexdigest()


def request_kwargs(case: Case) -> dict[str, Any]:
    headers = {"X-Sim-Fault": case.fault} if case.fault else {}
    prompt = f"a tidy workshop, case {case.name}"
    if case.route == "responses":
        tool = {**TOOL, "partial_images": 1} if case.stream else TOOL
        return {"model": "gpt-5.4", "input": prompt, "tools": [tool], "stream": case.stream, "extra_headers": headers}
    kwargs: dict[str, Any] = {"model": case.model, "prompt": prompt, "size": case.size, "quality": "low"}
    if case.stream:
        kwargs.update(stream=True, partial_images=2)
    if case.route == "edit":
        kwargs["image"] = ("in.png", PNG, "image/png")
    return {**kwargs, "extra_headers": headers}


def method(client: Any, case: Case) -> Any:
    return {"generate": client.images.generate, "edit": client.images.edit, "responses": client.responses.create}[
        case.route
    ]


def finals(case: Case, items: list[Any]) -> tuple[tuple[str, ...], int | None]:
    """(sha256 of the final images, image output tokens) from a result or the stream's events."""
    if case.route == "responses":
        done = [e.response for e in items if e.type == "response.completed"] if case.stream else items
        images = [o.result for r in done for o in r.output if o.type == "image_generation_call"]
        usage = [r.tool_usage.image_gen.output_tokens for r in done if r.tool_usage and r.tool_usage.image_gen]
    elif case.stream:
        completed = [e for e in items if e.type.endswith(".completed")]
        images = [e.b64_json for e in completed]
        usage = [e.usage.output_tokens for e in completed if e.usage]
    else:
        images = [d.b64_json for r in items for d in r.data]
        usage = [r.usage.output_tokens for r in items if r.usage]
    return tuple(sha(i) for i in images), (usage[0] if usage else None)


def outcome(case: Case, request_id: str | None, items: list[Any], exc: Exception | None) -> Outcome:
    shas, tokens = finals(case, items) if exc is None else ((), None)
    return Outcome(
        case=case.name,
        exc=type(exc).__name__ if exc is not None else None,
        status=getattr(exc, "status_code", None),
        code=getattr(exc, "code", None),
        request_id=getattr(exc, "request_id", None) or request_id,
        image_sha256=shas,
        image_output_tokens=tokens,
    )


def run_sync(client: openai.OpenAI, case: Case, tag: str) -> Outcome:
    items: list[Any] = []
    request_id = None
    with collector.tags(case=case.name, run=tag):
        try:
            c = client.with_options(max_retries=case.max_retries, timeout=case.timeout)
            result = method(c, case)(**request_kwargs(case))
            if case.stream:
                request_id = result.response.headers.get("x-request-id")
                items.extend(result)
            else:
                request_id, items = result._request_id, [result]
        except openai.APIError as exc:
            return outcome(case, request_id, items, exc)
    return outcome(case, request_id, items, None)


async def run_async(client: openai.AsyncOpenAI, case: Case, tag: str) -> Outcome:
    items: list[Any] = []
    request_id = None
    with collector.tags(case=case.name, run=tag):
        try:
            c = client.with_options(max_retries=case.max_retries, timeout=case.timeout)
            result = await method(c, case)(**request_kwargs(case))
            if case.stream:
                request_id = result.response.headers.get("x-request-id")
                items.extend([event async for event in result])
            else:
                request_id, items = result._request_id, [result]
        except openai.APIError as exc:
            return outcome(case, request_id, items, exc)
    return outcome(case, request_id, items, None)


def run_all(sim: Simulator) -> dict[tuple[str, str], Outcome]:
    """Every case from 8 threads ("sync") while the same cases run as asyncio tasks ("async")."""
    client = openai.OpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url)
    outcomes: dict[tuple[str, str], Outcome] = {}

    async def tasks() -> list[Outcome]:
        async with openai.AsyncOpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url) as aclient:
            return await asyncio.gather(*(run_async(aclient, case, "async") for case in CASES))

    async_results: list[Outcome] = []
    loop_thread = threading.Thread(target=lambda: async_results.extend(asyncio.run(tasks())))
    loop_thread.start()
    with ThreadPoolExecutor(8) as pool:
        sync_results = list(pool.map(lambda case: run_sync(client, case, "sync"), CASES))
    loop_thread.join(timeout=120)
    for tag, results in (("sync", sync_results), ("async", async_results)):
        outcomes.update({(o.case, tag): o for o in results})
    return outcomes


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    """A simulator of our own: its served log holds exactly this test's requests."""
    with Simulator(personality="openai", port=0, latency_scale=0.0) as server:
        yield server


def test_every_failure_is_recorded_classified_and_the_app_sees_the_sdk(
    fresh_sim: Simulator, tmp_path: Path, clean_env: None
) -> None:
    with Simulator(personality="openai", port=0, latency_scale=0.0) as plain_sim:
        plain = run_all(plain_sim)  # without the collector: the SDK's own behaviour
    provider = TracerProvider()
    collector.instrument(
        routes={fresh_sim.host_port: "openai"},
        spool=tmp_path / "spool",
        image_store=tmp_path / "images",
        tracer_provider=provider,
    )
    try:
        seen = run_all(fresh_sim)
        flush()
    finally:
        collector.uninstrument()
        provider.shutdown()
    assert {k: o.sdk_behaviour() for k, o in seen.items()} == {k: o.sdk_behaviour() for k, o in plain.items()}
    assert {(o.case, o.exc) for o in seen.values()} == {(c.name, c.exc) for c in CASES}

    ledger = tmp_path / "ledger.duckdb"
    result = ingest_paths(ledger, [tmp_path / "spool"])
    assert (result.calls_added, result.lines_rejected) == (2 * len(CASES), 0)
    calls = {
        (r["case_"], r["run"]): r
        for r in ledger_rows(
            ledger,
            "select call_id, tags->>'case' as case_, tags->>'run' as run, status, error_type, retry_reason, "
            "attempt_count, request_id, image_output_tokens from calls",
        )
    }
    attempts = ledger_rows(ledger, "select call_id, status_code, request_id from attempts order by attempt_number")
    images = ledger_rows(ledger, "select call_id, sha256 from images order by image_index")
    by_name = {case.name: case for case in CASES}
    assert set(calls) == set(seen)  # one ledger call per app call, nothing lost or doubled
    for key, app in seen.items():
        case, row = by_name[key[0]], calls[key]
        assert (row["status"], row["error_type"], row["retry_reason"]) == (
            "ok" if case.exc is None else "error",
            case.error_type,
            case.retry_reason,
        ), key
        assert row["error_type"] == (app.code or app.exc)  # the code the app got, else its exception class
        assert row["request_id"] == app.request_id, key
        assert row["image_output_tokens"] == app.image_output_tokens, key
        mine = [a for a in attempts if a["call_id"] == row["call_id"]]
        assert (row["attempt_count"], tuple(a["status_code"] for a in mine)) == (len(case.attempts), case.attempts)
        assert tuple(i["sha256"] for i in images if i["call_id"] == row["call_id"]) == app.image_sha256, key

    # Every HTTP request the simulator saw is one attempt in the ledger.
    served = served_since(fresh_sim, 0, len(attempts))
    assert len(served) == len(attempts) == 2 * sum(len(c.attempts) for c in CASES)
    answered = [s for s in served if s["status_code"] is not None]
    assert Counter((s["request_id"], s["status_code"]) for s in answered) == Counter(
        (a["request_id"], a["status_code"]) for a in attempts if a["status_code"] is not None
    )
