"""Request models of the audio endpoints: speech (JSON), transcriptions and translations (multipart).

The multipart routes turn their form into a dict first (``fakeai.api.audio``):
repeated ``name[]`` fields become lists, numbers and booleans are converted,
the uploaded ``file`` becomes bytes; the models below then validate it as strictly
as a JSON body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .common import STRICT


class CustomVoice(BaseModel):
    model_config = STRICT
    id: str


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``. Text lengths are checked by the route (with OpenAI's messages)."""

    model_config = STRICT

    model: str
    input: str
    voice: str | CustomVoice
    instructions: str | None = None
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: Annotated[float, Field(ge=0.25, le=4.0)] = 1.0
    stream_format: Literal["sse", "audio"] = "audio"


class _AudioUpload(BaseModel):
    model_config = STRICT

    file: bytes = Field(description="The audio file: flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav or webm.")
    model: str
    prompt: str | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] = 0.0


class TranscriptionRequest(_AudioUpload):
    """``POST /v1/audio/transcriptions`` (multipart/form-data)."""

    language: str | None = None
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt", "diarized_json"] = "json"
    timestamp_granularities: list[Literal["word", "segment"]] | None = None
    include: list[Literal["logprobs"]] | None = None
    stream: bool | None = False
    chunking_strategy: Literal["auto"] | dict[str, Any] | None = None
    known_speaker_names: Annotated[list[str], Field(max_length=4)] | None = None
    known_speaker_references: Annotated[list[str], Field(max_length=4)] | None = None


class TranslationRequest(_AudioUpload):
    """``POST /v1/audio/translations`` (multipart/form-data): always into English."""

    response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] = "json"
