"""Anthropic ``inference_geo`` (data residency) read from requests, Messages and streams."""

from __future__ import annotations

import pytest
from anthropic import omit
from anthropic.types import Usage as AnthropicUsage
from anthropic.types.beta import BetaUsage
from llm_margin.instrumentation import _anthropic_extract as AX
from llm_margin.instrumentation._types import RequestFacts

CHAT = RequestFacts(operation="chat", model="m")

# A geography name is recorded lower-cased; anything that is not a short name is ignored.
_GEO_VALUES = [
    ("us", "us"),
    ("global", "global"),
    ("US", "us"),
    (" us ", "us"),
    ("eu-west_1", "eu-west_1"),  # a geography the API may add later is kept, to be priced
    ("a" * 32, "a" * 32),
    ("a" * 33, None),
    ("", None),
    ("u s", None),
    ("us\n", "us"),
    ("us\x1b[31m", None),
    ("-us", None),
    (None, None),
    (1, None),
    (True, None),
    (["us"], None),
    ({"inference_geo": "us"}, None),
    (omit, None),
]


@pytest.mark.parametrize(("value", "expected"), _GEO_VALUES)
def test_inference_geo_name(value, expected):
    assert AX.inference_geo(value) == expected


def test_inference_geo_asked_and_reported():
    """Each value of the table as a request's ``inference_geo`` and as a Message's usage's."""
    values = [value for value, _ in _GEO_VALUES]
    asked = [AX.messages_request_facts({"model": "c", "inference_geo": v}) for v in values]
    usages = [{"input_tokens": 3, "output_tokens": 1, "inference_geo": v} for v in values]
    reported = [AX.message_facts({"id": "m", "usage": u}, CHAT) for u in usages]
    expected = [geo for _, geo in _GEO_VALUES]
    assert [facts.inference_geo for facts in asked] == expected
    assert [facts.inference_geo for facts in reported] == expected
    assert AX.messages_request_facts({"model": "c"}).inference_geo is None


def test_inference_geo_message_shapes():
    shapes = [
        ({"usage": AnthropicUsage(input_tokens=3, output_tokens=1, inference_geo="us")}, "us"),
        ({"usage": BetaUsage(input_tokens=3, output_tokens=1, inference_geo="global")}, "global"),
        ({"usage": AnthropicUsage(input_tokens=3, output_tokens=1)}, None),
        ({"usage": {"input_tokens": 3, "output_tokens": 1}}, None),
        ({"usage": None}, None),
        ({"usage": "us"}, None),
        ({}, None),
        (None, None),
    ]
    assert [AX.message_facts(m, CHAT).inference_geo for m, _ in shapes] == [g for _, g in shapes]


def _geo_stream(start_geo, delta_geo):
    """Message events whose message_start / message_delta usage say these geographies (None:
    no ``inference_geo`` key)."""
    start = {"input_tokens": 10, "output_tokens": 1}
    delta = {"output_tokens": 5}
    if start_geo is not None:
        start["inference_geo"] = start_geo
    if delta_geo is not None:
        delta["inference_geo"] = delta_geo
    return [
        {"type": "message_start", "message": {"id": "m", "model": "claude", "usage": start}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta},
        {"type": "message_stop"},
    ]


@pytest.mark.parametrize(
    ("start_geo", "delta_geo", "expected"),
    [
        ("us", None, "us"),  # message_start's usage, like a Message's (the API's place)
        (None, "us", "us"),  # a message_delta's, should one carry it
        ("global", None, "global"),
        ("us", "global", "global"),  # the last value reported wins
        ("us", "no such geo!", "us"),  # garbage does not override a geography seen
        ("us", 7, "us"),
        (None, None, None),
    ],
)
def test_inference_geo_stream(start_geo, delta_geo, expected):
    acc = AX.MessageStreamAccumulator(RequestFacts("chat", "claude", stream=True))
    for event in _geo_stream(start_geo, delta_geo):
        acc.add(event)
    assert acc.usage_complete()
    assert acc.facts().inference_geo == expected


def test_inference_geo_of_a_stream_broken_before_message_start():
    acc = AX.MessageStreamAccumulator(RequestFacts("chat", "claude", stream=True))
    assert acc.facts().inference_geo is None  # the request's (set at the start) stays
