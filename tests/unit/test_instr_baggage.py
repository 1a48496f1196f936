"""Baggage allowlist, value cleaning and configuration parsing (pure functions)."""

from __future__ import annotations

import pytest
from llm_margin.baggage import allowed_attributes, clean_value
from llm_margin.config import Config, ConfigError, load_config


@pytest.mark.parametrize(
    ("baggage", "expected"),
    [
        ({}, {}),
        (None, {}),
        ({"customer.id": "acme"}, {"customer.id": "acme"}),
        (
            {
                "customer.id": "acme",
                "workspace.id": "ws_7",
                "user.id": "u_9",
                "plan": "pro",
                "feature": "chat",
                "task.id": "t1",
            },
            {
                "customer.id": "acme",
                "workspace.id": "ws_7",
                "user.id": "u_9",
                "plan": "pro",
                "feature": "chat",
                "task.id": "t1",
            },
        ),
        ({"customer.id": "acme", "session.secret": "s3cr3t"}, {"customer.id": "acme"}),
        ({"Customer.ID": "acme"}, {}),  # keys are exact
        ({"customer.id": "  acme \n"}, {"customer.id": "acme"}),
        ({"customer.id": "ac\x00m\x1be\u202e"}, {"customer.id": "acme"}),
        ({"customer.id": "a\u200bcme"}, {"customer.id": "acme"}),
        ({"customer.id": "\x07\x08"}, {}),  # nothing usable left
        ({"customer.id": "x" * 500}, {"customer.id": "x" * 128}),
        ({"customer.id": "Müller GmbH"}, {"customer.id": "Müller GmbH"}),
        ({"plan": 42}, {"plan": "42"}),
    ],
)
def test_allowed_attributes_default_allowlist(baggage, expected):
    assert allowed_attributes(baggage, Config()) == expected


def test_custom_allowlist_length_and_key_caps():
    config = Config(
        baggage_keys=("tenant", "a", "b", "c"), baggage_max_value_length=4, baggage_max_keys=2
    )
    out = allowed_attributes({"tenant": "abcdefgh", "a": "1", "b": "2", "customer.id": "x"}, config)
    assert out == {"tenant": "abcd", "a": "1"}


@pytest.mark.parametrize(
    ("value", "cap", "expected"),
    [
        ("abc", 2, "ab"),
        ("\tabc\r\n", 10, "abc"),
        ("a\u2066b\u2069", 10, "ab"),
        ("", 5, ""),
        ("ac\u061cme", 10, "acme"),  # Arabic letter mark: a bidi control like U+200F
        ("ac\u2028me\u2029", 10, "acme"),  # line/paragraph separators break report lines
        ("a\u2060c\u2061me", 10, "acme"),  # word joiner, invisible operators: zero-width
    ],
)
def test_clean_value(value, cap, expected):
    assert clean_value(value, cap) == expected


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        (
            {},
            "baggage_keys",
            ("customer.id", "workspace.id", "user.id", "plan", "feature", "task.id"),
        ),
        ({"LLM_MARGIN_BAGGAGE_KEYS": "tenant, plan,,tenant"}, "baggage_keys", ("tenant", "plan")),
        ({"LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH": "64"}, "baggage_max_value_length", 64),
        ({"LLM_MARGIN_BAGGAGE_MAX_KEYS": "3"}, "baggage_max_keys", 3),
        ({"LLM_MARGIN_CAPTURE_CONTENT": "TRUE"}, "capture_content", True),
        ({}, "capture_content", False),
        (
            {"LLM_MARGIN_PROVIDER_HOSTS": "vllm.lan=vllm, localhost:8000=vllm"},
            "provider_hosts",
            {"vllm.lan": "vllm", "localhost:8000": "vllm"},
        ),
        ({"LLM_MARGIN_STREAM_USAGE": "false"}, "stream_usage", False),
        ({"LLM_MARGIN_ANTHROPIC_NATIVE_SPANS": "keep"}, "suppress_anthropic_native_spans", False),
        ({}, "suppress_anthropic_native_spans", True),
    ],
)
def test_config_values(env, field, expected):
    assert getattr(load_config(env, strict=True), field) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH": "lots"}, "LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH"),
        ({"LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH": "0"}, "from 1 to 4096"),
        ({"LLM_MARGIN_BAGGAGE_MAX_KEYS": "1000"}, "LLM_MARGIN_BAGGAGE_MAX_KEYS"),
        ({"LLM_MARGIN_CAPTURE_CONTENT": "maybe"}, "expected true or false"),
        ({"LLM_MARGIN_PROVIDER_HOSTS": "nohost"}, "host=provider"),
        ({"LLM_MARGIN_ANTHROPIC_NATIVE_SPANS": "drop"}, "suppress or keep"),
        ({"LLM_MARGIN_BAGGAGE_KEYS": "a b"}, "not a valid baggage key"),
    ],
)
def test_config_errors_are_clear_in_strict_mode(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env, strict=True)


def test_bad_config_falls_back_to_defaults_and_logs(caplog):
    config = load_config(
        {"LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH": "lots", "LLM_MARGIN_BAGGAGE_MAX_KEYS": "4"}
    )
    assert config.baggage_max_value_length == 128
    assert config.baggage_max_keys == 4
    assert "LLM_MARGIN_BAGGAGE_MAX_VALUE_LENGTH" in caplog.text
