"""A client and an upstream of the same wire format: what the gateway does not model passes
through both ways (``ChatRequest.wire``). Anthropic's documents, server tools, citations and
``anthropic-beta`` features; OpenAI's ``file`` parts and log probabilities. Content that only
one format carries is refused, in the client's own error format, for an upstream of another.
Driven with both official SDKs over real sockets, against the simulators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from meterline.settings import (
    CacheSettings,
    LogSettings,
    ProviderSettings,
    RetrySettings,
    Settings,
)
from meterline.sim import AnthropicSim, Fault, OpenAISim, SimSettings
from meterline.sim.anthropic import ANTHROPIC_MODELS
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

CLAUDE, GPT = "anthropic:claude-haiku-4-5", "openai:gpt-4o-mini"
# The simulators answer with a dated snapshot's name, as the real APIs do; the client is shown
# the model it routed to, as for every other answer.
SERVED_AS = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
}
DOCUMENT = {"type": "document", "title": "Ports",
            "source": {"type": "text", "media_type": "text/plain", "data": "HTTPS uses 443."},
            "citations": {"enabled": True}}  # fmt: skip
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
PDF = {"type": "file", "file": {"filename": "ports.pdf",
                                "file_data": "data:application/pdf;base64,JVBERi0xLjQK"}}  # fmt: skip


class Fleet:
    def __init__(self, live: LiveGateway, openai_sim: OpenAISim, anthropic_sim: AnthropicSim):
        self.live, self.openai_sim, self.anthropic_sim = live, openai_sim, anthropic_sim


@pytest.fixture(scope="module")
def fleet(bg: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    openai_sim = OpenAISim(SimSettings(api_key="k-openai", served_as=dict(SERVED_AS)))
    anthropic_sim = AnthropicSim(
        SimSettings(models=ANTHROPIC_MODELS, api_key="k-anthropic", served_as=dict(SERVED_AS))
    )
    for sim in (openai_sim, anthropic_sim):
        bg.run(sim.start())
    providers = (
        ProviderSettings(name="openai", type="openai", base_url=openai_sim.base_url,
                         api_key="k-openai"),
        ProviderSettings(name="anthropic", type="anthropic", base_url=anthropic_sim.base_url,
                         api_key="k-anthropic", headers={"anthropic-beta": "configured-1"}),
    )  # fmt: skip
    db = tmp_path_factory.mktemp("relay") / "gw.db"
    settings = Settings(cache=CacheSettings(enabled=True), database_url=f"sqlite:///{db}",
                        providers=providers, log=LogSettings(flush_interval=0.05),
                        retry=RetrySettings(max_attempts=1))  # fmt: skip
    live = start_gateway(bg, settings)
    yield Fleet(live, openai_sim, anthropic_sim)
    live.stop()
    for sim in (openai_sim, anthropic_sim):
        bg.run(sim.stop())


@pytest.fixture(scope="module")
def oa(fleet: Fleet) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{fleet.live.url}/v1", api_key="x", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def an(fleet: Fleet) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fleet.live.url, api_key="x", max_retries=0) as client:
        yield client


def _ask(question: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [DOCUMENT, {"type": "text", "text": question}]}]


# Anthropic client → Anthropic upstream.


def test_documents_server_tools_and_betas_reach_anthropic_as_sent(
    fleet: Fleet, an: anthropic.Anthropic
) -> None:
    raw = an.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=200, messages=_ask("Which port does HTTPS use? (plain)"),
        tools=[WEB_SEARCH], extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
        extra_body={"context_management": {"edits": []}},
    )  # type: ignore[list-item]  # fmt: skip
    sent = fleet.anthropic_sim.received[-1]
    assert sent["messages"][0]["content"][0] == DOCUMENT
    assert sent["tools"] == [WEB_SEARCH]
    assert sent["context_management"] == {"edits": []}  # a field the gateway has no name for
    beta = fleet.anthropic_sim.received_headers[-1]["anthropic-beta"]
    assert beta == "configured-1,context-1m-2025-08-07"
    assert raw.headers["x-meterline-cache"] == "skip"  # citations are not the cache's to keep

    message = raw.parse()
    assert [b.type for b in message.content] == [
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    search, found, text = message.content
    assert search.type == "server_tool_use" and search.input == {
        "query": "Which port does HTTPS use? (plain)"
    }
    assert found.type == "web_search_tool_result" and found.tool_use_id == search.id
    assert text.type == "text" and text.citations is not None
    assert text.citations[0].type == "web_search_result_location"
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1
    assert message.model == "claude-haiku-4-5"  # not the snapshot the upstream named


def test_anthropic_stream_is_relayed_event_for_event(fleet: Fleet, an: anthropic.Anthropic) -> None:
    with an.messages.stream(
        model=CLAUDE, max_tokens=200, messages=_ask("Which port does HTTPS use? (stream)"),
        tools=[WEB_SEARCH],  # type: ignore[list-item]
    ) as stream:  # fmt: skip
        kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in stream]
        message = stream.get_final_message()
    assert ("content_block_delta", "citations_delta") in kinds
    assert kinds[0] == ("message_start", None) and kinds.count(("message_start", None)) == 1
    assert [b.type for b in message.content] == [
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    assert message.content[0].input == {"query": "Which port does HTTPS use? (stream)"}  # type: ignore[union-attr]
    text = message.content[2]
    assert text.type == "text" and text.citations and text.text
    assert message.model == "claude-haiku-4-5"
    assert message.usage.server_tool_use is not None
    # The request log metered it like any other answer: the upstream's own usage.
    row = fleet.live.rows()[-1]
    assert row["status"] == "ok" and row["stream"] and not row["usage_estimated"]
    assert row["output_tokens"] == message.usage.output_tokens > 0


def test_a_plain_anthropic_request_is_still_relayed(fleet: Fleet, an: anthropic.Anthropic) -> None:
    raw = an.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "Say hi (relay)"}]
    )
    message = raw.parse()
    assert message.model == "claude-haiku-4-5" and message.content[0].type == "text"
    assert message.id.startswith("msg_")  # the upstream's id, as the upstream gave it
    assert message.id != f"msg_{raw.headers['x-meterline-request-id']}"
    assert raw.headers["x-meterline-cache"] == "miss"  # nothing opaque: cached as usual


# OpenAI client → OpenAI upstream.


def test_log_probabilities_reach_the_client(fleet: Fleet, oa: openai.OpenAI) -> None:
    raw = oa.chat.completions.with_raw_response.create(
        model=GPT, messages=[{"role": "user", "content": "Say hi (logprobs)"}],
        logprobs=True, top_logprobs=2,
    )  # fmt: skip
    completion = raw.parse()
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(t.token for t in logprobs.content) == completion.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 for t in logprobs.content)
    assert completion.model == "gpt-4o-mini"
    assert raw.headers["x-meterline-cache"] == "skip"  # a cached answer keeps no logprobs

    chunks = list(oa.chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "Say hi (logprobs, streamed)"}],
        logprobs=True, stream=True, stream_options={"include_usage": True},
    ))  # fmt: skip
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    tokens = [t.token for c in chunks if c.choices and c.choices[0].logprobs
              for t in c.choices[0].logprobs.content or []]  # fmt: skip
    assert tokens == texts and tokens
    assert {c.model for c in chunks} == {"gpt-4o-mini"}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_the_usage_chunk_goes_only_to_clients_that_asked(fleet: Fleet) -> None:
    """The gateway always asks the upstream for usage (to meter the stream); a client that did
    not ask gets neither the usage chunk nor ``"usage": null`` in the others."""
    body = {
        "model": GPT,
        "stream": True,
        "messages": [{"role": "user", "content": "Hi (no usage)"}],
    }
    with httpx.Client(base_url=fleet.live.url) as client:
        text = client.post("/v1/chat/completions", json=body).text
    events = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks and all(c["choices"] and "usage" not in c for c in chunks)
    assert fleet.openai_sim.received[-1]["stream_options"] == {"include_usage": True}


def test_file_parts_reach_openai_as_sent(fleet: Fleet, oa: openai.OpenAI) -> None:
    completion = oa.chat.completions.create(
        model=GPT,
        messages=[{"role": "user", "content": [PDF, {"type": "text", "text": "Summarize it."}]}],  # type: ignore[list-item]
    )
    assert completion.choices[0].message.content
    assert fleet.openai_sim.received[-1]["messages"][0]["content"][0] == PDF


def test_several_choices_come_from_an_openai_upstream(fleet: Fleet, oa: openai.OpenAI) -> None:
    raw = oa.chat.completions.with_raw_response.create(
        model=GPT, n=3, messages=[{"role": "user", "content": "Say hi (three ways)"}]
    )
    completion = raw.parse()
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert all(
        c.message.content == completion.choices[0].message.content for c in completion.choices
    )
    assert completion.usage is not None
    assert raw.headers["x-meterline-cache"] == "skip"
    row = fleet.live.rows()[-1]
    assert row["output_tokens"] == completion.usage.completion_tokens  # all three, billed
    chunks = list(oa.chat.completions.create(
        model=GPT, n=2, stream=True, messages=[{"role": "user", "content": "Say hi (two, streamed)"}]
    ))  # fmt: skip
    texts = {0: "", 1: ""}
    for c in chunks:
        for choice in c.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts[0] and texts[0] == texts[1]
    with pytest.raises(openai.BadRequestError) as refused:
        oa.chat.completions.create(model=CLAUDE, n=2, messages=[{"role": "user", "content": "Hi"}])
    assert refused.value.code == "untranslatable_content" and "n=2" in refused.value.message


def test_the_budget_hold_covers_every_choice() -> None:
    from meterline.accounting.estimate import worst_case_cost
    from meterline.catalog import Catalog
    from meterline.wire.openai_request import decode_request

    model = Catalog.builtin().get("openai", "gpt-4o-mini")
    assert model is not None
    ask = {
        "model": "gpt-4o-mini",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    one, four = (worst_case_cost(decode_request({**ask, "n": n}), model) for n in (1, 4))
    output = 1000 * model.price.output
    assert four - one == 3 * output


# Across formats.


def test_content_only_one_format_carries_is_refused_for_another(
    fleet: Fleet, an: anthropic.Anthropic, oa: openai.OpenAI
) -> None:
    sent = len(fleet.openai_sim.received), len(fleet.anthropic_sim.received)
    with pytest.raises(anthropic.BadRequestError) as refused:
        an.messages.create(model=GPT, max_tokens=50, messages=_ask("Which port? (to openai)"))  # type: ignore[arg-type]
    assert refused.value.status_code == 400
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
    assert "'document' content block" in body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as refused_too:
        oa.chat.completions.create(model=CLAUDE, messages=[
            {"role": "user", "content": [PDF, {"type": "text", "text": "Summarize."}]}])  # type: ignore[list-item]  # fmt: skip
    assert refused_too.value.code == "untranslatable_content"
    assert "'file' content block" in refused_too.value.message
    assert (len(fleet.openai_sim.received), len(fleet.anthropic_sim.received)) == sent


def test_auto_routing_keeps_opaque_content_in_its_format(
    fleet: Fleet, an: anthropic.Anthropic
) -> None:
    raw = an.messages.with_raw_response.create(
        model="auto",
        max_tokens=100,
        messages=_ask("Which port does HTTPS use? (auto)"),  # type: ignore[arg-type]
    )
    assert raw.headers["x-meterline-provider"] == "anthropic"
    assert fleet.anthropic_sim.received[-1]["messages"][0]["content"][0] == DOCUMENT
    # Without the document, the cheapest model (an OpenAI one here) answers the same question.
    plain = an.messages.with_raw_response.create(
        model="auto", max_tokens=100,
        messages=[{"role": "user", "content": "Which port does HTTPS use? (auto, plain)"}],
    )  # fmt: skip
    assert plain.headers["x-meterline-provider"] == "openai"


def test_a_fallback_stays_in_the_format_of_opaque_content(
    fleet: Fleet, an: anthropic.Anthropic
) -> None:
    fleet.anthropic_sim.fail_next(Fault("http", 500))
    raw = an.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=100, messages=_ask("Which port does HTTPS use? (fallback)")
    )
    assert raw.headers["x-meterline-attempts"] == "2"
    assert raw.headers["x-meterline-provider"] == "anthropic"  # one tier up, same format
    assert raw.headers["x-meterline-model"] != "claude-haiku-4-5"
    # The same failure without the document falls back to the same tier elsewhere.
    fleet.anthropic_sim.fail_next(Fault("http", 500))
    plain = an.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=100,
        messages=[{"role": "user", "content": "Which port does HTTPS use? (fallback, plain)"}],
    )  # fmt: skip
    assert plain.headers["x-meterline-attempts"] == "2"
    assert plain.headers["x-meterline-provider"] == "openai"


def test_another_formats_fields_are_not_sent(fleet: Fleet, an: anthropic.Anthropic) -> None:
    """Anthropic's own fields (``top_k``, ``thinking``) would make OpenAI answer 400."""
    an.messages.create(
        model=GPT, max_tokens=50, messages=[{"role": "user", "content": "Say hi (cross)"}],
        extra_body={"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}},
    )  # fmt: skip
    sent = fleet.openai_sim.received[-1]
    assert sent["messages"][0]["content"] == "Say hi (cross)"
    assert "top_k" not in sent and "thinking" not in sent


def test_the_budget_hold_counts_opaque_content() -> None:
    """The worst-case hold is an upper bound: a document counts by its bytes."""
    from meterline.accounting.estimate import prompt_token_bound
    from meterline.wire.anthropic_request import decode_request

    pdf = {"type": "document",
           "source": {"type": "base64", "media_type": "application/pdf", "data": "A" * 50_000}}  # fmt: skip
    text = {"type": "text", "text": "Summarize."}
    plain = decode_request({"model": "m", "max_tokens": 9,
                            "messages": [{"role": "user", "content": [text]}]})  # fmt: skip
    both = decode_request({"model": "m", "max_tokens": 9, "tools": [WEB_SEARCH],
                           "messages": [{"role": "user", "content": [pdf, text]}]})  # fmt: skip
    assert both.opaque == "a 'document' content block"
    assert prompt_token_bound(both) - prompt_token_bound(plain) > 50_000 + len(
        json.dumps(WEB_SEARCH)
    )


def test_count_tokens_asks_the_anthropic_upstream(fleet: Fleet, an: anthropic.Anthropic) -> None:
    """For a model an Anthropic provider serves, the count is Anthropic's own (documents and
    tools included: the body goes on as sent); for another, the local tokenizer's estimate."""
    messages = _ask("How many tokens is this?")
    counted = an.messages.count_tokens(model=CLAUDE, messages=messages, tools=[WEB_SEARCH])  # type: ignore[arg-type, list-item]
    direct = httpx.post(
        f"{fleet.anthropic_sim.base_url}/v1/messages/count_tokens",
        headers={"x-api-key": "k-anthropic", "anthropic-version": "2023-06-01"},
        json={"model": "claude-haiku-4-5", "messages": messages, "tools": [WEB_SEARCH]},
    ).json()
    assert counted.input_tokens == direct["input_tokens"]
    local = an.messages.count_tokens(model=GPT, messages=messages)  # type: ignore[arg-type]
    assert 0 < local.input_tokens < counted.input_tokens  # the document is not counted locally
