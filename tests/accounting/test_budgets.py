"""Budgets that cannot be bypassed: concurrent reservations, downgrade at 80%, refusal at 100%,
rebuild after a restart, spend breakers and alerts — on memory and on Redis counters."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest
from aiohttp import web

from meterline.accounting.estimate import worst_case_cost
from meterline.catalog import Catalog, to_usd
from meterline.wire.openai_request import decode_request
from tests.accounting.conftest import Accounted, Clients, admin, create_key, settle
from tests.fakes.harness import BackgroundLoop, LiveGateway

ASK = [{"role": "user", "content": "Count to three."}]


def _worst_case(model: str, max_tokens: int) -> int:
    info = Catalog.builtin().get("openai", model)
    assert info is not None
    request = decode_request({"model": model, "messages": ASK, "max_tokens": max_tokens})
    return worst_case_cost(request, info)


def _rows(live: LiveGateway) -> list[dict[str, Any]]:
    return admin(live, "GET", "/api/requests", params={"limit": 1000}).json()["data"]  # type: ignore[no-any-return]


def _rule(live: LiveGateway, scope: str, subject: str) -> dict[str, Any]:
    rules = admin(live, "GET", "/api/budget").json()["rules"]
    return next(r for r in rules if r["scope"] == scope and r["subject"] == subject)


async def _burst(url: str, key: str, n: int, model: str, max_tokens: int) -> list[object]:
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
        calls = [client.chat.completions.create(model=model, messages=ASK, max_tokens=max_tokens)  # type: ignore[arg-type]
                 for _ in range(n)]  # fmt: skip
        return await asyncio.gather(*calls, return_exceptions=True)


def test_200_concurrent_requests_never_overspend(accounted: Accounted) -> None:
    live = accounted.start()
    per_request = _worst_case("gpt-4o-mini", 40)
    budget = 10 * per_request + per_request // 2  # about ten requests' worst case
    usd = to_usd(budget).quantize(Decimal("0.000001"))
    key = create_key(live, budget={"usd": str(usd), "period": "daily"}, rpm=10_000)
    limit = int(usd * 10**12)

    results = asyncio.run(_burst(live.url, key["key"], 200, "gpt-4o-mini", 40))
    settle(live)

    others = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, openai.RateLimitError)
    ]
    assert not others, others[:3]
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(ok) + len(refused) == 200 and len(ok) >= 10 and refused
    assert all(r.code == "budget_exceeded" and "key" in r.message for r in refused)
    spent = sum(int(Decimal(r["cost_usd"]) * 10**12) for r in _rows(live) if r["status"] == "ok")
    assert 0 < spent <= limit
    rule = _rule(live, "key", key["id"])
    assert Decimal(rule["spent_usd"]) == to_usd(spent)  # the counters agree with the log, exactly
    assert Decimal(rule["reserved_usd"]) == 0


def _spend_with_o3(live: LiveGateway, key: str, clients: Clients, n: int) -> Decimal:
    client = clients.openai(live, key)
    for _ in range(n):
        client.chat.completions.create(model="o3", messages=ASK, max_tokens=400)  # type: ignore[arg-type]
    settle(live)
    return sum((Decimal(r["cost_usd"]) for r in _rows(live) if r["tenant"] == "dg"), Decimal(0))


def test_downgrade_at_80_percent_and_refusal_at_100(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start()
    key = create_key(live, tenant="dg")["key"]
    spent = _spend_with_o3(live, key, clients, 3)
    limit = (spent / Decimal("0.85")).quantize(Decimal("0.000001"))
    put = admin(live, "PUT", "/api/budget", json={"scope": "tenant", "subject": "dg",
                                                   "period": "monthly", "usd": str(limit)})  # fmt: skip
    assert (
        put.status_code == 200 and Decimal(put.json()["spent_usd"]) == spent
    )  # rebuilt from the log

    raw = clients.openai(live, key).chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=ASK,
        max_tokens=20,  # type: ignore[arg-type]
    )
    assert raw.headers["x-meterline-downgraded-from"] == "openai:gpt-4o"
    assert raw.headers["x-meterline-model"] == "gpt-4.1-mini"  # cheapest standard-tier sibling
    assert "downgraded from openai:gpt-4o: budget 8" in raw.headers["x-meterline-route-reason"]
    assert raw.parse().model == "gpt-4.1-mini"
    assert Decimal(raw.headers["x-meterline-budget-remaining-usd"]) > 0

    settle(live)
    admin(live, "PUT", "/api/budget", json={"scope": "tenant", "subject": "dg",
                                            "period": "monthly", "usd": str(spent)})  # fmt: skip
    with pytest.raises(openai.RateLimitError) as info:
        clients.openai(live, key).chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert info.value.code == "budget_exceeded"
    assert "tenant dg monthly budget" in info.value.message and "used up" in info.value.message
    with pytest.raises(anthropic.RateLimitError) as an_info:
        clients.anthropic(live, key).messages.create(
            model="gpt-4o-mini", max_tokens=10, messages=ASK
        )  # type: ignore[arg-type]
    assert "tenant dg monthly budget" in an_info.value.body["error"]["message"]  # type: ignore[index]


def test_spend_counters_are_rebuilt_from_the_log_after_a_restart(
    accounted: Accounted, clients: Clients
) -> None:
    live = accounted.start()
    key = create_key(live, budget={"usd": "1.00", "period": "monthly"})
    for _ in range(3):
        clients.openai(live, key["key"]).chat.completions.create(model="gpt-4o", messages=ASK)  # type: ignore[arg-type]
    settle(live)
    before = _rule(live, "key", key["id"])
    logged = sum(Decimal(r["cost_usd"]) for r in _rows(live))
    assert Decimal(before["spent_usd"]) == logged > 0
    accounted.stop_all()
    again = accounted.start()
    assert _rule(again, "key", key["id"])["spent_usd"] == before["spent_usd"]
    rows = _rows(again)
    assert all(
        Decimal(str(r["budget_remaining_pusd"])) < 10**12 for r in rows
    )  # snapshot on the row


@pytest.fixture
def webhook(bg: BackgroundLoop) -> Any:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

    url = bg.run(start())
    yield url, received
    bg.run(runner.cleanup())


def test_breaker_halts_traffic_and_alerts_once(
    accounted: Accounted, clients: Clients, webhook: Any
) -> None:
    url, received = webhook
    live = accounted.start(daily_halt_usd="0.01", alert_webhook=url)
    # Keys limited to o3, so that a budget with no room refuses instead of downgrading.
    key = create_key(live, models=["o3"], budget={"usd": "0.0075", "period": "daily"})
    client = clients.openai(live, key["key"])
    refusals: list[openai.RateLimitError] = []
    for _ in range(12):
        try:
            client.chat.completions.create(model="o3", messages=ASK, max_tokens=250)  # type: ignore[arg-type]
        except openai.RateLimitError as exc:
            refusals.append(exc)
        settle(live)
    assert refusals and refusals[0].code == "budget_exceeded"
    budget_rule = _rule(live, "key", key["id"])
    assert Decimal(budget_rule["spent_usd"]) <= Decimal("0.0075")

    other = clients.openai(live, create_key(live, models=["o3"])["key"])  # no budget of its own
    with pytest.raises(openai.RateLimitError) as halted:
        for _ in range(12):
            other.chat.completions.create(model="o3", messages=ASK, max_tokens=250)  # type: ignore[arg-type]
            settle(live)
    assert halted.value.code == "circuit_breaker_open"
    settle(live)
    health = httpx.get(f"{live.url}/health").json()
    global_breaker = next(b for b in health["breakers"] if b["scope"] == "global")
    assert global_breaker["state"] == "open" and Decimal(global_breaker["spent_usd"]) <= Decimal(
        "0.01"
    )
    budget = admin(live, "GET", "/api/budget").json()
    assert budget["breaker_records"]["global"]["state"] == "open"
    thresholds = sorted((a["kind"], a["threshold"]) for a in budget["alerts"])
    assert thresholds == [("breaker", 100), ("budget", 80), ("budget", 100)]
    assert len(thresholds) == len(set(thresholds))  # each threshold alerted once per window
    kinds = sorted((p["kind"], p["threshold"]) for p in received)
    assert kinds == thresholds and all(a["delivered"] for a in budget["alerts"])


def test_a_provider_breaker_halts_only_that_provider(
    accounted: Accounted, clients: Clients
) -> None:
    live = accounted.start(provider_daily_halt_usd={"openai": "0.003"})
    only_o3 = clients.openai(
        live, create_key(live, models=["o3"])["key"]
    )  # no downgrade to hide behind
    with pytest.raises(openai.RateLimitError) as halted:
        for i in range(10):
            only_o3.chat.completions.create(
                model="openai:o3",
                max_tokens=100,  # type: ignore[arg-type]
                messages=[{"role": "user", "content": f"Q{i}"}],
            )
            settle(live)
    assert halted.value.code == "circuit_breaker_open" and "provider openai" in halted.value.message
    settle(live)
    breakers = httpx.get(f"{live.url}/health").json()["breakers"]
    provider = next(b for b in breakers if b["scope"] == "provider")
    assert provider["subject"] == "openai" and provider["state"] == "open"
    assert Decimal(provider["spent_usd"]) <= Decimal("0.003")
    assert (
        next(b for b in breakers if b["scope"] == "global")["state"] == "closed"
    )  # the rest runs on
