"""Fail loudly when a service the test suite needs is not reachable."""

from __future__ import annotations

import socket
import sys

SERVICES = {"PostgreSQL": ("127.0.0.1", 5432), "Redis": ("127.0.0.1", 6379)}


def main() -> int:
    missing = []
    for name, (host, port) in SERVICES.items():
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as exc:
            missing.append(f"{name} at {host}:{port} is unreachable ({exc.strerror or exc})")
    for line in missing:
        print(f"error: {line}", file=sys.stderr)  # noqa: T201
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
