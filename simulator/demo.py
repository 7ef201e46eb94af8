"""The demo traffic: realistic image calls through the instrumented real openai SDK.

Two simulators stand in for OpenAI and for a per-call gateway (laozhang.ai). Traffic is a weighted
mix of scenarios (generate, edit, streamed partials, Responses with the image tool, the gateway
route, and one fault of every retry cause), spread over the last 30 days: each request runs under
a demo parent span whose trace id maps to a day offset, and :class:`BackdatingExporter` shifts the
collector's spans by that offset before they reach the spool. Only the recorded times move; the
calls themselves are real HTTP calls made now.
"""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

DEMO_SCOPE = "imagecost.demo"
DAY_NS = 86_400 * 10**9
API_KEY = "sk-demo-not-a-real-key"
FEATURES = ("hero", "thumbnails", "assistant")
TEAMS = {"hero": "growth", "thumbnails": "catalog", "assistant": "support"}
SIZES = ("1024x1024", "1024x1024", "1536x1024", "1024x1536", "2048x2048", "2048x1152", "3840x2160", "auto")
QUALITIES = ("low", "medium", "medium", "high", "auto")


class BackdatingExporter(SpanExporter):
    """Shifts spans of traces registered with :meth:`shift` back in time; drops the demo's own spans."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._offsets: dict[int, int] = {}
        self._lock = threading.Lock()

    def shift(self, trace_id: int, offset_ns: int) -> None:
        with self._lock:
            self._offsets[trace_id] = offset_ns

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        out = []
        for span in spans:
            if span.instrumentation_scope is not None and span.instrumentation_scope.name == DEMO_SCOPE:
                continue
            with self._lock:
                offset = self._offsets.get(span.context.trace_id, 0) if span.context else 0
            out.append(_shifted(span, offset) if offset else span)
        return self._inner.export(out) if out else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _shifted(span: ReadableSpan, offset: int) -> ReadableSpan:
    events = [Event(e.name, e.attributes, e.timestamp - offset) for e in span.events]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=(span.start_time or 0) - offset,
        end_time=(span.end_time or 0) - offset,
        instrumentation_scope=span.instrumentation_scope,
    )


@dataclass
class Clients:
    """The SDK clients the scenarios use: OpenAI route and gateway route."""

    openai: openai.OpenAI
    gateway: openai.OpenAI


def _png(rng: random.Random, size: int = 64, *, alpha: bool = False) -> bytes:
    from PIL import Image

    mode = "RGBA" if alpha else "RGB"
    color = tuple(rng.randrange(256) for _ in range(4 if alpha else 3))
    buf = io.BytesIO()
    Image.new(mode, (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def _image_args(rng: random.Random) -> dict[str, object]:
    return {"size": rng.choice(SIZES), "quality": rng.choice(QUALITIES)}


def generate(c: Clients, rng: random.Random) -> None:
    c.openai.images.generate(
        model="gpt-image-2", prompt="a product photo of a desk lamp", n=rng.choice((1, 1, 1, 2, 4)), **_image_args(rng)
    )


def generate_legacy(c: Clients, rng: random.Random) -> None:
    c.openai.images.generate(
        model="gpt-image-1.5",
        prompt="a watercolor fox",
        size=rng.choice(("1024x1024", "1536x1024")),
        quality=rng.choice(("low", "medium", "high")),
    )


def generate_stream(c: Clients, rng: random.Random) -> None:
    stream = c.openai.images.generate(
        model="gpt-image-2",
        prompt="a mountain cabin at dawn",
        stream=True,
        partial_images=rng.choice((1, 2, 3)),
        size=rng.choice(("1024x1024", "1536x1024")),
        quality=rng.choice(("low", "medium", "high")),
    )
    for _ in stream:
        pass


def edit(c: Clients, rng: random.Random) -> None:
    images = [("in.png", _png(rng), "image/png") for _ in range(rng.choice((1, 2, 3)))]
    mask = ("mask.png", _png(rng, alpha=True), "image/png") if rng.random() < 0.3 else None
    kwargs: dict[str, object] = {"mask": mask} if mask else {}
    c.openai.images.edit(
        model="gpt-image-2",
        image=images,
        prompt="replace the background with a studio wall",
        size="1024x1024",
        quality=rng.choice(("low", "medium")),
        **kwargs,
    )


def responses(c: Clients, rng: random.Random) -> None:
    tool: dict[str, object] = {"type": "image_generation", "size": "1024x1024", "quality": "medium"}
    if rng.random() < 0.8:  # some apps leave the tool model unset: the collector records the default
        tool["model"] = "gpt-image-2"
    if rng.random() < 0.5:
        tool["partial_images"] = 1
        with c.openai.responses.stream(model="gpt-5.4", input="Draw a hero image", tools=[tool]) as stream:
            for _ in stream:
                pass
    else:
        c.openai.responses.create(model="gpt-5.4", input="Draw a hero image and explain it", tools=[tool])


def gateway(c: Clients, rng: random.Random) -> None:
    c.gateway.images.generate(model="gpt-image-2", prompt="a cat astronaut", **_image_args(rng))


def _fault(spec: str, *, client: str = "openai", timeout: float | None = None, size: str = "1024x1024") -> Callable:
    def run(c: Clients, rng: random.Random) -> None:
        sdk: openai.OpenAI = getattr(c, client)
        if timeout is not None:
            sdk = sdk.with_options(timeout=timeout, max_retries=1)
        sdk.images.generate(
            model="gpt-image-2", prompt="a busy street", size=size, quality="low", extra_headers={"X-Sim-Fault": spec}
        )

    return run


def stream_interrupted(c: Clients, rng: random.Random) -> None:
    stream = c.openai.images.generate(
        model="gpt-image-2",
        prompt="a lighthouse",
        stream=True,
        partial_images=2,
        size="1024x1024",
        quality="medium",
        extra_headers={"X-Sim-Fault": "stream_error"},
    )
    for _ in stream:
        pass


def invalid_size(c: Clients, rng: random.Random) -> None:
    c.openai.images.generate(model="gpt-image-2", prompt="a poster", size="1000x1000", quality="high")


def too_many_images(c: Clients, rng: random.Random) -> None:
    c.openai.images.generate(model="gpt-image-2", prompt="a sticker sheet", n=12, size="1024x1024", quality="low")


@dataclass(frozen=True)
class Scenario:
    name: str
    weight: int
    run: Callable[[Clients, random.Random], None]


# Weights are per 1,000 calls; every retry cause appears at least once at the default volume.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("generate", 420, generate),
    Scenario("generate_legacy_model", 40, generate_legacy),
    Scenario("generate_stream_partials", 110, generate_stream),
    Scenario("edit", 100, edit),
    Scenario("responses_tool", 100, responses),
    Scenario("gateway_generate", 140, gateway),
    Scenario("gateway_server_error_retried", 8, _fault("server_error:1", client="gateway")),
    Scenario("gateway_missing_usage", 15, _fault("missing_usage:1", client="gateway")),
    Scenario("rate_limit_retried", 15, _fault("rate_limit:2")),
    Scenario("billing_limit", 6, _fault("billing:5")),
    Scenario("provider_5xx_retried", 10, _fault("server_error:1")),
    Scenario("provider_5xx_failed", 6, _fault("unavailable:5")),
    Scenario("timeout", 5, _fault("timeout:2:0.6", timeout=0.3)),
    Scenario("connection", 5, _fault("disconnect:1")),
    Scenario("policy_input", 8, _fault("moderation_input:1")),
    Scenario("policy_output", 6, _fault("moderation_output:1")),
    Scenario("content_policy", 3, _fault("content_policy:1")),
    Scenario("auth", 3, _fault("auth:1")),
    Scenario("size_error", 5, invalid_size),
    Scenario("validation", 4, too_many_images),
    Scenario("stream_interrupted", 6, stream_interrupted),
)


def plan(calls: int, seed: int = 7) -> list[Scenario]:
    """``calls`` scenarios: every scenario at least once, the rest drawn by weight."""
    rng = random.Random(seed)
    chosen = list(SCENARIOS)
    weights = [s.weight for s in SCENARIOS]
    chosen += rng.choices(SCENARIOS, weights=weights, k=max(0, calls - len(SCENARIOS)))
    rng.shuffle(chosen)
    return chosen[:calls]


@dataclass
class DemoStats:
    ok: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, error: BaseException | None) -> None:
        with self.lock:
            if error is None:
                self.ok += 1
            else:
                name = type(error).__name__
                self.failed[name] = self.failed.get(name, 0) + 1


def drive(
    clients: Clients,
    backdater: BackdatingExporter,
    calls: int,
    *,
    days: int = 30,
    workers: int = 8,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> DemoStats:
    """Run ``calls`` scenarios on a thread pool, each under a demo span backdated up to ``days``."""
    import collector

    tracer = trace.get_tracer(DEMO_SCOPE)
    stats = DemoStats()
    scenarios = plan(calls, seed)

    def one(i: int, scenario: Scenario) -> None:
        rng = random.Random(seed * 100_003 + i)
        # Newest calls today, oldest `days` ago, with a random time of day.
        offset_ns = int((i / max(1, calls - 1)) * days * DAY_NS) + rng.randrange(DAY_NS // 2)
        feature = "assistant" if scenario.run is responses else rng.choice(FEATURES[:2])
        with tracer.start_as_current_span(f"demo {scenario.name}") as span:
            backdater.shift(span.get_span_context().trace_id, offset_ns)
            with collector.tags(feature=feature, team=TEAMS[feature], project="proj_demo"):
                try:
                    scenario.run(clients, rng)
                    stats.record(None)
                except openai.OpenAIError as exc:  # the faults are the point: count them, keep going
                    stats.record(exc)
        if progress:
            progress(1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(one, i, s) for i, s in enumerate(scenarios)]:
            future.result()
    return stats


def demo_paths(root: Path) -> dict[str, Path]:
    """Where the demo keeps its ledger, spool and image store."""
    return {"ledger": root / "ledger.duckdb", "spool": root / "spool", "images": root / "images"}
