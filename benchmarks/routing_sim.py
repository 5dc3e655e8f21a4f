"""The ``auto`` router against a simulated fleet: cost and success next to fixed choices and an
oracle.

    .venv/bin/python benchmarks/routing_sim.py [--requests 20000] [--seed 1]

The fleet is the built-in catalog (OpenAI, Anthropic and Gemini models in three tiers) with its
real prices. Each model has a hidden success rate per task type and complexity band, and two of
them drift: Gemini 2.5 Flash-Lite degrades halfway through the run (a bad model update), GPT-4.1
nano improves between 25% and 50% of it.

Every request is a prompt drawn from templates for the intended task type and band (the real
classifier then classifies it, as the gateway would), routed by the real :class:`Router` with
real :class:`RouteStats` and :class:`RoutingSettings` (``model: "auto"``). Whether the answer is
good is drawn from the chosen model's current hidden rate; the router learns what the gateway
would see: a success-looking answer or a failure-looking one (an upstream error, an empty answer,
a refusal, no code when code was asked for, an answer far too short) judged by the real
:func:`evaluate` — except that some bad answers look fine (``--silent``), which only user
feedback can reveal. About 10% of requests get a 1–5 rating, occasionally the wrong way round,
applied with :func:`from_rating` and :meth:`RouteStats.amend`. Costs are exact, from the catalog
prices (:func:`meterline.catalog.cost`) and token counts plausible for the task and band,
reasoning tokens included for models that think by default.

The same requests, with the same random draws for the outcome, go to four baselines: always the
premium model with the best hidden rate, always the cheapest model, and two oracles that know the
current hidden rates. *The* oracle, the one the targets compare with, applies the success target
itself to every request: the cheapest model whose true rate for the request is at least 95% of
the premium model's (``ORACLE_SHARE``). The second applies the router's default bar instead: the
cheapest model whose true rate is at least 0.8. It is shown for reference only: it keeps ~93% of
premium's success, so no policy could be within 15% of its cost and keep 95% of premium's
success at once.

Time is simulated (``--per-day`` requests a day) and handed to :class:`RouteStats`: a model whose
upstream fails three times in a row cools down for five simulated minutes, not for the rest of
the run.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from meterline.catalog import PICO, Catalog, ModelInfo, cost
from meterline.routing.classifier import classify, complexity_band
from meterline.routing.evaluator import evaluate, from_rating
from meterline.routing.policy import Router
from meterline.routing.stats import RouteStats
from meterline.settings import RoutingSettings
from meterline.types import ChatRequest, ChatResponse, Message, TextPart, Usage

__all__ = ["TARGETS", "run"]

ORACLE_SHARE = 0.95  # the oracle keeps this share of the premium model's true rate
ORACLE_BAR = 0.8  # the reference oracle's absolute bar (the router's default threshold)
TARGETS = {"savings_vs_premium": 0.60, "success_vs_premium": 0.95, "cost_vs_oracle": 1.15}

# ---------------------------------------------------------------------------------------------
# The hidden world

# Skill per model: the chance of failing a request is (1 - skill) × task factor × band factor.
SKILL: dict[str, float] = {
    "openai:gpt-5-nano": 0.88,
    "openai:gpt-4.1-nano": 0.84,  # improves to 0.92 (see DRIFT)
    "openai:gpt-4o-mini": 0.86,
    "gemini:gemini-2.5-flash-lite": 0.90,  # degrades to 0.76 (see DRIFT)
    "anthropic:claude-3-5-haiku-latest": 0.87,
    "anthropic:claude-haiku-4-5": 0.91,
    "openai:gpt-5-mini": 0.94,
    "openai:gpt-4.1-mini": 0.92,
    "openai:o4-mini": 0.945,
    "gemini:gemini-2.5-flash": 0.935,
    "anthropic:claude-sonnet-4-5": 0.96,
    "openai:gpt-5": 0.97,
    "openai:gpt-4.1": 0.955,
    "openai:gpt-4o": 0.945,
    "openai:o3": 0.965,
    "gemini:gemini-2.5-pro": 0.965,
    "anthropic:claude-opus-4-1": 0.97,
}
TASK_FACTOR = {"simple_qa": 0.4, "other": 0.7, "explain": 0.7, "code_review": 0.9,
               "refactor": 1.0, "code_gen": 1.0, "debug": 1.3}  # fmt: skip
BAND_FACTOR = {"low": 1.0, "medium": 2.0, "high": 3.5}
# Some models are better at code than their tier suggests, some worse (multiplies the failures).
AFFINITY: dict[tuple[str, str], float] = {
    ("anthropic:claude-sonnet-4-5", "code_gen"): 0.7, ("anthropic:claude-sonnet-4-5", "debug"): 0.7,
    ("anthropic:claude-haiku-4-5", "code_gen"): 0.8, ("openai:gpt-4o-mini", "debug"): 1.3,
    ("gemini:gemini-2.5-flash", "explain"): 0.7, ("openai:gpt-5-nano", "refactor"): 1.3,
}  # fmt: skip
# (model, skill at the end, start of the change, end of the change) as fractions of the run
DRIFT: dict[str, tuple[float, float, float]] = {
    "gemini:gemini-2.5-flash-lite": (0.76, 0.5, 0.5),  # a sudden regression halfway
    "openai:gpt-4.1-nano": (0.92, 0.25, 0.5),  # a gradual improvement
}

# (task, band) → share of traffic. simple_qa is short by nature: always low.
MIX: dict[tuple[str, str], float] = {
    ("simple_qa", "low"): 0.24,
    ("code_gen", "low"): 0.08, ("code_gen", "medium"): 0.07, ("code_gen", "high"): 0.03,
    ("debug", "low"): 0.05, ("debug", "medium"): 0.06, ("debug", "high"): 0.03,
    ("explain", "low"): 0.05, ("explain", "medium"): 0.04, ("explain", "high"): 0.01,
    ("code_review", "low"): 0.03, ("code_review", "medium"): 0.03, ("code_review", "high"): 0.01,
    ("refactor", "low"): 0.03, ("refactor", "medium"): 0.03, ("refactor", "high"): 0.01,
    ("other", "low"): 0.10, ("other", "medium"): 0.06, ("other", "high"): 0.04,
}  # fmt: skip
# Mean answer tokens per task (low band); medium ×1.8, high ×3. Reasoning adds per band.
OUTPUT_TOKENS = {"simple_qa": 180, "code_gen": 450, "debug": 380, "explain": 420,
                 "code_review": 350, "refactor": 480, "other": 300}  # fmt: skip
OUTPUT_BAND = {"low": 1.0, "medium": 1.8, "high": 3.0}
REASONING_BAND = {"low": 0.5, "medium": 1.0, "high": 1.5}
CONTEXT_TOKENS = 250  # system prompt and tool definitions a client sends along
FAILURE_KINDS = (("error", 0.10), ("empty", 0.15), ("refusal", 0.25), ("unhelpful", 0.50))


def true_rate(model: str, task: str, band: str, progress: float) -> float:
    """The hidden chance that ``model`` answers a (task, band) request well at ``progress``
    (0 → 1) through the run."""
    skill = SKILL[model]
    if model in DRIFT:
        end, start, until = DRIFT[model]
        if progress >= until:
            skill = end
        elif progress > start:
            skill += (end - skill) * (progress - start) / (until - start)
    fail = (1 - skill) * TASK_FACTOR[task] * BAND_FACTOR[band] * AFFINITY.get((model, task), 1.0)
    return max(0.02, min(0.995, 1 - fail))


# ---------------------------------------------------------------------------------------------
# Prompts

_TOPICS = (
    "invoices", "user sessions", "search results", "shopping carts", "sensor readings",
    "chat messages", "log lines", "payment events", "calendar slots", "feature flags",
)  # fmt: skip
_QUESTIONS = (
    "What is the difference between a list and a tuple in Python?",
    "What is a closure in JavaScript?",
    "How do I reverse a list in Python?",
    "What does HTTP status 409 mean?",
    "How can I check which version of Node.js is installed?",
    "What is the default port of PostgreSQL?",
    "Which Git command shows the commits of one file?",
    "What are Python type hints for?",
    "How do I rename a branch in git?",
    "What is an index in a SQL database?",
)
_PY_LINES = (
    "def load_{t}(path):", "    with open(path) as fh:", "        rows = json.load(fh)",
    "    result = []", "    for row in rows:", "        if row.get('id') is None:",
    "            continue", "        total = row['price'] * row['qty']",
    "        result.append({{'id': row['id'], 'total': total}})", "    return result", "",
    "class {T}Store:", "    def __init__(self, db):", "        self.db = db",
    "        self.cache = {{}}", "    def get(self, key):", "        if key in self.cache:",
    "            return self.cache[key]", "        value = self.db.fetch(key)",
    "        self.cache[key] = value", "        return value",
)  # fmt: skip
_TRACE = (
    'Traceback (most recent call last):\n  File "app.py", line 42, in <module>\n    main()\n'
    "  File \"app.py\", line 17, in load_{t}\n    total = row['price'] * row['qty']\n"
    "KeyError: 'qty'"
)
_NOTES = (
    "We agreed to ship the beta on Thursday. Maria will check the onboarding copy. Support saw "
    "more tickets about slow exports last week. The marketing team wants a short blog post. "
    "Budget for the offsite is still open."
)
_HARD = (
    "Keep concurrency and performance in mind: this runs in a distributed worker pool at scale, "
    "and the security team wants a design that stays consistent under failure."
)
# (task, "low" or "more") → template; medium and high differ in the size of code and context.
_TEMPLATES = {
    (
        "code_gen",
        "low",
    ): "Write a Python function that groups {topic} by day and sums their totals.",
    ("code_gen", "more"): "Implement a module that imports {topic} from our partner API, validates "
    "them and stores them. It plugs into the existing code below. {hard}\n\n{code}\n\n"
    "Background from the planning notes: {context}",
    ("debug", "low"): "This crashes when a row has no qty, how do I fix it?\n\n{code}\n\n{trace}",
    ("debug", "more"): "Our importer for {topic} started failing in production with the error "
    "below, but it works locally. {hard}\n\n{trace}\n\n{code}\n\nWhat we know: {context}",
    ("explain", "low"): "Explain what this snippet does:\n\n{code}",
    ("explain", "more"): "Walk me through how this {topic} module works and why it is built this "
    "way. {hard}\n\n{code}\n\nSome history: {context}",
    ("code_review", "low"): "Can you review this small helper before I merge it?\n\n{code}",
    ("code_review", "more"): "Please do a code review of this pull request for the {topic} "
    "service. {hard}\n\n{code}\n\nContext for reviewers: {context}",
    ("refactor", "low"): "Refactor this to be more readable:\n\n{code}",
    ("refactor", "more"): "Refactor the {topic} module below: split responsibilities and remove "
    "the duplication. {hard}\n\n{code}\n\nConstraints from the team: {context}",
    # writing and planning work, no code
    ("other", "low"): "Draft a friendly two-line note telling the team that the {topic} report "
    "moves to Friday.",
    ("other", "medium"): "Turn these meeting notes into a list of action items with owners, and "
    "flag anything about performance or security:\n\n{context} {context}",
    ("other", "high"): "Draft a plan for the next quarter that covers the architecture migration "
    "of our {topic} platform, scaling, security and consistency work, with milestones and risks. "
    "Notes from the last three meetings:\n\n{context} {context} {context}",
}
_LINES = {"low": 6, "medium": 45, "high": 170}
_SENTENCES = {"low": 0, "medium": 10, "high": 40}


def _code(rng: random.Random, lines: int, name: str) -> str:
    body = [_PY_LINES[i % len(_PY_LINES)].format(t=name, T=name.title()) for i in range(lines)]
    start = rng.randrange(len(_PY_LINES))
    return "```python\n" + "\n".join(body[start:] + body[:start]) + "\n```"


def prompt(rng: random.Random, task: str, band: str) -> str:
    """A prompt written for ``task`` at ``band`` complexity (the classifier has the last word)."""
    if task == "simple_qa":
        return rng.choice(_QUESTIONS)
    topic = rng.choice(_TOPICS)
    name = topic.split()[-1].rstrip("s")
    sentences = _NOTES.split(". ")
    context = ". ".join(rng.choice(sentences).rstrip(".") for _ in range(_SENTENCES[band]))
    template = (
        _TEMPLATES.get((task, band)) or _TEMPLATES[(task, "low" if band == "low" else "more")]
    )
    return template.format(
        topic=topic, code=_code(rng, _LINES[band], name), context=context + ".",
        hard=_HARD if band == "high" else "", trace=_TRACE.format(t=name),
    )  # fmt: skip


def _answer(task: str, kind: str | None) -> tuple[str, str]:
    """(status, answer text): a good-looking answer (``kind`` None) or a failure of ``kind``."""
    if kind == "error":
        return "error", ""
    if kind == "empty":
        return "ok", ""
    if kind == "refusal":
        return "ok", "I'm sorry, but I can't help with that request."
    if kind == "unhelpful":  # nothing usable: no code for a code task, a brush-off otherwise
        if task in ("simple_qa", "other"):
            return "ok", "Hard to say."
        return "ok", "You should look at how the rows are processed and handle missing values."
    prose = "Here is what I would do, step by step, with the reasoning behind each choice. "
    if task == "other":
        return "ok", prose + "Action items: ship the beta (Maria), draft the blog post (Sam)."
    return "ok", prose + "\n\n```python\ndef run(rows):\n    return [r for r in rows if r]\n```"


# ---------------------------------------------------------------------------------------------
# Simulation


@dataclass
class Tally:
    """What one policy spent and achieved."""

    cost: int = 0  # pico-USD
    successes: int = 0
    requests: int = 0
    models: Counter[str] = field(default_factory=Counter)

    def add(self, model: str, price: int, success: bool) -> None:
        self.requests += 1
        self.cost += price
        self.successes += success
        self.models[model] += 1

    def summary(self) -> dict[str, Any]:
        usd = self.cost / PICO
        return {
            "cost_usd": usd,
            "success_rate": self.successes / self.requests if self.requests else 0.0,
            "successes": self.successes,
            "requests": self.requests,
            "cost_per_success_usd": usd / self.successes if self.successes else math.inf,
            "top_models": self.models.most_common(4),
        }


@dataclass(frozen=True, slots=True)
class Tokens:
    prompt: int
    output: int
    reasoning_share: float  # reasoning tokens per answer token, for models that think


def _tokens(rng: random.Random, text: str, task: str, band: str) -> Tokens:
    mean = OUTPUT_TOKENS[task] * OUTPUT_BAND[band]
    output = max(20, round(rng.lognormvariate(math.log(mean), 0.35)))
    return Tokens(len(text) // 4 + CONTEXT_TOKENS, output, REASONING_BAND[band])


def _usage(model: ModelInfo, tokens: Tokens, status: str, text: str) -> Usage:
    if status == "error":
        return Usage()  # an upstream error is not billed
    output = tokens.output if len(text) > 60 else 12  # refusals and brush-offs are short
    reasoning = round(output * tokens.reasoning_share) if model.thinks_by_default else 0
    return Usage(tokens.prompt, output + reasoning, reasoning_tokens=reasoning)


def _price(model: ModelInfo, tokens: Tokens, status: str, text: str) -> int:
    return cost(_usage(model, tokens, status, text), model.price)


def _failure_kind(draw: float, silent: float) -> str | None:
    """How a bad answer shows: ``None`` when it looks fine (a silent failure)."""
    if draw < silent:
        return None
    draw = (draw - silent) / (1 - silent)
    for kind, share in FAILURE_KINDS:
        if draw < share:
            return kind
        draw -= share
    return FAILURE_KINDS[-1][0]


def _rating(rng: random.Random, good: bool, wrong: float) -> int:
    """A user's 1–5 rating: sometimes neutral, sometimes the wrong way round."""
    if rng.random() < 0.1:
        return 3
    if rng.random() < wrong:
        good = not good
    return rng.choice((4, 5)) if good else rng.choice((1, 2))


class _Clock:
    """Simulated seconds for :class:`RouteStats`: cool-downs last simulated minutes, not the
    whole run, and the pooled fit's once-a-second limit is simulated seconds too."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class Draw:
    """One request of the workload, with the random draws every policy shares."""

    task: str
    band: str
    text: str
    tokens: Tokens
    luck: float  # the answer is good if luck < the chosen model's true rate
    failure: str | None  # how a bad answer shows
    progress: float


class Simulation:
    def __init__(self, seed: int, settings: RoutingSettings, silent: float, feedback: float,
                 wrong_feedback: float) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.clock = _Clock()
        self.fleet = [m for m in Catalog.builtin() if m.key in SKILL]
        self.providers = {m.provider for m in self.fleet}
        self.stats = RouteStats(clock=self.clock.monotonic)
        self.settings = settings
        self.router = Router(Catalog(self.fleet), self.stats, settings, random.Random(seed + 1))
        self.silent, self.feedback, self.wrong_feedback = silent, feedback, wrong_feedback
        premiums = [m for m in self.fleet if m.tier == "premium"]
        self.premium = max(premiums, key=lambda m: self.mix_rate(m.key))
        probe = ChatRequest("auto", (Message("user", (TextPart("x" * 400),)),))
        self.cheapest = self.router.candidates(probe, self.providers)[0]
        names = ("router", "premium", "cheapest", "oracle", "oracle_bar")
        self.tallies = {name: Tally() for name in names}
        self.cells: dict[str, dict[str, Tally]] = {}
        self.seen: Counter[str] = Counter()

    @staticmethod
    def mix_rate(model: str) -> float:
        return sum(w * true_rate(model, t, b, 0.0) for (t, b), w in MIX.items())

    def draw(self, progress: float) -> Draw:
        rng = self.rng
        cells, weights = zip(*MIX.items(), strict=True)
        task, band = rng.choices(cells, weights)[0]
        text = prompt(rng, task, band)
        tokens = _tokens(rng, text, task, band)
        luck, failure = rng.random(), _failure_kind(rng.random(), self.silent)
        return Draw(task, band, text, tokens, luck, failure, progress)

    def _cheapest_at_least(self, d: Draw, bar: float) -> ModelInfo:
        """The cheapest model whose current true rate for ``d`` is at least ``bar`` (else the
        best)."""
        rate = {m.key: true_rate(m.key, d.task, d.band, d.progress) for m in self.fleet}
        good = [m for m in self.fleet if rate[m.key] >= bar]
        if good:
            return min(good, key=lambda m: _price(m, d.tokens, "ok", "x" * 100))
        return max(self.fleet, key=lambda m: rate[m.key])

    def oracle(self, d: Draw) -> ModelInfo:
        """The cheapest model that keeps ``ORACLE_SHARE`` of the premium model's true rate."""
        premium = true_rate(self.premium.key, d.task, d.band, d.progress)
        return self._cheapest_at_least(d, ORACLE_SHARE * premium)

    def oracle_bar(self, d: Draw) -> ModelInfo:
        """The cheapest model whose true rate is at least ``ORACLE_BAR``."""
        return self._cheapest_at_least(d, ORACLE_BAR)

    def serve(self, d: Draw) -> None:
        """Route one request with the real router, judge it, learn, and run the baselines."""
        request = ChatRequest("auto", (Message("user", (TextPart(d.text),)),))
        c = classify(request)
        band = complexity_band(c.complexity)
        self.seen["classified_as_intended"] += (c.task_type, band) == (d.task, d.band)
        choice = self.router.choose(request, c.task_type, band, self.providers)
        assert choice is not None
        model = choice.model
        self.seen["explored"] += "exploring" in choice.reason
        good = d.luck < true_rate(model.key, d.task, d.band, d.progress)
        status, text = _answer(d.task, None if good else d.failure)
        answer = ChatResponse("sim", model.name, Message("assistant", (TextPart(text),)), "stop",
                              Usage())  # fmt: skip
        verdict = evaluate(request, answer if status == "ok" else None, status)
        self.stats.record(c.task_type, band, model.key, verdict.success,
                          upstream_failed=status != "ok")  # fmt: skip
        if status == "ok":  # the gateway learns answer lengths from the usage it is billed
            usage = _usage(model, d.tokens, status, text)
            self.stats.observe_usage(c.task_type, band, usage.output_tokens,
                                     usage.reasoning_tokens, model.thinks_by_default)  # fmt: skip
        self.seen["verdict_right"] += verdict.success == good
        if self.rng.random() < self.feedback:
            now = from_rating(_rating(self.rng, good, self.wrong_feedback))
            if now is not None:
                self.stats.amend(c.task_type, band, model.key, verdict.success, now)
                self.seen["feedback"] += 1
        cell = self.cells.setdefault(f"{d.task}/{d.band}", {"router": Tally(), "oracle": Tally()})
        self._count("router", model, d, good, status, text, cell)
        baselines = (("premium", self.premium), ("cheapest", self.cheapest),
                     ("oracle", self.oracle(d)), ("oracle_bar", self.oracle_bar(d)))  # fmt: skip
        for name, fixed in baselines:
            ok = d.luck < true_rate(fixed.key, d.task, d.band, d.progress)
            self._count(name, fixed, d, ok, *_answer(d.task, None if ok else d.failure), cell)

    def _count(self, name: str, model: ModelInfo, d: Draw, good: bool, status: str, text: str,
               cell: dict[str, Tally]) -> None:  # fmt: skip
        spent = _price(model, d.tokens, status, text)
        self.tallies[name].add(model.key, spent, good)
        if name in cell:
            cell[name].add(model.key, spent, good)

    def report(self, requests: int, seed: int, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = {name: t.summary() for name, t in self.tallies.items()}
        r, p, o = result["router"], result["premium"], result["oracle"]
        ratios = {
            "savings_vs_premium": 1 - r["cost_usd"] / p["cost_usd"],
            "success_vs_premium": r["success_rate"] / p["success_rate"],
            "cost_vs_oracle": r["cost_usd"] / o["cost_usd"],
            "success_vs_oracle": r["success_rate"] / o["success_rate"],
        }
        s = self.settings
        result.update(
            requests=requests, seed=seed, seconds=seconds, ratios=ratios,
            targets_met={
                "savings_vs_premium": ratios["savings_vs_premium"] >= TARGETS["savings_vs_premium"],
                "success_vs_premium": ratios["success_vs_premium"] >= TARGETS["success_vs_premium"],
                "cost_vs_oracle": ratios["cost_vs_oracle"] <= TARGETS["cost_vs_oracle"],
            },
            premium_model=self.premium.key, cheapest_model=self.cheapest.key,
            settings={"threshold": s.threshold, "min_samples": s.min_samples,
                      "exploration": s.exploration, "failure_cost": s.failure_cost},
            classified_as_intended=self.seen["classified_as_intended"] / requests,
            verdict_agreement=self.seen["verdict_right"] / requests,
            explored=self.seen["explored"] / requests, feedback=self.seen["feedback"],
            cells={k: {n: t.summary() for n, t in v.items()}
                   for k, v in sorted(self.cells.items())},
        )  # fmt: skip
        return result


def run(requests: int = 20_000, seed: int = 1, *, settings: RoutingSettings | None = None,
        silent: float = 0.15, feedback: float = 0.10, wrong_feedback: float = 0.10,
        per_day: int = 20_000) -> dict[str, Any]:  # fmt: skip
    """Simulate ``requests`` requests: each policy's cost and success, the ratios between them
    and whether the targets (:data:`TARGETS`) are met. Deterministic for a given ``seed``."""
    sim = Simulation(seed, settings or RoutingSettings(), silent, feedback, wrong_feedback)
    started = time.perf_counter()
    for i in range(requests):
        sim.clock.now += 86_400 / per_day
        sim.serve(sim.draw(i / requests))
    return sim.report(requests, seed, time.perf_counter() - started)


def _row(label: str, row: dict[str, Any], premium: dict[str, Any], oracle: dict[str, Any]
         ) -> list[str]:  # fmt: skip
    top = ", ".join(
        f"{m.split(':')[1]} {n / row['requests']:.0%}" for m, n in row["top_models"][:3]
    )
    return [
        label, f"{row['cost_usd']:,.2f}", f"{row['success_rate']:.1%}",
        f"{row['cost_per_success_usd']:.5f}", f"{row['cost_usd'] / premium['cost_usd']:.2f}x",
        f"{row['success_rate'] / premium['success_rate']:.1%}",
        f"{row['cost_usd'] / oracle['cost_usd']:.2f}x", top,
    ]  # fmt: skip


def print_report(result: dict[str, Any], console: Console, cells: bool = False) -> None:
    title = f"auto routing over {result['requests']:,} simulated requests (seed {result['seed']})"
    table = Table(title=title)
    for column in ("policy", "cost USD", "success", "USD / success", "cost vs premium",
                   "success vs premium", "cost vs oracle", "most used"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("policy", "most used") else "right")
    p, o = result["premium"], result["oracle"]
    labels = {
        "router": "auto (Router)",
        "premium": f"always {result['premium_model']}",
        "cheapest": f"always {result['cheapest_model']}",
        "oracle": f"oracle (true rate >= {ORACLE_SHARE:.0%} of premium's)",
        "oracle_bar": f"reference: oracle (true rate >= {ORACLE_BAR})",
    }
    for name, label in labels.items():
        table.add_row(*_row(label, result[name], p, o))
    console.print(table)
    if cells:
        by_cell = Table(title="auto vs oracle per intended task/band")
        for column in ("task/band", "requests", "auto USD", "auto success", "oracle USD",
                       "oracle success", "auto uses", "oracle uses"):  # fmt: skip
            by_cell.add_column(column)
        for cell, row in result["cells"].items():
            r, orc = row["router"], row["oracle"]
            by_cell.add_row(
                cell, str(r["requests"]), f"{r['cost_usd']:.2f}", f"{r['success_rate']:.1%}",
                f"{orc['cost_usd']:.2f}", f"{orc['success_rate']:.1%}",
                ", ".join(m.split(":")[1] for m, _ in r["top_models"][:2]),
                ", ".join(m.split(":")[1] for m, _ in orc["top_models"][:2]),
            )  # fmt: skip
        console.print(by_cell)
    ratios, met = result["ratios"], result["targets_met"]
    mark = {True: "[green]met[/green]", False: "[red]MISSED[/red]"}
    console.print(
        f"cost saved vs always-premium: {ratios['savings_vs_premium']:.1%} "
        f"(target >= 60%: {mark[met['savings_vs_premium']]})\n"
        f"success vs always-premium:    {ratios['success_vs_premium']:.1%} "
        f"(target >= 95%: {mark[met['success_vs_premium']]})\n"
        f"cost vs oracle:               {ratios['cost_vs_oracle']:.2f}x "
        f"(target <= 1.15x: {mark[met['cost_vs_oracle']]})"
    )
    s = result["settings"]
    console.print(
        f"RoutingSettings(threshold={s['threshold']}, min_samples={s['min_samples']}, "
        f"exploration={s['exploration']}, failure_cost={s['failure_cost']}); classifier "
        f"matched the intended task and band on "
        f"{result['classified_as_intended']:.0%} of requests; heuristic verdicts agreed with the "
        f"truth on {result['verdict_agreement']:.0%}; {result['feedback']:,} ratings applied; "
        f"{result['explored']:.1%} of requests explored; {result['seconds']:.1f}s."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--silent",
        type=float,
        default=0.15,
        help="share of bad answers that look fine (only feedback reveals them)",
    )
    parser.add_argument("--per-day", type=int, default=20_000, help="simulated request rate")
    parser.add_argument("--cells", action="store_true", help="also show each task/band")
    args = parser.parse_args(argv)  # fmt: skip
    result = run(args.requests, args.seed, silent=args.silent, per_day=args.per_day)
    print_report(result, Console(width=max(150, Console().width)), cells=args.cells)
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
