"""`imagecost serve` throughput and back-pressure, with real OTLP/HTTP exporters on loopback.

The receiver runs as its own process (`imagecost serve`, spool on the local disk, scheduled ingest off);
client threads in this process each own a TracerProvider with a BatchSpanProcessor and the real
OTLPSpanExporter. Every scenario ends by stopping the receiver (SIGTERM: drain, seal) and counting the
spans in the spool: "lost" is spans created minus spans spooled, and must be 0. The saturation scenario
shrinks the writer queue to 1 request so that 503 + Retry-After happens, and counts the retries.

    .venv/bin/python benchmarks/bench_receiver.py            # ~1 minute on 2 cores
    .venv/bin/python benchmarks/bench_receiver.py --spans 4000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind

from collector import semconv


@dataclass(frozen=True)
class Scenario:
    name: str
    threads: int
    batch: int  # BatchSpanProcessor max_export_batch_size
    compression: Compression = Compression.NoCompression
    queue_size: int = 64
    queue_wait: float = 1.0


@dataclass
class Outcome:
    scenario: Scenario
    spans: int
    seconds: float
    spooled: int
    duplicates: int
    health: dict
    failed_exports: int
    server_cpu_s: float  # user + system CPU of the receiver process (not stretched by other load)


class CountingExporter(OTLPSpanExporter):
    """The real exporter, counting exports that still failed after its own retries."""

    failures = 0
    lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        if result is not SpanExportResult.SUCCESS:
            with CountingExporter.lock:
                CountingExporter.failures += 1
        return result


def start_receiver(spool: Path, scenario: Scenario) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-c", "from ledger.cli import main; main()", "serve", "--port", "0"]
    command += ["--spool", str(spool), "--ingest-every", "0", "--retry-after", "1"]
    command += ["--queue-size", str(scenario.queue_size), "--queue-wait", str(scenario.queue_wait)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"(http://\S+/v1/traces)", line)
    if not match:
        process.kill()
        raise SystemExit(f"receiver did not start: {line}{process.stderr.read()}")
    return process, match.group(1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health(url: str) -> dict:
    with urllib.request.urlopen(url.replace("/v1/traces", "/healthz"), timeout=10) as response:
        return json.load(response)


def client(url: str, scenario: Scenario, spans: int, index: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": f"bench-{index}"}))
    exporter = CountingExporter(endpoint=url, timeout=30, compression=scenario.compression)
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=max(spans, scenario.batch) + 1,
            max_export_batch_size=scenario.batch,
            schedule_delay_millis=20,
        )
    )
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE)
    for i in range(spans):
        with tracer.start_as_current_span("generate_content gpt-image-2", kind=SpanKind.CLIENT) as span:
            span.set_attributes(
                {
                    semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_GENERATE_CONTENT,
                    semconv.GEN_AI_REQUEST_MODEL: "gpt-image-2",
                    semconv.ROUTE: "images.generate",
                    semconv.ROUTE_OWNER: "openai",
                    semconv.USAGE_IMAGE_OUTPUT_TOKENS: 196 + i,
                    semconv.USAGE_TEXT_INPUT_TOKENS: 12,
                }
            )
    provider.force_flush(120_000)
    provider.shutdown()


def spooled_spans(spool: Path) -> tuple[int, int]:
    """Spans in the spool files, and how many of them repeat a span id already seen."""
    ids: list[str] = []
    for file in spool.glob("*.jsonl*"):
        for line in file.read_bytes().splitlines():
            for resource in json.loads(line)["resourceSpans"]:
                for scope in resource["scopeSpans"]:
                    ids.extend(span["spanId"] for span in scope.get("spans", []))
    return len(ids), len(ids) - len(set(ids))


def run(scenario: Scenario, spans_per_thread: int) -> Outcome:
    CountingExporter.failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-receiver-", dir=".") as tmp:
        spool = Path(tmp) / "spool"
        process, url = start_receiver(spool, scenario)
        startup_cpu = cpu_seconds(process.pid)
        try:
            threads = [
                threading.Thread(target=client, args=(url, scenario, spans_per_thread, i))
                for i in range(scenario.threads)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
            stats = health(url)
            server_cpu = cpu_seconds(process.pid) - startup_cpu
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        return Outcome(
            scenario,
            spans_per_thread * scenario.threads,
            seconds,
            *spooled_spans(spool),
            stats,
            CountingExporter.failures,
            server_cpu,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=20_000, help="spans per scenario (split over its threads)")
    args = parser.parse_args()
    scenarios = [
        Scenario("protobuf, 1 thread, batch 512", threads=1, batch=512),
        Scenario("protobuf, 4 threads, batch 512", threads=4, batch=512),
        Scenario("gzip, 4 threads, batch 512", threads=4, batch=512, compression=Compression.Gzip),
        Scenario("protobuf, 8 threads, batch 32", threads=8, batch=32),
        Scenario("queue 2, wait 0: 16 threads, batch 64", threads=16, batch=64, queue_size=2, queue_wait=0),
        Scenario("queue 2, wait 1 s: 16 threads, batch 64", threads=16, batch=64, queue_size=2),
        Scenario("queue 1, wait 0: 16 threads, batch 8", threads=16, batch=8, queue_size=1, queue_wait=0),
        Scenario("queue 1, wait 1 s: 16 threads, batch 8", threads=16, batch=8, queue_size=1),
        Scenario("queue 1, wait 0.01 s: 32 threads, batch 8", threads=32, batch=8, queue_size=1, queue_wait=0.01),
    ]
    header = (
        f"{'scenario':<44} {'spans':>6} {'seconds':>7} {'spans/s':>7} {'cpu us/span':>11} {'200s':>5} {'503s':>5} "
        f"{'fsyncs':>6} {'req/fsync':>9} {'waited':>6} {'gave up':>7} {'spooled':>7} {'dupes':>5} "
        f"{'rcv loss':>8} {'e2e loss':>8}"
    )
    print(header)
    print("-" * len(header))
    for scenario in scenarios:
        outcome = run(scenario, max(1, args.spans // scenario.threads))
        writer, stats = outcome.health["writer"], outcome.health
        print(
            f"{scenario.name:<44} {outcome.spans:>6} {outcome.seconds:>7.2f} {outcome.spans / outcome.seconds:>7.0f} "
            f"{outcome.server_cpu_s / outcome.spans * 1e6:>11.0f} "
            f"{stats['accepted_requests']:>5} {stats['refused'].get('503', 0):>5} {writer['commits']:>6} "
            f"{writer['lines'] / max(writer['commits'], 1):>9.2f} {stats['waited']:>6} {outcome.failed_exports:>7} "
            f"{outcome.spooled:>7} {outcome.duplicates:>5} "
            f"{stats['accepted_spans'] - outcome.spooled:>8} {outcome.spans - outcome.spooled:>8}"
        )
    print(
        "cpu us/span = the receiver process's CPU time per span; "
        "gave up = exports the OTel exporter abandoned after its own retry budget (6 tries / its timeout); "
        "rcv loss = spans answered 200 but not in the spool; e2e loss = spans created but not in the spool"
    )


if __name__ == "__main__":
    main()
