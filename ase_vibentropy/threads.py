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
from functools import lru_cache

__all__ = ["available_cpus", "blas_single_thread", "limit_worker_blas"]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


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
