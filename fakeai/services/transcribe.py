"""Transcription and translation without a model: the audio is really decoded, the words are fake.

``decode_seconds`` decodes the whole upload (libsndfile for WAV, FLAC and
Ogg; FFmpeg through PyAV for MP3, MP4/M4A, WebM and anything else FFmpeg
reads) and returns its true duration; undecodable bytes raise ``AudioError``.

``transcript`` then makes the words: ``round(seconds x 2.5)`` words (~150 wpm)
of the project's fake English, deterministic in the file's bytes (the same
file always gives the same transcript), timed across ``[0, seconds]``: each
word gets time in proportion to its length, punctuation adds a pause, the
first word starts at 0 and the last ends at the end of the audio. Words are
grouped into segments at sentence ends (at least 4 words, at most 30), and
segments are contiguous, so they cover the whole duration.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import zlib
from dataclasses import dataclass

import soundfile as sf

from ..engine.core import topic_words
from ..engine.text import get_text_generator
from .audio import WORDS_PER_SECOND

#: File name extensions OpenAI accepts for uploads.
EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
MAX_FILE_BYTES = 25 * 1024 * 1024       # OpenAI's upload limit, 26214400 bytes

_LANGUAGE_TABLE = (
    "en:english zh:chinese de:german es:spanish ru:russian ko:korean fr:french ja:japanese "
    "pt:portuguese tr:turkish pl:polish ca:catalan nl:dutch ar:arabic sv:swedish it:italian "
    "id:indonesian hi:hindi fi:finnish vi:vietnamese he:hebrew uk:ukrainian el:greek ms:malay "
    "cs:czech ro:romanian da:danish hu:hungarian ta:tamil no:norwegian th:thai ur:urdu "
    "hr:croatian bg:bulgarian lt:lithuanian la:latin mi:maori ml:malayalam cy:welsh sk:slovak "
    "te:telugu fa:persian lv:latvian bn:bengali sr:serbian az:azerbaijani sl:slovenian "
    "kn:kannada et:estonian mk:macedonian br:breton eu:basque is:icelandic hy:armenian "
    "ne:nepali mn:mongolian bs:bosnian kk:kazakh sq:albanian sw:swahili gl:galician "
    "mr:marathi pa:punjabi si:sinhala km:khmer sn:shona yo:yoruba so:somali af:afrikaans "
    "oc:occitan ka:georgian be:belarusian tg:tajik sd:sindhi gu:gujarati am:amharic "
    "yi:yiddish lo:lao uz:uzbek fo:faroese ht:haitian_creole ps:pashto tk:turkmen nn:nynorsk "
    "mt:maltese sa:sanskrit lb:luxembourgish my:myanmar bo:tibetan tl:tagalog mg:malagasy "
    "as:assamese tt:tatar haw:hawaiian ln:lingala ha:hausa ba:bashkir jw:javanese su:sundanese "
    "yue:cantonese")
#: ISO-639-1 codes Whisper knows, with the language names verbose_json reports.
LANGUAGES = {code: name.replace("_", " ") for code, name in (p.split(":") for p in _LANGUAGE_TABLE.split())}

_MIN_SEGMENT_WORDS, _MAX_SEGMENT_WORDS = 4, 30


class AudioError(ValueError):
    """The upload is not audio any decoder can read."""


def _frames_soundfile(data: bytes) -> tuple[int, int] | None:
    """(frames, rate) through libsndfile; None if it is MP3 or not a format libsndfile knows.

    MP3 goes to FFmpeg: libsndfile trusts the Xing frame count of a truncated
    MP3 and pads it with silence, FFmpeg decodes what is there.
    """
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.format == "MP3":
                return None
            return sum(len(block) for block in f.blocks(1 << 16, dtype="int16")), f.samplerate
    except (sf.LibsndfileError, RuntimeError):
        return None


def _frames_ffmpeg(data: bytes) -> tuple[int, int]:
    """(samples, rate) of the first audio stream, decoded by FFmpeg (PyAV)."""
    import av  # lazily: only formats libsndfile cannot read need FFmpeg

    samples = rate = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioError("no audio stream")
            try:
                for frame in container.decode(audio=0):
                    samples += frame.samples
                    rate = frame.sample_rate
            except av.FFmpegError:
                pass                                  # a damaged tail: keep what decoded
    except av.FFmpegError as e:
        raise AudioError(str(e)) from None
    return samples, rate


def decode_seconds(data: bytes) -> float:
    """Seconds of audio in `data`, by decoding all of it; raises AudioError."""
    frames, rate = _frames_soundfile(data) or _frames_ffmpeg(data)
    if not frames or not rate:
        raise AudioError("no decodable audio")
    return frames / rate


def language_name(code: str | None) -> str | None:
    """Whisper's name for an ISO-639-1 code ('en' -> 'english'); None if unknown."""
    return LANGUAGES.get((code or "en").lower())


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float

    @property
    def compression_ratio(self) -> float:
        """Whisper's measure: text bytes over their zlib-compressed size."""
        raw = self.text.encode()
        return len(raw) / len(zlib.compress(raw)) if raw else 0.0


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    seconds: float
    words: list[tuple[str, float, float]]   # (word without punctuation, start, end)
    segments: list[Segment]


def file_seed(data: bytes) -> int:
    """The seed of everything made up about an upload: same bytes, same transcript."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _words(count: int, rng: random.Random, topics: tuple[str, ...]) -> list[str]:
    """`count` words of fake English, ending a sentence."""
    gen = get_text_generator("o200k_base")
    words: list[str] = []
    while len(words) < count:
        ids, _ = gen.generate(rng, 2 * count + 16, 2 * count + 16, topics)
        words += gen.text(ids).split()
    words = words[:count]
    if not words[-1].endswith((".", "!", "?")):
        words[-1] = words[-1].rstrip(",;:") + "."
    return words


def _timeline(words: list[str], seconds: float) -> list[tuple[float, float]]:
    """(start, end) per word: time in proportion to length, pauses after punctuation."""
    spans = [(0.6 + 0.08 * len(w), 0.5 if w[-1] in ".!?" else 0.25 if w[-1] in ",;:" else 0.05)
             for w in words]
    total = sum(s + p for s, p in spans) - spans[-1][1]       # no pause after the last word
    scale = seconds / total
    out, t = [], 0.0
    for speech, pause in spans:
        out.append((t, t + speech * scale))
        t += (speech + pause) * scale
    return out


def transcript(data: bytes, seconds: float, prompt: str | None = None) -> Transcript:
    """The fake transcript of `seconds` of audio whose bytes are `data`."""
    end = round(seconds, 2)
    count = round(seconds * WORDS_PER_SECOND)
    if not count:
        return Transcript("", end, [], [])
    rng = random.Random(file_seed(data))
    words = _words(count, rng, topic_words(prompt) if prompt else ())
    times = [(round(a, 2), round(b, 2)) for a, b in _timeline(words, seconds)]
    times[-1] = (min(times[-1][0], end), end)
    segments: list[Segment] = []
    first = 0
    for i, w in enumerate(words):
        size = i + 1 - first
        if i == len(words) - 1 or size >= _MAX_SEGMENT_WORDS or (
                size >= _MIN_SEGMENT_WORDS and w[-1] in ".!?"):
            start = segments[-1].end if segments else 0.0
            stop = end if i == len(words) - 1 else times[i + 1][0]
            segments.append(Segment(start, stop, " ".join(words[first:i + 1]),
                                    round(-rng.uniform(0.12, 0.45), 6), round(rng.uniform(1e-4, 0.03), 6)))
            first = i + 1
    bare = [(re.sub(r"[^\w'-]", "", w), a, b) for w, (a, b) in zip(words, times)]
    return Transcript(" ".join(words), end, bare, segments)
