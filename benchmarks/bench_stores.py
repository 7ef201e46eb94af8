"""What the stores (ledger/stores.py) cost and buy on a large ledger, all in one run on a copy of it.

    .venv/bin/python benchmarks/make_synthetic_ledger.py --calls 10000000 --out benchmarks/out/dash-10m.duckdb
    .venv/bin/python benchmarks/bench_stores.py --ledger benchmarks/out/dash-10m.duckdb [--new 20000]

1. the full rebuild (what the first refresh, or one after a price-book change, does) and the file growth;
2. a refresh after --new calls copied from existing ones with fresh ids and a new ingested_at (as one
   ingest run adds them), moved to the ledger's last day, then as many more left on their own days (late
   spans); each followed by ``stores.refresh`` (what ``imagecost ingest`` does after its batches);
3. the cost of the freshness check every read-only connection makes (open + ``use_fresh`` vs a bare open);
4. three reads, live (a writer's connection) vs through the stores (a reader's connection).
Wall and process CPU seconds; the copy is deleted at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from ledger import stores  # noqa: E402
from ledger.db import connect, open_ledger  # noqa: E402

READS = {
    "month-to-date spend by route owner": (
        "select route_owner, count(*), sum(billed_cost_usd) from priced_calls "
        "where call_day >= date_trunc('month', current_date) group by 1"
    ),
    "retry spend by cause (dash_retry_spend)": "select cause, sum(calls), sum(failed_spend_usd) from dash_retry_spend "
    "group by 1",
    "failed attempts by cause x owner": "select cause, route_owner, count(*), count(distinct call_id) "
    "from dash_failed_attempts group by all",
}


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--new", type=int, default=20_000, help="calls added before the append refresh")
    parser.add_argument("--opens", type=int, default=30, help="read-only opens timed for the freshness check")
    args = parser.parse_args()
    copy = args.ledger.with_name(args.ledger.stem + "-stores-bench.duckdb")
    shutil.copyfile(args.ledger, copy)
    try:
        run(copy, args.new, args.opens)
    finally:
        copy.unlink(missing_ok=True)
        Path(str(copy) + ".wal").unlink(missing_ok=True)


def run(ledger: Path, new: int, opens: int) -> None:
    before = ledger.stat().st_size
    with open_ledger(ledger) as con:
        calls = con.execute("select count(*) from calls").fetchall()[0][0]
        wall, cpu, result = timed(lambda: stores.refresh(con, rebuild=True))
        con.execute("checkpoint")
    print(f"ledger: {calls:,} calls, {before / 1e9:.2f} GB before stores, {ledger.stat().st_size / 1e9:.2f} GB after")
    print(f"{'step':<48} {'wall s':>8} {'cpu s':>8}")
    print(f"{'full rebuild: ' + result.summary()[len('stores refreshed: ') :][:33]:<48} {wall:8.2f} {cpu:8.2f}")

    # New calls, as one ingest run would add them (the generator dates ingested_at 2 minutes after started_at,
    # up to now: the new ones come after all of those). First calls of the ledger's last day (what a scheduled
    # ingest brings), then as many spread over the whole history (late spans: by-day stores redo every day).
    for tag, when in (("of the last day", "recent"), ("spread over all days", "spread")):
        with open_ledger(ledger) as con:
            shift = (
                "to_days(date_diff('day', started_at::date, (select max(started_at)::date from calls)))"
                if when == "recent"
                else "interval 0 day"
            )
            con.execute(
                f"insert into calls by name select * replace (md5(call_id || '{when}')[:16] as call_id, "
                f"started_at + {shift} as started_at, ended_at + {shift} as ended_at, "
                "(select max(ingested_at) from calls) + interval 1 second as ingested_at) "
                f"from calls using sample {new} rows"
            )
            wall, cpu, result = timed(lambda: stores.refresh(con))
        print(f"{f'refresh after {new:,} new calls {tag}':<48} {wall:8.2f} {cpu:8.2f}   ({result.summary()})")

    def open_close(check: bool) -> float:
        started = time.perf_counter()
        con = connect(ledger, read_only=True) if check else duckdb.connect(str(ledger), read_only=True)
        con.close()
        return time.perf_counter() - started

    samples: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(opens):
        for check in (False, True):
            samples[check].append(open_close(check))
    added = statistics.median(samples[True]) - statistics.median(samples[False])
    print(f"{'read-only open: freshness check (median added)':<48} {added:8.3f}")

    writer = connect(ledger)  # a writer's connection reads live
    for title, sql in READS.items():
        wall, cpu, _ = timed(lambda sql=sql: writer.execute(sql).fetchall())
        print(f"{title + ' (live)':<48} {wall:8.2f} {cpu:8.2f}")
    writer.close()
    reader = connect(ledger, read_only=True)
    for title, sql in READS.items():
        wall, cpu, _ = timed(lambda sql=sql: reader.execute(sql).fetchall())
        print(f"{title + ' (store)':<48} {wall:8.2f} {cpu:8.2f}")
    reader.close()


if __name__ == "__main__":
    main()
