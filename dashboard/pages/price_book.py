"""Price book page (finance): the official rates and the provider contracts the ledger prices with.

Reads the ledger's copies (``official_rates``, ``provider_contracts``, ``fx_rates``,
``price_book_loads``), i.e. exactly what priced the calls shown on the other pages.
"""

from __future__ import annotations

import fnmatch

import polars as pl
import streamlit as st

from dashboard import data, ui

TOKEN_CLASSES = ("text_input", "cached_text_input", "image_input", "cached_image_input", "image_output", "text_output")
TOKEN_LABELS = {
    "text_input": "Text in",
    "cached_text_input": "Cached text in",
    "image_input": "Image in",
    "cached_image_input": "Cached image in",
    "image_output": "Image out",
    "text_output": "Text out",
}

RATES_SQL = """
select model, tier, token_class, usd_per_1m, effective_from, effective_to, source_url, checked_on, book_file
from official_rates
order by model, tier, effective_from
"""
CONTRACTS_SQL = """
select provider, contract_id, model_pattern, unit, token_class, price, currency, charge_failed_calls,
       effective_from, effective_to, source, notes
from provider_contracts
order by provider, contract_id, effective_from
"""
FX_SQL = "select currency, day, usd_per_unit, source from fx_rates order by currency, day desc"
LOADS_SQL = "select loaded_at, version, files from price_book_loads order by loaded_at desc limit 1"


def rate_card(rates: pl.DataFrame) -> pl.DataFrame:
    """One row per model × tier × window, one column per token class (USD per 1M tokens)."""
    keys = ["model", "tier", "effective_from", "effective_to"]
    card = rates.pivot(on="token_class", index=keys, values="usd_per_1m", aggregate_function="first")
    for token_class in TOKEN_CLASSES:
        if token_class not in card.columns:
            card = card.with_columns(pl.lit(None, dtype=pl.Float64).alias(token_class))
    sources = rates.group_by(keys).agg(pl.col("source_url").first(), pl.col("checked_on").max())
    return card.join(sources, on=keys, how="left", nulls_equal=True).sort(keys)


CONTRACT_COLUMNS: dict[str, object] = {
    "provider": "Provider",
    "contract_id": "Contract",
    "model_pattern": "Models",
    "unit": "Unit",
    "token_class": "Token class",
    "price": st.column_config.NumberColumn("Price", format="%.4f"),
    "currency": "Currency",
    "charge_failed_calls": st.column_config.CheckboxColumn("Charges failures", help="Failed attempts are billed too"),
    "effective_from": st.column_config.DateColumn("From", format="YYYY-MM-DD"),
    "effective_to": st.column_config.DateColumn("Until", format="YYYY-MM-DD"),
}


def side_by_side(rates: pl.DataFrame, contracts: pl.DataFrame) -> None:
    """One model: what OpenAI lists (left) next to what each provider contract charges (right)."""
    models = sorted(rates["model"].unique()) if rates.height else []
    if not models:
        return
    default = models.index("gpt-image-2") if "gpt-image-2" in models else 0
    model = st.selectbox("Compare for model", models, index=default, key="price_model")
    left, right = st.columns(2)
    with left:
        st.subheader(f"OpenAI list prices · {model}")
        order = {c: i for i, c in enumerate(TOKEN_CLASSES)}
        own = rates.filter(pl.col("model") == model).with_columns(
            pl.col("token_class").replace_strict(TOKEN_LABELS, default=pl.col("token_class")).alias("class"),
            pl.col("token_class").replace_strict(order, default=len(order)).alias("order"),
        )
        ui.table(
            own.sort("tier", "order", "effective_from", descending=[True, False, False]),
            {
                "class": "Token class",
                "tier": "Tier",
                "usd_per_1m": st.column_config.NumberColumn("USD per 1M tokens", format="$%.3f"),
                "effective_from": st.column_config.DateColumn("From", format="YYYY-MM-DD"),
                "effective_to": st.column_config.DateColumn("Until", format="YYYY-MM-DD"),
            },
        )
        st.caption("Sources: see All official OpenAI rates below.")
    with right:
        st.subheader(f"Provider contracts · {model}")
        matching = contracts.filter(
            pl.col("model_pattern").map_elements(lambda glob: fnmatch.fnmatchcase(model, glob), return_dtype=pl.Boolean)
        )
        if matching.is_empty():
            st.caption(f"No provider contract covers {model}: gateway calls for it stay unpriced (no_contract).")
        else:
            compact = ("provider", "unit", "token_class", "price", "currency", "charge_failed_calls", "effective_from")
            ui.table(matching, {k: CONTRACT_COLUMNS[k] for k in compact})
            st.caption("Contract: " + ", ".join(matching["contract_id"].unique().sort()))


def render() -> None:
    ledger = data.ledger_file()
    st.title("Price book")
    st.caption(
        "The rates that priced the calls on the other pages. OpenAI's list prices and provider contracts are "
        "kept apart: a contract is what a gateway charges, never an OpenAI price."
    )
    rates = data.fetch(ledger, RATES_SQL)
    contracts = data.fetch(ledger, CONTRACTS_SQL)
    loads = data.fetch(ledger, LOADS_SQL)
    if loads.height:
        load = loads.row(0, named=True)
        st.caption(f"Price books loaded {load['loaded_at']:%Y-%m-%d %H:%M} UTC · version `{load['version'][:12]}`")

    side_by_side(rates, contracts)

    st.subheader("All official OpenAI rates")
    st.caption("US dollars per 1 million tokens; a window runs from its first day to the day before 'Until'.")
    if rates.is_empty():
        st.caption("No official rates loaded: run `imagecost init` to load the price books into the ledger.")
    else:
        config: dict[str, object] = {
            "model": "Model",
            "tier": "Tier",
            "effective_from": st.column_config.DateColumn("From", format="YYYY-MM-DD"),
            "effective_to": st.column_config.DateColumn("Until", format="YYYY-MM-DD"),
        }
        config |= {c: st.column_config.NumberColumn(TOKEN_LABELS[c], format="$%.3f") for c in TOKEN_CLASSES}
        config |= {
            "source_url": st.column_config.LinkColumn("Source"),
            "checked_on": st.column_config.DateColumn("Checked", format="YYYY-MM-DD"),
        }
        ui.table(rate_card(rates), config)

    st.subheader("All provider contracts")
    st.caption("What each gateway charges, in its own currency.")
    ui.table(contracts, CONTRACT_COLUMNS | {"source": "Source"})

    st.subheader("Exchange rates")
    fx = data.fetch(ledger, FX_SQL)
    if fx.is_empty():
        st.caption(
            "No exchange rates loaded. Contracts in a currency other than USD stay unpriced (no_fx_rate) "
            "until you add your treasury's rates in a file of your --prices-dir."
        )
    else:
        ui.table(
            fx,
            {
                "currency": "Currency",
                "day": st.column_config.DateColumn("From", format="YYYY-MM-DD"),
                "usd_per_unit": st.column_config.NumberColumn("USD per unit", format="%.6f"),
                "source": "Source",
            },
        )
    notes = contracts.filter(pl.col("notes").is_not_null())
    if notes.height:
        with st.expander("Contract notes"):
            for row in notes.iter_rows(named=True):
                st.markdown(f"**{row['contract_id']}**: {row['notes']}")


if __name__ == "__main__":
    render()
