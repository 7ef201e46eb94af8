"""First-run page: the ledger is missing or has no calls yet — how to fill it."""

from __future__ import annotations

import streamlit as st

from dashboard import data

LEAD = {
    data.LedgerState.MISSING: "There is no ledger at this path yet.",
    data.LedgerState.UNINITIALISED: "This file is not an imagecost ledger yet.",
    data.LedgerState.EMPTY: "The ledger exists but holds no image calls yet.",
}

INSTRUMENT = """\
import collector
from openai import OpenAI

collector.instrument(route_owner="openai")        # one span per image call -> spool files
client = OpenAI()
with collector.tags(feature="hero", team="growth"):
    client.images.generate(model="gpt-image-2", prompt="...", size="1024x1024", quality="medium")
"""


def render() -> None:
    ledger = data.ledger_file()
    state = data.ledger_state(ledger)
    st.title("Welcome to imagecost")
    st.markdown(f"{LEAD.get(state, '')} Ledger: `{ledger}`")
    st.markdown("Fill it in one of three ways; this page turns into the dashboard as soon as calls arrive.")

    st.subheader("1. Try the demo (no API key, no network)")
    st.markdown("Runs realistic traffic through the real OpenAI SDK against local simulators and opens this dashboard:")
    st.code("imagecost demo", language="bash")

    st.subheader("2. Instrument your app")
    st.markdown(
        "Add two lines where you create the OpenAI client; calls are recorded with their tokens, never prompts:"
    )
    st.code(INSTRUMENT, language="python")

    st.subheader("3. Ingest the spool into this ledger")
    st.code(f"imagecost init --ledger {ledger}\nimagecost ingest --ledger {ledger}", language="bash")
    st.caption("Until then the Estimate page already works: it prices a request before you send it.")


if __name__ == "__main__":
    render()
