"""The simulator's bill: OpenAI's Costs and Usage (images) pages computed from served records.

Pure functions over served-record dicts (``simulator.reply.RECORD_DEFAULTS``); ``simulator.admin`` serves
them over HTTP. Billing rules:
- every served record that carries image-model (or mainline) tokens was generated and is billed, whatever
  status the client saw (a 5xx or a timeout after the work was done is billed too: that is what the SDK's
  retries cost, reference §9); one line item per model × token class, priced at the official rate in force
  on the record's UTC day (``ledger.pricebook``) unless a ``RateOverride`` says otherwise;
- the project is ``record["project_id"]`` (the request's ``OpenAI-Project`` header), else the default;
- line item strings follow the shapes of ``ledger/books/line_items.toml`` ("gpt-image-2 image, output").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from ledger.pricebook import PriceBooks

DAY_S = 86_400
BUCKET_SECONDS = {"1m": 60, "1h": 3_600, "1d": DAY_S}
# bucket width -> (default limit, max limit), reference §10.1 / §10.2
IMAGES_LIMITS = {"1m": (60, 1_440), "1h": (24, 168), "1d": (7, 31)}
COSTS_LIMITS = (7, 180)
COSTS_GROUPS = ("project_id", "line_item", "api_key_id", "user_id", "api_source")
IMAGES_GROUPS = ("project_id", "user_id", "api_key_id", "model", "size", "source")
SOURCES = {"images.generate": "image.generation", "images.edit": "image.edit"}
PARTIAL_IMAGE_TOKENS = 100  # reference §3.2
# (line item suffix, served record field, token class); image-model tokens, then the Responses mainline
IMAGE_LINES = (
    ("text, input", "text_input_tokens", "text_input"),
    ("image, input", "image_input_tokens", "image_input"),
    ("image, output", "image_output_tokens", "image_output"),
    ("text, output", "text_output_tokens", "text_output"),
)
MAINLINE_LINES = (
    (", input", "mainline_input_tokens", "text_input"),
    (", output", "mainline_output_tokens", "text_output"),
)


class InvalidParameter(ValueError):
    """A query parameter the API would reject with a 400."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class RateOverride:
    """Bill ``model`` × ``token_class`` at ``usd_per_1m`` on days in [effective_from, effective_to)."""

    model: str
    token_class: str
    usd_per_1m: float
    effective_from: date
    effective_to: date | None = None
    tier: str = "standard"

    def applies(self, model: str, token_class: str, tier: str, day: date) -> bool:
        in_window = self.effective_from <= day and (self.effective_to is None or day < self.effective_to)
        return (self.model, self.token_class, self.tier) == (model, token_class, tier) and in_window


@dataclass
class BillingConfig:
    default_project: str = "proj_default"
    # "reported": bill the tokens the response reported; "requested": also bill 100 tokens for every
    # partial image requested but not sent (a planted discrepancy, reference §12 item 3)
    partials: Literal["reported", "requested"] = "reported"
    rate_overrides: list[RateOverride] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Usage:
    """One billed quantity: a line item of one served record."""

    time: datetime
    project_id: str
    model: str
    line_item: str
    token_class: str
    tier: str
    tokens: int


def parse_time(value: Any) -> datetime:
    """A served record's time: a datetime, Unix seconds or ISO 8601 text, as UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def generated(record: dict[str, Any]) -> bool:
    """The server produced output for this record (it carries image-model or mainline tokens)."""
    return record.get("image_output_tokens") is not None or record.get("mainline_input_tokens") is not None


def usages(records: Iterable[dict[str, Any]], config: BillingConfig) -> list[Usage]:
    """Every billed line item quantity of every generated record."""
    out: list[Usage] = []
    for record in filter(generated, records):
        time, tier = parse_time(record["time"]), record.get("service_tier") or "standard"
        project = record.get("project_id") or config.default_project
        suffix = ", batch" if tier == "batch" else ""
        model = record.get("billed_model") or record.get("requested_model") or "unknown"
        lines = [(model, f"{model} {label}", field_, token_class) for label, field_, token_class in IMAGE_LINES]
        if record.get("mainline_model"):
            main = record["mainline_model"]
            lines += [(main, f"{main}{label}", field_, token_class) for label, field_, token_class in MAINLINE_LINES]
        for line_model, line_item, field_, token_class in lines:
            tokens = record.get(field_) or 0
            if field_ == "image_output_tokens" and config.partials == "requested":
                missing = (record.get("partial_images_requested") or 0) - (record.get("partial_images_sent") or 0)
                tokens += PARTIAL_IMAGE_TOKENS * max(missing, 0)
            if tokens:
                out.append(Usage(time, project, line_model, line_item + suffix, token_class, tier, tokens))
    return out


def _rate(books: PriceBooks, config: BillingConfig, usage: Usage, day: date) -> float | None:
    for override in config.rate_overrides:
        if override.applies(usage.model, usage.token_class, usage.tier, day):
            return override.usd_per_1m
    found = books.rate(usage.model, usage.token_class, tier=usage.tier, on=day)
    return found.usd_per_1m if found else None


def _buckets(start_time: int, end_time: int, width: int, limit: int, page: str | None) -> tuple[list[int], str | None]:
    """Bucket starts for this page (aligned to the width, UTC) and the next page's cursor."""
    first = start_time - start_time % width
    if page:
        try:
            first = int(page.removeprefix("page_"))
        except ValueError:
            raise InvalidParameter(f"invalid page cursor {page!r}", "page") from None
    starts = list(range(first, end_time, width))
    return starts[:limit], (f"page_{starts[limit]}" if len(starts) > limit else None)


def _page(starts: list[int], width: int, results: dict[int, list[dict[str, Any]]], cursor: str | None) -> dict:
    data = [{"object": "bucket", "start_time": s, "end_time": s + width, "results": results.get(s, [])} for s in starts]
    return {"object": "page", "data": data, "has_more": cursor is not None, "next_page": cursor}


def costs_page(
    records: Iterable[dict[str, Any]],
    books: PriceBooks,
    config: BillingConfig,
    *,
    start_time: int,
    end_time: int,
    group_by: Iterable[str] = (),
    limit: int = COSTS_LIMITS[0],
    page: str | None = None,
    project_ids: Iterable[str] = (),
    line_items: Iterable[str] = (),
) -> dict[str, Any]:
    """A ``/v1/organization/costs`` page (daily buckets) for the served records."""
    groups = tuple(g for g in COSTS_GROUPS if g in set(group_by))
    starts, cursor = _buckets(start_time, end_time, DAY_S, limit, page)
    wanted_projects, wanted_items = set(project_ids), set(line_items)
    tokens_by_key: dict[tuple[int, tuple[Any, ...], float], int] = defaultdict(int)
    for usage in usages(records, config):
        bucket = int(usage.time.timestamp()) // DAY_S * DAY_S
        if bucket not in starts or (wanted_projects and usage.project_id not in wanted_projects):
            continue
        if wanted_items and usage.line_item not in wanted_items:
            continue
        rate = _rate(books, config, usage, datetime.fromtimestamp(bucket, UTC).date())
        if rate is None:
            continue  # no price known to the simulator: not billed (the ledger leaves it unpriced too)
        keys = {"project_id": usage.project_id, "line_item": usage.line_item}
        tokens_by_key[(bucket, tuple(keys.get(g) for g in groups), rate)] += usage.tokens
    # one result per bucket × group key; without line_item grouping it sums lines of different rates
    results: dict[int, dict[tuple[Any, ...], dict[str, Any]]] = defaultdict(dict)
    for (bucket, key, rate), tokens in sorted(tokens_by_key.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        row = results[bucket].setdefault(key, _cost_result(dict(zip(groups, key, strict=True)), "line_item" in groups))
        row["amount"]["value"] += tokens * rate / 1e6
        if row["quantity"] is not None:
            row["quantity"] += tokens
    return _page(starts, DAY_S, {b: list(rows.values()) for b, rows in results.items()}, cursor)


def _cost_result(keys: dict[str, Any], by_line_item: bool) -> dict[str, Any]:
    return {
        "object": "organization.costs.result",
        "amount": {"value": 0.0, "currency": "usd"},
        **{g: keys.get(g) for g in COSTS_GROUPS},
        "quantity": 0 if by_line_item else None,
        "quantity_unit": "tokens" if by_line_item else None,
    }


def images_page(
    records: Iterable[dict[str, Any]],
    config: BillingConfig,
    *,
    start_time: int,
    end_time: int,
    bucket_width: str = "1d",
    group_by: Iterable[str] = (),
    limit: int | None = None,
    page: str | None = None,
    project_ids: Iterable[str] = (),
    models: Iterable[str] = (),
    sources: Iterable[str] = (),
    sizes: Iterable[str] = (),
) -> dict[str, Any]:
    """A ``/v1/organization/usage/images`` page: generated images and requests (Images API routes only)."""
    width = BUCKET_SECONDS[bucket_width]
    starts, cursor = _buckets(start_time, end_time, width, limit or IMAGES_LIMITS[bucket_width][0], page)
    groups = tuple(g for g in IMAGES_GROUPS if g in set(group_by))
    filters = {"project_id": set(project_ids), "model": set(models), "source": set(sources), "size": set(sizes)}
    counts: dict[int, dict[tuple[Any, ...], list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for record in filter(generated, records):
        if record.get("route") not in SOURCES:
            continue
        keys = {
            "project_id": record.get("project_id") or config.default_project,
            "model": record.get("billed_model") or record.get("requested_model"),
            "size": record.get("size"),
            "source": SOURCES[record["route"]],
        }
        if any(wanted and keys[name] not in wanted for name, wanted in filters.items()):
            continue
        bucket = int(parse_time(record["time"]).timestamp()) // width * width
        if bucket not in starts:
            continue
        # images generated: what was delivered, or what was asked for when the client never got it
        images = record.get("images_returned") if record.get("status_code") == 200 else record.get("n")
        entry = counts[bucket][tuple(keys.get(g) for g in groups)]
        entry[0] += images or 0
        entry[1] += 1
    results = {
        bucket: [
            {
                "object": "organization.usage.images.result",
                "images": images,
                "num_model_requests": requests,
                **{g: dict(zip(groups, key, strict=True)).get(g) for g in IMAGES_GROUPS},
            }
            for key, (images, requests) in sorted(rows.items(), key=lambda kv: str(kv[0]))
        ]
        for bucket, rows in counts.items()
    }
    return _page(starts, width, results, cursor)
