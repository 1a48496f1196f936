"""Budget enforcement in the app: the provider wrappers ask the budget service before the SDK
sends (real openai, anthropic and google-genai SDKs against the simulator; a real HTTP decision service on
loopback answering as the processor's /api/budget/decision does)."""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import openai
import pytest
from google import genai
from instr_fixtures import customer_baggage, sim, tracing  # noqa: F401
from llm_margin import attributes as A
from llm_margin import budget

from tests.conftest import free_port

pytestmark = pytest.mark.integration

ACTIONS = {"acme": "degrade", "hooli": "block"}  # anyone else: allow
BLOCKED_TASKS = {"globex": {"t-loop": "runaway task t-loop: 40 calls"}}  # runaway loops
MESSAGES = [{"role": "user", "content": "hello"}]


BEFORE_ANSWER = {"hook": None}  # called by the decision service before it answers


@pytest.fixture
def decisions():
    asked: list[str] = []
    BEFORE_ANSWER["hook"] = None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if BEFORE_ANSWER["hook"]:
                BEFORE_ANSWER["hook"]()
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            customer = query["customer_id"][0]
            asked.append(customer)
            action = ACTIONS.get(customer, "allow")
            document = {"customer_id": customer, "action": action, "reasons": [f"test {action}"]}
            document["blocked_tasks"] = BLOCKED_TASKS.get(customer, {})
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    budget.configure(
        budget.BudgetSettings(
            url=f"http://127.0.0.1:{server.server_address[1]}",
            ttl_seconds=0,
            degrade_models={
                "gpt-4o": "gpt-4o-mini",
                "claude-sonnet-4-5": "claude-haiku-4-5",
                "gemini-2.5-pro": "gemini-2.5-flash",
            },
        )
    )
    try:
        yield asked
    finally:
        budget.configure(None)
        server.shutdown()
        server.server_close()


def _models_sent(sim) -> list[str]:  # noqa: F811
    return [r.json["model"] for r in sim.requests if r.json and "model" in r.json]


def test_openai_degrades_blocks_and_allows(tracing, sim, decisions):  # noqa: F811
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    with customer_baggage(customer__id="acme"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with customer_baggage(customer__id="globex"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with customer_baggage(customer__id="hooli"), pytest.raises(budget.BudgetExceeded):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert _models_sent(sim) == ["gpt-4o-mini", "gpt-4o"]  # hooli's call never left the app
    assert decisions == ["acme", "globex", "hooli"]
    spans = tracing.calls()
    assert [s.attributes[A.GEN_AI_REQUEST_MODEL] for s in spans] == ["gpt-4o-mini", "gpt-4o"]


def test_anthropic_async_degrades(tracing, sim, decisions):  # noqa: F811
    import asyncio

    client = anthropic.AsyncAnthropic(
        base_url=sim.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    )

    async def call() -> None:
        with customer_baggage(customer__id="acme"):
            await client.messages.create(
                model="claude-sonnet-4-5", max_tokens=16, messages=MESSAGES
            )

    asyncio.run(call())
    assert _models_sent(sim) == ["claude-haiku-4-5"]


def test_gemini_degrades_and_blocks_plain_streamed_and_async(tracing, sim, decisions):  # noqa: F811
    import asyncio

    client = genai.Client(api_key="test-key", http_options={"base_url": sim.gemini_base_url})
    with customer_baggage(customer__id="acme"):
        client.models.generate_content(model="gemini-2.5-pro", contents="hello")
        list(client.models.generate_content_stream(model="gemini-2.5-pro", contents="hello"))
    with customer_baggage(customer__id="hooli"):
        with pytest.raises(budget.BudgetExceeded):
            client.models.generate_content(model="gemini-2.5-pro", contents="hello")
        with pytest.raises(budget.BudgetExceeded):  # raised through the SDK's stream loop
            list(client.models.generate_content_stream(model="gemini-2.5-pro", contents="hi"))
        with pytest.raises(budget.BudgetExceeded):
            asyncio.run(client.aio.models.generate_content(model="gemini-2.5-pro", contents="hi"))
    sent = [r.path.rsplit("/", 1)[1].split(":")[0] for r in sim.requests]
    assert sent == ["gemini-2.5-flash", "gemini-2.5-flash"]  # hooli's calls never left the app
    spans = tracing.calls()
    assert [s.attributes[A.GEN_AI_REQUEST_MODEL] for s in spans] == ["gemini-2.5-flash"] * 2


def test_without_a_customer_or_when_off_nothing_is_asked(tracing, sim, decisions):  # noqa: F811
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # no baggage
    budget.configure(None)
    with customer_baggage(customer__id="hooli"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert decisions == [] and _models_sent(sim) == ["gpt-4o", "gpt-4o"]


def test_anthropic_messages_stream_blocks_and_degrades(tracing, sim, decisions):  # noqa: F811
    """`messages.stream` sends when its manager is entered: the budget still applies first."""
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-t", max_retries=0)
    with customer_baggage(customer__id="acme"):
        with client.messages.stream(
            model="claude-sonnet-4-5", max_tokens=16, messages=MESSAGES
        ) as stream:
            assert stream.get_final_message().model
    with customer_baggage(customer__id="hooli"), pytest.raises(budget.BudgetExceeded):
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=16, messages=MESSAGES):
            pass
    assert _models_sent(sim) == ["claude-haiku-4-5"]  # degraded; hooli's never left the app


def test_anthropic_async_messages_stream_blocks(tracing, sim, decisions):  # noqa: F811
    import asyncio

    client = anthropic.AsyncAnthropic(
        base_url=sim.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    )

    async def call() -> None:
        with customer_baggage(customer__id="hooli"):
            async with client.messages.stream(
                model="claude-sonnet-4-5", max_tokens=16, messages=MESSAGES
            ):
                pass

    with pytest.raises(budget.BudgetExceeded):
        asyncio.run(call())
    assert _models_sent(sim) == []


def test_bad_budget_settings_never_break_calls(tracing, sim, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LLM_MARGIN_BUDGET_URL", "not-a-url")
    monkeypatch.setenv("LLM_MARGIN_BUDGET_FAIL_OPEN", "maybe")
    monkeypatch.setattr(budget, "_configured", False)  # read the environment again
    try:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
        with customer_baggage(customer__id="hooli"):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert _models_sent(sim) == ["gpt-4o", "gpt-4o"] and budget.enforcement() is None
    finally:
        budget.configure(None)


def test_a_runaway_task_is_blocked_and_other_tasks_are_not(tracing, sim, decisions):  # noqa: F811
    import llm_margin

    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    with customer_baggage(customer__id="globex"):
        with llm_margin.task("agent"):  # a new task id: allowed
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with customer_baggage(customer__id="globex", task__id="t-loop"):
        with pytest.raises(budget.BudgetExceeded, match="runaway task t-loop"):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert _models_sent(sim) == ["gpt-4o"]  # the runaway task's call never left the app


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_async_calls_do_not_stall_the_event_loop_while_asking(tracing, sim, decisions, provider):  # noqa: F811
    """An async app's other requests go on while a decision is fetched (the processor slow,
    or unreachable until the timeout): the event loop is not blocked for the round trip."""
    import asyncio

    # The service answers only once the app's event loop has run while the request waited: a
    # loop blocked on the round trip never releases it (causal, so a loaded CI machine cannot
    # make it flaky the way a stall-duration threshold was).
    pending: list[threading.Event] = []
    released: list[bool] = []

    def hold_until_the_loop_runs() -> None:
        waiting = threading.Event()
        pending.append(waiting)
        released.append(waiting.wait(3.0))

    BEFORE_ANSWER["hook"] = hold_until_the_loop_runs
    settings = budget.enforcement().settings
    budget.configure(dataclasses.replace(settings, timeout_seconds=10.0))
    if provider == "openai":
        client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-t", max_retries=0)
        create = client.chat.completions.create
        model = "gpt-4o"
    else:
        client = anthropic.AsyncAnthropic(
            base_url=sim.anthropic_base_url, api_key="sk-ant-t", max_retries=0
        )
        create = client.messages.create
        model = "claude-sonnet-4-5"

    async def main() -> None:
        done = asyncio.Event()

        async def ticker() -> None:  # another request of the app, wanting the loop often
            while not done.is_set():
                await asyncio.sleep(0.01)
                for waiting in list(pending):
                    waiting.set()

        ticking = asyncio.create_task(ticker())
        with customer_baggage(customer__id="acme"):
            kwargs = {"max_tokens": 16} if provider == "anthropic" else {}
            await create(model=model, messages=MESSAGES, **kwargs)
        with customer_baggage(customer__id="hooli"):
            with pytest.raises(budget.BudgetExceeded):
                await create(model=model, messages=MESSAGES, **kwargs)
        done.set()
        await ticking

    asyncio.run(main())
    assert decisions == ["acme", "hooli"]
    assert _models_sent(sim) == [{"openai": "gpt-4o-mini"}.get(provider, "claude-haiku-4-5")]
    assert released == [True, True], "the event loop stalled while a decision was fetched"
