"""The ``auto`` policy on plain data: cheapest proven model, Wilson bounds, exploration, tiers
when there is no history, proven-bad models, cooldowns and the ``auto:<tier>`` floor."""

from __future__ import annotations

import random

import pytest

from meterline.catalog import Catalog, ModelInfo, Price
from meterline.routing.policy import Router
from meterline.routing.stats import RouteStats, wilson_lower_bound
from meterline.settings import RoutingSettings
from meterline.types import ChatRequest, Message, TextPart, Tool

TASK, BAND = "code_gen", "medium"
PROVIDERS = ("a", "b")


def _model(provider: str, name: str, tier: str, inp: int, out: int, **kw: bool) -> ModelInfo:
    return ModelInfo(provider=provider, name=name, tier=tier, price=Price(inp, out), **kw)  # type: ignore[arg-type]


# Prices in pico-USD per token; expected cost order (cheapest first): eco, eco2, std, std2, pre, pre2.
ECO = _model("a", "eco", "economy", 100_000, 400_000)
ECO2 = _model("b", "eco2", "economy", 150_000, 600_000, tools=False)
STD = _model("a", "std", "standard", 400_000, 1_600_000)
STD2 = _model("b", "std2", "standard", 1_000_000, 4_000_000)
PRE = _model("a", "pre", "premium", 2_000_000, 8_000_000)
PRE2 = _model("b", "pre2", "premium", 3_000_000, 15_000_000)
FREE = _model("a", "free", "economy", 0, 0)
ALL = (ECO, ECO2, STD, STD2, PRE, PRE2, FREE)


def _request(text: str = "Write a function that parses a date.", **kw: object) -> ChatRequest:
    return ChatRequest("auto", (Message("user", (TextPart(text),)),), **kw)  # type: ignore[arg-type]


def _router(
    stats: RouteStats | None = None,
    seed: int = 1,
    models: tuple[ModelInfo, ...] = ALL,
    **settings: float,
) -> Router:
    routing = RoutingSettings(**{"exploration": 0.0, **settings})  # type: ignore[arg-type]
    return Router(Catalog(models), stats or RouteStats(), routing, random.Random(seed))


def _stats() -> RouteStats:
    """Stats whose models never cool down: only the cooldown tests look at failure streaks."""
    return RouteStats(failures_to_cool=10**9)


def _feed(
    stats: RouteStats, model: ModelInfo, successes: int, failures: int, band: str = BAND
) -> None:
    outcomes = [True] * successes + [False] * failures
    random.Random(f"{model.key}{successes}{failures}").shuffle(outcomes)
    for ok in outcomes:
        stats.record(TASK, band, model.key, ok)


def _choose(
    router: Router, band: str = BAND, request: ChatRequest | None = None, **kw: object
) -> ModelInfo:
    choice = router.choose(request or _request(), TASK, band, PROVIDERS, **kw)  # type: ignore[arg-type]
    assert choice is not None
    return choice.model


def test_wilson_lower_bound_values() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(20, 20) == pytest.approx(0.8389, abs=1e-4)
    assert wilson_lower_bound(19, 20) == pytest.approx(0.7639, abs=1e-4)
    assert wilson_lower_bound(90, 100) == pytest.approx(0.8256, abs=1e-4)
    assert wilson_lower_bound(0, 50) == pytest.approx(0.0, abs=1e-12)
    # more evidence for the same rate is a tighter (higher) bound
    assert (
        wilson_lower_bound(9, 10)
        < wilson_lower_bound(90, 100)
        < wilson_lower_bound(900, 1000)
        < 0.9
    )


def test_candidates_are_cheapest_first_and_skip_free_and_unsupported_models() -> None:
    router = _router()
    assert router.candidates(_request(), PROVIDERS) == [ECO, ECO2, STD, STD2, PRE, PRE2]
    assert router.candidates(_request(), ("b",)) == [ECO2, STD2, PRE2]
    tools = _request(tools=(Tool("lookup"),))
    assert ECO2 not in router.candidates(tools, PROVIDERS)  # eco2 cannot call tools
    assert router.candidates(_request(), ()) == []
    assert router.choose(_request(), TASK, BAND, ()) is None


def test_cheapest_proven_model_wins() -> None:
    stats = _stats()
    for model in (ECO, STD, PRE):
        _feed(stats, model, 48, 2)
    choice = _router(stats).choose(_request(), TASK, BAND, PROVIDERS)
    assert choice is not None and choice.model == ECO
    assert choice.reason == "a/eco: cheapest economy, 96% success over 50 code_gen requests"


def test_a_failing_cheap_model_loses_to_the_next_proven_one() -> None:
    stats = _stats()
    _feed(stats, ECO, 25, 25)
    _feed(stats, ECO2, 30, 10)
    _feed(stats, STD, 49, 1)
    _feed(stats, PRE, 50, 0)
    assert _choose(_router(stats)) == STD
    # records are per (task, band): the same history in another band proves nothing there
    assert _choose(_router(stats), band="high") == PRE  # no history for high → premium by tier


def test_min_samples_is_respected() -> None:
    stats = _stats()
    _feed(stats, ECO, 19, 0)  # perfect, but one short of min_samples=20
    _feed(stats, STD, 40, 0)
    assert _choose(_router(stats)) == STD
    stats.record(TASK, BAND, ECO.key, True)
    assert _choose(_router(stats)) == ECO
    # a higher bar needs more history
    assert _choose(_router(stats, min_samples=30)) == STD


def test_wilson_bound_not_the_raw_rate_decides() -> None:
    stats = _stats()
    _feed(stats, ECO, 19, 1)  # 95% raw, but only 20 samples: lower bound ~0.76
    _feed(stats, STD, 90, 10)  # 90% raw over 100: lower bound ~0.83
    assert stats.get(TASK, BAND, ECO.key).rate > stats.get(TASK, BAND, STD.key).rate
    choice = _router(stats).choose(_request(), TASK, BAND, PROVIDERS)
    assert choice is not None and choice.model == STD
    assert "90% success over 100" in choice.reason
    # with enough evidence the cheap model proves itself
    _feed(stats, ECO, 76, 4)  # 95/100 now
    assert _choose(_router(stats)) == ECO
    # a lower threshold accepts the 19/20 record as it stood
    small = _stats()
    _feed(small, ECO, 19, 1)
    _feed(small, STD, 90, 10)
    assert _choose(_router(small, threshold=0.75)) == ECO


def test_exploration_sends_some_traffic_to_cheaper_unproven_models() -> None:
    stats = _stats()
    _feed(stats, PRE, 50, 0)  # only a premium model has proven itself
    picks = []
    for seed in range(60):
        choice = _router(stats, seed=seed, exploration=1.0).choose(
            _request(), TASK, BAND, PROVIDERS
        )
        assert choice is not None and "exploring" in choice.reason
        picks.append(choice.model)
    cheaper = {ECO, ECO2, STD, STD2}
    assert set(picks) == cheaper  # random among the cheaper, unproven models; never a dearer one
    # never explores at 0.0: the proven model answers
    assert all(_choose(_router(stats, seed=s, exploration=0.0)) == PRE for s in range(40))
    # the same seed makes the same choice
    assert _choose(_router(stats, seed=7, exploration=1.0)) == _choose(
        _router(stats, seed=7, exploration=1.0)
    )


def test_exploration_prefers_the_least_judged_model_and_rarely_rechecks_proven_bad_ones() -> None:
    stats = _stats()
    _feed(stats, PRE, 50, 0)  # the pick
    _feed(stats, ECO, 5, 45)  # proven bad: upper bound far below 0.8
    _feed(stats, ECO2, 8, 2)  # open, 10 judged
    _feed(stats, STD, 3, 1)  # open, 4 judged: the least judged
    _feed(stats, STD2, 9, 3)  # open, 12 judged
    picks = [_choose(_router(stats, seed=s, exploration=1.0)) for s in range(400)]
    assert set(picks) == {STD, ECO}  # the least-judged open model, or a recheck of the bad one
    assert 0.04 < picks.count(ECO) / len(picks) < 0.18  # ~10% of explorations recheck
    # once every cheaper model is proven bad, exploration only rechecks them
    bad = _stats()
    _feed(bad, PRE, 50, 0)
    for model in (ECO, ECO2, STD, STD2):
        _feed(bad, model, 5, 45)
    assert {_choose(_router(bad, seed=s, exploration=1.0)) for s in range(40)} == {
        ECO, ECO2, STD, STD2,
    }  # fmt: skip


def test_expected_cost_counts_reasoning_only_for_models_that_think_by_default() -> None:
    claude = ModelInfo("anthropic", "thinker", "standard", reasoning=True,
                       price=Price(3_000_000, 15_000_000))  # fmt: skip
    o_model = ModelInfo("openai", "thinker", "standard", reasoning=True,
                        price=Price(3_000_000, 15_000_000))  # fmt: skip
    assert not claude.thinks_by_default and o_model.thinks_by_default
    assert not ModelInfo("openai", "plain", reasoning=False).thinks_by_default
    order = _router(models=(o_model, claude)).candidates(_request(), ("anthropic", "openai"))
    assert order == [claude, o_model]  # same prices: the one that bills no hidden reasoning first


def test_nothing_to_explore_when_the_cheapest_model_is_proven() -> None:
    stats = _stats()
    _feed(stats, ECO, 50, 0)
    assert all(_choose(_router(stats, seed=s, exploration=1.0)) == ECO for s in range(40))


def test_exploration_rate_is_roughly_the_configured_probability() -> None:
    stats = _stats()
    _feed(stats, PRE, 50, 0)
    router = _router(stats, seed=3, exploration=0.1)
    explored = sum(_choose(router) != PRE for _ in range(2000))
    assert 140 <= explored <= 260  # ~10% of 2,000


def test_exploration_reason_counts_the_history_so_far() -> None:
    stats = _stats()
    _feed(stats, ECO2, 3, 2)
    _feed(stats, PRE, 30, 0)
    only = (ECO2, PRE)
    choice = _router(stats, models=only, exploration=1.0).choose(_request(), TASK, BAND, PROVIDERS)
    assert choice is not None and choice.model == ECO2
    assert choice.reason == "b/eco2: exploring, 5 code_gen requests judged so far"


def test_no_exploration_once_every_model_has_enough_history() -> None:
    stats = _stats()
    for model in ALL:
        _feed(stats, model, 25, 0)
    assert all(_choose(_router(stats, seed=s, exploration=1.0)) == ECO for s in range(10))


@pytest.mark.parametrize(("band", "expected"), [("low", ECO), ("medium", STD), ("high", PRE)])
def test_complexity_band_picks_the_tier_when_there_is_no_history(
    band: str, expected: ModelInfo
) -> None:
    choice = _router().choose(_request(), TASK, band, PROVIDERS)
    assert choice is not None and choice.model == expected
    assert f"no proven model for {TASK}/{band} yet; {band} complexity" in choice.reason


def test_nearest_tier_when_the_wanted_tier_has_no_model() -> None:
    only_cheap = (ECO, STD)
    assert _choose(_router(models=only_cheap), band="high") == STD
    only_premium = (PRE, PRE2)
    assert _choose(_router(models=only_premium), band="low") == PRE


def test_proven_bad_models_are_skipped_in_the_tier_fallback() -> None:
    stats = _stats()
    _feed(stats, ECO, 2, 28, band="low")  # upper bound of its rate is far below 0.8
    assert _choose(_router(stats), band="low") == ECO2
    _feed(stats, ECO2, 5, 25, band="low")
    assert _choose(_router(stats), band="low") == STD  # no usable economy model: the nearest tier
    # bad, but not yet proven bad (too few samples): still tried
    few = _stats()
    _feed(few, ECO, 0, 5, band="low")
    assert _choose(_router(few), band="low") == ECO


def test_when_every_model_is_proven_bad_one_is_still_chosen() -> None:
    stats = _stats()
    for model in ALL:
        _feed(stats, model, 0, 30, band="low")
    assert _choose(_router(stats), band="low") == ECO


def test_three_consecutive_failures_cool_a_model_down() -> None:
    stats = RouteStats(cooldown=300)
    _feed(stats, ECO, 40, 0)
    assert _choose(_router(stats)) == ECO
    stats.record(TASK, BAND, ECO.key, False)
    stats.record(TASK, BAND, ECO.key, False)
    assert not stats.cooling(ECO.key)
    stats.record(TASK, "high", ECO.key, False)  # the streak is per model, across tasks and bands
    assert stats.cooling(ECO.key)
    router = _router(stats)
    assert ECO not in router.candidates(_request(), PROVIDERS)
    assert _choose(router) == STD  # eco is still proven, but cooling down: skipped
    # a success in between resets the streak
    other = RouteStats()
    for ok in (False, False, True, False, False):
        other.record(TASK, BAND, STD.key, ok)
    assert not other.cooling(STD.key)


def test_cooldown_ends() -> None:
    stats = RouteStats(cooldown=0.0)
    for _ in range(3):
        stats.record(TASK, BAND, ECO.key, False)
    assert not stats.cooling(ECO.key)


def test_if_every_candidate_is_cooling_they_are_used_anyway() -> None:
    stats = RouteStats(cooldown=300)
    for model in (ECO, PRE):
        for _ in range(3):
            stats.record(TASK, "low", model.key, False)
    assert all(stats.cooling(m.key) for m in (ECO, PRE))
    assert _choose(_router(stats, models=(ECO, PRE)), band="low") == ECO


def test_premium_floor_for_auto_premium() -> None:
    stats = _stats()
    for model in ALL:
        _feed(stats, model, 50, 0)
    router = _router(stats)
    assert _choose(router) == ECO
    assert _choose(router, min_tier="premium") == PRE
    assert _choose(router, min_tier="standard") == STD
    assert {m.tier for m in router.candidates(_request(), PROVIDERS, "premium")} == {"premium"}
    # the floor also holds with no history, at low complexity, and when exploring
    assert _choose(_router(), band="low", min_tier="premium") == PRE
    assert (
        _choose(_router(seed=5, exploration=1.0), band="low", min_tier="premium").tier == "premium"
    )


def test_amend_overrules_a_recorded_outcome() -> None:
    stats = _stats()
    stats.record(TASK, BAND, ECO.key, True)
    stats.amend(TASK, BAND, ECO.key, True, False)
    assert (stats.get(TASK, BAND, ECO.key).successes, stats.get(TASK, BAND, ECO.key).total) == (
        0,
        1,
    )
    stats.amend(TASK, BAND, ECO.key, False, False)  # unchanged verdict: nothing moves
    assert stats.get(TASK, BAND, ECO.key).total == 1
    stats.amend(TASK, BAND, ECO.key, None, True)  # never judged before: a new outcome
    assert (stats.get(TASK, BAND, ECO.key).successes, stats.get(TASK, BAND, ECO.key).total) == (
        1,
        2,
    )
