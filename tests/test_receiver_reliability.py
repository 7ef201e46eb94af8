"""`imagecost serve` under faults: back-pressure, write failures, stop, kill -9, fuzzed bodies, scheduled ingest."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx2
import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from ledger.db import open_ledger
from ledger.ingest import ingest_paths
from ledger.receiver.writer import GroupCommitWriter
from tests.fixtures.receiver import (
    JS,
    PB,
    GatedSync,
    make_sdk_spans,
    otlp_json,
    pb_request,
    pb_span,
    post,
    spans_of,
    spooled,
    status_of,
    wait_until,
)


# --- back-pressure, group commit, write failures ----------------------------------------------------
def test_back_pressure_503_with_retry_after_and_no_loss(start_receiver, tmp_path: Path) -> None:
    sync = GatedSync()
    writer = GroupCommitWriter(tmp_path / "spool", queue_size=1, sync=sync)
    receiver = start_receiver(writer=writer, queue_size=2, queue_wait_s=0)  # two requests in progress, no waiting
    bodies = [
        pb_request(pb_span(f"r{i}", span_id=bytes([9, i, 1, 1, 1, 1, 1, 1]))).SerializeToString() for i in range(3)
    ]
    answers: dict[int, int] = {}

    def send(i: int) -> None:
        answers[i] = post(receiver, bodies[i], PB).status_code

    first = threading.Thread(target=send, args=(0,))
    first.start()
    assert sync.entered.wait(10)  # r0 is being written, the writer is stuck in fsync
    second = threading.Thread(target=send, args=(1,))
    second.start()
    wait_until(lambda: writer.stats()["queued"] == 1)  # r1 fills the queue
    refused = post(receiver, bodies[2], PB)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] in ("1", "2")  # retry_after_s=1, jittered up to 2N
    assert status_of(refused) == Status(
        code=14, message="receiver is saturated (2 requests in progress, waited 0s); retry later"
    )

    # The real exporter retries after Retry-After and gets through once the writer catches up.
    result: list[SpanExportResult] = []
    retrying = threading.Thread(
        target=lambda: result.append(OTLPSpanExporter(endpoint=receiver.url, timeout=10).export(make_sdk_spans(1)))
    )
    retrying.start()
    wait_until(lambda: receiver.stats["refused"].get("503", 0) == 2)
    sync.gate.set()
    for thread in (first, second, retrying):
        thread.join(20)
    assert answers == {0: 200, 1: 200}
    assert result == [SpanExportResult.SUCCESS]
    names = sorted(s.name for s in spans_of(spooled(tmp_path / "spool")))
    assert names == ["generate_content gpt-image-2", "r0", "r1"]  # every 200 is in the spool, r2 never was


def test_a_burst_waits_for_a_slot_instead_of_503(start_receiver, tmp_path: Path) -> None:
    sync = GatedSync()
    receiver = start_receiver(writer=GroupCommitWriter(tmp_path / "spool", sync=sync), queue_size=1, queue_wait_s=30)
    answers: list[int] = []
    bodies = [pb_request(pb_span(f"b{i}", span_id=bytes([7, i, 1, 1, 1, 1, 1, 1]))).SerializeToString() for i in (0, 1)]
    threads = [threading.Thread(target=lambda b=b: answers.append(post(receiver, b, PB).status_code)) for b in bodies]
    threads[0].start()
    assert sync.entered.wait(10)  # b0 holds the only slot
    threads[1].start()
    wait_until(lambda: receiver.stats["waited"] == 1)  # b1 queues for it
    sync.gate.set()
    for thread in threads:
        thread.join(20)
    assert answers == [200, 200]
    assert receiver.stats["refused"] == {}
    assert sorted(s.name for s in spans_of(spooled(tmp_path / "spool"))) == ["b0", "b1"]


def test_group_commit_shares_one_fsync(start_receiver, tmp_path: Path) -> None:
    sync = GatedSync()
    writer = GroupCommitWriter(tmp_path / "spool", queue_size=16, sync=sync)
    receiver = start_receiver(writer=writer)
    threads = [
        threading.Thread(target=post, args=(receiver, pb_request(pb_span(f"g{i}")).SerializeToString(), PB))
        for i in range(6)
    ]
    threads[0].start()
    assert sync.entered.wait(10)
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: writer.stats()["queued"] == 5)
    sync.gate.set()
    for thread in threads:
        thread.join(20)
    assert writer.stats() == {"commits": 2, "lines": 6, "bytes": writer.bytes, "queued": 0}
    assert len(spooled(tmp_path / "spool")) == 6


def test_spool_write_failure_answers_503_and_leaves_whole_lines(start_receiver, tmp_path: Path) -> None:
    failures = [OSError(28, "No space left on device")]

    def flaky_sync(fd: int) -> None:
        if failures:
            raise failures.pop()
        os.fsync(fd)

    receiver = start_receiver(writer=GroupCommitWriter(tmp_path / "spool", sync=flaky_sync))
    first = post(receiver, pb_request(pb_span("lost")).SerializeToString(), PB)
    assert first.status_code == 503 and first.headers["retry-after"] in ("1", "2")
    assert status_of(first).message == "spool write failed (No space left on device); retry later"
    second = post(receiver, pb_request(pb_span("kept")).SerializeToString(), PB)
    assert second.status_code == 200
    # the failed write was cut off the file: only the acknowledged line is there, whole
    assert [s.name for s in spans_of(spooled(tmp_path / "spool"))] == ["kept"]


# --- fuzz: whatever arrives, the answer is a 2xx/4xx with a reason, and a refusal writes nothing ----------
_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_json = st.recursive(
    _json_leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
_VALID_JSON_SPAN = otlp_json()["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
# OTLP/JSON spans: a valid span with some fields replaced by random values (hex-ish strings for the ids).
_otlp_shaped = st.dictionaries(
    st.sampled_from([*_VALID_JSON_SPAN, "parentSpanId", "links", "events", "status", "trace_id"]),
    _json | st.text(alphabet="0123456789abcdef", max_size=34),
    max_size=3,
).map(lambda changes: {"resourceSpans": [{"scopeSpans": [{"spans": [{**_VALID_JSON_SPAN, **changes}]}]}]})
_VALID_PB = pb_request(pb_span("v"), pb_span("w", span_id=b"\x05" * 8)).SerializeToString()


@st.composite
def _mutated_pb(draw: st.DrawFn) -> bytes:
    """A valid protobuf request with a few bytes overwritten (some still parse, with odd ids/times)."""
    body = bytearray(_VALID_PB)
    for _ in range(draw(st.integers(1, 4))):
        body[draw(st.integers(0, len(body) - 1))] = draw(st.integers(0, 255))
    return bytes(body)


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["random", "truncated", "mutated", "json", "otlp_json", "padded"]))
    headers = PB
    if kind == "random":
        body, headers = draw(st.binary(max_size=300)), draw(st.sampled_from([PB, JS]))
    elif kind == "truncated":
        body = _VALID_PB[: draw(st.integers(0, len(_VALID_PB)))]
    elif kind == "mutated":
        body = draw(_mutated_pb())
    elif kind == "padded":  # big but highly compressible: over the body or the decompressed limit
        body, headers = json.dumps({**otlp_json(), "pad": "a" * draw(st.integers(3000, 12_000))}).encode(), JS
    else:
        body, headers = json.dumps(draw(_json if kind == "json" else _otlp_shaped)).encode(), JS
    if draw(st.booleans()):
        body = gzip.compress(body)
        if draw(st.integers(0, 3)) == 0:  # cut the gzip stream short too
            body = body[: draw(st.integers(0, len(body)))]
        headers = {**headers, "Content-Encoding": "gzip"}
    if draw(st.integers(0, 9)) == 0:
        headers = {**headers, "Content-Type": draw(st.sampled_from(["text/plain", "application/grpc", ""]))}
    return body, headers


def test_fuzzed_bodies_never_break_the_receiver(start_receiver, tmp_path: Path) -> None:
    receiver = start_receiver(max_body_bytes=4096, max_decompressed_bytes=8192)
    spool = tmp_path / "spool"
    client = httpx2.Client(timeout=10)
    seen: set[int] = set()

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_bodies())
    def check(case: tuple[bytes, dict[str, str]]) -> None:
        body, headers = case
        before = len(spans_of(spooled(spool)))
        accepted_before = receiver.stats["accepted_spans"]
        response = client.post(receiver.url, content=body, headers=headers)
        seen.add(response.status_code)
        assert response.status_code in (200, 400, 413, 415), response.text
        written = len(spans_of(spooled(spool))) - before
        if response.status_code == 200:
            answer = ExportTraceServiceResponse()
            if headers["Content-Type"] == JS["Content-Type"]:  # answered in the request's encoding
                json_format.Parse(response.content, answer)
            else:
                answer.ParseFromString(response.content)
            assert written == receiver.stats["accepted_spans"] - accepted_before  # acknowledged = on disk
        else:
            assert written == 0  # a refused payload wrote nothing
            assert status_of(response).message

    try:
        check()
    finally:
        client.close()
    assert seen == {200, 400, 413, 415}
    assert receiver.stats["accepted_spans"] > 0
    assert "500" not in receiver.stats["refused"]


# --- into the ledger ---------------------------------------------------------------------------------
def test_scheduled_ingest_puts_the_calls_in_the_ledger(start_receiver, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.duckdb"
    receiver = start_receiver(ingest_every_s=0.05, ledger=ledger)
    exporter = OTLPSpanExporter(endpoint=receiver.url, timeout=2)
    spans = make_sdk_spans(3)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    # a span of another instrumentation is accepted (200, nothing rejected) and left out by ingest
    other = post(receiver, pb_request(pb_span("GET /health")).SerializeToString(), PB)
    assert other.status_code == 200 and not ExportTraceServiceResponse.FromString(other.content).HasField(
        "partial_success"
    )
    runs = receiver.ingest_runs
    wait_until(lambda: receiver.ingest_runs >= runs + 2)  # a whole run started after both requests
    receiver.stop()  # one more (final) run: nothing may be counted twice

    with open_ledger(ledger, read_only=True) as con:
        rows = con.execute(
            "select call_id, trace_id, service_name, route, route_owner, requested_model, size_requested, n,"
            " text_input_tokens, image_output_tokens from calls order by image_output_tokens"
        ).fetchall()
    assert rows == [
        (
            f"{span.context.span_id:016x}",
            f"{span.context.trace_id:032x}",
            "image-api",
            "images.generate",
            "openai",
            "gpt-image-2",
            "1024x1024",
            1,
            10 + i,
            196 * (i + 1),  # image_span_attributes(i)
        )
        for i, span in enumerate(spans)
    ]


# --- stop and crash ------------------------------------------------------------------------------------
def test_stop_answers_in_flight_requests_before_sealing(start_receiver, tmp_path: Path) -> None:
    sync = GatedSync()
    receiver = start_receiver(writer=GroupCommitWriter(tmp_path / "spool", sync=sync))
    answer: list[int] = []
    request = threading.Thread(
        target=lambda: answer.append(
            post(receiver, pb_request(pb_span("in-flight")).SerializeToString(), PB).status_code
        )
    )
    request.start()
    assert sync.entered.wait(10)
    stopping = threading.Thread(target=receiver.stop)
    stopping.start()  # the server stops accepting but waits for the request in fsync
    sync.gate.set()
    request.join(20)
    stopping.join(60)
    assert answer == [200]
    (sealed,) = (tmp_path / "spool").iterdir()
    assert sealed.name.endswith(".jsonl")
    assert [s.name for s in spans_of(spooled(tmp_path / "spool"))] == ["in-flight"]


@pytest.mark.parametrize("kill_after", [10, 40])
def test_sigkill_loses_no_acknowledged_span(tmp_path: Path, kill_after: int) -> None:
    """`imagecost serve` killed -9 under load: every span answered 200 is in the spool, and ingest takes it."""
    spool, ledger = tmp_path / "spool", tmp_path / "ledger.duckdb"
    command = [sys.executable, "-c", "from ledger.cli import main; main()", "serve", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--spool", str(spool), "--ingest-every", "0"], stderr=subprocess.PIPE, text=True
    )
    assert server.stderr is not None
    url = server.stderr.readline().split()[2]  # "imagecost serve: URL -> ..."
    batches = [make_sdk_spans(5) for _ in range(4 * 60)]
    acked: list[str] = []
    other_answers: list[int] = []
    lock = threading.Lock()

    def client(mine: list[list[ReadableSpan]]) -> None:
        with httpx2.Client(timeout=10) as http:
            for spans in mine:
                try:
                    response = http.post(url, content=encode_spans(spans).SerializeToString(), headers=PB)
                except httpx2.TransportError:
                    return  # the server is gone
                with lock:
                    if response.status_code == 200:
                        acked.extend(f"{s.context.span_id:016x}" for s in spans)
                    else:
                        other_answers.append(response.status_code)

    threads = [threading.Thread(target=client, args=(batches[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acked) >= kill_after * 5)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    for thread in threads:
        thread.join(20)

    assert other_answers == []
    (part,) = spool.iterdir()
    assert part.name.endswith(".jsonl.part")  # never sealed: the process died
    stored = [s.span_id.hex() for s in spans_of(spooled(spool))]
    assert len(stored) == len(set(stored))
    assert set(acked) <= set(stored)
    assert len(set(stored) - set(acked)) <= 4 * 5  # at most one written-but-unanswered request per client
    first = ingest_paths(ledger, [spool])  # a dead writer's .part file is read as sealed
    again = ingest_paths(ledger, [spool])
    assert (first.calls_added, again.calls_added) == (len(stored), 0)
