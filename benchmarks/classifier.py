"""How long the request classifier takes (it runs on every request).

One command: ``python benchmarks/classifier.py``. Prints median and p90 microseconds per call
for short questions, typical 2 KB coding prompts and 50 KB prompts of several shapes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from meterline.routing.classifier import classify
from meterline.types import ChatRequest, Message, TextPart, Tool

PROSE = (
    "I'm getting an error when I run my Django view and I don't understand why. It worked "
    "yesterday, then we deployed the new version and now requests to /orders fail about half "
    "the time. We have a distributed setup with celery workers, so maybe there's a race. "
)
CODE = """from django.http import JsonResponse
from .models import Order

def order_view(request, pk):
    order = Order.objects.select_related("customer").get(pk=pk)
    total = sum(item.price * item.qty for item in order.items.all())
    return JsonResponse({"id": order.id, "total": total, "customer": order.customer.name})
"""
LOG_LINE = "2024-05-01T12:00:00Z INFO worker-3 processed job 1234 in 52ms queue=default\n"
TRACE = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad\n'


def _user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def _request(last: str, history: tuple[Message, ...] = ()) -> ChatRequest:
    system = Message("system", (TextPart("You are a careful senior engineer."),))
    return ChatRequest("m", (system, *history, _user(last)), tools=(Tool("search"),))


def typical(size: int) -> str:
    body = CODE * max(1, (size - 2 * len(PROSE)) // len(CODE))
    return f"{PROSE}\n```python\n{body}```\n{PROSE}Can you fix it?"


def prose_only(size: int) -> str:
    return (PROSE * (size // len(PROSE) + 1))[:size] + "\nWhat should I do?"


def many_blocks(size: int) -> str:
    chunk = f"Here is another file:\n```python\n{CODE}```\n"
    return chunk * (size // len(chunk) + 1) + "Please review all of these."


def logs(size: int) -> str:
    return f"Why does this crash?\n```\n{LOG_LINE * (size // len(LOG_LINE))}{TRACE}```"


def measure(request: ChatRequest, n: int) -> tuple[float, float]:
    classify(request)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        classify(request)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return statistics.median(samples) * 1e6, samples[int(n * 0.9)] * 1e6


def main() -> None:
    cases: list[tuple[str, ChatRequest, int]] = [
        ("short question", ChatRequest("m", (_user("What is the capital of France?"),)), 20_000)
    ]
    shapes: tuple[Callable[[int], str], ...] = (typical, prose_only, many_blocks, logs)
    for size in (2048, 51_200):
        for shape in shapes:
            text = shape(size)
            cases.append((f"{shape.__name__} {len(text) // 1024} KB", _request(text), 3000))
    history = (_user(typical(2048)), Message("assistant", (TextPart(PROSE * 5),))) * 10
    cases.append(("typical 2 KB + 20 turns", _request(typical(2048), history), 3000))
    table = Table(title="classify() per call")
    for column in ("prompt", "median µs", "p90 µs"):
        table.add_column(column, justify="left" if column == "prompt" else "right")
    for name, request, n in cases:
        median, p90 = measure(request, n if "50" not in name else 500)
        table.add_row(name, f"{median:.1f}", f"{p90:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
