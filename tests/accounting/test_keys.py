"""Virtual keys: creation (plaintext once), listing, revocation, expiry, model allow-lists,
tenancy of the analytics API — every rejection in each surface's own error format."""

from __future__ import annotations

import datetime as dt

import anthropic
import httpx
import openai
import pytest

from tests.accounting.conftest import MASTER, Accounted, Clients, admin, create_key, settle

ASK = [{"role": "user", "content": "hello"}]


def test_key_lifecycle_through_the_api(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start()
    created = create_key(live, name="ci", team="search", user="ana", models=["gpt-4o-mini"],
                         rpm=50, budget={"usd": "2.50", "period": "weekly"})  # fmt: skip
    assert created["key"].startswith("mk-") and created["id"].startswith("key_")
    assert created["budget"] == {"usd": "2.5", "period": "weekly"}
    listed = admin(live, "GET", "/api/keys").json()["data"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and listed[0]["prefix"] == created["key"][:10]
    answer = clients.openai(live, created["key"]).chat.completions.create(
        model="gpt-4o-mini", messages=ASK
    )  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    assert admin(live, "DELETE", f"/api/keys/{created['id']}").json() == {
        "id": created["id"],
        "revoked": True,
    }
    assert admin(live, "DELETE", f"/api/keys/{created['id']}").status_code == 404
    with pytest.raises(openai.AuthenticationError) as info:
        clients.openai(live, created["key"]).chat.completions.create(
            model="gpt-4o-mini", messages=ASK
        )  # type: ignore[arg-type]
    assert "revoked" in info.value.message


def test_only_the_master_key_manages_keys(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start()
    tenant_key = create_key(live)["key"]
    body = {"name": "x", "tenant": "acme"}
    anonymous = httpx.post(f"{live.url}/api/keys", json=body)
    assert (
        anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"
    )
    as_tenant = httpx.post(f"{live.url}/api/keys", json=body,
                           headers={"authorization": f"Bearer {tenant_key}"})  # fmt: skip
    assert as_tenant.status_code == 403 and as_tenant.json()["error"]["type"] == "permission_error"
    bad = admin(live, "POST", "/api/keys", json={"name": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tenant"
    bad_budget = admin(
        live, "POST", "/api/keys", json={**body, "budget": {"usd": "x", "period": "daily"}}
    )
    assert bad_budget.status_code == 400 and bad_budget.json()["error"]["param"] == "budget.usd"


def test_v1_needs_a_valid_key_once_keys_exist(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start()
    with pytest.raises(openai.AuthenticationError):
        clients.openai(live, "mk-not-a-key").chat.completions.create(
            model="gpt-4o-mini", messages=ASK
        )  # type: ignore[arg-type]
    missing = httpx.post(
        f"{live.url}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": ASK}
    )
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError) as info:
        clients.anthropic(live, "mk-not-a-key").messages.create(
            model="gpt-4o-mini", max_tokens=5, messages=ASK
        )  # type: ignore[arg-type]
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    # The master key is accepted on /v1 too.
    assert (
        clients.openai(live, MASTER)
        .chat.completions.create(model="gpt-4o-mini", messages=ASK)
        .choices
    )  # type: ignore[arg-type]


def test_expired_key_and_disallowed_model(accounted: Accounted, clients: Clients) -> None:
    live = accounted.start()
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    expired = create_key(live, expires_at=past)["key"]
    with pytest.raises(openai.AuthenticationError) as info:
        clients.openai(live, expired).chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert "expired" in info.value.message
    narrow = create_key(live, models=["gpt-4o-mini"])["key"]
    with pytest.raises(openai.PermissionDeniedError) as denied:
        clients.openai(live, narrow).chat.completions.create(model="gpt-4o", messages=ASK)  # type: ignore[arg-type]
    assert denied.value.code == "model_not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError) as denied_an:
        clients.anthropic(live, narrow).messages.create(model="gpt-4o", max_tokens=5, messages=ASK)  # type: ignore[arg-type]
    assert denied_an.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    # The key works through the x-api-key header as Anthropic clients send it.
    ok = clients.anthropic(live, narrow).messages.create(
        model="gpt-4o-mini", max_tokens=20, messages=ASK
    )  # type: ignore[arg-type]
    assert ok.content


def test_a_tenant_sees_only_its_own_requests_and_stats(
    accounted: Accounted, clients: Clients
) -> None:
    live = accounted.start()
    acme = create_key(live, tenant="acme")["key"]
    globex = create_key(live, tenant="globex")["key"]
    for _ in range(2):
        clients.openai(live, acme).chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    clients.openai(live, globex).chat.completions.create(model="gpt-4o", messages=ASK)  # type: ignore[arg-type]
    settle(live)

    def get(path: str, key: str) -> dict[str, object]:
        resp = httpx.get(f"{live.url}{path}", headers={"authorization": f"Bearer {key}"})
        assert resp.status_code == 200
        return resp.json()  # type: ignore[no-any-return]

    acme_rows = get("/api/requests", acme)["data"]
    assert [r["tenant"] for r in acme_rows] == ["acme", "acme"]  # type: ignore[index]
    globex_stats = get("/api/stats?days=1", globex)
    assert globex_stats["totals"]["requests"] == 1  # type: ignore[index]
    assert [g["model"] for g in globex_stats["by_model"]] == ["gpt-4o"]  # type: ignore[attr-defined]
    everything = get("/api/stats?days=1", MASTER)
    assert everything["totals"]["requests"] == 3  # type: ignore[index]
