"""The real thing: ``imagecost dashboard`` as a subprocess, driven by headless Chromium (Debian's, via Playwright).

Checks the Spend figure against SQL, walks through the pages and saves the screenshots in
docs/screenshots/ (reviewed by eye; they also go into the docs).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Page, sync_playwright

from ledger.cli import cli
from ledger.db import connect

CHROMIUM = Path("/usr/bin/chromium")
IMAGECOST = Path(sys.executable).parent / "imagecost"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = [  # stack-notes §6.3
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WIDTH = 1400
TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing on CI: install Debian's chromium (apt-get install -y chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium); the browser test needs it")
    return CHROMIUM


@pytest.fixture(scope="module")
def dashboard_url(dashboard_ledger: Path) -> Iterator[str]:
    """``imagecost dashboard --no-browser`` on a free port, stopped (SIGTERM to its process group) afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [str(IMAGECOST), "dashboard", "--ledger", str(dashboard_ledger), "--port", str(port), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        first_line = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        assert first_line.startswith(f"imagecost dashboard: {url}  (ledger {dashboard_ledger}")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as reply:
                    if reply.read() == b"ok":
                        break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the dashboard did not come up"
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def settle(page: Page) -> None:
    """Wait until the script run is over: title, metrics drawn, the running indicator gone."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=TIMEOUT_MS)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=TIMEOUT_MS)


def shoot(page: Page, name: str) -> Path:
    """Screenshot the whole page: grow the viewport to the main area's height first (it scrolls inside)."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": WIDTH, "height": min(max(int(height) + 40, 900), 4000)})
    page.wait_for_timeout(600)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    return path


def metric_value(page: Page, label: str) -> str:
    card = page.locator('[data-testid="stMetric"]').filter(has_text=label)
    return card.locator('[data-testid="stMetricValue"]').inner_text().strip()


def go_to(page: Page, title: str, last_heading: str) -> None:
    """Click a page in the sidebar and wait for its last section to be drawn."""
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).click()
    page.wait_for_function(
        "t => document.querySelector('[data-testid=\"stMain\"] h1')?.innerText.trim() === t", arg=title
    )
    page.get_by_role("heading", name=last_heading).wait_for(timeout=TIMEOUT_MS)
    settle(page)


@pytest.mark.browser
def test_dashboard_in_chromium(chromium: Path, dashboard_url: str, dashboard_ledger: Path) -> None:
    today = datetime.now(UTC).date()
    con = connect(dashboard_ledger, read_only=True)
    try:
        period_total = con.execute(
            "select sum(billed_cost_usd) from priced_calls "
            "where pricing_status = 'priced' and call_day between ? and ?",
            [today - timedelta(days=29), today],
        ).fetchall()[0][0]
        call_id, request_id = con.execute(
            "select c.call_id, c.request_id from calls c join images i on i.call_id = c.call_id "
            "where c.attempt_count > 1 and c.route_owner = 'openai' order by c.started_at desc limit 1"
        ).fetchall()[0]
    finally:
        con.close()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        page.goto(dashboard_url)
        page.wait_for_selector('[data-testid="stMetricValue"]', timeout=TIMEOUT_MS)
        page.wait_for_selector(
            '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg', timeout=TIMEOUT_MS
        )
        page.get_by_role("button", name="Download daily spend (CSV)").wait_for(timeout=TIMEOUT_MS)
        settle(page)
        assert metric_value(page, "Selected period") == f"${period_total:,.2f}"
        assert shoot(page, "spend").stat().st_size > 20_000

        go_to(page, "Retry causes", "Top error codes")
        page.wait_for_selector('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg')
        assert metric_value(page, "Failed attempts") != "0"
        shoot(page, "retry_causes")

        go_to(page, "Anomalies", "Unpriced calls and why")
        shoot(page, "anomalies")

        go_to(page, "Calls", "Calls")
        page.get_by_role("textbox", name="Search call id, trace id or request id").fill(request_id)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "t => [...document.querySelectorAll('[data-testid=\"stMain\"] h3')].some(h => h.innerText.includes(t))",
            arg=call_id,
        )
        page.get_by_role("heading", name="Trace").wait_for(timeout=TIMEOUT_MS)
        settle(page)
        page.wait_for_selector('[data-testid="stImage"] img', timeout=TIMEOUT_MS)
        shoot(page, "calls")

        go_to(page, "Estimate", "Tokens by class")
        assert metric_value(page, "Image output tokens") == "1,756"
        shoot(page, "estimate")

        go_to(page, "Price book", "Exchange rates")
        shoot(page, "price_book")
        browser.close()


def test_dashboard_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["dashboard", "--ledger", str(tmp_path / "l.duckdb"), "--port", str(port), "--no-browser"]
        )
    assert result.exit_code == 1
    assert result.output == f"Error: port {port} on 127.0.0.1 is already in use; pick another with --port\n"
