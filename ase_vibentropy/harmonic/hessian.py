"""Hessian of the potential energy from three interchangeable sources.

(a) ``analytic``: the calculator's own ``get_hessian`` (matscipy's EAM and pair potentials);
(b) ``phonopy``: phonopy finite displacements of the cell itself (supercell matrix = identity),
    plus-minus displacements, with or without symmetry reduction; the reference backend;
(c) ``fd``: central finite differences of the forces of any ASE calculator.

Every source returns H_{iα,jβ} = ∂²E/∂u_iα ∂u_jβ in eV/Å², shape (3N, 3N), rows and columns
ordered atom-major (3i + α), symmetrised (H + Hᵀ)/2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from ase import Atoms
from tqdm.auto import tqdm

from ..errors import InvalidOptionError, InvalidStructureError, UnknownNameError
from ..structure import check_structure

#: Names accepted by :func:`compute_hessian` (``auto`` = analytic if available, else phonopy).
HESSIAN_METHODS = ("auto", "analytic", "phonopy", "fd")

#: Default finite-displacement step, Å (the paper's value; too coarse for tabulated potentials,
#: see docs/theory.md, "Tabulated potentials and Hessian noise": use <= 1e-4 Å there).
DEFAULT_STEP_A = 1e-3

#: Vacuum margin, Å, of the box phonopy needs around an isolated cluster.
_CLUSTER_VACUUM_A = 20.0

HessianMatrix = np.ndarray | sp.spmatrix | sp.sparray


def resolve_calculator(atoms: Atoms, calc: Any | None) -> Any:
    """Return ``calc`` or the calculator attached to ``atoms``; raise if there is none."""
    calc = calc if calc is not None else atoms.calc
    if calc is None:
        raise InvalidStructureError(
            "no calculator: pass calc=... or attach one with atoms.calc = ... before asking "
            "for forces or a Hessian"
        )
    return calc


def calculation_copy(atoms: Atoms, calc: Any) -> Atoms:
    """Copy of ``atoms`` with ``calc`` attached, ready for force calls.

    An isolated structure without a cell gets its bounding box plus 20 Å of vacuum as a cell
    (pbc stays False): some calculators (matscipy's) bin atoms in the cell even without
    periodicity.
    """
    work = atoms.copy()
    if not work.pbc.any() and work.cell.rank < 3:
        work.set_cell(np.diag(np.ptp(work.positions, axis=0) + _CLUSTER_VACUUM_A))
    work.calc = calc
    return work


def resolve_hessian_method(method: str, calc: Any) -> str:
    """Validate a Hessian source name and resolve ``auto``.

    ``auto`` is ``analytic`` when ``calc`` has ``get_hessian`` and ``phonopy`` otherwise.

    Raises
    ------
    UnknownNameError
        ``method`` is not one of :data:`HESSIAN_METHODS`, or ``analytic`` was asked of a
        calculator without ``get_hessian``.
    """
    if not isinstance(method, str) or method not in HESSIAN_METHODS:
        raise UnknownNameError(
            f"unknown Hessian source {method!r}; known: {', '.join(HESSIAN_METHODS)}"
        )
    has_analytic = callable(getattr(calc, "get_hessian", None))
    if method == "auto":
        return "analytic" if has_analytic else "phonopy"
    if method == "analytic" and not has_analytic:
        raise UnknownNameError(
            f"hessian='analytic' needs a calculator with get_hessian; {type(calc).__name__} "
            "has none: use 'phonopy' or 'fd'"
        )
    return method


def compute_hessian(
    atoms: Atoms,
    calc: Any | None = None,
    method: str = "auto",
    step: float | None = None,
    symmetry: bool = True,
    progress: bool = False,
) -> HessianMatrix:
    """Hessian ∂²E/∂u∂u of ``atoms`` at its current positions, eV/Å², shape (3N, 3N).

    Parameters
    ----------
    atoms
        Structure (not modified). Should be relaxed: the harmonic formulas assume a minimum.
    calc
        ASE calculator; default ``atoms.calc``.
    method
        ``auto`` | ``analytic`` | ``phonopy`` | ``fd`` (see module docstring).
    step
        Displacement for ``phonopy`` and ``fd``, Å (default :data:`DEFAULT_STEP_A`).
    symmetry
        ``phonopy`` only: displace only symmetry-inequivalent atoms and rebuild the rest by
        symmetry (``False``: displace every atom).
    progress
        Show a tqdm bar over the force calls.

    Returns
    -------
    ndarray or scipy.sparse matrix
        ``analytic`` returns a sparse CSR matrix (the calculator's sparsity), the other
        sources a dense (3N, 3N) array. Both symmetrised.

    Raises
    ------
    InvalidStructureError
        Unusable structure (``structure.check_structure``) or no calculator.
    UnknownNameError
        Unknown ``method``, or ``analytic`` without ``get_hessian``.
    """
    check_structure(atoms)
    calc = resolve_calculator(atoms, calc)
    method = resolve_hessian_method(method, calc)
    step = DEFAULT_STEP_A if step is None else float(step)
    if not step > 0:
        raise InvalidOptionError(f"step must be a positive displacement in Å, got {step}")
    if method == "analytic":
        return analytic_hessian(atoms, calc)
    if method == "phonopy":
        return phonopy_hessian(atoms, calc, step=step, symmetry=symmetry, progress=progress)
    return finite_difference_hessian(atoms, calc, step=step, progress=progress)


def analytic_hessian(atoms: Atoms, calc: Any) -> sp.csr_matrix:
    """The calculator's analytic Hessian, eV/Å², as a symmetrised sparse (3N, 3N) CSR matrix."""
    work = calculation_copy(atoms, calc)
    hessian = calc.get_hessian(work)
    hessian = sp.csr_matrix(hessian, dtype=np.float64) if sp.issparse(hessian) else sp.csr_matrix(
        np.asarray(hessian, dtype=np.float64)
    )
    n = 3 * len(atoms)
    if hessian.shape != (n, n):
        raise InvalidOptionError(
            f"{type(calc).__name__}.get_hessian returned shape {hessian.shape}, expected ({n}, {n})"
        )
    return ((hessian + hessian.T) * 0.5).tocsr()


#: Atoms per batch of rows when :func:`sparse_hessian` assembles a large Hessian.
HESSIAN_BATCH_ATOMS = 10_000


def sparse_hessian(atoms: Atoms, calc: Any) -> sp.csr_matrix:
    """Sparse (3N, 3N) Hessian, eV/Å², with bounded memory for 10^5-10^6 atoms.

    Calculators with ``iter_hessian_rows`` (the package's EAM) are asked for
    :data:`HESSIAN_BATCH_ATOMS` atoms' rows at a time, so the peak is about twice the final
    matrix instead of several times it; any other calculator's ``get_hessian`` is used as is.
    Not symmetrised (unlike :func:`analytic_hessian`): an analytic Hessian is symmetric already.
    """
    work = calculation_copy(atoms, calc)
    if hasattr(calc, "iter_hessian_rows"):
        batches = np.array_split(np.arange(len(atoms)),
                                 max(1, -(-len(atoms) // HESSIAN_BATCH_ATOMS)))
        return sp.vstack(list(calc.iter_hessian_rows(work, batches)), format="csr")
    return sp.csr_matrix(calc.get_hessian(work), dtype=np.float64)


def _forces_at(work: Atoms, positions: np.ndarray) -> np.ndarray:
    work.set_positions(positions)
    return np.asarray(work.get_forces(), dtype=np.float64)


def finite_difference_hessian(
    atoms: Atoms, calc: Any, step: float = DEFAULT_STEP_A, progress: bool = False
) -> np.ndarray:
    """Central finite differences of the forces, eV/Å², dense (3N, 3N).

    H[:, 3a+α] = -(F(x + h e_aα) - F(x - h e_aα)) / 2h, then (H + Hᵀ)/2. Costs 6N force calls
    (``step`` = h in Å).
    """
    work = calculation_copy(atoms, calc)
    origin = atoms.get_positions()
    n3 = 3 * len(atoms)
    hessian = np.empty((n3, n3))
    for column in tqdm(range(n3), disable=not progress, desc="fd Hessian", unit="dof"):
        shifted = origin.copy()
        shifted.reshape(-1)[column] += step
        plus = _forces_at(work, shifted)
        shifted.reshape(-1)[column] -= 2.0 * step
        minus = _forces_at(work, shifted)
        hessian[:, column] = (minus - plus).reshape(-1) / (2.0 * step)
    return 0.5 * (hessian + hessian.T)


def phonopy_hessian(
    atoms: Atoms,
    calc: Any,
    step: float = DEFAULT_STEP_A,
    symmetry: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Force constants from phonopy displacements of the cell itself, eV/Å², dense (3N, 3N).

    Supercell matrix = identity, plus-minus displacements of length ``step`` Å; with
    ``symmetry`` phonopy displaces only inequivalent atoms and rotates their force constants
    onto the others; phonopy then symmetrises the force constants (translational invariance,
    index permutation). An isolated cluster is put in a box with 20 Å of vacuum (its forces still
    come from the non-periodic ``atoms``) and displaced without symmetry reduction.
    """
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    isolated = not atoms.pbc.any()
    if isolated:
        extent = np.ptp(atoms.positions, axis=0) + _CLUSTER_VACUUM_A
        cell = np.diag(extent)
        scaled = (atoms.positions - atoms.positions.min(axis=0) + 0.5 * _CLUSTER_VACUUM_A) / extent
        symmetry = False
    else:
        cell = np.asarray(atoms.cell[:])
        scaled = atoms.get_scaled_positions(wrap=False)
    unitcell = PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=cell,
        scaled_positions=scaled,
        masses=atoms.get_masses(),
    )
    phonon = Phonopy(
        unitcell,
        supercell_matrix=np.eye(3, dtype=int),
        primitive_matrix="P",
        is_symmetry=symmetry,
        log_level=0,
    )
    phonon.generate_displacements(distance=step, is_plusminus=True)
    supercell = phonon.supercell
    # Identity supercell keeps the atom order; check it, since we displace our own copy.
    delta = supercell.scaled_positions - scaled
    if len(supercell) != len(atoms) or not np.allclose(delta - np.round(delta), 0.0, atol=1e-8):
        raise RuntimeError("phonopy reordered the atoms of an identity supercell")
    work = calculation_copy(atoms, calc)
    origin = atoms.get_positions()
    displacements = phonon.dataset["first_atoms"]
    forces = np.empty((len(displacements), len(atoms), 3))
    for k, disp in enumerate(
        tqdm(displacements, disable=not progress, desc="phonopy Hessian", unit="disp")
    ):
        shifted = origin.copy()
        shifted[disp["number"]] += disp["displacement"]
        forces[k] = _forces_at(work, shifted)
    phonon.forces = forces
    phonon.produce_force_constants()
    # Rebuilding force constants by symmetry breaks the acoustic sum rule at ~1e-5 eV/Å²,
    # which shifts the log-det route (it assumes an exact translational null space)
    # by ~1e-8 relative; phonopy's symmetrisation restores it to rounding.
    phonon.symmetrize_force_constants()
    fc = np.asarray(phonon.force_constants)  # (N, N, 3, 3), eV/Å²
    n = len(atoms)
    hessian = fc.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n)
    return 0.5 * (hessian + hessian.T)
