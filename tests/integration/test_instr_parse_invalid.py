"""`.parse()` given an answer that is not valid JSON for the app's model: the SDK raises (pydantic
``ValidationError``) after the provider answered, and billed, the call. The call is an
``invalid_output`` priced from the usage in the answer, and a re-ask in the task is a retry."""

from __future__ import annotations

import asyncio

import anthropic
import llm_margin
import openai
import pytest
from instr_fixtures import httpx2_instrumented, sim, tracing  # noqa: F401
from llm_margin import attributes as A
from pydantic import BaseModel, ValidationError

MESSAGES = [{"role": "user", "content": "Answer in JSON"}]
INVALID = {"x-sim-fault": "invalid-json"}


class Answer(BaseModel):
    answer: str


def _openai(s):
    return openai.OpenAI(base_url=s.openai_base_url, api_key="sk-test", max_retries=0)


def _anthropic(s):
    return anthropic.Anthropic(base_url=s.anthropic_base_url, api_key="sk-ant", max_retries=0)


PARSE = {
    "openai chat": lambda s, headers: _openai(s).chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Answer, extra_headers=headers
    ),
    "openai responses": lambda s, headers: _openai(s).responses.parse(
        model="gpt-5-mini", input="Answer in JSON", text_format=Answer, extra_headers=headers
    ),
    "anthropic messages": lambda s, headers: _anthropic(s).messages.parse(
        model="claude-haiku-4-5",
        max_tokens=50,
        messages=MESSAGES,
        output_format=Answer,
        extra_headers=headers,
    ),
}


@pytest.mark.parametrize("method", list(PARSE))
def test_parse_of_invalid_json_is_a_priced_invalid_output_then_a_retry(tracing, sim, method):  # noqa: F811
    parse = PARSE[method]
    with llm_margin.task("extract"):
        with pytest.raises(ValidationError):  # the app gets the SDK's exception unchanged
            parse(sim, INVALID)
        parse(sim, {})  # the re-ask
    calls = sorted(tracing.calls(), key=lambda s: s.attributes[A.ATTEMPT])
    first, second = (s.attributes for s in calls)
    assert first[A.CALL_STATUS] == "invalid_output"
    assert first[A.ERROR_TYPE] == "invalid_output"
    assert first[A.USAGE_SOURCE] == "provider"  # the tokens the provider billed
    assert first[A.GEN_AI_USAGE_INPUT_TOKENS] > 0 and first[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert (second[A.ATTEMPT], second[A.ATTEMPT_KIND], second[A.CALL_STATUS]) == (
        2,
        "retry",
        "ok",
    )


def test_async_parse_of_invalid_json_with_httpx2_instrumentation(httpx2_instrumented, sim):  # noqa: F811
    async def run():
        client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk", max_retries=0)
        with pytest.raises(ValidationError):
            await client.chat.completions.parse(
                model="gpt-4o-mini",
                messages=MESSAGES,
                response_format=Answer,
                extra_headers=INVALID,
            )
        await client.close()

    asyncio.run(run())
    (call,) = httpx2_instrumented.calls()
    assert call.attributes[A.CALL_STATUS] == "invalid_output"
    assert call.attributes[A.USAGE_SOURCE] == "provider"
    assert call.attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0


def test_an_http_error_is_still_an_error_without_usage(tracing, sim):  # noqa: F811
    with pytest.raises(openai.InternalServerError):
        PARSE["openai chat"](sim, {"x-sim-fault": "500"})
    (call,) = tracing.calls()
    assert call.attributes[A.CALL_STATUS] == "error"
    assert call.attributes[A.ERROR_TYPE] == "InternalServerError"
    assert A.GEN_AI_USAGE_INPUT_TOKENS not in call.attributes
