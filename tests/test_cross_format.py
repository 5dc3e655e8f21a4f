"""Any client format reaches any provider: both official SDKs against every provider's fake
upstream, for text, streams, tools and tool results, over real sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from meterline.settings import (
    CacheSettings,
    FallbackSettings,
    LogSettings,
    ProviderSettings,
    Settings,
)
from meterline.sim import AnthropicSim, GeminiSim, OllamaSim, OpenAISim, SimSettings
from meterline.sim.anthropic import ANTHROPIC_MODELS
from meterline.sim.gemini import GEMINI_MODELS
from meterline.sim.ollama import OLLAMA_MODELS
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

MODELS = {
    "openai": "openai:gpt-4o-mini",
    "anthropic": "anthropic:claude-haiku-4-5",
    "gemini": "gemini:gemini-2.5-flash-lite",
    "ollama": f"ollama:{OLLAMA_MODELS[0]}",
}
ASK = "Which port does HTTPS use?"
TOOL_NAME = "lookup_port"
OPENAI_TOOLS = [{"type": "function", "function": {
    "name": TOOL_NAME, "description": "Look up a port",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]  # fmt: skip
ANTHROPIC_TOOLS = [{"name": TOOL_NAME, "description": "Look up a port",
                    "input_schema": OPENAI_TOOLS[0]["function"]["parameters"]}]  # type: ignore[index]  # fmt: skip


@pytest.fixture(scope="module")
def fleet(bg: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    sims = {
        "openai": OpenAISim(SimSettings(api_key="k-openai")),
        "anthropic": AnthropicSim(SimSettings(models=ANTHROPIC_MODELS, api_key="k-anthropic")),
        "gemini": GeminiSim(SimSettings(models=GEMINI_MODELS, api_key="k-gemini")),
        "ollama": OllamaSim(SimSettings(models=OLLAMA_MODELS)),
    }
    for sim in sims.values():
        bg.run(sim.start())
    providers = tuple(
        ProviderSettings(
            name=name,
            type=name,
            base_url=sim.base_url,
            api_key=None if name == "ollama" else f"k-{name}",
        )  # fmt: skip
        for name, sim in sims.items()
    )
    db = tmp_path_factory.mktemp("cross") / "gw.db"
    live = start_gateway(bg, Settings(cache=CacheSettings(enabled=False),
        fallback=FallbackSettings(enabled=False), database_url=f"sqlite:///{db}", providers=providers,
                                      log=LogSettings(flush_interval=0.05)))  # fmt: skip
    yield live
    live.stop()
    for sim in sims.values():
        bg.run(sim.stop())


@pytest.fixture(scope="module")
def oa(fleet: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{fleet.url}/v1", api_key="x", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def an(fleet: LiveGateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fleet.url, api_key="x", max_retries=0) as client:
        yield client


@pytest.mark.parametrize("provider", MODELS)
def test_openai_client_text_and_stream(oa: openai.OpenAI, provider: str) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ASK}]
    whole = oa.chat.completions.create(model=MODELS[provider], messages=messages)  # type: ignore[arg-type]
    text = whole.choices[0].message.content
    assert text and ASK[:20] in text
    assert whole.choices[0].finish_reason == "stop"
    assert (
        whole.usage is not None
        and whole.usage.prompt_tokens > 0
        and whole.usage.completion_tokens > 0
    )
    stream = oa.chat.completions.create(model=MODELS[provider], messages=messages, stream=True,  # type: ignore[arg-type]
                                        stream_options={"include_usage": True})  # fmt: skip
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["stop"]
    assert (
        chunks[-1].usage is not None
        and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    )


@pytest.mark.parametrize("provider", MODELS)
def test_openai_client_tools_and_results(oa: openai.OpenAI, provider: str) -> None:
    ask = [{"role": "user", "content": ASK}]
    first = oa.chat.completions.create(model=MODELS[provider], messages=ask, tools=OPENAI_TOOLS)  # type: ignore[arg-type]
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == TOOL_NAME and json.loads(call.function.arguments)["query"] == ASK
    streamed = oa.chat.completions.create(
        model=MODELS[provider], messages=ask, tools=OPENAI_TOOLS, stream=True
    )  # type: ignore[arg-type]
    pieces = [d.function.arguments or "" for c in streamed if c.choices
              for d in c.choices[0].delta.tool_calls or []]  # fmt: skip
    assert json.loads("".join(pieces)) == json.loads(call.function.arguments)
    follow = [*ask, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
              {"role": "tool", "tool_call_id": call.id, "content": "443"}]  # fmt: skip
    answer = oa.chat.completions.create(model=MODELS[provider], messages=follow, tools=OPENAI_TOOLS)  # type: ignore[arg-type]
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content


@pytest.mark.parametrize("provider", MODELS)
def test_anthropic_client_text_and_stream(an: anthropic.Anthropic, provider: str) -> None:
    ask = [{"role": "user", "content": ASK}]
    whole = an.messages.create(
        model=MODELS[provider], max_tokens=300, system="Be brief.", messages=ask
    )  # type: ignore[arg-type]
    assert whole.stop_reason == "end_turn" and whole.content[0].type == "text"
    assert ASK[:20] in whole.content[0].text
    assert whole.usage.input_tokens > 0 and whole.usage.output_tokens > 0
    with an.messages.stream(
        model=MODELS[provider], max_tokens=300, system="Be brief.", messages=ask
    ) as stream:  # type: ignore[arg-type]
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == whole.content[0].text
    assert (
        final.stop_reason == "end_turn" and final.usage.output_tokens == whole.usage.output_tokens
    )


@pytest.mark.parametrize("provider", MODELS)
def test_anthropic_client_tools_and_results(an: anthropic.Anthropic, provider: str) -> None:
    ask = [{"role": "user", "content": ASK}]
    first = an.messages.create(
        model=MODELS[provider], max_tokens=300, messages=ask, tools=ANTHROPIC_TOOLS
    )  # type: ignore[arg-type]
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == TOOL_NAME and use.input["query"] == ASK  # type: ignore[index]
    with an.messages.stream(
        model=MODELS[provider], max_tokens=300, messages=ask, tools=ANTHROPIC_TOOLS
    ) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    streamed = next(b for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use" and streamed.input == use.input
    follow = [*ask, {"role": "assistant", "content": [use.model_dump()]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "443"}]}]  # fmt: skip
    answer = an.messages.create(
        model=MODELS[provider], max_tokens=300, messages=follow, tools=ANTHROPIC_TOOLS
    )  # type: ignore[arg-type]
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"
