"""The ``cache_ttl`` and ``compression`` fields of ``/api/keys``: validated here, at the edge.

Accepted forms::

    "cache_ttl": 30                 # seconds; 0: this key never reads or writes the cache
    "compression": "off"            # or "on", true, false: the whole stage for this key
    "compression": {"dedup": "off", "trim": false}   # per stage; "enabled" switches them all

Keys answer with the normalised form: ``cache_ttl`` as a number or ``null``, ``compression``
as an object of booleans or ``null``.
"""

from __future__ import annotations

import math
from typing import Any

from meterline.auth import COMPRESSION_SWITCHES, CompressionOverride, KeyOptions
from meterline.errors import InvalidRequest

__all__ = ["options_json", "parse_key_options"]


def _switch(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("on", "off"):
        return value.lower() == "on"
    raise InvalidRequest(f"'{param}' must be on or off (or true / false)", param=param)


def _cache_ttl(value: Any) -> float | None:
    if value is None:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        message = "'cache_ttl' must be a number of seconds, 0 or more (0: never cache)"
        raise InvalidRequest(message, param="cache_ttl")
    return float(value)


def _compression(value: Any) -> CompressionOverride | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return CompressionOverride(enabled=_switch(value, "compression"))
    unknown = sorted(set(value) - set(COMPRESSION_SWITCHES))
    if unknown:
        names = ", ".join(COMPRESSION_SWITCHES)
        message = f"unknown compression stage '{unknown[0]}' (known: {names})"
        raise InvalidRequest(message, param=f"compression.{unknown[0]}")
    switches = {
        name: _switch(raw, f"compression.{name}") for name, raw in value.items() if raw is not None
    }
    return CompressionOverride(**switches) if switches else None


def parse_key_options(body: dict[str, Any]) -> KeyOptions:
    """The overrides a ``POST /api/keys`` body sets (raises :class:`InvalidRequest`)."""
    return KeyOptions(_cache_ttl(body.get("cache_ttl")), _compression(body.get("compression")))


def options_json(options: KeyOptions) -> dict[str, Any]:
    """The ``cache_ttl`` and ``compression`` fields of a key's JSON."""
    stored = options.to_json() or {}
    return {"cache_ttl": stored.get("cache_ttl"), "compression": stored.get("compression")}
