"""Run a recipe: build, explore, relax, label and store, locally or on a Dask cluster.

Labelling one configuration (Eq. 2-3):

1. relax at fixed cell with the recipe's potential to ``reference.fmax`` (``Potential.relax``:
   LAMMPS pre-relaxation and a final L-BFGS with the Hessian calculator for Fe);
2. harmonic entropy S with the recipe's Hessian source and solver;
3. formation entropy Sf = S - (N/N_b) S_bulk (Eq. 3) against the perfect lattice of the same
   strained cell, labelled once per (size, strain) by a ``bulk`` job and reused;
4. Wigner-Seitz counts of vacancies and interstitials after relaxation.

Non-minima (imaginary modes after relaxation, e.g. a crowdion stuck on its symmetric saddle)
are stored, never dropped: their row has ``n_imaginary > 0`` and no ``S_kB``/``Sf_kB`` keys,
and the job summary counts them. Select training rows with ``db.select("n_imaginary=0")``.

Execution: jobs run in worker processes (``concurrent.futures.ProcessPoolExecutor``) or on a
Dask distributed cluster (``scheduler=ADDRESS``); the parent process alone writes to the
database, one transaction per finished job, so a killed run restarts where it stopped.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from ase import Atoms
from ase.optimize import FIRE
from tqdm.auto import tqdm

from .._optional import import_optional
from ..errors import GenerationInterrupted, NotAFirstOrderSaddleError, NotAMinimumError, VibEntropyError
from ..units import KB_EV_PER_K
from . import builders
from .analysis import SADDLE_ENERGY_TOLERANCE_EV, wigner_seitz
from .explore import ActivationRelaxationExplorer, ExplorationResult, Saddle, describe_minimum, explore_random
from .jobs import Job, make_jobs
from .recipe import FamilySpec, Recipe
from ..dblock import exclusive_writer
from ..parallel import dask_client, descriptor_sum, process_pool
from ..threads import blas_single_thread, limit_worker_blas
from .store import LabelledRow, connect, finished_job_ids, rows_of_job, write_job


@dataclass(frozen=True)
class BulkReference:
    """Labelled perfect lattice of one (size, strain), shared by that cell's defect jobs.

    Attributes
    ----------
    entropy_kB : float
        S_bulk in k_B.
    n_atoms : int
        N_b.
    descriptor_sums : dict
        {descriptor hash: (dim,) Σ_i D_i} for the recipe's descriptors.
    """

    entropy_kB: float
    n_atoms: int
    descriptor_sums: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class JobOutcome:
    """What a worker returns for one job: its rows and its summary counts."""

    job_id: str
    rows: list[LabelledRow]
    summary: dict[str, int]
    seconds: float


@dataclass
class RunSummary:
    """Outcome of :func:`generate`.

    Attributes
    ----------
    n_jobs, n_skipped, n_run, n_failed : int
        Jobs in the recipe, already finished before this run, finished now, failed now.
    n_rows : int
        Rows written by this run.
    n_non_minima : int
        Rows written with imaginary modes (stored without entropies).
    failures : dict
        {job_id: error message} of the failed jobs (rerun to retry them).
    counts : dict
        Exploration counts summed over the jobs run now (events, saddles, failed searches, ...).
    seconds : float
        Wall time, s.
    """

    n_jobs: int = 0
    n_skipped: int = 0
    n_run: int = 0
    n_failed: int = 0
    n_rows: int = 0
    n_non_minima: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


# ----------------------------------------------------------------------------- worker side

# Calculators hold state (neighbour lists, a LAMMPS instance): one set per worker thread, so
# that threaded Dask workers never share an instance.
_CALCULATORS = threading.local()


def _calculators(potential_name: str) -> tuple[Any, Any]:
    """(force calculator, Hessian calculator) of a potential, built once per worker thread."""
    cache = _CALCULATORS.__dict__.setdefault("by_name", {})
    if potential_name not in cache:
        from ..potentials import get_potential

        potential = get_potential(potential_name)
        force = potential.force_calculator()
        hessian = force if not potential.analytic_hessian else potential.hessian_calculator()
        cache[potential_name] = (force, hessian)
    return cache[potential_name]


def _new_force_calculator(potential_name: str) -> Any:
    """A fresh force calculator of a potential (one per NEB image)."""
    from ..potentials import get_potential

    return get_potential(potential_name).force_calculator()


def _descriptor_sums(recipe: Recipe, atoms: Atoms) -> dict[str, np.ndarray]:
    if not recipe.descriptors:
        return {}
    from .. import descriptors

    sums = {}
    for name, params in recipe.descriptors:
        provider = descriptors.get(name, **dict(params))
        sums[provider.hash] = descriptor_sum(provider, atoms)
    return sums


def _use_local(recipe: Recipe, n_atoms: int) -> bool:
    from ..harmonic import LOGDET_MIN_ATOMS

    local = recipe.reference.local
    if local != "auto":
        return bool(local)
    # Local entropies need the eigenvectors: take them only where the dense route runs anyway.
    solver = recipe.reference.solver
    return solver == "dense" or (solver == "auto" and n_atoms < LOGDET_MIN_ATOMS)


def unstable_mode_step(atoms: Atoms, calc: Any, hessian: str = "auto", fd_step: float | None = None,
                       step: float = 0.1) -> Atoms:
    """Copy of ``atoms`` moved along its most unstable normal mode, largest atomic step ``step`` Å.

    The mode is the eigenvector of D = M^-1/2 H M^-1/2 with the most negative ω²; the Cartesian
    displacement is M^-1/2 ξ (dense diagonalisation, O(N³): used only on the rare saddles).
    """
    from ..harmonic import compute_hessian, normal_modes

    matrix = compute_hessian(atoms, calc, method=hessian, step=fd_step)
    _, modes = normal_modes(matrix, atoms.get_masses())
    displacement = (modes[:, 0] / np.repeat(np.sqrt(atoms.get_masses()), 3)).reshape(-1, 3)
    moved = atoms.copy()
    moved.calc = None
    moved.positions += displacement * (step / np.linalg.norm(displacement, axis=1).max())
    return moved


def label_structure(
    atoms: Atoms, recipe: Recipe, bulk: BulkReference | None, reference_lattice: Atoms,
    max_escapes: int = 1,
) -> tuple[LabelledRow, bool]:
    """Relax ``atoms`` with the recipe's potential and compute its harmonic labels.

    Parameters
    ----------
    atoms
        Configuration near a minimum (fixed cell).
    recipe
        The recipe (potential, reference backend, temperature).
    bulk
        The labelled perfect lattice of the same cell (None when labelling that lattice).
    reference_lattice
        Perfect lattice in the same cell, for the Wigner-Seitz counts.
    max_escapes
        Times a saddle is left along its unstable mode and relaxed again before it is stored
        as a non-minimum (``n_saddle_escapes`` records how many were needed).

    Returns
    -------
    row, is_minimum
        The row (without job keys) and False when imaginary modes were found.
    """
    from ..harmonic import formation_entropy_value, harmonic_entropy
    from ..potentials import get_potential

    potential = get_potential(recipe.potential)
    _, hessian_calc = _calculators(recipe.potential)
    ref = recipe.reference
    relaxed = potential.relax(atoms, fmax=ref.fmax, calc=hessian_calc)
    local = _use_local(recipe, len(relaxed))
    kvp: dict[str, Any] = {}
    data: dict[str, Any] = {}
    common = dict(temperature=recipe.temperature, hessian=ref.hessian, step=potential.fd_step,
                  fmax=ref.fmax)
    n_escapes = 0
    while True:
        try:
            result = harmonic_entropy(relaxed, hessian_calc, solver=ref.solver, local=local, **common)
            n_imaginary = 0
            break
        except NotAMinimumError as exc:
            result = None
            n_imaginary = int(exc.n_imaginary)
        if n_escapes == max_escapes:
            if n_imaginary <= 0:
                # The factorisation could not count the negative modes: count them densely.
                n_imaginary = harmonic_entropy(
                    relaxed, hessian_calc, solver="dense", allow_imaginary=True, **common
                ).n_imaginary
            break
        # A symmetric start can relax onto a saddle (e.g. a crowdion exactly on <111>,
        # docs/theory.md): step down along the most unstable mode and relax again.
        # FIRE first: quasi-Newton steps from just beside a saddle can fall back onto it.
        downhill = unstable_mode_step(relaxed, hessian_calc, ref.hessian, potential.fd_step)
        downhill.calc = hessian_calc
        FIRE(downhill, logfile=None).run(fmax=1e-2, steps=5000)
        relaxed = potential.relax(downhill, fmax=ref.fmax, calc=hessian_calc)
        n_escapes += 1
    energy = float(relaxed.get_potential_energy())
    kvp["n_saddle_escapes"] = n_escapes
    if result is not None:
        kvp.update(S_kB=result.entropy_kB, hessian_method=result.hessian_method,
                   solver=result.solver, label_seconds=result.seconds)
        if result.local_entropies is not None:
            data["local_entropies_kB"] = result.local_entropies / KB_EV_PER_K
        if bulk is not None:
            kvp.update(
                S_bulk_kB=bulk.entropy_kB,
                n_bulk=bulk.n_atoms,
                # Eq. 3 at the same volume and strain.
                Sf_kB=formation_entropy_value(result.entropy_kB, len(relaxed), bulk.entropy_kB, bulk.n_atoms),
            )
    ws = wigner_seitz(relaxed, reference_lattice)
    kvp.update(
        n_vac=ws.n_vacancies, n_int=ws.n_interstitials, n_imaginary=n_imaginary,
        lattice=recipe.lattice, a0=recipe.a0, element=recipe.element,
        potential=potential.name, potential_version=potential.version,
        temperature=recipe.temperature, recipe_hash=recipe.hash,
    )
    if potential.spec is not None:
        kvp["potential_spec"] = potential.spec  # rebuilds a user potential: get_potential(spec)
    data["descriptor_sums"] = _descriptor_sums(recipe, relaxed)
    if bulk is not None:
        data["bulk_descriptor_sums"] = dict(bulk.descriptor_sums)
    plain = relaxed.copy()
    plain.calc = None
    return LabelledRow(atoms=plain, energy=energy, key_value_pairs=kvp, data=data), result is not None


def label_saddle(
    saddle: Saddle, recipe: Recipe, reference_lattice: Atoms, origin: LabelledRow, target: LabelledRow,
) -> LabelledRow | None:
    """Refine a crossed saddle on the recipe's potential and label it with the migration
    quantities of the jump between its two labelled minima (docs/theory.md, "Saddle points").

    The saddle is refined by Newton steps on the exact Hessian to the recipe's ``fmax`` (at
    most 1e-6 eV/Å), its entropy is that of 3N - 4 modes (the unstable one left out), and the
    Vineyard attempt frequency of each direction follows from ΔS_m/k_B = ln(h ν*/k_B T) - 1.
    Returns None when the saddle does not refine to a first-order saddle (the explorer's dimer
    stops at a loose tolerance; the next refinement may fall to a minimum or a higher-order
    saddle), when the refined saddle lies below either minimum (it is then another saddle, not
    the one between them; beyond this energy check the connection is the explorer's), or when
    either minimum has no entropy.
    """
    from ..errors import NotRelaxedError
    from ..harmonic import harmonic_entropy, refine_saddle
    from ..harmonic.saddle import vineyard_frequency_THz
    from ..potentials import get_potential

    if origin.key_value_pairs.get("S_kB") is None or target.key_value_pairs.get("S_kB") is None:
        return None
    potential = get_potential(recipe.potential)
    _, hessian_calc = _calculators(recipe.potential)
    ref = recipe.reference
    try:
        refined = refine_saddle(saddle.atoms, hessian_calc, fmax=min(ref.fmax, 1e-6), hessian=ref.hessian)
        result = harmonic_entropy(refined, hessian_calc, temperature=recipe.temperature, hessian=ref.hessian,
                                  step=potential.fd_step, solver=ref.solver, fmax=min(ref.fmax, 1e-6),
                                  stationary_point="saddle")
    except (NotRelaxedError, NotAMinimumError, NotAFirstOrderSaddleError):
        return None  # a minimum, a higher-order saddle or no convergence: not this jump's saddle
    energy = float(refined.get_potential_energy())
    if not energy > max(origin.energy, target.energy):
        # refined onto another saddle, below one of the two minima: not the one between them
        return None
    kvp: dict[str, Any] = {
        "stationary_point": "saddle", "S_kB": result.entropy_kB, "n_imaginary": 1,
        "unstable_omega2": float(result.min_omega2), "hessian_method": result.hessian_method,
        "solver": result.solver, "label_seconds": result.seconds,
        "from_minimum": saddle.origin, "to_minimum": saddle.target, "saddle_search": saddle.search,
        "lattice": recipe.lattice, "a0": recipe.a0, "element": recipe.element,
        "potential": potential.name, "potential_version": potential.version,
        "temperature": recipe.temperature, "recipe_hash": recipe.hash,
    }
    for side, minimum in (("forward", origin), ("backward", target)):
        delta_s = result.entropy_kB - float(minimum.key_value_pairs["S_kB"])
        kvp[f"dS_m_{side}_kB"] = delta_s
        kvp[f"dE_{side}_eV"] = energy - minimum.energy
        kvp[f"nu_{side}_THz"] = vineyard_frequency_THz(delta_s, recipe.temperature)
    if potential.spec is not None:
        kvp["potential_spec"] = potential.spec
    plain = refined.copy()
    plain.calc = None
    ws = wigner_seitz(plain, reference_lattice)
    kvp.update(n_vac=ws.n_vacancies, n_int=ws.n_interstitials)
    return LabelledRow(atoms=plain, energy=energy, key_value_pairs=kvp, data={})


def build_start(recipe: Recipe, family: FamilySpec, strained: Atoms, rng: np.random.Generator) -> Atoms:
    """The starting configuration of a defect job (builders of :mod:`.builders`)."""
    if family.n_vacancies:
        return builders.vacancy_cluster(strained, family.n_vacancies, rng, family.arrangement)
    if family.n_interstitials:
        return builders.interstitial_cluster(strained, family.n_interstitials, recipe.lattice, rng,
                                             family.kind)
    if family.name == "random":
        n_pairs = int(rng.integers(family.n_pairs[0], family.n_pairs[1] + 1))
        return builders.frenkel_damage(strained, n_pairs, rng)
    return builders.cascade_core(strained, family.radius, rng)


def _explore(recipe: Recipe, family: FamilySpec, job: Job, start: Atoms, strained: Atoms,
             rng: np.random.Generator) -> ExplorationResult:
    exp = recipe.exploration
    if not family.is_cluster or exp.method == "none":
        # The labelling relaxation is the quench: one configuration per job.
        return ExplorationResult(minima=[describe_minimum(start, strained, float("nan"))])
    force_calc, _ = _calculators(recipe.potential)
    if exp.method == "random":
        return explore_random(strained, force_calc, family.n_interstitials, family.n_vacancies, rng,
                              job.n_minima, max_trials=exp.max_events or None, fmax=exp.quench_fmax)
    explorer = ActivationRelaxationExplorer(
        force_calc, strained, rng, push_amplitude=exp.push_amplitude, step_over=exp.step_over,
        dimer_fmax=exp.dimer_fmax, dimer_steps=exp.dimer_steps, fmax=exp.quench_fmax,
        verify_saddles=exp.store_saddles, neb_images=exp.neb_images,
        neb_calculator=lambda: _new_force_calculator(recipe.potential), stall_events=exp.stall_events,
    )
    return explorer.explore(start, job.n_minima, max_events=exp.max_events or None,
                            n_saddles=exp.saddles_per_job)


def run_job(recipe: Recipe, job: Job, bulk: BulkReference | None = None) -> JobOutcome:
    """Run one job (in a worker): build, explore, relax and label; nothing is written here.

    Parameters
    ----------
    recipe
        The validated recipe.
    job
        A job of :func:`~ase_vibentropy.data.jobs.make_jobs`.
    bulk
        The bulk reference of the job's (size, strain); required for defect jobs.
    """
    start_time = time.perf_counter()
    perfect = builders.perfect_lattice(recipe.element, recipe.lattice, recipe.a0, job.n_cells)
    strained = builders.apply_strain(perfect, job.strain)
    common = {"family": job.family, "strain": job.strain, "n_cells": job.n_cells, "seed": job.seed}
    if job.kind == "bulk":
        row, is_min = label_structure(strained, recipe, None, strained, max_escapes=0)
        if not is_min:
            raise VibEntropyError(
                f"the perfect {recipe.lattice} lattice at strain {job.strain:+.4f} is not a minimum "
                f"of {recipe.potential}: formation entropies of this cell are undefined; "
                "remove this strain from the recipe"
            )
        row.key_value_pairs.update(common, Sf_kB=0.0, S_bulk_kB=row.key_value_pairs["S_kB"],
                                   n_bulk=len(strained), minimum_index=0)
        row.data["bulk_descriptor_sums"] = dict(row.data["descriptor_sums"])
        summary = {"n_minima": 1, "n_non_minima": 0}
        return JobOutcome(job.job_id, [row], summary, time.perf_counter() - start_time)
    if bulk is None:
        raise ValueError(f"defect job {job.job_id} needs the bulk reference of its cell")
    family = next(f for f in recipe.families if f.name == job.family)
    rng = np.random.default_rng(job.seed)
    start = build_start(recipe, family, strained, rng)
    exploration = _explore(recipe, family, job, start, strained, rng)
    rows = []
    n_non_minima = 0
    for index, minimum in enumerate(exploration.minima):
        row, is_min = label_structure(minimum.atoms, recipe, bulk, strained)
        n_non_minima += not is_min
        row.key_value_pairs.update(common, minimum_index=index)
        if np.isfinite(minimum.barrier):
            row.key_value_pairs["barrier_eV"] = minimum.barrier
        rows.append(row)
    summary = exploration.summary()
    summary["n_non_minima"] = n_non_minima
    if recipe.exploration.store_saddles:
        labelled = 0
        stored: list[tuple[frozenset, float]] = []
        for saddle in exploration.saddles:
            row = label_saddle(saddle, recipe, strained, rows[saddle.origin], rows[saddle.target])
            if row is None:
                continue
            # two searches (two dimer runs, or a dimer run and a band) may refine to one saddle
            ends = frozenset((saddle.origin, saddle.target))
            if any(e == ends and abs(energy - row.energy) <= SADDLE_ENERGY_TOLERANCE_EV for e, energy in stored):
                continue
            stored.append((ends, row.energy))
            row.key_value_pairs.update(common)
            rows.append(row)
            labelled += 1
        summary["n_saddles_stored"] = labelled
    return JobOutcome(job.job_id, rows, summary, time.perf_counter() - start_time)


def _run_job_task(task: tuple[Recipe, Job, BulkReference | None]) -> JobOutcome:
    return run_job(*task)


# ----------------------------------------------------------------------------- parent side

Task = tuple[Recipe, Job, BulkReference | None]


def _execute_local(tasks: list[Task], workers: int) -> Iterator[tuple[Job, JobOutcome | BaseException]]:
    if workers == 1:
        with blas_single_thread():  # scoped: the caller's own limits come back afterwards
            for task in tasks:
                try:
                    yield task[1], run_job(*task)
                except Exception as exc:  # noqa: BLE001 - reported per job, the run goes on
                    yield task[1], exc
        return
    with process_pool(workers) as pool:
        futures = {pool.submit(_run_job_task, task): task[1] for task in tasks}
        try:
            for future in as_completed(futures):
                exc = future.exception()
                yield futures[future], (exc if exc is not None else future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _execute_dask(tasks: list[Task], scheduler: Any) -> Iterator[tuple[Job, JobOutcome | BaseException]]:
    distributed = import_optional("dask.distributed", "dask", "running jobs on a Dask cluster")
    client, owned = dask_client(scheduler)
    try:
        try:
            client.run(limit_worker_blas)
        except Exception:  # noqa: BLE001 - best effort; workers may forbid client.run
            pass
        futures = [client.submit(_run_job_task, task, key=f"vibentropy-{task[1].job_id}", pure=False)
                   for task in tasks]
        by_key = {future.key: task[1] for future, task in zip(futures, tasks)}
        for future in distributed.as_completed(futures):
            job = by_key[future.key]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - reported per job, the run goes on
                yield job, exc
            else:
                yield job, outcome
    finally:
        if owned:
            client.close()


def _execute(tasks: list[Task], workers: int, scheduler: Any):
    if scheduler is not None:
        return _execute_dask(tasks, scheduler)
    return _execute_local(tasks, workers)


def _bulk_reference(db, job: Job) -> BulkReference:
    row = rows_of_job(db, job.job_id)[0]
    sums = row.data.get("descriptor_sums", {}) if row.data else {}
    return BulkReference(float(row.S_kB), int(row.natoms), {k: np.asarray(v) for k, v in sums.items()})


def _check_same_labelling_potential(recipe: Recipe, db: Any) -> None:
    """Refuse to add rows to a database labelled with another potential or revision: job ids
    do not carry the revision, so its finished jobs would be skipped and its perfect-lattice
    entropies reused for the new rows."""
    from ..errors import MixedPotentialError
    from ..potentials import get_potential, labelling_potential

    potential = get_potential(recipe.potential)
    wanted = labelling_potential(potential.name, potential.version)
    found = {labelling_potential(str(row.potential), row.get("potential_version"))
             for row in db.select(include_data=False, columns=["key_value_pairs"])
             if row.get("potential") is not None}
    if found - {wanted}:
        raise MixedPotentialError(
            f"the database holds rows labelled with {', '.join(sorted(found))}, the recipe labels "
            f"with {wanted}: write to a new database, or relabel the old one first "
            "(benchmarks/reproduction/relabel.py SOURCE DEST --potential NAME)"
        )


def check_recipe_runs(recipe: Recipe) -> None:
    """Build what every job of ``recipe`` needs (the potential's calculators, the descriptor
    providers) once, so that a missing extra or a bad descriptor is one error up front.

    Raises
    ------
    MissingDependencyError
        The potential or a descriptor needs an extra that is not installed.
    DescriptorError, UnknownNameError
        A descriptor of the recipe cannot be built.
    """
    from ..potentials import get_potential

    potential = get_potential(recipe.potential)
    potential.force_calculator()
    if potential.analytic_hessian:
        potential.hessian_calculator()
    from .. import descriptors

    for name, params in recipe.descriptors:
        descriptors.get(name, **dict(params))


@lru_cache(maxsize=16)
def _screened(potential_identity: str) -> Any:
    """The Hessian-noise screen of a potential (3-cell perfect lattices, 7 strains), once per
    process."""
    from ..harmonic.screen import screen_hessian_noise
    from ..potentials import get_potential

    potential = get_potential(potential_identity)
    return screen_hessian_noise(potential.hessian_calculator(), potential.element, potential.lattice,
                                potential.a0, n_cells=3, n_steps=3, fd_step=potential.fd_step)


def check_potential_smooth(recipe: Recipe) -> None:
    """Refuse a potential whose Hessians are too noisy for harmonic entropies
    (:func:`~ase_vibentropy.harmonic.screen.screen_hessian_noise`), before any job runs.

    Screened: every user potential and every potential with an analytic Hessian (the screen
    then costs well under a second); the built-in finite-difference potentials (``emt-cu``,
    ``lj-ar``) are screened by the package's tests instead.

    Raises
    ------
    NoisyPotentialError
        The screen fails; the message gives its numbers and how to override.
    """
    from ..errors import NoisyPotentialError
    from ..potentials import get_potential

    potential = get_potential(recipe.potential)
    if potential.spec is None and not potential.analytic_hessian:
        return
    screen = _screened(recipe.potential)
    if not screen.smooth:
        raise NoisyPotentialError(
            f"the Hessians of {potential.name} are too noisy for harmonic entropies: "
            f"{screen.verdict()}. Formation entropies from them grow with the cell "
            "(docs/theory.md, \"Tabulated potentials and Hessian noise\"); smooth the table "
            "(vibentropy check-potential SPEC shows the numbers), or pass "
            "--allow-noisy-hessians (generate(..., allow_noisy=True)) to label anyway"
        )


def generate(
    recipe: Recipe,
    db_url: str,
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    on_job: Callable[[JobOutcome], None] | None = None,
    allow_noisy: bool = False,
) -> RunSummary:
    """Run every unfinished job of ``recipe`` and store the results in ``db_url``.

    Bulk jobs run first (their entropies are needed by the defect jobs of the same cell).
    Finished jobs (``job_id`` present in the database) are skipped; a failed job is reported
    in the summary and retried by the next run.

    Parameters
    ----------
    recipe
        Validated recipe (:func:`~ase_vibentropy.data.recipe.load_recipe`).
    db_url
        ase.db URL or path (SQLite by default).
    workers
        Local worker processes (default: all cores); 1 runs in this process.
    scheduler
        Dask scheduler address (``tcp://host:8786``) or a ``dask.distributed.Client``; then
        ``workers`` is ignored and the cluster's workers run the jobs.
    progress
        Show a tqdm bar over jobs.
    on_job
        Called in this process after each job is written.
    allow_noisy
        Label even when the potential fails the Hessian-noise screen
        (:func:`check_potential_smooth`, run before anything is written).

    Returns
    -------
    RunSummary

    Raises
    ------
    NoisyPotentialError
        The potential fails the Hessian-noise screen and ``allow_noisy`` is False.
    GenerationInterrupted
        Ctrl-C (``KeyboardInterrupt``) during the run; every job finished before it is stored.
    """
    start_time = time.perf_counter()
    workers = max(1, int(workers or os.cpu_count() or 1))
    check_recipe_runs(recipe)  # a missing extra fails here, once, before any file is written
    if not allow_noisy:
        check_potential_smooth(recipe)
    db = connect(db_url)
    with exclusive_writer(db, f"vibentropy generate {recipe.source}"):
        return _generate_locked(recipe, db, workers, scheduler, progress, on_job, start_time)


def _generate_locked(recipe: Recipe, db: Any, workers: int, scheduler: Any, progress: bool,
                     on_job: Callable[[JobOutcome], None] | None, start_time: float) -> RunSummary:
    """:func:`generate` once the database's write lock is held."""
    _check_same_labelling_potential(recipe, db)
    jobs = make_jobs(recipe)
    done = finished_job_ids(db)
    summary = RunSummary(n_jobs=len(jobs), n_skipped=sum(j.job_id in done for j in jobs))
    bar = tqdm(total=len(jobs), initial=summary.n_skipped, desc="jobs", unit="job", disable=not progress)
    bulk_jobs = {(j.n_cells, j.strain): j for j in jobs if j.kind == "bulk"}
    try:
        for phase in ("bulk", "defect"):
            bulk_refs: dict[tuple[int, float], BulkReference] = {}
            if phase == "defect":
                for key, job in bulk_jobs.items():
                    if job.job_id in done:
                        bulk_refs[key] = _bulk_reference(db, job)
            tasks = [
                (recipe, job, bulk_refs.get((job.n_cells, job.strain)))
                for job in jobs
                if job.kind == phase and job.job_id not in done
                and (phase == "bulk" or (job.n_cells, job.strain) in bulk_refs)
            ]
            if not tasks:
                continue
            for job, outcome in _execute(tasks, workers, scheduler):
                bar.update(1)
                if isinstance(outcome, BaseException):
                    summary.n_failed += 1
                    summary.failures[job.job_id] = f"{type(outcome).__name__}: {outcome}"
                    continue
                write_job(db, outcome.rows, outcome.job_id, outcome.seconds)
                done.add(outcome.job_id)
                summary.n_run += 1
                summary.n_rows += len(outcome.rows)
                for key, value in outcome.summary.items():
                    summary.counts[key] = summary.counts.get(key, 0) + int(value)
                if on_job is not None:
                    on_job(outcome)
    except KeyboardInterrupt:
        n_done = sum(job.job_id in done for job in jobs)
        raise GenerationInterrupted(
            f"interrupted: {n_done} of {len(jobs)} jobs are in the database (none lost); rerun "
            "the same command to resume", n_done=n_done, n_jobs=len(jobs)) from None
    finally:
        bar.close()
    # Defect jobs whose bulk job failed could not run: count them as failed too.
    for job in jobs:
        if job.job_id not in done and job.job_id not in summary.failures:
            summary.n_failed += 1
            summary.failures[job.job_id] = "not run: the bulk job of its cell failed"
    summary.n_non_minima = summary.counts.get("n_non_minima", 0)
    summary.seconds = time.perf_counter() - start_time
    return summary
