"""The lifecycle every provider instrumentor shares: the tracer provider, our span processor,
the HTTP attempt hooks, and the SDK methods a provider module lists (``targets``). Telemetry
never breaks the app, so a failure here is counted, never raised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.dependencies import DependencyConflict
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

# The dependency lists already found satisfied in this process. ``BaseInstrumentor.instrument``
# checks them on every call, reading and parsing the SDK's installed metadata (~0.45 ms of the
# ~0.5 ms an ``instrument()`` took); the SDK loaded in a process does not change, so a satisfied
# check is done once. That work also slowed the first calls after each ``instrument()`` (by ~70
# µs for the first, ~20 µs for the second, on the dev machine). A conflict is checked each time.
_satisfied: set[tuple[str, ...]] = set()


class ProviderInstrumentor(BaseInstrumentor):
    """Subclasses set ``provider`` (names the internal-error counters) and ``targets`` (the
    module's list of (module, "Class.method", wrapper) to patch)."""

    provider: str = ""
    targets: Callable[[], list[tuple[str, str, Any]]]
    _wrapped: list[tuple[str, str]] = []

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        dependencies = tuple(self.instrumentation_dependencies())
        if dependencies in _satisfied:
            return None
        conflict = super()._check_dependency_conflicts()
        if conflict is None:
            _satisfied.add(dependencies)
        return conflict

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
