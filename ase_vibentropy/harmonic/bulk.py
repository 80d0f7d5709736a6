"""The perfect lattice filling a given cubic cell: the bulk reference of Eq. 3."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import bulk as ase_bulk

from ..errors import CellMismatchError, UnknownNameError

#: Lattices :func:`bulk_for_cell` can build (conventional cubic cells).
LATTICES = ("bcc", "fcc", "sc")

#: Largest |L/(n a0) - 1| accepted: the isotropic strain of the cell against a0.
MAX_STRAIN = 0.1

#: Relative tolerance on a cell being cubic (equal orthogonal edges).
CUBIC_TOL = 1e-6


def perfect_cubic_supercell(element: str, lattice: str, a: float, n_cells: int) -> Atoms:
    """The perfect periodic supercell of ``n_cells``³ conventional cubic cells of edge ``a`` Å.

    The one perfect-lattice builder of the package (defect builders, potentials and bulk
    references all start from it): 2 n³ atoms for bcc, 4 n³ for fcc, n³ for sc; pbc = True.
    """
    if lattice not in LATTICES:
        raise UnknownNameError(f"unknown lattice {lattice!r}; known: {', '.join(LATTICES)}")
    unit = ase_bulk(element, lattice, a=float(a), cubic=True)
    # the atoms and positions of unit.repeat((n, n, n)), without its per-image copies (10^6
    # atoms in 0.1 s instead of 2 s): image (m0, m1, m2) at m0 a1 + m1 a2 + m2 a3, m2 fastest
    images = np.stack(np.meshgrid(*(np.arange(n_cells),) * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    shifts = images @ unit.cell.array
    positions = (unit.positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    return Atoms(numbers=np.tile(unit.numbers, len(images)), positions=positions,
                 cell=n_cells * unit.cell.array, pbc=True)


def cubic_cell_edge(atoms: Atoms) -> float:
    """Edge L of a cubic cell, Å; :class:`CellMismatchError` if the cell is not cubic."""
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    edge = float(np.mean(np.diag(cell)))
    if not (edge > 0 and np.allclose(cell, edge * np.eye(3), rtol=0.0, atol=CUBIC_TOL * edge)):
        raise CellMismatchError(
            f"the cell is not cubic (cell = {np.round(cell, 6).tolist()} Å): the bulk reference "
            "needs a cubic cell of n conventional cells along x, y, z; pass the bulk structure "
            "explicitly instead"
        )
    return edge


def bulk_for_cell(atoms: Atoms, lattice: str, a0: float, element: str) -> Atoms:
    """Perfect ``lattice`` of ``element`` filling the same cubic cell as ``atoms``.

    n = round(L / a0) conventional cells per edge, lattice constant L / n (Å), so a strained
    cell gets the equally strained bulk; the cell is copied exactly from ``atoms``.

    Parameters
    ----------
    atoms
        Defect cell with a cubic cell of edge L, Å.
    lattice
        ``bcc`` | ``fcc`` | ``sc``.
    a0
        Unstrained lattice constant, Å.
    element
        Chemical symbol.

    Returns
    -------
    Atoms
        n³ × (atoms per conventional cell) atoms, pbc = True.

    Raises
    ------
    CellMismatchError
        Not cubic, or L / a0 is not within :data:`MAX_STRAIN` of a whole number n >= 1.
    UnknownNameError
        Unknown ``lattice``.
    """
    if lattice not in LATTICES:
        raise UnknownNameError(f"unknown lattice {lattice!r}; known: {', '.join(LATTICES)}")
    if not a0 > 0:
        raise CellMismatchError(f"a0 must be a positive lattice constant in Å, got {a0}")
    edge = cubic_cell_edge(atoms)
    n = int(round(edge / a0))
    strain = edge / (n * a0) - 1.0 if n >= 1 else np.inf
    if n < 1 or abs(strain) > MAX_STRAIN:
        raise CellMismatchError(
            f"cell edge {edge:.6g} Å is not a whole number of {lattice} cells of a0 = {a0:.6g} Å "
            f"(L/a0 = {edge / a0:.4g}); check a0 and the lattice, or pass the bulk explicitly"
        )
    perfect = perfect_cubic_supercell(element, lattice, edge / n, n)
    perfect.set_cell(np.asarray(atoms.cell[:]), scale_atoms=True)
    return perfect
