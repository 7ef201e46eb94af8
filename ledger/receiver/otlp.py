"""OTLP/HTTP trace payloads: body -> ``ExportTraceServiceRequest``, and the answers back.

Follows the OTLP/HTTP spec (https://opentelemetry.io/docs/specs/otlp/#otlphttp): binary protobuf
(``application/x-protobuf``) or OTLP/JSON (``application/json``, trace/span ids as hex strings), optionally
``Content-Encoding: gzip`` (or ``deflate``). A response uses the request's encoding; errors carry a
``google.rpc.Status`` body. Every failure here is a :class:`Rejection` with an HTTP status and a reason.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

# Content-Encoding -> zlib wbits (None = no compression). HTTP "deflate" is zlib-wrapped (RFC 9110 §8.4.1.2).
ENCODINGS: dict[str, int | None] = {"identity": None, "gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

# HTTP status -> google.rpc.Code carried in the Status body.
RPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 413: 8, 415: 3, 429: 8, 503: 14}


class Rejection(Exception):
    """The request is refused as a whole: nothing is written, the client gets ``status`` and ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Decoded:
    """A decoded request after validation: the spans to keep, and what was dropped and why."""

    request: ExportTraceServiceRequest
    accepted_spans: int
    rejected_spans: int
    rejection_reasons: str  # "" when nothing was rejected


def media_type(content_type: str | None) -> str | None:
    """``application/json; charset=utf-8`` -> ``application/json``; the supported type, else None."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind if kind in (PROTOBUF, JSON) else None


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding``, refusing (413) as soon as the output passes ``limit`` bytes (gzip bombs)."""
    coding = (content_encoding or "identity").strip().lower() or "identity"
    if coding not in ENCODINGS:
        raise Rejection(415, f"unsupported Content-Encoding {coding!r}; send gzip, deflate or identity")
    wbits = ENCODINGS[coding]
    data = body if wbits is None else _inflate(body, wbits, limit, coding)
    if len(data) > limit:
        raise Rejection(413, f"decompressed body is larger than the limit of {limit} bytes")
    return data


def _inflate(body: bytes, wbits: int, limit: int, coding: str) -> bytes:
    out = bytearray()
    pending = body
    if not pending:
        raise Rejection(400, f"empty body with Content-Encoding {coding}")
    try:
        while pending:  # gzip allows several members back to back
            inflater = zlib.decompressobj(wbits)
            while pending and not inflater.eof:
                out += inflater.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    raise Rejection(413, f"decompressed body is larger than the limit of {limit} bytes")
                if inflater.unconsumed_tail == pending:  # no progress: input is exhausted
                    break
                pending = inflater.unconsumed_tail
            if not inflater.eof:
                out += inflater.flush(limit + 1 - len(out))
                if len(out) > limit:
                    raise Rejection(413, f"decompressed body is larger than the limit of {limit} bytes")
            if not inflater.eof:
                raise Rejection(400, f"truncated {coding} body")
            pending = inflater.unused_data
            if pending and coding != "gzip":
                raise Rejection(400, f"trailing bytes after the {coding} stream")
    except zlib.error as exc:
        raise Rejection(400, f"invalid {coding} body: {exc}") from None
    return bytes(out)


def parse(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """Parse an uncompressed body of media type ``kind``; 400 with the parser's reason when it is malformed."""
    request = ExportTraceServiceRequest()
    try:
        if kind == PROTOBUF:
            request.ParseFromString(body)
        else:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise Rejection(400, "OTLP/JSON body must be a JSON object with resourceSpans")
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError) as exc:
        # ValueError covers json.JSONDecodeError and UnicodeDecodeError.
        what = "protobuf" if kind == PROTOBUF else "OTLP/JSON"
        raise Rejection(400, f"malformed {what} ExportTraceServiceRequest: {_short(exc)}") from None
    return request


# OTLP/JSON writes ids as hex (spec: "JSON Protobuf Encoding"); protobuf's JSON mapping expects base64.
_ID_KEYS = ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id")


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    for resource in _items(document, "resourceSpans", "resource_spans"):
        for scope in _items(resource, "scopeSpans", "scope_spans"):
            for span in _items(scope, "spans"):
                _fix_ids(span)
                for link in _items(span, "links"):
                    _fix_ids(link)


def _items(parent: object, *keys: str) -> list[Any]:
    if not isinstance(parent, dict):
        return []
    for key in keys:
        value = parent.get(key)
        if isinstance(value, list):
            return value
    return []


def _fix_ids(obj: object) -> None:
    if not isinstance(obj, dict):
        return
    for key in _ID_KEYS:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raw = b""  # not hex: the span fails validation and is counted as rejected
            obj[key] = base64.b64encode(raw).decode("ascii")


def span_count(request: ExportTraceServiceRequest) -> int:
    """Spans in the request, over every resource and scope."""
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def _span_problem(span: Span) -> str | None:
    """Why a span cannot be stored (it could never be joined or deduplicated), or None."""
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return "trace_id is not 16 non-zero bytes"
    if len(span.span_id) != 8 or not any(span.span_id):
        return "span_id is not 8 non-zero bytes"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "parent_span_id is not 8 bytes"
    if span.start_time_unix_nano == 0:
        return "start_time_unix_nano is missing"
    if span.end_time_unix_nano < span.start_time_unix_nano:
        return "end_time_unix_nano is before start_time_unix_nano"
    return None


def drop_malformed(request: ExportTraceServiceRequest) -> Decoded:
    """Remove the spans that fail :func:`_span_problem` (in place) and empty groups; count what went."""
    reasons: Counter[str] = Counter()
    kept = 0
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for index in reversed(range(len(scope.spans))):
                problem = _span_problem(scope.spans[index])
                if problem is None:
                    kept += 1
                else:
                    reasons[problem] += 1
                    del scope.spans[index]
        for index in reversed(range(len(resource.scope_spans))):
            if not resource.scope_spans[index].spans:
                del resource.scope_spans[index]
    for index in reversed(range(len(request.resource_spans))):
        if not request.resource_spans[index].scope_spans:
            del request.resource_spans[index]
    summary = "; ".join(f"{count} span(s): {problem}" for problem, count in sorted(reasons.items()))
    return Decoded(request, kept, sum(reasons.values()), summary)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --- answers ---------------------------------------------------------------------------------
def _status_class() -> type[Message]:
    """``google.rpc.Status`` (code, message) built from a descriptor: googleapis-common-protos is not a
    runtime dependency, and the wire format of these two fields is all a client reads."""
    file = descriptor_pb2.FileDescriptorProto(name="imagecost_rpc_status.proto", package="google.rpc", syntax="proto3")
    message = file.message_type.add(name="Status")
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    message.field.add(name="code", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32, label=optional)
    message.field.add(name="message", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING, label=optional)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


Status = _status_class()


def encode(message: Message, kind: str) -> bytes:
    """Serialize a response message in the request's encoding."""
    if kind == PROTOBUF:
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def success_body(decoded: Decoded, kind: str) -> bytes:
    """``ExportTraceServiceResponse``; ``partial_success`` only when spans were rejected (spec: unset on success)."""
    response = ExportTraceServiceResponse()
    if decoded.rejected_spans:
        response.partial_success.rejected_spans = decoded.rejected_spans
        response.partial_success.error_message = decoded.rejection_reasons
    return encode(response, kind)


def error_body(status: int, reason: str, kind: str) -> bytes:
    """A ``google.rpc.Status`` with ``reason`` as its message."""
    return encode(Status(code=RPC_CODES.get(status, 2), message=reason), kind)
