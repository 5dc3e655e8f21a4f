"""Settings: one validated object built from a YAML file and environment variables."""

from meterline.settings.loader import default_database_url, load_settings, providers_from_env
from meterline.settings.schema import (
    AccountingSettings,
    BudgetEntry,
    CacheSettings,
    CompressionConfig,
    FallbackSettings,
    LLMClassifierSettings,
    LogSettings,
    ModelEntry,
    ProviderSettings,
    RateLimit,
    RetrySettings,
    RoutingSettings,
    SemanticCacheSettings,
    SemanticRoute,
    ServerSettings,
    Settings,
    TimeoutSettings,
)
from meterline.settings.validate import ConfigError, ConfigProblem, parse_config

__all__ = [
    "AccountingSettings",
    "BudgetEntry",
    "CacheSettings",
    "CompressionConfig",
    "FallbackSettings",
    "LLMClassifierSettings",
    "RateLimit",
    "RoutingSettings",
    "SemanticCacheSettings",
    "SemanticRoute",
    "ConfigError",
    "ConfigProblem",
    "LogSettings",
    "ModelEntry",
    "ProviderSettings",
    "RetrySettings",
    "ServerSettings",
    "Settings",
    "TimeoutSettings",
    "default_database_url",
    "load_settings",
    "parse_config",
    "providers_from_env",
]
