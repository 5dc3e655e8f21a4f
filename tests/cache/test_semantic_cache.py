"""The semantic cache through the live gateway with the real embedding model: a paraphrase hits,
a different question misses, tenants and conversations never mix, sampling is skipped, errors
are never stored, and streamed hits replay in each SDK's own format."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from meterline.settings import AccountingSettings, CacheSettings, SemanticCacheSettings
from meterline.sim import Fault, OpenAISim
from tests.accounting.conftest import MASTER, REDIS_URL, _drop_prefix
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

MODEL = "gpt-4o-mini"
ASKED = "How do I reverse a list in Python?"
PARAPHRASE = "How can I reverse a Python list?"  # similarity 0.99 with ASKED
DIFFERENT = "How do I sort a list in Python?"  # similarity 0.91: a different question


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(params=["memory", "redis"])
def semantic(
    request: pytest.FixtureRequest, bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> Iterator[LiveGateway]:
    prefix = f"mlsem:{secrets.token_hex(4)}:"
    settings = make_settings(
        f"sqlite:///{tmp_path / 's.db'}", openai_sim, master_key=MASTER,
        accounting=AccountingSettings(redis_url=REDIS_URL, redis_prefix=prefix),
        cache=CacheSettings(backend=request.param, dedupe_window=0.0,
                            semantic=SemanticCacheSettings(enabled=True)),
    )  # fmt: skip
    live = start_gateway(bg, settings)
    yield live
    live.stop()
    asyncio.run(_drop_prefix(prefix))


def _key(live: LiveGateway, tenant: str) -> str:
    resp = httpx.post(f"{live.url}/api/keys", json={"name": "k", "tenant": tenant},
                      headers={"authorization": f"Bearer {MASTER}"})  # fmt: skip
    return str(resp.json()["key"])


@pytest.fixture
def client(semantic: LiveGateway) -> Iterator[openai.OpenAI]:
    key = _key(semantic, "acme")
    with openai.OpenAI(base_url=f"{semantic.url}/v1", api_key=key, max_retries=0) as c:
        yield c


def _ask(client: openai.OpenAI, messages: list[dict[str, Any]], **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        **extra,
    )


def test_a_paraphrase_is_a_free_semantic_hit_and_a_different_question_misses(
    client: openai.OpenAI, semantic: LiveGateway, openai_sim: OpenAISim
) -> None:
    first = _ask(client, _user(ASKED))
    para = _ask(client, _user(PARAPHRASE))
    other = _ask(client, _user(DIFFERENT))
    exact = _ask(client, _user(ASKED))
    assert [r.headers["x-meterline-cache"] for r in (first, para, other, exact)] == [
        "miss", "hit", "miss", "hit",
    ]  # fmt: skip
    assert "x-meterline-cache-match" not in exact.headers
    match = para.headers["x-meterline-cache-match"]
    assert match.startswith("semantic; similarity=") and float(match.split("=")[1]) >= 0.96
    assert "x-meterline-cache-match" not in other.headers
    assert para.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(openai_sim.received) == 2  # the paraphrase never went upstream
    assert para.headers["x-meterline-cost-usd"] == "0"
    rows = semantic.rows(MASTER)
    assert [(r["cache_hit"], r["cache_match"], r["cost_usd"] == "0") for r in rows] == [
        (False, None, False), (True, "semantic", True), (False, None, False), (True, "exact", True),
    ]  # fmt: skip
    assert rows[1]["cache_similarity"] == pytest.approx(float(match.split("=")[1]), abs=1e-3)


def test_another_tenant_never_gets_the_answer(
    client: openai.OpenAI, semantic: LiveGateway, openai_sim: OpenAISim
) -> None:
    _ask(client, _user(ASKED))
    with openai.OpenAI(
        base_url=f"{semantic.url}/v1", api_key=_key(semantic, "globex"), max_retries=0
    ) as other:
        seen = [_ask(other, _user(q)).headers["x-meterline-cache"] for q in (PARAPHRASE, ASKED)]
    # globex's first question goes upstream although acme asked the same; its second is
    # answered from globex's own entry
    assert seen == ["miss", "hit"]
    assert len(openai_sim.received) == 2


def test_only_the_same_conversation_context_can_match(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    def turn(earlier: str, question: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": earlier},
                {"role": "assistant", "content": "Noted."},
                {"role": "user", "content": question}]  # fmt: skip

    _ask(client, turn("I work with Python 3.12.", ASKED))
    elsewhere = _ask(client, turn("I work with Rust.", PARAPHRASE))
    with_system = _ask(client, [{"role": "system", "content": "Answer in French."},
                                *_user(PARAPHRASE)])  # fmt: skip
    same_context = _ask(client, turn("I work with Python 3.12.", PARAPHRASE))
    assert [r.headers["x-meterline-cache"] for r in (elsewhere, with_system, same_context)] == [
        "miss", "miss", "hit",
    ]  # fmt: skip
    assert len(openai_sim.received) == 3


def test_sampled_requests_are_skipped(client: openai.OpenAI, openai_sim: OpenAISim) -> None:
    _ask(client, _user(ASKED))
    hot = _ask(client, _user(PARAPHRASE), temperature=0.7)
    assert (
        hot.headers["x-meterline-cache"] == "miss" and "x-meterline-cache-match" not in hot.headers
    )
    _ask(client, _user("What does HTTP stand for?"), temperature=0.7)
    again = _ask(client, _user("What is HTTP short for?"))  # the sampled answer was not stored
    assert again.headers["x-meterline-cache"] == "miss"
    assert len(openai_sim.received) == 4


def test_errors_are_never_stored(client: openai.OpenAI, openai_sim: OpenAISim) -> None:
    openai_sim.fail_next(*[Fault("http", 500)] * 3)
    with pytest.raises(openai.APIStatusError):
        _ask(client, _user(ASKED))
    assert _ask(client, _user(PARAPHRASE)).headers["x-meterline-cache"] == "miss"


def test_skip_header_skips_the_semantic_cache_too(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    _ask(client, _user(ASKED))
    skipped = _ask(client, _user(PARAPHRASE), extra_headers={"x-meterline-skip-cache": "true"})
    assert skipped.headers["x-meterline-cache"] == "skip" and len(openai_sim.received) == 2


def test_streamed_hits_replay_in_each_clients_format(
    client: openai.OpenAI, semantic: LiveGateway, openai_sim: OpenAISim
) -> None:
    whole = _ask(client, _user(ASKED)).parse()
    raw = _ask(client, _user(PARAPHRASE), stream=True, stream_options={"include_usage": True})
    assert raw.headers["x-meterline-cache"] == "hit"
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    key = _key(semantic, "acme")
    with anthropic.Anthropic(base_url=semantic.url, api_key=key, max_retries=0) as an:
        kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 300}
        first = an.messages.create(messages=_user("What is the capital of France?"), **kwargs)
        with an.messages.stream(
            messages=_user("What's the capital city of France?"), **kwargs
        ) as stream:
            assert "".join(stream.text_stream) == first.content[0].text  # type: ignore[union-attr]
            final = stream.get_final_message()
    assert final.stop_reason == first.stop_reason
    assert len(openai_sim.received) == 2  # one per distinct question
