"""Stream proxies: the app gets the SDK's stream object (everything else forwarded by wrapt),
while every chunk/event passes through an accumulator; the call span ends exactly once, when
the stream is exhausted, closed early (``close``/``with``), broken (an exception while
reading) or garbage-collected without being closed. Chunks the accumulator marks as ours (the
usage chunk we asked for) are skipped, so the app sees what it would without us.
"""

from __future__ import annotations

from typing import Any

from wrapt import ObjectProxy

from ._common import LLMCall, record_internal_error


class _StreamProxyBase(ObjectProxy):
    def __init__(self, wrapped: Any, call: LLMCall, accumulator: Any) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_accumulator = accumulator
        self._self_ended = False

    def _self_hide(self, item: Any) -> bool:
        try:
            return bool(self._self_accumulator.add(item))
        except Exception:
            record_internal_error("stream_chunk")
            return False

    def _self_end(self, exc: BaseException | None, exhausted: bool) -> None:
        if self._self_ended:
            return
        self._self_ended = True
        self._self_call.finish_stream(self._self_accumulator, exc, exhausted)

    @property
    def response(self) -> Any:
        return _ResponseCloser(self.__wrapped__.response, self)

    def __del__(self) -> None:
        try:
            self._self_end(None, exhausted=False)
        except Exception:  # interpreter shutdown
            pass


class _ResponseCloser(ObjectProxy):
    """The stream's HTTP response. The SDKs' stream helpers (``chat.completions.stream``,
    ``responses.stream``) close a stream through ``stream.response.close()`` rather than the
    stream itself; that must end the call too, not the garbage collector much later."""

    def __init__(self, wrapped: Any, stream: _StreamProxyBase) -> None:
        super().__init__(wrapped)
        self._self_stream = stream

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_stream._self_end(None, exhausted=False)

    async def aclose(self) -> Any:
        try:
            return await self.__wrapped__.aclose()
        finally:
            self._self_stream._self_end(None, exhausted=False)


class SyncStreamProxy(_StreamProxyBase):
    """Around an SDK ``Stream`` (iterator, context manager, ``close()``)."""

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        while True:
            try:
                item = next(self.__wrapped__)
            except StopIteration:
                self._self_end(None, exhausted=True)
                raise
            except BaseException as exc:
                self._self_end(exc, exhausted=False)
                raise
            if not self._self_hide(item):
                return item

    def close(self) -> Any:
        try:
            return self.__wrapped__.close()
        finally:
            self._self_end(None, exhausted=False)

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_end(None, exhausted=False)


class LazySyncStreamProxy(SyncStreamProxy):
    """Around a generator that sends its request when first iterated (google-genai's
    ``generate_content_stream``): each step runs in the call's context, so the HTTP attempt is
    counted and sent without baggage, as for a request sent inside the SDK method.

    An exception before the first chunk, with no 2xx answer seen, is the request failing
    (refused with 429 or 400, host unreachable): finished as a call that raised, not as a
    stream broken mid-way whose prompt the provider billed."""

    def __init__(self, wrapped: Any, call: LLMCall, accumulator: Any) -> None:
        super().__init__(wrapped, call, accumulator)
        self._self_answered = False

    def _self_hide(self, item: Any) -> bool:
        self._self_answered = True
        return super()._self_hide(item)

    def _self_end(self, exc: BaseException | None, exhausted: bool) -> None:
        if exc is not None and not (self._self_answered or self._self_ended or self._self_ok()):
            self._self_ended = True
            self._self_call.finish_error(exc)
            return
        super()._self_end(exc, exhausted)

    def _self_ok(self) -> bool:
        """The provider answered 2xx (an httpx2 request: other transports are not seen)."""
        status = getattr(self._self_call.last_response, "status_code", None)
        return isinstance(status, int) and 200 <= status < 300

    def __next__(self) -> Any:
        call = self._self_call
        tokens = call.enter()
        try:
            return super().__next__()
        finally:
            call.exit(tokens)


class AsyncStreamProxy(_StreamProxyBase):
    """Around an SDK ``AsyncStream`` (async iterator, async context manager, ``close()``)."""

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        while True:
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_end(None, exhausted=True)
                raise
            except BaseException as exc:
                self._self_end(exc, exhausted=False)
                raise
            if not self._self_hide(item):
                return item

    async def close(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_end(None, exhausted=False)

    async def aclose(self) -> Any:
        try:
            closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
            return await closer()
        finally:
            self._self_end(None, exhausted=False)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_end(None, exhausted=False)
