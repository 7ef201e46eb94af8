"""Anomalies page (engineers): the calls that do not look like their peers.

* cost per image far above its group's median over the whole ledger (route owner × model × size × quality);
* image output tokens far from the estimator's expectation (``ledger.estimator.output_tokens``);
* a gateway reporting another model than the one requested (model drift);
* partial images received ≠ requested; latency p95 by route; unpriced calls and why.

On a large ledger the per-call checks scan the priced-calls store once each; the baseline of the cost check
(``dash_cost_baseline``) and the drift / partials / unpriced groups per day (``dash_anomaly_groups``) are stores
of their own, so the page adds up days instead of scanning calls for those.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import data, ui
from ledger.errors import UserError
from ledger.estimator import PARTIAL_IMAGE_TOKENS, output_tokens

COST_RATIO = 3.0  # flag a call costing more than 3× its group's median per image (over the whole ledger)
TOKEN_TOLERANCE = 0.25  # flag |observed / expected - 1| > 25 %
LIST_LIMIT = 50

COST_OUTLIERS_SQL = """
with per_image as (
    select
        call_id, started_at, route_owner, coalesce(billed_model, requested_model) as model, size, quality,
        images_returned, partial_images_received, input_image_count,
        billed_cost_usd / images_returned as cost_per_image
    from priced_calls
    where call_day between ? and ? {owner}
      and status = 'ok' and pricing_status = 'priced' and images_returned > 0
),
-- counted apart, not with count(*) over (): a window over all rows runs on one thread
flagged as materialized (
    select per_image.*, b.median_cost, per_image.cost_per_image / b.median_cost as ratio
    from per_image
    join dash_cost_baseline as b using (route_owner, model, size, quality)
    where b.median_cost > 0 and per_image.cost_per_image > {ratio} * b.median_cost
)
select *, (select count(*) from flagged)::bigint as flagged_total
from flagged
order by ratio desc, started_at desc
limit {limit}
"""

TOKEN_GROUPS_SQL = """
select requested_model as model, size, quality, count(*)::bigint as calls
from dash_image_calls
where day between ? and ? {owner}
  and status = 'ok' and image_output_tokens is not null and images_returned > 0
  and requested_model is not null and size is not null and quality is not null
group by all
"""

TOKEN_CHECK_SQL = """
with expected(model, size, quality, per_image) as (values {values}),
checked as (
    select
        c.call_id, c.started_at, c.route_owner, c.requested_model as model, c.size, c.quality,
        c.images_returned, coalesce(c.partial_images_received, 0) as partials, c.image_output_tokens,
        e.per_image * c.images_returned + {partial_tokens} * coalesce(c.partial_images_received, 0)
            as expected_tokens
    from dash_image_calls as c
    join expected as e on e.model = c.requested_model and e.size = c.size and e.quality = c.quality
    where c.day between ? and ? {owner}
      and c.status = 'ok' and c.image_output_tokens is not null and c.images_returned > 0
),
flagged as materialized (
    select *, image_output_tokens / expected_tokens as ratio from checked
    where abs(image_output_tokens / expected_tokens - 1) > {tolerance}
)
select *, (select count(*) from flagged)::bigint as flagged_total
from flagged
order by abs(ratio - 1) desc, started_at desc
limit {limit}
"""

# Drift, partials and unpriced calls come from the dash_anomaly_groups store (per UTC day); the latest call of a
# group is the latest of its days' latest calls, ties on the start time broken by call id as in the store.
DRIFT_SQL = """
select
    route_owner, requested_model, reported_model, sum(calls)::bigint as calls,
    min(first_seen) as first_seen, max(last_seen) as last_seen,
    arg_max(latest_call_id, (last_seen, latest_call_id)) as example_call_id
from dash_anomaly_groups
where check_name = 'drift' and day between ? and ? {owner}
group by all
order by calls desc
limit {limit}
"""

PARTIALS_SQL = """
select
    route_owner, route, partial_images_requested as requested, partial_images_received as received,
    status, sum(calls)::bigint as calls, arg_max(latest_call_id, (last_seen, latest_call_id)) as example_call_id
from dash_anomaly_groups
where check_name = 'partials' and day between ? and ? {owner}
group by all
order by calls desc
limit {limit}
"""

# both quantiles from one list aggregate: DuckDB then orders each group's durations once, not twice
LATENCY_SQL = """
with grouped as (
    select
        route, route_owner, count(*)::bigint as calls,
        quantile_cont(duration_s, [0.5, 0.95]) as quantiles, max(duration_s) as max_s
    from dash_image_calls
    where day between ? and ? {owner} and duration_s is not null
    group by all
)
select route, route_owner, calls, quantiles[1] as p50_s, quantiles[2] as p95_s, max_s
from grouped
order by p95_s desc
"""

UNPRICED_SQL = """
select
    pricing_status, route_owner, model, sum(calls)::bigint as calls,
    arg_max(latest_call_id, (last_seen, latest_call_id)) as example_call_id, max(last_seen) as last_seen,
    arg_max(latest_reason, (last_seen, latest_call_id)) as latest_reason
from dash_anomaly_groups
where check_name = 'unpriced' and day between ? and ? {owner}
group by all
order by calls desc
limit {limit}
"""


def unpriced_groups(ledger: str, start: date, end: date, owners: list[str]) -> pl.DataFrame:
    """Unpriced calls per status × route owner × model, with the latest call's reason."""
    return query(ledger, UNPRICED_SQL, start, end, owners)


def query(ledger: str, sql: str, start: date, end: date, owners: list[str], **fmt: object) -> pl.DataFrame:
    clause, params = ui.in_clause("route_owner", owners)
    return data.fetch(ledger, sql.format(owner=clause, limit=LIST_LIMIT, **fmt), (start, end, *params))


def expected_tokens(groups: pl.DataFrame) -> pl.DataFrame:
    """Per-image output tokens the estimator expects for each (model, size, quality); null when it cannot say."""
    per_image: list[int | None] = []
    for row in groups.iter_rows(named=True):
        try:
            per_image.append(output_tokens(row["model"], row["size"], row["quality"]))
        except UserError:  # unknown model, auto size/quality, a size the model does not take
            per_image.append(None)
    return groups.with_columns(pl.Series("per_image", per_image, dtype=pl.Int64))


def token_check(ledger: str, start: date, end: date, owners: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(groups with their expectation, flagged calls) — the expectation comes from Python, the rows from SQL."""
    groups = expected_tokens(query(ledger, TOKEN_GROUPS_SQL, start, end, owners))
    known = groups.filter(pl.col("per_image").is_not_null())
    if known.is_empty():
        return groups, pl.DataFrame()
    values = ", ".join("(?, ?, ?, ?)" for _ in range(known.height))
    clause, owner_params = ui.in_clause("c.route_owner", owners)
    sql = TOKEN_CHECK_SQL.format(
        values=values,
        owner=clause,
        partial_tokens=PARTIAL_IMAGE_TOKENS,
        tolerance=TOKEN_TOLERANCE,
        limit=LIST_LIMIT,
    )
    params = tuple(v for row in known.select("model", "size", "quality", "per_image").iter_rows() for v in row)
    return groups, data.fetch(ledger, sql, (*params, start, end, *owner_params))


def flagged_total(frame: pl.DataFrame) -> int:
    return int(frame["flagged_total"][0]) if frame.height else 0


def section(title: str, caption: str) -> None:
    st.subheader(title)
    st.caption(caption)


def render() -> None:
    ledger = data.ledger_file()
    st.title("Anomalies")
    st.caption("Calls that do not look like their peers, for the engineers who own the integration (UTC days).")
    col_period, col_owner = st.columns(2)
    with col_period:
        start, end = ui.period_input("anomaly_period")
    with col_owner:
        all_owners = data.fetch(ledger, "select distinct route_owner from calls order by 1")["route_owner"].to_list()
        owners = ui.pick_many("Route owner", all_owners, key="anomaly_owners", placeholder="All route owners")

    outliers = query(ledger, COST_OUTLIERS_SQL, start, end, owners, ratio=COST_RATIO)
    groups, tokens = token_check(ledger, start, end, owners)
    drift = query(ledger, DRIFT_SQL, start, end, owners)
    partials = query(ledger, PARTIALS_SQL, start, end, owners)
    unpriced = unpriced_groups(ledger, start, end, owners)

    cols = st.columns(5)
    cols[0].metric("Cost outliers", f"{flagged_total(outliers):,}", border=True)
    cols[1].metric("Token mismatches", f"{flagged_total(tokens):,}", border=True)
    cols[2].metric("Model drift calls", f"{int(drift['calls'].sum()):,}", border=True)
    cols[3].metric("Partial mismatches", f"{int(partials['calls'].sum()):,}", border=True)
    cols[4].metric("Unpriced calls", f"{int(unpriced['calls'].sum()):,}", border=True)

    section(
        "Cost per image outliers",
        f"Calls whose cost per image is more than {COST_RATIO:g}× the median of their route owner × model × size × "
        f"quality group over the whole ledger (largest first, at most {LIST_LIMIT}).",
    )
    ui.table(
        outliers,
        {
            "call_id": "Call",
            "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm"),
            "route_owner": "Route owner",
            "model": "Model",
            "size": "Size",
            "quality": "Quality",
            "cost_per_image": ui.money_column("Cost per image", digits=4),
            "median_cost": ui.money_column("Group median", digits=4),
            "ratio": st.column_config.NumberColumn("× median", format="%.1f×"),
            "partial_images_received": ui.count_column("Partials"),
            "input_image_count": ui.count_column("Input images"),
        },
    )

    section(
        "Image output tokens vs the estimator",
        f"Observed image output tokens against the estimator's per-image count × images + "
        f"{PARTIAL_IMAGE_TOKENS} per partial image received; flagged beyond ±{TOKEN_TOLERANCE:.0%}.",
    )
    if tokens.is_empty():
        st.caption("No call outside the tolerance.")
    else:
        ui.table(
            tokens,
            {
                "call_id": "Call",
                "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm"),
                "route_owner": "Route owner",
                "model": "Model",
                "size": "Size",
                "quality": "Quality",
                "images_returned": ui.count_column("Images"),
                "partials": ui.count_column("Partials"),
                "image_output_tokens": ui.count_column("Observed tokens"),
                "expected_tokens": ui.count_column("Expected tokens"),
                "ratio": st.column_config.NumberColumn("Observed / expected", format="%.2f"),
            },
        )
    unchecked = groups.filter(pl.col("per_image").is_null())
    if unchecked.height:
        st.caption(
            f"Not checked ({int(unchecked['calls'].sum()):,} calls): the estimator has no count for "
            + ", ".join(f"{r['model']} {r['size']} {r['quality']}" for r in unchecked.head(5).to_dicts())
            + ("…" if unchecked.height > 5 else "")
        )

    section("Gateway model drift", "Calls where the server reported another model than the one requested.")
    ui.table(
        drift,
        {
            "route_owner": "Route owner",
            "requested_model": "Requested",
            "reported_model": "Reported",
            "calls": ui.count_column("Calls"),
            "first_seen": st.column_config.DatetimeColumn("First seen (UTC)", format="YYYY-MM-DD HH:mm"),
            "last_seen": st.column_config.DatetimeColumn("Last seen (UTC)", format="YYYY-MM-DD HH:mm"),
            "example_call_id": "Example call",
        },
    )

    section("Partial images received ≠ requested", "Streamed calls that did not get the partial images they asked for.")
    ui.table(
        partials,
        {
            "route_owner": "Route owner",
            "route": "Route",
            "requested": ui.count_column("Requested"),
            "received": ui.count_column("Received"),
            "status": "Status",
            "calls": ui.count_column("Calls"),
            "example_call_id": "Example call",
        },
    )

    section("Latency by route", "Call duration (all attempts included) per route and route owner.")
    ui.table(
        query(ledger, LATENCY_SQL, start, end, owners),
        {
            "route": "Route",
            "route_owner": "Route owner",
            "calls": ui.count_column("Calls"),
            "p50_s": ui.seconds_column("p50"),
            "p95_s": ui.seconds_column("p95"),
            "max_s": ui.seconds_column("Max"),
        },
    )

    section("Unpriced calls and why", "Calls the ledger could not price; they are counted, never shown as $0.")
    ui.table(
        unpriced,
        {
            "pricing_status": "Pricing status",
            "route_owner": "Route owner",
            "model": "Model",
            "calls": ui.count_column("Calls"),
            "latest_reason": "Why (latest call)",
            "example_call_id": "Example call",
            "last_seen": st.column_config.DatetimeColumn("Last seen (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )


if __name__ == "__main__":
    render()
