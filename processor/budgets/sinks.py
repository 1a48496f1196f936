"""Where alerts go: the log, a webhook (Slack-compatible JSON), and the ``llm_alerts`` table.

A sink failing never stops the others; the table sink runs first so an alert that reached
anyone is also on record (and is not fired again after a restart).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from datetime import datetime, timezone
from typing import Any, Protocol

from llm_margin.processor.budgets.thresholds import Alert

log = logging.getLogger("llm_margin.budgets")

ALERT_COLUMNS = (
    "fired_at",
    "period",
    "rule",
    "severity",
    "scope",
    "scope_id",
    "customer_id",
    "threshold_pct",
    "spent_usd",
    "limit_usd",
    "observed",
    "message",
    "version",
)
_ICON = {"warning": ":warning:", "critical": ":rotating_light:"}


class Sink(Protocol):
    name: str

    def send(self, alerts: list[Alert], fired_at: datetime) -> None: ...


class LogSink:
    name = "log"

    def send(self, alerts: list[Alert], fired_at: datetime) -> None:
        # One line per alert: alerts are rare by construction (once per threshold per period).
        for alert in alerts:
            level = logging.ERROR if alert.severity == "critical" else logging.WARNING
            log.log(level, "budget alert [%s] %s", alert.rule, alert.message)


class TableSink:
    name = "table"

    def __init__(self, store: Any) -> None:
        self._store = store

    def send(self, alerts: list[Alert], fired_at: datetime) -> None:
        version = time.time_ns()
        naive = fired_at.astimezone(timezone.utc).replace(tzinfo=None)
        self._store.insert_rows(
            "llm_alerts",
            [
                (
                    naive,
                    a.period,
                    a.rule,
                    a.severity,
                    a.scope,
                    a.scope_id,
                    a.customer_id,
                    a.threshold_pct,
                    a.spent_usd,
                    a.limit_usd,
                    a.observed,
                    a.message,
                    version,
                )
                for a in alerts
            ],
            ALERT_COLUMNS,
        )


def slack_escape(value: object) -> str:
    """Slack's mrkdwn escaping (``&`` ``<`` ``>``): an untrusted value (a customer id from
    baggage, a workspace id, a plan name, a message quoting them) cannot become a mention
    (``<!channel>``) or a link (``<https://..|text>``)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert, fired_at: datetime) -> dict[str, Any]:
    """Slack incoming-webhook shape (``text`` + ``blocks``); ``llm_margin`` carries the
    structured alert for other receivers (Slack ignores it). Every value in the Slack text is
    escaped; the structured ``llm_margin`` fields are data and stay as they are."""
    icon = _ICON.get(alert.severity, "")
    e = slack_escape
    message, severity = e(alert.message), e(alert.severity)
    return {
        "text": f"{icon} llm-margin {severity}: {message}".strip(),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{icon} *{e(alert.rule)}* ({severity})\n{message}",
                },
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{e(alert.scope)} `{e(alert.scope_id)}` · "
                        f"period {e(alert.period)} · "
                        f"threshold {alert.threshold_pct.normalize():f}%",
                    }
                ],
            },
        ],
        "llm_margin": {**alert.as_dict(), "fired_at": fired_at.isoformat()},
    }


class WebhookSink:
    """POSTs each alert (Slack shape). An alert the receiver did not take (down, erroring) is
    kept, oldest first and bounded, and sent again before any newer one at the next round
    (``retry_pending``, every evaluation): a Slack outage delays alerts, it does not lose them
    (unless more than ``max_pending`` pile up: the oldest are dropped, counted)."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        attempts: int = 3,
        metrics: Any = None,
        max_pending: int = 1000,
    ):
        self._url = url
        self._timeout = timeout
        self._attempts = attempts
        self._metrics = metrics
        self._max_pending = max_pending
        self._pending: deque[bytes] = deque()
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def send(self, alerts: list[Alert], fired_at: datetime) -> None:
        with self._lock:
            for alert in alerts:
                if len(self._pending) >= self._max_pending:
                    self._pending.popleft()
                    self._count("alert_webhook_dropped")
                self._pending.append(json.dumps(slack_payload(alert, fired_at)).encode())
            self._deliver()

    def retry_pending(self) -> None:
        with self._lock:
            if self._pending:
                self._deliver()

    def _deliver(self) -> None:
        """In order; stops at the first the receiver does not take (kept for next time)."""
        while self._pending:
            if not self._post(self._pending[0]):
                return
            self._pending.popleft()

    def _count(self, name: str) -> None:
        if self._metrics is not None:
            self._metrics.inc(name)

    def _post(self, body: bytes) -> bool:
        delay = 0.2
        for attempt in range(1, self._attempts + 1):
            request = urllib.request.Request(self._url, data=body, method="POST")
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    response.read()
                return True
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self._attempts:
                    self._count("alert_webhook_failures")
                    log.warning(
                        "alert webhook failed after %d attempts (kept, %d pending): %s",
                        attempt,
                        len(self._pending),
                        exc,
                    )
                    return False
                time.sleep(delay)
                delay *= 2
        return False
