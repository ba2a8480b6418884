"""The text of an uploaded file, for a vector store to chunk and embed.

Formats are told apart by the file name's extension, as OpenAI's file search does:
plain text, Markdown, source code, JSON, JSONL and CSV are read as UTF-8 text; HTML
is reduced to its visible text; PDF pages are read with ``pypdf`` (pure Python).
Anything else is rejected with OpenAI's ``unsupported_file`` error, and a file that
is not valid UTF-8 or holds no text with ``invalid_file``.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

_TEXT_EXTENSIONS = frozenset([
    "txt", "md", "markdown", "json", "jsonl", "csv", "tsv", "log", "rst", "tex", "xml", "yaml",
    "yml", "toml", "ini", "cfg", "py", "js", "mjs", "ts", "tsx", "jsx", "java", "c", "h", "cc",
    "cpp", "hpp", "cs", "go", "rb", "rs", "php", "sh", "bash", "zsh", "ps1", "sql", "css", "scss",
    "kt", "swift", "scala", "lua", "pl", "r", "m",
])
_HTML_EXTENSIONS = frozenset({"html", "htm", "xhtml"})


class ExtractError(Exception):
    """The file cannot be indexed: ``code`` is ``unsupported_file`` or ``invalid_file``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def extension(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def extract_text(filename: str, data: bytes) -> str:
    """The indexable text of ``data``, or :class:`ExtractError`."""
    ext = extension(filename)
    if ext == "pdf":
        text = _pdf(data)
    elif ext in _HTML_EXTENSIONS:
        text = _html(_utf8(data))
    elif ext in _TEXT_EXTENSIONS:
        text = _utf8(data)
    else:
        shown = f".{ext}" if ext else "no extension"
        raise ExtractError("unsupported_file", f"Files with {shown} are not supported for retrieval. "
                           "Supported: text, Markdown, code, JSON, JSONL, CSV, HTML and PDF files.")
    if not text.strip():
        raise ExtractError("invalid_file", "The file contains no text to index.")
    return text


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExtractError("invalid_file", f"The file is not valid UTF-8 text (byte {e.start}).") from None


class _Visible(HTMLParser):
    """The text of an HTML document, without scripts and styles, one block per line."""

    _SKIP = frozenset({"script", "style", "head", "template", "noscript"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                        "section", "article", "header", "footer", "table", "ul", "ol", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


_BLANKS = re.compile(r"[ \t\r\f\v]+")
_LINES = re.compile(r"\n\s*\n+")


def _html(source: str) -> str:
    parser = _Visible()
    parser.feed(source)
    parser.close()
    text = _BLANKS.sub(" ", "".join(parser.parts))
    return _LINES.sub("\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()


def _pdf(data: bytes) -> str:
    import pypdf  # only PDF uploads pay for it
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError) as e:
        raise ExtractError("invalid_file", f"The PDF could not be parsed: {e}") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())
