"""Telemetry never breaks the user's call: internal failures are logged once per site and swallowed.

Like logfire's ``handle_internal_errors``: every collector step that runs inside the user's call is wrapped
with :func:`internal`; the SDK's own results and exceptions never pass through here.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

log = logging.getLogger("imagecost.collector")

P = ParamSpec("P")
R = TypeVar("R")

_seen: set[tuple[str, str]] = set()
_seen_lock = threading.Lock()


def report(site: str, exc: BaseException) -> None:
    """Log an internal failure at ``site``: with a traceback the first time, at debug level afterwards."""
    key = (site, type(exc).__name__)
    with _seen_lock:
        first = key not in _seen
        _seen.add(key)
    if first:
        log.warning(
            "imagecost: internal error in %s (%s); the call is unaffected, its telemetry may be incomplete",
            site,
            type(exc).__name__,
            exc_info=exc,
        )
    else:
        log.debug("imagecost: internal error in %s again (%s)", site, type(exc).__name__)


def internal(fn: Callable[P, R]) -> Callable[P, R | None]:
    """Decorator: run ``fn``; on any Exception report it once and return None."""
    site = fn.__qualname__

    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            report(site, exc)
            return None

    return guarded
