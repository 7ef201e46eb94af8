"""`POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart): parse, validate, build the answer.

Body shapes: reference §2.1 (non-stream) and §2.2/§3.1 (stream). Streams with n > 1 (order undocumented, §12 item 11):
the K partial events once, then one completed event per image. The first completed event carries the call's input
tokens, the first image's output tokens and the 100 × K partial-image tokens; each later one only its own image's
output tokens. So the usages of all completed events add up to the call's usage (what a non-stream call reports,
plus the partials).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from ledger.estimator import PARTIAL_IMAGE_TOKENS, output_tokens
from simulator import params
from simulator.config import SimConfig
from simulator.pictures import image_b64, pixel_size
from simulator.reply import Event, Reply
from simulator.tokens import ImageUsage, image_input_tokens, text_tokens

MAX_INPUT_IMAGES = 16
FINAL_IMAGE_INDEX = 100  # picture index offset of final images (partials use 0..K-1)


@dataclass(frozen=True)
class ImageRequest:
    """The fields of one Images API request, typed but not yet checked against the model."""

    route: str  # images.generate | images.edit
    event_prefix: str  # image_generation | image_edit
    model: str
    prompt: str
    n: int
    size: str
    quality: str
    output_format: str
    background: str
    stream: bool
    partial_images: int
    input_sizes: tuple[tuple[int, int], ...] = ()  # (width, height) of each uploaded image
    has_mask: bool = False
    input_fidelity: str | None = None

    @classmethod
    def from_fields(cls, route: str, prefix: str, raw: dict[str, Any], **extra: Any) -> ImageRequest:
        return cls(
            route=route,
            event_prefix=prefix,
            model=params.get_str(raw, "model", ""),
            prompt=params.get_str(raw, "prompt", ""),
            n=params.get_int(raw, "n", 1),
            size=params.get_str(raw, "size", params.AUTO),
            quality=params.get_str(raw, "quality", params.AUTO),
            output_format=params.get_str(raw, "output_format", "png"),
            background=params.get_str(raw, "background", params.AUTO),
            stream=params.get_bool(raw, "stream"),
            partial_images=params.get_int(raw, "partial_images", 0),
            input_fidelity=params.get_str(raw, "input_fidelity", "") or None,
            **extra,
        )


async def parse_generation(request: Request) -> ImageRequest:
    raw = await params.read_json(request)
    return ImageRequest.from_fields("images.generate", "image_generation", raw)


async def parse_edit(request: Request) -> ImageRequest:
    """Multipart: `image` or `image[]` (1-16 files), optional `mask`, the other fields as strings."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise params.bad("image", "The simulator accepts image edits as multipart/form-data only.", None)
    async with request.form(max_files=64) as form:
        uploads = [f for key in ("image", "image[]") for f in form.getlist(key) if isinstance(f, UploadFile)]
        sizes = []
        for upload in uploads:
            try:
                sizes.append(pixel_size(await upload.read()))
            except ValueError:
                message = f"Invalid image file {upload.filename!r}: the simulator could not read it (png, jpeg, webp)."
                raise params.bad("image", message, "invalid_image_format") from None
        fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        return ImageRequest.from_fields(
            "images.edit", "image_edit", fields, input_sizes=tuple(sizes), has_mask=form.get("mask") is not None
        )


@dataclass(frozen=True)
class Settings:
    """What the call will actually do, after validation and `auto` resolution."""

    billed_model: str  # the model that runs (gateway: the model_map target)
    size: str
    quality: str
    background: str
    n: int
    partials: int  # partial images to send (0 unless streaming)

    def echo(self, output_format: str) -> dict[str, str]:
        """The effective settings every response echoes (§2.1)."""
        return {
            "background": self.background,
            "output_format": output_format,
            "quality": self.quality,
            "size": self.size,
        }


def check(req: ImageRequest, config: SimConfig) -> Settings:
    """Validate `req` like the real API; ApiError names the bad parameter."""
    billed = config.provider_model(req.model)
    params.check_model(billed)
    if not req.prompt:
        raise params.bad("prompt", "Missing required parameter: 'prompt'.", None)
    if req.route == "images.edit" and not 1 <= len(req.input_sizes) <= MAX_INPUT_IMAGES:
        raise params.bad("image", f"Send between 1 and {MAX_INPUT_IMAGES} images (got {len(req.input_sizes)}).")
    params.check_input_fidelity(billed, req.input_fidelity)
    partials = params.check_range("partial_images", req.partial_images, 0, params.MAX_PARTIAL_IMAGES)
    return Settings(
        billed_model=billed,
        size=params.effective_size(billed, req.size),
        quality=params.effective_quality(billed, req.quality),
        background=params.effective_background(req.background, req.output_format),
        n=params.check_range("n", req.n, 1, params.MAX_N),
        partials=partials if req.stream else 0,
    )


def build_image_reply(req: ImageRequest, config: SimConfig, *, with_usage: bool) -> Reply:
    """Validate `req` (ApiError on failure) and build the JSON body or the SSE events."""
    s = check(req, config)
    per_image = output_tokens(s.billed_model, s.size, s.quality)
    image_in = sum(image_input_tokens(s.billed_model, w, h, req.input_fidelity) for w, h in req.input_sizes)
    usage = ImageUsage(text_tokens(req.prompt), image_in, s.n * per_image + PARTIAL_IMAGE_TOKENS * s.partials)
    created = int(time.time())
    effective = s.echo(req.output_format)
    record = {
        "route": req.route,
        "created": created,
        "stream": req.stream,
        "requested_model": req.model,
        "reported_model": s.billed_model if config.is_gateway else None,
        "billed_model": s.billed_model,
        "n": s.n,
        **effective,
        "partial_images_requested": s.partials,
        "input_images": len(req.input_sizes),
        "images_returned": s.n,
        "usage_reported": with_usage,
        **usage.record(),
    }
    reply = Reply(record=record, output_tokens=usage.image_output)
    extra = {"model": s.billed_model} if config.is_gateway else {}  # a gateway reports the model it ran
    pictures = [_picture(req, config, s, FINAL_IMAGE_INDEX + i) for i in range(s.n)]
    if not req.stream:
        body = {"created": created, "data": [{"b64_json": b64} for b64 in pictures], **effective, **extra}
        reply.body = {**body, "usage": usage.images_api()} if with_usage else body
        return reply
    # Partial events carry the requested settings, completed events the generated ones (§3.1).
    requested = {"background": req.background, "output_format": req.output_format, "quality": req.quality}
    for i in range(s.partials):
        data = {"type": f"{req.event_prefix}.partial_image", "b64_json": _picture(req, config, s, i)}
        data |= {"partial_image_index": i, **requested, "size": req.size, "created_at": created}
        reply.events.append(Event(data, "partial"))
    for i, picture in enumerate(pictures):
        data = {
            "type": f"{req.event_prefix}.completed",
            "b64_json": picture,
            **effective,
            "created_at": created,
            **extra,
        }
        if with_usage:
            data["usage"] = _completed_share(usage, per_image, s.n, i).stream_completed()
        reply.events.append(Event(data))
    return reply


def _completed_share(usage: ImageUsage, per_image: int, n: int, index: int) -> ImageUsage:
    """The usage of completed event `index` of n; together they add up to `usage` (see the module docstring)."""
    if index == 0:
        return ImageUsage(usage.text_input, usage.image_input, usage.image_output - (n - 1) * per_image)
    return ImageUsage(0, 0, per_image)


def _picture(req: ImageRequest, config: SimConfig, s: Settings, index: int) -> str:
    transparent = s.background == "transparent"
    return image_b64(
        seed=config.seed, prompt=req.prompt, index=index, output_format=req.output_format, transparent=transparent
    )
