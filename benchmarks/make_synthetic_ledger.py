"""A large ledger of synthetic but realistic image traffic, for the dashboard benchmark.

    .venv/bin/python benchmarks/make_synthetic_ledger.py --calls 10000000 --out benchmarks/out/ledger-10m.duckdb

Columns are drawn with numpy (30 UTC days ending now, busier in working hours; OpenAI 65 %,
laozhang.ai 30 %, a gateway without contract 5 %; generate / edit / Responses; sizes, qualities, n,
streamed partials, retries with causes, final errors, model drift, unknown models, missing usage,
token outliers, feature tags) and inserted chunk by chunk as Arrow tables; ids, hashes and storage
pointers are formatted by DuckDB in the same insert. Every call gets its attempts (one row per HTTP
attempt) and its image pointers, as the collector would record them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger.db import connect, migrate  # noqa: E402
from ledger.errors import UserError  # noqa: E402
from ledger.estimator import output_tokens  # noqa: E402
from ledger.pricebook import load_books, sync_to_ledger  # noqa: E402

CHUNK = 1_000_000
DAYS = 30
OWNERS = (("openai", "api.openai.com", 0.65), ("laozhang.ai", "api.laozhang.ai", 0.30), ("acme-gw", "gw.acme.io", 0.05))
ROUTES = (("images.generate", 0.72), ("images.edit", 0.14), ("responses", 0.14))
MODELS = (
    ("gpt-image-2", 0.80),
    ("gpt-image-1.5", 0.08),
    ("gpt-image-1-mini", 0.06),
    ("gpt-image-2.5-sunburst", 0.05),
    ("gpt-image-9-preview", 0.01),  # not in any price book: unpriced_model
)
SIZES = (("1024x1024", 0.45), ("1536x1024", 0.2), ("1024x1536", 0.2), ("2048x2048", 0.1), ("auto", 0.05))
QUALITIES = (("low", 0.25), ("medium", 0.5), ("high", 0.2), ("auto", 0.05))
RESOLVED_AUTO = {"size": "1024x1024", "quality": "medium"}  # what the API echoes for auto
FEATURES = ("hero", "thumbnails", "avatars", "ad-creative", "email", "onboarding", "social", "catalog")
TEAMS = ("growth", "brand", "marketplace")
# failed-attempt causes: (cause, http status, error type, error code, probability among failures)
FAILURES = (
    ("rate_limit", 429, "requests", "rate_limit_exceeded", 0.35),
    ("provider_5xx", 500, "server_error", None, 0.2),
    ("timeout", None, "APITimeoutError", None, 0.15),
    ("connection", None, "APIConnectionError", None, 0.1),
    ("policy", 400, "image_generation_user_error", "moderation_blocked", 0.1),
    ("billing_limit", 429, "insufficient_quota", "billing_hard_limit_reached", 0.05),
    ("size_error", 400, "invalid_request_error", "invalid_value", 0.05),
)
RETRIED = {"rate_limit", "provider_5xx", "timeout", "connection"}  # the SDK retries these


def pick(rng: np.random.Generator, table: tuple[tuple[object, ...], ...], n: int) -> np.ndarray:
    """Codes 0..len(table)-1 drawn with the table's last-column probabilities."""
    weights = np.array([row[-1] for row in table], dtype=float)
    return rng.choice(len(table), size=n, p=weights / weights.sum()).astype(np.int32)


def dictionary(codes: np.ndarray, values: list[str | None]) -> pa.DictionaryArray:
    """Categorical strings without building 10M Python strings (null where the value is None)."""
    labels = [v if v is not None else "" for v in values]
    mask = np.isin(codes, [i for i, v in enumerate(values) if v is None])
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask), pa.array(labels))


def start_times(rng: np.random.Generator, n: int, now: datetime) -> np.ndarray:
    """Sorted start times (µs since epoch) over the last DAYS days: 70 % within 08:00–20:00 UTC."""
    first_day = (now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = rng.integers(0, DAYS, n)
    busy = rng.random(n) < 0.7
    seconds = np.where(busy, rng.integers(8 * 3600, 20 * 3600, n), rng.integers(0, 86_400, n))
    us = int(first_day.timestamp() * 1e6) + day * 86_400_000_000 + seconds * 1_000_000 + rng.integers(0, 1_000_000, n)
    return np.sort(np.minimum(us, int(now.timestamp() * 1e6) - 1))


def tokens_per_image(model: str, size: str, quality: str) -> int:
    size = RESOLVED_AUTO["size"] if size == "auto" else size
    quality = RESOLVED_AUTO["quality"] if quality == "auto" else quality
    try:
        return output_tokens(model, size, quality)
    except UserError:
        return {"low": 272, "medium": 1056, "high": 4160}[quality]


def calls_chunk(rng: np.random.Generator, first: int, started_us: np.ndarray) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """One chunk of calls as Arrow, plus the per-call facts the attempts and images need."""
    n = len(started_us)
    owner = pick(rng, OWNERS, n)
    route = pick(rng, ROUTES, n)
    route = np.where((route == 2) & (owner != 0), 0, route)  # Responses only on the OpenAI route
    model = pick(rng, MODELS, n)
    size = pick(rng, SIZES, n)
    size = np.where((size == 3) & (model != 0), 0, size)  # 2048x2048 is a gpt-image-2 size
    quality = pick(rng, QUALITIES, n)
    nimg = rng.choice([1, 2, 4], size=n, p=[0.9, 0.07, 0.03]).astype(np.int32)
    stream = (route != 1) & (rng.random(n) < 0.25)
    partials_req = np.where(stream, rng.integers(1, 4, n), 0).astype(np.int32)
    partials_got = np.where(stream & (rng.random(n) < 0.05), partials_req - 1, partials_req).astype(np.int32)
    inputs = np.where(route == 1, rng.integers(1, 4, n), 0).astype(np.int32)

    failed = np.where(rng.random(n) < 0.12, rng.integers(1, 3, n), 0).astype(np.int32)
    cause = pick(rng, FAILURES, n)
    retried = np.isin(cause, [i for i, f in enumerate(FAILURES) if f[0] in RETRIED])
    failed = np.where(retried | (failed == 0), failed, 1)  # non-retried causes fail once, at once
    final_error = (failed > 0) & (~retried | (rng.random(n) < 0.1))
    attempts = failed + np.where(final_error, 0, 1)
    missing_usage = final_error | (rng.random(n) < 0.005)
    images = np.where(final_error, 0, nimg).astype(np.int32)

    drift = (owner == 1) & (model == 0) & (rng.random(n) < 0.03)
    reported = np.where(owner == 1, np.where(drift, 1, 0), 2)  # gateway echoes a snapshot, sometimes another model

    table_tokens = np.array(
        [[[tokens_per_image(m, s, q) for q, *_ in QUALITIES] for s, *_ in SIZES] for m, *_ in MODELS], dtype=np.int64
    )
    model_for_tokens = np.where(drift, 1, model)
    per_image = table_tokens[model_for_tokens, size, quality]
    noise = rng.normal(1.0, 0.02, n)
    noise = np.where(rng.random(n) < 0.002, 4.0, noise)  # a few calls far from the expectation
    out_tokens = np.round(per_image * nimg * noise).astype(np.int64) + 100 * partials_got
    text_in = rng.integers(12, 120, n)
    image_in = inputs * rng.integers(300, 1500, n)
    duration = np.round(rng.gamma(4.0, 5.0, n) * np.where(quality == 2, 1.6, 1.0) + 2.0 * failed, 3)

    def usage(values: np.ndarray) -> pa.Array:
        return pa.array(values, mask=missing_usage)

    responses = route == 2
    size_names = [s for s, *_ in SIZES]
    quality_names = [q for q, *_ in QUALITIES]
    effective_size = np.where(size == 4, 0, size)  # auto -> 1024x1024
    effective_quality = np.where(quality == 3, 1, quality)  # auto -> medium
    tag_codes = np.where(
        rng.random(n) < 0.1, len(FEATURES) * len(TEAMS), rng.integers(0, len(FEATURES) * len(TEAMS), n)
    )
    tag_values = [json.dumps({"feature": f, "team": t}) for f in FEATURES for t in TEAMS] + [None]
    failure = [f[0] for f in FAILURES]
    columns = {
        "num": pa.array(np.arange(first, first + n, dtype=np.int64)),
        "started_at": pa.array(started_us, type=pa.timestamp("us", tz="UTC")),
        "duration_s": pa.array(duration),
        "route": dictionary(route, [r for r, _ in ROUTES]),
        "route_owner": dictionary(owner, [o for o, _, _ in OWNERS]),
        "server_address": dictionary(owner, [a for _, a, _ in OWNERS]),
        "requested_model": dictionary(model, [m for m, _ in MODELS]),
        "reported_model": dictionary(reported, ["gpt-image-2-2026-04-21", "gpt-image-1.5", None]),
        "mainline_model": dictionary(np.where(responses, 0, 1), ["gpt-5.5", None]),
        "n": pa.array(nimg),
        "size_requested": dictionary(size, size_names),
        "size_effective": dictionary(np.where(final_error, len(size_names), effective_size), [*size_names, None]),
        "quality_requested": dictionary(quality, quality_names),
        "quality_effective": dictionary(
            np.where(final_error, len(quality_names), effective_quality), [*quality_names, None]
        ),
        "stream": pa.array(stream),
        "partial_images_requested": pa.array(partials_req),
        "partial_images_received": pa.array(partials_got),
        "input_image_count": pa.array(inputs),
        "images_returned": pa.array(images),
        "text_input_tokens": usage(text_in),
        "image_input_tokens": usage(image_in),
        "cached_text_input_tokens": pa.array(np.zeros(n, np.int64), mask=missing_usage | ~responses),
        "cached_image_input_tokens": pa.array(np.zeros(n, np.int64), mask=missing_usage | ~responses),
        "image_output_tokens": usage(out_tokens),
        "text_output_tokens": usage(np.zeros(n, np.int64)),
        "input_tokens": usage(text_in + image_in),
        "output_tokens": usage(out_tokens),
        "mainline_input_tokens": pa.array(np.full(n, 40), mask=missing_usage | ~responses),
        "mainline_cached_input_tokens": pa.array(np.zeros(n, np.int64), mask=missing_usage | ~responses),
        "mainline_output_tokens": pa.array(np.full(n, 25), mask=missing_usage | ~responses),
        "usage_source": dictionary(missing_usage.astype(np.int32), ["reported", "missing"]),
        "cache_status": dictionary(responses.astype(np.int32), ["not_applicable", "reported"]),
        "status": dictionary(final_error.astype(np.int32), ["ok", "error"]),
        "error_type": dictionary(np.where(final_error, cause, len(failure)), [f[2] for f in FAILURES] + [None]),
        "error_code": dictionary(np.where(final_error, cause, len(failure)), [f[3] for f in FAILURES] + [None]),
        "retry_reason": dictionary(np.where(failed > 0, cause, len(failure)), [*failure, None]),
        "attempt_count": pa.array(attempts),
        "tags": dictionary(tag_codes, tag_values),
    }
    facts = {"failed": failed, "attempts": attempts, "cause": cause, "images": images, "duration": duration}
    return pa.table(columns), facts


INSERT_CALLS = """
insert into calls by name
select
    printf('%016x', hash(num)) as call_id,
    printf('%032x', hash(num // 3)) as trace_id,
    started_at,
    started_at + to_microseconds((duration_s * 1e6)::bigint) as ended_at,
    duration_s,
    'storefront' as service_name,
    route::varchar as route,
    route_owner::varchar as route_owner,
    server_address::varchar as server_address,
    443 as server_port,
    requested_model::varchar as requested_model,
    false as requested_model_assumed,
    case when route_owner::varchar <> 'openai' and requested_model::varchar = 'gpt-image-2'
        then reported_model::varchar end as reported_model,
    mainline_model::varchar as mainline_model,
    'standard' as service_tier,
    md5(num::varchar) as prompt_hash,
    40 + num % 300 as prompt_length,
    n,
    size_requested::varchar as size_requested, size_effective::varchar as size_effective,
    quality_requested::varchar as quality_requested, quality_effective::varchar as quality_effective,
    'png' as output_format_requested, 'png' as output_format_effective,
    stream, partial_images_requested, partial_images_received, input_image_count, images_returned,
    text_input_tokens, image_input_tokens, cached_text_input_tokens, cached_image_input_tokens,
    image_output_tokens, text_output_tokens, input_tokens, output_tokens,
    mainline_input_tokens, mainline_cached_input_tokens, mainline_output_tokens,
    usage_source::varchar as usage_source, cache_status::varchar as cache_status, status::varchar as status,
    error_type::varchar as error_type, error_code::varchar as error_code, retry_reason::varchar as retry_reason,
    attempt_count,
    printf('req_%024x', hash(num, 'request')) as request_id,
    tags::varchar::json as tags,
    'spool/storefront-' || (num // 100000) || '.jsonl' as source_file,
    started_at + interval 2 minute as ingested_at
from chunk_calls
"""

INSERT_ATTEMPTS = """
insert into attempts by name
select
    printf('%016x', hash(num)) as call_id,
    attempt_number,
    started_at,
    duration_s,
    status_code,
    error_type::varchar as error_type,
    error_code::varchar as error_code,
    retry_reason::varchar as retry_reason,
    printf('req_%024x', hash(num, case when retry_reason is null then 'request' else attempt_number::varchar end))
        as request_id,
    case when retry_reason::varchar = 'rate_limit' then 0.5 end as retry_after_s
from chunk_attempts
"""

INSERT_IMAGES = """
insert into images by name
select
    printf('%016x', hash(num)) as call_id,
    image_index,
    'file:///var/lib/imagecost/images/' || left(digest, 2) || '/' || digest || '.png' as uri,
    digest as sha256,
    1200000 + hash(num, image_index) % 1000000 as bytes,
    'png' as format,
    started_at + interval 90 day as delete_after
from (select *, sha256(num::varchar || '/' || image_index) as digest from chunk_images)
"""


def attempts_chunk(calls: pa.Table, facts: dict[str, np.ndarray]) -> pa.Table:
    """One row per HTTP attempt: the failed ones (with their cause) first, then the answer."""
    counts = facts["attempts"]
    index = np.repeat(np.arange(len(counts)), counts)
    number = np.arange(len(index)) - np.repeat(np.cumsum(counts) - counts, counts)
    failed = number < facts["failed"][index]
    cause = np.where(failed, facts["cause"][index], len(FAILURES))
    started = calls["started_at"].to_numpy().astype("datetime64[us]").astype(np.int64)[index] + number * 3_000_000
    status = np.array([f[1] or 0 for f in FAILURES] + [200])[cause]
    return pa.table(
        {
            "num": calls["num"].to_numpy()[index],
            "attempt_number": pa.array(number.astype(np.int32)),
            "started_at": pa.array(started, type=pa.timestamp("us", tz="UTC")),
            "duration_s": pa.array(np.where(failed, 1.5, facts["duration"][index])),
            "status_code": pa.array(status.astype(np.int32), mask=status == 0),
            "error_type": dictionary(cause, [f[2] for f in FAILURES] + [None]),
            "error_code": dictionary(cause, [f[3] for f in FAILURES] + [None]),
            "retry_reason": dictionary(cause, [f[0] for f in FAILURES] + [None]),
        }
    )


def images_chunk(calls: pa.Table, facts: dict[str, np.ndarray]) -> pa.Table:
    counts = facts["images"]
    index = np.repeat(np.arange(len(counts)), counts)
    number = np.arange(len(index)) - np.repeat(np.cumsum(counts) - counts, counts)
    started = calls["started_at"].to_numpy().astype("datetime64[us]").astype(np.int64)[index]
    return pa.table(
        {
            "num": calls["num"].to_numpy()[index],
            "image_index": pa.array(number.astype(np.int32)),
            "started_at": pa.array(started, type=pa.timestamp("us", tz="UTC")),
        }
    )


def build(out: Path, calls: int, seed: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in (out, Path(f"{out}.wal")):
        stale.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    times = start_times(rng, calls, now)
    con = connect(out)
    try:
        migrate(con)
        sync_to_ledger(con, load_books())
        began = time.perf_counter()
        for first in range(0, calls, CHUNK):
            chunk, facts = calls_chunk(rng, first, times[first : first + CHUNK])
            con.execute("begin")
            for name, table, sql in (
                ("chunk_calls", chunk, INSERT_CALLS),
                ("chunk_attempts", attempts_chunk(chunk, facts), INSERT_ATTEMPTS),
                ("chunk_images", images_chunk(chunk, facts), INSERT_IMAGES),
            ):
                con.register(name, table)
                con.execute(sql).fetchall()
                con.unregister(name)
            con.execute("commit")
            done = min(first + CHUNK, calls)
            print(f"{done:>12,} calls  {time.perf_counter() - began:6.1f} s", flush=True)
        con.execute("checkpoint")
        counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in ("calls", "attempts", "images")}
    finally:
        con.close()
    size = out.stat().st_size
    print(f"{out}: {size / 1e9:.2f} GB; " + ", ".join(f"{t} {c:,}" for t, c in counts.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, required=True, help="how many calls (e.g. 10000000)")
    parser.add_argument("--out", type=Path, required=True, help="the ledger file to (re)create")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    build(args.out, args.calls, args.seed)


if __name__ == "__main__":
    main()
