"""Time the collector adds to one non-streamed image call, against no instrumentation and against a peer.

Every round times one call per variant, in shuffled order, and compares each with the uninstrumented call of
the same round (per-pair difference), so machine drift cancels out:

- ``none``       a client that is not instrumented (it only passes through the class-level patches, whose
                 own cost is printed last: patched vs unpatched SDK, in alternating blocks);
- ``imagecost``  ``collector.instrument(client)`` with image_store=None, spans to a discarding exporter
                 (the span pipeline and metric aggregation run, nothing is written anywhere);
- ``logfire``    Pydantic Logfire's ``instrument_openai(client)`` (records image tokens too), nothing sent.
                 Skipped with a message when logfire is not importable.

Two transports: the simulator over real loopback HTTP (what an app sees), and an in-process
``httpx2.MockTransport`` serving the same body (no network noise: the wrapper cost alone).

    .venv/bin/python benchmarks/bench_overhead.py [--rounds 1500]
    # with the peer column (logfire into a throwaway venv, never into .venv):
    uv venv /tmp/imagecost-bench-venv --python .venv/bin/python
    uv pip install --python /tmp/imagecost-bench-venv/bin/python -e . logfire
    /tmp/imagecost-bench-venv/bin/python benchmarks/bench_overhead.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx2
import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import collector
from simulator import Simulator

API_KEY = "sk-test-not-a-real-key"
ARGS: dict[str, Any] = {
    "model": "gpt-image-2",
    "prompt": "a lighthouse at dusk",
    "size": "1024x1024",
    "quality": "medium",
}


class DiscardExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def peer() -> Any | None:
    """logfire, configured to send nothing, or None when it is not installed."""
    try:
        import logfire
    except ImportError:
        return None
    logfire.configure(send_to_logfire=False, console=False, inspect_arguments=False)
    return logfire


def mock_transport(sim: Simulator) -> httpx2.MockTransport:
    """A transport answering every request with one real simulator response (body and headers)."""
    with httpx2.Client() as http:
        real = http.post(
            f"{sim.base_url}/images/generations", json=ARGS, headers={"Authorization": f"Bearer {API_KEY}"}
        )
    body, headers = real.content, {"content-type": "application/json", "x-request-id": "req_bench"}
    return httpx2.MockTransport(lambda request: httpx2.Response(200, content=body, headers=headers))


def measure(clients: dict[str, openai.OpenAI], rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, calling-thread CPU) seconds per call for each variant, one call per variant per round, shuffled.

    The CPU time of the calling thread is what the call itself costs that thread: other processes competing for
    the cores stretch the wall time but hardly this. Warm-up rounds are dropped.
    """
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    order = list(clients)
    warmup = max(20, rounds // 20)
    for r in range(rounds + warmup):
        random.shuffle(order)
        for name in order:
            wall, cpu = time.perf_counter(), time.thread_time()
            clients[name].images.generate(**ARGS)
            sample = (time.perf_counter() - wall, time.thread_time() - cpu)
            if r >= warmup:
                times[name].append(sample)
    return times


def passthrough(client: openai.OpenAI, options: dict[str, Any], blocks: int = 10, size: int = 200) -> float:
    """Median seconds the patches add to a client that is NOT instrumented (blocks patched / unpatched)."""
    medians: dict[bool, list[float]] = {True: [], False: []}
    # A client with its own httpx2 client: registrations are per transport, and `client` must stay unregistered.
    other = openai.OpenAI(api_key=API_KEY, base_url=str(client.base_url), http_client=httpx2.Client())
    for b in range(2 * blocks):
        patched = b % 2 == 0
        if patched:
            collector.instrument(other, **options)  # patches on; `client` itself stays unregistered
        samples = []
        for _ in range(size):
            start = time.perf_counter()
            client.images.generate(**ARGS)
            samples.append(time.perf_counter() - start)
        if patched:
            collector.uninstrument()
        medians[patched].append(statistics.median(samples))
    return statistics.median(medians[True]) - statistics.median(medians[False])


def summary(times: dict[str, list[tuple[float, float]]]) -> list[dict[str, Any]]:
    base = times["none"]
    rows = []
    for name, samples in times.items():
        diffs = [v[0] - b[0] for v, b in zip(samples, base, strict=True)]
        cpu_diffs = [v[1] - b[1] for v, b in zip(samples, base, strict=True)]
        walls = [v[0] for v in samples]
        rows.append(
            {
                "variant": name,
                "median_call_ms": statistics.median(walls) * 1e3,
                "median_added_us": statistics.median(diffs) * 1e6,
                "p95_added_us": statistics.quantiles(diffs, n=20)[18] * 1e6,
                "median_added_cpu_us": statistics.median(cpu_diffs) * 1e6,
                "p95_added_cpu_us": statistics.quantiles(cpu_diffs, n=20)[18] * 1e6,
                "ratio": statistics.median(walls) / statistics.median(v[0] for v in base),
            }
        )
    return rows


def print_table(title: str, rows: list[dict[str, Any]], rounds: int) -> None:
    print(f"\n{title} ({rounds} rounds; added = per-pair difference with `none`)")
    head = ("variant", "median call", "median added", "p95 added", "median added CPU", "p95 added CPU", "ratio")
    print(f"{head[0]:<10} {head[1]:>12} {head[2]:>13} {head[3]:>11} {head[4]:>17} {head[5]:>14} {head[6]:>6}")
    for row in rows:
        print(
            f"{row['variant']:<10} {row['median_call_ms']:>9.3f} ms {row['median_added_us']:>10.1f} us "
            f"{row['p95_added_us']:>8.1f} us {row['median_added_cpu_us']:>14.1f} us "
            f"{row['p95_added_cpu_us']:>11.1f} us {row['ratio']:>6.2f}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1500, help="timed rounds per transport")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args(argv)

    os.environ.setdefault("IMAGECOST_PROMPT_SALT", "bench")  # no salt file written next to a default spool
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(DiscardExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    options = {"image_store": None, "tracer_provider": tracer_provider, "meter_provider": meter_provider}
    logfire = peer()
    if logfire is None:
        print("logfire is not installed: the peer column is skipped (see the module docstring to add it).")

    results: dict[str, Any] = {}
    with Simulator(personality="openai", port=0, latency_scale=0.0) as sim:
        transports: dict[str, Callable[[], httpx2.Client | None]] = {
            "simulator over loopback HTTP": lambda: None,
            "in-process MockTransport": lambda: httpx2.Client(transport=mock_transport(sim)),
        }
        for title, make_http in transports.items():
            names = ["none", "imagecost"] + (["logfire"] if logfire else [])
            clients = {
                name: openai.OpenAI(api_key=API_KEY, base_url=sim.base_url, http_client=make_http(), max_retries=0)
                for name in names
            }
            if logfire:
                logfire.instrument_openai(clients["logfire"])
            # Only the imagecost client is registered; `none` and `logfire` pass through the class-level
            # patches, whose cost is measured on its own below.
            collector.instrument(clients["imagecost"], **options)
            try:
                rows = summary(measure(clients, args.rounds))
            finally:
                collector.uninstrument()
            print_table(title, rows, args.rounds)
            results[title] = rows
        mock_client = openai.OpenAI(
            api_key=API_KEY, base_url=sim.base_url, http_client=httpx2.Client(transport=mock_transport(sim))
        )
        results["passthrough_us"] = passthrough(mock_client, options) * 1e6
        print(
            f"\npatches, client not instrumented (MockTransport, blocks of 200): "
            f"{results['passthrough_us']:.1f} us per call"
        )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
