"""Parsing of the simulator's request-header directives (pure functions, no I/O).

Tests steer the simulator per request with headers the SDKs forward via ``extra_headers``:

* ``x-sim-output-tokens``, ``x-sim-cache-read``, ``x-sim-cache-write`` (Anthropic: 5-minute
  bucket), ``x-sim-cache-write-1h``, ``x-sim-reasoning``: usage overrides.
* ``x-sim-web-searches``, ``x-sim-file-searches``: server-side tool calls the answer reports
  (Anthropic: ``usage.server_tool_use.web_search_requests``; OpenAI Responses:
  ``web_search_call`` / ``file_search_call`` output items before the answer; Gemini, with the
  Google Search tool: the grounding metadata's ``webSearchQueries``, default 1).
* ``x-vertex-ai-llm-request-type`` (``dedicated``: Provisioned Throughput only; ``shared``:
  pay as you go only) and ``x-vertex-ai-llm-shared-request-type`` (``priority``, ``flex``),
  Vertex AI's own request headers: a Gemini answer reports the traffic type they select as
  ``usageMetadata.trafficType`` (``PROVISIONED_THROUGHPUT``, ``ON_DEMAND``,
  ``ON_DEMAND_PRIORITY``, ``ON_DEMAND_FLEX``); without either it reports none, as the Gemini
  API does.
* ``x-sim-fault``: comma-separated directives, e.g. ``429:1,slow:50``:

  - ``429:K`` / ``500:K`` / ``503:K`` (any 4xx/5xx status): the first K HTTP attempts of the
    logical request fail with that status; without ``:K`` every attempt fails. Attempts
    are numbered statelessly by the SDK's ``x-stainless-retry-count`` header (google-genai
    sends none: give its requests an ``x-sim-request-id`` header, and the attempts of one id
    are counted by the server). Several
    status directives form a sequence: ``429:1,500:1`` fails attempt 0 with 429, attempt 1
    with 500, then succeeds.
  - ``slow:MS``: wait MS milliseconds before answering (streams: before the first byte).
  - ``invalid-json``: JSON content and tool-call arguments are cut short (unparseable).
  - ``stream-cut:N``: streams send N content chunks, then the connection drops.
  - ``stream-slow:MS``: wait MS milliseconds between stream chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Faults:
    """The failure-injection plan of one request."""

    statuses: tuple[tuple[int, int | None], ...] = ()
    slow_ms: int = 0
    invalid_json: bool = False
    stream_cut: int | None = None
    stream_slow_ms: int = 0


@dataclass(frozen=True)
class Overrides:
    """Usage overrides of one request (None: use the deterministic rule)."""

    output_tokens: int | None = None
    cache_read: int = 0
    cache_write: int = 0
    cache_write_1h: int = 0
    reasoning: int = 0
    web_searches: int = 0
    file_searches: int = 0
    # Vertex AI's usageMetadata.trafficType to report (None: none, as the Gemini API).
    traffic_type: str | None = None


# Vertex AI's request-type headers -> the traffic type its answer reports.
_REQUEST_TYPES = {"dedicated": "PROVISIONED_THROUGHPUT", "shared": "ON_DEMAND"}
_SHARED_TYPES = {"priority": "ON_DEMAND_PRIORITY", "flex": "ON_DEMAND_FLEX"}


def _traffic_type(headers: Mapping[str, str]) -> str | None:
    """The traffic type Vertex AI's request-type headers select; ValueError for an unknown
    value (Vertex refuses it too)."""
    request_type = headers.get("x-vertex-ai-llm-request-type")
    shared_type = headers.get("x-vertex-ai-llm-shared-request-type")
    if request_type is None and shared_type is None:
        return None
    kind = (request_type or "shared").strip().lower()
    if kind not in _REQUEST_TYPES:
        raise ValueError(f"unknown x-vertex-ai-llm-request-type {request_type!r}")
    if kind == "dedicated" or shared_type is None:
        return _REQUEST_TYPES[kind]
    shared = shared_type.strip().lower()
    if shared not in _SHARED_TYPES:
        raise ValueError(f"unknown x-vertex-ai-llm-shared-request-type {shared_type!r}")
    return _SHARED_TYPES[shared]


def _non_negative(value: str, directive: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"bad number in simulator directive {directive!r}") from None
    if number < 0:
        raise ValueError(f"negative number in simulator directive {directive!r}")
    return number


def parse_faults(header: str | None) -> Faults:
    """Parse an ``x-sim-fault`` value; raises ValueError on unknown directives (typos)."""
    statuses: list[tuple[int, int | None]] = []
    slow = stream_slow = 0
    invalid = False
    cut: int | None = None
    for raw in (header or "").split(","):
        directive = raw.strip().lower()
        if not directive:
            continue
        name, _, arg = directive.partition(":")
        if name.isdigit():
            status = int(name)
            if not 400 <= status <= 599:
                raise ValueError(f"status out of range in simulator directive {directive!r}")
            statuses.append((status, _non_negative(arg, directive) if arg else None))
        elif name == "slow" and arg:
            slow = _non_negative(arg, directive)
        elif name == "stream-slow" and arg:
            stream_slow = _non_negative(arg, directive)
        elif name == "stream-cut" and arg:
            cut = _non_negative(arg, directive)
        elif name == "invalid-json" and not arg:
            invalid = True
        else:
            raise ValueError(f"unknown simulator directive {directive!r}")
    return Faults(tuple(statuses), slow, invalid, cut, stream_slow)


def attempt_number(retry_count_header: str | None) -> int:
    """The 0-based attempt from ``x-stainless-retry-count`` (absent or junk: 0)."""
    try:
        return max(int((retry_count_header or "0").strip()), 0)
    except ValueError:
        return 0


def status_for_attempt(faults: Faults, attempt: int) -> int | None:
    """The error status this attempt must answer with, or None to answer normally."""
    start = 0
    for status, count in faults.statuses:
        if count is None:
            return status
        if attempt < start + count:
            return status
        start += count
    return None


def parse_overrides(headers: Mapping[str, str]) -> Overrides:
    """Usage overrides from lower-cased request headers; raises ValueError on bad numbers."""

    def number(name: str) -> int | None:
        value = headers.get(name)
        return None if value is None else _non_negative(value.strip(), f"{name}: {value}")

    return Overrides(
        output_tokens=number("x-sim-output-tokens"),
        cache_read=number("x-sim-cache-read") or 0,
        cache_write=number("x-sim-cache-write") or 0,
        cache_write_1h=number("x-sim-cache-write-1h") or 0,
        reasoning=number("x-sim-reasoning") or 0,
        web_searches=number("x-sim-web-searches") or 0,
        file_searches=number("x-sim-file-searches") or 0,
        traffic_type=_traffic_type(headers),
    )
