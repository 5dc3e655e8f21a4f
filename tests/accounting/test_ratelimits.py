"""Requests and tokens per minute, per key and per team, answered like OpenAI's own limits."""

from __future__ import annotations

import datetime as dt
import time

import anthropic
import openai
import pytest

from meterline.accounting.counters import MemoryCounters
from meterline.auth.keys import ApiKey, KeySpec
from meterline.errors import RateLimited
from meterline.pipeline.context import RequestContext
from meterline.pipeline.limits import RateLimitStage
from meterline.settings import AccountingSettings, RateLimit
from meterline.wire.openai_request import decode_request
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


async def test_a_key_reloaded_with_new_limits_is_held_to_them_at_once() -> None:
    """The stage remembers each caller's limits; a key object reloaded from the database (as
    the key ring does every few seconds) brings its new limits with it."""
    stage = RateLimitStage(MemoryCounters(), AccountingSettings())
    request = decode_request({"model": "gpt-4o-mini", "messages": ASK})
    now = dt.datetime.now(dt.UTC)

    def ctx(key: ApiKey) -> RequestContext:
        return RequestContext(request, "openai", principal=key.principal, key=key)

    before = ApiKey("key_1", "mk-1", KeySpec("k", "acme", rpm=2), now)
    for _ in range(2):
        await stage(ctx(before))
    with pytest.raises(RateLimited):
        await stage(ctx(before))
    after = ApiKey("key_1", "mk-1", KeySpec("k", "acme", rpm=5), now)  # same key, reloaded
    answered = ctx(after)
    await stage(answered)
    assert answered.response_headers["x-ratelimit-limit-requests"] == "5"
    assert answered.response_headers["x-ratelimit-remaining-requests"] == "2"
