"""Credentials in a prompt: patterns precise enough to act on (each has a fixed prefix or a
marker that ordinary text and code do not contain), so that redacting them loses nothing else.

Each pattern starts with a literal string, so the regular expression engine skips ahead with a
fast substring search instead of trying every pattern at every position: ~0.4 ms for 100 kB of
code against ~16 ms for one alternation of them all. A short text (most prompts) is settled by
a substring test for each of the anchors they hold (~1 µs).
"""

from __future__ import annotations

import re

__all__ = ["SECRET_KINDS", "find_secrets", "redact"]

_PATTERNS: tuple[tuple[str, str], ...] = (
    ("aws_access_key_id", r"AKIA[0-9A-Z]{16}(?![0-9A-Za-z])"),
    ("aws_access_key_id", r"ASIA[0-9A-Z]{16}(?![0-9A-Za-z])"),
    ("github_token", r"gh[pousr]_[A-Za-z0-9]{36,255}"),
    ("github_token", r"github_pat_[A-Za-z0-9_]{22,255}"),
    # OpenAI keys carry base64("OpenAI") in the middle: sk-…T3BlbkFJ…
    ("openai_api_key", r"sk-[A-Za-z0-9_-]{0,160}T3BlbkFJ[A-Za-z0-9_-]{20,}"),
    ("anthropic_api_key", r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{80,}"),
    ("slack_token", r"xox[abposr]-[0-9A-Za-z-]{10,}"),
    ("google_api_key", r"AIza[0-9A-Za-z_-]{35}"),
    ("stripe_secret_key", r"sk_live_[0-9A-Za-z]{24,}"),
    ("stripe_secret_key", r"rk_live_[0-9A-Za-z]{24,}"),
    ("private_key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]{0,16384}?"
                    r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?"),
)  # fmt: skip
_COMPILED = tuple((kind, re.compile(pattern)) for kind, pattern in _PATTERNS)
# Something every pattern above holds: a short text with none of these needs no pattern tried
# (a substring test each, cheaper than one search for their alternation, which has no literal
# prefix to skip ahead with).
_ANCHORS = ("AKIA", "ASIA", "hp_", "ho_", "hu_", "hs_", "hr_", "github_pat_", "T3BlbkFJ",
            "sk-ant-", "xox", "AIza", "k_live_", "PRIVATE KEY")  # fmt: skip
SECRET_KINDS = tuple(dict.fromkeys(kind for kind, _ in _PATTERNS))

Found = tuple[str, int, int]  # kind, start, end


def find_secrets(text: str) -> list[Found]:
    """Every credential in ``text``, in order of position (overlaps dropped)."""
    if len(text) < 4096 and not any(anchor in text for anchor in _ANCHORS):
        return []
    found = sorted(
        (m.start(), m.end(), kind) for kind, pattern in _COMPILED for m in pattern.finditer(text)
    )
    kept: list[Found] = []
    end = -1
    for start, stop, kind in found:
        if start >= end:
            kept.append((kind, start, stop))
            end = stop
    return kept


def redact(text: str, found: list[Found]) -> str:
    """``text`` with each of ``found`` replaced by ``[redacted <kind>]``."""
    pieces, at = [], 0
    for kind, start, end in found:
        pieces += [text[at:start], f"[redacted {kind}]"]
        at = end
    pieces.append(text[at:])
    return "".join(pieces)
