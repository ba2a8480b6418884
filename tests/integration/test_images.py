"""The image endpoints through the official SDK and raw httpx: generations, edits,
variations, the served URLs and their expiry, usage, and every 400."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import openai
import pytest
from PIL import Image

from fakeai.engine.tokenizer import get_tokenizer
from tests.openapi_spec import spec_available, validate, validate_error
from tests.server import run_server, wait_for

MODEL_SIZES = [
    ("dall-e-2", "256x256"), ("dall-e-2", "512x512"), ("dall-e-2", "1024x1024"),
    ("dall-e-3", "1024x1024"), ("dall-e-3", "1792x1024"), ("dall-e-3", "1024x1792"),
    ("gpt-image-1", "1024x1024"), ("gpt-image-1", "1536x1024"), ("gpt-image-1", "1024x1536"),
]
# OpenAI's published output image tokens of gpt-image-1 (image generation guide).
TOKEN_TABLE = {
    ("low", "1024x1024"): 272, ("low", "1024x1536"): 408, ("low", "1536x1024"): 400,
    ("medium", "1024x1024"): 1056, ("medium", "1024x1536"): 1584, ("medium", "1536x1024"): 1568,
    ("high", "1024x1024"): 4160, ("high", "1024x1536"): 6240, ("high", "1536x1024"): 6208,
}
O200K = get_tokenizer("o200k_base")
# the SDK marks images.create_variation deprecated; the endpoint is still part of the API surface
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


def check_body(body: dict) -> None:
    if spec_available():
        validate("ImagesResponse", body)


def generate(client: openai.OpenAI, **kw) -> dict:
    r = client.images.with_raw_response.generate(**kw)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.http_response.json()
    check_body(body)
    return body


def decode(item: dict) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))
    img.load()
    return img


def png(size=(64, 64), color=(200, 40, 40, 255), mode="RGBA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color[: len(mode)]).save(buf, "PNG")
    return buf.getvalue()


def expect_400(call, param: str | None) -> dict:
    with pytest.raises(openai.BadRequestError) as info:
        call()
    body = info.value.response.json()
    validate_error(body)
    assert body["error"]["param"] == param, body
    return body


# -- generations ---------------------------------------------------------------------

@pytest.mark.parametrize("model,size", MODEL_SIZES)
def test_generate_every_model_and_size(client, model, size):
    kw = {} if model == "gpt-image-1" else {"response_format": "b64_json"}
    body = generate(client, model=model, prompt="a lighthouse on a cliff at sunset", size=size, **kw)
    assert len(body["data"]) == 1
    img = decode(body["data"][0])
    assert img.format == "PNG"
    assert "x".join(map(str, img.size)) == size
    if model == "dall-e-3":
        assert body["data"][0]["revised_prompt"].startswith("A lighthouse on a cliff at sunset")
    if model == "gpt-image-1":
        assert body["size"] == size and body["output_format"] == "png" and body["background"] == "opaque"
        assert body["quality"] == "high"  # auto
    else:
        assert "usage" not in body


def test_gpt_image_auto_size_and_default_model(client):
    body = generate(client, model="gpt-image-1", prompt="a wide panorama of the alps", size="auto",
                    quality="low")
    assert body["size"] == "1536x1024" and decode(body["data"][0]).size == (1536, 1024)
    # no model and no GPT-only parameter: dall-e-2, whose default is a 1024x1024 URL
    body = generate(client, prompt="a cat", response_format="b64_json")
    assert decode(body["data"][0]).size == (1024, 1024) and "usage" not in body


@pytest.mark.parametrize("quality,size", list(TOKEN_TABLE))
def test_gpt_image_usage_matches_published_table(client, quality, size):
    prompt = "an astronaut riding a horse on the moon"
    body = generate(client, model="gpt-image-1", prompt=prompt, size=size, quality=quality, n=2)
    text = len(O200K.encode(prompt))
    assert body["usage"] == {
        "input_tokens": text, "output_tokens": 2 * TOKEN_TABLE[quality, size],
        "total_tokens": text + 2 * TOKEN_TABLE[quality, size],
        "input_tokens_details": {"text_tokens": text, "image_tokens": 0},
        "output_tokens_details": {"image_tokens": 2 * TOKEN_TABLE[quality, size], "text_tokens": 0},
    }
    assert body["quality"] == quality


def test_url_mode_serves_the_image(server, client):
    body = generate(client, model="dall-e-3", prompt="a fox in the forest", quality="hd", style="natural")
    url = body["data"][0]["url"]
    assert url.startswith(server.base_url + "/images/") and url.endswith(".png")
    with server.http() as h:
        r = h.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        img = Image.open(io.BytesIO(r.content))
        assert img.format == "PNG" and img.size == (1024, 1024)
        # the URL follows the Host the client used
        r = h.post("/v1/images/generations", json={"model": "dall-e-2", "prompt": "x", "size": "256x256"},
                   headers={"host": "images.example.test:9999"})
        assert r.json()["data"][0]["url"].startswith("http://images.example.test:9999/images/img-")
        missing = h.get("/images/img-000000000000000000000000.png")
        assert missing.status_code == 404
        validate_error(missing.json())
        wrong_ext = h.get(url[len(server.base_url):].replace(".png", ".jpeg"))
        assert wrong_ext.status_code == 404


def test_url_expiry_and_modelled_time():
    with run_server("--ttft", "0", "--itl", "2", "--image-ttl-s", "1") as s, s.http() as h:
        client = s.client()
        t0 = time.perf_counter()
        body = generate(client, model="gpt-image-1", prompt="x", quality="low", size="1024x1024")
        # 272 image tokens as decode steps: the last one is due 271 ITLs of 2 ms after the first
        assert time.perf_counter() - t0 >= 271 * 0.002
        assert decode(body["data"][0]).size == (1024, 1024)
        url = generate(client, model="dall-e-2", prompt="a small boat", size="256x256")["data"][0]["url"]
        assert h.get(url).status_code == 200
        assert wait_for(lambda: h.get(url).status_code == 404, timeout=10, interval=0.1)
        r = h.get(url)
        validate_error(r.json())
        assert "expired" in r.json()["error"]["message"]


def test_same_prompt_same_bytes_different_prompt_differs(client):
    def one(prompt, **kw):
        return generate(client, model="dall-e-2", prompt=prompt, size="256x256",
                        response_format="b64_json", **kw)["data"][0]["b64_json"]

    a, b = one("a red barn in a field"), one("a red barn in a field")
    assert a == b
    assert one("a blue barn in a field") != a
    seeded = one("a red barn in a field", extra_body={"seed": 42})
    assert seeded != a and seeded == one("a red barn in a field", extra_body={"seed": 42})


def test_n_gives_distinct_images(client):
    body = generate(client, model="dall-e-2", prompt="abstract shapes", n=3, size="256x256",
                    response_format="b64_json")
    pictures = {d["b64_json"] for d in body["data"]}
    assert len(body["data"]) == 3 and len(pictures) == 3


def test_transparent_background_has_alpha(client):
    for fmt in ("png", "webp"):
        body = generate(client, model="gpt-image-1", prompt="a sticker of a cat", background="transparent",
                        output_format=fmt, quality="low")
        img = decode(body["data"][0])
        assert body["background"] == "transparent" and img.format == fmt.upper()
        assert img.mode == "RGBA" and np.asarray(img.getchannel("A")).min() < 255


@pytest.mark.parametrize("fmt,pil", [("jpeg", "JPEG"), ("webp", "WEBP")])
def test_lossy_output_formats_and_compression(client, fmt, pil):
    sizes = []
    for compression in (100, 10):
        body = generate(client, model="gpt-image-1", prompt="a city at night", output_format=fmt,
                        output_compression=compression, quality="medium")
        img = decode(body["data"][0])
        assert img.format == pil and img.size == (1024, 1024) and body["output_format"] == fmt
        sizes.append(len(body["data"][0]["b64_json"]))
    assert sizes[1] < sizes[0]


# -- edits and variations ---------------------------------------------------------------

def test_edit_with_mask_keeps_the_opaque_area(client):
    source = Image.new("RGB", (256, 256), (30, 90, 200))
    buf = io.BytesIO()
    source.save(buf, "PNG")
    mask = Image.new("RGBA", (256, 256), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 256, 128))  # top half transparent: redraw it
    mbuf = io.BytesIO()
    mask.save(mbuf, "PNG")
    r = client.images.with_raw_response.edit(model="dall-e-2", image=("img.png", buf.getvalue(), "image/png"),
                                             mask=("mask.png", mbuf.getvalue(), "image/png"),
                                             prompt="a sunset sky", size="256x256", response_format="b64_json")
    body = r.http_response.json()
    check_body(body)
    out = np.asarray(decode(body["data"][0]).convert("RGB")).astype(int)
    assert out.shape == (256, 256, 3)
    assert (out[160:] == (30, 90, 200)).all()
    assert np.abs(out[:100] - (30, 90, 200)).sum(axis=2).mean() > 30


def test_edit_without_mask_gpt_image_multiple_images_and_usage(client):
    a, b = png((300, 300), mode="RGB"), png((600, 400), (0, 255, 0, 255), mode="RGB")
    prompt = "turn this into a forest scene"
    r = client.images.with_raw_response.edit(model="gpt-image-1", image=[("a.png", a, "image/png"),
                                             ("b.png", b, "image/png")], prompt=prompt, quality="low",
                                             input_fidelity="low")
    body = r.http_response.json()
    check_body(body)
    img = decode(body["data"][0])
    assert img.size == (1024, 1024) and body["size"] == "1024x1024"  # auto: the first image is square
    text = len(O200K.encode(prompt))
    image_tokens = (65 + 129) + (65 + 129 * 2)  # 300x300: 1 tile; 600x400 -> 768x512: 2 tiles
    assert body["usage"]["input_tokens_details"] == {"text_tokens": text, "image_tokens": image_tokens}
    assert body["usage"]["input_tokens"] == text + image_tokens
    assert body["usage"]["output_tokens"] == 272
    # auto size follows the first image's shape
    r = client.images.edit(model="gpt-image-1", image=("b.png", b, "image/png"), prompt=prompt, quality="low")
    assert r.size == "1536x1024" and decode({"b64_json": r.data[0].b64_json}).size == (1536, 1024)


def test_edit_url_mode_dall_e_2_uses_source_alpha(server, client):
    src = Image.new("RGBA", (128, 128), (255, 255, 255, 255))
    src.paste((0, 0, 0, 0), (32, 32, 96, 96))
    buf = io.BytesIO()
    src.save(buf, "PNG")
    r = client.images.edit(image=("a.png", buf.getvalue(), "image/png"), prompt="a hole full of stars",
                           n=2, size="512x512")
    assert len(r.data) == 2 and r.data[0].url != r.data[1].url
    with server.http() as h:
        got = h.get(r.data[0].url)
        assert got.status_code == 200 and Image.open(io.BytesIO(got.content)).size == (512, 512)


def test_variations(client):
    src = png((256, 256), (250, 180, 20, 255))
    r = client.images.with_raw_response.create_variation(image=("a.png", src, "image/png"), n=2,
                                                         size="512x512", response_format="b64_json")
    body = r.http_response.json()
    check_body(body)
    imgs = [decode(d) for d in body["data"]]
    assert [i.size for i in imgs] == [(512, 512)] * 2 and imgs[0].format == "PNG"
    assert imgs[0].tobytes() != imgs[1].tobytes()


# -- errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("kw,param", [
    ({"model": "dall-e-2", "size": "1792x1024"}, "size"),
    ({"model": "dall-e-3", "size": "512x512"}, "size"),
    ({"model": "gpt-image-1", "size": "256x256"}, "size"),
    ({"model": "dall-e-3", "n": 2}, "n"),
    ({"model": "dall-e-2", "n": 11}, "n"),
    ({"model": "no-such-image-model"}, "model"),
    ({"model": "gpt-4o"}, "model"),
    ({"model": "gpt-image-1", "quality": "hd"}, "quality"),
    ({"model": "dall-e-3", "quality": "low"}, "quality"),
    ({"model": "dall-e-2", "style": "vivid"}, "style"),
    ({"model": "dall-e-3", "output_format": "webp"}, "output_format"),
    ({"model": "gpt-image-1", "response_format": "url"}, "response_format"),
    ({"model": "gpt-image-1", "background": "transparent", "output_format": "jpeg"}, "background"),
    ({"model": "gpt-image-1", "output_compression": 101}, "output_compression"),
    ({"model": "dall-e-2", "prompt": "x" * 1001}, "prompt"),
    ({"model": "dall-e-2", "prompt": ""}, "prompt"),
])
def test_generation_400s(client, kw, param):
    kw.setdefault("prompt", "a cat")
    expect_400(lambda: client.images.generate(**kw), param)


def test_generation_wrong_types_and_stream(server):
    with server.http() as h:
        for payload, param in [({"prompt": "x", "n": "2"}, "n"), ({"prompt": 5}, "prompt"), ({}, "prompt"),
                               ({"model": "gpt-image-1", "prompt": "x", "stream": True}, "stream")]:
            r = h.post("/v1/images/generations", json=payload)
            assert r.status_code == 400, r.text
            validate_error(r.json())
            assert r.json()["error"]["param"] == param


def _edit(client, **kw):
    return lambda: client.images.edit(prompt=kw.pop("prompt", "make it blue"), **kw)


def test_edit_and_variation_400s(server, client):
    good = ("a.png", png(), "image/png")
    text = ("a.png", b"hello, I am not an image", "image/png")
    corrupt = ("a.png", png()[:50], "image/png")
    rgb_square = ("a.png", png(mode="RGB"), "image/png")
    cases = [
        (_edit(client, model="gpt-image-1", image=text), "image"),
        (_edit(client, model="gpt-image-1", image=("big.png", _huge_png(), "image/png")), "image"),
        (_edit(client, model="dall-e-2", image=corrupt), "image"),
        (_edit(client, model="dall-e-2", image=("a.png", png((64, 32)), "image/png")), "image"),  # not square
        (_edit(client, model="dall-e-2", image=rgb_square), "image"),  # no mask and no alpha
        (_edit(client, model="dall-e-2", image=good, mask=("m.png", png((32, 32)), "image/png")), "mask"),
        (_edit(client, model="gpt-image-1", image=good, mask=("m.png", png(mode="RGB"), "image/png")), "mask"),
        (_edit(client, model="dall-e-2", image=[good, good]), "image"),
        (_edit(client, model="dall-e-3", image=good), "model"),
        (_edit(client, model="gpt-4o", image=good), "model"),
        (_edit(client, model="dall-e-2", image=good, size="1536x1024"), "size"),
        (lambda: client.images.create_variation(image=text), "image"),
        (lambda: client.images.create_variation(image=("a.jpg", _jpeg(), "image/jpeg")), "image"),
        (lambda: client.images.create_variation(image=good, model="gpt-image-1"), "model"),
        (lambda: client.images.create_variation(image=good, size="1536x1024"), "size"),
    ]
    for call, param in cases:
        expect_400(call, param)
    with server.http() as h:
        r = h.post("/v1/images/edits", json={"prompt": "x"})
        assert r.status_code == 400
        validate_error(r.json())
        r = h.post("/v1/images/edits", data={"prompt": "x", "n": "lots"}, files={"image": ("a.png", png())})
        assert r.status_code == 400 and r.json()["error"]["param"] == "n"
        r = h.post("/v1/images/edits", data={"prompt": "x"}, files={"mask": ("m.png", png())})
        assert r.status_code == 400 and r.json()["error"]["param"] == "image"
        r = h.post("/v1/images/variations", data={"n": "2"}, files={"other": ("a.png", png())})
        assert r.status_code == 400 and r.json()["error"]["param"] == "image"


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "JPEG")
    return buf.getvalue()


def _huge_png() -> bytes:
    """A tiny file that decodes to 49 megapixels."""
    buf = io.BytesIO()
    Image.new("L", (7000, 7000)).save(buf, "PNG")
    return buf.getvalue()
