"""Spend guard hook: the small protocol a guard implements, the exception it raises, and where the collector asks.

The collector never imports the ledger; it talks to any object with these two methods (the ledger's
``ledger.budgets.BudgetGuard`` is one):

```python
import collector
from ledger.budgets import BudgetGuard

collector.instrument(client, guard=BudgetGuard.from_files(ledger="imagecost.duckdb", budgets="budgets.toml"))
try:
    client.images.generate(model="gpt-image-2", prompt="...", size="1024x1024", quality="high")
except collector.BudgetExceeded as exc:      # nothing was sent
    print(exc.budget, exc.limit_usd, exc.spent_usd, exc.estimate_usd, exc.period)
```

- ``check(request) -> GuardDecision`` runs in the SDK method wrapper after the call's span starts and before
  the SDK sends anything. It must be quick, synchronous, thread-safe and make no network call (it runs on the
  caller's thread or event loop). ``block`` ends the span as an error (``error.type`` = ``BudgetExceeded``,
  no attempts) and raises :class:`BudgetExceeded`: no HTTP request is made. ``warn`` and ``allow`` let it go.
  The decision is recorded on the span (``imagecost.guard.*``, see :mod:`collector.semconv`).
- ``record(request, outcome)`` runs once when an allowed call ends, with what it reported (tokens by class),
  so the guard can count this process's spend before the ledger has ingested it.
- A guard that raises is a bug, not a verdict: the call goes ahead (fail open) and the error is logged once,
  like any collector failure (:mod:`collector.safety`).

:class:`BudgetExceeded` subclasses ``openai.OpenAIError`` (the SDK's base class, which the SDK itself raises
for client-side refusals such as a missing API key), not ``openai.APIError``: no request was made, so there is
no status, body or request id. ``except collector.BudgetExceeded`` catches exactly it; a broad
``except openai.OpenAIError`` catches it too; ``except openai.APIError`` / ``APIStatusError`` handlers do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import openai

from collector import semconv as sc
from collector.safety import report

if TYPE_CHECKING:
    from collector.call import Call

Action = Literal["allow", "warn", "block"]


@dataclass(frozen=True)
class GuardRequest:
    """One image request as it is about to be sent (what a guard estimates it from)."""

    call_id: str  # the call's span id, 16 hex digits: the ledger's calls.call_id once ingested
    route: str  # images.generate | images.edit | responses
    route_owner: str  # openai or the gateway's name
    model: str | None  # image model requested (Responses: tools[].model, or the documented default)
    size: str | None  # as requested; None = not sent (the API's auto)
    quality: str | None
    n: int
    partial_images: int
    input_images: int  # number of input images (edits); their pixel sizes are not read
    prompt_chars: int | None  # prompt length in characters, None when there is no text prompt
    stream: bool
    tags: Mapping[str, str] = field(default_factory=dict)
    mainline_model: str | None = None  # Responses: the top-level model


@dataclass(frozen=True)
class GuardOutcome:
    """What an allowed call reported when it ended.

    ``tokens``: the image model's usage by token class (``text_input``, ``image_input``, ``cached_text_input``,
    ``cached_image_input``, ``image_output``, ``text_output``; inputs include their cached part, as OpenAI
    reports them), None when no usage came back. ``mainline_tokens``: a Responses call's mainline model usage
    (``text_input``, ``cached_text_input``, ``text_output``).
    """

    ok: bool
    tokens: Mapping[str, int] | None
    billed_model: str | None  # the model the server reported, else the one requested
    images_returned: int
    mainline_tokens: Mapping[str, int] | None = None


@dataclass(frozen=True)
class GuardDecision:
    """A guard's verdict on one request; the budget fields are None when no budget covers it."""

    action: Action
    budget: str | None = None
    limit_usd: float | None = None
    spent_usd: float | None = None  # that budget's spend this period before this request
    estimate_usd: float | None = None  # this request's estimate, as compared with that budget
    period: str | None = None  # UTC: "2026-11-24" (day) or "2026-11" (month)


@runtime_checkable
class Guard(Protocol):
    """What ``collector.instrument(guard=...)`` accepts."""

    def check(self, request: GuardRequest) -> GuardDecision: ...

    def record(self, request: GuardRequest, outcome: GuardOutcome) -> None: ...


class BudgetExceeded(openai.OpenAIError):
    """A hard budget would be overrun by this request; it was not sent."""

    def __init__(self, decision: GuardDecision) -> None:
        self.decision = decision
        self.budget = decision.budget
        self.limit_usd = decision.limit_usd
        self.spent_usd = decision.spent_usd
        self.estimate_usd = decision.estimate_usd
        self.period = decision.period
        super().__init__(
            f"budget {decision.budget!r} would be exceeded in {decision.period} (UTC): limit "
            f"${_usd(decision.limit_usd)}, spent ${_usd(decision.spent_usd)}, this request's estimate "
            f"${_usd(decision.estimate_usd)}; the request was not sent"
        )


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.6f}"


def validate(guard: Any) -> None:
    """TypeError (at ``instrument()`` time) unless ``guard`` has callable ``check`` and ``record``."""
    if guard is not None and not isinstance(guard, Guard):
        raise TypeError(f"guard must have check(request) and record(request, outcome) methods, got {guard!r}")


# --- the hook -------------------------------------------------------------------------------------------------


def build_request(call_id: int, attrs: Mapping[str, Any], prompt: str | None) -> GuardRequest:
    """The GuardRequest of a call from its start attributes (the same values its span records)."""
    return GuardRequest(
        call_id=f"{call_id:016x}",
        route=attrs[sc.ROUTE],
        route_owner=attrs[sc.ROUTE_OWNER],
        model=attrs.get(sc.IMAGE_MODEL_REQUESTED),
        size=attrs.get(sc.IMAGE_SIZE_REQUESTED),
        quality=attrs.get(sc.IMAGE_QUALITY_REQUESTED),
        n=attrs.get(sc.IMAGE_N, 1),
        partial_images=attrs.get(sc.PARTIAL_IMAGES_REQUESTED, 0),
        input_images=attrs.get(sc.INPUT_IMAGE_COUNT, 0),
        prompt_chars=len(prompt) if prompt is not None else None,
        stream=bool(attrs.get(sc.IMAGE_STREAM)),
        tags={k.removeprefix(sc.TAG_PREFIX): v for k, v in attrs.items() if k.startswith(sc.TAG_PREFIX)},
        mainline_model=attrs.get(sc.MAINLINE_MODEL),
    )


def gate(call: Call) -> BudgetExceeded | None:
    """Ask the call's guard before sending. Blocked: the call is ended as failed and the exception returned."""
    guard, request = call.reg.guard, call.guard_request
    if guard is None or request is None:
        return None
    try:
        decision = guard.check(request)
        attrs = {
            sc.GUARD_DECISION: decision.action,
            sc.GUARD_BUDGET: decision.budget,
            sc.GUARD_ESTIMATE_USD: decision.estimate_usd,
            sc.GUARD_SPENT_USD: decision.spent_usd,
            sc.GUARD_LIMIT_USD: decision.limit_usd,
            sc.GUARD_PERIOD: decision.period,
        }
        call.span.set_attributes({k: v for k, v in attrs.items() if v is not None})
    except Exception as exc:
        report("guard.check", exc)
        return None
    if decision.action != "block":
        return None
    call.guard_request = None  # never sent: nothing for record()
    refusal = BudgetExceeded(decision)
    call.fail(refusal)
    return refusal


_TOKEN_CLASSES = ("text_input", "image_input", "cached_text_input", "cached_image_input", "image_output", "text_output")
_MAINLINE_CLASSES = ("text_input", "cached_text_input", "text_output")  # the order of Observation.mainline


def settle(call: Call, ok: bool) -> None:
    """Tell the guard what an allowed call reported (once, from ``Call.finish``)."""
    guard, request = call.reg.guard, call.guard_request
    if guard is None or request is None:
        return
    try:
        obs = call.obs
        tokens = mainline = None
        if obs.usage is not None:
            tokens = {name: v for name in _TOKEN_CLASSES if (v := getattr(obs.usage, name)) is not None}
        if obs.mainline is not None:
            mainline = {name: v for name, v in zip(_MAINLINE_CLASSES, obs.mainline, strict=True) if v is not None}
        outcome = GuardOutcome(
            ok=ok,
            tokens=tokens,
            billed_model=obs.reported_model or request.model,
            images_returned=obs.images_returned,
            mainline_tokens=mainline,
        )
        guard.record(request, outcome)
    except Exception as exc:
        report("guard.record", exc)
