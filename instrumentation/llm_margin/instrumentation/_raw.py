"""Raw-response call styles: ``client.<resource>.with_raw_response.<method>(...)`` and
``.with_streaming_response.<method>(...)``. The SDK method then returns its response wrapper
(``LegacyAPIResponse`` / ``APIResponse``), not the parsed model, so the usage has to be read from
the body: at once when the SDK has read it already (``with_raw_response``, not streamed), else
when the app parses it (a stream then goes through the usual stream proxy) or closes it.
"""

from __future__ import annotations

import inspect
from typing import Any

from wrapt import ObjectProxy

from ._common import LLMCall, read_body, record_internal_error


class RawResponseProxy(ObjectProxy):
    """The SDK's response wrapper, with ``parse()`` and ``close()`` finishing the call."""

    def __init__(self, wrapped: Any, call: LLMCall, is_async: bool) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_is_async = is_async
        self._self_stream: Any = None
        kind = type(wrapped)
        self._self_async_parse = inspect.iscoroutinefunction(kind.parse)
        self._self_async_close = inspect.iscoroutinefunction(getattr(kind, "close", None))

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        if self._self_async_parse:
            return self._self_parse_async(*args, **kwargs)
        return self._self_parsed(self.__wrapped__.parse(*args, **kwargs))

    async def _self_parse_async(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_parsed(await self.__wrapped__.parse(*args, **kwargs))

    def _self_parsed(self, parsed: Any) -> Any:
        stream = self._self_stream
        if stream is not None and stream.__wrapped__ is parsed:  # the SDK caches parse()
            return stream
        result = self._self_call.finish_result(parsed, self._self_is_async)
        if result is not parsed:
            self._self_stream = result
        return result

    def _self_closed(self) -> None:
        try:
            stream = self._self_stream
            if stream is not None:  # a stream read (or not) to this point
                stream._self_end(None, exhausted=False)
            else:
                self._self_call.finish_unparsed(read_body(self.__wrapped__))
        except Exception:
            record_internal_error("raw_response_close")

    def close(self) -> Any:
        if self._self_async_close:
            return self._self_close_async()
        try:
            return self.__wrapped__.close()
        finally:
            self._self_closed()

    async def _self_close_async(self) -> Any:
        try:
            return await self.__wrapped__.close()
        finally:
            self._self_closed()

    def __del__(self) -> None:
        try:
            self._self_closed()
        except Exception:  # interpreter shutdown
            pass
