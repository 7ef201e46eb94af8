"""OTLP/JSON lines -> columnar calls / attempts / images, in an in-memory DuckDB (no ledger lock held).

The lines go in zero-copy as an Arrow binary column. Each line is parsed once by DuckDB's ``from_json``
(C++, on all cores) into just the part of ``ExportTraceServiceRequest`` the ledger reads;
``resourceSpans[].scopeSpans[].spans[]`` is unnested in SQL, attributes become parallel key / value text
lists, and the mapping table (``ledger.ingest.mapping``) turns those into the ledger's columns. This beat a
Python ``json.loads`` loop, DuckDB's ``read_json`` with the same structure, path-based ``json_extract``
and ``pyarrow.json`` / ``polars.read_ndjson`` when measured (docs/benchmarks.md, "Ingest").

A line is rejected as a whole (and reported with its number) when it is not UTF-8, not JSON, not an
``ExportTraceServiceRequest``, or when one of its kept spans is unusable (bad ids, no start time, no
route). Spans from other instrumentations (scope not ours and no ``imagecost.route``) are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from collector import semconv as sc
from ledger.ingest import mapping
from ledger.ingest.mapping import EVENT_ORDINAL, OTEL_STATUS_CODE, REQUIRED_CALL_ATTRIBUTES, sql_string

BATCH_TARGET_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    """Consecutive lines of one file."""

    source: str  # path recorded as calls.source_file / ingested_files.path / rejected_lines.path
    data: bytes  # whole lines; the last one may lack its newline (a sealed file's torn tail)
    first_line_no: int  # 1-based number of the first line of ``data`` in its file


@dataclass(frozen=True)
class RejectedLine:
    chunk: int  # index into the chunks given to ``read_chunks``
    line_no: int
    error: str
    raw: bytes


@dataclass
class ChunkStats:
    lines: int = 0
    spans: int = 0  # every span in the chunk's accepted lines, ours or not
    call_spans: int = 0  # spans that became call rows


@dataclass
class Parsed:
    calls: pa.Table
    attempts: pa.Table
    images: pa.Table
    rejected: list[RejectedLine] = field(default_factory=list)
    stats: list[ChunkStats] = field(default_factory=list)


def read_chunks(chunks: Sequence[Chunk], *, threads: int | None = None) -> Parsed:
    """Parse the chunks' lines into Arrow tables shaped like the ledger tables (columns by name).

    ``threads``: DuckDB threads for this batch (default: all cores).
    """
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        if threads:
            con.execute(f"set threads = {int(threads)}")
        lines = _lines_table(chunks)
        sources = pa.table(
            {"chunk": pa.array(list(range(len(chunks))), pa.int32()), "source": [c.source for c in chunks]}
        )
        con.register("raw_lines", lines)
        con.register("chunk_sources", sources)
        try:
            con.execute(_spans_statement(guarded=False))
        except Exception:  # a line that is not UTF-8 JSON (duckdb.Error, or UnicodeDecodeError from decode())
            con.execute("drop table if exists spans")
            con.execute(_spans_statement(guarded=True))  # tolerant: anything it raises is a real error
        for statement in _PIPELINE:
            con.execute(statement)
        parsed = Parsed(
            calls=con.sql(_CALLS_SELECT).to_arrow_table(),
            attempts=con.sql(_event_select("attempts", sc.EVENT_ATTEMPT)).to_arrow_table(),
            images=con.sql(_event_select("images", sc.EVENT_IMAGE)).to_arrow_table(),
            stats=[ChunkStats() for _ in chunks],
        )
        for chunk, lines_count, spans, call_spans in con.execute(_STATS_SELECT).fetchall():
            parsed.stats[chunk] = ChunkStats(lines_count, spans, call_spans)
        rejected = con.execute("select chunk, line_no, problem from rejected order by chunk, line_no").fetchall()
    finally:
        con.close()
    bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for chunk, line_no, problem in rejected:
        starts, ends = bounds.setdefault(chunk, _line_bounds(chunks[chunk].data))
        position = line_no - chunks[chunk].first_line_no
        raw = chunks[chunk].data[starts[position] : ends[position]]
        parsed.rejected.append(RejectedLine(chunk, line_no, _explain(problem, raw), raw))
    return parsed


def _lines_table(chunks: Sequence[Chunk]) -> pa.Table:
    """(chunk, line_no, raw) with ``raw`` pointing into the chunks' own buffers (no copy per line)."""
    columns: dict[str, list[pa.Array]] = {"chunk": [], "line_no": [], "raw": []}
    for index, chunk in enumerate(chunks):
        starts, ends = _line_bounds(chunk.data)
        offsets = np.concatenate([starts[:1], ends]).astype(np.int64) if len(ends) else np.zeros(1, np.int64)
        raw = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(chunk.data)]
        )
        columns["raw"].append(raw)
        columns["chunk"].append(_numpy_array(np.full(len(ends), index, np.int32), pa.int32()))
        line_numbers = np.arange(chunk.first_line_no, chunk.first_line_no + len(ends), dtype=np.int64)
        columns["line_no"].append(_numpy_array(line_numbers, pa.int64()))
    types = {"chunk": pa.int32(), "line_no": pa.int64(), "raw": pa.large_binary()}
    table = pa.table({name: pa.chunked_array(arrays, types[name]) for name, arrays in columns.items()})
    # Small record batches (~1 MiB of lines) let DuckDB spread the JSON work over its threads.
    size = sum(len(chunk.data) for chunk in chunks)
    rows = max(1, min(2048, table.num_rows * BATCH_TARGET_BYTES // max(size, 1)))
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows), schema=table.schema)


def _numpy_array(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    # Zero-copy, and unlike pa.array(ndarray) it does not import pandas (a second on a cold start).
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(values)])


def _line_bounds(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, newline included) of every line; a final line may lack its newline."""
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + 1
    if data and not data.endswith(b"\n"):
        ends = np.append(ends, len(data))
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    return starts, ends.astype(np.int64)


def _explain(problem: str, raw: bytes) -> str:
    """For a line that is not JSON, add where the parser broke (only rejected lines are parsed twice)."""
    if problem != _NOT_JSON:
        return problem
    try:
        json.loads(raw)
    except ValueError as exc:
        return f"{_NOT_JSON}: {exc}"
    return problem


# --- the SQL pipeline --------------------------------------------------------------------------------
_NOT_JSON = "not valid JSON"


def request_structure() -> str:
    """The part of ``ExportTraceServiceRequest`` the ledger reads, as a ``from_json`` structure.

    AnyValue is read as its four scalar members, all as text (``intValue`` is a string in OTLP/JSON but
    may be a number; ``boolValue`` becomes 'true' / 'false'); array and kvlist values read as NULL.
    A field whose JSON type does not match reads as NULL (``from_json`` is lenient) and is caught below.
    """
    value = {"stringValue": "VARCHAR", "intValue": "VARCHAR", "doubleValue": "VARCHAR", "boolValue": "VARCHAR"}
    attributes = [{"key": "VARCHAR", "value": value}]
    event = {"name": "VARCHAR", "timeUnixNano": "VARCHAR", "attributes": attributes}
    span = {
        "traceId": "VARCHAR",
        "spanId": "VARCHAR",
        "startTimeUnixNano": "VARCHAR",
        "endTimeUnixNano": "VARCHAR",
        "status": {"code": "VARCHAR"},
        "attributes": attributes,
        "events": [event],
    }
    scope_spans = {"scope": {"name": "VARCHAR"}, "spans": [span]}
    request = {"resourceSpans": [{"resource": {"attributes": attributes}, "scopeSpans": [scope_spans]}]}
    return sql_string(json.dumps(request))


def _keys(attributes: str) -> str:
    return f"list_transform({attributes}, lambda a: a.key)"


def _values(attributes: str) -> str:
    """Each attribute's value as text, whichever scalar member it has."""
    text = "coalesce(a.value.stringValue, a.value.intValue, a.value.doubleValue, a.value.boolValue)"
    return f"list_transform({attributes}, lambda a: {text})"


def _hex_problem(name: str, value: str, digits: int) -> str:
    bad = (
        f"not coalesce(regexp_full_match({value}, '[0-9a-fA-F]{{{digits}}}'), false) or {value} = repeat('0', {digits})"
    )
    shown = f"coalesce('\"' || {value} || '\"', 'missing')"
    return f"when {bad} then '{name} ' || {shown} || ' is not {digits} hex digits (not all zero)'"


# Spans written by the same code carry the same attribute keys in the same order. So every attribute's position
# is looked up once per distinct key list (a "shape") instead of per span and column. Shapes are joined on the
# list's 64-bit hash: a batch holds a handful of shapes, so two colliding is a ~1e-18 chance, and joining on the
# lists themselves cost 12 % more parse CPU when measured.
_SPAN_ATTRIBUTES = tuple(dict.fromkeys(mapping.attributes("span") + REQUIRED_CALL_ATTRIBUTES))
_POSITION = {attribute: f"p{index}" for index, attribute in enumerate(_SPAN_ATTRIBUTES)}


def _span_value(attribute: str) -> str:
    return f"vals[{_POSITION[attribute]}]"


def _resource_value(attribute: str) -> str:
    return mapping.lookup("rkeys", "rvals", attribute)


def _shape_columns() -> str:
    """Per distinct key list: each wanted attribute's position, and the imagecost.tag.* positions and JSON keys."""
    positions = [f"list_position(keys, {sql_string(a)}) as {_POSITION[a]}" for a in _SPAN_ATTRIBUTES]
    prefix = sql_string(sc.TAG_PREFIX)
    tags = [
        f"list_filter(range(1, len(keys) + 1), lambda i: starts_with(keys[i], {prefix})) as tag_positions",
        f"list_transform(tag_positions, lambda i: to_json(substr(keys[i], {len(sc.TAG_PREFIX) + 1})) || ':') "
        "as tag_keys",
    ]
    return ",\n        ".join(positions + tags)


def _span_problem() -> str:
    """Why a kept span cannot become a call row (NULL when it can)."""
    # Present is not enough: an empty / array / kvlist value reads as NULL and would hit a NOT NULL column.
    required = " ".join(
        f"when {_POSITION[attribute]} is null then 'no {attribute} attribute' "
        f"when {_span_value(attribute)} is null then '{attribute} has no text value'"
        for attribute in REQUIRED_CALL_ATTRIBUTES
    )
    return f"""case
        {_hex_problem("spanId", "span_id", 16)}
        {_hex_problem("traceId", "trace_id", 32)}
        when coalesce(start_ns, 0) <= 0 then 'startTimeUnixNano is missing or not a positive integer'
        when end_ns < start_ns then 'endTimeUnixNano is before startTimeUnixNano'
        {required}
    end"""


def _ns_to_timestamptz(ns: str) -> str:
    """Unix nanoseconds -> timestamptz (microseconds); NULL unless positive (a bad value is rejected, not cast)."""
    return f"case when {ns} > 0 then make_timestamp(({ns} // 1000)::bigint)::timestamptz end"


def _tags() -> str:
    """JSON object of every imagecost.tag.* attribute, prefix stripped, values as text."""
    pairs = "list_transform(tag_positions, lambda i, n: tag_keys[n] || to_json(vals[i]))"
    return f"('{{' || array_to_string({pairs}, ',') || '}}')::json"


def _call_columns() -> str:
    columns = [
        mapping.column_sql(f, _resource_value if f.on == "resource" else _span_value) for f in mapping.fields("calls")
    ]
    return ",\n    ".join(columns)


def _spans_statement(*, guarded: bool) -> str:
    """Every span (one JSON parse per line); kept spans keep what their rows are made of.

    ``guarded``: a line that is not UTF-8 JSON reads as NULL (no spans, see ``line_problems``) instead of failing
    the statement. ``try`` makes the parse about a quarter slower, so it is only used once a batch is known to need it.
    """
    parsed = f"from_json(decode(raw), {request_structure()})"
    if guarded:
        parsed = f"try(from_json(try(decode(raw)), {request_structure()}))"
    return f"""
    create temp table spans as
    with requests as (  -- (guarded) a line that is not a request reads as NULL: no spans, see line_problems
        select chunk, line_no, {parsed} as request from raw_lines
    ), resource_spans as (
        select chunk, line_no, unnest(request.resourceSpans) as rs from requests
    ), scope_spans as (
        select chunk, line_no, rs.resource.attributes as rattrs, unnest(rs.scopeSpans) as ss from resource_spans
    ), spans as (
        select chunk, line_no, rattrs, ss.scope.name as scope, unnest(ss.spans) as span from scope_spans
    ), flagged as (
        select chunk, line_no, rattrs, span, {_keys("span.attributes")} as keys,
            coalesce(scope = {sql_string(sc.INSTRUMENTATION_SCOPE)}, false)
                or coalesce(list_contains(keys, {sql_string(sc.ROUTE)}), false) as kept
        from spans
    )
    select chunk, line_no, kept,
        case when kept then keys end as keys,
        case when kept then hash(keys) end as shape,
        case when kept then {_values("span.attributes")} end as vals,
        case when kept then {_keys("rattrs")} end as rkeys,
        case when kept then {_values("rattrs")} end as rvals,
        span.spanId as span_id, span.traceId as trace_id,
        case when kept then try_cast(span.startTimeUnixNano as bigint) end as start_ns,
        case when kept then try_cast(span.endTimeUnixNano as bigint) end as end_ns,
        span.status.code as {OTEL_STATUS_CODE},
        case when kept then span.events end as events
    from flagged
    """


_PIPELINE = (
    # 1. Lines without spans: why they are not a request, if they are not (only those are parsed again).
    f"""
    create temp table line_problems as
    with spanless as (
        select chunk, line_no from (select chunk, line_no from raw_lines) anti join spans using (chunk, line_no)
    ), decoded as (
        select chunk, line_no, try(decode(raw)) as line from raw_lines semi join spanless using (chunk, line_no)
    ),
    typed as (select *, try(json_type(line, '$.resourceSpans')) as kind from decoded)
    select chunk, line_no,
        case
            when line is null then 'not UTF-8 text'
            when regexp_full_match(line, '\\s*') then null
            when not json_valid(line) then '{_NOT_JSON}'
            else 'not an OTLP/JSON ExportTraceServiceRequest (no resourceSpans array)'
        end as problem
    from typed
    where kind is distinct from 'ARRAY'
    """,
    # 2. Each distinct attribute key list's positions (see _SPAN_ATTRIBUTES).
    f"""
    create temp table shapes as
    select shape,
        {_shape_columns()}
    from (select shape, any_value(keys) as keys from spans where kept group by shape)
    """,
    # 3. A line with one unusable kept span is rejected whole.
    f"""
    create temp table rejected as
    select chunk, line_no, problem from line_problems where problem is not null
    union all
    select chunk, line_no, 'span ' || coalesce(min(span_id), '?') || ': ' || min(problem)
    from (select chunk, line_no, span_id, {_span_problem()} as problem from spans join shapes using (shape))
    where problem is not null group by chunk, line_no
    """,
    # 4. The accepted calls' events (the attempts and images selects below unnest them).
    """
    create temp table call_events as
    select lower(span_id) as call_id, events from spans anti join rejected using (chunk, line_no)
    where kept and len(events) > 0
    """,
)

_CALLS_SELECT = f"""
select lower(span_id) as call_id, lower(trace_id) as trace_id,
    {_ns_to_timestamptz("start_ns")} as started_at,
    {_ns_to_timestamptz("end_ns")} as ended_at,
    case when start_ns > 0 and end_ns >= start_ns then (end_ns - start_ns) / 1e9 end as duration_s,
    {_call_columns()},
    {_tags()} as tags,
    s.source as source_file
from spans join shapes using (shape) join chunk_sources s using (chunk) anti join rejected using (chunk, line_no)
"""


def _event_select(table: mapping.Table, event_name: str) -> str:
    """One row per ``event_name`` event of the accepted calls; its position among them is the ordinal."""
    columns = [mapping.column_sql(f, lambda a: mapping.lookup("keys", "vals", a)) for f in mapping.fields(table)]
    started = f", {_ns_to_timestamptz('time_ns')} as started_at" if table == "attempts" else ""
    return f"""
    with named as (
        select call_id, list_filter(events, lambda e: e.name = {sql_string(event_name)}) as evs from call_events
    ), events as (
        select call_id, unnest(evs) as ev, unnest(range(len(evs))) as {EVENT_ORDINAL} from named where len(evs) > 0
    ), lists as (
        select call_id, {EVENT_ORDINAL}, try_cast(ev.timeUnixNano as bigint) as time_ns,
            {_keys("ev.attributes")} as keys, {_values("ev.attributes")} as vals
        from events
    )
    select call_id, {", ".join(columns)}{started} from lists
    """


_STATS_SELECT = """
with lines as (select chunk, count(*) as n from raw_lines group by chunk),
counted as (
    select chunk, count(*) as n, count(*) filter (where kept) as calls
    from spans anti join rejected using (chunk, line_no) group by chunk
)
select l.chunk, l.n, coalesce(s.n, 0), coalesce(s.calls, 0) from lines l left join counted s using (chunk)
"""
