"""Exact migration entropy of the core of a jump: a fixed-boundary cluster (docs/model.md).

The core of a jump from ``minimum`` over ``saddle`` (same atoms, same cell) is every atom within
R (Å) of an atom that moves by more than ``moved`` Å between the two, the cell's mean
displacement removed first (a rigid drift of the whole cell is not motion). With all other atoms
held fixed, the classical migration entropy of the core is

    ΔS_core(R) = Σ'_{saddle block} s(ω²) - Σ_{minimum block} s(ω²),  s(ω²) = 1 + ln(k_B T / ħω),

over the eigenvalues of the mass-weighted principal (3M, 3M) blocks of the two Hessians for the
M core atoms: the saddle block must have exactly one negative ω² (left out: one mode fewer at the
saddle, as in the whole-cell ΔS_m) and the minimum block none. By Cauchy interlacing a principal
block of a Hessian with one negative mode has at most one, so a core without it is one whose
unstable mode reaches past R. The cost is that of the core's Hessian rows and two dense
eigenvalue problems of size 3M, independent of the cell; the fixed boundary leaves out the
response of the rest of the crystal, which a migration model with a core adds from the outer
atoms' descriptors (:mod:`ase_vibentropy.model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.geometry import find_mic

from ..errors import InvalidOptionError, NotAFirstOrderSaddleError, NotAMinimumError
from ..units import KB_EV_PER_K
from .entropy import classical_mode_entropies
from .hessian import analytic_hessian
from .saddle import check_jump_pair
from .spectrum import omega2_spectrum

#: Default core radius R, Å: about two bcc-Fe lattice constants beyond the moving atoms.
DEFAULT_CORE_RADIUS_A = 6.0

#: An atom moving by more than this (Å, mean displacement removed) between minimum and saddle
#: belongs to the jump; the core is every atom within R of one of them.
DEFAULT_MOVED_A = 0.1

#: No atom moving by more than this (Å) between minimum and saddle: the same structure.
SAME_STRUCTURE_A = 1e-3


def jump_displacements(minimum: Atoms, saddle: Atoms) -> np.ndarray:
    """Minimum-image displacements from ``minimum`` to ``saddle`` less their mean, (N, 3), Å."""
    check_jump_pair(minimum, saddle)
    u, _ = find_mic(saddle.positions - minimum.positions, saddle.cell, saddle.pbc)
    return u - u.mean(axis=0)


def jump_core_region(
    minimum: Atoms, saddle: Atoms, radius: float = DEFAULT_CORE_RADIUS_A,
    moved: float = DEFAULT_MOVED_A,
) -> np.ndarray:
    """Sorted indices (M,) of the atoms within ``radius`` Å (at the saddle, periodic images
    included) of any atom moving by more than ``moved`` Å between minimum and saddle (the most
    mobile atom when none does). Two structures where no atom moves are refused
    (:class:`InvalidOptionError`)."""
    if not radius > 0.0 or not moved >= 0.0:
        raise InvalidOptionError(f"the core radius (Å) must be > 0 and moved (Å) >= 0; got "
                                 f"{radius} and {moved}")
    step = np.linalg.norm(jump_displacements(minimum, saddle), axis=1)
    if not step.max() > SAME_STRUCTURE_A:
        raise InvalidOptionError(
            f"the minimum and the saddle are the same structure (no atom moves by more than "
            f"{SAME_STRUCTURE_A:g} Å): pass the saddle of the jump (e.g. refine_saddle on the NEB "
            "climbing image)")
    active = np.flatnonzero(step > moved)
    if active.size == 0:
        active = np.array([int(np.argmax(step))])
    distance = np.full(len(saddle), np.inf)
    for atom in active:  # the few moving atoms; each pass is vectorised over the cell
        _, lengths = find_mic(saddle.positions - saddle.positions[atom], saddle.cell, saddle.pbc)
        np.minimum(distance, lengths, out=distance)
    return np.flatnonzero(distance <= radius)


def hessian_reach(calc: Any) -> float | None:
    """Distance (Å) beyond which atoms do not change a Hessian block: twice the cut-off of the
    package's embedded-atom calculator (a density enters the block of two atoms within r_c of
    it, and depends on atoms within r_c of it), None for other calculators (whole cell)."""
    return 2.0 * float(calc.cutoff) if hasattr(calc, "iter_hessian_rows") else None


def core_neighbourhood(atoms: Atoms, region: np.ndarray, halo: float) -> np.ndarray:
    """Sorted indices of the atoms within ``halo`` Å (periodic images included) of the sphere
    around ``region`` that holds it: a superset of every atom within ``halo`` of a core atom.
    Cutting the cell down to them (same cell, other atoms left out) leaves every quantity of
    the core atoms whose reach is ``halo`` unchanged, in O(N)."""
    region = np.asarray(region)
    rel, _ = find_mic(atoms.positions[region] - atoms.positions[region[0]], atoms.cell, atoms.pbc)
    centre = atoms.positions[region[0]] + rel.mean(axis=0)
    extent = float(np.max(np.linalg.norm(rel - rel.mean(axis=0), axis=1)))
    _, lengths = find_mic(atoms.positions - centre, atoms.cell, atoms.pbc)
    return np.flatnonzero(lengths <= extent + halo)


def core_hessian_block(atoms: Atoms, region: np.ndarray, calc: Any) -> np.ndarray:
    """Dense principal block (3M, 3M), eV/Å², of the Hessian for the atoms ``region`` (M,).

    Calculators with ``iter_hessian_rows`` (the package's EAM) give the core's rows only;
    any other calculator with ``get_hessian`` gives the whole Hessian, of which the block is
    taken.
    """
    dofs = (3 * np.asarray(region)[:, None] + np.arange(3)).ravel()
    if hasattr(calc, "iter_hessian_rows"):
        rows = next(iter(calc.iter_hessian_rows(atoms, [np.asarray(region)])))
        block = rows[:, dofs].toarray()
        return 0.5 * (block + block.T)
    return analytic_hessian(atoms, calc)[dofs][:, dofs].toarray()


def core_migration_entropy(
    minimum: Atoms, saddle: Atoms, region: np.ndarray, calc: Any, temperature: float,
) -> float:
    """ΔS_core (k_B) of the fixed-boundary core ``region`` (module docstring), classical, at
    ``temperature`` (K); ``calc`` is a calculator with an analytic Hessian.

    Raises
    ------
    NotAFirstOrderSaddleError
        The saddle's core block does not have exactly one negative ω² (the attributes give the
        count and the most negative ω², eV/(Å² amu)).
    NotAMinimumError
        The minimum's core block has a negative ω².
    InvalidOptionError
        The core holds every atom of the cell (its blocks then carry the translations): use
        the exact whole-cell route.
    """
    check_jump_pair(minimum, saddle)
    region = np.asarray(region, dtype=int)
    if region.size >= len(saddle):
        raise InvalidOptionError(
            f"the jump's core holds all {len(saddle)} atoms of the cell: a fixed-boundary core "
            "needs atoms outside it; use a smaller core radius or the exact whole-cell route "
            "(ase_vibentropy.harmonic.attempt_frequency)")
    masses = saddle.get_masses()[region]
    spectra = {}
    for name, atoms, expected in (("saddle", saddle, 1), ("minimum", minimum, 0)):
        omega2 = omega2_spectrum(core_hessian_block(atoms, region, calc), masses)
        n_negative = int(np.count_nonzero(omega2 < 0.0))
        if name == "minimum" and n_negative:
            raise NotAMinimumError(
                f"the {region.size}-atom core of the jump has {n_negative} negative ω² at the "
                f"minimum (lowest {omega2[0]:.4g} eV/(Å² amu)): the minimum is not relaxed or "
                "not a minimum", n_imaginary=n_negative, min_omega2=float(omega2[0]))
        if n_negative != expected:
            raise NotAFirstOrderSaddleError(
                f"the {region.size}-atom core of the jump has {n_negative} negative ω² at the "
                f"saddle (expected 1; lowest ω² {omega2[0]:.4g} eV/(Å² amu)): "
                + ("the unstable mode reaches past the core; use a larger core radius or the "
                   "exact whole-cell route" if n_negative == 0 else
                   "not a first-order saddle"),
                n_negative=n_negative, min_omega2=float(omega2[0]),
            )
        spectra[name] = omega2[expected:]
    delta = (classical_mode_entropies(spectra["saddle"], temperature).sum()
             - classical_mode_entropies(spectra["minimum"], temperature).sum())
    return float(delta / KB_EV_PER_K)


@dataclass(frozen=True)
class CoreTerms:
    """The exact core of a jump and what a migration model with a core adds to it.

    Attributes
    ----------
    region : (M,) indices of the core atoms
    delta_s_kB : ΔS_core of the fixed-boundary core, k_B, at the temperature asked for
    outer_features : (dim,) Σ_{i outside the core} (D_i^saddle - D_i^minimum), the features of
        the model's outer term
    """

    region: np.ndarray
    delta_s_kB: float
    outer_features: np.ndarray


def core_terms(
    minimum: Atoms, saddle: Atoms, calc: Any, provider: Any, temperature: float,
    saddle_sum: np.ndarray, minimum_sum: np.ndarray, radius: float = DEFAULT_CORE_RADIUS_A,
    moved: float = DEFAULT_MOVED_A,
) -> CoreTerms:
    """Core region, ΔS_core (k_B, classical, at ``temperature`` K) and outer features of a jump.

    ``saddle_sum`` and ``minimum_sum`` (dim,) are the whole cells' descriptor sums Σ D of
    ``provider``; the core atoms' own descriptors (:meth:`compute_centers`) are taken out of
    their difference. With a calculator of known :func:`hessian_reach`, both the core's Hessian
    blocks and its descriptors come from its :func:`core_neighbourhood` at the saddle and at
    the minimum alone (the larger of the two reaches), so the cost beyond the two sums does not
    grow with the cell.
    """
    region = jump_core_region(minimum, saddle, radius, moved)
    reach = hessian_reach(calc)
    keep = np.arange(len(saddle))
    if reach is not None:  # the core's neighbourhood suffices for its Hessian and descriptors
        halo = max(reach, provider.cutoff)
        keep = np.union1d(core_neighbourhood(saddle, region, halo),
                          core_neighbourhood(minimum, region, halo))
    local_saddle, local_minimum = saddle[keep], minimum[keep]
    local_region = np.searchsorted(keep, region)
    delta_s = core_migration_entropy(local_minimum, local_saddle, local_region, calc, temperature)
    inner = (provider.compute_centers(local_saddle, local_region).sum(axis=0)
             - provider.compute_centers(local_minimum, local_region).sum(axis=0))
    outer = np.asarray(saddle_sum, dtype=float) - np.asarray(minimum_sum, dtype=float) - inner
    return CoreTerms(region=region, delta_s_kB=delta_s, outer_features=outer)
