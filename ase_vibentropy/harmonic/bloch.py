"""Γ-point spectrum of a perfect cubic supercell from Bloch's theorem, in O(N).

A perfect n×n×n supercell of a cubic conventional cell (b atoms: 1 sc, 2 bcc, 4 fcc) has a
block-circulant Hessian, H[(c, s), (c', s')] = Φ_ss'(c' - c), with c a cell index in Z_n³ and s
the basis atom. Its eigenvalues are exactly those of the n³ Hermitian (3b × 3b) matrices

    D(k)_ss' = Σ_c Φ_ss'(c) e^{-2πi k·c/n} / sqrt(m_s m_s'),   k ∈ Z_n³,

i.e. the Γ-point spectrum of the supercell is the conventional cell's spectrum on an n×n×n
Gamma-centred mesh. Only the 3b rows of one cell are needed, so the bulk reference of Eq. 3
costs one FFT and n³ tiny eigvalsh calls instead of an O(N³) diagonalisation: this is how the
"perfect-lattice part is known exactly".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from ase import Atoms

from ..errors import CellMismatchError
from .bulk import CUBIC_TOL, cubic_cell_edge
from .hessian import HessianMatrix

#: Positions must sit on the lattice to this tolerance, Å.
POSITION_TOL_A = 1e-4

#: Rows of another cell must equal the translated rows of cell 0 to this fraction of max|H|.
CIRCULANT_TOL = 1e-8


@dataclass(frozen=True)
class LatticeDecomposition:
    """Atoms of a perfect cubic supercell labelled by cell and basis atom.

    Attributes
    ----------
    n : int
        Conventional cells per edge.
    cell_index : (N, 3) int array
        c of every atom, in Z_n³.
    basis_index : (N,) int array
        s of every atom, 0..b-1.
    n_basis : int
        b, atoms per conventional cell.
    origin_atoms : (b,) int array
        Atom index of (c = 0, s) for each s.
    """

    n: int
    cell_index: np.ndarray
    basis_index: np.ndarray
    n_basis: int
    origin_atoms: np.ndarray


def decompose_perfect_lattice(atoms: Atoms) -> LatticeDecomposition:
    """Label the atoms of a perfect cubic supercell by (cell, basis atom).

    The conventional repeat a is the shortest [100] translation from atom 0 to an atom with
    the same y and z; every atom must then sit on one of b basis offsets of an a-cubic
    lattice, with every (cell, basis) pair present exactly once.

    Raises
    ------
    CellMismatchError
        Not periodic, not cubic, or not a perfect supercell of a cubic conventional cell.
    """
    if not atoms.pbc.all():
        raise CellMismatchError("the Bloch route needs a periodic perfect lattice")
    edge = cubic_cell_edge(atoms)
    rel = atoms.positions - atoms.positions[0]
    rel -= np.round(rel / edge) * edge
    same_line = (np.abs(rel[:, 1]) < POSITION_TOL_A) & (np.abs(rel[:, 2]) < POSITION_TOL_A)
    steps = np.mod(rel[same_line, 0], edge)
    steps = steps[steps > POSITION_TOL_A]
    repeat = float(steps.min()) if steps.size else edge
    n = int(round(edge / repeat))
    if abs(n * repeat - edge) > POSITION_TOL_A:
        raise CellMismatchError("not a perfect lattice: the [100] repeat does not divide the cell")
    a = edge / n
    frac = np.mod(rel, edge) / a  # (N, 3), in [0, n)
    cells = np.floor(frac + POSITION_TOL_A / a).astype(int)
    offsets = frac - cells
    offsets[offsets > 1 - POSITION_TOL_A / a] -= 1.0
    keys = np.round(offsets * a / POSITION_TOL_A).astype(np.int64)
    unique, basis = np.unique(keys, axis=0, return_inverse=True)
    basis = basis.reshape(-1)
    n_basis = len(unique)
    cells %= n
    if not np.allclose(offsets * a, unique[basis] * POSITION_TOL_A, atol=2 * POSITION_TOL_A):
        raise CellMismatchError("not a perfect lattice: atoms are off their lattice sites")
    flat = (cells[:, 0] * n + cells[:, 1]) * n + cells[:, 2]
    slot = flat * n_basis + basis
    if n_basis * n**3 != len(atoms) or np.unique(slot).size != len(atoms):
        raise CellMismatchError(
            f"not a perfect lattice: {len(atoms)} atoms do not fill {n}³ cells of {n_basis} "
            "sites each exactly once"
        )
    origin = np.empty(n_basis, dtype=int)
    at_origin = flat == 0
    origin[basis[at_origin]] = np.flatnonzero(at_origin)
    return LatticeDecomposition(n, cells, basis, n_basis, origin)


def _block_rows(hessian: HessianMatrix, atoms_idx: np.ndarray) -> np.ndarray:
    rows = (3 * atoms_idx[:, None] + np.arange(3)[None, :]).reshape(-1)
    if sp.issparse(hessian):
        return sp.csr_matrix(hessian)[rows].toarray()
    return np.asarray(hessian)[rows]


def _cell_blocks(rows: np.ndarray, lat: LatticeDecomposition, shift: np.ndarray) -> np.ndarray:
    """Rows (3b, 3N) of the basis atoms of cell ``shift`` as Φ(c' - shift), (n, n, n, 3b, 3b)."""
    n, b = lat.n, lat.n_basis
    rel = (lat.cell_index - shift) % n
    flat = (rel[:, 0] * n + rel[:, 1]) * n + rel[:, 2]
    phi = np.zeros((n**3, 3 * b, b, 3))
    phi[flat, :, lat.basis_index, :] = rows.reshape(3 * b, -1, 3).transpose(1, 0, 2)
    return phi.reshape(n, n, n, 3 * b, 3 * b)


def bloch_omega2(
    atoms: Atoms, hessian: HessianMatrix, masses: np.ndarray | None = None
) -> np.ndarray:
    """Γ-point spectrum ω² of a perfect cubic supercell by Bloch's theorem, eV/(Å² amu).

    Parameters
    ----------
    atoms
        Perfect n×n×n supercell of a cubic conventional cell (e.g. from ``bulk_for_cell``).
    hessian
        Its (3N, 3N) Hessian, eV/Å², dense or sparse (only 6b rows are read).
    masses
        (N,) amu; default ``atoms.get_masses()``.

    Returns
    -------
    (3N,) ascending array, identical to the eigenvalues of the mass-weighted Hessian.

    Raises
    ------
    CellMismatchError
        ``atoms`` is not a perfect lattice, or ``hessian`` is not block-circulant on it.
    """
    lat = decompose_perfect_lattice(atoms)
    masses = atoms.get_masses() if masses is None else np.asarray(masses, dtype=np.float64)
    basis_masses = masses[lat.origin_atoms]
    if not np.allclose(masses, basis_masses[lat.basis_index], rtol=1e-12):
        raise CellMismatchError("not a perfect lattice: masses differ between equivalent sites")
    phi = _cell_blocks(_block_rows(hessian, lat.origin_atoms), lat, np.zeros(3, dtype=int))
    # Check translational symmetry of H on the cell diagonally opposite, where any defect or
    # non-circulant Hessian would show.
    shift = np.full(3, lat.n // 2)
    flat = (lat.cell_index[:, 0] * lat.n + lat.cell_index[:, 1]) * lat.n + lat.cell_index[:, 2]
    target = (shift[0] * lat.n + shift[1]) * lat.n + shift[2]
    other = np.empty(lat.n_basis, dtype=int)
    other[lat.basis_index[flat == target]] = np.flatnonzero(flat == target)
    phi_other = _cell_blocks(_block_rows(hessian, other), lat, shift)
    scale = float(np.max(np.abs(phi)))
    if np.max(np.abs(phi_other - phi)) > CIRCULANT_TOL * scale:
        raise CellMismatchError(
            "the Hessian is not invariant under the lattice translations of this perfect "
            "lattice: use solver='dense'"
        )
    weight = np.repeat(1.0 / np.sqrt(basis_masses), 3)
    phi *= weight[:, None] * weight[None, :]
    dk = np.fft.fftn(phi, axes=(0, 1, 2)).reshape(-1, phi.shape[-1], phi.shape[-1])
    dk = 0.5 * (dk + np.conj(np.swapaxes(dk, 1, 2)))
    return np.sort(np.linalg.eigvalsh(dk).reshape(-1))


def is_perfect_lattice(atoms: Atoms) -> bool:
    """True if ``atoms`` is a perfect n³ supercell, n >= 2, of a cubic conventional cell (O(N)).

    A single "cell" holding every atom (n = 1) matches any structure in a cubic box, e.g. a
    relaxed defect cell; it is not reported as a perfect lattice.
    """
    try:
        return decompose_perfect_lattice(atoms).n >= 2
    except CellMismatchError:
        return False


__all__ = ["CUBIC_TOL", "bloch_omega2", "decompose_perfect_lattice", "is_perfect_lattice"]
