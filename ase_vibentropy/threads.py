"""Thread counts and the BLAS thread policy, shared by every layer that runs work in parallel.

Two rules (docs/architecture.md): inside the user's process BLAS is limited to one thread only
within a ``with blas_single_thread():`` block, whose exit restores the caller's limits and
environment; worker processes (pools, Dask workers) call :func:`limit_worker_blas` once for the
rest of their life. The package's own workers (threads over spatial chunks or pair batches,
processes over jobs) supply the parallelism; a threaded BLAS on their small products only
contends with them (measured 3-10x slower on a loaded 2-core machine).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from functools import lru_cache
from typing import Any

__all__ = [
    "available_cpus",
    "blas_single_thread",
    "bounded_map",
    "default_threads",
    "limit_worker_blas",
    "threaded_map",
]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Threads of a provider's own pool by default: the CPUs this process may use, at most 4."""
    return min(4, available_cpus())


def bounded_map(pool: Executor, fn: Callable, items: Sequence, in_flight: int) -> Iterator[Any]:
    """``pool.map(fn, items)`` in order, with at most ``in_flight`` tasks submitted at once (so
    at most that many results exist before they are consumed)."""
    pending = [pool.submit(fn, item) for item in items[:in_flight]]
    for item in items[in_flight:]:
        result = pending.pop(0).result()
        pending.append(pool.submit(fn, item))
        yield result
    for future in pending:
        yield future.result()


def threaded_map(work: Callable, items: Sequence, n_threads: int) -> Iterator[Any]:
    """``map(work, items)`` in order, on ``n_threads`` threads when there are several items,
    BLAS on one thread throughout.

    numpy releases the GIL inside the array operations that dominate the package's batches, so
    threads give real parallelism without copying the arrays they read; at most ``n_threads``
    results are alive at once, which bounds memory. The order of the results, and so of any
    reduction over them, does not depend on ``n_threads``.
    """
    if n_threads <= 1 or len(items) <= 1:
        with blas_single_thread():
            yield from map(work, items)
        return
    with blas_single_thread(), ThreadPoolExecutor(max_workers=n_threads) as pool:
        yield from bounded_map(pool, work, items, n_threads)


@lru_cache(maxsize=1)
def _controller():
    """threadpoolctl's controller, built once (building it inspects every loaded library)."""
    try:  # threadpoolctl comes with scikit-learn
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        return None
    return ThreadpoolController()


def blas_single_thread() -> contextlib.AbstractContextManager:
    """Keep BLAS on one thread inside a ``with`` block of the calling process; the caller's
    limits are restored on exit and its environment is never touched."""
    controller = _controller()
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def limit_worker_blas() -> None:
    """One BLAS/OpenMP thread for the rest of a *worker* process's life (process-pool
    initializers, Dask workers). Sets the thread-count environment variables too, for libraries
    that read them later (LAMMPS' OpenMP). Never call it in a user's process: use
    :func:`blas_single_thread` there."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    controller = _controller()
    if controller is not None:
        controller.limit(limits=1)
