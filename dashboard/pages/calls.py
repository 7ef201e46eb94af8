"""Calls page (engineers): find calls, then read one call's full record.

The list is filtered in SQL on the calls table and capped at ``LIST_LIMIT`` rows (newest first);
``priced_calls`` is then read for the listed calls only. The chosen call's record is drawn by
``dashboard.call_record``.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
import streamlit as st

from dashboard import call_record, data, ui

LIST_LIMIT = 200
STATUSES = ("ok", "error")

# newest first from the calls table (started_at order makes this a cheap top-N); prices come after,
# for the listed calls only
LIST_SQL = """
with listed as (
    select
        call_id, started_at, route_owner, route, requested_model,
        coalesce(size_effective, size_requested) as size, coalesce(quality_effective, quality_requested) as quality,
        n, status, coalesce(retry_reason, error_code) as problem, attempt_count as attempts, duration_s, tags,
        request_id
    from calls
    where {where}
    order by started_at desc
    limit {limit}
)
select * exclude (tags), tags ->> 'feature' as feature from listed order by started_at desc
"""

# the listed calls' UTC days bound the scan: DuckDB skips the row groups of other days (ingest order is
# roughly time order)
PRICED_SQL = "select * from priced_calls where call_day between ? and ? and call_id in ({marks})"

OPTIONS_SQL = """
select 'owner' as kind, route_owner as value from (select distinct route_owner from calls)
union all
select 'model', requested_model from (select distinct requested_model from calls where requested_model is not null)
order by kind, value
"""

# the distinct tag sets are few: read the feature from each set once, filter on the raw JSON text
TAGS_SQL = "select distinct tags::varchar as tags from calls where tags is not null"


def feature_tags(ledger: str) -> dict[str, list[str]]:
    """feature -> the raw tag JSON texts carrying it."""
    found: dict[str, list[str]] = {}
    for text in data.fetch(ledger, TAGS_SQL)["tags"]:
        feature = json.loads(text).get("feature")
        if feature is not None:
            found.setdefault(str(feature), []).append(text)
    return dict(sorted(found.items()))


def priced(ledger: str, listed: pl.DataFrame) -> pl.DataFrame:
    """The priced_calls rows of the listed calls (one query for the list's costs and the chosen record)."""
    call_ids = listed["call_id"].to_list()
    days = listed["started_at"].dt.convert_time_zone("UTC").dt.date()
    params = (days.min(), days.max(), *call_ids)
    return data.fetch(ledger, PRICED_SQL.format(marks=", ".join("?" for _ in call_ids)), params)


def list_where(
    start: date, end: date, owners: list[str], models: list[str], statuses: list[str], tag_texts: list[str], search: str
) -> tuple[str, tuple[object, ...]]:
    """The list's WHERE clause; a search term (a call, trace or request id, or its start) ignores the period."""
    if search:
        term = search.strip()
        return "(starts_with(call_id, ?) or starts_with(trace_id, ?) or starts_with(request_id, ?))", (term,) * 3
    # started_at is a UTC timestamptz; the period is whole UTC days
    where = "started_at >= ?::date and started_at < ?::date"
    params: tuple[object, ...] = (start, end + timedelta(days=1))
    for column, values in (
        ("route_owner", owners),
        ("requested_model", models),
        ("status", statuses),
        ("tags::varchar", tag_texts),
    ):
        clause, extra = ui.in_clause(column, values)
        where += clause
        params += extra
    return where, params


def render() -> None:
    ledger = data.ledger_file()
    st.title("Calls")
    st.caption("Find calls by route owner, model, status, feature or id; pick one to read its full record.")
    options = data.fetch(ledger, OPTIONS_SQL)
    features = feature_tags(ledger)
    row1 = st.columns(3)
    with row1[0]:
        start, end = ui.period_input("calls_period")
    with row1[1]:
        owners = ui.pick_many(
            "Route owner",
            options.filter(pl.col("kind") == "owner")["value"].to_list(),
            key="calls_owners",
            placeholder="All route owners",
        )
    with row1[2]:
        models = ui.pick_many(
            "Model",
            options.filter(pl.col("kind") == "model")["value"].to_list(),
            key="calls_models",
            placeholder="All models",
        )
    row2 = st.columns(3)
    with row2[0]:
        statuses = ui.pick_many("Status", STATUSES, key="calls_status", placeholder="Any status")
    with row2[1]:
        picked_features = ui.pick_many("Feature tag", list(features), key="calls_features", placeholder="All features")
    with row2[2]:
        search = st.text_input(
            "Search call id, trace id or request id",
            key="calls_search",
            placeholder="e.g. 3f2a… or req_…",
            help="Searches the whole ledger, any period.",
        )

    tag_texts = [text for feature in picked_features for text in features[feature]]
    where, params = list_where(start, end, owners, models, statuses, tag_texts, search)
    listed = data.fetch(ledger, LIST_SQL.format(where=where, limit=LIST_LIMIT), params)
    costs = priced(ledger, listed) if listed.height else pl.DataFrame()
    if listed.height:
        listed = listed.join(costs.select("call_id", "billed_cost_usd"), on="call_id", how="left")
    capped = f", capped at {LIST_LIMIT}" if listed.height == LIST_LIMIT else ""
    st.caption(f"{listed.height:,} {'call' if listed.height == 1 else 'calls'} shown (newest first{capped}).")
    ui.table(
        listed,
        {
            "call_id": "Call",
            "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "route_owner": "Route owner",
            "route": "Route",
            "requested_model": "Model",
            "size": "Size",
            "quality": "Quality",
            "n": st.column_config.NumberColumn("n", format="%d"),
            "status": "Status",
            "problem": "Cause / error",
            "attempts": st.column_config.NumberColumn("Attempts", format="%d"),
            "duration_s": ui.seconds_column("Duration"),
            "billed_cost_usd": ui.money_column("Billed", digits=4),
            "feature": "Feature",
            "request_id": "Request id",
        },
        height=420 if listed.height > 10 else "content",
    )
    if listed.is_empty():
        return
    labels = {
        row["call_id"]: f"{row['call_id']} · {row['started_at']:%Y-%m-%d %H:%M} · {row['route_owner']} · "
        f"{row['requested_model']} · {row['status']}"
        for row in listed.iter_rows(named=True)
    }
    chosen = st.selectbox("Call to inspect", list(labels), format_func=labels.__getitem__, key="calls_pick")
    if chosen:
        call_record.render(ledger, chosen, costs.filter(pl.col("call_id") == chosen))


if __name__ == "__main__":
    render()
