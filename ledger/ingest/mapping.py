"""Span attributes -> ledger columns: the one table, built from ``collector.semconv`` names only.

Each ``Field`` says which ledger column (of ``calls``, ``attempts`` or ``images``) takes which attribute
(the first one present wins), where the attribute lives (the span, its resource, or the span event the
row comes from) and the column's type. A value is read by its text (OTLP/JSON ``stringValue``,
``intValue``, ``doubleValue`` or ``boolValue``) and cast to the column type; a value that does not cast
is stored as NULL, an absent one takes ``default`` (an SQL expression) or NULL.

Columns that do not come from attributes are filled by the reader itself (``ledger.ingest.reader``):
calls.call_id (spanId), trace_id, started_at / ended_at / duration_s (span times), tags (every
``imagecost.tag.*`` attribute, prefix stripped), source_file; attempts/images.call_id; attempts.started_at
(the event's time, which the collector sets to the attempt's start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from collector import semconv as sc

Table = Literal["calls", "attempts", "images"]
On = Literal["span", "resource", "event"]

# SQL names the reader provides for defaults (see ledger/ingest/reader.py).
OTEL_STATUS_CODE = "otel_status_code"  # span.status.code: 2 = ERROR
EVENT_ORDINAL = "event_ordinal"  # 0-based position among the span's events of the same name


@dataclass(frozen=True)
class Field:
    """One ledger column filled from span attributes."""

    table: Table
    column: str
    attributes: tuple[str, ...]  # first present wins
    type: str  # the ledger column's DuckDB type
    default: str | None = None  # SQL expression used when no attribute is present
    on: On = "span"


def _calls(column: str, attributes: str | tuple[str, ...], type_: str, default: str | None = None) -> Field:
    return Field("calls", column, attributes if isinstance(attributes, tuple) else (attributes,), type_, default)


def _event(table: Table, column: str, attribute: str, type_: str, default: str | None = None) -> Field:
    return Field(table, column, (attribute,), type_, default, on="event")


V, INT, BI, D, B, TS = "varchar", "integer", "bigint", "double", "boolean", "timestamptz"

MAPPING: tuple[Field, ...] = (
    # --- calls: who, where, which model --------------------------------------------------------------
    Field("calls", "service_name", (sc.SERVICE_NAME,), V, on="resource"),
    _calls("route", sc.ROUTE, V),
    _calls("route_owner", sc.ROUTE_OWNER, V),
    _calls("server_address", sc.SERVER_ADDRESS, V),
    _calls("server_port", sc.SERVER_PORT, INT),
    _calls("requested_model", (sc.IMAGE_MODEL_REQUESTED, sc.GEN_AI_REQUEST_MODEL), V),
    _calls("requested_model_assumed", sc.IMAGE_MODEL_ASSUMED, B),
    _calls("reported_model", sc.IMAGE_MODEL_REPORTED, V),
    _calls("mainline_model", sc.MAINLINE_MODEL, V),
    _calls("mainline_reported_model", sc.GEN_AI_RESPONSE_MODEL, V),  # the collector sets it on responses only
    _calls("service_tier", sc.SERVICE_TIER, V, "'standard'"),
    _calls("prompt_hash", sc.PROMPT_HASH, V),
    _calls("prompt_length", sc.PROMPT_LENGTH, INT),
    _calls("prompt_text", sc.PROMPT_TEXT, V),
    # --- calls: request shape ------------------------------------------------------------------------
    _calls("n", (sc.IMAGE_N, sc.GEN_AI_REQUEST_CHOICE_COUNT), INT),
    _calls("size_requested", sc.IMAGE_SIZE_REQUESTED, V),
    _calls("size_effective", sc.IMAGE_SIZE_EFFECTIVE, V),
    _calls("quality_requested", sc.IMAGE_QUALITY_REQUESTED, V),
    _calls("quality_effective", sc.IMAGE_QUALITY_EFFECTIVE, V),
    _calls("output_format_requested", sc.IMAGE_FORMAT_REQUESTED, V),
    _calls("output_format_effective", sc.IMAGE_FORMAT_EFFECTIVE, V),
    _calls("output_compression", sc.IMAGE_COMPRESSION_REQUESTED, INT),
    _calls("background_requested", sc.IMAGE_BACKGROUND_REQUESTED, V),
    _calls("background_effective", sc.IMAGE_BACKGROUND_EFFECTIVE, V),
    _calls("stream", (sc.IMAGE_STREAM, sc.GEN_AI_REQUEST_STREAM), B, "false"),
    _calls("partial_images_requested", sc.PARTIAL_IMAGES_REQUESTED, INT),
    _calls("partial_images_received", sc.PARTIAL_IMAGES_RECEIVED, INT),
    _calls("input_image_count", sc.INPUT_IMAGE_COUNT, INT),
    _calls("mask", sc.IMAGE_MASK, B),
    _calls("images_returned", sc.IMAGES_RETURNED, INT),
    # --- calls: usage (reported counts; null = not reported) --------------------------------------------
    _calls("text_input_tokens", sc.USAGE_TEXT_INPUT_TOKENS, BI),
    _calls("image_input_tokens", sc.USAGE_IMAGE_INPUT_TOKENS, BI),
    _calls("cached_text_input_tokens", sc.USAGE_CACHED_TEXT_INPUT_TOKENS, BI),
    _calls("cached_image_input_tokens", sc.USAGE_CACHED_IMAGE_INPUT_TOKENS, BI),
    _calls("image_output_tokens", sc.USAGE_IMAGE_OUTPUT_TOKENS, BI),
    _calls("text_output_tokens", sc.USAGE_TEXT_OUTPUT_TOKENS, BI),
    _calls("input_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS, BI),
    _calls("output_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS, BI),
    _calls("mainline_input_tokens", sc.MAINLINE_INPUT_TOKENS, BI),
    _calls("mainline_cached_input_tokens", sc.MAINLINE_CACHED_INPUT_TOKENS, BI),
    _calls("mainline_output_tokens", sc.MAINLINE_OUTPUT_TOKENS, BI),
    _calls("usage_source", sc.USAGE_SOURCE, V, "'missing'"),
    _calls("cache_status", sc.USAGE_CACHE, V),
    # --- calls: outcome ------------------------------------------------------------------------------
    _calls("status", sc.STATUS, V, f"case when {OTEL_STATUS_CODE} = '2' then 'error' else 'ok' end"),
    _calls("error_type", sc.ERROR_TYPE, V),
    _calls("error_code", sc.ERROR_CODE, V),
    _calls("moderation_stage", sc.MODERATION_STAGE, V),
    _calls("retry_reason", sc.RETRY_REASON, V),
    _calls("attempt_count", sc.ATTEMPT_COUNT, INT, "1"),
    _calls("request_id", sc.REQUEST_ID, V),
    # --- attempts: one per imagecost.attempt event -----------------------------------------------------
    _event("attempts", "attempt_number", sc.ATTEMPT_NUMBER, INT, EVENT_ORDINAL),
    _event("attempts", "duration_s", sc.ATTEMPT_DURATION, D),
    _event("attempts", "status_code", sc.ATTEMPT_STATUS_CODE, INT),
    _event("attempts", "error_type", sc.ATTEMPT_ERROR_TYPE, V),
    _event("attempts", "error_code", sc.ATTEMPT_ERROR_CODE, V),
    _event("attempts", "retry_reason", sc.ATTEMPT_RETRY_REASON, V),
    _event("attempts", "request_id", sc.ATTEMPT_REQUEST_ID, V),
    _event("attempts", "retry_after_s", sc.ATTEMPT_RETRY_AFTER, D),
    # --- images: one per imagecost.image event (a pointer, never the bytes) -------------------------------
    _event("images", "image_index", sc.IMAGE_INDEX, INT, EVENT_ORDINAL),
    _event("images", "uri", sc.IMAGE_URI, V),
    _event("images", "sha256", sc.IMAGE_SHA256, V),
    _event("images", "bytes", sc.IMAGE_BYTES, BI),
    _event("images", "format", sc.IMAGE_FORMAT, V),
    _event("images", "public_url", sc.IMAGE_PUBLIC_URL, V),
    _event("images", "delete_after", sc.IMAGE_DELETE_AFTER, TS),  # ISO 8601 UTC text
)

# A kept span without these cannot be a call row (calls.route / route_owner are not null): its line is rejected.
REQUIRED_CALL_ATTRIBUTES = (sc.ROUTE, sc.ROUTE_OWNER)


def fields(table: Table) -> tuple[Field, ...]:
    """The fields of one ledger table, in table order."""
    return tuple(field for field in MAPPING if field.table == table)


def sql_string(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def attributes(on: On) -> tuple[str, ...]:
    """Every attribute some field reads from ``on`` (span, resource or event), each once, in mapping order."""
    return tuple(dict.fromkeys(a for field in MAPPING if field.on == on for a in field.attributes))


def lookup(keys: str, values: str, attribute: str) -> str:
    """SQL: the text of ``attribute`` from parallel key/value lists (NULL when absent)."""
    return f"{values}[list_position({keys}, {sql_string(attribute)})]"


def column_sql(field: Field, value: Callable[[str], str]) -> str:
    """SQL for one field: first present attribute, cast to the column type, else the default.

    ``value(attribute)``: SQL for the attribute's text, NULL when absent (e.g. ``lookup`` or a precomputed position).
    """
    found = [f"try_cast({value(attribute)} as {field.type})" for attribute in field.attributes]
    if field.default is not None:
        found.append(f"({field.default})::{field.type}")
    result = found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"
    return f"{result} as {field.column}"
