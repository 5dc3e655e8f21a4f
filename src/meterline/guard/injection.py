"""Phrases that try to take over the model ("ignore all previous instructions", "you are now in
developer mode", "reveal your system prompt"), looked for in lower case. A heuristic: it flags
the common attacks verbatim and misses paraphrases, so the default is to flag, not to block.

Every pattern starts with a literal word, for the same reason as in ``guard.secrets``.
"""

from __future__ import annotations

import re

__all__ = ["find_injection"]

_EARLIER = r"\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|earlier|preceding)\s+(?:instructions|prompts|rules|directions)"  # noqa: E501
_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        r"ignore" + _EARLIER,
        r"disregard" + _EARLIER,
        r"forget" + _EARLIER,
        r"you\s+are\s+now\s+(?:in\s+)?(?:developer|dan|jailbreak|god)\s+mode",
        r"reveal\s+(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions)",
        r"repeat\s+(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions)",
    )
)


# A word every pattern above holds: most texts need no pattern tried at all.
_WORDS = ("ignore", "disregard", "forget", "mode", "reveal", "repeat")


def find_injection(text: str) -> str | None:
    """The first take-over phrase in ``text``, as found (lower case), or ``None``."""
    low = text.lower()
    if not any(word in low for word in _WORDS):
        return None
    for pattern in _PATTERNS:
        match = pattern.search(low)
        if match is not None:
            return " ".join(match.group().split())
    return None
