"""Conversations for ``savings.py``, assembled from the Python standard library.

Code comes from the stdlib's source files (``importlib.util.find_spec(name).origin``), answers
from its docstrings and ``inspect.getsource``, the error a user pastes from a real traceback.
Only the short system prompts, questions and IDE boilerplate lines are written here.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from meterline.types import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart

MODEL = "gpt-4o-mini"
SYSTEM = (
    "You are a coding assistant inside the user's editor. Answer questions about the open files"
    " precisely, quote the code you refer to, and keep explanations short."
)
IDE_FOOTER = (
    "The files above are open in the editor; their contents are current.\n"
    "Reply in Markdown and quote only the code you change."
)


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    description: str
    requests: list[ChatRequest]


@dataclass(frozen=True, slots=True)
class Turn:
    files: tuple[str, ...]  # modules open in the editor, re-sent with this turn
    topic: str  # the object the question is about, e.g. "json.decoder.JSONDecoder.raw_decode"
    question: str
    edit: str | None = None  # a module the user edited just before this turn


@cache
def source(module: str) -> str:
    origin = importlib.util.find_spec(module).origin  # type: ignore[union-attr]
    return Path(str(origin)).read_text(encoding="utf-8")


def path_of(module: str) -> str:
    return "Lib/" + module.replace(".", "/") + ".py"


def resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise LookupError(dotted)


def edited(text: str) -> str:
    """The file after a small edit in the editor: a comment added below the imports."""
    at = text.find("\n\n", text.find("\nimport ") + 1)
    return text[:at] + "\n# NOTE: reviewed with the assistant; see the chat.\n" + text[at:]


def wrap(module: str, text: str, style: Literal["tag", "fence"]) -> str:
    if style == "tag":
        return f'<file path="{path_of(module)}">\n{text}</file>'
    return f"```python {path_of(module)}\n{text}```"


def answer(topic: str) -> str:
    """An assistant answer: the docstring's first paragraph, the quoted code, the rest of it."""
    obj = resolve(topic)
    paragraphs = (inspect.getdoc(obj) or topic).split("\n\n")
    code = textwrap.dedent(inspect.getsource(obj))  # type: ignore[arg-type]
    rest = "\n\n".join(paragraphs[1:3])
    return f"{paragraphs[0]}\n\nHere is the code in question:\n\n```python\n{code}```\n\n{rest}"


def ide_session(
    name: str, turns: Sequence[Turn], style: Literal["tag", "fence"], description: str
) -> Workload:
    history = [Message("system", (TextPart(SYSTEM),))]
    requests = []
    files: dict[str, str] = {}
    for turn in turns:
        if turn.edit:
            files[turn.edit] = edited(files.get(turn.edit, source(turn.edit)))
        context = "\n\n".join(wrap(m, files.get(m, source(m)), style) for m in turn.files)
        history.append(
            Message("user", (TextPart(f"{context}\n\n{turn.question}\n\n{IDE_FOOTER}"),))
        )
        requests.append(ChatRequest(MODEL, tuple(history)))
        history.append(Message("assistant", (TextPart(answer(turn.topic)),)))
    return Workload(name, description, requests)


DEC, ENC, TW = "json.decoder", "json.encoder", "textwrap"
IDE_TURNS = (
    Turn((DEC,), f"{DEC}.JSONDecoder.raw_decode", "Why does raw_decode return the end index?"),
    Turn((DEC,), f"{DEC}.JSONDecoder.decode", "And what does decode do with trailing data?"),
    Turn((DEC, ENC), f"{ENC}.JSONEncoder.encode", "How does the encoder mirror this?"),
    Turn((DEC, ENC), f"{ENC}.JSONEncoder.iterencode", "Is iterencode lazy?", edit=ENC),
    Turn((ENC,), f"{ENC}.py_encode_basestring", "How are strings escaped?"),
    Turn((TW, ENC), f"{TW}.TextWrapper.wrap", "Switching files: how does wrap split lines?"),
    Turn((TW,), f"{TW}.dedent", "Why does dedent ignore whitespace-only lines?"),
    Turn((TW,), f"{TW}.TextWrapper.wrap", "Show wrap again; can it break long words?", edit=TW),
)


def _traceback() -> str:
    try:
        json.loads('{"retries": 3,}')
    except json.JSONDecodeError:
        return traceback.format_exc()
    raise AssertionError("unreachable")


def repeated_questions() -> Workload:
    """The same question re-asked with the same pasted document and traceback."""
    doc = "\n\n".join(
        f"{n}(): {inspect.getdoc(getattr(json, n))}" for n in ("dump", "dumps", "load", "loads")
    )
    questions = (
        "Why does loads reject this config file?",
        "Why does loads reject this config file?",
        "Which argument of loads would let me accept it?",
        "Why does loads reject this config file?",
        "Can I get the position of the error from the exception?",
        "Which argument of loads would let me accept it?",
        "Why does loads reject this config file?",
        "Can I get the position of the error from the exception?",
    )
    topics = ("json.loads", "json.loads", "json.JSONDecoder", "json.loads")
    history = [Message("system", (TextPart(SYSTEM),))]
    requests = []
    for k, question in enumerate(questions):
        text = (
            f'<document source="json module docstrings">\n{doc}\n</document>\n\n'
            f"I get this error:\n{_traceback()}\n{question}\n"
            "Answer only from the document above.\nIf the document does not say, tell me so."
        )
        history.append(Message("user", (TextPart(text),)))
        requests.append(ChatRequest(MODEL, tuple(history)))
        history.append(Message("assistant", (TextPart(answer(topics[k % len(topics)])),)))
    return Workload("repeated-question", "one error re-asked 8×: same doc, traceback", requests)


def agent_reads() -> Workload:
    """An agent loop: the model reads files with a tool, re-reading them as it goes."""
    reads = (DEC, ENC, DEC, TW, ENC, DEC)
    history = [
        Message("system", (TextPart(SYSTEM),)),
        Message("user", (TextPart("Find where JSON parsing errors are raised and explain."),)),
    ]
    requests = []
    for k, module in enumerate(reads):
        call = ToolCallPart(f"call_{k}", "read_file", json.dumps({"path": path_of(module)}))
        history.append(Message("assistant", (TextPart(f"Reading {path_of(module)}."), call)))
        result = ToolResultPart(call.id, (TextPart(wrap(module, source(module), "fence")),))
        history.append(Message("tool", (result,)))
        requests.append(ChatRequest(MODEL, tuple(history)))
    return Workload("agent-reads", "tool loop re-reading 3 files (6 reads)", requests)


def long_session() -> Workload:
    """A long session editing four files: every turn re-sends a new version of one of them."""
    modules = ("textwrap", "shlex", "json.encoder", "json.decoder")
    history = [Message("system", (TextPart(SYSTEM),))]
    versions = {m: source(m) for m in modules}
    requests = []
    for turn in range(20):
        module = modules[turn % len(modules)]
        versions[module] = versions[module].replace(
            "\n\n", f"\n\n# turn {turn}: reviewed with the assistant\n", 1
        )
        functions = _functions(module)
        topic = f"{module}.{functions[turn // len(modules) % len(functions)]}"
        question = f"I changed {path_of(module)}. Explain {topic}."
        text = f"{wrap(module, versions[module], 'tag')}\n\n{question}"
        history.append(Message("user", (TextPart(text),)))
        requests.append(ChatRequest(MODEL, tuple(history)))
        history.append(Message("assistant", (TextPart(answer(topic)),)))
    return Workload("long-session", "20 turns editing 4 files (trim range)", requests)


def _functions(module: str) -> list[str]:
    return [
        name
        for name, obj in vars(resolve(module)).items()
        if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == module
    ]


def all_workloads() -> list[Workload]:
    builders: list[Callable[[], Workload]] = [
        lambda: ide_session("ide-file-tags", IDE_TURNS, "tag", "8 turns, <file> re-sent"),
        lambda: ide_session("ide-fences", IDE_TURNS, "fence", "8 turns, ```python path```"),
        repeated_questions,
        agent_reads,
        long_session,
    ]
    return [build() for build in builders]
