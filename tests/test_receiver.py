"""`imagecost serve` over real HTTP on loopback: the real OTel SDK exporter, OTLP/JSON, gzip, limits, tokens."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from collector import semconv
from ledger.cli import cli
from ledger.errors import UserError
from ledger.receiver import ReceiverConfig
from tests.fixtures.receiver import (
    JS,
    PB,
    attrs,
    image_span_attributes,
    make_sdk_spans,
    otlp_json,
    pb_request,
    pb_span,
    post,
    spans_of,
    spooled,
    status_of,
)


# --- the real SDK exporter -----------------------------------------------------------------------
@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_exporter_spans_land_in_the_spool_exactly(start_receiver, tmp_path: Path, compression: Compression) -> None:
    receiver = start_receiver()
    spans = make_sdk_spans(3)
    exporter = OTLPSpanExporter(endpoint=receiver.url, timeout=2, compression=compression)
    assert exporter.export(spans[:2]) is SpanExportResult.SUCCESS
    assert exporter.export(spans[2:]) is SpanExportResult.SUCCESS
    receiver.stop()

    files = sorted(p.name for p in (tmp_path / "spool").iterdir())
    assert len(files) == 1 and files[0].endswith(".jsonl")  # sealed on stop, no .part left
    lines = spooled(tmp_path / "spool")
    assert len(lines) == 2  # one line per request
    stored = spans_of(lines)
    assert [s.span_id.hex() for s in stored] == [f"{s.context.span_id:016x}" for s in spans]
    assert [s.trace_id.hex() for s in stored] == [f"{s.context.trace_id:032x}" for s in spans]
    for i, span in enumerate(stored):
        assert span.name == "generate_content gpt-image-2"
        assert span.kind == Span.SPAN_KIND_CLIENT
        assert attrs(span) == image_span_attributes(i)
    resource = {kv.key: kv.value.string_value for kv in lines[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "image-api"
    assert lines[0].resource_spans[0].scope_spans[0].scope.name == semconv.INSTRUMENTATION_SCOPE
    assert receiver.stats["accepted_spans"] == 3


def test_batch_span_processor_through_a_tracer(start_receiver, tmp_path: Path) -> None:
    receiver = start_receiver()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.url, timeout=2)))
    tracer = provider.get_tracer("app")
    for i in range(50):
        with tracer.start_as_current_span(f"op {i}") as span:
            span.set_attribute(semconv.IMAGE_N, i)
    assert provider.force_flush()
    provider.shutdown()
    stored = spans_of(spooled(tmp_path / "spool"))
    assert sorted(attrs(s)[semconv.IMAGE_N] for s in stored) == list(range(50))


def test_bearer_token_required_refused_and_accepted(start_receiver, tmp_path: Path) -> None:
    receiver = start_receiver(token="s3cret")
    body = pb_request(pb_span("a")).SerializeToString()
    missing = post(receiver, body, PB)
    wrong = post(receiver, body, {**PB, "Authorization": "Bearer nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert status_of(wrong).code == 16  # UNAUTHENTICATED
    assert spooled(tmp_path / "spool") == []
    good = OTLPSpanExporter(endpoint=receiver.url, timeout=2, headers={"Authorization": "Bearer s3cret"})
    assert good.export(make_sdk_spans(1)) is SpanExportResult.SUCCESS
    assert len(spans_of(spooled(tmp_path / "spool"))) == 1


def test_the_sdk_environment_from_the_help_text_works(start_receiver, tmp_path: Path, monkeypatch) -> None:
    receiver = start_receiver(token="s3cret")
    base = receiver.url.removesuffix("/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)  # as `imagecost serve --help` shows it
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20s3cret")
    assert OTLPSpanExporter(timeout=2).export(make_sdk_spans(2)) is SpanExportResult.SUCCESS
    assert len(spans_of(spooled(tmp_path / "spool"))) == 2


def test_refuses_to_listen_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"refusing to listen on 0\.0\.0\.0 without a token"):
        ReceiverConfig(spool_dir=tmp_path, host="0.0.0.0")
    assert ReceiverConfig(spool_dir=tmp_path, host="0.0.0.0", token="t").token == "t"
    assert ReceiverConfig(spool_dir=tmp_path, host="::1").token is None  # loopback needs none
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--spool", str(tmp_path)], env={})
    assert result.exit_code == 1
    assert result.output == (
        "Error: refusing to listen on 0.0.0.0 without a token: pass --token or set $IMAGECOST_RECEIVER_TOKEN "
        "(required for any address but loopback), or use --host 127.0.0.1\n"
    )


def test_help_explains_collector_and_sdk_setup() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=120)
    assert result.exit_code == 0
    for needle in ("otlphttp/imagecost:", "OTEL_EXPORTER_OTLP_ENDPOINT=http://RECEIVER_HOST:4318", "Retry-After"):
        assert needle in result.output


@pytest.mark.parametrize("gzipped", [False, True])
def test_json_body_with_hex_ids(start_receiver, tmp_path: Path, gzipped: bool) -> None:
    receiver = start_receiver()
    body = json.dumps(otlp_json()).encode()
    headers = {**JS, "Content-Encoding": "gzip"} if gzipped else JS
    response = post(receiver, gzip.compress(body) if gzipped else body, headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}  # full success: partial_success left unset
    (span,) = spans_of(spooled(tmp_path / "spool"))
    assert (span.trace_id.hex(), span.span_id.hex()) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    assert span.start_time_unix_nano == 1795532464000000000
    assert attrs(span) == {semconv.USAGE_IMAGE_OUTPUT_TOKENS: 1756, semconv.ROUTE_OWNER: "laozhang.ai"}


def test_protobuf_gzip_answers_protobuf(start_receiver, tmp_path: Path) -> None:
    receiver = start_receiver()
    body = gzip.compress(encode_spans(make_sdk_spans(2)).SerializeToString())
    response = post(receiver, body, {**PB, "Content-Encoding": "gzip"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    assert len(spans_of(spooled(tmp_path / "spool"))) == 2


def test_partial_success_counts_malformed_spans(start_receiver, tmp_path: Path) -> None:
    receiver = start_receiver()
    good = pb_span("good")
    short_trace = pb_span("bad-trace", trace_id=b"\x01" * 8)
    backwards = pb_span("backwards", span_id=b"\x03" * 8, start=30, end=20)
    response = post(receiver, pb_request(good, short_trace, backwards).SerializeToString(), PB)
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == 2
    assert partial.error_message == (
        "1 span(s): end_time_unix_nano is before start_time_unix_nano; 1 span(s): trace_id is not 16 non-zero bytes"
    )
    assert [s.name for s in spans_of(spooled(tmp_path / "spool"))] == ["good"]
    # OTLP/JSON: an id that is not hex rejects that span only, answered in JSON
    document = otlp_json(span_id="not-hex!")
    response = post(receiver, json.dumps(document).encode(), JS)
    assert response.status_code == 200
    assert response.json() == {
        "partialSuccess": {"rejectedSpans": "1", "errorMessage": "1 span(s): span_id is not 8 non-zero bytes"}
    }
    assert [s.name for s in spans_of(spooled(tmp_path / "spool"))] == ["good"]  # nothing added
    assert receiver.stats["rejected_spans"] == 3


def test_oversize_bodies_get_413_and_nothing_is_written(start_receiver, tmp_path: Path) -> None:
    receiver = start_receiver(max_body_bytes=4096, max_decompressed_bytes=64 * 1024, max_spans=3)
    big = pb_request(*[pb_span("x" * 2000, span_id=bytes([1, i, 1, 1, 1, 1, 1, 1])) for i in range(1, 4)])
    too_long = post(receiver, big.SerializeToString(), PB)
    assert too_long.status_code == 413
    assert status_of(too_long).message.startswith("body of 6")  # declared Content-Length checked first
    bomb = gzip.compress(json.dumps({"resourceSpans": [], "pad": "a" * 200_000}).encode())
    assert len(bomb) < 4096
    exploded = post(receiver, bomb, {**JS, "Content-Encoding": "gzip"})
    assert exploded.status_code == 413
    assert status_of(exploded) == Status(code=8, message="decompressed body is larger than the limit of 65536 bytes")
    spans4 = pb_request(*[pb_span("s", span_id=bytes([2, i, 1, 1, 1, 1, 1, 1])) for i in range(1, 5)])
    too_many = post(receiver, spans4.SerializeToString(), PB)
    assert too_many.status_code == 413
    assert status_of(too_many).message == "4 spans in one request, limit 3; lower the exporter's batch size"
    assert spooled(tmp_path / "spool") == []
    assert receiver.stats["refused"] == {"413": 3}


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"\x0a\x05garbage", PB, 400, "malformed protobuf ExportTraceServiceRequest"),
        (b'{"resourceSpans": [', JS, 400, "malformed OTLP/JSON ExportTraceServiceRequest"),
        (b"[1, 2]", JS, 400, "OTLP/JSON body must be a JSON object"),
        (b'{"resourceSpans": [{"scopeSpans": 7}]}', JS, 400, "malformed OTLP/JSON ExportTraceServiceRequest"),
        (gzip.compress(b"{}")[:-6], {**JS, "Content-Encoding": "gzip"}, 400, "truncated gzip body"),
        (b"not gzip", {**PB, "Content-Encoding": "gzip"}, 400, "invalid gzip body"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "unsupported Content-Type 'text/plain'"),
        (b"{}", {}, 415, "unsupported Content-Type None"),
        (b"{}", {**JS, "Content-Encoding": "br"}, 415, "unsupported Content-Encoding 'br'"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(start_receiver, tmp_path: Path, body, headers, status, reason) -> None:
    receiver = start_receiver()
    response = post(receiver, body, headers)
    assert response.status_code == status
    assert status_of(response).message.startswith(reason)
    assert spooled(tmp_path / "spool") == []


def test_healthz_reports_counters(start_receiver) -> None:
    receiver = start_receiver()
    post(receiver, pb_request(pb_span("h")).SerializeToString(), PB)
    post(receiver, b"x", {"Content-Type": "text/plain"})
    with httpx2.Client() as client:
        health = client.get(receiver.url.replace("/v1/traces", "/healthz")).json()
    assert health["status"] == "ok"
    assert (health["accepted_requests"], health["accepted_spans"], health["refused"]) == (1, 1, {"415": 1})
    assert health["writer"]["lines"] == 1
