"""LiteLLM's proxy as a benchmark target, installed into a throw-away virtual environment.

The venv (default ``.bench/litellm-venv``) is created on first use and reused while it holds the
pinned version; LiteLLM never enters Meterline's own environment. The proxy runs offline
(``LITELLM_LOCAL_MODEL_COST_MAP=True``), one worker, a master key and no database, with one model
routed to the fake upstream; everything else is LiteLLM's default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from procs import child, free_port, wait_ready
from targets import CHAT_PATH, MODEL, Target

__all__ = ["LITELLM_VERSION", "ensure_litellm", "start_litellm"]

LITELLM_VERSION = "1.106.2"
LITELLM_KEY = "sk-litellm-bench-master"  # the proxy's master key; sent as the bearer token


def installed_version(python: Path) -> str | None:
    """The litellm version importable by ``python``, or None."""
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_litellm(venv: Path, say: Callable[[str], object] = print) -> Path:
    """Create ``venv`` if needed and install ``litellm[proxy]==LITELLM_VERSION``; its bin dir."""
    python = venv / "bin" / "python"
    if not python.exists():
        say(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if installed_version(python) != LITELLM_VERSION:
        say(f"installing litellm[proxy]=={LITELLM_VERSION} into {venv}")
        spec = f"litellm[proxy]=={LITELLM_VERSION}"
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", spec], capture_output=True, text=True
        )
        found = installed_version(python)
        if done.returncode != 0 or found != LITELLM_VERSION:
            tail = (done.stderr or done.stdout)[-1500:]
            raise SystemExit(
                f"error: could not install litellm[proxy]=={LITELLM_VERSION} from the package "
                f"registry (installed: {found or 'none'}); not using another version.\n{tail}"
            )
    return venv / "bin"


def litellm_config(tmp: Path, upstream_port: int) -> Path:
    """A proxy config: MODEL routed to the fake upstream; master key; no database."""
    path = tmp / "litellm.yaml"
    path.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: sk-bench\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    return path


def litellm_env(tmp: Path) -> dict[str, str]:
    """Offline, no database, no provider keys from the caller's environment."""
    prefixes = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "LITELLM_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return env | {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HOME": str(tmp)}


def start_litellm(stack: ExitStack, tmp: Path, bin_dir: Path, upstream_port: int) -> Target:
    """The proxy on a free port, stopped when ``stack`` closes (it can take a minute to start)."""
    port = free_port()
    command = [str(bin_dir / "litellm"), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--config", str(litellm_config(tmp, upstream_port)), "--num_workers", "1"]
    pid = stack.enter_context(child(command, tmp / "litellm.log", litellm_env(tmp)))
    health = f"http://127.0.0.1:{port}/health/liveliness"
    wait_ready(health, pid, tmp / "litellm.log", timeout=120)
    return Target("litellm", f"http://127.0.0.1:{port}{CHAT_PATH}", LITELLM_KEY, pid)
