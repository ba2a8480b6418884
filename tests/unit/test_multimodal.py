"""Prompt tokens of image / audio / video / file content parts (fakeai/engine/multimodal.py).

Published examples are checked against the data-driven rules; media are generated in
the test (Pillow images, stdlib `wave` audio, hand-built MP3 frames and MP4 boxes).
"""

from __future__ import annotations

import base64
import io
import math
import struct
import subprocess
import sys
import wave

import pytest
from PIL import Image

from fakeai.engine.errors import EngineError
from fakeai.engine.multimodal import (
    MediaError,
    PartCost,
    audio_duration_from_b64,
    audio_tokens,
    family_for_model,
    image_size_from_data_uri,
    image_tokens,
    load_rules,
    mp4_video_info,
    part_cost,
    video_tokens,
)


# -- helpers -------------------------------------------------------------------------
def image_uri(w: int, h: int, fmt: str = "PNG", mime: str | None = None) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(buf, format=fmt)
    mime = mime or f"image/{fmt.lower()}"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode()


def image_part(url: str, detail: str | None = None) -> dict:
    spec = {"url": url} if detail is None else {"url": url, "detail": detail}
    return {"type": "image_url", "image_url": spec}


def wav_b64(seconds: float, rate: int = 16000, channels: int = 1, width: int = 2) -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * (width // 2) * channels * round(seconds * rate))
    return base64.b64encode(buf.getvalue()).decode()


def mp3_frames(n: int, header: bytes, size: int) -> bytes:
    """n MPEG audio frames of `size` bytes each: a valid header, a zero payload."""
    return (header + bytes(size - 4)) * n


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_bytes(w: int, h: int, frames: int, timescale: int, delta: int, mdat_first: bool = False) -> bytes:
    duration = frames * delta
    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, duration * 1000 // timescale) + bytes(80))
    tkhd = box(b"tkhd", bytes(4) + bytes(72) + struct.pack(">II", w << 16, h << 16))
    mdhd = box(b"mdhd", bytes(4) + struct.pack(">IIII", 0, 0, timescale, duration) + bytes(4))
    hdlr = box(b"hdlr", bytes(8) + b"vide" + bytes(12) + b"VideoHandler\0")
    stts = box(b"stts", bytes(4) + struct.pack(">III", 1, frames, delta))
    trak = box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + box(b"minf", box(b"stbl", stts))))
    sound = box(b"trak", box(b"tkhd", bytes(84)) + box(b"mdia", box(b"hdlr", bytes(8) + b"soun" + bytes(12))))
    moov = box(b"moov", mvhd + sound + trak)
    ftyp, mdat = box(b"ftyp", b"isom" + bytes(4) + b"isomiso2mp41"), box(b"mdat", bytes(1000))
    return ftyp + (mdat + moov if mdat_first else moov + mdat)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# -- OpenAI tile formula (gpt-4o family): the vision guide's worked examples ----------
@pytest.mark.parametrize("w,h,detail,expected", [
    (1024, 1024, "high", 765),    # -> 768x768, 4 tiles: 85 + 4*170
    (2048, 4096, "high", 1105),   # -> 1024x2048 -> 768x1536, 6 tiles
    (4096, 8192, "low", 85),      # low is a flat 85
    (1024, 1024, "auto", 765),    # auto is billed as high (documented choice)
    (128, 64, "high", 255),       # small images are not upscaled: 1 tile
    (2049, 513, "high", 1445),    # fit -> 2048x513 (512.75 rounds up): 4x2 tiles (API: 1453 - 8 text)
    (2050, 513, "high", 765),     # fit -> 2048x512 (512.4995 rounds down): 4x1 tiles (API: 773 - 8)
])
def test_tile_formula_gpt4o(w, h, detail, expected):
    assert image_tokens(w, h, detail, "gpt-4o") == expected


def test_tile_formula_other_openai_families():
    assert image_tokens(1024, 1024, "high", "gpt-4o-mini") == 2833 + 4 * 5667
    assert image_tokens(4096, 8192, "low", "gpt-4o-mini") == 2833
    assert image_tokens(1024, 1024, "high", "o3") == 75 + 4 * 150
    assert image_tokens(1024, 1024, "high", "gpt-5") == 70 + 4 * 140


# -- OpenAI patch formula (gpt-4.1-mini family) ----------------------------------------
def test_patch_formula_published_examples():
    # 1024x1024: 32x32 = 1024 patches; 1800x2400: 4275 patches -> scaled -> 33x44 = 1452 patches
    assert image_tokens(1024, 1024, "auto", "gpt-4.1-mini") == math.ceil(1024 * 1.62)  # 1659
    assert image_tokens(1800, 2400, "auto", "gpt-4.1-mini") == math.ceil(1452 * 1.62)  # 2353
    assert image_tokens(1800, 2400, "auto", "gpt-5-mini") == math.ceil(1452 * 1.2)     # 1743
    assert image_tokens(1024, 1024, "auto", "gpt-4.1-nano") == math.ceil(1024 * 2.46)
    assert image_tokens(1024, 1024, "auto", "o4-mini") == math.ceil(1024 * 1.72)


@pytest.mark.parametrize("w,h,expected", [  # gpt-5-mini usage measured on the API (x1.2, rounded up)
    (256, 256, 77), (512, 512, 308), (768, 1024, 922), (1280, 720, 1104), (1024, 1024, 1229),
    (2048, 768, 1844),
])
def test_patch_formula_measured_gpt5_mini(w, h, expected):
    assert image_tokens(w, h, "high", "gpt-5-mini") == expected


def test_patch_formula_cap_and_detail():
    for w, h in [(4000, 1474), (8000, 8000), (10000, 300), (31, 9000)]:
        assert image_tokens(w, h, "auto", "gpt-4.1-mini") <= math.ceil(1536 * 1.62)
    # "detail" does not change the cost of patch-based models
    assert image_tokens(640, 480, "low", "gpt-4.1-mini") == image_tokens(640, 480, "high", "gpt-4.1-mini")


# -- other families ---------------------------------------------------------------------
def test_claude_pixels_over_750():
    assert image_tokens(1000, 1000, "auto", "claude") == 1334   # Anthropic: ~1334
    assert image_tokens(200, 200, "auto", "claude") == 54       # Anthropic: ~54
    assert image_tokens(2000, 2000, "auto", "claude") == 1590   # capped to 1092x1092
    assert image_tokens(3000, 1000, "auto", "claude") == math.ceil(1568 * 523 / 750)  # long edge 1568


def test_llama_vision_tiles():
    assert image_tokens(500, 500, "auto", "llama-vision") == 1601       # 1 tile of 560
    assert image_tokens(600, 300, "auto", "llama-vision") == 2 * 1601   # 1x2 canvas
    assert image_tokens(2000, 2000, "auto", "llama-vision") == 4 * 1601  # 2x2, max 4 tiles


def test_qwen_smart_resize():
    assert image_tokens(1024, 1024, "auto", "qwen-vl") == 37 * 37 + 2   # 1036x1036
    assert image_tokens(1280, 720, "auto", "qwen-vl") == 46 * 26 + 2    # 1288x728
    assert image_tokens(20, 20, "auto", "qwen-vl") == 2 * 2 + 2         # up to min_pixels (56x56)
    assert image_tokens(8000, 8000, "auto", "qwen-vl") <= 16384 + 2     # max_pixels cap
    assert image_tokens(1280, 720, "low", "qwen-vl") < image_tokens(1280, 720, "high", "qwen-vl")
    with pytest.raises(MediaError):
        image_tokens(10000, 10, "auto", "qwen-vl")                     # aspect ratio > 200


def test_family_for_model_and_model_ids_as_family():
    assert family_for_model("gpt-4o-2024-08-06") == "gpt-4o"
    assert family_for_model("gpt-4o-mini-2024-07-18") == "gpt-4o-mini"
    assert family_for_model("gpt-4.1-mini") == "gpt-4.1-mini"
    assert family_for_model("gpt-4.1") == "gpt-4o"
    assert family_for_model("o4-mini") == "o4-mini"
    assert family_for_model("o3") == "o3"
    assert family_for_model("gpt-5-nano") == "gpt-5-nano"
    assert family_for_model("claude-3-5-sonnet-20241022") == "claude"
    assert family_for_model("meta/llama-3.2-11b-vision-instruct") == "llama-vision"
    assert family_for_model("nvidia/cosmos-reason1-7b") == "cosmos"
    assert family_for_model("Qwen/Qwen2.5-VL-7B-Instruct") == "qwen-vl"
    assert family_for_model("some-unknown-model") == load_rules()["defaults"]["family"]
    assert image_tokens(1024, 1024, "high", "gpt-4o-mini-2024-07-18") == 2833 + 4 * 5667


# -- images in parts --------------------------------------------------------------------
@pytest.mark.parametrize("fmt,w,h", [("PNG", 1024, 1024), ("JPEG", 2048, 4096), ("GIF", 300, 200),
                                     ("WEBP", 640, 480)])
def test_data_uri_images_real_size(fmt, w, h):
    uri = image_uri(w, h, fmt)
    assert image_size_from_data_uri(uri) == (w, h)
    cost = part_cost(image_part(uri, "high"), "gpt-4o")
    assert cost == PartCost(image_tokens(w, h, "high", "gpt-4o"), "image")
    if (w, h) == (1024, 1024):
        assert cost.tokens == 765
    if (w, h) == (2048, 4096):
        assert cost.tokens == 1105
    assert part_cost(image_part(uri, "low"), "gpt-4o").tokens == 85


def test_image_defaults_to_auto_and_family():
    uri = image_uri(1024, 1024)
    assert part_cost(image_part(uri), "gpt-4o").tokens == 765
    assert part_cost(image_part(uri), "claude").tokens == math.ceil(1024 * 1024 / 750)


def test_garbage_data_uris_raise_media_error():
    p = "messages[0].content[1]"
    with pytest.raises(MediaError) as e:
        part_cost(image_part("data:image/png;base64,@@not base64@@"), "gpt-4o", param=p)
    assert e.value.param == f"{p}.image_url.url" and "invalid base64" in e.value.message
    with pytest.raises(MediaError) as e:   # valid base64, not an image
        part_cost(image_part("data:image/png;base64," + b64(b"hello, not a picture" * 10)), "gpt-4o")
    assert e.value.code == "invalid_image_format" and "unsupported image" in e.value.message
    with pytest.raises(MediaError, match="without the 'data:' prefix"):
        part_cost(image_part("iVBORw0KGgo="), "gpt-4o")
    with pytest.raises(MediaError, match="empty base64"):
        part_cost(image_part("data:image/png;base64,"), "gpt-4o")
    with pytest.raises(MediaError, match="Only image types"):
        part_cost(image_part("data:text/plain;base64," + b64(b"hi")), "gpt-4o")
    with pytest.raises(MediaError, match="unsupported image"):   # BMP decodes but is not accepted
        image_size_from_data_uri(image_uri(10, 10, "BMP", "image/bmp"))
    err = MediaError("x")
    assert isinstance(err, ValueError) and isinstance(err, EngineError) and err.status == 400


def test_url_images_are_not_fetched():
    assert part_cost(image_part("https://example.com/cat.png", "high"), "gpt-4o").tokens == 765  # 1024²
    assert part_cost(image_part("https://cdn.example.com/img_640x480.jpg", "high"), "gpt-4o").tokens == 425
    assert part_cost(image_part("https://example.com/i.jpg?w=300&h=200", "high"), "gpt-4o").tokens == 255
    with pytest.raises(MediaError):
        part_cost(image_part("ftp://example.com/cat.png"), "gpt-4o")


def test_part_validation():
    assert part_cost({"type": "text", "text": "hello"}, "gpt-4o") is None
    assert part_cost({"type": "refusal", "refusal": "no"}, "gpt-4o") is None
    with pytest.raises(MediaError) as e:
        part_cost({"type": "hologram"}, "gpt-4o", param="messages[2].content[0]")
    assert e.value.param == "messages[2].content[0].type"
    with pytest.raises(MediaError) as e:
        part_cost(image_part("https://example.com/a.png", "ultra"), "gpt-4o", param="m")
    assert e.value.param == "m.image_url.detail"
    with pytest.raises(MediaError) as e:
        part_cost({"type": "image_url"}, "gpt-4o", param="m")
    assert e.value.param == "m.image_url" and e.value.code == "missing_required_parameter"


# -- audio ------------------------------------------------------------------------------
def test_wav_duration_and_tokens():
    data = wav_b64(2.5)
    assert audio_duration_from_b64(data, "wav") == pytest.approx(2.5)
    assert audio_tokens(2.5, "gpt-4o") == 25
    part = {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
    assert part_cost(part, "gpt-4o-audio-preview") == PartCost(25, "audio")
    stereo = wav_b64(3.21, rate=44100, channels=2)
    assert audio_duration_from_b64(stereo, "wav") == pytest.approx(3.21, abs=1e-4)
    assert part_cost({"type": "input_audio", "input_audio": {"data": stereo, "format": "wav"}},
                     "gpt-4o").tokens == 33   # ceil(32.1)


def test_audio_errors():
    p = "messages[0].content[0]"
    for data, fmt in [(b64(b"RIFF....WAVEjunk"), "wav"), (b64(bytes(range(256)) * 8), "mp3"),
                      ("***", "wav"), (wav_b64(1.0), "mp3")]:
        with pytest.raises(MediaError) as e:
            part_cost({"type": "input_audio", "input_audio": {"data": data, "format": fmt}}, "gpt-4o",
                      param=p)
        assert e.value.param == f"{p}.input_audio.data"
    with pytest.raises(MediaError) as e:
        audio_duration_from_b64(wav_b64(1.0), "ogg", param="a")
    assert e.value.param == "a.format" and "'wav' and 'mp3'" in e.value.message


def test_mp3_frame_header_parser():
    # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames of 1152 samples
    v1 = mp3_frames(100, b"\xff\xfb\x90\x44", 144 * 128000 // 44100)
    assert audio_duration_from_b64(b64(v1), "mp3") == pytest.approx(100 * 1152 / 44100)
    # MPEG-2 Layer III, 64 kbit/s, 22.05 kHz: 208-byte frames of 576 samples, after an ID3v2 tag
    id3 = b"ID3\x03\x00\x00\x00\x00\x00\x14" + bytes(20)
    v2 = id3 + mp3_frames(50, b"\xff\xf3\x80\xc4", 72 * 64000 // 22050)
    assert audio_duration_from_b64(b64(v2), "mp3") == pytest.approx(50 * 576 / 22050)
    # Xing/Info header: the frame count comes from the header, not from walking
    info = bytearray(mp3_frames(3, b"\xff\xfb\x90\x44", 417))
    info[4 + 32:4 + 32 + 12] = b"Info" + struct.pack(">II", 1, 1000)
    assert audio_duration_from_b64(b64(bytes(info)), "mp3") == pytest.approx(1000 * 1152 / 44100)


def test_mp3_from_a_real_encoder():
    sf = pytest.importorskip("soundfile", reason="soundfile (libsndfile) not installed")
    np = pytest.importorskip("numpy")
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile built without MP3 support (needs >= 1.1)")
    t = np.arange(int(2.5 * 44100)) / 44100
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), 44100, format="MP3")
    secs = audio_duration_from_b64(b64(buf.getvalue()), "mp3")
    assert secs == pytest.approx(2.5, abs=0.03)
    assert part_cost({"type": "input_audio", "input_audio": {"data": b64(buf.getvalue()),
                                                             "format": "mp3"}}, "gpt-4o").tokens == 25


# -- video ------------------------------------------------------------------------------
def test_video_tokens_qwen_rules():
    # 10 s at 30 fps, sampled at 2 fps -> 20 frames -> 10 temporal groups; 1280x720 -> 1008x560
    assert video_tokens(1280, 720, 10, 30, "auto", "qwen-vl") == 10 * 36 * 20 + 2
    # Cosmos samples at 4 fps: twice the frames
    assert video_tokens(1280, 720, 10, 30, "auto", "cosmos") == 20 * 36 * 20 + 2
    # a 1 fps source cannot give more than its own 10 frames: half the 2 fps video's frame groups
    one, two = (video_tokens(640, 480, 10, fps, "auto", "qwen-vl") - 2 for fps in (1, 2))
    assert 2 * one == two


@pytest.mark.parametrize("family", ["qwen-vl", "cosmos", "gpt-4o", "claude"])
def test_video_tokens_monotonic(family):
    by_secs = [video_tokens(640, 360, s, 30, "auto", family) for s in (1, 2, 5, 10, 60)]
    assert by_secs == sorted(by_secs) and by_secs[0] < by_secs[-1]
    by_size = [video_tokens(w, h, 10, 30, "auto", family) for w, h in ((160, 90), (320, 180), (640, 360), (1280, 720))]
    assert by_size == sorted(by_size) and by_size[0] < by_size[-1]
    assert video_tokens(640, 360, 10, 30, "low", family) <= video_tokens(640, 360, 10, 30, "high", family)


def test_video_detail_scales_qwen():
    low, auto, high = (video_tokens(1920, 1080, 10, 30, d, "cosmos") for d in ("low", "auto", "high"))
    assert low < auto < high


def test_mp4_box_parser_and_video_parts():
    raw = mp4_bytes(640, 360, frames=125, timescale=12800, delta=512)   # 5 s at 25 fps
    assert mp4_video_info(raw) == pytest.approx((640, 360, 5.0, 25.0))
    assert mp4_video_info(mp4_bytes(640, 360, 125, 12800, 512, mdat_first=True)) == pytest.approx((640, 360, 5.0, 25.0))
    part = {"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + b64(raw)}}
    assert part_cost(part, "cosmos") == PartCost(video_tokens(640, 360, 5.0, 25.0, "auto", "cosmos"), "video")
    assert mp4_video_info(b"not an mp4 at all") is None
    with pytest.raises(MediaError):
        part_cost({"type": "video_url", "video_url": {"url": "data:video/mp4;base64," + b64(b"garbage" * 9)}},
                  "cosmos")
    d = load_rules()["defaults"]
    url = {"type": "video_url", "video_url": {"url": "https://example.com/clip.mp4"}}
    u = d["url_video"]
    assert part_cost(url, "qwen-vl").tokens == video_tokens(u["width"], u["height"], u["seconds"], u["fps"],
                                                            "auto", "qwen-vl")
    webm = {"type": "video_url", "video_url": {"url": "data:video/webm;base64," + b64(b"\x1aE\xdf\xa3" * 4)}}
    v = d["data_video"]
    assert part_cost(webm, "cosmos").tokens == video_tokens(v["width"], v["height"], v["seconds"], v["fps"],
                                                            "auto", "cosmos")


# -- files ------------------------------------------------------------------------------
def test_pdf_file_parts_count_pages():
    pdf = b"%PDF-1.4\n" + b"".join(b"%d 0 obj << /Type /Page /Parent 1 0 R >> endobj\n" % i for i in range(3)) \
        + b"1 0 obj << /Type /Pages /Count 3 >> endobj\n%%EOF"
    rule = load_rules()["families"]["gpt-4o"]["file"]
    per_page = rule["text_tokens_per_page"] + image_tokens(rule["page_width"], rule["page_height"],
                                                           rule["page_detail"], "gpt-4o")
    part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64," + b64(pdf)}}
    assert part_cost(part, "gpt-4o") == PartCost(3 * per_page, "file")
    assert part_cost({"type": "file", "file": {"file_id": "file-abc"}}, "gpt-4o").tokens == \
        rule["default_pages"] * per_page
    text = {"type": "file", "file": {"file_data": "data:text/plain;base64," + b64(b"x" * 400)}}
    assert part_cost(text, "gpt-4o").tokens == 400 // rule["bytes_per_token"]
    with pytest.raises(MediaError, match="not a valid PDF"):
        part_cost({"type": "file", "file": {"file_data": "data:application/pdf;base64," + b64(b"nope")}}, "gpt-4o")
    with pytest.raises(MediaError, match="invalid base64"):
        part_cost({"type": "file", "file": {"file_data": "data:application/pdf;base64,!!"}}, "gpt-4o")


# -- data and layering ------------------------------------------------------------------
def test_rules_are_loaded_once_and_inherit():
    assert load_rules() is load_rules()
    fams = load_rules()["families"]
    assert fams["gpt-4o-mini"]["image"]["tile"] == fams["gpt-4o"]["image"]["tile"] == 512
    assert fams["cosmos"]["video"]["factor"] == 28 and fams["cosmos"]["video"]["sample_fps"] == 4.0
    assert fams["claude"]["image"]["method"] == "pixels" and "tile" not in fams["claude"]["image"]


def test_engine_module_does_not_import_api_or_schemas():
    code = ("import sys, fakeai.engine.multimodal; "
            "bad = [m for m in sys.modules if m.startswith(('fakeai.api', 'fakeai.schemas'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
