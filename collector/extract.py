"""What a call asked for (from the SDK kwargs) and what came back (response, or stream events).

Everything reads through :func:`fields` (or :func:`get` for one field), which treats typed SDK models, unknown
extra fields and plain dicts alike: the SDK parses leniently (missing "required" fields are None, unknown fields
are kept as extra attributes, reference §11), and ``tool_usage`` is read the same way whether or not this SDK
version types it (§2.3, §12.16). No model_dump, no JSON round trip: only dict reads on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, NoneType
from typing import Any, NamedTuple

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
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class _Attributes:
    """``get`` over any other object's attributes."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def get(self, key: str) -> Any:
        return getattr(self.obj, key, None)


_MAPPING, _MODEL, _OTHER = 0, 1, 2
_kinds: dict[type, int] = {}  # per type: isinstance() on pydantic models is slow (ABCMeta)


def _kind(cls: type) -> int:
    if issubclass(cls, dict):
        kind = _MAPPING
    elif issubclass(cls, pydantic.BaseModel):
        kind = _MODEL
    else:
        kind = _MAPPING if issubclass(cls, Mapping) else _OTHER
    _kinds[cls] = kind
    return kind


def fields(obj: Any) -> Mapping[str, Any]:
    """Something whose ``.get(key)`` is :func:`get` of ``obj``: read it once, then read several fields cheaply."""
    if obj is None:
        return _EMPTY
    cls = type(obj)
    kind = _kinds.get(cls)
    if kind is None:
        kind = _kind(cls)
    if kind == _MAPPING:
        return obj
    if kind == _MODEL:
        # Fields live in __dict__, unknown fields in __pydantic_extra__. Reading them directly skips pydantic's
        # __getattr__, which raises (slowly) for every absent field: most optional fields are absent.
        extra = obj.__pydantic_extra__
        return {**extra, **obj.__dict__} if extra else obj.__dict__
    return _Attributes(obj)  # type: ignore[return-value]


def get(obj: Any, key: str) -> Any:
    """``obj.key`` for SDK models (typed or extra field), ``obj[key]`` for dicts, None when absent."""
    return fields(obj).get(key)


def as_int(value: Any) -> int | None:
    if type(value) is int:  # the common case, checked first
        return value
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- request ---------------------------------------------------------------------------------------


class Request(NamedTuple):
    """The sampling-relevant part of a request plus the shape attributes recorded at span start."""

    model: str | None  # names the span: Images API model, Responses top-level model
    stream: bool
    prompt: str | None
    attributes: dict[str, Any]


_SHAPE: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    (sc.IMAGE_SIZE_REQUESTED, "size", as_str),
    (sc.IMAGE_QUALITY_REQUESTED, "quality", as_str),
    (sc.IMAGE_FORMAT_REQUESTED, "output_format", as_str),
    (sc.IMAGE_COMPRESSION_REQUESTED, "output_compression", as_int),
    (sc.IMAGE_BACKGROUND_REQUESTED, "background", as_str),
    (sc.PARTIAL_IMAGES_REQUESTED, "partial_images", as_int),
)


def _shape(stream: bool, source: Mapping[str, Any]) -> dict[str, Any]:
    """Shape attributes common to both APIs; ``source`` is the kwargs (Images) or the tool config (Responses)."""
    attrs: dict[str, Any] = {sc.IMAGE_STREAM: stream}
    for attr, key, cast in _SHAPE:
        if (value := cast(source.get(key))) is not None:
            attrs[attr] = value
    return attrs


def images_request(kwargs: Mapping[str, Any]) -> Request:
    model = as_str(kwargs.get("model"))
    stream = kwargs.get("stream") is True
    attrs = _shape(stream, kwargs)
    n = as_int(kwargs.get("n"))
    attrs[sc.IMAGE_N] = n if n is not None else 1
    if n is not None and n != 1:
        attrs[sc.GEN_AI_REQUEST_CHOICE_COUNT] = n
    if model:
        attrs[sc.IMAGE_MODEL_REQUESTED] = model
    return Request(model, stream, as_str(kwargs.get("prompt")), attrs)


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
    config = fields(tool)
    image_model = as_str(config.get("model"))
    stream = kwargs.get("stream") is True
    attrs = _shape(stream, config)
    attrs[sc.IMAGE_MODEL_REQUESTED] = image_model or DEFAULT_TOOL_MODEL
    attrs[sc.IMAGE_MODEL_ASSUMED] = image_model is None
    if mainline:
        attrs[sc.MAINLINE_MODEL] = mainline
    return Request(mainline, stream, _input_text(kwargs.get("input")), attrs)


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
    u = fields(u)
    ctd = u.get("cached_tokens_details")
    itd, otd, cached = fields(u.get("input_tokens_details")), fields(u.get("output_tokens_details")), fields(ctd)
    output = as_int(u.get("output_tokens"))
    image_output = as_int(otd.get("image_tokens"))
    return Usage(
        input=as_int(u.get("input_tokens")),
        output=output,
        text_input=as_int(itd.get("text_tokens")),
        image_input=as_int(itd.get("image_tokens")),
        cached_text_input=as_int(cached.get("cached_text_tokens")),
        cached_image_input=as_int(cached.get("cached_image_tokens")),
        # §2.1 / §5.3: without output_tokens_details all output is image output.
        image_output=image_output if image_output is not None else output,
        text_output=as_int(otd.get("text_tokens")),
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
        obj = fields(obj)
        for attr, key in _EFFECTIVE:
            if value := as_str(obj.get(key)):
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
    resp = fields(resp)
    usage = resp.get("usage")
    if usage is not None:
        obs.add_usage(image_usage(usage, cache="not_applicable"))
    obs.echo(resp)
    obs.reported_model = as_str(resp.get("model"))  # gateways may echo one; OpenAI's has none
    fmt = obs.effective.get(sc.IMAGE_FORMAT_EFFECTIVE)
    for item in resp.get("data") or ():
        item = fields(item)
        obs.add_image(item.get("b64_json"), item.get("url"), fmt)


def responses_response(resp: Any, obs: Observation) -> None:
    """A Responses ``Response``: mainline usage, ``tool_usage.image_gen``, image_generation_call items (§2.3, §4)."""
    resp = fields(resp)
    obs.response_model = as_str(resp.get("model"))
    usage = resp.get("usage")
    if usage is not None:
        usage = fields(usage)
        obs.mainline = (
            as_int(usage.get("input_tokens")),
            as_int(get(usage.get("input_tokens_details"), "cached_tokens")),
            as_int(usage.get("output_tokens")),
        )
    tool_usage = get(resp.get("tool_usage"), "image_gen")
    if tool_usage is not None:
        obs.add_usage(image_usage(tool_usage, cache="unknown"))
    for item in resp.get("output") or ():
        item = fields(item)
        if item.get("type") != "image_generation_call":
            continue
        obs.echo(item)
        if (error := item.get("error")) is not None:
            obs.error = error_body_info(None, {"error": _as_mapping(error)})
        if result := item.get("result"):
            obs.add_image(result, None, as_str(item.get("output_format")))
    if resp.get("status") == "failed" and obs.error is None:
        obs.error = error_body_info(None, {"error": _as_mapping(resp.get("error"))})


def _as_mapping(error: Any) -> Mapping[str, Any]:
    if isinstance(error, Mapping):
        return error
    error = fields(error)
    details = error.get("moderation_details")
    return {
        "type": error.get("type"),
        "code": error.get("code"),
        "param": error.get("param"),
        "moderation_details": {"moderation_stage": get(details, "moderation_stage")} if details is not None else None,
    }


# --- stream events ------------------------------------------------------------------------------------


def _partial(event: Any, obs: Observation) -> None:
    obs.partials += 1


def _image_completed(event: Any, obs: Observation) -> None:
    """``image_generation.completed`` / ``image_edit.completed``: one final image with its usage (§3.1)."""
    event = fields(event)
    usage = event.get("usage")
    if usage is not None:
        obs.add_usage(image_usage(usage, cache="not_applicable"))
    obs.echo(event)
    obs.reported_model = as_str(event.get("model")) or obs.reported_model
    obs.add_image(event.get("b64_json"), None, as_str(event.get("output_format")))


def _response_final(event: Any, obs: Observation) -> None:
    """``response.completed`` (or failed / incomplete): the whole Response, usage and tool_usage included."""
    responses_response(get(event, "response"), obs)


def _error_event(event: Any, obs: Observation) -> None:
    event = fields(event)
    obs.error = ErrorInfo(code=as_str(event.get("code")), param=as_str(event.get("param")), in_stream=True)


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
