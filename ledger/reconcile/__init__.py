"""Reconciliation: does the ledger agree with what OpenAI billed, and with what a provider invoiced?

OpenAI (Costs API + Usage API for images, reference §10):

    from ledger.reconcile import read_files, store_bill, sync_line_item_map, load_line_items
    from ledger.reconcile import reconcile_openai, Tolerance
    for origin, rows in read_files(["costs.json"]):      # exported pages, or bill.fetch_pages(admin_client, ...)
        store_bill(con, rows, origin)                     # idempotent: a bucket imported twice is stored once
    sync_line_item_map(con, load_line_items())            # ledger/books/line_items.toml -> recon_line_item_map
    result = reconcile_openai(con, tolerance=Tolerance(usd=0.01), default_project="proj_main")
    result.costs, result.images                           # per UTC day × project (× line item): status, cause

Providers (an invoice or usage export, CSV or JSON, read through ledger/books/invoice_mappings.toml):

    from ledger.reconcile import load_mappings, read_invoice, store_invoice, reconcile_provider
    invoice = read_invoice("invoice.csv", "laozhang.ai", load_mappings())
    store_invoice(con, invoice)
    result = reconcile_provider(con, invoice, load_books())
    result.calls, result.days

The ledger's project for a call is its tag ``project`` (``imagecost.tag.project``), else the default
project given to ``reconcile_openai`` (CLI: ``--project``), else ``"default"``. See docs/reconcile.md.
"""

from __future__ import annotations

from ledger.reconcile.bill import BillRows, fetch_pages, read_files, read_pages
from ledger.reconcile.invoices import Invoice, InvoiceLine, load_mappings, read_invoice, store_invoice, stored_invoice
from ledger.reconcile.line_items import LineItem, LineItemMap, load_line_items, sync_line_item_map
from ledger.reconcile.openai import OpenAIReconciliation, Tolerance, reconcile_openai
from ledger.reconcile.provider import ProviderReconciliation, reconcile_provider
from ledger.reconcile.store import ImportResult, store_bill

__all__ = [
    "BillRows",
    "ImportResult",
    "Invoice",
    "InvoiceLine",
    "LineItem",
    "LineItemMap",
    "OpenAIReconciliation",
    "ProviderReconciliation",
    "Tolerance",
    "fetch_pages",
    "load_line_items",
    "load_mappings",
    "read_files",
    "read_invoice",
    "read_pages",
    "reconcile_openai",
    "reconcile_provider",
    "store_bill",
    "store_invoice",
    "stored_invoice",
    "sync_line_item_map",
]
