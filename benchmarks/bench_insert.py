"""Insert throughput of ledger.facts.insert_calls against a raw DuckDB insert of the same Arrow table.

    .venv/bin/python benchmarks/bench_insert.py [--rows 1000000] [--repeat 3]

Builds one Arrow table of realistic call rows (all 58 columns of ``calls``), then times, each on a
fresh migrated ledger file in benchmarks/out/ (git-ignored):
  raw                     begin; insert into calls select * from arrow_table; commit
  insert_calls            ledger.facts.insert_calls (by-name alignment, in-batch duplicate check,
                          anti-join against the ledger, one transaction)
  insert_calls, replay    the same batch again: every row already present, 0 added
  insert_calls, new into  a second batch (new call_ids) into a ledger that already holds the first
The cases alternate within each of --repeat rounds; prints best and median wall seconds, rows/s at the
best wall time, the best CPU seconds of the process (all DuckDB threads; other processes on the machine
do not inflate it) and both ratios to raw. Target: insert_calls >= 1M rows/s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.db import connect, migrate  # noqa: E402
from ledger.facts import insert_calls  # noqa: E402

OUT = ROOT / "benchmarks" / "out"

# One synthetic call per i (0 <= i < {rows}), {start} + i * {step_us} µs, shaped like real traffic:
# 70 % OpenAI-routed, 20 % laozhang.ai, 10 % a gateway without contract; 80 % generate, 10 % edit,
# 10 % Responses; a few unknown models, batch-tier calls, missing usage, errors and retries.
SYNTHETIC_CALLS = """
select
    printf('%016x', i + {offset}) as call_id,
    printf('%032x', (i + {offset}) // 3) as trace_id,
    timestamptz '{start}' + to_microseconds((i * {step_us})::bigint) as started_at,
    timestamptz '{start}' + to_microseconds((i * {step_us} + 8000000 + (i % 13) * 1000000)::bigint) as ended_at,
    8.0 + (i % 13) as duration_s,
    'bench-app' as service_name,
    case when i % 10 < 8 then 'images.generate' when i % 10 = 8 then 'images.edit' else 'responses' end as route,
    case when i % 10 < 7 then 'openai' when i % 10 < 9 then 'laozhang.ai' else 'acme-gw' end as route_owner,
    case when i % 10 < 7 then 'api.openai.com' when i % 10 < 9 then 'api.laozhang.ai' else 'gw.acme.test' end
        as server_address,
    443 as server_port,
    case when i % 17 = 0 then 'gpt-image-1.5' when i % 23 = 0 then 'gpt-image-2.5-sunburst'
        when i % 101 = 0 then 'gpt-image-9' else 'gpt-image-2' end as requested_model,
    false as requested_model_assumed,
    case when i % 10 in (7, 8) then 'gpt-image-2' end as reported_model,
    case when i % 10 = 9 then 'gpt-5.5' end as mainline_model,
    case when i % 10 = 9 then 'gpt-5.5-2026-08-01' end as mainline_reported_model,
    case when i % 50 = 0 then 'batch' else 'standard' end as service_tier,
    md5((i + {offset})::varchar) as prompt_hash,
    40 + i % 200 as prompt_length,
    null::varchar as prompt_text,
    case when i % 20 = 0 then 2 else 1 end as n,
    case i % 4 when 0 then '1024x1024' when 1 then '1536x1024' when 2 then 'auto' else '2048x2048' end
        as size_requested,
    case i % 4 when 0 then '1024x1024' when 1 then '1536x1024' when 2 then '1024x1536' else '2048x2048' end
        as size_effective,
    case i % 3 when 0 then 'low' when 1 then 'medium' else 'auto' end as quality_requested,
    case i % 3 when 0 then 'low' when 1 then 'medium' else 'high' end as quality_effective,
    'png' as output_format_requested,
    'png' as output_format_effective,
    null::integer as output_compression,
    'auto' as background_requested,
    'opaque' as background_effective,
    i % 5 = 0 as stream,
    case when i % 5 = 0 then 2 else 0 end as partial_images_requested,
    case when i % 5 = 0 then 2 else 0 end as partial_images_received,
    case when i % 10 = 8 then 1 else 0 end as input_image_count,
    false as mask,
    case when i % 41 = 0 then 0 when i % 20 = 0 then 2 else 1 end as images_returned,
    20 + i % 50 as text_input_tokens,
    case when i % 10 = 8 then 500 else 0 end as image_input_tokens,
    case when i % 10 = 9 then 10 end as cached_text_input_tokens,
    case when i % 10 = 9 then 0 end as cached_image_input_tokens,
    case i % 3 when 0 then 196 when 1 then 1756 else 7024 end as image_output_tokens,
    0 as text_output_tokens,
    20 + i % 50 + case when i % 10 = 8 then 500 else 0 end as input_tokens,
    case i % 3 when 0 then 196 when 1 then 1756 else 7024 end as output_tokens,
    case when i % 10 = 9 then 30 end as mainline_input_tokens,
    case when i % 10 = 9 then 0 end as mainline_cached_input_tokens,
    case when i % 10 = 9 then 40 end as mainline_output_tokens,
    case when i % 97 = 0 then 'missing' else 'reported' end as usage_source,
    case when i % 10 = 9 then 'reported' else 'not_applicable' end as cache_status,
    case when i % 41 = 0 then 'error' else 'ok' end as status,
    case when i % 41 = 0 then 'RateLimitError' end as error_type,
    case when i % 41 = 0 then 'rate_limit_exceeded' end as error_code,
    null::varchar as moderation_stage,
    case when i % 13 = 0 or i % 41 = 0 then 'rate_limit' end as retry_reason,
    1 + (i % 13 = 0)::integer as attempt_count,
    'req_' || (i + {offset}) as request_id,
    json_object('feature', case i % 3 when 0 then 'hero' when 1 then 'thumbnail' else 'avatar' end) as tags,
    'spool/bench-0001.jsonl' as source_file,
    timestamptz '{start}' + to_microseconds((i * {step_us} + 60000000)::bigint) as ingested_at
from range({rows}) as t(i)
"""


def synthetic_calls_sql(rows: int, *, start: str, days: int, offset: int = 0) -> str:
    """The select above for ``rows`` calls spread evenly over ``days`` days from ``start`` (UTC)."""
    return SYNTHETIC_CALLS.format(
        rows=rows, offset=offset, start=f"{start} 00:00:00+00", step_us=days * 86_400_000_000 // rows
    )


def arrow_calls(rows: int, offset: int = 0) -> pa.Table:
    """The synthetic calls as an Arrow table with exactly the ``calls`` schema."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    migrate(con)
    con.execute(f"insert into calls {synthetic_calls_sql(rows, start='2026-11-01', days=30, offset=offset)}")
    return con.sql("select * from calls").to_arrow_table()


def _timed(setup: Callable[[], Path], run: Callable[[duckdb.DuckDBPyConnection], int]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of all this process's threads, rows added) of one run."""
    path = setup()
    con = connect(path)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        added = run(con)
        return time.perf_counter() - wall, time.process_time() - cpu, added
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    batch = arrow_calls(args.rows)
    second = arrow_calls(args.rows, offset=args.rows)  # different call_ids
    template = OUT / "insert_template.duckdb"
    template.unlink(missing_ok=True)
    con = connect(template)
    migrate(con)
    con.close()
    work = OUT / "insert_bench.duckdb"

    def fresh() -> Path:
        work.unlink(missing_ok=True)
        shutil.copyfile(template, work)
        return work

    def holding_batch() -> Path:
        path = fresh()
        con = connect(path)
        insert_calls(con, batch)
        con.close()
        return path

    def raw(con: duckdb.DuckDBPyConnection) -> int:
        arrow_table = batch  # noqa: F841  (read by name in the SQL)
        con.execute("begin")
        added = con.execute("insert into calls select * from arrow_table").fetchall()[0][0]
        con.execute("commit")
        return added

    cases = [
        ("raw insert ... select * from arrow", fresh, raw),
        ("insert_calls", fresh, lambda con: insert_calls(con, batch)),
        ("insert_calls, replay (all present)", holding_batch, lambda con: insert_calls(con, batch)),
        (f"insert_calls, {args.rows:,} new into {args.rows:,}", holding_batch, lambda con: insert_calls(con, second)),
    ]
    # the cases alternate within each round, so a busy machine slows them alike
    walls: dict[str, list[float]] = {name: [] for name, _setup, _run in cases}
    cpus: dict[str, list[float]] = {name: [] for name, _setup, _run in cases}
    added: dict[str, int] = {}
    for _round in range(args.repeat):
        for name, setup, run in cases:
            wall, cpu, added[name] = _timed(setup, run)
            walls[name].append(wall)
            cpus[name].append(cpu)
    raw = cases[0][0]
    mb = batch.nbytes / 1e6
    print(f"{args.rows:,} call rows, {batch.num_columns} columns, {mb:.0f} MB as Arrow; {args.repeat} rounds")
    print(
        f"{'case':<44}{'wall best':>10}{'wall med':>10}{'rows/s':>12}{'CPU best':>10}{'added':>11}"
        f"{'wall/raw':>10}{'CPU/raw':>9}"
    )
    for name, _setup, _run in cases:
        wall, cpu = min(walls[name]), min(cpus[name])
        print(
            f"{name:<44}{wall:>10.3f}{statistics.median(walls[name]):>10.3f}{args.rows / wall:>12,.0f}{cpu:>10.3f}"
            f"{added[name]:>11,}{wall / min(walls[raw]):>9.2f}x{cpu / min(cpus[raw]):>8.2f}x"
        )
    work.unlink(missing_ok=True)
    template.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
