"""Read OpenAI's Costs and Usage (images) pages into rows, from exported JSON or from the admin API.

Shapes: reference §10. A page is ``{"object": "page", "data": [bucket...], "has_more", "next_page"}``;
a bucket is ``{"start_time", "end_time", "results": [...]}``; a result's ``object`` says which API it
came from (``organization.costs.result`` or ``organization.usage.images.result``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ledger.errors import UserError

COSTS_OBJECT = "organization.costs.result"
IMAGES_OBJECT = "organization.usage.images.result"
COST_KEYS = ("project_id", "line_item", "api_key_id", "user_id", "api_source")
IMAGE_KEYS = ("project_id", "user_id", "api_key_id", "model", "size", "source")

COSTS_SCHEMA: dict[str, pl.DataType] = {
    "start_time": pl.Datetime("us", "UTC"),
    "end_time": pl.Datetime("us", "UTC"),
    **dict.fromkeys(COST_KEYS, pl.String()),
    "amount": pl.Float64(),
    "currency": pl.String(),
    "quantity": pl.Float64(),
    "quantity_unit": pl.String(),
}
IMAGES_SCHEMA: dict[str, pl.DataType] = {
    "start_time": pl.Datetime("us", "UTC"),
    "end_time": pl.Datetime("us", "UTC"),
    **dict.fromkeys(IMAGE_KEYS, pl.String()),
    "images": pl.Int64(),
    "num_model_requests": pl.Int64(),
}


@dataclass
class BillRows:
    """Rows read from one or more pages, by API."""

    costs: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)

    def costs_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.costs, schema=COSTS_SCHEMA, orient="row")

    def images_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.images, schema=IMAGES_SCHEMA, orient="row")


def _utc(seconds: object, where: str) -> datetime:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise UserError(f"{where}: start_time/end_time must be Unix seconds, got {seconds!r}")
    return datetime.fromtimestamp(seconds, UTC)


def _cost_row(result: dict[str, Any], start: datetime, end: datetime, where: str) -> dict[str, Any]:
    amount = result.get("amount") or {}
    value = amount.get("value")
    if not isinstance(value, int | float):
        raise UserError(f"{where}: costs result without a numeric amount.value; is this an unmodified export?")
    currency = str(amount.get("currency") or "usd").lower()
    if currency != "usd":
        raise UserError(f"{where}: amount in {currency!r}; the Costs API bills in usd and the ledger compares USD")
    quantity = result.get("quantity")
    return {
        "start_time": start,
        "end_time": end,
        **{key: result.get(key) for key in COST_KEYS},
        "amount": float(value),
        "currency": currency,
        "quantity": float(quantity) if isinstance(quantity, int | float) else None,
        "quantity_unit": result.get("quantity_unit"),
    }


def _image_row(result: dict[str, Any], start: datetime, end: datetime, where: str) -> dict[str, Any]:
    images, requests = result.get("images"), result.get("num_model_requests")
    if not isinstance(images, int) or not isinstance(requests, int):
        raise UserError(f"{where}: images usage result needs integer images and num_model_requests")
    return {
        "start_time": start,
        "end_time": end,
        **{key: result.get(key) for key in IMAGE_KEYS},
        "images": images,
        "num_model_requests": requests,
    }


def read_pages(pages: Iterable[dict[str, Any]], origin: str) -> BillRows:
    """Rows of every bucket of every page. Results of other usage APIs are a UserError, not skipped."""
    rows = BillRows()
    for p, page in enumerate(pages, start=1):
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise UserError(f"{origin}: page {p} is not a Costs/Usage page (expected an object with a 'data' list)")
        for b, bucket in enumerate(page["data"], start=1):
            where = f"{origin}: page {p} bucket {b}"
            if not isinstance(bucket, dict) or not isinstance(bucket.get("results"), list):
                raise UserError(f"{where}: expected a bucket with a 'results' list")
            start, end = _utc(bucket.get("start_time"), where), _utc(bucket.get("end_time"), where)
            for result in bucket["results"]:
                kind = result.get("object") if isinstance(result, dict) else None
                if kind == COSTS_OBJECT:
                    rows.costs.append(_cost_row(result, start, end, where))
                elif kind == IMAGES_OBJECT:
                    rows.images.append(_image_row(result, start, end, where))
                else:
                    raise UserError(
                        f"{where}: result object {kind!r} is neither {COSTS_OBJECT} nor {IMAGES_OBJECT}; "
                        "export /v1/organization/costs or /v1/organization/usage/images"
                    )
    return rows


def _pages_in(text: str, origin: str) -> list[dict[str, Any]]:
    """A file holds one page, a JSON list of pages, or one page per line (JSON Lines)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise UserError(f"{origin}: not JSON or JSON Lines ({exc}); export the API's pages as JSON") from None
    return doc if isinstance(doc, list) else [doc]


def read_files(paths: Iterable[str | Path]) -> Iterator[tuple[str, BillRows]]:
    """(path, rows) for each exported file."""
    for path in paths:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{file}: no such file") from None
        yield str(file), read_pages(_pages_in(text, str(file)), str(file))


# --- live, through the openai SDK's admin client ------------------------------------------------------

COSTS_GROUP_BY = ["project_id", "line_item"]
IMAGES_GROUP_BY = ["project_id", "model", "size", "source"]
COSTS_PAGE_LIMIT = 180  # reference §10.2: 1..180 daily buckets per page
IMAGES_PAGE_LIMIT = 31  # reference §10.1: 1d buckets, max 31


def fetch_pages(
    client: Any,
    *,
    start_time: int,
    end_time: int,
    costs_limit: int = COSTS_PAGE_LIMIT,
    images_limit: int = IMAGES_PAGE_LIMIT,
) -> Iterator[dict[str, Any]]:
    """Every Costs page, then every images Usage page, following ``next_page`` while ``has_more``.

    ``client`` is an ``openai.OpenAI`` built with ``admin_api_key`` (``$OPENAI_ADMIN_KEY``); the methods
    are ``client.admin.organization.usage.costs`` and ``.images`` (openai 3.57).
    """
    usage = client.admin.organization.usage
    calls = (
        (usage.costs, {"group_by": COSTS_GROUP_BY, "limit": costs_limit}),
        (usage.images, {"group_by": IMAGES_GROUP_BY, "limit": images_limit, "bucket_width": "1d"}),
    )
    for method, params in calls:
        cursor: str | None = None
        while True:
            extra = {"page": cursor} if cursor else {}
            page = method(start_time=start_time, end_time=end_time, **params, **extra)
            yield page.to_dict(mode="json")
            if not page.has_more or not page.next_page:
                break
            cursor = page.next_page
