"""Exact harmonic entropy of a relaxed structure, and formation entropies (Eq. 2-3).

Thin orchestration over the pure functions of :mod:`.hessian`, :mod:`.spectrum`,
:mod:`.entropy` and :mod:`.logdet`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from ase import Atoms

from ..errors import (
    CellMismatchError,
    EmbeddingNotApplicableError,
    InvalidOptionError,
    UnknownNameError,
)
from ..structure import check_structure, n_zero_modes, periodicity
from ..units import DEFAULT_TEMPERATURE_K, KB_EV_PER_K
from . import embedding
from .bloch import bloch_omega2, is_perfect_lattice
from .entropy import (
    classical_entropy_from_log_pdet,
    formation_entropy_value,
    harmonic_entropy_from_omega2,
    local_entropies,
    shift_classical_entropy,
)
from .hessian import HESSIAN_METHODS, compute_hessian, resolve_calculator, resolve_hessian_method
from .logdet import log_pdet, log_pdet_saddle
from .relax import DEFAULT_FMAX_EV_PER_A, check_relaxed, relax_positions
from .spectrum import (
    DEFAULT_ZERO_TOL,
    STATIONARY_POINTS,
    classify_modes,
    normal_modes,
    omega2_spectrum,
)

#: Solver names of :func:`harmonic_entropy`.
SOLVERS = ("auto", "dense", "logdet", "bloch", "embedding")

#: ``solver="auto"`` uses the log-det route for periodic cells of at least this many atoms
#: (where a factorisation clearly beats dense eigvalsh, see the benchmark).
LOGDET_MIN_ATOMS = 1000


@dataclass(frozen=True)
class HarmonicResult:
    """Exact harmonic entropy of one relaxed structure.

    Attributes
    ----------
    entropy : float
        S, eV/K (classical Eq. 2, or quantum when ``quantum``).
    entropy_kB : float
        S in units of k_B.
    n_atoms : int
        N.
    n_zero : int
        Zero modes excluded from Σ' (3 periodic, 6 or 5 isolated).
    n_imaginary : int
        Imaginary modes, excluded from Σ': at a minimum only non-zero with
        ``allow_imaginary=True``; at a saddle always 1 (the unstable mode).
    min_omega2 : float
        Smallest ω² outside the zero modes, eV/(Å² amu) (at a saddle the unstable mode's;
        NaN on the log-det route at a minimum).
    temperature : float
        K.
    hessian_method : str
        ``analytic`` | ``phonopy`` | ``fd`` | ``given``.
    solver : str
        ``dense``, ``bloch`` or ``logdet:<back end>``.
    omega2 : (3N,) ndarray or None
        Full ascending spectrum ω², eV/(Å² amu) (None on the log-det route).
    local_entropies : (N,) ndarray or None
        s_i, eV/K (Eq. 11), when asked for.
    seconds : float
        Wall time, Hessian included, s.
    n_modes : int
        n', number of modes in Σ'.
    log_pdet : float
        Σ' ln ω² (ω² in eV/(Å² amu)).
    quantum : bool
        Quantum harmonic entropy instead of the classical one.
    cell : (3, 3) ndarray
        Cell, Å (to check that defect and bulk fill the same cell).
    periodic : bool
        Fully periodic (True) or isolated (False).
    stationary_point : str
        ``minimum`` (n' = 3N - n_zero) or ``saddle`` (first-order, n' = 3N - n_zero - 1).
    embedding : EmbeddingResult or None
        On the embedding route: S_f, the convergence report over three radii and the time
        split (:class:`.embedding.EmbeddingResult`); ``entropy`` is its S_d at the first
        radius, i.e. (N_d/N_b) S_b + S_f with S_b exact.
    embedding_refused : str or None
        Why ``solver="auto"`` did not use the embedding for this large periodic cell.
    """

    entropy: float
    entropy_kB: float
    n_atoms: int
    n_zero: int
    n_imaginary: int
    min_omega2: float
    temperature: float
    hessian_method: str
    solver: str
    omega2: np.ndarray | None
    local_entropies: np.ndarray | None
    seconds: float
    n_modes: int = 0
    log_pdet: float = float("nan")
    quantum: bool = False
    cell: np.ndarray = field(default_factory=lambda: np.zeros((3, 3)))
    periodic: bool = True
    stationary_point: str = "minimum"
    embedding: embedding.EmbeddingResult | None = None
    embedding_refused: str | None = None

    @property
    def local_entropies_kB(self) -> np.ndarray | None:
        """s_i in units of k_B, (N,), or None."""
        return None if self.local_entropies is None else self.local_entropies / KB_EV_PER_K

    def entropy_at(self, temperature: float) -> float:
        """Classical S at another temperature, eV/K: S(T0) + n' k_B ln(T/T0) (exact, Eq. 2)."""
        if self.quantum:
            raise InvalidOptionError(
                "only the classical entropy shifts exactly with temperature; recompute the "
                "quantum entropy with harmonic_entropy(..., temperature=T)"
            )
        return shift_classical_entropy(self.entropy, self.n_modes, self.temperature, temperature)


def _choose_solver(
    solver: str, atoms: Atoms, local: bool, quantum: bool, allow: bool, saddle: bool
) -> str:
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise UnknownNameError(f"unknown solver {solver!r}; known: {', '.join(SOLVERS)}")
    if saddle and allow:
        raise InvalidOptionError(
            "allow_imaginary applies to minima; at a saddle exactly one imaginary mode is "
            "required and excluded: drop allow_imaginary"
        )
    if saddle and solver == "bloch":
        raise InvalidOptionError(
            "solver='bloch' is for perfect lattices, which are minima; use 'dense' or 'logdet' "
            "for a saddle"
        )
    needs_spectrum = local or quantum or allow
    if solver == "embedding":
        if needs_spectrum:
            raise InvalidOptionError(
                "solver='embedding' gives only Σ' ln ω²: local entropies, the quantum entropy "
                "and allow_imaginary need the spectrum; use solver='dense'"
            )
        return "embedding"
    if solver == "logdet":
        if needs_spectrum:
            raise InvalidOptionError(
                "solver='logdet' gives only Σ' ln ω²: local entropies, the quantum entropy and "
                "allow_imaginary need the spectrum; use solver='dense' or 'auto'"
            )
        if periodicity(atoms) != "periodic":
            raise InvalidOptionError(
                "solver='logdet' needs a periodic cell (its null space is the 3 translations); "
                "use solver='dense' for an isolated cluster"
            )
        return "logdet"
    if solver == "dense":
        return "dense"
    if solver == "bloch":
        if local:
            raise InvalidOptionError(
                "solver='bloch' gives the spectrum, not the eigenvectors local entropies need "
                "(in a perfect lattice they are all S/N anyway); use solver='dense'"
            )
        return "bloch"
    if not (local or saddle) and periodicity(atoms) == "periodic" and is_perfect_lattice(atoms):
        return "bloch"
    if needs_spectrum or periodicity(atoms) != "periodic":
        return "dense"
    if len(atoms) >= embedding.EMBEDDING_MIN_ATOMS:
        return "embedding"  # tried first; the full route if it does not apply
    return _full_route_solver(atoms)


def _full_route_solver(atoms: Atoms) -> str:
    """``auto``'s solver for a periodic cell whose spectrum is not needed and that neither the
    Bloch route nor the embedding takes: ``logdet`` from :data:`LOGDET_MIN_ATOMS` atoms."""
    return "logdet" if len(atoms) >= LOGDET_MIN_ATOMS else "dense"


def _embedding_refusal(
    lattice: str | None, a0: float | None, hessian: Any, calc: Any
) -> str | None:
    """Why the embedding cannot even be tried (no reference, no sparse Hessian), or None."""
    if lattice is None or a0 is None:
        return ("no perfect-lattice reference: give lattice= and a0= (the unstrained lattice "
                "constant, Å)")
    if isinstance(hessian, str) and (hessian not in ("auto", "analytic")
                                     or not hasattr(calc, "get_hessian")):
        return (f"it needs the calculator's sparse get_hessian ({type(calc).__name__} with "
                f"hessian={hessian!r} gives none)")
    return None


@dataclass(frozen=True)
class SolverChoice:
    """The route :func:`harmonic_entropy` takes for a structure, decided before any Hessian.

    Attributes
    ----------
    solver : str
        ``dense`` | ``logdet`` | ``bloch`` | ``embedding``. ``embedding`` is tried first; if
        the cell turns out not to suit it (:class:`~ase_vibentropy.errors.
        EmbeddingNotApplicableError`, checked before any relaxation) and ``auto`` was asked,
        ``fallback`` is used instead.
    fallback : str
        The full route (``dense`` or ``logdet``) for that case; equal to ``solver`` otherwise.
    embedding_refused : str or None
        Why ``auto`` did not pick the embedding for a cell of at least
        :data:`~.embedding.EMBEDDING_MIN_ATOMS` atoms (no lattice reference, no sparse Hessian).
    """

    solver: str
    fallback: str
    embedding_refused: str | None = None


def choose_solver(
    atoms: Atoms,
    solver: str = "auto",
    *,
    local: bool = False,
    quantum: bool = False,
    allow_imaginary: bool = False,
    stationary_point: str = "minimum",
    lattice: str | None = None,
    a0: float | None = None,
    hessian: Any = "auto",
    calc: Any | None = None,
) -> SolverChoice:
    """The solver :func:`harmonic_entropy` uses with these arguments (same names and meaning).

    The one place where ``solver="auto"`` is resolved: the Bloch route for a perfect lattice;
    the embedding for periodic cells of >= :data:`~.embedding.EMBEDDING_MIN_ATOMS` atoms with
    a lattice reference and a sparse analytic Hessian; else log-det for periodic cells of >=
    :data:`LOGDET_MIN_ATOMS` atoms unless the spectrum is needed; else dense.

    Raises
    ------
    UnknownNameError, InvalidOptionError
        Unknown solver, or one that cannot give what is asked (the message names the one to use).
    """
    saddle = stationary_point == "saddle"
    chosen = _choose_solver(solver, atoms, local, quantum, allow_imaginary, saddle)
    if chosen != "embedding":
        return SolverChoice(chosen, chosen)
    fallback = _full_route_solver(atoms)
    refused = _embedding_refusal(lattice, a0, hessian, calc)
    if refused is None:
        return SolverChoice("embedding", fallback)
    if solver == "embedding":
        raise InvalidOptionError(f"solver='embedding' cannot be used: {refused}")
    return SolverChoice(fallback, fallback, refused)


def _embedded(
    atoms: Atoms, calc: Any, hessian: Any, options: dict[str, Any]
) -> embedding.EmbeddingResult:
    """:func:`.embedding.embedding_formation_entropy` with harmonic_entropy's options."""
    given = None if isinstance(hessian, str) else sp.csr_matrix(hessian)
    return embedding.embedding_formation_entropy(atoms, calc, hessian=given, **options)


def harmonic_entropy(
    atoms: Atoms,
    calc: Any | None = None,
    temperature: float = DEFAULT_TEMPERATURE_K,
    hessian: str | np.ndarray | sp.spmatrix = "auto",
    solver: str = "auto",
    quantum: bool = False,
    local: bool = False,
    allow_imaginary: bool = False,
    fmax: float | None = DEFAULT_FMAX_EV_PER_A,
    relax: bool = False,
    step: float | None = None,
    symmetry: bool = True,
    zero_tol: float = DEFAULT_ZERO_TOL,
    progress: bool = False,
    stationary_point: str = "minimum",
    lattice: str | None = None,
    a0: float | None = None,
) -> HarmonicResult:
    """Exact harmonic vibrational entropy of a relaxed structure (Eq. 2), minimum or saddle.

    Parameters
    ----------
    atoms
        Fully periodic cell or isolated cluster (not modified).
    calc
        ASE calculator (default ``atoms.calc``); gives the forces and the Hessian.
    temperature
        T, K.
    hessian
        ``auto`` | ``analytic`` | ``phonopy`` | ``fd`` (see :func:`compute_hessian`), or a
        precomputed (3N, 3N) Hessian in eV/Å² (dense or sparse; then ``calc`` is only needed
        for the force check).
    solver
        ``dense`` (eigvalsh), ``logdet`` (one factorisation, periodic cells),
        ``bloch`` (perfect cubic supercells: the spectrum from n³ Bloch matrices, O(N), see
        :mod:`.bloch`), ``embedding`` (a localised defect or saddle in a cubic cell with a
        perfect-lattice reference, ``lattice`` and ``a0``: ln pdet D_d from the lattice
        Green's function and a region around the defect, no whole-cell factorisation, see
        :func:`.embedding.embedding_formation_entropy`; the result's ``embedding`` holds S_f
        and the convergence report) or ``auto`` (bloch for a perfect lattice; embedding for
        periodic cells of >= :data:`~.embedding.EMBEDDING_MIN_ATOMS` atoms when it applies,
        the reason in ``embedding_refused`` when not; else log-det for periodic cells of >=
        :data:`LOGDET_MIN_ATOMS` atoms unless the spectrum is needed; else dense).
    quantum
        Quantum harmonic entropy instead of the classical one (needs the spectrum).
    local
        Also compute the local entropies s_i (Eq. 11, needs the eigenvectors: O(N³)).
    allow_imaginary
        Report imaginary modes (count in ``n_imaginary``, excluded from Σ') instead of raising.
    fmax
        Largest residual force accepted, eV/Å (None: skip the check).
    relax
        Relax the positions at fixed cell (to ``fmax / 10``) before the Hessian.
    step
        Finite-displacement step for ``phonopy`` and ``fd``, Å (default 1e-3).
    symmetry
        Symmetry reduction of the phonopy displacements.
    zero_tol
        |ω²| below ``zero_tol`` * max|ω²| is zero (dense route).
    progress
        tqdm bars over force calls.
    stationary_point
        ``minimum`` (no negative ω²) or ``saddle``: a first-order saddle, exactly one negative
        ω², whose unstable mode is excluded from Σ' (n' = 3N - 4 in a periodic cell). The
        log-det route then deflates the unstable mode (:func:`.logdet.log_pdet_saddle`);
        the dense route counts the modes of the full spectrum. The force check (``fmax``)
        applies to both: a saddle is a stationary point too. ``relax`` is refused at a
        saddle (a relaxation would leave it); refine it with :func:`refine_saddle`.
    lattice
        ``bcc`` | ``fcc`` | ``sc``: the perfect lattice filling the same cubic cell, for the
        embedding (with ``a0``).
    a0
        Unstrained lattice constant of ``lattice``, Å.

    Returns
    -------
    HarmonicResult
        ``entropy`` in eV/K and ``entropy_kB``.

    Raises
    ------
    InvalidStructureError, NotRelaxedError, NotAMinimumError, ZeroModeError, UnknownNameError
    SaddleIsMinimumError, HigherOrderSaddleError
        ``stationary_point="saddle"`` with no, or more than one, negative ω².
    EmbeddingNotApplicableError
        ``solver="embedding"`` on a cell it does not apply to (the message says why).
    """
    start = time.perf_counter()
    check_structure(atoms)
    if not temperature > 0:
        raise InvalidOptionError(f"temperature must be positive, in K; got {temperature}")
    given = not isinstance(hessian, str)
    if not given and hessian not in HESSIAN_METHODS:
        raise UnknownNameError(
            f"unknown Hessian source {hessian!r}; known: {', '.join(HESSIAN_METHODS)}"
        )
    if given and relax:
        raise InvalidOptionError(
            "relax=True would move the atoms away from the positions of the given Hessian; "
            "relax first (relax_positions), then compute the Hessian"
        )
    if stationary_point not in STATIONARY_POINTS:
        raise InvalidOptionError(
            f"unknown stationary_point {stationary_point!r}; known: {', '.join(STATIONARY_POINTS)}"
        )
    saddle = stationary_point == "saddle"
    if saddle and relax:
        raise InvalidOptionError(
            "relax=True would slide a saddle down to a minimum; refine it with "
            "harmonic.refine_saddle instead"
        )
    needs_calc = not given or relax or fmax is not None
    calc = resolve_calculator(atoms, calc) if needs_calc else None
    choice = choose_solver(
        atoms, solver, local=local, quantum=quantum, allow_imaginary=allow_imaginary,
        stationary_point=stationary_point, lattice=lattice, a0=a0, hessian=hessian, calc=calc,
    )
    asked, solver, refused = solver, choice.solver, choice.embedding_refused
    if solver == "embedding":
        options = dict(lattice=lattice, a0=a0, temperature=temperature, relax=relax,
                       fmax=fmax, stationary_point=stationary_point)
        try:
            found = _embedded(atoms, calc, hessian, options)
        except EmbeddingNotApplicableError as exc:
            if asked == "embedding":
                raise
            refused = str(exc)
        else:
            return HarmonicResult(
                entropy=found.entropy,
                entropy_kB=found.entropy / KB_EV_PER_K,
                n_atoms=len(atoms),
                n_zero=3,
                n_imaginary=STATIONARY_POINTS[stationary_point],
                min_omega2=found.unstable_omega2,
                temperature=float(temperature),
                hessian_method="given" if given else "analytic",
                solver="embedding",
                omega2=None,
                local_entropies=None,
                seconds=time.perf_counter() - start,
                n_modes=found.n_modes,
                log_pdet=found.log_pdet,
                cell=np.array(atoms.cell[:], dtype=np.float64),
                stationary_point=stationary_point,
                embedding=found,
            )
        solver = choice.fallback
    if relax:
        atoms = relax_positions(atoms, calc, fmax=(fmax or DEFAULT_FMAX_EV_PER_A) / 10)
    if fmax is not None:
        check_relaxed(atoms, calc, fmax)

    if given:
        matrix, method = hessian, "given"
        n3 = 3 * len(atoms)
        if matrix.shape != (n3, n3):
            raise InvalidOptionError(f"the given Hessian has shape {matrix.shape}, expected ({n3}, {n3})")
    else:
        method = resolve_hessian_method(hessian, calc)
        matrix = compute_hessian(
            atoms, calc, method=method, step=step, symmetry=symmetry, progress=progress
        )
    masses = atoms.get_masses()
    n_zero = n_zero_modes(atoms)
    common = dict(
        n_atoms=len(atoms),
        n_zero=n_zero,
        temperature=float(temperature),
        hessian_method=method,
        quantum=bool(quantum),
        cell=np.array(atoms.cell[:], dtype=np.float64),
        periodic=periodicity(atoms) == "periodic",
        stationary_point=stationary_point,
    )
    if solver == "logdet":
        route = log_pdet_saddle if saddle else log_pdet
        extra = {"zero_tol": zero_tol} if saddle else {}
        result = route(matrix, masses, scaled_positions=atoms.get_scaled_positions(wrap=False), **extra)
        entropy = classical_entropy_from_log_pdet(result.log_pdet, result.n_modes, temperature)
        return HarmonicResult(
            entropy=entropy,
            entropy_kB=entropy / KB_EV_PER_K,
            n_imaginary=result.n_negative,
            min_omega2=result.unstable_omega2,
            solver=f"logdet:{result.backend}",
            omega2=None,
            local_entropies=None,
            seconds=time.perf_counter() - start,
            n_modes=result.n_modes,
            log_pdet=result.log_pdet,
            embedding_refused=refused,
            **common,
        )
    if local:
        omega2, modes = normal_modes(matrix, masses)
    elif solver == "bloch":
        omega2, modes = bloch_omega2(atoms, matrix, masses), None
    else:
        omega2, modes = omega2_spectrum(matrix, masses), None
    modes_info = classify_modes(
        omega2, n_zero, zero_tol=zero_tol, allow_imaginary=allow_imaginary,
        stationary_point=stationary_point,
    )
    kept = omega2[modes_info.vibrational]
    entropy = harmonic_entropy_from_omega2(kept, temperature, quantum)
    local_s = (
        local_entropies(kept, modes[:, modes_info.vibrational], temperature, quantum)
        if modes is not None
        else None
    )
    return HarmonicResult(
        entropy=entropy,
        entropy_kB=entropy / KB_EV_PER_K,
        n_imaginary=modes_info.n_imaginary,
        min_omega2=modes_info.min_omega2,
        solver=solver,
        omega2=omega2,
        local_entropies=local_s,
        seconds=time.perf_counter() - start,
        n_modes=int(kept.size),
        log_pdet=float(np.sum(np.log(kept))),
        embedding_refused=refused,
        **common,
    )


def formation_entropy(defect_result: HarmonicResult, bulk_result: HarmonicResult) -> float:
    """S_f = S_d - (N_d/N_b) S_b (Eq. 3), eV/K, mode-count term included.

    Raises
    ------
    CellMismatchError
        The two results are not for the same periodic cell (to 1e-6 Å) or the same
        temperature and entropy kind.
    """
    for name, res in (("defect", defect_result), ("bulk", bulk_result)):
        if not res.periodic:
            raise CellMismatchError(
                f"the {name} result is for an isolated cluster: formation entropies need "
                "periodic defect and bulk cells"
            )
    if not np.allclose(defect_result.cell, bulk_result.cell, rtol=0.0, atol=1e-6):
        raise CellMismatchError(
            "defect and bulk cells differ (max |Δcell| = "
            f"{np.max(np.abs(defect_result.cell - bulk_result.cell)):.3g} Å): Eq. 3 compares "
            "them at the same volume and strain; build the bulk with bulk_for_cell"
        )
    if defect_result.temperature != bulk_result.temperature or (
        defect_result.quantum != bulk_result.quantum
    ):
        raise CellMismatchError(
            f"defect (T = {defect_result.temperature} K, quantum={defect_result.quantum}) and "
            f"bulk (T = {bulk_result.temperature} K, quantum={bulk_result.quantum}) results "
            "differ in temperature or entropy kind; compute both the same way"
        )
    return formation_entropy_value(
        defect_result.entropy, defect_result.n_atoms, bulk_result.entropy, bulk_result.n_atoms
    )
