"""Shared pytest setup. Area fixtures live in tests/fixtures/<area>.py and are listed here."""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.fixtures.simulator",
    "tests.fixtures.collector",
    "tests.fixtures.ledger",
    "tests.fixtures.reconcile",
    "tests.fixtures.demo",
    "tests.fixtures.dashboard",
    "tests.fixtures.ingest",
    "tests.fixtures.receiver",
]
