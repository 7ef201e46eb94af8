"""imagecost collector: OpenTelemetry instrumentation of the openai SDK's image calls.

```python
import collector

collector.instrument()                      # every OpenAI / AsyncOpenAI client; or instrument(client)
with collector.tags(feature="hero", team="growth"):
    client.images.generate(model="gpt-image-2", prompt="...")
```

Zero code: ``opentelemetry-instrument python app.py`` loads the same instrumentor (configure it with the
``IMAGECOST_*`` variables documented in :mod:`collector.config`). Each image call becomes one span
``generate_content {model}`` with tokens by class, request shape, route and route owner, one
``imagecost.attempt`` event per HTTP attempt and one ``imagecost.image`` event per stored image; spans go to
the app's tracer provider, or to the spool when the app has none. Names: :mod:`collector.semconv`.

Budgets: ``instrument(client, guard=...)`` asks a spend guard before each call is sent; over a hard budget the
call raises :class:`BudgetExceeded` and never reaches the server (:mod:`collector.guard`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.tagging import tags

if TYPE_CHECKING:
    from collector.guard import BudgetExceeded, Guard, GuardDecision, GuardOutcome, GuardRequest

__all__ = [
    "BudgetExceeded",
    "Guard",
    "GuardDecision",
    "GuardOutcome",
    "GuardRequest",
    "instrument",
    "tags",
    "uninstrument",
]
_GUARD_NAMES = frozenset({"BudgetExceeded", "Guard", "GuardDecision", "GuardOutcome", "GuardRequest"})


def __getattr__(name: str) -> Any:
    """``collector.BudgetExceeded`` etc., imported on first use: ``import collector`` (e.g. for semconv) stays light."""
    if name in _GUARD_NAMES:
        from collector import guard

        return getattr(guard, name)
    raise AttributeError(f"module 'collector' has no attribute {name!r}")


def instrument(
    client: Any = None,
    *,
    route_owner: str | None = None,
    routes: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    image_store: str | Path | None = None,
    public_url_prefix: str | None = None,
    retention_days: float | None = None,
    capture_prompt: bool | None = None,
    spool: str | Path | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    guard: Guard | None = None,
) -> None:
    """Record the image calls of ``client`` (an OpenAI / AsyncOpenAI), or of every client when None.

    Options left None fall back to their ``IMAGECOST_*`` environment variable (collector.config). Calling
    it again is harmless: it replaces that client's (or the global) options, patches nothing twice.
    ``guard``: a spend guard asked before each call is sent (collector.guard; e.g. ledger.budgets.BudgetGuard).
    """
    from collector.instrumentor import ImagecostInstrumentor, register

    options = {
        "client": client,
        "route_owner": route_owner,
        "routes": routes,
        "tags": tags,
        "image_store": image_store,
        "public_url_prefix": public_url_prefix,
        "retention_days": retention_days,
        "capture_prompt": capture_prompt,
        "spool": spool,
        "tracer_provider": tracer_provider,
        "meter_provider": meter_provider,
        "guard": guard,
    }
    instrumentor = ImagecostInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        register(**options)
    else:
        instrumentor.instrument(**options)


def uninstrument() -> None:
    """Undo :func:`instrument`: restore every patched method, forget every client, flush the spool."""
    from collector.instrumentor import ImagecostInstrumentor

    instrumentor = ImagecostInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
