"""Per-key overrides of the response cache and prompt compression.

A key carries them in :class:`KeyOptions`; ``None`` everywhere means "use the gateway's
setting". They are stored as one small JSON object in ``api_keys.options`` (``NULL`` when the
key overrides nothing) and built once when the key is loaded, so the cache and compress stages
only read attributes on the hot path.

Precedence, highest first:

* cache TTL: ``x-meterline-cache-ttl`` header > ``cache_ttl`` of the key >
  ``cache.ttl_by_model`` > ``cache.ttl``. A key's ``cache_ttl: 0`` means its requests neither
  read nor write the cache (as ``x-meterline-skip-cache: true`` would).
* compression: ``x-meterline-compress: off`` > the key's switches > ``compression:`` config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["COMPRESSION_SWITCHES", "CompressionOverride", "KeyOptions"]

COMPRESSION_SWITCHES = ("enabled", "normalize", "dedup", "symbols", "code", "trim")


@dataclass(frozen=True, slots=True)
class CompressionOverride:
    """A key's compression switches (``enabled`` is the whole stage); ``None`` inherits."""

    enabled: bool | None = None
    normalize: bool | None = None
    dedup: bool | None = None
    symbols: bool | None = None
    code: bool | None = None
    trim: bool | None = None
    #: One number per distinct set of switches (base 3: unset, off, on), computed once so the
    #: compress stage finds its merged config for this override without hashing six fields.
    ident: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ident = 0
        for name in COMPRESSION_SWITCHES:
            value = getattr(self, name)
            ident = ident * 3 + (0 if value is None else 1 + int(value))
        object.__setattr__(self, "ident", ident)

    def changes(self) -> dict[str, bool]:
        """The switches this override sets, by name."""
        found = ((name, getattr(self, name)) for name in COMPRESSION_SWITCHES)
        return {name: value for name, value in found if value is not None}


@dataclass(frozen=True, slots=True)
class KeyOptions:
    """Everything a key may set beyond who it is and what it may spend."""

    cache_ttl: float | None = None
    compression: CompressionOverride | None = None

    def to_json(self) -> dict[str, Any] | None:
        """The stored form: only what is set, or ``None`` when nothing is."""
        stored: dict[str, Any] = {}
        if self.cache_ttl is not None:
            stored["cache_ttl"] = self.cache_ttl
        if self.compression is not None and self.compression.changes():
            stored["compression"] = self.compression.changes()
        return stored or None

    @classmethod
    def from_json(cls, stored: dict[str, Any] | None) -> KeyOptions:
        """Read the stored form back (written by :meth:`to_json`, so trusted)."""
        if not stored:
            return cls()
        switches = stored.get("compression") or {}
        compression = CompressionOverride(**{
            name: bool(value) for name, value in switches.items() if name in COMPRESSION_SWITCHES
        })  # fmt: skip
        ttl = stored.get("cache_ttl")
        return cls(
            cache_ttl=float(ttl) if ttl is not None else None,
            compression=compression if compression.changes() else None,
        )
