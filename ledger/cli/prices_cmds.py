"""``imagecost prices``: the official rates and the provider contracts side by side; ``prices check``."""

from __future__ import annotations

from collections import defaultdict

import click

from ledger.cli.options import prices_dir_option
from ledger.cli.tables import EMPTY, format_table
from ledger.pricebook import TOKEN_CLASSES, OfficialRate, PriceBooks, load_books

CLASS_HEADERS = {
    "text_input": "text in",
    "cached_text_input": "cached text in",
    "image_input": "image in",
    "cached_image_input": "cached image in",
    "image_output": "image out",
    "text_output": "text out",
}


def _window(effective_from: object, effective_to: object) -> str:
    return f"{effective_from} → {effective_to or 'open'}"


def _footnote(texts: dict[str, int], text: str, prefix: str = "") -> str:
    """``[1]``-style marker for ``text``, numbering texts in order of first use."""
    return f"[{prefix}{texts.setdefault(text, len(texts) + 1)}]"


def _footnotes(title: str, texts: dict[str, int], prefix: str = "") -> list[str]:
    return [f"{title}:", *(f"  [{prefix}{n}] {text}" for text, n in texts.items())] if texts else []


def official_lines(books: PriceBooks) -> list[str]:
    """One row per model × tier × window, one column per token class (– = no published rate)."""
    grouped: dict[tuple[object, ...], dict[str, float]] = defaultdict(dict)
    first: dict[tuple[object, ...], OfficialRate] = {}
    for rate in books.official_rates:
        key = (rate.model, rate.tier, rate.effective_from, rate.effective_to, rate.source_url, rate.checked_on)
        grouped[key][rate.token_class] = rate.usd_per_1m
        first.setdefault(key, rate)
    sources: dict[str, int] = {}
    notes: dict[str, int] = {}
    rows = []
    for key, prices in grouped.items():
        rate = first[key]
        rows.append(
            [
                rate.model,
                rate.tier,
                *(f"{prices[c]:g}" if c in prices else EMPTY for c in TOKEN_CLASSES),
                _window(rate.effective_from, rate.effective_to),
                str(rate.checked_on),
                _footnote(sources, rate.source_url),
                _footnote(notes, rate.notes, "n") if rate.notes else "",
            ]
        )
    headers = ["model", "tier", *(CLASS_HEADERS[c] for c in TOKEN_CLASSES), "window", "checked", "source", "notes"]
    return [
        "Official OpenAI rates (USD per 1M tokens; – = no published rate: such tokens stay unpriced, never $0)",
        *format_table(headers, rows),
        *_footnotes("sources", sources),
        *_footnotes("notes", notes, "n"),
    ]


def contract_lines(books: PriceBooks) -> list[str]:
    """One row per contract term, in the contract's own currency."""
    if not books.contracts:
        return ["Provider contracts", "  (none; add [[contract]] entries in a file of your --prices-dir)"]
    sources: dict[str, int] = {}
    rows = [
        [
            c.provider,
            c.contract_id,
            c.model_pattern,
            c.unit,
            c.token_class or EMPTY,
            f"{c.price:g}",
            c.currency,
            "yes" if c.charge_failed_calls else "no",
            _window(c.effective_from, c.effective_to),
            _footnote(sources, c.source),
        ]
        for c in books.contracts
    ]
    headers = ["provider", "contract", "model pattern", "unit", "token class", "price", "currency", "failed charged"]
    notes = [f"  {c.contract_id}: {c.notes}" for c in books.contracts if c.notes]
    return [
        "Provider contracts (vendor terms, in the vendor's currency; not OpenAI prices)",
        *format_table([*headers, "window", "source"], rows),
        *_footnotes("sources", sources),
        *(["notes:", *notes] if notes else []),
    ]


def fx_lines(books: PriceBooks) -> list[str]:
    if not books.fx_rates:
        return ["FX rates", "  (none; add [[fx]] entries in a file of your --prices-dir; USD needs none)"]
    rows = [[f.currency, str(f.day), f"{f.usd_per_unit:g}", f.source] for f in books.fx_rates]
    return [
        "FX rates (USD per unit, from that day until the next rate)",
        *format_table(["currency", "from day", "USD per unit", "source"], rows),
    ]


def summary(books: PriceBooks) -> str:
    return (
        f"{len(books.official_rates)} rates, {len(books.contracts)} contracts, {len(books.fx_rates)} fx rates, "
        f"version {books.version[:12]}"
    )


@click.group(invoke_without_command=True)
@prices_dir_option
@click.pass_context
def prices(ctx: click.Context, prices_dir: str | None) -> None:
    """Show the official OpenAI rates, the provider contracts and the FX rates, with sources and windows."""
    if ctx.invoked_subcommand is not None:
        return
    books = load_books(prices_dir)
    for block in (official_lines(books), contract_lines(books), fx_lines(books)):
        click.echo("\n".join(block) + "\n")
    click.echo(f"{summary(books)}; files: {', '.join(books.files)}")


@prices.command()
@prices_dir_option
@click.pass_context
def check(ctx: click.Context, prices_dir: str | None) -> None:
    """Validate the price books; exit 1 with a one-line error naming the file, entry and problem."""
    if prices_dir is None and ctx.parent is not None:  # `imagecost prices --prices-dir DIR check`
        prices_dir = ctx.parent.params.get("prices_dir")
    books = load_books(prices_dir)
    click.echo(f"ok: {summary(books)}")
