"""Reconciliation page (finance): the ledger against OpenAI's bill, and against a provider's invoice.

Read-only, like every page: it reconciles what ``imagecost reconcile import`` / ``fetch`` and
``imagecost reconcile provider`` stored in the ledger, with the line-item map of the last CLI run.
Register it with ``st.Page(render_reconcile_page, title="Reconciliation", url_path="reconcile")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import altair as alt
import polars as pl
import streamlit as st

from dashboard import data, ui
from ledger.db import connect
from ledger.errors import UserError
from ledger.pricebook import load_books
from ledger.reconcile import Tolerance, load_mappings, reconcile_openai, reconcile_provider, stored_invoice

BILL_PERIOD_SQL = """
select min(day) as first, max(day) as last
from (
    select cast(timezone('UTC', start_time) as date) as day from openai_costs
    union all
    select cast(timezone('UTC', start_time) as date) from openai_image_usage
)
"""
INVOICES_SQL = """
select provider, invoice_id, any_value(imported_from) as file, count(*)::bigint as lines,
    min(line_time) as first_line, max(line_time) as last_line, max(imported_at) as imported_at
from provider_invoice_lines
group by provider, invoice_id
order by imported_at desc
"""
STATUS_HELP = (
    "matched: within tolerance · bill_only: spend the ledger never saw · ledger_only: ledger spend missing from "
    "the bill · mismatch: both sides, different amounts (see cause) · unmapped_line_item: add it to line_items.toml"
)


@dataclass(frozen=True)
class OpenAIFrames:
    costs: pl.DataFrame
    images: pl.DataFrame


@st.cache_data(ttl=data.CACHE_TTL_S, show_spinner=False)
def openai_frames(ledger: str, since: date, until: date, tolerance: str, project: str | None) -> OpenAIFrames:
    con = connect(ledger, read_only=True, wait_s=data.WAIT_S)
    try:
        result = reconcile_openai(
            con, since=since, until=until, tolerance=Tolerance.parse(tolerance), default_project=project or None
        )
    finally:
        con.close()
    return OpenAIFrames(result.costs, result.images)


@st.cache_data(ttl=data.CACHE_TTL_S, show_spinner=False)
def provider_frames(ledger: str, provider: str, invoice_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    mapping = load_mappings().get(provider)
    if mapping is None:
        raise UserError(f"no invoice column mapping for {provider} any more; add it to invoice_mappings.toml")
    con = connect(ledger, read_only=True, wait_s=data.WAIT_S)
    try:
        result = reconcile_provider(con, stored_invoice(con, invoice_id, mapping), load_books())
    finally:
        con.close()
    return result.calls, result.days


def _bill_period(ledger: str) -> tuple[date, date] | None:
    row = data.fetch(ledger, BILL_PERIOD_SQL).row(0, named=True)
    return (row["first"], row["last"]) if row["first"] is not None else None


def difference_chart(daily: pl.DataFrame) -> None:
    """Bill minus ledger per UTC day: above zero the bill has more, below the ledger has more."""
    frame = daily.with_columns(
        pl.col("day").cast(pl.String),
        pl.when(pl.col("diff_usd") >= 0).then(pl.lit("bill higher")).otherwise(pl.lit("ledger higher")).alias("side"),
    )
    chart = (
        alt.Chart(frame.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("utcyearmonthdate(day):T", title="Day (UTC)", axis=alt.Axis(format="%b %d")),
            y=alt.Y("diff_usd:Q", title="Bill − ledger (USD)", axis=alt.Axis(format="$,.4f")),
            color=alt.Color("side:N", title=None),
            tooltip=[
                alt.Tooltip("utcyearmonthdate(day):T", title="Day", format="%Y-%m-%d"),
                alt.Tooltip("diff_usd:Q", title="Bill − ledger", format="$,.4f"),
            ],
        )
        .properties(height=220)
    )
    st.altair_chart(chart, width="stretch")


def openai_section(ledger: str) -> None:
    st.subheader("OpenAI bill (Costs and Usage APIs)")
    period = _bill_period(ledger)
    if period is None:
        st.info(
            "No OpenAI bill in the ledger yet. Import exported pages with `imagecost reconcile import FILE`, or "
            "fetch them with an admin key: `OPENAI_ADMIN_KEY=... imagecost reconcile fetch --since YYYY-MM-DD`."
        )
        return
    cols = st.columns(3)
    picked = cols[0].date_input("Bill days (UTC)", value=period, key="recon_period", format="YYYY-MM-DD")
    since, until = (picked[0], picked[-1]) if isinstance(picked, tuple | list) and picked else period
    tolerance = cols[1].text_input("Tolerance", value="0.01", key="recon_tolerance", help="USD per row, or 2%")
    project = cols[2].text_input(
        "Project of untagged calls", value="", key="recon_project", help="Calls without a `project` tag"
    )
    try:
        frames = openai_frames(ledger, since, until, tolerance, project)
    except UserError as exc:
        st.error(str(exc))
        return
    costs = frames.costs
    bill, led = costs["bill_usd"].fill_null(0).sum(), costs["ledger_usd"].fill_null(0).sum()
    problems = costs.filter(pl.col("status") != "matched")
    metrics = st.columns(4)
    metrics[0].metric("Billed by OpenAI", ui.usd(bill, digits=4), border=True)
    metrics[1].metric("Ledger, official rates", ui.usd(led, digits=4), border=True)
    metrics[2].metric("Difference", ui.usd(bill - led, digits=4), border=True)
    metrics[3].metric("Rows to look at", f"{problems.height:,} of {costs.height:,}", help=STATUS_HELP, border=True)

    daily = costs.group_by("day").agg(pl.col("diff_usd").sum().alias("diff_usd")).sort("day")
    if not daily.is_empty():
        difference_chart(daily)

    detail_columns = {
        "day": st.column_config.DateColumn("Day", format="YYYY-MM-DD"),
        "project": "Project",
        "model": "Model",
        "token_class": "Token class",
        "tier": "Tier",
        "bill_usd": ui.money_column("Bill", digits=4),
        "ledger_usd": ui.money_column("Ledger", digits=4),
        "diff_usd": ui.money_column("Difference", digits=4),
        "bill_tokens": ui.count_column("Bill tokens"),
        "ledger_tokens": ui.count_column("Ledger tokens"),
        "status": st.column_config.TextColumn("Status", help=STATUS_HELP),
        "cause": "Likely cause",
        "detail": st.column_config.TextColumn("Why", width="large"),
    }
    if problems.is_empty():
        st.success("Every day × project × line item matches within tolerance.")
    else:
        ui.table(problems, detail_columns)
    with st.expander(f"All {costs.height:,} rows"):
        ui.table(costs, detail_columns)

    st.markdown("**Image and request counts (Usage API, images)**")
    images = frames.images
    count_problems = images.filter(pl.col("status") != "matched")
    if images.is_empty():
        ui.no_rows("image usage rows")
    elif count_problems.is_empty():
        st.caption(f"All {images.height:,} day × project × model × source rows match exactly.")
    else:
        ui.table(
            count_problems,
            {
                "day": st.column_config.DateColumn("Day", format="YYYY-MM-DD"),
                "project": "Project",
                "model": "Model",
                "source": "Source",
                "bill_images": ui.count_column("Images billed"),
                "ledger_images": ui.count_column("Images in ledger"),
                "bill_requests": ui.count_column("Requests billed"),
                "ledger_requests": ui.count_column("Requests in ledger"),
                "status": "Status",
                "cause": "Likely cause",
                "detail": st.column_config.TextColumn("Why", width="large"),
            },
        )


def provider_section(ledger: str) -> None:
    st.subheader("Provider invoices")
    invoices = data.fetch(ledger, INVOICES_SQL)
    if invoices.is_empty():
        st.info("No provider invoice imported yet: `imagecost reconcile provider FILE --provider NAME`.")
        return
    labels = [
        f"{r['provider']} · {r['file']} · {r['lines']} lines · imported {r['imported_at']:%Y-%m-%d %H:%M}"
        for r in invoices.iter_rows(named=True)
    ]
    choice = st.selectbox("Invoice", range(len(labels)), format_func=lambda i: labels[i], key="recon_invoice")
    row = invoices.row(choice or 0, named=True)
    try:
        calls, days = provider_frames(ledger, row["provider"], row["invoice_id"])
    except UserError as exc:
        st.error(str(exc))
        return
    ui.table(
        days,
        {
            "day": st.column_config.DateColumn("Day", format="YYYY-MM-DD"),
            "currency": "Currency",
            "calls": ui.count_column("Calls"),
            "invoice_lines": ui.count_column("Invoice lines"),
            "owed": st.column_config.NumberColumn("Contract cost", format="%.4f"),
            "invoiced": st.column_config.NumberColumn("Invoiced", format="%.4f"),
            "diff": st.column_config.NumberColumn("Difference", format="%.4f"),
            "problems": ui.count_column("Problems"),
        },
    )
    problems = calls.filter(pl.col("status") != "matched")
    call_columns = {
        "time": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "call_id": "Call",
        "request_id": "Request id",
        "invoice_lines": "Invoice line(s)",
        "model": "Model",
        "owed": st.column_config.NumberColumn("Contract cost", format="%.4f"),
        "invoiced": st.column_config.NumberColumn("Invoiced", format="%.4f"),
        "matched_by": "Matched by",
        "status": "Status",
        "detail": st.column_config.TextColumn("Why", width="large"),
    }
    if problems.is_empty():
        st.success("Every call and invoice line matches the contract.")
    else:
        ui.table(problems, call_columns)
    with st.expander(f"All {calls.height:,} calls and lines"):
        ui.table(calls, call_columns)


def render_reconcile_page() -> None:
    ledger = data.ledger_file()
    st.title("Reconciliation")
    st.caption(
        "Does the ledger agree with the bills? Per UTC day × project × line item against OpenAI's Costs API, "
        "per call against a provider's invoice. A call's project is its `project` tag."
    )
    openai_section(ledger)
    provider_section(ledger)


if __name__ == "__main__":
    render_reconcile_page()
