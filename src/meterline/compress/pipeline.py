"""Running the compression stages: fail-open, in order, with token counts between them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from meterline.compress.blocks import units
from meterline.compress.code import compact_code
from meterline.compress.dedup import dedup
from meterline.compress.meter import TokenMeter
from meterline.compress.normalize import forget_segments, normalize
from meterline.compress.refs import MIN_BLOCK_CHARS
from meterline.compress.report import CompressionReport, StageReport
from meterline.compress.symbols import symbolize
from meterline.compress.trim import trim
from meterline.types import ChatRequest

__all__ = [
    "CompressionReport",
    "CompressionSettings",
    "CompressionStage",
    "StageReport",
    "clear_caches",
    "compress",
    "default_stages",
]

log = logging.getLogger("meterline.compress")


@dataclass
class CompressionSettings:
    """Which stages run, and how.

    ``model`` names the tokenizer for counting (empty: the request's model). ``exact_counts``
    tokenizes the whole text at every stage boundary instead of scaling from a sample (see
    :mod:`meterline.compress.meter`): right for benchmarks, too slow for the request path.
    """

    normalize: bool = True
    dedup: bool = True
    symbols: bool = True
    code: bool = True
    trim: bool = True
    trim_threshold: int = 50_000
    model: str = ""
    min_block_chars: int = MIN_BLOCK_CHARS
    keep_last_turns: int = 4
    drop_assistant_after: int = 8
    exact_counts: bool = False


@dataclass(frozen=True, slots=True)
class CompressionStage:
    """A named request → request function; it runs only above ``above`` tokens when set."""

    name: str
    apply: Callable[[ChatRequest], ChatRequest]
    above: int | None = None


def default_stages(settings: CompressionSettings) -> list[CompressionStage]:
    """The stages ``settings`` turns on, in pipeline order."""
    size = settings.min_block_chars
    stages = []
    if settings.normalize:
        stages.append(CompressionStage("normalize", normalize))
    if settings.dedup:
        stages.append(CompressionStage("dedup", partial(dedup, min_chars=size)))
    if settings.symbols:
        stages.append(CompressionStage("symbols", partial(symbolize, model=settings.model)))
    if settings.code:
        stages.append(CompressionStage("code", partial(compact_code, min_chars=size)))
    if settings.trim:
        turns = partial(
            trim, keep_last=settings.keep_last_turns, drop_after=settings.drop_assistant_after
        )
        stages.append(CompressionStage("trim", turns, above=settings.trim_threshold))
    return stages


def compress(
    request: ChatRequest,
    settings: CompressionSettings,
    *,
    stages: Sequence[CompressionStage] | None = None,
) -> tuple[ChatRequest, CompressionReport]:
    """Run the stages (``default_stages(settings)`` unless given) over ``request``.

    A stage that raises is skipped: the request passes on unchanged, the error is logged on
    ``meterline.compress`` and recorded in its :class:`StageReport`. Tokens are counted once
    before the first stage and again only after a stage that changed the request.
    """
    chosen = default_stages(settings) if stages is None else stages
    if not chosen:
        return request, CompressionReport([])
    meter = TokenMeter(settings.model or request.model, exact=settings.exact_counts)
    tokens = meter.count(request)
    reports: list[StageReport] = []
    for stage in chosen:
        if stage.above is not None and tokens <= stage.above:
            reports.append(StageReport(stage.name, tokens, tokens, skipped=True))
            continue
        try:
            result = stage.apply(request)
        except Exception as exc:  # noqa: BLE001 - fail-open: a broken stage must not fail a request
            log.warning("compression stage %r failed and was skipped: %r", stage.name, exc)
            error = f"{type(exc).__name__}: {exc}"
            reports.append(StageReport(stage.name, tokens, tokens, skipped=True, error=error))
            continue
        after = tokens if result is request else meter.count(result)
        reports.append(StageReport(stage.name, tokens, after))
        request, tokens = result, after
    return request, CompressionReport(reports, estimated=meter.estimated)


def clear_caches() -> None:
    """Forget memoised block scans and normalised segments, e.g. to measure a cold start.

    Both memos are bounded (256 entries each) and only ever save work: results never depend on
    them.
    """
    units.cache_clear()
    forget_segments()
