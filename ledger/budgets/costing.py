"""A guarded call in US dollars: its pre-flight estimate, and what its reported tokens cost.

Both use the estimator (``ledger.estimator``) and its pricing functions, so the guard prices a request exactly
as ``imagecost estimate`` does, and an ended call the way ``priced_calls.billed_cost_usd`` will once ingested:
an OpenAI-routed call at the official rates, a gateway call under its provider contract. A gateway with no
contract in the price books is estimated at the official rates (the shadow price): an unknown is never $0.

What the estimate cannot see: the pixel sizes of edit input images (the collector does not read the files;
each counts as ``EDIT_INPUT_IMAGE_SIZE``), and a Responses call's mainline (text) model tokens (the estimator
prices the image tool only).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from collector.guard import GuardOutcome, GuardRequest
from ledger.errors import UserError
from ledger.estimator import EstimateRequest, Range, estimate
from ledger.estimator.pricing import OFFICIAL_ROUTE, official_cost, route_estimates, select_contracts
from ledger.pricebook import PriceBooks

EDIT_INPUT_IMAGE_SIZE = "1024x1024"


def estimate_request(req: GuardRequest) -> EstimateRequest | None:
    """The estimator's request for a guarded one (None without a model: nothing to estimate from)."""
    if req.model is None:
        return None
    return EstimateRequest(
        model=req.model,
        size=req.size or "auto",
        quality=req.quality or "auto",
        n=req.n,
        partial_images=req.partial_images,
        input_images=(EDIT_INPUT_IMAGE_SIZE,) * req.input_images,
        prompt_chars=req.prompt_chars,
        route=req.route_owner,
    )


def estimate_usd(books: PriceBooks, req: EstimateRequest, on: date) -> Range | None:
    """USD low / expected / high of ``req`` on its route; None when the estimator cannot price it."""
    try:
        est = estimate(req, books, on=on)
    except UserError:  # a request the API will refuse (bad size, unknown model), or no contract for the route
        if req.route == OFFICIAL_ROUTE:
            return None
        return estimate_usd(books, replace(req, route=OFFICIAL_ROUTE), on)
    if req.route == OFFICIAL_ROUTE:
        return est.official_usd
    contract_usd = next((route.usd for route in est.routes if route.usd is not None), None)
    return contract_usd if contract_usd is not None else est.official_usd


def _exact(count: int) -> Range:
    return Range(count, count, count)


def _uncached(tokens: dict[str, int], total: str, cached: str) -> dict[str, Range]:
    """A reported input count includes its cached part (reference §2.3): split it as priced_calls does."""
    part = tokens.get(cached, 0)
    return {total: _exact(tokens.get(total, 0) - part), cached: _exact(part)}


def outcome_usd(books: PriceBooks, req: GuardRequest, outcome: GuardOutcome, on: date) -> float | None:
    """What an ended call cost by its reported tokens; 0 for a failed call without usage; None = unknown."""
    if outcome.tokens is None:
        return None if outcome.ok else 0.0
    tokens = dict(outcome.tokens)
    image = {
        **_uncached(tokens, "text_input", "cached_text_input"),
        **_uncached(tokens, "image_input", "cached_image_input"),
        "image_output": _exact(tokens.get("image_output", 0)),
        "text_output": _exact(tokens.get("text_output", 0)),
    }
    notes: list[str] = []
    if req.route_owner != OFFICIAL_ROUTE:
        try:
            contracts = select_contracts(books, req.model or "", req.route_owner, on, notes)
        except UserError:
            return None
        routes = route_estimates(books, contracts, n=outcome.images_returned, tokens=image, on=on, notes=notes)
        return next((route.usd.expected for route in routes if route.usd is not None), None)
    model = outcome.billed_model or req.model
    if model is None:
        return None
    cost = official_cost(books, model, image, tier="standard", on=on, alias=None, notes=notes)
    if cost is None:
        return None
    if req.mainline_model and outcome.mainline_tokens:
        mainline = dict(outcome.mainline_tokens)
        text = {
            **_uncached(mainline, "text_input", "cached_text_input"),
            "text_output": _exact(mainline.get("text_output", 0)),
        }
        mainline_cost = official_cost(books, req.mainline_model, text, tier="standard", on=on, alias=None, notes=notes)
        if mainline_cost is None:
            return None
        cost = cost + mainline_cost
    return cost.expected
