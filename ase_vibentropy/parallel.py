"""Descriptor passes at scale: spatial chunks on a local worker pool or on a Dask cluster.

Everything the LDML model needs from a structure comes from one pass over its atoms (Eq. 13-15):
the descriptor sum Σ_i D_i (dim,) and, for local entropies, the projections w · D_i (N,). Both
are accumulated chunk by chunk (:func:`~ase_vibentropy.descriptors.chunks.plan_chunks`), so at
most one chunk's (n_centers, dim) descriptor array per worker is alive, whatever N is.

Execution backends, all giving the same numbers (chunk results are reduced in chunk order, so
the serial, threaded, process and Dask results are identical, not merely close):

* ``workers=1``: in this process, one thread.
* ``workers=n, executor="thread"`` (default): n threads over chunks. The descriptor numerics are
  numpy array operations and BLAS products, which release the GIL. BLAS is limited to one thread
  (threadpoolctl) and providers with their own thread pool (an ``n_threads`` attribute, as AFS)
  run on a copy set to one thread, so n workers use n cores and no more. A structure of at most
  ``chunk_size`` atoms is one chunk; then the provider's own pool gets the n threads.
* ``workers=n, executor="process"``: n forked processes (Linux), for providers whose numerics
  hold the GIL. Chunks are cut in the worker from the plan it inherited at fork.
* :func:`dask_descriptor_passes`: many structures, or one huge structure cut into spatial
  chunks, as tasks on a ``dask.distributed`` cluster.

A perfect-lattice shortcut (:func:`~ase_vibentropy.descriptors.base.perfect_lattice_sum`) skips
the pass for sums of Bravais lattices, e.g. the bulk reference of a 10^6-atom defect cell.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from ._optional import import_optional
from .descriptors.base import DescriptorProvider, perfect_lattice_sum
from .descriptors.chunks import SpatialChunks, plan_chunks
from .descriptors.stack import StackedDescriptor
from .errors import DescriptorError
from .threads import available_cpus, blas_single_thread, bounded_map, limit_worker_blas

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DescriptorPass",
    "dask_client",
    "dask_descriptor_passes",
    "descriptor_pass",
    "descriptor_sum",
    "process_pool",
]

#: Centre atoms per spatial chunk: ~30 MB of AFS(20,10) descriptors per chunk and a halo
#: overhead of ~1.6x copies for bcc Fe at r_cut = 5 Å (only centres are described).
DEFAULT_CHUNK_SIZE = 20_000

EXECUTORS = ("thread", "process")


@dataclass
class DescriptorPass:
    """What one pass over a structure's atoms gives.

    Attributes
    ----------
    total : (dim,) float array
        Σ_i D_i.
    projection : (N,) float array or None
        w · D_i for every atom (None when no weights were given).
    n_atoms : int
        N.
    shortcut : bool
        True when ``total`` came from the perfect-lattice shortcut N D_perfect.
    """

    total: np.ndarray
    projection: np.ndarray | None
    n_atoms: int
    shortcut: bool = False


# --------------------------------------------------------------------------- thread limits
def with_threads(provider: DescriptorProvider, n_threads: int) -> DescriptorProvider:
    """``provider``, or a shallow copy of it whose own thread pool (its ``n_threads`` attribute,
    if it has one, as AFS) uses ``n_threads`` threads. The caller's provider is never modified,
    so concurrent passes cannot race on it."""
    if getattr(provider, "n_threads", n_threads) == n_threads:
        return provider
    clone = copy.copy(provider)
    clone.n_threads = n_threads
    return clone


# --------------------------------------------------------------------------- one chunk
ChunkOut = tuple[np.ndarray, "np.ndarray | None", np.ndarray]


def describe_chunk(
    provider: DescriptorProvider, sub: Atoms, n_centers: int, weights: np.ndarray | None
) -> ChunkOut:
    """Σ of the chunk's centre descriptors (dim,), their projections w · D_i (n_centers,) or
    None, and the centres' parent indices (n_centers,)."""
    values = provider.compute_centers(sub, np.arange(n_centers))
    projection = None if weights is None else values @ weights
    parent = sub.arrays["parent_index"][:n_centers] if "parent_index" in sub.arrays else np.arange(n_centers)
    return values.sum(axis=0), projection, np.asarray(parent)


_FORKED: dict[str, Any] = {}


def _forked_init(provider: DescriptorProvider, plan: SpatialChunks, weights: np.ndarray | None) -> None:
    # Under fork the arguments are inherited, not pickled: the plan is shared copy-on-write.
    limit_worker_blas()
    if hasattr(provider, "n_threads"):
        provider.n_threads = 1
    _FORKED.update(provider=provider, plan=plan, weights=weights)


def _forked_chunk(k: int) -> ChunkOut:
    sub, n_centers = _FORKED["plan"].chunk(k)
    return describe_chunk(_FORKED["provider"], sub, n_centers, _FORKED["weights"])


def _progress(total: int, enabled: bool | None, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled if enabled is not None else total < 8, desc=desc,
                unit="chunk", leave=False)


# --------------------------------------------------------------------------- local pass
def descriptor_pass(
    provider: DescriptorProvider,
    atoms: Atoms,
    weights: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    executor: str = "thread",
    lattice_shortcut: bool = True,
    progress: bool | None = None,
) -> DescriptorPass:
    """Σ_i D_i (and w · D_i per atom when ``weights`` is given) in one chunked pass.

    Parameters
    ----------
    provider
        Descriptor provider.
    atoms
        Structure (periodic or isolated).
    weights
        w, shape (dim,): also return the projections w · D_i, shape (N,).
    chunk_size
        Centre atoms per spatial chunk (structures up to this size are one chunk, the cell itself).
    workers
        Parallel workers (None: every CPU this process may use).
    executor
        ``"thread"`` or ``"process"`` (see the module docstring).
    lattice_shortcut
        For sums only: use N D_perfect when ``atoms`` is a perfect Bravais lattice.
    progress
        tqdm bar over chunks (None: only when there are 8 chunks or more).

    Returns
    -------
    DescriptorPass
    """
    provider.check_atoms(atoms)
    if executor not in EXECUTORS:
        raise DescriptorError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    workers = available_cpus() if workers is None else int(workers)
    if workers < 1:
        raise DescriptorError(f"workers must be >= 1 (or None for every CPU), got {workers}")
    if weights is not None:
        weights = provider.check_weights(weights)
    return _checked_pass(provider, atoms, weights, chunk_size, workers, executor, lattice_shortcut, progress)


def _checked_pass(
    provider: DescriptorProvider,
    atoms: Atoms,
    weights: np.ndarray | None,
    chunk_size: int,
    workers: int,
    executor: str,
    lattice_shortcut: bool,
    progress: bool | None,
) -> DescriptorPass:
    """:func:`descriptor_pass` of a structure and arguments it has checked.

    A stack is passed part by part: each part is chunked with its own halo (or not at all), so
    a short-ranged part does not pay for the reach of a long-ranged one. The parts run one
    after the other, each with all ``workers``.
    """
    n_atoms = len(atoms)
    if isinstance(provider, StackedDescriptor):
        bounds = np.cumsum([0] + [part.dim for part in provider.parts])
        passes = [
            _checked_pass(part, atoms, None if weights is None else weights[start:stop], chunk_size,
                          workers, executor, lattice_shortcut, progress)
            for part, start, stop in zip(provider.parts, bounds[:-1], bounds[1:])
        ]
        projection = None if weights is None else np.sum([p.projection for p in passes], axis=0)
        return DescriptorPass(np.concatenate([p.total for p in passes]), projection, n_atoms,
                              shortcut=all(p.shortcut for p in passes))
    if weights is None and lattice_shortcut:
        total = perfect_lattice_sum(provider, atoms, checked=True)
        if total is not None:
            return DescriptorPass(total, None, n_atoms, shortcut=True)
    if not provider.needs_chunks(n_atoms, chunk_size):
        # one chunk, the structure itself (global descriptors cannot be chunked); the workers
        # go to the provider's own thread pool, if it has one
        with blas_single_thread():
            values = with_threads(provider, workers).compute_centers(atoms, np.arange(n_atoms))
        return DescriptorPass(values.sum(axis=0), None if weights is None else values @ weights, n_atoms)

    plan = plan_chunks(atoms, provider.cutoff, chunk_size)
    total = np.zeros(provider.dim)
    projection = None if weights is None else np.empty(n_atoms)
    with _progress(len(plan), progress, f"{provider.name} chunks") as bar:
        for chunk_sum, chunk_projection, parent in _run_chunks(provider, plan, weights, workers, executor):
            total += chunk_sum
            if projection is not None:
                projection[parent] = chunk_projection
            bar.update()
    return DescriptorPass(total, projection, n_atoms)


def _run_chunks(
    provider: DescriptorProvider,
    plan: SpatialChunks,
    weights: np.ndarray | None,
    workers: int,
    executor: str,
) -> Iterator[ChunkOut]:
    """Chunk results of ``plan`` in chunk order, on ``workers`` threads or processes."""
    chunks = list(range(len(plan)))
    workers = min(workers, len(chunks))
    provider = with_threads(provider, 1)

    def work(k: int) -> ChunkOut:
        sub, n_centers = plan.chunk(k)
        return describe_chunk(provider, sub, n_centers, weights)

    if workers <= 1:
        with blas_single_thread():
            yield from map(work, chunks)
        return
    if executor == "process" and "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_forked_init,
                                 initargs=(provider, plan, weights)) as pool:
            yield from bounded_map(pool, _forked_chunk, chunks, workers + 1)
        return
    with blas_single_thread(), ThreadPoolExecutor(workers) as pool:
        yield from bounded_map(pool, work, chunks, workers + 1)


def descriptor_sum(provider: DescriptorProvider, atoms: Atoms, chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """Σ_i D_i of ``atoms``, shape (dim,), serially in this process: :func:`descriptor_pass`
    with one worker, the perfect-lattice shortcut included. Training features (databases) and
    predictions take their sums from this one path."""
    return np.asarray(descriptor_pass(provider, atoms, chunk_size=chunk_size, workers=1).total, dtype=float)


# --------------------------------------------------------------------------- process pools
def _exit_quietly_on_interrupt(signum: int, frame: Any) -> None:
    # Ctrl-C reaches the whole process group: the parent reports it once (and keeps every
    # finished result); a worker just ends, without a traceback of its own.
    os._exit(128 + signum)


def _spawned_worker_start(initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, _exit_quietly_on_interrupt)
    limit_worker_blas()
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each limited to one BLAS/OpenMP thread
    (:func:`limit_worker_blas`) before ``initializer(*initargs)`` runs.

    Spawn, not fork: LAMMPS and BLAS thread pools do not survive fork reliably. The one pool
    builder of the package for jobs and database featurizing (the chunk pool of
    :func:`descriptor_pass` forks, to share its chunk plan copy-on-write).
    """
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context,
                               initializer=_spawned_worker_start, initargs=(initializer, initargs))


# --------------------------------------------------------------------------- Dask
def dask_client(scheduler: Any):
    """A ``dask.distributed.Client`` for ``scheduler`` (an address such as ``tcp://host:8786``,
    a ``LocalCluster`` or a client, returned as is), and whether the caller owns it."""
    distributed = import_optional("dask.distributed", "dask", "sending descriptor work to a Dask cluster")
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    return distributed.Client(scheduler), True


def _dask_chunk(provider: DescriptorProvider, sub: Atoms, n_centers: int, weights: np.ndarray | None) -> ChunkOut:
    # one thread per task: the Dask worker's thread count is the parallelism
    with blas_single_thread():
        return describe_chunk(with_threads(provider, 1), sub, n_centers, weights)


def dask_descriptor_passes(
    scheduler: Any,
    provider: DescriptorProvider,
    structures: Sequence[Atoms],
    weights: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    lattice_shortcut: bool = True,
) -> list[DescriptorPass]:
    """:func:`descriptor_pass` of every structure, evaluated on a Dask cluster.

    Structures of up to ``chunk_size`` atoms are one task each; larger ones are cut into spatial
    chunks (one task per chunk) and reduced here in chunk order, so the results are identical to
    the local ones. Perfect lattices use the shortcut locally (it costs one small cell).

    Parameters
    ----------
    scheduler
        Scheduler address (``tcp://host:8786``), ``LocalCluster`` or ``dask.distributed.Client``.
    provider
        Descriptor provider (pickled once to the workers).
    structures
        Structures to describe.
    weights
        w, shape (dim,): also return the per-atom projections w · D_i.
    chunk_size
        Centre atoms per spatial chunk of a large structure.
    lattice_shortcut
        Use N D_perfect for perfect Bravais lattices (sums only).

    Returns
    -------
    list of DescriptorPass, in the order of ``structures``
    """
    client, owned = dask_client(scheduler)
    try:
        if weights is not None:
            weights = provider.check_weights(weights)
        remote_provider = client.scatter(provider, broadcast=True)
        results: list[DescriptorPass | None] = [None] * len(structures)
        tasks: list[tuple[int, Any]] = []
        for s, atoms in enumerate(structures):
            provider.check_atoms(atoms)
            if weights is None and lattice_shortcut:
                total = perfect_lattice_sum(provider, atoms, checked=True)
                if total is not None:
                    results[s] = DescriptorPass(total, None, len(atoms), shortcut=True)
                    continue
            if not provider.needs_chunks(len(atoms), chunk_size):
                sub = atoms.copy()
                sub.calc = None
                pieces = [(sub, len(atoms))]
            else:
                pieces = list(plan_chunks(atoms, provider.cutoff, chunk_size))
            for sub, n_centers in pieces:
                tasks.append((s, client.submit(_dask_chunk, remote_provider, sub, n_centers, weights, pure=False)))
        outputs = client.gather([future for _, future in tasks])
        totals = {s: np.zeros(provider.dim) for s, _ in tasks}
        projections = {s: np.empty(len(structures[s])) for s, _ in tasks} if weights is not None else {}
        for (s, _), (chunk_sum, chunk_projection, parent) in zip(tasks, outputs):
            totals[s] += chunk_sum
            if weights is not None:
                projections[s][parent] = chunk_projection
        for s, total in totals.items():
            results[s] = DescriptorPass(total, projections.get(s), len(structures[s]))
        return results  # type: ignore[return-value]
    finally:
        if owned:
            client.close()
