"""Pre-flight cost estimates for image requests: tokens from the model facts, money from the price books.

    from ledger.estimator import EstimateRequest, estimate, output_tokens, validate_size
    output_tokens("gpt-image-2", "1024x1024", "medium")   # 1756 image output tokens per image
    validate_size("gpt-image-2", "1000x1000")             # UserError naming the broken rule
    estimate(EstimateRequest("gpt-image-2", "1024x1024", "high", n=2), load_books())

Model facts (size rules, token models, shutdown dates) are data: ``ledger/books/models.toml``.
"""

from __future__ import annotations

from ledger.estimator.calibration import MIN_OBSERVATIONS, Observations, Observed, load_observations
from ledger.estimator.catalog import default_tool_model, known_models, model_facts
from ledger.estimator.core import estimate
from ledger.estimator.records import Estimate, EstimateRequest, Range, RouteEstimate
from ledger.estimator.sizes import validate_size
from ledger.estimator.tokens import PARTIAL_IMAGE_TOKENS, output_token_range, output_tokens

__all__ = [
    "MIN_OBSERVATIONS",
    "PARTIAL_IMAGE_TOKENS",
    "Estimate",
    "EstimateRequest",
    "Observations",
    "Observed",
    "Range",
    "RouteEstimate",
    "default_tool_model",
    "estimate",
    "known_models",
    "load_observations",
    "model_facts",
    "output_token_range",
    "output_tokens",
    "validate_size",
]
