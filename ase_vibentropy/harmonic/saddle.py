"""First-order saddles: refinement, Vineyard attempt frequencies and migration entropies.

Harmonic transition-state theory (docs/theory.md, "Saddle points and attempt frequencies"):
the rate of a jump from a minimum over a first-order saddle is ν* exp(-ΔE / k_B T) with

    ν* = Π_{3N-3} ω(minimum) / (2π Π_{3N-4} ω(saddle))        (Vineyard, positive modes only)

in a periodic cell, and the classical migration entropy ΔS_m = S_saddle - S_minimum (3N - 4
against 3N - 3 modes) obeys ΔS_m / k_B = ln(h ν* / k_B T) - 1 exactly.

Saddles are refined with Newton steps on the exact Hessian that climb along the lowest mode
and descend along all the others (:func:`refine_saddle`); every saddle is checked to have
exactly one negative ω² (:func:`.spectrum.check_stationary_point`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from ase import Atoms

from ..errors import CellMismatchError, InvalidOptionError, NotRelaxedError
from ..structure import check_structure
from ..units import DEFAULT_TEMPERATURE_K, HBAR_EV_S, KB_EV_PER_K, OMEGA_UNIT_RAD_PER_S
from .entropy import harmonic_entropy_from_omega2
from .hessian import calculation_copy, compute_hessian, resolve_calculator
from .logdet import lowest_internal_mode, unstable_mode
from .reference import HarmonicResult, harmonic_entropy
from .relax import NEWTON_MAX_STEP_A, capped_step, largest_force, relax_to_minimum
from .spectrum import DEFAULT_ZERO_TOL, classify_modes

#: Default convergence criterion of :func:`refine_saddle`, eV/Å.
SADDLE_FMAX_EV_PER_A = 1e-6


def refine_saddle(
    atoms: Atoms,
    calc: Any | None = None,
    fmax: float = SADDLE_FMAX_EV_PER_A,
    steps: int = 50,
    hessian: str = "auto",
    zero_tol: float = DEFAULT_ZERO_TOL,
) -> Atoms:
    """Refine an approximate first-order saddle (NEB climbing image, dimer end point).

    Partitioned Newton steps on the exact Hessian H (eV/Å²): with (λ, v) the lowest internal
    eigenpair of H, each step Δx solves

        (H + (|λ| - λ) v vᵀ) Δx = F - 2 (F·v) v

    by conjugate gradients, i.e. Δx = (g·v)/|λ| v uphill along v and the Newton step
    H⊥⁻¹ F⊥ downhill in every other direction (g = -F). Close to a first-order saddle
    (λ < 0) this is the plain Newton step, which converges quadratically; farther away it
    still climbs along the softest mode instead of falling to a minimum. Steps are capped at
    :data:`~.relax.NEWTON_MAX_STEP_A` per atom and never translate the cell content.

    Parameters
    ----------
    atoms
        Periodic structure near a first-order saddle (not modified).
    calc
        ASE calculator (default ``atoms.calc``); its Hessian comes from ``hessian``.
    fmax
        Convergence criterion on max_i |F_i|, eV/Å.
    steps
        Largest number of Newton steps.
    hessian
        Hessian source of :func:`.hessian.compute_hessian` (``auto``: the calculator's exact
        sparse ``get_hessian`` when it has one, else phonopy displacements).
    zero_tol
        Relative zero tolerance of the final mode check.

    Returns
    -------
    Atoms
        The refined saddle, a copy with ``calc`` attached.

    Raises
    ------
    NotRelaxedError
        max |F| still above ``fmax`` after ``steps`` steps, or a direction of non-positive
        curvature besides the climbing mode (the start is near a higher-order saddle).
    SaddleIsMinimumError, HigherOrderSaddleError
        The converged point does not have exactly one negative ω².
    """
    check_structure(atoms)
    if not bool(atoms.pbc.all()):
        raise InvalidOptionError(
            "refine_saddle works on periodic cells (3 translational zero modes); got pbc="
            f"{atoms.pbc.tolist()}"
        )
    work = calculation_copy(atoms, resolve_calculator(atoms, calc))
    forces = work.get_forces()
    largest = largest_force(forces)
    mode = None
    for _ in range(steps):
        if largest <= fmax:
            break
        matrix = compute_hessian(work, work.calc, method=hessian)
        matrix = sp.csr_matrix(matrix) if sp.issparse(matrix) else np.asarray(matrix)
        # 1e-8: a step direction; the converged point does not depend on it (module docstring)
        curvature, mode = lowest_internal_mode(matrix, start=mode, tol=1e-8)
        force = (forces - forces.mean(axis=0)).ravel()  # orthogonal to the translations
        along = float(force @ mode)
        shift = abs(curvature) - curvature
        operator = spla.LinearOperator(
            matrix.shape, matvec=lambda x: matrix @ x + shift * mode * (mode @ x), dtype=np.float64
        )
        step, info = spla.cg(operator, force - 2.0 * along * mode, rtol=1e-12, atol=0.0,
                             maxiter=20 * force.size)
        if info < 0 or not float(step @ operator.matvec(step)) > 0.0:
            raise NotRelaxedError(
                "saddle refinement found a second direction of negative curvature: the start "
                "is not near a first-order saddle; start from a converged climbing image",
                max_force=largest,
                fmax=fmax,
            )
        step, _ = capped_step(step, NEWTON_MAX_STEP_A)
        work.positions = work.positions + step
        forces = work.get_forces()
        largest = largest_force(forces)
    if largest > fmax:
        raise NotRelaxedError(
            f"saddle refinement did not converge: largest force {largest:.3g} eV/Å > fmax = "
            f"{fmax:.3g} eV/Å after {steps} Newton steps; start closer to the saddle (a better "
            "converged climbing image)",
            max_force=largest,
            fmax=fmax,
        )
    unstable_mode(compute_hessian(work, work.calc, method=hessian), work.get_masses(), zero_tol)
    return work


@dataclass(frozen=True)
class AttemptFrequency:
    """Harmonic transition-state theory of one jump: a minimum and its first-order saddle.

    Attributes
    ----------
    nu_THz : float
        Vineyard attempt frequency ν* = Π_{n'} ω(min) / (2π Π_{n'-1} ω(saddle)), THz.
    delta_S_m : float
        Classical migration entropy S_saddle (n' - 1 modes) - S_minimum (n' modes), eV/K;
        ΔS_m / k_B = ln(h ν* / k_B T) - 1.
    delta_E : float
        Barrier E_saddle - E_minimum, eV.
    temperature : float
        T, K.
    n_modes_minimum, n_modes_saddle : int
        Modes in Σ' at the minimum (3N - 3) and at the saddle (3N - 4).
    unstable_omega2 : float
        The saddle's negative ω², eV/(Å² amu).
    minimum, saddle : HarmonicResult
        The two classical harmonic results.
    nu_quantum_THz : float or None
        Quantum-harmonic prefactor (k_B T / h) Z_saddle / Z_minimum, THz (docs/theory.md),
        when asked for.
    delta_S_m_quantum : float or None
        Quantum-harmonic S_saddle - S_minimum, eV/K, when asked for.
    """

    nu_THz: float
    delta_S_m: float
    delta_E: float
    temperature: float
    n_modes_minimum: int
    n_modes_saddle: int
    unstable_omega2: float
    minimum: HarmonicResult
    saddle: HarmonicResult
    nu_quantum_THz: float | None = None
    delta_S_m_quantum: float | None = None

    @property
    def delta_S_m_kB(self) -> float:
        """ΔS_m in units of k_B."""
        return self.delta_S_m / KB_EV_PER_K

    @property
    def rate_per_s(self) -> float:
        """Classical harmonic jump rate ν* exp(-ΔE / k_B T), 1/s."""
        return self.nu_THz * 1e12 * float(np.exp(-self.delta_E / (KB_EV_PER_K * self.temperature)))

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready summary (entropies in k_B, keys ending ``_kB``)."""
        quantum = self.delta_S_m_quantum
        return {
            "delta_E_eV": self.delta_E,
            "nu_THz": self.nu_THz,
            "delta_S_m_kB": self.delta_S_m_kB,
            "n_modes_minimum": self.n_modes_minimum,
            "n_modes_saddle": self.n_modes_saddle,
            "unstable_omega2": self.unstable_omega2,
            "temperature_K": self.temperature,
            "rate_per_s": self.rate_per_s,
            "nu_quantum_THz": self.nu_quantum_THz,
            "delta_S_m_quantum_kB": None if quantum is None else quantum / KB_EV_PER_K,
        }


def _vibrational_omega2(result: HarmonicResult, zero_tol: float) -> np.ndarray:
    """ω² of the modes in Σ' of a dense-route result, eV/(Å² amu), shape (n',)."""
    modes = classify_modes(result.omega2, result.n_zero, zero_tol=zero_tol,
                           stationary_point=result.stationary_point)
    return result.omega2[modes.vibrational]


def thermal_frequency_THz(temperature: float) -> float:
    """k_B T / h in THz (6.25 THz at 300 K)."""
    return KB_EV_PER_K * temperature / (2.0 * np.pi * HBAR_EV_S) / 1e12


def vineyard_frequency_THz(delta_S_m_kB: float, temperature: float) -> float:
    """ν* (THz) of a classical migration entropy ΔS_m (k_B) at T (K): the identity
    ΔS_m/k_B = ln(h ν*/k_B T) - 1 solved for ν*."""
    return float(thermal_frequency_THz(temperature) * np.exp(delta_S_m_kB + 1.0))


def log_quantum_partition(omega2: np.ndarray, temperature: float) -> float:
    """ln Z = -Σ' ln(2 sinh(ħω/2k_BT)) of harmonic modes ω² (n',) in eV/(Å² amu) at T (K)."""
    x = np.sqrt(omega2) * (HBAR_EV_S * OMEGA_UNIT_RAD_PER_S) / (KB_EV_PER_K * temperature)
    # ln(2 sinh(x/2)) = x/2 + ln(1 - e^-x), stable for large and small x
    return float(-np.sum(0.5 * x + np.log(-np.expm1(-x))))


def check_jump_pair(initial: Atoms, saddle: Atoms) -> None:
    """Raise :class:`CellMismatchError` unless a jump's minimum and saddle hold the same atoms
    (count and masses, in order) in the same cell."""
    if len(initial) != len(saddle) or not np.allclose(initial.get_masses(), saddle.get_masses()):
        raise CellMismatchError(
            f"the minimum ({len(initial)} atoms) and the saddle ({len(saddle)} atoms) must hold "
            "the same atoms in the same order: ν* compares their modes one count apart"
        )
    if not np.allclose(initial.cell[:], saddle.cell[:], rtol=0.0, atol=1e-6):
        raise CellMismatchError(
            "the minimum and the saddle have different cells (max |Δcell| = "
            f"{np.max(np.abs(initial.cell[:] - saddle.cell[:])):.3g} Å); a jump happens at "
            "fixed cell: take both from one NEB band"
        )


def attempt_frequency(
    initial: Atoms,
    saddle: Atoms,
    calc: Any | None = None,
    temperature: float = DEFAULT_TEMPERATURE_K,
    quantum: bool = False,
    solver: str = "auto",
    hessian: str = "auto",
    fmax: float | None = 1e-3,
    zero_tol: float = DEFAULT_ZERO_TOL,
    lattice: str | None = None,
    a0: float | None = None,
) -> AttemptFrequency:
    """Vineyard attempt frequency, migration entropy and barrier of the jump initial -> saddle.

    Parameters
    ----------
    initial
        Relaxed minimum, periodic cell (not modified).
    saddle
        First-order saddle of the same atoms in the same cell (e.g. from
        :func:`refine_saddle`); exactly one negative ω² is required.
    calc
        ASE calculator for both (default: each structure's own ``calc``).
    temperature
        T, K (the classical ν* is independent of T; ΔS_m = ln(h ν*/k_B T) - 1 is not).
    quantum
        Also give the quantum-harmonic prefactor and ΔS_m (needs the full spectra: dense).
    solver
        ``auto`` | ``dense`` | ``logdet`` | ``embedding`` of :func:`harmonic_entropy`, for both
        structures (``embedding``: a jump in a large cubic cell, with ``lattice`` and ``a0``;
        ``auto`` uses it from :data:`~.embedding.EMBEDDING_MIN_ATOMS` atoms when they are given).
    hessian
        Hessian source of :func:`harmonic_entropy`.
    fmax
        Largest residual force accepted at either structure, eV/Å (None: no check).
    zero_tol
        Relative zero tolerance of the mode counts.
    lattice, a0
        Perfect-lattice reference of the cell for the embedding (``bcc`` | ``fcc`` | ``sc``;
        unstrained lattice constant, Å).

    Returns
    -------
    AttemptFrequency

    Raises
    ------
    CellMismatchError
        Different atoms or cells.
    NotAMinimumError, SaddleIsMinimumError, HigherOrderSaddleError, NotRelaxedError
        A wrong mode count at either structure, or residual forces above ``fmax``.
    """
    check_jump_pair(initial, saddle)
    calc_min = resolve_calculator(initial, calc)
    calc_sad = resolve_calculator(saddle, calc)
    options = dict(temperature=temperature, hessian=hessian, solver="dense" if quantum else solver,
                   fmax=fmax, zero_tol=zero_tol, lattice=lattice, a0=a0)
    minimum = harmonic_entropy(initial, calc_min, **options)
    top = harmonic_entropy(saddle, calc_sad, stationary_point="saddle", **options)
    if minimum.n_modes != top.n_modes + 1:
        raise InvalidOptionError(
            f"the minimum has {minimum.n_modes} modes in Σ' and the saddle {top.n_modes}; "
            "a first-order saddle of the same cell must have exactly one fewer"
        )
    # Π ω(min) / Π ω(saddle) with one more factor above: the ratio has the unit of ω.
    log_ratio = 0.5 * (minimum.log_pdet - top.log_pdet) + np.log(OMEGA_UNIT_RAD_PER_S)
    nu_THz = float(np.exp(log_ratio) / (2.0 * np.pi) / 1e12)
    delta_E = float(
        calculation_copy(saddle, calc_sad).get_potential_energy()
        - calculation_copy(initial, calc_min).get_potential_energy()
    )
    nu_quantum = delta_quantum = None
    if quantum:
        omega2_min = _vibrational_omega2(minimum, zero_tol)
        omega2_sad = _vibrational_omega2(top, zero_tol)
        nu_quantum = float(thermal_frequency_THz(temperature) * np.exp(
            log_quantum_partition(omega2_sad, temperature)
            - log_quantum_partition(omega2_min, temperature)
        ))
        delta_quantum = harmonic_entropy_from_omega2(
            omega2_sad, temperature, quantum=True
        ) - harmonic_entropy_from_omega2(omega2_min, temperature, quantum=True)
    return AttemptFrequency(
        nu_THz=nu_THz,
        delta_S_m=top.entropy - minimum.entropy,
        delta_E=delta_E,
        temperature=float(temperature),
        n_modes_minimum=minimum.n_modes,
        n_modes_saddle=top.n_modes,
        unstable_omega2=top.min_omega2,
        minimum=minimum,
        saddle=top,
        nu_quantum_THz=nu_quantum,
        delta_S_m_quantum=delta_quantum,
    )


def climbing_band(
    initial: Atoms, final: Atoms, calculator: Callable[[], Any], n_images: int = 5,
    fmax: float = 0.01, steps: int = 1000,
) -> tuple[list[Atoms], bool]:
    """A climbing-image NEB band between two minima of the same cell (ASE's ``NEB``,
    improved tangent, linear interpolation with minimum image), relaxed by FIRE.

    Parameters
    ----------
    initial, final
        End points, same atoms in the same order (not modified).
    calculator
        Makes a new calculator for each image.
    n_images
        Interior images (an odd count puts one at the midpoint).
    fmax, steps
        FIRE's force tolerance (eV/Å) and step limit.

    Returns
    -------
    images, converged
        The n_images + 2 images with their calculators, and whether FIRE converged. Refine the
        highest image with :func:`refine_saddle` (or pass the band to :func:`band_jumps`).
    """
    from ase.mep import NEB
    from ase.optimize import FIRE

    images = [initial.copy() for _ in range(n_images + 1)] + [final.copy()]
    for image in images:
        image.calc = calculator()
    neb = NEB(images, climb=True, method="improvedtangent")
    neb.interpolate(mic=True)
    converged = bool(FIRE(neb, logfile=None).run(fmax=fmax, steps=steps))
    return images, converged


def band_segments(energies: np.ndarray) -> list[tuple[int, int, int]]:
    """Elementary jumps of a relaxed band: (left minimum, highest image, right minimum).

    The end images and every interior image lower than both neighbours (an intermediate
    minimum: the jump is then several elementary steps) split the band; each piece between two
    consecutive minima has its own highest image, the start of its saddle.

    Parameters
    ----------
    energies
        (n_images,) image energies, eV, end points included.

    Returns
    -------
    list of (int, int, int)
        Image indices, one triple per elementary jump, in band order.
    """
    energies = np.asarray(energies, dtype=np.float64)
    if energies.size < 3:
        raise InvalidOptionError(
            f"a band needs at least 3 images (two end points and one between), got {energies.size}"
        )
    inner = np.flatnonzero((energies[1:-1] < energies[:-2]) & (energies[1:-1] < energies[2:])) + 1
    minima = [0, *inner.tolist(), energies.size - 1]
    segments = []
    for left, right in zip(minima[:-1], minima[1:]):
        if right - left < 2:
            raise InvalidOptionError(
                f"images {left} and {right} are neighbouring minima with no image between them: "
                "add images to the band"
            )
        top = left + 1 + int(np.argmax(energies[left + 1 : right]))
        segments.append((left, top, right))
    return segments


@dataclass(frozen=True)
class ElementaryJump:
    """One elementary jump of a band: minimum -> first-order saddle <- minimum.

    Attributes
    ----------
    images : (int, int, int)
        Band indices of the left minimum, the image the saddle was refined from, and the right
        minimum.
    left, saddle, right : Atoms
        The two minima (interior ones relaxed) and the refined saddle, ``calc`` attached.
    forward, backward : AttemptFrequency
        left -> saddle and right -> saddle.
    """

    images: tuple[int, int, int]
    left: Atoms
    saddle: Atoms
    right: Atoms
    forward: AttemptFrequency
    backward: AttemptFrequency


def band_jumps(
    images: list[Atoms],
    calc: Any | None = None,
    temperature: float = DEFAULT_TEMPERATURE_K,
    fmax: float = SADDLE_FMAX_EV_PER_A,
    quantum: bool = False,
    solver: str = "auto",
    hessian: str = "auto",
    lattice: str | None = None,
    a0: float | None = None,
) -> list[ElementaryJump]:
    """Attempt frequencies of every elementary jump of a relaxed NEB band (e.g. ase.mep.NEB).

    The band is split at its intermediate minima (:func:`band_segments`); in each piece the
    highest image is refined to a first-order saddle (:func:`refine_saddle`, to ``fmax``), an
    interior minimum image is relaxed to ``fmax`` (:func:`~.relax.relax_to_minimum`), and
    :func:`attempt_frequency` is evaluated from both sides. The end images must be relaxed
    minima (max |F| <= 1e-3 eV/Å, the check of :func:`attempt_frequency`).

    Parameters
    ----------
    images
        The band, end points included, all the same atoms in the same cell.
    calc
        ASE calculator for every image (default: the first image's ``calc``; NEB images often
        carry one calculator each, only the potential matters here).
    temperature
        T, K.
    fmax
        Convergence of the saddle refinement and of interior minima, eV/Å.
    quantum, solver, hessian, lattice, a0
        As in :func:`attempt_frequency`.

    Returns
    -------
    list of ElementaryJump
        In band order; the band's barrier is the jump with the highest saddle energy.
    """
    calc = resolve_calculator(images[0], calc)
    energies = np.array([calculation_copy(im, calc).get_potential_energy() for im in images])
    jumps = []
    minima: dict[int, Atoms] = {0: images[0], len(images) - 1: images[-1]}
    for left, top, right in band_segments(energies):
        for index in (left, right):
            if index not in minima:
                minima[index] = relax_to_minimum(images[index], calc, fmax=fmax)
        saddle = refine_saddle(images[top], calc, fmax=fmax, hessian=hessian)
        options = dict(calc=calc, temperature=temperature, quantum=quantum, solver=solver,
                       hessian=hessian, lattice=lattice, a0=a0)
        jumps.append(ElementaryJump(
            images=(left, top, right),
            left=minima[left],
            saddle=saddle,
            right=minima[right],
            forward=attempt_frequency(minima[left], saddle, **options),
            backward=attempt_frequency(minima[right], saddle, **options),
        ))
    return jumps
