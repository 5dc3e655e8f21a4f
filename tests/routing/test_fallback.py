"""Fallback chains: ``next_in_chain`` on plain data, then live with both SDKs — an upstream
failing with 429 / 5xx / a timeout / no connection is answered by the next model of the chain,
each attempt logged and linked; non-retryable errors, ``max_attempts``, the opt-out header and
per-attempt budgets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from meterline.accounting.estimate import worst_case_cost
from meterline.catalog import Catalog, ModelInfo, Price, to_usd
from meterline.errors import (
    ProviderError,
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamConnectionError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from meterline.routing.fallback import failure_kind, next_in_chain
from meterline.settings import (
    FallbackSettings,
    ModelEntry,
    ProviderSettings,
    RetrySettings,
    TimeoutSettings,
)
from meterline.sim import Fault, OpenAISim
from meterline.types import ChatRequest, Message, TextPart, Tool
from meterline.wire.openai_request import decode_request
from tests.accounting.conftest import MASTER, admin, create_key, settle
from tests.conftest import UPSTREAM_KEY, make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, free_port, start_gateway

# ---------------------------------------------------------------------------------------------
# next_in_chain on plain data


def _m(provider: str, name: str, tier: str, price: int, **kw: bool) -> ModelInfo:
    return ModelInfo(provider=provider, name=name, tier=tier, price=Price(price, price), **kw)  # type: ignore[arg-type]


A_ECO = _m("a", "mini", "economy", 10)
A_ECO2 = _m("a", "tiny", "economy", 5)
B_SAME = _m("b", "mini", "economy", 30)  # the same model on another provider, pricier
B_ECO = _m("b", "small", "economy", 8)
C_ECO = _m("c", "lite", "economy", 6, tools=False)
A_STD = _m("a", "mid", "standard", 50)
B_STD = _m("b", "mid-b", "standard", 40)
A_PRE = _m("a", "big", "premium", 200)
CHAIN = Catalog([A_ECO, A_ECO2, B_SAME, B_ECO, C_ECO, A_STD, B_STD, A_PRE])
EVERYONE = ("a", "b", "c")


def _req(**kw: Any) -> ChatRequest:
    return ChatRequest("x", (Message("user", (TextPart("hi"),)),), **kw)


def _walk(failed: ModelInfo, providers: tuple[str, ...] = EVERYONE, request: ChatRequest | None = None,
          catalog: Catalog = CHAIN) -> list[str]:  # fmt: skip
    """The whole chain from ``failed`` if every model in it failed in turn."""
    tried, order, current = {failed.key}, [], failed
    while (
        following := next_in_chain(catalog, providers, current, tried, request or _req())
    ) is not None:
        order.append(following.key)
        tried.add(following.key)
        current = following
    return order


def test_same_tier_on_another_provider_same_name_first() -> None:
    following = next_in_chain(CHAIN, EVERYONE, A_ECO, {A_ECO.key}, _req())
    assert following == B_SAME  # the same model elsewhere, although b:small and c:lite are cheaper


def test_then_the_cheapest_of_the_same_tier_on_other_providers() -> None:
    # no other provider serves "tiny": the cheapest economy model elsewhere (c:lite), not a's own
    assert next_in_chain(CHAIN, EVERYONE, A_ECO2, {A_ECO2.key}, _req()) == C_ECO
    assert next_in_chain(CHAIN, EVERYONE, A_ECO2, {A_ECO2.key, C_ECO.key}, _req()) == B_ECO


def test_then_one_tier_up_same_provider_first() -> None:
    economy = {m.key for m in CHAIN if m.tier == "economy"}
    # the failed model's provider first, although a:mid costs more than b:mid-b
    assert next_in_chain(CHAIN, EVERYONE, A_ECO2, economy, _req()) == A_STD
    assert next_in_chain(CHAIN, EVERYONE, B_ECO, economy, _req()) == B_STD
    # c has no standard model: the cheapest one
    assert next_in_chain(CHAIN, EVERYONE, C_ECO, economy, _req()) == B_STD
    # one tier up only: economy never jumps straight to premium
    standard = economy | {A_STD.key, B_STD.key}
    assert next_in_chain(CHAIN, EVERYONE, A_ECO, standard, _req()) is None
    assert next_in_chain(CHAIN, EVERYONE, A_STD, standard, _req()) == A_PRE


def test_the_whole_chain_never_repeats_a_model_and_never_goes_down_a_tier() -> None:
    chain = _walk(A_ECO)
    assert chain[0] == "b:mini"
    assert len(chain) == len(set(chain)) and A_ECO.key not in chain
    assert set(chain) == {m.key for m in CHAIN} - {A_ECO.key}  # every model, in the end
    tier = {m.key: m.tier for m in CHAIN}
    ranks = [("economy", "standard", "premium").index(tier[key]) for key in chain]
    assert ranks == sorted(ranks)
    steps = list(zip([A_ECO.key, *chain], chain, strict=False))
    within_tier = [(a, b) for a, b in steps if tier[a] == tier[b]]
    # within a tier every step moves to another provider
    assert within_tier and all(a.split(":")[0] != b.split(":")[0] for a, b in within_tier)


def test_chain_skips_disabled_providers_and_unsupported_models() -> None:
    assert next_in_chain(CHAIN, ("a",), A_ECO, {A_ECO.key}, _req()) == A_STD
    tools = _req(tools=(Tool("lookup"),))
    assert (
        next_in_chain(CHAIN, ("a", "c"), A_ECO, {A_ECO.key}, tools) == A_STD
    )  # c:lite has no tools
    assert next_in_chain(CHAIN, ("a", "c"), A_ECO, {A_ECO.key}, _req()) == C_ECO


def test_no_tier_above_premium() -> None:
    assert next_in_chain(CHAIN, EVERYONE, A_PRE, {A_PRE.key}, _req()) is None
    assert next_in_chain(CHAIN, ("a",), A_STD, {A_STD.key, A_PRE.key}, _req()) is None


def test_builtin_catalog_chain_for_gpt_4o_mini() -> None:
    catalog = Catalog.builtin()
    failed = catalog.get("openai", "gpt-4o-mini")
    assert failed is not None
    assert _walk(failed, ("openai",), catalog=catalog)[:1] == ["openai:gpt-4.1-mini"]
    first = next_in_chain(catalog, ("openai", "gemini", "anthropic"), failed, {failed.key}, _req())
    assert first is not None
    assert first.key == "gemini:gemini-2.5-flash-lite"  # the cheapest economy model elsewhere


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (UpstreamRateLimited("x"), "rate_limit"),
        (UpstreamTimeout("x"), "timeout"),
        (UpstreamConnectionError("x"), "connection"),
        (UpstreamUnavailable("x"), "server_error"),
        (UpstreamBadRequest("x"), None),
        (UpstreamAuthFailed("x"), None),
        (ProviderError("x"), None),
    ],
)
def test_failure_kind(error: ProviderError, kind: str | None) -> None:
    assert failure_kind(error) == kind


# ---------------------------------------------------------------------------------------------
# live: openai (openai_sim) and groq (compat_sim), both serving gpt-4o-mini

ASK = [{"role": "user", "content": "Count to three."}]
Start = Callable[..., LiveGateway]


@pytest.fixture
def start(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim, compat_sim: OpenAISim
) -> Iterator[Start]:
    started: list[LiveGateway] = []

    def _start(*, openai_url: str | None = None, first_byte: float | None = None,
               groq: bool = True, **overrides: Any) -> LiveGateway:  # fmt: skip
        providers = [ProviderSettings(
            name="openai", type="openai", base_url=openai_url or openai_sim.base_url,
            api_key=UPSTREAM_KEY, timeout=TimeoutSettings(first_byte=first_byte) if first_byte else None,
        )]  # fmt: skip
        if groq:
            providers.append(ProviderSettings(
                name="groq", base_url=compat_sim.base_url, api_key="gsk-test",
                models=(ModelEntry("gpt-4o-mini"),),
            ))  # fmt: skip
        values: dict[str, Any] = {
            "providers": tuple(providers),
            "retry": RetrySettings(max_attempts=1),  # each failure reaches the fallback logic
            "fallback": FallbackSettings(),
            **overrides,
        }
        live = start_gateway(
            bg,
            make_settings(f"sqlite:///{tmp_path / f'fb{len(started)}.db'}", openai_sim, **values),
        )
        started.append(live)
        return live

    yield _start
    for live in started:
        live.stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., Any]]:
    made: list[openai.OpenAI | anthropic.Anthropic] = []

    def _make(live: LiveGateway, surface: str, key: str = "k") -> Any:
        client: openai.OpenAI | anthropic.Anthropic
        if surface == "openai":
            client = openai.OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0)
        else:
            client = anthropic.Anthropic(base_url=live.url, api_key=key, max_retries=0)
        made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


def _rows(live: LiveGateway, key: str | None = None) -> list[dict[str, Any]]:
    return sorted(live.rows(key), key=lambda r: r["attempt"])


def _headers(client: Any, surface: str, **kw: Any) -> Any:
    """Send one non-streamed request on ``surface``; its answer headers."""
    if surface == "openai":
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=ASK, **kw
        )
        assert raw.parse().choices[0].message.content.startswith("Re: Count to three.")
    else:
        raw = client.messages.with_raw_response.create(
            model="gpt-4o-mini", max_tokens=200, messages=ASK, **kw
        )
        assert raw.parse().content[0].text.startswith("Re: Count to three.")
    return raw.headers


def _assert_linked(
    rows: list[dict[str, Any]], request_id: str, upstream_status: int | None = None
) -> None:
    assert len(rows) == 2
    failed, ok = rows
    assert {r["request_group_id"] for r in rows} == {request_id}
    assert ok["id"] == request_id and failed["id"] != request_id
    assert (failed["attempt"], failed["status"], failed["provider"]) == (1, "error", "openai")
    assert (ok["attempt"], ok["status"], ok["provider"]) == (2, "ok", "groq")
    assert ok["model"] == "gpt-4o-mini"
    assert failed["cost_usd"] == "0" and Decimal(ok["cost_usd"]) > 0
    assert failed["error"] and ok["error"] is None
    if upstream_status is not None:
        assert failed["http_status"] == upstream_status
    assert ok["route_reason"].startswith("fallback after openai:gpt-4o-mini failed")


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
@pytest.mark.parametrize(("fault", "status"), [(Fault("http", 429), 429), (Fault("http", 503), 502),
                                               (Fault("http", 500), 502)])  # fmt: skip
def test_http_failures_fall_back_to_the_other_provider(
    surface: str, fault: Fault, status: int, start: Start, clients: Callable[..., Any],
    openai_sim: OpenAISim, compat_sim: OpenAISim,
) -> None:  # fmt: skip
    live = start()
    openai_sim.fail_next(fault)
    headers = _headers(clients(live, surface), surface)
    assert headers["x-meterline-attempts"] == "2"
    assert (headers["x-meterline-provider"], headers["x-meterline-model"]) == (
        "groq",
        "gpt-4o-mini",
    )
    assert len(openai_sim.received) == 1 and len(compat_sim.received) == 1
    assert compat_sim.received[0]["model"] == "gpt-4o-mini"
    _assert_linked(_rows(live), headers["x-meterline-request-id"], status)


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_a_timeout_falls_back(surface: str, start: Start, clients: Callable[..., Any],
                              openai_sim: OpenAISim, compat_sim: OpenAISim) -> None:  # fmt: skip
    live = start(first_byte=0.3)
    openai_sim.fail_next(Fault("hang"))
    headers = _headers(clients(live, surface), surface)
    assert headers["x-meterline-attempts"] == "2" and headers["x-meterline-provider"] == "groq"
    rows = _rows(live)
    _assert_linked(rows, headers["x-meterline-request-id"], 504)
    assert "0.3s" in rows[0]["error"] or "timed out" in rows[0]["error"]


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_a_connection_error_falls_back(surface: str, start: Start, clients: Callable[..., Any],
                                       compat_sim: OpenAISim) -> None:  # fmt: skip
    live = start(openai_url=f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    headers = _headers(clients(live, surface), surface)
    assert headers["x-meterline-attempts"] == "2" and headers["x-meterline-provider"] == "groq"
    rows = _rows(live)
    _assert_linked(rows, headers["x-meterline-request-id"], 502)
    assert "could not reach openai" in rows[0]["error"]
    assert len(compat_sim.received) == 1


@pytest.mark.parametrize("fault", [Fault("http", 503), Fault("hang")])
def test_an_openai_stream_falls_back_before_the_first_byte(
    fault: Fault,
    start: Start,
    clients: Callable[..., Any],
    openai_sim: OpenAISim,
    compat_sim: OpenAISim,
) -> None:
    live = start(first_byte=0.3)
    openai_sim.fail_next(fault)
    client = clients(live, "openai")
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=ASK, stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["x-meterline-attempts"] == "2"
        assert response.headers["x-meterline-provider"] == "groq"
        request_id = response.headers["x-meterline-request-id"]
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text.startswith("Re: Count to three.")
    assert compat_sim.received[0]["stream"] is True
    rows = _rows(live)
    _assert_linked(rows, request_id)
    assert rows[1]["stream"] is True and rows[1]["output_tokens"] > 0


def test_an_anthropic_stream_falls_back_before_the_first_byte(
    start: Start, clients: Callable[..., Any], openai_sim: OpenAISim, compat_sim: OpenAISim
) -> None:
    live = start()
    openai_sim.fail_next(Fault("http", 429))
    client = clients(live, "anthropic")
    with client.messages.stream(model="gpt-4o-mini", max_tokens=200, messages=ASK) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        headers = stream.response.headers
    assert text.startswith("Re: Count to three.") and final.stop_reason == "end_turn"
    assert headers["x-meterline-attempts"] == "2" and headers["x-meterline-provider"] == "groq"
    _assert_linked(_rows(live), headers["x-meterline-request-id"], 429)
    assert len(compat_sim.received) == 1


def test_a_failure_after_the_first_byte_does_not_fall_back(
    start: Start, clients: Callable[..., Any], openai_sim: OpenAISim, compat_sim: OpenAISim
) -> None:
    live = start()
    openai_sim.fail_next(Fault("drop_mid_stream"))
    client = clients(live, "openai")
    with pytest.raises(Exception):  # noqa: B017 - the SDK's error for a torn stream varies
        for _ in client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True):
            pass
    assert compat_sim.received == []  # bytes had been sent: too late to switch models
    rows = _rows(live)
    assert len(rows) == 1 and rows[0]["status"] == "error" and rows[0]["provider"] == "openai"


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_a_non_retryable_error_does_not_fall_back(
    surface: str,
    start: Start,
    clients: Callable[..., Any],
    openai_sim: OpenAISim,
    compat_sim: OpenAISim,
) -> None:
    live = start()
    openai_sim.fail_next(Fault("http", 400, message="Invalid 'messages': bad content."))
    client = clients(live, surface)
    error = openai.BadRequestError if surface == "openai" else anthropic.BadRequestError
    with pytest.raises(error) as caught:
        _headers(client, surface)
    assert isinstance(caught.value, openai.BadRequestError | anthropic.BadRequestError)
    assert caught.value.status_code == 400 and "bad content" in str(caught.value)
    assert len(openai_sim.received) == 1 and compat_sim.received == []
    rows = _rows(live)
    assert len(rows) == 1 and (rows[0]["status"], rows[0]["attempt"]) == ("error", 1)


def test_max_attempts_is_respected(
    start: Start, clients: Callable[..., Any], openai_sim: OpenAISim, compat_sim: OpenAISim
) -> None:
    live = start(fallback=FallbackSettings(max_attempts=2))
    openai_sim.fail_next(Fault("http", 503), Fault("http", 503))
    compat_sim.fail_next(Fault("http", 503))
    client = clients(live, "openai")
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert caught.value.status_code == 502
    assert len(openai_sim.received) == 1 and len(compat_sim.received) == 1  # no third attempt
    rows = _rows(live)
    assert [(r["attempt"], r["status"], r["provider"]) for r in rows] == [
        (1, "error", "openai"),
        (2, "error", "groq"),
    ]
    assert len({r["request_group_id"] for r in rows}) == 1


def test_the_chain_goes_a_tier_up_when_no_other_provider_has_the_tier(
    start: Start, clients: Callable[..., Any], openai_sim: OpenAISim
) -> None:
    live = start(groq=False)
    openai_sim.fail_next(Fault("http", 503))
    headers = _headers(clients(live, "openai"), "openai")
    assert headers["x-meterline-attempts"] == "2"
    assert (headers["x-meterline-provider"], headers["x-meterline-model"]) == (
        "openai",
        "gpt-4.1-mini",
    )
    assert [body["model"] for body in openai_sim.received] == ["gpt-4o-mini", "gpt-4.1-mini"]
    rows = _rows(live)
    assert [(r["attempt"], r["status"], r["model"]) for r in rows] == [
        (1, "error", "gpt-4o-mini"),
        (2, "ok", "gpt-4.1-mini"),
    ]
    assert {r["request_group_id"] for r in rows} == {headers["x-meterline-request-id"]}


def test_three_attempts_when_both_providers_fail(
    start: Start, clients: Callable[..., Any], openai_sim: OpenAISim, compat_sim: OpenAISim
) -> None:
    live = start()  # max_attempts=3
    openai_sim.fail_next(Fault("http", 503))
    compat_sim.fail_next(Fault("http", 429))
    headers = _headers(clients(live, "openai"), "openai")
    assert headers["x-meterline-attempts"] == "3"
    rows = _rows(live)
    assert [(r["attempt"], r["status"], r["provider"]) for r in rows][:2] == [
        (1, "error", "openai"),
        (2, "error", "groq"),
    ]
    assert (rows[2]["attempt"], rows[2]["status"]) == (3, "ok")
    assert (
        rows[2]["model"] not in ("gpt-4o-mini",)
        and rows[2]["provider"] == headers["x-meterline-provider"]
    )
    assert {r["request_group_id"] for r in rows} == {headers["x-meterline-request-id"]}
    assert len(openai_sim.received) + len(compat_sim.received) == 3


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_the_fallback_header_turns_it_off(
    surface: str,
    start: Start,
    clients: Callable[..., Any],
    openai_sim: OpenAISim,
    compat_sim: OpenAISim,
) -> None:
    live = start()
    openai_sim.fail_next(Fault("http", 503))
    client = clients(live, surface)
    error = openai.InternalServerError if surface == "openai" else anthropic.InternalServerError
    with pytest.raises(error):
        _headers(client, surface, extra_headers={"x-meterline-fallback": "false"})
    assert compat_sim.received == []
    assert len(_rows(live)) == 1
    # the next request, without the header, falls back as usual
    openai_sim.fail_next(Fault("http", 503))
    assert _headers(client, surface)["x-meterline-attempts"] == "2"


def test_fallback_disabled_in_settings(start: Start, clients: Callable[..., Any],
                                       openai_sim: OpenAISim, compat_sim: OpenAISim) -> None:  # fmt: skip
    live = start(fallback=FallbackSettings(enabled=False))
    openai_sim.fail_next(Fault("http", 503))
    with pytest.raises(openai.InternalServerError):
        clients(live, "openai").chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert compat_sim.received == []


def test_only_the_configured_failure_kinds_fall_back(start: Start, clients: Callable[..., Any],
                                                     openai_sim: OpenAISim, compat_sim: OpenAISim) -> None:  # fmt: skip
    live = start(fallback=FallbackSettings(on=("server_error",)))
    client = clients(live, "openai")
    openai_sim.fail_next(Fault("http", 429))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert compat_sim.received == []
    openai_sim.fail_next(Fault("http", 503))
    assert _headers(client, "openai")["x-meterline-attempts"] == "2"


def test_a_retry_that_cures_the_failure_needs_no_fallback(start: Start, clients: Callable[..., Any],
                                                          openai_sim: OpenAISim, compat_sim: OpenAISim) -> None:  # fmt: skip
    live = start(retry=RetrySettings(max_attempts=2, backoff_initial=0.01))
    openai_sim.fail_next(Fault("http", 503))
    headers = _headers(clients(live, "openai"), "openai")
    assert "x-meterline-attempts" not in headers and headers["x-meterline-provider"] == "openai"
    assert len(openai_sim.received) == 2 and compat_sim.received == []
    assert len(_rows(live)) == 1


# ---------------------------------------------------------------------------------------------
# budgets are checked again for every attempt


def _worst_case(model: str, max_tokens: int) -> int:
    info = Catalog.builtin().get("openai", model)
    assert info is not None
    return worst_case_cost(
        decode_request({"model": model, "messages": ASK, "max_tokens": max_tokens}), info
    )


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_a_fallback_the_budget_has_no_room_for_gives_the_original_error(
    surface: str, start: Start, clients: Callable[..., Any], openai_sim: OpenAISim
) -> None:
    # Only openai: the chain from gpt-4o-mini goes a tier up to gpt-4.1-mini, ~2.7x the price.
    live = start(groq=False, master_key=MASTER)
    small, big = _worst_case("gpt-4o-mini", 40), _worst_case("gpt-4.1-mini", 40)
    assert big > 2 * small
    micro = Decimal("0.000001")  # budgets are whole micro-dollars
    tight_usd = to_usd(small * 3 // 2).quantize(micro)
    assert to_usd(small) < tight_usd < to_usd(big)
    tight = create_key(live, budget={"usd": str(tight_usd), "period": "daily"})
    roomy = create_key(
        live, budget={"usd": str(to_usd(big * 3).quantize(micro)), "period": "daily"}
    )

    openai_sim.fail_next(Fault("http", 503, message="The engine is overloaded (original)."))
    client = clients(live, surface, tight["key"])
    kw: dict[str, Any] = {"model": "gpt-4o-mini", "messages": ASK, "max_tokens": 40}
    if surface == "openai":
        with pytest.raises(openai.InternalServerError) as oai_caught:
            client.chat.completions.create(**kw)
        error: Any = oai_caught.value
    else:
        with pytest.raises(anthropic.InternalServerError) as claude_caught:
            client.messages.create(**kw)
        error = claude_caught.value
    assert error.status_code == 502 and "overloaded (original)" in str(error)
    assert "budget" not in str(error)
    assert [body["model"] for body in openai_sim.received] == ["gpt-4o-mini"]  # no fallback call
    settle(live)
    rule = next(
        r for r in admin(live, "GET", "/api/budget").json()["rules"] if r["subject"] == tight["id"]
    )
    assert Decimal(rule["spent_usd"]) == 0 and Decimal(rule["reserved_usd"]) == 0

    # a key with room for it gets the fallback
    openai_sim.fail_next(Fault("http", 503))
    roomy_client = clients(live, "openai", roomy["key"])
    raw = roomy_client.chat.completions.with_raw_response.create(**kw)
    assert (
        raw.headers["x-meterline-attempts"] == "2"
        and raw.headers["x-meterline-model"] == "gpt-4.1-mini"
    )
    settle(live)
    rule = next(
        r for r in admin(live, "GET", "/api/budget").json()["rules"] if r["subject"] == roomy["id"]
    )
    assert Decimal(rule["spent_usd"]) > 0 and Decimal(rule["reserved_usd"]) == 0


def test_a_refused_fallback_logs_the_failed_call_once(
    start: Start, clients: Callable[..., Any], openai_sim: OpenAISim
) -> None:
    live = start(groq=False, master_key=MASTER)
    usd = to_usd(_worst_case("gpt-4o-mini", 40) * 3 // 2).quantize(Decimal("0.000001"))
    tight = create_key(live, budget={"usd": str(usd), "period": "daily"})
    openai_sim.fail_next(Fault("http", 503))
    with pytest.raises(openai.InternalServerError):
        clients(live, "openai", tight["key"]).chat.completions.create(
            model="gpt-4o-mini", messages=ASK, max_tokens=40
        )
    settle(live)
    assert len(openai_sim.received) == 1
    assert len(admin(live, "GET", "/api/requests").json()["data"]) == 1
