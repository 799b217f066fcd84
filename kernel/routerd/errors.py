"""The gateway's error types.

Errors that reach a client are rendered in the OpenAI error shape
(``{"error": {"message", "type", "param", "code"}}``) by ``routerd.api.errors``.
Errors that stop start-up (`ConfigError`, `PluginError`) name the offending key or plugin.
"""

from __future__ import annotations


class RouterdError(Exception):
    """Base class of every error routerd raises on purpose."""


class ConfigError(RouterdError):
    """Invalid configuration; the message names the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


class PluginError(RouterdError):
    """A plugin cannot be loaded or started; the message names the plugin."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(f"plugin {plugin!r}: {reason}")
        self.plugin = plugin
        self.reason = reason


class MissingExtra(PluginError):
    """An enabled plugin needs modules that are not installed.

    Raised by `routerd.require_modules`, which a plugin calls at import time.
    """

    def __init__(self, plugin: str, distribution: str, extra: str, modules: list[str]) -> None:
        reason = (
            f"needs {', '.join(repr(m) for m in modules)}, not installed; "
            f"install the extra: pip install '{distribution}[{extra}]'"
        )
        super().__init__(plugin, reason)
        self.distribution = distribution
        self.extra = extra
        self.modules = modules


class GatewayError(RouterdError):
    """An error a client sees, with its HTTP status and OpenAI error type."""

    status_code = 500
    error_type = "server_error"
    # HTTP headers the error's response carries (``Retry-After``, ...); None: none.
    headers: dict[str, str] | None = None

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        if headers:
            self.headers = headers


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextLengthExceeded(InvalidRequest):
    """The prompt (with the answer's room) does not fit the context window of any model that could take it: a
    400 ``context_length_exceeded``, as OpenAI answers. Backends raise it for an upstream's own context-length
    refusal; dispatch then tries the next model (a larger window may hold it) without counting it against the
    backend's health."""

    def __init__(self, message: str, *, param: str | None = "messages", code: str | None = "context_length_exceeded"):
        super().__init__(message, param=param, code=code)


class AuthenticationFailed(GatewayError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDenied(GatewayError):
    status_code = 403
    error_type = "permission_error"


class NotFound(GatewayError):
    status_code = 404
    error_type = "not_found_error"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"


class BackendError(GatewayError):
    """A backend failed. `retryable` (True unless the backend says otherwise) says whether another model may be
    tried: a backend that raises ``BackendError(..., retryable=False)`` means that no other model would do better
    (the request itself is at fault, or must not run twice); dispatch then gives up at once, passes the error on
    to the client, and does not count it against the backend's health."""

    status_code = 502
    error_type = "backend_error"

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.retryable = retryable


class BackendUnavailable(BackendError):
    """The backend could not be reached (connect error, 5xx, timeout)."""

    status_code = 503


class Overloaded(BackendUnavailable):
    """Every model that could answer has its backend's queue full (or the request waited its ``queue_timeout``
    in vain): a 503 with ``Retry-After``, answered before any work is queued. Never counted against a backend."""

    error_type = "server_error"

    def __init__(self, message: str, *, retry_after: int, code: str | None = "overloaded") -> None:
        super().__init__(message, code=code)
        self.headers = {"Retry-After": str(retry_after)}


class BackendTimeout(BackendError):
    status_code = 504
    error_type = "timeout_error"


class ModelNotFound(NotFound):
    """No backend serves the requested model."""
