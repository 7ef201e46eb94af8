"""``imagecost report`` through click: exact figures, CSV columns, the missing-ledger error."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger.cli import cli
from tests.fixtures.ledger import add_facts, call_row

GPT_IMAGE_2 = (81 * 5.00 + 1756 * 30.00) / 1e6  # 0.053085: the default call_row at OpenAI list prices
# adjustments: booked rows adjusting a closed month (none here: no month is closed; tests/test_closing.py)
HEADER = ["calls", "images", "official_usd", "contract_usd", "shadow_official_usd", "unpriced_calls", "adjustments"]


@pytest.fixture
def ledger(ledger_file: Path) -> Path:
    """Three days: OpenAI-routed calls, laozhang.ai (0.03 USD per call), one unpriced, one gateway without contract."""
    add_facts(
        ledger_file,
        calls=[
            call_row(started_at=datetime(2026, 11, 2, 9, tzinfo=UTC), tags={"feature": "hero"}),
            call_row(started_at=datetime(2026, 11, 2, 23, 59, tzinfo=UTC), tags={"feature": "hero"}, n=2)
            | {"images_returned": 2, "image_output_tokens": 3512},
            call_row(started_at=datetime(2026, 11, 3, 0, 0, tzinfo=UTC), route_owner="laozhang.ai"),
            call_row(
                started_at=datetime(2026, 11, 3, 8, tzinfo=UTC), route_owner="laozhang.ai", tags={"feature": "hero"}
            ),
            call_row(started_at=datetime(2026, 11, 3, 9, tzinfo=UTC), text_output_tokens=7),  # no text_output rate
            call_row(started_at=datetime(2026, 11, 4, 9, tzinfo=UTC), route_owner="acme-gw"),  # no contract
        ],
    )
    return ledger_file


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["report", *args])


def parse_csv(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


def test_report_by_route_owner_csv(ledger: Path) -> None:
    result = run("--ledger", str(ledger), "--by", "route_owner", "--csv")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split(",") == ["route_owner", *HEADER]
    two_images = (81 * 5.00 + 3512 * 30.00) / 1e6  # 0.105765
    assert parse_csv(result.output) == [
        {
            "route_owner": "acme-gw",
            "calls": "1",
            "images": "1",
            "official_usd": "",
            "contract_usd": "",
            "shadow_official_usd": f"{GPT_IMAGE_2:.6f}",  # 0.053085
            "unpriced_calls": "1",
            "adjustments": "0",
        },
        {
            "route_owner": "laozhang.ai",
            "calls": "2",
            "images": "2",
            "official_usd": "",
            "contract_usd": "0.06",  # 2 × 0.03
            "shadow_official_usd": f"{2 * GPT_IMAGE_2:.5f}",  # 0.10617
            "unpriced_calls": "0",
            "adjustments": "0",
        },
        {
            "route_owner": "openai",
            "calls": "3",
            "images": "4",
            "official_usd": f"{GPT_IMAGE_2 + two_images:.5f}",  # 0.053085 + 0.105765 = 0.15885
            "contract_usd": "",
            "shadow_official_usd": "",
            "unpriced_calls": "1",
            "adjustments": "0",
        },
    ]


def test_report_by_day_with_period_and_feature(ledger: Path) -> None:
    by_day = parse_csv(run("--ledger", str(ledger), "--csv", "--since", "2026-11-03", "--until", "2026-11-03").output)
    assert by_day == [
        {
            "day": "2026-11-03",
            "period": "open",  # by day and by month: whether the day's month is closed (frozen)
            "calls": "3",
            "images": "3",
            "official_usd": "",  # its only OpenAI call is unpriced
            "contract_usd": "0.06",
            "shadow_official_usd": f"{2 * GPT_IMAGE_2:.5f}",
            "unpriced_calls": "1",
            "adjustments": "0",
        }
    ]
    by_feature = parse_csv(run("--ledger", str(ledger), "--csv", "--by", "feature").output)
    assert [(r["feature"], r["calls"], r["official_usd"], r["contract_usd"]) for r in by_feature] == [
        ("(untagged)", "3", "", "0.03"),
        ("hero", "3", f"{GPT_IMAGE_2 + (81 * 5.00 + 3512 * 30.00) / 1e6:.5f}", "0.03"),
    ]


def test_report_terminal_table(ledger: Path) -> None:
    result = run("--ledger", str(ledger), "--by", "model")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Spend by model, first call to last call (UTC days)"
    assert lines[1].split() == ["model", *HEADER]
    # official 0.15885 → 0.1589, contract 0.06, shadow 0.053085 × 3 = 0.159255 → 0.1593
    assert lines[3].split() == ["gpt-image-2", "6", "7", "0.1589", "0.0600", "0.1593", "2", "0"]
    assert lines[4].split() == ["total", "6", "7", "0.1589", "0.0600", "0.1593", "2", "0"]
    assert "unpriced calls are not in the sums: 1 no_contract, 1 unpriced_model" in result.output


def test_report_on_missing_ledger_is_one_line_and_exit_1(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.duckdb"
    result = run("--ledger", str(missing))
    assert result.exit_code == 1
    assert result.output == f"Error: no ledger at {missing}; create one with `imagecost init --ledger {missing}`\n"
    assert not missing.exists()  # a read-only command never creates the file


def test_report_rejects_reversed_period(ledger: Path) -> None:
    result = run("--ledger", str(ledger), "--since", "2026-11-05", "--until", "2026-11-01")
    assert (result.exit_code, result.output) == (1, "Error: --since 2026-11-05 is after --until 2026-11-01\n")


def test_init_says_where_the_ledger_is_and_what_is_in_it(tmp_path: Path) -> None:
    path = tmp_path / "new" / "ledger.duckdb"
    result = CliRunner().invoke(cli, ["init", "--ledger", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"ledger: {path.resolve()} (created)"
    assert lines[1].startswith("price books: version ") and " loaded (100 official rates, 1 contract terms" in lines[1]
    assert lines[2] == "contents: 0 calls, 0 attempts, 0 images"
    add_facts(path, calls=[call_row(), call_row(started_at=datetime(2026, 11, 5, tzinfo=UTC))])
    again = CliRunner().invoke(cli, ["init", "--ledger", str(path)]).output.splitlines()
    assert again[0] == f"ledger: {path.resolve()} (schema up to date)"
    assert " unchanged (" in again[1]
    assert again[2] == "contents: 2 calls from 2026-11-03 to 2026-11-05 (UTC), 0 attempts, 0 images"
