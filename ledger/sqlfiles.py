"""Locate the SQL files (migrations and views) the same way from a checkout and a wheel.

In a checkout they are the top-level ``sql/`` folder; the wheel ships the same folder as
``ledger/_sql`` (see ``[tool.hatch.build.targets.wheel.force-include]`` in pyproject.toml).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def sql_root() -> Path:
    """The folder holding ``migrations/`` and ``views/``."""
    packaged = Path(__file__).parent / "_sql"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "sql"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"imagecost SQL files not found in {packaged} or {checkout}; reinstall imagecost")


def migrations() -> list[tuple[str, str]]:
    """(name, sql) for every migration, in order: ``001_facts``, ``002_price_books``, ..."""
    files = sorted((sql_root() / "migrations").glob("[0-9][0-9][0-9]_*.sql"))
    return [(f.stem, f.read_text()) for f in files]


def views() -> list[tuple[str, str]]:
    """(view name, select statement) for every ``sql/views/*.sql`` file, ordered by dependency.

    A view file may declare ``-- depends: other_view`` lines; views are created after them.
    """
    found = {f.stem: f.read_text() for f in sorted((sql_root() / "views").glob("*.sql"))}
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name in ordered:
            return
        if name in path:
            raise ValueError(f"sql/views: dependency cycle {' -> '.join((*path, name))}")
        for line in found[name].splitlines():
            if line.startswith("-- depends:"):
                for dep in line.removeprefix("-- depends:").split(","):
                    visit(dep.strip(), (*path, name))
        ordered.append(name)

    for name in found:
        visit(name)
    return [(name, found[name]) for name in ordered]
