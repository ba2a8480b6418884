"""``POST /v1/images/generations|edits|variations`` and ``GET /images/{id}.{ext}``.

Wire format only: parsing (JSON or multipart), the per-model rules of the
official API (sizes, qualities, n, GPT-only fields, upload formats), and the
ImagesResponse body. The pictures come from ``fakeai.services.images``, the
URLs' files from ``fakeai.services.image_store``, the timing from
``engine.simulate``. Rules and numbers: docs/images.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from ..engine.core import Engine
from ..engine.errors import ModelNotFound
from ..lazy import lazy_import
from ..registry import ModelDef
from ..schemas.images import (
    BOOL_FIELDS,
    INT_FIELDS,
    ImageEditRequest,
    ImageGenerationRequest,
    ImageVariationRequest,
)
from ..services.image_store import ImageStore
from . import common, metering
from .body import parse, read_json, request_body
from .errors import APIError, error_response

draw = lazy_import("fakeai.services.images")

router = APIRouter(tags=["images"])

# -- per-model rules --------------------------------------------------------------

SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
QUALITIES = {
    "dall-e-2": ("standard", "auto"),
    "dall-e-3": ("standard", "hd", "auto"),
    "gpt-image": ("low", "medium", "high", "auto"),
}
AUTO_QUALITY = {"dall-e-2": "standard", "dall-e-3": "standard", "gpt-image": "high"}
GPT_ONLY = ("background", "output_format", "output_compression", "moderation", "partial_images",
            "input_fidelity")
MB = 1024 * 1024
DALLE_UPLOAD_BYTES = 4 * MB  # dall-e-2 images and every mask: PNG under 4 MB
GPT_UPLOAD_BYTES = 50 * MB
MAX_INPUT_IMAGES = 16


def family(model: ModelDef) -> str:
    """The rule set a model follows: dall-e-2, dall-e-3, or gpt-image (every other image model)."""
    base = model.parent or model.id
    return next((f for f in ("dall-e-2", "dall-e-3") if base.startswith(f)), "gpt-image")


def _image_model(engine: Engine, model_id: str) -> tuple[ModelDef, str]:
    try:
        model = engine.model(model_id)
    except ModelNotFound:
        names = sorted(m.id for m in engine.registry.list() if m.capabilities.images)
        raise APIError(400, f"Invalid value: '{model_id}'. Supported values are: "
                       + ", ".join(f"'{n}'" for n in names) + ".", param="model", code="invalid_value") from None
    if not model.capabilities.images:
        raise APIError(400, f"The model `{model_id}` does not support image generation.",
                       param="model", code="model_not_supported")
    return model, family(model)


def _default_model(req, images: int = 1) -> str:
    """dall-e-2 unless a GPT-only parameter (or several input images) is used, as OpenAI."""
    gpt = any(getattr(req, f, None) is not None for f in GPT_ONLY) or images > 1
    return "gpt-image-1" if gpt or getattr(req, "quality", None) in ("low", "medium", "high") else "dall-e-2"


@dataclass(slots=True)
class Plan:
    """A request's resolved output: what every picture of it is."""

    size: str
    quality: str
    fmt: str
    compression: int
    transparent: bool
    b64: bool
    n: int
    style: str | None

    @property
    def dims(self) -> tuple[int, int]:
        w, h = self.size.split("x")
        return int(w), int(h)

    @property
    def detail(self) -> int:
        return draw.DETAIL[self.quality]


def _plan(req, fam: str, model_id: str, words: tuple[str, ...], auto_aspect: float | None = None,
          default_size: str | None = None) -> Plan:
    """Check ``req`` against the model's rules (400 naming the field) and resolve the defaults."""
    if getattr(req, "stream", None):
        raise APIError(400, "Streaming image generation is not supported by this server.", param="stream",
                       code="unsupported_value")
    n = req.n or 1
    if fam == "dall-e-3" and n != 1:
        raise APIError(400, "You must provide n=1 for this model.", param="n", code="invalid_value")
    size = req.size or default_size or ("auto" if fam == "gpt-image" else "1024x1024")
    if size not in SIZES[fam]:
        allowed = ", ".join(f"'{s}'" for s in SIZES[fam])
        raise APIError(400, f"Invalid value: '{size}'. Supported values for {model_id} are: {allowed}.",
                       param="size", code="invalid_value")
    quality = getattr(req, "quality", None) or "auto"
    if quality not in QUALITIES[fam]:
        allowed = ", ".join(f"'{q}'" for q in QUALITIES[fam])
        raise APIError(400, f"Invalid value: '{quality}'. Supported values for {model_id} are: {allowed}.",
                       param="quality", code="invalid_value")
    style = getattr(req, "style", None)
    if style is not None and fam != "dall-e-3":
        raise APIError(400, "The 'style' parameter is only supported for dall-e-3.", param="style",
                       code="unsupported_parameter")
    if fam != "gpt-image":
        used = next((f for f in GPT_ONLY if getattr(req, f, None) is not None), None)
        if used:
            raise APIError(400, f"The '{used}' parameter is only supported for the GPT image models.",
                           param=used, code="unsupported_parameter")
        return Plan(size, AUTO_QUALITY[fam] if quality == "auto" else quality, "png", 100, False,
                    req.response_format == "b64_json", n, style or ("vivid" if fam == "dall-e-3" else None))
    if req.response_format == "url":
        raise APIError(400, "The 'response_format' parameter 'url' is not supported for the GPT image "
                       "models, which always return base64-encoded images.", param="response_format",
                       code="unsupported_value")
    fmt = req.output_format or "png"
    background = req.background or "auto"
    if background == "transparent" and fmt == "jpeg":
        raise APIError(400, "Transparent background is not supported for the 'jpeg' output format; use "
                       "'png' or 'webp'.", param="background", code="invalid_value")
    transparent = background == "transparent" or (
        background == "auto" and fmt != "jpeg" and "transparent" in words)
    if size == "auto":
        size = draw.auto_size(words, auto_aspect)
    return Plan(size, AUTO_QUALITY[fam] if quality == "auto" else quality, fmt,
                100 if req.output_compression is None else req.output_compression, transparent, True, n, None)


def _check_prompt(prompt: str, model: ModelDef) -> None:
    """OpenAI's prompt limits are in characters: the catalog's context_window for image models."""
    limit = model.context_window
    if not prompt:
        raise APIError(400, "Invalid 'prompt': empty string. Expected a non-empty prompt.", param="prompt",
                       code="empty_string")
    if len(prompt) > limit:
        raise APIError(400, f"Invalid 'prompt': string too long. Expected a string with maximum length "
                       f"{limit}, but got a string with length {len(prompt)} instead.", param="prompt",
                       code="string_above_max_length")


# -- responses --------------------------------------------------------------------

def _store(request: Request) -> ImageStore:
    state = request.app.state
    store = getattr(state, "image_store", None)
    if store is None:
        store = state.image_store = ImageStore(state.settings.image_ttl_s)
    return store


def _usage(text_tokens: int, image_tokens: int, output_tokens: int) -> dict:
    inp = text_tokens + image_tokens
    return {"total_tokens": inp + output_tokens, "input_tokens": inp, "output_tokens": output_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
            "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0}}


def _respond(request: Request, fam: str, plan: Plan, files: list[bytes], usage: dict | None = None,
             revised: list[str] | None = None) -> Response:
    if plan.b64:
        data = [{"b64_json": base64.b64encode(f).decode()} for f in files]
    else:
        store = _store(request)
        scheme = request.headers.get("x-forwarded-proto") or request.url.scheme
        host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
        media = draw.MEDIA_TYPES[plan.fmt]
        data = [{"url": f"{scheme}://{host}/images/{store.put(f, media)}.{plan.fmt}"} for f in files]
    for item, text in zip(data, revised or ()):
        item["revised_prompt"] = text
    body: dict = {"created": common.now(), "data": data}
    if fam == "gpt-image":
        body.update(background="transparent" if plan.transparent else "opaque", output_format=plan.fmt,
                    quality=plan.quality, size=plan.size, usage=usage)
    return common.json_response(common.dumps(body))


def _meter(request: Request, model: ModelDef, plan: Plan, source: str, usage: dict | None = None) -> None:
    """Usage accounting: images by size and source (tokens too, for the GPT image models' cost)."""
    metering.record(request, "images", model.id, images=plan.n, size=plan.size, source=source,
                    quality=plan.quality, input_tokens=usage["input_tokens"] if usage else 0,
                    output_tokens=usage["output_tokens"] if usage else 0)


async def _produce(engine: Engine, request: Request, model: ModelDef, fam: str, plan: Plan,
                   input_tokens: int, work) -> list[bytes]:
    """Draw off the event loop while the engine holds the request for its modelled time."""
    drawing = asyncio.get_running_loop().run_in_executor(None, work)
    await engine.simulate(model, input_tokens, draw.image_steps(fam, plan.quality, plan.size),
                          arrival=common.arrival(request), endpoint="images", hints=common.route_hints(request))
    return await drawing


# -- routes ----------------------------------------------------------------------

@router.post("/v1/images/generations", openapi_extra=request_body(ImageGenerationRequest))
async def create_image(request: Request):
    app = request.app.state
    raw = await read_json(request)
    req = parse(ImageGenerationRequest, raw, app.settings.strict_params)
    engine: Engine = app.engine
    model, fam = _image_model(engine, req.model or _default_model(req))
    _check_prompt(req.prompt, model)
    words = draw.prompt_words(req.prompt)
    plan = _plan(req, fam, model.id, words)
    w, h = plan.dims
    looks = [draw.Look(draw.seed_of("generate", model.id, req.prompt, plan.size, plan.quality, plan.style,
                                    plan.transparent, req.seed, i), words, plan.detail, plan.style,
                       plan.transparent) for i in range(plan.n)]
    text_tokens = engine.tokenizer(model).count(req.prompt)
    files = await _produce(engine, request, model, fam, plan, text_tokens,
                           lambda: [draw.picture(look, w, h, plan.fmt, plan.compression) for look in looks])
    usage = revised = None
    if fam == "gpt-image":
        usage = _usage(text_tokens, 0, draw.output_tokens(plan.size, plan.quality) * plan.n)
    elif fam == "dall-e-3":
        revised = [draw.revised_prompt(req.prompt, plan.style, look.seed) for look in looks]
    _meter(request, model, plan, "image.generation", usage)
    return _respond(request, fam, plan, files, usage, revised)


def _multipart_body(model) -> dict:
    """OpenAPI ``requestBody`` of a multipart route (the text fields; files ride beside them)."""
    extra = request_body(model)
    content = extra["requestBody"]["content"]
    content["multipart/form-data"] = content.pop("application/json")
    return extra


@router.post("/v1/images/edits", openapi_extra=_multipart_body(ImageEditRequest))
async def create_image_edit(request: Request):
    app = request.app.state
    req, files = await _read_form(request, ImageEditRequest, app.settings.strict_params)
    uploads = files.get("image", []) + files.get("image[]", [])
    engine: Engine = app.engine
    model, fam = _image_model(engine, req.model or _default_model(req, len(uploads)))
    if fam == "dall-e-3":
        raise APIError(400, "Image edits are not supported for dall-e-3; use dall-e-2 or a GPT image model.",
                       param="model", code="invalid_value")
    if not uploads:
        raise APIError(400, "Missing required parameter: 'image'.", param="image",
                       code="missing_required_parameter")
    if len(uploads) > (1 if fam == "dall-e-2" else MAX_INPUT_IMAGES):
        raise APIError(400, f"Too many images: {model.id} accepts "
                       f"{'one image' if fam == 'dall-e-2' else f'up to {MAX_INPUT_IMAGES} images'}.",
                       param="image", code="invalid_value")
    masks = files.get("mask", [])
    if len(masks) > 1:
        raise APIError(400, "Only one mask may be given.", param="mask", code="invalid_value")
    _check_prompt(req.prompt, model)
    raw_images = [await u.read() for u in uploads]
    raw_mask = await masks[0].read() if masks else None
    loop = asyncio.get_running_loop()
    images, mask = await loop.run_in_executor(None, _open_edit_inputs, fam, raw_images, raw_mask)
    words = draw.prompt_words(req.prompt)
    first = images[0]
    plan = _plan(req, fam, model.id, words, first.width / first.height,
                 default_size="1024x1024" if fam == "dall-e-2" else None)
    w, h = plan.dims
    digest = hashlib.blake2b(b"".join(raw_images) + (raw_mask or b""), digest_size=16).hexdigest()
    looks = [draw.Look(draw.seed_of("edit", model.id, req.prompt, plan.size, plan.quality, plan.transparent,
                                    req.seed, digest, i), words, plan.detail, None, plan.transparent)
             for i in range(plan.n)]
    text_tokens = engine.tokenizer(model).count(req.prompt)
    image_tokens = 0
    if fam == "gpt-image":
        high = req.input_fidelity == "high"
        image_tokens = sum(draw.input_image_tokens(im.width, im.height, high) for im in images)
    files_out = await _produce(
        engine, request, model, fam, plan, text_tokens + image_tokens,
        lambda: [draw.encode(draw.edit(first, mask, look, w, h), plan.fmt, plan.compression) for look in looks])
    usage = None
    if fam == "gpt-image":
        usage = _usage(text_tokens, image_tokens, draw.output_tokens(plan.size, plan.quality) * plan.n)
    _meter(request, model, plan, "image.edit", usage)
    return _respond(request, fam, plan, files_out, usage)


@router.post("/v1/images/variations", openapi_extra=_multipart_body(ImageVariationRequest))
async def create_image_variation(request: Request):
    app = request.app.state
    req, files = await _read_form(request, ImageVariationRequest, app.settings.strict_params)
    engine: Engine = app.engine
    model, fam = _image_model(engine, req.model or "dall-e-2")
    if fam != "dall-e-2":
        raise APIError(400, f"Invalid value: '{req.model}'. Image variations are only supported for "
                       "'dall-e-2'.", param="model", code="invalid_value")
    uploads = files.get("image", [])
    if len(uploads) != 1:
        raise APIError(400, "Missing required parameter: 'image'." if not uploads else
                       "Exactly one image must be given.", param="image",
                       code="missing_required_parameter" if not uploads else "invalid_value")
    raw = await uploads[0].read()
    loop = asyncio.get_running_loop()
    source = await loop.run_in_executor(None, _open_checked, raw, "image", True)
    plan = _plan(req, fam, model.id, ())
    side = plan.dims[0]
    digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
    seeds = [draw.seed_of("variation", model.id, digest, plan.size, req.seed, i) for i in range(plan.n)]
    files_out = await _produce(engine, request, model, fam, plan, 0,
                               lambda: [draw.encode(draw.variation(source, s, side), "png") for s in seeds])
    _meter(request, model, plan, "image.variation")
    return _respond(request, fam, plan, files_out)


@router.get("/images/{filename}", include_in_schema=False)
async def get_image(request: Request):
    filename = request.path_params["filename"]
    image_id, _, ext = filename.partition(".")
    store = _store(request)
    item = store.get(image_id)
    if item is None or draw.MEDIA_TYPES.get(ext) != item.media_type:
        return error_response(404, f"The image '{filename}' does not exist or has expired.",
                              code="image_not_found")
    max_age = int(store.remaining_s(item))
    return Response(item.data, media_type=item.media_type, headers={"cache-control": f"private, max-age={max_age}"})


# -- uploads ---------------------------------------------------------------------

async def _read_form(request: Request, model_cls, strict: bool):
    """The multipart form as (validated text fields, {name: [UploadFile]})."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise APIError(400, f"Invalid Content-Type header ({ctype or 'none'}), expected multipart/form-data.")
    form = await request.form(max_files=MAX_INPUT_IMAGES + 2, max_fields=64)
    fields: dict = {}
    files: dict[str, list[UploadFile]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.setdefault(key, []).append(value)
        elif key in ("image", "image[]", "mask"):
            raise APIError(400, f"Invalid type for '{key}': expected a file upload.", param=key,
                           code="invalid_type")
        elif value != "":  # the SDK sends None as an empty field
            fields[key] = _coerce(key, value)
    return parse(model_cls, fields, strict), files


def _coerce(key: str, value: str):
    """Form text -> the JSON type the wire model expects (left as text if it does not parse,
    so validation reports the type error)."""
    if key in INT_FIELDS and value.lstrip("-").isdigit():
        return int(value)
    if key in BOOL_FIELDS and value in ("true", "false"):
        return value == "true"
    return value


def _open_checked(raw: bytes, param: str, dalle: bool):
    """Decode one upload; dall-e-2 (and every mask) wants a square PNG under 4 MB."""
    limit = DALLE_UPLOAD_BYTES if dalle else GPT_UPLOAD_BYTES
    if len(raw) >= limit:
        raise APIError(400, f"Invalid '{param}': files must be less than {limit // MB} MB.", param=param,
                       code="invalid_value")
    try:
        img = draw.open_upload(raw)
    except draw.ImageError as e:
        raise APIError(400, f"Invalid input image - could not read '{param}' as a PNG, JPEG or WebP "
                       f"image ({e}).", param=param, code="invalid_image_format") from None
    if dalle and param == "image" and (img.format != "PNG" or img.width != img.height):
        raise APIError(400, "Uploaded image must be a square PNG and less than 4 MB.", param=param,
                       code="invalid_image_format")
    return img


def _has_alpha(img) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


def _open_edit_inputs(fam: str, raw_images: list[bytes], raw_mask: bytes | None):
    dalle = fam == "dall-e-2"
    images = [_open_checked(b, "image", dalle) for b in raw_images]
    mask = None
    if raw_mask is not None:
        mask = _open_checked(raw_mask, "mask", True)
        if mask.format != "PNG" or not _has_alpha(mask):
            raise APIError(400, "Invalid mask image: it must be a PNG with an alpha channel (its fully "
                           "transparent pixels mark the area to edit).", param="mask", code="invalid_image_format")
        if mask.size != images[0].size:
            raise APIError(400, f"Invalid mask image: the mask ({mask.width}x{mask.height}) and the image "
                           f"({images[0].width}x{images[0].height}) must have the same dimensions.",
                           param="mask", code="invalid_value")
    elif dalle and not _has_alpha(images[0]):
        raise APIError(400, f"Invalid input image - without a mask the image must have an alpha channel "
                       f"(RGBA or LA) marking the area to edit, got {images[0].mode}.", param="image",
                       code="invalid_image_format")
    return images, mask
