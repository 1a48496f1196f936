"""The demo workload: requests as an API gateway would forward them, baggage included.

Deterministic: the same list every run, so the report's numbers are reproducible.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

# customer -> (plan, workspace, users)
CUSTOMERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "acme": ("pro", "ws_acme_legal", ("u_ann", "u_bob")),
    "globex": ("enterprise", "ws_globex_main", ("u_gia",)),
    "initech": ("starter", "ws_initech", ("u_ivan",)),
    "hooli": ("starter", "ws_hooli_research", ("u_hal", "u_hope")),
    "umbrella": ("pro", "ws_umbrella", ("u_uma",)),
    "stark": ("enterprise", "ws_stark_eng", ("u_tony", "u_pep")),
}


@dataclass(frozen=True)
class DemoRequest:
    customer_id: str | None  # None: an internal job, no customer baggage
    feature: str
    path: str
    body: dict[str, Any]

    def baggage(self, user_index: int = 0) -> str:
        if self.customer_id is None:
            return ""
        plan, workspace, users = CUSTOMERS[self.customer_id]
        user = users[user_index % len(users)]
        return (
            f"customer.id={self.customer_id},workspace.id={workspace},plan={plan},"
            f"user.id={user},feature={self.feature}"
        )


def requests() -> Iterator[DemoRequest]:
    for customer in CUSTOMERS:
        for i in range(6):
            yield DemoRequest(
                customer, "summarize", "/summarize", {"text": f"Doc {i} of {customer}"}
            )
        for i in range(3):
            yield DemoRequest(customer, "chat", "/chat", {"message": f"Hi {i}"})
        yield DemoRequest(customer, "answer", "/answer", {"question": "Top risks?"})
        yield DemoRequest(customer, "extract", "/extract", {})
    # SDK-internal retries: the provider rate-limits the first attempt, the SDK retries.
    for customer in ("acme", "globex", "stark"):
        yield DemoRequest(customer, "summarize", "/summarize", {"simulate": "429:1"})
    # App-level fallback: the primary model fails (500 on every SDK attempt), the app falls
    # back to a cheaper model; both calls are the customer's.
    for customer in ("acme", "umbrella"):
        yield DemoRequest(customer, "answer", "/answer", {"simulate": "500"})
    # Invalid JSON re-asks: two bad answers, then a good one.
    yield DemoRequest(
        "umbrella", "extract", "/extract", {"simulate_attempts": ["invalid-json", "invalid-json"]}
    )
    yield DemoRequest("initech", "extract", "/extract", {"simulate_attempts": ["invalid-json"]})
    # A self-hosted fine-tune the price book does not know: stored unpriced, never dropped,
    # and listed by the reports until a price overlay covers it (then `reprice`).
    for i in range(2):
        yield DemoRequest(
            "acme", "summarize", "/summarize", {"text": f"Contract {i}", "model": "acme-legal-ft"}
        )
    # An internal job that calls the model with no customer in its context: its cost is
    # stored under (unattributed), so it shows up instead of vanishing from the totals.
    for i in range(2):
        yield DemoRequest(None, "digest", "/summarize", {"text": f"Nightly digest {i}"})
    # The heavy customer: its integration sends the whole conversation history every time
    # (about 100k tokens a call) to the primary model. Its plan cannot carry that.
    for _ in range(80):
        yield DemoRequest(
            "hooli", "research", "/summarize", {"history_words": 100_000, "max_tokens": 800}
        )


def send(app_url: str, request: DemoRequest, index: int) -> int:
    data = json.dumps(request.body).encode()
    http_request = urllib.request.Request(app_url + request.path, data=data, method="POST")
    http_request.add_header("Content-Type", "application/json")
    baggage = request.baggage(index)
    if baggage:
        http_request.add_header("baggage", baggage)
    try:
        with urllib.request.urlopen(http_request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def run_workload(app_url: str, concurrency: int = 8) -> dict[int, int]:
    """Send every request; returns HTTP status -> count."""
    statuses: dict[int, int] = {}
    items = list(requests())
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for status in pool.map(lambda pair: send(app_url, pair[1], pair[0]), enumerate(items)):
            statuses[status] = statuses.get(status, 0) + 1
    return statuses
