"""What a test of your own LLM code looks like with fakeai's pytest plugin.

Run it with ``pytest examples/test_with_fakeai.py`` once fakeai is installed:
the plugin gives every test a ``fakeai`` fixture, a live server with clients.
"""

import pytest


def summarize(client, text: str) -> str:
    """The code under test: any function that talks to an OpenAI-compatible API."""
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Summarize in one sentence."},
                  {"role": "user", "content": text}],
        max_tokens=40,
    )
    return reply.choices[0].message.content


def test_summarize_returns_text(fakeai):
    summary = summarize(fakeai.openai, "The quick brown fox jumps over the lazy dog.")
    assert isinstance(summary, str) and summary


def test_token_budget_is_respected(fakeai):
    reply = fakeai.openai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Write a long essay."}], max_tokens=5)
    assert reply.usage.completion_tokens <= 5


@pytest.mark.fakeai(ttft_ms=150, itl_ms=0)
def test_slow_backend_is_tolerated(fakeai):
    import time

    start = time.monotonic()
    fakeai.openai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert time.monotonic() - start >= 0.15
