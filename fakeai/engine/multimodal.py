"""Prompt tokens of the non-text content parts of chat messages.

Pure functions, no network: http(s) URLs are never fetched (documented default
sizes stand in), data: URIs and base64 audio are decoded for their real size or
duration. Every number lives in ``data/multimodal.toml``, read once; the
``family`` argument names a rule set there (a model id is accepted too and
mapped through its ``model_families`` patterns). docs/multimodal.md documents
the rules and which are exact published formulas and which are approximations.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import functools
import re
import struct
import tomllib
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from .errors import EngineError

_TEXT_TYPES = frozenset({"text", "input_text", "output_text", "refusal"})
_DETAILS = ("low", "high", "auto")
_EPS = 1e-9


@dataclass(frozen=True)
class PartCost:
    tokens: int
    kind: str  # "image" | "audio" | "video" | "file"


class MediaError(EngineError, ValueError):
    """Invalid media in a content part: a 400 invalid_request_error naming the bad field."""

    code = "invalid_value"

    def __init__(self, message: str, param: str = "messages", code: str | None = None) -> None:
        super().__init__(message, param=param, code=code)


# --------------------------------------------------------------------------- rules

@lru_cache(maxsize=1)
def load_rules() -> dict[str, Any]:
    """The parsed data file, with each family's `extends` chain resolved."""
    text = resources.files(__package__).joinpath("data/multimodal.toml").read_text("utf-8")
    doc = tomllib.loads(text)
    raw, fams = doc["families"], {}

    def resolve(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name in seen:
            raise ValueError(f"multimodal.toml: `extends` cycle through {name!r}")
        if name not in fams:
            own = raw[name]
            parent = resolve(own["extends"], seen + (name,)) if "extends" in own else {}
            merged = {k: dict(v) for k, v in parent.items()}
            for section, rule in own.items():
                base = merged.get(section, {})
                if section != "extends":   # same method: merge keys; another method: replace
                    same = rule.get("method", base.get("method")) == base.get("method")
                    merged[section] = {**base, **rule} if same else dict(rule)
            fams[name] = merged
        return fams[name]

    for name in raw:
        resolve(name)
    return {**doc, "families": fams}


@functools.lru_cache(maxsize=4096)  # per request on the chat path; ids are few
def family_for_model(model_id: str) -> str:
    """The rule family of a model id (first matching `model_families` pattern)."""
    rules, mid = load_rules(), model_id.lower()
    for entry in rules["model_families"]:
        if re.search(entry["pattern"], mid):
            return entry["family"]
    return rules["defaults"]["family"]


def _family(family: str) -> dict[str, Any]:
    fams = load_rules()["families"]
    return fams[family] if family in fams else fams[family_for_model(family)]


def _detail(value: Any, param: str) -> str:
    if value is not None and value not in _DETAILS:
        raise MediaError(f"Invalid value: '{value}'. Supported values are: 'low', 'high', and "
                         "'auto'.", param)
    return value or "auto"


# --------------------------------------------------------------------------- token maths

def _smart_resize(h: int, w: int, f: int, min_px: float, max_px: float) -> tuple[int, int]:
    """Qwen2-VL's resize: multiples of `f`, total pixels within [min_px, max_px]."""
    if max(h, w) / min(h, w) > 200:
        raise MediaError(f"absolute aspect ratio must be smaller than 200, got {max(h, w) / min(h, w):.1f}")
    hb, wb = max(f, round(h / f) * f), max(f, round(w / f) * f)
    if hb * wb > max_px:
        beta = math.sqrt(h * w / max_px)
        hb, wb = max(f, math.floor(h / beta / f) * f), max(f, math.floor(w / beta / f) * f)
    elif hb * wb < min_px:
        beta = math.sqrt(min_px / (h * w))
        hb, wb = math.ceil(h * beta / f) * f, math.ceil(w * beta / f) * f
    return hb, wb


def image_tokens(width: int, height: int, detail: str = "auto", family: str = "gpt-4o") -> int:
    """Prompt tokens of one image of the given size, by the family's published rule."""
    if width <= 0 or height <= 0:
        raise MediaError(f"Invalid image size {width}x{height}: both sides must be positive.")
    detail = _detail(detail, "detail")
    rule = _family(family)["image"]
    method = rule["method"]
    if method == "tiles":                                    # OpenAI gpt-4o family
        if detail == "auto":
            detail = rule.get("auto", "high")
        if detail == "low":
            return rule["base"]
        w, h = width, height
        if (s := rule["max_side"] / max(w, h)) < 1:          # fit in max_side x max_side
            w, h = max(1, round(w * s)), max(1, round(h * s))
        if (s := rule["short_side"] / min(w, h)) < 1:        # shortest side down to short_side
            w, h = max(1, round(w * s)), max(1, round(h * s))
        t = rule["tile"]
        return rule["base"] + rule["per_tile"] * math.ceil(w / t) * math.ceil(h / t)
    if method == "patches":                                  # OpenAI gpt-4.1-mini family
        p, cap = rule["patch"], rule["max_patches"]
        n = math.ceil(width / p) * math.ceil(height / p)
        if n > cap:
            r = math.sqrt(p * p * cap / (width * height))
            if rule.get("whole_patches", True):
                wr, hr = width * r / p, height * r / p
                r *= min(max(1, math.floor(wr)) / wr, max(1, math.floor(hr)) / hr)
            n = min(cap, math.ceil(width * r / p - _EPS) * math.ceil(height * r / p - _EPS))
        return math.ceil(n * rule.get("multiplier", 1.0) - _EPS)
    if method == "pixels":                                   # Anthropic
        w, h = width, height
        s = min(1.0, rule["max_side"] / max(w, h), math.sqrt(rule["max_pixels"] / (w * h)))
        if s < 1:
            w, h = max(1, round(w * s)), max(1, round(h * s))
        return math.ceil(w * h / rule["pixels_per_token"])
    if method == "mllama":                                   # Llama 3.2 Vision tiles
        t, m = rule["tile"], rule["max_tiles"]
        keys = []
        for gw in range(1, m + 1):
            for gh in range(1, m // gw + 1):
                s = min(gw * t / width, gh * t / height)     # least upscale, else least downscale
                keys.append((s < 1, s if s >= 1 else -s, gw * gh))
        return min(keys)[2] * rule["tokens_per_tile"]
    if method == "qwen":                                     # Qwen2-VL: 28x28 px per token
        f = rule["factor"]
        max_px = rule.get("detail_max_pixels", {}).get(detail, rule["max_pixels"])
        h, w = _smart_resize(height, width, f, rule["min_pixels"], max_px)
        return (h // f) * (w // f) + rule.get("extra_tokens", 0)
    if method == "fixed":
        return rule["tokens"]
    raise ValueError(f"multimodal.toml: unknown image method {method!r}")


def audio_tokens(seconds: float, family: str = "gpt-4o") -> int:
    """Prompt tokens of `seconds` of input audio."""
    return max(0, math.ceil(seconds * _family(family)["audio"]["tokens_per_second"] - _EPS))


def video_tokens(width: int, height: int, seconds: float, fps: float, detail: str = "auto",
                 family: str = "gpt-4o") -> int:
    """Prompt tokens of a video: sampled frames times tokens per frame."""
    if width <= 0 or height <= 0:
        raise MediaError(f"Invalid video size {width}x{height}: both sides must be positive.")
    detail = _detail(detail, "detail")
    seconds, fps = max(0.0, seconds), fps if fps > 0 else 1.0
    rule = _family(family)["video"]
    if rule["method"] == "frames":                           # each sampled frame billed as an image
        n = math.ceil(seconds * min(fps, rule["sample_fps"]) - _EPS)
        n = min(rule["max_frames"], max(1, n))
        return n * image_tokens(width, height, rule.get("detail", detail), family)
    if rule["method"] == "qwen":                             # qwen-vl-utils smart_nframes + resize
        f, ff = rule["factor"], rule["frame_factor"]
        total = max(1, round(seconds * fps))
        lo = math.ceil(rule["min_frames"] / ff) * ff
        hi = math.floor(min(rule["max_frames"], total) / ff) * ff
        n = min(max(seconds * rule["sample_fps"], lo), hi, total)
        n = max(ff, math.floor(n / ff) * ff)
        cap = rule.get("detail_max_pixels", {}).get(detail, rule["max_pixels"])
        max_px = max(min(cap, rule["total_pixels"] / n * ff), int(rule["min_pixels"] * 1.05))
        h, w = _smart_resize(height, width, f, rule["min_pixels"], max_px)
        groups = math.ceil(n / rule["temporal_patch"])
        return groups * (h // f) * (w // f) + rule.get("extra_tokens", 0)
    raise ValueError(f"multimodal.toml: unknown video method {rule['method']!r}")


# --------------------------------------------------------------------------- decoding

_URI_ERR = {
    "image": ("Invalid image URL", "an image MIME type", "data:image/png;base64,aW1nIGJ5dGVzIGhlcmU="),
    "file": ("Invalid file data", "an application/pdf MIME type",
             "data:application/pdf;base64,SGVsbG8sIFdvcmxkIQ=="),
    "video": ("Invalid video URL", "a video MIME type", "data:video/mp4;base64,AAAAGGZ0eXBtcDQy"),
}


def _uri_error(kind: str, param: str, got: str) -> MediaError:
    what, mime, example = _URI_ERR[kind]
    return MediaError(f"{what}: '{param}'. Expected a base64-encoded data URL with {mime} "
                      f"(e.g. '{example}'), but got {got}.", param)


def _b64(payload: str) -> bytes:
    """Strict base64 (whitespace and missing padding tolerated); ValueError otherwise."""
    try:
        s = re.sub(rb"\s+", b"", payload.encode("ascii"))
        return base64.b64decode(s + b"=" * (-len(s) % 4), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise ValueError(str(e)) from None


def _data_uri(uri: str, kind: str, param: str) -> tuple[str, bytes]:
    """(mime, bytes) of a base64 data: URI."""
    head, sep, payload = uri.partition(",")
    if not head.startswith("data:"):
        raise _uri_error(kind, param, "a value without the 'data:' prefix")
    meta = [m.strip().lower() for m in head[5:].split(";")]
    if not sep or "base64" not in meta[1:]:
        raise _uri_error(kind, param, "a value that is not base64-encoded")
    try:
        raw = _b64(payload)
    except ValueError:
        raise _uri_error(kind, param, "an invalid base64-encoded value") from None
    if not raw:
        raise _uri_error(kind, param, "empty base64-encoded bytes")
    return meta[0], raw


def image_size_from_data_uri(uri: str, *, param: str = "image_url.url") -> tuple[int, int]:
    """(width, height) of a base64 image data: URI, read from its header (no full decode)."""
    mime, raw = _data_uri(uri, "image", param)
    if not mime.startswith("image/"):
        raise MediaError("Invalid MIME type. Only image types are supported.", param,
                         "invalid_image_format")
    formats = load_rules()["defaults"]["image_formats"]
    unsupported = MediaError("You uploaded an unsupported image. Please make sure your image has "
                             f"of one the following formats: {formats!r}.", param,
                             "invalid_image_format")
    from PIL import Image  # lazily: only data: images need Pillow

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)) as im:
                fmt, size = (im.format or "").lower(), im.size
    except Exception:  # noqa: BLE001 - Pillow raises many types on garbage
        raise unsupported from None
    if {"mpo": "jpeg"}.get(fmt, fmt) not in formats:         # MPO: multi-picture JPEG
        raise unsupported
    return size


_MP3_KBPS = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_header(b: bytes, i: int) -> tuple[int, int, int, int] | None:
    """(frame bytes, samples, sample rate, side-info bytes) of an MPEG audio frame at i."""
    if i + 4 > len(b) or b[i] != 0xFF or b[i + 1] & 0xE0 != 0xE0:
        return None
    ver, lay, bri, sri = (b[i + 1] >> 3) & 3, (b[i + 1] >> 1) & 3, b[i + 2] >> 4, (b[i + 2] >> 2) & 3
    if ver == 1 or lay == 0 or bri in (0, 15) or sri == 3:   # reserved / free-format
        return None
    layer, v1, pad = 4 - lay, ver == 3, (b[i + 2] >> 1) & 1
    bps = _MP3_KBPS[(v1, layer if v1 else min(layer, 2))][bri] * 1000
    rate = _MP3_RATES[ver][sri]
    if layer == 1:
        samples, size = 384, (12 * bps // rate + pad) * 4
    else:
        samples = 1152 if v1 or layer == 2 else 576
        size = samples // 8 * bps // rate + pad
    mono = b[i + 3] >> 6 == 3
    return size, samples, rate, (17 if mono else 32) if v1 else (9 if mono else 17)


def _mp3_seconds(b: bytes) -> float:
    i = 0
    if b[:3] == b"ID3" and len(b) >= 10:                     # skip an ID3v2 tag
        i = 10 + sum((b[6 + k] & 0x7F) << (21 - 7 * k) for k in range(4)) + 10 * bool(b[5] & 0x10)
    for i in range(i, min(len(b), i + 65536)):               # first frame followed by another
        h = _mp3_header(b, i)
        if h and (i + h[0] >= len(b) or _mp3_header(b, i + h[0])):
            break
    else:
        raise ValueError("no MPEG audio frame")
    x = i + 4 + h[3]                                         # Xing/Info header: exact frame count
    if b[x:x + 4] in (b"Xing", b"Info") and b[x + 7] & 1:
        flags = b[x + 7]
        frames = int.from_bytes(b[x + 8:x + 12], "big")
        tag = x + 8 + 4 * (flags & 1) + 4 * (flags >> 1 & 1) + 100 * (flags >> 2 & 1) + 4 * (flags >> 3 & 1)
        gap = 0
        if b[tag:tag + 4] in (b"LAME", b"Lavc", b"Lavf") and len(b) >= tag + 24:
            d = b[tag + 21:tag + 24]                         # LAME tag: encoder delay + padding
            gap = (d[0] << 4 | d[1] >> 4) + ((d[1] & 0xF) << 8 | d[2])
        return max(0, frames * h[1] - gap) / h[2]
    seconds = 0.0
    while h and i < len(b):                                  # CBR / no header: walk the frames
        seconds += h[1] / h[2]
        i += h[0]
        h = _mp3_header(b, i)
    return seconds


def _wav_seconds(b: bytes) -> float:
    if len(b) < 12 or b[:4] not in (b"RIFF", b"RF64") or b[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos, fmt, fact, size = 12, None, None, None
    while pos + 8 <= len(b):
        cid, n = b[pos:pos + 4], int.from_bytes(b[pos + 4:pos + 8], "little")
        if cid == b"fmt " and n >= 16:
            fmt = struct.unpack_from("<HHIIH", b, pos + 8)
        elif cid == b"fact" and n >= 4:
            fact = int.from_bytes(b[pos + 8:pos + 12], "little")
        elif cid == b"data":
            size = min(n, len(b) - pos - 8)                  # streamed / truncated data chunk
            break
        pos += 8 + n + (n & 1)
    if fmt is None or size is None or not fmt[2]:
        raise ValueError("WAVE file without fmt/data chunks")
    tag, _, rate, byte_rate, align = fmt
    if fact is not None and tag not in (1, 3, 0xFFFE):       # compressed: samples from `fact`
        return fact / rate
    if not (byte_rate := byte_rate or align * rate):
        raise ValueError("WAVE file with a zero byte rate")
    return size / byte_rate


def audio_duration_from_b64(data: str, fmt: str, *, param: str = "input_audio") -> float:
    """Seconds of base64 `input_audio` data in `fmt` ("wav" or "mp3"), parsed from the bytes."""
    formats = load_rules()["defaults"]["audio_formats"]
    if fmt not in formats:
        allowed = " and ".join(", ".join(f"'{f}'" for f in formats).rsplit(", ", 1))
        raise MediaError(f"Invalid value: '{fmt}'. Supported values are: {allowed}.", f"{param}.format")
    if not isinstance(data, str) or not data:
        raise MediaError(f"Invalid '{param}.data': expected base64-encoded audio, got an empty value.",
                         f"{param}.data")
    try:
        raw = _b64(data.partition(",")[2] if data.startswith("data:") else data)
    except ValueError:
        raise MediaError(f"Invalid '{param}.data': expected base64-encoded audio, but got an "
                         "invalid base64-encoded value.", f"{param}.data") from None
    try:
        return _wav_seconds(raw) if fmt == "wav" else _mp3_seconds(raw)
    except (ValueError, IndexError, struct.error):
        raise MediaError(f"The audio in '{param}.data' could not be decoded as {fmt}: the data is "
                         f"corrupted or not in the declared format.", f"{param}.data") from None


def _boxes(b: bytes, start: int, end: int):
    """(type, payload start, end) of the ISO-BMFF boxes in b[start:end]."""
    while start + 8 <= end:
        size, typ = struct.unpack_from(">I4s", b, start)
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack_from(">Q", b, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < hdr or start + size > end:
            return
        yield typ, start + hdr, start + size
        start += size


def _mp4_secs(b: bytes, s: int) -> float:                    # mvhd / mdhd payload at s
    ts, dur = struct.unpack_from(">IQ", b, s + 20) if b[s] == 1 else struct.unpack_from(">II", b, s + 12)
    return dur / ts if ts else 0.0


def mp4_video_info(b: bytes) -> tuple[int, int, float, float] | None:
    """(width, height, seconds, fps) of the first video track of an MP4/MOV; None if unparsable."""
    try:
        for typ, s, e in _boxes(b, 0, len(b)):
            todo, movie_secs = [(s, e)] if typ == b"moov" else [], 0.0
            for t, s2, e2 in (box for span in todo for box in _boxes(b, *span)):  # moov children
                if t == b"mvhd":
                    movie_secs = _mp4_secs(b, s2)
                if t != b"trak":
                    continue
                w = h = frames = secs = 0
                handler, boxes = b"", [(s2, e2)]
                while boxes:                                 # trak > mdia > minf > stbl
                    for t3, bs, be in _boxes(b, *boxes.pop()):
                        if t3 in (b"mdia", b"minf", b"stbl"):
                            boxes.append((bs, be))
                        elif t3 == b"tkhd":                   # 16.16 width, height at its end
                            w, h = (v >> 16 for v in struct.unpack_from(">II", b, be - 8))
                        elif t3 == b"hdlr":
                            handler = b[bs + 8:bs + 12]
                        elif t3 == b"mdhd":
                            secs = _mp4_secs(b, bs)
                        elif t3 == b"stts":                   # (count, delta) runs: frame count
                            n = min(struct.unpack_from(">I", b, bs + 4)[0], (be - bs - 8) // 8)
                            frames = sum(struct.unpack_from(">I", b, bs + 8 + 8 * k)[0] for k in range(n))
                if handler == b"vide" and w and h:
                    secs = secs or movie_secs
                    return w, h, secs, (frames / secs if secs and frames else 0.0)
    except (struct.error, IndexError):
        pass
    return None


# --------------------------------------------------------------------------- parts

_URL_HINTS = (r"(?<!\d)(\d{2,5})[x×](\d{2,5})(?!\d)", r"[?&](?:w|width)=(\d+)&(?:.*&)?(?:h|height)=(\d+)")


def _url_size(url: str, key: str) -> tuple[int, int]:
    """An http(s) medium is never fetched: a WxH or ?w=&h= hint in the URL, else the default."""
    for pattern in _URL_HINTS if key == "url_image" else ():
        if (m := re.search(pattern, url)) and int(m[1]) and int(m[2]):
            return int(m[1]), int(m[2])
    d = load_rules()["defaults"][key]
    return d["width"], d["height"]


def _url_of(part: dict, key: str, param: str) -> tuple[str, str, str]:
    """(url, detail, param of the url) of an image_url / video_url part."""
    spec = part.get(key)
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str) or not spec["url"]:
        p = f"{param}.{key}" + (".url" if isinstance(spec, dict) else "")
        raise MediaError(f"Missing required parameter: '{p}'.", p, "missing_required_parameter")
    p = f"{param}.{key}.url"
    if not spec["url"].startswith("data:") and not spec["url"].lower().startswith(("http://", "https://")):
        raise _uri_error(key.split("_")[0], p, "a value without the 'data:' prefix")
    return spec["url"], _detail(spec.get("detail"), f"{param}.{key}.detail"), p


def _image_cost(part: dict, family: str, param: str) -> int:
    url, detail, p = _url_of(part, "image_url", param)
    w, h = image_size_from_data_uri(url, param=p) if url.startswith("data:") else _url_size(url, "url_image")
    return image_tokens(w, h, detail, family)


def _video_cost(part: dict, family: str, param: str) -> int:
    url, detail, p = _url_of(part, "video_url", param)
    info, key = None, "url_video"
    if url.startswith("data:"):
        mime, raw = _data_uri(url, "video", p)
        if not mime.startswith("video/"):
            raise MediaError("Invalid MIME type. Only video types are supported.", p)
        info, key = mp4_video_info(raw), "data_video"
        if info is None and mime in ("video/mp4", "video/quicktime", "video/x-m4v", "video/3gpp"):
            raise MediaError(f"Invalid video in '{p}': no decodable video track in the {mime} data.", p)
    d = load_rules()["defaults"][key]
    w, h, secs, fps = info or (d["width"], d["height"], d["seconds"], d["fps"])
    return video_tokens(w, h, secs, fps or d["fps"], detail, family)


def _file_cost(part: dict, family: str, param: str) -> int:
    spec, p = part.get("file"), f"{param}.file"
    if not isinstance(spec, dict) or not (spec.get("file_data") or spec.get("file_id")):
        raise MediaError(f"Missing required parameter: '{p}.file_data' or '{p}.file_id'.", p,
                         "missing_required_parameter")
    rule, data, p = _family(family)["file"], spec.get("file_data"), f"{p}.file_data"
    pages = rule["default_pages"]                            # a file_id cannot be read here
    if data:
        if not isinstance(data, str):
            raise _uri_error("file", p, "a value that is not a string")
        mime, raw = _data_uri(data, "file", p)
        if raw[:5] == b"%PDF-":
            pages = len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", raw)) or max(
                [int(c) for c in re.findall(rb"/Count\s+(\d+)", raw)] or [1])
        elif mime == "application/pdf":
            raise MediaError(f"Invalid file data: '{p}'. The file is not a valid PDF.", p)
        else:                                                # other documents: bytes as text (approx)
            return math.ceil(len(raw) / rule["bytes_per_token"])
    page = image_tokens(rule["page_width"], rule["page_height"], rule["page_detail"], family)
    return max(1, pages) * (rule["text_tokens_per_page"] + page)


def _audio_cost(part: dict, family: str, param: str) -> int:
    spec = part.get("input_audio")
    if not isinstance(spec, dict):
        p = f"{param}.input_audio"
        raise MediaError(f"Missing required parameter: '{p}'.", p, "missing_required_parameter")
    secs = audio_duration_from_b64(spec.get("data"), spec.get("format"), param=f"{param}.input_audio")
    return audio_tokens(secs, family)


_PARTS = {"image_url": ("image", _image_cost), "input_audio": ("audio", _audio_cost),
          "video_url": ("video", _video_cost), "file": ("file", _file_cost)}


def part_cost(part: dict, family: str = "gpt-4o", *, param: str = "messages") -> PartCost | None:
    """Prompt tokens of one chat content part; None for text parts.

    `family` is a rule family or a model id; `param` is the part's JSON path (e.g.
    "messages[0].content[1]"), used to name the bad field in a MediaError.
    """
    ptype = part.get("type") if isinstance(part, dict) else None
    if ptype in _TEXT_TYPES:
        return None
    if ptype not in _PARTS:
        allowed = "'text', 'image_url', 'input_audio', 'video_url', 'file' and 'refusal'"
        raise MediaError(f"Invalid value: '{ptype}'. Supported values are: {allowed}.", f"{param}.type")
    kind, cost = _PARTS[ptype]
    return PartCost(cost(part, family, param), kind)
