"""Costs API ``line_item`` strings -> (model, token class, tier), from ``ledger/books/line_items.toml``.

The strings are not documented (reference §10.2), so the mapping is data: a pattern with a ``{model}``
placeholder per string shape. A new shape is one ``[[line_item]]`` in the file; nothing here changes.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from ledger.errors import UserError
from ledger.pricebook import TOKEN_CLASSES

LINE_ITEMS_FILE = Path(__file__).resolve().parent.parent / "books" / "line_items.toml"
MODEL_PLACEHOLDER = "{model}"
# One model name: no spaces, no commas ("gpt-image-2", "gpt-image-2-2026-04-21", "gpt-5.5").
_MODEL_GROUP = r"([^\s,]+)"
# A dated snapshot suffix; bill and ledger are matched on the model without it (reference §1).
SNAPSHOT_SUFFIX = r"-\d{4}-\d{2}-\d{2}$"


class LineItemRule(BaseModel):
    """One ``[[line_item]]``: a pattern over the whole string and what it bills."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str
    token_class: str
    tier: str = "standard"
    model: str | None = None

    @field_validator("token_class")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in TOKEN_CLASSES:
            raise ValueError(f"unknown token_class {value!r} (expected one of {', '.join(TOKEN_CLASSES)})")
        return value

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str) -> str:
        if value not in ("standard", "batch"):
            raise ValueError(f"unknown tier {value!r} (expected standard or batch)")
        return value

    @model_validator(mode="after")
    def _model_source(self) -> LineItemRule:
        placeholders = self.pattern.count(MODEL_PLACEHOLDER)
        if placeholders > 1:
            raise ValueError(f"pattern {self.pattern!r} has {placeholders} {MODEL_PLACEHOLDER} placeholders; use one")
        if placeholders == 0 and not self.model:
            raise ValueError(f'pattern {self.pattern!r} has no {MODEL_PLACEHOLDER}: set model = "..." as well')
        return self

    @property
    def regex(self) -> str:
        """Anchored, case-insensitive regex; group 1 is the model when the pattern has ``{model}``."""
        head, _, tail = self.pattern.partition(MODEL_PLACEHOLDER)
        body = re.escape(head) + (_MODEL_GROUP + re.escape(tail) if MODEL_PLACEHOLDER in self.pattern else "")
        return f"(?i)^{body}$"


@dataclass(frozen=True)
class LineItem:
    """What a line item bills."""

    model: str
    token_class: str
    tier: str


@dataclass(frozen=True)
class LineItemMap:
    rules: tuple[LineItemRule, ...]
    source_file: str

    def match(self, line_item: str) -> LineItem | None:
        """The first rule matching the whole string, or None (an unmapped line item)."""
        for rule in self.rules:
            found = re.match(rule.regex, line_item.strip())
            if found:
                model = rule.model or found.group(1)
                return LineItem(model=model, token_class=rule.token_class, tier=rule.tier)
        return None

    def frame(self) -> pl.DataFrame:
        """The rules as rows of the ``recon_line_item_map`` table."""
        return pl.DataFrame(
            {
                "position": list(range(1, len(self.rules) + 1)),
                "pattern": [r.pattern for r in self.rules],
                "regex": [r.regex for r in self.rules],
                "model": [r.model for r in self.rules],
                "token_class": [r.token_class for r in self.rules],
                "tier": [r.tier for r in self.rules],
                "source_file": [self.source_file] * len(self.rules),
            },
            schema={
                "position": pl.Int32,
                "pattern": pl.String,
                "regex": pl.String,
                "model": pl.String,
                "token_class": pl.String,
                "tier": pl.String,
                "source_file": pl.String,
            },
        )


def load_line_items(path: str | os.PathLike[str] | None = None) -> LineItemMap:
    """Read a line-item file (default: the packaged one). UserError names the file and the entry."""
    file = Path(path) if path is not None else LINE_ITEMS_FILE
    try:
        doc = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"line-item file {file} does not exist; fix --line-items") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{file}: not valid TOML: {exc}") from None
    entries = doc.get("line_item")
    if set(doc) - {"line_item"} or not isinstance(entries, list) or not entries:
        raise UserError(f"{file}: expected one or more [[line_item]] tables and nothing else")
    rules = []
    for i, entry in enumerate(entries, start=1):
        try:
            rules.append(LineItemRule.model_validate(entry))
        except ValidationError as exc:
            problem = "; ".join(err["msg"].removeprefix("Value error, ") for err in exc.errors())
            raise UserError(f"{file}: [[line_item]] #{i}: {problem}") from None
    return LineItemMap(rules=tuple(rules), source_file=str(file))


def sync_line_item_map(con: duckdb.DuckDBPyConnection, mapping: LineItemMap) -> None:
    """Replace ``recon_line_item_map`` with ``mapping`` (one transaction; the views read this table)."""
    con.register("_recon_line_item_map", mapping.frame().to_arrow())
    con.execute("begin")
    try:
        con.execute("delete from recon_line_item_map")
        con.execute("insert into recon_line_item_map by name select * from _recon_line_item_map")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_recon_line_item_map")
