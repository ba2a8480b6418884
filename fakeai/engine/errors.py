"""Engine-level errors. The API layer maps them to OpenAI's error envelope."""

from __future__ import annotations


class EngineError(Exception):
    status = 400
    type = "invalid_request_error"
    code: str | None = None
    param: str | None = None

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if param is not None:
            self.param = param
        if code is not None:
            self.code = code


class ModelNotFound(EngineError):
    status = 404
    code = "model_not_found"
    param = "model"

    def __init__(self, model_id: str) -> None:
        super().__init__(
            f"The model `{model_id}` does not exist or you do not have access to it."
        )
        self.model_id = model_id


class ContextLengthExceeded(EngineError):
    code = "context_length_exceeded"
    param = "messages"

    def __init__(self, limit: int, prompt_tokens: int, completion_tokens: int | None,
                 param: str = "messages") -> None:
        what = "prompt" if param == "prompt" else "messages"
        if completion_tokens:
            msg = (
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt_tokens + completion_tokens} tokens ({prompt_tokens} in the {what}, "
                f"{completion_tokens} in the completion). Please reduce the length of the "
                f"{what} or completion."
            )
        else:
            msg = (
                f"This model's maximum context length is {limit} tokens. However, your {what} "
                f"resulted in {prompt_tokens} tokens. Please reduce the length of the {what}."
            )
        super().__init__(msg, param=param)
