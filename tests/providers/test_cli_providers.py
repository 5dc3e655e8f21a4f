"""The coding-CLI providers (Claude Code, Codex, Gemini CLI): the pure argv/prompt/NDJSON parts,
and live requests through a real gateway, driven with the official ``openai`` SDK, against fake
CLIs (``tests/fakes/cli``) that print each CLI's documented output format."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import openai
import pytest

from meterline.catalog import Catalog
from meterline.errors import UpstreamTimeout
from meterline.providers import registry
from meterline.providers.base import ProviderDeps
from meterline.providers.cli import (
    CLI_PROVIDER_TYPES,
    ClaudeCliProvider,
    CliNotFound,
    CodexCliProvider,
    GeminiCliProvider,
)
from meterline.settings import (
    CacheSettings,
    FallbackSettings,
    LogSettings,
    ModelEntry,
    ProviderSettings,
    Settings,
    TimeoutSettings,
)
from meterline.types import ChatRequest, Message, TextPart, ToolCallPart, ToolResultPart, Usage
from meterline.wire import cli_streams as wire
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

FAKES = Path(__file__).resolve().parent.parent / "fakes" / "cli"
# provider name → the model the live tests ask it for
MODELS = {"claude-code": "sonnet", "codex-cli": "gpt-5-codex", "gemini-cli": "gemini-2.5-flash"}
ALL = pytest.mark.parametrize("provider", list(MODELS))


def user(text: str) -> Message:
    return Message("user", (TextPart(text),))


def request(*messages: Message, model: str = "sonnet", stream: bool = False) -> ChatRequest:
    return ChatRequest(model=model, messages=messages, stream=stream)


SYSTEM = Message("system", (TextPart("Be terse."),))
CONVERSATION = (
    user("Hi"),
    Message("assistant", (TextPart("Hello!"), ToolCallPart("call_1", "lookup", '{"q":"x"}'))),
    Message("tool", (ToolResultPart("call_1", (TextPart("42"),)),)),
    user("And now?"),
)
FLAT = (
    "User: Hi\n\n"
    'Assistant: Hello!\n[tool call call_1: lookup({"q":"x"})]\n\n'
    "Tool result (call_1): 42\n\n"
    "User: And now?"
)


# --- pure parts ------------------------------------------------------------------------------


def test_a_lone_user_message_is_the_prompt_and_a_conversation_gets_role_labels() -> None:
    assert wire.flatten_prompt((SYSTEM, user("hello")), inline_system=False) == "hello"
    assert wire.flatten_prompt(CONVERSATION, inline_system=False) == FLAT
    inline = wire.flatten_prompt((SYSTEM, *CONVERSATION), inline_system=True)
    assert inline == "System: Be terse.\n\n" + FLAT
    assert wire.flatten_prompt((SYSTEM, user("hello")), inline_system=True) == (
        "System: Be terse.\n\nUser: hello"
    )


def test_argv_per_cli() -> None:
    req = request(SYSTEM, user("hello"))
    assert wire.claude_invocation(req) == wire.Invocation(
        (
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--model",
            "sonnet",
            "--system-prompt",
            "Be terse.",
            "--",
            "hello",
        )
    )
    streaming = wire.claude_invocation(replace(req, stream=True, model="default"))
    assert "--include-partial-messages" in streaming.args and "--model" not in streaming.args
    assert wire.codex_invocation(replace(req, model="gpt-5")) == wire.Invocation(
        (
            "exec",
            "--json",
            "--skip-git-repo-check",
            "-m",
            "gpt-5",
            "--",
            "System: Be terse.\n\nUser: hello",
        )
    )
    assert wire.gemini_invocation(replace(req, model="default")) == wire.Invocation(
        ("--output-format", "stream-json", "--prompt=System: Be terse.\n\nUser: hello")
    )


def test_prompts_over_the_threshold_go_on_stdin() -> None:
    fits = "é" * (wire.STDIN_THRESHOLD // 2)  # two bytes each: exactly at the threshold
    over = fits + "x"
    for build in (wire.claude_invocation, wire.codex_invocation, wire.gemini_invocation):
        assert build(request(user(fits))).stdin is None
        assert build(request(user(fits))).args[-1].endswith(fits)
        big = build(request(user(over)))
        assert big.stdin == over.encode()
        assert all(over not in arg for arg in big.args)
    assert wire.codex_invocation(request(user(over))).args[-1] == "-"
    assert not any(
        a.startswith("--prompt") for a in wire.gemini_invocation(request(user(over))).args
    )
    huge_system = Message("system", (TextPart("s" * (wire.STDIN_THRESHOLD + 1)),))
    call = wire.claude_invocation(request(huge_system, user("hi")))
    assert "--system-prompt" not in call.args and call.stdin is not None
    assert call.stdin.decode().startswith("System: sss")


def lines(*events: dict[str, Any]) -> list[bytes]:
    return [json.dumps(e).encode() + b"\n" for e in events]


def run(parser: wire.StreamParser, raw: list[bytes]) -> tuple[str, str, Usage | None]:
    chunks = [c for line in raw if (e := wire.parse_line(line)) for c in parser.feed(e)]
    chunks += parser.finish()
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usage = next((c.usage for c in chunks if c.usage), None)
    text = "".join(c.text or "" for c in chunks)
    return text, "".join(c.thinking or "" for c in chunks), usage


CLAUDE_USAGE = {
    "input_tokens": 5,
    "cache_read_input_tokens": 100,
    "cache_creation_input_tokens": 20,
    "output_tokens": 7,
}
CLAUDE_LINES = lines(
    {"type": "system", "subtype": "init", "session_id": "s", "model": "claude-sonnet-4-5"},
    {
        "type": "assistant",
        "parent_tool_use_id": None,
        "message": {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm"},
                {"type": "text", "text": "Let me look. "},
                {"type": "tool_use", "id": "t1", "name": "Read", "input": {}},
            ],
        },
    },
    {
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "file"}],
        },
    },
    {
        "type": "assistant",
        "parent_tool_use_id": "t9",
        "message": {"content": [{"type": "text", "text": "sub-agent chatter"}]},
    },
    {"type": "assistant", "message": {"content": [{"type": "text", "text": "Done."}]}},
    {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": "Done.",
        "total_cost_usd": 0.01,
        "usage": CLAUDE_USAGE,
    },
)


def test_claude_lines_to_chunks() -> None:
    text, thinking, usage = run(wire.ClaudeStream(), [b"not json\n", b"\n", *CLAUDE_LINES])
    assert (text, thinking) == ("Let me look. Done.", "hmm")
    assert usage == Usage(
        input_tokens=125, output_tokens=7, cached_tokens=100, cache_write_tokens=20, estimated=False
    )


def test_claude_partial_messages_stream_deltas_and_skip_the_repeated_message() -> None:
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}
    raw = lines(
        {"type": "stream_event", "event": {"type": "message_start", "message": {}}},
        {
            "type": "stream_event",
            "event": {**delta, "delta": {"type": "text_delta", "text": "Hi "}},
        },
        {
            "type": "stream_event",
            "event": {**delta, "delta": {"type": "text_delta", "text": "you"}},
        },
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Hi you"}]}},
        {"type": "result", "subtype": "success", "is_error": False, "usage": CLAUDE_USAGE},
    )
    assert run(wire.ClaudeStream(), raw)[0] == "Hi you"


def test_claude_error_results_fail_with_the_cli_message() -> None:
    with pytest.raises(wire.CliFailure, match="API Error: 529"):
        wire.ClaudeStream().feed(
            {
                "type": "result",
                "subtype": "success",
                "is_error": True,
                "result": "API Error: 529 Overloaded",
            }
        )
    with pytest.raises(wire.CliFailure, match="max turns reached"):
        wire.ClaudeStream().feed(
            {
                "type": "result",
                "subtype": "error_max_turns",
                "is_error": True,
                "errors": ["max turns reached"],
            }
        )


def test_codex_lines_to_chunks() -> None:
    raw = lines(
        {"type": "thread.started", "thread_id": "t"},
        {"type": "turn.started"},
        {"type": "item.completed", "item": {"id": "i0", "type": "reasoning", "text": "**Plan**"}},
        {
            "type": "item.started",
            "item": {
                "id": "i1",
                "type": "command_execution",
                "command": "ls",
                "status": "in_progress",
            },
        },
        {"type": "item.completed", "item": {"id": "i2", "type": "agent_message", "text": "One."}},
        {"type": "error", "message": "Reconnecting... 1/5"},
        {"type": "item.completed", "item": {"id": "i3", "type": "agent_message", "text": "Two."}},
        {
            "type": "turn.completed",
            "usage": {"input_tokens": 90, "cached_input_tokens": 40, "output_tokens": 12},
        },
    )
    text, thinking, usage = run(wire.CodexStream(), raw)
    assert (text, thinking) == ("One.\n\nTwo.", "**Plan**")
    assert usage == Usage(input_tokens=90, output_tokens=12, cached_tokens=40)


def test_codex_failures() -> None:
    with pytest.raises(wire.CliFailure, match="Quota exceeded"):
        wire.CodexStream().feed({"type": "turn.failed", "error": {"message": "Quota exceeded"}})
    parser = wire.CodexStream()
    parser.feed({"type": "error", "message": "stream disconnected"})
    with pytest.raises(wire.CliFailure, match="stream disconnected"):
        parser.finish()


def test_gemini_lines_to_chunks() -> None:
    stats = {
        "total_tokens": 30,
        "input_tokens": 12,
        "output_tokens": 10,
        "cached": 4,
        "input": 8,
        "duration_ms": 5,
        "tool_calls": 0,
    }
    raw = lines(
        {"type": "init", "timestamp": "t", "session_id": "s", "model": "gemini-2.5-pro"},
        {"type": "message", "role": "user", "content": "hello"},
        {"type": "error", "severity": "warning", "message": "Loop detected"},
        {"type": "message", "role": "assistant", "content": "Hel", "delta": True},
        {"type": "tool_use", "tool_name": "ls", "tool_id": "t1", "parameters": {}},
        {"type": "tool_result", "tool_id": "t1", "status": "success", "output": "a b"},
        {"type": "message", "role": "assistant", "content": "lo", "delta": True},
        {"type": "result", "status": "success", "stats": stats},
    )
    text, _, usage = run(wire.GeminiStream(), raw)
    assert text == "Hello"
    assert usage == Usage(input_tokens=12, output_tokens=18, cached_tokens=4, reasoning_tokens=8)
    with pytest.raises(wire.CliFailure, match="Quota"):
        wire.GeminiStream().feed(
            {
                "type": "result",
                "status": "error",
                "error": {"type": "FatalError", "message": "Quota"},
            }
        )


# --- fixtures --------------------------------------------------------------------------------


class Record:
    """What the fake CLIs wrote to ``FAKE_CLI_RECORD``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self, event: str = "start") -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text().splitlines()]
        return [r for r in rows if r["event"] == event]

    def last(self) -> dict[str, Any]:
        return self.entries()[-1]

    def wait_for_start(self, timeout: float = 5.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while not self.entries():
            assert time.monotonic() < end, "the fake CLI never started"
            time.sleep(0.02)
        return self.last()


@pytest.fixture
def record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Record]:
    """The fake CLIs first on PATH (executable), recording their calls into a fresh file; at
    the end of the test, every fake CLI it started must be gone (killed or exited, and reaped)."""
    for name in ("claude", "codex", "gemini"):
        script = FAKES / name
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_CLI_RECORD", str(tmp_path / "record.jsonl"))
    for name in ("FAKE_CLI_MODE", "FAKE_CLI_DELAY", "FAKE_CLI_IGNORE_TERM"):
        monkeypatch.delenv(name, raising=False)
    calls = Record(tmp_path / "record.jsonl")
    yield calls
    for call in calls.entries():
        assert_gone(call["pid"])


def cli_settings(db: str) -> Settings:
    models = (ModelEntry("sonnet"), ModelEntry("default"))
    providers = (
        ProviderSettings(name="claude-code", type="claude-cli", command="claude", models=models),
        ProviderSettings(name="codex-cli", type="codex-cli", command="codex"),
        ProviderSettings(name="gemini-cli", type="gemini-cli"),
        ProviderSettings(name="claude-serial", type="claude-cli", max_concurrency=1),
        # long enough for a fake CLI to start on a busy machine, and record that it did
        ProviderSettings(
            name="claude-quick", type="claude-cli", timeout=TimeoutSettings(total=3.0)
        ),
        ProviderSettings(name="claude-missing", type="claude-cli", command="claude-not-installed"),
        ProviderSettings(name="codex-path", type="codex-cli", command=str(FAKES / "codex")),
    )
    # No response cache (these tests repeat requests) and no fallback to another provider:
    # every request here must reach the CLI its model names.
    return Settings(
        database_url=db,
        providers=providers,
        log=LogSettings(flush_interval=0.05),
        cache=CacheSettings(enabled=False),
        fallback=FallbackSettings(enabled=False),
    )


@pytest.fixture(scope="module")
def live_cli(bg: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """One gateway for the module; while it starts, ``ProviderRegistry.build`` also knows the
    CLI types (merged over ``PROVIDER_TYPES``, so this keeps working once they are registered)."""
    original = registry.ProviderRegistry.build

    def build(settings: Any, deps: Any, types: Any = None, **kwargs: Any) -> Any:
        merged = {**registry.PROVIDER_TYPES, **CLI_PROVIDER_TYPES, **(types or {})}
        return original(settings, deps, merged, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(registry.ProviderRegistry, "build", staticmethod(build))
        db = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'gw.db'}"
        gateway = start_gateway(bg, cli_settings(db))
    yield gateway
    gateway.stop()


@pytest.fixture
def client(live_cli: LiveGateway, record: Record) -> Iterator[openai.OpenAI]:
    url = f"{live_cli.url}/v1"
    with openai.OpenAI(base_url=url, api_key="k", max_retries=0, timeout=20) as sdk:
        yield sdk


def ask(client: openai.OpenAI, model: str, messages: list[dict[str, str]], **kw: Any) -> Any:
    return client.chat.completions.create(model=model, messages=messages, **kw)


HELLO = [{"role": "user", "content": "hello there"}]
EXPECTED_USAGE = {  # (prompt, completion) as each fake reports them for HELLO
    "claude-code": (2 + 100 + 20, 4),
    "codex-cli": (2 + 50, 4),
    "gemini-cli": (2, 4 + 5),
}


def error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    assert isinstance(body, dict), body
    return str(body["message"])


def assert_gone(pid: int, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < end, f"process {pid} is still alive (or an unreaped zombie)"
        time.sleep(0.02)


# --- live: answers ---------------------------------------------------------------------------


@ALL
def test_non_streaming_answer_and_reported_usage(
    client: openai.OpenAI, record: Record, provider: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=f"{provider}:{MODELS[provider]}", messages=HELLO
    )
    completion = raw.parse()
    assert raw.headers["x-meterline-provider"] == provider
    assert completion.choices[0].message.content == "You said: hello there"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == EXPECTED_USAGE[provider]
    call = record.last()
    assert call["prompt"] == "hello there" and call["stdin"] == ""
    assert MODELS[provider] in call["argv"]


@ALL
def test_streaming_answer_and_reported_usage(
    client: openai.OpenAI, record: Record, provider: str
) -> None:
    stream = ask(
        client,
        f"{provider}:{MODELS[provider]}",
        HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == "You said: hello there"
    if provider != "codex-cli":  # Codex sends whole agent messages; the others token deltas
        assert len(pieces) > 1
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == EXPECTED_USAGE[provider]
    if provider == "claude-code":
        assert "--include-partial-messages" in record.last()["argv"]


def test_default_model_passes_no_model_flag(client: openai.OpenAI, record: Record) -> None:
    answer = ask(client, "claude-code:default", HELLO)
    assert answer.choices[0].message.content == "You said: hello there"
    assert "--model" not in record.last()["argv"]


def test_system_prompt_goes_in_claudes_flag(client: openai.OpenAI, record: Record) -> None:
    messages = [{"role": "system", "content": "Answer in French."}, *HELLO]
    ask(client, "claude-code:sonnet", messages)
    argv = record.last()["argv"]
    assert argv[argv.index("--system-prompt") + 1] == "Answer in French."
    assert record.last()["prompt"] == "hello there"


@pytest.mark.parametrize("provider", ["codex-cli", "gemini-cli"])
def test_system_prompt_heads_the_prompt_of_the_others(
    client: openai.OpenAI, record: Record, provider: str
) -> None:
    messages = [{"role": "system", "content": "Answer in French."}, *HELLO]
    answer = ask(client, f"{provider}:{MODELS[provider]}", messages)
    assert record.last()["prompt"] == "System: Answer in French.\n\nUser: hello there"
    assert answer.choices[0].message.content == "You said: User: hello there"


@ALL
def test_multi_turn_is_flattened_with_role_labels(
    client: openai.OpenAI, record: Record, provider: str
) -> None:
    messages = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    answer = ask(client, f"{provider}:{MODELS[provider]}", messages)
    expected = "User: My name is Ada.\n\nAssistant: Hello Ada.\n\nUser: What is my name?"
    assert record.last()["prompt"] == expected
    assert answer.choices[0].message.content == "You said: User: What is my name?"


@ALL
def test_a_prompt_over_100_kb_goes_on_stdin(
    client: openai.OpenAI, record: Record, provider: str
) -> None:
    big = ("lorem ipsum " * 10_000) + "\nwhat is the tail?"
    assert len(big.encode()) > wire.STDIN_THRESHOLD
    answer = ask(client, f"{provider}:{MODELS[provider]}", [{"role": "user", "content": big}])
    assert answer.choices[0].message.content == "You said: what is the tail?"
    call = record.last()
    assert call["stdin"] == big
    assert all(len(arg) < 1000 for arg in call["argv"])


def test_an_explicit_command_path_is_used(client: openai.OpenAI, record: Record) -> None:
    answer = ask(client, "codex-path:gpt-5", HELLO)
    assert answer.choices[0].message.content == "You said: hello there"
    assert record.last()["binary"] == "codex"


def test_models_lists_what_is_installed(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    # a name served by several providers (three claude-cli, two codex-cli here) is prefixed
    assert {"gemini-2.5-pro", "claude-code:sonnet", "codex-cli:gpt-5-codex"} <= ids
    assert not any(i.startswith("claude-missing:") for i in ids)


# --- live: failures --------------------------------------------------------------------------


def test_missing_binary_is_a_clear_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "claude-missing:sonnet", HELLO)
    assert caught.value.status_code == 503
    message = error_message(caught.value)
    assert "claude-not-installed" in message and "not on PATH" in message


def test_binary_not_on_path(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "gemini-cli:gemini-2.5-pro", HELLO, stream=True)
    assert caught.value.status_code == 503
    assert "`gemini`" in error_message(caught.value) and "not on PATH" in error_message(
        caught.value
    )


@pytest.mark.parametrize("stream", [False, True])
def test_exit_code_is_a_502_with_the_stderr_tail(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "exit")
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "claude-code:sonnet", HELLO, stream=stream)
    assert caught.value.status_code == 502
    message = error_message(caught.value)
    assert "exited with code 2" in message
    assert message.endswith("claude: fatal: the fake was told to crash")
    assert 400 < message.count("x") < 500  # only the tail of the 1000-char stderr


@pytest.mark.parametrize(
    ("provider", "detail"),
    [
        ("claude-code", "API Error: 529 Overloaded (fake)"),
        ("codex-cli", "Quota exceeded (fake)"),
        ("gemini-cli", "Quota exceeded (fake)"),
    ],
)
def test_reported_errors_are_502_with_the_cli_message(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, provider: str, detail: str
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "error")
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, f"{provider}:{MODELS[provider]}", HELLO)
    assert caught.value.status_code == 502
    assert detail in error_message(caught.value)


def test_timeout_is_a_504_and_kills_the_process(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "hang")
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "claude-quick:sonnet", HELLO)
    assert caught.value.status_code == 504
    assert "did not answer within 3s" in error_message(caught.value)
    assert_gone(record.wait_for_start()["pid"])


@ALL
def test_client_disconnect_mid_stream_kills_the_process(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, record: Record, provider: str
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "stall")
    stream = ask(client, f"{provider}:{MODELS[provider]}", HELLO, stream=True)
    first = next(iter(stream))
    assert first.choices
    pid = record.wait_for_start()["pid"]
    os.kill(pid, 0)  # alive while the stream is open
    stream.close()
    assert_gone(pid)
    assert record.entries("end") == []


def test_concurrency_is_bounded(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, record: Record
) -> None:
    monkeypatch.setenv("FAKE_CLI_DELAY", "0.15")
    answers: list[str] = []

    def call() -> None:
        answers.append(ask(client, "claude-serial:sonnet", HELLO).choices[0].message.content)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert answers == ["You said: hello there"] * 2
    runs = sorted(
        (start["time"], end["time"])
        for start in record.entries("start")
        for end in record.entries("end")
        if end["pid"] == start["pid"]
    )
    assert len(runs) == 2
    assert runs[0][1] <= runs[1][0], f"the two CLI runs overlapped: {runs}"


# --- the provider on its own -----------------------------------------------------------------


def deps() -> ProviderDeps:
    return ProviderDeps(pool=cast(Any, None), catalog=Catalog.builtin())


async def test_availability_and_models(record: Record, tmp_path: Path) -> None:
    codex = CodexCliProvider(ProviderSettings(name="c", type="codex-cli"), deps())
    assert codex.executable() == str(FAKES / "codex") and codex.is_available()
    assert await codex.list_models() == ["gpt-5-codex", "gpt-5"]
    configured = ClaudeCliProvider(
        ProviderSettings(name="c", command=str(FAKES / "claude"), models=(ModelEntry("opus"),)),
        deps(),
    )
    assert configured.is_available() and await configured.list_models() == ["opus"]
    not_executable = tmp_path / "gemini"
    not_executable.write_text("#!/bin/sh\n")
    missing = GeminiCliProvider(ProviderSettings(name="g", command=str(not_executable)), deps())
    assert not missing.is_available() and await missing.list_models() == []
    with pytest.raises(CliNotFound, match="does not exist or is not executable") as caught:
        await missing.complete(request(user("hi")))
    assert caught.value.status == 503 and not caught.value.retryable


async def test_a_cli_ignoring_sigterm_is_killed(
    record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLI_MODE", "hang")
    monkeypatch.setenv("FAKE_CLI_IGNORE_TERM", "1")
    settings = ProviderSettings(name="c", type="claude-cli", timeout=TimeoutSettings(total=1.5))
    provider = ClaudeCliProvider(settings, deps())
    monkeypatch.setattr(provider, "kill_grace", 0.3)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match="did not answer within 1.5s"):
        await provider.complete(request(user("hi")))
    elapsed = time.monotonic() - started
    assert_gone(record.wait_for_start()["pid"], timeout=1)
    assert 1.5 + 0.3 <= elapsed < 1.5 + 0.3 + 2  # SIGTERM was ignored; SIGKILL after the grace
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CliNotFound, match="not on PATH"):
        await provider.complete(request(user("hi")))
