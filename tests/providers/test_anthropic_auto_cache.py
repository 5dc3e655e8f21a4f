"""With ``auto_cache`` on, long stable system prompts reach Anthropic with a cache breakpoint,
the second request reads the cache, and the log prices both exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import openai

from meterline.catalog import Catalog, cost, to_usd
from meterline.settings import (
    CacheSettings,
    CompressionConfig,
    LogSettings,
    ProviderSettings,
    Settings,
)
from meterline.sim import ANTHROPIC_MODELS, AnthropicSim, SimSettings
from meterline.types import Usage
from tests.fakes.harness import BackgroundLoop, start_gateway

SYSTEM = "You are a careful reviewer who explains every finding. " * 120


def test_auto_cache_breakpoints_are_added_and_priced(bg: BackgroundLoop, tmp_path: Path) -> None:
    sim = AnthropicSim(SimSettings(models=ANTHROPIC_MODELS, api_key="k"))
    bg.run(sim.start())
    provider = ProviderSettings(name="anthropic", type="anthropic", base_url=sim.base_url,
                                api_key="k", auto_cache=True)  # fmt: skip
    live = start_gateway(bg, Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", providers=(provider,),
                                      cache=CacheSettings(enabled=False), compression=CompressionConfig(enabled=False), log=LogSettings(flush_interval=0.05)))  # fmt: skip
    try:
        with openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0) as client:
            for question in ("First question?", "Second question?"):
                client.chat.completions.create(
                    model="claude-haiku-4-5",
                    messages=[  # type: ignore[arg-type]
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": question},
                    ],
                )
        assert sim.received[0]["system"][-1]["cache_control"] == {"type": "ephemeral"}
        live.flush()
        rows = sorted(
            httpx.get(f"{live.url}/api/requests").json()["data"], key=lambda r: r["created_at"]
        )
        assert rows[0]["cache_write_tokens"] > 1000 and rows[0]["cached_tokens"] == 0
        assert rows[1]["cached_tokens"] == rows[0]["cache_write_tokens"]
        price = Catalog.builtin().get("anthropic", "claude-haiku-4-5")
        assert price is not None
        for row in rows:
            usage = Usage(
                row["input_tokens"],
                row["output_tokens"],
                cached_tokens=row["cached_tokens"],
                cache_write_tokens=row["cache_write_tokens"],
            )
            assert Decimal(row["cost_usd"]) == to_usd(cost(usage, price.price))
        assert Decimal(rows[1]["cost_usd"]) < Decimal(rows[0]["cost_usd"])  # the read is cheaper
    finally:
        live.stop()
        bg.run(sim.stop())
