"""Tracer, metric instruments and the spool exporter, on the providers the app already has.

- Tracing: the ``tracer_provider`` passed in, else the global one. If the app has no SDK tracer provider
  (the global is still the API's proxy), a private SDK provider exporting to the spool is used; the global
  provider is never replaced (the app may still set its own later). If the spool was asked for
  (``spool=`` or ``IMAGECOST_SPOOL``), a spool processor is added to the SDK provider in use.
- Metrics: the ``meter_provider`` passed in, else the global one (a proxy until the app configures one).
Spool processors are created once per (provider, directory) and flushed at exit.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from opentelemetry import metrics, trace
from opentelemetry.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer, TracerProvider

from collector import semconv as sc
from collector.config import Settings
from collector.safety import internal

try:
    VERSION = metadata.version("imagecost")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0"


@dataclass(frozen=True)
class Telemetry:
    tracer: Tracer
    duration: Histogram
    tokens: Histogram
    images: Counter
    partial_images: Counter


_lock = threading.Lock()
_private: dict[Path, SdkTracerProvider] = {}  # spool dir -> provider used when the app has none
_processors: dict[tuple[int, Path], SpanProcessor] = {}  # (id(provider), spool dir) -> spool processor
_atexit_registered = False


def build(
    settings: Settings, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None
) -> Telemetry:
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if tracer_provider is None and isinstance(provider, trace.ProxyTracerProvider):
        provider = _private_provider(settings.spool, meter_provider)
    elif settings.spool_requested and isinstance(provider, SdkTracerProvider):
        _ensure_spool(provider, settings.spool, meter_provider)
    meter = (meter_provider or metrics.get_meter_provider()).get_meter(
        sc.INSTRUMENTATION_SCOPE, VERSION, schema_url=sc.SEMCONV_SCHEMA_URL
    )
    return Telemetry(
        tracer=provider.get_tracer(sc.INSTRUMENTATION_SCOPE, VERSION, schema_url=sc.SEMCONV_SCHEMA_URL),
        duration=meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        ),
        tokens=meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(sc.TOKEN_BUCKETS),
        ),
        images=meter.create_counter(sc.METRIC_IMAGES, unit="{image}", description="Final images received."),
        partial_images=meter.create_counter(
            sc.METRIC_PARTIAL_IMAGES, unit="{image}", description="Partial image stream events received."
        ),
    )


def _spool_processor(directory: Path, meter_provider: MeterProvider | None) -> SpanProcessor:
    # Written by the ingest engineer: OTLP/JSON lines, rotating files, fsync per batch. Its dropped-spans
    # counter goes to the same meter provider as the collector's other metrics.
    from collector.spool import SpoolSpanExporter

    return BatchSpanProcessor(SpoolSpanExporter(directory, meter_provider=meter_provider))


def _private_provider(spool: Path, meter_provider: MeterProvider | None) -> SdkTracerProvider:
    key = spool.resolve()
    with _lock:
        if key not in _private:
            provider = SdkTracerProvider(resource=Resource.create())
            processor = _spool_processor(spool, meter_provider)
            provider.add_span_processor(processor)
            _private[key] = provider
            _processors[(id(provider), key)] = processor
            _register_flush()
        return _private[key]


def _ensure_spool(provider: SdkTracerProvider, spool: Path, meter_provider: MeterProvider | None) -> None:
    key = (id(provider), spool.resolve())
    with _lock:
        if key not in _processors:
            processor = _spool_processor(spool, meter_provider)
            provider.add_span_processor(processor)
            _processors[key] = processor
            _register_flush()


def _register_flush() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(flush)
        _atexit_registered = True


@internal
def flush(timeout_millis: int = 10_000) -> None:
    """Export every span the spool processors still hold (runs at exit; tests call it too)."""
    with _lock:
        processors = list(_processors.values())
    for processor in processors:
        processor.force_flush(timeout_millis)
