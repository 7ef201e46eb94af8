"""Price books: official OpenAI rates, provider contracts and FX rates, from sourced, dated TOML.

    from ledger.pricebook import load_books, sync_to_ledger
    books = load_books(prices_dir)          # packaged books + the user's directory, validated
    books.rate("gpt-image-2", "image_output", on=date(2026, 11, 3))   # OfficialRate | None
    sync_to_ledger(con, books)              # copy into the ledger tables when the content changed

Packaged books live in ``ledger/books/`` (official_rates.toml, provider_contracts.toml,
fx_rates.toml); users add their own files to ``--prices-dir`` / ``$IMAGECOST_PRICES_DIR``.
"""

from __future__ import annotations

from ledger.pricebook.books import PriceBooks
from ledger.pricebook.load import PRICES_DIR_ENV, book_files, load_books
from ledger.pricebook.models import TOKEN_CLASSES, FxRate, OfficialRate, ProviderContract
from ledger.pricebook.sync import loaded_version, sync_to_ledger

__all__ = [
    "PRICES_DIR_ENV",
    "TOKEN_CLASSES",
    "FxRate",
    "OfficialRate",
    "PriceBooks",
    "ProviderContract",
    "book_files",
    "load_books",
    "loaded_version",
    "sync_to_ledger",
]
