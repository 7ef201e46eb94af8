"""The spool exporter: exact OTLP/JSON lines, rotation and sealing, fsync per batch, many writers, failures."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from collector import semconv as sc
from collector.otlp_json import decode_request_json_line, encode_request_json_line
from collector.spool import SpoolName, SpoolSpanExporter, host_label
from tests.fixtures.ingest import START_NS, FixedIds, ListExporter, make_image_span, tracer_for

ROOT = Path(__file__).resolve().parent.parent
AB = [{"stringValue": "a"}, {"stringValue": "b"}]


def _lines(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file())


# --- the line format -------------------------------------------------------------------------------
def test_spool_line_is_exact_otlp_json(spool_dir: Path) -> None:
    exporter = SpoolSpanExporter(spool_dir)
    tracer = tracer_for(exporter, id_generator=FixedIds())
    attributes = {
        sc.ROUTE: "images.generate",
        sc.IMAGE_N: 2,
        sc.IMAGE_STREAM: True,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 1.25,
        sc.TAG_PREFIX + "labels": ("a", "b"),
    }
    span = tracer.start_span(
        "generate_content gpt-image-2", kind=SpanKind.CLIENT, attributes=attributes, start_time=START_NS
    )
    span.add_event(
        sc.EVENT_ATTEMPT,
        {sc.ATTEMPT_NUMBER: 0, sc.ATTEMPT_STATUS_CODE: 429, sc.ATTEMPT_RETRY_AFTER: 0.5},
        timestamp=START_NS + 250_000_000,
    )
    span.set_status(Status(StatusCode.ERROR, "rate limited"))
    span.end(end_time=START_NS + 2_500_000_000)

    path = exporter.current_path
    assert path is not None and path.name.endswith(".jsonl.part")
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1 and raw.endswith(b"\n")  # one request = one line
    assert b'"traceId":"0af7651916cd43dd8448eb211c800001"' in raw  # hex, not base64, compact
    assert json.loads(raw) == {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "billing-api"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": sc.INSTRUMENTATION_SCOPE, "version": "0.1.0"},
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c800001",
                                "spanId": "b7ad6b7169200001",
                                "name": "generate_content gpt-image-2",
                                "kind": 3,  # SPAN_KIND_CLIENT, an integer
                                "startTimeUnixNano": "1795532464000000000",  # int64 as a string
                                "endTimeUnixNano": "1795532466500000000",
                                "attributes": [
                                    {"key": sc.ROUTE, "value": {"stringValue": "images.generate"}},
                                    {"key": sc.IMAGE_N, "value": {"intValue": "2"}},
                                    {"key": sc.IMAGE_STREAM, "value": {"boolValue": True}},
                                    {"key": sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, "value": {"doubleValue": 1.25}},
                                    {
                                        "key": sc.TAG_PREFIX + "labels",
                                        "value": {
                                            "arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}
                                        },
                                    },
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": "1795532464250000000",
                                        "name": sc.EVENT_ATTEMPT,
                                        "attributes": [
                                            {"key": sc.ATTEMPT_NUMBER, "value": {"intValue": "0"}},
                                            {"key": sc.ATTEMPT_STATUS_CODE, "value": {"intValue": "429"}},
                                            {"key": sc.ATTEMPT_RETRY_AFTER, "value": {"doubleValue": 0.5}},
                                        ],
                                    }
                                ],
                                "status": {"message": "rate limited", "code": 2},  # STATUS_CODE_ERROR
                                "flags": 256,  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK: a local root span
                            }
                        ],
                        "schemaUrl": sc.SEMCONV_SCHEMA_URL,
                    }
                ],
            }
        ]
    }


# Two lines as an OpenTelemetry Collector `file` exporter writes them (OTLP/JSON spec: hex ids, int64 as
# strings, enums as integers, defaults omitted); the second holds two resources and a second scope.
COLLECTOR_LINES = [
    '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}],'
    '"droppedAttributesCount":1},"scopeSpans":[{"scope":{"name":"my.library","version":"1.0.0","attributes":'
    '[{"key":"my.scope.attribute","value":{"stringValue":"some scope attribute"}}]},"spans":[{"traceId":'
    '"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173",'
    '"traceState":"k=v","name":"GET /cart","kind":2,"startTimeUnixNano":"1544712660000000000",'
    '"endTimeUnixNano":"1544712661000000000","attributes":[{"key":"http.route","value":{"stringValue":"/cart"}},'
    '{"key":"n","value":{"intValue":"-7"}},{"key":"ratio","value":{"doubleValue":0.25}},{"key":"ok","value":'
    '{"boolValue":true}},{"key":"list","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"2"}]}}},'
    '{"key":"map","value":{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}},{"key":"blob",'
    '"value":{"bytesValue":"AQID"}}],"droppedAttributesCount":2,"events":[{"timeUnixNano":"1544712660500000000",'
    '"name":"retry","attributes":[{"key":"x","value":{"intValue":"1"}}],"droppedAttributesCount":1}],'
    '"droppedEventsCount":3,"links":[{"traceId":"5b8efff798038103d269b633813fc60d","spanId":"eee19b7ec3c1b175",'
    '"traceState":"a=b","attributes":[{"key":"l","value":{"stringValue":"x"}}],"flags":256}],'
    '"status":{"message":"boom","code":2},"flags":768}],"schemaUrl":"https://opentelemetry.io/schemas/1.24.0"}],'
    '"schemaUrl":"https://opentelemetry.io/schemas/1.24.0"}]}',
    '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},'
    '"scopeSpans":[{"scope":{"name":"s1"},"spans":[{"traceId":"00000000000000000000000000000001","spanId":'
    '"0000000000000001","name":"one","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2","status":{}}]},'
    '{"scope":{"name":"s2"},"spans":[{"traceId":"00000000000000000000000000000002","spanId":"0000000000000002",'
    '"name":"two","kind":3,"startTimeUnixNano":"3","endTimeUnixNano":"4","status":{"code":1}}]}]},'
    '{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"b"}}]},"scopeSpans":[{"scope":'
    '{"name":"s3"},"spans":[{"traceId":"00000000000000000000000000000003","spanId":"0000000000000003","name":'
    '"three","kind":5,"startTimeUnixNano":"5","endTimeUnixNano":"6","status":{}}]}]}]}',
]


@pytest.mark.parametrize("line", COLLECTOR_LINES)
def test_encoder_round_trips_collector_file_exporter_lines(line: str) -> None:
    request = decode_request_json_line(line)
    encoded = encode_request_json_line(request)
    assert encoded.endswith(b"\n") and encoded.count(b"\n") == 1
    assert json.loads(encoded) == json.loads(line)
    assert encode_request_json_line(decode_request_json_line(encoded)) == encoded


def test_decoded_collector_line_has_the_binary_ids_and_values() -> None:
    request = decode_request_json_line(COLLECTOR_LINES[0])
    span = request.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.parent_span_id == bytes.fromhex("eee19b7ec3c1b173")
    assert span.links[0].span_id == bytes.fromhex("eee19b7ec3c1b175")
    assert span.kind == 2 and span.start_time_unix_nano == 1544712660000000000
    assert [a.value.int_value for a in span.attributes if a.key == "n"] == [-7]
    assert [a.value.bytes_value for a in span.attributes if a.key == "blob"] == [b"\x01\x02\x03"]
    two = decode_request_json_line(COLLECTOR_LINES[1])
    assert [len(r.scope_spans) for r in two.resource_spans] == [2, 1]


def test_uppercase_hex_ids_are_accepted_and_written_lowercase() -> None:
    upper = COLLECTOR_LINES[0].replace("5b8efff798038103d269b633813fc60c", "5B8EFFF798038103D269B633813FC60C")
    assert b'"traceId":"5b8efff798038103d269b633813fc60c"' in encode_request_json_line(decode_request_json_line(upper))


def test_encoder_output_matches_the_sdk_spans() -> None:
    captured = ListExporter()
    make_image_span(tracer_for(captured, id_generator=FixedIds()))
    document = json.loads(encode_request_json_line(encode_spans(captured.spans)))
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert (span["traceId"], span["spanId"]) == ("0af7651916cd43dd8448eb211c800001", "b7ad6b7169200001")
    assert [e["name"] for e in span["events"]] == [sc.EVENT_ATTEMPT, sc.EVENT_IMAGE]
    values = {a["key"]: a["value"] for a in span["attributes"]}
    assert values[sc.USAGE_IMAGE_OUTPUT_TOKENS] == {"intValue": "196"}
    assert values[sc.TAG_PREFIX + "feature"] == {"stringValue": "hero"}


# --- files: naming, rotation, sealing, fsync --------------------------------------------------------
def test_rotation_by_size_seals_files_and_shutdown_seals_the_last(spool_dir: Path) -> None:
    probe = SpoolSpanExporter(spool_dir / "probe")
    make_image_span(tracer_for(probe))
    assert probe.current_path is not None
    line_size = probe.current_path.stat().st_size
    exporter = SpoolSpanExporter(spool_dir, max_bytes=2 * line_size + 10)  # two lines per file
    tracer = tracer_for(exporter)
    for _ in range(5):
        make_image_span(tracer)
    names = _files(spool_dir)
    assert [n.rsplit("-", 1)[1] for n in names] == ["000001.jsonl", "000002.jsonl", "000003.jsonl.part"]
    assert [len(_lines(spool_dir / n)) for n in names] == [2, 2, 1]
    parsed = [SpoolName.parse(n) for n in names]
    assert {(p.host, p.pid) for p in parsed if p} == {(host_label(), os.getpid())}
    assert len({p.started for p in parsed if p}) == 1
    exporter.shutdown()
    assert [n.rsplit("-", 1)[1] for n in _files(spool_dir)] == ["000001.jsonl", "000002.jsonl", "000003.jsonl"]
    assert exporter.export([]) == SpanExportResult.FAILURE  # after shutdown


def test_rotation_by_age(spool_dir: Path) -> None:
    exporter = SpoolSpanExporter(spool_dir, max_age_s=0)  # every batch finds its file too old
    tracer = tracer_for(exporter)
    for _ in range(3):
        make_image_span(tracer)
    assert [n.rsplit("-", 1)[1] for n in _files(spool_dir)] == ["000001.jsonl", "000002.jsonl", "000003.jsonl.part"]


def test_every_batch_is_fsynced_before_export_returns(spool_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    exporter = SpoolSpanExporter(spool_dir)
    captured = ListExporter()
    make_image_span(tracer_for(captured))
    make_image_span(tracer_for(captured))
    for count in (1, 2):
        synced.clear()
        assert exporter.export(captured.spans[count - 1 : count]) == SpanExportResult.SUCCESS
        path = exporter.current_path
        assert path is not None
        assert synced.count(str(path)) == 1  # the data itself, once per batch
        assert len(_lines(path)) == count  # readable by another reader as soon as export returned
    # The first export also fsynced the directory, so the new file's name survives a crash.
    exporter2 = SpoolSpanExporter(spool_dir / "new")
    synced.clear()
    exporter2.export(captured.spans[:1])
    assert str(spool_dir / "new") in synced


# --- failures ---------------------------------------------------------------------------------------
def _dropped(reader: InMemoryMetricReader) -> dict[tuple[tuple[str, Any], ...], int]:
    data = reader.get_metrics_data()
    points: dict[tuple[tuple[str, Any], ...], int] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == sc.METRIC_TELEMETRY_DROPPED:
                    for point in metric.data.data_points:
                        points[tuple(sorted(point.attributes.items()))] = point.value
    return points


def test_unwritable_spool_fails_softly_counts_and_logs_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the spool's parent directory should be")
    reader = InMemoryMetricReader()
    exporter = SpoolSpanExporter(blocker / "spool", meter_provider=MeterProvider(metric_readers=[reader]))
    captured = ListExporter()
    for _ in range(3):
        make_image_span(tracer_for(captured))
    caplog.set_level(logging.WARNING, logger="collector.spool")
    results = [exporter.export(captured.spans[:2]), exporter.export(captured.spans[2:]), exporter.export([])]
    assert results == [SpanExportResult.FAILURE] * 3  # returned, never raised
    assert _dropped(reader) == {((sc.ERROR_TYPE, "ENOTDIR"),): 3}  # 2 + 1 + 0 spans
    assert len(caplog.records) == 1
    assert "cannot write spans" in caplog.records[0].getMessage()
    # The disk comes back: writing resumes, one line says so.
    blocker.unlink()
    assert exporter.export(captured.spans[:1]) == SpanExportResult.SUCCESS
    assert [r.getMessage().endswith("is writable again") for r in caplog.records] == [False, True]


DISK_FULL_SCRIPT = """
import json, resource, signal, sys
sys.path.insert(0, {root!r})
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from collector.spool import SpoolSpanExporter
from tests.fixtures.ingest import ListExporter, make_image_span, tracer_for

captured = ListExporter()
for _ in range(10):
    make_image_span(tracer_for(captured))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, write() fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))  # a "disk" that fills up
reader = InMemoryMetricReader()
exporter = SpoolSpanExporter({spool!r}, meter_provider=MeterProvider(metric_readers=[reader]))
results = [exporter.export(captured.spans[i : i + 2]).name for i in range(0, 10, 2)]
points = [p.value for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
          for m in sm.metrics for p in m.data.data_points]
print(json.dumps({{"results": results, "dropped": points, "path": str(exporter.current_path)}}))
"""


def test_disk_full_keeps_only_whole_lines_and_counts_the_rest(tmp_path: Path) -> None:
    captured = ListExporter()
    make_image_span(tracer_for(captured))
    line = len(encode_request_json_line(encode_spans(captured.spans * 2)))  # ~ one two-span batch
    script = DISK_FULL_SCRIPT.format(root=str(ROOT), limit=2 * line + line // 2, spool=str(tmp_path / "spool"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["results"] == ["SUCCESS", "SUCCESS", "FAILURE", "FAILURE", "FAILURE"]
    assert outcome["dropped"] == [6]  # three failed batches of two spans
    assert done.stderr.count("cannot write spans") == 1  # one log line for the whole streak
    lines = _lines(Path(outcome["path"]))  # the torn third write was cut back off
    assert [len(doc["resourceSpans"][0]["scopeSpans"][0]["spans"]) for doc in lines] == [2, 2]
