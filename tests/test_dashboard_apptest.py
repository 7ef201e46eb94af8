"""Every dashboard page under Streamlit's AppTest, on a ledger with 30 days of realistic traffic.

Each figure the page shows is compared with a total this test computes itself, in its own SQL
against ``priced_calls`` / the base tables (or in Python), never through the dashboard's views.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import dashboard
from dashboard import data
from dashboard.pages import spend
from ledger.db import connect
from ledger.errors import UserError
from ledger.estimator import EstimateRequest, estimate, output_tokens
from ledger.pricebook import load_books
from tests.fixtures.ledger import add_facts, call_row

APP = Path(dashboard.__file__).parent / "app.py"
OpenApp = Callable[..., AppTest]


def rows(ledger: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    con = connect(ledger, read_only=True)
    try:
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def one(ledger: Path, query: str, params: tuple[object, ...] = ()) -> Any:
    return rows(ledger, query, params)[0][0]


def usd(amount: float | None, digits: int = 2) -> str:
    """How the dashboard shows money: $1,234.57; nothing priced shows as a dash, never $0."""
    return "–" if amount is None else f"${amount:,.{digits}f}"


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert len(found) == 1, f"metric {label!r}: {[m.label for m in at.metric]}"
    return found[0]


def tables(at: AppTest, *columns: str) -> list[pd.DataFrame]:
    """The dataframes on the page whose first columns are ``columns``, in page order."""
    return [d.value for d in at.dataframe if tuple(d.value.columns[: len(columns)]) == columns]


def table(at: AppTest, *columns: str) -> pd.DataFrame:
    """The one dataframe on the page whose first columns are ``columns``."""
    found = tables(at, *columns)
    assert len(found) == 1, f"{columns}: {[tuple(d.value.columns) for d in at.dataframe]}"
    return found[0]


def same(shown: Any, expected: Any) -> bool:
    """A shown cell equals the expected SQL value (a null shows as NaN/None)."""
    if expected is None:
        return shown is None or (isinstance(shown, float) and math.isnan(shown))
    return shown == pytest.approx(expected, rel=1e-9, abs=1e-9)


def gateway_owner(ledger: Path) -> str:
    """The busiest route owner other than OpenAI (a gateway billed by contract)."""
    return one(ledger, "select route_owner from calls where route_owner <> 'openai' group by 1 order by count(*) desc")


def top_feature(ledger: Path, owner: str) -> str:
    """The feature tag most used on ``owner``'s calls."""
    return one(
        ledger,
        "select json_extract_string(tags, '$.feature') as f from calls where route_owner = ? and f is not null "
        "group by f order by count(*) desc, f limit 1",
        (owner,),
    )


def today() -> date:
    return datetime.now(UTC).date()


def period() -> tuple[date, date]:
    return today() - timedelta(days=29), today()


@pytest.fixture
def open_app(monkeypatch: pytest.MonkeyPatch) -> OpenApp:
    def _open(ledger: Path, page: str | None = None) -> AppTest:
        monkeypatch.setenv("IMAGECOST_LEDGER", str(ledger))
        st.cache_data.clear()
        at = AppTest.from_file(str(APP), default_timeout=30).run()
        if page:
            at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


# --- Spend ----------------------------------------------------------------------------------------


def spend_sql(ledger: Path, start: date, end: date, extra: str = "") -> tuple[float, int, int]:
    """(priced spend, calls, unpriced calls) between two UTC days, from priced_calls."""
    total = one(
        ledger,
        f"select sum(billed_cost_usd) from priced_calls where pricing_status = 'priced' "
        f"and call_day between ? and ? {extra}",
        (start, end),
    )
    calls, unpriced = rows(
        ledger,
        f"select count(*), count(*) filter (where pricing_status <> 'priced') from priced_calls "
        f"where call_day between ? and ? {extra}",
        (start, end),
    )[0]
    return total or 0.0, calls, unpriced


def test_spend_page_figures_equal_sql(open_app: OpenApp, dashboard_ledger: Path) -> None:
    at = open_app(dashboard_ledger)
    assert at.title[0].value == "Spend"
    start, end = period()
    day_total, _, _ = spend_sql(dashboard_ledger, today(), today())
    month_total, _, _ = spend_sql(dashboard_ledger, today().replace(day=1), today())
    total, calls, unpriced = spend_sql(dashboard_ledger, start, end)
    assert day_total > 0 and unpriced > 0
    assert metric(at, "Today (UTC)") == usd(day_total)
    assert metric(at, "Month to date") == usd(month_total)
    assert metric(at, "Selected period") == usd(total)
    assert metric(at, "Calls in period") == f"{calls:,}"
    assert metric(at, "Unpriced calls") == f"{unpriced:,}"
    assert f"{unpriced:,} calls in this period have no price" in at.warning[0].value

    owners = table(at, "route_owner").set_index("route_owner")
    expected = rows(
        dashboard_ledger,
        """
        select route_owner, count(*), sum(images_returned),
            sum(official_cost_usd) filter (where pricing_status = 'priced' and cost_basis = 'official_rates'),
            sum(contract_cost_usd) filter (where pricing_status = 'priced' and cost_basis = 'provider_contract'),
            sum(official_cost_usd) filter (where cost_basis = 'provider_contract'),
            count(*) filter (where pricing_status <> 'priced')
        from priced_calls where call_day between ? and ? group by route_owner
        """,
        (start, end),
    )
    assert sorted(owners.index) == sorted(r[0] for r in expected)
    for owner, n, images, official, contract, shadow, unpriced_n in expected:
        row = owners.loc[owner]
        assert (row["calls"], row["images"], row["unpriced_calls"]) == (n, images, unpriced_n)
        assert same(row["official_spend_usd"], official)
        assert same(row["contract_spend_usd"], contract)
        assert same(row["shadow_official_usd"], shadow)
    # the gateway is billed by its contract, and its shadow official cost is shown beside it, never added
    assert same(owners.loc["openai", "contract_spend_usd"], None)
    gateway = gateway_owner(dashboard_ledger)
    assert owners.loc[gateway, "shadow_official_usd"] > 0
    assert owners.loc[gateway, "contract_in_currency"].endswith(" USD")

    models = table(at, "model").set_index("model")
    for model, n, money, unpriced_n in rows(
        dashboard_ledger,
        """
        select coalesce(billed_model, requested_model), count(*),
            sum(billed_cost_usd) filter (where pricing_status = 'priced'),
            count(*) filter (where pricing_status <> 'priced')
        from priced_calls where call_day between ? and ? group by 1
        """,
        (start, end),
    ):
        assert models.loc[model, "calls"] == n and models.loc[model, "unpriced_calls"] == unpriced_n
        assert same(models.loc[model, "spend_usd"], money)
    # a model nothing could price (unknown to the price books) is counted, never shown as $0
    for (never_priced,) in rows(
        dashboard_ledger,
        "select coalesce(billed_model, requested_model) from priced_calls where call_day between ? and ? "
        "group by 1 having count(*) filter (where pricing_status = 'priced') = 0",
        (start, end),
    ):
        assert same(models.loc[never_priced, "spend_usd"], None)
        assert models.loc[never_priced, "unpriced_calls"] == models.loc[never_priced, "calls"] > 0

    features = table(at, "feature").set_index("feature")
    for feature, money in rows(
        dashboard_ledger,
        """
        select coalesce(json_extract_string(tags, '$.feature'), '(untagged)'),
            sum(billed_cost_usd) filter (where pricing_status = 'priced')
        from priced_calls where call_day between ? and ? group by 1
        """,
        (start, end),
    ):
        assert same(features.loc[feature, "spend_usd"], money)

    sizes = table(at, "size", "quality").set_index(["size", "quality"])
    for size, quality, money, priced_images in rows(
        dashboard_ledger,
        """
        select size, quality, sum(billed_cost_usd) filter (where pricing_status = 'priced'),
            sum(images_returned) filter (where pricing_status = 'priced')
        from priced_calls where call_day between ? and ? group by all
        """,
        (start, end),
    ):
        assert same(sizes.loc[(size, quality), "spend_usd"], money)
        assert same(sizes.loc[(size, quality), "per_image_usd"], money / priced_images if priced_images else None)

    assert len(at.get("vega_lite_chart")) == 1  # the daily trend, split by cost basis
    assert at.get("download_button")[0].proto.label == "Download daily spend (CSV)"


def test_spend_filters_change_the_figures(open_app: OpenApp, dashboard_ledger: Path) -> None:
    at = open_app(dashboard_ledger)
    start, end = period()
    gateway = gateway_owner(dashboard_ledger)
    at.multiselect(key="spend_owners").set_value([gateway]).run()
    total, calls, _ = spend_sql(dashboard_ledger, start, end, f"and route_owner = '{gateway}'")
    assert metric(at, "Selected period") == usd(total)
    assert metric(at, "Calls in period") == f"{calls:,}"
    assert list(table(at, "route_owner")["route_owner"]) == [gateway]

    feature = top_feature(dashboard_ledger, gateway)
    at.multiselect(key="spend_features").set_value([feature]).run()
    both = f"and route_owner = '{gateway}' and json_extract_string(tags, '$.feature') = '{feature}'"
    total, calls, _ = spend_sql(dashboard_ledger, start, end, both)
    assert metric(at, "Selected period") == usd(total)
    assert metric(at, "Calls in period") == f"{calls:,}"
    month_total, _, _ = spend_sql(dashboard_ledger, today().replace(day=1), today(), both)
    assert metric(at, "Month to date") == usd(month_total)

    week = (today() - timedelta(days=6), today())
    at.multiselect(key="spend_owners").set_value([]).run()
    at.multiselect(key="spend_features").set_value([]).run()
    at.date_input(key="spend_period").set_value(week).run()
    total, calls, _ = spend_sql(dashboard_ledger, *week)
    assert metric(at, "Selected period") == usd(total)
    assert metric(at, "Calls in period") == f"{calls:,}"


def test_spend_csv_has_every_priced_dollar(dashboard_ledger: Path) -> None:
    start, end = period()
    st.cache_data.clear()
    csv = pl.read_csv(spend.daily_table(spend.load_cube(str(dashboard_ledger), start, end)).write_csv().encode())
    assert csv.columns[:5] == ["day", "route_owner", "model", "cost_basis", "feature"]
    by_day = dict(
        rows(
            dashboard_ledger,
            "select call_day::varchar, sum(billed_cost_usd) from priced_calls "
            "where pricing_status = 'priced' and call_day between ? and ? group by 1",
            (start, end),
        )
    )
    shown = csv.group_by("day").agg(pl.col("spend_usd").sum())
    assert {r["day"]: pytest.approx(r["spend_usd"]) for r in shown.to_dicts()} == by_day
    assert csv["calls"].sum() == one(
        dashboard_ledger, "select count(*) from priced_calls where call_day between ? and ?", (start, end)
    )


# --- Retry causes ---------------------------------------------------------------------------------


def failed_attempts_sql(ledger: Path, extra: str = "") -> int:
    start, end = period()
    return one(
        ledger,
        f"select count(*) from attempts a join calls c on c.call_id = a.call_id "
        f"where a.retry_reason is not null and a.started_at::date between ? and ? {extra}",
        (start, end),
    )


def test_retry_causes_page(open_app: OpenApp, dashboard_ledger: Path) -> None:
    at = open_app(dashboard_ledger, "retry_causes")
    start, end = period()
    assert at.title[0].value == "Retry causes"
    assert metric(at, "Failed attempts") == f"{failed_attempts_sql(dashboard_ledger):,}"
    failed_calls = one(
        dashboard_ledger,
        "select count(*) from calls where status = 'error' and started_at::date between ? and ?",
        (start, end),
    )
    assert metric(at, "Failed calls") == f"{failed_calls:,}"
    affected = one(
        dashboard_ledger,
        "select count(*) from calls c where started_at::date between ? and ? and (status = 'error' or exists "
        "(select 1 from attempts a where a.call_id = c.call_id and a.retry_reason is not null))",
        (start, end),
    )
    assert metric(at, "Calls affected") == f"{affected:,}"
    lost = one(
        dashboard_ledger,
        "select sum(billed_cost_usd) from priced_calls where status = 'error' and pricing_status = 'priced' "
        "and call_day between ? and ?",
        (start, end),
    )
    assert metric(at, "Lost on failed calls") == usd(lost)
    at_risk = one(
        dashboard_ledger,
        """
        select sum(p.billed_cost_usd * k.unanswered) from priced_calls p
        join (select call_id, count(*) as unanswered from attempts
              where retry_reason in ('timeout', 'connection', 'stream_interrupted') group by 1) k
          on k.call_id = p.call_id
        where p.status = 'ok' and p.pricing_status = 'priced' and p.call_day between ? and ?
        """,
        (start, end),
    )
    assert metric(at, "Double-billing risk") == usd(at_risk)

    causes = table(at, "cause", "route_owner", "failed_attempts").set_index(["cause", "route_owner"])
    expected = rows(
        dashboard_ledger,
        "select a.retry_reason, c.route_owner, count(*), count(distinct a.call_id) from attempts a "
        "join calls c on c.call_id = a.call_id where a.retry_reason is not null "
        "and a.started_at::date between ? and ? group by all",
        (start, end),
    )
    assert len(causes) == len(expected)
    for cause, owner, attempts, calls in expected:
        assert (causes.loc[(cause, owner), "failed_attempts"], causes.loc[(cause, owner), "calls"]) == (attempts, calls)

    codes = table(at, "error_code")
    top_code, top_count = rows(
        dashboard_ledger,
        "select coalesce(error_code, error_type), count(*) from attempts where retry_reason is not null "
        "and started_at::date between ? and ? group by 1 order by 2 desc, 1 limit 1",
        (start, end),
    )[0]
    assert (codes.loc[0, "error_code"], codes.loc[0, "failed_attempts"]) == (top_code, top_count)
    example = codes.loc[0, "example_call_id"]
    assert one(
        dashboard_ledger,
        "select count(*) from attempts where call_id = ? and coalesce(error_code, error_type) = ?",
        (example, top_code),
    )
    assert len(at.get("vega_lite_chart")) == 1

    at.toggle(key="retry_all_time").set_value(True).run()  # all-time totals from the retry_causes view
    all_time = table(at, "cause", "route_owner", "attempts")
    assert len(all_time) == one(dashboard_ledger, "select count(*) from retry_causes")
    assert all_time["attempts"].sum() == one(
        dashboard_ledger, "select count(*) from attempts where retry_reason is not null or error_type is not null"
    )

    at.multiselect(key="retry_owners").set_value(["openai"]).run()
    openai_failed = failed_attempts_sql(dashboard_ledger, "and c.route_owner = 'openai'")
    assert metric(at, "Failed attempts") == f"{openai_failed:,}"
    assert set(table(at, "cause", "route_owner", "failed_attempts")["route_owner"]) == {"openai"}


# --- Anomalies ------------------------------------------------------------------------------------


def test_anomalies_page(open_app: OpenApp, dashboard_ledger: Path) -> None:
    at = open_app(dashboard_ledger, "anomalies")
    start, end = period()
    assert at.title[0].value == "Anomalies"

    # cost per image > 3x the median of its route owner x model x size x quality group over the whole ledger,
    # flagged within the period (polars, not SQL)
    per_image = pl.DataFrame(
        rows(
            dashboard_ledger,
            "select call_id, call_day, route_owner, coalesce(billed_model, requested_model), size, quality, "
            "billed_cost_usd / images_returned from priced_calls "
            "where status = 'ok' and pricing_status = 'priced' and images_returned > 0",
        ),
        schema=["call_id", "day", "owner", "model", "size", "quality", "cost"],
        orient="row",
    )
    outliers = per_image.filter(
        (pl.col("cost") > 3 * pl.col("cost").median().over("owner", "model", "size", "quality"))
        & pl.col("day").is_between(start, end)
    )
    assert metric(at, "Cost outliers") == f"{outliers.height:,}"
    assert set(
        table(at, "call_id", "started_at", "route_owner", "model", "size", "quality", "cost_per_image")["call_id"]
    ) == set(outliers["call_id"])

    # observed image output tokens vs the estimator: per image x images + 100 per partial received
    flagged = set()
    for call_id, model, size, quality, images, partials, observed in rows(
        dashboard_ledger,
        "select call_id, requested_model, coalesce(size_effective, size_requested), "
        "coalesce(quality_effective, quality_requested), images_returned, partial_images_received, "
        "image_output_tokens from calls where started_at::date between ? and ? and status = 'ok' "
        "and image_output_tokens is not null and images_returned > 0",
        (start, end),
    ):
        try:
            expected = output_tokens(model, size, quality) * images + 100 * (partials or 0)
        except UserError:
            continue
        if abs(observed / expected - 1) > 0.25:
            flagged.add(call_id)
    assert metric(at, "Token mismatches") == f"{len(flagged):,}"
    if flagged:
        tokens = table(at, "call_id", "started_at", "route_owner", "model", "size", "quality", "images_returned")
        assert set(tokens["call_id"]) == flagged

    drift = [
        (req, rep)
        for req, rep in rows(
            dashboard_ledger,
            "select requested_model, reported_model from calls where reported_model is not null "
            "and started_at::date between ? and ?",
            (start, end),
        )
        if rep != req and not re.fullmatch(rf"{re.escape(req)}-\d{{4}}-\d{{2}}-\d{{2}}", rep)
    ]
    assert metric(at, "Model drift calls") == f"{len(drift):,}"
    drift_table = table(at, "route_owner", "requested_model", "reported_model")
    assert drift_table["calls"].sum() == len(drift)
    assert set(zip(drift_table["requested_model"], drift_table["reported_model"], strict=True)) == set(drift)

    partials = one(
        dashboard_ledger,
        "select count(*) from calls where started_at::date between ? and ? and partial_images_requested > 0 "
        "and partial_images_received <> partial_images_requested",
        (start, end),
    )
    assert metric(at, "Partial mismatches") == f"{partials:,}"

    latency = table(at, "route", "route_owner", "calls", "p50_s").set_index(["route", "route_owner"])
    durations = pl.DataFrame(
        rows(
            dashboard_ledger,
            "select route, route_owner, duration_s from calls where started_at::date between ? and ?",
            (start, end),
        ),
        schema=["route", "owner", "duration"],
        orient="row",
    )
    for row in durations.group_by("route", "owner").agg(pl.col("duration").quantile(0.95, "linear")).to_dicts():
        assert same(latency.loc[(row["route"], row["owner"]), "p95_s"], row["duration"])

    unpriced = one(
        dashboard_ledger,
        "select count(*) from priced_calls where pricing_status <> 'priced' and call_day between ? and ?",
        (start, end),
    )
    assert metric(at, "Unpriced calls") == f"{unpriced:,}"
    reasons = table(at, "pricing_status", "route_owner", "model")
    statuses = rows(
        dashboard_ledger,
        "select distinct pricing_status from priced_calls "
        "where pricing_status <> 'priced' and call_day between ? and ?",
        (start, end),
    )
    assert set(reasons["pricing_status"]) == {r[0] for r in statuses}
    assert reasons["latest_reason"].str.len().min() > 0

    at.multiselect(key="anomaly_owners").set_value(["openai"]).run()
    assert metric(at, "Model drift calls") == "0"  # only the gateway swaps models


# --- Calls ----------------------------------------------------------------------------------------


def test_calls_page_list_and_filters(open_app: OpenApp, dashboard_ledger: Path) -> None:
    at = open_app(dashboard_ledger, "calls")
    start, end = period()
    listed = table(at, "call_id", "started_at")
    newest = rows(
        dashboard_ledger,
        "select call_id from calls where started_at::date between ? and ? order by started_at desc limit 200",
        (start, end),
    )
    assert list(listed["call_id"]) == [r[0] for r in newest]

    at.multiselect(key="calls_status").set_value(["error"]).run()
    errors = one(
        dashboard_ledger,
        "select count(*) from calls where status = 'error' and started_at::date between ? and ?",
        (start, end),
    )
    listed = table(at, "call_id", "started_at")
    assert len(listed) == errors and set(listed["status"]) == {"error"}

    at.multiselect(key="calls_status").set_value([]).run()
    gateway = gateway_owner(dashboard_ledger)
    feature = top_feature(dashboard_ledger, gateway)
    at.multiselect(key="calls_owners").set_value([gateway]).run()
    at.multiselect(key="calls_features").set_value([feature]).run()
    at.multiselect(key="calls_models").set_value(["gpt-image-2"]).run()
    expected = one(
        dashboard_ledger,
        "select count(*) from calls where route_owner = ? and requested_model = 'gpt-image-2' "
        "and json_extract_string(tags, '$.feature') = ? and started_at::date between ? and ?",
        (gateway, feature, start, end),
    )
    listed = table(at, "call_id", "started_at")
    assert len(listed) == expected > 0
    assert set(listed["feature"]) == {feature} and set(listed["route_owner"]) == {gateway}


def test_call_record(open_app: OpenApp, dashboard_ledger: Path) -> None:
    call_id, request_id, trace_id, attempts = rows(
        dashboard_ledger,
        "select call_id, request_id, trace_id, attempt_count from calls where attempt_count > 1 and status = 'ok' "
        "and route_owner = 'openai' and usage_source = 'reported' and route <> 'responses' "
        "order by started_at desc limit 1",
    )[0]
    billed, official = rows(
        dashboard_ledger, "select billed_cost_usd, official_cost_usd from priced_calls where call_id = ?", (call_id,)
    )[0]
    at = open_app(dashboard_ledger, "calls")
    at.text_input(key="calls_search").set_value(request_id).run()
    assert list(table(at, "call_id", "started_at")["call_id"]) == [call_id]
    assert at.subheader[0].value == f"Call {call_id}"
    assert metric(at, "Billed cost") == usd(billed, 4)
    assert metric(at, "Official-rate cost") == usd(official, 4)
    assert metric(at, "Attempts") == str(attempts)
    timeline = table(at, "attempt_number")
    reasons = rows(
        dashboard_ledger, "select retry_reason from attempts where call_id = ? order by attempt_number", (call_id,)
    )
    assert list(timeline["attempt_number"]) == list(range(attempts))
    assert [r if isinstance(r, str) else None for r in timeline["retry_reason"]] == [r[0] for r in reasons]
    assert reasons[-1][0] is None and reasons[0][0] is not None  # failed first, then succeeded
    images = table(at, "image_index", "uri")
    assert len(images) == one(dashboard_ledger, "select count(*) from images where call_id = ?", (call_id,))
    assert len(at.get("image")) == 1  # the stored PNG exists on disk, so it is shown
    assert trace_id in [c.value for c in at.code]
    request = tables(at, "Field", "Value")[0]  # the first key/value table: the request shape
    assert dict(zip(request["Field"], request["Value"], strict=True))["Request id"] == request_id

    at.text_input(key="calls_search").set_value(call_id[:10]).run()  # a call id prefix finds it too
    assert list(table(at, "call_id", "started_at")["call_id"]) == [call_id]


# --- Estimate -------------------------------------------------------------------------------------


def test_estimate_page(open_app: OpenApp, dashboard_ledger: Path) -> None:
    at = open_app(dashboard_ledger, "estimate")
    assert at.title[0].value == "Estimate"
    # gpt-image-2, 1024x1024, medium: 1756 image output tokens at $30 per 1M (reference §5.7)
    assert metric(at, "Image output tokens") == "1,756"
    assert metric(at, "OpenAI (official rates)") == usd(1756 * 30 / 1_000_000, 4)  # $0.0527
    assert metric(at, "laozhang.ai (contract)") == usd(0.03, 4)  # per call
    routes = table(at, "route_owner", "basis")
    assert list(routes["route_owner"]) == ["openai", "laozhang.ai"]

    at.number_input(key="est_n").set_value(2).run()
    at.number_input(key="est_partials").set_value(2).run()
    # 2 images x 1756 + 100 per partial x 2 = 3712 tokens; x $30 / 1M = $0.11136
    assert metric(at, "Image output tokens") == "3,712"
    assert metric(at, "OpenAI (official rates)") == usd(3712 * 30 / 1_000_000, 4)
    result = estimate(EstimateRequest("gpt-image-2", "1024x1024", "medium", n=2, partial_images=2), load_books())
    assert result.official_usd is not None
    assert metric(at, "OpenAI (official rates)") == usd(result.official_usd.expected, 4)

    at.text_input(key="est_size").set_value("1000x1000").run()
    with pytest.raises(UserError) as expected:
        estimate(EstimateRequest("gpt-image-2", "1000x1000", "medium", n=2, partial_images=2), load_books())
    assert [e.value for e in at.error] == [str(expected.value)]
    assert not at.exception and not at.metric


# --- Price book -----------------------------------------------------------------------------------


def test_price_book_page(open_app: OpenApp, dashboard_ledger: Path) -> None:
    at = open_app(dashboard_ledger, "price_book")
    assert at.title[0].value == "Price book"
    card = table(at, "model", "tier", "effective_from").set_index(["model", "tier"])
    windows = one(
        dashboard_ledger,
        "select count(*) from (select distinct model, tier, effective_from, effective_to from official_rates)",
    )
    assert len(card) == windows
    rate = one(
        dashboard_ledger,
        "select usd_per_1m from official_rates where model = 'gpt-image-2' and tier = 'standard' "
        "and token_class = 'image_output'",
    )
    assert card.loc[("gpt-image-2", "standard"), "image_output"] == rate == 30.0
    contracts = table(at, "provider", "contract_id", "model_pattern")
    assert len(contracts) == one(dashboard_ledger, "select count(*) from provider_contracts")
    side = table(at, "class", "tier", "usd_per_1m")  # gpt-image-2's own rates, next to its contracts
    assert len(side) == one(dashboard_ledger, "select count(*) from official_rates where model = 'gpt-image-2'")
    assert list(table(at, "provider", "unit")["provider"]) == ["laozhang.ai"]

    at.selectbox(key="price_model").set_value("gpt-image-1").run()
    assert any("No provider contract covers gpt-image-1" in c.value for c in at.caption)


# --- first run, busy ledger -----------------------------------------------------------------------


def test_empty_ledger_shows_the_first_run_page(open_app: OpenApp, empty_dashboard_ledger: Path) -> None:
    at = open_app(empty_dashboard_ledger)
    assert at.title[0].value == "Welcome to imagecost"
    assert "The ledger exists but holds no image calls yet." in at.markdown[0].value
    assert str(empty_dashboard_ledger) in at.markdown[0].value
    code = [c.value for c in at.code]
    assert "imagecost demo" in code and any("collector.instrument(" in c for c in code)
    assert any(f"imagecost ingest --ledger {empty_dashboard_ledger}" in c for c in code)
    assert not at.metric and not at.error


def test_missing_ledger_shows_the_first_run_page(open_app: OpenApp, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ledger.duckdb"
    at = open_app(missing)
    assert at.title[0].value == "Welcome to imagecost"
    assert "There is no ledger at this path yet." in at.markdown[0].value
    assert not at.error
    assert not missing.exists()  # the dashboard only reads: it never creates a ledger
    at.switch_page("pages/estimate.py").run()  # the estimator needs no ledger
    assert metric(at, "Image output tokens") == "1,756"


def test_foreign_duckdb_file_shows_the_first_run_page(open_app: OpenApp, tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    at = open_app(other)
    assert "This file is not an imagecost ledger yet." in at.markdown[0].value


def test_a_data_file_as_the_ledger_shows_the_first_run_page(open_app: OpenApp, tmp_path: Path) -> None:
    data = tmp_path / "calls.csv"  # DuckDB would open it as an in-memory database with a view over it
    data.write_text("call_id,cost\na,1\n")
    at = open_app(data)
    assert "This file is not an imagecost ledger yet." in at.markdown[0].value
    assert not at.error


@pytest.fixture
def locked_ledger(dashboard_ledger: Path, tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A copy of the ledger held open for writing by another process (as an ingest would)."""
    copy = tmp_path / "busy.duckdb"
    copy.write_bytes(dashboard_ledger.read_bytes())
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); sys.stdin.read()",
            str(copy),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    yield copy, holder
    if holder.poll() is None:
        holder.kill()
        holder.wait()


def test_busy_ledger_shows_a_notice_then_recovers(
    open_app: OpenApp, locked_ledger: tuple[Path, subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, holder = locked_ledger
    monkeypatch.setattr(data, "WAIT_S", 0.2)
    monkeypatch.setattr(data, "BUSY_AUTO_RETRIES", 1)
    monkeypatch.setattr(data, "BUSY_RETRY_DELAY_S", 0.05)
    at = open_app(ledger)
    assert [i.value for i in at.info] == ["Ledger busy: another process (an ingest) is writing to it. Retrying…"]
    assert not at.exception and not at.error

    assert holder.stdin is not None
    holder.stdin.close()  # the writer finishes and releases the file
    holder.wait(timeout=10)
    at.button(key="busy_retry").click().run()
    assert not at.info and at.title[0].value == "Spend"
    total, _, _ = spend_sql(ledger, *period())
    assert metric(at, "Selected period") == usd(total)


def test_sidebar_says_when_figures_are_computed_live(open_app: OpenApp, dashboard_ledger: Path, tmp_path: Path) -> None:
    at = open_app(dashboard_ledger)  # the demo's ingest refreshed the stores
    assert not [c for c in at.sidebar.caption if "Computed live" in c.value]
    copy = tmp_path / "behind.duckdb"
    copy.write_bytes(dashboard_ledger.read_bytes())
    add_facts(copy, calls=[call_row(started_at=datetime.now(UTC) - timedelta(hours=1))])
    at = open_app(copy)
    live = [c.value for c in at.sidebar.caption if "Computed live" in c.value]
    assert len(live) == 1 and f"`imagecost refresh --ledger {copy}`" in live[0]
    total, calls, _ = spend_sql(copy, *period())  # the new call is counted: live, not stale
    assert (
        calls == one(dashboard_ledger, "select count(*) from priced_calls where call_day between ? and ?", period()) + 1
    )
    assert metric(at, "Selected period") == usd(total)


def test_ledger_without_the_dashboard_views_says_how_to_update(
    open_app: OpenApp, dashboard_ledger: Path, tmp_path: Path
) -> None:
    old = tmp_path / "old.duckdb"
    old.write_bytes(dashboard_ledger.read_bytes())
    con = duckdb.connect(str(old))
    con.execute("drop view dash_spend_cube")  # as a ledger made before the view existed
    con.close()
    at = open_app(old)
    assert len(at.error) == 1
    assert at.error[0].value.startswith("The ledger could not be read: Catalog Error")
    assert at.error[0].value.endswith(f"update it with `imagecost init --ledger {old}` (keeps all data).")
