"""The Gateway: every long-lived part of one running Meterline, built from Settings.

Nothing is created at import time; :meth:`Gateway.start` opens the database, the log writer,
the upstream HTTP session and the providers, and :meth:`Gateway.stop` closes them in reverse.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.accounting.alerts import AlertSink
from meterline.accounting.counters import Counters, open_counters
from meterline.accounting.ledger import Ledger
from meterline.auth import ApiKey, KeyRing
from meterline.cache import CacheBackend, CacheStage, open_cache
from meterline.catalog import Catalog
from meterline.errors import ModelNotFound
from meterline.metrics import Metrics, Snapshot, WorkerSnapshots
from meterline.pipeline import Pipeline, Stage
from meterline.pipeline.auth import AuthStage
from meterline.pipeline.budget import BudgetStage
from meterline.pipeline.classify import ClassifyStage
from meterline.pipeline.commands import CommandStage
from meterline.pipeline.compress import CompressStage
from meterline.pipeline.dispatch import Dispatch
from meterline.pipeline.guard import GuardStage
from meterline.pipeline.limits import RateLimitStage
from meterline.pipeline.log import RequestLog
from meterline.pipeline.route import Resolver, RouteStage, auto_tier
from meterline.pipeline.trace import TraceStage
from meterline.providers import ProviderDeps, ProviderRegistry, register_models
from meterline.providers.anthropic import AnthropicProvider
from meterline.providers.proxy import Proxies, ProxySettingError
from meterline.providers.upstream import UpstreamPool
from meterline.routing.experiments import Experiments
from meterline.routing.explain import explain_route
from meterline.routing.feedback import FeedbackService
from meterline.routing.llm_classifier import LLMClassifier
from meterline.routing.policy import Router
from meterline.routing.stats import RouteStats
from meterline.settings import ConfigError, ConfigProblem, Settings, default_database_url
from meterline.store import LogWriter, open_engine
from meterline.telemetry import otlp_endpoint
from meterline.types import ChatRequest

if TYPE_CHECKING:
    from meterline.cache.embedder import Embedder
    from meterline.cache.semantic import SemanticCache
    from meterline.tracing import Tracing

__all__ = ["Gateway"]

log = logging.getLogger("meterline")


class Gateway:
    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.env = dict(os.environ if env is None else env)
        try:
            self.proxies = Proxies.from_env(self.env)  # HTTPS_PROXY, HTTP_PROXY, NO_PROXY
        except ProxySettingError as exc:
            raise ConfigError(
                [ConfigProblem("environment", 0, 0, exc.variable, exc.message)]
            ) from None
        self.catalog = Catalog.builtin()
        register_models(self.catalog, settings.providers)
        self._engine: AsyncEngine | None = None
        self._writer: LogWriter | None = None
        self._session: aiohttp.ClientSession | None = None  # alert webhooks
        self._pool: UpstreamPool | None = None  # provider calls
        self._providers: ProviderRegistry | None = None
        self._pipeline: Pipeline | None = None
        self._counters: Counters | None = None
        self._keys: KeyRing | None = None
        self._ledger: Ledger | None = None
        self._limits: RateLimitStage | None = None
        self._cache_backend: CacheBackend | None = None
        self.cache: CacheStage | None = None
        self._embedder: Embedder | None = None
        self.semantic_cache: SemanticCache | None = None
        self.stats = RouteStats()
        self.router = Router(self.catalog, self.stats, settings.routing)
        self.route_stage: RouteStage | None = None
        self.feedback: FeedbackService | None = None
        self.experiments: Experiments | None = None
        self.llm_classifier: LLMClassifier | None = None
        self.auth: AuthStage | None = None
        self.metrics = Metrics()
        self._snapshots: WorkerSnapshots | None = None
        self._tracing: Tracing | None = None

    @property
    def database_url(self) -> str:
        return self.settings.database_url or default_database_url(self.env)

    def _spill_dir(self) -> Path:
        if self.settings.log.spill_dir:
            return Path(self.settings.log.spill_dir).expanduser()
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).expanduser().parent / "spill"
        return Path(self.env.get("METERLINE_HOME") or Path.home() / ".meterline") / "spill"

    async def start(self) -> None:
        self._engine = await open_engine(self.database_url)
        self._writer = writer = LogWriter(self._engine, self.settings.log, self._spill_dir())
        self.metrics.probe = lambda: {"log_rows_written": writer.written,
                                      "log_rows_spilled": writer.spilled,
                                      "log_queue_rows": writer.backlog}  # fmt: skip
        writer.observers.append(self.metrics.observe)
        writer.start()
        shared = self.env.get("METERLINE_METRICS_DIR")  # set by serve --workers N
        if shared:
            self._snapshots = WorkerSnapshots(self.metrics, Path(shared))
            self._snapshots.start()
        self._session = aiohttp.ClientSession()
        self._pool = UpstreamPool(proxies=self.proxies)
        deps = ProviderDeps(
            self._pool, self.catalog, self.settings.retry, self.settings.timeout, self.env
        )
        self._providers = ProviderRegistry.build(self.settings.providers, deps)
        await self._start_accounting()
        assert self._keys is not None and self._ledger is not None and self._counters is not None
        acc = self.settings.accounting
        resolver = Resolver(self.catalog, self._providers, self.settings.aliases)
        self._limits = RateLimitStage(self._counters, acc)
        self.experiments = Experiments(self._engine)
        await self.experiments.load()
        self.route_stage = RouteStage(resolver, self.router, self.stats, self.experiments)
        self.llm_classifier = LLMClassifier(
            self.settings.routing.llm_classifier,
            resolver,
            self._providers,
            self._engine,
            self._writer,
        )
        budget = BudgetStage(self._ledger, self.catalog, self._providers, acc.downgrade_at)
        self.feedback = FeedbackService(self._engine, self._writer, self.stats)
        c = self.settings.cache
        self._cache_backend = await open_cache(
            c.backend, acc.redis_url, f"{acc.redis_prefix}cache:", c.max_entries, c.max_bytes
        )
        self.cache = CacheStage(self._cache_backend, c)
        semantic = await self._start_semantic_cache()
        self.auth = AuthStage(self._keys, self.settings.master_key)
        endpoint = otlp_endpoint(self.settings.telemetry, self.env)
        if endpoint is not None:
            from meterline.tracing import Tracing  # the SDK, loaded only when tracing is on

            self._tracing = Tracing(endpoint, self.settings.telemetry.service_name)
        self._pipeline = Pipeline(
            [
                *([TraceStage(self._tracing)] if self._tracing is not None else []),
                RequestLog(self._writer),
                self.llm_classifier,
                self.auth,
                self._limits,
                CommandStage(self.feedback),
                GuardStage(self.settings.guard),
                ClassifyStage(),
                self.route_stage,
                self.cache,
                *semantic,
                CompressStage(self.settings.compression),
                budget,
                Dispatch(
                    self._providers,
                    self.catalog,
                    budget,
                    self._writer,
                    self.settings.fallback,
                    self.stats,
                ),
            ]
        )
        log.info("meterline started with providers: %s", ", ".join(p.name for p in self._providers))

    async def _start_semantic_cache(self) -> list[Stage]:
        """The semantic cache stage, when configured; its model loads only then."""
        c = self.settings.cache
        if self._cache_backend is None or not (c.enabled and c.semantic.wanted):
            return []
        from meterline.cache.embedder import E5Embedder
        from meterline.cache.semantic import SemanticCache

        self._embedder = await E5Embedder.open(c.semantic.max_pending)
        self.semantic_cache = SemanticCache(self._cache_backend, self._embedder, c)
        return [self.semantic_cache]

    async def _start_accounting(self) -> None:
        assert self._engine is not None and self._session is not None
        acc = self.settings.accounting
        self._counters = await open_counters(acc)
        self._keys = KeyRing(self._engine)
        await self._keys.start()
        sink = AlertSink(self._engine, self._session, acc.alert_webhook)
        self._ledger = Ledger(self._counters, self._engine, acc, sink)
        await self._ledger.load()
        await self._ledger.rebuild()
        await self._ledger.rebuild_keys(await self._keys.list())
        await self.stats.rebuild(self._engine)

    async def stop(self) -> None:
        if self._ledger is not None:
            await self._ledger.drain()
        if self.llm_classifier is not None:
            await self.llm_classifier.drain()
        # In this order: the last log rows, then the metrics that counted them, then the
        # connections everything above used.
        closes: list[Callable[[], Awaitable[None]] | None] = [
            None if self._keys is None else self._keys.aclose,
            None if self._writer is None else self._writer.close,
            None if self._snapshots is None else self._snapshots.close,
            None if self._tracing is None else self._tracing.close,
            None if self._providers is None else self._providers.aclose,
            None if self._pool is None else self._pool.close,
            None if self._session is None else self._session.close,
            None if self._counters is None else self._counters.aclose,
            None if self._embedder is None else self._embedder.aclose,
            None if self._cache_backend is None else self._cache_backend.aclose,
            None if self._engine is None else self._engine.dispose,
        ]
        for close in closes:
            if close is not None:
                await close()

    @property
    def engine(self) -> AsyncEngine:
        assert self._engine is not None, "the gateway has not been started"
        return self._engine

    @property
    def writer(self) -> LogWriter:
        assert self._writer is not None, "the gateway has not been started"
        return self._writer

    @property
    def providers(self) -> ProviderRegistry:
        assert self._providers is not None, "the gateway has not been started"
        return self._providers

    @property
    def keys(self) -> KeyRing:
        assert self._keys is not None, "the gateway has not been started"
        return self._keys

    @property
    def counters(self) -> Counters:
        assert self._counters is not None, "the gateway has not been started"
        return self._counters

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "the gateway has not been started"
        return self._ledger

    @property
    def pipeline(self) -> Pipeline:
        assert self._pipeline is not None, "the gateway has not been started"
        return self._pipeline

    def explain(self, request: ChatRequest) -> dict[str, object]:
        """How ``request`` would be classified and routed, without calling a model."""
        assert self.route_stage is not None, "the gateway has not been started"
        return explain_route(self.route_stage, self.router, request)

    async def metrics_snapshot(self) -> Snapshot:
        """This process's counts, with the other workers' when there are several."""
        if self._snapshots is not None:
            return await self._snapshots.combined()
        return self.metrics.snapshot()

    async def upstream_token_count(
        self, model: str, body: dict[str, Any], beta: str | None
    ) -> Any | None:
        """Anthropic's own ``count_tokens`` answer for a body an Anthropic client sent, when
        ``model`` names a model an Anthropic provider serves; ``None`` otherwise (``auto``, an
        alias of it, another provider's model, an unknown one)."""
        stage = self.route_stage
        if stage is None or auto_tier(stage.resolver.aliases.get(model, model))[0]:
            return None  # routed per request: no one upstream to ask
        try:
            route = stage.resolver.resolve(model)
        except ModelNotFound:
            return None
        provider = self.providers.get(route.provider)
        if not isinstance(provider, AnthropicProvider):
            return None
        return await provider.count_tokens({**body, "model": route.model.name}, beta)

    async def model_ids(self, key: ApiKey | None = None) -> list[tuple[str, str]]:
        """``(id, owner)`` for every model of every enabled provider (a name served by more
        than one provider is listed as ``provider:name`` for each), then ``auto`` and the
        configured aliases, which clients such as Cursor can pick like any model; only those
        ``key`` may use, for a virtual key limited to some models."""
        served: list[tuple[str, str]] = []
        for provider in self.providers:
            served.extend((name, provider.name) for name in await provider.list_models())
        counts: dict[str, int] = {}
        for name, _ in served:
            counts[name] = counts.get(name, 0) + 1
        listed = [
            (name if counts[name] == 1 else f"{owner}:{name}", owner) for name, owner in served
        ]
        routed = [("auto", "meterline")] + [(alias, "meterline") for alias in self.settings.aliases]
        every = listed + routed
        return every if key is None else [(m, owner) for m, owner in every if key.allows(m)]
