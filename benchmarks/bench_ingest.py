"""Spool -> ledger throughput of `imagecost ingest`, next to DuckDB and Python merely reading the same files.

    .venv/bin/python benchmarks/bench_ingest.py                 # 25k..200k calls, 2 layouts, ~15 min on 2 cores
    .venv/bin/python benchmarks/bench_ingest.py --calls 50000 --layouts 512 --repeat 1

Spool files are made the way the exporter makes them: 512 realistic call spans (images.generate / edit /
responses, retries, image pointers, tags; built with the OTel SDK from `collector.semconv` names) are encoded
by `collector.otlp_json.encode_request_json_line`, then copied with fresh trace/span ids until N calls exist,
and cut into 16 MiB files (the exporter's default rotation). Two layouts: one span per line (a
SimpleSpanProcessor) and 512 spans per line (the BatchSpanProcessor's default batch).

Per size and layout, in one run (each measurement the fastest of --repeat runs, the machine being shared):
- `ingest_paths` into a fresh ledger: price books, migrations, parse, dedupe, insert, moving files to done/,
  everything the CLI does -> calls/s, and the process CPU seconds it took (calls/cpu-s: per second of one core,
  the figure other programs on a shared machine disturb least);
- DuckDB reading the same files raw: `select count(*) from read_json(...)` ("count(*)"), `create table ... as
  select * from read_ndjson(...)` ("to table"), and `read_json` with the very structure ingest reads, unnested
  ("typed": the "read_json + unnest in SQL" design);
- a Python `json.loads` loop that only walks every span's attributes into a dict ("json.loads").
"ratio" = count(*) time / ingest time (> 1: the whole ingest beats DuckDB's reader merely counting the lines).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402

from collector.otlp_json import encode_request_json_line  # noqa: E402
from collector.spool import DEFAULT_MAX_BYTES, SpoolName  # noqa: E402
from ledger.ingest import ingest_paths  # noqa: E402
from ledger.ingest.reader import request_structure  # noqa: E402
from tests.fixtures.ingest import START_NS, ListExporter, make_image_span, tracer_for  # noqa: E402

TEMPLATE_SPANS = 512
IDS = re.compile(rb'"traceId":"[0-9a-f]{32}","spanId":"[0-9a-f]{16}"')
# The structure ingest reads (ledger.ingest.reader), as a read_json column type: the "read_json + unnest" design.
REQUEST_COLUMN = (
    "'"
    + duckdb.sql(f"select typeof(from_json('{{}}', {request_structure()}))")
    .fetchall()[0][0]
    .replace("STRUCT(resourceSpans ", "", 1)[:-1]
    + "'"
)


def template_spans() -> list:  # list[ReadableSpan]
    """512 varied call spans: routes, owners, sizes, qualities, token counts, retries, errors, images."""
    rng = random.Random(7)
    captured = ListExporter()
    tracer = tracer_for(captured)
    for index in range(TEMPLATE_SPANS):
        route = rng.choices(["images.generate", "images.edit", "responses"], [6, 3, 1])[0]
        retries = rng.choices([0, 1, 2], [85, 12, 3])[0]
        failed = rng.random() < 0.03
        attempts = [
            {
                "ATTEMPT_NUMBER": n,
                "ATTEMPT_STATUS_CODE": 429,
                "ATTEMPT_RETRY_REASON": "rate_limit",
                "ATTEMPT_DURATION": 0.4,
            }
            for n in range(retries)
        ] + [{"ATTEMPT_NUMBER": retries, "ATTEMPT_STATUS_CODE": 400 if failed else 200, "ATTEMPT_DURATION": 9.5}]
        output = rng.choice([196, 272, 1056, 1568, 4160, 6240])
        overrides = {
            "ROUTE": route,
            "ROUTE_OWNER": rng.choice(["openai", "openai", "laozhang.ai"]),
            "IMAGE_SIZE_REQUESTED": rng.choice(["1024x1024", "1536x1024", "1024x1536", "auto"]),
            "IMAGE_QUALITY_REQUESTED": rng.choice(["low", "medium", "high", "auto"]),
            "USAGE_TEXT_INPUT_TOKENS": rng.randint(5, 300),
            "USAGE_IMAGE_OUTPUT_TOKENS": output,
            "GEN_AI_USAGE_OUTPUT_TOKENS": output,
            "ATTEMPT_COUNT": retries + 1,
            "RETRY_REASON": "rate_limit" if retries else None,
            "STATUS": "error" if failed else "ok",
            "ERROR_TYPE": "BadRequestError" if failed else None,
            "MAINLINE_MODEL": "gpt-5.5" if route == "responses" else None,
            "REQUEST_ID": f"req_{index:08x}",
            "tags": {"feature": rng.choice(["hero", "thumb", "avatar"]), "team": rng.choice(["growth", "core"])},
            "attempts": attempts,
            "start_ns": START_NS + index * 1_000_000_000,
        }
        if failed:
            overrides["images"] = []
        make_image_span(tracer, **overrides)  # a None value leaves the attribute out
    return captured.spans


def write_spool(directory: Path, calls: int, spans_per_line: int) -> int:
    """``calls`` (a multiple of 512) calls as spool files, fresh ids per copy of the template; bytes written."""
    spans = template_spans()
    template = b"".join(
        encode_request_json_line(encode_spans(spans[i : i + spans_per_line]))
        for i in range(0, TEMPLATE_SPANS, spans_per_line)
    )
    directory.mkdir(parents=True)
    total, seq, copy, written = 0, 0, 0, 0
    handle = None
    while written < calls:
        counter = iter(range(TEMPLATE_SPANS))

        def fresh(_: re.Match[bytes], c: int = copy, counter: Iterator[int] = counter) -> bytes:
            n = next(counter)
            return b'"traceId":"%032x","spanId":"%016x"' % ((c << 32) | n | (1 << 120), (c << 20) | n | (1 << 60))

        data = IDS.sub(fresh, template)
        if handle is None or handle.tell() + len(data) > DEFAULT_MAX_BYTES:
            if handle:
                handle.close()
            seq += 1
            handle = (directory / f"{SpoolName('bench', 1, '20261124T000000000000Z', seq).stem}.jsonl").open("wb")
        handle.write(data)
        total += len(data)
        written += TEMPLATE_SPANS
        copy += 1
    if handle:
        handle.close()
    return total


def timed(action) -> tuple[float, float, object]:  # (wall s, cpu s, result)
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def python_walk(directory: Path) -> int:
    spans = 0
    for path in sorted(directory.glob("*.jsonl")):
        with path.open("rb") as handle:
            for line in handle:
                for resource in json.loads(line)["resourceSpans"]:
                    for scope in resource["scopeSpans"]:
                        for span in scope["spans"]:
                            attributes = {a["key"]: a["value"] for a in span["attributes"]}
                            spans += len(attributes) > 0
    return spans


def best(repeat: int, action: Callable[[], object]) -> tuple[float, float, object]:
    """The fastest of ``repeat`` runs (wall s, its CPU s, its result): the machine is shared, noise only adds."""
    return min((timed(action) for _ in range(repeat)), key=lambda r: r[0])


def run(workdir: Path, calls: int, spans_per_line: int, repeat: int) -> dict[str, float]:
    source = workdir / f"source-{calls}-{spans_per_line}"
    shutil.rmtree(source, ignore_errors=True)
    size = write_spool(source, calls, spans_per_line)
    spool, ledger = workdir / "spool", workdir / "ledger.duckdb"

    def ingest() -> object:
        shutil.rmtree(spool, ignore_errors=True)
        ledger.unlink(missing_ok=True)
        shutil.copytree(source, spool)  # (not timed)
        os.sync()  # the exporter fsyncs every batch: the spool is on disk before ingest starts
        return timed(lambda: ingest_paths(ledger, [spool]))

    runs = [ingest() for _ in range(repeat)]
    wall, cpu, result = min(runs, key=lambda r: r[0])  # type: ignore[call-overload]
    assert result.calls_added == calls, result.summary()
    pattern = str(source / "*.jsonl")
    con = duckdb.connect()
    count_s, _, counted = best(
        repeat, lambda: con.sql(f"select count(*) from read_json('{pattern}', format='newline_delimited')").fetchall()
    )
    assert counted == [(calls // spans_per_line,)]
    ctas = f"create or replace table raw as select * from read_ndjson('{pattern}')"
    ctas_s, _, _ = best(repeat, lambda: con.execute(ctas))
    typed = f"read_json('{pattern}', format='newline_delimited', columns={{'resourceSpans': {REQUEST_COLUMN}}})"
    typed_sql = f"select sum(len(rs.scopeSpans[1].spans)) from (select unnest(resourceSpans) rs from {typed})"
    typed_s, _, spans = best(repeat, lambda: con.sql(typed_sql).fetchall())
    assert spans == [(calls,)]
    con.close()
    python_s, _, walked = best(repeat, lambda: python_walk(source))
    assert walked == calls
    shutil.rmtree(source)
    shutil.rmtree(spool)
    ledger.unlink()
    return {
        "mb": size / 1e6,
        "ingest_s": wall,
        "cpu_s": cpu,
        "rate": calls / wall,
        "count_s": count_s,
        "ctas_s": ctas_s,
        "typed_s": typed_s,
        "python_s": python_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="25000,50000,100000,200000", help="call counts (rounded up to x512)")
    parser.add_argument("--layouts", default="1,512", help="spans per line, comma-separated")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "ingest")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is shown")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} duckdb={duckdb.__version__}")
    header = (
        f"{'calls':>8} {'spans/line':>10} {'MB':>5} {'ingest s':>9} {'calls/s':>8} {'cpu s':>6} {'calls/cpu-s':>11} "
        f"{'count(*) s':>10} {'ratio':>6} {'to table s':>10} {'typed s':>8} {'json.loads s':>12}"
    )
    run(args.workdir, TEMPLATE_SPANS, 1, 1)  # first use imports pandas (DuckDB's Arrow path) etc.: not per-call work
    print(header)
    for layout in (int(x) for x in args.layouts.split(",")):
        for wanted in (int(x) for x in args.calls.split(",")):
            calls = -(-wanted // TEMPLATE_SPANS) * TEMPLATE_SPANS  # whole copies of the template
            r = run(args.workdir, calls, layout, args.repeat)
            print(
                f"{calls:>8} {layout:>10} {r['mb']:>5.0f} {r['ingest_s']:>9.2f} {r['rate']:>8.0f} {r['cpu_s']:>6.1f} "
                f"{calls / r['cpu_s']:>11.0f} "
                f"{r['count_s']:>10.2f} {r['count_s'] / r['ingest_s']:>6.2f} {r['ctas_s']:>10.2f} "
                f"{r['typed_s']:>8.2f} {r['python_s']:>12.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
