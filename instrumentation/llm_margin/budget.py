"""App-side budget enforcement: ask the processor for a customer's budget decision before a
provider call. Off unless configured.

Usage
-----
Set ``LLM_MARGIN_BUDGET_URL`` to the processor's HTTP address (``http://processor:4318``), or
call :func:`configure`. The provider instrumentation calls :func:`before_provider_call` with
the requested model just before the SDK sends the request; it returns the model to use:

- ``allow``: the same model.
- ``degrade`` (soft cap, e.g. the allowance is used up): the configured cheaper model for it,
  if one is configured; otherwise the same model.
- ``block`` (a hard cap: daily spend, allowance cap): raises :class:`BudgetExceeded` before any
  request leaves the process. So does a call of a task the processor lists as a runaway loop
  (``blocked_tasks``: over ``max_attempts_per_task`` or ``max_cost_per_task_usd`` in 24 h); the
  task is the request's baggage ``task.id`` (``llm_margin.task`` puts it there).

The customer and workspace come from the request's baggage (``customer.id``,
``workspace.id``), as the gateway set them, unless passed explicitly.

Configuration (environment, read once)
--------------------------------------
- ``LLM_MARGIN_BUDGET_URL``: processor HTTP base URL. Unset: enforcement is off.
- ``LLM_MARGIN_BUDGET_TOKEN`` (else ``LLM_MARGIN_AUTH_TOKEN``): bearer token of the processor.
- ``LLM_MARGIN_BUDGET_TTL``: seconds a decision is cached per customer/workspace (default 5).
- ``LLM_MARGIN_BUDGET_TIMEOUT``: seconds to wait for the processor (default 0.5).
- ``LLM_MARGIN_BUDGET_FAIL_OPEN``: ``true`` (default) allows calls when the processor cannot be
  asked; ``false`` blocks them (raises :class:`BudgetExceeded`).
- ``LLM_MARGIN_BUDGET_DEGRADE_MODELS``: ``gpt-4o=gpt-4o-mini,claude-sonnet-4-5=claude-haiku-4-5``.

API
---
``configure(settings | None)``, ``before_provider_call(model, customer_id=None,
workspace_id=None) -> model`` (``await before_provider_call_async(...)`` in async code: the
answer is awaited on a worker thread, the event loop goes on), ``BudgetClient``,
``BudgetSettings``, ``BudgetExceeded``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import baggage

logger = logging.getLogger("llm_margin")

DECISION_PATH = "/api/budget/decision"
_CACHE_MAX = 10_000
_ACTIONS = ("allow", "degrade", "block")


class BudgetExceeded(RuntimeError):
    """A hard budget cap: the provider was not called."""

    def __init__(self, customer_id: str, reasons: list[str], decision: dict[str, Any]):
        self.customer_id = customer_id
        self.reasons = reasons
        self.decision = decision
        why = "; ".join(reasons) or "budget cap reached"
        super().__init__(f"LLM budget exceeded for customer {customer_id!r}: {why}")


@dataclass(frozen=True)
class BudgetSettings:
    url: str
    token: str | None = None
    ttl_seconds: float = 5.0
    timeout_seconds: float = 0.5
    fail_open: bool = True
    degrade_models: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, strict: bool = False
    ) -> BudgetSettings | None:
        """Settings from ``LLM_MARGIN_BUDGET_*``; None when enforcement is off. A bad value is
        logged once and that setting keeps its default (a bad URL turns enforcement off):
        telemetry settings never stop the app. ``strict=True`` raises ``ValueError`` instead."""
        env = os.environ if environ is None else environ

        def bad(message: str) -> None:
            if strict:
                raise ValueError(message)
            logger.warning("llm-margin: %s; using the default", message)

        url = env.get("LLM_MARGIN_BUDGET_URL", "").strip()
        if not url:
            return None
        if not url.startswith(("http://", "https://")):
            bad(f"LLM_MARGIN_BUDGET_URL must be an http(s) URL, got {url!r} (enforcement off)")
            return None
        degrade = {}
        for pair in filter(None, env.get("LLM_MARGIN_BUDGET_DEGRADE_MODELS", "").split(",")):
            source, sep, target = pair.partition("=")
            if not sep or not source.strip() or not target.strip():
                bad(f"LLM_MARGIN_BUDGET_DEGRADE_MODELS: bad pair {pair!r} (ignored)")
                continue
            degrade[source.strip()] = target.strip()
        fail_open = env.get("LLM_MARGIN_BUDGET_FAIL_OPEN", "true").strip().lower()
        if fail_open not in ("true", "false", "1", "0", "yes", "no"):
            bad(f"LLM_MARGIN_BUDGET_FAIL_OPEN must be true or false, got {fail_open!r}")
            fail_open = "true"

        def seconds(name: str, default: float) -> float:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if not value >= 0 or value == float("inf"):
                bad(f"{name} must be a number of seconds >= 0, got {text!r}")
                return default
            return value

        return cls(
            url=url.rstrip("/"),
            token=env.get("LLM_MARGIN_BUDGET_TOKEN") or env.get("LLM_MARGIN_AUTH_TOKEN"),
            ttl_seconds=seconds("LLM_MARGIN_BUDGET_TTL", 5.0),
            timeout_seconds=seconds("LLM_MARGIN_BUDGET_TIMEOUT", 0.5),
            fail_open=fail_open in ("true", "1", "yes"),
            degrade_models=degrade,
        )


class BudgetClient:
    """Asks the processor, caches each answer for ``ttl_seconds`` (bounded cache)."""

    def __init__(self, settings: BudgetSettings) -> None:
        self.settings = settings
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.failures = 0  # counted, not logged per call: this runs on the hot path

    def _cached(self, customer_id: str, workspace_id: str) -> dict[str, Any] | None:
        with self._lock:
            cached = self._cache.get((customer_id, workspace_id))
        return cached[1] if cached and cached[0] > time.monotonic() else None

    def decision(self, customer_id: str, workspace_id: str = "") -> dict[str, Any]:
        key = (customer_id, workspace_id)
        now = time.monotonic()
        cached = self._cached(customer_id, workspace_id)
        if cached is not None:
            return cached
        document = self._ask(customer_id, workspace_id)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (now + self.settings.ttl_seconds, document)
        return document

    def _ask(self, customer_id: str, workspace_id: str) -> dict[str, Any]:
        query = urllib.parse.urlencode({"customer_id": customer_id, "workspace_id": workspace_id})
        request = urllib.request.Request(f"{self.settings.url}{DECISION_PATH}?{query}")
        if self.settings.token:
            request.add_header("Authorization", f"Bearer {self.settings.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds) as resp:
                document = json.loads(resp.read())
            if not isinstance(document, dict) or document.get("action") not in _ACTIONS:
                raise ValueError("unexpected budget answer")
            return document
        # HTTPException: something not HTTP on the port, an answer cut short. Any odd answer
        # is "unavailable": escaping, it would bypass fail_open=False (the wrappers let a
        # failure of ours through).
        except (OSError, ValueError, urllib.error.URLError, http.client.HTTPException):
            self.failures += 1
            action = "allow" if self.settings.fail_open else "block"
            return {
                "customer_id": customer_id,
                "action": action,
                "reasons": ["budget service unavailable"],
            }

    def choose_model(
        self, model: str, customer_id: str, workspace_id: str = "", task_id: str = ""
    ) -> str:
        """The model to call, or raise BudgetExceeded (also when ``task_id`` is one of the
        customer's runaway tasks the processor lists in ``blocked_tasks``)."""
        return self._choose(model, self.decision(customer_id, workspace_id), customer_id, task_id)

    async def choose_model_async(
        self, model: str, customer_id: str, workspace_id: str = "", task_id: str = ""
    ) -> str:
        """``choose_model`` for async code: a decision not cached is fetched on a worker
        thread, so waiting for the processor (up to ``timeout_seconds``) never stalls the event
        loop, and the app's other requests go on meanwhile."""
        document = self._cached(customer_id, workspace_id)
        if document is None:
            document = await asyncio.to_thread(self.decision, customer_id, workspace_id)
        return self._choose(model, document, customer_id, task_id)

    def _choose(self, model: str, document: dict[str, Any], customer_id: str, task_id: str) -> str:
        action = document.get("action")
        if action == "block":
            raise BudgetExceeded(customer_id, list(document.get("reasons") or []), document)
        blocked = document.get("blocked_tasks")
        if task_id and isinstance(blocked, dict) and task_id in blocked:
            raise BudgetExceeded(customer_id, [str(blocked[task_id])], document)
        if action == "degrade":
            return self.settings.degrade_models.get(model, model)
        return model


_client: BudgetClient | None = None
_configured = False
_configure_lock = threading.Lock()


def configure(settings: BudgetSettings | None) -> None:
    """Turn enforcement on with these settings, or off with None (overrides the environment)."""
    global _client, _configured
    with _configure_lock:
        _client = BudgetClient(settings) if settings else None
        _configured = True


def _current() -> BudgetClient | None:
    global _client, _configured
    if not _configured:
        with _configure_lock:
            if not _configured:
                try:
                    settings = BudgetSettings.from_env()
                except Exception:  # never let a setting break the app's calls
                    logger.exception("llm-margin: budget settings unreadable; enforcement off")
                    settings = None
                _client = BudgetClient(settings) if settings else None
                _configured = True
    return _client


def enforcement() -> BudgetClient | None:
    """The configured client, None when enforcement is off (the wrappers ask per call)."""
    return _current()


# --- hook for the provider instrumentation (one call before the SDK sends) ---------------------
def _asking(
    customer_id: str | None, workspace_id: str | None
) -> tuple[BudgetClient, str, str, str] | None:
    """The client and (customer, workspace, task) to ask about; None when there is nothing to
    ask (enforcement off, or a request with no customer)."""
    client = _current()
    if client is None:
        return None
    customer = customer_id or baggage.get_baggage("customer.id")
    if not customer:
        return None
    workspace = workspace_id or baggage.get_baggage("workspace.id") or ""
    task = baggage.get_baggage("task.id") or ""
    return client, str(customer), str(workspace), str(task)


def before_provider_call(
    model: str, customer_id: str | None = None, workspace_id: str | None = None
) -> str:
    """Model to call for this request; raises BudgetExceeded over a hard cap. No-op when
    enforcement is off or the request has no customer."""
    asking = _asking(customer_id, workspace_id)
    if asking is None:
        return model
    client, customer, workspace, task = asking
    return client.choose_model(model, customer, workspace, task)


async def before_provider_call_async(
    model: str, customer_id: str | None = None, workspace_id: str | None = None
) -> str:
    """``before_provider_call`` for async SDK methods (the event loop is not blocked while the
    processor is asked)."""
    asking = _asking(customer_id, workspace_id)
    if asking is None:
        return model
    client, customer, workspace, task = asking
    return await client.choose_model_async(model, customer, workspace, task)
