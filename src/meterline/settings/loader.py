"""Build :class:`Settings` from a config file and the environment variables the SDKs use."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from meterline.settings.schema import ProviderSettings, Settings
from meterline.settings.validate import parse_config

__all__ = ["default_database_url", "load_settings", "providers_from_env"]

# provider name → (type, key variable, base-URL variable, default base URL)
_ENV_PROVIDERS: tuple[tuple[str, str, str | None, str, str], ...] = (
    ("openai", "openai", "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    (
        "anthropic",
        "anthropic",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "https://api.anthropic.com",
    ),
    (
        "gemini",
        "gemini",
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
        "https://generativelanguage.googleapis.com",
    ),
    ("ollama", "ollama", None, "OLLAMA_BASE_URL", "http://127.0.0.1:11434"),
)


def providers_from_env(env: Mapping[str, str]) -> list[ProviderSettings]:
    """Providers switched on by the usual variables (a key, or for Ollama a base URL)."""
    found = []
    for name, kind, key_var, url_var, default_url in _ENV_PROVIDERS:
        key = env.get(key_var) if key_var else None
        url = env.get(url_var) or None
        if (key_var and not key) or (not key_var and not url):
            continue
        found.append(
            ProviderSettings(name=name, type=kind, base_url=url or default_url, api_key=key)
        )
    return found


def default_database_url(env: Mapping[str, str]) -> str:
    if env.get("METERLINE_DATABASE_URL"):
        return env["METERLINE_DATABASE_URL"]
    home = Path(env.get("METERLINE_HOME") or Path.home() / ".meterline")
    return f"sqlite:///{home / 'meterline.db'}"


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Config file (if any) first, then the environment fills what the file leaves out."""
    env = os.environ if env is None else env
    if config_path is not None:
        path = Path(config_path)
        settings = parse_config(path.read_text(encoding="utf-8"), source=str(path))
    else:
        settings = Settings()
    configured = {p.name for p in settings.providers}
    extra = [p for p in providers_from_env(env) if p.name not in configured]
    accounting = dataclasses.replace(
        settings.accounting,
        redis_url=settings.accounting.redis_url or env.get("METERLINE_REDIS_URL") or None,
        counters_file=settings.accounting.counters_file
        or env.get("METERLINE_COUNTERS_FILE")
        or None,
        alert_webhook=settings.accounting.alert_webhook
        or env.get("METERLINE_ALERT_WEBHOOK")
        or None,
    )
    return dataclasses.replace(
        settings,
        providers=settings.providers + tuple(extra),
        database_url=settings.database_url or default_database_url(env),
        accounting=accounting,
        master_key=env.get("METERLINE_MASTER_KEY") or settings.master_key,
    )
