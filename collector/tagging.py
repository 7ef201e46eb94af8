"""Per-call tags (feature, team, customer…) through a context manager backed by a contextvar.

A contextvar is per thread and per asyncio task (a task starts with a copy of its creator's context), so
tags set in one thread or task never leak into another; nested ``tags()`` blocks merge, inner keys win.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

_EMPTY: Mapping[str, str] = MappingProxyType({})
_current: ContextVar[Mapping[str, str]] = ContextVar("imagecost_tags", default=_EMPTY)


@contextmanager
def tags(**values: object) -> Iterator[None]:
    """Tag every image call made inside the block: ``with collector.tags(feature="hero"): ...``."""
    merged = MappingProxyType({**_current.get(), **{k: str(v) for k, v in values.items()}})
    token = _current.set(merged)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Mapping[str, str]:
    """The tags in force here (merged over all enclosing ``tags()`` blocks)."""
    return _current.get()
