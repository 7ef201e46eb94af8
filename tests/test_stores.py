"""Stores (ledger/stores.py): a read-only connection reads an up-to-date store, anything else reads live,
and either way the rows are the live view's rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ledger import sqlfiles, stores
from ledger.cli import cli
from ledger.db import connect, open_ledger
from tests.fixtures.ledger import add_facts, attempt_row, call_row, query, write_book
from tests.test_pricing import USER_BOOKS, usd

STORES = (
    "priced_calls",
    "dash_failed_attempts",
    "dash_failure_calls",
    "dash_spend_cube",
    "dash_cost_baseline",
    "dash_anomaly_groups",
)
AGGREGATES = STORES[3:]
BY_DAY = ("dash_spend_cube", "dash_anomaly_groups")  # the days from the first new call's on are recomputed


@pytest.fixture
def user_ledger(ledger_factory, tmp_path: Path) -> Path:
    """The pricing tests' books, stores refreshed with them (as ingest leaves a ledger)."""
    write_book(tmp_path / "prices", "test_books.toml", USER_BOOKS)
    path = ledger_factory(tmp_path / "prices")
    refresh(path)
    return path


def mixed_calls(n: int, start: datetime) -> tuple[list[dict], list[dict]]:
    """Calls over four owners (official, CNY per-call contract, charged-retry contract, per-token contract).
    Every third call needed a retry after a 429; every fifth ended in a billing-limit error; one has no usage."""
    owners = ("openai", "cn-gateway", "retry-gw", "tok-gw")
    calls, attempts = [], []
    for i in range(n):
        retried, failed = i % 3 == 0, i % 5 == 4
        call = call_row(
            route_owner=owners[i % 4],
            started_at=start + timedelta(hours=7 * i),
            attempt_count=2 if retried else 1,
            status="error" if failed else "ok",
            retry_reason="billing_limit" if failed else None,
            images_returned=0 if failed else 1,
            usage_source="missing" if i == 7 else "reported",
        )
        calls.append(call)
        if retried:
            attempts.append(attempt_row(call["call_id"], 0))  # a 429 rate limit
        last = {"attempt_number": 1 if retried else 0}
        if failed:
            last |= {
                "error_type": "insufficient_quota",
                "error_code": "billing_hard_limit_reached",
                "retry_reason": "billing_limit",
            }
        else:
            last |= {"status_code": 200, "error_type": None, "error_code": None, "retry_reason": None}
        attempts.append(attempt_row(call["call_id"], **last))
    return calls, attempts


def reads_store(ledger: Path) -> dict[str, bool]:
    """Per store: does a read-only connection read its table (rather than the live view)?"""
    con = connect(ledger, read_only=True)
    try:
        return {
            s: con.execute(f"select getvariable('{stores.variable(s)}')").fetchall()[0][0] is not None for s in STORES
        }
    finally:
        con.close()


def same_rows(ledger: Path, store: str) -> None:
    """The view a reader sees holds exactly the live view's rows (both ways, duplicates counted)."""
    live = sqlfiles.stores()[store]
    con = connect(ledger, read_only=True)
    try:
        for a, b in ((store, live), (live, store)):
            extra = con.execute(f"select count(*) from (from {a} except all from {b})").fetchall()[0][0]
            assert extra == 0, f"{a} has {extra} row(s) that {b} lacks"
    finally:
        con.close()


def live_rows(ledger: Path, store: str) -> int:
    return query(ledger, f"select count(*) as n from {sqlfiles.stores()[store]}")[0]["n"]


def refresh(ledger: Path, **kwargs) -> stores.RefreshResult:
    with open_ledger(ledger) as con:
        return stores.refresh(con, **kwargs)


def test_every_store_table_has_its_live_columns_on_an_empty_ledger(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    with open_ledger(path) as con:
        assert set(sqlfiles.stores()) == set(STORES)
        for store, live in sqlfiles.stores().items():
            assert (
                con.execute(f"describe {stores.table(store)}").fetchall()
                == con.execute(f"describe select * from {live}").fetchall()
            )
        assert stores.fresh(con) == []  # never refreshed: nothing is read from a store
        assert stores.refresh(con).rebuilt == dict.fromkeys(STORES, 0)
        assert sorted(stores.fresh(con)) == sorted(STORES)


def test_refreshed_stores_are_read_and_equal_the_live_views(user_ledger: Path) -> None:
    calls, attempts = mixed_calls(20, datetime(2026, 11, 2, tzinfo=UTC))
    add_facts(user_ledger, calls=calls, attempts=attempts)
    assert reads_store(user_ledger) == dict.fromkeys(STORES, False)  # behind: live
    result = refresh(user_ledger)
    assert result.appended == {"priced_calls": 20, "dash_failed_attempts": 11, "dash_failure_calls": 10}
    assert result.recomputed == {store: (date(2026, 11, 2), live_rows(user_ledger, store)) for store in BY_DAY}
    assert result.rebuilt == {"dash_cost_baseline": live_rows(user_ledger, "dash_cost_baseline")}
    assert query(user_ledger, "select sum(calls) as n from dash_spend_cube")[0]["n"] == 20
    assert reads_store(user_ledger) == dict.fromkeys(STORES, True)
    for store in STORES:
        same_rows(user_ledger, store)
    # one figure by hand: the CNY per-call contract on 11-02 (fx 0.14 from 11-01) for an ok call
    row = query(user_ledger, "select * from priced_calls where call_id = ?", [calls[1]["call_id"]])[0]
    assert (row["contract_id"], row["contract_cost_usd"]) == ("cn-gw-2026", usd(0.20 * 0.14))
    assert refresh(user_ledger).summary() == "stores already up to date"


def test_a_store_behind_the_ledger_is_not_read_and_nothing_is_missed(user_ledger: Path) -> None:
    calls, attempts = mixed_calls(8, datetime(2026, 11, 2, tzinfo=UTC))
    add_facts(user_ledger, calls=calls, attempts=attempts)
    refresh(user_ledger)
    late = call_row(started_at=datetime(2026, 11, 20, tzinfo=UTC))
    add_facts(user_ledger, calls=[late], attempts=[attempt_row(late["call_id"], 0)])
    assert reads_store(user_ledger) == dict.fromkeys(STORES, False)
    rows = query(user_ledger, "select call_id, billed_cost_usd from priced_calls where call_id = ?", [late["call_id"]])
    assert rows == [{"call_id": late["call_id"], "billed_cost_usd": usd((81 * 5.00 + 1756 * 30.00) / 1e6)}]
    assert query(user_ledger, "select count(*) as n from priced_calls") == [{"n": 9}]
    assert refresh(user_ledger).appended == {"priced_calls": 1, "dash_failed_attempts": 1, "dash_failure_calls": 1}
    for store in STORES:
        same_rows(user_ledger, store)


def test_price_book_change_rebuilds_with_the_new_rate(user_ledger: Path, tmp_path: Path) -> None:
    calls, attempts = mixed_calls(8, datetime(2026, 11, 2, tzinfo=UTC))
    add_facts(user_ledger, calls=calls, attempts=attempts)
    refresh(user_ledger)
    cn = calls[1]["call_id"]
    with open_ledger(user_ledger) as con:  # as if the books were edited by hand: the hash changes
        con.execute("update provider_contracts set price = 0.30 where contract_id = 'cn-gw-2026'")
    assert reads_store(user_ledger)["priced_calls"] is False
    assert query(user_ledger, "select contract_cost from priced_calls where call_id = ?", [cn]) == [
        {"contract_cost": usd(0.30)}
    ]
    assert refresh(user_ledger).rebuilt == {
        "priced_calls": 8,
        "dash_failed_attempts": 4,
        "dash_failure_calls": 4,
        **{store: live_rows(user_ledger, store) for store in AGGREGATES},
    }
    assert reads_store(user_ledger)["priced_calls"] is True
    assert query(user_ledger, "select contract_cost from priced_calls where call_id = ?", [cn]) == [
        {"contract_cost": usd(0.30)}
    ]


def test_calls_older_than_the_last_refresh_force_a_rebuild(user_ledger: Path) -> None:
    calls, attempts = mixed_calls(4, datetime(2026, 11, 2, tzinfo=UTC))
    add_facts(user_ledger, calls=calls, attempts=attempts)
    refresh(user_ledger)
    # a call stamped as ingested before the refresh (a clock set back): appending would miss it
    old = call_row(ingested_at=datetime(2000, 1, 1, tzinfo=UTC))
    add_facts(user_ledger, calls=[old])
    result = refresh(user_ledger)
    assert (result.appended, result.rebuilt["priced_calls"]) == ({}, 5)
    same_rows(user_ledger, "priced_calls")


def test_a_store_whose_columns_changed_is_recreated_empty_and_not_read(user_ledger: Path) -> None:
    add_facts(user_ledger, calls=[call_row()])
    refresh(user_ledger)
    with open_ledger(user_ledger) as con:  # as if an older version had made it with other columns
        con.execute("alter table priced_calls_store drop column tags")
    with open_ledger(user_ledger) as con:  # migrate recreates it
        assert con.execute("select count(*) from priced_calls_store").fetchall() == [(0,)]
        assert "priced_calls" not in stores.fresh(con)
    assert query(user_ledger, "select count(*) as n from priced_calls") == [{"n": 1}]
    assert refresh(user_ledger).rebuilt["priced_calls"] == 1


def test_close_and_reopen_refresh_the_spend_cube(user_ledger: Path) -> None:
    calls, attempts = mixed_calls(8, datetime(2026, 10, 20, tzinfo=UTC))  # October and November
    add_facts(user_ledger, calls=calls, attempts=attempts)
    runner = CliRunner()
    for args in (["close", "2026-10", "--as-of", "2026-11-20"], ["reopen", "2026-10", "--reason", "late invoice"]):
        done = runner.invoke(cli, [*args, "--ledger", str(user_ledger)])
        assert done.exit_code == 0, done.output
        assert reads_store(user_ledger) == dict.fromkeys(STORES, True)
        same_rows(user_ledger, "dash_spend_cube")
    with open_ledger(user_ledger) as con:
        assert con.execute("select period_events from store_state where store = 'dash_spend_cube'").fetchall() == [(2,)]


def test_by_day_stores_recompute_from_the_first_new_day_and_book_late_calls_as_adjustments(user_ledger: Path) -> None:
    calls, attempts = mixed_calls(20, datetime(2026, 10, 28, tzinfo=UTC))  # 10-28 .. 11-02
    add_facts(user_ledger, calls=calls, attempts=attempts)
    refresh(user_ledger)
    closed = CliRunner().invoke(cli, ["close", "2026-10", "--as-of", "2026-11-20", "--ledger", str(user_ledger)])
    assert closed.exit_code == 0, closed.output
    with open_ledger(user_ledger) as con:  # the close changed the booked rows: the aggregates were rebuilt
        rebuilt = con.execute("select store from store_state where rebuilt_at = refreshed_at order by store")
        assert rebuilt.fetchall() == [(s,) for s in sorted(AGGREGATES)]

    recent = call_row(started_at=datetime(2026, 11, 2, 23, tzinfo=UTC))
    add_facts(user_ledger, calls=[recent], attempts=[attempt_row(recent["call_id"], 0)])
    result = refresh(user_ledger)
    assert {store: day for store, (day, _rows) in result.recomputed.items()} == dict.fromkeys(BY_DAY, date(2026, 11, 2))
    assert set(result.rebuilt) == {"dash_cost_baseline"}
    for store in STORES:
        same_rows(user_ledger, store)

    # A late call in closed October: its own day is recomputed, and its adjustment lands on 11-01, a later day.
    late = call_row(started_at=datetime(2026, 10, 29, 5, tzinfo=UTC))
    add_facts(user_ledger, calls=[late], attempts=[attempt_row(late["call_id"], 0)])
    result = refresh(user_ledger)
    assert {store: day for store, (day, _rows) in result.recomputed.items()} == dict.fromkeys(
        BY_DAY, date(2026, 10, 29)
    )
    for store in STORES:
        same_rows(user_ledger, store)
    late_booking = query(
        user_ledger,
        "select booking_day::varchar as day, booking_kind, call_count from booked_calls where call_id = ?",
        [late["call_id"]],
    )
    assert late_booking == [{"day": "2026-11-01", "booking_kind": "adjustment", "call_count": 1}]
    assert query(user_ledger, "select sum(calls) as n from dash_spend_cube") == [{"n": 22}]


def test_a_new_store_is_built_alone(user_ledger: Path) -> None:
    calls, attempts = mixed_calls(6, datetime(2026, 11, 2, tzinfo=UTC))
    add_facts(user_ledger, calls=calls, attempts=attempts)
    refresh(user_ledger)
    with open_ledger(user_ledger) as con:  # as when an upgrade adds a store: no state yet
        con.execute("delete from store_state where store = 'dash_cost_baseline'")
    baseline = query(user_ledger, "select count(*) as n from dash_cost_baseline_live")[0]["n"]
    result = refresh(user_ledger)
    assert (result.appended, result.rebuilt) == ({}, {"dash_cost_baseline": baseline})
    assert reads_store(user_ledger) == dict.fromkeys(STORES, True)


def test_writers_read_live(user_ledger: Path) -> None:
    add_facts(user_ledger, calls=[call_row()])
    refresh(user_ledger)
    with open_ledger(user_ledger) as con:
        assert con.execute("select getvariable('imagecost_store_priced_calls')").fetchall() == [(None,)]


def test_refresh_cli(user_ledger: Path, tmp_path: Path) -> None:
    add_facts(user_ledger, calls=[call_row(), call_row()])
    runner = CliRunner()
    done = runner.invoke(cli, ["refresh", "--ledger", str(user_ledger)])
    assert (done.exit_code, done.output) == (
        0,
        "stores refreshed: priced_calls +2 row(s), dash_failed_attempts +0 row(s), dash_failure_calls +0 row(s), "
        "dash_anomaly_groups from 2026-11-03 (0 row(s)), dash_spend_cube from 2026-11-03 (1 row(s)), "
        "dash_cost_baseline rebuilt (1 row(s))\n",
    )
    done = runner.invoke(cli, ["refresh", "--ledger", str(user_ledger), "--rebuild"])
    assert done.output.startswith("stores refreshed: priced_calls rebuilt (2 row(s))")
    missing = runner.invoke(cli, ["refresh", "--ledger", str(tmp_path / "nope.duckdb")])
    assert missing.exit_code == 1
    assert missing.output.strip().splitlines() == [
        f"Error: no ledger at {tmp_path / 'nope.duckdb'}; create one with `imagecost init`"
    ]


def test_a_file_without_stores_reads_live(tmp_path: Path) -> None:
    path = tmp_path / "plain.duckdb"
    duckdb.connect(str(path)).close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert stores.use_fresh(con) == []  # not an imagecost ledger: nothing to use, and no error
    finally:
        con.close()
