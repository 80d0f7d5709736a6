"""Exact harmonic vibrational entropy: the reference the surrogate is trained on (docs/theory.md).

Pure functions, units in every docstring: Hessians in eV/Å², ω² in eV/(Å² amu), entropies in
eV/K (``entropy_kB`` in units of k_B), temperatures in K.

- :func:`compute_hessian`: analytic / phonopy / central finite differences;
- :func:`omega2_spectrum`, :func:`normal_modes`, :func:`classify_modes`: spectrum, zero and
  imaginary modes;
- :func:`harmonic_entropy` -> :class:`HarmonicResult`, :func:`formation_entropy` (Eq. 2-3);
- :func:`log_pdet`: exact ln pdet(D) by one factorisation (docs/theory.md);
- :func:`bloch_omega2`: Γ-point spectrum of a perfect cubic supercell in O(N) (Bloch);
- :func:`embedding_formation_entropy` (also ``harmonic_entropy(..., solver="embedding")``): S_f
  of a localised defect or saddle in a 10^4-10^5-atom cell from
  the lattice Green's function (:func:`lattice_greens_function`), no whole-cell factorisation;
- :func:`local_entropies`, :func:`local_phonon_dos` (Eq. 8-11);
- :func:`relax_positions`, :func:`relax_to_minimum` (L-BFGS then Newton), :func:`newton_polish`,
  :func:`check_relaxed`; :func:`bulk_for_cell`;
- saddles: ``harmonic_entropy(..., stationary_point="saddle")``, :func:`log_pdet_saddle`,
  :func:`refine_saddle`, :func:`attempt_frequency` -> :class:`AttemptFrequency` (Vineyard ν*,
  ΔS_m), :func:`band_jumps` (every elementary jump of an NEB band);
- jump cores: :func:`jump_core_region`, :func:`core_migration_entropy` (exact ΔS_m of the
  fixed-boundary cluster around a jump, the core of a migration model with ``core_radius``).
"""

from __future__ import annotations

from .bloch import bloch_omega2, decompose_perfect_lattice, is_perfect_lattice
from .bulk import LATTICES, bulk_for_cell, perfect_cubic_supercell
from .embedding import (
    DEFAULT_RADIUS_CELLS,
    EMBEDDING_MIN_ATOMS,
    EmbeddingResult,
    LatticeGreensFunction,
    embedding_formation_entropy,
    green_preconditioner,
    lattice_greens_function,
    map_to_lattice,
)
from .entropy import (
    classical_entropy_from_log_pdet,
    formation_entropy_value,
    harmonic_entropy_from_omega2,
    local_entropies,
    local_phonon_dos,
    mode_entropies,
    shift_classical_entropy,
)
from .hessian import DEFAULT_STEP_A, HESSIAN_METHODS, compute_hessian, sparse_hessian
from .jump_core import core_migration_entropy, jump_core_region
from .logdet import LOGDET_BACKENDS, LogDetResult, log_pdet, log_pdet_saddle
from .reference import (
    LOGDET_MIN_ATOMS,
    SOLVERS,
    HarmonicResult,
    SolverChoice,
    choose_solver,
    formation_entropy,
    harmonic_entropy,
)
from .relax import (
    DEFAULT_FMAX_EV_PER_A,
    check_relaxed,
    max_force,
    newton_polish,
    relax_positions,
    relax_to_minimum,
)
from .saddle import (
    SADDLE_FMAX_EV_PER_A,
    AttemptFrequency,
    ElementaryJump,
    attempt_frequency,
    band_jumps,
    band_segments,
    climbing_band,
    refine_saddle,
)
from .spectrum import (
    DEFAULT_ZERO_TOL,
    STATIONARY_POINTS,
    ModeClassification,
    check_stationary_point,
    classify_modes,
    mass_weighted_hessian,
    normal_modes,
    omega2_spectrum,
)

__all__ = [
    "DEFAULT_RADIUS_CELLS",
    "EMBEDDING_MIN_ATOMS",
    "EmbeddingResult",
    "LatticeGreensFunction",
    "embedding_formation_entropy",
    "green_preconditioner",
    "lattice_greens_function",
    "map_to_lattice",
    "DEFAULT_FMAX_EV_PER_A",
    "DEFAULT_STEP_A",
    "DEFAULT_ZERO_TOL",
    "HESSIAN_METHODS",
    "LATTICES",
    "perfect_cubic_supercell",
    "LOGDET_BACKENDS",
    "LOGDET_MIN_ATOMS",
    "SADDLE_FMAX_EV_PER_A",
    "SOLVERS",
    "STATIONARY_POINTS",
    "AttemptFrequency",
    "ElementaryJump",
    "HarmonicResult",
    "SolverChoice",
    "choose_solver",
    "LogDetResult",
    "ModeClassification",
    "attempt_frequency",
    "band_jumps",
    "core_migration_entropy",
    "jump_core_region",
    "band_segments",
    "climbing_band",
    "bloch_omega2",
    "bulk_for_cell",
    "check_relaxed",
    "check_stationary_point",
    "classical_entropy_from_log_pdet",
    "classify_modes",
    "compute_hessian",
    "decompose_perfect_lattice",
    "formation_entropy",
    "formation_entropy_value",
    "harmonic_entropy",
    "harmonic_entropy_from_omega2",
    "is_perfect_lattice",
    "local_entropies",
    "local_phonon_dos",
    "log_pdet",
    "log_pdet_saddle",
    "mass_weighted_hessian",
    "max_force",
    "mode_entropies",
    "normal_modes",
    "omega2_spectrum",
    "newton_polish",
    "refine_saddle",
    "relax_positions",
    "relax_to_minimum",
    "shift_classical_entropy",
    "sparse_hessian",
]
