"""Usage accounting for the organization usage and costs API (placeholder interface).

Routes call ``app.state.usage.record(kind, model, ...)`` once per served request.
"""

from __future__ import annotations


class UsageRecorder:
    def record(self, kind: str, model: str, *, api_key_id: str | None = None,
               project_id: str | None = None, batch: bool = False, **quantities: float) -> None:
        """Count one request of ``kind`` ("completions", "embeddings", "moderations", "images",
        "audio_speeches", "audio_transcriptions", "vector_stores") with OpenAI's bucket
        fields as ``quantities`` (input_tokens, output_tokens, input_cached_tokens,
        input_audio_tokens, output_audio_tokens, images, characters, seconds, usage_bytes);
        ``num_model_requests`` is counted here."""
