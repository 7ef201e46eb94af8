"""Budgets as data: the TOML file, its validation, where it is found, and the UTC periods budgets run over.

A budgets file holds ``[[budget]]`` tables (example: ``ledger/books/budgets.example.toml``)::

    [[budget]]
    name = "hero-daily"          # unique; named in messages, spans and the CLI
    period = "day"               # day | month (UTC calendar day / month)
    limit_usd = 25.0
    mode = "hard"                # hard: block requests that would overrun it; warn: log once, let them through
    tags = { feature = "hero" }  # scope, all optional (none = every call): tags, route_owner, model (a glob)

Problems raise ``UserError`` with one line: ``<file>: budget #<n> (<name>): <problem>``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ledger.errors import UserError
from ledger.pricebook import PRICES_DIR_ENV

BUDGETS_ENV = "IMAGECOST_BUDGETS"
DEFAULT_NAME = "budgets.toml"  # looked for in the prices dir when no file is named


class Budget(BaseModel):
    """One spending limit over a UTC day or month, for the calls its scope matches."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    period: Literal["day", "month"]
    limit_usd: float
    mode: Literal["hard", "warn"]
    route_owner: str | None = None  # openai or a gateway's name
    model: str | None = None  # glob over the model the app requested, e.g. "gpt-image-2*"
    tags: dict[str, str] = {}  # every tag given must be on the call (collector.tags / IMAGECOST_TAGS)
    notes: str | None = None

    @field_validator("name", "route_owner", "model")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("limit_usd")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"must be a positive number of US dollars (got {value})")
        return value

    def matches(self, route_owner: str | None, model: str | None, tags: Mapping[str, str]) -> bool:
        """Whether a call (route owner, requested model, tags) counts against this budget."""
        if self.route_owner is not None and route_owner != self.route_owner:
            return False
        if self.model is not None and (model is None or not fnmatchcase(model, self.model)):
            return False
        return all(tags.get(key) == value for key, value in self.tags.items()) if self.tags else True

    def scope(self) -> str:
        """The scope in words: ``route_owner=openai model=gpt-image-2* feature=hero`` or ``all calls``."""
        parts = [f"{k}={v}" for k, v in (("route_owner", self.route_owner), ("model", self.model)) if v is not None]
        parts += [f"{k}={v}" for k, v in sorted(self.tags.items())]
        return " ".join(parts) or "all calls"


@dataclass(frozen=True)
class Budgets:
    """The budgets of one file, in file order."""

    file: Path
    budgets: tuple[Budget, ...]


def budgets_path(
    budgets: str | os.PathLike[str] | None = None, prices_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The budgets file: ``budgets``, else ``$IMAGECOST_BUDGETS``, else ``budgets.toml`` in the prices dir."""
    named = budgets or os.environ.get(BUDGETS_ENV) or None
    if named is not None:
        return Path(named)
    folder = prices_dir or os.environ.get(PRICES_DIR_ENV) or None
    if folder is not None and (candidate := Path(folder) / DEFAULT_NAME).is_file():
        return candidate
    where = f"{Path(folder) / DEFAULT_NAME} does not exist" if folder else f"no prices dir (${PRICES_DIR_ENV})"
    raise UserError(f"no budgets file: pass --budgets FILE or set ${BUDGETS_ENV} ({where})")


def load_budgets(path: str | os.PathLike[str]) -> Budgets:
    """Read and validate a budgets file."""
    file = Path(path)
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"budgets file {file} does not exist; fix --budgets / ${BUDGETS_ENV}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{file}: not valid TOML: {exc}") from None
    entries = doc.get("budget", [])
    if set(doc) - {"budget"} or not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"{file}: expected only [[budget]] tables (see ledger/books/budgets.example.toml)")
    budgets: list[Budget] = []
    for i, raw in enumerate(entries, start=1):
        label = f"budget #{i}" + (f" ({raw['name']})" if isinstance(raw.get("name"), str) else "")
        try:
            budget = Budget.model_validate(raw)
        except ValidationError as exc:
            raise UserError(f"{file}: {label}: {_problem(exc)}") from None
        if any(b.name == budget.name for b in budgets):
            raise UserError(f"{file}: {label}: another budget is already named {budget.name!r}; names must be unique")
        budgets.append(budget)
    return Budgets(file, tuple(budgets))


def _problem(exc: ValidationError) -> str:
    """The first validation error as a short phrase naming the field (an unknown field first: often a typo)."""
    error = min(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"missing {where}"
    if error["type"] == "extra_forbidden":
        return f"unknown field {where!r} (fields: {', '.join(Budget.model_fields)})"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


# --- periods ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """One UTC day or calendar month: ``start`` inclusive, ``end`` exclusive; ``label`` 2026-11-24 or 2026-11."""

    kind: Literal["day", "month"]
    start: datetime
    end: datetime
    label: str

    def elapsed(self, now: datetime) -> float:
        """The fraction of the period gone by at ``now`` (0..1)."""
        return min(1.0, max(0.0, (now - self.start) / (self.end - self.start)))


def period_at(kind: Literal["day", "month"], now: datetime) -> Period:
    """The UTC day or month containing ``now`` (an aware datetime)."""
    return _period(kind, now.astimezone(UTC).date())


@lru_cache(maxsize=64)  # the guard asks for every budget on every check
def _period(kind: Literal["day", "month"], day: date) -> Period:
    if kind == "day":
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return Period(kind, start, start + timedelta(days=1), f"{day:%Y-%m-%d}")
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    end = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return Period(kind, start, end, f"{day:%Y-%m}")
