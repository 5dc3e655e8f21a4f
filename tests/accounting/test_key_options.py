"""A key's cache and compression overrides: stored and read back through ``/api/keys`` on
SQLite and PostgreSQL, loaded into the key ring, created from the command line, and rejected
with a 400 in the API's error JSON when malformed."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meterline.auth import CompressionOverride, KeyOptions
from meterline.sim import OpenAISim
from tests.accounting.conftest import MASTER, admin, create_key
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway


@pytest.fixture
def gateway(bg: BackgroundLoop, database_url: str, openai_sim: OpenAISim) -> Iterator[LiveGateway]:
    live = start_gateway(bg, make_settings(database_url, openai_sim, master_key=MASTER))
    yield live
    live.stop()


def _listed(live: LiveGateway, key_id: str) -> dict[str, Any]:
    (found,) = [k for k in admin(live, "GET", "/api/keys").json()["data"] if k["id"] == key_id]
    return found  # type: ignore[no-any-return]


def test_options_round_trip_through_the_api(gateway: LiveGateway) -> None:
    created = create_key(gateway, cache_ttl=2.5,
                         compression={"enabled": "on", "dedup": "off", "trim": False})  # fmt: skip
    expected = {"enabled": True, "dedup": False, "trim": False}
    assert (created["cache_ttl"], created["compression"]) == (2.5, expected)
    listed = _listed(gateway, created["id"])
    assert (listed["cache_ttl"], listed["compression"]) == (2.5, expected)
    # What the gateway serves with comes from the database too (as another replica loads it).
    gateway.call(lambda g: g.keys.load())
    loaded = gateway.call(lambda g: g.keys.lookup(created["key"]))
    assert loaded is not None and loaded.spec.options == KeyOptions(
        2.5, CompressionOverride(enabled=True, dedup=False, trim=False)
    )


def test_whole_switch_zero_ttl_and_no_options(gateway: LiveGateway) -> None:
    off = create_key(gateway, cache_ttl=0, compression="off")
    plain = create_key(gateway)
    assert (_listed(gateway, off["id"])["cache_ttl"], off["compression"]) == (0, {"enabled": False})
    assert (plain["cache_ttl"], plain["compression"]) == (None, None)
    assert _listed(gateway, plain["id"])["compression"] is None


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"cache_ttl": -1}, "cache_ttl"),
        ({"cache_ttl": "60"}, "cache_ttl"),
        ({"cache_ttl": True}, "cache_ttl"),
        ({"compression": "sometimes"}, "compression"),
        ({"compression": 1}, "compression"),
        ({"compression": {"dedupe": "off"}}, "compression.dedupe"),
        ({"compression": {"trim": "no"}}, "compression.trim"),
    ],
)
def test_malformed_options_are_a_400(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim, fields: dict[str, Any], param: str
) -> None:
    live = start_gateway(bg, make_settings(f"sqlite:///{tmp_path / 'v.db'}", openai_sim,
                                           master_key=MASTER))  # fmt: skip
    try:
        resp = admin(live, "POST", "/api/keys", json={"name": "x", "tenant": "acme", **fields})
        error = resp.json()["error"]
        assert (resp.status_code, error["type"], error["param"]) == (
            400,
            "invalid_request_error",
            param,
        )
        assert admin(live, "GET", "/api/keys").json()["data"] == []
    finally:
        live.stop()


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    env.update(METERLINE_HOME=str(tmp_path / "home"), COLUMNS="300")
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    return subprocess.run([sys.executable, "-m", "meterline.cli", "keys", "--database-url", db, *args],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_the_command_line_sets_and_checks_options(tmp_path: Path) -> None:
    made = _cli(tmp_path, "create", "--name", "ci", "--tenant", "acme", "--cache-ttl", "0",
                "--compression", "on", "--stages", "dedup=off,code=off")  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = json.loads(_cli(tmp_path, "list").stdout)
    assert listed["cache_ttl"] == 0
    assert listed["compression"] == {"enabled": True, "dedup": False, "code": False}
    bad = _cli(tmp_path, "create", "--name", "x", "--tenant", "acme", "--stages", "dedup")
    assert bad.returncode == 2 and "'compression.dedup' must be on or off" in bad.stdout


def test_each_set_of_switches_has_its_own_ident_and_survives_storage() -> None:
    states = (None, False, True)
    overrides = [CompressionOverride(*s) for s in itertools.product(states, repeat=6)]
    assert len({o.ident for o in overrides}) == len(overrides) == 3**6
    for override in overrides:
        options = KeyOptions(1.0, override)
        back = KeyOptions.from_json(options.to_json())
        expected = override if override.changes() else None
        assert (back.cache_ttl, back.compression) == (1.0, expected)
