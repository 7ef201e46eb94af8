"""What a call asked for (from the SDK kwargs) and what came back (response, or stream events).

Everything reads through :func:`get`, which treats typed SDK models, unknown extra fields and plain dicts
alike: the SDK parses leniently (missing "required" fields are None, unknown fields are kept as extra
attributes, reference §11), and ``tool_usage`` is read the same way whether or not this SDK version types it
(§2.3, §12.16). No model_dump, no JSON round trip: only attribute reads on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import NoneType
from typing import Any

import pydantic
from openai import NotGiven, Omit

from collector import semconv as sc
from collector.classify import ErrorInfo, error_body_info
from collector.storage import ImageStore, StoredImage, url_pointer

# Responses tool with no `model`: the model the SDK 3.57.0 docstring of tools[].model names as the default
# (openai/types/responses/tool.py, ImageGeneration.model: "Default: `gpt-image-2.6-sunburst`"; reference §2.3).
# Kept here because collector may not import ledger (where the estimator keeps its own copy).
DEFAULT_TOOL_MODEL = "gpt-image-2.6-sunburst"
IMAGE_TOOL_TYPE = "image_generation"
_ABSENT = object()


def get(obj: Any, key: str) -> Any:
    """``obj.key`` for SDK models (typed or extra field), ``obj[key]`` for dicts, None when absent."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    if isinstance(obj, pydantic.BaseModel):
        # Fields live in __dict__, unknown fields in __pydantic_extra__. Reading them directly skips pydantic's
        # __getattr__, which raises (slowly) for every absent field: most optional fields are absent.
        value = obj.__dict__.get(key, _ABSENT)
        if value is not _ABSENT:
            return value
        extra = obj.__pydantic_extra__
        return extra.get(key) if extra else None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- request ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """The sampling-relevant part of a request plus the shape attributes recorded at span start."""

    model: str | None  # names the span: Images API model, Responses top-level model
    stream: bool
    prompt: str | None
    attributes: dict[str, Any]


def _shape(kwargs: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """Shape attributes common to both APIs; ``source`` is the kwargs (Images) or the tool config (Responses)."""
    attrs = {
        sc.IMAGE_SIZE_REQUESTED: as_str(get(source, "size")),
        sc.IMAGE_QUALITY_REQUESTED: as_str(get(source, "quality")),
        sc.IMAGE_FORMAT_REQUESTED: as_str(get(source, "output_format")),
        sc.IMAGE_COMPRESSION_REQUESTED: as_int(get(source, "output_compression")),
        sc.IMAGE_BACKGROUND_REQUESTED: as_str(get(source, "background")),
        sc.PARTIAL_IMAGES_REQUESTED: as_int(get(source, "partial_images")),
        sc.IMAGE_STREAM: kwargs.get("stream") is True,
    }
    return {k: v for k, v in attrs.items() if v is not None}


def images_request(kwargs: Mapping[str, Any]) -> Request:
    model = as_str(kwargs.get("model"))
    attrs = _shape(kwargs, kwargs)
    n = as_int(kwargs.get("n"))
    attrs[sc.IMAGE_N] = n if n is not None else 1
    if n is not None and n != 1:
        attrs[sc.GEN_AI_REQUEST_CHOICE_COUNT] = n
    if model:
        attrs[sc.IMAGE_MODEL_REQUESTED] = model
    return Request(
        model=model, stream=kwargs.get("stream") is True, prompt=as_str(kwargs.get("prompt")), attributes=attrs
    )


def edit_request(kwargs: Mapping[str, Any]) -> Request:
    req = images_request(kwargs)
    req.attributes[sc.INPUT_IMAGE_COUNT] = _file_count(kwargs.get("image"))
    req.attributes[sc.IMAGE_MASK] = not isinstance(kwargs.get("mask"), NoneType | Omit | NotGiven)
    return req


def _file_count(image: Any) -> int:
    """Files in ``image``: one file (bytes, IO, path or an SDK file tuple ``(name, content, ...)``) or a sequence."""
    if image is None:
        return 0
    is_file_tuple = isinstance(image, tuple) and len(image) >= 2 and isinstance(image[0], str | NoneType)
    return len(image) if isinstance(image, list | tuple) and not is_file_tuple else 1


def image_tool(tools: Any) -> Any:
    """The first ``image_generation`` tool config in ``tools``, or None (then it is not an image call)."""
    if not isinstance(tools, list | tuple):
        return None
    for tool in tools:
        if get(tool, "type") == IMAGE_TOOL_TYPE:
            return tool
    return None


def responses_request(kwargs: Mapping[str, Any]) -> Request | None:
    tool = image_tool(kwargs.get("tools"))
    if tool is None:
        return None
    mainline = as_str(kwargs.get("model"))
    image_model = as_str(get(tool, "model"))
    attrs = _shape(kwargs, tool)
    attrs[sc.IMAGE_MODEL_REQUESTED] = image_model or DEFAULT_TOOL_MODEL
    attrs[sc.IMAGE_MODEL_ASSUMED] = image_model is None
    if mainline:
        attrs[sc.MAINLINE_MODEL] = mainline
    return Request(
        model=mainline, stream=kwargs.get("stream") is True, prompt=_input_text(kwargs.get("input")), attributes=attrs
    )


def _input_text(value: Any) -> str | None:
    """The prompt of a Responses ``input``: the string itself, or the text parts of the input messages."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list | tuple):
        return None
    texts: list[str] = []
    for item in value:
        content = get(item, "content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list | tuple):
            texts.extend(t for part in content if isinstance(t := get(part, "text"), str))
    return "\n".join(texts) if texts else None


# --- response ---------------------------------------------------------------------------------------


@dataclass
class Usage:
    """Image-model tokens by class; None = not reported (never 0 for "unknown")."""

    input: int | None = None
    output: int | None = None
    text_input: int | None = None
    image_input: int | None = None
    cached_text_input: int | None = None
    cached_image_input: int | None = None
    image_output: int | None = None
    text_output: int | None = None
    cache: str = "not_applicable"

    def add(self, other: Usage) -> None:
        """Sum another usage into this one (stream with n > 1: one completed event per image)."""
        for name in _TOKEN_FIELDS:
            setattr(self, name, plus(getattr(self, name), getattr(other, name)))
        if other.cache == "reported":
            self.cache = "reported"


_TOKEN_FIELDS = tuple(f for f in Usage.__dataclass_fields__ if f != "cache")


def plus(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def image_usage(u: Any, *, cache: str) -> Usage:
    """Usage of an Images API response / completed event, or of ``tool_usage.image_gen`` (reference §2)."""
    itd, otd, ctd = get(u, "input_tokens_details"), get(u, "output_tokens_details"), get(u, "cached_tokens_details")
    output = as_int(get(u, "output_tokens"))
    image_output = as_int(get(otd, "image_tokens"))
    return Usage(
        input=as_int(get(u, "input_tokens")),
        output=output,
        text_input=as_int(get(itd, "text_tokens")),
        image_input=as_int(get(itd, "image_tokens")),
        cached_text_input=as_int(get(ctd, "cached_text_tokens")),
        cached_image_input=as_int(get(ctd, "cached_image_tokens")),
        # §2.1 / §5.3: without output_tokens_details all output is image output.
        image_output=image_output if image_output is not None else output,
        text_output=as_int(get(otd, "text_tokens")),
        cache="reported" if ctd is not None else cache,
    )


@dataclass
class Observation:
    """What came back, accumulated over a response or a stream's events."""

    store: ImageStore | None
    usage: Usage | None = None
    mainline: tuple[int | None, int | None, int | None] | None = None  # input, cached input, output
    effective: dict[str, str] = field(default_factory=dict)
    reported_model: str | None = None
    response_model: str | None = None
    images_returned: int = 0
    partials: int = 0
    images: list[StoredImage] = field(default_factory=list)
    error: ErrorInfo | None = None  # an error the response itself reports (failed tool call, stream error event)

    def add_usage(self, usage: Usage) -> None:
        if self.usage is None:
            self.usage = usage
        else:
            self.usage.add(usage)

    def echo(self, obj: Any) -> None:
        """Effective settings echoed by a response, completed event or image_generation_call item."""
        for attr, key in _EFFECTIVE:
            if value := as_str(get(obj, key)):
                self.effective[attr] = value

    def add_image(self, b64: Any, url: Any, fmt: str | None) -> None:
        self.images_returned += 1
        if isinstance(b64, str) and b64 and self.store is not None:
            self.images.append(self.store.put_b64(b64, fmt))
        elif isinstance(url, str) and url:
            self.images.append(url_pointer(url, fmt))


_EFFECTIVE = (
    (sc.IMAGE_SIZE_EFFECTIVE, "size"),
    (sc.IMAGE_QUALITY_EFFECTIVE, "quality"),
    (sc.IMAGE_FORMAT_EFFECTIVE, "output_format"),
    (sc.IMAGE_BACKGROUND_EFFECTIVE, "background"),
)


def images_response(resp: Any, obs: Observation) -> None:
    """An ``ImagesResponse``: usage, the echoed settings, ``data[]`` (reference §2.1)."""
    usage = get(resp, "usage")
    if usage is not None:
        obs.add_usage(image_usage(usage, cache="not_applicable"))
    obs.echo(resp)
    obs.reported_model = as_str(get(resp, "model"))  # gateways may echo one; OpenAI's has none
    fmt = obs.effective.get(sc.IMAGE_FORMAT_EFFECTIVE)
    for item in get(resp, "data") or ():
        obs.add_image(get(item, "b64_json"), get(item, "url"), fmt)


def responses_response(resp: Any, obs: Observation) -> None:
    """A Responses ``Response``: mainline usage, ``tool_usage.image_gen``, image_generation_call items (§2.3, §4)."""
    obs.response_model = as_str(get(resp, "model"))
    usage = get(resp, "usage")
    if usage is not None:
        obs.mainline = (
            as_int(get(usage, "input_tokens")),
            as_int(get(get(usage, "input_tokens_details"), "cached_tokens")),
            as_int(get(usage, "output_tokens")),
        )
    tool_usage = get(get(resp, "tool_usage"), "image_gen")
    if tool_usage is not None:
        obs.add_usage(image_usage(tool_usage, cache="unknown"))
    for item in get(resp, "output") or ():
        if get(item, "type") != "image_generation_call":
            continue
        obs.echo(item)
        if (error := get(item, "error")) is not None:
            obs.error = error_body_info(None, {"error": _as_mapping(error)})
        if get(item, "result"):
            obs.add_image(get(item, "result"), None, as_str(get(item, "output_format")))
    if get(resp, "status") == "failed" and obs.error is None:
        obs.error = error_body_info(None, {"error": _as_mapping(get(resp, "error"))})


def _as_mapping(error: Any) -> Mapping[str, Any]:
    if isinstance(error, Mapping):
        return error
    details = get(error, "moderation_details")
    return {
        "type": get(error, "type"),
        "code": get(error, "code"),
        "param": get(error, "param"),
        "moderation_details": {"moderation_stage": get(details, "moderation_stage")} if details is not None else None,
    }


# --- stream events ------------------------------------------------------------------------------------


def _partial(event: Any, obs: Observation) -> None:
    obs.partials += 1


def _image_completed(event: Any, obs: Observation) -> None:
    """``image_generation.completed`` / ``image_edit.completed``: one final image with its usage (§3.1)."""
    usage = get(event, "usage")
    if usage is not None:
        obs.add_usage(image_usage(usage, cache="not_applicable"))
    obs.echo(event)
    obs.reported_model = as_str(get(event, "model")) or obs.reported_model
    obs.add_image(get(event, "b64_json"), None, as_str(get(event, "output_format")))


def _response_final(event: Any, obs: Observation) -> None:
    """``response.completed`` (or failed / incomplete): the whole Response, usage and tool_usage included."""
    responses_response(get(event, "response"), obs)


def _error_event(event: Any, obs: Observation) -> None:
    obs.error = ErrorInfo(code=as_str(get(event, "code")), param=as_str(get(event, "param")), in_stream=True)


EVENT_HANDLERS: Mapping[str, Callable[[Any, Observation], None]] = {
    "image_generation.partial_image": _partial,
    "image_edit.partial_image": _partial,
    "image_generation.completed": _image_completed,
    "image_edit.completed": _image_completed,
    "response.image_generation_call.partial_image": _partial,
    "response.completed": _response_final,
    "response.failed": _response_final,
    "response.incomplete": _response_final,
    "error": _error_event,
}
