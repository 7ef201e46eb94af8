"""Error bodies and fault injection (`X-Sim-Fault: <fault>[:<count>[:<arg>]]`).

A fault hits the first `count` attempts of a logical call (default 1). The attempt number is the SDK's
`x-stainless-retry-count` header (0 on the first try, absent = 0), so counting needs no server state and a retried
call succeeds once `retry_count >= count`. Error bodies follow reference §8.1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.errors import UserError

FAULT_HEADER = "x-sim-fault"
RETRY_COUNT_HEADER = "x-stainless-retry-count"

BILLING_CODES = (
    "insufficient_quota",
    "credit_balance_exhausted",
    "organization_spend_limit_exceeded",
    "project_spend_limit_exceeded",
    "organization_usage_limit_exceeded",
)


@dataclass
class ApiError(Exception):
    """An OpenAI-style error answer: HTTP status + `{"error": {...}}` body (+ extra headers)."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def error_object(self) -> dict[str, Any]:
        """The inner `error` object (also used for the mid-stream SSE error event)."""
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code, **self.extra}

    def body(self) -> dict[str, Any]:
        return {"error": self.error_object()}


@dataclass(frozen=True)
class Fault:
    """One parsed fault spec, e.g. `rate_limit:2:50` -> Fault("rate_limit", 2, "50")."""

    name: str
    count: int = 1
    arg: str | None = None

    def active(self, retry_count: int) -> bool:
        return retry_count < self.count

    @property
    def spec(self) -> str:
        return ":".join(str(p) for p in (self.name, self.count, self.arg) if p is not None)


FaultFactory = Callable[[Fault, str], ApiError]  # (fault, requested model) -> the error to answer


def _rate_limit(f: Fault, model: str) -> ApiError:
    ms = int(f.arg or 10)
    return ApiError(
        429,
        f"Rate limit reached for {model} on images per min (IPM). Please try again in {ms}ms.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"retry-after-ms": str(ms), "retry-after": str(max(1, -(-ms // 1000)))},
    )


def _billing(f: Fault, model: str) -> ApiError:
    code = f.arg or "insufficient_quota"
    message = "You exceeded your current quota, please check your plan and billing details."
    return ApiError(429, message, type="insufficient_quota", code=code)


def _moderation(stage: str) -> FaultFactory:
    def make(f: Fault, model: str) -> ApiError:
        categories = (f.arg or "other").split(",")
        return ApiError(
            400,
            "Your request was rejected by the safety system. If you believe this is an error, contact us.",
            type="image_generation_user_error",
            code="moderation_blocked",
            extra={"moderation_details": {"moderation_stage": stage, "categories": categories}},
        )

    return make


def _fixed(
    status: int, message: str, type_: str, code: str | None, param: str | None = None
) -> Callable[..., ApiError]:
    return lambda f, model: ApiError(status, message, type=type_, code=code, param=param)


# Faults answered with an HTTP error instead of an image. Each builds the error for (fault, requested model).
ERROR_FAULTS: dict[str, FaultFactory] = {
    "rate_limit": _rate_limit,
    "billing": _billing,
    "server_error": _fixed(
        500, "The server had an error while processing your request. Sorry about that!", "server_error", None
    ),
    "unavailable": _fixed(503, "The server is overloaded or not ready yet.", "server_error", "service_unavailable"),
    "moderation_input": _moderation("input"),
    "moderation_output": _moderation("output"),
    "content_policy": _fixed(
        400,
        "Your request was rejected as a result of our safety system.",
        "invalid_request_error",
        "content_policy_violation",
    ),
    "invalid_size": _fixed(
        400, "Invalid value for 'size' (injected fault).", "invalid_request_error", "invalid_value", "size"
    ),
    "auth": _fixed(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
}

# Faults that change how a normal answer is delivered (handled in simulator.app):
#   timeout:<count>:<seconds>  wait before answering (default 2 s; the wait ends early if the client hangs up)
#   stream_error               streams only: partial events, then an SSE error event instead of the result
#   missing_usage              200 with the usage objects left out
#   disconnect                 close the TCP connection without any response
BEHAVIOUR_FAULTS = frozenset({"timeout", "stream_error", "missing_usage", "disconnect"})
FAULT_NAMES = tuple(ERROR_FAULTS) + tuple(sorted(BEHAVIOUR_FAULTS))

STREAM_ERROR = ApiError(
    500,
    "The server had an error while generating the image. Sorry about that!",
    type="server_error",
    code="server_error",
)


def parse_fault(spec: str) -> Fault:
    """Parse `<fault>[:<count>[:<arg>]]`; ValueError with a fix-it message when malformed."""
    name, _, rest = spec.strip().partition(":")
    count_text, _, arg = rest.partition(":")
    if name not in ERROR_FAULTS and name not in BEHAVIOUR_FAULTS:
        raise ValueError(f"unknown fault {name!r}; use one of {', '.join(FAULT_NAMES)}")
    try:
        count = int(count_text) if count_text else 1
    except ValueError:
        raise ValueError(f"fault count must be an integer, got {count_text!r} in {spec!r}") from None
    if arg and name in ARG_CHECKS and not ARG_CHECKS[name][0](arg):
        raise ValueError(f"{name} takes {ARG_CHECKS[name][1]} as its argument, got {arg!r}")
    return Fault(name, count, arg or None)


def _is_number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


# fault -> (check of the optional `arg`, what it should be)
ARG_CHECKS: dict[str, tuple[Callable[[str], bool], str]] = {
    "rate_limit": (str.isdigit, "the retry-after in milliseconds (an integer)"),
    "billing": (BILLING_CODES.__contains__, f"one of {', '.join(BILLING_CODES)}"),
    "timeout": (_is_number, "the delay in seconds"),
}


def validate_plan(plan: Mapping[str, str] | None) -> dict[str, Fault]:
    """Check a default fault plan (prompt substring -> fault spec) up front; UserError names the bad entry."""
    parsed: dict[str, Fault] = {}
    for needle, spec in (plan or {}).items():
        try:
            parsed[needle] = parse_fault(spec)
        except ValueError as exc:
            raise UserError(f"fault plan entry {needle!r}: {exc}") from None
    return parsed


def choose_fault(headers: Mapping[str, str], prompt: str, plan: Mapping[str, Fault]) -> Fault | None:
    """The header wins; otherwise the first plan entry whose substring occurs in the prompt; else None."""
    header = headers.get(FAULT_HEADER)
    if header:
        try:
            return parse_fault(header)
        except ValueError as exc:
            raise ApiError(400, f"X-Sim-Fault: {exc}", param=None, code="invalid_sim_fault") from None
    return next((fault for needle, fault in plan.items() if needle in prompt), None)


def retry_count(headers: Mapping[str, str]) -> int:
    try:
        return int(headers.get(RETRY_COUNT_HEADER, "0"))
    except ValueError:
        return 0


def sse_error(error: ApiError, **extra: Any) -> bytes:
    """A mid-stream SSE error event; the SDK raises openai.APIError on it (stack-notes §3.1)."""
    data = {"type": "error", "error": error.error_object(), **extra}
    return f"event: error\ndata: {json.dumps(data)}\n\n".encode()
