"""The ``imagecost`` command line. Each subcommand lives in its own module, imported on use."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from ledger.errors import UserError

# command name -> "module:attribute"; modules are imported only when their command runs.
COMMANDS = {
    "init": "ledger.cli.ledger_cmds:init",
    "prices": "ledger.cli.prices_cmds:prices",
    "estimate": "ledger.cli.estimate_cmds:estimate",
    "report": "ledger.cli.report_cmds:report",
    "ingest": "ledger.cli.ingest_cmds:ingest",
    "images": "ledger.cli.images_cmds:images",
    "reconcile": "ledger.cli.reconcile_cmds:reconcile",
    "budgets": "ledger.cli.budgets_cmds:budgets",
    "serve": "ledger.cli.serve_cmds:serve",
    "simulate": "simulator.cli:simulate",
    "demo": "simulator.demo_cmd:demo",
    "dashboard": "dashboard.cli:dashboard",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (keeps `imagecost --help` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command whose module is not built yet
            if exc.name and module_name.startswith(exc.name):
                return None
            raise
        return getattr(module, attr)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            raise click.ClickException(str(exc)) from None


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
