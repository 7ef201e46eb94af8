"""``estimate(request, books)``: tokens from the model facts (or the ledger's observations), then money.

Reference §5.8: estimate = n x out_tokens(q, w, h) x P_out + 100 x partial_images x P_out
                          + prompt_text_tokens x P_text_in + input_image_tokens x P_image_in
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from ledger.errors import UserError
from ledger.estimator.calibration import MIN_OBSERVATIONS, Observations, Observed
from ledger.estimator.catalog import CalculatorTokens, ModelFacts, model_facts
from ledger.estimator.pricing import official_cost, route_estimates, select_contracts
from ledger.estimator.records import Estimate, EstimateRequest, Range
from ledger.estimator.sizes import AUTO, normalize_size, parse_size, validate_size
from ledger.estimator.tokens import (
    EXPECTED_AUTO_QUALITY,
    EXPECTED_AUTO_SIZE,
    PARTIAL_IMAGE_TOKENS,
    ZERO,
    TokenRange,
    check_quality,
    input_image_token_range,
    output_token_range,
    prompt_token_range,
)

if TYPE_CHECKING:
    from ledger.pricebook import PriceBooks

MAX_N = 10  # reference §7.2
MAX_PARTIAL_IMAGES = 3  # reference §3.2
MAX_INPUT_IMAGES = 16  # reference §6
MAX_PROMPT_CHARS = 32_000  # reference §7.2
TIERS = ("standard", "batch")


def _check_int(name: str, value: object, low: int, high: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name} must be a whole number from {low} to {high} (got {value!r}); {fix}")
    if not low <= value <= high:
        raise UserError(f"{name} must be from {low} to {high} (got {value}); {fix}")
    return value


def _validate(req: EstimateRequest, facts: ModelFacts) -> tuple[str, str]:
    """Check every field; returns the normalized (size, quality)."""
    size = normalize_size(req.size)
    quality = req.quality.strip().lower()
    check_quality(facts, quality)
    validate_size(facts.name, size)
    _check_int("n", req.n, 1, MAX_N, "the API makes 1 to 10 images per request")
    _check_int("partial_images", req.partial_images, 0, MAX_PARTIAL_IMAGES, "the API streams 0 to 3 partial images")
    if len(req.input_images) > MAX_INPUT_IMAGES:
        raise UserError(f"at most {MAX_INPUT_IMAGES} input images per request (got {len(req.input_images)})")
    for image in req.input_images:
        width, height = parse_size(image, what="input image size")
        if width <= 0 or height <= 0:
            raise UserError(f"input image size {image!r} must have positive edges")
    if req.prompt_chars is not None:
        _check_int("prompt length", req.prompt_chars, 0, MAX_PROMPT_CHARS, "prompts are limited to 32,000 characters")
    if req.input_fidelity is not None:
        if not facts.input_fidelity:
            raise UserError(f"{facts.name} takes no input_fidelity (it always reads inputs at high fidelity); omit it")
        if req.input_fidelity not in facts.input_fidelity:
            allowed = ", ".join(facts.input_fidelity)
            raise UserError(f"input_fidelity {req.input_fidelity!r} is not valid for {facts.name}: use {allowed}")
    if req.tier not in TIERS:
        raise UserError(f"tier {req.tier!r} is not one of {', '.join(TIERS)}")
    return size, quality


def _observed_range(stat: Observed) -> TokenRange:
    return TokenRange(math.floor(stat.p10), round(stat.median), math.ceil(stat.p90))


def _output_per_image(
    facts: ModelFacts, size: str, quality: str, observed: Observations | None, notes: list[str]
) -> TokenRange:
    stat = None if observed is None else observed.output_per_image.get((facts.name, size, quality))
    if stat is not None and stat.count >= MIN_OBSERVATIONS:
        notes.append(
            f"output tokens per image: p10 / median / p90 of {stat.count} observed {facts.name} {size} {quality} "
            f"calls in {observed.source if observed else 'the ledger'}"
        )
        return _observed_range(stat)
    if stat is not None:
        notes.append(f"only {stat.count} observed {facts.name} {size} {quality} calls (< {MIN_OBSERVATIONS}): not used")
    if isinstance(facts.output_tokens, CalculatorTokens):
        notes.append("output tokens: gpt-image-2 calculator (reference §5.7; reverse-engineered, not official)")
    else:
        notes.append("output tokens: OpenAI's official token table (reference §5.5)")
    per_image = output_token_range(facts.name, size, quality)
    if size == AUTO:
        notes.append(
            f"size auto: the range spans every size {facts.name} accepts (up to {per_image.high:,} tokens per image); "
            f"expected assumes {EXPECTED_AUTO_SIZE}"
        )
    if quality == AUTO:
        notes.append(f"quality auto: the range spans low..high; expected assumes {EXPECTED_AUTO_QUALITY}")
    return per_image


def _input_tokens(
    req: EstimateRequest, facts: ModelFacts, observed: Observations | None, notes: list[str]
) -> TokenRange:
    if not req.input_images:
        return ZERO
    count = len(req.input_images)
    stat = None if observed is None else observed.input_per_image.get(facts.name)
    if stat is not None and stat.count >= MIN_OBSERVATIONS:
        notes.append(
            f"input image tokens: p10 / median / p90 per input image of {stat.count} observed {facts.name} calls"
        )
        return _observed_range(stat).scale(count)
    if stat is not None:
        notes.append(f"only {stat.count} observed {facts.name} calls with input images (< {MIN_OBSERVATIONS}): unused")
    total = ZERO
    for image in req.input_images:
        total = total + input_image_token_range(facts.name, image, req.input_fidelity)
    spec = facts.input_image_tokens
    if spec.kind == "empirical_default":
        notes.append(
            f"input image tokens: {facts.name} has no published formula (reference §6); empirical default = "
            f"gpt-image-1's high-fidelity count (low: its low-fidelity count, high: {spec.high_factor or 2:g}x) "
            f"until the ledger has {MIN_OBSERVATIONS} observations"
        )
    else:
        notes.append("input image tokens: 512 px tile formula, 65 + 129 per tile, high fidelity +4160/+6240 (§6)")
        if req.input_fidelity is None and "high" in facts.input_fidelity:
            notes.append("input_fidelity not given: expected = low fidelity (the default), high = high fidelity")
    return total


def _prompt_tokens(req: EstimateRequest, notes: list[str]) -> TokenRange:
    if req.prompt_chars is None:
        notes.append("no prompt given: text input tokens not counted (pass --prompt or --prompt-chars)")
        return ZERO
    notes.append("prompt text tokens: ~4 characters per token, range ±50 % (no tokenizer is run)")
    return prompt_token_range(req.prompt_chars)


def _model_notes(facts: ModelFacts, on: date, notes: list[str]) -> None:
    notes.extend(facts.notes)
    if facts.shutdown is not None:
        if facts.shutdown <= on:
            notes.append(f"{facts.name} was shut down on {facts.shutdown}: this request would fail")
        else:
            notes.append(f"{facts.name} shuts down on {facts.shutdown}")


def _as_range(tokens: TokenRange) -> Range:
    return Range(tokens.low, tokens.expected, tokens.high)


def estimate(
    req: EstimateRequest, books: PriceBooks, *, observed: Observations | None = None, on: date | None = None
) -> Estimate:
    """Estimate one request: tokens by class, the official USD cost and every applicable provider contract."""
    on = on or datetime.now(UTC).date()
    facts = model_facts(req.model)
    size, quality = _validate(req, facts)
    notes: list[str] = []
    _model_notes(facts, on, notes)

    per_image = _output_per_image(facts, size, quality, observed, notes)
    partial_tokens = PARTIAL_IMAGE_TOKENS * req.partial_images
    image_output = per_image.scale(req.n) + TokenRange(partial_tokens, partial_tokens, partial_tokens)
    if req.n > 1:
        notes.append(f"n={req.n}: billed as {req.n} separate images (reported, not confirmed; reference §5.8)")
    if req.partial_images:
        notes.append(
            f"partial images: +{PARTIAL_IMAGE_TOKENS} image output tokens each, counted once per request "
            f"(reference §3.2; whether per request or per image is not confirmed)"
        )
    tokens = {
        "image_output": _as_range(image_output),
        "image_input": _as_range(_input_tokens(req, facts, observed, notes)),
        "text_input": _as_range(_prompt_tokens(req, notes)),
    }
    official = official_cost(books, facts.name, tokens, tier=req.tier, on=on, alias=facts.snapshot_of, notes=notes)
    contracts = select_contracts(books, facts.name, req.route, on, notes)
    routes = route_estimates(books, contracts, n=req.n, tokens=tokens, on=on, notes=notes)
    return Estimate(
        model=facts.name,
        size=size,
        quality=quality,
        n=req.n,
        partial_images=req.partial_images,
        output_tokens=tokens["image_output"],
        official_usd=official,
        routes=routes,
        notes=notes,
        output_tokens_per_image=_as_range(per_image),
        tokens=tokens,
        input_images=tuple(normalize_size(i) for i in req.input_images),
        prompt_chars=req.prompt_chars,
        tier=req.tier,
        on=on,
    )
