"""``imagecost estimate``: what a request (or a JSONL plan of requests) will cost, on every route."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import click

from ledger.cli.options import ledger_option, prices_dir_option
from ledger.db import ledger_path
from ledger.errors import UserError
from ledger.estimator import Estimate, EstimateRequest, Range
from ledger.estimator import estimate as estimate_request
from ledger.estimator.calibration import Observations, observations_from_file

if TYPE_CHECKING:
    from ledger.estimator.plan import PlanResult
    from ledger.pricebook import PriceBooks

MAX_ERRORS_SHOWN = 50
_PER_REQUEST_OPTIONS = ("model", "size", "quality", "n", "partial_images", "input_images", "prompt", "prompt_chars")


def _money(value: float) -> str:
    return f"{value:,.4f}"


def _tokens(value: float) -> str:
    return f"{value:,.0f}"


Formatter = Callable[[float], str]
Row = tuple[str, Range | None, Formatter]


def _row(label: str, values: Range | None, fmt: Formatter, width: int) -> str:
    triple = () if values is None else (values.low, values.expected, values.high)
    cells = [fmt(v) for v in triple] if triple else ["unknown"] * 3
    return f"{label:<{width}}" + "".join(f"{cell:>14}" for cell in cells)


def _table(rows: list[Row]) -> list[str]:
    width = max(len(label) for label, _, _ in rows) + 2
    header = f"{'':<{width}}" + "".join(f"{h:>14}" for h in ("low", "expected", "high"))
    return [header, *(_row(label, values, fmt, width) for label, values, fmt in rows)]


def _notes(notes: list[str]) -> list[str]:
    return ["", "notes:", *(f"  - {note}" for note in notes)] if notes else []


def render_estimate(est: Estimate) -> str:
    """The human table for one estimate."""
    head = f"{est.model}  size {est.size}  quality {est.quality}  n={est.n}  partial_images={est.partial_images}"
    if est.input_images:
        head += f"  input images {', '.join(est.input_images)}"
    rows: list[Row] = [
        ("image output tokens", est.output_tokens, _tokens),
        ("image input tokens", est.tokens.get("image_input"), _tokens),
        ("text input tokens", est.tokens.get("text_input"), _tokens),
        (f"official OpenAI ({est.tier}), USD", est.official_usd, _money),
    ]
    for route in est.routes:
        label = f"{route.route_owner} [{route.contract_id}, {route.cost_basis}]"
        rows.append((f"{label}, {route.currency}", route.amount, _money))
        if route.currency != "USD":
            rows.append((f"{label}, USD", route.usd, _money))
    return "\n".join([head, f"prices as of {est.on}", "", *_table(rows), *_notes(est.notes)])


def render_plan(result: PlanResult) -> str:
    """The human table of plan totals."""
    head = (
        f"plan {result.path}: {result.requests:,} requests ({result.distinct_requests:,} distinct), "
        f"{result.images:,} images, {result.errors_total:,} lines with errors"
    )
    official_label = "official OpenAI, USD"
    if result.official_unpriced_requests:
        official_label += f" ({result.official_unpriced_requests:,} requests unpriced, not included)"
    rows: list[Row] = [
        ("image output tokens", result.tokens.get("image_output"), _tokens),
        ("image input tokens", result.tokens.get("image_input"), _tokens),
        ("text input tokens", result.tokens.get("text_input"), _tokens),
        (official_label, result.official_usd, _money),
    ]
    for route in result.routes.values():
        label = f"{route.route_owner} [{route.contract_id}, {route.cost_basis}, {route.requests:,} requests]"
        rows.append((f"{label}, {route.currency}", route.amount, _money))
        if route.currency != "USD":
            rows.append((f"{label}, USD", route.usd, _money))
    return "\n".join([head, "", *_table(rows), *_notes(result.notes)])


def _observations(ledger: str | None) -> tuple[Observations | None, str]:
    return observations_from_file(ledger_path(ledger))


def _parse_day(value: str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--on {value!r} is not a date; use YYYY-MM-DD") from None


@click.command(name="estimate")
@click.option("--model", help="Image model, e.g. gpt-image-2.")
@click.option("--size", help="WIDTHxHEIGHT or auto (default auto).")
@click.option("--quality", help="low | medium | high | auto (default auto).")
@click.option("--n", "n", type=int, help="Images per request, 1-10 (default 1).")
@click.option("--partial-images", "partial_images", type=int, help="Streamed partial images, 0-3 (default 0).")
@click.option("--input-image", "input_images", multiple=True, help="WxH of an input image (edits); repeatable.")
@click.option("--input-fidelity", type=click.Choice(["low", "high"]), help="gpt-image-1 family only.")
@click.option("--prompt", help="The prompt text (only its length is used; never stored).")
@click.option("--prompt-chars", "prompt_chars", type=int, help="The prompt's length in characters.")
@click.option("--route", default="all", show_default=True, help="Route owner to show, 'openai' or 'all'.")
@click.option("--tier", type=click.Choice(["standard", "batch"]), default="standard", show_default=True)
@click.option("--on", "on", help="Price as of this UTC day, YYYY-MM-DD (default today).")
@click.option("--plan", "plan", type=click.Path(dir_okay=False), help="JSONL file: one request's kwargs per line.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@ledger_option
@prices_dir_option
def estimate_cmd(
    model: str | None,
    size: str | None,
    quality: str | None,
    n: int | None,
    partial_images: int | None,
    input_images: tuple[str, ...],
    input_fidelity: str | None,
    prompt: str | None,
    prompt_chars: int | None,
    route: str,
    tier: str,
    on: str | None,
    plan: str | None,
    as_json: bool,
    ledger: str | None,
    prices_dir: str | None,
) -> None:
    """Estimate what an image request (or a --plan of requests) costs: tokens, official price, each contract."""
    from ledger.pricebook import load_books  # imported here: keeps `imagecost --help` fast

    day = _parse_day(on)
    books = load_books(prices_dir)
    observed, ledger_note = _observations(ledger)
    if plan is not None:
        values = (model, size, quality, n, partial_images, input_images, prompt, prompt_chars)
        given = dict(zip(_PER_REQUEST_OPTIONS, values, strict=True))
        extra = [name for name, value in given.items() if value not in (None, ())]
        if extra:
            raise UserError(f"--plan reads each request from the file; drop --{extra[0].replace('_', '-')}")
        _run_plan(plan, books, route=route, tier=tier, observed=observed, day=day, note=ledger_note, as_json=as_json)
        return
    if model is None:
        raise UserError("--model is required (or give --plan FILE.jsonl)")
    if prompt is not None and prompt_chars is not None:
        raise UserError("give --prompt or --prompt-chars, not both")
    req = EstimateRequest(
        model=model,
        size=size or "auto",
        quality=quality or "auto",
        n=1 if n is None else n,
        partial_images=0 if partial_images is None else partial_images,
        input_images=input_images,
        prompt_chars=len(prompt) if prompt is not None else prompt_chars,
        route=route,
        input_fidelity=input_fidelity,
        tier=tier,
    )
    result = estimate_request(req, books, observed=observed, on=day)
    result.notes.append(ledger_note)
    click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False) if as_json else render_estimate(result))


def _run_plan(
    plan: str,
    books: PriceBooks,
    *,
    route: str,
    tier: str,
    observed: Observations | None,
    day: date,
    note: str,
    as_json: bool,
) -> None:
    from ledger.estimator.plan import estimate_plan  # polars: imported only for plans

    result = estimate_plan(plan, books, route=route, tier=tier, observed=observed, on=day)
    result.notes.append(note)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_plan(result))
        for line, reason in result.errors[:MAX_ERRORS_SHOWN]:
            click.echo(f"line {line}: {reason}", err=True)
        if result.errors_total > MAX_ERRORS_SHOWN:
            click.echo(f"... and {result.errors_total - MAX_ERRORS_SHOWN:,} more lines with errors", err=True)
    if result.errors_total:
        sys.exit(1)


estimate = estimate_cmd  # the name ledger.cli.COMMANDS looks up
