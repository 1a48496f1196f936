"""Where alerts go: the log, a webhook (Slack-compatible JSON), and the ``llm_alerts`` table.

A sink failing never stops the others; the table sink runs first so an alert that reached
anyone is also on record (and is not fired again after a restart).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from datetime import datetime, timezone
from typing import Any, Protocol

from llm_margin.processor.budgets.thresholds import Alert, split_workspace_scope_id
from llm_margin.processor.durable_file import write_durably

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


# llm_alerts keeps the row of the highest version per key: counting down from here, the
# first insert of a key is the one kept (the first processor to fire an alert owns it).
FIRST_INSERT_WINS = 1 << 62


class TableSink:
    name = "table"

    def __init__(self, store: Any) -> None:
        self._store = store

    def send(self, alerts: list[Alert], fired_at: datetime) -> None:
        self.record(alerts, fired_at)

    def record(self, alerts: list[Alert], fired_at: datetime) -> int:
        """Inserts the alerts; returns their version (the evaluator reads back which keys
        kept it: those this processor fired first)."""
        version = FIRST_INSERT_WINS - time.time_ns()
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
        return version


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
    scope = f"{e(alert.scope)} `{e(alert.scope_id)}`"
    if alert.scope == "workspace":  # scope_id is customer/workspace: say which is which
        customer, workspace = split_workspace_scope_id(alert.scope_id)
        scope = f"workspace `{e(workspace)}` · customer `{e(customer)}`"
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
                        "text": f"{scope} · period {e(alert.period)} · "
                        f"threshold {alert.threshold_pct.normalize():f}%",
                    }
                ],
            },
        ],
        "llm_margin": {**alert.as_dict(), "fired_at": fired_at.isoformat()},
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is not followed (urllib would turn the POST into a GET to wherever the receiver
    points: a pivot into the processor's network); it surfaces as an ``HTTPError``."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        return None


class _Watchdog:
    """Shuts the request's socket down when the delivery deadline passes: a socket timeout
    bounds each read, not the request, and a receiver dripping a byte a second never trips it.
    The socket is registered as soon as it is connected (before TLS), so a slow handshake,
    headers or body all end at the deadline."""

    def __init__(self, seconds: float) -> None:
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    """urllib (proxies from the environment still apply) whose connections register their
    socket with ``watchdog``, and that does not follow redirects."""

    def connection(base: type[http.client.HTTPConnection]) -> Any:
        def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            conn = base(*args, **kwargs)
            create = conn._create_connection  # socket.create_connection

            def create_and_register(*a: Any, **kw: Any) -> socket.socket:
                sock = create(*a, **kw)
                watchdog.register(sock)
                return sock

            conn._create_connection = create_and_register
            return conn

        return make

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(connection(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(connection(http.client.HTTPSConnection), req, context=self._context)

    return urllib.request.build_opener(HTTP, HTTPS, _NoRedirect)


DELIVERED, REJECTED, KEPT = "delivered", "rejected", "kept"
# Answers about the payload itself (Slack: 400 invalid_payload, too long): it will never be
# taken, so it is dropped and counted. Answers about the endpoint or the moment (401/403/404
# a wrong or revoked URL, 429, 5xx) keep the alert for the next round.
PAYLOAD_REJECTED_STATUSES = frozenset({400, 413, 422})


class WebhookSink:
    """POSTs each alert (Slack shape). An alert the receiver did not take (down, erroring) is
    kept, oldest first and bounded, and sent again before any newer one at the next round
    (``retry_pending``, every evaluation): a Slack outage delays alerts, it does not lose them
    (unless more than ``max_pending`` pile up: the oldest are dropped, counted).

    Delivery stays synchronous in the evaluation round (callers and the redelivery guarantees
    see its outcome at once), but one call of ``send``/``retry_pending`` -- every pending alert,
    every attempt, connecting, the response -- ends by ``timeout`` seconds: a watchdog shuts the
    socket at the deadline, and what was not delivered by then waits for the next round. A slow
    or hanging receiver delays the round by at most ``timeout``, never more. Redirects are not
    followed (a 3xx is a failed delivery) and at most ``MAX_RESPONSE_BYTES`` of an answer are
    read.

    With ``state_file``, the alerts waiting for redelivery are also kept there (rewritten
    whenever they change), so a restart does not lose them: their ``llm_alerts`` rows say they
    fired, so nothing would ever send them again."""

    name = "webhook"
    MAX_RESPONSE_BYTES = 64 * 1024

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        attempts: int = 3,
        metrics: Any = None,
        max_pending: int = 1000,
        state_file: str | None = None,
    ):
        self._url = url
        self._timeout = timeout
        self._attempts = attempts
        self._metrics = metrics
        self._max_pending = max_pending
        self._state_file = state_file
        self._lock = threading.Lock()
        self._pending: deque[bytes] = deque(self._load())
        self._unsaved = False  # the file is behind (a write failed): written again next round

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
            self._save()  # before delivering: a crash while posting must not lose them
            self._deliver()
            self._save()

    def retry_pending(self) -> None:
        with self._lock:
            waiting = len(self._pending)
            if waiting:
                self._deliver()
            if len(self._pending) != waiting or self._unsaved:
                self._save()

    def _load(self) -> list[bytes]:
        """Alerts an earlier run left waiting; none if the file is missing or unreadable (an
        unreadable one is set aside as ``<file>.bad``, not overwritten)."""
        if not self._state_file or not os.path.exists(self._state_file):
            return []
        try:
            with open(self._state_file, encoding="utf-8") as file:
                payloads = json.load(file)
            if not isinstance(payloads, list) or not all(isinstance(p, str) for p in payloads):
                raise ValueError("not a list of alert payloads")
            bodies = [payload.encode() for payload in payloads]
        # Whatever the file holds (a lone surrogate, nesting past the recursion limit), the
        # processor starts: this runs in serve's start-up.
        except Exception as exc:
            self._count("alert_webhook_state_errors")
            log.error("alert webhook: pending alerts in %s unreadable (%s); set aside as "
                      "%s.bad", self._state_file, exc, self._state_file)  # fmt: skip
            try:
                os.replace(self._state_file, self._state_file + ".bad")
            except OSError:
                pass
            return []
        if len(bodies) > self._max_pending:  # a smaller bound now: the oldest go, counted
            for _ in range(len(bodies) - self._max_pending):
                self._count("alert_webhook_dropped")
            bodies = bodies[-self._max_pending :]
        return bodies

    def _save(self) -> None:
        """Write the waiting alerts to the state file, atomically (none: remove it)."""
        if not self._state_file:
            return
        try:
            if not self._pending:
                if os.path.exists(self._state_file):
                    os.remove(self._state_file)
                self._unsaved = False
                return
            document = json.dumps([body.decode() for body in self._pending])
            write_durably(self._state_file, document.encode())
            self._unsaved = False
        except OSError as exc:  # kept in memory still; the next round tries again
            self._unsaved = True
            self._count("alert_webhook_state_errors")
            log.warning("alert webhook: could not keep pending alerts in %s: %s",
                        self._state_file, exc)  # fmt: skip

    def _deliver(self) -> None:
        """In order; stops at the first the receiver does not take, or at the deadline (the
        rest is kept for next time)."""
        deadline = time.monotonic() + self._timeout
        while self._pending:
            if time.monotonic() >= deadline:
                log.warning(
                    "alert webhook: delivery deadline (%gs) reached, %d alert(s) kept for the "
                    "next round",
                    self._timeout,
                    len(self._pending),
                )
                return
            outcome = self._post(self._pending[0], deadline)
            if outcome == KEPT:
                return
            self._pending.popleft()  # delivered, or refused for good: the next one may go

    def _count(self, name: str) -> None:
        if self._metrics is not None:
            self._metrics.inc(name)

    def _post(self, body: bytes, deadline: float) -> str:
        """DELIVERED, REJECTED (the receiver refused this payload for good) or KEPT."""
        delay = 0.2
        attempt = 0
        while True:
            attempt += 1
            reason, retry = self._post_once(body, deadline)
            if reason is None:
                return DELIVERED
            if retry is None:
                # Sending it again would get the same answer, and holding it first in the
                # queue would hold back every alert after it until the queue overflows.
                self._count("alert_webhook_rejected")
                log.error("alert webhook: receiver refused an alert for good, dropped: %s", reason)
                return REJECTED
            last = attempt >= self._attempts or not retry
            if not last and time.monotonic() + delay >= deadline:
                last = True
            if last:
                self._count("alert_webhook_failures")
                log.warning(
                    "alert webhook failed after %d attempt(s) (kept, %d pending): %s",
                    attempt,
                    len(self._pending),
                    reason,
                )
                return KEPT
            time.sleep(delay)
            delay *= 2

    def _post_once(self, body: bytes, deadline: float) -> tuple[str | None, bool | None]:
        """One POST within ``deadline``: (None, _) when taken, else (reason, worth retrying),
        worth retrying None when the receiver refused this payload for good."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "delivery deadline reached", False
        request = urllib.request.Request(self._url, data=body, method="POST")
        request.add_header("Content-Type", "application/json")
        with _Watchdog(remaining) as watchdog:
            try:
                with _opener(watchdog).open(request, timeout=remaining) as response:
                    # A 2xx status means the receiver took the alert: an answer cut short (the
                    # deadline, a reset) does not make it undelivered.
                    try:
                        response.read(self.MAX_RESPONSE_BYTES)
                    except (OSError, http.client.HTTPException):
                        pass
                return None, False
            except urllib.error.HTTPError as exc:
                exc.close()
                if 300 <= exc.code < 400:
                    target = exc.headers.get("Location", "?") if exc.headers else "?"
                    return (
                        f"receiver answered {exc.code} (redirect to {target}); redirects are "
                        "not followed, point webhook_url at the final address",
                        False,
                    )
                if exc.code in PAYLOAD_REJECTED_STATUSES:
                    return f"HTTP {exc.code} {exc.reason}", None
                return f"HTTP {exc.code} {exc.reason}", True
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                if watchdog.expired:
                    return f"no complete answer within the {self._timeout:g}s deadline", False
                return str(exc), True
