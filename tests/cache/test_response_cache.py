"""The response cache through the live gateway: hits, streaming replays, skip and TTL headers,
the de-duplication window, shared in-flight calls, errors never stored, tenants never mixed."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from meterline.settings import AccountingSettings, CacheSettings
from meterline.sim import Fault, OpenAISim, SimSettings
from tests.accounting.conftest import MASTER, REDIS_URL, _drop_prefix
from tests.conftest import UPSTREAM_KEY, make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

ASK = [{"role": "user", "content": "What is a cache?"}]


@pytest.fixture(params=["memory", "redis"])
def cached(
    request: pytest.FixtureRequest, bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> Iterator[LiveGateway]:
    prefix = f"mlcache:{secrets.token_hex(4)}:"
    accounting = AccountingSettings(redis_url=REDIS_URL, redis_prefix=prefix)
    settings = make_settings(
        f"sqlite:///{tmp_path / 'c.db'}", openai_sim, accounting=accounting,
        cache=CacheSettings(backend=request.param, dedupe_window=0.5),
    )  # fmt: skip
    live = start_gateway(bg, settings)
    yield live
    live.stop()
    asyncio.run(_drop_prefix(prefix))


@pytest.fixture
def client(cached: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{cached.url}/v1", api_key="k", max_retries=0) as c:
        yield c


def test_identical_request_is_a_free_hit(
    client: openai.OpenAI, cached: LiveGateway, openai_sim: OpenAISim
) -> None:
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert (first.headers["x-meterline-cache"], second.headers["x-meterline-cache"]) == (
        "miss",
        "hit",
    )
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(openai_sim.received) == 1
    assert second.headers["x-meterline-cost-usd"] == "0"
    rows = cached.rows()
    assert [(r["cache_hit"], r["cost_usd"] == "0") for r in rows] == [(False, False), (True, True)]


def test_streaming_hits_replay_in_each_clients_format(
    client: openai.OpenAI, cached: LiveGateway, openai_sim: OpenAISim
) -> None:
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    assert raw.headers["x-meterline-cache"] == "hit"
    chunks = list(raw.parse())
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == whole.choices[0].message.content
    )
    assert (
        chunks[-1].usage is not None
        and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    )  # type: ignore[union-attr]
    with anthropic.Anthropic(base_url=cached.url, api_key="k", max_retries=0) as an:
        first = an.messages.create(model="gpt-4o-mini", max_tokens=300, messages=ASK)  # type: ignore[arg-type]
        with an.messages.stream(model="gpt-4o-mini", max_tokens=300, messages=ASK) as stream:  # type: ignore[arg-type]
            assert "".join(stream.text_stream) == first.content[0].text  # type: ignore[union-attr]
    assert len(openai_sim.received) == 2  # one per distinct request (max_tokens differs)


def test_skip_and_ttl_headers(client: openai.OpenAI, openai_sim: OpenAISim) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    skipped = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,
        extra_headers={"x-meterline-skip-cache": "true"},  # type: ignore[arg-type]
    )
    assert skipped.headers["x-meterline-cache"] == "skip" and len(openai_sim.received) == 2
    other = [{"role": "user", "content": "TTL zero"}]
    for _ in range(2):
        client.chat.completions.create(model="gpt-4o-mini", messages=other,  # type: ignore[arg-type]
                                       extra_headers={"x-meterline-cache-ttl": "0"})  # fmt: skip
        time.sleep(0.6)  # past the de-duplication window
    assert len(openai_sim.received) == 4


def test_sampled_requests_are_only_deduplicated(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    hot = {"model": "gpt-4o-mini", "messages": ASK, "temperature": 0.8}
    first = client.chat.completions.with_raw_response.create(**hot)  # type: ignore[arg-type]
    again = client.chat.completions.with_raw_response.create(**hot)  # type: ignore[arg-type]
    assert (first.headers["x-meterline-cache"], again.headers["x-meterline-cache"]) == (
        "miss",
        "hit",
    )
    time.sleep(0.6)
    later = client.chat.completions.with_raw_response.create(**hot)  # type: ignore[arg-type]
    assert later.headers["x-meterline-cache"] == "miss" and len(openai_sim.received) == 2


def test_errors_are_never_cached(client: openai.OpenAI, openai_sim: OpenAISim) -> None:
    openai_sim.fail_next(*[Fault("http", 500)] * 3)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    answer = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert (
        answer.headers["x-meterline-cache"] == "miss" and answer.parse().choices[0].message.content
    )


def test_concurrent_identical_requests_share_one_upstream_call(
    bg: BackgroundLoop, tmp_path: Path
) -> None:
    slow = OpenAISim(SimSettings(api_key=UPSTREAM_KEY, ttft=0.3))
    bg.run(slow.start())
    live = start_gateway(
        bg, make_settings(f"sqlite:///{tmp_path / 's.db'}", slow, cache=CacheSettings())
    )

    async def burst() -> list[str]:
        async with openai.AsyncOpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as c:
            calls = [c.chat.completions.create(model="gpt-4o-mini", messages=ASK) for _ in range(5)]  # type: ignore[arg-type]
            return [r.choices[0].message.content or "" for r in await asyncio.gather(*calls)]

    try:
        answers = asyncio.run(burst())
        assert len(set(answers)) == 1 and len(slow.received) == 1
    finally:
        live.stop()
        bg.run(slow.stop())


def test_tenants_never_share_entries(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 't.db'}", openai_sim, cache=CacheSettings(),
                             master_key=MASTER)  # fmt: skip
    live = start_gateway(bg, settings)
    try:
        keys = []
        for tenant in ("acme", "globex"):
            resp = httpx.post(f"{live.url}/api/keys", json={"name": "k", "tenant": tenant},
                              headers={"authorization": f"Bearer {MASTER}"})  # fmt: skip
            keys.append(resp.json()["key"])
        seen = []
        for key in (*keys, keys[1]):
            with openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0) as c:
                raw = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
                seen.append(raw.headers["x-meterline-cache"])
        assert seen == ["miss", "miss", "hit"]  # globex never receives acme's answer
        assert len(openai_sim.received) == 2
    finally:
        live.stop()
