"""Configuration of the in-app instrumentation, read from the environment once.

Configuration
-------------
Every setting is an environment variable; all are optional.

``LLM_MARGIN_BAGGAGE_KEYS``
    Comma-separated baggage keys copied onto spans (each key becomes an attribute of the same
    name). Default: ``customer.id,workspace.id,user.id,plan,feature,task.id``.
``LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH``
    Longest baggage value kept, in characters; longer values are cut. Default ``128``
    (1 to 4096).
``LLM_MARGIN_BAGGAGE_MAX_KEYS``
    Most baggage entries copied onto one span. Default ``16`` (1 to 64).
``LLM_MARGIN_CAPTURE_CONTENT``
    ``true`` adds prompt and completion text to call spans (``gen_ai.input.messages`` /
    ``gen_ai.output.messages``, capped). Default ``false``: no content leaves the process.
``LLM_MARGIN_PROVIDER_HOSTS``
    ``host=provider`` pairs, comma-separated, that name the provider behind an
    OpenAI-compatible ``base_url``; ``host`` may be ``host:port`` or ``*.suffix``. Example:
    ``vllm.internal=vllm,localhost:8000=vllm,*.example-llm.com=example``. Wins over the
    built-in table (Azure OpenAI, DeepSeek, Groq, Together, OpenRouter, ...).
``LLM_MARGIN_STREAM_USAGE``
    ``true`` (default) asks OpenAI chat streams for their usage (``stream_options.
    include_usage``) and hides the extra usage chunk from the app; ``false`` leaves requests
    untouched (usage of such streams is then estimated).
``LLM_MARGIN_ANTHROPIC_NATIVE_SPANS``
    ``suppress`` (default): while our Anthropic instrumentation wraps a call, the SDK's own
    ``anthropic.messages.create`` span is not started, so one call yields one priced span
    (DESIGN 4.7). ``keep`` leaves the SDK's spans on (the processor then de-duplicates).

A bad value never stops the app: it is logged once and that setting falls back to its
default. ``load_config(strict=True)`` raises ``ConfigError`` instead (for tests and tools).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

logger = logging.getLogger("llm_margin")

DEFAULT_BAGGAGE_KEYS: tuple[str, ...] = (
    "customer.id",
    "workspace.id",
    "user.id",
    "plan",
    "feature",
    "task.id",
)
DEFAULT_BAGGAGE_MAX_VALUE_LENGTH = 128
DEFAULT_BAGGAGE_MAX_KEYS = 16
MAX_BAGGAGE_VALUE_LENGTH_LIMIT = 4096
MAX_BAGGAGE_KEYS_LIMIT = 64

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A setting in the environment has a value the instrumentation cannot use."""


@dataclass(frozen=True)
class Config:
    """The validated settings. Field defaults are the documented defaults."""

    baggage_keys: tuple[str, ...] = DEFAULT_BAGGAGE_KEYS
    baggage_max_value_length: int = DEFAULT_BAGGAGE_MAX_VALUE_LENGTH
    baggage_max_keys: int = DEFAULT_BAGGAGE_MAX_KEYS
    capture_content: bool = False
    provider_hosts: Mapping[str, str] = field(default_factory=dict)
    stream_usage: bool = True
    suppress_anthropic_native_spans: bool = True


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


def _parse_int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: expected an integer from {low} to {high}")
    return value


def _parse_keys(name: str, raw: str) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(k.strip() for k in raw.split(",") if k.strip()))
    for key in keys:
        if not key.isprintable() or " " in key or "=" in key:
            raise ConfigError(f"{name}: {key!r} is not a valid baggage key")
    return keys


def _parse_hosts(name: str, raw: str) -> dict[str, str]:
    hosts: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, provider = item.partition("=")
        host, provider = host.strip().lower(), provider.strip()
        if not sep or not host or not provider:
            raise ConfigError(f"{name}: {item!r} is not host=provider")
        hosts[host] = provider
    return hosts


def _parse_native_spans(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("", "suppress"):
        return True
    if value == "keep":
        return False
    raise ConfigError(f"{name}={raw!r}: expected suppress or keep")


def load_config(environ: Mapping[str, str] | None = None, *, strict: bool = False) -> Config:
    """Read and validate the settings. ``strict`` raises on the first bad value; otherwise a bad
    value is logged and its setting keeps the default."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    errors: list[str] = []
    specs = (
        ("LLM_MARGIN_BAGGAGE_KEYS", "baggage_keys", _parse_keys),
        (
            "LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH",
            "baggage_max_value_length",
            lambda n, r: _parse_int(n, r, 1, MAX_BAGGAGE_VALUE_LENGTH_LIMIT),
        ),
        (
            "LLM_MARGIN_BAGGAGE_MAX_KEYS",
            "baggage_max_keys",
            lambda n, r: _parse_int(n, r, 1, MAX_BAGGAGE_KEYS_LIMIT),
        ),
        ("LLM_MARGIN_CAPTURE_CONTENT", "capture_content", _parse_bool),
        ("LLM_MARGIN_PROVIDER_HOSTS", "provider_hosts", _parse_hosts),
        ("LLM_MARGIN_STREAM_USAGE", "stream_usage", _parse_bool),
        (
            "LLM_MARGIN_ANTHROPIC_NATIVE_SPANS",
            "suppress_anthropic_native_spans",
            _parse_native_spans,
        ),
    )
    for env_name, field_name, parse in specs:
        raw = env.get(env_name)
        if raw is None:
            continue
        try:
            values[field_name] = parse(env_name, raw)
        except ConfigError as err:
            if strict:
                raise
            errors.append(str(err))
    for message in errors:
        logger.warning("llm-margin: ignoring bad setting, using its default: %s", message)
    return Config(**values)  # type: ignore[arg-type]


_config: Config | None = None


def get_config() -> Config:
    """The process-wide settings, read from the environment on first use."""
    global _config
    if _config is None:
        try:
            _config = load_config()
        except Exception:  # never let configuration break the app
            logger.warning("llm-margin: could not read settings, using defaults", exc_info=True)
            _config = Config()
    return _config


def reset_config(config: Config | None = None) -> None:
    """Replace the cached settings (``None``: read the environment again on next use). For tests."""
    global _config
    _config = config
    from . import baggage, span_processor  # both cache their view of the allowlist

    baggage._reset_cache()
    span_processor._reset_cache()
