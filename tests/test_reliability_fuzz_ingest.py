"""Fuzzing ingest with hypothesis: spool files mixing good lines, garbage and mutated OTLP/JSON.

Per example one sealed spool file goes through ``ingest_paths`` into a ledger shared by the examples.
Ingest must never raise; every good line's span is in ``calls`` once; every garbage line is in
``rejected_lines`` with the file and its line number (and copied verbatim to ``rejected/``); a mutated
line is either taken, set aside or (if the mutation made it another instrumentation's span) ignored,
never two of those.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from collector import semconv as sc
from collector.otlp_json import encode_request_json_line
from collector.spool import REJECTED_DIR, SpoolName, host_label
from ledger.ingest import ingest_paths
from tests.fixtures.ingest import FixedIds, ListExporter, make_image_span, tracer_for
from tests.fixtures.reliability import ledger_rows

_span_bases = itertools.count(1)
_files = itertools.count(1)

# --- lines ------------------------------------------------------------------------------------------------
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# OTLP AnyValue shapes, sensible and not: the four scalars the ledger reads, arrays, kvlists, bytes, junk.
ANY_VALUE = st.one_of(
    st.just({}),
    st.builds(lambda v: {"stringValue": v}, st.text(max_size=30) | st.integers()),
    st.builds(lambda v: {"intValue": v}, st.text(max_size=25) | st.integers() | st.floats(allow_nan=False)),
    st.builds(lambda v: {"doubleValue": v}, st.floats() | st.text(max_size=10) | st.sampled_from(["NaN", "Infinity"])),
    st.builds(lambda v: {"boolValue": v}, JSON_SCALARS),
    st.builds(lambda v: {"arrayValue": {"values": [{"stringValue": v}]}}, st.text(max_size=10)),
    st.just({"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}),
    st.just({"bytesValue": "aGVsbG8="}),
    ANY_JSON,
)
QUIET = re.compile(rb"[ \t\f\r]*")  # lines ingest skips silently (only whitespace)


def valid_lines(count: int) -> list[tuple[bytes, str]]:
    """``count`` OTLP/JSON lines of one collector span each, with span ids no other example uses."""
    captured = ListExporter()
    tracer = tracer_for(captured, id_generator=FixedIds(span_base=next(_span_bases) << 20))
    for _ in range(count):
        make_image_span(tracer)
    return [(encode_request_json_line(encode_spans([s])), f"{s.context.span_id:016x}") for s in captured.spans]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        out += _paths(child, (*prefix, key))
    return out


TEMPLATE, TEMPLATE_ID = valid_lines(1)[0]  # every collector line has this shape; only ids and times differ


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The template line's JSON with 1-3 edits: an attribute's value swapped for any AnyValue (the most
    telling edit, so it is drawn most), a key deleted, or any node replaced by any JSON."""
    doc = json.loads(TEMPLATE)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        values = [p for p in paths if p[-1] == "value" and "attributes" in p]
        kind = draw(st.sampled_from(["value", "value", "delete", "replace"]))
        path = draw(st.sampled_from(values if kind == "value" and values else paths or [()]))
        if not path:
            doc = draw(ANY_JSON)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if kind == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(ANY_VALUE if kind == "value" else ANY_JSON)
    return json.dumps(doc).encode()


def _garbage_json(value: Any) -> bool:
    return not (isinstance(value, dict) and isinstance(value.get("resourceSpans"), list))


GARBAGE = st.one_of(
    st.binary(min_size=1, max_size=120),
    st.text(min_size=1, max_size=120).map(str.encode),
    ANY_JSON.filter(_garbage_json).map(lambda v: json.dumps(v).encode()),
    # a prefix of a JSON object is never valid JSON
    st.integers(1, len(TEMPLATE) - 2).map(lambda n: TEMPLATE[:n]),
).filter(lambda b: b"\n" not in b and not QUIET.fullmatch(b))

# A drawn line: ("good", None), ("garbage", bytes) or ("mutated", template bytes); the test gives good and
# mutated lines span ids of their own.
LINE = st.one_of(
    st.just(("good", None)), st.tuples(st.just("garbage"), GARBAGE), st.tuples(st.just("mutated"), mutated())
)


def materialise(drawn: list[tuple[str, bytes | None]]) -> list[tuple[str, bytes, str | None]]:
    """(kind, line without newline, span id) with fresh span ids for the good and mutated lines."""
    lines: list[tuple[str, bytes, str | None]] = []
    for (kind, payload), (line, span_id) in zip(drawn, valid_lines(len(drawn)), strict=True):
        if kind == "good":
            lines.append((kind, line.rstrip(b"\n"), span_id))
        elif kind == "garbage":
            assert payload is not None
            lines.append((kind, payload, None))
        else:
            assert payload is not None
            lines.append((kind, payload.replace(TEMPLATE_ID.encode(), span_id.encode()), span_id))
    return lines


# --- the property ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ledger for all examples (a fresh one each would cost a migration per example)."""
    return tmp_path_factory.mktemp("fuzz-ingest") / "ledger.duckdb"


@settings(
    max_examples=15,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no "explain": slow on 3.11
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(LINE, min_size=1, max_size=12), st.booleans())
def test_fuzzed_spool_lines_never_break_ingest(
    shared_ledger: Path, drawn: list[tuple[str, bytes | None]], torn: bool
) -> None:
    """``torn``: the last line lacks its newline (a sealed file's torn tail, read as a last line)."""
    lines = materialise(drawn)
    spool = shared_ledger.parent / f"spool-{next(_files)}"
    spool.mkdir()
    name = SpoolName(host_label(), 1, "20261124T000000000000Z", 1).stem + ".jsonl"
    content = b"\n".join(body for _, body, _ in lines) + (b"" if torn else b"\n")
    (spool / name).write_bytes(content)

    result = ingest_paths(shared_ledger, [spool])  # must not raise

    key = str((spool / name).resolve())
    rejected_rows = ledger_rows(shared_ledger, "select line_number from rejected_lines where path = ?", [key])
    rejected = {r["line_number"] for r in rejected_rows}
    taken_rows = ledger_rows(shared_ledger, "select call_id from calls where source_file = ?", [key])
    taken = {r["call_id"] for r in taken_rows}
    assert len(taken_rows) == len(taken)  # once each
    for number, (kind, _, span_id) in enumerate(lines, start=1):
        if kind == "good" and not (torn and number == len(lines)):
            assert span_id in taken and number not in rejected, (number, kind)
        elif kind == "garbage":
            assert number in rejected and span_id not in taken, (number, kind)
        else:  # mutated, or a good line that is the torn tail: taken, set aside or ignored, not two of them
            assert not (span_id in taken and number in rejected), (number, kind)
    assert result.lines == len(lines) and result.lines_rejected == len(rejected)
    copies = (spool / REJECTED_DIR / name).read_bytes().split(b"\n")[:-1] if rejected else []
    assert copies == [lines[n - 1][1] for n in sorted(rejected)]  # verbatim, in order


def test_a_route_attribute_without_a_text_value_is_rejected_not_fatal(tmp_path: Path) -> None:
    """Found by the fuzzer: ``imagecost.route`` present with an empty / array value used to reach the NOT NULL
    ``calls.route`` column and abort the whole ingest (and every later one, on the same line)."""
    (good, good_id), (bad, _) = valid_lines(2)
    doc = json.loads(bad)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for attribute in span["attributes"]:
        if attribute["key"] == sc.ROUTE:
            attribute["value"] = {"arrayValue": {"values": [{"stringValue": "images.generate"}]}}
    path = tmp_path / "collector.jsonl"
    path.write_bytes(good + json.dumps(doc).encode() + b"\n")
    result = ingest_paths(tmp_path / "ledger.duckdb", [path])
    assert (result.calls_added, result.lines_rejected) == (1, 1)
    assert [r["call_id"] for r in ledger_rows(tmp_path / "ledger.duckdb", "select call_id from calls")] == [good_id]
    (report,) = result.files
    assert [n for n, _ in report.rejected] == [2]
