"""``imagecost reconcile``: the ledger against OpenAI's bill, and against a provider's invoice.

imagecost reconcile [--since D] [--until D] [--tolerance 0.01|2%] [--project P] [--csv] [--counts]
imagecost reconcile import FILE...          exported Costs / Usage (images) pages, JSON
imagecost reconcile fetch --since D         live, with $OPENAI_ADMIN_KEY (optionally --save FILE)
imagecost reconcile provider FILE --provider NAME [--csv] [--days]
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click

from ledger.cli.options import ledger_option, prices_dir_option
from ledger.db import existing_ledger, ledger_path, open_ledger
from ledger.errors import UserError

COST_TABLE = ("day", "project", "model", "token_class", "tier", "bill_usd", "ledger_usd", "diff_usd", "status", "cause")
IMAGE_TABLE = (
    "day",
    "project",
    "model",
    "source",
    "bill_images",
    "ledger_images",
    "bill_requests",
    "ledger_requests",
    "status",
    "cause",
)
CALL_TABLE = ("day", "time", "call_id", "request_id", "invoice_lines", "model", "owed", "invoiced", "status")
ADMIN_KEY_ENV = "OPENAI_ADMIN_KEY"

day_type = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _sync(con: Any, prices_dir: str | None, line_items: str | None) -> None:
    """Bring the price books and the line-item map in the ledger up to date (the views read them)."""
    from ledger.pricebook import load_books, sync_to_ledger
    from ledger.reconcile import load_line_items, sync_line_item_map

    sync_to_ledger(con, load_books(prices_dir))
    sync_line_item_map(con, load_line_items(line_items))


def _details(frame: Any, key: Callable[[dict[str, Any]], str]) -> list[str]:
    return [f"  {key(row)}: {row['detail']}" for row in frame.iter_rows(named=True) if row["detail"]]


line_items_option = click.option(
    "--line-items",
    "line_items",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Costs API line-item mapping (default: the packaged ledger/books/line_items.toml).",
)


@click.group(name="reconcile", invoke_without_command=True)
@click.option("--since", type=day_type, help="First UTC day, YYYY-MM-DD (default: the bill's first day).")
@click.option("--until", type=day_type, help="Last UTC day, inclusive (default: the bill's last day).")
@click.option("--tolerance", default="0.01", show_default=True, help="Matched within: USD per row (0.01) or 2%.")
@click.option(
    "--project",
    "default_project",
    envvar="IMAGECOST_PROJECT",
    help="OpenAI project of calls without a `project` tag (default 'default'; or $IMAGECOST_PROJECT).",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print every row as CSV instead of a table.")
@click.option("--counts", is_flag=True, help="Image and request counts (Usage API) instead of costs.")
@click.option("--all", "show_all", is_flag=True, help="Show matched rows too (the table shows problems only).")
@line_items_option
@ledger_option
@prices_dir_option
@click.pass_context
def reconcile(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    tolerance: str,
    default_project: str | None,
    as_csv: bool,
    counts: bool,
    show_all: bool,
    line_items: str | None,
    ledger: str | None,
    prices_dir: str | None,
) -> None:
    """Compare OpenAI's bill with the ledger per UTC day × project (× line item): matched within tolerance,
    spend only on the bill, spend only in the ledger, and differences with their likely cause."""
    if ctx.invoked_subcommand is not None:
        return
    import polars as pl

    from ledger.reconcile import Tolerance, reconcile_openai
    from ledger.reconcile.openai import COST_COLUMNS, IMAGE_COLUMNS, STATUSES
    from ledger.reconcile.render import table, to_csv

    tol = Tolerance.parse(tolerance)
    with open_ledger(existing_ledger(ledger)) as con:
        _sync(con, prices_dir, line_items)
        result = reconcile_openai(
            con, since=_day(since), until=_day(until), tolerance=tol, default_project=default_project
        )
    frame, columns = (result.images, IMAGE_COLUMNS) if counts else (result.costs, COST_COLUMNS)
    if as_csv:
        click.echo(to_csv(frame, columns), nl=False)
        return
    totals = result.totals()
    by_status = frame.group_by("status").len()
    counted = dict(zip(by_status["status"], by_status["len"], strict=True))
    summary = ", ".join(f"{counted[s]} {s}" for s in STATUSES if s in counted)
    shown = frame if show_all else frame.filter(pl.col("status") != "matched")
    click.echo(f"OpenAI bill vs ledger, UTC days {result.since} .. {result.until}")
    click.echo(
        f"bill ${totals['bill_usd']:,.4f}  ledger ${totals['ledger_usd']:,.4f}  "
        f"difference ${totals['diff_usd']:+,.4f}  (tolerance ${tol.usd:g} per row"
        + (f" or {tol.relative:.2%}" if tol.relative else "")
        + ")"
    )
    click.echo(f"{frame.height} {'count' if counts else 'cost'} rows: {summary or 'none'}")
    if shown.is_empty():
        return
    click.echo("")
    click.echo(table(shown, IMAGE_TABLE if counts else COST_TABLE))
    key = "source" if counts else "token_class"
    details = _details(shown, lambda r: f"{r['day']} {r['project']} {r['model']} {r[key]}")
    if details:
        click.echo("\n" + "\n".join(["why:", *details]))


@reconcile.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@ledger_option
def import_cmd(files: tuple[str, ...], ledger: str | None) -> None:
    """Import exported Costs (/v1/organization/costs) and Usage (/v1/organization/usage/images) pages.

    Each FILE holds one page, a JSON list of pages or JSON Lines. Importing a bucket again replaces it."""
    from ledger.reconcile import read_files, store_bill

    with open_ledger(ledger_path(ledger)) as con:
        for origin, rows in read_files(files):
            result = store_bill(con, rows, origin)
            click.echo(
                f"{origin}: {result.costs_rows} cost rows, {result.image_rows} image usage rows"
                f" ({result.replaced_rows} replaced)"
            )


def _admin_client(base_url: str | None) -> Any:
    key = os.environ.get(ADMIN_KEY_ENV)
    if not key:
        raise UserError(f"${ADMIN_KEY_ENV} is not set; create an admin key in the OpenAI platform settings")
    from openai import OpenAI

    return OpenAI(admin_api_key=key, base_url=base_url)


@reconcile.command(name="fetch")
@click.option("--since", type=day_type, required=True, help="First UTC day, YYYY-MM-DD.")
@click.option("--until", type=day_type, help="Last UTC day, inclusive (default: today).")
@click.option("--base-url", envvar="OPENAI_BASE_URL", help="API base URL (default: OpenAI's; or $OPENAI_BASE_URL).")
@click.option("--save", type=click.Path(dir_okay=False), help="Also write the fetched pages to this JSON file.")
@ledger_option
def fetch_cmd(
    since: datetime, until: datetime | None, base_url: str | None, save: str | None, ledger: str | None
) -> None:
    """Fetch the Costs and Usage (images) pages live with $OPENAI_ADMIN_KEY, following next_page, and import them."""
    from ledger.reconcile import fetch_pages, read_pages, store_bill

    last = _day(until) or datetime.now(UTC).date()
    if last < since.date():
        raise UserError(f"--until {last} is before --since {since.date()}")
    start = int(datetime.combine(since.date(), time(), tzinfo=UTC).timestamp())
    end = int(datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC).timestamp())
    pages = list(fetch_pages(_admin_client(base_url), start_time=start, end_time=end))
    if save:
        Path(save).write_text(json.dumps(pages, indent=1) + "\n", encoding="utf-8")
    with open_ledger(ledger_path(ledger)) as con:
        result = store_bill(con, read_pages(pages, "api"), "api")
    click.echo(
        f"fetched {len(pages)} pages: {result.costs_rows} cost rows, {result.image_rows} image usage rows"
        f" ({result.replaced_rows} replaced)"
    )


@reconcile.command(name="provider")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--provider", required=True, help="The provider's route_owner name, e.g. laozhang.ai.")
@click.option("--since", type=day_type, help="First UTC day (default: the invoice's first day).")
@click.option("--until", type=day_type, help="Last UTC day, inclusive (default: the invoice's last day).")
@click.option("--tolerance", default="0.0001", show_default=True, help="Per call, in the contract's currency, or 2%.")
@click.option("--mappings", type=click.Path(dir_okay=False), help="Extra invoice column mappings (TOML).")
@click.option("--csv", "as_csv", is_flag=True, help="Print every call / line row as CSV.")
@click.option("--days", is_flag=True, help="Per-day totals instead of per-call rows.")
@ledger_option
@prices_dir_option
def provider_cmd(
    file: str,
    provider: str,
    since: datetime | None,
    until: datetime | None,
    tolerance: str,
    mappings: str | None,
    as_csv: bool,
    days: bool,
    ledger: str | None,
    prices_dir: str | None,
) -> None:
    """Match a provider's invoice or usage export to its calls: contract cost vs invoiced, per call and per day."""
    import polars as pl

    from ledger.pricebook import load_books, sync_to_ledger
    from ledger.reconcile import Tolerance, load_mappings, read_invoice, reconcile_provider, store_invoice
    from ledger.reconcile.provider import CALL_COLUMNS, DAY_COLUMNS, PROBLEMS
    from ledger.reconcile.render import table, to_csv

    invoice = read_invoice(file, provider, load_mappings(mappings))
    books = load_books(prices_dir)
    with open_ledger(existing_ledger(ledger)) as con:
        sync_to_ledger(con, books)
        store_invoice(con, invoice)
        result = reconcile_provider(
            con, invoice, books, since=_day(since), until=_day(until), tolerance=Tolerance.parse(tolerance)
        )
    frame, columns = (result.days, DAY_COLUMNS) if days else (result.calls, CALL_COLUMNS)
    if as_csv:
        click.echo(to_csv(frame, columns), nl=False)
        return
    problems = result.problems()
    click.echo(f"{provider} invoice {file} ({len(invoice.lines)} lines) vs ledger, {result.since} .. {result.until}")
    counts = result.calls.group_by("status").len().sort("status")
    click.echo(", ".join(f"{n} {s}" for s, n in counts.iter_rows()))
    click.echo("")
    click.echo(table(result.days, DAY_COLUMNS))
    if days or problems.is_empty():
        return
    click.echo("")
    click.echo(table(problems, CALL_TABLE))
    shown = problems.filter(pl.col("status").is_in(PROBLEMS))
    click.echo("\n" + "\n".join(["why:", *_details(shown, lambda r: r["call_id"] or f"line {r['invoice_lines']}")]))
