"""From a Responses request to what the engine generates: context, tools, format, prompt tokens.

``prepare`` reads the whole context (the ``previous_response_id`` chain or the
conversation, then ``instructions`` and the new input), checks tools,
``tool_choice``, ``text.format`` and ``reasoning`` with OpenAI's 400s, and counts
the prompt with the model's real tokenizer as the equivalent chat messages. It is
shared by ``POST /v1/responses``, background runs and ``/v1/responses/input_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine import jsonschema_gen
from ..engine.output import OutputSpec
from ..engine.prompt import content_text
from ..engine.tools import Function, ToolPlan
from ..registry import ModelDef
from ..schemas.responses import ResponseContext
from . import common
from .chat_options import _function as function_def
from .errors import APIError
from .responses_input import check_tool_outputs, normalize, prompt_ids, resolve_references, to_messages, user_text

_HOSTED_CHOICES = ("file_search", "web_search_preview", "web_search_preview_2025_03_11", "computer",
                   "computer_use_preview", "computer_use", "image_generation", "code_interpreter")


@dataclass(slots=True)
class Plan:
    model: ModelDef
    items: list[dict]  # the request's own input items, stored shape
    context: list[dict]  # earlier items: the previous_response_id chain or the conversation
    conversation: str | None
    messages: list[dict]  # all of it as chat messages, for counting
    origins: list[str]  # where each message came from (error params)
    prompt_ids: list[int]  # what the prefix cache and the router see; its length is the input tokens
    user_text: str
    tools_echo: list[dict] = field(default_factory=list)
    chat_tools: list[dict] | None = None
    tool_plan: ToolPlan | None = None
    tool_choice: Any = "auto"
    file_search: dict | None = None  # the file_search tool, when the model searches
    text_echo: dict = field(default_factory=lambda: {"format": {"type": "text"}, "verbosity": "medium"})
    json_schema: dict | None = None
    json_object: bool = False
    reasoning_echo: dict = field(default_factory=lambda: {"effort": None, "summary": None})
    effort: str | None = None
    summary: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    def spec(self, searched: bool) -> OutputSpec:
        """The engine's output spec (after a file search the model answers in text)."""
        return OutputSpec(tools=None if searched else self.tool_plan, json_schema=self.json_schema,
                          json_object=self.json_object, reasoning_effort=self.effort)


# -- tools --------------------------------------------------------------------------

def _function_tool(tool: dict, where: str) -> tuple[Function, dict, dict]:
    params = tool.get("parameters")
    strict = tool.get("strict")
    if strict is None:  # the Responses API's functions are strict whenever their schema allows it
        try:
            jsonschema_gen.check_schema(params or {"type": "object", "properties": {}}, strict=True,
                                        name=str(tool.get("name")), kind="function")
            strict = True
        except jsonschema_gen.SchemaError:
            strict = False
    fn = function_def({"name": tool.get("name"), "description": tool.get("description"),
                       "parameters": params, "strict": strict}, where)
    echo = {"type": "function", "name": fn.name, "description": tool.get("description"),
            "parameters": fn.parameters, "strict": bool(strict)}
    chat = {"type": "function", "function": {"name": fn.name, "parameters": fn.parameters}}
    if fn.description:
        chat["function"]["description"] = fn.description
    return fn, echo, chat


def _file_search_tool(tool: dict, where: str) -> dict:
    ids = tool.get("vector_store_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise APIError(400, f"Missing required parameter: '{where}.vector_store_ids'.",
                       param=f"{where}.vector_store_ids", code="missing_required_parameter")
    n = tool.get("max_num_results", 20)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 50:
        raise APIError(400, f"Invalid '{where}.max_num_results': expected an integer between 1 and 50.",
                       param=f"{where}.max_num_results", code="invalid_value")
    return {"type": "file_search", "vector_store_ids": ids, "filters": tool.get("filters"),
            "max_num_results": n,
            "ranking_options": tool.get("ranking_options") or {"ranker": "auto", "score_threshold": 0.0}}


def _tools(plan: Plan, req: ResponseContext) -> None:
    fns: list[Function] = []
    chat: list[dict] = []
    search = None
    for i, tool in enumerate(req.tools or ()):
        where = f"tools[{i}]"
        kind = tool.get("type")
        if kind == "function":
            fn, echo, c = _function_tool(tool, where)
            fns.append(fn)
            chat.append(c)
        elif kind == "file_search":
            echo = search = _file_search_tool(tool, where)
        elif isinstance(kind, str):
            echo = tool  # other hosted tools are accepted and echoed, never called
        else:
            raise APIError(400, f"Missing required parameter: '{where}.type'.", param=f"{where}.type",
                           code="missing_required_parameter")
        plan.tools_echo.append(echo)
    names = [f.name for f in fns]
    if len(set(names)) != len(names):
        raise APIError(400, "Invalid 'tools': function names must be unique.", param="tools")
    tc = req.tool_choice if req.tool_choice is not None else "auto"
    plan.tool_choice = tc
    choice, forced = "auto", False
    if isinstance(tc, str):
        if tc not in ("auto", "none", "required"):
            raise APIError(400, f"Invalid value: '{tc}'. Supported values are: 'none', 'auto', and 'required'.",
                           param="tool_choice", code="invalid_value")
        choice = tc
    elif isinstance(tc, dict) and tc.get("type") == "function":
        choice = tc.get("name")
        if choice not in names:
            raise APIError(400, f"Invalid value for 'tool_choice': function '{choice}' not found in 'tools'.",
                           param="tool_choice.name", code="invalid_value")
        search = None
    elif isinstance(tc, dict) and tc.get("type") == "allowed_tools":
        allowed = {t.get("name") for t in tc.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"}
        unknown = allowed - set(names)
        if unknown:
            raise APIError(400, f"Invalid value for 'tool_choice': function '{min(unknown)}' not found in "
                           "'tools'.", param="tool_choice.tools", code="invalid_value")
        if not any(isinstance(t, dict) and t.get("type") == "file_search" for t in tc.get("tools") or ()):
            search = None
        fns = [f for f in fns if f.name in allowed]
        choice = tc.get("mode", "auto")
    elif isinstance(tc, dict) and tc.get("type") in _HOSTED_CHOICES:
        if tc["type"] == "file_search" and search is None:
            raise APIError(400, "Tool choice 'file_search' not found in 'tools' parameter.", param="tool_choice")
        forced = tc["type"] == "file_search"
        if not forced:
            search = None
        fns, choice = [], "none"  # a hosted tool is forced: no function is called
    elif isinstance(tc, dict) and isinstance(tc.get("type"), str):
        choice = "auto"  # mcp / custom tool choices: never acted on
    else:
        raise APIError(400, "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or an object "
                       "naming a tool.", param="tool_choice", code="invalid_value")
    last = (plan.items or plan.context or [{}])[-1]
    after = last.get("type") == "function_call_output"
    if after or not plan.user_text or (choice == "none" and not forced):
        search = None  # the model searches for a user's question, not after a tool result
    plan.file_search = search
    plan.chat_tools = chat or None
    if fns:
        plan.tool_plan = ToolPlan(tuple(fns), choice, parallel=req.parallel_tool_calls is not False,
                                  after_result=after)


# -- text.format and reasoning -------------------------------------------------------

def _text_format(plan: Plan, req: ResponseContext, instructions: str | None) -> None:
    text = req.text
    fmt = (text.format if text else None) or {"type": "text"}
    plan.text_echo = {"format": fmt, "verbosity": (text.verbosity if text else None) or "medium"}
    kind = fmt.get("type")
    if kind == "text":
        plan.text_echo["format"] = {"type": "text"}
    elif kind == "json_object":
        said = " ".join([instructions or ""] + [content_text(m.get("content")) for m in plan.messages]).lower()
        if "json" not in said:
            raise APIError(400, "Response input messages must contain the word 'json' in some form to use "
                           "'text.format' of type 'json_object'.", param="input")
        plan.json_object = True
    elif kind == "json_schema":
        name = fmt.get("name")
        if not isinstance(name, str) or not name:
            raise APIError(400, "Missing required parameter: 'text.format.name'.", param="text.format.name",
                           code="missing_required_parameter")
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise APIError(400, "Missing required parameter: 'text.format.schema'.", param="text.format.schema",
                           code="missing_required_parameter")
        strict = bool(fmt.get("strict"))
        try:
            jsonschema_gen.check_schema(schema, strict=strict, name=name)
        except jsonschema_gen.SchemaError as e:
            raise APIError(400, str(e), param="text.format.schema", code="invalid_json_schema") from None
        echo = {"type": "json_schema", "name": name, "schema": schema, "strict": strict}
        if isinstance(fmt.get("description"), str):
            echo["description"] = fmt["description"]
        plan.text_echo["format"] = echo
        plan.json_schema = schema
    else:
        raise APIError(400, f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
                       "'json_schema'.", param="text.format.type", code="invalid_value")


def _reasoning(plan: Plan, req: ResponseContext) -> None:
    r = req.reasoning
    effort = r.effort if r else None
    summary = (r.summary or r.generate_summary) if r else None
    if not plan.model.capabilities.reasoning:
        if effort is not None:
            raise APIError(400, "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                           param="reasoning.effort", code="unsupported_parameter")
        return
    plan.effort = effort
    plan.summary = summary if effort != "none" else None
    plan.reasoning_echo = {"effort": effort or "medium", "summary": summary}


# -- the whole context ----------------------------------------------------------------

def _conversation_id(value: str | dict | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    cid = value.get("id")
    if not isinstance(cid, str):
        raise APIError(400, "Missing required parameter: 'conversation.id'.", param="conversation.id",
                       code="missing_required_parameter")
    return cid


async def prepare(state, req: ResponseContext, model_id: str) -> Plan:
    engine = state.engine
    model = common.require_model(engine, model_id, "chat", "the Responses API")
    items = normalize(req.input)
    conversation = _conversation_id(req.conversation)
    if req.previous_response_id and conversation:
        raise APIError(400, "Mutually exclusive parameters: Ensure you are only providing one of: "
                       "'previous_response_id' or 'conversation'.", param="conversation",
                       code="mutually_exclusive_parameters")
    context: list[dict] = []
    where = "input"
    if req.previous_response_id:
        history = await state.responses.history(req.previous_response_id)
        if history is None:
            raise APIError(400, f"Previous response with id '{req.previous_response_id}' not found.",
                           param="previous_response_id", code="previous_response_not_found")
        context, where = history, "previous_response_id"
    elif conversation:
        if await state.responses.get_conversation(conversation) is None:
            raise APIError(404, f"Conversation with id '{conversation}' not found.", param="conversation")
        context, where = await state.responses.items(conversation), "conversation"
    if any(it.get("type") == "item_reference" for it in items):
        items = resolve_references(items, {it.get("id"): it for it in context})
    check_tool_outputs(context, items)
    if not items and not context:
        raise APIError(400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter")
    messages, origins = [], []
    if req.instructions:
        messages.append({"role": "developer", "content": req.instructions})
        origins.append("instructions")
    for m in to_messages(context):
        messages.append(m)
        origins.append(where)
    for m in to_messages(items):
        messages.append(m)
        origins.append(f"input[{m['_at']}]")
    plan = Plan(model, items, context, conversation, messages, origins, [], user_text(items) or user_text(context))
    _tools(plan, req)
    _text_format(plan, req, req.instructions)
    _reasoning(plan, req)
    plan.prompt_ids = prompt_ids(engine, model, messages, origins, plan.chat_tools)
    return plan


def search_message(results: list[dict]) -> dict:
    """The file search results as the model reads them (they count as input tokens)."""
    return {"role": "tool", "content": "\n\n".join(r["text"] for r in results), "tool_call_id": "file_search"}
