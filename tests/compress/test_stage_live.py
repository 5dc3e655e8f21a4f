"""The compress stage in the live gateway: the upstream gets the smaller prompt, the client is
told what was saved, the log row keeps the per-stage numbers."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from meterline.settings import CompressionConfig
from meterline.sim import OpenAISim
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

SOURCE = textwrap.dedent(inspect.getsource(textwrap))  # a real file no one here wrote
FILE = f'<file path="textwrap.py">\n{SOURCE}\n</file>'
CONVERSATION = [
    {"role": "user", "content": f"{FILE}\nWhat does dedent do?"},
    {"role": "assistant", "content": "It removes common leading whitespace."},
    {"role": "user", "content": f"{FILE}\nAnd shorten?"},
]


@pytest.fixture
def live(bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim) -> Iterator[LiveGateway]:
    settings = make_settings(f"sqlite:///{tmp_path / 'z.db'}", openai_sim,
                             compression=CompressionConfig())  # fmt: skip
    gateway = start_gateway(bg, settings)
    yield gateway
    gateway.stop()


@pytest.fixture
def client(live: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as c:
        yield c


def test_resent_file_context_is_sent_once(
    client: openai.OpenAI, live: LiveGateway, openai_sim: OpenAISim
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=CONVERSATION
    )  # type: ignore[arg-type]
    saved = int(raw.headers["x-meterline-tokens-saved"])
    assert saved > 1000
    sent = openai_sim.received[-1]["messages"]
    assert (
        "[ref:block:" in sent[-1]["content"] and SOURCE.splitlines()[5] not in sent[-1]["content"]
    )
    assert "<meterline-refs>" in str(sent[0]["content"])
    live.flush()
    row = httpx.get(f"{live.url}/api/requests").json()["data"][0]
    assert row["tokens_before"] - row["tokens_after"] == saved
    assert row["compression"]["dedup"] > 1000
    usage = raw.parse().usage
    assert usage is not None and usage.prompt_tokens < row["tokens_before"]


def test_compression_can_be_switched_off_per_request(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=CONVERSATION,
        extra_headers={"x-meterline-compress": "off"},  # type: ignore[arg-type]
    )
    assert "x-meterline-tokens-saved" not in raw.headers
    assert openai_sim.received[-1]["messages"][-1]["content"] == CONVERSATION[-1]["content"]


def test_requests_with_their_own_cache_breakpoints_are_left_alone(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    cached = [{"role": "user", "content": [{"type": "text", "text": FILE, "cache_control": {"type": "ephemeral"}}]},
              *CONVERSATION[1:]]  # fmt: skip
    client.chat.completions.create(model="gpt-4o-mini", messages=cached)  # type: ignore[arg-type]
    assert openai_sim.received[-1]["messages"][-1]["content"] == CONVERSATION[-1]["content"]
