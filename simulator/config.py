"""The simulator's settings and the thread-safe log of what it served."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ledger.errors import UserError
from simulator.faults import Fault, validate_plan

Personality = Literal["openai", "gateway"]
PERSONALITIES: tuple[str, ...] = ("openai", "gateway")


@dataclass(frozen=True)
class SimConfig:
    """How the simulator behaves. `openai` answers like api.openai.com; `gateway` like a per-call billing gateway."""

    personality: Personality = "openai"
    gateway_name: str = "laozhang.ai"
    model_map: Mapping[str, str] = field(default_factory=dict)  # gateway: requested model -> provider model
    missing_usage: bool = False  # answer without any usage objects
    latency_scale: float = 0.0  # 0 = answer at once; 1 = roughly real-time (see latency_s)
    seed: int = 0
    faults: Mapping[str, Fault] = field(default_factory=dict)  # prompt substring -> fault (when no header)

    @classmethod
    def build(
        cls,
        *,
        personality: str,
        gateway_name: str,
        model_map: Mapping[str, str] | None,
        missing_usage: bool,
        latency_scale: float,
        seed: int,
        faults: Mapping[str, str] | None,
    ) -> SimConfig:
        """Validate user-facing arguments (UserError with the fix) and build the config."""
        if personality not in PERSONALITIES:
            raise UserError(f"unknown simulator personality {personality!r}; use one of {', '.join(PERSONALITIES)}")
        if model_map and personality != "gateway":
            raise UserError("a model map applies only to the gateway personality (use --personality gateway)")
        if latency_scale < 0:
            raise UserError(f"latency scale must be >= 0, got {latency_scale}")
        return cls(
            personality=personality,  # type: ignore[arg-type]
            gateway_name=gateway_name,
            model_map=dict(model_map or {}),
            missing_usage=missing_usage,
            latency_scale=latency_scale,
            seed=seed,
            faults=validate_plan(faults),
        )

    @property
    def is_gateway(self) -> bool:
        return self.personality == "gateway"

    @property
    def route_owner(self) -> str:
        return self.gateway_name if self.is_gateway else "openai"

    def provider_model(self, requested: str) -> str:
        """The model that actually runs: the gateway's mapping, else the requested one."""
        return self.model_map.get(requested, requested) if self.is_gateway else requested

    def latency_s(self, output_tokens: int) -> float:
        """Simulated generation time: latency_scale × (0.3 s + output tokens / 20,000 per s)."""
        return self.latency_scale * (0.3 + output_tokens / 20_000)


class ServedLog:
    """What the simulator answered: one dict per HTTP request, appended from the server thread.

    Never holds image base64 or prompts. Readers get copies (`snapshot()`), so iteration is safe while
    the server keeps appending.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []

    def append(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._rows]

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)
