"""Defect analysis: Wigner-Seitz occupancy, inertia fingerprints, de-duplication.

Wigner-Seitz analysis assigns every atom to its nearest site of the perfect lattice that fills
the same cell (periodic minimum image). Empty sites are vacancies; a site holding k > 1 atoms
carries k - 1 interstitials. Two relaxed configurations are the same when their energies
differ by at most 1e-2 eV and, if they contain interstitials, the sums of squared principal
moments of the inertia tensor of their defect atoms agree (the paper's criterion). Two refined
saddles are the same when their energies, entropies and barriers agree to round-off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from ..errors import CellMismatchError
from .builders import minimum_image

#: Energy difference, eV, above which two configurations are distinct (the paper's rule).
ENERGY_TOLERANCE_EV = 1e-2

#: Relative tolerance on the inertia fingerprint Σ λ_k² for interstitial-containing cells.
FINGERPRINT_RTOL = 1e-3

#: Two refined saddles whose energies (and barriers) agree within this, eV, can be one saddle:
#: refinement converges to 1e-6 eV/Å, so copies of one saddle agree to ~1e-10 eV, and distinct
#: saddles of the stored Fe clusters differ by more than 1e-4 eV.
SADDLE_ENERGY_TOLERANCE_EV = 1e-5

#: Two refined saddles whose harmonic entropies (3N - 4 modes) agree within this, k_B, can be one
#: saddle (symmetry-equivalent copies agree to round-off).
SADDLE_ENTROPY_TOLERANCE_KB = 1e-3


@dataclass(frozen=True)
class WignerSeitzResult:
    """Outcome of :func:`wigner_seitz`.

    Attributes
    ----------
    site_of_atom : ndarray
        (N,) index of the reference site whose Wigner-Seitz cell holds each atom.
    occupancy : ndarray
        (M,) number of atoms in each site's cell.
    vacancy_sites : ndarray
        (n_vac,) indices of empty sites.
    vacancy_positions : ndarray
        (n_vac, 3) their positions, Å.
    interstitial_sites : ndarray
        Indices of sites holding more than one atom (each listed once).
    interstitial_positions : ndarray
        (len(interstitial_sites), 3) those sites' positions, Å.
    defect_atoms : ndarray
        Indices of the atoms sitting in multiply occupied cells (dumbbell and crowdion atoms).
    """

    site_of_atom: np.ndarray
    occupancy: np.ndarray
    vacancy_sites: np.ndarray
    vacancy_positions: np.ndarray
    interstitial_sites: np.ndarray
    interstitial_positions: np.ndarray
    defect_atoms: np.ndarray

    @property
    def n_vacancies(self) -> int:
        """Number of empty sites."""
        return int(len(self.vacancy_sites))

    @property
    def n_interstitials(self) -> int:
        """Number of extra atoms, Σ_sites max(occupancy - 1, 0)."""
        return int(np.clip(self.occupancy - 1, 0, None).sum())


def wigner_seitz(atoms: Atoms, reference: Atoms) -> WignerSeitzResult:
    """Wigner-Seitz occupancy of ``atoms`` on the sites of ``reference`` (same periodic cell).

    Nearest-site assignment with a KD-tree over the reference sites and their 26 periodic
    images, so it works for any cell shape; O((N + M) log M).

    Parameters
    ----------
    atoms
        Defective configuration, N atoms, periodic.
    reference
        Perfect lattice with M sites filling the same cell (e.g. from
        :func:`~ase_vibentropy.data.builders.perfect_lattice` with the same strain).

    Raises
    ------
    CellMismatchError
        The two cells differ.
    """
    cell = np.asarray(atoms.cell, dtype=np.float64)
    if not np.allclose(cell, np.asarray(reference.cell), atol=1e-6):
        raise CellMismatchError(
            "Wigner-Seitz analysis needs the reference lattice in the same cell as the "
            "configuration: build the perfect lattice with the same size and strain"
        )
    sites = reference.get_scaled_positions(wrap=True) @ cell
    shifts = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T
    images = (sites[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)
    positions = atoms.get_scaled_positions(wrap=True) @ cell
    _, nearest = cKDTree(images).query(positions, k=1)
    site_of_atom = nearest % len(sites)
    occupancy = np.bincount(site_of_atom, minlength=len(sites))
    vacancy_sites = np.flatnonzero(occupancy == 0)
    interstitial_sites = np.flatnonzero(occupancy > 1)
    defect_atoms = np.flatnonzero(occupancy[site_of_atom] > 1)
    return WignerSeitzResult(
        site_of_atom=site_of_atom,
        occupancy=occupancy,
        vacancy_sites=vacancy_sites,
        vacancy_positions=sites[vacancy_sites],
        interstitial_sites=interstitial_sites,
        interstitial_positions=sites[interstitial_sites],
        defect_atoms=defect_atoms,
    )


def periodic_principal_moments(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Principal moments (3,), Å², ascending, of the unit-mass inertia tensor of n points in a
    periodic cell.

    The second-moment tensor about the centroid is written with pair vectors only,
    G = (1/2n) Σ_ij d_ij d_ijᵀ, and each d_ij is taken as its minimum image; then
    I = tr(G) 1 - G. For a cluster smaller than half the cell this is the usual inertia tensor;
    for spread-out defects it stays well defined and independent of the atom order and of
    where the cell boundaries fall. O(n²) in the (few) defect atoms.

    Parameters
    ----------
    positions
        (n, 3) positions, Å.
    cell
        (3, 3) periodic cell, Å.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) < 2:
        return np.zeros(3)
    pairs = minimum_image(positions[:, None, :] - positions[None, :, :], cell)
    second_moment = np.einsum("ija,ijb->ab", pairs, pairs) / (2.0 * len(positions))
    tensor = np.eye(3) * np.trace(second_moment) - second_moment
    return np.linalg.eigvalsh(tensor)


def inertia_fingerprint(atoms: Atoms, reference: Atoms, ws: WignerSeitzResult | None = None) -> float | None:
    """Σ_k λ_k², Å⁴, of the principal moments λ_k of the defect atoms' inertia tensor.

    Defect atoms are those in multiply occupied Wigner-Seitz cells (see
    :func:`periodic_principal_moments`). Returns ``None`` for a configuration without
    interstitials (vacancy clusters are told apart by energy only, as in the paper).
    """
    ws = wigner_seitz(atoms, reference) if ws is None else ws
    if len(ws.defect_atoms) == 0:
        return None
    moments = periodic_principal_moments(atoms.positions[ws.defect_atoms], atoms.cell)
    return float(np.sum(moments**2))


def same_configuration(
    energy_a: float,
    fingerprint_a: float | None,
    energy_b: float,
    fingerprint_b: float | None,
    energy_tol: float = ENERGY_TOLERANCE_EV,
    fingerprint_rtol: float = FINGERPRINT_RTOL,
) -> bool:
    """True when two relaxed configurations count as one (energies in eV, fingerprints in Å⁴)."""
    if abs(energy_a - energy_b) > energy_tol:
        return False
    if fingerprint_a is None or fingerprint_b is None:
        return fingerprint_a is None and fingerprint_b is None
    scale = max(abs(fingerprint_a), abs(fingerprint_b), 1e-12)
    return abs(fingerprint_a - fingerprint_b) <= fingerprint_rtol * scale


def deduplicate(
    energies: Sequence[float],
    fingerprints: Sequence[float | None],
    energy_tol: float = ENERGY_TOLERANCE_EV,
    fingerprint_rtol: float = FINGERPRINT_RTOL,
) -> tuple[np.ndarray, np.ndarray]:
    """Group configurations that are the same by energy and inertia fingerprint.

    Configurations are visited in input order; each is compared (vectorised) with the kept
    representatives and merged into the first match.

    Parameters
    ----------
    energies
        (n,) relaxed energies, eV.
    fingerprints
        (n,) :func:`inertia_fingerprint` values, Å⁴, ``None`` for interstitial-free cells.
    energy_tol, fingerprint_rtol
        Tolerances (eV; relative).

    Returns
    -------
    kept : ndarray
        Indices of the distinct configurations (first occurrence of each), ascending.
    representative : ndarray
        (n,) index of the kept configuration each input was merged into.
    """
    energies = np.asarray(energies, dtype=np.float64)
    has_fp = np.array([f is not None for f in fingerprints], dtype=bool)
    fp = np.array([np.nan if f is None else float(f) for f in fingerprints], dtype=np.float64)

    def same(k: np.ndarray, i: int) -> np.ndarray:
        match = (np.abs(energies[k] - energies[i]) <= energy_tol) & (has_fp[k] == has_fp[i])
        if has_fp[i]:
            scale = np.maximum(np.maximum(np.abs(fp[k]), abs(fp[i])), 1e-12)
            match &= np.abs(fp[k] - fp[i]) <= fingerprint_rtol * scale
        return match

    return _merge_into_first_match(len(energies), same)


def _merge_into_first_match(n: int, same: Callable[[np.ndarray, int], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Visit items 0..n-1 in order; merge each into the first kept item ``same`` matches.

    ``same(kept, i)`` compares item ``i`` with the (m,) kept indices at once and returns an (m,)
    bool mask. Returns the kept indices (ascending) and the (n,) representative of every item.
    """
    kept: list[int] = []
    representative = np.empty(n, dtype=np.int64)
    for i in range(n):
        if kept:
            k = np.asarray(kept)
            match = np.flatnonzero(same(k, i))
            if len(match):
                representative[i] = k[match[0]]
                continue
        kept.append(i)
        representative[i] = i
    return np.asarray(kept, dtype=np.int64), representative


def deduplicate_saddles(
    energies: Sequence[float],
    entropies: Sequence[float],
    barriers: Sequence[tuple[float, float]],
    energy_tol: float = SADDLE_ENERGY_TOLERANCE_EV,
    entropy_tol: float = SADDLE_ENTROPY_TOLERANCE_KB,
) -> tuple[np.ndarray, np.ndarray]:
    """Group refined saddles of one family, cell and strain that are one saddle.

    Two saddles are one when their energies, their harmonic entropies and their two barriers
    (taken unordered: a jump read backwards is the same jump) all agree within the tolerances.
    Symmetry-equivalent copies found by different explorations (a translated or rotated
    cluster) merge; the minima indices of two jobs cannot be compared, so they are not used.

    Parameters
    ----------
    energies
        (n,) saddle energies, eV.
    entropies
        (n,) saddle entropies S (3N - 4 modes), k_B.
    barriers
        (n, 2) forward and backward barriers ΔE, eV.
    energy_tol, entropy_tol
        Tolerances, eV and k_B.

    Returns
    -------
    kept : ndarray
        Indices of the distinct saddles (first occurrence of each), ascending.
    representative : ndarray
        (n,) index of the kept saddle each input was merged into.
    """
    energies = np.asarray(energies, dtype=np.float64)
    entropies = np.asarray(entropies, dtype=np.float64)
    pairs = np.sort(np.asarray(barriers, dtype=np.float64).reshape(len(energies), 2), axis=1)

    def same(k: np.ndarray, i: int) -> np.ndarray:
        return ((np.abs(energies[k] - energies[i]) <= energy_tol)
                & (np.abs(entropies[k] - entropies[i]) <= entropy_tol)
                & np.all(np.abs(pairs[k] - pairs[i]) <= energy_tol, axis=1))

    return _merge_into_first_match(len(energies), same)


def count_imaginary_modes(atoms: Atoms, calc, hessian: str = "auto") -> int:
    """Number of imaginary modes of a relaxed configuration (0 for a true minimum).

    Uses the harmonic reference with the dense spectrum; for the minimum check of
    small exploration cells.
    """
    from ..errors import NotAMinimumError
    from ..harmonic import harmonic_entropy

    try:
        result = harmonic_entropy(atoms, calc, hessian=hessian, solver="dense", allow_imaginary=True)
    except NotAMinimumError as exc:
        return int(exc.n_imaginary)
    return int(result.n_imaginary)
