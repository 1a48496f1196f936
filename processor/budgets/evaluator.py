"""The budget evaluator: a background thread in the running processor.

Every ``interval_seconds`` it reads month-to-date and today's spend from the store, fires each
alert once per threshold per period (remembered in ``llm_alerts``, so a restart does not fire
again), and refreshes the decisions ``GET /api/budget/decision`` answers from memory (cheap
for the app side, which asks before provider calls).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from llm_margin.clickhouse import read_sql
from llm_margin.processor.budgets import thresholds
from llm_margin.processor.budgets.config import BudgetConfig
from llm_margin.processor.budgets.sinks import LogSink, Sink, TableSink, WebhookSink
from llm_margin.processor.reports.parallel import read_only
from llm_margin.processor.reports.rollup import refresh_usage_rollup
from llm_margin.processor.reports.views import run_sql

log = logging.getLogger("llm_margin.budgets")

DECISION_PATH = "/api/budget/decision"
ROLLUP_HOURS_PER_ROUND = 48
# Roll up an hour once its calls have not changed for this long: the hour still being written
# is read from llm_calls by every report anyway (any insert makes its roll-up stale).
ROLLUP_SETTLED_SECONDS = 60
# Decisions older than this many intervals (plus the grace, for a slow round) are not served.
STALE_ROUNDS = 3
STALE_GRACE_SECONDS = 60
# A task's calls counted against the runaway caps: those of the last 24 hours.
RUNAWAY_WINDOW = timedelta(hours=24)
# A decision asked for while the first round is still running waits this long for it: an app
# started together with its processor gets an answer, not "unavailable".
FIRST_ROUND_WAIT_SECONDS = 2.0


class BudgetEvaluator:
    def __init__(
        self,
        store: Any,
        config: BudgetConfig,
        *,
        metrics: Any = None,
        sinks: list[Sink] | None = None,
        webhook_state_file: str | None = None,
    ) -> None:
        self._store = store
        # Reads go to the store's read-only clients: on the main client they held the lock the
        # writer and linker insert under, and a round's queries (seconds on a busy day) delayed
        # acknowledgements past exporters' timeouts.
        self._reader = read_only(store)
        self.config = config
        self._metrics = metrics
        if sinks is None:
            sinks = [TableSink(store), LogSink()]
            if config.webhook_url:
                sinks.append(
                    WebhookSink(
                        config.webhook_url,
                        config.webhook_timeout_seconds,
                        metrics=metrics,
                        state_file=webhook_state_file,
                    )
                )
        self._sinks = sinks
        self._fired: set[tuple] = set()
        self._loaded_periods: set[str] = set()
        self._decisions: dict[tuple[str, str], thresholds.Decision] = {}
        self._blocked_tasks: dict[str, dict[str, str]] = {}  # customer -> {task: reason}
        self._evaluated_at: datetime | None = None
        self._evaluated_mono: float | None = None  # when the last round succeeded (monotonic)
        self._first_round = threading.Event()  # set once a round has succeeded
        self._lock = threading.Lock()
        self._evaluate_lock = threading.Lock()  # the thread and a direct caller never overlap
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm-margin-budgets", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Safe without start()."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                self.evaluate()
            except Exception as exc:  # the store may be briefly unavailable; try next round
                if self._metrics is not None:
                    self._metrics.inc("budget_evaluation_errors")
                log.warning("budget evaluation failed: %s", exc)
            if self._stop.wait(self.config.interval_seconds):
                return

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, now: datetime | None = None) -> list[thresholds.Alert]:
        """One round; returns the alerts fired now (each only once per period)."""
        with self._evaluate_lock:
            return self._evaluate(now)

    def _evaluate(self, now: datetime | None) -> list[thresholds.Alert]:
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        # Keep the hourly roll-up current for the reports (queries stay right without it).
        # Bounded per round so a big merge never holds the store for long.
        refresh_usage_rollup(
            self._store,
            max_hours=ROLLUP_HOURS_PER_ROUND,
            settled_seconds=ROLLUP_SETTLED_SECONDS,
        )
        until = now + timedelta(microseconds=1)
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        usage = run_sql(self._reader, "queries/budget_usage.sql", {"until": until})
        daily = run_sql(
            self._reader, "queries/daily_spend.sql", {"since": day_start, "until": until}
        )
        candidates = thresholds.allowance_alerts(
            usage, self.config, now, (now - month_start).total_seconds() / 3600
        )
        candidates += thresholds.daily_cap_alerts(daily, self.config, now)
        if self.config.max_attempts_per_task or self.config.max_cost_per_task_usd:
            runaway = run_sql(
                self._reader,
                "queries/runaway_tasks.sql",
                {
                    # The last 24 hours, not today: a loop running past midnight UTC would
                    # start from zero again, and be let through until it reached the cap anew.
                    "since": now - RUNAWAY_WINDOW,
                    "until": until,
                    "max_attempts": self.config.max_attempts_per_task or 2**31,
                    "max_cost_usd": self.config.max_cost_per_task_usd or Decimal(10**12),
                },
            )
            candidates += thresholds.runaway_alerts(runaway, self.config, now)
        table = thresholds.decisions(usage, daily, self.config)
        runaway_tasks = thresholds.blocked_tasks(candidates)
        self._forget_past_periods(now)
        fresh = self._new_alerts(candidates)
        with self._lock:
            self._decisions = table
            self._blocked_tasks = runaway_tasks
            self._evaluated_at = now
            self._evaluated_mono = time.monotonic()
        self._first_round.set()
        if fresh:
            fresh = self._dispatch(fresh, now)
        if not fresh:
            # send() already delivers what is pending first: retrying after it would give a
            # hanging webhook receiver a second delivery deadline in the same round.
            self._retry_pending()
        return fresh

    def _retry_pending(self) -> None:
        """Alerts a sink could not deliver earlier (a webhook receiver that was down)."""
        for sink in self._sinks:
            retry = getattr(sink, "retry_pending", None)
            if retry is None:
                continue
            try:
                retry()
            except Exception as exc:
                log.warning("alert sink %s retry failed: %s", getattr(sink, "name", sink), exc)

    def _forget_past_periods(self, now: datetime) -> None:
        """Alerts fire once per period of ``now`` (its month, its day; a runaway task's, the
        day its calls of the last 24 hours began: yesterday or today): the keys of earlier
        periods can never match again, and kept they grow by every runaway task of every day."""
        current = {
            thresholds.month_period(now),
            thresholds.day_period(now),
            thresholds.day_period(now - RUNAWAY_WINDOW),
        }
        if self._loaded_periods - current:
            self._fired = {key for key in self._fired if key[0] in current}
            self._loaded_periods &= current

    def _new_alerts(self, candidates: list[thresholds.Alert]) -> list[thresholds.Alert]:
        periods = {a.period for a in candidates} - self._loaded_periods
        if periods:
            self._load_fired(periods)
        fresh = []
        for alert in candidates:
            if alert.key not in self._fired:
                self._fired.add(alert.key)
                fresh.append(alert)
        return fresh

    def _read_fired(self, periods: set[str]) -> dict[tuple, int]:
        """Key -> version of the alerts recorded in llm_alerts for these periods."""
        result = self._reader.query(read_sql("alerts_fired.sql"), {"periods": sorted(periods)})
        return {
            (period, rule, scope, key_id, Decimal(str(pct))): version
            for period, rule, scope, scope_id, customer_id, pct, version in result.rows
            for key_id in thresholds.fired_scope_ids(scope, scope_id, customer_id)
        }

    def _load_fired(self, periods: set[str]) -> None:
        self._fired |= set(self._read_fired(periods))
        self._loaded_periods |= periods

    def _dispatch(self, alerts: list[thresholds.Alert], now: datetime) -> list[thresholds.Alert]:
        """Records the alerts in llm_alerts, then sends to the other sinks those this
        processor recorded first: another processor on the same store (a replica) may have
        fired the same alert since this one read the table, and it has told people already.
        Returns the alerts sent."""
        table = [s for s in self._sinks if isinstance(s, TableSink)]
        others = [s for s in self._sinks if not isinstance(s, TableSink)]
        for sink in table:
            try:
                version = sink.record(alerts, now)
                recorded = self._read_fired({a.period for a in alerts})
                self._fired |= set(recorded)
                # a key not read back (cannot happen on one server) is sent: at least once
                alerts = [a for a in alerts if recorded.get(a.key, version) == version]
            except Exception as exc:  # not on record: still sent (at least once)
                log.warning("alert sink %s failed: %s", sink.name, exc)
        if self._metrics is not None:
            self._metrics.inc("budget_alerts_fired", len(alerts))
        for sink in others if alerts else ():
            try:
                sink.send(alerts, now)
            except Exception as exc:  # one sink failing must not silence the others
                log.warning("alert sink %s failed: %s", getattr(sink, "name", sink), exc)
        return alerts

    # -- decisions -----------------------------------------------------------------------------
    def decision(self, customer_id: str, workspace_id: str = "") -> dict[str, Any]:
        with self._lock:
            found = thresholds.lookup(self._decisions, customer_id, workspace_id)
            evaluated_at = self._evaluated_at
            runaway = dict(self._blocked_tasks.get(customer_id, {}))
        document = found.as_dict()
        # The customer's runaway tasks (hard caps per task, last 24 hours): the app refuses further
        # calls of these tasks, whatever the customer's own action.
        document["blocked_tasks"] = runaway
        document["workspace_id"] = workspace_id or None
        document["evaluated_at"] = evaluated_at.isoformat() if evaluated_at else None
        return document

    def http_decision(self, query: str) -> tuple[int, dict[str, Any]]:
        """Handler for GET /api/budget/decision?customer_id=..&workspace_id=.."""
        params = parse_qs(query)
        customer = (params.get("customer_id") or [""])[0]
        if not customer or len(customer) > 256:
            return 400, {"code": 400, "message": "customer_id is required (at most 256 chars)"}
        workspace = (params.get("workspace_id") or [""])[0][:256]
        if not self._first_round.is_set():
            self._first_round.wait(FIRST_ROUND_WAIT_SECONDS)
        with self._lock:
            evaluated = self._evaluated_mono
        # No round yet (just started, or every round failed), or none for several intervals:
        # "unavailable", so the app's fail-open / fail-closed setting decides. An "allow" here
        # would be made from no data, and would let a capped customer through a fail-closed app.
        stale_after = STALE_ROUNDS * self.config.interval_seconds + STALE_GRACE_SECONDS
        if evaluated is None or time.monotonic() - evaluated > stale_after:
            return 503, {
                "code": 503,
                "message": "no current budget evaluation (starting, or the store is unavailable)",
            }
        return 200, self.decision(customer, workspace)
