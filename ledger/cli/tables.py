"""Plain-text tables for the terminal (numbers right-aligned, everything else left-aligned)."""

from __future__ import annotations

from collections.abc import Sequence

EMPTY = "–"


def _is_number(cell: str) -> bool:
    try:
        float(cell.replace(",", ""))
    except ValueError:
        return False
    return True


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of an aligned table; a column whose filled cells are all numbers (or that has none) is right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    filled = [[row[i] for row in rows if row[i] not in ("", EMPTY)] for i in range(len(headers))]
    numeric = [all(_is_number(cell) for cell in cells) for cells in filled]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)]
