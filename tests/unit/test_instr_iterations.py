"""Anthropic beta ``usage.iterations``: the entries billed outside the top-level usage
(compaction, advisor) become sub-usage span attributes; the others are left out."""

from __future__ import annotations

import pytest
from anthropic.types.beta import BetaUsage
from llm_margin import attributes as A
from llm_margin.instrumentation import _anthropic_extract as AX
from llm_margin.instrumentation._types import RequestFacts, SubUsage, sub_usage_attributes

_MESSAGE = {
    "type": "message",
    "input_tokens": 10,
    "output_tokens": 5,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}
_COMPACTION = {
    "type": "compaction",
    "input_tokens": 180_000,
    "output_tokens": 3_500,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}
_ADVISOR = {
    "type": "advisor_message",
    "model": "claude-opus-4-6",
    "input_tokens": 800,
    "output_tokens": 1_400,
    "cache_read_input_tokens": 2_000,
    "cache_creation_input_tokens": 300,
    "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
}


@pytest.mark.parametrize(
    ("iterations", "expected"),
    [
        (None, ()),
        ("garbage", ()),
        ([], ()),
        # message entries are the top-level usage split per step: not added
        ([_MESSAGE, _MESSAGE], ()),
        # a fallback-served turn's terminal entry takes a message entry's place: not added
        ([{**_MESSAGE, "type": "fallback_message", "model": "claude-opus-4-8"}], ()),
        # compaction: the call's own model (""), its tokens outside the top level
        ([_COMPACTION, _MESSAGE], (SubUsage("compaction", "", 180_000, 3_500, 0, 0, 0),)),
        # advisor: its own model; input is the total, cache reads and writes included
        (
            [_MESSAGE, _ADVISOR, _MESSAGE],
            (SubUsage("advisor_message", "claude-opus-4-6", 3_100, 1_400, 2_000, 300, 200),),
        ),
        # both, in order; an unknown entry type is left out
        (
            [_COMPACTION, {"type": "something_new", "input_tokens": 9}, _ADVISOR],
            (
                SubUsage("compaction", "", 180_000, 3_500, 0, 0, 0),
                SubUsage("advisor_message", "claude-opus-4-6", 3_100, 1_400, 2_000, 300, 200),
            ),
        ),
        # an advisor naming no model: "unknown", which no price book prices (never free)
        (
            [{**_ADVISOR, "model": None}],
            (SubUsage("advisor_message", "unknown", 3_100, 1_400, 2_000, 300, 200),),
        ),
        # only the TTL split given: the write total comes from it; bad counts count nothing
        (
            [
                {
                    "type": "compaction",
                    "input_tokens": -4,
                    "output_tokens": "x",
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": 6,
                        "ephemeral_1h_input_tokens": 4,
                    },
                }
            ],
            (SubUsage("compaction", "", 10, 0, 0, 10, 4),),
        ),
    ],
)
def test_billed_iterations(iterations, expected):
    assert AX.billed_iterations(iterations) == expected


def test_billed_iterations_read_the_sdk_models():
    usage = BetaUsage.model_validate(
        {"input_tokens": 10, "output_tokens": 5, "iterations": [_COMPACTION, _ADVISOR, _MESSAGE]}
    )
    assert AX.billed_iterations(usage.iterations) == (
        SubUsage("compaction", "", 180_000, 3_500, 0, 0, 0),
        SubUsage("advisor_message", "claude-opus-4-6", 3_100, 1_400, 2_000, 300, 200),
    )


def test_message_facts_carry_the_sub_usage():
    message = {
        "id": "m",
        "model": "claude-sonnet-4-6",
        "content": [],
        "usage": {"input_tokens": 10, "output_tokens": 5, "iterations": [_COMPACTION, _MESSAGE]},
    }
    facts = AX.message_facts(message, RequestFacts("chat", "claude-sonnet-4-6"))
    assert facts.sub_usage == (SubUsage("compaction", "", 180_000, 3_500, 0, 0, 0),)


def test_stream_takes_the_iterations_of_the_final_delta():
    acc = AX.MessageStreamAccumulator(RequestFacts("chat", "claude", stream=True))
    start_usage = {"input_tokens": 10, "output_tokens": 1, "iterations": [_MESSAGE]}
    acc.add({"type": "message_start", "message": {"id": "m", "usage": start_usage}})
    assert acc.facts().sub_usage == ()
    delta_usage = {"output_tokens": 9, "iterations": [_ADVISOR, _MESSAGE]}
    acc.add({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage})
    assert acc.facts().sub_usage == (
        SubUsage("advisor_message", "claude-opus-4-6", 3_100, 1_400, 2_000, 300, 200),
    )


def test_sub_usage_attributes_are_parallel_arrays_of_primitives():
    entries = (
        SubUsage("compaction", "", 180_000, 3_500, 0, 0, 0),
        SubUsage("advisor_message", "claude-opus-4-6", 3_100, 1_400, 2_000, 300, 200),
    )
    assert sub_usage_attributes(()) == {}
    assert sub_usage_attributes(entries) == {
        A.SUB_USAGE_KIND: ("compaction", "advisor_message"),
        A.SUB_USAGE_MODEL: ("", "claude-opus-4-6"),
        A.SUB_USAGE_INPUT_TOKENS: (180_000, 3_100),
        A.SUB_USAGE_OUTPUT_TOKENS: (3_500, 1_400),
        A.SUB_USAGE_CACHE_READ_TOKENS: (0, 2_000),
        A.SUB_USAGE_CACHE_WRITE_TOKENS: (0, 300),
        A.SUB_USAGE_CACHE_WRITE_1H_TOKENS: (0, 200),
    }
