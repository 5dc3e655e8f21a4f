"""Authentication: virtual API keys and the master key."""

from meterline.auth.keys import ApiKey, KeyRing, KeySpec, hash_key

__all__ = ["ApiKey", "KeyRing", "KeySpec", "hash_key"]
