"""Reconciling a month of OpenAI traffic with its bill: import, and the comparison the CLI / dashboard run.

    .venv/bin/python benchmarks/bench_reconcile.py [--calls 100000,1000000] [--repeat 5] [--fresh]

Ledgers: benchmarks/out/recon_<calls>.duckdb (git-ignored, kept between runs; --fresh rebuilds), made by
make_synthetic_ledger.py (30 UTC days ending now, 65 % OpenAI-routed, retries, partials, unknown models).
The bill is derived from the ledger itself, as OpenAI's Costs pages (group_by project_id + line_item) and
Usage pages (project_id + model + size + source), with one planted stale rate (image output at $32/1M on
the third-last day), written to a JSON file. Measured:
- import: ``read_files`` + ``store_bill`` of that file into the ledger, then the same again (idempotent
  re-import: every row replaced);
- reconcile: open read-only, ``reconcile_openai`` over the 30 days (both views, the verdicts), close;
- baseline: the same month's official spend from ``priced_calls`` (one aggregate), to read reconcile as
  a multiple of the simplest question the ledger answers.
One warm-up, then best and median of --repeat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.make_synthetic_ledger import build  # noqa: E402
from ledger.db import connect, migrate  # noqa: E402
from ledger.reconcile import (  # noqa: E402
    load_line_items,
    read_files,
    reconcile_openai,
    store_bill,
    sync_line_item_map,
)

OUT = ROOT / "benchmarks" / "out"
LABELS = {
    "text_input": "text, input",
    "cached_text_input": "text, cached input",
    "image_input": "image, input",
    "cached_image_input": "image, cached input",
    "image_output": "image, output",
    "text_output": "text, output",
}

COSTS_SQL = """
select day, project, model, token_class, tokens, usd_per_1m * tokens / 1e6 as amount
from recon_ledger_lines
where usd_per_1m is not null and tier = 'standard'
order by day, project, model, token_class
"""
IMAGES_SQL = """
select p.call_day as day, coalesce(p.billed_model, '?') as model, p.size,
    case p.route when 'images.generate' then 'image.generation' else 'image.edit' end as source,
    sum(coalesce(p.images_returned, 0))::bigint as images, count(*)::bigint as requests
from priced_calls as p
where p.route_owner = 'openai' and p.route in ('images.generate', 'images.edit') and p.images_returned > 0
group by all
order by all
"""
BASELINE_SQL = (
    "select sum(official_cost_usd) from priced_calls where route_owner = 'openai' and call_day between ? and ?"
)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn()  # warm-up
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return min(runs), statistics.median(runs)


def _epoch(day: Any) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def write_bill(ledger: Path, path: Path) -> tuple[int, Any, Any]:
    """Costs and Usage pages equal to the ledger, except a stale image-output rate on the third-last day."""
    con = connect(ledger)
    try:
        migrate(con)
        sync_line_item_map(con, load_line_items())
        costs = con.sql(COSTS_SQL).fetchall()
        images = con.sql(IMAGES_SQL).fetchall()
    finally:
        con.close()
    days = sorted({row[0] for row in costs})
    stale_day = days[-3]
    buckets: dict[Any, list[dict[str, Any]]] = {d: [] for d in days}
    for day, project, model, token_class, tokens, amount in costs:
        if day == stale_day and token_class == "image_output":
            amount = tokens * 32 / 1e6
        buckets[day].append(
            {
                "object": "organization.costs.result",
                "amount": {"value": amount, "currency": "usd"},
                "line_item": f"{model} {LABELS[token_class]}",
                "project_id": project,
                "quantity": tokens,
                "quantity_unit": "tokens",
            }
        )
    usage: dict[Any, list[dict[str, Any]]] = {d: [] for d in days}
    for day, model, size, source, count, requests in images:
        usage.setdefault(day, []).append(
            {
                "object": "organization.usage.images.result",
                "images": count,
                "num_model_requests": requests,
                "project_id": "default",
                "model": model,
                "size": size,
                "source": source,
            }
        )

    def page(results: dict[Any, list[dict[str, Any]]]) -> dict[str, Any]:
        data = [
            {"object": "bucket", "start_time": _epoch(d), "end_time": _epoch(d) + 86400, "results": r}
            for d, r in sorted(results.items())
        ]
        return {"object": "page", "data": data, "has_more": False, "next_page": None}

    path.write_text(json.dumps([page(buckets), page(usage)]))
    return sum(len(r) for r in buckets.values()) + sum(len(r) for r in usage.values()), days[0], days[-1]


def bench(calls: int, repeat: int, fresh: bool) -> dict[str, Any]:
    ledger = OUT / f"recon_{calls}.duckdb"
    if fresh or not ledger.exists():
        build(ledger, calls, seed=7)
    bill = OUT / f"recon_{calls}_bill.json"
    rows, first, last = write_bill(ledger, bill)

    def import_bill() -> None:
        con = connect(ledger)
        try:
            for origin, found in read_files([bill]):
                store_bill(con, found, origin)
        finally:
            con.close()

    def reconcile() -> None:
        con = connect(ledger, read_only=True)
        try:
            result = reconcile_openai(con, since=first, until=last)
            assert result.costs.height > 0
        finally:
            con.close()

    def baseline() -> None:
        con = connect(ledger, read_only=True)
        try:
            con.execute(BASELINE_SQL, [first, last]).fetchall()
        finally:
            con.close()

    started = time.perf_counter()
    import_bill()
    first_import = time.perf_counter() - started
    reimport = timed(import_bill, repeat)
    recon = timed(reconcile, repeat)
    base = timed(baseline, repeat)
    con = connect(ledger, read_only=True)
    try:
        problems = reconcile_openai(con, since=first, until=last).problems()
    finally:
        con.close()
    assert problems.filter(problems["cause"] == "stale_rate").height >= 1
    return {
        "calls": calls,
        "bill_rows": rows,
        "import": first_import,
        "reimport": reimport[1],
        "recon_best": recon[0],
        "recon_median": recon[1],
        "base_median": base[1],
        "problems": problems.height,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", default="100000,1000000", help="comma-separated ledger sizes")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="rebuild the ledgers")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = [bench(int(n), args.repeat, args.fresh) for n in args.calls.split(",")]
    print(f"\nrun of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, best/median of {args.repeat}\n")
    print(
        "| calls | bill rows | import s | re-import s | reconcile s (best / median) | spend query s | ratio "
        "| rows flagged |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['calls']:,} | {r['bill_rows']:,} | {r['import']:.3f} | {r['reimport']:.3f} | "
            f"{r['recon_best']:.3f} / {r['recon_median']:.3f} | {r['base_median']:.3f} | "
            f"{r['recon_median'] / r['base_median']:.1f}x | {r['problems']} |"
        )


if __name__ == "__main__":
    main()
