"""``GET /v1/models`` and ``GET /v1/models/{id}`` answer each SDK in its own format, need a key
once keys exist, and show a virtual key only the models it may use."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from meterline.settings import LogSettings, ProviderSettings, Settings
from meterline.sim import AnthropicSim, OpenAISim, SimSettings
from meterline.sim.anthropic import ANTHROPIC_MODELS
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

MASTER = "mk-models-master"


@pytest.fixture(scope="module")
def live(bg: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    sims = (OpenAISim(SimSettings()), AnthropicSim(SimSettings(models=ANTHROPIC_MODELS)))
    for sim in sims:
        bg.run(sim.start())
    providers = (
        ProviderSettings(name="openai", type="openai", base_url=sims[0].base_url, api_key="k"),
        ProviderSettings(name="anthropic", type="anthropic", base_url=sims[1].base_url,
                         api_key="k"),
    )  # fmt: skip
    db = tmp_path_factory.mktemp("models") / "gw.db"
    live = start_gateway(bg, Settings(database_url=f"sqlite:///{db}", providers=providers,
                                      master_key=MASTER, log=LogSettings(flush_interval=0.05)))  # fmt: skip
    yield live
    live.stop()
    for sim in sims:
        bg.run(sim.stop())


@pytest.fixture(scope="module")
def limited(live: LiveGateway) -> str:
    """A virtual key that may use two models only."""
    resp = httpx.post(f"{live.url}/api/keys", headers={"authorization": f"Bearer {MASTER}"},
                      json={"name": "two", "tenant": "acme",
                            "models": ["gpt-4o-mini", "claude-haiku-4-5"]})  # fmt: skip
    assert resp.status_code == 201, resp.text
    return str(resp.json()["key"])


def test_openai_sdk_lists_and_retrieves(live: LiveGateway) -> None:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=MASTER) as client:
        listed = {m.id: m.owned_by for m in client.models.list()}
        assert listed["gpt-4o-mini"] == "openai" and listed["claude-haiku-4-5"] == "anthropic"
        assert listed["auto"] == "meterline"
        model = client.models.retrieve("claude-haiku-4-5")
        assert (model.id, model.owned_by, model.object) == (
            "claude-haiku-4-5",
            "anthropic",
            "model",
        )
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("no-such-model")
    assert missing.value.code == "model_not_found"


def test_anthropic_sdk_gets_anthropic_model_objects(live: LiveGateway) -> None:
    with anthropic.Anthropic(base_url=live.url, api_key=MASTER) as client:
        page = client.models.list()
        ids = [m.id for m in page.data]
        assert "claude-haiku-4-5" in ids and "gpt-4o-mini" in ids
        assert all(m.type == "model" and m.display_name for m in page.data)
        assert page.has_more is False and page.first_id == ids[0] and page.last_id == ids[-1]
        model = client.models.retrieve("claude-haiku-4-5")
        assert model.id == "claude-haiku-4-5" and model.type == "model"
        with pytest.raises(anthropic.NotFoundError) as missing:
            client.models.retrieve("no-such-model")
    body = missing.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "not_found_error"


def test_a_key_is_needed_and_a_limited_key_sees_its_models(live: LiveGateway, limited: str) -> None:
    with (
        openai.OpenAI(base_url=f"{live.url}/v1", api_key="mk-wrong") as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.models.list()
    with (
        anthropic.Anthropic(base_url=live.url, api_key="mk-wrong") as an,
        pytest.raises(anthropic.AuthenticationError) as refused,
    ):
        an.models.list()
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "authentication_error"
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=limited) as client:
        assert sorted(m.id for m in client.models.list()) == ["claude-haiku-4-5", "gpt-4o-mini"]
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-4o")  # served, but not to this key
