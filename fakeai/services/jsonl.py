"""JSON Lines: splitting a byte stream into numbered lines, and the checks OpenAI runs on
the JSONL files of the ``batch`` and ``fine-tune`` purposes when they are uploaded.

``LineCheck`` is fed the content chunk by chunk while it streams to the store, so
a bad file is refused (400, naming the line) without ever being held in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator

import orjson

from .errors import ServiceError

BATCH_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/moderations",
                   "/v1/responses")
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


class Lines:
    """Incremental line splitter: ``feed`` chunks, get complete ``(number, line)`` pairs
    (1-based physical line numbers, line ending stripped, blank lines skipped)."""

    def __init__(self) -> None:
        self._rest: list[bytes] = []  # the unfinished line, in pieces (a line may span many chunks)
        self.number = 0

    def feed(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        if b"\n" not in chunk:
            self._rest.append(chunk)
            return
        data = b"".join((*self._rest, chunk)) if self._rest else chunk
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self.number += 1
            line = data[start:end].strip()
            start = end + 1
            if line:
                yield self.number, line
        self._rest = [data[start:]] if start < len(data) else []

    def end(self) -> Iterator[tuple[int, bytes]]:
        if self._rest:
            self.number += 1
            line, self._rest = b"".join(self._rest).strip(), []
            if line:
                yield self.number, line


async def lines_of(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Numbered non-blank lines of a byte stream."""
    split = Lines()
    async for chunk in chunks:
        for item in split.feed(chunk):
            yield item
    for item in split.end():
        yield item


class LineCheck:
    """Validates the lines of a ``batch`` or ``fine-tune`` file as they stream past.

    ``feed`` and ``finish`` raise a 400 ``ServiceError`` at the first bad line."""

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose
        self._split = Lines()
        self._check = _check_batch if purpose == "batch" else _check_fine_tune
        self.lines = 0

    def feed(self, chunk: bytes) -> None:
        for number, line in self._split.feed(chunk):
            self._one(number, line)

    def finish(self) -> None:
        for number, line in self._split.end():
            self._one(number, line)
        if self.lines == 0:
            raise self._error("the file contains no requests" if self.purpose == "batch"
                              else "the file contains no training examples")

    def _one(self, number: int, line: bytes) -> None:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self._error(f"line {number} is not valid JSON") from None
        if not isinstance(obj, dict):
            raise self._error(f"line {number} must be a JSON object")
        problem = self._check(obj)
        if problem:
            raise self._error(f"line {number} {problem}")
        self.lines += 1

    def _error(self, what: str) -> ServiceError:
        api = "the Batch API" if self.purpose == "batch" else "fine-tuning"
        return ServiceError(400, f"Invalid file format for {api}: {what}.", param="file",
                            code="invalid_file_format")


def _check_batch(obj: dict) -> str | None:
    for key, kind, name in (("custom_id", str, "a string"), ("method", str, "a string"),
                            ("url", str, "a string"), ("body", dict, "an object")):
        if key not in obj:
            return f"is missing the required field '{key}'"
        if not isinstance(obj[key], kind):
            return f"has an invalid '{key}': it must be {name}"
    if obj["method"] != "POST":
        return f"has an invalid 'method' {obj['method']!r}: only 'POST' is supported"
    if obj["url"] not in BATCH_ENDPOINTS:
        return f"has an unsupported 'url' {obj['url']!r}: expected one of {', '.join(BATCH_ENDPOINTS)}"
    if not obj["custom_id"]:
        return "has an empty 'custom_id'"
    return None


def _check_fine_tune(obj: dict) -> str | None:
    """Chat (``messages``), preference (``input`` + ``preferred_output`` +
    ``non_preferred_output``) or legacy completion (``prompt`` + ``completion``) examples."""
    if "messages" in obj:
        return _check_messages(obj["messages"], "messages")
    if "input" in obj:
        inp = obj["input"]
        if not isinstance(inp, dict) or "messages" not in inp:
            return "has an invalid 'input': it must be an object with 'messages'"
        problem = _check_messages(inp["messages"], "input.messages")
        if problem:
            return problem
        for key in ("preferred_output", "non_preferred_output"):
            if key not in obj:
                return f"is missing the required field '{key}'"
            problem = _check_messages(obj[key], key)
            if problem:
                return problem
        return None
    if "prompt" in obj and "completion" in obj:
        if not isinstance(obj["prompt"], str) or not isinstance(obj["completion"], str):
            return "has an invalid example: 'prompt' and 'completion' must be strings"
        return None
    return "is not a training example: expected 'messages', 'input' (preference) or 'prompt' and 'completion'"


def _check_messages(messages, where: str) -> str | None:
    if not isinstance(messages, list) or not messages:
        return f"has an invalid '{where}': it must be a non-empty array"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"has an invalid '{where}[{i}]': it must be an object"
        role = m.get("role")
        if role not in _ROLES:
            return f"has an invalid '{where}[{i}].role': {role!r}"
    return None
