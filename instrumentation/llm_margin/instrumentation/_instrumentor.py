"""The lifecycle every provider instrumentor shares: the tracer provider, our span processor,
the HTTP attempt hooks, and the SDK methods a provider module lists (``targets``). Telemetry
never breaks the app, so a failure here is counted, never raised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from ..span_processor import install_span_processor
from ._common import (
    acquire_http_hooks,
    record_internal_error,
    release_http_hooks,
    set_tracer_provider,
    unwrap_all,
    wrap_all,
)


class ProviderInstrumentor(BaseInstrumentor):
    """Subclasses set ``provider`` (names the internal-error counters) and ``targets`` (the
    module's list of (module, "Class.method", wrapper) to patch)."""

    provider: str = ""
    targets: Callable[[], list[tuple[str, str, Any]]]
    _wrapped: list[tuple[str, str]] = []

    def _instrument(self, **kwargs: Any) -> None:
        try:
            tracer_provider = kwargs.get("tracer_provider")
            set_tracer_provider(tracer_provider)
            install_span_processor(tracer_provider)
            acquire_http_hooks()
            self._wrapped = wrap_all(type(self).targets())
        except Exception:
            record_internal_error(f"{self.provider}_instrument")

    def _uninstrument(self, **kwargs: Any) -> None:
        try:
            unwrap_all(self._wrapped)
            self._wrapped = []
            release_http_hooks()
        except Exception:
            record_internal_error(f"{self.provider}_uninstrument")
