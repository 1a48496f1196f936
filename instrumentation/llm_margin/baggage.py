"""Which W3C baggage entries become span attributes, and how they are cleaned.

Baggage arrives from outside the process (normally from the API gateway, which authenticates the
caller and sets ``customer.id``, ``workspace.id``, ...). It is untrusted input: only allowlisted
keys are kept, control and bidi-override characters are removed, values are trimmed and cut to
a maximum length, and at most a fixed number of entries are copied.

Usage
-----
>>> allowed_attributes({"customer.id": "acme", "session": "x"})
{'customer.id': 'acme'}

Configuration
-------------
``LLM_MARGIN_BAGGAGE_KEYS`` (allowlist), ``LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH`` (default 128),
``LLM_MARGIN_BAGGAGE_MAX_KEYS`` (default 16); see ``llm_margin.config``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .config import Config, get_config

# C0/C1 controls, zero-width and bidi-control characters (all of Unicode's Bidi_Control,
# U+061C included), line and paragraph separators: invisible or line-breaking, and a way to
# forge lookalike customer ids or extra lines in dashboards and reports.
_UNSAFE_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)

_cached: tuple[Config, frozenset[str]] | None = None


def _reset_cache() -> None:
    global _cached
    _cached = None


def _settings(config: Config | None) -> tuple[Config, frozenset[str]]:
    global _cached
    if config is not None:
        return config, frozenset(config.baggage_keys)
    cached = _cached
    if cached is None:
        current = get_config()
        cached = _cached = (current, frozenset(current.baggage_keys))
    return cached


def clean_value(value: object, max_length: int) -> str:
    """``value`` as a safe attribute string: no control characters, trimmed, at most
    ``max_length`` characters. Empty when nothing usable is left."""
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():  # fast path: printable text has none of the unsafe characters
        text = _UNSAFE_CHARS.sub("", text)
    text = text.strip()
    return text[:max_length]


def allowed_attributes(
    baggage_mapping: Mapping[str, object] | None, config: Config | None = None
) -> dict[str, str]:
    """The span attributes that ``baggage_mapping`` (``opentelemetry.baggage.get_all()``)
    yields under the allowlist: ``{key: cleaned value}``. Never raises for odd input."""
    if not baggage_mapping:
        return {}
    settings, allowed = _settings(config)
    result: dict[str, str] = {}
    limit = settings.baggage_max_keys
    max_length = settings.baggage_max_value_length
    for key, value in baggage_mapping.items():
        if key not in allowed or value is None:
            continue
        cleaned = clean_value(value, max_length)
        if not cleaned:
            continue
        result[key] = cleaned
        if len(result) >= limit:
            break
    return result
