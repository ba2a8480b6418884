"""What a generating route calls once it knows the model and the prompt size.

    await admit(request, model, prompt_tokens, max_tokens, n, prompt)   # before generating
    await settle(request, used_tokens)                                  # once usage is known

``admit`` enforces, in this order, the key's allowed models (404 model_not_found,
as OpenAI answers for a model a project may not use), prompt-injection detection
(400 in refuse mode) and the rate limits (429 rate_limit_exceeded). With none of
them on the guard sets no pass and both calls return at once.
"""

from __future__ import annotations

import logging

from ..api.errors import APIError
from ..lazy import lazy_import
from .ratelimit import DONE, RateLimited, Reservation

log = logging.getLogger("fakeai")
injection = lazy_import("fakeai.security.injection")  # ~40 ms of regular expressions: only when on


class Pass:
    """One request's security context, set by the guard in ``scope["state"]["security"]``."""

    __slots__ = ("headers", "ip", "record", "reservation", "sec")

    def __init__(self, sec, record, ip: str, headers: list) -> None:
        self.sec, self.record, self.ip = sec, record, ip
        self.headers = headers  # the response's extra headers (RequestMeta adds them)
        self.reservation: Reservation | None = None

    def admit(self, request, model, prompt_tokens: int, max_tokens: int | None, n: int, prompt: str):
        """The checks of :func:`admit`; an awaitable (done at once unless the rate-limit store
        must be awaited: Redis, or a request over a limit)."""
        sec = self.sec
        record = self.record
        if record is not None and not record.scope.allows_model(model.id):
            raise APIError(404, f"The model `{model.id}` does not exist or you do not have access to it.",
                           code="model_not_found")
        if sec.injection != "off" and prompt:
            family = injection.detect(prompt)
            if family is not None:
                log.warning("prompt injection (%s) detected from %s on %s", family, self.ip, request.url.path)
                if sec.abuse is not None:
                    sec.abuse.record(self.ip, "injection")
                if sec.injection == "refuse":
                    raise APIError(400, "Your request was rejected because the prompt looks like a prompt-"
                                   f"injection or jailbreak attempt ({family}).", param="messages",
                                   code="prompt_injection_detected")
                self.headers.append((b"x-fakeai-injection", family.encode()))
        limiter = sec.limiter
        if not limiter.enabled:
            return DONE
        if max_tokens is None:
            max_tokens = request.app.state.engine.max_new_tokens(model, prompt_tokens, None)
        subject = record.id if record is not None else "anonymous"
        tokens = prompt_tokens + max_tokens * n
        reservation = limiter.reserve_now(subject, model.id, tokens)
        if reservation is None:
            return self._reserve(limiter, subject, model.id, tokens)
        self.reservation = reservation
        self.headers.extend(reservation.headers)
        return DONE

    async def _reserve(self, limiter, subject: str, model_id: str, tokens: int) -> None:
        sec = self.sec
        try:
            self.reservation = await limiter.reserve(subject, model_id, tokens)
        except RateLimited as e:
            if sec.abuse is not None:
                sec.abuse.record(self.ip, "ratelimit")
            self.headers.extend(e.headers)
            if e.retry_after is not None:
                self.headers += [(b"retry-after", str(max(1, round(e.retry_after))).encode()),
                                 (b"retry-after-ms", str(max(1, round(e.retry_after * 1000))).encode())]
            raise APIError(429, e.message, type=e.kind, code="rate_limit_exceeded") from None
        except Exception:
            log.exception("rate-limit store failed")
            raise APIError(503, "The rate-limit store is unavailable. Please retry shortly.",
                           type="server_error", code="rate_limit_store_unavailable") from None
        self.headers.extend(self.reservation.headers)


def admit(request, model, prompt_tokens: int, max_tokens: int | None = None, n: int = 1, prompt: str = ""):
    """Check a request against its key's scope, injection detection and the rate limits
    (await it). ``max_tokens`` is the completion cap the client asked for (None: the model's
    budget), ``n`` the choices generated, ``prompt`` the user text to scan for injections."""
    p = request.scope.get("state", _NO_STATE).get("security")
    return DONE if p is None else p.admit(request, model, prompt_tokens, max_tokens, n, prompt)


def settle(request, used_tokens: int):
    """Correct the request's token counters to its real usage, prompt + completion tokens (await it)."""
    p = request.scope.get("state", _NO_STATE).get("security")
    if p is None or p.reservation is None:
        return DONE
    return p.reservation.settle(used_tokens)


_NO_STATE: dict = {}
