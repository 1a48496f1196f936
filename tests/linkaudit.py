"""Adversarial checker for task linking and report roll-ups (tests/integration/test_link_audit.py,
bench/audit_linking.py).

From a seed it generates a realistic set of calls (customers, workspaces, plans, features,
tasks with retries and fallbacks across routes, failures, invalid output, unpriced models,
unattributed calls, tasks crossing hour, day and month boundaries, tasks split over two
"processes": different traces, one baggage ``task.id``), records them as OpenTelemetry spans
and exports them to a running processor over OTLP/gRPC in shuffled batches, with duplicate
deliveries, late or missing task roots and roll-up refreshes at random points. Then it
compares ``llm_calls`` / ``llm_tasks`` with the generator's ground truth and every report with
a naive computation from ``llm_calls FINAL`` over periods whose bounds are not hour-aligned.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

# 2026-10-31 22:00 UTC: the calls cross a day and a month boundary.
BASE = datetime(2026, 10, 31, 22, 0, tzinfo=timezone.utc)
CUSTOMERS = {  # customer -> (plan, workspaces): demo/billing.yaml
    "acme": ("pro", ["ws_acme_legal", "ws_acme_sales"]),
    "globex": ("enterprise", ["ws_globex_main"]),
    "hooli": ("starter", ["ws_hooli_research"]),
    "walkin": ("pro", ["ws_walkin"]),  # not in the billing file
    "": ("", [""]),  # no baggage: (unattributed)
}
FEATURES = ["summarize", "chat", "extract", ""]
ROUTES = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("openai", "my-private-finetune"),  # unpriced
]
UNATTRIBUTED = "(unattributed)"


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


@dataclass
class Call:
    task: str
    process: int
    start: datetime
    end: datetime
    provider: str
    model: str
    status: str  # ok | error | invalid_output
    customer: str
    workspace: str
    plan: str
    feature: str
    span_id: str = ""

    @property
    def route(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass
class Task:
    task_id: str
    customer: str
    workspace: str
    plan: str
    feature: str
    calls: list[Call] = field(default_factory=list)
    outcome: str | None = None  # the root's word; None: no root span
    root_sent: bool = True
    root_start: datetime | None = None
    root_end: datetime | None = None
    by_trace: bool = False  # no task.id: the task is its trace


@dataclass
class Scenario:
    tasks: list[Task]
    spans: list[Any]  # ReadableSpans: calls and roots, in recording order
    roots: dict[str, Any]  # task_id -> root span


def generate(seed: int, n_tasks: int = 40) -> Scenario:
    rng = random.Random(seed)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("linkaudit")
    tasks: list[Task] = []
    roots: dict[str, Any] = {}
    call_spans: list[tuple[Call, Any]] = []
    for n in range(n_tasks):
        customer = rng.choice(list(CUSTOMERS))
        plan, workspaces = CUSTOMERS[customer]
        task = Task(
            task_id=f"task-{seed}-{n}",
            customer=customer,
            workspace=rng.choice(workspaces),
            plan=plan,
            feature=rng.choice(FEATURES),
            by_trace=rng.random() < 0.1,
        )
        # Mostly around the month boundary; a few minutes either side of an hour often.
        start = BASE + timedelta(
            minutes=rng.choice([rng.uniform(0, 240), 59 + rng.uniform(0, 1.5), 119.5, 120]),
            microseconds=rng.randrange(1_000_000),
        )
        two_processes = not task.by_trace and rng.random() < 0.3
        at = start
        route = rng.choice(ROUTES)
        steps = rng.choice([1, 1, 2, 3, 4, 6])
        for _ in range(steps):
            status = rng.choices(["ok", "error", "invalid_output"], [6, 3, 1])[0]
            duration = timedelta(microseconds=rng.randrange(1_000, 20_000_000))
            process = 1 if two_processes and rng.random() < 0.5 else 0
            customer_seen = customer
            if process == 1 and rng.random() < 0.3:
                customer_seen = ""  # the other process lost the customer baggage
            task.calls.append(
                Call(
                    task.task_id,
                    process,
                    at,
                    at + duration,
                    route[0],
                    route[1],
                    status,
                    customer_seen,
                    task.workspace,
                    task.plan,
                    task.feature,
                )
            )
            # Next attempt: after this one ended, or overlapping it (the other process).
            gap = timedelta(microseconds=rng.randrange(1, 90_000_000))
            at = at + duration + gap if rng.random() < 0.85 else at + gap / 50
            if status != "ok":
                if rng.random() < 0.5:
                    route = rng.choice(ROUTES)
            elif rng.random() < 0.3:
                route = rng.choice(ROUTES)
        if rng.random() < 0.75:
            task.outcome = rng.choice(["success", "success", "failure", "rejected"])
            task.root_sent = rng.random() < 0.9
            task.root_start = start - timedelta(microseconds=rng.randrange(1, 5_000))
            task.root_end = max(c.end for c in task.calls) + timedelta(
                microseconds=rng.randrange(-3_000_000, 3_000_000)
            )
        elif task.by_trace:
            task.outcome, task.root_sent = "success", True
            task.root_start = start - timedelta(milliseconds=1)
            task.root_end = max(c.end for c in task.calls)
        tasks.append(task)

        # Record: the root (if any) parents process 0's calls; process 1's calls sit in another
        # trace under a non-LLM request span.
        root = None
        if task.root_start is not None:
            attributes = {
                "llm_margin.task.root": True,
                "llm_margin.task.name": "answer",
                "llm_margin.task.outcome": task.outcome,
            } | _baggage(task.customer, task.workspace, task.plan, task.feature)
            if not task.by_trace:
                attributes["task.id"] = task.task_id
            root = tracer.start_span(
                "llm_margin.task answer", attributes=attributes, start_time=ns(task.root_start)
            )
        other = tracer.start_span("POST /work", start_time=ns(start))
        for call in task.calls:
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": call.provider,
                "gen_ai.request.model": call.model,
                "llm_margin.instrumentation": "linkaudit",
                "llm_margin.status": call.status,
            } | _baggage(call.customer, call.workspace, call.plan, call.feature)
            if not task.by_trace:
                attributes["task.id"] = task.task_id
            if call.status != "error":
                attributes |= {
                    "gen_ai.usage.input_tokens": rng.randrange(1, 50_000),
                    "gen_ai.usage.output_tokens": rng.randrange(0, 5_000),
                }
            else:
                attributes["error.type"] = "RateLimitError"
            if rng.random() < 0.5:  # a per-process attempt number, often wrong across processes
                attributes["llm_margin.attempt"] = rng.randrange(1, 4)
                attributes["llm_margin.attempt_kind"] = rng.choice(["first", "retry", "fallback"])
            parent = root if call.process == 0 else other
            if task.by_trace and root is None:
                parent = other
            context = set_span_in_context(parent) if parent is not None else None
            span = tracer.start_span(
                f"chat {call.model}",
                context=context,
                kind=SpanKind.CLIENT,
                attributes=attributes,
                start_time=ns(call.start),
            )
            if call.status == "error":
                span.set_status(Status(StatusCode.ERROR))
            span.end(end_time=ns(call.end))
            call.span_id = span.get_span_context().span_id.to_bytes(8, "big").hex()
            call_spans.append((call, span))
        other.end(end_time=ns(max(c.end for c in task.calls)))
        if task.by_trace:
            trace = (root or other).get_span_context().trace_id
            task.task_id = f"{trace:032x}"
            for call in task.calls:
                call.task = task.task_id
        if root is not None:
            root.end(end_time=ns(task.root_end))
            roots[task.task_id] = root
    return Scenario(tasks, list(memory.get_finished_spans()), roots)


def _baggage(customer: str, workspace: str, plan: str, feature: str) -> dict[str, str]:
    out = {}
    if customer:
        out["customer.id"] = customer
        if workspace:
            out["workspace.id"] = workspace
        if plan:
            out["plan"] = plan
    if feature:
        out["feature"] = feature
    return out


# -- delivery ------------------------------------------------------------------------------------
def deliver(
    processor: Any, scenario: Scenario, seed: int, refresh: Any = None, log: Any = None
) -> None:
    """Export the scenario's spans in shuffled batches with duplicates and late roots, calling
    ``refresh(rng)`` at random points between batches."""
    rng = random.Random(seed * 7919 + 1)

    def key(span: Any) -> int:
        return span.context.span_id

    root_ids = {key(s) for s in scenario.roots.values()}
    unsent_roots = {
        key(scenario.roots[t.task_id])
        for t in scenario.tasks
        if t.task_id in scenario.roots and not t.root_sent
    }
    spans = [s for s in scenario.spans if key(s) not in unsent_roots]
    rng.shuffle(spans)
    late = {key(s) for s in spans if key(s) in root_ids and rng.random() < 0.5}
    spans = [s for s in spans if key(s) not in late] + [s for s in spans if key(s) in late]
    batches: list[list[Any]] = []
    while spans:
        size = rng.choice([1, 2, 5, 10, 25])
        batches.append(spans[:size])
        spans = spans[size:]
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{processor.grpc.port}", insecure=True)
    try:
        sent: list[list[Any]] = []
        for batch in batches:
            assert exporter.export(batch) == SpanExportResult.SUCCESS
            sent.append(batch)
            if rng.random() < 0.15:  # an exporter retry of an acknowledged batch
                assert exporter.export(rng.choice(sent)) == SpanExportResult.SUCCESS
            if refresh is not None and rng.random() < 0.2:
                refresh(rng)
    finally:
        exporter.shutdown()


# -- ground truth ----------------------------------------------------------------------------------
def expected_kinds(calls: list[Call]) -> dict[str, tuple[int, str]]:
    """span id -> (attempt, kind) by the documented rule."""
    ordered = sorted(calls, key=lambda c: (c.start, c.span_id))
    out = {}
    for n, call in enumerate(ordered, 1):
        ended = [c for c in calls if c.end < call.start]
        kind = "first"
        if ended:
            last = max(ended, key=lambda c: c.end)
            if last.status != "ok":
                kind = "retry" if last.route == call.route else "fallback"
        out[call.span_id] = (n, kind)
    return out


def check_store(store: Any, scenario: Scenario) -> list[str]:
    """llm_calls and llm_tasks against the generator's ground truth."""
    problems: list[str] = []
    rows = store.query(
        "SELECT span_id, task_id, customer_id, attempt, attempt_kind, route, status, cost_usd, "
        "priced FROM llm_calls FINAL"
    ).dicts()
    by_span: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_span[row["span_id"]].append(row)
    calls = [c for t in scenario.tasks for c in t.calls]
    if len(rows) != len(calls):
        problems.append(f"llm_calls FINAL has {len(rows)} rows for {len(calls)} calls")
    cost_of: dict[str, Decimal] = {}
    for task in scenario.tasks:
        kinds = expected_kinds(task.calls)
        for call in task.calls:
            found = by_span.get(call.span_id, [])
            if len(found) != 1:
                problems.append(f"call {call.span_id} of {task.task_id}: {len(found)} rows")
                continue
            row = found[0]
            want = (task.task_id, call.customer or UNATTRIBUTED, *kinds[call.span_id])
            got = (row["task_id"], row["customer_id"], row["attempt"], row["attempt_kind"])
            if got != want:
                problems.append(f"call {call.span_id}: {got} != {want}")
            if "my-private" in call.model and (row["priced"] or row["cost_usd"] != 0):
                problems.append(f"unpriced call {call.span_id} priced")
            cost_of[call.span_id] = Decimal(row["cost_usd"])
    tasks = {
        r["task_id"]: r
        for r in store.query(
            "SELECT task_id, customer_id, workspace_id, plan, feature, outcome, calls, retries, "
            "fallbacks, cost_usd, wasted_cost_usd, original_route, final_route, started_at, "
            "ended_at FROM llm_tasks FINAL"
        ).dicts()
    }
    if len(tasks) != len(scenario.tasks):
        problems.append(f"llm_tasks has {len(tasks)} rows for {len(scenario.tasks)} tasks")
    for task in scenario.tasks:
        row = tasks.get(task.task_id)
        if row is None:
            problems.append(f"task {task.task_id} missing")
            continue
        want = expected_task(task, cost_of)
        got = {k: _plain(row[k]) for k in want}
        if got != want:
            diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
            problems.append(f"task {task.task_id}: got/want {diff}")
    return problems


def expected_task(task: Task, cost_of: dict[str, Decimal]) -> dict[str, Any]:
    kinds = expected_kinds(task.calls)
    ordered = sorted(task.calls, key=lambda c: (c.start, c.span_id))
    root = task.outcome is not None and task.root_sent
    word = (task.outcome or "").lower() if root else "unknown"
    outcome = (
        "unknown" if word in ("", "unknown") else "success" if word == "success" else "failure"
    )
    cost = sum((cost_of.get(c.span_id, Decimal(0)) for c in task.calls), Decimal(0))
    failed = sum(
        (cost_of.get(c.span_id, Decimal(0)) for c in task.calls if c.status != "ok"), Decimal(0)
    )
    first = ordered[0]
    started = first.start
    ended = max(c.end for c in task.calls)
    if root:
        started, ended = min(started, task.root_start), max(ended, task.root_end)
    # without a root: the first call that carries a customer (some processes lose it)
    carried = [c.customer for c in ordered if c.customer]
    customer = (
        (task.customer or UNATTRIBUTED) if root else (carried[0] if carried else UNATTRIBUTED)
    )
    return {
        "customer_id": customer,
        "outcome": outcome,
        "calls": len(task.calls),
        "retries": sum(1 for k in kinds.values() if k[1] == "retry"),
        "fallbacks": sum(1 for k in kinds.values() if k[1] == "fallback"),
        "cost_usd": cost,
        "wasted_cost_usd": cost if outcome == "failure" else failed,
        "original_route": first.route,
        "final_route": ordered[-1].route,
        "started_at": started.replace(tzinfo=None),
        "ended_at": ended.replace(tzinfo=None),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, str) and value and value[0].isdigit() and "." in value:
        return Decimal(value)
    return value


# -- naive reports -------------------------------------------------------------------------------
def raw_calls(store: Any) -> list[dict[str, Any]]:
    rows = store.query(
        "SELECT ts, span_id, task_id, customer_id, workspace_id, plan, feature, provider, "
        "if(response_model != '', response_model, request_model) AS model, route, status, "
        "attempt_kind, input_tokens, output_tokens, cost_usd, priced FROM llm_calls FINAL"
    ).dicts()
    for row in rows:
        row["ts"] = row["ts"].replace(tzinfo=None)
        row["cost_usd"] = Decimal(row["cost_usd"])
    return rows


def _in(rows: list[dict], since: datetime, until: datetime) -> list[dict]:
    s, u = since.replace(tzinfo=None), until.replace(tzinfo=None)
    return [r for r in rows if s <= r["ts"] < u]


def naive_customers(rows: list[dict], since: datetime, until: datetime) -> dict[str, tuple]:
    out: dict[str, list] = {}
    tasks: dict[str, set] = defaultdict(set)
    for r in _in(rows, since, until):
        acc = out.setdefault(r["customer_id"], [0, 0, 0, Decimal(0), 0])
        acc[0] += 1
        acc[1] += r["input_tokens"]
        acc[2] += r["output_tokens"]
        acc[3] += r["cost_usd"]
        acc[4] += 0 if r["priced"] else 1
        tasks[r["customer_id"]].add(r["task_id"])
    return {c: (v[0], len(tasks[c]), v[1], v[2], v[3], v[4]) for c, v in out.items()}


def report_customers(rows: list[dict]) -> dict[str, tuple]:
    return {
        r["customer_id"]: (
            r["calls"],
            r["tasks"],
            r["input_tokens"],
            r["output_tokens"],
            Decimal(r["cost_usd"]),
            r["unpriced_calls"],
        )
        for r in rows
        if r["calls"]
    }


def _task_groups(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["task_id"]].append(r)
    for calls in groups.values():
        calls.sort(key=lambda r: (r["ts"], r["span_id"]))
    return groups


def naive_routes(rows: list[dict], since: datetime, until: datetime) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for calls in _task_groups(_in(rows, since, until)).values():
        first, last = calls[0]["route"], calls[-1]["route"]
        fell_back = any(c["attempt_kind"] == "fallback" for c in calls)
        acc = out.setdefault(
            first,
            {
                "tasks": 0,
                "fallback_tasks": 0,
                "retry_tasks": 0,
                "calls": 0,
                "cost_usd": Decimal(0),
                "fallback_cost_usd": Decimal(0),
                "failed_cost_usd": Decimal(0),
                "fallback_routes": set(),
            },
        )
        acc["tasks"] += 1
        acc["fallback_tasks"] += fell_back
        acc["retry_tasks"] += any(c["attempt_kind"] == "retry" for c in calls)
        acc["calls"] += len(calls)
        acc["cost_usd"] += sum((c["cost_usd"] for c in calls), Decimal(0))
        acc["fallback_cost_usd"] += sum(
            (c["cost_usd"] for c in calls if c["attempt_kind"] == "fallback"), Decimal(0)
        )
        acc["failed_cost_usd"] += sum(
            (c["cost_usd"] for c in calls if c["status"] != "ok"), Decimal(0)
        )
        if fell_back and last != first:
            acc["fallback_routes"].add(last)
    for acc in out.values():
        acc["fallback_routes"] = " ".join(sorted(acc["fallback_routes"]))
    return out


def report_routes(rows: list[dict]) -> dict[str, dict]:
    keys = (
        "tasks",
        "fallback_tasks",
        "retry_tasks",
        "calls",
        "cost_usd",
        "fallback_cost_usd",
        "failed_cost_usd",
        "fallback_routes",
    )
    return {
        r["original_route"]: {k: Decimal(r[k]) if k.endswith("_usd") else r[k] for k in keys}
        for r in rows
    }


def naive_runaway(rows: list[dict], since: datetime, until: datetime, loops: int) -> dict:
    out: dict[tuple, dict] = {}
    for calls in _task_groups(_in(rows, since, until)).values():
        # The task's customer, as in llm_tasks: its first call carrying one.
        owner = min(calls, key=lambda c: (c["customer_id"] == UNATTRIBUTED, c["ts"]))
        key = (owner["customer_id"], owner["workspace_id"] or "(none)")
        acc = out.setdefault(
            key,
            {
                "cost_usd": Decimal(0),
                "tasks": 0,
                "calls": 0,
                "max_attempts": 0,
                "loop_tasks": 0,
                "failed_cost_usd": Decimal(0),
            },
        )
        acc["cost_usd"] += sum((c["cost_usd"] for c in calls), Decimal(0))
        acc["tasks"] += 1
        acc["calls"] += len(calls)
        acc["max_attempts"] = max(acc["max_attempts"], len(calls))
        acc["loop_tasks"] += len(calls) >= loops
        acc["failed_cost_usd"] += sum(
            (c["cost_usd"] for c in calls if c["status"] != "ok"), Decimal(0)
        )
    previous = since - (until - since)
    for r in _in(rows, previous, since):
        key = (r["customer_id"], r["workspace_id"] or "(none)")
        if key in out:
            out[key]["previous_cost_usd"] = (
                out[key].get("previous_cost_usd", Decimal(0)) + r["cost_usd"]
            )
    for acc in out.values():
        acc.setdefault("previous_cost_usd", Decimal(0))  # no calls before: 0, not NULL
    return out


def report_runaway(rows: list[dict]) -> dict:
    keys = (
        "cost_usd",
        "tasks",
        "calls",
        "max_attempts",
        "loop_tasks",
        "failed_cost_usd",
        "previous_cost_usd",
    )
    return {
        (r["customer_id"], r["workspace_id"]): {
            k: (Decimal(r[k]) if r[k] is not None else None) if k.endswith("_usd") else r[k]
            for k in keys
        }
        for r in rows
    }


def naive_unpriced(rows: list[dict], since: datetime, until: datetime) -> dict:
    out: dict[tuple, list] = {}
    for r in _in(rows, since, until):
        kinds = []
        if not r["priced"]:
            kinds.append("unpriced")
        if r["customer_id"] == UNATTRIBUTED:
            kinds.append("unattributed")
        for kind in kinds:
            acc = out.setdefault((kind, r["provider"], r["model"]), [0, 0, 0, Decimal(0)])
            acc[0] += 1
            acc[1] += r["input_tokens"]
            acc[2] += r["output_tokens"]
            acc[3] += r["cost_usd"]
    return {k: tuple(v) for k, v in out.items()}


def report_unpriced(rows: list[dict]) -> dict:
    return {
        (r["kind"], r["provider"], r["model"]): (
            r["calls"],
            r["input_tokens"],
            r["output_tokens"],
            Decimal(r["cost_usd"]),
        )
        for r in rows
    }


def naive_daily(rows: list[dict], since: datetime, until: datetime) -> dict:
    out: dict[tuple, list] = {}
    for r in _in(rows, since, until):
        key = (r["ts"].date().isoformat(), r["feature"] or "(none)")
        acc = out.setdefault(key, [0, set(), set(), Decimal(0)])
        acc[0] += 1
        acc[1].add(r["task_id"])
        acc[2].add(r["customer_id"])
        acc[3] += r["cost_usd"]
    return {k: (v[0], len(v[1]), len(v[2]), v[3]) for k, v in out.items()}


def report_daily(rows: list[dict]) -> dict:
    return {
        (str(r["day"])[:10], r["feature"]): (
            r["calls"],
            r["tasks"],
            r["active_customers"],
            Decimal(r["cost_usd"]),
        )
        for r in rows
    }


def naive_budgets(rows: list[dict], reported: dict, until: datetime) -> dict:
    """Month-to-date spend and calls at ``until`` of each customer and workspace reported."""
    month = until.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spend: dict[tuple, list] = defaultdict(lambda: [Decimal(0), 0])
    for r in _in(rows, month, until):
        for key in (("customer", r["customer_id"]), ("workspace", r["workspace_id"])):
            spend[key][0] += r["cost_usd"]
            spend[key][1] += 1
    out = {}
    for key in reported:
        if key[0] != "plan":
            spent, calls = spend.get(key, (Decimal(0), 0))
            out[key] = (spent, calls)
    return out


def report_budgets(rows: list[dict]) -> dict:
    return {
        (r["scope"], r["scope_id"]): (Decimal(r["spent_usd"] or 0), r["calls"] or 0)
        for r in rows
        if r["scope"] != "plan"
    }


def compare(name: str, got: Any, want: Any) -> list[str]:
    if got == want:
        return []
    if isinstance(got, dict) and isinstance(want, dict):
        keys = sorted(set(got) | set(want), key=str)
        diffs = [
            f"{k}: got {got.get(k)} want {want.get(k)}" for k in keys if got.get(k) != want.get(k)
        ]
        return [f"{name}: " + "; ".join(diffs[:6])]
    return [f"{name}: got {got} want {want}"]


def periods(rng: random.Random) -> list[tuple[datetime, datetime]]:
    """Report periods over the scenario: whole, mid-hour ends, across the month boundary."""
    out = [(BASE - timedelta(hours=1), BASE + timedelta(hours=6))]
    for _ in range(3):
        since = BASE + timedelta(seconds=rng.uniform(-600, 4 * 3600))
        until = since + timedelta(seconds=rng.uniform(60, 4 * 3600))
        out.append((since, until))
    month = datetime(2026, 11, 1, tzinfo=timezone.utc)
    out.append((month - timedelta(minutes=37, microseconds=123), month + timedelta(minutes=71)))
    # Over 7 days: the raw edges are read with FINAL instead of LIMIT BY while the roll-up is
    # stale.
    out.append((BASE - timedelta(days=9, minutes=13), BASE + timedelta(hours=3, seconds=17.5)))
    return out


def check_reports(store: Any, seed: int, tag: str = "") -> list[str]:
    from llm_margin.processor.reports.customers import customer_rows
    from llm_margin.processor.reports.views import VIEWS, view_rows

    rng = random.Random(seed * 31 + len(tag))
    rows = raw_calls(store)
    problems: list[str] = []
    for since, until in periods(rng):
        label = f"{tag}[{since:%d %H:%M:%S.%f}..{until:%d %H:%M:%S.%f})"
        got = report_customers(customer_rows(store, since, until))
        problems += compare(f"customers {label}", got, naive_customers(rows, since, until))
        got = report_routes(view_rows(store, VIEWS["routes"], since, until))
        problems += compare(f"routes {label}", got, naive_routes(rows, since, until))
        want = naive_runaway(rows, since, until, 5)
        if want:
            got = report_runaway(view_rows(store, VIEWS["runaway"], since, until, limit=10_000))
            problems += compare(f"runaway {label}", got, want)
        got = report_unpriced(view_rows(store, VIEWS["unpriced"], since, until))
        problems += compare(f"unpriced {label}", got, naive_unpriced(rows, since, until))
        got = report_daily(view_rows(store, VIEWS["daily"], since, until))
        problems += compare(f"daily {label}", got, naive_daily(rows, since, until))
        got = report_budgets(view_rows(store, VIEWS["budgets"], since, until))
        problems += compare(f"budgets {label}", got, naive_budgets(rows, got, until))
        total = sum((r["cost_usd"] for r in _in(rows, since, until)), Decimal(0))
        problems += check_totals(store, since, until, total, label)
    return problems


def check_totals(store: Any, since: datetime, until: datetime, total: Decimal, label: str):
    """Plans, export and the customers TOTAL all equal the stored cost of the period."""
    from llm_margin.processor.reports.customers import customer_rows
    from llm_margin.processor.reports.customers import total_row as customers_total
    from llm_margin.processor.reports.export import usage_lines
    from llm_margin.processor.reports.views import VIEWS, view_rows

    problems = []
    customers = customers_total(customer_rows(store, since, until))["cost_usd"]
    if Decimal(customers) != total:
        problems.append(f"customers TOTAL {label}: {customers} != {total}")
    plans = sum(
        (Decimal(r["cost_usd"]) for r in view_rows(store, VIEWS["plans"], since, until)),
        Decimal(0),
    )
    unattributed = sum(
        (
            Decimal(r["cost_usd"])
            for r in customer_rows(store, since, until)
            if r["customer_id"] == UNATTRIBUTED
        ),
        Decimal(0),
    )
    if plans + unattributed != total and plans != total:
        problems.append(f"plans {label}: {plans} (+{unattributed} unattributed) != {total}")
    exported = sum(
        (Decimal(line["cost_usd"]) for line in usage_lines(store, "p", Decimal(0), (since, until))),
        Decimal(0),
    )
    if exported != total:
        problems.append(f"export {label}: {exported} != {total}")
    return problems
