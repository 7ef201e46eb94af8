"""Request fields: typed reads from JSON or multipart form values, and the checks the real API makes.

`auto` resolution is the simulator's documented choice (reference §12 item 8 leaves it open):
size auto -> 1024x1024, quality auto -> medium, background auto -> opaque.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from ledger.errors import UserError
from ledger.estimator import model_facts, validate_size
from ledger.estimator.sizes import normalize_size
from ledger.estimator.tokens import EXPECTED_AUTO_QUALITY, EXPECTED_AUTO_SIZE
from simulator.faults import ApiError

AUTO = "auto"
AUTO_SIZE = EXPECTED_AUTO_SIZE  # 1024x1024, what the estimator expects `auto` to pick
AUTO_QUALITY = EXPECTED_AUTO_QUALITY  # medium
AUTO_BACKGROUND = "opaque"
OUTPUT_FORMATS = ("png", "jpeg", "webp")
BACKGROUNDS = ("transparent", "opaque", AUTO)
MAX_N = 10
MAX_PARTIAL_IMAGES = 3
TRUE_WORDS = ("true", "1")


def bad(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


async def read_json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise bad("body", "We could not parse the JSON body of your request; send a JSON object.", None) from None
    if not isinstance(body, dict):
        raise bad("body", "The request body must be a JSON object.", None)
    return body


def get_str(raw: Mapping[str, Any], name: str, default: str) -> str:
    value = raw.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise bad(name, f"Invalid type for '{name}': expected a string, got {type(value).__name__}.", "invalid_type")
    return value


def get_int(raw: Mapping[str, Any], name: str, default: int) -> int:
    """Ints arrive as JSON numbers or as multipart strings ("2")."""
    value = raw.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise bad(name, f"Invalid type for '{name}': expected an integer.", "invalid_type")
    try:
        return int(value)
    except ValueError:
        raise bad(name, f"Invalid type for '{name}': expected an integer, got {value!r}.", "invalid_type") from None


def get_bool(raw: Mapping[str, Any], name: str) -> bool:
    """Booleans arrive as JSON true/false or as the multipart string "true" (stack-notes §3)."""
    value = raw.get(name)
    if isinstance(value, str):
        return value.strip().lower() in TRUE_WORDS
    return bool(value)


def check_range(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise bad(name, f"Invalid value for '{name}': {value}. It must be between {low} and {high}.")
    return value


def check_model(model: str) -> None:
    """Unknown models answer 404 model_not_found, like the real API."""
    if not model:
        raise bad("model", "Missing required parameter: 'model' (the simulator does not pick a default).", None)
    try:
        model_facts(model)
    except UserError:
        message = f"The model `{model}` does not exist or you do not have access to it."
        raise ApiError(404, message, code="model_not_found") from None


def effective_quality(model: str, quality: str) -> str:
    facts = model_facts(model)
    if quality == AUTO:
        return AUTO_QUALITY
    if quality in facts.qualities:
        return quality
    if quality in facts.extra_qualities:
        raise bad("quality", f"Quality '{quality}' has no published token count; the simulator cannot serve it.")
    allowed = ", ".join((*facts.qualities, AUTO))
    raise bad("quality", f"Invalid value for 'quality': '{quality}'. Supported values for {model}: {allowed}.")


def check_input_fidelity(model: str, fidelity: str | None) -> None:
    """gpt-image-2 must omit input_fidelity; gpt-image-1-mini takes only low (reference §6)."""
    allowed = model_facts(model).input_fidelity
    if fidelity is not None and fidelity not in allowed:
        fix = f"use one of {', '.join(allowed)}" if allowed else "omit it"
        raise bad("input_fidelity", f"input_fidelity '{fidelity}' is not supported for {model}; {fix}.")


def effective_size(model: str, size: str) -> str:
    """gpt-image-2 family: reference §7.1 rules; older models: 3 sizes + auto (validated by the estimator)."""
    if size.strip().lower() == AUTO:
        return AUTO_SIZE
    try:
        validate_size(model, size)
    except UserError as exc:
        raise bad("size", f"Invalid value for 'size': {exc}.") from None
    return normalize_size(size)


def effective_background(background: str, output_format: str) -> str:
    if output_format not in OUTPUT_FORMATS:
        allowed = ", ".join(OUTPUT_FORMATS)
        raise bad("output_format", f"Invalid value for 'output_format': '{output_format}'. Use one of {allowed}.")
    if background not in BACKGROUNDS:
        raise bad("background", f"Invalid value for 'background': '{background}'. Use one of {', '.join(BACKGROUNDS)}.")
    if background == "transparent" and output_format == "jpeg":
        raise bad("background", "Transparent backgrounds need output_format png or webp.")
    return AUTO_BACKGROUND if background == AUTO else background
