"""Config files: parsed into Settings; every problem reported with its line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterline.settings import ConfigError, load_settings, parse_config

GOOD = """\
server:
  port: 8080
providers:
  - name: groq
    type: openai-compatible
    base_url: https://api.groq.com/openai/v1
    api_key_env: GROQ_API_KEY
    models:
      - llama-3.1-8b-instant
      - name: llama-3.3-70b-versatile
        tier: standard
        price: {input: "0.59", output: "0.79"}
    retry: {max_attempts: 5}
    timeout: {first_byte: 30}
aliases:
  fast: groq:llama-3.1-8b-instant
"""


def test_a_good_config_parses() -> None:
    settings = parse_config(GOOD)
    assert settings.server.port == 8080
    groq = settings.provider("groq")
    assert groq is not None and groq.retry is not None and groq.retry.max_attempts == 5
    assert [m.name for m in groq.models] == ["llama-3.1-8b-instant", "llama-3.3-70b-versatile"]
    assert groq.models[1].price == {"input": "0.59", "output": "0.79"}
    assert settings.aliases == {"fast": "groq:llama-3.1-8b-instant"}


def _problems(text: str) -> list[str]:
    """Every problem ``parse_config`` reports for ``text`` (read as ``gw.yaml``)."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, "gw.yaml")
    return [str(p) for p in info.value.problems]


def test_every_problem_is_reported_with_its_location() -> None:
    text = """\
server:
  port: eighty
  hots: 0.0.0.0
providers:
  - type: openai-compatible
  - name: x
    type: openai-compatible
    models: [{name: m, tier: gold}]
"""
    found = _problems(text)
    assert "gw.yaml:2:9: server.port: expected an integer, got 'eighty'" in found
    assert "gw.yaml:3:3: server.hots: unknown key (did you mean 'host'?)" in found
    assert "gw.yaml:5:5: providers[0].name: is required" in found


def test_semantic_problems_point_at_the_offending_node() -> None:
    text = "providers:\n  - name: x\n    type: openai-compatible\n    models: [{name: m, tier: gold}]\n"
    assert _problems(text) == [
        "gw.yaml:2:5: providers[0].base_url: an openai-compatible provider needs one",
        "gw.yaml:4:30: providers[0].models[0].tier: must be one of economy, standard, premium",
    ]


def test_invalid_yaml_is_reported_with_its_position() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("providers: [\n  - a", "bad.yaml")
    problem = info.value.problems[0]
    assert problem.source == "bad.yaml" and problem.line == 2 and "invalid YAML" in problem.message


def test_environment_adds_providers_the_file_does_not_name(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(GOOD)
    env = {
        "OPENAI_API_KEY": "sk-1",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OLLAMA_BASE_URL": "http://127.0.0.1:11434",
        "METERLINE_DATABASE_URL": "sqlite:////tmp/x.db",
    }
    settings = load_settings(path, env)
    by_name = {p.name: p for p in settings.providers}
    assert set(by_name) == {"groq", "openai", "ollama"}
    assert by_name["openai"].base_url == "http://127.0.0.1:9/v1"
    assert by_name["openai"].api_key == "sk-1"
    assert settings.database_url == "sqlite:////tmp/x.db"


def test_default_database_is_a_sqlite_file_in_the_home_folder(tmp_path: Path) -> None:
    settings = load_settings(None, {"METERLINE_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'meterline.db'}"
    assert settings.providers == ()


def test_routing_shares_and_sample_counts_are_checked() -> None:
    text = "routing:\n  threshold: 80\n  min_samples: 0\n  exploration: -0.1\n  failure_cost: -1\n"
    assert _problems(text) == [
        "gw.yaml:2:14: routing.threshold: must be a share between 0 and 1",
        "gw.yaml:4:16: routing.exploration: must be a share between 0 and 1",
        "gw.yaml:3:16: routing.min_samples: must be at least 1",
        "gw.yaml:5:17: routing.failure_cost: must not be negative",
    ]
    assert parse_config("routing: {failure_cost: 0.5}").routing.failure_cost == 0.5
    assert parse_config("routing: {threshold: 0.9}").routing.threshold == 0.9


def test_counters_slots_must_fill_whole_buckets() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("accounting:\n  counters_slots: 20\n", "bad.yaml")
    problem = info.value.problems[0]
    assert problem.line == 2 and "accounting.counters_slots" in str(problem)
    assert "multiple of 8" in problem.message
    assert (
        parse_config("accounting:\n  counters_slots: 64\n", "ok.yaml").accounting.counters_slots
        == 64
    )


def test_the_environment_names_a_counters_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(GOOD)
    settings = load_settings(path, {"METERLINE_COUNTERS_FILE": "/dev/shm/c"})
    assert settings.accounting.counters_file == "/dev/shm/c"
