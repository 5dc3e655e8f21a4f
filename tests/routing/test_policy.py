"""The ``auto`` policy on plain data: the lowest expected cost with failures priced, pooled
estimates, exploration, tiers when there is no history, proven-bad models, cooldowns and the
``auto:<tier>`` floor."""

from __future__ import annotations

import itertools
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
    """Stats whose models never cool down and whose clock moves a second per reading, so the
    pooled fit follows each batch of answers: only the cool-down and refit tests look at time."""
    ticks = itertools.count()
    return RouteStats(failures_to_cool=10**9, clock=lambda: float(next(ticks)))


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


def test_min_samples_decides_when_a_cell_has_history() -> None:
    stats = _stats()
    _feed(stats, ECO, 19, 0)  # perfect, but one short of min_samples=20: no history yet
    choice = _router(stats).choose(_request(), TASK, BAND, PROVIDERS)
    assert choice is not None and choice.model == STD  # medium complexity -> standard tier
    assert "no proven model for code_gen/medium yet" in choice.reason
    stats.record(TASK, BAND, ECO.key, True)
    assert _choose(_router(stats)) == ECO  # history: the cheapest, failures counted, wins
    assert _choose(_router(stats, min_samples=30)) == STD  # a higher bar needs more history


def test_a_dearer_model_wins_where_its_success_is_worth_the_price() -> None:
    stats = _stats()
    _feed(stats, ECO, 80, 20)  # 80%: not proven bad at the 0.8 threshold
    _feed(stats, STD, 99, 1)
    choice = _router(stats).choose(_request(), TASK, BAND, PROVIDERS)
    assert choice is not None and choice.model == STD
    assert choice.reason == (
        "a/std: 99% success over 100 code_gen requests; worth its price over a/eco "
        "(80% success over 100 code_gen requests)"
    )
    # failures that cost (next to) nothing: the cheaper model wins again
    assert _choose(_router(stats, failure_cost=0.0)) == ECO
    assert _choose(_router(stats, failure_cost=0.0005)) == ECO
    # and a small difference in success is not worth four times the price
    close = _stats()
    _feed(close, ECO, 97, 3)
    _feed(close, PRE, 98, 2)
    assert _choose(_router(close, models=(ECO, PRE))) == ECO
    # against a model of similar price, one point of success is worth it (failures at $0.12)
    _feed(close, STD, 98, 2)
    assert _choose(_router(close, models=(ECO, STD))) == STD


def test_estimates_pool_what_a_model_did_in_other_cells() -> None:
    stats = _stats()
    for band in ("low", "high"):  # eco fails 10x as often as std wherever both are seen
        _feed(stats, ECO, 60, 40, band=band)
        _feed(stats, STD, 96, 4, band=band)
    _feed(stats, STD, 96, 4)  # the medium cell has std's history only
    eco, std = (stats.failure_rate(TASK, BAND, m.key) for m in (ECO, STD))
    assert eco.failure > 3 * std.failure  # eco has no medium record: its others speak for it
    assert eco.weight == stats.prior_weight and std.weight == stats.prior_weight + 100
    assert _choose(_router(stats)) == STD
    # a model never seen anywhere is expected to be average in the cell
    unseen = stats.failure_rate(TASK, BAND, "x:never-seen")
    assert eco.failure > unseen.failure > std.failure
    # its own record moves the estimate: 300 perfect answers make eco the better bet here
    _feed(stats, ECO, 300, 0)
    assert stats.failure_rate(TASK, BAND, ECO.key).failure < 0.1
    assert _choose(_router(stats)) == ECO


def test_exploration_tries_a_model_that_might_beat_the_pick() -> None:
    stats = _stats()
    _feed(stats, ECO, 75, 25)  # a bad bet: 25% failures over 100 answers
    _feed(stats, STD, 95, 5)  # the pick
    _feed(stats, ECO2, 4, 0)  # little known: may well be better than its record suggests
    picks = [_choose(_router(stats, seed=s, exploration=1.0)) for s in range(200)]
    assert set(picks) == {ECO2}  # the only hopeful one; never eco (known) or the dearer ones
    choice = _router(stats, seed=3, exploration=1.0).choose(_request(), TASK, BAND, PROVIDERS)
    assert choice is not None and choice.reason == (
        "b/eco2: exploring, 4 code_gen requests judged so far"
    )
    # never explores at 0.0: the pick answers
    assert all(_choose(_router(stats, seed=s, exploration=0.0)) == STD for s in range(40))


def test_exploration_rechecks_proven_bad_models_now_and_then() -> None:
    stats = _stats()
    _feed(stats, STD, 45, 5)  # the pick
    _feed(stats, ECO, 5, 45)  # proven bad: upper bound far below 0.8, left out of the choice
    _feed(stats, ECO2, 2, 0)  # hopeful
    assert ECO not in {_choose(_router(stats, seed=s)) for s in range(20)}
    picks = [_choose(_router(stats, seed=s, exploration=1.0)) for s in range(400)]
    assert set(picks) == {ECO2, ECO}
    assert 0.04 < picks.count(ECO) / len(picks) < 0.18  # ~10% of explorations recheck


def test_nothing_to_explore_when_no_model_could_beat_the_pick() -> None:
    stats = _stats()
    for model in ALL:
        _feed(stats, model, 300, 0)  # every record long and perfect: the cheapest stays best
    assert all(_choose(_router(stats, seed=s, exploration=1.0)) == ECO for s in range(10))


def test_exploration_rate_is_roughly_the_configured_probability() -> None:
    stats = _stats()
    _feed(stats, STD, 50, 0)
    router = _router(stats, seed=3, exploration=0.1)
    explored = sum(_choose(router) != STD for _ in range(2000))
    assert 140 <= explored <= 260  # ~10% of 2,000


def test_measured_answer_lengths_set_the_expected_cost() -> None:
    stats = _stats()
    cheap_thinker = ModelInfo("openai", "thinker", "standard", reasoning=True,
                              price=Price(1_000_000, 4_000_000))  # fmt: skip
    plain = ModelInfo("anthropic", "plain", "standard", price=Price(1_000_000, 10_000_000))
    router = _router(stats, models=(cheap_thinker, plain))
    providers = ("anthropic", "openai")
    # the guess: 500 answer tokens, 2 reasoning tokens per answer token -> the thinker costs more
    assert router.candidates(_request(), providers, None, TASK, BAND) == [plain, cheap_thinker]
    for _ in range(50):  # thinking answers here run 400 tokens, half of them reasoning
        stats.observe_usage(TASK, BAND, 400, 200, thinks=True)
    lengths = stats.lengths(TASK, BAND)
    assert lengths.output == pytest.approx(200, rel=0.05)
    assert lengths.reasoning_per_output == pytest.approx(1.0, rel=0.05)
    assert router.candidates(_request(), providers, None, TASK, BAND) == [cheap_thinker, plain]
    # other cells keep the guess; answers from models that do not think leave the ratio alone
    assert router.candidates(_request(), providers, None, TASK, "high") == [plain, cheap_thinker]
    stats.observe_usage(TASK, BAND, 300, 0, thinks=False)
    assert stats.lengths(TASK, BAND).reasoning_per_output == lengths.reasoning_per_output


def test_expected_cost_counts_reasoning_only_for_models_that_think_by_default() -> None:
    claude = ModelInfo("anthropic", "thinker", "standard", reasoning=True,
                       price=Price(3_000_000, 15_000_000))  # fmt: skip
    o_model = ModelInfo("openai", "thinker", "standard", reasoning=True,
                        price=Price(3_000_000, 15_000_000))  # fmt: skip
    assert not claude.thinks_by_default and o_model.thinks_by_default
    assert not ModelInfo("openai", "plain", reasoning=False).thinks_by_default
    order = _router(models=(o_model, claude)).candidates(_request(), ("anthropic", "openai"))
    assert order == [claude, o_model]  # same prices: the one that bills no hidden reasoning first


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
    for _ in range(5):  # poor answers are the estimates' business, not the cool-down's
        stats.record(TASK, BAND, ECO.key, False)
    assert not stats.cooling(ECO.key)
    stats.record(TASK, BAND, ECO.key, False, upstream_failed=True)
    stats.record(TASK, BAND, ECO.key, False, upstream_failed=True)
    assert not stats.cooling(ECO.key)
    stats.record(TASK, "high", ECO.key, False, upstream_failed=True)  # per model, any cell
    assert stats.cooling(ECO.key)
    router = _router(stats)
    assert ECO not in router.candidates(_request(), PROVIDERS)
    assert _choose(router) == STD  # eco is still proven, but cooling down: skipped
    # a success in between resets the streak
    other = RouteStats()
    for down in (True, True, False, True, True):
        other.record(TASK, BAND, STD.key, not down, upstream_failed=down)
    assert not other.cooling(STD.key)


def test_cooldown_ends() -> None:
    stats = RouteStats(cooldown=0.0)
    for _ in range(3):
        stats.record(TASK, BAND, ECO.key, False, upstream_failed=True)
    assert not stats.cooling(ECO.key)


def test_if_every_candidate_is_cooling_they_are_used_anyway() -> None:
    stats = RouteStats(cooldown=300)
    for model in (ECO, PRE):
        for _ in range(3):
            stats.record(TASK, "low", model.key, False, upstream_failed=True)
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


def test_the_pooled_fit_is_refreshed_by_answers_and_time() -> None:
    now = [0.0]
    stats = RouteStats(failures_to_cool=10**9, clock=lambda: now[0])
    _feed(stats, ECO, 50, 50, band="low")  # eco fails half the time elsewhere
    first = stats.failure_rate(TASK, BAND, ECO.key).failure  # fitted now
    _feed(stats, ECO, 200, 0, band="high")  # 200 new answers: eco is fine after all
    assert stats.failure_rate(TASK, BAND, ECO.key).failure == first  # within the same second
    now[0] += 1.0
    assert stats.failure_rate(TASK, BAND, ECO.key).failure < first
