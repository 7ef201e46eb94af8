"""Collector options and every ``IMAGECOST_*`` environment variable, in one place.

``collector.instrument(**options)`` takes the options below; an option not passed falls back to its
environment variable (so ``opentelemetry-instrument python app.py`` can be configured with no code), then
to the default. Explicit options always win over the environment.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --- environment variables -------------------------------------------------------------------------
ENV_ROUTE_OWNER = "IMAGECOST_ROUTE_OWNER"
"""Who is paid for every instrumented call (``openai`` or a gateway's name). Unset: derived from the base URL."""

ENV_ROUTES = "IMAGECOST_ROUTES"
"""Extra routes table entries, ``host[:port]=owner`` comma-separated, e.g. ``api.laozhang.ai=laozhang.ai``."""

ENV_TAGS = "IMAGECOST_TAGS"
"""Tags put on every call, ``key=value`` comma-separated, e.g. ``team=growth,feature=hero``."""

ENV_IMAGE_STORE = "IMAGECOST_IMAGE_STORE"
"""Directory of the content-addressed image store. Unset, empty or ``none``: images are not stored."""

ENV_PUBLIC_URL_PREFIX = "IMAGECOST_PUBLIC_URL_PREFIX"
"""Prefix that turns a stored image's path relative to the store into a public URL (e.g. a CDN origin)."""

ENV_RETENTION_DAYS = "IMAGECOST_RETENTION_DAYS"
"""Days a stored image is kept; recorded on the image as ``delete_after`` (``imagecost images prune`` deletes)."""

ENV_CAPTURE_PROMPT = "IMAGECOST_CAPTURE_PROMPT"
"""``true`` records the prompt text on the span. Default off: only a salted sha256 hash and the length."""

ENV_PROMPT_SALT = "IMAGECOST_PROMPT_SALT"
"""Salt of the prompt hash. Unset: a random per-install salt kept in ``<spool>/.prompt_salt`` (created once, 0600).
Set the same salt on every host whose prompt hashes you want to compare."""

ENV_SPOOL = "IMAGECOST_SPOOL"
"""Spool directory. Setting it (or ``spool=``) always adds the spool exporter, even next to an existing SDK
tracer provider. Default ``./.imagecost/spool``, used only when the app has no SDK tracer provider."""

DEFAULT_SPOOL = Path(".imagecost") / "spool"
SALT_FILE = ".prompt_salt"  # hidden, so spool readers that glob for spool files skip it
# Route owners known without configuration: the OpenAI API host.
BUILTIN_ROUTES: Mapping[str, str] = {"api.openai.com": "openai"}

_TRUE = frozenset({"1", "true", "yes", "on"})


def parse_pairs(text: str | None, *, name: str) -> dict[str, str]:
    """``"a=1,b=2"`` -> ``{"a": "1", "b": "2"}``; ValueError naming the variable on a malformed item."""
    pairs: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{name}: expected key=value items separated by commas, got {item.strip()!r}")
        pairs[key.strip()] = value.strip()
    return pairs


@dataclass(frozen=True)
class Settings:
    """Resolved collector options (explicit option > environment variable > default)."""

    route_owner: str | None = None
    routes: Mapping[str, str] = field(default_factory=lambda: dict(BUILTIN_ROUTES))
    tags: Mapping[str, str] = field(default_factory=dict)
    image_store: Path | None = None
    public_url_prefix: str | None = None
    retention_days: float | None = None
    capture_prompt: bool = False
    prompt_salt: str | None = None
    spool: Path = DEFAULT_SPOOL
    spool_requested: bool = False  # spool= given or IMAGECOST_SPOOL set: add the exporter whatever the provider

    def owner_for(self, host: str, port: int | None) -> str:
        """Route owner of a base URL: explicit owner, else routes table (``host:port`` then ``host``), else host."""
        if self.route_owner:
            return self.route_owner
        if port is not None and (owner := self.routes.get(f"{host}:{port}")):
            return owner
        return self.routes.get(host, host)


def resolve(options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``instrument()`` options over the environment."""
    env = os.environ if env is None else env

    def pick(key: str, var: str) -> Any:
        value = options.get(key)
        return value if value is not None else env.get(var) or None

    routes = dict(BUILTIN_ROUTES)
    routes.update(parse_pairs(env.get(ENV_ROUTES), name=ENV_ROUTES))
    routes.update({str(k): str(v) for k, v in (options.get("routes") or {}).items()})
    tags = parse_pairs(env.get(ENV_TAGS), name=ENV_TAGS)
    tags.update({str(k): str(v) for k, v in (options.get("tags") or {}).items()})

    store = pick("image_store", ENV_IMAGE_STORE)
    if isinstance(store, str) and store.strip().lower() in ("", "none"):
        store = None
    retention = pick("retention_days", ENV_RETENTION_DAYS)
    try:
        retention = float(retention) if retention is not None else None
    except ValueError:
        raise ValueError(f"{ENV_RETENTION_DAYS}: expected a number of days, got {retention!r}") from None
    capture = options.get("capture_prompt")
    if capture is None:
        capture = env.get(ENV_CAPTURE_PROMPT, "").strip().lower() in _TRUE
    spool = pick("spool", ENV_SPOOL)
    return Settings(
        route_owner=pick("route_owner", ENV_ROUTE_OWNER),
        routes=routes,
        tags=tags,
        image_store=Path(store) if store is not None else None,
        public_url_prefix=pick("public_url_prefix", ENV_PUBLIC_URL_PREFIX),
        retention_days=retention,
        capture_prompt=bool(capture),
        prompt_salt=env.get(ENV_PROMPT_SALT) or None,
        spool=Path(spool) if spool is not None else DEFAULT_SPOOL,
        spool_requested=spool is not None,
    )


_salt_lock = threading.Lock()
_salts: dict[Path, str] = {}


def install_salt(spool: Path) -> str:
    """The per-install prompt salt kept next to the spool, created once (exclusive create, mode 0600)."""
    path = spool / SALT_FILE
    with _salt_lock:
        if path in _salts:
            return _salts[path]
        spool.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            salt = _read_salt(path)
        else:
            salt = secrets.token_hex(32)
            with os.fdopen(fd, "w") as f:
                f.write(salt)
        _salts[path] = salt
        return salt


def _read_salt(path: Path) -> str:
    """Read a salt file another process may have created a moment ago (wait briefly for its content)."""
    for _ in range(100):
        if salt := path.read_text().strip():
            return salt
        time.sleep(0.01)
    raise ValueError(f"{path} is empty: delete it (a new salt is created) or set {ENV_PROMPT_SALT}")
