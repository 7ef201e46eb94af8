"""Read and validate the TOML price books: the packaged ones plus a user directory.

A book file holds any of three arrays of tables: ``[[rate]]`` (official OpenAI rates),
``[[contract]]`` (provider contract terms) and ``[[fx]]`` (FX rates). The packaged books keep one
kind per file; a user's ``--prices-dir`` / ``$IMAGECOST_PRICES_DIR`` may mix them. Any problem
raises ``UserError`` with one line: ``<file>: <entry>: <problem>``.

Windows: a window without ``effective_to`` lasts until the next window for the same key starts
(that is how a price change is added: a new entry with a later ``effective_from``, e.g. in a user
file, without touching the old one). Two windows that start on the same day, or an explicit
``effective_to`` past the next start, are overlapping windows and an error: history never
changes silently.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ledger.errors import UserError
from ledger.pricebook.books import PriceBooks
from ledger.pricebook.models import ContractEntry, FxEntry, FxRate, OfficialRate, ProviderContract, RateEntry

PRICES_DIR_ENV = "IMAGECOST_PRICES_DIR"
BOOKS_DIR = Path(__file__).resolve().parent.parent / "books"
PACKAGED_FILES = ("official_rates.toml", "provider_contracts.toml", "fx_rates.toml")
SECTIONS = ("rate", "contract", "fx")

Row = TypeVar("Row", OfficialRate, ProviderContract)
Entry = TypeVar("Entry", bound=BaseModel)


@dataclass(frozen=True)
class _Origin:
    file: str
    entry: str

    def __str__(self) -> str:
        return f"{self.file} {self.entry}"


_FileRows = tuple[
    list[tuple[OfficialRate, _Origin]], list[tuple[ProviderContract, _Origin]], list[tuple[FxRate, _Origin]]
]


def book_files(prices_dir: str | os.PathLike[str] | None = None) -> list[tuple[Path, str]]:
    """(path, display name) of every book file: the packaged three, then ``prices_dir/*.toml`` sorted."""
    files = [(BOOKS_DIR / name, f"ledger/books/{name}") for name in PACKAGED_FILES]
    if prices_dir is not None:
        folder = Path(prices_dir)
        if not folder.is_dir():
            raise UserError(f"prices dir {folder} does not exist; create it or fix --prices-dir / ${PRICES_DIR_ENV}")
        # budgets.toml may live beside the price books (ledger.budgets reads it); it is not a price book
        files += [(path, str(path)) for path in sorted(folder.glob("*.toml")) if path.name != "budgets.toml"]
    return files


def load_books(prices_dir: str | os.PathLike[str] | None = None) -> PriceBooks:
    """Packaged books plus the user's directory (default ``$IMAGECOST_PRICES_DIR``), validated.

    Parsed books are cached by the files' paths, sizes and modification times, so repeated calls
    (estimator, ingest) cost a few ``stat`` calls.
    """
    if prices_dir is None:
        prices_dir = os.environ.get(PRICES_DIR_ENV) or None
    key = []
    for path, display in book_files(prices_dir):
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise UserError(f"{display}: price book file is missing; reinstall imagecost") from None
        key.append((str(path), display, stat.st_mtime_ns, stat.st_size))
    return _load(tuple(key))


@lru_cache(maxsize=16)
def _load(files: tuple[tuple[str, str, int, int], ...]) -> PriceBooks:
    digest = hashlib.sha256()
    rates: list[tuple[OfficialRate, _Origin]] = []
    contracts: list[tuple[ProviderContract, _Origin]] = []
    fx: list[tuple[FxRate, _Origin]] = []
    for path, display, _mtime, _size in files:
        content = Path(path).read_bytes()
        digest.update(display.encode() + b"\0" + content + b"\0")
        file_rates, file_contracts, file_fx = _parse_file(display, content)
        rates += file_rates
        contracts += file_contracts
        fx += file_fx
    contracts = _resolve_windows(contracts, lambda c: (c.provider, c.model_pattern, c.unit, c.token_class))
    _check_one_contract_per_pattern(contracts)
    _check_fx_days(fx)
    return PriceBooks(
        official_rates=[row for row, _origin in _resolve_windows(rates, lambda r: (r.model, r.token_class, r.tier))],
        contracts=[row for row, _origin in contracts],
        fx_rates=[row for row, _origin in fx],
        version=digest.hexdigest(),
        files=[display for _path, display, _mtime, _size in files],
    )


def _parse_file(display: str, content: bytes) -> _FileRows:
    try:
        doc = tomllib.loads(content.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{display}: not valid TOML: {exc}") from None
    for name, value in doc.items():
        if name not in SECTIONS:
            raise UserError(f"{display}: unknown section {name!r} (expected [[rate]], [[contract]] or [[fx]])")
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise UserError(f"{display}: {name!r} must be an array of tables: write [[{name}]] above each entry")
    rates = [
        (row, origin) for entry, origin in _entries(display, doc, "rate", RateEntry) for row in entry.rows(display)
    ]
    contracts = [(entry.row(display), origin) for entry, origin in _entries(display, doc, "contract", ContractEntry)]
    fx = [(entry.row(display), origin) for entry, origin in _entries(display, doc, "fx", FxEntry)]
    return rates, contracts, fx


def _rate_label(raw: dict[str, Any]) -> str:
    models = raw.get("models") or []
    names = ", ".join(map(str, models)) if isinstance(models, list) else str(models)  # validated just after
    return " ".join(str(part) for part in (names, raw.get("tier")) if part)


def _contract_label(raw: dict[str, Any]) -> str:
    return " ".join(str(raw[k]) for k in ("provider", "model_pattern") if raw.get(k))


def _fx_label(raw: dict[str, Any]) -> str:
    return " ".join(str(raw[k]) for k in ("currency", "day") if raw.get(k))


_LABELS = {"rate": _rate_label, "contract": _contract_label, "fx": _fx_label}


def _entries(display: str, doc: dict[str, Any], section: str, model: type[Entry]) -> list[tuple[Entry, _Origin]]:
    out: list[tuple[Entry, _Origin]] = []
    for i, raw in enumerate(doc.get(section, []), start=1):
        detail = " ".join(_LABELS[section](raw).split())  # a value with a newline must not break the one line
        origin = _Origin(display, f"{section} #{i}" + (f" ({detail})" if detail else ""))
        try:
            out.append((model.model_validate(raw), origin))
        except ValidationError as exc:
            raise UserError(f"{display}: {origin.entry}: {_problem(exc)}") from None
    return out


def _problem(exc: ValidationError) -> str:
    """The first validation error as a short phrase."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"missing {where}"
    if error["type"] == "extra_forbidden":
        return f"unknown field {where!r}"
    if error["type"] == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _window(row: OfficialRate | ProviderContract) -> str:
    return f"{row.effective_from}..{row.effective_to or 'open'}"


def _resolve_windows(
    items: list[tuple[Row, _Origin]], key: Callable[[Row], tuple[str | None, ...]]
) -> list[tuple[Row, _Origin]]:
    """Close open windows at the next start for the same key; reject overlapping windows."""
    groups: dict[tuple[str | None, ...], list[tuple[Row, _Origin]]] = defaultdict(list)
    for item in items:
        groups[key(item[0])].append(item)
    out: list[tuple[Row, _Origin]] = []
    for group_key, group in groups.items():
        group.sort(key=lambda item: item[0].effective_from)  # stable: packaged books before user files
        for i in range(len(group) - 1):
            (prev, prev_origin), (cur, cur_origin) = group[i], group[i + 1]
            if prev.effective_to is None and prev.effective_from < cur.effective_from:
                group[i] = (prev.model_copy(update={"effective_to": cur.effective_from}), prev_origin)
            elif prev.effective_to is None or prev.effective_to > cur.effective_from:
                what = " ".join(part for part in group_key if part is not None)
                raise UserError(
                    f"{cur_origin.file}: {cur_origin.entry}: overlapping windows for {what}: "
                    f"{_window(cur)} overlaps {_window(prev)} from {prev_origin}"
                )
        out += group
    return out


def _check_one_contract_per_pattern(contracts: list[tuple[ProviderContract, _Origin]]) -> None:
    """At any day a (provider, model pattern) has one contract in one currency (the SQL relies on it)."""
    by_pattern: dict[tuple[str, str], list[tuple[ProviderContract, _Origin]]] = defaultdict(list)
    for item in contracts:
        by_pattern[(item[0].provider, item[0].model_pattern)].append(item)
    for (provider, pattern), group in by_pattern.items():
        for i, (a, a_origin) in enumerate(group):
            for b, b_origin in group[i + 1 :]:
                if (a.contract_id, a.currency) != (b.contract_id, b.currency) and _overlap(a, b):
                    raise UserError(
                        f"{b_origin.file}: {b_origin.entry}: overlapping windows for {provider} {pattern}: "
                        f"{b.contract_id} {b.currency} {_window(b)} overlaps {a.contract_id} {a.currency} "
                        f"{_window(a)} from {a_origin} (one contract and currency per provider and pattern at a time)"
                    )


def _overlap(a: ProviderContract, b: ProviderContract) -> bool:
    return (b.effective_to is None or a.effective_from < b.effective_to) and (
        a.effective_to is None or b.effective_from < a.effective_to
    )


def _check_fx_days(items: list[tuple[FxRate, _Origin]]) -> None:
    seen: dict[tuple[str, object], _Origin] = {}
    for fx, origin in items:
        first = seen.setdefault((fx.currency, fx.day), origin)
        if first is not origin:
            raise UserError(
                f"{origin.file}: {origin.entry}: overlapping windows: a second {fx.currency} rate for {fx.day} "
                f"(first in {first})"
            )
