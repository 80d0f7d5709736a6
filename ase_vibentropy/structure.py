"""Sanity checks on ``Atoms`` shared by every entry point, and the structure facts they imply.

Each check raises :class:`~ase_vibentropy.errors.InvalidStructureError` with a message that
names the problem and the fix. No physics here beyond geometry.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from ase import Atoms
from ase.geometry import get_distances

from .errors import InvalidStructureError

#: Closest approach of two atoms accepted anywhere in the package, Å.
MIN_INTERATOMIC_DISTANCE_A = 0.5

Periodicity = Literal["periodic", "isolated"]


def periodicity(atoms: Atoms) -> Periodicity:
    """Return ``"periodic"`` (pbc all True) or ``"isolated"`` (pbc all False).

    Raises
    ------
    InvalidStructureError
        Mixed periodicity (slabs, wires): the zero-mode count and the bulk reference are
        undefined for them.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all():
        return "periodic"
    if not pbc.any():
        return "isolated"
    raise InvalidStructureError(
        f"mixed periodicity pbc={pbc.tolist()} is not supported: use pbc=True for a crystal "
        "or pbc=False for an isolated cluster"
    )


def check_structure(atoms: Atoms, min_distance: float = MIN_INTERATOMIC_DISTANCE_A) -> None:
    """Raise :class:`InvalidStructureError` unless ``atoms`` is usable.

    Checks, in order: an ``Atoms`` object; at least one atom; finite positions; fully periodic or
    fully isolated; a periodic cell with non-zero volume; no two atoms (or periodic images)
    closer than ``min_distance`` Å.

    Parameters
    ----------
    atoms
        Structure to check (not modified).
    min_distance
        Smallest accepted interatomic distance, Å.
    """
    if not isinstance(atoms, Atoms):
        raise InvalidStructureError(f"expected an ase.Atoms object, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise InvalidStructureError("the structure has no atoms: nothing to compute")
    positions = atoms.get_positions()
    bad = ~np.isfinite(positions).all(axis=1)
    if bad.any():
        raise InvalidStructureError(
            f"{int(bad.sum())} atom(s) have NaN or infinite positions (first: index "
            f"{int(np.flatnonzero(bad)[0])}); fix the structure file"
        )
    kind = periodicity(atoms)
    if kind == "periodic":
        if atoms.cell.rank < 3:
            raise InvalidStructureError(
                "pbc=True but the cell is missing or degenerate (rank "
                f"{atoms.cell.rank} < 3): set atoms.cell to the simulation box"
            )
        volume = abs(atoms.cell.volume)
        if volume < 1e-8 * max(len(atoms), 1):
            raise InvalidStructureError(
                f"the periodic cell has zero volume ({volume:.3g} Å^3): set a proper cell"
            )
    if len(atoms) > 1:
        closest, pair = closest_pair(atoms)
        if closest < min_distance:
            raise InvalidStructureError(
                f"atoms {pair[0]} and {pair[1]} are {closest:.3f} Å apart (< {min_distance} Å): "
                "the structure is unphysical; check units (Å) and duplicated atoms"
            )


def closest_pair(atoms: Atoms) -> tuple[float, tuple[int, int]]:
    """Return the shortest interatomic distance (Å, minimum image) and the pair that has it.

    Uses a neighbour list with a 1 Å cut-off (O(N)); falls back to the minimum-image distance
    matrix only when no pair is closer than that.
    """
    from ase.neighborlist import neighbor_list

    probe = 1.0
    if atoms.pbc.all() or not atoms.pbc.any():
        i, j, d = neighbor_list("ijd", atoms, probe, self_interaction=False)
        if len(d):
            k = int(np.argmin(d))
            return float(d[k]), (int(i[k]), int(j[k]))
        if len(atoms) <= 2000:
            _, dist = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            np.fill_diagonal(dist, np.inf)
            k = int(np.argmin(dist))
            a, b = np.unravel_index(k, dist.shape)
            return float(dist[a, b]), (int(a), int(b))
        return probe, (0, 0)
    raise InvalidStructureError(f"mixed periodicity pbc={atoms.pbc.tolist()} is not supported")


def is_linear(atoms: Atoms, tol: float = 1e-6) -> bool:
    """True if all atoms of an isolated structure lie on one line (within ``tol`` Å)."""
    if len(atoms) <= 2:
        return True
    centered = atoms.positions - atoms.positions.mean(axis=0)
    singular = np.linalg.svd(centered, compute_uv=False)
    return bool(singular[1] < tol)


def n_zero_modes(atoms: Atoms) -> int:
    """Number of exact zero modes of the Hessian (SPEC §2).

    3 uniform translations for a periodic cell; 3 translations + 3 rotations (2 if linear)
    for an isolated cluster; 3 for a single isolated atom (no rotation).
    """
    if periodicity(atoms) == "periodic":
        return 3
    if len(atoms) == 1:
        return 3
    return 5 if is_linear(atoms) else 6
