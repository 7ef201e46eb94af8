"""Read a provider's invoice or usage export (CSV or JSON) through its column mapping.

The mapping per provider is data (``ledger/books/invoice_mappings.toml``, optionally overridden by a
user file): which column holds the time, request id, call id, model, amount and currency.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError

from ledger.errors import UserError
from ledger.pricebook.currencies import ISO_4217

MAPPINGS_FILE = Path(__file__).resolve().parent.parent / "books" / "invoice_mappings.toml"


class InvoiceMapping(BaseModel):
    """One ``[provider."<name>"]`` table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["csv", "json"] | None = None
    records: str = ""
    time: str
    time_format: str = "iso8601"
    time_zone: str = "UTC"
    request_id: str | None = None
    call_id: str | None = None
    model: str
    amount: str
    amount_scale: float = 1.0
    currency: str | None = None
    default_currency: str | None = None
    match_window_s: float = 120.0


@dataclass(frozen=True)
class InvoiceLine:
    line_number: int
    time: datetime | None
    request_id: str | None
    call_id: str | None
    model: str | None
    amount: float
    currency: str


@dataclass(frozen=True)
class Invoice:
    provider: str
    invoice_id: str  # sha256 of the file's bytes
    source: str
    lines: list[InvoiceLine]
    mapping: InvoiceMapping


def load_mappings(extra: str | os.PathLike[str] | None = None) -> dict[str, InvoiceMapping]:
    """The packaged mappings, with the tables of ``extra`` (a user file) replacing them by provider."""
    mappings: dict[str, InvoiceMapping] = {}
    for file in [MAPPINGS_FILE, *([Path(extra)] if extra else [])]:
        try:
            doc = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"invoice mapping file {file} does not exist; fix --mappings") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{file}: not valid TOML: {exc}") from None
        if set(doc) - {"provider"}:
            raise UserError(f'{file}: expected only [provider."<name>"] tables')
        for name, table in doc.get("provider", {}).items():
            try:
                mappings[name] = InvoiceMapping.model_validate(table)
            except ValidationError as exc:
                problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise UserError(f'{file}: [provider."{name}"]: {problem}') from None
    return mappings


def _field(record: dict[str, Any], key: str | None) -> Any:
    """``record[key]``; a dotted key walks nested JSON objects. Missing or empty -> None."""
    if not key:
        return None
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return None if value == "" else value


def _parse_time(value: Any, mapping: InvoiceMapping, zone: ZoneInfo) -> datetime:
    if mapping.time_format in ("unix_s", "unix_ms"):
        seconds = float(value) / (1000 if mapping.time_format == "unix_ms" else 1)
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if mapping.time_format == "iso8601":
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    else:
        parsed = datetime.strptime(text, mapping.time_format)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).astimezone(UTC)


def _line(number: int, record: dict[str, Any], mapping: InvoiceMapping, zone: ZoneInfo, where: str) -> InvoiceLine:
    raw_time, raw_amount = _field(record, mapping.time), _field(record, mapping.amount)
    if raw_amount is None:
        raise UserError(f"{where}: no amount in column {mapping.amount!r}; fix the mapping or the file")
    try:
        amount = float(raw_amount) * mapping.amount_scale
    except (TypeError, ValueError):
        raise UserError(f"{where}: amount {raw_amount!r} in column {mapping.amount!r} is not a number") from None
    try:
        time = _parse_time(raw_time, mapping, zone) if raw_time is not None else None
    except (TypeError, ValueError):
        raise UserError(
            f"{where}: time {raw_time!r} in column {mapping.time!r} does not fit time_format {mapping.time_format!r}"
        ) from None
    currency = str(_field(record, mapping.currency) or mapping.default_currency or "").upper()
    if currency not in ISO_4217:
        raise UserError(
            f"{where}: currency {currency or '(none)'!r} is not an ISO 4217 code; set currency or default_currency "
            "in the mapping"
        )
    text = {k: _field(record, getattr(mapping, k)) for k in ("request_id", "call_id", "model")}
    return InvoiceLine(
        line_number=number,
        time=time,
        request_id=str(text["request_id"]) if text["request_id"] is not None else None,
        call_id=str(text["call_id"]) if text["call_id"] is not None else None,
        model=str(text["model"]) if text["model"] is not None else None,
        amount=amount,
        currency=currency,
    )


def _records(content: bytes, kind: str, mapping: InvoiceMapping, source: str) -> list[dict[str, Any]]:
    text = content.decode("utf-8-sig")
    if kind == "csv":
        reader = csv.DictReader(io.StringIO(text))
        needed = [c for c in (mapping.time, mapping.model, mapping.amount) if c not in (reader.fieldnames or [])]
        if needed:
            raise UserError(f"{source}: CSV has no column(s) {', '.join(needed)}; columns are {reader.fieldnames}")
        return list(reader)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}: not valid JSON ({exc})") from None
    records = _field(doc, mapping.records) if mapping.records else doc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise UserError(f"{source}: expected a list of objects at {mapping.records or 'the top level'!r}")
    return records


def read_invoice(path: str | os.PathLike[str], provider: str, mappings: dict[str, InvoiceMapping]) -> Invoice:
    """Parse the file with the provider's mapping; UserError names the line and the column."""
    mapping = mappings.get(provider)
    if mapping is None:
        known = ", ".join(sorted(mappings)) or "none"
        raise UserError(
            f'no invoice column mapping for provider {provider!r} (known: {known}); add a [provider."{provider}"] '
            "table to ledger/books/invoice_mappings.toml or pass --mappings FILE"
        )
    file = Path(path)
    try:
        content = file.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{file}: no such file") from None
    kind = mapping.format or ("json" if file.suffix.lower() in (".json", ".jsonl") else "csv")
    try:
        zone = ZoneInfo(mapping.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"mapping for {provider}: unknown time_zone {mapping.time_zone!r}") from None
    records = _records(content, kind, mapping, str(file))
    first = 2 if kind == "csv" else 1  # CSV: line 1 is the header
    lines = [_line(i, r, mapping, zone, f"{file}: line {i}") for i, r in enumerate(records, start=first)]
    return Invoice(provider, hashlib.sha256(content).hexdigest(), str(file), lines, mapping)


def store_invoice(con: duckdb.DuckDBPyConnection, invoice: Invoice) -> int:
    """Replace the stored lines of this invoice (same content = same invoice_id); returns lines stored."""
    frame = pl.DataFrame(
        {
            "provider": [invoice.provider] * len(invoice.lines),
            "invoice_id": [invoice.invoice_id] * len(invoice.lines),
            "imported_from": [invoice.source] * len(invoice.lines),
            "line_number": [line.line_number for line in invoice.lines],
            "line_time": [line.time for line in invoice.lines],
            "request_id": [line.request_id for line in invoice.lines],
            "call_id": [line.call_id for line in invoice.lines],
            "model": [line.model for line in invoice.lines],
            "amount": [line.amount for line in invoice.lines],
            "currency": [line.currency for line in invoice.lines],
        },
        schema_overrides={"line_time": pl.Datetime("us", "UTC"), "line_number": pl.Int64},
    )
    con.register("_recon_invoice", frame.to_arrow())
    con.execute("begin")
    try:
        con.execute("delete from provider_invoice_lines where invoice_id = ?", [invoice.invoice_id])
        con.execute("insert into provider_invoice_lines by name select * from _recon_invoice")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_recon_invoice")
    return frame.height


def stored_invoice(con: duckdb.DuckDBPyConnection, invoice_id: str, mapping: InvoiceMapping) -> Invoice:
    """An invoice as stored in the ledger (the dashboard reconciles from here)."""
    rows = con.execute(
        "select provider, imported_from, line_number, line_time, request_id, call_id, model, amount, currency "
        "from provider_invoice_lines where invoice_id = ? order by line_number",
        [invoice_id],
    ).fetchall()
    if not rows:
        raise UserError(f"no stored invoice {invoice_id}; import it with `imagecost reconcile provider FILE`")
    lines = [InvoiceLine(r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]
    return Invoice(rows[0][0], invoice_id, rows[0][1], lines, mapping)
