"""Reconcile the ledger's OpenAI-routed calls with OpenAI's bill (Costs API) and counts (Usage API).

    from ledger.reconcile.openai import reconcile_openai, Tolerance
    result = reconcile_openai(con, since=date(2026, 10, 1), until=date(2026, 10, 31),
                              tolerance=Tolerance(usd=0.01), default_project="proj_main")
    result.costs    # one row per UTC day × project × line item: bill vs ledger, status, cause, detail
    result.images   # one row per UTC day × project × model × source: image and request counts

The numbers side by side come from the views ``recon_openai_costs`` and ``recon_openai_images``; this
module adds the verdict: ``matched`` (within tolerance), ``bill_only`` (spend the ledger never saw),
``ledger_only`` (ledger spend missing from the bill), ``mismatch`` (with the likely cause, see
``causes.py``), ``unmapped_line_item`` and ``unpriced``.

Project mapping: a call's project is its tag ``project`` (``imagecost.tag.project``), else
``default_project`` (``imagecost reconcile --project``), else ``"default"``. Tag calls with the OpenAI
project id their key belongs to (``collector.tags(project="proj_...")``) so both sides use one name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import polars as pl

from ledger.errors import UserError
from ledger.query import read_sql
from ledger.reconcile import causes as c

COST_COLUMNS = (
    "day",
    "project",
    "line_item",
    "model",
    "token_class",
    "tier",
    "bill_usd",
    "ledger_usd",
    "diff_usd",
    "bill_tokens",
    "ledger_tokens",
    "status",
    "cause",
    "detail",
)
IMAGE_COLUMNS = (
    "day",
    "project",
    "model",
    "source",
    "bill_images",
    "ledger_images",
    "bill_requests",
    "ledger_requests",
    "status",
    "cause",
    "detail",
)
Verdict = tuple[str, str | None, str | None]  # status, cause, detail
STATUSES = ("matched", "mismatch", "bill_only", "ledger_only", "unmapped_line_item", "unpriced")

_TOLERANCE = re.compile(r"^\s*(?P<value>\d+(?:\.\d*)?|\.\d+)\s*(?P<pct>%?)\s*$")


@dataclass(frozen=True)
class Tolerance:
    """A difference is matched when ``|diff| <= max(usd, relative × |bill|)``."""

    usd: float = 0.01
    relative: float = 0.0

    def ok(self, diff: float, reference: float | None) -> bool:
        return abs(diff) <= max(self.usd, self.relative * abs(reference or 0.0))

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """``"0.01"`` = one cent per row; ``"2%"`` = 2 % of the bill's amount (and at least a tenth of a cent)."""
        found = _TOLERANCE.match(text)
        if not found:
            raise UserError(f"tolerance {text!r} is not a number: use USD per row (0.01) or a percentage (2%)")
        value = float(found["value"])
        return cls(usd=0.001, relative=value / 100) if found["pct"] else cls(usd=value)


@dataclass(frozen=True)
class OpenAIReconciliation:
    since: date
    until: date  # inclusive
    costs: pl.DataFrame  # COST_COLUMNS
    images: pl.DataFrame  # IMAGE_COLUMNS

    def problems(self) -> pl.DataFrame:
        """Cost rows that are not matched."""
        return self.costs.filter(pl.col("status") != "matched")

    def totals(self) -> dict[str, float]:
        bill = float(self.costs.get_column("bill_usd").fill_null(0).sum())
        ledger = float(self.costs.get_column("ledger_usd").fill_null(0).sum())
        return {"bill_usd": bill, "ledger_usd": ledger, "diff_usd": bill - ledger}


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}"


def _cost_mismatch(row: dict[str, Any], tol: Tolerance) -> list[tuple[str, str]]:
    """(cause, detail) pairs for a row whose amounts differ beyond tolerance."""
    bill_usd, ledger_usd = row["bill_usd"], row["ledger_usd"] or 0.0
    bill_q, ledger_q = row["bill_tokens"], row["ledger_tokens"]
    found: list[tuple[str, str]] = []
    if bill_q is not None and ledger_q is not None:
        excess_q = bill_q - ledger_q
        if abs(excess_q) > c.TOKEN_SLACK:
            explained = c.explain_excess(row, excess_q, in_tokens=True, slack=c.TOKEN_SLACK) if excess_q > 0 else None
            if explained:
                found += [(e.cause, f"{e.detail}: {e.tokens:+,.0f} tokens") for e in explained]
            else:
                found.append(_unseen(excess_q, ledger_q, "tokens"))
        rate = c.rate_cause(row, bill_q, bill_usd, tol.usd)
        if rate:
            found.append(rate)
    else:  # the bill has no quantity: explain the amount at the book's rates
        excess = bill_usd - ledger_usd
        explained = c.explain_excess(row, excess, in_tokens=False, slack=tol.usd) if excess > 0 else None
        rate = c.rate_cause(row, ledger_q or 0, bill_usd, tol.usd) if row["token_class"] != "*" else None
        if explained:
            found += [(e.cause, f"{e.detail}: {_money(e.usd)}") for e in explained]
        elif rate:
            found.append((rate[0], rate[1] + " (assuming the bill's quantity equals the ledger's)"))
        else:
            found.append(_unseen(row["diff_usd"], ledger_usd, "USD"))
    if not found:
        found.append((c.UNEXPLAINED, f"amounts differ by {row['diff_usd']:+,.6f} USD with equal quantities"))
    return found


def _unseen(excess: float, ledger: float, unit: str) -> tuple[str, str]:
    """A difference no evidence explains: spend one side saw and the other did not."""
    amount = f"{abs(excess):,.0f} tokens" if unit == "tokens" else f"{abs(excess):,.4f} USD"
    if excess > 0:
        return c.NOT_IN_LEDGER, (
            f"the bill has {amount} more than the ledger ({ledger:,.6g} {unit}): calls the collector never saw (an "
            "uninstrumented app or another key in this project), or spool files not ingested yet"
        )
    return c.MISSING_FROM_BILL, (
        f"the bill has {amount} less than the ledger ({ledger:,.6g} {unit}): calls tagged with the wrong project, or "
        "a bill that is not final for this day"
    )


def cost_verdict(row: dict[str, Any], tol: Tolerance) -> Verdict:
    """(status, cause, detail) of one ``recon_openai_costs`` row."""
    if row["line_key"].startswith("unmapped:"):
        return (
            "unmapped_line_item",
            c.UNMAPPED_LINE_ITEM,
            f"no rule in line_items.toml matches {row['line_item']!r}: add a [[line_item]] for it",
        )
    if row["ledger_tokens"] is None:
        return (
            "bill_only",
            c.NOT_IN_LEDGER,
            f"{_money(row['bill_usd'])} on the bill and no call in the ledger: an app that is not instrumented, "
            "or a key outside the collector",
        )
    if row["bill_usd"] is None:
        return (
            "ledger_only",
            c.MISSING_FROM_BILL,
            f"{_money(row['ledger_usd'])} in the ledger ({row['ledger_calls']} call(s)) and nothing on the bill: check "
            "the project mapping (tag `project`, --project), or the bill is not final for this day",
        )
    if row["unpriced_calls"]:
        return (
            "unpriced",
            c.UNPRICED,
            f"{row['unpriced_calls']} call(s) have no official rate for {row['model']} {row['token_class']}: add a "
            f"[[rate]]; tokens: bill {row['bill_tokens']}, ledger {row['ledger_tokens']}",
        )
    if tol.ok(row["diff_usd"], row["bill_usd"]):
        return "matched", None, None
    found = _cost_mismatch(row, tol)
    return "mismatch", "+".join(dict.fromkeys(cause for cause, _ in found)), "; ".join(d for _, d in found)


def image_verdict(row: dict[str, Any]) -> Verdict:
    """(status, cause, detail) of one ``recon_openai_images`` row; counts must match exactly."""
    if row["ledger_images"] is None:
        return (
            "bill_only",
            c.NOT_IN_LEDGER,
            f"{row['bill_images']} image(s) in {row['bill_requests']} request(s) the ledger never saw: an app that is "
            "not instrumented, or a key outside the collector",
        )
    if row["bill_images"] is None:
        return "ledger_only", c.MISSING_FROM_BILL, f"{row['ledger_images']} image(s) in the ledger, none in usage"
    diff_images, diff_requests = row["diff_images"], row["diff_requests"]
    if diff_images == 0 and diff_requests == 0:
        return "matched", None, None
    retried = row["retried_server_failures"] or 0
    if retried and diff_requests == retried and diff_images == row["retry_images"]:
        return (
            "mismatch",
            c.RETRIES,
            f"{retried} attempt(s) failed with a 5xx/timeout and were retried; usage counts them as requests "
            f"({diff_requests:+} requests, {diff_images:+} images)",
        )
    counted = f"usage counts {diff_images:+} image(s) and {diff_requests:+} request(s) against the ledger"
    if diff_images >= 0 and diff_requests >= 0:
        return "mismatch", c.NOT_IN_LEDGER, f"{counted}: calls the collector never saw (an uninstrumented app?)"
    if diff_images <= 0 and diff_requests <= 0:
        return "mismatch", c.MISSING_FROM_BILL, f"{counted}: calls tagged with the wrong project?"
    return "mismatch", c.UNEXPLAINED, counted


def _bill_period(con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
    rows = con.execute(
        "select min(day), max(day) from ("
        " select cast(timezone('UTC', start_time) as date) as day from openai_costs"
        " union all select cast(timezone('UTC', start_time) as date) from openai_image_usage)"
    ).fetchall()
    first, last = rows[0]
    if first is None:
        raise UserError(
            "no OpenAI bill in the ledger yet: run `imagecost reconcile import FILE` (exported Costs/Usage pages) "
            "or `imagecost reconcile fetch` (needs $OPENAI_ADMIN_KEY)"
        )
    return first, last


def _verdicts(
    frame: pl.DataFrame, judge: Callable[[dict[str, Any]], Verdict], columns: tuple[str, ...]
) -> pl.DataFrame:
    verdicts = [judge(row) for row in frame.iter_rows(named=True)]
    return frame.with_columns(
        pl.Series("status", [v[0] for v in verdicts], dtype=pl.String),
        pl.Series("cause", [v[1] for v in verdicts], dtype=pl.String),
        pl.Series("detail", [v[2] for v in verdicts], dtype=pl.String),
    ).select(columns)


def reconcile_openai(
    con: duckdb.DuckDBPyConnection,
    *,
    since: date | None = None,
    until: date | None = None,
    tolerance: Tolerance | None = None,
    default_project: str | None = None,
) -> OpenAIReconciliation:
    """Compare bill and ledger for the UTC days ``since``..``until`` (inclusive; default: the bill's days)."""
    tol = tolerance or Tolerance()
    if since is None or until is None:
        first, last = _bill_period(con)
        since, until = since or first, until or last
    if until < since:
        raise UserError(f"--until {until} is before --since {since}")
    con.execute("set variable recon_default_project = ?", [default_project])
    order = "order by day, project, model nulls last"
    costs = read_sql(
        con,
        f"select * from recon_openai_costs where day between ? and ? {order}, token_class, tier, line_item",
        [since, until],
    )
    images = read_sql(
        con, f"select * from recon_openai_images where day between ? and ? {order}, source", [since, until]
    )
    return OpenAIReconciliation(
        since=since,
        until=until,
        costs=_verdicts(costs, lambda row: cost_verdict(row, tol), COST_COLUMNS),
        images=_verdicts(images, image_verdict, IMAGE_COLUMNS),
    )
