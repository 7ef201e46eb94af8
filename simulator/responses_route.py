"""`POST /v1/responses` with the `image_generation` tool: one image_generation_call per response.

Body and event order: reference §2.3/§3.3 and stack-notes §3.1. Token rules (documented in simulator.tokens):
- `usage` (mainline model): input = ceil(len(input text) / 4), cached 0; output = 30 (the tool call it writes).
- `tool_usage.image_gen` (image model): text input = ceil(len(input text) / 4), image input 0 (input images in
  Responses are not modelled), output = output_tokens(tool model, size, quality) + 100 × partial images sent.
The tool model defaults to the estimator's `default_tool_model()` (gpt-image-2.6-sunburst).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ledger.errors import UserError
from ledger.estimator import PARTIAL_IMAGE_TOKENS, default_tool_model, model_facts, output_tokens
from simulator import params
from simulator.config import SimConfig
from simulator.pictures import image_b64
from simulator.reply import Event, Reply
from simulator.tokens import ImageUsage, text_tokens

MAINLINE_OUTPUT_TOKENS = 30
IMAGE_TOOL = "image_generation"
FINAL_IMAGE_INDEX = 100  # picture index of the result (partials use 0..K-1)


@dataclass(frozen=True)
class ResponsesRequest:
    mainline_model: str
    text: str  # all input text, joined; also the image prompt
    tools: list[dict[str, Any]]
    tool: dict[str, Any]  # the image_generation tool as sent ({} when absent)
    stream: bool
    raw: dict[str, Any]

    @property
    def prompt(self) -> str:
        return self.text

    @property
    def model(self) -> str:
        """The image model (named in fault messages and the served record)."""
        return self.tool_model

    @property
    def tool_model(self) -> str:
        return params.get_str(self.tool, "model", default_tool_model())


async def parse_responses(request: Request) -> ResponsesRequest:
    raw = await params.read_json(request)
    tools = raw.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise params.bad("tools", "Invalid type for 'tools': expected an array of objects.", "invalid_type")
    tool = next((t for t in tools if t.get("type") == IMAGE_TOOL), {})
    return ResponsesRequest(
        mainline_model=params.get_str(raw, "model", ""),
        text=input_text(raw.get("input")),
        tools=tools,
        tool=tool,
        stream=params.get_bool(raw, "stream"),
        raw=raw,
    )


def input_text(value: Any) -> str:
    """The text of `input`: a string, or a list of messages whose content is a string or a list of parts."""
    if isinstance(value, str):
        return value
    texts: list[str] = []
    for item in value if isinstance(value, list) else []:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            texts.append(content)
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "\n".join(texts)


@dataclass(frozen=True)
class ToolSettings:
    """The image tool's effective settings after validation and `auto` resolution."""

    tool_model: str  # as requested, default filled in
    billed_model: str  # the model that runs (gateway: the model_map target)
    size: str
    quality: str
    output_format: str
    background: str
    partials: int  # partial images to send (0 unless streaming)

    def echo(self) -> dict[str, str]:
        quality, size = self.quality, self.size
        return {"background": self.background, "output_format": self.output_format, "quality": quality, "size": size}


def check(req: ResponsesRequest, config: SimConfig) -> ToolSettings:
    """Validate `req` like the real API; ApiError names the bad parameter."""
    billed = config.provider_model(req.tool_model)
    if not req.mainline_model:
        raise params.bad("model", "Missing required parameter: 'model'.", None)
    if _is_image_model(req.mainline_model):  # reference §1: gpt-image-2 is not a top-level Responses model
        message = f"{req.mainline_model} cannot be the top-level Responses model; put it in tools[].model."
        raise params.bad("model", message, "unsupported_model")
    if not req.tool:
        raise params.bad("tools", "The simulator serves only responses with an image_generation tool.", None)
    if not req.text:
        raise params.bad("input", "Missing required parameter: 'input'.", None)
    params.check_model(billed)
    output_format = params.get_str(req.tool, "output_format", "png")
    partials = params.get_int(req.tool, "partial_images", 0)
    return ToolSettings(
        tool_model=req.tool_model,
        billed_model=billed,
        size=params.effective_size(billed, params.get_str(req.tool, "size", params.AUTO)),
        quality=params.effective_quality(billed, params.get_str(req.tool, "quality", params.AUTO)),
        output_format=output_format,
        background=params.effective_background(params.get_str(req.tool, "background", params.AUTO), output_format),
        partials=params.check_range("partial_images", partials, 0, params.MAX_PARTIAL_IMAGES) if req.stream else 0,
    )


def _is_image_model(model: str) -> bool:
    try:
        model_facts(model)
    except UserError:
        return False
    return True


def build_responses_reply(req: ResponsesRequest, config: SimConfig, *, with_usage: bool) -> Reply:
    """Validate `req` (ApiError on failure) and build the Response body or its event stream."""
    s = check(req, config)
    text_in = text_tokens(req.text)
    image_out = output_tokens(s.billed_model, s.size, s.quality) + PARTIAL_IMAGE_TOKENS * s.partials
    usage = ImageUsage(text_in, 0, image_out)
    item = {
        "id": f"ig_{secrets.token_hex(16)}",
        "type": "image_generation_call",
        "status": "completed",
        "result": _picture(req, config, s, FINAL_IMAGE_INDEX),
        "action": "generate",
        **s.echo(),
        "revised_prompt": req.text,
    }
    response = _response(req, s, item, usage if with_usage else None)
    record = {
        "route": "responses",
        "created": response["created_at"],
        "stream": req.stream,
        "requested_model": s.tool_model,
        "billed_model": s.billed_model,
        "mainline_model": req.mainline_model,
        "n": 1,
        **s.echo(),
        "partial_images_requested": s.partials,
        "images_returned": 1,
        "usage_reported": with_usage,
        **usage.record(),
        "mainline_input_tokens": text_in,
        "mainline_output_tokens": MAINLINE_OUTPUT_TOKENS,
    }
    reply = Reply(record=record, output_tokens=usage.image_output)
    if req.stream:
        reply.events = _stream_events(response, item, [_picture(req, config, s, i) for i in range(s.partials)])
    else:
        reply.body = response
    return reply


def _response(req: ResponsesRequest, s: ToolSettings, item: dict[str, Any], usage: ImageUsage | None) -> dict:
    """The completed Response object (stack-notes §3.1); `usage` None leaves out usage and tool_usage."""
    created = int(time.time())
    text_in = text_tokens(req.text)
    response: dict[str, Any] = {
        "id": f"resp_{secrets.token_hex(16)}",
        "object": "response",
        "created_at": created,
        "completed_at": created,
        "status": "completed",
        "model": req.mainline_model,
        "error": None,
        "incomplete_details": None,
        "instructions": req.raw.get("instructions"),
        "metadata": req.raw.get("metadata") or {},
        "parallel_tool_calls": True,
        "tool_choice": req.raw.get("tool_choice", "auto"),
        "temperature": 1.0,
        "top_p": 1.0,
        "tools": [{**t, "model": s.tool_model} if t is req.tool else t for t in req.tools],
        "output": [item],
        "usage": None,
    }
    if usage is not None:
        response["usage"] = {
            "input_tokens": text_in,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": MAINLINE_OUTPUT_TOKENS,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": text_in + MAINLINE_OUTPUT_TOKENS,
        }
        response["tool_usage"] = {"image_gen": usage.images_api(), "web_search": {"num_requests": 0}}
    return response


def _stream_events(response: dict[str, Any], item: dict[str, Any], partials: list[str]) -> list[Event]:
    """Reference §3.3 order: created, in_progress, output_item.added, call in_progress, generating,
    partial_image × K, call completed, output_item.done, completed (the only event with usage)."""
    pending = {**response, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    pending.pop("tool_usage", None)
    added = {"id": item["id"], "type": item["type"], "status": "in_progress", "result": None}
    ref = {"item_id": item["id"], "output_index": 0}
    settings = {key: item[key] for key in ("background", "output_format", "quality", "size")}
    call = "response.image_generation_call"
    events = [
        Event({"type": "response.created", "response": pending}, "before"),
        Event({"type": "response.in_progress", "response": pending}, "before"),
        Event({"type": "response.output_item.added", "output_index": 0, "item": added}, "before"),
        Event({"type": f"{call}.in_progress", **ref}, "before"),
        Event({"type": f"{call}.generating", **ref}, "before"),
        *(
            Event(
                {
                    "type": f"{call}.partial_image",
                    **ref,
                    "partial_image_index": i,
                    "partial_image_b64": b64,
                    **settings,
                },
                "partial",
            )
            for i, b64 in enumerate(partials)
        ),
        Event({"type": f"{call}.completed", **ref}),
        Event({"type": "response.output_item.done", "output_index": 0, "item": item}),
        Event({"type": "response.completed", "response": response}),
    ]
    return [Event({**e.data, "sequence_number": seq}, e.phase) for seq, e in enumerate(events)]


def _picture(req: ResponsesRequest, config: SimConfig, s: ToolSettings, index: int) -> str:
    transparent = s.background == "transparent"
    return image_b64(
        seed=config.seed, prompt=req.text, index=index, output_format=s.output_format, transparent=transparent
    )
