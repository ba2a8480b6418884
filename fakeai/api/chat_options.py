"""From a chat request's tools, response_format, reasoning, prediction and logprobs
fields to the engine's ``OutputSpec``, with OpenAI's 400s for what is invalid."""

from __future__ import annotations

from typing import Any

from ..engine import jsonschema_gen
from ..engine.output import OutputSpec
from ..engine.prompt import content_text
from ..engine.tools import Function, ToolPlan
from ..schemas.chat import ChatCompletionRequest
from .errors import APIError


def _function(raw: Any, where: str) -> Function:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise APIError(400, f"Missing required parameter: '{where}.name'.", param=f"{where}.name",
                       code="missing_required_parameter")
    params = raw.get("parameters")
    if params is None:
        params = {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise APIError(400, f"Invalid type for '{where}.parameters': expected an object.",
                       param=f"{where}.parameters", code="invalid_type")
    strict = bool(raw.get("strict"))
    try:
        jsonschema_gen.check_schema(params, strict=strict, name=raw["name"], kind="function")
    except jsonschema_gen.SchemaError as e:
        raise APIError(400, str(e), param=f"{where}.parameters", code="invalid_function_parameters") from None
    return Function(raw["name"], str(raw.get("description") or ""), params, strict)


def _tool_plan(req: ChatCompletionRequest) -> ToolPlan | None:
    after = bool(req.messages) and req.messages[-1].get("role") in ("tool", "function")
    if req.functions is not None:  # legacy functions / function_call
        fns = tuple(_function(f, f"functions[{i}]") for i, f in enumerate(req.functions))
        fc = req.function_call
        choice = "auto" if fc is None else fc if isinstance(fc, str) else fc.get("name")
        if choice not in ("auto", "none") and not any(f.name == choice for f in fns):
            raise APIError(400, f"Invalid value for 'function_call': function '{choice}' not found in "
                           "'functions'.", param="function_call", code="invalid_value")
        return ToolPlan(fns, choice, parallel=False, after_result=after, legacy=True)
    if req.tools is not None and not req.tools:
        raise APIError(400, "Invalid 'tools': empty array. Expected an array with minimum length 1, "
                       "but got an empty array instead.", param="tools", code="empty_array")
    if req.tools is None:
        if req.tool_choice not in (None, "none"):
            raise APIError(400, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when "
                           "'tools' are specified.", param="tool_choice")
        return None
    fns = []
    for i, tool in enumerate(req.tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            if isinstance(tool, dict) and tool.get("type") == "custom":
                continue  # custom (free-form) tools are accepted and never called
            raise APIError(400, f"Invalid value for '{where}.type': expected 'function'.",
                           param=f"{where}.type", code="invalid_value")
        fns.append(_function(tool.get("function"), f"{where}.function"))
    names = [f.name for f in fns]
    if len(set(names)) != len(names):
        raise APIError(400, "Invalid 'tools': function names must be unique.", param="tools")
    tc = req.tool_choice
    if tc is None or tc in ("auto", "none", "required"):
        choice = tc or "auto"
    elif isinstance(tc, dict) and isinstance((tc.get("function") or {}).get("name"), str):
        choice = tc["function"]["name"]
        if choice not in names:
            raise APIError(400, f"Invalid value for 'tool_choice': function '{choice}' not found in "
                           "'tools'.", param="tool_choice", code="invalid_value")
    elif isinstance(tc, dict) and tc.get("type") == "allowed_tools":
        allowed = tc.get("allowed_tools") or {}
        choice = allowed.get("mode", "auto")
        keep = {(t.get("function") or {}).get("name") or t.get("name")
                for t in allowed.get("tools") or () if isinstance(t, dict)}
        unknown = keep - set(names)
        if unknown:
            raise APIError(400, f"Invalid value for 'tool_choice': function '{sorted(unknown)[0]}' not "
                           "found in 'tools'.", param="tool_choice.allowed_tools", code="invalid_value")
        fns = [f for f in fns if f.name in keep]
    else:
        raise APIError(400, "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or "
                       "a named function.", param="tool_choice", code="invalid_value")
    if fns and req.n > 1 and choice != "none":
        raise APIError(400, "Invalid 'n': n > 1 is not supported with tools.", param="n")
    parallel = req.parallel_tool_calls is not False
    return ToolPlan(tuple(fns), choice, parallel=parallel, after_result=after)


def _response_format(req: ChatCompletionRequest) -> tuple[dict | None, bool]:
    rf = req.response_format
    if rf is None or rf.get("type") in (None, "text"):
        return None, False
    kind = rf.get("type")
    if kind == "json_object":
        said = " ".join(content_text(m.get("content")) for m in req.messages).lower()
        if "json" not in said:
            raise APIError(400, "'messages' must contain the word 'json' in some form, to use "
                           "'response_format' of type 'json_object'.", param="messages")
        return None, True
    if kind == "json_schema":
        js = rf.get("json_schema")
        if not isinstance(js, dict) or not isinstance(js.get("name"), str):
            raise APIError(400, "Missing required parameter: 'response_format.json_schema.name'.",
                           param="response_format.json_schema.name", code="missing_required_parameter")
        schema = js.get("schema", {"type": "object"})
        try:
            jsonschema_gen.check_schema(schema, strict=bool(js.get("strict")), name=js["name"])
        except jsonschema_gen.SchemaError as e:
            raise APIError(400, str(e), param="response_format", code="invalid_json_schema") from None
        return schema, False
    raise APIError(400, f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object' and "
                   "'json_schema'.", param="response_format.type", code="invalid_value")


def check_model_params(req: ChatCompletionRequest, model) -> None:
    """Parameters OpenAI rejects for a model that cannot use them."""
    reasoning = model.capabilities.reasoning
    if req.reasoning_effort is not None and not reasoning:
        raise APIError(400, "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                       param="reasoning_effort", code="unsupported_parameter")
    # OpenAI's own reasoning models take max_completion_tokens only (vLLM-served ones take both)
    if reasoning and req.max_tokens is not None and model.provider == "openai" and "/" not in model.id:
        raise APIError(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                       "Use 'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter")


AUDIO_FORMATS = ("wav", "mp3", "flac", "opus", "aac", "pcm16")


def audio_output(req: ChatCompletionRequest, model) -> tuple[str, str] | None:
    """(voice, format) when the request asks for spoken output, else None."""
    if not req.modalities or "audio" not in req.modalities:
        return None
    if not model.capabilities.audio:
        raise APIError(400, "This model does not support audio output. Use an audio-capable model "
                       "such as gpt-4o-audio-preview.", param="modalities", code="invalid_value")
    audio = req.audio or {}
    voice, fmt = audio.get("voice"), audio.get("format")
    if not isinstance(voice, (str, dict)) or not fmt:
        raise APIError(400, "Missing required parameter: 'audio'. With modalities ['text', 'audio'], "
                       "'audio' must give a 'voice' and a 'format'.", param="audio",
                       code="missing_required_parameter")
    if fmt not in AUDIO_FORMATS:
        raise APIError(400, f"Invalid value: '{fmt}'. Supported values are: "
                       + ", ".join(f"'{f}'" for f in AUDIO_FORMATS) + ".", param="audio.format",
                       code="invalid_value")
    if req.stream and fmt != "pcm16":
        raise APIError(400, "Audio output streaming only supports 'pcm16' as the format.",
                       param="audio.format", code="invalid_value")
    return (voice if isinstance(voice, str) else voice.get("id", "alloy")), fmt


def output_spec(req: ChatCompletionRequest) -> OutputSpec:
    schema, json_object = _response_format(req)
    top = None
    if req.top_logprobs is not None and not req.logprobs:
        raise APIError(400, "Invalid value for 'top_logprobs': 'logprobs' must be true to use it.",
                       param="top_logprobs")
    if req.logprobs:
        top = req.top_logprobs or 0
    prediction = None
    if req.prediction is not None:
        prediction = content_text(req.prediction.get("content")) or None
    return OutputSpec(tools=_tool_plan(req), json_schema=schema, json_object=json_object,
                      reasoning_effort=req.reasoning_effort, prediction=prediction, top_logprobs=top)
