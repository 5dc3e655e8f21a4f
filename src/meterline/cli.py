"""``meterline serve | demo | stats | check-config | models``."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from meterline.accounts_cli import add_account_commands
from meterline.settings import ConfigError, Settings, load_settings

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    if getattr(args, "database_url", None):
        from dataclasses import replace

        settings = replace(settings, database_url=args.database_url)
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from meterline.app import create_app
    from meterline.server import UVICORN_OPTIONS

    settings = _settings(args)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    if not _is_loopback(host) and not settings.master_key:
        print(  # noqa: T201
            f"refusing to listen on {host}: without METERLINE_MASTER_KEY anyone who can reach "
            "this address could use your providers. Set a master key, or bind to 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.workers > 1:
        return _serve_workers(args, settings, host, port)
    app = create_app(settings, server=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=args.log_level,
        access_log=args.access_log,
        proxy_headers=args.access_log,  # the client's address is read for the access log only
        lifespan="on",
        **UVICORN_OPTIONS,  # no server header; an answer's head goes with its first bytes
    )
    return 0


def _serve_workers(args: argparse.Namespace, settings: Settings, host: str, port: int) -> int:
    """Several worker processes over counters they all share, since counters in each process's
    memory would let every worker spend the whole budget and rate limit on its own: Redis
    when configured, else a counters file (made here, in ``/dev/shm`` where it can, and
    removed at the end, unless ``accounting.counters_file`` names one)."""
    import shutil
    import tempfile

    import uvicorn

    from meterline.accounting.counters.shared import SharedCounters
    from meterline.server import UVICORN_OPTIONS

    acc = settings.accounting
    made = None
    # Each worker writes its metrics here for the one a scrape reaches (metrics/workers.py).
    shm = Path("/dev/shm")
    scratch = shm if os.access(shm, os.W_OK) else None  # else the system's temporary directory
    metrics_dir = tempfile.mkdtemp(prefix="meterline-metrics-", dir=scratch)
    os.environ["METERLINE_METRICS_DIR"] = metrics_dir
    if not acc.redis_url and not acc.counters_file:
        fd, made = tempfile.mkstemp(prefix="meterline-counters-", dir=scratch)
        os.close(fd)
        os.environ["METERLINE_COUNTERS_FILE"] = made
    try:
        if not acc.redis_url:  # made (or checked) here, so a bad file fails before the workers
            try:
                SharedCounters.open(acc.counters_file or str(made), acc.counters_slots).close()
            except (ValueError, OSError) as exc:
                print(f"cannot use the counters file: {exc}", file=sys.stderr)  # noqa: T201
                return 2
        if args.config:
            os.environ["METERLINE_CONFIG"] = args.config
        if settings.database_url:
            os.environ["METERLINE_DATABASE_URL"] = settings.database_url
        uvicorn.run(
            "meterline.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=args.workers,
            log_level=args.log_level,
            access_log=args.access_log,
            proxy_headers=args.access_log,
            **UVICORN_OPTIONS,
        )
    finally:
        if made is not None:
            os.unlink(made)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from meterline.report import print_stats
    from meterline.store import open_engine, usage_stats

    settings = _settings(args)

    async def run() -> None:
        assert settings.database_url is not None
        engine = await open_engine(settings.database_url)
        try:
            groups = await usage_stats(engine, days=args.days)
        finally:
            await engine.dispose()
        print_stats(Console(), groups, f"Meterline usage, last {args.days:g} day(s)")

    asyncio.run(run())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    console = Console()
    try:
        settings = load_settings(args.file, env={})
    except ConfigError as exc:
        for problem in exc.problems:
            console.print(f"[red]error[/red] {problem}", highlight=False)
        console.print(f"{len(exc.problems)} problem(s) in {args.file}")
        return 1
    except OSError as exc:
        console.print(f"[red]error[/red] cannot read {args.file}: {exc.strerror}")
        return 1
    names = ", ".join(p.name for p in settings.providers) or "none"
    console.print(f"{args.file}: OK ({len(settings.providers)} provider(s): {names}; "
                  f"{len(settings.aliases)} alias(es))")  # fmt: skip
    return 0


def _accounts(args: argparse.Namespace) -> int:
    handler = args.account
    code: int = handler(_settings(args), args, Console())
    return code


def _route(args: argparse.Namespace) -> int:
    """Classify a prompt and show where ``auto`` (or ``--model``) would send it; no model call."""
    import json

    from meterline.gateway import Gateway
    from meterline.types import ChatRequest, Message, TextPart

    settings = _settings(args)

    async def run() -> dict[str, object]:
        gateway = Gateway(settings)
        await gateway.start()
        try:
            request = ChatRequest(args.model, (Message("user", (TextPart(args.prompt),)),))
            return gateway.explain(request)
        finally:
            await gateway.stop()

    Console().print_json(json.dumps(asyncio.run(run())))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from meterline.demo import run_demo

    code: int = asyncio.run(run_demo(Console(), requests=args.requests, seed=args.seed))
    return code


def _bench(args: argparse.Namespace) -> int:
    """``benchmarks/compare.py`` of the source checkout this package runs from."""
    import subprocess

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "compare.py"
    if not script.is_file():
        print(  # noqa: T201
            "meterline bench runs benchmarks/compare.py from a source checkout of Meterline "
            f"(not found at {script}); install with 'pip install -e .' from a clone.",
            file=sys.stderr,
        )
        return 2
    return subprocess.run([sys.executable, str(script), *args.bench_args]).returncode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meterline", description="A self-hosted LLM gateway.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 4000)")
    serve.add_argument("--config", help="YAML config file")
    serve.add_argument("--database-url", help="overrides METERLINE_DATABASE_URL")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every HTTP request line (behind a proxy on this host, with the "
        "client address it forwards)",
    )
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (counters shared in Redis or a file)")  # fmt: skip
    serve.set_defaults(run=_serve)

    stats = sub.add_parser("stats", help="usage by provider and model, from the request log")
    stats.add_argument("--days", type=float, default=7)
    stats.add_argument("--config", help="YAML config file")
    stats.add_argument("--database-url", help="overrides METERLINE_DATABASE_URL")
    stats.set_defaults(run=_stats)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("file")
    check.set_defaults(run=_check_config)

    route = sub.add_parser("route", help="show how a prompt would be classified and routed")
    route.add_argument("prompt")
    route.add_argument("--model", default="auto")
    route.add_argument("--config", help="YAML config file")
    route.add_argument("--database-url", help="overrides METERLINE_DATABASE_URL")
    route.set_defaults(run=_route)

    add_account_commands(sub)
    for name in ("keys", "budget"):
        sub.choices[name].set_defaults(run=_accounts)

    demo = sub.add_parser("demo", help="try the gateway against simulated providers (no keys)")
    demo.add_argument("--requests", type=int, default=120)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(run=_demo)

    bench = sub.add_parser(
        "bench",
        help="overhead benchmark (benchmarks/compare.py; e.g. --quick, --against litellm, --soak)",
        add_help=False,
    )
    bench.set_defaults(run=_bench)  # every argument after "bench" goes to compare.py
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":
        args.bench_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
