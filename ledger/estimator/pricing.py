"""Money for an estimate: official OpenAI rates and provider contracts, kept apart (never mixed).

Token counts come in as ``Range`` per token class; a missing rate gives ``None`` and a note, never $0.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING

from ledger.errors import UserError
from ledger.estimator.records import Range, RouteEstimate

if TYPE_CHECKING:
    from ledger.pricebook import PriceBooks, ProviderContract

PER_MILLION = 1_000_000
OFFICIAL_ROUTE = "openai"
ALL_ROUTES = "all"


def official_cost(
    books: PriceBooks,
    model: str,
    tokens: dict[str, Range],
    *,
    tier: str,
    on: date,
    alias: str | None,
    notes: list[str],
) -> Range | None:
    """Sum of tokens x the official rate per class; None (with a note) when a needed rate is missing.

    ``alias``: a snapshot's main model name, tried when the snapshot itself has no rate.
    """
    total = Range(0.0, 0.0, 0.0)
    for token_class, count in tokens.items():
        if count.high == 0:
            continue  # no tokens of this class: its rate is not needed
        rate = books.rate(model, token_class, tier=tier, on=on)
        if rate is None and alias is not None:
            rate = books.rate(alias, token_class, tier=tier, on=on)
            if rate is not None:
                notes.append(f"official {token_class} rate: {model} has no row of its own; priced as {alias}")
        if rate is None:
            notes.append(
                f"official cost unknown: the price books have no {tier} {token_class} rate for {model} on {on} "
                f"(add one to an official rates TOML file)"
            )
            return None
        total = total + count.times(rate.usd_per_1m / PER_MILLION)
    return total


def _contract_amount(contract: ProviderContract, n: int, tokens: dict[str, Range], notes: list[str]) -> Range:
    if contract.unit == "per_call":  # per request, whatever n is
        return Range(contract.price, contract.price, contract.price)
    if contract.unit == "per_image":
        return Range(1.0, 1.0, 1.0).times(contract.price * n)
    token_class = contract.token_class or ""
    if token_class not in tokens:
        notes.append(
            f"contract {contract.contract_id}: token class {token_class!r} is not one this request produces; "
            f"counted as 0"
        )
        return Range(0.0, 0.0, 0.0)
    return tokens[token_class].times(contract.price / PER_MILLION)


def _most_specific(contracts: list[ProviderContract], notes: list[str]) -> list[ProviderContract]:
    """Per provider, only the terms of its most specific matching pattern apply (as in the ledger's SQL).

    ``contracts_for`` returns the longest pattern first for each provider.
    """
    winner: dict[str, str] = {}
    for contract in contracts:
        winner.setdefault(contract.provider, contract.model_pattern)
    skipped = sorted({(c.provider, c.model_pattern) for c in contracts if c.model_pattern != winner[c.provider]})
    for provider, pattern in skipped:
        notes.append(f"{provider}: pattern {pattern!r} also matches; the more specific {winner[provider]!r} applies")
    return [c for c in contracts if c.model_pattern == winner[c.provider]]


def select_contracts(books: PriceBooks, model: str, route: str, on: date, notes: list[str]) -> list[ProviderContract]:
    """The contract terms that apply to ``model`` on ``on`` for ``route`` (all / openai / one route owner)."""
    if route == OFFICIAL_ROUTE:
        return []
    contracts = books.contracts_for(None, model, on=on)
    if route != ALL_ROUTES:
        chosen = [c for c in contracts if c.provider == route]
        if not chosen:
            owners = sorted({c.provider for c in contracts})
            known = ", ".join([ALL_ROUTES, OFFICIAL_ROUTE, *owners])
            raise UserError(f"no contract of route {route!r} covers {model} on {on}; use --route with one of: {known}")
        contracts = chosen
    return _most_specific(contracts, notes)


def _fx(books: PriceBooks, currency: str, on: date) -> float | None:
    rate = books.fx(currency, on=on)
    return None if rate is None else rate.usd_per_unit


def route_estimates(
    books: PriceBooks,
    contracts: list[ProviderContract],
    *,
    n: int,
    tokens: dict[str, Range],
    on: date,
    notes: list[str],
) -> list[RouteEstimate]:
    """One RouteEstimate per (route owner, contract id, currency); rows of one contract are summed."""
    grouped: dict[tuple[str, str, str], list[ProviderContract]] = defaultdict(list)
    for contract in contracts:
        grouped[(contract.provider, contract.contract_id, contract.currency)].append(contract)
    estimates: list[RouteEstimate] = []
    for (provider, contract_id, currency), rows in sorted(grouped.items()):
        amount = Range(0.0, 0.0, 0.0)
        for row in rows:
            amount = amount + _contract_amount(row, n, tokens, notes)
        usd_per_unit = 1.0 if currency.upper() == "USD" else _fx(books, currency, on)
        if usd_per_unit is None:
            notes.append(
                f"{provider} ({contract_id}): no {currency} FX rate on or before {on}; USD unknown "
                f"(add an FX rate to a prices TOML file)"
            )
        units = "+".join(sorted({row.unit for row in rows}))
        estimates.append(
            RouteEstimate(
                route_owner=provider,
                cost_basis=units,
                currency=currency,
                amount=amount,
                usd=None if usd_per_unit is None else amount.times(usd_per_unit),
                contract_id=contract_id,
            )
        )
    return estimates
