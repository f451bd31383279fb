"""Request errors of the server: :class:`~lhama.errors.LhamaError` subclasses that also carry
the HTTP status, the offending request field and an OpenAI-style error code.

``serve/app.py`` turns any LhamaError into an OpenAI error body; these add the details.
"""

from __future__ import annotations

from lhama.errors import LhamaError


class RequestError(LhamaError):
    """A request is invalid. ``param`` names the field (``messages[0].content[1].image_url``)."""

    status = 400
    type = "invalid_request_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param
        self.code = code


class MediaTooLarge(RequestError):
    """An image or audio item exceeds the server's byte limit."""

    status = 413


class ModelNotFound(RequestError):
    status = 404


class Unauthorized(RequestError):
    status = 401


class ServerBusy(RequestError):
    """The request queue is full; the client should retry later."""

    status = 429
    type = "rate_limit_error"


class RequestTimeout(RequestError):
    status = 408
    type = "timeout_error"

