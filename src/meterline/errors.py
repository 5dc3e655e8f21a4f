"""One error hierarchy for the whole gateway; each surface maps it to its own error JSON.

```
GatewayError                     500  api_error
├── CountersFull                 503  (the shared counters file has no room for a new counter)
├── InvalidRequest               400  invalid_request_error
│   └── PayloadTooLarge          413
├── AuthError                    401  authentication_error
├── PermissionDenied             403  permission_error
├── ModelNotFound                404  model_not_found
├── RateLimited                  429  rate_limit_error
│   ├── BudgetExceeded           429  (a budget would be exceeded)
│   └── BreakerOpen              429  (a spend breaker has halted traffic)
└── ProviderError                502  upstream_error
    ├── UpstreamBadRequest       400  (the upstream rejected the request itself)
    ├── UpstreamAuthFailed       502  (the gateway's provider credentials were refused)
    ├── UpstreamRateLimited      429  (keeps the upstream's retry-after)
    ├── UpstreamUnavailable      502  (upstream 5xx)
    ├── UpstreamConnectionError  502
    ├── UpstreamMalformed        502  (an answer the gateway cannot decode)
    └── UpstreamTimeout          504
```

``retryable`` marks the errors a retry or a fallback to another model may cure.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BreakerOpen",
    "BudgetExceeded",
    "CountersFull",
    "GatewayError",
    "InvalidRequest",
    "ModelNotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ProviderError",
    "RateLimited",
    "UpstreamAuthFailed",
    "UpstreamBadRequest",
    "UpstreamConnectionError",
    "UpstreamMalformed",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class GatewayError(Exception):
    status = 500
    kind = "api_error"
    code: str | None = None
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}


class CountersFull(GatewayError):
    status = 503


class InvalidRequest(GatewayError):
    status = 400
    kind = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"


class AuthError(GatewayError):
    status = 401
    kind = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    kind = "permission_error"


class ModelNotFound(GatewayError):
    status = 404
    kind = "invalid_request_error"
    code = "model_not_found"


class RateLimited(GatewayError):
    status = 429
    kind = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(RateLimited):
    code = "budget_exceeded"


class BreakerOpen(RateLimited):
    code = "circuit_breaker_open"


class ProviderError(GatewayError):
    status = 502
    kind = "upstream_error"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        upstream_status: int | None = None,
        retry_after: float | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.provider = provider
        self.upstream_status = upstream_status
        self.retry_after = retry_after


class UpstreamBadRequest(ProviderError):
    status = 400
    kind = "invalid_request_error"
    retryable = False


class UpstreamAuthFailed(ProviderError):
    kind = "upstream_auth_error"
    retryable = False


class UpstreamRateLimited(ProviderError):
    status = 429
    kind = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamUnavailable(ProviderError):
    pass


class UpstreamConnectionError(ProviderError):
    pass


class UpstreamMalformed(ProviderError):
    """The upstream answered in a form the gateway cannot read (a content-encoding it does not
    know). Asking the same upstream again gets the same answer, so it is not retried there;
    another model of a fallback chain may still do better."""


class UpstreamTimeout(ProviderError):
    status = 504
    kind = "timeout_error"
    code = "upstream_timeout"
