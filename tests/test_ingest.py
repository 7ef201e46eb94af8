"""Ingest: spool and Collector OTLP/JSON files -> ledger rows, exactly once, with bad lines set aside."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from collector import semconv as sc
from collector.otlp_json import encode_request_json_line
from collector.spool import SpoolName, SpoolSpanExporter, host_label
from ledger.cli import cli
from ledger.db import connect
from ledger.errors import UserError
from ledger.ingest import ingest_paths
from ledger.ingest.files import spool_lock
from tests.fixtures.ingest import FixedIds, ListExporter, make_image_span, tracer_for

TRACE_1, SPAN_1 = "0af7651916cd43dd8448eb211c800001", "b7ad6b7169200001"
STARTED = datetime(2026, 11, 24, 15, 1, 4, tzinfo=UTC)  # tests.fixtures.ingest.START_NS

RETRIED = [
    {
        "ATTEMPT_NUMBER": 0,
        "ATTEMPT_STATUS_CODE": 429,
        "ATTEMPT_ERROR_TYPE": "RateLimitError",
        "ATTEMPT_ERROR_CODE": "rate_limit_exceeded",
        "ATTEMPT_RETRY_REASON": "rate_limit",
        "ATTEMPT_DURATION": 0.5,
        "ATTEMPT_REQUEST_ID": "req_a0",
        "ATTEMPT_RETRY_AFTER": 0.25,
    },
    {"ATTEMPT_NUMBER": 1, "ATTEMPT_STATUS_CODE": 200, "ATTEMPT_DURATION": 12.0, "ATTEMPT_REQUEST_ID": "req_0001"},
]


def rows(ledger: Path, sql: str) -> list[dict[str, Any]]:
    con = connect(ledger, read_only=True)
    try:
        relation = con.sql(sql)
        columns, data = relation.columns, relation.fetchall()
    finally:
        con.close()
    return [dict(zip(columns, row, strict=True)) for row in data]


def count(ledger: Path, table: str) -> int:
    return rows(ledger, f"select count(*) as n from {table}")[0]["n"]


def sealed_spool(directory: Path, *spans: dict[str, Any], ids: FixedIds | None = None) -> Path:
    """A spool holding one sealed file with one line per span (``make_image_span`` overrides)."""
    exporter = SpoolSpanExporter(directory)
    tracer = tracer_for(exporter, id_generator=ids or FixedIds())
    for overrides in spans:
        make_image_span(tracer, **overrides)
    exporter.shutdown()
    return directory


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.duckdb"


# --- mapping ------------------------------------------------------------------------------------------
def test_a_span_becomes_exact_call_attempt_and_image_rows(spool_dir: Path, ledger: Path) -> None:
    sealed_spool(spool_dir, {"attempts": RETRIED, "ATTEMPT_COUNT": 2, "RETRY_REASON": "rate_limit"})
    [name] = [p.name for p in spool_dir.glob("*.jsonl")]
    result = ingest_paths(ledger, [spool_dir])
    assert (result.calls_added, result.attempts_added, result.images_added, result.duplicates) == (1, 2, 1, 0)

    [call] = rows(ledger, "select * exclude (ingested_at) from calls")
    assert json.loads(call.pop("tags")) == {"feature": "hero", "team": "growth"}
    assert call == {
        "call_id": SPAN_1,
        "trace_id": TRACE_1,
        "started_at": STARTED,
        "ended_at": datetime(2026, 11, 24, 15, 1, 16, 500000, tzinfo=UTC),  # + 12.5 s
        "duration_s": 12.5,
        "service_name": "billing-api",
        "route": "images.generate",
        "route_owner": "openai",
        "server_address": "api.openai.com",
        "server_port": 443,
        "requested_model": "gpt-image-2",
        "requested_model_assumed": None,
        "reported_model": None,
        "mainline_model": None,
        "mainline_reported_model": None,
        "service_tier": "standard",
        "prompt_hash": "9f2c" * 16,
        "prompt_length": 58,
        "prompt_text": None,
        "n": 1,
        "size_requested": "1024x1024",
        "size_effective": "1024x1024",
        "quality_requested": "medium",
        "quality_effective": "medium",
        "output_format_requested": "png",
        "output_format_effective": "png",
        "output_compression": None,
        "background_requested": None,
        "background_effective": "opaque",
        "stream": False,
        "partial_images_requested": None,
        "partial_images_received": None,
        "input_image_count": 0,
        "mask": None,
        "images_returned": 1,
        "text_input_tokens": 2,
        "image_input_tokens": 0,
        "cached_text_input_tokens": None,
        "cached_image_input_tokens": None,
        "image_output_tokens": 196,
        "text_output_tokens": 0,
        "input_tokens": 2,
        "output_tokens": 196,
        "mainline_input_tokens": None,
        "mainline_cached_input_tokens": None,
        "mainline_output_tokens": None,
        "usage_source": "reported",
        "cache_status": "not_applicable",
        "status": "ok",
        "error_type": None,
        "error_code": None,
        "moderation_stage": None,
        "retry_reason": "rate_limit",
        "attempt_count": 2,
        "request_id": "req_0001",
        "source_file": str((spool_dir / name).resolve()),
    }
    assert rows(ledger, "select * from attempts order by attempt_number") == [
        {
            "call_id": SPAN_1,
            "attempt_number": 0,
            "started_at": STARTED,
            "duration_s": 0.5,
            "status_code": 429,
            "error_type": "RateLimitError",
            "error_code": "rate_limit_exceeded",
            "retry_reason": "rate_limit",
            "request_id": "req_a0",
            "retry_after_s": 0.25,
        },
        {
            "call_id": SPAN_1,
            "attempt_number": 1,
            "started_at": datetime(2026, 11, 24, 15, 1, 4, 500000, tzinfo=UTC),  # the second attempt's start
            "duration_s": 12.0,
            "status_code": 200,
            "error_type": None,
            "error_code": None,
            "retry_reason": None,
            "request_id": "req_0001",
            "retry_after_s": None,
        },
    ]
    assert rows(ledger, "select * from images") == [
        {
            "call_id": SPAN_1,
            "image_index": 0,
            "uri": "file:///var/imagecost/images/ab/abcd.png",
            "sha256": "ab" * 32,
            "bytes": 1_234_567,
            "format": "png",
            "public_url": None,
            "delete_after": datetime(2026, 12, 24, 15, 1, 16, tzinfo=UTC),
        }
    ]
    # The sealed file was consumed: moved to done/, logged, its offset forgotten.
    assert sorted(p.name for p in (spool_dir / "done").iterdir()) == [name]
    assert not list(spool_dir.glob("*.jsonl*"))
    logged = rows(ledger, "select path, spans_seen, calls_added, lines_rejected from ingested_files")
    assert logged == [{"path": call["source_file"], "spans_seen": 1, "calls_added": 1, "lines_rejected": 0}]
    assert count(ledger, "ingest_offsets") == 0


def test_responses_span_fallbacks_and_defaults(spool_dir: Path, ledger: Path) -> None:
    responses = {
        "ROUTE": "responses",
        "IMAGE_MODEL_REQUESTED": None,  # falls back to gen_ai.request.model
        "GEN_AI_REQUEST_MODEL": "gpt-image-1",
        "IMAGE_MODEL_ASSUMED": True,
        "MAINLINE_MODEL": "gpt-5.5",
        "GEN_AI_RESPONSE_MODEL": "gpt-5.5-2026-08-01",
        "MAINLINE_INPUT_TOKENS": 20,
        "MAINLINE_CACHED_INPUT_TOKENS": 5,
        "MAINLINE_OUTPUT_TOKENS": 30,
        "USAGE_CACHED_TEXT_INPUT_TOKENS": 1,
        "USAGE_CACHE": "reported",
        "IMAGE_N": None,  # falls back to gen_ai.request.choice.count
        "GEN_AI_REQUEST_CHOICE_COUNT": 2,
        "IMAGE_STREAM": None,  # falls back to gen_ai.request.stream
        "GEN_AI_REQUEST_STREAM": True,
        "PARTIAL_IMAGES_REQUESTED": 2,
        "PARTIAL_IMAGES_RECEIVED": 2,
        "tags": {},
        "images": [],
    }
    bare = {  # an error span without the optional outcome attributes: the documented defaults apply
        "STATUS": None,
        "USAGE_SOURCE": None,
        "SERVICE_TIER": None,
        "IMAGE_STREAM": None,
        "ATTEMPT_COUNT": None,
        "ERROR_TYPE": "BadRequestError",
        "ERROR_CODE": "moderation_blocked",
        "MODERATION_STAGE": "input",
        "attempts": [],
        "images": [],
    }
    sealed_spool(spool_dir, responses, bare)
    by_id = {r["call_id"]: r for r in rows(ledger_after(ledger, spool_dir), "select * from calls")}
    first, second = by_id[SPAN_1], by_id["b7ad6b7169200002"]
    assert (first["route"], first["requested_model"], first["requested_model_assumed"]) == (
        "responses",
        "gpt-image-1",
        True,
    )
    assert (first["mainline_model"], first["mainline_reported_model"]) == ("gpt-5.5", "gpt-5.5-2026-08-01")
    assert (first["mainline_input_tokens"], first["mainline_cached_input_tokens"], first["mainline_output_tokens"]) == (
        20,
        5,
        30,
    )
    assert (first["n"], first["stream"], first["partial_images_requested"], first["partial_images_received"]) == (
        2,
        True,
        2,
        2,
    )
    assert (first["cached_text_input_tokens"], first["cache_status"], json.loads(first["tags"])) == (1, "reported", {})
    assert {k: second[k] for k in ("status", "usage_source", "service_tier", "stream", "attempt_count")} == {
        "status": "ok",  # no imagecost.status and an unset OTel status
        "usage_source": "missing",
        "service_tier": "standard",
        "stream": False,
        "attempt_count": 1,
    }
    assert (second["error_type"], second["error_code"], second["moderation_stage"]) == (
        "BadRequestError",
        "moderation_blocked",
        "input",
    )


def ledger_after(ledger: Path, *paths: Path) -> Path:
    ingest_paths(ledger, list(paths))
    return ledger


# --- exactly once --------------------------------------------------------------------------------------
def test_same_file_twice_and_a_copy_under_another_name_add_nothing(spool_dir: Path, ledger: Path) -> None:
    sealed_spool(spool_dir, {"attempts": RETRIED}, {}, {})
    first = ingest_paths(ledger, [spool_dir])
    assert (first.calls_added, first.attempts_added, first.images_added) == (3, 4, 3)
    [done] = list((spool_dir / "done").iterdir())
    again = ingest_paths(ledger, [done])  # the same file, named on the command line
    assert (again.calls_added, again.duplicates, again.attempts_added, again.images_added) == (0, 3, 0, 0)
    shutil.copy(done, spool_dir / "copy-1-20261124T000000000000Z-000001.jsonl")  # another name, same spans
    copied = ingest_paths(ledger, [spool_dir])
    assert (copied.calls_added, copied.duplicates) == (0, 3)
    assert (count(ledger, "calls"), count(ledger, "attempts"), count(ledger, "images")) == (3, 4, 3)
    assert (spool_dir / "done" / "copy-1-20261124T000000000000Z-000001.jsonl").exists()


def test_a_span_twice_in_one_batch_is_stored_once(spool_dir: Path, ledger: Path) -> None:
    sealed_spool(spool_dir, {"attempts": RETRIED}, {})
    [original] = list(spool_dir.glob("*.jsonl"))
    shutil.copy(original, spool_dir / "~copy-1-20261124T000000000000Z-000001.jsonl")  # "~" sorts last
    result = ingest_paths(ledger, [spool_dir])
    assert (result.batches, result.calls_added, result.duplicates, result.attempts_added) == (1, 2, 2, 3)
    assert rows(ledger, "select calls_added from ingested_files order by path") == [
        {"calls_added": 2},  # the original (first by name) is credited
        {"calls_added": 0},
    ]
    assert (count(ledger, "calls"), count(ledger, "attempts"), count(ledger, "images")) == (2, 3, 2)


def test_offsets_of_files_gone_from_the_spool_are_forgotten(spool_dir: Path, ledger: Path, tmp_path: Path) -> None:
    """A run killed between moving a file to done/ and forgetting its offset leaves the row; the next run drops it."""
    sealed_spool(spool_dir, {}, {})
    assert ingest_paths(ledger, [spool_dir]).calls_added == 2
    [done] = list((spool_dir / "done").iterdir())
    outside = tmp_path / "collector-output.json"  # a FILE named on the command line keeps its offset
    shutil.copy(done, outside)
    ingest_paths(ledger, [outside])
    con = connect(ledger)
    try:
        con.execute(
            "insert into ingest_offsets (path, first_line_sha256, offset_bytes, lines_read) values (?, 'x', 9, 1)",
            [str((spool_dir / done.name).resolve())],
        )
    finally:
        con.close()
    assert count(ledger, "ingest_offsets") == 2

    again = ingest_paths(ledger, [spool_dir])
    assert (again.calls_added, again.duplicates, again.lines) == (0, 0, 0)
    assert rows(ledger, "select path from ingest_offsets") == [{"path": str(outside.resolve())}]
    assert count(ledger, "calls") == 2


def test_a_ledger_inside_the_spool_or_named_as_a_file_is_refused(spool_dir: Path, tmp_path: Path) -> None:
    """Named like a spool file, the ledger would be read as spans and moved to done/ (found by the CLI fuzzer)."""
    sealed_spool(spool_dir, {}, {})
    inside = spool_dir / "ledger.jsonl"
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--ledger", str(inside)]).exit_code == 0
    refused = runner.invoke(cli, ["ingest", "--spool", str(spool_dir), "--ledger", str(inside)])
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"Error: {inside} is the ledger itself, not a spool or OTLP/JSON file; keep the ledger outside the spool "
        "directory (--ledger) and do not name it as a FILE\n"
    )
    assert inside.is_file() and not (spool_dir / "done").exists()  # nothing moved, nothing read
    assert count(inside, "calls") == 0

    outside = tmp_path / "ledger.duckdb"
    assert runner.invoke(cli, ["init", "--ledger", str(outside)]).exit_code == 0
    named = runner.invoke(cli, ["ingest", "--ledger", str(outside), str(outside)])
    assert named.exit_code == 1 and f"Error: {outside} is the ledger itself" in named.stderr
    assert count(outside, "ingested_files") == 0


def test_a_data_file_given_as_the_ledger_is_refused(spool_dir: Path, tmp_path: Path) -> None:
    """DuckDB opens an existing .jsonl / .csv file as an in-memory database with a view over it: an ingest into it
    would report success and keep nothing (found by the CLI fuzzer). Every connection refuses it in one line."""
    sealed_spool(spool_dir, {})
    data = tmp_path / "plan.jsonl"
    data.write_text('{"model": "gpt-image-2"}\n')
    message = (
        f"Error: {data} is a data file, not a DuckDB ledger (DuckDB reads a .jsonl, .csv or .parquet file as a "
        "table); pass --ledger a .duckdb file (`imagecost init --ledger FILE` creates one)\n"
    )
    runner = CliRunner()
    for args in (["ingest", "--spool", str(spool_dir)], ["report"], ["init"]):
        refused = runner.invoke(cli, [*args, "--ledger", str(data)])
        assert (refused.exit_code, refused.stderr) == (1, message), args
    assert data.read_text() == '{"model": "gpt-image-2"}\n'
    assert [p.name for p in spool_dir.glob("*.jsonl")]  # not ingested anywhere, still in the spool


def test_four_processes_writing_at_once_then_ingest_every_span_exactly_once(spool_dir: Path, ledger: Path) -> None:
    # Plain interpreters, not multiprocessing's spawn: a spawned child re-runs the parent's __main__, which after
    # a Streamlit AppTest earlier in the session is that test's page script (docs/reliability.md).
    code = "from tests.fixtures.ingest import write_from_process; write_from_process(%r, %d, 3, 25)"
    root = Path(__file__).resolve().parents[1]
    processes = [subprocess.Popen([sys.executable, "-c", code % (str(spool_dir), p)], cwd=root) for p in range(4)]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0, 0]
    names = sorted(p.name for p in spool_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    assert all(n.endswith(".jsonl") for n in names)  # sealed at shutdown
    assert len({SpoolName.parse(n).pid for n in names}) == 4  # type: ignore[union-attr]
    assert len(names) > 4  # files rotated while the others wrote

    result = ingest_paths(ledger, [spool_dir])
    assert (result.calls_added, result.duplicates, result.lines_rejected) == (300, 0, 0)
    writers = rows(ledger, "select tags->>'writer' as w, count(*) as n from calls group by all")
    assert sorted(r["w"] for r in writers) == sorted(
        f"{p}.{t}.{i}" for p in range(4) for t in range(3) for i in range(25)
    )
    assert {r["n"] for r in writers} == {1}
    assert rows(ledger, "select count(distinct service_name) as n from calls") == [{"n": 4}]


# --- what is kept, what is set aside ---------------------------------------------------------------------
def test_spans_of_other_instrumentations_are_ignored(spool_dir: Path, ledger: Path) -> None:
    exporter = SpoolSpanExporter(spool_dir)
    ids = FixedIds()
    make_image_span(tracer_for(exporter, id_generator=ids))  # ours
    http = tracer_for(exporter, id_generator=ids, scope="opentelemetry.instrumentation.httpx")
    http.start_span("POST", attributes={sc.SERVER_ADDRESS: "api.openai.com"}).end()  # not ours: ignored
    make_image_span(tracer_for(exporter, id_generator=ids, scope="acme.gateway"))  # other scope, carries a route
    exporter.shutdown()
    result = ingest_paths(ledger, [spool_dir])
    assert (result.calls_added, result.spans_ignored, result.lines_rejected) == (2, 1, 0)
    assert [r["call_id"] for r in rows(ledger, "select call_id from calls order by 1")] == [
        SPAN_1,
        "b7ad6b7169200003",
    ]


def test_malformed_lines_are_reported_with_file_and_line_and_the_rest_goes_in(
    spool_dir: Path, ledger: Path, tmp_path: Path
) -> None:
    captured = ListExporter()
    tracer = tracer_for(captured, id_generator=FixedIds())
    for _ in range(3):
        make_image_span(tracer)
    good = [encode_request_json_line(encode_spans([span])) for span in captured.spans]
    bad_id = good[2].replace(b'"spanId":"b7ad6b7169200003"', b'"spanId":"t60rtGw1MJQ="')  # base64: not OTLP/JSON
    no_route = good[2].replace(sc.ROUTE.encode(), b"imagecost.not_a_route")
    lines = [good[0], b"{not json\n", b'{"hello": "world"}\n', b"\n", bad_id, b"\xff\xfe\n", no_route, good[1]]
    path = spool_dir / f"{host_label()}-1-20261124T000000000000Z-000001.jsonl"
    path.write_bytes(b"".join(lines))

    result = ingest_paths(ledger, [spool_dir])
    assert (result.calls_added, result.lines_rejected) == (2, 5)
    source = str(path.resolve())
    assert rows(ledger, "select path, line_number, error from rejected_lines order by line_number") == [
        {
            "path": source,
            "line_number": 2,
            "error": "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        },
        {
            "path": source,
            "line_number": 3,
            "error": "not an OTLP/JSON ExportTraceServiceRequest (no resourceSpans array)",
        },
        {
            "path": source,
            "line_number": 5,
            "error": 'span t60rtGw1MJQ=: spanId "t60rtGw1MJQ=" is not 16 hex digits (not all zero)',
        },
        {"path": source, "line_number": 6, "error": "not UTF-8 text"},
        {"path": source, "line_number": 7, "error": f"span b7ad6b7169200003: no {sc.ROUTE} attribute"},
    ]  # line 4 is blank: skipped, not an error
    copy = spool_dir / "rejected" / path.name
    assert copy.read_bytes() == b"".join([lines[1], lines[2], lines[4], lines[5], lines[6]])
    [warning] = result.warnings()
    assert warning.startswith(f"{source}: 5 malformed line(s) set aside (line 2, 3, 5, 6, 7); line 2: not valid JSON")
    assert warning.endswith(f"; copied to {copy}")
    assert sorted(r["call_id"] for r in rows(ledger, "select call_id from calls")) == [SPAN_1, "b7ad6b7169200002"]
    assert rows(ledger, "select lines_rejected, calls_added from ingested_files") == [
        {"lines_rejected": 5, "calls_added": 2}
    ]


def test_collector_file_with_several_resources_per_line_read_incrementally(tmp_path: Path, ledger: Path) -> None:
    captured = ListExporter()
    ids = FixedIds()
    make_image_span(tracer_for(captured, id_generator=ids, service="checkout"))
    make_image_span(tracer_for(captured, id_generator=ids, service="search"))
    tracer_for(captured, id_generator=ids, scope="io.opentelemetry.netty").start_span("GET /").end()
    make_image_span(tracer_for(captured, id_generator=ids, service="search"), ROUTE_OWNER="laozhang.ai")
    line = encode_request_json_line(encode_spans(captured.spans))  # what a Collector batches into one line
    resources = json.loads(line)["resourceSpans"]  # checkout, search (2 spans), billing-api (netty)
    assert [len(r["scopeSpans"][0]["spans"]) for r in resources] == [1, 2, 1]
    otelcol = tmp_path / "otelcol" / "traces.json"
    otelcol.parent.mkdir()
    otelcol.write_bytes(line + line[:100])  # the Collector is in the middle of writing its next line

    first = ingest_paths(ledger, [otelcol])
    assert (first.calls_added, first.spans_ignored, first.lines_rejected) == (3, 1, 0)
    assert rows(ledger, "select service_name, route_owner from calls order by call_id") == [
        {"service_name": "checkout", "route_owner": "openai"},
        {"service_name": "search", "route_owner": "openai"},
        {"service_name": "search", "route_owner": "laozhang.ai"},
    ]
    assert otelcol.exists()  # a file named on the command line is never moved

    more = ListExporter()
    make_image_span(tracer_for(more, id_generator=FixedIds(span_base=0x1000)))
    with otelcol.open("ab") as handle:  # the Collector finishes the torn line, then writes another
        handle.write(line[100:] + encode_request_json_line(encode_spans(more.spans)))
    second = ingest_paths(ledger, [otelcol])
    assert (second.calls_added, second.duplicates) == (1, 3)  # only new lines were read: line 2 repeats line 1
    assert [f.lines for f in second.files] == [2]
    assert count(ledger, "calls") == 4


# --- files still being written ------------------------------------------------------------------------
def test_part_file_is_read_up_to_its_last_complete_line_and_continued(spool_dir: Path, ledger: Path) -> None:
    exporter = SpoolSpanExporter(spool_dir)
    tracer = tracer_for(exporter, id_generator=FixedIds())
    make_image_span(tracer)
    make_image_span(tracer)
    part = exporter.current_path
    assert part is not None
    assert ingest_paths(ledger, [spool_dir]).calls_added == 2
    assert part.exists()  # still being written: left in place

    with part.open("ab") as handle:  # someone else's garbage, then a line still being written
        handle.write(b"garbage\n")
    make_image_span(tracer)
    with part.open("ab") as handle:
        handle.write(b'{"resourceSpans":[')
    second = ingest_paths(ledger, [spool_dir])
    assert (second.calls_added, second.lines_rejected) == (1, 1)
    assert rows(ledger, "select line_number from rejected_lines") == [{"line_number": 3}]  # numbering continues
    assert count(ledger, "ingest_offsets") == 1

    exporter.shutdown()  # sealed: the torn tail is now a malformed last line
    third = ingest_paths(ledger, [spool_dir])
    assert (third.calls_added, third.lines_rejected) == (0, 1)
    assert rows(ledger, "select line_number from rejected_lines order by 1") == [{"line_number": 3}, {"line_number": 5}]
    assert [p.name for p in (spool_dir / "done").iterdir()] == [part.name.removesuffix(".part")]
    assert count(ledger, "calls") == 3 and count(ledger, "ingest_offsets") == 0


def test_ingest_while_a_writer_keeps_appending_loses_and_doubles_nothing(spool_dir: Path, ledger: Path) -> None:
    exporter = SpoolSpanExporter(spool_dir, max_bytes=40_000)  # rotates while ingest reads
    tracer = tracer_for(exporter)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        while not stop.is_set() or len(written) < 60:
            make_image_span(tracer, tags={"n": str(len(written))})
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    runs = [ingest_paths(ledger, [spool_dir]) for _ in range(4)]
    stop.set()
    thread.join()
    exporter.shutdown()
    runs.append(ingest_paths(ledger, [spool_dir]))
    total = len(written)
    assert sum(r.calls_added for r in runs) == total
    assert sum(r.duplicates for r in runs) == 0
    assert rows(ledger, "select count(*) as n, count(distinct tags->>'n') as d from calls") == [
        {"n": total, "d": total}
    ]
    assert not list(spool_dir.glob("*.jsonl*")) and count(ledger, "ingest_offsets") == 0


def test_part_file_of_a_writer_that_died_is_sealed_by_ingest(spool_dir: Path, ledger: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    captured = ListExporter()
    make_image_span(tracer_for(captured))
    line = encode_request_json_line(encode_spans(captured.spans))
    part = spool_dir / f"{SpoolName(host_label(), pid, '20261124T000000000000Z', 1).stem}.jsonl.part"
    part.write_bytes(line + line[:50])  # crashed in the middle of a write
    result = ingest_paths(ledger, [spool_dir])
    assert (result.calls_added, result.lines_rejected) == (1, 1)
    assert [p.name for p in (spool_dir / "done").iterdir()] == [part.name.removesuffix(".part")]


# --- one at a time, books, CLI ---------------------------------------------------------------------------
def test_a_second_ingest_of_the_same_spool_exits_or_waits(spool_dir: Path, ledger: Path) -> None:
    sealed_spool(spool_dir, {})
    with spool_lock(spool_dir, wait=False):
        with pytest.raises(
            UserError, match=rf"another `imagecost ingest` is running on spool {spool_dir} \(pid {os.getpid()}\)"
        ):
            ingest_paths(ledger, [spool_dir])
        outcome: list[int] = []
        waiting = threading.Thread(
            target=lambda: outcome.append(ingest_paths(ledger, [spool_dir], wait=True).calls_added)
        )
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive() and outcome == []  # blocked on the lock
    waiting.join()
    assert outcome == [1]


def test_price_books_are_reloaded_before_ingesting(spool_dir: Path, ledger: Path, tmp_path: Path) -> None:
    sealed_spool(spool_dir, {})
    prices = tmp_path / "prices"
    prices.mkdir()
    (prices / "acme.toml").write_text(
        "[[contract]]\n"
        'provider = "acme"\ncontract_id = "acme-2026"\nmodel_pattern = "gpt-image-2*"\nunit = "per_image"\n'
        'price = 0.5\ncurrency = "EUR"\ncharge_failed_calls = false\neffective_from = 2026-01-01\n'
        'source = "acme order form 2026-01"\n'
    )
    first = ingest_paths(ledger, [spool_dir], prices_dir=prices)
    assert first.price_books_updated
    assert rows(ledger, "select contract_id, price, currency from provider_contracts where provider = 'acme'") == [
        {"contract_id": "acme-2026", "price": 0.5, "currency": "EUR"}
    ]
    assert not ingest_paths(ledger, [spool_dir], prices_dir=prices).price_books_updated  # same books: no reload
    assert count(ledger, "price_book_loads") == 1


def test_cli_ingest_prints_summary_and_warnings(spool_dir: Path, ledger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sealed_spool(spool_dir, {}, {})
    with (spool_dir / f"{host_label()}-1-20261124T000000000000Z-000009.jsonl").open("wb") as handle:
        handle.write(b"oops\n")
    runner = CliRunner()
    done = runner.invoke(cli, ["ingest", "--spool", str(spool_dir), "--ledger", str(ledger), "--delete"])
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("ingested 2 new call(s) (2 attempts, 2 images) from 2 file(s), 3 line(s)")
    assert "1 line(s) rejected; price books updated" in done.stdout
    assert done.stderr.startswith("warning: ") and "line 1: not valid JSON" in done.stderr
    assert not list(spool_dir.glob("*.jsonl")) and not (spool_dir / "done").exists()  # --delete

    monkeypatch.chdir(spool_dir.parent)
    monkeypatch.delenv("IMAGECOST_SPOOL", raising=False)
    missing = runner.invoke(cli, ["ingest", "--ledger", str(ledger)])
    assert missing.exit_code == 1
    assert "no spool directory at .imagecost/spool" in missing.output
