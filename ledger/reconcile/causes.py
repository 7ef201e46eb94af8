"""Why a bill row and a ledger row differ: the likely causes the data supports, as small rules.

Each quantity rule offers an *explanation*: an amount (tokens, or USD when the bill has no quantity)
the ledger's own evidence says the bill may contain on top of what the ledger priced. A difference is
explained by the smallest set of explanations that adds up to it; the rate rules compare the rate the
bill implies with the price book's. Nothing here guesses beyond the evidence: a difference no rule
accounts for is reported as ``unexplained`` with the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

NOT_IN_LEDGER = "not_in_ledger"
MISSING_FROM_BILL = "missing_from_bill"
UNMAPPED_LINE_ITEM = "unmapped_line_item"
UNPRICED = "unpriced_in_ledger"
STALE_RATE = "stale_rate"
BATCH_TIER = "batch_tier"
RETRIES = "retries_after_server_success"
PARTIAL_IMAGES = "partial_images"
UNEXPLAINED = "unexplained"

PARTIAL_IMAGE_TOKENS = 100  # reference §3.2: each partial image adds 100 image output tokens
TOKEN_SLACK = 0.5  # quantities are whole tokens; the API may send them as floats
RATE_SLACK = 0.001  # relative: an implied rate within 0.1 % of a book rate is that rate

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Explanation:
    cause: str
    tokens: float  # what it adds to the bill, in tokens
    usd: float  # the same at the book's rate
    detail: str


def _retries(row: Row) -> Explanation | None:
    failures = row.get("retried_server_failures") or 0
    if not failures:
        return None
    return Explanation(
        RETRIES,
        float(row.get("retry_tokens") or 0),
        float(row.get("retry_usd") or 0),
        f"{failures} attempt(s) failed with a 5xx/timeout and the SDK retried them; the server likely finished "
        "them too and billed each once more (no idempotency key, reference §9)",
    )


def _partials_on_top(row: Row) -> Explanation | None:
    received = row.get("partial_images_received") or 0
    if not received or row.get("token_class") not in ("image_output", "*"):
        return None
    return Explanation(
        PARTIAL_IMAGES,
        float(PARTIAL_IMAGE_TOKENS * received),
        float(row.get("partial_received_usd") or 0),
        f"{received} partial image(s) billed at {PARTIAL_IMAGE_TOKENS} tokens each on top of the reported usage "
        "(reference §3.2, §12 item 3)",
    )


def _partials_requested(row: Row) -> Explanation | None:
    missing = row.get("partial_images_missing") or 0
    if not missing or row.get("token_class") not in ("image_output", "*"):
        return None
    return Explanation(
        PARTIAL_IMAGES,
        float(PARTIAL_IMAGE_TOKENS * missing),
        float(row.get("partial_missing_usd") or 0),
        f"{missing} partial image(s) requested but never received were billed ({PARTIAL_IMAGE_TOKENS} tokens each: "
        "billed as requested, not as received, reference §12 item 3)",
    )


# Evidence the ledger holds for extra billed quantity, tried in this order.
EXPLANATIONS: tuple[Callable[[Row], Explanation | None], ...] = (_retries, _partials_on_top, _partials_requested)


def explain_excess(row: Row, excess: float, *, in_tokens: bool, slack: float) -> list[Explanation] | None:
    """The smallest set of explanations adding up to ``excess`` (tokens or USD), else None."""
    found = [e for make in EXPLANATIONS if (e := make(row)) is not None]
    for size in range(1, len(found) + 1):
        for subset in combinations(found, size):
            total = sum(e.tokens if in_tokens else e.usd for e in subset)
            if abs(total - excess) <= slack:
                return list(subset)
    return None


def rate_cause(row: Row, tokens: float, bill_usd: float, usd_slack: float) -> tuple[str, str] | None:
    """Compare the rate the bill implies for ``tokens`` with the book's; (cause, detail) when they differ."""
    book, batch = row.get("book_usd_per_1m"), row.get("batch_usd_per_1m")
    if not tokens or book is None or row.get("one_rate") is False:
        return None
    implied = bill_usd / tokens * 1e6
    if abs(implied - book) * tokens / 1e6 <= usd_slack or abs(implied - book) <= RATE_SLACK * book:
        return None
    what = f"{row.get('model')} {row.get('token_class')}"
    if row.get("tier") == "standard" and batch and abs(implied - batch) <= RATE_SLACK * batch:
        return BATCH_TIER, (
            f"the bill implies ${implied:.4f}/1M for {what}, the Batch rate; the ledger priced these calls at "
            f"Standard ${book:.4f}/1M: batch calls recorded as standard? (reference §5.1)"
        )
    return STALE_RATE, (
        f"the bill implies ${implied:.4f}/1M for {what}; the price book has ${book:.4f}/1M on this day: an "
        "outdated rate in the price book? Add a dated [[rate]] once the pricing page confirms it"
    )
