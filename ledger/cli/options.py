"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import click

from ledger.db import LEDGER_ENV

ledger_option = click.option(
    "--ledger",
    "ledger",
    type=click.Path(dir_okay=False),
    default=None,
    envvar=LEDGER_ENV,
    help=f"Ledger file (default ./imagecost.duckdb, or ${LEDGER_ENV}).",
)

prices_dir_option = click.option(
    "--prices-dir",
    "prices_dir",
    type=click.Path(file_okay=False),
    default=None,
    envvar="IMAGECOST_PRICES_DIR",
    help="Directory of your own contract / FX / rate TOML files (or $IMAGECOST_PRICES_DIR).",
)

spool_option = click.option(
    "--spool",
    "spool",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The spool apps export to (default: $IMAGECOST_SPOOL or ./.imagecost/spool).",
)
