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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collector.tagging import tags

__all__ = ["instrument", "tags", "uninstrument"]


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
) -> None:
    """Record the image calls of ``client`` (an OpenAI / AsyncOpenAI), or of every client when None.

    Options left None fall back to their ``IMAGECOST_*`` environment variable (collector.config). Calling
    it again is harmless: it replaces that client's (or the global) options, patches nothing twice.
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
