"""Match a provider's invoice lines to the ledger's provider-routed calls, and compare what is owed.

Matching, in order (each line is used once; a call may carry several lines when they name its ids):
1. ``call_id`` — the line names the ledger's call;
2. ``request_id`` — the line's request id is the call's, or one of its attempts' (a gateway may
   invoice an attempt the SDK retried);
3. time and shape — a line left over matches the nearest unmatched call of the same model whose start
   is within ± ``match_window_s`` (closest pairs first).

Per call: owed = the contract cost (``priced_calls.contract_cost``), invoiced = the sum of its lines.
Statuses: ``matched``; ``amount_mismatch``; ``charged_failed_call`` (the contract says failed calls are
not charged, ``charge_failed_calls = false``, yet the line bills a failed call or a failed attempt);
``missing_charge`` (owed, no line); ``unmatched_invoice_line`` (a line no call accounts for);
``no_contract`` / ``no_fx_rate`` when the ledger cannot say what is owed.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb
import polars as pl

from ledger.errors import UserError
from ledger.pricebook import PriceBooks
from ledger.query import read_sql
from ledger.reconcile.invoices import Invoice, InvoiceLine
from ledger.reconcile.openai import Tolerance

CALL_COLUMNS = (
    "day",
    "time",
    "call_id",
    "request_id",
    "invoice_lines",
    "model",
    "call_status",
    "contract_id",
    "currency",
    "owed",
    "invoiced",
    "diff",
    "matched_by",
    "status",
    "detail",
)
DAY_COLUMNS = ("day", "currency", "calls", "invoice_lines", "owed", "invoiced", "diff", "problems")
PROBLEMS = ("amount_mismatch", "charged_failed_call", "missing_charge", "unmatched_invoice_line", "no_contract")
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass
class _Call:
    row: dict[str, Any]
    lines: list[InvoiceLine] = field(default_factory=list)
    matched_by: list[str] = field(default_factory=list)
    failed_attempt_lines: int = 0

    @property
    def models(self) -> set[str]:
        names = (self.row["requested_model"], self.row["reported_model"], self.row["billed_model"])
        return {_model_key(n) for n in names if n}


def _model_key(name: str) -> str:
    return _SNAPSHOT.sub("", name.strip().lower())


@dataclass(frozen=True)
class ProviderReconciliation:
    provider: str
    invoice_id: str
    since: date
    until: date
    calls: pl.DataFrame  # CALL_COLUMNS: one row per call in the period and per unmatched invoice line
    days: pl.DataFrame  # DAY_COLUMNS

    def problems(self) -> pl.DataFrame:
        return self.calls.filter(pl.col("status").is_in(PROBLEMS))


def _period(invoice: Invoice) -> tuple[date, date]:
    days = [line.time.date() for line in invoice.lines if line.time is not None]
    if not days:
        raise UserError(f"{invoice.source}: no line has a time; pass --since and --until")
    return min(days), max(days)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def match_lines(calls: list[_Call], lines: list[InvoiceLine], window_s: float) -> list[InvoiceLine]:
    """Attach lines to calls (passes 1-3 of the module doc); returns the lines left unmatched."""
    by_call_id = {c.row["call_id"]: c for c in calls}
    by_request: dict[str, tuple[_Call, bool]] = {}
    for c in calls:
        failed = set(c.row["failed_attempt_request_ids"] or [])
        for rid in c.row["attempt_request_ids"] or []:
            by_request[rid] = (c, rid in failed)
        if c.row["request_id"]:
            by_request.setdefault(c.row["request_id"], (c, False))
    left: list[InvoiceLine] = []
    for line in lines:
        if line.call_id and line.call_id in by_call_id:
            target = by_call_id[line.call_id]
            target.lines.append(line)
            target.matched_by.append("call_id")
        elif line.request_id and line.request_id in by_request:
            target, failed_attempt = by_request[line.request_id]
            target.lines.append(line)
            target.matched_by.append("request_id")
            target.failed_attempt_lines += failed_attempt
        else:
            left.append(line)
    free = [c for c in calls if not c.lines]
    # candidate pairs within the window, found per model on time-sorted calls (not every line × every call)
    by_model: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for i, c in enumerate(free):
        for model in c.models:
            by_model[model].append((c.row["started_at"], i))
    for starts in by_model.values():
        starts.sort()
    window = timedelta(seconds=window_s)
    pairs: list[tuple[float, int, int, InvoiceLine]] = []
    for line in left:
        if line.time is None or not line.model:
            continue
        starts = by_model.get(_model_key(line.model), [])
        lo = bisect_left(starts, (line.time - window, -1))
        hi = bisect_right(starts, (line.time + window, len(free)))
        pairs += [(abs((t - line.time).total_seconds()), line.line_number, i, line) for t, i in starts[lo:hi]]
    pairs.sort(key=lambda pair: pair[:3])  # closest first; ties by line number, then call order
    used_lines: set[int] = set()
    for _gap, number, i, line in pairs:
        if number in used_lines or free[i].lines:
            continue
        free[i].lines.append(line)
        free[i].matched_by.append("time_model")
        used_lines.add(number)
    return [line for line in left if line.line_number not in used_lines]


def _to(amount: float, currency: str, target: str, books: PriceBooks, day: date) -> float | None:
    if currency == target:
        return amount
    source, dest = books.fx(currency, on=day), books.fx(target, on=day)
    return amount * source.usd_per_unit / dest.usd_per_unit if source and dest else None


def _call_row(call: _Call, books: PriceBooks, tol: Tolerance) -> dict[str, Any]:
    r = call.row
    currency = r["contract_currency"] or (call.lines[0].currency if call.lines else None)
    owed = r["contract_cost"]
    invoiced = None
    if call.lines and currency:
        converted = [_to(line.amount, line.currency, currency, books, r["day"]) for line in call.lines]
        invoiced = None if None in converted else sum(c for c in converted if c is not None)
    failed = r["status"] != "ok" or call.failed_attempt_lines > 0
    status, detail = _call_verdict(call, owed, invoiced, failed, tol)
    return {
        "day": r["day"],
        "time": r["started_at"],
        "call_id": r["call_id"],
        "request_id": r["request_id"],
        "invoice_lines": ",".join(str(line.line_number) for line in call.lines) or None,
        "model": r["requested_model"],
        "call_status": r["status"],
        "contract_id": r["contract_id"],
        "currency": currency,
        "owed": owed,
        "invoiced": invoiced,
        "diff": None if owed is None else (invoiced or 0.0) - owed,
        "matched_by": ",".join(dict.fromkeys(call.matched_by)) or None,
        "status": status,
        "detail": detail,
    }


def _call_verdict(
    call: _Call, owed: float | None, invoiced: float | None, failed: bool, tol: Tolerance
) -> tuple[str, str | None]:
    r = call.row
    if r["contract_id"] is None:
        return "no_contract", f"no {r['provider']} contract for {r['requested_model']} on {r['day']}: add one"
    if call.lines and invoiced is None:
        return "no_fx_rate", f"no FX rate to compare {call.lines[0].currency} with {r['contract_currency']}"
    if owed is None:
        return "no_contract", "the contract cost is unknown (missing usage for a per-token contract)"
    if not call.lines:
        if owed > tol.usd:
            return "missing_charge", f"owed {owed:.4f} {r['contract_currency']} and no invoice line: not billed yet?"
        return "matched", "failed call, not charged (charge_failed_calls = false)" if r["status"] != "ok" else None
    if failed and r["charge_failed_calls"] is False and invoiced is not None and invoiced - owed > tol.usd:
        what = (
            f"{call.failed_attempt_lines} failed attempt(s)"
            if call.failed_attempt_lines
            else f"a failed call ({r['error_code'] or 'error'})"
        )
        return "charged_failed_call", f"invoice charges {what} although the contract does not charge failed calls"
    if invoiced is not None and not tol.ok(invoiced - owed, owed):
        lines = f" on {len(call.lines)} lines (a double charge?)" if len(call.lines) > 1 else ""
        return "amount_mismatch", f"invoiced {invoiced:.4f}{lines} vs contract {owed:.4f} {r['contract_currency']}"
    return "matched", None


def _line_row(line: InvoiceLine) -> dict[str, Any]:
    detail = "no call in the ledger has this id, nor this model within the time window: traffic outside the collector?"
    return {
        "day": line.time.date() if line.time else None,
        "time": line.time,
        "call_id": line.call_id,
        "request_id": line.request_id,
        "invoice_lines": str(line.line_number),
        "model": line.model,
        "call_status": None,
        "contract_id": None,
        "currency": line.currency,
        "owed": None,
        "invoiced": line.amount,
        "diff": line.amount,
        "matched_by": None,
        "status": "unmatched_invoice_line",
        "detail": detail,
    }


def reconcile_provider(
    con: duckdb.DuckDBPyConnection,
    invoice: Invoice,
    books: PriceBooks,
    *,
    since: date | None = None,
    until: date | None = None,
    tolerance: Tolerance | None = None,
) -> ProviderReconciliation:
    """Compare ``invoice`` with the provider's calls on the UTC days ``since``..``until`` (default: the invoice's)."""
    tol = tolerance or Tolerance(usd=0.0001)
    first, last = _period(invoice) if since is None or until is None else (since, until)
    since, until = since or first, until or last
    window = timedelta(seconds=invoice.mapping.match_window_s)
    rows = read_sql(
        con,
        "select * from recon_provider_calls where provider = ? and started_at >= ? and started_at < ? "
        "order by started_at, call_id",
        [invoice.provider, _midnight(since) - window, _midnight(until + timedelta(days=1)) + window],
    ).to_dicts()
    calls = [_Call(row) for row in rows]
    left = match_lines(calls, invoice.lines, invoice.mapping.match_window_s)
    in_period = [c for c in calls if since <= c.row["day"] <= until or c.lines]
    out = [_call_row(c, books, tol) for c in in_period]
    out += [_line_row(line) for line in left]
    frame = pl.DataFrame(out, schema=_CALL_SCHEMA, orient="row").sort("day", "time", "invoice_lines", nulls_last=True)
    return ProviderReconciliation(invoice.provider, invoice.invoice_id, since, until, frame, _days(frame))


_CALL_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Date(),
    "time": pl.Datetime("us", "UTC"),
    **dict.fromkeys(("call_id", "request_id", "invoice_lines", "model", "call_status", "contract_id"), pl.String()),
    "currency": pl.String(),
    "owed": pl.Float64(),
    "invoiced": pl.Float64(),
    "diff": pl.Float64(),
    "matched_by": pl.String(),
    "status": pl.String(),
    "detail": pl.String(),
}


def _days(calls: pl.DataFrame) -> pl.DataFrame:
    """Per UTC day × currency: owed, invoiced, difference and the number of problem rows."""
    return (
        calls.group_by("day", "currency")
        .agg(
            pl.col("call_id").filter(pl.col("call_status").is_not_null()).count().alias("calls"),
            pl.col("invoice_lines").str.split(",").list.len().fill_null(0).sum().alias("invoice_lines"),
            pl.col("owed").fill_null(0).sum().alias("owed"),
            pl.col("invoiced").fill_null(0).sum().alias("invoiced"),
            pl.col("status").is_in(PROBLEMS).sum().alias("problems"),
        )
        .with_columns((pl.col("invoiced") - pl.col("owed")).alias("diff"))
        .select(DAY_COLUMNS)
        .sort("day", "currency", nulls_last=True)
    )
