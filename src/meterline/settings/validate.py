"""Turn a YAML document into :class:`Settings`, reporting every error with its line and column."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from meterline.accounting.counters.shared import slots_problem
from meterline.catalog.pricing import parse_usd_per_million
from meterline.settings.schema import ModelEntry, Settings

__all__ = ["ConfigError", "ConfigProblem", "parse_config"]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    source: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}" if self.line else self.source
        return f"{where}: {self.path or '(top level)'}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class _Walker:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[ConfigProblem] = []
        self.nodes: dict[str, yaml.Node] = {}

    def fail(self, node: yaml.Node, path: str, message: str) -> None:
        mark = node.start_mark
        self.problems.append(
            ConfigProblem(self.source, mark.line + 1, mark.column + 1, path, message)
        )

    def convert(self, node: yaml.Node, hint: Any, path: str) -> Any:
        self.nodes[path] = node
        origin = get_origin(hint)
        if origin in (Union, types.UnionType):
            return self._union(node, hint, path)
        if dataclasses.is_dataclass(hint):
            return self._dataclass(node, hint, path)
        if origin is tuple:
            return self._sequence(node, get_args(hint)[0], path)
        if origin is dict:
            return self._mapping(node, get_args(hint)[1], path)
        if origin is Literal:
            value = self._scalar(node, str, path)
            if value is not None and value not in get_args(hint):
                self.fail(node, path, f"must be one of {', '.join(get_args(hint))}")
            return value
        if hint is Any:
            return yaml.safe_load(yaml.serialize(node))
        return self._scalar(node, hint, path)

    def _union(self, node: yaml.Node, hint: Any, path: str) -> Any:
        options = [a for a in get_args(hint) if a is not type(None)]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return None
        return self.convert(node, options[0], path)

    def _scalar(self, node: yaml.Node, kind: type, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, f"expected {_kind(kind)}, got a {_describe(node)}")
            return None
        value = yaml.safe_load(yaml.serialize(node))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(node, path, f"expected {_kind(kind)}, got {value!r}")
            return None
        return value

    def _sequence(self, node: yaml.Node, item: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"expected a list, got a {_describe(node)}")
            return ()
        return tuple(self.convert(n, item, f"{path}[{i}]") for i, n in enumerate(node.value))

    def _mapping(self, node: yaml.Node, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping, got a {_describe(node)}")
            return {}
        return {
            str(k.value): self.convert(v, value, f"{path}.{k.value}" if path else str(k.value))
            for k, v in node.value
        }

    def _dataclass(self, node: yaml.Node, cls: Any, path: str) -> Any:
        if cls is ModelEntry and isinstance(node, yaml.ScalarNode):
            name = self._scalar(node, str, path)
            return ModelEntry(name=name) if name else None
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping, got a {_describe(node)}")
            return None
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            sub = f"{path}.{key}" if path else key
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(key_node, sub, f"unknown key{hint}")
                continue
            values[key] = self.convert(value_node, hints[key], sub)
        required = [
            n
            for n, f in fields.items()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        for name in required:
            if values.get(name) is None:
                self.fail(node, f"{path}.{name}" if path else name, "is required")
        if any(values.get(n) is None for n in required):
            return None
        return cls(**{k: v for k, v in values.items() if v is not None})


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _kind(kind: type) -> str:
    return _KIND_NAMES.get(kind, f"a {kind.__name__}")


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "scalar"


def _check_semantics(settings: Settings, walker: _Walker, root: yaml.Node) -> None:
    def node(path: str) -> yaml.Node:
        return walker.nodes.get(path, root)

    seen: set[str] = set()
    for i, p in enumerate(settings.providers):
        path = f"providers[{i}]"
        if p.name in seen:
            walker.fail(node(f"{path}.name"), f"{path}.name", f"'{p.name}' is used twice")
        seen.add(p.name)
        if p.type == "openai-compatible" and not p.base_url:
            walker.fail(node(path), f"{path}.base_url", "an openai-compatible provider needs one")
        for j, model in enumerate(p.models):
            _check_model(walker, node, f"{path}.models[{j}]", model)
    _check_accounting(walker, node, settings)
    _check_semantic_cache(walker, node, settings)
    _check_routing(walker, node, settings)
    if not 0 < settings.server.port < 65536:
        walker.fail(node("server.port"), "server.port", "must be between 1 and 65535")


_TIERS = ("economy", "standard", "premium")
_PRICE_KEYS = ("input", "output", "cache_read", "cache_write", "reasoning")


def _check_model(
    walker: _Walker, node: Callable[[str], yaml.Node], path: str, model: ModelEntry
) -> None:
    if model.tier is not None and model.tier not in _TIERS:
        walker.fail(node(f"{path}.tier"), f"{path}.tier", f"must be one of {', '.join(_TIERS)}")
    for key, value in (model.price or {}).items():
        where = f"{path}.price.{key}"
        if key not in _PRICE_KEYS:
            walker.fail(node(where), where, f"unknown price; use {', '.join(_PRICE_KEYS)}")
            continue
        try:
            parse_usd_per_million(value)
        except (ValueError, ArithmeticError):
            walker.fail(node(where), where, 'must be USD per 1M tokens, e.g. "0.15"')


_SCOPES = ("global", "tenant", "team", "key")
_PERIODS = ("daily", "weekly", "monthly")


def _usd(walker: _Walker, node: Callable[[str], yaml.Node], path: str, value: str | None) -> None:
    if value is None:
        return
    try:
        ok = Decimal(value) >= 0
    except ArithmeticError:
        ok = False
    if not ok:
        walker.fail(node(path), path, 'must be an amount in USD, e.g. "5.00"')


def _one_of(
    walker: _Walker,
    node: Callable[[str], yaml.Node],
    path: str,
    value: str,
    options: tuple[str, ...],
) -> None:
    if value not in options:
        walker.fail(node(path), path, f"must be one of {', '.join(options)}")


def _check_accounting(
    walker: _Walker, node: Callable[[str], yaml.Node], settings: Settings
) -> None:
    acc = settings.accounting
    try:
        ZoneInfo(acc.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        path = "accounting.timezone"
        walker.fail(node(path), path, f"unknown time zone {acc.timezone!r}")
    if not 0 < acc.downgrade_at <= 1:
        walker.fail(node("accounting.downgrade_at"), "accounting.downgrade_at", "must be in (0, 1]")
    if problem := slots_problem(acc.counters_slots):
        path = "accounting.counters_slots"
        walker.fail(node(path), path, problem)
    for i, entry in enumerate(acc.budgets):
        path = f"accounting.budgets[{i}]"
        if entry.scope not in _SCOPES:
            walker.fail(
                node(f"{path}.scope"), f"{path}.scope", f"must be one of {', '.join(_SCOPES)}"
            )
        if entry.period not in _PERIODS:
            walker.fail(
                node(f"{path}.period"), f"{path}.period", f"must be one of {', '.join(_PERIODS)}"
            )
        if entry.scope != "global" and entry.subject == "*":
            walker.fail(node(path), f"{path}.subject", f"a {entry.scope} budget needs a subject")
        _usd(walker, node, f"{path}.usd", entry.usd)
    _usd(walker, node, "accounting.daily_halt_usd", acc.daily_halt_usd)
    _usd(walker, node, "accounting.monthly_alert_usd", acc.monthly_alert_usd)
    for name, value in acc.provider_daily_halt_usd.items():
        _usd(walker, node, f"accounting.provider_daily_halt_usd.{name}", value)


def _check_semantic_cache(
    walker: _Walker, node: Callable[[str], yaml.Node], settings: Settings
) -> None:
    semantic = settings.cache.semantic
    thresholds = {"cache.semantic.threshold": semantic.threshold}
    for model, route in semantic.by_model.items():
        if route.threshold is not None:
            thresholds[f"cache.semantic.by_model.{model}.threshold"] = route.threshold
    for path, value in thresholds.items():
        if not 0 < value <= 1:
            walker.fail(node(path), path, "must be a cosine similarity in (0, 1]")
    for name in ("max_entries", "max_chars", "max_pending"):
        if getattr(semantic, name) < 1:
            path = f"cache.semantic.{name}"
            walker.fail(node(path), path, "must be at least 1")


def _check_routing(walker: _Walker, node: Callable[[str], yaml.Node], settings: Settings) -> None:
    routing = settings.routing
    for name in ("threshold", "exploration"):
        if not 0 <= getattr(routing, name) <= 1:
            path = f"routing.{name}"
            walker.fail(node(path), path, "must be a share between 0 and 1")
    if routing.min_samples < 1:
        walker.fail(node("routing.min_samples"), "routing.min_samples", "must be at least 1")
    if routing.failure_cost < 0:
        walker.fail(node("routing.failure_cost"), "routing.failure_cost", "must not be negative")


def parse_config(text: str, source: str = "<config>") -> Settings:
    """Parse and validate a YAML config; raise :class:`ConfigError` listing every problem."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            [ConfigProblem(source, line, col, "", f"invalid YAML: {problem}")]
        ) from None
    if root is None:
        return Settings()
    walker = _Walker(source)
    settings = walker.convert(root, Settings, "")
    if settings is not None and not walker.problems:
        _check_semantics(settings, walker, root)
    if walker.problems or settings is None:
        raise ConfigError(walker.problems)
    return typing.cast(Settings, settings)
