"""Token counts for pre-flight estimates: image output (per image), input images and prompt text.

Every count here is an estimate; billing always uses the usage the API reports (reference §12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache

from ledger.errors import UserError
from ledger.estimator.catalog import (
    CalculatorTokens,
    ModelFacts,
    TableTokens,
    TileInputTokens,
    known_models,
    model_facts,
)
from ledger.estimator.sizes import AUTO, parse_size, valid_sizes, validate_size

# Reference §3.2 (confirmed): "each partial image will incur an additional 100 image output tokens".
PARTIAL_IMAGE_TOKENS = 100
# Prompt text: ~4 characters per token (a rule of thumb for English, o200k-style tokenizers), +-50 %.
CHARS_PER_TOKEN = 4
PROMPT_UNCERTAINTY = 0.5
# What `auto` is expected to pick when the request says auto (reference §12 item 8: not documented).
EXPECTED_AUTO_SIZE = "1024x1024"
EXPECTED_AUTO_QUALITY = "medium"


@dataclass(frozen=True)
class TokenRange:
    """Integer token counts: the least, the expected and the most a request may produce."""

    low: int
    expected: int
    high: int

    def __add__(self, other: TokenRange) -> TokenRange:
        return TokenRange(self.low + other.low, self.expected + other.expected, self.high + other.high)

    def scale(self, factor: int) -> TokenRange:
        return TokenRange(self.low * factor, self.expected * factor, self.high * factor)


ZERO = TokenRange(0, 0, 0)


def gpt_image_2_tokens(width: int, height: int, quality_base: int) -> int:
    """Reference §5.7 calculator (reverse-engineered, not official), in integer arithmetic."""
    long_side, short_side = max(width, height), min(width, height)
    # base * short/long, rounded half up
    scaled = (2 * quality_base * short_side + long_side) // (2 * long_side)
    # ceil(base * scaled * (2_000_000 + width*height) / 4_000_000)
    numerator = quality_base * scaled * (2_000_000 + width * height)
    return -(-numerator // 4_000_000)


def _tokens_for(facts: ModelFacts, width: int, height: int, quality: str) -> int:
    calc = facts.output_tokens
    if isinstance(calc, CalculatorTokens):
        return gpt_image_2_tokens(width, height, calc.quality_base[quality])
    assert isinstance(calc, TableTokens)
    return calc.table[quality][f"{width}x{height}"]


def check_quality(facts: ModelFacts, quality: str) -> None:
    """UserError unless the quality is one the model takes and we can estimate (``auto`` included)."""
    if quality == AUTO or quality in facts.qualities:
        return
    if quality in facts.extra_qualities:
        raise UserError(
            f"quality {quality!r} is accepted by {facts.name} but no token count is published for it; "
            f"use --quality high for a lower bound"
        )
    allowed = ", ".join((*facts.qualities, *facts.extra_qualities, AUTO))
    raise UserError(f"quality {quality!r} is not valid for {facts.name}: use one of {allowed}")


def output_tokens(model: str, size: str, quality: str) -> int:
    """Image output tokens for ONE image, without partials: the official table or the §5.7 calculator.

    ``size`` and ``quality`` must be concrete (not ``auto``); use ``output_token_range`` for auto.
    """
    facts = model_facts(model)
    check_quality(facts, quality)
    if quality == AUTO or size.strip().lower() == AUTO:
        raise UserError("output_tokens needs a concrete size and quality; auto resolves only at the API")
    validate_size(model, size)
    width, height = parse_size(size)
    return _tokens_for(facts, width, height, quality)


def _extremes(model: str, quality: str) -> tuple[int, int]:
    """(min, max) tokens per image over every valid size at ``quality``."""
    return _family_extremes(model_facts(model).family_name, quality)


@cache
def _family_extremes(family: str, quality: str) -> tuple[int, int]:
    # Brute force once per family: size rule and token model are family facts (models.toml).
    model = next(name for name in known_models() if model_facts(name).family_name == family)
    facts = model_facts(model)
    counts = [_tokens_for(facts, w, h, quality) for w, h in valid_sizes(model)]
    return min(counts), max(counts)


@lru_cache(maxsize=4096)  # pure: model facts are fixed data
def output_token_range(model: str, size: str, quality: str) -> TokenRange:
    """Tokens for one image; ``auto`` size/quality spans the whole valid range (reference §5.7 worst case).

    Expected for ``auto``: the 1024x1024 value (size auto) and medium (quality auto).
    """
    facts = model_facts(model)
    check_quality(facts, quality)
    qualities = list(facts.qualities) if quality == AUTO else [quality]
    expected_quality = EXPECTED_AUTO_QUALITY if quality == AUTO else quality
    if size == AUTO:
        low = min(_extremes(model, q)[0] for q in qualities)
        high = max(_extremes(model, q)[1] for q in qualities)
        expected = output_tokens(model, EXPECTED_AUTO_SIZE, expected_quality)
        return TokenRange(low, expected, high)
    validate_size(model, size)
    width, height = parse_size(size)
    counts = [_tokens_for(facts, width, height, q) for q in qualities]
    return TokenRange(min(counts), _tokens_for(facts, width, height, expected_quality), max(counts))


def _tile_count(spec: TileInputTokens, width: int, height: int) -> int:
    # Scale so the shortest side is `short_side` px, then count `tile` px tiles (reference §6).
    scale = spec.short_side / min(width, height)
    return math.ceil(round(width * scale, 6) / spec.tile) * math.ceil(round(height * scale, 6) / spec.tile)


def _low_and_high_fidelity(spec: TileInputTokens, width: int, height: int) -> tuple[int, int]:
    low = spec.base + spec.per_tile * _tile_count(spec, width, height)
    extra = spec.high_fidelity_square if width == height else spec.high_fidelity_other
    return low, low + extra


@lru_cache(maxsize=4096)
def input_image_token_range(model: str, size: str, fidelity: str | None) -> TokenRange:
    """Tokens for one input image of ``size`` (``WxH``), by the model's formula or empirical default.

    gpt-image-1 family: ``fidelity`` None means "not sent" -> the API default (low) is expected, the
    high-fidelity count is the upper bound.
    """
    facts = model_facts(model)
    width, height = parse_size(size, what="input image size")
    if width <= 0 or height <= 0:
        raise UserError(f"input image size {size!r} must have positive edges")
    spec = facts.input_image_tokens
    low, high = _low_and_high_fidelity(spec, width, height)
    if spec.kind == "empirical_default":
        factor = spec.high_factor or 2.0
        return TokenRange(low, high, math.ceil(high * factor))
    if fidelity == "low" or facts.input_fidelity == ("low",):
        return TokenRange(low, low, low)
    if fidelity == "high":
        return TokenRange(high, high, high)
    return TokenRange(low, low, high)


def prompt_token_range(prompt_chars: int) -> TokenRange:
    """Prompt text tokens from its length: ~4 chars/token, +-50 %."""
    expected = math.ceil(prompt_chars / CHARS_PER_TOKEN)
    return TokenRange(
        math.floor(expected * (1 - PROMPT_UNCERTAINTY)), expected, math.ceil(expected * (1 + PROMPT_UNCERTAINTY))
    )
