"""One call's full record: request shape, attempts timeline, tokens and both costs, stored images, trace id.

Reads ``calls``, ``attempts`` and ``images`` by call id; the ``priced_calls`` row comes from the page.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import polars as pl
import streamlit as st

from dashboard import data, ui


def key_values(pairs: dict[str, Any]) -> pl.DataFrame:
    """A two-column Field / Value table (values as text), skipping fields that were not recorded."""
    rows = [
        (k, v if isinstance(v, str) else f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
        for k, v in pairs.items()
        if v is not None
    ]
    return pl.DataFrame(rows, schema=["Field", "Value"], orient="row")


def show_key_values(title: str, pairs: dict[str, Any]) -> None:
    st.markdown(f"#### {title}")
    st.dataframe(key_values(pairs), hide_index=True, width="stretch", height="content")


def local_image(uri: str | None) -> Path | None:
    """The image file behind a storage pointer, when it is on this machine."""
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path if parsed.scheme else uri))
        return path if path.is_file() else None
    return None


ATTEMPTS_IN_WINDOW_SQL = """
select * from attempts
where started_at between ?::timestamptz - interval 1 minute and ?::timestamptz + interval 1 minute and call_id = ?
order by attempt_number
"""


def call_attempts(ledger: str, call_id: str, started: datetime, ended: datetime | None, expected: int) -> pl.DataFrame:
    """The call's attempts: looked up inside its time window first (cheap), the whole table if some are missing."""
    window = data.fetch(ledger, ATTEMPTS_IN_WINDOW_SQL, (started, ended or started, call_id))
    if window.height >= expected:
        return window
    return data.fetch(ledger, "select * from attempts where call_id = ? order by attempt_number", (call_id,))


def render(ledger: str, call_id: str, priced: pl.DataFrame) -> None:
    """Draw the record of ``call_id``; ``priced`` is its priced_calls row (the Calls page already read it)."""
    if priced.is_empty():
        st.warning(f"Call {call_id} is not in the ledger.")
        return
    p = priced.row(0, named=True)
    # the start time lets DuckDB skip every row group outside it (rows arrive roughly in time order)
    facts = data.fetch(ledger, "select * from calls where started_at = ? and call_id = ?", (p["started_at"], call_id))
    if facts.is_empty():
        st.warning(f"Call {call_id} is not in the ledger.")
        return
    f = facts.row(0, named=True)
    st.subheader(f"Call {call_id}")
    cols = st.columns(5)
    cols[0].metric(
        "Billed cost",
        ui.usd(p["billed_cost_usd"], digits=4) if p["pricing_status"] == "priced" else "unpriced",
        help=f"Cost basis: {p['cost_basis']}; pricing status: {p['pricing_status']}",
        border=True,
    )
    cols[1].metric("Official-rate cost", ui.usd(p["official_cost_usd"], digits=4), border=True)
    contract = f"{p['contract_cost']:,.4f} {p['contract_currency']}" if p["contract_cost"] is not None else "–"
    cols[2].metric("Contract cost", contract, help=p["contract_id"] or "no provider contract", border=True)
    cols[3].metric("Duration", f"{p['duration_s']:.2f} s" if p["duration_s"] is not None else "–", border=True)
    cols[4].metric("Attempts", f"{p['attempts']}", border=True)
    if p["status"] != "ok":
        st.error(f"Failed: {p['error_type'] or ''} {p['error_code'] or ''} (cause: {p['retry_reason'] or 'n/a'})")
    if p["pricing_status"] != "priced":
        st.warning(f"Unpriced ({p['pricing_status']}): {p['unpriced_reason'] or 'no reason recorded'}")

    left, middle, right = st.columns(3)
    with left:
        show_key_values(
            "Request",
            {
                "Started (UTC)": f"{p['started_at']:%Y-%m-%d %H:%M:%S}",
                "Route": p["route"],
                "Route owner": p["route_owner"],
                "Server": p["server_address"],
                "Service": f["service_name"],
                "Requested model": p["requested_model"],
                "Reported model": p["reported_model"],
                "Mainline model": p["mainline_model"],
                "Size": p["size"],
                "Quality": p["quality"],
                "n": p["n"],
                "Stream": p["stream"],
                "Partial images requested": p["partial_images_requested"],
                "Partial images received": p["partial_images_received"],
                "Input images": p["input_image_count"],
                "Mask": f["mask"],
                "Output format": f["output_format_effective"] or f["output_format_requested"],
                "Background": f["background_effective"] or f["background_requested"],
                "Service tier": f["service_tier"],
                "Request id": p["request_id"],
            },
        )
    with middle:
        show_key_values(
            "Tokens",
            {
                "Text input": p["text_input_tokens"],
                "Cached text input": p["cached_text_input_tokens"],
                "Image input": p["image_input_tokens"],
                "Cached image input": p["cached_image_input_tokens"],
                "Image output": p["image_output_tokens"],
                "Text output": p["text_output_tokens"],
                "Mainline input": p["mainline_input_tokens"],
                "Mainline cached input": p["mainline_cached_input_tokens"],
                "Mainline output": p["mainline_output_tokens"],
                "Usage source": f["usage_source"],
                "Cache": f["cache_status"],
                "Images returned": p["images_returned"],
            },
        )
    with right:
        show_key_values(
            "Costs",
            {
                "Cost basis": p["cost_basis"],
                "Pricing status": p["pricing_status"],
                "Billed (USD)": ui.usd(p["billed_cost_usd"], digits=6),
                "Official, image model (USD)": ui.usd(p["image_official_cost_usd"], digits=6),
                "Official, mainline model (USD)": ui.usd(p["mainline_official_cost_usd"], digits=6),
                "Official total (USD)": ui.usd(p["official_cost_usd"], digits=6),
                "Contract": p["contract_id"],
                "Contract cost": p["contract_cost"],
                "Contract currency": p["contract_currency"],
                "Contract cost (USD)": ui.usd(p["contract_cost_usd"], digits=6),
            },
        )
        tags = json.loads(f["tags"]) if isinstance(f["tags"], str) else (f["tags"] or {})
        if tags:
            show_key_values("Tags", {str(k): str(v) for k, v in tags.items()})

    st.markdown("#### Attempts")
    attempts = call_attempts(ledger, call_id, p["started_at"], f["ended_at"], p["attempts"])
    ui.table(
        attempts,
        {
            "attempt_number": st.column_config.NumberColumn("Attempt", format="%d"),
            "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
            "duration_s": ui.seconds_column("Duration"),
            "status_code": st.column_config.NumberColumn("HTTP status", format="%d"),
            "error_type": "Error type",
            "error_code": "Error code",
            "retry_reason": "Retry cause",
            "retry_after_s": ui.seconds_column("Server asked to wait"),
            "request_id": "Request id",
        },
    )

    st.markdown("#### Images")
    images = data.fetch(ledger, "select * from images where call_id = ? order by image_index", (call_id,))
    if images.is_empty():
        st.caption("No stored image pointers for this call.")
    else:
        ui.table(
            images,
            {
                "image_index": st.column_config.NumberColumn("Index", format="%d"),
                "uri": "Stored at",
                "sha256": "SHA-256",
                "bytes": st.column_config.NumberColumn("Bytes", format="localized"),
                "format": "Format",
                "public_url": st.column_config.LinkColumn("Public URL"),
                "delete_after": st.column_config.DatetimeColumn("Delete after (UTC)", format="YYYY-MM-DD"),
            },
        )
        files = [(row["image_index"], local_image(row["uri"])) for row in images.iter_rows(named=True)]
        shown = [(i, path) for i, path in files if path is not None]
        if shown:
            st.image([str(path) for _, path in shown], caption=[f"image {i}" for i, _ in shown], width=256)

    st.markdown("#### Trace")
    st.code(p["trace_id"], language=None)
    st.caption("Paste the trace id into your tracing backend (Jaeger, Tempo, Honeycomb…) to see the span.")
