"""Size strings: parse ``WIDTHxHEIGHT``, check them against a model's size rule (reference §7.1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache, lru_cache

from ledger.errors import UserError
from ledger.estimator.catalog import BoundedSizeRule, FixedSizeRule, model_facts

AUTO = "auto"
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


@lru_cache(maxsize=4096)  # plans repeat a handful of sizes many times
def parse_size(size: str, *, what: str = "size") -> tuple[int, int]:
    """``"1536x1024"`` -> ``(1536, 1024)``; anything else raises a one-line UserError."""
    match = _SIZE_RE.match(size)
    if match is None:
        raise UserError(f"{what} {size!r} is not WIDTHxHEIGHT (e.g. 1024x1024)")
    return int(match[1]), int(match[2])


def normalize_size(size: str) -> str:
    """Canonical spelling: ``"auto"`` or ``"WxH"`` (lower-case x, no spaces)."""
    if size.strip().lower() == AUTO:
        return AUTO
    width, height = parse_size(size)
    return f"{width}x{height}"


def _round_to(value: int, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def _check_bounded(model: str, size: str, width: int, height: int, rule: BoundedSizeRule) -> None:
    """Raise a UserError naming the first §7.1 rule the size breaks."""
    long_side, short_side = max(width, height), min(width, height)
    pixels = width * height
    prefix = f"size {size} is not valid for {model}"
    if short_side <= 0:
        raise UserError(f"{prefix}: both edges must be positive")
    if width % rule.multiple_of or height % rule.multiple_of:
        bad = sorted({e for e in (width, height) if e % rule.multiple_of})
        verb = "is" if len(bad) == 1 else "are"
        bad_text = f"{' and '.join(map(str, bad))} {verb} not"
        fix = f"{_round_to(width, rule.multiple_of)}x{_round_to(height, rule.multiple_of)}"
        raise UserError(f"{prefix}: both edges must be multiples of {rule.multiple_of} ({bad_text}); try {fix}")
    if long_side > rule.max_edge:
        raise UserError(f"{prefix}: the longest edge must be at most {rule.max_edge} px (got {long_side})")
    if long_side > rule.max_ratio * short_side:
        raise UserError(
            f"{prefix}: the long:short edge ratio must be at most {rule.max_ratio:g}:1 "
            f"(got {long_side / short_side:.2f}:1)"
        )
    if not rule.min_pixels <= pixels <= rule.max_pixels:
        raise UserError(
            f"{prefix}: total pixels must be between {rule.min_pixels:,} and {rule.max_pixels:,} "
            f"(got {pixels:,}; e.g. 1024x640 .. 3840x2160)"
        )


def validate_size(model: str, size: str) -> None:
    """Check ``size`` for ``model``; a UserError names the broken rule. ``auto`` is always allowed."""
    rule = model_facts(model).size_rule
    if size.strip().lower() == AUTO:
        return
    width, height = parse_size(size)
    if isinstance(rule, FixedSizeRule):
        if f"{width}x{height}" not in rule.sizes:
            allowed = ", ".join((*rule.sizes, AUTO))
            raise UserError(f"size {size} is not valid for {model}: it accepts only {allowed}")
        return
    _check_bounded(model, size, width, height, rule)


def valid_sizes(model: str) -> Iterator[tuple[int, int]]:
    """Every (width, height) the model accepts (the bounded rule is enumerated in steps of ``multiple_of``)."""
    yield from _valid_sizes(model_facts(model).size_rule)


@cache
def _valid_sizes(rule: BoundedSizeRule | FixedSizeRule) -> tuple[tuple[int, int], ...]:
    if isinstance(rule, FixedSizeRule):
        return tuple(parse_size(s) for s in rule.sizes)
    step = rule.multiple_of
    edges = range(step, rule.max_edge + 1, step)
    return tuple(
        (w, h)
        for w in edges
        for h in edges
        if max(w, h) <= rule.max_ratio * min(w, h) and rule.min_pixels <= w * h <= rule.max_pixels
    )
