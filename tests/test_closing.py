"""Closed periods: ``imagecost close`` / ``reopen``, the ``booked_calls`` view and the report on top of it.

Real DuckDB files, the real CLI (click), facts inserted through ``ledger.facts``. "Today" is pinned with
``--as-of`` / ``$IMAGECOST_AS_OF``; the OS user with ``$LOGNAME``.

Prices (ledger/books, USD): gpt-image-2 text_input 5.00 and image_output 30.00 per 1M tokens, so the default
``call_row`` (81 text input, 1756 image output tokens) costs (81 × 5 + 1756 × 30) / 1e6 = 0.053085;
laozhang.ai charges 0.03 per call (its official shadow price is the same 0.053085).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from ledger.cli import cli
from ledger.closing import close_month, reopen_month
from ledger.db import connect
from ledger.pricebook import load_books, sync_to_ledger
from tests.fixtures.ledger import add_facts, call_row, query, write_book

CALL = (81 * 5.00 + 1756 * 30.00) / 1e6  # 0.053085
LAOZHANG = 0.03
NEW_IMAGE_OUTPUT = 40.00  # the test price change: gpt-image-2 image output 30 -> 40 USD per 1M from 2026-10-15
REPRICED = (81 * 5.00 + 1756 * NEW_IMAGE_OUTPUT) / 1e6  # 0.070645
REPRICE_DIFF = 1756 * (NEW_IMAGE_OUTPUT - 30.00) / 1e6  # 0.01756

PRICE_CHANGE = """
[[rate]]
models = ["gpt-image-2"]
tier = "standard"
effective_from = 2026-10-15
source_url = "https://example.test/corrected-pricing"
checked_on = 2026-11-20
notes = "test fixture: a retroactive correction"
usd_per_1m = { text_input = 5.00, image_output = 40.00 }
"""

# laozhang.ai moves to a CNY contract from 2026-10-15, and no CNY FX rate is loaded: its calls become unpriced
CNY_CONTRACT = """
[[contract]]
provider = "laozhang.ai"
contract_id = "laozhang-cny"
model_pattern = "gpt-image-2*"
unit = "per_call"
price = 0.20
currency = "CNY"
charge_failed_calls = false
effective_from = 2026-10-15
source = "test contract"
"""

BOOKED_EXTRA = [
    "booking_day",
    "booked_at",
    "booking_kind",
    "period_closed",
    "call_count",
    "adjusts_call_id",
    "original_day",
    "adjustment_reason",
    "close_id",
]


def usd(amount: float) -> object:
    """Dollars equal to a trillionth (sums of the same terms in another order differ in the last bit)."""
    return pytest.approx(amount, abs=1e-12)


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "alice")  # getpass.getuser() reads $LOGNAME first
    monkeypatch.delenv("IMAGECOST_AS_OF", raising=False)


@pytest.fixture
def october(ledger_file: Path) -> dict[str, Any]:
    """Three October calls (two OpenAI-routed, one laozhang.ai) and one in November; today is 2026-11-24."""
    calls = {
        "a": call_row(started_at=at(10, 5)),
        "b": call_row(started_at=at(10, 20)),
        "c": call_row(started_at=at(10, 31, 23, 59), route_owner="laozhang.ai"),
        "d": call_row(started_at=at(11, 2)),
    }
    add_facts(ledger_file, calls=list(calls.values()))
    return {"ledger": ledger_file, **{name: row["call_id"] for name, row in calls.items()}}


def imagecost(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def close(ledger: Path, month: str, *extra: str) -> Result:
    return imagecost("close", month, "--ledger", str(ledger), "--as-of", "2026-11-24", *extra)


def report_csv(ledger: Path, *args: str) -> list[dict[str, str]]:
    result = imagecost("report", "--ledger", str(ledger), "--csv", *args)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


def booked(ledger: Path, where: str = "true") -> list[dict[str, Any]]:
    return query(ledger, f"select * from booked_calls where {where} order by booking_day, call_id")


def month_totals(ledger: Path) -> dict[str, tuple[int, float]]:
    """booking month -> (calls, billed USD) summed over booked_calls."""
    rows = query(
        ledger,
        "select strftime(booking_day, '%Y-%m') as month, sum(call_count)::bigint as calls, "
        "sum(billed_cost_usd) as billed from booked_calls group by 1 order by 1",
    )
    return {r["month"]: (r["calls"], r["billed"]) for r in rows}


def events(ledger: Path) -> list[dict[str, Any]]:
    return query(ledger, "select * exclude (event_at) from period_events order by event_id")


def sync_books(ledger: Path, prices_dir: Path) -> None:
    """Re-load the price books into the ledger, as `imagecost init --prices-dir` does after a book change."""
    result = imagecost("init", "--ledger", str(ledger), "--prices-dir", str(prices_dir))
    assert result.exit_code == 0, result.output
    assert " loaded (" in result.output.splitlines()[1]


def test_booked_calls_is_priced_calls_plus_booking_columns(ledger_file: Path) -> None:
    priced = query(ledger_file, "select column_name, column_type from (describe priced_calls)")
    columns = query(ledger_file, "select column_name, column_type from (describe booked_calls)")
    assert columns[: len(priced)] == priced
    assert [c["column_name"] for c in columns[len(priced) :]] == BOOKED_EXTRA


def test_the_closing_tables_have_the_declared_columns(ledger_file: Path) -> None:
    def columns(table: str) -> dict[str, str]:
        return {r["column_name"]: r["column_type"] for r in query(ledger_file, f"select * from (describe {table})")}

    V, D, TSZ, BI, INT, DBL = "VARCHAR", "DATE", "TIMESTAMP WITH TIME ZONE", "BIGINT", "INTEGER", "DOUBLE"
    assert columns("period_events") == {
        "event_id": BI,
        "month": D,
        "event": V,
        "close_id": BI,
        "event_at": TSZ,
        "by_user": V,
        "reason": V,
        "price_book_version": V,
        "row_count": BI,
        "calls": BI,
        "adjustments": BI,
        "unpriced_rows": BI,
        "images": BI,
        "official_usd": DBL,
        "contract_usd": DBL,
        "billed_usd": DBL,
    }
    assert columns("frozen_months") == {"close_id": BI, "month": D, "pricing_inputs": V, "calls": BI}
    booking = {
        "close_id": BI,
        "booking_day": D,
        "booking_kind": V,
        "call_count": INT,
        "adjusts_call_id": V,
        "original_day": D,
        "adjustment_reason": V,
    }
    assert columns("frozen_calls") == booking | columns("priced_calls")  # every priced_calls column, same type


def test_close_freezes_the_month_as_priced_now(october: dict[str, Any]) -> None:
    ledger = october["ledger"]
    at_close = query(ledger, "select * from priced_calls where call_day < date '2026-11-01' order by call_id")

    result = close(ledger, "2026-10", "--reason", "month-end")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [
        "closed 2026-10 (close #1): froze 3 rows",
        "  3 calls, 0 adjustments to earlier closed months, 0 unpriced rows, 3 images",
        # 2 × 0.053085 = 0.106170 official + 0.03 laozhang.ai = 0.136170
        "  billed 0.136170 USD: official_usd 0.106170, contract_usd 0.030000",
    ]
    version = query(ledger, "select version from price_book_loads order by loaded_at desc limit 1")[0]["version"]
    assert lines[3].startswith(f"  price books {version[:12]}; by alice at ")
    assert lines[3].endswith(" UTC; reason: month-end")
    # the frozen rows are an exact copy of priced_calls at close time, every cost column included
    frozen = query(
        ledger,
        "select * exclude (close_id, booking_day, booking_kind, call_count, adjusts_call_id, "
        "original_day, adjustment_reason) from frozen_calls order by call_id",
    )
    assert frozen == at_close
    assert sum(r["billed_cost_usd"] for r in frozen) == usd(2 * CALL + LAOZHANG)
    assert events(ledger) == [
        {
            "event_id": 1,
            "month": date(2026, 10, 1),
            "event": "closed",
            "close_id": 1,
            "by_user": "alice",
            "reason": "month-end",
            "price_book_version": version,
            "row_count": 3,
            "calls": 3,
            "adjustments": 0,
            "unpriced_rows": 0,
            "images": 3,
            "official_usd": usd(2 * CALL),
            "contract_usd": usd(LAOZHANG),
            "billed_usd": usd(2 * CALL + LAOZHANG),
        }
    ]
    rows = booked(ledger)
    assert [(r["call_id"], r["booking_kind"], r["period_closed"], r["booking_day"], r["close_id"]) for r in rows] == [
        (october["a"], "frozen", True, date(2026, 10, 5), 1),
        (october["b"], "frozen", True, date(2026, 10, 20), 1),
        (october["c"], "frozen", True, date(2026, 10, 31), 1),
        (october["d"], "live", False, date(2026, 11, 2), None),
    ]
    assert report_csv(ledger, "--by", "month") == [
        month_row("2026-10", "closed", calls=3, official=f"{2 * CALL:.5f}", contract="0.03", shadow=f"{CALL:.6f}"),
        month_row("2026-11", "open", calls=1, official=f"{CALL:.6f}"),
    ]


def month_row(
    month: str,
    period: str,
    *,
    calls: int,
    official: str = "",
    contract: str = "",
    shadow: str = "",
    unpriced: int = 0,
    adjustments: int = 0,
    images: int | None = None,
) -> dict[str, str]:
    """One `imagecost report --by month --csv` row (money as the CSV prints it)."""
    return {
        "month": month,
        "period": period,
        "calls": str(calls),
        "images": str(calls if images is None else images),
        "official_usd": official,
        "contract_usd": contract,
        "shadow_official_usd": shadow,
        "unpriced_calls": str(unpriced),
        "adjustments": str(adjustments),
    }


def test_a_late_span_is_an_adjustment_in_the_first_open_month(october: dict[str, Any]) -> None:
    ledger = october["ledger"]
    assert close(ledger, "2026-10").exit_code == 0
    late = call_row(started_at=at(10, 12))  # ingested after the close
    assert add_facts(ledger, calls=[late]) == 1

    [adjustment] = booked(ledger, "booking_kind = 'adjustment'")
    assert adjustment["call_id"] == adjustment["adjusts_call_id"] == late["call_id"]
    assert (adjustment["booking_day"], adjustment["original_day"], adjustment["call_day"]) == (
        date(2026, 11, 1),
        date(2026, 10, 12),
        date(2026, 10, 12),
    )
    assert (adjustment["adjustment_reason"], adjustment["call_count"], adjustment["period_closed"]) == (
        "late_call",
        1,
        False,
    )
    # its full live amounts: money, tokens and counts
    assert adjustment["billed_cost_usd"] == usd(CALL)
    assert adjustment["image_official_cost_usd"] == usd(CALL)
    assert (adjustment["image_output_tokens"], adjustment["text_input_tokens"], adjustment["images_returned"]) == (
        1756,
        81,
        1,
    )
    # the closed month is unchanged; November = its call + the adjustment
    assert month_totals(ledger) == {"2026-10": (3, usd(2 * CALL + LAOZHANG)), "2026-11": (2, usd(2 * CALL))}
    assert report_csv(ledger, "--by", "month") == [
        month_row("2026-10", "closed", calls=3, official=f"{2 * CALL:.5f}", contract="0.03", shadow=f"{CALL:.6f}"),
        month_row("2026-11", "open", calls=2, official=f"{2 * CALL:.5f}", adjustments=1),
    ]
    # spend_daily books it on November 1st
    assert query(ledger, "select day, calls, billed_cost_usd from spend_daily where day = date '2026-11-01'") == [
        {"day": date(2026, 11, 1), "calls": 1, "billed_cost_usd": usd(CALL)}
    ]


def test_a_price_change_after_close_is_an_adjustment_not_a_rewrite(october: dict[str, Any], tmp_path: Path) -> None:
    ledger = october["ledger"]
    assert close(ledger, "2026-10").exit_code == 0
    sync_books(ledger, write_book(tmp_path / "prices", "correction.toml", PRICE_CHANGE).parent)
    live = {r["call_id"]: r for r in query(ledger, "select * from priced_calls")}
    assert live[october["b"]]["billed_cost_usd"] == usd(REPRICED)  # 2026-10-20: in the new window
    assert live[october["a"]]["billed_cost_usd"] == usd(CALL)  # 2026-10-05: before it

    adjustments = {r["call_id"]: r for r in booked(ledger, "booking_kind = 'adjustment'")}
    assert set(adjustments) == {october["b"], october["c"]}  # a: same price, no row
    b = adjustments[october["b"]]
    assert (b["booking_day"], b["adjustment_reason"], b["call_count"]) == (date(2026, 11, 1), "price_change", 0)
    # new - old = 1756 × (40 - 30) / 1e6 = 0.01756, per cost column; the call's facts adjust by 0
    assert b["billed_cost_usd"] == b["official_cost_usd"] == b["image_official_cost_usd"] == usd(REPRICE_DIFF)
    assert (b["image_output_tokens"], b["images_returned"]) == (0, 0)
    # laozhang.ai still charges 0.03: only its shadow official price moves
    c = adjustments[october["c"]]
    assert (c["billed_cost_usd"], c["contract_cost_usd"], c["contract_cost"]) == (0, 0, 0)
    assert c["official_cost_usd"] == usd(REPRICE_DIFF)

    # October is exactly what was frozen; November = d at the new price + b's adjustment
    assert month_totals(ledger) == {
        "2026-10": (3, usd(2 * CALL + LAOZHANG)),
        "2026-11": (1, usd(REPRICED + REPRICE_DIFF)),  # 0.070645 + 0.01756 = 0.088205
    }
    assert report_csv(ledger, "--by", "month") == [
        month_row("2026-10", "closed", calls=3, official=f"{2 * CALL:.5f}", contract="0.03", shadow=f"{CALL:.6f}"),
        month_row(
            "2026-11",
            "open",
            calls=1,
            official=f"{REPRICED + REPRICE_DIFF:.6f}",  # 0.088205
            contract="0.0",  # c's adjustment: laozhang.ai still charges 0.03
            shadow=f"{REPRICE_DIFF:.5f}",  # 0.01756: c's shadow price moved
            adjustments=2,
        ),
    ]


def test_a_call_that_becomes_unpriced_adjusts_by_minus_frozen_and_is_flagged(
    october: dict[str, Any], tmp_path: Path
) -> None:
    ledger = october["ledger"]
    assert close(ledger, "2026-10").exit_code == 0
    sync_books(ledger, write_book(tmp_path / "prices", "cny.toml", CNY_CONTRACT).parent)

    [c] = booked(ledger, "booking_kind = 'adjustment'")
    assert c["call_id"] == october["c"]
    assert (c["adjustment_reason"], c["pricing_status"], c["unpriced_reason"]) == (
        "status_change",
        "no_fx_rate",
        "no CNY fx rate on or before 2026-10-31",
    )
    # the 0.03 booked in October is reversed; the new amount is unknown (null), not $0
    assert (c["billed_cost_usd"], c["contract_cost_usd"]) == (usd(-LAOZHANG), usd(-LAOZHANG))
    assert (c["contract_currency"], c["contract_cost"]) == ("CNY", None)  # another currency: not comparable
    assert month_totals(ledger)["2026-10"] == (3, usd(2 * CALL + LAOZHANG))
    assert report_csv(ledger, "--by", "month")[1] == month_row(
        "2026-11", "open", calls=1, official=f"{CALL:.6f}", contract="-0.03", shadow="0.0", unpriced=1, adjustments=1
    )


def test_reopen_records_the_reason_and_the_month_reads_live_again(october: dict[str, Any]) -> None:
    ledger = october["ledger"]
    assert close(ledger, "2026-10").exit_code == 0
    late = call_row(started_at=at(10, 12))
    add_facts(ledger, calls=[late])

    result = imagecost("reopen", "2026-10", "--ledger", str(ledger), "--reason", "late spans from eu-west")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "reopened 2026-10 (close #1 superseded): it reads live again, 4 rows",
        "  4 calls, 0 adjustments to earlier closed months, 0 unpriced rows, 4 images",
        "  billed 0.189255 USD: official_usd 0.159255, contract_usd 0.030000",  # 3 × 0.053085 + 0.03
    ]
    reopened = events(ledger)[-1]
    assert (reopened["event"], reopened["close_id"], reopened["by_user"], reopened["reason"]) == (
        "reopened",
        1,
        "alice",
        "late spans from eu-west",
    )
    assert (reopened["row_count"], reopened["calls"], reopened["billed_usd"]) == (4, 4, usd(3 * CALL + LAOZHANG))
    october_rows = booked(ledger, "booking_day < date '2026-11-01'")
    assert {(r["booking_kind"], r["period_closed"]) for r in october_rows} == {("live", False)}
    assert len(october_rows) == 4
    assert booked(ledger, "booking_kind = 'adjustment'") == []
    assert month_totals(ledger) == {"2026-10": (4, usd(3 * CALL + LAOZHANG)), "2026-11": (1, usd(CALL))}
    # the frozen rows of close #1 stay (superseded), for the audit trail
    assert query(ledger, "select close_id, count(*) as n from frozen_calls group by 1") == [{"close_id": 1, "n": 3}]


def test_closing_again_freezes_a_new_version_and_keeps_the_old_one(october: dict[str, Any]) -> None:
    ledger = october["ledger"]
    assert close(ledger, "2026-10").exit_code == 0
    add_facts(ledger, calls=[call_row(started_at=at(10, 12))])
    assert imagecost("reopen", "2026-10", "--ledger", str(ledger), "--reason", "late spans").exit_code == 0

    result = close(ledger, "2026-10")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "closed 2026-10 (close #2): froze 4 rows"
    assert [(e["event"], e["close_id"], e["row_count"]) for e in events(ledger)] == [
        ("closed", 1, 3),
        ("reopened", 1, 4),
        ("closed", 2, 4),
    ]
    assert query(ledger, "select close_id, count(*) as n from frozen_calls group by 1 order by 1") == [
        {"close_id": 1, "n": 3},
        {"close_id": 2, "n": 4},
    ]
    assert {r["close_id"] for r in booked(ledger, "booking_kind = 'frozen'")} == {2}
    assert month_totals(ledger) == {"2026-10": (4, usd(3 * CALL + LAOZHANG)), "2026-11": (1, usd(CALL))}


def test_closing_the_next_month_freezes_its_adjustments_and_later_changes_book_after_it(
    october: dict[str, Any], tmp_path: Path
) -> None:
    ledger = october["ledger"]
    assert close(ledger, "2026-10").exit_code == 0
    sync_books(ledger, write_book(tmp_path / "prices", "correction.toml", PRICE_CHANGE).parent)
    late = call_row(started_at=at(10, 12))  # before the new window: 0.053085 at both prices
    add_facts(ledger, calls=[late])
    # today is 2026-12-05: November has ended; its close freezes d and the three October adjustments
    result = imagecost("close", "2026-11", "--ledger", str(ledger), "--as-of", "2026-12-05")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        "closed 2026-11 (close #2): froze 4 rows",
        "  2 calls, 3 adjustments to earlier closed months, 0 unpriced rows, 2 images",  # d and the late call
    ]
    assert query(ledger, "select month from close_stale") == []  # nothing changed since: nothing re-priced

    # a second correction: image output 40 -> 50 from 2026-10-15; b is booked at 0.053085 + 0.01756
    write_book(
        tmp_path / "prices", "correction.toml", PRICE_CHANGE.replace("image_output = 40.00", "image_output = 50.00")
    )
    sync_books(ledger, tmp_path / "prices")

    second = 1756 * (50.00 - 40.00) / 1e6  # 0.01756 again, against what is booked (frozen + first adjustment)
    adjustments = {(r["call_id"], r["booking_day"]): r for r in booked(ledger, "booking_kind = 'adjustment'")}
    assert set(adjustments) == {
        (october["b"], date(2026, 11, 1)),  # frozen by the November close
        (october["c"], date(2026, 11, 1)),
        (late["call_id"], date(2026, 11, 1)),  # booked by then: no second late_call row in December
        (october["b"], date(2026, 12, 1)),  # new: both months are closed, December is the first open one
        (october["c"], date(2026, 12, 1)),
        (october["d"], date(2026, 12, 1)),  # d itself: November is closed now
    }
    assert adjustments[(october["b"], date(2026, 12, 1))]["billed_cost_usd"] == usd(second)
    assert adjustments[(october["d"], date(2026, 12, 1))]["billed_cost_usd"] == usd(second)
    assert month_totals(ledger) == {
        "2026-10": (3, usd(2 * CALL + LAOZHANG)),
        "2026-11": (2, usd(REPRICED + REPRICE_DIFF + CALL)),
        "2026-12": (0, usd(2 * second)),
    }
    # October cannot be reopened under a closed November (its adjustments are frozen there)
    blocked = imagecost("reopen", "2026-10", "--ledger", str(ledger), "--reason", "x")
    assert (blocked.exit_code, blocked.output) == (
        1,
        "Error: 2026-10 cannot be reopened while a later month is closed (2026-11); reopen 2026-11 first "
        "(newest first)\n",
    )


def test_closed_months_are_only_repriced_when_their_inputs_change(october: dict[str, Any], tmp_path: Path) -> None:
    ledger = october["ledger"]
    assert close(ledger, "2026-10").exit_code == 0
    stale = "select month from close_stale"
    assert query(ledger, stale) == []
    # a price change from 2026-11-10 cannot touch October: still nothing to re-price
    later_change = PRICE_CHANGE.replace("effective_from = 2026-10-15", "effective_from = 2026-11-10")
    sync_books(ledger, write_book(tmp_path / "prices", "change.toml", later_change).parent)
    assert query(ledger, stale) == []
    assert booked(ledger, "booking_kind = 'adjustment'") == []
    # a late call changes October's call count: re-priced (and found)
    add_facts(ledger, calls=[call_row(started_at=at(10, 12))])
    assert query(ledger, "select month, reprice from close_stale") == [{"month": date(2026, 10, 1), "reprice": False}]
    assert len(booked(ledger, "booking_kind = 'adjustment'")) == 1


def test_closing_a_month_without_calls_records_zero_totals(october: dict[str, Any]) -> None:
    result = close(october["ledger"], "2026-09")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "closed 2026-09 (close #1): froze 0 rows",
        "  0 calls, 0 adjustments to earlier closed months, 0 unpriced rows, 0 images",
        "  billed 0.000000 USD: official_usd 0.000000, contract_usd 0.000000",
    ]
    [event] = events(october["ledger"])
    assert (event["row_count"], event["calls"], event["billed_usd"], event["official_usd"]) == (0, 0, 0.0, 0.0)


def test_close_errors_are_one_line_with_exit_1(october: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = october["ledger"]

    def error(result: Result) -> tuple[int, str]:
        return result.exit_code, result.output

    assert error(close(ledger, "2026-11")) == (
        1,
        "Error: 2026-11 is the current month (today is 2026-11-24 UTC); it can be closed from 2026-12-01 on\n",
    )
    assert error(close(ledger, "2027-01")) == (
        1,
        "Error: 2027-01 is in the future (today is 2026-11-24 UTC); only a month that has ended can be closed\n",
    )
    for bad in ("2026-13", "2026-1", "october", "2026-10-01"):
        assert error(close(ledger, bad)) == (1, f"Error: bad month '{bad}': expected YYYY-MM, e.g. 2026-10\n")
    assert error(imagecost("close", "2026-10", "--ledger", str(ledger), "--as-of", "24/11/2026")) == (
        1,
        "Error: bad --as-of '24/11/2026': expected a UTC date YYYY-MM-DD, e.g. 2026-11-24\n",
    )
    # today from the environment instead of --as-of
    monkeypatch.setenv("IMAGECOST_AS_OF", "2026-10-31")
    assert error(imagecost("close", "2026-10", "--ledger", str(ledger))) == (
        1,
        "Error: 2026-10 is the current month (today is 2026-10-31 UTC); it can be closed from 2026-11-01 on\n",
    )
    monkeypatch.delenv("IMAGECOST_AS_OF")

    assert close(ledger, "2026-10").exit_code == 0
    closed_at = query(ledger, "select event_at from period_events")[0]["event_at"]
    assert error(close(ledger, "2026-10")) == (
        1,
        f"Error: 2026-10 is already closed (close #1, {closed_at:%Y-%m-%d %H:%M} UTC by alice); to close it "
        "again, reopen it first: imagecost reopen 2026-10 --reason TEXT\n",
    )
    assert error(imagecost("reopen", "2026-10", "--ledger", str(ledger))) == (
        1,
        "Error: reopen needs --reason TEXT: say why 2026-10 is reopened (it is recorded)\n",
    )
    assert error(imagecost("reopen", "2026-10", "--ledger", str(ledger), "--reason", "  ")) == (
        1,
        "Error: reopen needs --reason TEXT: say why 2026-10 is reopened (it is recorded)\n",
    )
    assert error(imagecost("reopen", "2026-09", "--ledger", str(ledger), "--reason", "typo")) == (
        1,
        "Error: 2026-09 is not closed, so there is nothing to reopen (closed months: 2026-10)\n",
    )
    assert len(events(ledger)) == 1  # no error left an event behind

    missing = ledger.parent / "nowhere.duckdb"
    assert error(imagecost("close", "2026-10", "--ledger", str(missing), "--as-of", "2026-11-24")) == (
        1,
        f"Error: no ledger at {missing}; create one with `imagecost init --ledger {missing}`\n",
    )
    assert not missing.exists()


def test_report_marks_closed_months_and_adjustments(october: dict[str, Any]) -> None:
    ledger = october["ledger"]
    assert close(ledger, "2026-10").exit_code == 0
    add_facts(ledger, calls=[call_row(started_at=at(10, 12))])

    result = imagecost("report", "--ledger", str(ledger), "--by", "day", "--since", "2026-10-20")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == [
        "day",
        "period",
        "calls",
        "images",
        "official_usd",
        "contract_usd",
        "shadow_official_usd",
        "unpriced_calls",
        "adjustments",
    ]
    assert [line.split() for line in lines[3:8]] == [
        ["2026-10-20", "closed", "1", "1", "0.0531", "–", "–", "0", "0"],
        ["2026-10-31", "closed", "1", "1", "–", "0.0300", "0.0531", "0", "0"],
        ["2026-11-01", "open", "1", "1", "0.0531", "–", "–", "0", "1"],  # the late call of 2026-10-12
        ["2026-11-02", "open", "1", "1", "0.0531", "–", "–", "0", "0"],
        ["total", "4", "4", "0.1593", "0.0300", "0.0531", "0", "1"],  # 3 × 0.053085 = 0.159255
    ]
    assert "closed months read their frozen rows and never change: 2026-10 (close #1)." in lines
    assert (
        "adjustment rows in the sums: 1 (late calls and re-pricing of closed months, booked on the first day "
        "of the first open month after them; see booked_calls.adjustment_reason)." in lines
    )


def test_whatever_happens_each_call_is_booked_once_at_its_live_price(ledger_file: Path, tmp_path: Path) -> None:
    """Nothing lost, nothing doubled: after closes, late calls, price changes, reopens and re-closes, each
    call's booked rows add up to one call at its live price (the fast paths of close_stale included).
    Driven through ledger.closing (the CLI is covered above)."""
    ledger = ledger_file
    add_facts(ledger, calls=[call_row(started_at=at(m, d)) for m, d in ((9, 3), (9, 28), (10, 5), (10, 20), (11, 2))])
    prices = tmp_path / "prices"

    def check() -> None:
        rows = query(
            ledger,
            "select p.call_id, p.billed_cost_usd as live, b.billed, b.calls from priced_calls as p "
            "join (select call_id, sum(billed_cost_usd) as billed, sum(call_count) as calls from booked_calls "
            "group by 1) as b using (call_id)",
        )
        assert len(rows) == len(query(ledger, "select call_id from calls"))
        for row in rows:
            assert (row["billed"], row["calls"]) == (usd(row["live"]), 1), row

    def step(action: Callable[[duckdb.DuckDBPyConnection], object]) -> None:
        con = connect(ledger)
        try:
            action(con)
        finally:
            con.close()
        check()

    def close(month: int, today: date) -> Callable[[duckdb.DuckDBPyConnection], object]:
        return lambda con: close_month(con, date(2026, month, 1), today=today, by_user="alice")

    def reopen(month: int) -> Callable[[duckdb.DuckDBPyConnection], object]:
        return lambda con: reopen_month(con, date(2026, month, 1), by_user="alice", reason="late spans")

    def books(text: str) -> Callable[[duckdb.DuckDBPyConnection], object]:
        write_book(prices, "change.toml", text)
        return lambda con: sync_to_ledger(con, load_books(prices))

    step(close(9, date(2026, 11, 24)))
    step(close(10, date(2026, 11, 24)))
    add_facts(ledger, calls=[call_row(started_at=at(10, 12))])
    step(books(PRICE_CHANGE))
    step(close(11, date(2026, 12, 5)))
    add_facts(ledger, calls=[call_row(started_at=at(9, 15)), call_row(started_at=at(11, 20))])
    step(books(PRICE_CHANGE.replace("2026-10-15", "2026-09-10")))
    step(reopen(11))
    step(reopen(10))
    step(close(10, date(2026, 12, 5)))
    step(close(11, date(2026, 12, 5)))
    assert query(ledger, "select month, reprice from close_stale") == []
