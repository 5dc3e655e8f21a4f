"""``meterline keys …`` and ``meterline budget …``: the same services the ``/api`` uses."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from rich.console import Console

from meterline.accounting.alerts import AlertSink
from meterline.accounting.counters import open_counters
from meterline.accounting.ledger import Ledger
from meterline.admin.keys import key_json, parse_key_spec
from meterline.auth import KeyRing
from meterline.errors import InvalidRequest
from meterline.settings import BudgetEntry, Settings
from meterline.store import open_engine

__all__ = ["add_account_commands"]


@dataclass
class _Services:
    keys: KeyRing
    ledger: Ledger


@asynccontextmanager
async def _services(settings: Settings) -> AsyncIterator[_Services]:
    assert settings.database_url is not None
    engine = await open_engine(settings.database_url)
    counters = await open_counters(settings.accounting)
    session = aiohttp.ClientSession()
    try:
        keys = KeyRing(engine)
        await keys.load()
        ledger = Ledger(counters, engine, settings.accounting,
                        AlertSink(engine, session, settings.accounting.alert_webhook))  # fmt: skip
        await ledger.load()
        yield _Services(keys, ledger)
    finally:
        await session.close()
        await counters.aclose()
        await engine.dispose()


def _run(settings: Settings, action: Callable[[_Services], Awaitable[None]]) -> int:
    async def main() -> None:
        async with _services(settings) as services:
            await action(services)

    asyncio.run(main())
    return 0


def _key_body(args: argparse.Namespace) -> dict[str, object]:
    body: dict[str, object] = {"name": args.name, "tenant": args.tenant, "team": args.team,
                               "user": args.user, "rpm": args.rpm, "tpm": args.tpm,
                               "expires_at": args.expires_at}  # fmt: skip
    if args.models:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.budget_usd:
        body["budget"] = {"usd": args.budget_usd, "period": args.budget_period}
    if args.cache_ttl is not None:
        body["cache_ttl"] = args.cache_ttl
    body["compression"] = _compression_switches(args.compression, args.stages)
    return body


def _compression_switches(whole: str | None, stages: str | None) -> dict[str, str] | None:
    """``--compression off --stages dedup=off,trim=on`` as the API's ``compression`` object."""
    switches = {"enabled": whole} if whole else {}
    for item in (stages or "").split(","):
        name, _, value = item.partition("=")
        if name.strip():
            switches[name.strip()] = value.strip()
    return switches or None


def _keys_create(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    try:
        spec = parse_key_spec(_key_body(args))
    except InvalidRequest as exc:
        console.print(f"[red]error[/red] {exc.message}", highlight=False)
        return 2

    async def create(s: _Services) -> None:
        key, plaintext = await s.keys.create(spec)
        console.print(f"created {key.id} for tenant {spec.tenant}")
        console.print("key (shown once, store it now):")
        console.print(plaintext, highlight=False, soft_wrap=True)

    return _run(settings, create)


def _keys_list(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async def show(s: _Services) -> None:
        for key in await s.keys.list(args.tenant):
            console.print_json(json.dumps(key_json(key)))

    return _run(settings, show)


def _keys_revoke(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    found: list[bool] = []

    async def revoke(s: _Services) -> None:
        found.append(await s.keys.revoke(args.key_id))

    _run(settings, revoke)
    console.print(f"revoked {args.key_id}" if found[0] else f"no active key {args.key_id}")
    return 0 if found[0] else 1


def _budget_show(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    async def show(s: _Services) -> None:
        await s.ledger.rebuild()
        keys = await s.keys.list()
        await s.ledger.rebuild_keys(keys)
        rules = s.ledger.rules + [r for k in keys for r in s.ledger.rules_for(k.principal, k, None)
                                  if r.scope == "key"]  # fmt: skip
        console.print_json(json.dumps(await s.ledger.status(rules)))

    return _run(settings, show)


def _budget_set(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    entry = BudgetEntry(args.scope, args.period, args.usd, args.subject or "*")

    async def put(s: _Services) -> None:
        rule = await s.ledger.put_budget(entry)
        console.print(f"set {rule.name}")

    return _run(settings, put)


Handler = Callable[[Settings, argparse.Namespace, Console], int]


def add_account_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke virtual API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (its plaintext is shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", required=True)
    for flag in ("--team", "--user", "--expires-at", "--budget-usd"):
        create.add_argument(flag)
    create.add_argument("--models", help="comma-separated model names the key may use")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument(
        "--budget-period", default="monthly", choices=["daily", "weekly", "monthly"]
    )
    create.add_argument("--cache-ttl", type=float, help="seconds; 0: never cache for this key")
    create.add_argument("--compression", choices=["on", "off"], help="prompt compression")
    create.add_argument("--stages", help="per-stage compression, e.g. dedup=off,trim=off")
    create.set_defaults(account=_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (never their plaintext)")
    listing.add_argument("--tenant")
    listing.set_defaults(account=_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    revoke.set_defaults(account=_keys_revoke)

    budget = sub.add_parser("budget", help="show spend against budgets, or set a budget")
    budget_sub = budget.add_subparsers(dest="budget_command", required=True)
    budget_sub.add_parser("show", help="budgets, spend and breakers").set_defaults(
        account=_budget_show
    )
    put = budget_sub.add_parser("set", help="set a budget")
    put.add_argument("--scope", required=True, choices=["global", "tenant", "team", "key"])
    put.add_argument("--subject", help="tenant / team name or key id (not for global)")
    put.add_argument("--period", required=True, choices=["daily", "weekly", "monthly"])
    put.add_argument("--usd", required=True)
    put.set_defaults(account=_budget_set)
    for parser in (keys, budget):
        parser.add_argument("--config", help="YAML config file")
        parser.add_argument("--database-url", help="overrides METERLINE_DATABASE_URL")
