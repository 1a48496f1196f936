"""Row types written to ClickHouse, with their column order (one place for both)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter

UNATTRIBUTED = "(unattributed)"


@dataclass(slots=True)
class CallRecord:
    """One provider call: a row of ``llm_calls``."""

    ts: datetime
    trace_id: str
    span_id: str
    parent_span_id: str = ""
    task_id: str = ""
    customer_id: str = UNATTRIBUTED
    workspace_id: str = ""
    user_id: str = ""
    plan: str = ""
    feature: str = ""
    provider: str = ""
    route: str = ""
    operation: str = ""
    request_model: str = ""
    response_model: str = ""
    status: str = "ok"
    error_type: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    usage_source: str = "provider"
    sdk_retries: int = 0
    attempt: int = 1
    attempt_kind: str = "first"
    latency_ms: float = 0.0
    stream: bool = False
    service_tier: str = ""
    cost_usd: Decimal = Decimal(0)
    priced: bool = False
    price_version: str = ""
    source: str = ""
    version: int = 0
    # Audio parts of input_tokens / output_tokens (OpenAI audio models), priced apart. Last,
    # so that a spooled record pickled before they existed still loads (__setstate__).
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    # Server-side tool calls billed per call beside the tokens (web searches: Anthropic and
    # OpenAI; file searches: OpenAI Responses). Last, like the audio counts (__setstate__).
    web_search_calls: int = 0
    file_search_calls: int = 0
    # The part of cost_usd those searches account for (cost_usd - both: the tokens'). Stored
    # so reconcile can match it with the provider exports' own search lines, exactly.
    web_search_cost_usd: Decimal = Decimal(0)
    file_search_cost_usd: Decimal = Decimal(0)
    # The inference speed mode ("fast": Anthropic fast mode, a premium per-token price; ""
    # when the span does not say). Last, like the counts above (__setstate__).
    speed: str = ""
    # Sub-inferences of this call billed outside its top-level usage (Anthropic compaction and
    # advisor iterations), one SubUsage tuple each: (kind, model, input_tokens, output_tokens,
    # cache_read_tokens, cache_write_tokens, cache_write_1h_tokens), model "" = the call's own
    # model. Priced at their model's price into cost_usd: one call stays one row (linking
    # counts rows as attempts). Last, like the fields above (__setstate__).
    sub_usage: tuple = ()
    # The part of cost_usd those sub-inferences account for (the rest is the call's own).
    sub_usage_cost_usd: Decimal = Decimal(0)
    # Where the provider ran inference ("us": Anthropic US-only inference, a premium per-token
    # price; "global": standard; "" when the span does not say). Last (__setstate__).
    inference_geo: str = ""
    # The cost of each sub_usage entry, in its order (empty when unpriced): reconcile compares
    # an advisor's under the advisor's model, as the provider's export bills it. Last
    # (__setstate__).
    sub_usage_entry_costs_usd: tuple = ()
    # How the provider served the call ("provisioned_throughput": Vertex AI Provisioned
    # Throughput, paid by a subscription, priced by a traffic_types multiplier; "on_demand" and
    # "" priced per token as usual). Last (__setstate__).
    traffic_type: str = ""

    def row(self) -> tuple:
        return _call_row(self)

    def __setstate__(self, state: tuple) -> None:
        # Pickled as (None, {slot: value}); a spool segment written by an older release lacks
        # the fields added since: they take their defaults instead of staying unset.
        for f in _CALL_FIELDS:
            if f.default is not MISSING:
                setattr(self, f.name, f.default)
        for part in state if isinstance(state, tuple) else (state,):
            for name, value in (part or {}).items():
                setattr(self, name, value)


@dataclass(slots=True)
class TaskSpanRecord:
    """A root task span (``llm_margin.task``): a row of ``llm_task_spans``."""

    task_id: str
    trace_id: str
    span_id: str
    name: str = ""
    outcome: str = "unknown"
    customer_id: str = ""
    workspace_id: str = ""
    plan: str = ""
    feature: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0))
    ended_at: datetime = field(default_factory=lambda: datetime.fromtimestamp(0))
    version: int = 0

    def row(self) -> tuple:
        return _task_span_row(self)


_CALL_FIELDS = fields(CallRecord)
CALL_COLUMNS: tuple[str, ...] = tuple(f.name for f in _CALL_FIELDS)
TASK_SPAN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TaskSpanRecord))
_call_row = attrgetter(*CALL_COLUMNS)
_task_span_row = attrgetter(*TASK_SPAN_COLUMNS)
