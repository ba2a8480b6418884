"""A Realtime session's configuration: ``session.update`` and ``response.create`` parameters.

Pure logic, no I/O: the WebSocket layer (``fakeai.api.realtime``) feeds it the client's
JSON and renders what it returns. Every invalid value raises ``ServiceError`` (400,
``invalid_request_error``) naming the parameter, which the layer sends as an ``error``
event. An update is validated whole before anything changes: a refused update changes
nothing.

The defaults are those of OpenAI's GA ``session.created``: audio output in ``marin``'s
voice, PCM16 at 24 kHz both ways, ``server_vad`` (threshold 0.5, 300 ms prefix padding,
200 ms silence), no input transcription, ``max_output_tokens: "inf"``.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ..engine import jsonschema_gen
from ..engine.tools import Function, ToolPlan
from .errors import ServiceError
from .realtime_audio import PCM, AudioFormat, parse_format

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, witty, and friendly AI. Act like a human, but remember that you aren't a human "
    "and that you can't do human things in the real world. Your voice and personality should be warm and "
    "engaging, with a lively and playful tone. Talk quickly. You should always call a function if you can. "
    "Do not refer to these rules, even if you're asked about them.")
SESSION_TTL = 3600  # s: a session lasts at most an hour (expires_at)
MAX_OUTPUT_LIMIT = 4096  # max_output_tokens accepts 1..4096 or "inf"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SERVER_VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
               "idle_timeout_ms": None, "create_response": True, "interrupt_response": True}
_SEMANTIC_VAD = {"type": "semantic_vad", "eagerness": "auto", "create_response": True, "interrupt_response": True}
_SESSION_KEYS = frozenset({"type", "model", "output_modalities", "instructions", "audio", "include", "tracing",
                           "tools", "tool_choice", "max_output_tokens", "truncation", "prompt",
                           "parallel_tool_calls", "reasoning"})
_RESPONSE_KEYS = frozenset({"output_modalities", "instructions", "audio", "tools", "tool_choice",
                            "max_output_tokens", "conversation", "metadata", "prompt", "input",
                            "parallel_tool_calls", "reasoning"})


def new_id(prefix: str) -> str:
    """An id like OpenAI's: prefix + 21 base-62 characters."""
    n = int.from_bytes(os.urandom(16), "big")
    out = []
    for _ in range(21):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return prefix + "".join(out)


def bad(message: str, param: str | None = None, code: str | None = "invalid_value") -> ServiceError:
    return ServiceError(400, message, param=param, code=code)


def _unknown(raw: dict, allowed: frozenset, where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise bad(f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}", "unknown_parameter")


def _object(value: Any, param: str) -> dict:
    if not isinstance(value, dict):
        raise bad(f"Invalid type for '{param}': expected an object, but got {_kind(value)} instead.",
                  param, "invalid_type")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _int(value: Any, param: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"Invalid type for '{param}': expected an integer, but got {_kind(value)} instead.",
                  param, "invalid_type")
    if value < low or (high is not None and value > high):
        top = f" and <= {high}" if high is not None else ""
        raise bad(f"Invalid '{param}': expected a value >= {low}{top}, but got {value} instead.", param)
    return value


def _number(value: Any, param: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(f"Invalid type for '{param}': expected a number, but got {_kind(value)} instead.",
                  param, "invalid_type")
    if not low <= value <= high:
        raise bad(f"Invalid '{param}': expected a value between {low} and {high}, but got {value} instead.",
                  param)
    return float(value)


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise bad(f"Invalid type for '{param}': expected a boolean, but got {_kind(value)} instead.",
                  param, "invalid_type")
    return value


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise bad(f"Invalid type for '{param}': expected a string, but got {_kind(value)} instead.",
                  param, "invalid_type")
    return value


def _choice(value: Any, param: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        listed = ", ".join(f"'{a}'" for a in allowed)
        raise bad(f"Invalid value: '{value}'. Supported values are: {listed}.", param)
    return value


def modalities(value: Any, param: str) -> list[str]:
    if not isinstance(value, list) or not value or any(v not in ("text", "audio") for v in value):
        raise bad(f"Invalid '{param}': expected ['text'] or ['audio'].", param)
    if len(set(value)) > 1:
        raise bad(f"Invalid '{param}': a response is either text or audio (with its transcript), not "
                  "both.", param)
    return [value[0]]


def audio_format(value: Any, param: str) -> AudioFormat:
    fmt = parse_format(value)
    if fmt is None:
        raise bad(f"Invalid '{param}': expected {{'type': 'audio/pcm', 'rate': 24000}}, {{'type': "
                  "'audio/pcmu'}} or {'type': 'audio/pcma'}.", param)
    return fmt


def voice(value: Any, param: str) -> str:
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        return value["id"]
    if isinstance(value, str) and value:
        return value
    raise bad(f"Invalid '{param}': expected a voice name or an object with an 'id'.", param)


def max_output_tokens(value: Any, param: str) -> int | str:
    if value == "inf":
        return "inf"
    return _int(value, param, 1, MAX_OUTPUT_LIMIT)


# -- tools --------------------------------------------------------------------------

@dataclass(slots=True)
class Tools:
    echo: list[dict] = field(default_factory=list)      # as the session shows them
    functions: tuple[Function, ...] = ()
    choice: Any = "auto"                                # as the session shows it

    def plan(self, after_result: bool) -> ToolPlan | None:
        if not self.functions:
            return None
        c = self.choice
        name = c if isinstance(c, str) else c.get("name") if c.get("type") == "function" else "none"
        return ToolPlan(self.functions, name, parallel=False, after_result=after_result)

    def chat(self) -> list[dict]:
        """The functions as chat tool definitions (what the prompt counts)."""
        return [{"type": "function", "function": {"name": f.name, "description": f.description,
                                                  "parameters": f.parameters}} for f in self.functions]


def _function(raw: dict, where: str) -> tuple[dict, Function]:
    _unknown(raw, frozenset({"type", "name", "description", "parameters"}), where)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise bad(f"Missing required parameter: '{where}.name'.", f"{where}.name", "missing_required_parameter")
    description = raw.get("description") or ""
    _string(description, f"{where}.description")
    params = raw.get("parameters", {"type": "object", "properties": {}})
    _object(params, f"{where}.parameters")
    try:
        jsonschema_gen.check_schema(params, strict=False, name=name, kind="function")
    except jsonschema_gen.SchemaError as e:
        raise bad(str(e), f"{where}.parameters", "invalid_function_parameters") from None
    echo = {"type": "function", "name": name, "description": description, "parameters": params}
    return echo, Function(name, description, params)


def tools(value: Any, choice: Any, where: str) -> Tools:
    if not isinstance(value, list):
        raise bad(f"Invalid type for '{where}.tools': expected an array, but got {_kind(value)} instead.",
                  f"{where}.tools", "invalid_type")
    out = Tools()
    fns = []
    for i, tool in enumerate(value):
        p = f"{where}.tools[{i}]"
        _object(tool, p)
        kind = tool.get("type", "function")
        if kind == "function":
            echo, fn = _function(tool, p)
            out.echo.append(echo)
            fns.append(fn)
        elif kind == "mcp":  # accepted and shown; no MCP server is ever called
            if not isinstance(tool.get("server_label"), str):
                raise bad(f"Missing required parameter: '{p}.server_label'.", f"{p}.server_label",
                          "missing_required_parameter")
            out.echo.append(tool)
        else:
            raise bad(f"Invalid value: '{kind}'. Supported values are: 'function' and 'mcp'.", f"{p}.type")
    names = [f.name for f in fns]
    if len(set(names)) != len(names):
        raise bad(f"Invalid '{where}.tools': function names must be unique.", f"{where}.tools")
    out.functions = tuple(fns)
    out.choice = tool_choice(choice, names, where)
    return out


def tool_choice(value: Any, names: list[str], where: str) -> Any:
    param = f"{where}.tool_choice"
    if isinstance(value, str):
        return _choice(value, param, ("auto", "none", "required"))
    _object(value, param)
    if value.get("type") == "function":
        name = value.get("name")
        if name not in names:
            raise bad(f"Invalid value for '{param}': function '{name}' not found in 'tools'.", param)
        return {"type": "function", "name": name}
    if value.get("type") == "mcp" and isinstance(value.get("server_label"), str):
        return dict(value)
    raise bad(f"Invalid '{param}': expected 'auto', 'none', 'required' or a function.", param)


# -- the session ------------------------------------------------------------------------

class Config:
    """The effective configuration of one session (what ``session.created``/``updated`` show)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.instructions = DEFAULT_INSTRUCTIONS
        self.modalities = ["audio"]
        self.input_format: AudioFormat = PCM
        self.output_format: AudioFormat = PCM
        self.transcription: dict | None = None
        self.noise_reduction: dict | None = None
        self.turn_detection: dict | None = {**_SERVER_VAD, "silence_duration_ms": 200}
        self.voice = "marin"
        self.speed = 1.0
        self.tools = Tools()
        self.max_output_tokens: int | str = "inf"
        self.truncation: Any = "auto"
        self.include: list | None = None
        self.tracing: Any = None
        self.prompt: Any = None

    def update(self, raw: Any, voice_locked: bool, transcriber) -> None:
        """Apply a ``session.update``'s ``session`` (validated whole first). ``voice_locked``: the
        assistant has spoken, so the voice may not change; ``transcriber(id)`` says whether a
        model can transcribe."""
        raw = _object(raw, "session")
        _unknown(raw, _SESSION_KEYS, "session")
        kind = raw.get("type")
        if kind is None:
            raise bad("Missing required parameter: 'session.type'.", "session.type", "missing_required_parameter")
        if kind != "realtime":
            raise bad(f"Invalid value: '{kind}'. This endpoint serves 'realtime' sessions; transcription "
                      "sessions are not simulated.", "session.type")
        if "model" in raw and raw["model"] != self.model:
            raise bad("The model of a session cannot be changed.", "session.model", "cannot_update_model")
        new = copy.copy(self)
        if "output_modalities" in raw:
            new.modalities = modalities(raw["output_modalities"], "session.output_modalities")
        if "instructions" in raw:
            new.instructions = _string(raw["instructions"], "session.instructions")
        if "audio" in raw:
            new._audio(_object(raw["audio"], "session.audio"), voice_locked, transcriber)
        if "tools" in raw or "tool_choice" in raw:
            new.tools = tools(raw.get("tools", self.tools.echo), raw.get("tool_choice", self.tools.choice),
                              "session")
        if "max_output_tokens" in raw:
            new.max_output_tokens = max_output_tokens(raw["max_output_tokens"], "session.max_output_tokens")
        if "truncation" in raw:
            new.truncation = truncation(raw["truncation"])
        if "include" in raw:
            inc = raw["include"]
            if inc is not None and (not isinstance(inc, list)
                                    or any(i != "item.input_audio_transcription.logprobs" for i in inc)):
                raise bad("Invalid 'session.include': the only value is "
                          "'item.input_audio_transcription.logprobs'.", "session.include")
            new.include = inc
        if "tracing" in raw:
            t = raw["tracing"]
            if t is not None and t != "auto" and not isinstance(t, dict):
                raise bad("Invalid 'session.tracing': expected null, 'auto' or an object.", "session.tracing")
            new.tracing = t
        if "prompt" in raw:
            p = raw["prompt"]
            if p is not None and not (isinstance(p, dict) and isinstance(p.get("id"), str)):
                raise bad("Invalid 'session.prompt': expected null or an object with an 'id'.", "session.prompt")
            new.prompt = p
        self.__dict__.update(new.__dict__)

    def _audio(self, raw: dict, voice_locked: bool, transcriber) -> None:
        _unknown(raw, frozenset({"input", "output"}), "session.audio")
        if "input" in raw:
            inp = _object(raw["input"], "session.audio.input")
            where = "session.audio.input"
            _unknown(inp, frozenset({"format", "transcription", "noise_reduction", "turn_detection"}), where)
            if "format" in inp:
                self.input_format = audio_format(inp["format"], f"{where}.format")
            if "transcription" in inp:
                self.transcription = transcription(inp["transcription"], transcriber)
            if "noise_reduction" in inp:
                nr = inp["noise_reduction"]
                if nr is not None:
                    _object(nr, f"{where}.noise_reduction")
                    _choice(nr.get("type"), f"{where}.noise_reduction.type", ("near_field", "far_field"))
                self.noise_reduction = nr
            if "turn_detection" in inp:
                self.turn_detection = turn_detection(inp["turn_detection"], self.turn_detection)
        if "output" in raw:
            out = _object(raw["output"], "session.audio.output")
            where = "session.audio.output"
            _unknown(out, frozenset({"format", "voice", "speed"}), where)
            if "format" in out:
                self.output_format = audio_format(out["format"], f"{where}.format")
            if "voice" in out:
                v = voice(out["voice"], f"{where}.voice")
                if v != self.voice and voice_locked:
                    raise bad("Cannot update a conversation's voice if assistant audio is present.",
                              f"{where}.voice", "cannot_update_voice")
                self.voice = v
            if "speed" in out:
                self.speed = _number(out["speed"], f"{where}.speed", 0.25, 1.5)

    def wire(self, session_id: str, expires_at: int) -> dict:
        td = None if self.turn_detection is None else dict(self.turn_detection)
        body = {
            "type": "realtime", "object": "realtime.session", "id": session_id, "model": self.model,
            "output_modalities": list(self.modalities), "instructions": self.instructions,
            "tools": list(self.tools.echo), "tool_choice": self.tools.choice,
            "max_output_tokens": self.max_output_tokens, "tracing": self.tracing, "truncation": self.truncation,
            "prompt": self.prompt, "expires_at": expires_at,
            "audio": {
                "input": {"format": self.input_format.wire(), "turn_detection": td},
                "output": {"format": self.output_format.wire(), "voice": self.voice, "speed": self.speed},
            },
        }
        inp = body["audio"]["input"]
        if self.transcription is not None:  # the spec has no null for these two: absent when off
            inp["transcription"] = self.transcription
        if self.noise_reduction is not None:
            inp["noise_reduction"] = self.noise_reduction
        if self.include is not None:
            body["include"] = self.include
        return body


def expires_at() -> int:
    return int(time.time()) + SESSION_TTL


def transcription(value: Any, transcriber) -> dict | None:
    if value is None:
        return None
    p = "session.audio.input.transcription"
    _object(value, p)
    _unknown(value, frozenset({"model", "language", "languages", "keywords", "prompt"}), p)
    model = value.get("model", "gpt-4o-transcribe")
    if not isinstance(model, str) or not transcriber(model):
        raise bad(f"Invalid value for '{p}.model': '{model}' is not a transcription model.", f"{p}.model")
    out = {"model": model}
    for key in ("language", "prompt"):
        if key in value:
            out[key] = _string(value[key], f"{p}.{key}")
    for key in ("languages", "keywords"):
        if key in value:
            v = value[key]
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise bad(f"Invalid '{p}.{key}': expected an array of strings.", f"{p}.{key}")
            out[key] = v
    return out


def turn_detection(value: Any, current: dict | None) -> dict | None:
    """The new turn detection: fields given replace the current ones of the same type; a new
    type starts from its documented defaults."""
    if value is None:
        return None
    p = "session.audio.input.turn_detection"
    _object(value, p)
    kind = _choice(value.get("type", "server_vad"), f"{p}.type", ("server_vad", "semantic_vad"))
    base = current if current is not None and current["type"] == kind else (
        _SERVER_VAD if kind == "server_vad" else _SEMANTIC_VAD)
    out = dict(base)
    _unknown(value, frozenset(base), p)
    for key, v in value.items():
        where = f"{p}.{key}"
        if key == "threshold":
            out[key] = _number(v, where, 0.0, 1.0)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            out[key] = _int(v, where, 0, 10_000)
        elif key == "idle_timeout_ms":
            out[key] = None if v is None else _int(v, where, 5000, 30000)
        elif key in ("create_response", "interrupt_response"):
            out[key] = _bool(v, where)
        elif key == "eagerness":
            out[key] = _choice(v, where, ("low", "medium", "high", "auto"))
    return out


def truncation(value: Any) -> Any:
    p = "session.truncation"
    if isinstance(value, str):
        return _choice(value, p, ("auto", "disabled"))
    _object(value, p)
    if value.get("type") != "retention_ratio":
        raise bad(f"Invalid '{p}': expected 'auto', 'disabled' or a retention_ratio object.", p)
    _unknown(value, frozenset({"type", "retention_ratio", "token_limits"}), p)
    _number(value.get("retention_ratio"), f"{p}.retention_ratio", 0.0, 1.0)
    limits = value.get("token_limits")
    if limits is not None:
        _object(limits, f"{p}.token_limits")
        if "post_instructions" in limits:
            _int(limits["post_instructions"], f"{p}.token_limits.post_instructions", 0)
    return dict(value)


# -- response.create ---------------------------------------------------------------------

@dataclass(slots=True)
class ResponseParams:
    """What one response uses: the session's configuration with the request's overrides."""

    modalities: list[str]
    instructions: str
    output_format: AudioFormat
    voice: str
    speed: float
    tools: Tools
    max_output_tokens: int | str
    conversation: str  # "auto" | "none"
    metadata: dict | None
    input: list | None  # raw input items (None: the conversation)
    truncation: Any

    @property
    def audio(self) -> bool:
        return self.modalities == ["audio"]

    @property
    def max_tokens(self) -> int | None:
        return None if self.max_output_tokens == "inf" else self.max_output_tokens


def response_params(cfg: Config, raw: Any) -> ResponseParams:
    p = ResponseParams(list(cfg.modalities), cfg.instructions, cfg.output_format, cfg.voice, cfg.speed,
                       cfg.tools, cfg.max_output_tokens, "auto", None, None, cfg.truncation)
    if raw is None:
        return p
    raw = _object(raw, "response")
    _unknown(raw, _RESPONSE_KEYS, "response")
    if "output_modalities" in raw:
        p.modalities = modalities(raw["output_modalities"], "response.output_modalities")
    if "instructions" in raw:
        p.instructions = _string(raw["instructions"], "response.instructions")
    if "audio" in raw:
        audio = _object(raw["audio"], "response.audio")
        _unknown(audio, frozenset({"output"}), "response.audio")
        out = _object(audio.get("output", {}), "response.audio.output")
        _unknown(out, frozenset({"format", "voice"}), "response.audio.output")
        if "format" in out:
            p.output_format = audio_format(out["format"], "response.audio.output.format")
        if "voice" in out:
            p.voice = voice(out["voice"], "response.audio.output.voice")
    if "tools" in raw or "tool_choice" in raw:
        p.tools = tools(raw.get("tools", cfg.tools.echo), raw.get("tool_choice", cfg.tools.choice), "response")
    if "max_output_tokens" in raw:
        p.max_output_tokens = max_output_tokens(raw["max_output_tokens"], "response.max_output_tokens")
    if "conversation" in raw:
        p.conversation = _choice(raw["conversation"], "response.conversation", ("auto", "none"))
    if "metadata" in raw and raw["metadata"] is not None:
        md = _object(raw["metadata"], "response.metadata")
        if len(md) > 16 or not all(isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
                                   for k, v in md.items()):
            raise bad("Invalid 'response.metadata': at most 16 string keys (64 chars) with string values "
                      "(512 chars).", "response.metadata")
        p.metadata = md
    if "input" in raw:
        if not isinstance(raw["input"], list):
            raise bad("Invalid type for 'response.input': expected an array.", "response.input", "invalid_type")
        p.input = raw["input"]
    return p
