"""Plan files: one request's keyword arguments per JSON line, estimated in bulk.

    {"model": "gpt-image-2", "size": "1024x1024", "quality": "high", "n": 2}

Fast for millions of lines: lines are grouped in polars with their prompt pulled out (``plan_lines``), each
distinct line is parsed once, parsed requests are grouped again, and each distinct request is estimated once
and multiplied by its count. A prompt's cost is linear in its length, so a group costs
``count x estimate(prompt 0) + total prompt characters x cost per character``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ledger.errors import UserError
from ledger.estimator.calibration import Observations
from ledger.estimator.core import MAX_PROMPT_CHARS, estimate
from ledger.estimator.plan_lines import decode, group_lines, parse_request, read_lines
from ledger.estimator.records import MONEY_DECIMALS, Estimate, EstimateRequest, Range

if TYPE_CHECKING:
    from ledger.pricebook import PriceBooks

_PROMPT_PROBE_CHARS = 4000  # a length whose token estimate (1000, +-50 %) has no rounding
MAX_ERRORS_KEPT = 1000
ZERO_MONEY = Range(0.0, 0.0, 0.0)
PROMPT_SUM_NOTE = "plan totals: prompt tokens summed as characters / 4 (±50 %), without per-line rounding"


@dataclass
class RouteTotal:
    route_owner: str
    contract_id: str
    cost_basis: str
    currency: str
    requests: int = 0
    amount: Range = ZERO_MONEY
    usd: Range | None = ZERO_MONEY  # None once any request lacks an FX rate

    def to_json(self) -> dict[str, object]:
        return {
            "route_owner": self.route_owner,
            "contract_id": self.contract_id,
            "cost_basis": self.cost_basis,
            "currency": self.currency,
            "requests": self.requests,
            "amount": self.amount.to_json(MONEY_DECIMALS),
            "usd": None if self.usd is None else self.usd.to_json(MONEY_DECIMALS),
        }


@dataclass
class PlanResult:
    """Totals over a plan file. ``official_usd`` sums the requests that have an official price; the others are
    counted in ``official_unpriced_requests``. ``errors``: (line number, reason), the first MAX_ERRORS_KEPT."""

    path: str
    lines: int = 0
    requests: int = 0
    images: int = 0
    distinct_requests: int = 0
    tokens: dict[str, Range] = field(default_factory=dict)
    official_usd: Range = ZERO_MONEY
    official_unpriced_requests: int = 0
    routes: dict[tuple[str, str, str], RouteTotal] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    errors_total: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase: read, group, parse, estimate

    def to_json(self) -> dict[str, object]:
        return {
            "plan": self.path,
            "lines": self.lines,
            "requests": self.requests,
            "images": self.images,
            "distinct_requests": self.distinct_requests,
            "output_tokens": self.tokens.get("image_output", ZERO_MONEY).to_json(),
            "tokens": {name: value.to_json() for name, value in self.tokens.items()},
            "official_usd": self.official_usd.to_json(MONEY_DECIMALS),
            "official_unpriced_requests": self.official_unpriced_requests,
            "routes": [route.to_json() for route in self.routes.values()],
            "errors": [{"line": line, "error": reason} for line, reason in self.errors],
            "errors_total": self.errors_total,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class PromptCost:
    """What one prompt character adds: text_input tokens, official USD and each route's amount / USD."""

    text_tokens: Range
    official_usd: Range | None
    routes: dict[tuple[str, str, str], tuple[Range, Range | None]]


def _per_char(later: Range | None, earlier: Range | None) -> Range | None:
    if later is None or earlier is None:
        return None
    diff = Range(later.low - earlier.low, later.expected - earlier.expected, later.high - earlier.high)
    return diff.times(1 / _PROMPT_PROBE_CHARS)


def prompt_cost(req: EstimateRequest, books: PriceBooks, observed: Observations | None, on: date | None) -> PromptCost:
    """The cost of one prompt character for ``req``'s model, route and tier.

    Prompt tokens only meet the text_input rate and per-token text_input contract terms, which depend on the
    model, route and tier alone, so a one-image request with and without a probe prompt gives the slope.
    """
    plain = EstimateRequest(req.model, "auto", "auto", route=req.route, tier=req.tier, prompt_chars=0)
    zero = estimate(plain, books, observed=observed, on=on)
    probe = estimate(replace(plain, prompt_chars=_PROMPT_PROBE_CHARS), books, observed=observed, on=on)
    before = {(r.route_owner, r.contract_id, r.currency): r for r in zero.routes}
    routes = {
        key: (_per_char(r.amount, before[key].amount) or ZERO_MONEY, _per_char(r.usd, before[key].usd))
        for r in probe.routes
        if (key := (r.route_owner, r.contract_id, r.currency)) in before
    }
    return PromptCost(
        text_tokens=_per_char(probe.tokens["text_input"], zero.tokens["text_input"]) or ZERO_MONEY,
        official_usd=_per_char(probe.official_usd, zero.official_usd),
        routes=routes,
    )


def _plus(total: Range | None, per_char: Range | None, chars: int) -> Range | None:
    if total is None or chars == 0:
        return total
    return None if per_char is None else total + per_char.times(chars)


def scaled_estimate(base: Estimate, count: int, chars: int, per_char: PromptCost | None) -> Estimate:
    """``count`` copies of ``base`` (its prompt_chars 0 or None) plus ``chars`` prompt characters in all."""
    if per_char is None:
        chars, per_char = 0, PromptCost(ZERO_MONEY, ZERO_MONEY, {})
    tokens = {name: value.times(count) for name, value in base.tokens.items()}
    tokens["text_input"] = tokens["text_input"] + per_char.text_tokens.times(chars)
    routes = []
    for route in base.routes:
        amount, usd = per_char.routes.get((route.route_owner, route.contract_id, route.currency), (ZERO_MONEY, None))
        routes.append(
            replace(
                route,
                amount=_plus(route.amount.times(count), amount, chars),
                usd=None if route.usd is None else _plus(route.usd.times(count), usd, chars),
            )
        )
    official = None if base.official_usd is None else base.official_usd.times(count)
    return replace(base, tokens=tokens, routes=routes, official_usd=_plus(official, per_char.official_usd, chars))


@dataclass
class _Group:
    """Lines that are the same request: how many, their prompt characters in all, the line keys they came from."""

    count: int = 0
    chars: int = 0
    keys: list[str] = field(default_factory=list)


def estimate_plan(
    path: str | Path,
    books: PriceBooks,
    *,
    route: str = "all",
    tier: str = "standard",
    observed: Observations | None = None,
    on: date | None = None,
) -> PlanResult:
    """Estimate every line of a JSONL plan; bad lines go to ``errors`` with their line number."""
    file = Path(path)
    clock = time.perf_counter()
    lines, not_utf8 = read_lines(file)
    seconds = {"read": time.perf_counter() - clock}
    keyed, grouped, out_of_range = group_lines(lines)
    seconds["group"] = time.perf_counter() - clock - sum(seconds.values())
    result = PlanResult(path=str(file), lines=keyed.height + out_of_range.height + len(not_utf8), seconds=seconds)
    errors = [(n, "not valid UTF-8 text") for n in not_utf8]
    errors += [
        (n, f"prompt length must be from 0 to {MAX_PROMPT_CHARS} characters (got {chars})")
        for n, chars in out_of_range.iter_rows()
    ]
    bad_keys: dict[str, str] = {}  # line key -> reason; expanded to line numbers at the end
    groups: dict[EstimateRequest, _Group] = defaultdict(_Group)
    for key, count, pulled_chars, pulled in grouped.iter_rows():
        try:
            req, chars = parse_request(decode(key), route=route, tier=tier)
        except json.JSONDecodeError as exc:
            bad_keys[key] = f"not valid JSON: {exc}"
            continue
        except RecursionError:
            bad_keys[key] = "not valid JSON: nested too deeply"
            continue
        except UserError as exc:
            bad_keys[key] = str(exc)
            continue
        group = groups[req]
        group.count += count
        group.chars += pulled_chars if pulled else (chars or 0) * count
        group.keys.append(key)
    seconds["parse"] = time.perf_counter() - clock - sum(seconds.values())
    notes: dict[str, None] = {}
    slopes: dict[tuple[str, str, str], PromptCost] = {}
    for req, group in groups.items():
        try:
            base = estimate(req, books, observed=observed, on=on)
            slope = None
            if group.chars:
                slope_key = (req.model, req.route, req.tier)
                if slope_key not in slopes:
                    slopes[slope_key] = prompt_cost(req, books, observed, on)
                slope = slopes[slope_key]
        except UserError as exc:
            bad_keys.update(dict.fromkeys(group.keys, str(exc)))
            continue
        notes.update(dict.fromkeys(base.notes))
        result.distinct_requests += 1
        _add(result, scaled_estimate(base, group.count, group.chars, slope), group.count)
    if any(req.prompt_chars is not None for req in groups):
        notes[PROMPT_SUM_NOTE] = None
    errors += _line_errors(keyed, bad_keys)
    seconds["estimate"] = time.perf_counter() - clock - sum(seconds.values())
    errors.sort()
    result.errors = errors[:MAX_ERRORS_KEPT]
    result.errors_total = len(errors)
    result.notes = list(notes)
    return result


def _line_errors(keyed: pl.DataFrame, bad_keys: dict[str, str]) -> list[tuple[int, str]]:
    if not bad_keys:
        return []
    reasons = pl.DataFrame({"key": list(bad_keys), "reason": list(bad_keys.values())})
    return keyed.join(reasons, on="key").select("lineno", "reason").rows()


def _add(result: PlanResult, est: Estimate, count: int) -> None:
    result.requests += count
    result.images += est.n * count
    for name, value in est.tokens.items():
        result.tokens[name] = result.tokens.get(name, ZERO_MONEY) + value
    if est.official_usd is None:
        result.official_unpriced_requests += count
    else:
        result.official_usd = result.official_usd + est.official_usd
    for route in est.routes:
        key = (route.route_owner, route.contract_id, route.currency)
        total = result.routes.setdefault(
            key, RouteTotal(route.route_owner, route.contract_id, route.cost_basis, route.currency)
        )
        total.requests += count
        total.amount = total.amount + route.amount
        total.usd = None if total.usd is None or route.usd is None else total.usd + route.usd
