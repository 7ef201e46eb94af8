"""Estimate page (planners): what one request will cost before it is sent, on every route side by side.

Calls ``ledger.estimator.estimate(EstimateRequest(...), load_books())`` — the same estimator as
``imagecost estimate``. A request the model does not accept shows the estimator's one-line reason
(``UserError``) inline, never a traceback.
"""

from __future__ import annotations

import os

import polars as pl
import streamlit as st

from dashboard import data, ui
from ledger.db import connect
from ledger.errors import UserError
from ledger.estimator import Estimate, EstimateRequest, Observations, estimate, known_models, load_observations
from ledger.pricebook import PRICES_DIR_ENV, PriceBooks, load_books

QUALITIES = ("low", "medium", "high", "auto")
TIERS = ("standard", "batch")


@st.cache_resource(ttl=60, show_spinner=False)
def books(prices_dir: str | None) -> PriceBooks:
    """The packaged price books plus ``$IMAGECOST_PRICES_DIR`` (reloaded every minute)."""
    return load_books(prices_dir)


@st.cache_data(ttl=data.CACHE_TTL_S, show_spinner=False)
def observations(ledger: str) -> Observations:
    """Tokens the ledger has observed, to calibrate the estimate (read-only, one short connection)."""
    con = connect(ledger, read_only=True, wait_s=data.WAIT_S)
    try:
        return load_observations(con, source=ledger)
    finally:
        con.close()


def parse_input_images(text: str) -> tuple[str, ...]:
    """``"1024x1024, 512x512"`` -> ("1024x1024", "512x512"); the estimator validates each size."""
    return tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())


def request_form() -> tuple[EstimateRequest, bool]:
    models = known_models()
    row1 = st.columns(4)
    model = row1[0].selectbox("Model", models, index=models.index("gpt-image-2"), key="est_model")
    size = row1[1].text_input("Size (WxH or auto)", value="1024x1024", key="est_size")
    quality = row1[2].selectbox("Quality", QUALITIES, index=1, key="est_quality")
    tier = row1[3].selectbox("Tier", TIERS, key="est_tier", help="batch: half the standard rates (/v1/batch)")
    row2 = st.columns(4)
    n = int(row2[0].number_input("Images (n)", min_value=1, max_value=10, value=1, step=1, key="est_n"))
    partials = int(
        row2[1].number_input("Partial images", min_value=0, max_value=3, value=0, step=1, key="est_partials")
    )
    inputs = row2[2].text_input(
        "Input images (edits)", value="", placeholder="e.g. 1024x1024, 1536x1024", key="est_inputs"
    )
    prompt_chars = int(
        row2[3].number_input("Prompt length (characters)", min_value=0, value=0, step=50, key="est_prompt")
    )
    calibrate = st.checkbox(
        "Calibrate with the tokens observed in this ledger",
        value=False,
        key="est_calibrate",
        help="Uses the ledger's observed output and input tokens where it has enough calls.",
    )
    request = EstimateRequest(
        model=model,
        size=size.strip() or "auto",
        quality=quality,
        n=n,
        partial_images=partials,
        input_images=parse_input_images(inputs),
        prompt_chars=prompt_chars or None,
        tier=tier,
    )
    return request, calibrate


def routes_table(result: Estimate) -> pl.DataFrame:
    """One row per route: the official list price first, then each provider contract."""
    rows = []
    if result.official_usd is not None:
        r = result.official_usd
        rows.append(("openai", "official rates (list price)", "USD", r.low, r.expected, r.high, r.expected))
    for route in result.routes:
        usd = route.usd.expected if route.usd else None
        amount = route.amount
        rows.append(
            (
                route.route_owner,
                f"contract {route.contract_id} ({route.cost_basis.replace('_', ' ')})",
                route.currency,
                amount.low,
                amount.expected,
                amount.high,
                usd,
            )
        )
    return pl.DataFrame(
        rows, schema=["route_owner", "basis", "currency", "low", "expected", "high", "usd"], orient="row"
    )


def show(result: Estimate) -> None:
    tokens = result.output_tokens
    cols = st.columns(2 + len(result.routes))
    cols[0].metric(
        "Image output tokens",
        f"{tokens.expected:,.0f}",
        help=f"Range {tokens.low:,.0f} – {tokens.high:,.0f} (n images + 100 per partial image)",
        border=True,
    )
    official = result.official_usd
    cols[1].metric(
        "OpenAI (official rates)",
        ui.usd(official.expected, digits=4) if official else "no rate",
        help=f"Range {ui.usd(official.low, digits=4)} – {ui.usd(official.high, digits=4)}" if official else None,
        border=True,
    )
    for col, route in zip(cols[2:], result.routes, strict=True):
        value = ui.usd(route.usd.expected, digits=4) if route.usd else f"{route.amount.expected:,.4f} {route.currency}"
        col.metric(f"{route.route_owner} (contract)", value, help=route.contract_id, border=True)

    st.subheader("Routes side by side")
    ui.table(
        routes_table(result),
        {
            "route_owner": "Route owner",
            "basis": "Priced by",
            "currency": "Currency",
            "low": st.column_config.NumberColumn("Low", format="%.4f"),
            "expected": st.column_config.NumberColumn("Expected", format="%.4f"),
            "high": st.column_config.NumberColumn("High", format="%.4f"),
            "usd": ui.money_column("Expected (USD)", digits=4),
        },
    )
    st.subheader("Tokens by class")
    ui.table(
        pl.DataFrame(
            [(name, r.low, r.expected, r.high) for name, r in result.tokens.items()],
            schema=["token_class", "low", "expected", "high"],
            orient="row",
        ),
        {
            "token_class": "Token class",
            "low": ui.count_column("Low"),
            "expected": ui.count_column("Expected"),
            "high": ui.count_column("High"),
        },
    )
    if result.notes:
        st.markdown("**Notes**\n" + "\n".join(f"- {note}" for note in result.notes))


def render() -> None:
    st.title("Estimate")
    st.caption("What a request will cost before it is sent: OpenAI's list price and each provider contract.")
    request, calibrate = request_form()
    try:
        observed = None
        if calibrate:
            ledger = data.ledger_file()
            if data.ledger_state(ledger) is data.LedgerState.READY:
                observed = observations(ledger)
        result = estimate(request, books(os.environ.get(PRICES_DIR_ENV)), observed=observed)
    except UserError as exc:
        st.error(str(exc))
        return
    show(result)


if __name__ == "__main__":
    render()
