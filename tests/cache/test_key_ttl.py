"""A key's ``cache_ttl`` through the live gateway: 0 keeps that key out of the cache while its
tenant's other keys hit; a short TTL beats the per-model one; a request's TTL header beats both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from meterline.settings import CacheSettings
from meterline.sim import OpenAISim
from tests.accounting.conftest import MASTER, create_key
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

ASK = [{"role": "user", "content": "What is a cache key?"}]


@pytest.fixture
def live(bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim) -> Iterator[LiveGateway]:
    cache = CacheSettings(ttl_by_model={"gpt-4o-mini": 600}, dedupe_window=0.2)
    settings = make_settings(f"sqlite:///{tmp_path / 'k.db'}", openai_sim, cache=cache,
                             master_key=MASTER)  # fmt: skip
    gateway = start_gateway(bg, settings)
    yield gateway
    gateway.stop()


@pytest.fixture
def clients(live: LiveGateway) -> Iterator[dict[str, openai.OpenAI]]:
    """One SDK client per key of tenant acme: no override, ``cache_ttl`` 0 and 0.5 s."""
    keys = {"plain": create_key(live), "never": create_key(live, cache_ttl=0),
            "short": create_key(live, cache_ttl=0.5)}  # fmt: skip
    made = {name: openai.OpenAI(base_url=f"{live.url}/v1", api_key=k["key"], max_retries=0)
            for name, k in keys.items()}  # fmt: skip
    yield made
    for client in made.values():
        client.close()


def _cache(client: openai.OpenAI, **headers: str) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,  # type: ignore[arg-type]
        extra_headers=headers,
    )
    return raw.headers["x-meterline-cache"]


def test_a_zero_ttl_key_never_hits_while_its_tenant_does(
    clients: dict[str, openai.OpenAI], openai_sim: OpenAISim
) -> None:
    assert [_cache(clients["plain"]), _cache(clients["plain"])] == ["miss", "hit"]
    # The same tenant's entry is there, but the zero-TTL key neither reads nor writes it.
    assert [_cache(clients["never"]), _cache(clients["never"])] == ["skip", "skip"]
    assert len(openai_sim.received) == 3
    # A TTL header on the request wins over the key.
    assert _cache(clients["never"], **{"x-meterline-cache-ttl": "60"}) == "hit"
    assert len(openai_sim.received) == 3


def test_a_short_ttl_key_expires_where_the_per_model_ttl_would_not(
    clients: dict[str, openai.OpenAI], openai_sim: OpenAISim
) -> None:
    assert [_cache(clients["short"]), _cache(clients["short"])] == ["miss", "hit"]
    time.sleep(0.8)  # past the key's 0.5 s and the 0.2 s de-duplication window
    assert _cache(clients["short"]) == "miss"
    assert len(openai_sim.received) == 2
    # Stored by a key without an override, the answer lives the per-model 600 s.
    other = [{"role": "user", "content": "And a cache line?"}]
    for _ in range(2):
        clients["plain"].chat.completions.create(model="gpt-4o-mini", messages=other)  # type: ignore[arg-type]
        time.sleep(0.8)
    assert len(openai_sim.received) == 3
