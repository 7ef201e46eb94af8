"""The ``imagecost`` command line. Each subcommand lives in its own module, imported on use."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from ledger.errors import UserError

# command name -> ("module:attribute", one-line help); a module is imported only when its command runs,
# so `imagecost --help` lists the commands from this table without importing duckdb, polars or streamlit.
COMMANDS = {
    "init": ("ledger.cli.ledger_cmds:init", "Create or migrate a ledger and load the price books."),
    "prices": ("ledger.cli.prices_cmds:prices", "Show (or check) official rates and provider contracts."),
    "estimate": ("ledger.cli.estimate_cmds:estimate", "Pre-flight cost of a request or a plan file."),
    "report": ("ledger.cli.report_cmds:report", "Spend report for finance (official and contract apart)."),
    "close": ("ledger.cli.close_cmds:close", "Freeze a month's priced rows."),
    "reopen": ("ledger.cli.close_cmds:reopen", "Reopen a closed month (recorded, with a reason)."),
    "ingest": ("ledger.cli.ingest_cmds:ingest", "Move spool / OTLP-JSON files into the ledger."),
    "refresh": ("ledger.cli.ledger_cmds:refresh", "Bring the ledger's stores (fast reads) up to date."),
    "backup": ("ledger.cli.ledger_cmds:backup_cmd", "Copy the ledger into LEDGER.backups/ (the newest 3 are kept)."),
    "rebuild": ("ledger.cli.ledger_cmds:rebuild", "Remake a ledger DuckDB cannot open, from backup and spool."),
    "spool": ("ledger.cli.spool_cmds:spool", "Delete ingested spool files a backup already holds."),
    "images": ("ledger.cli.images_cmds:images", "Image store maintenance (retention)."),
    "reconcile": ("ledger.cli.reconcile_cmds:reconcile", "Compare the ledger with OpenAI's bill or an invoice."),
    "budgets": ("ledger.cli.budgets_cmds:budgets", "Budgets, spend so far and forecast (exit 2 if exceeded)."),
    "serve": ("ledger.cli.serve_cmds:serve", "Receive OTLP/HTTP spans from other hosts into the spool."),
    "simulate": ("simulator.cli:simulate", "Run the local OpenAI-compatible simulator."),
    "demo": ("simulator.demo_cmd:demo", "Simulator -> instrumented SDK -> ledger -> dashboard."),
    "dashboard": ("dashboard.cli:dashboard", "Open the Streamlit dashboard over a ledger."),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (keeps `imagecost --help` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short_help) for name, (_, short_help) in COMMANDS.items()])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[cmd_name][0].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:  # one line even if a value quoted in the message holds a newline
            raise click.ClickException(" ".join(str(exc).splitlines())) from None
        except Exception as exc:
            # A file the user named that cannot be used (name too long, not a DuckDB file, disk full, ...):
            # one line saying which and why, not a traceback.
            if isinstance(exc, OSError) or _is_duckdb_io_error(exc):
                raise click.ClickException(_one_line(exc)) from None
            raise


def _is_duckdb_io_error(exc: Exception) -> bool:
    duckdb = sys.modules.get("duckdb")  # not imported at all: the error cannot be one of its
    return duckdb is not None and isinstance(exc, duckdb.IOException) and "lock" not in str(exc).lower()


def _one_line(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        name = exc.filename if exc.filename is None or len(str(exc.filename)) <= 80 else f"{str(exc.filename)[:77]}..."
        return f"{exc.strerror}: {name}" if name is not None else exc.strerror
    return " ".join(str(exc).split())


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
def cli(verbose: bool) -> None:
    """imagecost: what OpenAI image generation costs, why, and what it will cost next."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(prog_name="imagecost"))
