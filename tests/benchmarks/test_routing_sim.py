"""``benchmarks/routing_sim.py`` at full size (20,000 requests take ~6 s): the simulation is
sound, deterministic and drives the real router; and the targets for ``auto`` routing against
always-premium and the oracle, on seed 1 and on average over five seeds."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REQUESTS, SEED = 20_000, 1
PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "routing_sim.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("routing_sim", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("routing_sim", module)
    spec.loader.exec_module(module)
    return module


sim = _load()


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    outcome: dict[str, Any] = sim.run(REQUESTS, SEED)
    return outcome


def test_every_policy_answers_every_request(result: dict[str, Any]) -> None:
    for name in ("router", "premium", "cheapest", "oracle", "oracle_bar"):
        row = result[name]
        assert row["requests"] == REQUESTS
        assert 0.5 < row["success_rate"] < 1.0 and row["cost_usd"] > 0
        assert row["cost_per_success_usd"] == pytest.approx(row["cost_usd"] / row["successes"])
    assert (
        result["premium_model"] == "openai:gpt-5"
        and result["cheapest_model"] == "gemini:gemini-2.5-flash-lite"  # reasoning priced in
    )


def test_the_baselines_bracket_the_router(result: dict[str, Any]) -> None:
    router, premium, cheapest, oracle = (
        result[n] for n in ("router", "premium", "cheapest", "oracle")
    )
    assert cheapest["cost_usd"] < router["cost_usd"] < premium["cost_usd"]
    assert cheapest["success_rate"] < router["success_rate"] < premium["success_rate"]
    # the oracle applies the success target to every request with perfect knowledge
    assert oracle["success_rate"] >= 0.95 * premium["success_rate"]
    assert oracle["cost_usd"] < premium["cost_usd"] / 2
    # the reference oracle at the router's default bar is far cheaper, and keeps less success
    bar = result["oracle_bar"]
    assert bar["cost_usd"] < oracle["cost_usd"] / 2
    assert cheapest["success_rate"] < bar["success_rate"] < 0.95 * premium["success_rate"]


def test_the_real_components_are_exercised(result: dict[str, Any]) -> None:
    assert result["classified_as_intended"] > 0.95  # the prompts classify as written
    # silent failures exist, so the heuristics cannot be right every time; but mostly they are
    assert 0.9 < result["verdict_agreement"] < 1.0
    assert 0.07 * REQUESTS < result["feedback"] < 0.11 * REQUESTS  # ~10% rated, a tenth neutral
    assert 0.01 < result["explored"] < 0.1  # RoutingSettings.exploration = 0.05
    assert len(result["cells"]) == len(sim.MIX)
    assert result["settings"] == {
        "threshold": 0.8, "min_samples": 20, "exploration": 0.05, "failure_cost": 0.12,
    }  # fmt: skip


def test_the_hidden_rates_drift() -> None:
    lite, nano = "gemini:gemini-2.5-flash-lite", "openai:gpt-4.1-nano"
    assert (
        sim.true_rate(lite, "code_gen", "low", 0.49)
        > sim.true_rate(lite, "code_gen", "low", 0.51) + 0.1
    )
    before, during, after = (sim.true_rate(nano, "debug", "medium", p) for p in (0.2, 0.4, 0.6))
    assert before < during < after
    assert sim.true_rate("openai:gpt-5", "debug", "high", 0.0) == sim.true_rate(
        "openai:gpt-5", "debug", "high", 0.9
    )


def test_cool_downs_last_simulated_minutes() -> None:
    simulation = sim.Simulation(1, sim.RoutingSettings(), 0.15, 0.1, 0.1)
    nano = "openai:gpt-4.1-nano"
    for _ in range(3):
        simulation.stats.record("debug", "low", nano, False, upstream_failed=True)
    assert simulation.stats.cooling(nano)
    simulation.clock.now += 299
    assert simulation.stats.cooling(nano)
    simulation.clock.now += 2  # five simulated minutes after the third failure
    assert not simulation.stats.cooling(nano)


def test_the_simulation_is_deterministic() -> None:
    first, second = sim.run(400, 3), sim.run(400, 3)
    for name in ("router", "premium", "cheapest", "oracle"):
        assert first[name] == second[name]
    assert sim.run(400, 4)["router"] != first["router"]


# The targets, at the size: seed 1, and the mean over seeds 1-5. Single seeds vary (see
# benchmarks/README.md, Routing): over seeds 1-20 the router saves 59.7-76.6% of always-premium's
# cost and keeps 94.8-96.6% of its success; 18 of the 20 meet all three targets on their own.

TARGETS = sim.TARGETS


def test_target_cost_at_least_60_percent_below_always_premium(result: dict[str, Any]) -> None:
    assert result["ratios"]["savings_vs_premium"] >= TARGETS["savings_vs_premium"]


def test_target_success_at_least_95_percent_of_always_premium(result: dict[str, Any]) -> None:
    assert result["ratios"]["success_vs_premium"] >= TARGETS["success_vs_premium"]


def test_target_cost_within_15_percent_of_the_oracle(result: dict[str, Any]) -> None:
    assert result["ratios"]["cost_vs_oracle"] <= TARGETS["cost_vs_oracle"]


def test_targets_on_average_over_five_seeds(result: dict[str, Any]) -> None:
    runs = [result] + [sim.run(REQUESTS, seed) for seed in (2, 3, 4, 5)]
    mean = {k: sum(r["ratios"][k] for r in runs) / len(runs) for k in TARGETS}
    assert mean["savings_vs_premium"] >= TARGETS["savings_vs_premium"], mean
    assert mean["success_vs_premium"] >= TARGETS["success_vs_premium"], mean
    assert mean["cost_vs_oracle"] <= TARGETS["cost_vs_oracle"], mean
