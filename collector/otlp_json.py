"""OTLP/JSON lines: the format of the spool and of the OpenTelemetry Collector's ``file`` exporter.

One line = one ``ExportTraceServiceRequest`` in the OTLP/JSON encoding
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding), which is protobuf's canonical
JSON mapping with three project-wide deviations the spec mandates:

* ``traceId`` / ``spanId`` / ``parentSpanId`` (spans and links) are lowercase **hex** strings, not base64;
* enum values are **integers** (``"kind": 3``, ``"code": 2``), not names;
* keys are lowerCamelCase.

Everything else is protobuf's mapping: 64-bit integers (``startTimeUnixNano``, ``intValue``) are decimal
strings, fields at their default value are omitted, ``bytesValue`` stays base64.

``encode_request_json_line`` is used by the spool exporter and by the OTLP/HTTP receiver, so both write
byte-for-byte the same kind of line; ``decode_request_json_line`` is its inverse (tests, tools).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# Fields holding trace/span ids, on spans and on span links (OTLP/JSON: hex, not base64).
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def encode_request_json_line(request: ExportTraceServiceRequest) -> bytes:
    """Encode one request as one OTLP/JSON line: compact UTF-8 JSON ending with ``b"\\n"``.

    The line never contains another newline (JSON escapes them inside strings), so a reader can split a
    file on ``b"\\n"`` and a line without its final newline is known to be incomplete.
    """
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    _convert_ids(document, _base64_to_hex)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode_request_json_line(line: bytes | str) -> ExportTraceServiceRequest:
    """Parse one OTLP/JSON line (hex ids) back into an ``ExportTraceServiceRequest``.

    Raises ``ValueError`` (``json.JSONDecodeError`` or protobuf's ``ParseError``) when the line is not one.
    """
    document = json.loads(line)
    if not isinstance(document, dict):
        raise ValueError("an OTLP/JSON line must be a JSON object with resourceSpans")
    _convert_ids(document, _hex_to_base64)
    request = ExportTraceServiceRequest()
    json_format.ParseDict(document, request, ignore_unknown_fields=True)
    return request


def _base64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_to_base64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _convert_ids(document: dict[str, Any], convert: Callable[[str], str]) -> None:
    for resource_spans in document.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                _convert_fields(span, convert)
                for link in span.get("links", ()):
                    _convert_fields(link, convert)


def _convert_fields(obj: dict[str, Any], convert: Callable[[str], str]) -> None:
    for field in _ID_FIELDS:
        value = obj.get(field)
        if isinstance(value, str) and value:
            obj[field] = convert(value)
