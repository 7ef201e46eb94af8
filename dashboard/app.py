"""The Streamlit entry script: ``imagecost dashboard`` runs ``streamlit run`` on this file.

It reads the ledger named by ``$IMAGECOST_LEDGER`` (read-only, one short connection per query) and
shows one page per question: Spend (finance), Retry causes and Anomalies (engineers), Calls (one
call's full record), Estimate (planners) and Price book. A missing or empty ledger gets a first-run
page instead of an error; a ledger held by an ingest gets a "busy, retrying" notice, never a traceback.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import streamlit as st

from dashboard import data
from dashboard.pages_reconcile import render_reconcile_page
from ledger.db import LedgerBusy, LedgerMissing

PAGES = Path(__file__).resolve().parent / "pages"
BUSY_RETRIES_KEY = "_ledger_busy_retries"


def _page(file: str, title: str, icon: str, *, default: bool = False) -> st.Page:
    return st.Page(PAGES / file, title=title, icon=icon, default=default)


def ledger_pages() -> dict[str, list[st.Page]]:
    """The pages of a ledger with calls in it, grouped by who reads them."""
    return {
        "Finance": [
            _page("spend.py", "Spend", ":material/payments:", default=True),
            st.Page(render_reconcile_page, title="Reconciliation", icon=":material/balance:", url_path="reconcile"),
            _page("price_book.py", "Price book", ":material/menu_book:"),
        ],
        "Engineering": [
            _page("retry_causes.py", "Retry causes", ":material/replay:"),
            _page("anomalies.py", "Anomalies", ":material/troubleshoot:"),
            _page("calls.py", "Calls", ":material/receipt_long:"),
        ],
        "Planning": [_page("estimate.py", "Estimate", ":material/calculate:")],
    }


def first_run_pages() -> list[st.Page]:
    """Nothing to show yet: how to fill the ledger, plus the estimator (which needs no ledger)."""
    return [
        _page("first_run.py", "Get started", ":material/rocket_launch:", default=True),
        _page("estimate.py", "Estimate", ":material/calculate:"),
    ]


def busy_notice() -> None:
    """The ledger stayed locked by a writer (an ingest): say so and retry, a few times automatically."""
    retries = int(st.session_state.get(BUSY_RETRIES_KEY, 0))
    st.info("Ledger busy: another process (an ingest) is writing to it. Retrying…", icon=":material/hourglass_top:")
    if retries < data.BUSY_AUTO_RETRIES:
        st.session_state[BUSY_RETRIES_KEY] = retries + 1
        time.sleep(data.BUSY_RETRY_DELAY_S)
        st.rerun()
    st.button("Retry now", key="busy_retry")


def unreadable(exc: duckdb.Error, ledger: str) -> None:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    st.error(
        f"The ledger could not be read: {first_line}. If it was made by an older imagecost, "
        f"update it with `imagecost init --ledger {ledger}` (keeps all data)."
    )


def sidebar(ledger: str, state: data.LedgerState) -> None:
    with st.sidebar:
        st.caption(f"Ledger: `{ledger}`")
        if state is data.LedgerState.READY:
            summary = data.ledger_summary(ledger)
            st.caption(f"{summary.calls:,} calls · latest {summary.latest:%Y-%m-%d %H:%M} UTC")
            if summary.behind:
                st.caption(
                    ":material/speed: Computed live, so slower on a large ledger: it changed since its stores "
                    f"were last refreshed. `imagecost refresh --ledger {ledger}` speeds it up; figures are the same."
                )
        st.caption("All times UTC. Amounts in US dollars unless a currency is named.")


def main() -> None:
    st.set_page_config(page_title="imagecost", page_icon=":material/payments:", layout="wide")
    ledger = data.ledger_file()
    try:
        state = data.ledger_state(ledger)
        pages = ledger_pages() if state is data.LedgerState.READY else first_run_pages()
        navigation = st.navigation(pages)
        sidebar(ledger, state)
        navigation.run()
        st.session_state[BUSY_RETRIES_KEY] = 0
    except LedgerBusy:
        busy_notice()
    except LedgerMissing:  # deleted while the dashboard was open
        st.cache_data.clear()
        st.rerun()
    except duckdb.Error as exc:
        unreadable(exc, ledger)


main()
