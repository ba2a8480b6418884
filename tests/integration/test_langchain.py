"""LangChain's ChatOpenAI against the real server: invoke, tools, a tool loop,
structured output and streaming. Skips when ``langchain-openai`` is not installed."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("langchain_openai", reason="langchain-openai is not installed (pip install langchain-openai)")

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from fakeai.engine.tokenizer import get_tokenizer

MODEL = "gpt-4o"
O200K = get_tokenizer("o200k_base")


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return json.dumps({"city": city, "forecast": "sunny", "temperature_c": 21})


class Director(BaseModel):
    name: str
    born: int = Field(ge=1850, le=2010)


class Movie(BaseModel):
    """A film."""

    title: str
    year: int = Field(ge=1900, le=2030)
    rating: float = Field(ge=0, le=10)
    genres: list[str]
    director: Director


@pytest.fixture(scope="module")
def llm(server):
    return ChatOpenAI(base_url=server.api_url, api_key="x", model=MODEL, max_retries=0, seed=7)


def prompt_tokens(text: str) -> int:
    """OpenAI's chat counting rule for one user message, computed independently."""
    return 3 + 3 + len(O200K.encode("user")) + len(O200K.encode(text))


def test_invoke_returns_ai_message_with_usage(llm):
    text = "Describe the harbour at dawn."
    msg = llm.invoke(text)
    assert isinstance(msg, AIMessage)
    assert isinstance(msg.content, str) and msg.content.strip()
    usage = msg.usage_metadata
    assert usage["input_tokens"] == prompt_tokens(text)
    assert usage["output_tokens"] == len(O200K.encode(msg.content))
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert msg.response_metadata["finish_reason"] in ("stop", "length")
    assert msg.response_metadata["model_name"] == MODEL
    # the same seed gives the same answer
    assert llm.invoke(text).content == msg.content


def test_bind_tools_calls_get_weather_with_the_city(llm):
    bound = llm.bind_tools([get_weather])
    msg = bound.invoke("weather in Paris?")
    assert isinstance(msg, AIMessage)
    assert len(msg.tool_calls) == 1
    call = msg.tool_calls[0]
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "Paris"}
    assert call["id"]
    assert msg.response_metadata["finish_reason"] == "tool_calls"
    # an unrelated question is answered in text
    text = bound.invoke("Tell me a joke")
    assert not text.tool_calls and text.content


def test_tool_loop_ends_with_a_text_answer(llm):
    bound = llm.bind_tools([get_weather])
    messages: list = [HumanMessage("weather in Paris?")]
    ended_at = None
    for iteration in range(1, 6):  # hard bound
        msg = bound.invoke(messages)
        messages.append(msg)
        if not msg.tool_calls:
            ended_at = iteration
            break
        for call in msg.tool_calls:
            result = get_weather.invoke(call)  # a ToolMessage carrying the tool_call_id
            assert isinstance(result, ToolMessage) and result.tool_call_id == call["id"]
            assert json.loads(result.content)["city"] == "Paris"
            messages.append(result)
    assert ended_at == 2
    final = messages[-1]
    assert isinstance(final.content, str) and final.content.strip()
    assert final.response_metadata["finish_reason"] in ("stop", "length")
    # the tool history is billed in the prompt
    assert final.usage_metadata["input_tokens"] > messages[1].usage_metadata["input_tokens"]


@pytest.mark.parametrize("method", [None, "json_schema", "function_calling"])
def test_with_structured_output_returns_a_model_instance(llm, method):
    kwargs = {} if method is None else {"method": method}
    structured = llm.with_structured_output(Movie, **kwargs)
    for seed in range(3):
        out = structured.bind(seed=seed).invoke("Recommend a movie")
        assert isinstance(out, Movie)
        assert isinstance(out.director, Director)
        assert 1900 <= out.year <= 2030 and 0 <= out.rating <= 10


def test_with_structured_output_include_raw(llm):
    structured = llm.with_structured_output(Movie, method="json_schema", include_raw=True)
    out = structured.invoke("Recommend a movie")
    assert out["parsing_error"] is None
    assert isinstance(out["parsed"], Movie)
    assert Movie.model_validate_json(out["raw"].content) == out["parsed"]


def test_stream_chunks_concatenate_to_the_answer(llm):
    text = "Describe the harbour at dawn."
    chunks = list(llm.stream(text, stream_usage=True))
    assert len(chunks) > 2
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert isinstance(total.content, str) and total.content.strip()
    assert total.content == llm.invoke(text).content  # same seed, streamed or not
    assert total.usage_metadata["output_tokens"] == len(O200K.encode(total.content))
    assert total.usage_metadata["input_tokens"] == prompt_tokens(text)


def test_stream_tool_call_chunks_assemble(llm):
    bound = llm.bind_tools([get_weather])
    total = None
    for chunk in bound.stream("weather in Paris?"):
        total = chunk if total is None else total + chunk
    assert [c["name"] for c in total.tool_calls] == ["get_weather"]
    assert total.tool_calls[0]["args"] == {"city": "Paris"}
