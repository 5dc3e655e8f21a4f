"""The offline tokenizer gives tiktoken's exact ids without any download."""

from __future__ import annotations

from meterline.tokens import count_messages, count_text, encoding_for
from meterline.types import ChatRequest, Message, TextPart


def test_known_token_ids() -> None:
    # Reference ids published for these encodings.
    assert encoding_for("gpt-4").encode("hello world") == [15339, 1917]
    assert encoding_for("gpt-4o").encode("hello world") == [24912, 2375]


def test_model_families_pick_their_encoding() -> None:
    assert encoding_for("gpt-4o-mini").name == "o200k_base"
    assert encoding_for("o3").name == "o200k_base"
    assert encoding_for("gpt-3.5-turbo").name == "cl100k_base"
    assert encoding_for("llama-3.1-8b").name == "cl100k_base"


def test_chat_framing_matches_openais_counting_rule() -> None:
    request = ChatRequest(
        "gpt-4o",
        (Message("system", (TextPart("Be brief."),)), Message("user", (TextPart("Hi there"),))),
    )
    text_tokens = sum(count_text(t, "gpt-4o") for t in ("system", "Be brief.", "user", "Hi there"))
    assert count_messages(request) == text_tokens + 2 * 3 + 3
