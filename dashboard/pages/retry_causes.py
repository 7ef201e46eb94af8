"""Retry causes page (engineers): which attempts failed, why, on which route, and what it cost.

Attempts come from ``dash_failed_attempts`` (one row per failed HTTP attempt), money from
``dash_retry_spend`` (priced calls that failed or were retried), the all-time cause × route owner
totals from the pricing engineer's ``retry_causes`` view.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboard import data, ui

# One pass over the failed attempts, three breakdowns (grouping sets): cause × route owner, day ×
# cause (the chart) and error code (with an example call).
ATTEMPTS_SQL = """
with failed as (
    select *, coalesce(error_code, error_type, 'no error code') as code
    from dash_failed_attempts
    where day between ? and ? {owner}
),

grouped as (
    select
        case grouping(day, cause, route_owner, code)
            when 9 then 'cause' when 3 then 'daily' else 'code'
        end as breakdown,
        day,
        cause,
        route_owner,
        code as error_code,
        count(*)::bigint as failed_attempts,
        count(distinct call_id)::bigint as calls,
        count(distinct call_id) filter (where call_status = 'error')::bigint as calls_failed,
        count(*) filter (where retried)::bigint as retried_attempts,
        coalesce(sum(duration_s), 0)::double as seconds_lost,
        any_value(error_type) as error_type,
        any_value(status_code) as status_code,
        any_value(cause) as code_cause,
        arg_max(call_id, started_at) as example_call_id,
        max(started_at) as last_seen
    from failed
    group by grouping sets ((cause, route_owner), (day, cause), (code))
)

select * from grouped
"""

SPEND_SQL = """
select
    route_owner,
    cause,
    sum(calls)::bigint as calls,
    sum(failed_calls)::bigint as failed_calls,
    sum(unpriced_failed_calls)::bigint as unpriced_failed_calls,
    sum(failed_spend_usd)::double as failed_spend_usd,
    sum(at_risk_usd)::double as at_risk_usd
from dash_retry_spend
where day between ? and ? {owner}
group by all
order by failed_spend_usd desc nulls last, at_risk_usd desc nulls last, calls desc
"""

OWNERS_SQL = "select distinct route_owner from calls order by 1"


def query(ledger: str, sql: str, start: date, end: date, owners: list[str]) -> pl.DataFrame:
    clause, params = ui.in_clause("route_owner", owners)
    return data.fetch(ledger, sql.format(owner=clause), (start, end, *params))


def breakdown(attempts: pl.DataFrame, name: str, sort: list[str], descending: list[bool]) -> pl.DataFrame:
    return attempts.filter(pl.col("breakdown") == name).sort(sort, descending=descending)


def headline(causes: pl.DataFrame, spend: pl.DataFrame) -> None:
    cols = st.columns(5)
    cols[0].metric("Failed attempts", f"{int(causes['failed_attempts'].sum()):,}", border=True)
    cols[1].metric(
        "Calls affected",
        f"{int(spend['calls'].sum()):,}",
        help="Calls where at least one HTTP attempt failed, or the call itself ended in an error.",
        border=True,
    )
    cols[2].metric("Failed calls", f"{int(spend['failed_calls'].sum()):,}", border=True)
    cols[3].metric(
        "Lost on failed calls",
        ui.usd(ui.scalar(spend.select(ui.null_sum("failed_spend_usd")), "failed_spend_usd")),
        help="What calls that ended in an error were still billed (reported usage, or a contract that "
        "charges failed calls).",
        border=True,
    )
    cols[4].metric(
        "Double-billing risk",
        ui.usd(ui.scalar(spend.select(ui.null_sum("at_risk_usd")), "at_risk_usd")),
        help="Retries after a timeout or dropped connection: the SDK sends no idempotency key, so the "
        "server may have finished (and billed) the attempt it never answered. Reconcile to settle.",
        border=True,
    )


def render() -> None:
    ledger = data.ledger_file()
    st.title("Retry causes")
    st.caption("Every HTTP attempt that failed, the SDK's own retries included, by cause and route owner (UTC days).")
    col_period, col_owner = st.columns(2)
    with col_period:
        start, end = ui.period_input("retry_period")
    with col_owner:
        all_owners = data.fetch(ledger, OWNERS_SQL)["route_owner"].to_list()
        owners = ui.pick_many("Route owner", all_owners, key="retry_owners", placeholder="All route owners")

    attempts = query(ledger, ATTEMPTS_SQL, start, end, owners)
    causes = breakdown(attempts, "cause", ["failed_attempts", "cause", "route_owner"], [True, False, False])
    spend = query(ledger, SPEND_SQL, start, end, owners)
    headline(causes, spend)

    st.subheader("Failed attempts per day, by cause")
    daily = breakdown(attempts, "daily", ["day", "cause"], [False, False])
    if daily.is_empty():
        ui.no_rows("failed attempts")
    else:
        ui.daily_bars(
            daily,
            value="failed_attempts",
            value_title="Failed attempts",
            color="cause",
            color_title="Cause",
            money=False,
        )

    st.subheader("By cause and route owner")
    ui.table(
        causes,
        {
            "cause": "Cause",
            "route_owner": "Route owner",
            "failed_attempts": ui.count_column("Failed attempts"),
            "retried_attempts": ui.count_column("Retried", help="Failed attempts the SDK tried again"),
            "calls": ui.count_column("Calls affected"),
            "calls_failed": ui.count_column("Calls that failed", help="No attempt succeeded"),
            "seconds_lost": ui.seconds_column("Time in failed attempts"),
        },
    )

    st.subheader("Spend lost to failed or repeated attempts")
    ui.table(
        spend,
        {
            "route_owner": "Route owner",
            "cause": "Cause",
            "calls": ui.count_column("Calls"),
            "failed_calls": ui.count_column("Failed calls"),
            "failed_spend_usd": ui.money_column("Spend on failed calls"),
            "unpriced_failed_calls": ui.count_column("Failed calls unpriced"),
            "at_risk_usd": ui.money_column("At risk of double billing"),
        },
    )

    st.subheader("Top error codes")
    ui.table(
        breakdown(attempts, "code", ["failed_attempts", "error_code"], [True, False]).head(10),
        {
            "error_code": "Error code",
            "error_type": "Error type",
            "status_code": st.column_config.NumberColumn("HTTP status", format="%d"),
            "code_cause": "Cause",
            "failed_attempts": ui.count_column("Failed attempts"),
            "calls": ui.count_column("Calls"),
            "example_call_id": "Example call (see Calls)",
            "last_seen": st.column_config.DatetimeColumn("Last seen (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )

    # all-time totals cost one more pass over every priced call: read them only on request
    if st.toggle("Show all-time totals, with what failed attempts were charged (retry_causes)", key="retry_all_time"):
        ui.table(
            data.fetch(ledger, "select * from retry_causes order by attempts desc, cause, route_owner"),
            {
                "cause": "Cause",
                "route_owner": "Route owner",
                "attempts": ui.count_column("Failed attempts"),
                "calls": ui.count_column("Calls"),
                "final_failures": ui.count_column("Calls that failed"),
                "failed_attempt_cost_usd": ui.money_column(
                    "Charged for failed attempts", help="Blank: not known (e.g. OpenAI does not document it)"
                ),
            },
        )


if __name__ == "__main__":
    render()
