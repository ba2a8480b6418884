"""Validate JSON bodies against the official OpenAI OpenAPI spec (test helper).

The spec (``openai-openapi.yaml``, OpenAPI 3.1, ~3 MB) lives beside the checkout
in ``../shared/`` or wherever ``FAKEAI_OPENAPI_SPEC`` points. Tests that need it
skip (never fail) when it is absent.

Usage::

    from tests.openapi_spec import validate, validate_error
    validate("CreateChatCompletionResponse", body)   # AssertionError listing all errors
    validate_error(error_body)                        # ErrorResponse + exact `error` keys

Notes on the spec as JSON Schema (checked against spec version 2.3.0):

* Despite declaring OpenAPI 3.1 it still uses the 3.0 keyword ``nullable: true``
  in ~110 places, e.g. ``CreateChatCompletionStreamResponse`` ``usage``,
  ``choices[].finish_reason`` and ``choices[].logprobs``. JSON Schema ignores
  ``nullable``, so we rewrite it to "also accept null" before validating;
  otherwise every streamed chunk with ``finish_reason: null`` would fail.
* ``discriminator``, ``example``, ``x-*`` etc. are unknown to JSON Schema and
  ignored (the ``oneOf`` beside a ``discriminator`` still enforces exactly one
  match, which is fine for the tool-call unions: their branches have distinct
  ``type`` enums).
* ``format`` (``unixtime``, ``uri``, ``date``, ...) is annotation-only: no
  format checker is attached, so formats never cause failures.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = Path(
    os.environ.get("FAKEAI_OPENAPI_SPEC")
    or REPO_ROOT.parent / "shared" / "openai-openapi.yaml"
)
SPEC_URI = "urn:openai-spec"
_CACHE_VERSION = 1
_MAX_ERRORS = 10


def spec_available() -> bool:
    return SPEC_PATH.is_file()


def require_spec() -> None:
    if not spec_available():
        pytest.skip(
            f"OpenAI OpenAPI spec not found at {SPEC_PATH}: put openai-openapi.yaml "
            "beside the checkout (../shared/) or set FAKEAI_OPENAPI_SPEC"
        )


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or tempfile.gettempdir()) / "fakeai-openapi"


@functools.lru_cache(maxsize=None)
def _load(path: Path) -> dict:
    # Cached as JSON (not pickle): as fast to load and safe to read from a shared /tmp.
    raw = path.read_bytes()
    cached = _cache_dir() / f"spec-v{_CACHE_VERSION}-{hashlib.sha256(raw).hexdigest()}.json"
    try:
        return json.loads(cached.read_bytes())
    except (OSError, ValueError):  # missing or truncated cache: re-parse
        pass
    spec = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    text = json.dumps(spec, default=str)  # one YAML date (in an `example`) becomes a string
    try:  # atomic write, so parallel workers never see a partial file
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, cached)
    except OSError:
        pass
    return json.loads(text)  # same object shape whether cold or warm


def load_spec() -> dict:
    """The parsed spec (parsed once per process, cached on disk by sha256). Skips if absent."""
    require_spec()
    return _load(SPEC_PATH)


_BLOCKS_NULL = {"$ref", "allOf", "anyOf", "oneOf", "not", "const"}


def _is_null_marker(schema) -> bool:
    return isinstance(schema, dict) and schema.get("nullable") is True and set(schema) <= {
        "nullable", "description"}


def _to_json_schema(node):
    """Copy of ``node`` with OpenAPI 3.0 ``nullable: true`` turned into JSON Schema."""
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    nullable = node.get("nullable") is True
    out = {}
    for k, v in node.items():
        if k == "nullable" and isinstance(v, bool):
            continue
        if k == "allOf" and isinstance(v, list):  # 3.0 idiom: allOf: [{$ref: X}, {nullable: true}]
            kept = [s for s in v if not _is_null_marker(s)]
            nullable |= len(kept) < len(v)
            if not kept:
                continue
            v = kept
        out[k] = _to_json_schema(v)
    if not nullable:
        return out
    t = out.get("type")
    if isinstance(t, (str, list)) and not _BLOCKS_NULL & out.keys():
        types = [t] if isinstance(t, str) else list(t)
        out["type"] = types + ["null"] * ("null" not in types)
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [out, {"type": "null"}]}


@functools.lru_cache(maxsize=None)
def _registry(path: Path):
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    spec = _load(path)
    # All $refs in the spec point into #/components, so only that part is converted.
    document = {**spec, "components": _to_json_schema(spec["components"])}
    return Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(document))


@functools.lru_cache(maxsize=None)
def _validator(path: Path, component: str):
    from jsonschema import Draft202012Validator

    schemas = _load(path)["components"]["schemas"]
    if component not in schemas:
        close = difflib.get_close_matches(component, schemas, n=3)
        raise KeyError(f"no component {component!r} in {path} (did you mean {close}?)")
    # No format_checker: `format` stays an annotation (the spec uses e.g. "unixtime").
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{component}"}, registry=_registry(path)
    )


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate(component: str, instance) -> None:
    """Assert ``instance`` matches ``#/components/schemas/<component>``. Skips if no spec."""
    from jsonschema.exceptions import best_match, relevance

    require_spec()
    errors = sorted(_validator(SPEC_PATH, component).iter_errors(instance), key=relevance, reverse=True)
    if not errors:
        return
    best = best_match(errors)  # may be a more specific error from inside an anyOf/oneOf
    ordered = [best] + [e for e in errors if e is not best]
    lines = [f"{len(errors)} schema error(s) against {component}:"]
    lines += [f"  {e.json_path}: {_short(e.message)}" for e in ordered[:_MAX_ERRORS]]
    if len(ordered) > _MAX_ERRORS:
        lines.append(f"  ... and {len(ordered) - _MAX_ERRORS} more")
    raise AssertionError("\n".join(lines))


ERROR_KEYS = {"message", "type", "param", "code"}


def validate_error(instance) -> None:
    """Assert an OpenAI error envelope: ``ErrorResponse`` + exactly the four ``error`` keys."""
    validate("ErrorResponse", instance)
    keys = set(instance["error"])
    assert keys == ERROR_KEYS, (
        f"error envelope keys {sorted(keys)} != {sorted(ERROR_KEYS)}"
        f" (missing {sorted(ERROR_KEYS - keys)}, extra {sorted(keys - ERROR_KEYS)})"
    )
