"""llm-margin: per-customer LLM cost attribution from OpenTelemetry spans.

In-app API
----------
``llm_margin.task(name, **attributes)``: mark one unit of work (context manager or decorator,
sync or async); see ``llm_margin.task`` module docs. Provider instrumentation loads through the
``opentelemetry-instrument`` launcher (entry points ``llm_margin_openai`` and
``llm_margin_anthropic``) or by hand from ``llm_margin.instrumentation.openai`` /
``llm_margin.instrumentation.anthropic``. Settings: ``llm_margin.config``.
"""

from .task import TaskHandle, task
from .version import __version__

__all__ = ["TaskHandle", "__version__", "task"]
