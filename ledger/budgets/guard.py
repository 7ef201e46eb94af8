"""``BudgetGuard``: the ledger's spend guard for ``collector.instrument(client, guard=...)``.

Before a request is sent, ``check`` estimates it (``ledger.estimator``; a hard budget compares the estimate's
*high* bound, a warn-only budget the *expected* value, reference §5.8) and adds the spend so far of every
budget whose scope covers it:

- the ledger's ``priced_calls.billed_cost_usd`` this period (read-only, re-read in a background thread at
  most every ``refresh_s`` seconds, so a check never waits for DuckDB; see ``ledger.budgets.spend``);
- plus this process's own calls the ledger has not ingested yet: each allowed call reserves its estimate at
  check time (so concurrent calls cannot both slip under a limit) and is re-priced from its reported tokens
  when it ends (``record``); once the ledger holds the call id, the ledger's figure replaces it.

Then: over a hard budget -> ``block`` (the collector raises ``BudgetExceeded``, nothing is sent); over a
warn-only budget -> ``warn`` (a warning is logged once per budget and period, the call goes ahead); else
``allow``. A request the estimator cannot price (no model, an unknown model) counts as $0 unless the budget is
already used up. Periods are UTC calendar days and months. Thread- and asyncio-safe: one lock, held only for
arithmetic; no I/O on the caller's thread after construction.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache, partial
from pathlib import Path

import duckdb

from collector.guard import GuardDecision, GuardOutcome, GuardRequest
from ledger.budgets.config import Budget, Budgets, Period, budgets_path, load_budgets, period_at
from ledger.budgets.costing import estimate_request, estimate_usd, outcome_usd
from ledger.budgets.spend import ingested, read_spend, spend_for, tag_keys
from ledger.db import connect, ledger_path
from ledger.errors import UserError
from ledger.estimator import Range
from ledger.pricebook import PriceBooks, load_books

log = logging.getLogger("imagecost.budgets")

REFRESH_S = 5.0  # how stale the ledger's spend may get before check() re-reads it in the background
LEDGER_WAIT_S = 5.0  # how long a refresh waits for a ledger another process is writing


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Check:
    """One budget covering a request: where it stands this period and what the request adds."""

    index: int
    budget: Budget
    period: Period
    spent: float
    amount: float  # the request's estimate for this budget (hard: high bound, warn: expected); 0 when unknown
    known: bool  # whether the estimate is known

    @property
    def over(self) -> bool:
        # an unknown estimate still may not start once the budget is used up
        limit = self.budget.limit_usd
        return self.spent + self.amount > limit or (not self.known and self.spent >= limit)

    @property
    def headroom(self) -> float:
        return self.budget.limit_usd - self.spent - self.amount

    def decision(self, action: str) -> GuardDecision:
        return GuardDecision(
            action=action,  # type: ignore[arg-type]
            budget=self.budget.name,
            limit_usd=self.budget.limit_usd,
            spent_usd=self.spent,
            estimate_usd=self.amount if self.known else None,
            period=self.period.label,
        )


@dataclass
class _Reservation:
    """This process's spend on one call: USD counted per (budget index, period label) that covers it."""

    day: date
    shares: dict[tuple[int, str], float]


class BudgetGuard:
    """Budgets from a file, spend from the ledger plus this process, estimates from the price books."""

    def __init__(
        self,
        budgets: Budgets | Sequence[Budget],
        books: PriceBooks,
        *,
        ledger: str | os.PathLike[str] | None = None,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``ledger`` None: count only this process's calls. Reads the ledger once now (errors raise here)."""
        self.budgets: tuple[Budget, ...] = budgets.budgets if isinstance(budgets, Budgets) else tuple(budgets)
        self.books = books
        self.ledger = Path(ledger) if ledger is not None else None
        self.refresh_s = refresh_s
        self._clock = clock
        self._estimate = lru_cache(maxsize=4096)(partial(estimate_usd, books))
        self._lock = threading.Lock()
        self._ledger_spend: dict[tuple[int, str], float] = {}  # (budget index, period label) -> USD in the ledger
        self._own: dict[tuple[int, str], float] = {}  # the same for this process's calls not yet in the ledger
        self._reservations: dict[str, _Reservation] = {}  # call id -> its share of _own
        self._warned: set[tuple[int, str]] = set()
        self._refreshing = False
        self._next_refresh = 0.0
        self._missing_logged = False
        self.refresh()

    @classmethod
    def from_files(
        cls,
        *,
        budgets: str | os.PathLike[str] | None = None,
        ledger: str | os.PathLike[str] | None = None,
        prices_dir: str | os.PathLike[str] | None = None,
        refresh_s: float = REFRESH_S,
    ) -> BudgetGuard:
        """The guard an app uses: files named like the CLI's options (and the same environment variables)."""
        return cls(
            load_budgets(budgets_path(budgets, prices_dir)),
            load_books(prices_dir),
            ledger=ledger_path(ledger),
            refresh_s=refresh_s,
        )

    # --- the collector.guard.Guard protocol --------------------------------------------------------------

    def check(self, request: GuardRequest) -> GuardDecision:
        """Allow, warn or block ``request`` (see the module docstring). Fast: no I/O, one short lock."""
        now = self._clock()
        req = estimate_request(request)
        est: Range | None = self._estimate(req, now.date()) if req is not None else None
        self._maybe_refresh()
        warn_first = False
        with self._lock:
            checks = self._checks(request, now, est)
            hard = [c for c in checks if c.over and c.budget.mode == "hard"]
            warn = [c for c in checks if c.over and c.budget.mode == "warn"]
            if hard:
                return hard[0].decision("block")
            self._reserve(request.call_id, now.date(), checks)
            if warn:
                chosen, action = warn[0], "warn"
                key = (chosen.index, chosen.period.label)
                warn_first = key not in self._warned
                self._warned.add(key)
            elif checks:
                chosen, action = min(checks, key=lambda c: c.headroom), "allow"
            else:
                return GuardDecision("allow", estimate_usd=est.expected if est is not None else None)
        if warn_first:
            log.warning(
                "imagecost budget %r (warn-only, %s UTC, %s): spent $%.6f + this request's estimate $%.6f is over "
                "the limit $%.6f; the call goes ahead (logged once per period)",
                chosen.budget.name,
                chosen.period.label,
                chosen.budget.scope(),
                chosen.spent,
                chosen.amount,
                chosen.budget.limit_usd,
            )
        return chosen.decision(action)

    def record(self, request: GuardRequest, outcome: GuardOutcome) -> None:
        """Re-price this process's reservation for an ended call from its reported tokens."""
        with self._lock:
            reservation = self._reservations.get(request.call_id)
        if reservation is None:
            return
        cost = outcome_usd(self.books, request, outcome, reservation.day)
        if cost is None:  # unknown: the estimate stays counted until the ledger has the call
            return
        with self._lock:
            if self._reservations.get(request.call_id) is reservation:
                for key, counted in reservation.shares.items():
                    self._own[key] = self._own.get(key, 0.0) + cost - counted
                    reservation.shares[key] = cost

    # --- spend so far -------------------------------------------------------------------------------------

    def spent(self, budget: str) -> float:
        """A budget's spend this period as the guard sees it now (ledger snapshot + this process)."""
        index = next((i for i, b in enumerate(self.budgets) if b.name == budget), None)
        if index is None:
            raise KeyError(f"no budget named {budget!r}")
        label = period_at(self.budgets[index].period, self._clock()).label
        with self._lock:
            return self._ledger_spend.get((index, label), 0.0) + self._own.get((index, label), 0.0)

    def refresh(self) -> None:
        """Re-read this period's spend from the ledger now (``check`` does this in the background)."""
        now = self._clock()
        periods = [(i, period_at(b.period, now)) for i, b in enumerate(self.budgets)]
        with self._lock:
            pending = list(self._reservations)
        found: set[str] = set()
        spend: dict[tuple[int, str], float] = {}
        if self.ledger is not None and self.ledger.exists() and periods:
            con = connect(self.ledger, read_only=True, wait_s=LEDGER_WAIT_S)
            try:
                con.execute("set threads = 1")  # a background chore inside the app: leave its cores to it
                found = ingested(con, pending)
                since, until = min(p.start for _, p in periods), max(p.end for _, p in periods)
                rows = read_spend(con, since, until, tag_keys(self.budgets))
            except duckdb.CatalogException:
                raise UserError(
                    f"ledger {self.ledger} has no pricing views; run `imagecost init --ledger {self.ledger}`"
                ) from None
            finally:
                con.close()
            spend = {(i, p.label): spend_for(self.budgets[i], p, rows).spent_usd for i, p in periods}
        elif self.ledger is not None and not self._missing_logged:
            self._missing_logged = True
            log.warning("imagecost budgets: no ledger at %s yet; counting this process's calls only", self.ledger)
        oldest = min((p.start.date() for _, p in periods), default=now.date())
        with self._lock:
            self._ledger_spend = spend
            for call_id in [c for c, r in self._reservations.items() if c in found or r.day < oldest]:
                self._release(call_id)
            self._next_refresh = time.monotonic() + self.refresh_s

    # --- internals ----------------------------------------------------------------------------------------

    def _checks(self, request: GuardRequest, now: datetime, est: Range | None) -> list[_Check]:
        checks = []
        for index, budget in enumerate(self.budgets):
            if not budget.matches(request.route_owner, request.model, request.tags):
                continue
            period = period_at(budget.period, now)
            key = (index, period.label)
            spent = self._ledger_spend.get(key, 0.0) + self._own.get(key, 0.0)
            amount = 0.0 if est is None else est.high if budget.mode == "hard" else est.expected
            checks.append(_Check(index, budget, period, spent, amount, est is not None))
        return checks

    def _reserve(self, call_id: str, day: date, checks: list[_Check]) -> None:
        if not checks:
            return
        shares = {(c.index, c.period.label): c.amount for c in checks}
        self._reservations[call_id] = _Reservation(day, shares)
        for key, amount in shares.items():
            self._own[key] = self._own.get(key, 0.0) + amount

    def _release(self, call_id: str) -> None:
        for key, amount in self._reservations.pop(call_id).shares.items():
            self._own[key] -= amount

    def _maybe_refresh(self) -> None:
        if self.ledger is None:
            return
        with self._lock:
            if self._refreshing or time.monotonic() < self._next_refresh:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh_in_background, name="imagecost-budgets-refresh", daemon=True).start()

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # keep the last snapshot; try again after refresh_s
            log.warning("imagecost budgets: could not re-read %s (%s); using the last figures", self.ledger, exc)
            with self._lock:
                self._next_refresh = time.monotonic() + self.refresh_s
        finally:
            with self._lock:
                self._refreshing = False
