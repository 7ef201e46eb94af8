"""``imagecost budgets``: spend so far, forecast, unpriced and blocked calls, exit codes; the budgets file's errors.

Dollar figures by hand from the packaged books: gpt-image-2 text input $5 / 1M, image output $30 / 1M; the
laozhang.ai gateway's contract $0.03 per call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner, Result
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import collector
from collector import semconv as sc
from collector.spool import SpoolSpanExporter
from ledger.budgets import BudgetGuard, budgets_path, load_budgets
from ledger.cli import cli
from ledger.errors import UserError
from ledger.ingest import ingest_paths
from simulator import Simulator
from tests.fixtures.ledger import add_facts, call_row
from tests.fixtures.simulator import FAKE_API_KEY

AS_OF = "2026-11-24T12:00:00Z"
MEDIUM = 81 * 5 / 1e6 + 1756 * 30 / 1e6  # the fixture row: gpt-image-2 1024x1024 medium, $0.053085
HIGH = 81 * 5 / 1e6 + 7024 * 30 / 1e6  # the same prompt at high quality: $0.211125
GATEWAY = 0.03
MONTH_ELAPSED = 23.5 / 30  # 2026-11-24 12:00 UTC: 23.5 of November's 30 days
DAY_ELAPSED = 0.5

BUDGETS = """
[[budget]]
name = "month-all"
period = "month"
limit_usd = {month_limit}
mode = "hard"

[[budget]]
name = "hero-today"
period = "day"
limit_usd = 0.05
mode = "warn"
tags = {{ feature = "hero" }}

[[budget]]
name = "openai-today"
period = "day"
limit_usd = 0.10
mode = "hard"
route_owner = "openai"
model = "gpt-image-2*"
"""


def at(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@pytest.fixture
def ledger(ledger_file: Path) -> Path:
    """November 2026 so far (as of the 24th, 12:00 UTC), plus calls the report must leave out."""
    add_facts(
        ledger_file,
        calls=[
            call_row(started_at=at(24, 10), tags={"feature": "hero"}),  # $0.053085
            call_row(started_at=at(10, 9), quality_effective="high", image_output_tokens=7024),  # $0.211125
            call_row(started_at=at(24, 9), route_owner="laozhang.ai"),  # contract: $0.03
            call_row(started_at=at(24, 11), requested_model="gpt-image-9"),  # no rates: unpriced, never $0
            call_row(  # refused by the guard: never sent
                started_at=at(24, 11),
                status="error",
                error_type=sc.ERROR_TYPE_BUDGET_EXCEEDED,
                usage_source="missing",
                attempt_count=0,
                images_returned=0,
                text_input_tokens=None,
                input_tokens=None,
                image_input_tokens=None,
                image_output_tokens=None,
                output_tokens=None,
                text_output_tokens=None,
            ),
            call_row(started_at=at(24, 13)),  # after --as-of
            call_row(started_at=at(31, 23, month=10)),  # last month
        ],
    )
    return ledger_file


def write_budgets(tmp_path: Path, month_limit: float = 1.0, name: str = "budgets.toml") -> Path:
    path = tmp_path / name
    path.write_text(BUDGETS.format(month_limit=month_limit))
    return path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["budgets", *args], env={"IMAGECOST_BUDGETS": None, **(env or {})})


def test_json_figures_forecast_unpriced_and_blocked(ledger: Path, tmp_path: Path) -> None:
    budgets = write_budgets(tmp_path)
    result = run("--ledger", str(ledger), "--budgets", str(budgets), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["as_of"], doc["hard_exceeded"]) == ("2026-11-24T12:00:00+00:00", [])
    rows = {row["name"]: row for row in doc["budgets"]}
    month, hero, openai_today = rows["month-all"], rows["hero-today"], rows["openai-today"]

    month_spent = MEDIUM + HIGH + GATEWAY  # $0.29421; the unpriced and the blocked call are not in it
    assert month["period"] == {
        "kind": "month",
        "label": "2026-11",
        "start": "2026-11-01T00:00:00+00:00",
        "end": "2026-12-01T00:00:00+00:00",
    }
    assert (month["spent_usd"], month["forecast_usd"]) == (
        pytest.approx(month_spent),
        pytest.approx(month_spent / MONTH_ELAPSED),  # $0.375587
    )
    assert (month["calls"], month["unpriced_calls"], month["blocked_calls"], month["state"]) == (4, 1, 1, "ok")
    assert month["used"] == pytest.approx(month_spent / 1.0)

    # warn-only, over its $0.05 with the one hero call: exceeded, but no exit 2
    assert (hero["spent_usd"], hero["forecast_usd"]) == (pytest.approx(MEDIUM), pytest.approx(MEDIUM / DAY_ELAPSED))
    assert (hero["calls"], hero["unpriced_calls"], hero["blocked_calls"], hero["state"]) == (1, 0, 0, "exceeded")
    assert hero["scope"] == {"route_owner": None, "model": None, "tags": {"feature": "hero"}}

    # OpenAI route today: $0.053085 spent, on course for $0.10617 > $0.10
    assert (openai_today["spent_usd"], openai_today["forecast_usd"]) == (
        pytest.approx(MEDIUM),
        pytest.approx(2 * MEDIUM),
    )
    counts = (openai_today["calls"], openai_today["unpriced_calls"], openai_today["blocked_calls"])
    assert counts == (1, 0, 1)  # gpt-image-9 is outside the model glob
    assert openai_today["state"] == "forecast_over"


def test_table_and_exit_2_when_a_hard_budget_is_exceeded(ledger: Path, tmp_path: Path) -> None:
    budgets = write_budgets(tmp_path, month_limit=0.25)
    result = run("--ledger", str(ledger), "--budgets", str(budgets), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert result.stderr == "hard budget exceeded: month-all ($0.2942 > $0.2500)\n"
    lines = result.stdout.splitlines()
    assert lines[0] == f"Budgets in {budgets}, ledger {ledger}, as of 2026-11-24 12:00:00 UTC"
    assert lines[1].split() == [
        *("budget", "mode", "period", "scope", "limit_usd", "spent_usd", "used", "forecast_usd"),
        *("calls", "unpriced", "blocked", "state"),
    ]
    rows = [" ".join(line.split()) for line in lines[3:6]]  # cells, whatever the column widths
    assert rows == [
        "month-all hard 2026-11 all calls 0.2500 0.2942 117.7% 0.3756 4 1 1 exceeded",
        "hero-today warn 2026-11-24 feature=hero 0.0500 0.0531 106.2% 0.1062 1 0 0 exceeded",
        "openai-today hard 2026-11-24 route_owner=openai model=gpt-image-2* 0.1000 0.0531 53.1% 0.1062 1 0 1 "
        "forecast_over",
    ]


def test_the_budgets_file_comes_from_the_environment_or_the_prices_dir(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGECOST_BUDGETS", raising=False)
    monkeypatch.delenv("IMAGECOST_PRICES_DIR", raising=False)
    prices = tmp_path / "prices"
    prices.mkdir()
    with pytest.raises(UserError) as nothing:
        budgets_path(None, prices)
    assert str(nothing.value) == (
        f"no budgets file: pass --budgets FILE or set $IMAGECOST_BUDGETS ({prices / 'budgets.toml'} does not exist)"
    )
    default = write_budgets(prices)
    assert budgets_path(None, prices) == default
    named = write_budgets(tmp_path, name="elsewhere.toml")
    monkeypatch.setenv("IMAGECOST_BUDGETS", str(named))
    assert budgets_path(None, prices) == named  # the variable wins over the prices dir

    result = run("--ledger", str(ledger), "--as-of", AS_OF, "--json", env={"IMAGECOST_BUDGETS": str(named)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["budgets_file"] == str(named)


def test_the_packaged_example_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "ledger" / "books" / "budgets.example.toml"
    budgets = load_budgets(example).budgets
    assert [(b.name, b.period, b.mode, b.scope()) for b in budgets] == [
        ("all-image-spend", "month", "hard", "all calls"),
        ("hero-images-daily", "day", "hard", "feature=hero"),
        ("laozhang-monthly", "month", "warn", "route_owner=laozhang.ai"),
        ("gpt-image-2-daily-watch", "day", "warn", "model=gpt-image-2*"),
    ]


GOOD = '[[budget]]\nname = "a"\nperiod = "day"\nlimit_usd = 5\nmode = "hard"\n'


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[budget]]\nname = "a"\nperiod = "day"\nlimit_usd = 5\n', "budget #1 (a): missing mode"),
        (
            GOOD.replace("limit_usd", "limit"),
            "budget #1 (a): unknown field 'limit' (fields: name, period, limit_usd, "
            "mode, route_owner, model, tags, notes)",
        ),
        (GOOD.replace("= 5", "= -5"), "budget #1 (a): limit_usd: must be a positive number of US dollars (got -5.0)"),
        (GOOD.replace('"day"', '"week"'), "budget #1 (a): period: Input should be 'day' or 'month'"),
        (GOOD.replace('"hard"', '"block"'), "budget #1 (a): mode: Input should be 'hard' or 'warn'"),
        (GOOD + GOOD, "budget #2 (a): another budget is already named 'a'; names must be unique"),
        (
            GOOD.replace('mode = "hard"', 'mode = "hard"\ntags = { tier = 1 }'),
            "budget #1 (a): tags.tier: Input should be a valid string",
        ),
        ("[settings]\nx = 1\n", "expected only [[budget]] tables (see ledger/books/budgets.example.toml)"),
        ("[[budget]\n", "not valid TOML: Expected ']]' at the end of an array declaration (at line 1, column 9)"),
    ],
    ids=["missing", "unknown-field", "negative", "period", "mode", "duplicate", "tag-type", "section", "toml"],
)
def test_a_bad_budgets_file_is_one_line_naming_file_entry_and_problem(
    ledger: Path, tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "budgets.toml"
    path.write_text(text)
    result = run("--ledger", str(ledger), "--budgets", str(path))
    assert result.exit_code == 1
    assert result.output == f"Error: {path}: {problem}\n"


def test_a_missing_budgets_file(ledger: Path, tmp_path: Path) -> None:
    result = run("--ledger", str(ledger), "--budgets", str(tmp_path / "nope.toml"))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: budgets file {tmp_path / 'nope.toml'} does not exist; fix --budgets / $IMAGECOST_BUDGETS\n"
    )


@pytest.fixture
def spooled(tmp_path: Path) -> Iterator[tuple[TracerProvider, Path]]:
    spool = tmp_path / "spool"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SpoolSpanExporter(spool)))
    yield provider, spool
    collector.uninstrument()
    provider.shutdown()


def test_a_blocked_call_reaches_the_ledger_as_blocked_not_unpriced(
    ledger_file: Path, tmp_path: Path, sim: Simulator, spooled: tuple[TracerProvider, Path], clean_env: None
) -> None:
    provider, spool = spooled
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[[budget]]\nname = "cap"\nperiod = "month"\nlimit_usd = 0.25\nmode = "hard"\n')
    guard = BudgetGuard.from_files(budgets=budgets, ledger=ledger_file)
    client = openai.OpenAI(api_key=FAKE_API_KEY, base_url=sim.base_url, max_retries=0)
    collector.instrument(client, guard=guard, routes={sim.host_port: "openai"}, tracer_provider=provider)
    args: dict[str, Any] = {"model": "gpt-image-2", "prompt": "a lighthouse", "size": "1024x1024", "quality": "high"}
    client.images.generate(**args)  # 7024 x $30/1M + 3 x $5/1M = $0.210735
    with pytest.raises(collector.BudgetExceeded):
        client.images.generate(**args)

    ingest_paths(ledger_file, [spool])
    result = run("--ledger", str(ledger_file), "--budgets", str(budgets), "--json")
    assert result.exit_code == 0, result.output
    (cap,) = json.loads(result.stdout)["budgets"]
    assert (cap["spent_usd"], cap["calls"], cap["unpriced_calls"], cap["blocked_calls"]) == (
        pytest.approx(7024 * 30 / 1e6 + 3 * 5 / 1e6),
        1,
        0,
        1,
    )
