"""The Spend page reads closed months from their frozen rows and books late changes in the open month."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

import dashboard
from ledger.cli import cli
from ledger.db import connect
from tests.fixtures.ledger import add_facts, call_row

APP = Path(dashboard.__file__).parent / "app.py"


def _live_month_to_date(ledger: Path, first: date) -> float:
    con = connect(ledger, read_only=True)
    try:
        sql = "select sum(billed_cost_usd) from priced_calls where pricing_status = 'priced' and call_day >= ?"
        return con.execute(sql, [first]).fetchall()[0][0]
    finally:
        con.close()


def test_late_call_for_a_closed_month_shows_as_an_adjustment_this_month(
    dashboard_ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger.duckdb"
    shutil.copy(dashboard_ledger, ledger)
    today = datetime.now(UTC).date()
    first = today.replace(day=1)
    last_month = first - timedelta(days=1)
    closed = CliRunner().invoke(cli, ["close", f"{last_month:%Y-%m}", "--ledger", str(ledger)])
    assert closed.exit_code == 0, closed.output

    live_before = _live_month_to_date(ledger, first)
    # A span from last month arrives after the close: gpt-image-2 1024x1024 medium, 81 text tokens
    # 81 × $5/1M + 1756 × $30/1M = $0.000405 + $0.05268 = $0.053085
    late = call_row(started_at=datetime.combine(last_month, datetime.min.time(), tzinfo=UTC) + timedelta(hours=9))
    add_facts(ledger, calls=[late])
    assert _live_month_to_date(ledger, first) == pytest.approx(live_before)  # live pricing puts it last month

    monkeypatch.setenv("IMAGECOST_LEDGER", str(ledger))
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    [shown] = [m.value for m in at.metric if m.label == "Month to date"]
    assert shown == f"${live_before + 0.053085:,.2f}"
