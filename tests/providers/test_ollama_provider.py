"""The Ollama provider, driven through a live gateway with the official ``openai`` SDK against the
simulated Ollama server over real sockets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from meterline.catalog import Catalog
from meterline.providers import ProviderDeps
from meterline.providers.ollama import OllamaProvider
from meterline.providers.upstream import UpstreamPool
from meterline.settings import (
    ModelEntry,
    ProviderSettings,
    RetrySettings,
)
from meterline.sim import Fault, SimSettings
from meterline.sim.ollama import OLLAMA_MODELS, OllamaSim
from tests.fakes.harness import (
    BackgroundLoop,
    LiveGateway,
    free_port,
    provider_settings,
    start_gateway,
)

SYSTEM: Any = {"role": "system", "content": "You are terse."}
USER: Any = {"role": "user", "content": "What is a gateway?"}
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the docs",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
MODEL = "ollama:llama3.2"  # not in the catalog: addressed through its provider


@pytest.fixture(scope="module")
def sim(bg: BackgroundLoop) -> Iterator[OllamaSim]:
    sim = OllamaSim()
    bg.run(sim.start())
    yield sim
    bg.run(sim.stop())


def _start(bg: BackgroundLoop, tmp_path: Path, sim: OllamaSim) -> LiveGateway:
    provider = ProviderSettings(
        name="ollama", type="ollama", base_url=sim.base_url, models=(ModelEntry("qwen2.5:7b"),)
    )
    return start_gateway(bg, provider_settings(tmp_path, provider))


@pytest.fixture
def live(bg: BackgroundLoop, tmp_path: Path, sim: OllamaSim) -> Iterator[LiveGateway]:
    sim.faults.clear()
    sim.received.clear()
    sim.received_headers.clear()
    gateway = _start(bg, tmp_path, sim)
    yield gateway
    gateway.stop()


@pytest.fixture
def client(live: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="client-key", max_retries=0) as client:
        yield client


def test_text_answer_with_system_prompt_and_history(client: openai.OpenAI, sim: OllamaSim) -> None:
    history: Any = [SYSTEM, {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello."}, USER]  # fmt: skip
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=history, max_tokens=300, temperature=0.3, seed=1
    )
    completion = raw.parse()
    assert raw.headers["x-meterline-provider"] == "ollama"
    assert completion.choices[0].message.content.startswith("Re: What is a gateway?")  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "llama3.2"
    sent = sim.received[-1]
    assert sent["model"] == "llama3.2" and sent["stream"] is False
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "You are terse."), ("user", "Hi"), ("assistant", "Hello."),
        ("user", "What is a gateway?"),
    ]  # fmt: skip
    assert sent["options"] == {"num_predict": 300, "temperature": 0.3, "seed": 1}


def test_streaming_matches_non_streaming(client: openai.OpenAI, sim: OllamaSim) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=[USER])
    completed = sim.completed_streams
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[USER], stream=True, stream_options={"include_usage": True}
        )
    )
    assert sim.received[-1]["stream"] is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usages = [c.usage for c in chunks if c.usage is not None]
    assert len(usages) == 1 and whole.usage is not None
    assert (usages[0].prompt_tokens, usages[0].completion_tokens) == (
        whole.usage.prompt_tokens, whole.usage.completion_tokens
    )  # fmt: skip
    assert sim.completed_streams == completed + 1


def test_tool_call_and_tool_result_round_trip(client: openai.OpenAI, sim: OllamaSim) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=[USER], tools=TOOLS)
    assert completion.choices[0].finish_reason == "tool_calls"
    call: Any = (completion.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "search_docs"
    assert json.loads(call.function.arguments) == {"query": "What is a gateway?", "limit": 3}
    assert sim.received[-1]["tools"] == TOOLS

    follow_up: Any = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Gateways route requests."},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=follow_up, tools=TOOLS)
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content
    sent = sim.received[-1]["messages"]
    assert sent[1]["tool_calls"] == [
        {"function": {"name": "search_docs", "arguments": json.loads(call.function.arguments)}}
    ]
    assert sent[2] == {
        "role": "tool", "content": "Gateways route requests.", "tool_name": "search_docs"
    }  # fmt: skip


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model=MODEL, messages=[USER], tools=TOOLS, stream=True)
    chunks = list(stream)
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert [d.function.name for d in deltas] == ["search_docs"]  # type: ignore[union-attr]
    assert json.loads(deltas[0].function.arguments)["limit"] == 3  # type: ignore[union-attr,arg-type]
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["tool_calls"]


def test_inline_image_and_json_mode(client: openai.OpenAI, sim: OllamaSim) -> None:
    image = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="  # noqa: E501
    completion = client.chat.completions.create(
        model="ollama:llava",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Describe this"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
        ]}],
        response_format={"type": "json_object"},
    )  # fmt: skip
    assert json.loads(completion.choices[0].message.content or "") == {
        "answer": "Describe this", "confidence": 0.9
    }  # fmt: skip
    sent = sim.received[-1]
    assert sent["messages"] == [{"role": "user", "content": "Describe this", "images": [image]}]
    assert sent["format"] == "json"


def test_log_rows_have_ollamas_token_counts_and_cost_nothing(
    client: openai.OpenAI, live: LiveGateway
) -> None:
    plain = client.chat.completions.create(model="qwen2.5:7b", messages=[USER])
    list(client.chat.completions.create(model=MODEL, messages=[USER], stream=True))
    rows = live.rows()
    assert [(r["provider"], r["model"], r["stream"]) for r in rows] == [
        ("ollama", "qwen2.5:7b", False), ("ollama", "llama3.2", True)
    ]  # fmt: skip
    assert plain.usage is not None
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (
        plain.usage.prompt_tokens, plain.usage.completion_tokens
    )  # fmt: skip
    for row in rows:
        assert row["status"] == "ok" and row["usage_estimated"] is False
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert Decimal(row["cost_usd"]) == 0


def test_rate_limit_keeps_retry_after(client: openai.OpenAI, sim: OllamaSim) -> None:
    sim.fail_next(Fault("http", 429, retry_after=30))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=[USER])
    assert info.value.response.headers["retry-after"] == "30"
    assert len(sim.received) == 1


def test_transient_failures_are_retried(client: openai.OpenAI, sim: OllamaSim) -> None:
    sim.fail_next(Fault("http", 503), Fault("http", 500))
    completion = client.chat.completions.create(model=MODEL, messages=[USER], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in completion if c.choices)
    assert len(sim.received) == 3


def test_5xx_after_retries_is_502_with_ollamas_message(
    client: openai.OpenAI, sim: OllamaSim
) -> None:
    sim.fail_next(*[Fault("http", 500)] * 3)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=MODEL, messages=[USER])
    assert info.value.status_code == 502
    assert "llama runner process has terminated" in info.value.message
    assert len(sim.received) == 3


def test_model_not_pulled_is_404(client: openai.OpenAI, sim: OllamaSim) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="ollama:mistral", messages=[USER])
    assert "model 'mistral' not found" in info.value.message
    assert len(sim.received) == 1


def test_abandoned_stream_stops_generation(bg: BackgroundLoop, tmp_path: Path) -> None:
    slow = OllamaSim(SimSettings(models=OLLAMA_MODELS, per_token=0.05))
    bg.run(slow.start())
    live = _start(bg, tmp_path, slow)
    try:
        body = {"model": MODEL, "messages": [USER], "stream": True}
        with httpx.stream("POST", f"{live.url}/v1/chat/completions", json=body, timeout=10) as r:
            next(r.iter_raw())
        deadline = time.monotonic() + 5
        while slow.cancelled_streams == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.cancelled_streams == 1 and slow.completed_streams == 0
        assert live.rows()[-1]["status"] == "cancelled"
    finally:
        live.stop()
        bg.run(slow.stop())


def test_models_lists_configured_and_pulled_models_asking_once(
    client: openai.OpenAI, sim: OllamaSim
) -> None:
    before = sim.tags_requests
    first = [(m.id, m.owned_by) for m in client.models.list() if m.owned_by != "meterline"]
    second = [(m.id, m.owned_by) for m in client.models.list() if m.owned_by != "meterline"]
    # qwen2.5:7b is both configured and pulled: listed once, in configuration order.
    expected = ["qwen2.5:7b", "llama3.2:latest", "llava:latest"]
    assert first == second == [(name, "ollama") for name in expected]
    assert sim.tags_requests == before + 1


def test_unreachable_server_lists_only_configured_models(bg: BackgroundLoop) -> None:
    async def listing() -> tuple[list[str], list[str]]:
        provider = OllamaProvider(
            ProviderSettings(name="ollama", type="ollama",
                             base_url=f"http://127.0.0.1:{free_port()}",
                             models=(ModelEntry("llama3.2"),), retry=RetrySettings(1)),
            ProviderDeps(UpstreamPool(), Catalog.builtin()),
        )  # fmt: skip
        return await provider.list_models(), await provider.list_models()

    assert bg.run(listing()) == (["llama3.2"], ["llama3.2"])


def test_sim_streams_ndjson_by_default(sim: OllamaSim) -> None:
    body = {"model": "llama3.2", "messages": [USER]}
    resp = httpx.post(f"{sim.base_url}/api/chat", json=body, timeout=10)
    assert resp.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    final = lines[-1]
    assert final["model"] == "llama3.2:latest" and final["done_reason"] == "stop"
    assert final["prompt_eval_count"] > 0 and final["eval_count"] > 0
    assert final["total_duration"] > final["eval_duration"] > 0
