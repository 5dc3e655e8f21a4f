"""Upstream error answers → the gateway's error hierarchy, the part every wire format shares.

Each format's ``decode_error`` reads its own body (message, code, parameter); the mapping from
the HTTP status is the same everywhere: 429 keeps its ``retry-after``, 401/403 mean the gateway's
own credentials were refused, 408/504 are timeouts, other 4xx are the request's fault (404 kept),
anything else is the upstream being unavailable.
"""

from __future__ import annotations

from meterline.errors import (
    ProviderError,
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["error_for_status", "retry_after"]


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (lower-cased header names)."""
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                return None
            return seconds / 1000 if name == "retry-after-ms" else seconds
    return None


def error_for_status(
    status: int,
    message: str,
    headers: dict[str, str],
    provider: str,
    *,
    code: str | None = None,
    param: str | None = None,
) -> ProviderError:
    """The error for an upstream answer with ``status``, keeping the upstream's message."""
    text = f"{provider}: {message}"
    if status == 429:
        after = retry_after(headers)
        limited = UpstreamRateLimited(
            text, retry_after=after, code=code, provider=provider, upstream_status=status
        )
        if after is not None:
            limited.headers["retry-after"] = str(max(1, round(after)))
        return limited
    if status in (401, 403):
        denied = f"{provider} rejected the gateway's credentials: {message}"
        return UpstreamAuthFailed(denied, provider=provider, upstream_status=status)
    if status in (408, 504):
        return UpstreamTimeout(text, provider=provider, upstream_status=status)
    if 400 <= status < 500:
        bad = UpstreamBadRequest(
            text, param=param, code=code, provider=provider, upstream_status=status
        )
        bad.status = 404 if status == 404 else 400
        return bad
    return UpstreamUnavailable(text, code=code, provider=provider, upstream_status=status)
