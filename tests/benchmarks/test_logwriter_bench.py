"""``benchmarks/logwriter.py`` at a small size, on SQLite and PostgreSQL: every submitted row
reaches the database, none spills, and the figures it reports are filled in (no speed
thresholds: the full run's numbers are in benchmarks/NOTES.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "logwriter.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("logwriter_bench", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("logwriter_bench", module)
    spec.loader.exec_module(module)
    return module


bench = _load()


async def test_every_row_is_written(database_url: str, tmp_path: Path) -> None:
    result = await bench.measure(database_url, rate=2000.0, seconds=0.5, spill_dir=tmp_path)
    assert result.rows_submitted == 10_000 + 1_000  # a full queue, then 0.5 s at 2,000/s
    assert result.rows_written == result.rows_submitted
    assert result.spilled == 0
    assert result.capacity_rows_per_s > 0 and result.sustained_rows_per_s > 0
    assert result.loop_lag_max_ms >= result.loop_lag_p99_ms >= 0
    assert result.database in ("sqlite", "postgresql")
