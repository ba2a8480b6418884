"""Vector-store chunking: token-exact sizes and overlaps, OpenAI's bounds, and text extraction."""

from __future__ import annotations

import itertools

import pytest

from fakeai.engine.errors import EngineError
from fakeai.engine.tokenizer import get_tokenizer
from fakeai.services import chunking
from fakeai.services.chunking import AUTO, Strategy, chunk, spans, strategy
from fakeai.services.extract import ExtractError, extract_text

TOK = get_tokenizer("cl100k_base")
TEXT = " ".join(f"Sentence {i} talks about topic {i % 7} with détails über ünïcode 日本語 {i * 31}."
                for i in range(400))


@pytest.mark.parametrize("size,overlap", [(100, 0), (100, 50), (800, 400), (257, 3), (4096, 2048)])
def test_spans_are_token_exact(size, overlap):
    n = TOK.count(TEXT)
    s = Strategy(size, overlap)
    out = spans(n, s)
    assert out[0][0] == 0 and out[-1][1] == n
    for (a0, a1), (b0, _) in itertools.pairwise(out):
        assert a1 - a0 == size  # every chunk but the last is full
        assert a1 - b0 == overlap  # consecutive chunks share exactly `overlap` tokens
        assert b0 - a0 == size - overlap
    assert 0 < out[-1][1] - out[-1][0] <= size
    # the last chunk is only added when the text goes past the previous one
    if len(out) > 1:
        assert out[-2][1] < n


def test_chunk_texts_reassemble_the_document():
    s = Strategy(120, 0)
    texts, counts = chunk(TOK, TEXT, s)
    assert "".join(texts) == TEXT  # no character lost or doubled at the edges, even multi-byte ones
    assert all(c == 120 for c in counts[:-1]) and sum(counts) == TOK.count(TEXT)
    ids = TOK.encode(TEXT)
    assert texts[0] == TOK.decode(ids[:120]).rstrip("\ufffd")  # its tokens' text, whole characters only


def test_overlapping_chunks_repeat_the_overlap():
    texts, _ = chunk(TOK, TEXT, Strategy(200, 100))
    ids = TOK.encode(TEXT)
    assert len(texts) == len(spans(len(ids), Strategy(200, 100)))
    # chunk k+1 begins with the second half of chunk k
    tail = TOK.decode(ids[100:200])
    assert texts[1].startswith(tail[:50]) and tail[-20:] in texts[0]


def test_short_and_empty_texts():
    assert chunk(TOK, "", AUTO) == ([], [])
    texts, counts = chunk(TOK, "just a few words", AUTO)
    assert texts == ["just a few words"] and counts == [TOK.count("just a few words")]


def test_auto_is_800_400_and_reads_back_as_static():
    assert strategy(None) == strategy({"type": "auto"}) == Strategy(800, 400)
    assert AUTO.as_dict() == {"type": "static", "static": {"max_chunk_size_tokens": 800,
                                                           "chunk_overlap_tokens": 400}}


@pytest.mark.parametrize("size,overlap,param", [
    (99, 0, "max_chunk_size_tokens"), (4097, 0, "max_chunk_size_tokens"),
    (1000, 501, "chunk_overlap_tokens"), (1000, -1, "chunk_overlap_tokens"),
])
def test_static_bounds(size, overlap, param):
    with pytest.raises(EngineError) as e:
        strategy({"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}})
    assert e.value.param == f"chunking_strategy.static.{param}"
    assert e.value.status == 400


def test_static_extremes_are_allowed():
    assert strategy({"type": "static", "static": {"max_chunk_size_tokens": 100,
                                                  "chunk_overlap_tokens": 50}}) == Strategy(100, 50)
    assert strategy({"type": "static", "static": {"max_chunk_size_tokens": chunking.MAX_CHUNK_TOKENS,
                                                  "chunk_overlap_tokens": 0}}) == Strategy(4096, 0)


def test_extract_formats():
    assert extract_text("a.md", b"# Title\n\nbody") == "# Title\n\nbody"
    html = b"<html><head><title>x</title><style>p{}</style></head><body><h1>Hi</h1><p>One &amp; two</p>" \
           b"<script>var x;</script></body></html>"
    assert extract_text("page.HTML", html) == "Hi\n\nOne & two"
    assert extract_text("data.jsonl", b'{"a": 1}\n') == '{"a": 1}\n'
    with pytest.raises(ExtractError) as e:
        extract_text("photo.png", b"\x89PNG")
    assert e.value.code == "unsupported_file"
    with pytest.raises(ExtractError) as e:
        extract_text("notes.txt", b"\xff\xfe\x00bad")
    assert e.value.code == "invalid_file"
    with pytest.raises(ExtractError) as e:
        extract_text("blank.txt", b"  \n ")
    assert e.value.code == "invalid_file"


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` in Helvetica (built by hand, with a valid xref)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
             b"/Resources << /Font << /F1 5 0 R >> >> >>"),
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_extract_pdf():
    assert extract_text("doc.pdf", minimal_pdf("The secret code is mango")) == "The secret code is mango"
    with pytest.raises(ExtractError) as e:
        extract_text("broken.pdf", b"%PDF-1.4 garbage")
    assert e.value.code == "invalid_file"
