"""`imagecost demo` (the README's main job) end to end: what it leaves in the ledger and image store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from collector.semconv import RETRY_REASONS
from simulator.demo import SCENARIOS
from tests.fixtures.demo import DEMO_CALLS, DemoRun


def _rows(ledger: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(ledger), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_call_lands_once(demo_run: DemoRun) -> None:
    # one logical SDK call per scenario run, retries included, each stored exactly once
    assert _rows(demo_run.ledger, "select count(*), count(distinct call_id) from calls") == [(DEMO_CALLS, DEMO_CALLS)]
    assert f"({DEMO_CALLS} calls)" in demo_run.output


def test_every_retry_cause_and_both_routes_show(demo_run: DemoRun) -> None:
    causes = {
        r[0]
        for r in _rows(demo_run.ledger, "select distinct retry_reason from attempts where retry_reason is not null")
    }
    assert causes == set(RETRY_REASONS)
    owners = _rows(demo_run.ledger, "select route_owner, cost_basis from priced_calls group by all order by all")
    assert owners == [("laozhang.ai", "provider_contract"), ("openai", "official_rates")]
    routes = {r[0] for r in _rows(demo_run.ledger, "select distinct route from calls")}
    assert routes == {"images.generate", "images.edit", "responses"}
    assert len(SCENARIOS) <= DEMO_CALLS  # every scenario ran at least once (demo.plan guarantees it)


def test_traffic_is_spread_over_thirty_days(demo_run: DemoRun) -> None:
    [(days, span)] = _rows(
        demo_run.ledger, "select count(distinct call_day), max(call_day) - min(call_day) from priced_calls"
    )
    assert span == 30 and days >= 25


def test_gateway_calls_cost_the_contract_price(demo_run: DemoRun) -> None:
    # laozhang.ai: USD 0.03 per successful call (charge_failed_calls = false), whatever the tokens
    [(ok_calls, billed)] = _rows(
        demo_run.ledger,
        "select count(*) filter (where status = 'ok'), sum(billed_cost_usd) from priced_calls"
        " where route_owner = 'laozhang.ai'",
    )
    assert ok_calls > 0
    assert round(billed, 6) == round(0.03 * ok_calls, 6)


def test_image_pointers_name_real_files_by_content(demo_run: DemoRun) -> None:
    pointers = _rows(demo_run.ledger, "select distinct uri, sha256, bytes from images")
    assert pointers
    for uri, sha, size in pointers:
        data = Path(uri.removeprefix("file://")).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha, size)


def test_the_spool_is_sealed_and_drained_into_done(demo_run: DemoRun) -> None:
    # the demo shuts its exporter down before ingesting, so the spool file is finished and moved, not left behind
    left = sorted(p.name for p in demo_run.spool.iterdir() if not p.name.startswith("."))
    assert left == ["done"]
    done = list((demo_run.spool / "done").iterdir())
    assert done and all(p.name.endswith(".jsonl") for p in done)
    [(files,)] = _rows(demo_run.ledger, "select count(distinct path) from ingested_files")
    assert files == len(done)
