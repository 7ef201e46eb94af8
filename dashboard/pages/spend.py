"""Spend page (finance): what image generation cost, per day, route owner, model, feature, size × quality.

One SQL query reads ``dash_spend_cube`` for the days the page needs; every figure below is a polars
slice of that small frame. Official-rate spend and provider-contract spend are never added into one
column without their split being shown; unpriced calls are counted, never shown as $0.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import data, ui

BASIS_LABELS = {"official_rates": "Official rates (OpenAI list)", "provider_contract": "Provider contract"}
SUMS = (
    "calls",
    "failed_calls",
    "unpriced_calls",
    "images",
    "priced_images",
)
MONEY = ("spend_usd", "official_spend_usd", "contract_spend_usd", "contract_amount", "shadow_official_usd")


def load_cube(ledger: str, start: date, end: date) -> pl.DataFrame:
    """The spend cube for ``start``..``end`` (UTC days, inclusive)."""
    return data.fetch(ledger, "select * from dash_spend_cube where day between ? and ?", (start, end))


def rollup(cube: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """Sum the cube's measures by ``by`` (money stays null when nothing in the group was priced)."""
    aggs = [pl.col(c).sum() for c in SUMS] + [ui.null_sum(c) for c in MONEY]
    if not by:
        return cube.select(aggs)
    return cube.group_by(by).agg(aggs).sort("spend_usd", "calls", descending=True, nulls_last=True)


def total(cube: pl.DataFrame) -> float | None:
    return ui.scalar(rollup(cube, []), "spend_usd")


def filters(cube: pl.DataFrame, col_owner: DeltaGenerator, col_feature: DeltaGenerator) -> tuple[list[str], list[str]]:
    with col_owner:
        owners = ui.pick_many(
            "Route owner", sorted(cube["route_owner"].unique()), key="spend_owners", placeholder="All route owners"
        )
    with col_feature:
        features = ui.pick_many(
            "Feature tag", sorted(cube["feature"].unique()), key="spend_features", placeholder="All features"
        )
    return owners, features


def headline(cube: pl.DataFrame, start: date, end: date) -> None:
    today = data.today_utc()
    month_start = today.replace(day=1)
    period = cube.filter(pl.col("day").is_between(start, end))
    sums = rollup(period, [])
    unpriced = int(ui.scalar(sums, "unpriced_calls") or 0)
    cols = st.columns(5)
    cols[0].metric("Today (UTC)", ui.usd(total(cube.filter(pl.col("day") == today))), border=True)
    cols[1].metric(
        "Month to date", ui.usd(total(cube.filter(pl.col("day").is_between(month_start, today)))), border=True
    )
    cols[2].metric(
        "Selected period", ui.usd(ui.scalar(sums, "spend_usd")), help=f"{start:%Y-%m-%d} to {end:%Y-%m-%d}", border=True
    )
    cols[3].metric("Calls in period", f"{int(ui.scalar(sums, 'calls') or 0):,}", border=True)
    cols[4].metric(
        "Unpriced calls",
        f"{unpriced:,}",
        help="Calls with no price (unknown model, missing usage, no contract or FX rate). Not in the totals.",
        border=True,
    )
    if unpriced:
        reasons = (
            period.filter(pl.col("pricing_status") != "priced")
            .group_by("pricing_status")
            .agg(pl.col("unpriced_calls").sum())
            .sort("unpriced_calls", descending=True)
        )
        why = ", ".join(f"{r['unpriced_calls']:,} {r['pricing_status'].replace('_', ' ')}" for r in reasons.to_dicts())
        st.warning(
            f"{unpriced:,} calls in this period have no price ({why}); they are not in the totals above. "
            "See Anomalies → Unpriced calls.",
            icon=":material/warning:",
        )


def trend(period: pl.DataFrame) -> None:
    st.subheader("Daily spend by cost basis")
    daily = (
        period.filter(pl.col("pricing_status") == "priced")
        .group_by("day", "cost_basis")
        .agg(pl.col("spend_usd").sum())
        .with_columns(pl.col("cost_basis").replace_strict(BASIS_LABELS, default=pl.col("cost_basis")).alias("basis"))
        .sort("day")
    )
    if daily.is_empty():
        ui.no_rows("priced calls")
        return
    ui.daily_bars(
        daily, value="spend_usd", value_title="Spend (USD)", color="basis", color_title="Cost basis", money=True
    )


def by_route_owner(period: pl.DataFrame) -> None:
    st.subheader("By route owner")
    st.caption(
        "OpenAI calls are priced at OpenAI's list prices; gateway calls at the provider's contract. "
        "The shadow column shows what the gateway calls would have cost at OpenAI's list prices."
    )
    # amounts in different currencies never add up: one "amount currency" term per currency
    native = (
        period.filter(pl.col("contract_amount").is_not_null())
        .group_by("route_owner", "contract_currency")
        .agg(pl.col("contract_amount").sum())
        .sort("contract_currency")
        .group_by("route_owner")
        .agg(
            pl.format(
                "{} {}",
                pl.col("contract_amount").map_elements(lambda v: f"{v:,.2f}", return_dtype=pl.String),
                pl.col("contract_currency"),
            )
            .str.join(" + ")
            .alias("contract_in_currency")
        )
    )
    owners = rollup(period, ["route_owner"]).join(native, on="route_owner", how="left")
    ui.table(
        owners,
        {
            "route_owner": "Route owner",
            "calls": ui.count_column("Calls"),
            "images": ui.count_column("Images"),
            "official_spend_usd": ui.money_column("Official-rate spend"),
            "contract_spend_usd": ui.money_column("Provider-contract spend", help="Converted to USD at the FX rate"),
            "contract_in_currency": st.column_config.TextColumn("In contract currency"),
            "shadow_official_usd": ui.money_column("Shadow official cost", help="Provider calls at OpenAI list prices"),
            "unpriced_calls": ui.count_column("Unpriced calls"),
        },
    )


def breakdowns(period: pl.DataFrame) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("By model")
        ui.table(
            rollup(period, ["model"]),
            {
                "model": "Model",
                "calls": ui.count_column("Calls"),
                "images": ui.count_column("Images"),
                "spend_usd": ui.money_column("Spend"),
                "unpriced_calls": ui.count_column("Unpriced calls"),
            },
        )
    with right:
        st.subheader("By feature tag")
        ui.table(
            rollup(period, ["feature"]),
            {
                "feature": "Feature",
                "calls": ui.count_column("Calls"),
                "images": ui.count_column("Images"),
                "spend_usd": ui.money_column("Spend"),
                "unpriced_calls": ui.count_column("Unpriced calls"),
            },
        )
    st.subheader("By size × quality")
    sizes = rollup(period, ["size", "quality"]).with_columns(
        (pl.col("spend_usd") / pl.col("priced_images")).alias("per_image_usd")
    )
    ui.table(
        sizes,
        {
            "size": "Size",
            "quality": "Quality",
            "calls": ui.count_column("Calls"),
            "images": ui.count_column("Images"),
            "spend_usd": ui.money_column("Spend"),
            "per_image_usd": ui.money_column("Spend per image", digits=4),
            "unpriced_calls": ui.count_column("Unpriced calls"),
        },
    )


CSV_KEYS = ("day", "route_owner", "model", "cost_basis", "feature")


def daily_table(period: pl.DataFrame) -> pl.DataFrame:
    """The CSV export: one row per UTC day × route owner × model × cost basis × feature tag."""
    return rollup(period, list(CSV_KEYS)).sort(*CSV_KEYS).select(*CSV_KEYS, *SUMS, *MONEY)


def download(period: pl.DataFrame, start: date, end: date) -> None:
    st.download_button(
        "Download daily spend (CSV)",
        daily_table(period).write_csv(),
        file_name=f"imagecost-spend-{start:%Y%m%d}-{end:%Y%m%d}.csv",
        mime="text/csv",
        icon=":material/download:",
    )


def render() -> None:
    ledger = data.ledger_file()
    st.title("Spend")
    st.caption("What image generation cost, in US dollars, by UTC day. Gateway calls are priced by their contract.")
    col_period, col_owner, col_feature = st.columns(3)
    with col_period:
        start, end = ui.period_input("spend_period")
    today = data.today_utc()
    cube = load_cube(ledger, min(start, today.replace(day=1)), max(end, today))
    owners, features = filters(cube, col_owner, col_feature)
    if owners:
        cube = cube.filter(pl.col("route_owner").is_in(owners))
    if features:
        cube = cube.filter(pl.col("feature").is_in(features))
    headline(cube, start, end)
    period = cube.filter(pl.col("day").is_between(start, end))
    trend(period)
    by_route_owner(period)
    breakdowns(period)
    download(period, start, end)


if __name__ == "__main__":
    render()
