"""What a route handler hands back to the app: a JSON body or a list of SSE events, plus the served record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from simulator.tokens import NO_USAGE_RECORD

# Where an SSE event sits relative to the partial images: a `stream_error` fault sends everything up to the
# last "partial" event, then the error instead of the "after" events.
Phase = Literal["before", "partial", "after"]

# Every served record has exactly these keys (None = not applicable / not known). Never base64 or prompts.
RECORD_DEFAULTS: dict[str, Any] = {
    "time": None,  # datetime, UTC, when the request arrived
    "created": None,  # unix seconds, as in the response's `created`
    "route": None,  # images.generate | images.edit | responses
    "route_owner": None,  # "openai" or the gateway name
    "request_id": None,
    "retry_count": 0,  # the SDK's x-stainless-retry-count
    "project_id": None,  # the request's OpenAI-Project header (the admin endpoints bill per project)
    "status_code": None,  # None = no HTTP response was delivered (disconnect fault, client hung up)
    "fault": None,  # the fault spec applied to this attempt, e.g. "rate_limit:2"
    "error_code": None,
    "stream": False,
    "requested_model": None,  # image model as requested (Responses: the tool model, default filled in)
    "reported_model": None,  # model the response reported (gateway Images responses), else None
    "billed_model": None,  # model whose tokens these are (gateway: the model_map target)
    "mainline_model": None,  # Responses only
    "n": None,
    "size": None,  # effective
    "quality": None,  # effective
    "output_format": None,
    "background": None,
    "partial_images_requested": 0,
    "partial_images_sent": 0,
    "input_images": 0,
    "images_returned": 0,
    "usage_reported": False,  # False: usage was omitted (missing_usage) or never sent (error, stream_error)
    **NO_USAGE_RECORD,  # image-model tokens (Responses: tool_usage.image_gen); None when nothing was generated
    "mainline_input_tokens": None,
    "mainline_output_tokens": None,
}


@dataclass(frozen=True)
class Event:
    """One server-sent event; `data["type"]` is what the SDK dispatches on."""

    data: dict[str, Any]
    phase: Phase = "after"

    def encode(self) -> bytes:
        return f"event: {self.data['type']}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


@dataclass
class Reply:
    """A successful answer, not yet sent: `body` (JSON) or `events` (SSE), and what to record about it."""

    record: dict[str, Any]
    output_tokens: int  # image output tokens, drives the latency model
    body: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)

    @property
    def streamed(self) -> bool:
        return self.body is None
