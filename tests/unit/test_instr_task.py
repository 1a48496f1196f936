"""llm_margin.task: span, id, outcome, decorator/context manager, sync/async, attempt kinds,
isolation between threads and asyncio tasks; the span processor stamps every span."""

from __future__ import annotations

import asyncio
import threading

import llm_margin
import pytest
from instr_fixtures import PROVIDER, customer_baggage, tracing  # noqa: F401
from llm_margin import attributes as A
from llm_margin.span_processor import BaggageSpanProcessor, install_span_processor
from llm_margin.task import TaskState, begin_attempt, current_task_state
from opentelemetry import baggage


class Boom(Exception):
    pass


def test_task_span_attributes_and_success(tracing):  # noqa: F811
    with llm_margin.task("summarize", feature="digest") as t:
        assert len(t.task_id) == 32
        assert baggage.get_baggage("task.id") == t.task_id  # shared downstream
    (span,) = tracing.tasks()
    assert span.name == "llm_margin.task summarize"
    attrs = span.attributes
    assert attrs[A.IS_TASK] is True
    assert attrs[A.TASK_NAME] == "summarize"
    assert attrs[A.TASK_ID] == t.task_id
    assert attrs[A.TASK_OUTCOME] == "success"
    assert attrs["feature"] == "digest"
    assert span.parent is None


def test_task_id_comes_from_baggage(tracing):  # noqa: F811
    with customer_baggage(task__id="task-from-gateway", customer__id="acme"):
        with llm_margin.task("x") as t:
            pass
    assert t.task_id == "task-from-gateway"
    (span,) = tracing.tasks()
    assert span.attributes[A.TASK_ID] == "task-from-gateway"
    assert span.attributes[A.CUSTOMER_ID] == "acme"


def test_exception_marks_failure_and_is_reraised_unchanged(tracing):  # noqa: F811
    error = Boom("no")
    with pytest.raises(Boom) as caught:
        with llm_margin.task("x"):
            raise error
    assert caught.value is error
    (span,) = tracing.tasks()
    assert span.attributes[A.TASK_OUTCOME] == "failure"
    assert span.attributes[A.ERROR_TYPE] == "Boom"


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


@pytest.mark.parametrize(
    "error",
    [
        # what `.parse()` raises for invalid JSON: the message quotes the model's output
        ValueError('1 validation error for Answer input_value=\'{"answer": "SECRET-COMPLETION\''),
        Boom("customer SECRET-EMAIL@example.com not found"),
        UnprintableError(),  # str() raises: the task span must still end, as a failure
    ],
)
def test_a_failed_task_records_the_exception_type_only(tracing, error):  # noqa: F811
    # Privacy default: no prompt or completion text on spans; an exception message may quote it.
    with pytest.raises(type(error)) as caught:
        with llm_margin.task("x"):
            raise error
    assert caught.value is error
    (span,) = tracing.tasks()
    assert span.attributes[A.TASK_OUTCOME] == "failure"
    assert span.attributes[A.ERROR_TYPE] == type(error).__qualname__
    assert span.status.description == type(error).__qualname__
    recorded = repr(dict(span.attributes)) + repr(
        [(e.name, dict(e.attributes)) for e in span.events]
    )
    assert "SECRET" not in recorded


def test_app_sets_outcome(tracing):  # noqa: F811
    with llm_margin.task("x") as t:
        t.set_outcome("rejected")
    assert tracing.tasks()[0].attributes[A.TASK_OUTCOME] == "rejected"


def test_decorator_sync_and_async(tracing):  # noqa: F811
    @llm_margin.task("sync-work", plan="pro")
    def work(a, b=1):
        assert current_task_state() is not None
        return a + b

    @llm_margin.task("async-work")
    async def awork(x):
        await asyncio.sleep(0)
        assert current_task_state() is not None
        return x * 2

    assert work.__name__ == "work"
    assert work(1, b=2) == 3
    assert asyncio.run(awork(4)) == 8
    names = sorted(s.attributes[A.TASK_NAME] for s in tracing.tasks())
    assert names == ["async-work", "sync-work"]

    @llm_margin.task("fails")
    async def afail():
        raise Boom()

    with pytest.raises(Boom):
        asyncio.run(afail())
    failing = [s for s in tracing.tasks() if s.attributes[A.TASK_NAME] == "fails"]
    assert failing[0].attributes[A.TASK_OUTCOME] == "failure"


def test_async_context_manager(tracing):  # noqa: F811
    async def main():
        async with llm_margin.task("a") as t:
            await asyncio.sleep(0)
            return t.task_id

    task_id = asyncio.run(main())
    assert tracing.tasks()[0].attributes[A.TASK_ID] == task_id
    assert current_task_state() is None


@pytest.mark.parametrize(
    ("history", "route", "expected"),
    [
        ([], "openai/gpt-4o", (1, "first")),
        ([("openai/gpt-4o", False)], "openai/gpt-4o", (2, "first")),
        ([("openai/gpt-4o", True)], "openai/gpt-4o", (2, "retry")),
        ([("openai/gpt-4o", True)], "openai/gpt-4o-mini", (2, "fallback")),
        ([("openai/gpt-4o", True), ("openai/gpt-4o", True)], "anthropic/claude", (3, "fallback")),
        ([("openai/gpt-4o", True), ("anthropic/claude", False)], "anthropic/claude", (3, "first")),
    ],
)
def test_attempt_kinds(history, route, expected):
    state = TaskState("t", "n")
    for previous_route, failed in history:
        state.begin_attempt(previous_route)
        state.end_attempt(previous_route, failed)
    assert state.begin_attempt(route) == expected


def test_outside_a_task_every_call_is_a_first_attempt():
    assert begin_attempt("openai/m") == (None, 1, "first")
    assert begin_attempt("openai/m") == (None, 1, "first")


def test_no_state_leaks_between_threads(tracing):  # noqa: F811
    seen: dict[str, object] = {}
    barrier = threading.Barrier(4)

    def worker(i):
        barrier.wait()
        with llm_margin.task(f"t{i}") as t:
            barrier.wait()
            seen[f"t{i}"] = (current_task_state().task_id, t.task_id)
        seen[f"after{i}"] = current_task_state()

    with llm_margin.task("outer"):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    for i in range(4):
        state_id, handle_id = seen[f"t{i}"]
        assert state_id == handle_id
        assert seen[f"after{i}"] is None  # a new thread never sees the outer task
    assert len({seen[f"t{i}"][0] for i in range(4)}) == 4


def test_no_state_leaks_between_asyncio_tasks(tracing):  # noqa: F811
    async def one(i):
        with customer_baggage(customer__id=f"c{i}"):
            async with llm_margin.task(f"t{i}") as t:
                await asyncio.sleep(0.001 * (4 - i))
                assert current_task_state().task_id == t.task_id
                assert baggage.get_baggage("customer.id") == f"c{i}"
                return t.task_id

    async def main():
        return await asyncio.gather(*(one(i) for i in range(4)))

    ids = asyncio.run(main())
    assert len(set(ids)) == 4
    by_name = {s.attributes[A.TASK_NAME]: s for s in tracing.tasks()}
    for i in range(4):
        assert by_name[f"t{i}"].attributes[A.CUSTOMER_ID] == f"c{i}"


def test_processor_stamps_every_span_and_installs_once(tracing):  # noqa: F811
    before = sum(
        isinstance(p, BaggageSpanProcessor)
        for p in PROVIDER._active_span_processor._span_processors
    )
    assert install_span_processor(PROVIDER) is True
    assert install_span_processor(PROVIDER) is True
    after = sum(
        isinstance(p, BaggageSpanProcessor)
        for p in PROVIDER._active_span_processor._span_processors
    )
    assert before == after == 1
    tracer = PROVIDER.get_tracer("app")
    with customer_baggage(customer__id="acme", plan="pro", secret="nope"):
        with llm_margin.task("t") as t:
            with tracer.start_as_current_span("db.query"):
                with tracer.start_as_current_span("nested"):
                    pass
    spans = {s.name: s.attributes for s in tracing.spans()}
    for name in ("db.query", "nested"):
        assert spans[name][A.CUSTOMER_ID] == "acme"
        assert spans[name][A.PLAN] == "pro"
        assert spans[name][A.TASK_ID] == t.task_id
        assert "secret" not in spans[name]


def test_decorator_on_generator_spans_the_iteration(tracing):  # noqa: F811
    seen = []

    @llm_margin.task("gen-work")
    def produce(n):
        for i in range(n):
            state = current_task_state()
            seen.append(state.task_id if state else None)
            got = yield i
            assert got is None
        return "done"

    assert produce.__name__ == "produce"
    assert list(produce(2)) == [0, 1]
    (span,) = tracing.tasks()
    assert seen == [span.attributes[A.TASK_ID]] * 2
    assert span.attributes[A.TASK_OUTCOME] == "success"
    assert current_task_state() is None  # nothing leaks to the consumer

    @llm_margin.task("gen-fails")
    def failing():
        yield 1
        raise Boom()

    error = None
    gen = failing()
    assert next(gen) == 1
    assert current_task_state() is None  # not attached between steps
    with pytest.raises(Boom) as caught:
        next(gen)
    error = caught.value
    assert isinstance(error, Boom)
    failed = [s for s in tracing.tasks() if s.attributes[A.TASK_NAME] == "gen-fails"]
    assert failed[0].attributes[A.TASK_OUTCOME] == "failure"


def test_decorator_on_generator_closed_early_ends_the_task(tracing):  # noqa: F811
    @llm_margin.task("gen-early")
    def produce():
        yield 1
        yield 2

    gen = produce()
    assert next(gen) == 1
    gen.close()
    (span,) = tracing.tasks()
    assert span.attributes[A.TASK_OUTCOME] == "success"


def test_decorator_on_async_generator_spans_the_iteration(tracing):  # noqa: F811
    @llm_margin.task("agen-work")
    async def produce(n):
        for i in range(n):
            await asyncio.sleep(0)
            state = current_task_state()
            yield i, state.task_id if state else None

    async def consume():
        out = []
        async for item in produce(2):
            assert current_task_state() is None
            out.append(item)
        return out

    items = asyncio.run(consume())
    (span,) = tracing.tasks()
    task_id = span.attributes[A.TASK_ID]
    assert items == [(0, task_id), (1, task_id)]
    assert span.attributes[A.TASK_OUTCOME] == "success"

    @llm_margin.task("agen-fails")
    async def failing():
        yield 1
        raise Boom()

    async def consume_failing():
        async for _ in failing():
            pass

    with pytest.raises(Boom):
        asyncio.run(consume_failing())
    failed = [s for s in tracing.tasks() if s.attributes[A.TASK_NAME] == "agen-fails"]
    assert failed[0].attributes[A.TASK_OUTCOME] == "failure"


def test_nested_task_continues_the_outer_attempts(tracing):  # noqa: F811
    with llm_margin.task("outer") as outer:
        state = current_task_state()
        state.begin_attempt("openai/m")
        state.end_attempt("openai/m", failed=True)
        with llm_margin.task("inner") as inner:
            assert inner.task_id == outer.task_id
            assert begin_attempt("openai/m")[1:] == (2, "retry")
            state.end_attempt("openai/m", failed=False)
        assert begin_attempt("openai/m")[1:] == (3, "first")
    with llm_margin.task("separate"):  # a task of its own id counts from 1
        assert begin_attempt("openai/m")[1:] == (1, "first")


def test_nested_task_span_carries_its_own_name_and_attributes(tracing):  # noqa: F811
    tracer = PROVIDER.get_tracer("app")
    with llm_margin.task("outer", feature="outer-feature"):
        with llm_margin.task("inner", feature="inner-feature"):
            tracer.start_span("work inside inner").end()
    spans = {s.name: s.attributes for s in tracing.spans()}
    inner, outer = spans["llm_margin.task inner"], spans["llm_margin.task outer"]
    assert (inner[A.TASK_NAME], inner[A.FEATURE]) == ("inner", "inner-feature")
    assert (outer[A.TASK_NAME], outer[A.FEATURE]) == ("outer", "outer-feature")
    assert inner[A.TASK_ID] == outer[A.TASK_ID]
    # the inner task's spans say the same as the inner task span
    work = spans["work inside inner"]
    assert (work[A.TASK_NAME], work[A.FEATURE]) == ("inner", "inner-feature")
