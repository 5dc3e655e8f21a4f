"""Requests and tokens per minute, per key and per team, answered like OpenAI's own limits."""

from __future__ import annotations

import time

import anthropic
import openai
import pytest

from meterline.settings import RateLimit
from tests.accounting.conftest import Accounted, Clients, create_key

ASK = [{"role": "user", "content": "hello"}]


@pytest.fixture(autouse=True)
def _fresh_minute() -> None:
    """Limits use one-minute windows: start well inside one, so a test never straddles two."""
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.05)


def test_requests_per_minute_per_key(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start()
    key = create_key(live, rpm=3)["key"]
    client = clients.openai(live, key)
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    headers = info.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert (
        info.value.code == "rate_limit_exceeded" and "3 requests per minute" in info.value.message
    )
    with pytest.raises(anthropic.RateLimitError) as an_info:
        clients.anthropic(live, key).messages.create(
            model="gpt-4o-mini", max_tokens=5, messages=ASK
        )  # type: ignore[arg-type]
    assert an_info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_default_limit_applies_to_keys_without_one(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start(default_key_rpm=2)
    client = clients.openai(live, create_key(live)["key"])
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]


def test_tokens_per_minute_per_key(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start()
    client = clients.openai(live, create_key(live, tpm=30)["key"])
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert first.headers["x-ratelimit-limit-tokens"] == "30"
    assert first.parse().usage.total_tokens > 30  # type: ignore[union-attr]
    time.sleep(0.2)  # token counts are added just after the answer
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert "tokens per minute" in info.value.message


def test_team_limit_is_shared_by_its_keys(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start(teams={"search": RateLimit(rpm=2)})
    a = clients.openai(live, create_key(live, team="search")["key"])
    b = clients.openai(live, create_key(live, team="search")["key"])
    other = clients.openai(live, create_key(live, team="ads")["key"])
    a.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    b.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as info:
        a.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert "team 'search'" in info.value.message
    assert other.chat.completions.create(model="gpt-4o-mini", messages=ASK).choices  # type: ignore[arg-type]
