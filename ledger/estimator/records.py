"""The estimator's request and result records (the fixed interface in the team brief, plus a few extras)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

MONEY_DECIMALS = 6  # JSON rounds money to the micro-unit; the objects keep full precision


@dataclass(frozen=True)
class EstimateRequest:
    """One image request as it would be sent: model, size, quality, n, partials, input images, prompt length.

    ``route``: ``"all"`` (every provider contract), ``"openai"`` (official only) or a route owner's name.
    ``input_images``: ``"WxH"`` per input image (edits / reference images).
    ``input_fidelity``: gpt-image-1 family only; None = not sent.
    """

    model: str
    size: str = "auto"
    quality: str = "auto"
    n: int = 1
    partial_images: int = 0
    input_images: tuple[str, ...] = ()
    prompt_chars: int | None = None
    route: str = "all"
    input_fidelity: str | None = None
    tier: str = "standard"


@dataclass(frozen=True)
class Range:
    """A quantity's least, expected and greatest value."""

    low: float
    expected: float
    high: float

    def __add__(self, other: Range) -> Range:
        return Range(self.low + other.low, self.expected + other.expected, self.high + other.high)

    def times(self, factor: float) -> Range:
        return Range(self.low * factor, self.expected * factor, self.high * factor)

    def to_json(self, decimals: int | None = None) -> dict[str, float]:
        values = {"low": self.low, "expected": self.expected, "high": self.high}
        if decimals is None:  # token counts: whole numbers print as integers
            return {key: int(v) if float(v).is_integer() else v for key, v in values.items()}
        return {key: round(value, decimals) for key, value in values.items()}


@dataclass(frozen=True)
class RouteEstimate:
    """What one provider contract would charge: ``amount`` in its currency, ``usd`` when an FX rate exists."""

    route_owner: str
    cost_basis: str  # the contract's unit(s): per_call | per_image | per_1m_tokens (joined with "+")
    currency: str
    amount: Range
    usd: Range | None
    contract_id: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "route_owner": self.route_owner,
            "contract_id": self.contract_id,
            "cost_basis": self.cost_basis,
            "currency": self.currency,
            "amount": self.amount.to_json(MONEY_DECIMALS),
            "usd": None if self.usd is None else self.usd.to_json(MONEY_DECIMALS),
        }


@dataclass(frozen=True)
class Estimate:
    """A pre-flight estimate: tokens, the official cost and each applicable contract, with notes.

    ``output_tokens`` is for the whole request: n images plus 100 per partial image.
    ``tokens`` holds every token class the request produces (image_output, image_input, text_input).
    """

    model: str
    size: str
    quality: str
    n: int
    partial_images: int
    output_tokens: Range
    official_usd: Range | None
    routes: list[RouteEstimate]
    notes: list[str]
    output_tokens_per_image: Range | None = None
    tokens: dict[str, Range] = field(default_factory=dict)
    input_images: tuple[str, ...] = ()
    prompt_chars: int | None = None
    tier: str = "standard"
    on: date | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (money rounded to 6 decimals, token counts as numbers)."""
        return {
            "model": self.model,
            "size": self.size,
            "quality": self.quality,
            "n": self.n,
            "partial_images": self.partial_images,
            "input_images": list(self.input_images),
            "prompt_chars": self.prompt_chars,
            "tier": self.tier,
            "on": self.on.isoformat() if self.on else None,
            "output_tokens": self.output_tokens.to_json(),
            "output_tokens_per_image": (
                None if self.output_tokens_per_image is None else self.output_tokens_per_image.to_json()
            ),
            "tokens": {name: value.to_json() for name, value in self.tokens.items()},
            "official_usd": None if self.official_usd is None else self.official_usd.to_json(MONEY_DECIMALS),
            "routes": [route.to_json() for route in self.routes],
            "notes": list(self.notes),
        }
