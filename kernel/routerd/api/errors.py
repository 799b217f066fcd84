"""Every error a client sees is in the OpenAI shape with the right status; nothing else leaks
(no stack traces, no exception text from unexpected errors)."""

from __future__ import annotations

import logging

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from routerd.db.outage import is_outage
from routerd.errors import GatewayError
from routerd.schemas.openai import ErrorBody, ErrorResponse

log = logging.getLogger("routerd.api")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


def error_response(
    status: int,
    message: str,
    error_type: str | None = None,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = ErrorResponse(
        ErrorBody(message=message, type=error_type or _TYPES.get(status, "server_error"), param=param, code=code)
    )
    return Response(msgspec.json.encode(body), status_code=status, media_type=MediaType.JSON, headers=headers)


def gateway_error(_: Request, exc: GatewayError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if exc.headers:
        headers = {**(headers or {}), **exc.headers}
    return error_response(exc.status_code, exc.message, exc.error_type, param=exc.param, code=exc.code, headers=headers)


def http_error(_: Request, exc: HTTPException) -> Response:
    message = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        message = f"{exc.detail}: {exc.extra}"
    return error_response(exc.status_code, str(message), headers=getattr(exc, "headers", None))


DATABASE_RETRY_AFTER = "5"  # seconds a client is told to wait when the database is down


def unexpected_error(request: Request, exc: Exception) -> Response:
    if is_outage(exc):
        # The database is down or unreachable: a 503 the client may retry, one line in the log (no traceback,
        # no statement: its parameters may be users' prompts).
        log.warning("database unavailable on %s %s (%s)", request.method, request.url.path, type(exc).__name__)
        return error_response(
            503,
            "the gateway's database is unavailable; try again shortly",
            "server_error",
            code="database_unavailable",
            headers={"Retry-After": DATABASE_RETRY_AFTER},
        )
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error; the gateway's log has the details", "server_error")


HANDLERS = {GatewayError: gateway_error, HTTPException: http_error, Exception: unexpected_error}
