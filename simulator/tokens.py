"""Deterministic token counting and response text for the provider simulator.

Tests across the project assert exact token counts, so the simulator never tokenises for
real; it applies these rules instead:

* Input tokens: every *message* contributes ``ceil(len(text) / 4) + 3``, where ``text`` is
  the concatenation of the message's text parts (strings, ``text`` fields of content parts,
  tool results). A system prompt (Anthropic ``system``) or Responses ``instructions`` counts
  as one more message; a plain-string Responses ``input`` is one message. Tool definitions,
  images and tool-call arguments are not counted.
* These counted tokens are the *fresh* (uncached) input. Cache overrides come on top:
  Anthropic ``input_tokens`` is the counted number and cache tokens are reported apart (as
  the real API does); OpenAI ``prompt_tokens``/``input_tokens`` is counted + cache read +
  cache write (OpenAI's prompt total includes cached tokens).
* Embedding input: ``ceil(len(text) / 4)`` per input string (token-array inputs: their
  length), no per-item overhead.
* Output tokens: the ``x-sim-output-tokens`` override, else
  ``min(limit, 20 + input_tokens % 17)`` where ``limit`` is max_tokens /
  max_completion_tokens / max_output_tokens when given and ``input_tokens`` is the counted
  (fresh) input above, never the cache overrides. Reasoning tokens are counted inside
  the output total (never above it: the total is raised to the reasoning count if needed).
* Visible text: ``output - reasoning`` words from a fixed vocabulary, one token per word,
  streamed one word per chunk.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from .faults import Overrides

PER_MESSAGE_OVERHEAD = 3
BASE_OUTPUT = 20
OUTPUT_SPREAD = 17

_VOCAB = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def text_tokens(text: str) -> int:
    """Tokens of one piece of text: a quarter of its characters, rounded up."""
    return math.ceil(len(text) / 4)


def extract_text(value: Any) -> str:
    """Concatenated text of a message content value (string, part list, or part dict)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(extract_text(item) for item in value)
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return value["text"]
        for key in ("content", "output"):
            if key in value:
                return extract_text(value[key])
    return ""


def message_tokens(text: str) -> int:
    """Tokens of one message: its text plus the fixed per-message overhead."""
    return text_tokens(text) + PER_MESSAGE_OVERHEAD


def messages_tokens(messages: Any) -> int:
    """Input tokens of a message list (OpenAI chat, Responses items, Anthropic messages)."""
    if isinstance(messages, str):
        return message_tokens(messages)
    if not isinstance(messages, list):
        return 0
    return sum(message_tokens(extract_text(m)) for m in messages)


def embedding_tokens(inputs: Any) -> int:
    """Input tokens of an embeddings request (string, strings, token array(s))."""
    if isinstance(inputs, str):
        return text_tokens(inputs)
    if isinstance(inputs, list):
        if inputs and all(isinstance(i, int) for i in inputs):
            return len(inputs)
        return sum(embedding_tokens(i) for i in inputs)
    return 0


def output_tokens(input_tokens: int, limit: int | None, override: int | None) -> int:
    """Output token count: the override, else the deterministic rule capped by the limit."""
    if override is not None:
        return override
    natural = BASE_OUTPUT + input_tokens % OUTPUT_SPREAD
    return natural if limit is None else min(limit, natural)


def output_limit(body: dict[str, Any], *keys: str) -> int | None:
    """The first integer output-limit field present in the request body."""
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def words(count: int) -> list[str]:
    """``count`` deterministic words; each is exactly one simulated token."""
    return [_VOCAB[i % len(_VOCAB)] for i in range(max(count, 0))]


def pieces(count: int, prefix: str = "", suffix: str = "") -> list[str]:
    """Stream pieces, one word each, whose concatenation is prefix + words + suffix.

    The prefix rides on the first piece and the suffix on the last, so the number of
    content chunks equals the number of tokens (one piece if there are no words).
    """
    ws = words(count)
    if not ws:
        return [prefix + suffix] if prefix or suffix else []
    out = [ws[0]] + [" " + w for w in ws[1:]]
    out[0] = prefix + out[0]
    out[-1] = out[-1] + suffix
    return out


class SSE(NamedTuple):
    """One server-sent event: ``event:`` name (or None), JSON payload (or raw string), and
    whether it carries one content token (stream-cut counts these)."""

    event: str | None
    data: Any
    content: bool = False


class Plan(NamedTuple):
    """Token numbers of one answer, derived once so bodies and streams agree."""

    fresh_input: int
    cache_read: int
    cache_write: int
    output: int
    reasoning: int
    capped: bool

    @property
    def prompt_total(self) -> int:
        """OpenAI's prompt/input total includes cached (read and written) tokens."""
        return self.fresh_input + self.cache_read + self.cache_write

    @property
    def visible(self) -> int:
        return self.output - self.reasoning


def make_plan(input_tokens: int, limit: int | None, ov: Overrides) -> Plan:
    """Apply the documented token rule (module docstring) and the header overrides."""
    output = output_tokens(input_tokens, limit, ov.output_tokens)
    capped = ov.output_tokens is None and limit is not None and output == limit
    output = max(output, ov.reasoning)
    cache_write = ov.cache_write + ov.cache_write_1h
    return Plan(input_tokens, ov.cache_read, cache_write, output, ov.reasoning, capped)


def content_pieces(count: int, as_json: bool, invalid_json: bool) -> list[str]:
    """Token pieces of the answer text: plain words, or a JSON object ``{"answer": ...}``
    (cut short when the invalid-json fault is on)."""
    if invalid_json:
        return pieces(count, '{"answer": "', "")
    if as_json:
        return pieces(count, '{"answer": "', '"}')
    return pieces(count)
