"""Price-book records: the rows the ledger stores, and the TOML entries they are read from.

Windows are UTC days, ``effective_from`` inclusive and ``effective_to`` exclusive; ``None`` means
"until the next window for the same key starts" (the loader fills that in), else open-ended.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ledger.pricebook.currencies import ISO_4217

# Token classes a rate or a per-token contract may price (calls' token columns, reference §2).
TOKEN_CLASSES = ("text_input", "cached_text_input", "image_input", "cached_image_input", "image_output", "text_output")
TIERS = ("standard", "batch")
UNITS = ("per_call", "per_image", "per_1m_tokens")


def _one_of(kind: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r} (expected one of {', '.join(allowed)})")
    return value


def _not_negative(value: float, token_class: str | None = None) -> float:
    if not math.isfinite(value):  # TOML has nan and inf; either would poison every sum it enters
        what = f"price {token_class} = {value}" if token_class else f"price {value}"
        raise ValueError(f"{what} is not a finite number")
    if value < 0:
        raise ValueError(f"negative price {token_class} = {value}" if token_class else f"negative price {value}")
    return value


def _currency(value: str) -> str:
    if value not in ISO_4217:
        raise ValueError(f"unknown currency {value!r} (expected an ISO 4217 code such as USD, EUR, CNY)")
    return value


def _required_text(what: str, value: str) -> str:
    if not value.strip():
        raise ValueError(f"missing {what}")
    return value


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OfficialRate(_Row):
    """One OpenAI list price: USD per 1M tokens of one token class, for a model and tier, in a window."""

    model: str
    token_class: str
    tier: Literal["standard", "batch"]
    usd_per_1m: float
    effective_from: date
    effective_to: date | None
    source_url: str
    checked_on: date
    notes: str | None
    book_file: str


class ProviderContract(_Row):
    """One term of a gateway's contract: a price per call, per image or per 1M tokens of a class."""

    provider: str
    contract_id: str
    model_pattern: str  # glob over the requested model (fnmatch / DuckDB `glob` syntax)
    unit: Literal["per_call", "per_image", "per_1m_tokens"]
    token_class: str | None
    price: float
    currency: str
    charge_failed_calls: bool
    effective_from: date
    effective_to: date | None
    source: str
    notes: str | None
    book_file: str


class FxRate(_Row):
    """USD value of one unit of ``currency`` on ``day`` (used from that day until the next rate)."""

    currency: str
    day: date
    usd_per_unit: float
    source: str
    book_file: str


# --- TOML entries ([[rate]], [[contract]], [[fx]]) -------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Windowed(_Entry):
    effective_from: date
    effective_to: date | None = None

    @model_validator(mode="after")
    def _window_not_empty(self) -> _Windowed:
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError(f"empty window: effective_to {self.effective_to} is not after {self.effective_from}")
        return self


class RateEntry(_Windowed):
    """``[[rate]]``: the rates of one or more model names (aliases, snapshots) for one tier."""

    models: list[str]
    tier: str
    usd_per_1m: dict[str, float]
    source_url: str
    checked_on: date
    notes: str | None = None

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        if not value or not all(m.strip() for m in value):
            raise ValueError("models must list at least one non-empty model name")
        return value

    @field_validator("tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        return _one_of("tier", value, TIERS)

    @field_validator("usd_per_1m")
    @classmethod
    def _prices(cls, value: dict[str, float]) -> dict[str, float]:
        for token_class, price in value.items():
            _one_of("token class", token_class, TOKEN_CLASSES)
            _not_negative(price, token_class)
        return value

    @field_validator("source_url")
    @classmethod
    def _source(cls, value: str) -> str:
        return _required_text("source_url", value)

    def rows(self, book_file: str) -> list[OfficialRate]:
        return [
            OfficialRate(
                model=model,
                token_class=token_class,
                tier=self.tier,  # type: ignore[arg-type]  # checked by _tier
                usd_per_1m=price,
                effective_from=self.effective_from,
                effective_to=self.effective_to,
                source_url=self.source_url,
                checked_on=self.checked_on,
                notes=self.notes,
                book_file=book_file,
            )
            for model in self.models
            for token_class, price in self.usd_per_1m.items()
        ]


class ContractEntry(_Windowed):
    """``[[contract]]``: one priced term of a provider contract."""

    provider: str
    contract_id: str
    model_pattern: str
    unit: str
    token_class: str | None = None
    price: float
    currency: str
    charge_failed_calls: bool
    source: str
    notes: str | None = None

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        return _one_of("unit", value, UNITS)

    @field_validator("token_class")
    @classmethod
    def _token_class(cls, value: str | None) -> str | None:
        return None if value is None else _one_of("token class", value, TOKEN_CLASSES)

    @field_validator("price")
    @classmethod
    def _price(cls, value: float) -> float:
        return _not_negative(value)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return _currency(value)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _required_text("source", value)

    @model_validator(mode="after")
    def _token_class_iff_per_token(self) -> ContractEntry:
        if (self.unit == "per_1m_tokens") != (self.token_class is not None):
            raise ValueError("token_class is required for unit per_1m_tokens and not allowed for other units")
        return self

    def row(self, book_file: str) -> ProviderContract:
        return ProviderContract(**self.model_dump(), book_file=book_file)


class FxEntry(_Entry):
    """``[[fx]]``: what one unit of a currency was worth in USD from ``day`` on."""

    currency: str
    day: date
    usd_per_unit: float
    source: str

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value == "USD":
            raise ValueError("USD needs no fx rate (it is always 1)")
        return _currency(value)

    @field_validator("usd_per_unit")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"usd_per_unit must be positive, got {value}")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        return _required_text("source", value)

    def row(self, book_file: str) -> FxRate:
        return FxRate(**self.model_dump(), book_file=book_file)
