"""``llm_margin.task``: one unit of work whose LLM calls (retries and fallbacks included) are
costed together, with the outcome the app reports.

Usage
-----
As a context manager (sync or async)::

    import llm_margin

    with llm_margin.task("summarize") as t:
        reply = client.chat.completions.create(...)
        if not looks_good(reply):
            t.set_outcome("rejected")      # any short string; default success / failure

    async with llm_margin.task("answer", feature="chat"):
        ...

As a decorator (sync or async functions, generators and async generators: for a generator
the task spans its whole iteration, and its context is attached only while its body runs)::

    @llm_margin.task("extract")
    def extract(document): ...

A task started inside a running task of the same process shares its ``task.id`` (through the
baggage) and goes on numbering its attempts.

What it records
---------------
A root span ``llm_margin.task <name>`` with ``llm_margin.task.root=true``,
``llm_margin.task.name``, ``task.id`` and ``llm_margin.task.outcome``: ``success`` when the
block ends normally, ``failure`` when it raises (the exception propagates unchanged; the span
keeps its type in ``error.type``, not its message), or what the app set with ``set_outcome``.
``task.id`` comes from the incoming baggage (so that several services share one task) or is a
new uuid4 hex, which is then put into the baggage for downstream services. Keyword attributes
go on the task span; those named like an allowlisted baggage key (e.g.
``**{"feature": "chat"}``) are also stamped on every span inside the task.

Every LLM call inside the task gets ``llm_margin.attempt`` (1-based, in call order),
``llm_margin.attempt_kind`` (``first``; ``retry`` = same route as the previous attempt, which
failed or returned invalid JSON; ``fallback`` = another route after such an attempt) and
``llm_margin.route`` (``provider/model``). Outside a task every call is attempt 1, ``first``.

State lives in the OpenTelemetry context (contextvars): threads and asyncio tasks started
elsewhere never see it; work started inside the task (``asyncio.gather`` of calls, a
``contextvars.copy_context().run``) shares it on purpose.
"""

from __future__ import annotations

import functools
import inspect
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import attributes as A
from .baggage import clean_value
from .config import get_config
from .span_processor import copied_attributes, ensure_installed, with_copied_attributes

TASK_STATE_KEY = otel_context.create_key("llm_margin.task_state")
F = TypeVar("F", bound=Callable[..., Any])

SUCCESS = "success"
FAILURE = "failure"
_MAX_OUTCOME_LENGTH = 64


class TaskState:
    """Attempt bookkeeping of one running task; shared by the calls made inside it."""

    __slots__ = ("task_id", "name", "attempts", "last_route", "last_failed", "_lock")

    def __init__(self, task_id: str, name: str) -> None:
        self.task_id = task_id
        self.name = name
        self.attempts = 0
        self.last_route: str | None = None
        self.last_failed = False
        self._lock = threading.Lock()

    def begin_attempt(self, route: str) -> tuple[int, str]:
        """Number and kind (first | retry | fallback) of a call about to start on ``route``."""
        with self._lock:
            self.attempts += 1
            if self.attempts == 1 or not self.last_failed:
                return self.attempts, "first"
            return self.attempts, "retry" if route == self.last_route else "fallback"

    def end_attempt(self, route: str, failed: bool) -> None:
        """Record how a call ended (failed: error or invalid output)."""
        with self._lock:
            self.last_route = route
            self.last_failed = failed


def _task_state(task_id: str, name: str) -> TaskState:
    """A task nested in a running task of the same id (its id came through the baggage) goes on
    counting the outer task's attempts: numbers stay unique and a retry after an outer failure
    is still a retry."""
    outer = current_task_state()
    if outer is not None and outer.task_id == task_id:
        return outer
    return TaskState(task_id, name)


def current_task_state() -> TaskState | None:
    return otel_context.get_value(TASK_STATE_KEY)


def begin_attempt(route: str) -> tuple[TaskState | None, int, str]:
    state = current_task_state()
    if state is None:
        return None, 1, "first"
    attempt, kind = state.begin_attempt(route)
    return state, attempt, kind


class TaskHandle:
    """What ``with task(...) as t`` yields."""

    __slots__ = ("task_id", "name", "span", "outcome")

    def __init__(self, task_id: str, name: str, span: Any) -> None:
        self.task_id = task_id
        self.name = name
        self.span = span
        self.outcome: str | None = None

    def set_outcome(self, outcome: str) -> None:
        """Report the task's outcome (``success``, ``failure`` or an app word: ``rejected``)."""
        cleaned = clean_value(outcome, _MAX_OUTCOME_LENGTH)
        self.outcome = cleaned or None


def _span_attribute(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


class task:  # noqa: N801 - public API reads as a function: llm_margin.task(...)
    """Context manager (``with`` / ``async with``) and decorator marking one task. See module
    docs."""

    __slots__ = ("name", "attributes", "_handle", "_token")

    def __init__(self, name: str, **attributes: Any) -> None:
        self.name = str(name)
        self.attributes = attributes
        self._handle: TaskHandle | None = None
        self._token: object | None = None

    # --- context manager ----------------------------------------------------------------------
    def __enter__(self) -> TaskHandle:
        ctx = self._enter_detached()
        if self._handle is not None and self._handle.task_id:
            self._token = otel_context.attach(ctx)
        return self._handle  # type: ignore[return-value]

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        try:
            self._finish(exc)
        except Exception:
            from .instrumentation._common import record_internal_error

            record_internal_error("task_finish")
        return False

    async def __aenter__(self) -> TaskHandle:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)

    # --- decorator ----------------------------------------------------------------------------
    def __call__(self, func: F) -> F:
        name, attributes = self.name, self.attributes
        if inspect.isasyncgenfunction(func):

            @functools.wraps(func)
            async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                run = task(name, **attributes)
                ctx = run._enter_detached()
                agen = func(*args, **kwargs)
                exc: BaseException | None = None
                try:
                    step, value = agen.asend, None
                    while True:
                        # the task's context only while the body runs, never in the consumer
                        token = otel_context.attach(ctx)
                        try:
                            item = await step(value)
                        except StopAsyncIteration:
                            return
                        finally:
                            otel_context.detach(token)
                        try:
                            value = yield item
                            step = agen.asend
                        except GeneratorExit:
                            raise
                        except BaseException as thrown:  # athrow(): forwarded to the body
                            step, value = agen.athrow, thrown
                except GeneratorExit:
                    token = otel_context.attach(ctx)
                    try:
                        await agen.aclose()  # the consumer stopped early: not a failure
                    finally:
                        otel_context.detach(token)
                    raise
                except BaseException as error:
                    exc = error
                    raise
                finally:
                    run.__exit__(type(exc), exc, None)

            return async_gen_wrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                run = task(name, **attributes)
                ctx = run._enter_detached()
                gen = func(*args, **kwargs)
                exc: BaseException | None = None
                try:
                    step, value = gen.send, None
                    while True:
                        token = otel_context.attach(ctx)
                        try:
                            item = step(value)
                        except StopIteration as stop:
                            return stop.value
                        finally:
                            otel_context.detach(token)
                        try:
                            value = yield item
                            step = gen.send
                        except GeneratorExit:
                            raise
                        except BaseException as thrown:  # throw(): forwarded to the body
                            step, value = gen.throw, thrown
                except GeneratorExit:
                    token = otel_context.attach(ctx)
                    try:
                        gen.close()
                    finally:
                        otel_context.detach(token)
                    raise
                except BaseException as error:
                    exc = error
                    raise
                finally:
                    run.__exit__(type(exc), exc, None)

            return gen_wrapper  # type: ignore[return-value]

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with task(name, **attributes):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with task(name, **attributes):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    # --- internals ----------------------------------------------------------------------------
    def _enter_detached(self) -> otel_context.Context:
        """Start the task span; the task's context, not attached (generators attach it around
        each step of their body). Never raises."""
        try:
            return self._start()
        except Exception:
            from .instrumentation._common import record_internal_error

            record_internal_error("task_start")
            self._handle = TaskHandle("", self.name, trace.INVALID_SPAN)
            return otel_context.get_current()

    def _start(self) -> otel_context.Context:
        from .instrumentation._common import get_tracer

        ensure_installed()
        config = get_config()
        ctx = otel_context.get_current()
        incoming = otel_baggage.get_baggage(A.TASK_ID, ctx)
        task_id = clean_value(incoming, config.baggage_max_value_length) if incoming else ""
        if not task_id:
            task_id = uuid.uuid4().hex
            ctx = otel_baggage.set_baggage(A.TASK_ID, task_id, ctx)
        copied = {A.TASK_ID: task_id, A.TASK_NAME: self.name}
        allowed = config.baggage_keys
        for key, value in self.attributes.items():
            if key in allowed and value is not None:
                cleaned = clean_value(value, config.baggage_max_value_length)
                if cleaned:
                    copied[key] = cleaned
        # Copied before the span starts: the task span says what the spans inside it say (in a
        # nested task, its own name and attributes, not the outer task's).
        ctx = with_copied_attributes(copied, ctx)
        attributes = {k: _span_attribute(v) for k, v in self.attributes.items()}
        attributes.update(copied_attributes(ctx))  # the span processor skips our spans
        attributes.update(
            {
                A.IS_TASK: True,
                A.TASK_NAME: self.name,
                A.TASK_ID: task_id,
                A.INSTRUMENTATION: "llm_margin",
            }
        )
        span = get_tracer().start_span(
            f"{A.TASK_SPAN_NAME_PREFIX} {self.name}",
            context=ctx,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        ctx = trace.set_span_in_context(span, ctx)
        ctx = otel_context.set_value(TASK_STATE_KEY, _task_state(task_id, self.name), ctx)
        self._handle = TaskHandle(task_id, self.name, span)
        return ctx

    def _finish(self, exc: BaseException | None) -> None:
        handle, token = self._handle, self._token
        self._handle = self._token = None
        if handle is None:
            return
        span = handle.span
        if token is not None:
            otel_context.detach(token)
        if not span.is_recording():
            return
        outcome = handle.outcome or (FAILURE if exc is not None else SUCCESS)
        span.set_attribute(A.TASK_OUTCOME, outcome)
        if exc is not None:
            # The type only, as on call spans: no exception event, whose message (a parse
            # error quotes the model's output) and stack trace would put prompt or completion
            # text on the span by default (and a message whose str() fails left it unended).
            span.set_attribute(A.ERROR_TYPE, type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
        span.end()
