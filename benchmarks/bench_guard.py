"""Time the budget guard adds to one image call: an instrumented client with the guard vs one without.

Three clients, instrumented the same way (spans to a discarding exporter, as in bench_overhead.py):

- ``no guard``      no guard;
- ``guard``         ``guard=BudgetGuard(...)`` with three budgets (a month-wide hard budget, a per-feature hard
                    day budget, a per-model warn day budget; limits high enough that every call goes through),
                    counting this process's calls only (no ledger);
- ``guard+ledger``  the same over a synthetic ledger of ``--ledger-calls`` calls (make_synthetic_ledger.py,
                    30 days ending now), which it re-reads in a background thread every 5 s during the run.

Every round times one non-streamed gpt-image-2 call per client against the simulator over loopback HTTP, in
shuffled order; "added" is the per-pair difference with the ``no guard`` call of the same round (median and
p95), so drift cancels out. Prompts cycle through 64 lengths, so the estimate cache is warm after the first
rounds, as in an app with recurring request shapes.

Then the parts on their own: ``check()`` with a warm and a cold estimate cache (a new prompt length each time,
so the estimator runs), ``record()``, and one ledger re-read (``refresh()``) on the synthetic ledger.

    .venv/bin/python benchmarks/bench_guard.py [--rounds 2000] [--ledger-calls 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
from bench_overhead import API_KEY, DiscardExporter
from make_synthetic_ledger import build
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import collector
from collector.guard import GuardOutcome, GuardRequest
from ledger.budgets import Budget, BudgetGuard
from ledger.pricebook import load_books
from simulator import Simulator

ARGS: dict[str, Any] = {"model": "gpt-image-2", "size": "1024x1024", "quality": "medium"}
PROMPTS = [f"a lighthouse at dusk, {'very ' * i}detailed" for i in range(64)]
BUDGETS = [
    Budget(name="all-month", period="month", limit_usd=1e9, mode="hard"),
    Budget(name="hero-day", period="day", limit_usd=1e9, mode="hard", tags={"feature": "hero"}),
    Budget(name="gpt-image-2-watch", period="day", limit_usd=1e9, mode="warn", model="gpt-image-2*"),
]


def measure(clients: dict[str, openai.OpenAI], rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, calling-thread CPU) seconds per call per client, one call each per round in shuffled order."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    order = list(clients)
    warmup = max(64, rounds // 20)
    with collector.tags(feature="hero"):
        for r in range(rounds + warmup):
            random.shuffle(order)
            prompt = PROMPTS[r % len(PROMPTS)]
            for name in order:
                wall, cpu = time.perf_counter(), time.thread_time()
                clients[name].images.generate(prompt=prompt, **ARGS)
                sample = (time.perf_counter() - wall, time.thread_time() - cpu)
                if r >= warmup:
                    times[name].append(sample)
    return times


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def print_pairs(times: dict[str, list[tuple[float, float]]], rounds: int) -> None:
    base = times["no guard"]
    print(f"simulator over loopback HTTP ({rounds} rounds; added = per-pair difference with `no guard`)")
    print(
        f"{'variant':<12} {'median call':>12} {'median added':>13} {'p95 added':>11} {'median CPU':>11} {'p95 CPU':>9}"
    )
    for name, samples in times.items():
        wall = [v[0] - b[0] for v, b in zip(samples, base, strict=True)]
        cpu = [v[1] - b[1] for v, b in zip(samples, base, strict=True)]
        print(
            f"{name:<12} {statistics.median(v[0] for v in samples) * 1e3:>9.3f} ms "
            f"{statistics.median(wall) * 1e6:>10.1f} us {p95(wall) * 1e6:>8.1f} us "
            f"{statistics.median(cpu) * 1e6:>8.1f} us {p95(cpu) * 1e6:>6.1f} us"
        )


def timed(fn: Callable[[int], object], n: int) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def parts(guard: BudgetGuard, n: int) -> None:
    """The guard's own steps, without HTTP or spans."""

    def request(i: int, prompt_chars: int) -> GuardRequest:
        return GuardRequest(
            call_id=f"{i:016x}",
            route="images.generate",
            route_owner="openai",
            model="gpt-image-2",
            size="1024x1024",
            quality="medium",
            n=1,
            partial_images=0,
            input_images=0,
            prompt_chars=prompt_chars,
            stream=False,
            tags={"feature": "hero"},
        )

    outcome = GuardOutcome(
        ok=True, tokens={"text_input": 9, "image_output": 1756}, billed_model=None, images_returned=1
    )
    warm = timed(lambda i: guard.check(request(i, 40)), n)
    cold = timed(lambda i: guard.check(request(n + i, 1000 + i)), n)  # a new length each time: the estimator runs
    recorded = timed(lambda i: guard.record(request(i, 40), outcome), n)
    refresh = timed(lambda i: guard.refresh(), 20)
    print(f"\nthe guard's steps alone ({n} calls each; medians, p95 in brackets)")
    for label, samples, unit in (
        ("check(), estimate cached", warm, 1e6),
        ("check(), estimator runs", cold, 1e6),
        ("record()", recorded, 1e6),
    ):
        print(f"{label:<28} {statistics.median(samples) * unit:>8.1f} us  [{p95(samples) * unit:.1f} us]")
    print(f"{'refresh() (background, 5 s)':<28} {statistics.median(refresh) * 1e3:>8.1f} ms  (20 re-reads)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="timed rounds (one call per client each)")
    parser.add_argument("--ledger-calls", type=int, default=100_000, help="calls in the synthetic ledger")
    args = parser.parse_args(argv)

    os.environ.setdefault("IMAGECOST_PROMPT_SALT", "bench")  # no salt file written next to a default spool
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(DiscardExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    with tempfile.TemporaryDirectory() as tmp, Simulator(personality="openai", port=0, latency_scale=0.0) as sim:
        ledger = Path(tmp) / "ledger.duckdb"
        started = time.perf_counter()
        build(ledger, args.ledger_calls, seed=7)
        print(f"synthetic ledger: {args.ledger_calls:,} calls in {time.perf_counter() - started:.1f} s")
        guards = {
            "guard": BudgetGuard(BUDGETS, load_books()),
            "guard+ledger": BudgetGuard(BUDGETS, load_books(), ledger=ledger),
        }
        spent = guards["guard+ledger"].spent("all-month")
        print(f"spend this month in it: ${spent:,.2f} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n")
        options: dict[str, Any] = {
            "image_store": None,
            "routes": {sim.host_port: "openai"},
            "tracer_provider": tracer_provider,
            "meter_provider": meter_provider,
        }
        clients = {
            name: openai.OpenAI(api_key=API_KEY, base_url=sim.base_url, max_retries=0) for name in ("no guard", *guards)
        }
        collector.instrument(clients["no guard"], **options)
        for name, guard in guards.items():
            collector.instrument(clients[name], guard=guard, **options)
        try:
            print_pairs(measure(clients, args.rounds), args.rounds)
        finally:
            collector.uninstrument()
        parts(guards["guard+ledger"], 2000)


if __name__ == "__main__":
    main()
