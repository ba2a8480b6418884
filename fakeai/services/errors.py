"""The failure a domain service reports; the API layer renders it in OpenAI's envelope."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service refuses: ``status`` and the OpenAI error fields.

    Services never import the API layer, so they raise this and the route turns
    it into ``APIError`` (see ``fakeai.api.files.service_errors``)."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type


def not_found(what: str, id: str, param: str | None = None) -> ServiceError:
    """OpenAI's 404 wording: ``No such File object: file-abc``."""
    return ServiceError(404, f"No such {what} object: {id}", param=param, code="not_found")
