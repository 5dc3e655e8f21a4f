from __future__ import annotations

import logging

import pytest

from meterline.compress import (
    CompressionReport,
    CompressionSettings,
    CompressionStage,
    StageReport,
    clear_caches,
    compress,
    dedup,
    default_stages,
    normalize,
)
from meterline.compress.texts import request_text
from meterline.tokens import count_text
from meterline.types import ChatRequest, ImagePart, ThinkingPart, ToolCallPart
from tests.compress.convo import MODEL, chat, file_block, msg, stdlib

FILE = file_block("Lib/shlex.py", stdlib("shlex")[:2500])


def conversation() -> ChatRequest:
    return chat(
        msg("system", "You   review code."),
        msg("user", f"{FILE}\n\nWhat is this?  \n\n\n\n* short answer"),
        msg("assistant", ThinkingPart("thinking…", signature="sig"), "A lexer."),
        msg("user", f"{FILE}\n\nAnd now?", ImagePart(url="https://example.com/x.png")),
    )


def saved(report: CompressionReport, name: str) -> int:
    stage = report.stage(name)
    assert stage is not None
    return stage.tokens_saved


def test_report_arithmetic_and_exact_counts() -> None:
    request = conversation()
    out, report = compress(request, CompressionSettings(model=MODEL, exact_counts=True))
    assert [s.name for s in report.stages] == ["normalize", "dedup", "symbols", "code", "trim"]
    assert report.tokens_before == count_text(request_text(request), MODEL)
    assert report.tokens_after == count_text(request_text(out), MODEL)
    assert report.tokens_saved == report.tokens_before - report.tokens_after > 0
    for previous, stage in zip(report.stages, report.stages[1:], strict=False):
        assert stage.tokens_before == previous.tokens_after
    assert sum(s.tokens_saved for s in report.stages) == report.tokens_saved
    assert saved(report, "dedup") > 0
    assert report.stage("nope") is None
    assert not report.estimated


def test_estimated_counts_are_close_and_flagged() -> None:
    request = conversation()
    exact = count_text(request_text(request), MODEL)
    _, report = compress(request, CompressionSettings(model=MODEL))
    assert report.estimated
    assert abs(report.tokens_before - exact) < exact * 0.15


def test_report_properties() -> None:
    report = CompressionReport([StageReport("a", 100, 80), StageReport("b", 80, 80, True, "X: y")])
    assert (report.tokens_before, report.tokens_after, report.tokens_saved) == (100, 80, 20)
    assert report.stages[0].tokens_saved == 20
    assert CompressionReport([]).tokens_saved == 0


def test_a_stage_that_raises_is_skipped_reported_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: ChatRequest) -> ChatRequest:
        raise RuntimeError("kaput")

    stages = [
        CompressionStage("normalize", normalize),
        CompressionStage("broken", broken),
        CompressionStage("dedup", dedup),
    ]
    request = conversation()
    with caplog.at_level(logging.WARNING, logger="meterline.compress"):
        out, report = compress(request, CompressionSettings(model=MODEL), stages=stages)
    failed = report.stage("broken")
    assert failed is not None
    tokens = failed.tokens_before
    assert failed == StageReport("broken", tokens, tokens, True, "RuntimeError: kaput")
    assert out == dedup(normalize(request))  # the stages around it still ran
    assert [r.name for r in caplog.records] == ["meterline.compress"]
    assert "broken" in caplog.records[0].getMessage()
    assert "kaput" in caplog.records[0].getMessage()


def test_default_stages_follow_the_settings() -> None:
    names = [s.name for s in default_stages(CompressionSettings(symbols=False, trim=False))]
    assert names == ["normalize", "dedup", "code"]
    trim = default_stages(CompressionSettings(trim_threshold=123))[-1]
    assert (trim.name, trim.above) == ("trim", 123)
    request = conversation()
    out, report = compress(
        request,
        CompressionSettings(normalize=False, dedup=False, symbols=False, code=False, trim=False),
    )
    assert out is request and report.stages == []


def test_thinking_images_and_tool_calls_are_kept_as_they_are() -> None:
    call = ToolCallPart("c1", "read_file", '{"path":   "Lib/shlex.py"}')
    request = chat(*conversation().messages, msg("assistant", call))
    out, _ = compress(request, CompressionSettings(model=MODEL))
    assert out.messages[2].parts[0] is request.messages[2].parts[0]  # thinking
    assert out.messages[3].parts[1] is request.messages[3].parts[1]  # image
    assert out.messages[4] is request.messages[4]  # tool call
    assert out.messages[0].parts[-1].text == "You review code."  # type: ignore[union-attr]


def test_memos_only_save_work() -> None:
    request = conversation()
    settings = CompressionSettings(model=MODEL)
    clear_caches()
    cold = compress(request, settings)
    warm = compress(request, settings)
    clear_caches()
    assert cold == warm == compress(request, settings)
