"""Retry-reason taxonomy: one ordered rule table, matched on status, error type, code and param.

Never on the message text (reference §12.7): messages change, codes are the stable discriminator (§8.1).
The first matching rule wins, so specific rules (billing 429, size 400) come before general ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2

# 429 codes that mean "out of money", not "too fast": retrying won't restore access (reference §8.1).
BILLING_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
    }
)
POLICY_CODES = frozenset({"moderation_blocked", "content_policy_violation", "image_content_policy_violation"})


@dataclass(frozen=True)
class ErrorInfo:
    """What one failed attempt (or a failed call) tells about its cause."""

    status: int | None = None  # HTTP status; None for transport failures and stream errors
    type: str | None = None  # OpenAI error.type, else the exception class name
    code: str | None = None
    param: str | None = None
    moderation_stage: str | None = None
    transport: str | None = None  # "timeout" | "connection" when no HTTP response came back
    in_stream: bool = False  # the failure happened after the stream had started


@dataclass(frozen=True)
class Rule:
    """Matches when every given field matches; ``None`` fields match anything."""

    reason: str
    statuses: range | None = None
    codes: frozenset[str] | None = None
    types: frozenset[str] | None = None
    param: str | None = None
    transport: str | None = None
    in_stream: bool | None = None

    def matches(self, e: ErrorInfo) -> bool:
        return (
            (self.in_stream is None or e.in_stream == self.in_stream)
            and (self.transport is None or e.transport == self.transport)
            and (self.statuses is None or (e.status is not None and e.status in self.statuses))
            and (self.codes is None or e.code in self.codes)
            and (self.types is None or e.type in self.types)
            and (self.param is None or e.param == self.param)
        )


RULES: tuple[Rule, ...] = (
    Rule("stream_interrupted", in_stream=True),
    Rule("timeout", transport="timeout"),
    Rule("connection", transport="connection"),
    Rule("billing_limit", statuses=range(429, 430), codes=BILLING_CODES),
    Rule("billing_limit", statuses=range(429, 430), types=frozenset({"insufficient_quota"})),
    Rule("rate_limit", statuses=range(429, 430)),
    Rule("timeout", statuses=range(408, 409)),
    Rule("policy", codes=POLICY_CODES),
    Rule("size_error", statuses=range(400, 401), param="size"),
    Rule("auth", statuses=range(401, 404)),  # 401, 403 (402 is unused by OpenAI)
    Rule("provider_5xx", statuses=range(500, 600)),
    Rule("validation", statuses=range(400, 500)),
)


def classify(e: ErrorInfo) -> str | None:
    """The retry reason of a failure, or None when no rule applies."""
    for rule in RULES:
        if rule.matches(e):
            return rule.reason
    return None


def error_body_info(status: int | None, body: Any) -> ErrorInfo:
    """ErrorInfo from an OpenAI error body ``{"error": {...}}`` (or the inner error object itself)."""
    err = body.get("error", body) if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping):
        return ErrorInfo(status=status)
    details = err.get("moderation_details")
    stage = details.get("moderation_stage") if isinstance(details, Mapping) else None
    return ErrorInfo(
        status=status,
        type=_str(err.get("type")),
        code=_str(err.get("code")),
        param=_str(err.get("param")),
        moderation_stage=_str(stage),
    )


def transport_info(exc: BaseException) -> ErrorInfo:
    """ErrorInfo of an attempt that got no HTTP response (httpx2 timeout or connection failure)."""
    kind = "timeout" if isinstance(exc, httpx2.TimeoutException) else "connection"
    return ErrorInfo(type=type(exc).__name__, transport=kind)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
