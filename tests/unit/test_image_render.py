"""The image renderer (fakeai.services.images) on its own: sizes, formats, determinism,
prompt-driven palettes, edits, variations, token rules and decoding of uploads; and the
bounded, expiring URL store (fakeai.services.image_store)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from fakeai.services import images as draw
from fakeai.services.image_store import ImageStore

SIZES = [(256, 256), (512, 512), (1024, 1024), (1792, 1024), (1024, 1792), (1536, 1024), (1024, 1536)]


def look(prompt: str, *, detail: int = 1, style: str | None = None, transparent: bool = False,
         extra: object = None) -> draw.Look:
    return draw.Look(draw.seed_of("m", prompt, extra), draw.prompt_words(prompt), detail, style, transparent)


@pytest.mark.parametrize("width,height", SIZES)
def test_render_has_exact_size(width, height):
    img = draw.render(look("a lighthouse at dusk"), width, height)
    assert img.size == (width, height)
    assert img.mode == "RGB"


@pytest.mark.parametrize("detail", [0, 1, 2])
def test_every_detail_level_renders(detail):
    img = draw.render(look("a red fox in the snow", detail=detail), 300, 200)
    assert img.size == (300, 200)


@pytest.mark.parametrize("fmt,pil_format", [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_encode_formats_decode_back(fmt, pil_format):
    data = draw.encode(draw.render(look("city at night"), 640, 480), fmt)
    img = Image.open(io.BytesIO(data))
    assert img.format == pil_format
    assert img.size == (640, 480)


def test_lossy_compression_shrinks_files():
    img = draw.render(look("autumn forest"), 512, 512)
    assert len(draw.encode(img, "jpeg", 20)) < len(draw.encode(img, "jpeg", 100))
    assert len(draw.encode(img, "webp", 20)) < len(draw.encode(img, "webp", 100))


def test_same_look_gives_identical_bytes_and_others_differ():
    a = draw.encode(draw.render(look("an otter floating on the sea"), 256, 256), "png")
    b = draw.encode(draw.render(look("an otter floating on the sea"), 256, 256), "png")
    c = draw.encode(draw.render(look("an otter floating on the lake"), 256, 256), "png")
    d = draw.encode(draw.render(look("an otter floating on the sea", extra=7), 256, 256), "png")
    assert a == b
    assert len({a, c, d}) == 3


def test_picture_cache_returns_the_rendered_bytes():
    lk = look("cache me")
    assert draw.picture(lk, 128, 96, "png") == draw.encode(draw.render(lk, 128, 96), "png")


def _mean_rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)


def test_palette_follows_prompt_words():
    # ocean: blue dominates; fire: red dominates; night: dark
    ocean = _mean_rgb(draw.render(look("waves on the ocean"), 256, 256))
    fire = _mean_rgb(draw.render(look("a volcano erupting lava"), 256, 256))
    night = _mean_rgb(draw.render(look("stars in the night sky"), 256, 256))
    assert ocean[2] > ocean[0]
    assert fire[0] > fire[2]
    assert night.mean() < ocean.mean()


def test_unthemed_prompts_get_hash_palettes():
    words = draw.prompt_words("quarterly revenue dashboard")
    assert not any(w in draw._THEME_OF for w in words)
    import random

    p1 = draw.palette(words, random.Random(1))
    p2 = draw.palette(words, random.Random(2))
    assert p1 != p2 and len(p1) == 5


def _saturation(img: Image.Image) -> float:
    return float(np.asarray(img.convert("HSV"))[..., 1].mean())


def test_vivid_is_more_saturated_than_natural():
    vivid = draw.render(look("garden of flowers", style="vivid"), 256, 256)
    natural = draw.render(look("garden of flowers", style="natural"), 256, 256)
    assert _saturation(vivid) > _saturation(natural)


def test_transparent_render_has_alpha():
    img = draw.render(look("a sticker of a cat", transparent=True), 512, 512)
    alpha = np.asarray(img.getchannel("A"))
    assert img.mode == "RGBA"
    assert alpha.min() < 255 and alpha.max() > 0


def test_edit_keeps_unmasked_pixels_and_redraws_masked_ones():
    src = Image.new("RGB", (64, 64), (10, 200, 30))
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))  # left half transparent: edit it
    out = np.asarray(draw.edit(src, mask, look("ocean"), 64, 64)).astype(int)
    assert (out[:, 40:] == (10, 200, 30)).all()
    assert np.abs(out[:, :24] - (10, 200, 30)).sum(axis=2).mean() > 30


def test_edit_without_mask_uses_source_alpha_or_restyles():
    opaque = Image.new("RGB", (80, 60), (128, 128, 128))
    out = draw.edit(opaque, None, look("sunset"), 120, 90)
    assert out.size == (120, 90)
    assert not (np.asarray(out) == 128).all()


def test_variation_is_square_deterministic_and_seed_dependent():
    src = draw.render(look("a mountain lake"), 200, 200)
    a, b, c = (draw.variation(src, s, 256) for s in (1, 1, 2))
    assert a.size == (256, 256)
    assert a.tobytes() == b.tobytes() != c.tobytes()


def test_output_token_table():
    assert draw.output_tokens("1024x1024", "low") == 272
    assert draw.output_tokens("1024x1024", "medium") == 1056
    assert draw.output_tokens("1024x1024", "high") == 4160
    assert draw.output_tokens("1024x1536", "high") == 6240
    assert draw.output_tokens("1536x1024", "low") == 400


def test_input_image_tokens():
    assert draw.input_image_tokens(512, 512) == 65 + 129
    assert draw.input_image_tokens(1024, 1024) == 65 + 129          # short side scaled to 512
    assert draw.input_image_tokens(1536, 1024) == 65 + 129 * 2      # 768x512: two tiles
    assert draw.input_image_tokens(1024, 1024, high_fidelity=True) == 65 + 129 + 4160
    assert draw.input_image_tokens(1024, 1536, high_fidelity=True) == 65 + 129 * 2 + 6240


def test_auto_size():
    assert draw.auto_size(draw.prompt_words("a cat")) == "1024x1024"
    assert draw.auto_size(draw.prompt_words("a tall portrait of a queen")) == "1024x1536"
    assert draw.auto_size(draw.prompt_words("a panorama of the alps")) == "1536x1024"
    assert draw.auto_size((), aspect=16 / 9) == "1536x1024"


def test_revised_prompt_is_deterministic_and_expands():
    a = draw.revised_prompt("a cute baby sea otter", "vivid", 5)
    assert a == draw.revised_prompt("a cute baby sea otter", "vivid", 5)
    assert a.startswith("A cute baby sea otter.") and len(a) > 80
    assert "natural" in draw.revised_prompt("x", "natural", 5)


def test_open_upload_rejects_non_images():
    with pytest.raises(draw.ImageError):
        draw.open_upload(b"this is not an image")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "PNG")
    with pytest.raises(draw.ImageError):
        draw.open_upload(buf.getvalue()[:60])  # truncated
    assert draw.open_upload(buf.getvalue()).size == (64, 64)


def test_render_speed_report():
    """Not a timing assertion: prints ms per 1024x1024 image at each detail level (-s to see)."""
    for detail in (0, 1, 2):
        lk = look("speed check", detail=detail)
        t0 = time.perf_counter()
        data = draw.encode(draw.render(lk, 1024, 1024), "png")
        print(f"detail {detail}: {1000 * (time.perf_counter() - t0):.0f} ms, {len(data) // 1024} KB")
        assert data[:8] == b"\x89PNG\r\n\x1a\n"


# -- the URL store ---------------------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_store_expires_entries():
    clock = FakeClock()
    store = ImageStore(ttl_s=10, clock=clock)
    image_id = store.put(b"png-bytes", "image/png")
    assert image_id.startswith("img-")
    item = store.get(image_id)
    assert item is not None and item.data == b"png-bytes" and item.media_type == "image/png"
    assert store.remaining_s(item) == 10
    clock.now += 10
    assert store.get(image_id) is None
    assert len(store) == 0 and store.nbytes == 0


def test_store_is_bounded_in_bytes_and_evicts_least_recently_used():
    store = ImageStore(ttl_s=3600, max_bytes=100, clock=FakeClock())
    ids = [store.put(bytes(30), "image/png") for _ in range(3)]
    assert store.get(ids[0]) is not None  # now the most recently used
    newest = store.put(bytes(30), "image/png")
    assert store.nbytes <= 100
    assert store.get(ids[1]) is None  # the least recently used went first
    assert all(store.get(i) is not None for i in (ids[0], ids[2], newest))


def test_store_sweeps_expired_entries_on_put():
    clock = FakeClock()
    store = ImageStore(ttl_s=5, clock=clock)
    for _ in range(50):
        store.put(bytes(1000), "image/png")
    clock.now += 6
    store.put(b"x", "image/png")
    assert len(store) == 1 and store.nbytes == 1
