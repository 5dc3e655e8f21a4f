"""Authentication: virtual API keys and the master key."""

from meterline.auth.keys import ApiKey, KeyRing, KeySpec, hash_key
from meterline.auth.options import COMPRESSION_SWITCHES, CompressionOverride, KeyOptions

__all__ = [
    "COMPRESSION_SWITCHES",
    "ApiKey",
    "CompressionOverride",
    "KeyOptions",
    "KeyRing",
    "KeySpec",
    "hash_key",
]
