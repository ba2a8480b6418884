"""A Realtime session's conversation: its items and the prompt a response sees.

Items are kept as the events show them (``wire``: no audio bytes) beside their audio
(raw bytes in the format they came in, for ``conversation.item.retrieve``) and its
duration. The prompt is the chat layout of ``fakeai.engine.prompt`` (the same framing
tokens, real tokenizer): the tool definitions, the instructions as a system message,
then each item as a message whose audio and images are placeholder tokens, as many as
they cost (input audio by duration, ``engine.multimodal.audio_tokens``; images as chat
images). An item's ids are computed once. Transcripts are not sent to the model (as
OpenAI says of ``input_audio.transcript``): a spoken turn counts as audio only.

Memory is bounded: at most ``MAX_ITEMS`` items holding ``MAX_TEXT_CHARS`` of text (the
oldest items go first: far more than any context window holds) and ``MAX_AUDIO_BYTES`` of
stored audio (the oldest audio bytes are dropped; the item and its duration stay, only
``retrieve`` no longer returns its audio). Cached prompt ids are 4-byte arrays.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

from ..engine.errors import EngineError
from ..engine.multimodal import audio_tokens, part_cost
from ..engine.prompt import REPLY_PRIMING, chat_ids, message_ids
from .realtime import _object, _string, bad, new_id
from .realtime_audio import MAX_APPEND_BYTES, AudioFormat, b64decode, b64encode

MAX_ITEMS = 2048
MAX_TEXT_CHARS = 4 * 1024 * 1024
MAX_AUDIO_BYTES = 32 * 1024 * 1024
MAX_ID_CHARS = 64
_ROLE_PARTS = {"user": ("input_text", "input_audio", "input_image"), "system": ("input_text",),
               "assistant": ("output_text", "text")}


class Item:
    __slots__ = ("_ids", "audio", "heard", "image_tokens", "seconds", "wire")

    def __init__(self, wire: dict) -> None:
        self.wire = wire
        self.audio: dict[int, tuple[bytes, AudioFormat]] = {}  # content index -> (bytes, format)
        self.seconds: dict[int, float] = {}                     # content index -> audio duration
        self.image_tokens: dict[int, int] = {}
        self.heard = ""            # the words the model takes from the item's audio
        self._ids: tuple | None = None

    @property
    def id(self) -> str:
        return self.wire["id"]

    @property
    def audio_bytes(self) -> int:
        return sum(len(a) for a, _ in self.audio.values())

    @property
    def text_chars(self) -> int:
        w = self.wire
        if w["type"] != "message":
            return len(w.get("arguments") or w.get("output") or "") + len(w.get("name") or "")
        return sum(len(p.get("text") or p.get("transcript") or p.get("image_url") or "") for p in w["content"])

    def changed(self) -> None:
        self._ids = None

    def retrieved(self) -> dict:
        """The item with its audio bytes (``conversation.item.retrieved``)."""
        if not self.audio:
            return self.wire
        out = dict(self.wire)
        out["content"] = [dict(p) for p in self.wire["content"]]
        for j, (data, _) in self.audio.items():
            out["content"][j]["audio"] = b64encode(data)
        return out

    def ids(self, tok, family: str) -> tuple[array, list[tuple[int, int, str]]]:
        """The item's prompt ids and its media spans (offset, length, "audio" | "image")."""
        key = (tok.name, family)
        if self._ids is not None and self._ids[0] == key:
            return self._ids[1], self._ids[2]
        w = self.wire
        kind = w["type"]
        media: list[tuple[str, int, int]] = []  # (kind, tokens, seed)
        if kind == "function_call":
            msg = {"role": "assistant", "tool_calls": [{"function": {"name": w["name"],
                                                                     "arguments": w["arguments"]}}]}
        elif kind == "function_call_output":
            msg = {"role": "tool", "content": w["output"]}
        else:
            texts = []
            for j, part in enumerate(w["content"]):
                if part["type"] in ("input_text", "output_text", "text"):
                    texts.append(part.get("text", ""))
                elif j in self.seconds:
                    media.append(("audio", audio_tokens(self.seconds[j], family), j))
                elif j in self.image_tokens:
                    media.append(("image", self.image_tokens[j], j))
            msg = {"role": w["role"], "content": "\n".join(texts)}
        flat: list[int] = []
        for _, n, j in media:
            flat += [hash((self.id, j)) & 0x7FFFFFFF] * n
        ids = array("I", message_ids(tok, msg, flat))
        spans, at = [], len(ids) - 1 - len(flat)
        for k, n, _ in media:
            spans.append((at, n, k))
            at += n
        self._ids = (key, ids, spans)
        return ids, spans


# -- items from the client -----------------------------------------------------------------

def client_item(raw: Any, fmt: AudioFormat, family: str, where: str = "item") -> Item:
    """An item a client sends (``conversation.item.create`` or a response's ``input``)."""
    raw = _object(raw, where)
    kind = raw.get("type")
    item_id = raw.get("id") or new_id("item_")
    if not isinstance(item_id, str) or len(item_id) > MAX_ID_CHARS:
        raise bad(f"Invalid '{where}.id': expected a string of at most {MAX_ID_CHARS} characters.", f"{where}.id")
    wire: dict = {"id": item_id, "object": "realtime.item", "type": kind, "status": "completed"}
    if kind == "function_call":
        _only(raw, ("name", "arguments", "call_id"), where)
        wire["call_id"] = _string(raw.get("call_id") or new_id("call_"), f"{where}.call_id")
        wire["name"] = _required_string(raw, "name", where)
        wire["arguments"] = _required_string(raw, "arguments", where)
        return Item(wire)
    if kind == "function_call_output":
        _only(raw, ("call_id", "output"), where)
        wire["call_id"] = _required_string(raw, "call_id", where)
        wire["output"] = _required_string(raw, "output", where)
        return Item(wire)
    if kind != "message":
        raise bad(f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call' and "
                  "'function_call_output'.", f"{where}.type")
    _only(raw, ("role", "content"), where)
    role = raw.get("role")
    if role not in _ROLE_PARTS:
        raise bad(f"Invalid value: '{role}'. Supported values are: 'user', 'system' and 'assistant'.",
                  f"{where}.role")
    content = raw.get("content")
    if not isinstance(content, list):
        raise bad(f"Missing required parameter: '{where}.content'.", f"{where}.content", "missing_required_parameter")
    wire["role"] = role
    item = Item(wire)
    wire["content"] = [_part(item, part, role, fmt, family, f"{where}.content[{j}]", j)
                       for j, part in enumerate(content)]
    return item


def _only(raw: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in ("type", "id", "object", "status") and key not in allowed:
            raise bad(f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}", "unknown_parameter")


def _required_string(raw: dict, key: str, where: str) -> str:
    if key not in raw:
        raise bad(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}", "missing_required_parameter")
    return _string(raw[key], f"{where}.{key}")


def _part(item: Item, part: Any, role: str, fmt: AudioFormat, family: str, where: str, j: int) -> dict:
    part = _object(part, where)
    kind = part.get("type")
    if kind not in _ROLE_PARTS[role]:
        allowed = " and ".join(f"'{k}'" for k in _ROLE_PARTS[role])
        raise bad(f"Invalid value: '{kind}'. A {role} message's content may be {allowed}.", f"{where}.type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "output_text" if kind == "text" else kind, "text": _required_string(part, "text", where)}
    if kind == "input_audio":
        data = _audio(_required_string(part, "audio", where), fmt, f"{where}.audio")
        item.audio[j] = (data, fmt)
        item.seconds[j] = fmt.seconds(len(data))
        out = {"type": "input_audio"}
        if isinstance(part.get("transcript"), str):
            out["transcript"] = part["transcript"]
        return out
    url = _required_string(part, "image_url", where)
    detail = part.get("detail", "auto")
    try:
        cost = part_cost({"type": "image_url", "image_url": {"url": url, "detail": detail}}, family,
                         param=where)
    except EngineError as e:
        raise bad(str(e), f"{where}.image_url") from None
    item.image_tokens[j] = cost.tokens if cost else 0
    return {"type": "input_image", "image_url": url, "detail": detail}


def _audio(text: str, fmt: AudioFormat, param: str) -> bytes:
    """Base64 audio in ``fmt``, decoded and checked (whole samples, within the size limit)."""
    if len(text) > MAX_APPEND_BYTES * 4 // 3 + 4:
        raise bad(f"Invalid '{param}': audio larger than {MAX_APPEND_BYTES} bytes.", param, "audio_too_large")
    try:
        data = b64decode(text)
    except ValueError:
        raise bad(f"Invalid '{param}': expected base64-encoded audio.", param) from None
    if len(data) % fmt.width:
        raise bad(f"Invalid '{param}': {fmt.type} audio is {fmt.width} bytes per sample; got {len(data)} "
                  "bytes.", param)
    return data


def decode_audio(text: Any, fmt: AudioFormat, param: str = "audio") -> bytes:
    return _audio(_string(text, param), fmt, param)


# -- the conversation -----------------------------------------------------------------------

@dataclass(slots=True)
class Prompt:
    ids: list[int]
    audio_tokens: int
    image_tokens: int
    spans: list[tuple[int, int, str]]  # media positions in ids
    user_text: str                     # what the user last said (words, for the text and tools)
    after_tool: bool                   # the last item is a function call's output
    dropped: int                       # items left out by truncation

    def cached_media(self, cached: int) -> tuple[int, int]:
        """(audio, image) tokens among the first ``cached`` prompt tokens."""
        audio = image = 0
        for at, n, kind in self.spans:
            if at >= cached:
                break
            k = min(n, cached - at)
            if kind == "audio":
                audio += k
            else:
                image += k
        return audio, image


class Conversation:
    def __init__(self) -> None:
        self.id = new_id("conv_")
        self.items: list[Item] = []
        self.by_id: dict[str, Item] = {}

    def get(self, item_id: Any, param: str = "item_id") -> Item:
        item = self.by_id.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            raise bad(f"Item with item_id not found: {item_id}", param, "item_not_found")
        return item

    def previous(self, item: Item) -> str | None:
        i = self.items.index(item)
        return self.items[i - 1].id if i else None

    def add(self, item: Item, previous_item_id: Any = None) -> str | None:
        """Insert ``item`` (after ``previous_item_id``; "root": first; None: last); its predecessor."""
        if item.id in self.by_id:
            raise bad(f"Item with id '{item.id}' already exists in the conversation.", "item.id",
                      "duplicate_item_id")
        if previous_item_id is None:
            at = len(self.items)
        elif previous_item_id == "root":
            at = 0
        else:
            at = self.items.index(self.get(previous_item_id, "previous_item_id")) + 1
        self.items.insert(at, item)
        self.by_id[item.id] = item
        prev = self.items[at - 1].id if at else None
        self.bound()
        return prev if prev in self.by_id else None

    def delete(self, item_id: Any) -> None:
        item = self.get(item_id)
        self.items.remove(item)
        del self.by_id[item.id]

    def has_call(self, call_id: str) -> bool:
        return any(i.wire["type"] == "function_call" and i.wire["call_id"] == call_id for i in self.items)

    def truncate(self, item_id: Any, content_index: Any, audio_end_ms: Any) -> Item:
        item = self.get(item_id)
        w = item.wire
        if w["type"] != "message" or w["role"] != "assistant":
            raise bad("Only assistant message items can be truncated.", "item_id", "invalid_item_type")
        if (isinstance(content_index, bool) or not isinstance(content_index, int)
                or not 0 <= content_index < len(w["content"]) or content_index not in item.seconds):
            raise bad("Invalid 'content_index': it must be the index of the item's audio content.",
                      "content_index")
        if isinstance(audio_end_ms, bool) or not isinstance(audio_end_ms, int) or audio_end_ms < 0:
            raise bad("Invalid 'audio_end_ms': expected a non-negative integer.", "audio_end_ms")
        total_ms = item.seconds[content_index] * 1000.0
        if audio_end_ms > total_ms + 0.5:
            raise bad(f"Audio content of {int(total_ms)}ms is shorter than {audio_end_ms}ms.", "audio_end_ms",
                      "invalid_value")
        item.seconds[content_index] = audio_end_ms / 1000.0
        if content_index in item.audio:
            data, fmt = item.audio[content_index]
            keep = round(audio_end_ms * fmt.rate / 1000) * fmt.width
            item.audio[content_index] = (data[:keep], fmt)
        part = w["content"][content_index]
        if "transcript" in part:
            part["transcript"] = ""  # what was not heard leaves the context
        item.changed()
        return item

    def bound(self) -> None:
        chars = sum(i.text_chars for i in self.items)
        while len(self.items) > 1 and (len(self.items) > MAX_ITEMS or chars > MAX_TEXT_CHARS):
            old = self.items.pop(0)  # the oldest (the conversation's order; even one just added at the root)
            del self.by_id[old.id]
            chars -= old.text_chars
        total = sum(i.audio_bytes for i in self.items)
        for old in self.items:
            if total <= MAX_AUDIO_BYTES:
                break
            total -= old.audio_bytes
            old.audio.clear()

    def prompt(self, tok, family: str, instructions: str, tools: list[dict], items: list[Item],
               limit: int, truncation: Any) -> Prompt:
        """The prompt of a response over ``items``, truncated to ``limit`` tokens as ``truncation``
        says ("auto": oldest items first; a retention ratio: down to that share; "disabled": never)."""
        head = chat_ids(tok, [], family, None, tools or None)
        prefix, priming = head[:-REPLY_PRIMING], head[-REPLY_PRIMING:]
        if instructions:
            prefix += message_ids(tok, {"role": "system", "content": instructions})
        parts = [i.ids(tok, family) for i in items]
        sizes = [len(ids) for ids, _ in parts]
        fixed = len(prefix) + len(priming)
        body = sum(sizes)
        first = 0
        if truncation != "disabled" and fixed + body > limit:
            budget = limit - fixed
            if isinstance(truncation, dict):
                cap = (truncation.get("token_limits") or {}).get("post_instructions")
                budget = int(min(budget, cap if cap is not None else budget) * truncation["retention_ratio"])
            while first < len(parts) - 1 and body > budget:
                body -= sizes[first]
                first += 1
        ids = list(prefix)
        spans: list[tuple[int, int, str]] = []
        for item_ids, item_spans in parts[first:]:
            spans += [(len(ids) + at, n, k) for at, n, k in item_spans]
            ids += item_ids
        ids += priming
        user_text = ""
        for item in reversed(items):
            w = item.wire
            if w["type"] == "message" and w["role"] == "user":
                said = [p["text"] for p in w["content"] if p["type"] == "input_text"]
                user_text = " ".join([*said, item.heard]).strip()
                break
        audio = sum(n for _, n, k in spans if k == "audio")
        image = sum(n for _, n, k in spans if k == "image")
        after = bool(items) and items[-1].wire["type"] == "function_call_output"
        return Prompt(ids, audio, image, spans, user_text, after, first)
