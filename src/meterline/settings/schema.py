"""The settings model: plain frozen dataclasses, validated once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "AccountingSettings",
    "BudgetEntry",
    "CacheSettings",
    "CompressionConfig",
    "FallbackSettings",
    "GuardSettings",
    "TelemetrySettings",
    "LLMClassifierSettings",
    "RateLimit",
    "RoutingSettings",
    "SemanticCacheSettings",
    "SemanticRoute",
    "LogSettings",
    "ModelEntry",
    "ProviderSettings",
    "RetrySettings",
    "ServerSettings",
    "Settings",
    "TimeoutSettings",
]


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Retries of one upstream call on 429 / 5xx / connection errors, with exponential backoff."""

    max_attempts: int = 3
    backoff_initial: float = 0.25
    backoff_max: float = 8.0
    retry_on_status: tuple[int, ...] = (429, 500, 502, 503, 504, 529)


@dataclass(frozen=True, slots=True)
class TimeoutSettings:
    """Seconds: to connect, to the first byte of the answer, for the whole call."""

    connect: float = 10.0
    first_byte: float = 120.0
    total: float = 600.0


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model a provider serves; fields left out are taken from the built-in catalog."""

    name: str
    tier: str | None = None
    context_window: int | None = None
    max_output: int | None = None
    tools: bool | None = None
    vision: bool | None = None
    json: bool | None = None
    price: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """One upstream. ``command``/``max_concurrency`` apply to the coding-CLI provider types."""

    name: str
    type: str = "openai-compatible"
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    models: tuple[ModelEntry, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    command: str | None = None
    max_concurrency: int = 4
    auto_cache: bool = False  # anthropic: add prompt-cache breakpoints to long prefixes
    retry: RetrySettings | None = None
    timeout: TimeoutSettings | None = None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 4000
    max_body_bytes: int = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class LogSettings:
    """The batched request-log writer. Rows that do not fit the queue spill to ``spill_dir``."""

    queue_size: int = 10_000
    batch_size: int = 500
    flush_interval: float = 0.25
    spill_dir: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetEntry:
    """A spend limit: ``scope`` global | tenant | team | key, ``subject`` its name (``*`` for
    global), ``period`` daily | weekly | monthly, ``usd`` a decimal string."""

    scope: str
    period: str
    usd: str
    subject: str = "*"


@dataclass(frozen=True, slots=True)
class RateLimit:
    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class AccountingSettings:
    """Budgets, rate limits and spend breakers. Secrets and URLs may also come from the
    environment: ``METERLINE_REDIS_URL``, ``METERLINE_COUNTERS_FILE``,
    ``METERLINE_ALERT_WEBHOOK``.

    Counters live in Redis when ``redis_url`` is set (any number of replicas), else in
    ``counters_file`` when set (the processes of one host; ``serve --workers N`` makes one
    when neither is given), else in the process's memory."""

    timezone: str = "UTC"
    downgrade_at: float = 0.8
    default_key_rpm: int = 100
    redis_url: str | None = None
    redis_prefix: str = "meterline:"
    counters_file: str | None = None
    counters_slots: int = 131_072  # size of a new counters file (56 bytes each)
    alert_webhook: str | None = None
    budgets: tuple[BudgetEntry, ...] = ()
    tenants: dict[str, RateLimit] = field(default_factory=dict)
    teams: dict[str, RateLimit] = field(default_factory=dict)
    daily_halt_usd: str | None = "20.00"
    monthly_alert_usd: str | None = "80.00"
    provider_daily_halt_usd: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SemanticRoute:
    """A per-model override of the semantic cache: switch it on or off, or change the threshold."""

    enabled: bool | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class SemanticCacheSettings:
    """Opt-in semantic cache: a question close enough in meaning to one already answered in the
    same context gets that answer. ``threshold`` is the cosine similarity needed (chosen from
    ``benchmarks/semantic_cache.py``); ``tenants`` empty means every tenant."""

    enabled: bool = False
    threshold: float = 0.96
    tenants: tuple[str, ...] = ()
    by_model: dict[str, SemanticRoute] = field(default_factory=dict)
    max_entries: int = 10_000
    max_chars: int = 2_000  # longer questions skip it: one detail changed barely moves a vector
    max_pending: int = 32  # embeddings queued beyond this skip the lookup instead of waiting

    @property
    def wanted(self) -> bool:
        """Whether any model has it on (the embedding model is loaded only then)."""
        return self.enabled or any(r.enabled for r in self.by_model.values())


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The response cache. ``ttl_by_model`` overrides ``ttl`` per requested model or alias."""

    enabled: bool = True
    backend: str = "memory"  # memory | redis (uses accounting.redis_url)
    ttl: float = 60.0
    ttl_by_model: dict[str, float] = field(default_factory=dict)
    cache_sampled: bool = False  # also cache requests with temperature > 0
    dedupe_window: float = 5.0
    max_entries: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    semantic: SemanticCacheSettings = field(default_factory=SemanticCacheSettings)


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """OpenTelemetry traces: one span per request, sent over OTLP/HTTP to ``otlp_endpoint``
    (else to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or ``OTEL_EXPORTER_OTLP_ENDPOINT`` +
    ``/v1/traces``, as the SDKs read them); none of them set: no tracing, no cost."""

    otlp_endpoint: str | None = None
    service_name: str = "meterline"


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """What happens to a request whose text holds a credential (``secrets``: replace it with
    ``[redacted <kind>]`` before it goes anywhere, refuse the request, only record it, or do
    not look) or a take-over phrase (``injection``)."""

    secrets: Literal["redact", "block", "flag", "off"] = "redact"
    injection: Literal["flag", "block", "off"] = "flag"


@dataclass(frozen=True, slots=True)
class CompressionConfig:
    """Prompt compression: stages 1–4 are lossless; ``trim`` (lossy) runs only above
    ``trim_threshold`` input tokens. ``x-meterline-compress: off`` skips it per request."""

    enabled: bool = True
    normalize: bool = True
    dedup: bool = True
    symbols: bool = True
    code: bool = True
    trim: bool = True
    trim_threshold: int = 50_000
    min_chars: int = 2_000  # shorter prompts have nothing worth compressing


@dataclass(frozen=True, slots=True)
class LLMClassifierSettings:
    """Optional background classification by a cheap model, after the answer is sent. Its
    spend never exceeds ``max_share`` of the traffic's own spend."""

    enabled: bool = False
    model: str = "openai:gpt-4o-mini"
    max_share: float = 0.02


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """The ``auto`` policy (``routing/policy.py``): the lowest expected cost per request, each
    failed answer priced at ``failure_cost`` USD; models proven below ``threshold`` success are
    left out; ``exploration`` is the share of requests that try a model that may do better."""

    threshold: float = 0.8
    min_samples: int = 20
    exploration: float = 0.05
    failure_cost: float = 0.12
    llm_classifier: LLMClassifierSettings = field(default_factory=LLMClassifierSettings)


@dataclass(frozen=True, slots=True)
class FallbackSettings:
    """Fallback chains: on a retryable failure, the same tier on another provider, then one tier
    up. ``on`` names the failures that move on: rate_limit, server_error, timeout, connection."""

    enabled: bool = True
    max_attempts: int = 3
    on: tuple[str, ...] = ("rate_limit", "server_error", "timeout", "connection")


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database_url: str | None = None
    providers: tuple[ProviderSettings, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    retry: RetrySettings = field(default_factory=RetrySettings)
    timeout: TimeoutSettings = field(default_factory=TimeoutSettings)
    log: LogSettings = field(default_factory=LogSettings)
    accounting: AccountingSettings = field(default_factory=AccountingSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    guard: GuardSettings = field(default_factory=GuardSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    fallback: FallbackSettings = field(default_factory=FallbackSettings)
    master_key: str | None = None

    def provider(self, name: str) -> ProviderSettings | None:
        return next((p for p in self.providers if p.name == name), None)
