"""``imagecost budgets``: each budget's spend so far and forecast; exit 2 when a hard budget is exceeded (cron, CI)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
import duckdb

from ledger.budgets import BUDGETS_ENV, BudgetStatus, budget_statuses, budgets_path, load_budgets
from ledger.cli.options import ledger_option, prices_dir_option
from ledger.cli.tables import format_table
from ledger.db import connect, ledger_path
from ledger.errors import UserError

EXIT_HARD_EXCEEDED = 2
HEADERS = (
    "budget",
    "mode",
    "period",
    "scope",
    "limit_usd",
    "spent_usd",
    "used",
    "forecast_usd",
    "calls",
    "unpriced",
    "blocked",
    "state",
)


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-24T18:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _money(value: float) -> str:
    return f"{value:,.4f}"


def _row(s: BudgetStatus) -> list[str]:
    b = s.budget
    return [
        b.name,
        b.mode,
        s.period.label,
        b.scope(),
        _money(b.limit_usd),
        _money(s.spent_usd),
        f"{s.used:.1%}",
        _money(s.forecast_usd),
        f"{s.calls:,}",
        f"{s.unpriced_calls:,}",
        f"{s.blocked_calls:,}",
        s.state,
    ]


def render(statuses: list[BudgetStatus], budgets_file: Path, ledger: Path, as_of: datetime) -> list[str]:
    """The terminal table and what its figures mean."""
    head = f"Budgets in {budgets_file}, ledger {ledger}, as of {as_of:%Y-%m-%d %H:%M:%S} UTC"
    if not statuses:
        return [head, "no [[budget]] tables in the file"]
    return [
        head,
        *format_table(HEADERS, [_row(s) for s in statuses]),
        "",
        "spent_usd: billed_cost_usd of the priced calls in scope this UTC period (priced_calls);",
        "unpriced: calls not in spent_usd (see priced_calls.unpriced_reason); blocked: refused by the budget guard,",
        "never sent. forecast_usd: linear run-rate to the period's end, spent_usd / elapsed fraction of the period.",
    ]


@click.command()
@ledger_option
@click.option(
    "--budgets",
    "budgets_file",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"Budgets TOML file (default ${BUDGETS_ENV}, else budgets.toml in the prices dir).",
)
@prices_dir_option
@click.option("--as-of", callback=_as_of, help="Report as of this UTC time (ISO 8601; default now).")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout instead of the table.")
@click.pass_context
def budgets(
    ctx: click.Context,
    ledger: str | None,
    budgets_file: str | None,
    prices_dir: str | None,
    as_of: datetime,
    as_json: bool,
) -> None:
    """Budgets, spend so far this period, forecast to the period's end; exit 2 if a hard budget is exceeded."""
    loaded = load_budgets(budgets_path(budgets_file, prices_dir))
    file = ledger_path(ledger)
    con = connect(file, read_only=True)
    try:
        statuses = budget_statuses(con, loaded.budgets, as_of)
    except duckdb.CatalogException:
        raise UserError(
            f"ledger {file} has no pricing views; run `imagecost init --ledger {file}` to migrate it"
        ) from None
    finally:
        con.close()
    exceeded = [s for s in statuses if s.state == "exceeded" and s.budget.mode == "hard"]
    if as_json:
        doc = {
            "as_of": as_of.isoformat(),
            "budgets_file": str(loaded.file),
            "ledger": str(file),
            "budgets": [s.to_json() for s in statuses],
            "hard_exceeded": [s.budget.name for s in exceeded],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo("\n".join(render(statuses, loaded.file, file, as_of)))
    if exceeded:
        names = ", ".join(f"{s.budget.name} (${s.spent_usd:,.4f} > ${s.budget.limit_usd:,.4f})" for s in exceeded)
        click.echo(f"hard budget exceeded: {names}", err=True)
        ctx.exit(EXIT_HARD_EXCEEDED)
