"""Wire model of ``POST /v1/moderations`` (request side).

``input`` stays a plain JSON value, checked by ``input_items`` (like chat's
messages): the union of a string, an array of strings and an array of content
parts gets precise, OpenAI-style errors that a pydantic union cannot give.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, WithJsonSchema

from .common import STRICT

_PART_TYPES = ("text", "image_url")

_INPUT_SCHEMA = {
    "description": "A string, an array of strings, or an array of text / image_url content parts.",
    "anyOf": [
        {"type": "string"},
        {"type": "array", "minItems": 1, "items": {"type": "string"}},
        {"type": "array", "minItems": 1, "items": {"anyOf": [
            {"type": "object", "required": ["type", "text"],
             "properties": {"type": {"const": "text"}, "text": {"type": "string"}}},
            {"type": "object", "required": ["type", "image_url"],
             "properties": {"type": {"const": "image_url"},
                            "image_url": {"type": "object", "required": ["url"],
                                          "properties": {"url": {"type": "string"}}}}},
        ]}},
    ],
}


class ModerationRequest(BaseModel):
    model_config = STRICT

    input: Annotated[Any, WithJsonSchema(_INPUT_SCHEMA)]
    model: str = "omni-moderation-latest"


class ModerationInput(NamedTuple):
    """What one result classifies: its texts, and its image parts as (param, part)."""

    texts: list[str]
    images: list[tuple[str, dict[str, Any]]]


class InvalidInput(ValueError):
    def __init__(self, param: str, message: str, code: str) -> None:
        super().__init__(message)
        self.param, self.message, self.code = param, message, code


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), "a value")


def _type_error(param: str, expected: str, value: Any) -> InvalidInput:
    return InvalidInput(param, f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} "
                               "instead.", "invalid_type")


def _missing(param: str) -> InvalidInput:
    return InvalidInput(param, f"Missing required parameter: '{param}'.", "missing_required_parameter")


def _part(parts: ModerationInput, part: Any, param: str) -> None:
    if not isinstance(part, dict):
        raise _type_error(param, "an object", part)
    kind = part.get("type")
    if kind is None:
        raise _missing(f"{param}.type")
    if kind not in _PART_TYPES:
        raise InvalidInput(f"{param}.type", f"Invalid value: '{kind}'. Supported values are: 'text' and "
                                            "'image_url'.", "invalid_value")
    if kind == "text":
        if "text" not in part:
            raise _missing(f"{param}.text")
        if not isinstance(part["text"], str):
            raise _type_error(f"{param}.text", "a string", part["text"])
        parts.texts.append(part["text"])
        return
    spec = part.get("image_url")
    if spec is None:
        raise _missing(f"{param}.image_url")
    if not isinstance(spec, dict):
        raise _type_error(f"{param}.image_url", "an object", spec)
    if "url" not in spec:
        raise _missing(f"{param}.image_url.url")
    if not isinstance(spec["url"], str):
        raise _type_error(f"{param}.image_url.url", "a string", spec["url"])
    parts.images.append((param, part))


def input_items(value: Any) -> list[ModerationInput]:
    """The inputs to classify, one per result: one per string, or one for a whole
    array of content parts. Raises InvalidInput naming the offending field."""
    if isinstance(value, str):
        return [ModerationInput([value], [])]
    if not isinstance(value, list):
        raise _type_error("input", "one of a string, an array of strings, or an array of objects", value)
    if not value:
        raise InvalidInput("input", "Invalid 'input': empty array. Expected an array with minimum length 1, "
                                    "but got an empty array instead.", "empty_array")
    if isinstance(value[0], str):
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise _type_error(f"input[{i}]", "a string", v)
        return [ModerationInput([v], []) for v in value]
    parts = ModerationInput([], [])
    for i, part in enumerate(value):
        _part(parts, part, f"input[{i}]")
    return [parts]
