"""``PriceBooks``: the loaded, validated books and the lookups the estimator and reports use."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatchcase
from functools import cached_property

from ledger.pricebook.models import FxRate, OfficialRate, ProviderContract

USD = "USD"


def in_window(on: date, effective_from: date, effective_to: date | None) -> bool:
    """``effective_from`` inclusive, ``effective_to`` exclusive (None = open)."""
    return effective_from <= on and (effective_to is None or on < effective_to)


@dataclass(frozen=True)
class PriceBooks:
    """Official rates, provider contracts and FX rates. Shared and cached: treat as read-only."""

    official_rates: list[OfficialRate]
    contracts: list[ProviderContract]
    fx_rates: list[FxRate]
    version: str  # sha256 over the files' names and contents
    files: list[str] = field(default_factory=list)  # display names, packaged books first

    @cached_property
    def _rates_by_key(self) -> dict[tuple[str, str, str], list[OfficialRate]]:
        index: dict[tuple[str, str, str], list[OfficialRate]] = defaultdict(list)
        for rate in self.official_rates:
            index[(rate.model, rate.token_class, rate.tier)].append(rate)
        return dict(index)

    @cached_property
    def _fx_by_currency(self) -> dict[str, tuple[list[date], list[FxRate]]]:
        grouped: dict[str, list[FxRate]] = defaultdict(list)
        for fx in self.fx_rates:
            grouped[fx.currency].append(fx)
        out: dict[str, tuple[list[date], list[FxRate]]] = {}
        for currency, rates in grouped.items():
            rates.sort(key=lambda r: r.day)
            out[currency] = ([r.day for r in rates], rates)
        return out

    def rate(self, model: str, token_class: str, *, tier: str = "standard", on: date) -> OfficialRate | None:
        """The official rate in force on ``on`` (UTC day), or None when OpenAI publishes none we know of."""
        for rate in self._rates_by_key.get((model, token_class, tier), ()):
            if in_window(on, rate.effective_from, rate.effective_to):
                return rate
        return None

    def contracts_for(self, provider: str | None, model: str, *, on: date) -> list[ProviderContract]:
        """Contract terms matching ``model`` on ``on``; most specific (longest) pattern first.

        Pricing uses only the terms of the first pattern (see sql/views/stg_contract_card.sql);
        the rest are returned so callers can show what else matched.
        """
        found = [
            c
            for c in self.contracts
            if (provider is None or c.provider == provider)
            and fnmatchcase(model, c.model_pattern)
            and in_window(on, c.effective_from, c.effective_to)
        ]
        found.sort(key=lambda c: (c.provider, -len(c.model_pattern), c.model_pattern, c.unit, c.token_class or ""))
        return found

    def fx(self, currency: str, *, on: date) -> FxRate | None:
        """The latest rate on or before ``on``; USD is always 1.0."""
        if currency == USD:
            return FxRate(currency=USD, day=on, usd_per_unit=1.0, source="identity", book_file="")
        days, rates = self._fx_by_currency.get(currency, ([], []))
        i = bisect_right(days, on)
        return rates[i - 1] if i else None
