"""A key's compression switches through the live gateway: off for one key while another key's
identical prompt is compressed, one stage off, on for a key where the config has it off, and the
request header above them all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from meterline.settings import CompressionConfig
from meterline.sim import OpenAISim
from tests.accounting.conftest import MASTER, admin, create_key
from tests.compress.test_stage_live import CONVERSATION, SOURCE
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

Start = Callable[[CompressionConfig], LiveGateway]
RESENT = SOURCE.splitlines()[5]  # a line of the file the conversation sends twice


@pytest.fixture
def start(bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim) -> Iterator[Start]:
    started: list[LiveGateway] = []

    def run(config: CompressionConfig) -> LiveGateway:
        settings = make_settings(f"sqlite:///{tmp_path / 'z.db'}", openai_sim, compression=config,
                                 master_key=MASTER)  # fmt: skip
        started.append(start_gateway(bg, settings))
        return started[-1]

    yield run
    for live in started:
        live.stop()


def _send(live: LiveGateway, sim: OpenAISim, key: str, **headers: str) -> tuple[int | None, str]:
    """``x-meterline-tokens-saved`` (``None`` when absent) and the last message as sent upstream."""
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=CONVERSATION,  # type: ignore[arg-type]
            extra_headers=headers,
        )
    saved = raw.headers.get("x-meterline-tokens-saved")
    last = str(sim.received[-1]["messages"][-1]["content"])
    return (int(saved) if saved is not None else None), last


def _first_file(sim: OpenAISim) -> str:
    """The first user message (the file's first copy) as the upstream last received it."""
    first = next(m for m in sim.received[-1]["messages"] if m["role"] == "user")
    return str(first["content"])


def test_a_key_with_compression_off_sends_the_prompt_as_it_came(
    start: Start, openai_sim: OpenAISim
) -> None:
    live = start(CompressionConfig())
    saved, sent = _send(live, openai_sim, create_key(live)["key"])
    assert saved is not None and saved > 1000 and "[ref:block:" in sent
    saved, sent = _send(live, openai_sim, create_key(live, compression="off")["key"])
    assert saved is None and sent == CONVERSATION[-1]["content"]


def test_a_key_with_a_stage_off_keeps_that_stages_pattern(
    start: Start, openai_sim: OpenAISim
) -> None:
    live = start(CompressionConfig())
    _send(live, openai_sim, create_key(live)["key"])
    assert "\n\n" not in _first_file(openai_sim)  # the code stage drops blank lines in code
    _send(live, openai_sim, create_key(live, compression={"code": "off"})["key"])
    assert "\n\n" in _first_file(openai_sim)
    # With both dedup and code off nothing references the resent file: it goes twice.
    both = create_key(live, compression={"dedup": False, "code": False})["key"]
    saved, sent = _send(live, openai_sim, both)
    assert saved is not None and "[ref:block:" not in sent and RESENT in sent
    live.flush()
    rows = {
        r["key_id"]: r["compression"] for r in admin(live, "GET", "/api/requests").json()["data"]
    }
    stages = sorted(sorted(c) for c in rows.values())
    assert stages == [  # trim runs (and is logged) only on very long prompts
        ["code", "dedup", "normalize", "symbols"],
        ["dedup", "normalize", "symbols"],
        ["normalize", "symbols"],
    ]


def test_a_key_can_switch_on_what_the_config_has_off_but_not_the_header(
    start: Start, openai_sim: OpenAISim
) -> None:
    live = start(CompressionConfig(enabled=False))
    assert _send(live, openai_sim, create_key(live)["key"])[0] is None
    keen = create_key(live, compression="on")["key"]
    saved, sent = _send(live, openai_sim, keen)
    assert saved is not None and saved > 1000 and RESENT not in sent
    saved, sent = _send(live, openai_sim, keen, **{"x-meterline-compress": "off"})
    assert saved is None and sent == CONVERSATION[-1]["content"]
