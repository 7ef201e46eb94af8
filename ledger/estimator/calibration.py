"""Observed token counts from the ledger, used to tighten estimates (``estimate(..., observed=...)``).

Only successful calls with reported usage count. With at least ``MIN_OBSERVATIONS`` rows for the same
model x effective size x effective quality, the estimate's low / expected / high become the observed
p10 / median / p90 per image; input images likewise per model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ledger.db import LedgerBusy, connect

MIN_OBSERVATIONS = 5

# Per-image image output tokens. Assumption (reference §3.2 / §12 item 3, not confirmed): the reported
# usage includes +100 tokens per partial image RECEIVED, counted once per request, so they are taken off
# before dividing by the images returned.
_OUTPUT_SQL = """
with observed as (
    select
        requested_model as model,
        size_effective as size,
        quality_effective as quality,
        (image_output_tokens - 100 * coalesce(partial_images_received, 0))::double / images_returned as per_image
    from calls
    where status = 'ok'
      and usage_source = 'reported'
      and image_output_tokens is not null
      and images_returned > 0
      and requested_model is not null
      and size_effective is not null
      and quality_effective is not null
),
final as (
    select
        model, size, quality,
        count(*)::bigint as observations,
        quantile_cont(per_image, 0.1) as p10,
        median(per_image) as p50,
        quantile_cont(per_image, 0.9) as p90
    from observed
    group by model, size, quality
)
select * from final
"""

# Image input tokens per input image (edits and reference images), per model.
_INPUT_SQL = """
with observed as (
    select requested_model as model, image_input_tokens::double / input_image_count as per_image
    from calls
    where status = 'ok'
      and usage_source = 'reported'
      and image_input_tokens is not null
      and input_image_count > 0
      and requested_model is not null
),
final as (
    select
        model,
        count(*)::bigint as observations,
        quantile_cont(per_image, 0.1) as p10,
        median(per_image) as p50,
        quantile_cont(per_image, 0.9) as p90
    from observed
    group by model
)
select * from final
"""


@dataclass(frozen=True)
class Observed:
    """Distribution of one observed quantity: how many rows, and their p10 / median / p90."""

    count: int
    p10: float
    median: float
    p90: float


@dataclass(frozen=True)
class Observations:
    """What the ledger has seen: per (model, size, quality) output tokens per image; per model input tokens."""

    output_per_image: dict[tuple[str, str, str], Observed] = field(default_factory=dict)
    input_per_image: dict[str, Observed] = field(default_factory=dict)
    source: str = "ledger"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def load_observations(con: duckdb.DuckDBPyConnection, *, source: str = "ledger") -> Observations:
    """Read the ledger's ``calls`` table into ``Observations`` (read-only; works on a read-only connection)."""
    output = {
        (model, size, quality): Observed(int(n), p10, p50, p90)
        for model, size, quality, n, p10, p50, p90 in _rows(con, _OUTPUT_SQL)
    }
    inputs = {model: Observed(int(n), p10, p50, p90) for model, n, p10, p50, p90 in _rows(con, _INPUT_SQL)}
    return Observations(output_per_image=output, input_per_image=inputs, source=source)


def observations_from_file(path: str | Path) -> tuple[Observations | None, str]:
    """Open the ledger file read-only and load observations; a missing file gives (None, note)."""
    file = Path(path)
    if not file.exists():
        return None, f"no ledger at {file}: estimate not calibrated from observed tokens"
    try:
        con = connect(file, read_only=True, wait_s=2.0)
    except LedgerBusy:
        return None, f"ledger {file} is busy (another process writes to it): estimate not calibrated"
    try:
        return load_observations(con, source=str(file)), f"calibration source: ledger {file}"
    except duckdb.CatalogException:
        return None, f"ledger {file} has no calls table (create it with `imagecost init`): estimate not calibrated"
    finally:
        con.close()
