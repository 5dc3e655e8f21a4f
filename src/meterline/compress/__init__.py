"""Prompt compression: fewer input tokens for the same conversation, without I/O.

Five stages run in order, each fail-open (a stage that raises is skipped, logged and reported):

1. :func:`normalize` — whitespace and bullets outside code;
2. :func:`dedup` — repeated fenced blocks and ``<file>``/``<context>``/``<document>`` sections
   become ``[ref:block:ID]`` references;
3. :func:`symbolize` — repeated prose phrases become ``§n`` symbols;
4. :func:`compact_code` — blank lines and trailing whitespace inside code go, and blocks that
   became identical are referenced;
5. :func:`trim` — above a token threshold only: old turns become extractive summaries.

Stages 1–4 are lossless in content: :func:`expand` gives back every block and phrase.
"""

from meterline.compress.code import compact_code
from meterline.compress.dedup import dedup
from meterline.compress.expand import expand
from meterline.compress.normalize import normalize
from meterline.compress.pipeline import (
    CompressionReport,
    CompressionSettings,
    CompressionStage,
    StageReport,
    clear_caches,
    compress,
    default_stages,
)
from meterline.compress.symbols import symbolize
from meterline.compress.trim import trim

__all__ = [
    "CompressionReport",
    "CompressionSettings",
    "CompressionStage",
    "StageReport",
    "clear_caches",
    "compact_code",
    "compress",
    "dedup",
    "default_stages",
    "expand",
    "normalize",
    "symbolize",
    "trim",
]
