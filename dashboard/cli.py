"""``imagecost dashboard``: serve the Streamlit dashboard over a ledger on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import webbrowser
from pathlib import Path

import click

from ledger.cli.options import ledger_option
from ledger.db import LEDGER_ENV, ledger_path
from ledger.errors import UserError

APP = Path(__file__).resolve().parent / "app.py"
HOST = "127.0.0.1"
HEALTH_WAIT_S = 30.0


def streamlit_command(port: int) -> list[str]:
    """The exact ``streamlit run`` invocation (headless, loopback only, no usage statistics)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        HOST,
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + HEALTH_WAIT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def run_dashboard(ledger: str | None, port: int, *, open_browser: bool) -> int:
    """Start Streamlit on ``port`` over ``ledger`` and block until it stops; returns its exit code."""
    if not _port_free(port):
        raise UserError(f"port {port} on {HOST} is already in use; pick another with --port")
    path = ledger_path(ledger).resolve()
    url = f"http://{HOST}:{port}"
    proc = subprocess.Popen(streamlit_command(port), env={**os.environ, LEDGER_ENV: str(path)})

    def stop(signum: int, _frame: object) -> None:
        proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    note = "" if path.exists() else " (not there yet: the dashboard explains how to fill it)"
    click.echo(f"imagecost dashboard: {url}  (ledger {path}{note}; Ctrl+C to stop)")
    try:
        if open_browser and _wait_healthy(url, proc):
            webbrowser.open(url)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


@click.command()
@ledger_option
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="Port on 127.0.0.1.")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
def dashboard(ledger: str | None, port: int, no_browser: bool) -> None:
    """Open the cost dashboard (Spend, Retry causes, Anomalies, Calls, Estimate, Price book) over a ledger."""
    code = run_dashboard(ledger, port, open_browser=not no_browser)
    if code not in (0, -signal.SIGTERM):
        raise SystemExit(code)
