"""Local Einstein descriptors: the log-stiffness of each atom in its own potential well.

An extension of the paper (not among its descriptors): one component per atom,

    E_i = -½ ln det(H_ii / (1 eV/Å²)),

with H_ii the 3x3 on-site block ∂²E/∂x_i∂x_iᵀ of the Hessian of a named reference potential.
It is the Einstein-model entropy of atom i up to a per-atom constant: an atom vibrating alone
in the field of its fixed neighbours has the frequencies ω_α² = λ_α/m of that block, hence
s_i^E = Σ_α [ln(k_B T/ħω_α) + 1] = E_i + 3 [ln(k_B T sqrt(m)/ħ) + 1], and the constant cancels
in formation entropies (Eq. 15) or is taken up by the model's per-atom constant. It carries
what the potential's curvature does with strain and crowding, which geometric descriptors
can only follow through smooth functions of distance (docs/REPRODUCTION.md §2e).

Cost: O(N), one pass over the neighbour list to 2 r_c of the potential (the on-site block of
an EAM atom depends on the densities of its neighbours); no (3N, 3N) matrix is formed. The
potential must provide the blocks (``get_onsite_hessian``: the package's
:class:`~ase_vibentropy.eam.EAMCalculator`, for ``fe-mendelev2003``). Its analytic gradient
(:meth:`EinsteinDescriptor.vjp`) uses the third derivatives of the potential's functions, so a
model with this descriptor gives entropic forces too. They are only piecewise smooth where the
potential is piecewise cubic: the third derivative then jumps where a bond crosses a knot
(for the closed-form Fe at the 13 pair knots 2.2-5.3 Å and the density knots 2.4, 3.2, 4.2 Å;
for a spline through a table at every table point).

``einstein-relaxed`` (:class:`RelaxedEinsteinDescriptor`, also an extension) is the next order:
the neighbours are no longer held fixed, each relaxes in its own (fixed-neighbour) well, which
softens atom i to the Schur complement

    K_i = H_ii - Σ_{j≠i} H_ij H_jj⁻¹ H_ji,        R_i = -½ ln det(K_i / (1 eV/Å²)).

The subtracted sum is positive semi-definite, so K_i ≤ H_ii and R_i ≥ E_i atom by atom. R_i
carries the soft motions an atom shares with its neighbours (dumbbell pairs, atoms next to a
vacancy), which the fixed-neighbour block misses; it is an approximation, not a bound on the
exact entropy. K_i can be singular where an atom has few neighbours (in a free dimer the
partner carries the atom along: K = 0), and such structures are refused. It needs the
off-diagonal blocks H_ij to 2 r_c (about 340 per bcc-Fe atom), and its reach is 4 r_c: H_jj of
a partner 2 r_c away depends on atoms 2 r_c beyond it. With the package's EAM calculator the
rows of H are formed for :data:`HESSIAN_ROW_BATCH` centres at a time
(``EAMCalculator.iter_hessian_rows``), so memory stays bounded; any other potential whose
Hessian calculator has ``get_hessian`` (matscipy's calculators) works through its whole sparse
Hessian. It has no analytic gradient: a model using it predicts S, S_f and local entropies, not
entropic forces.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
from ase import Atoms

from ..errors import DescriptorError
from .base import DescriptorProvider


#: Centre atoms whose Hessian rows ``einstein-relaxed`` holds at once (about 30 kB of rows per
#: bcc-Fe atom, so ~60 MB).
HESSIAN_ROW_BATCH = 2048


class _PotentialWellDescriptor(DescriptorProvider):
    """One dimensionless component per atom from the Hessian of a named reference potential.

    Subclasses set :attr:`_required_method` (what the potential's Hessian calculator must
    have), :attr:`_reach` (the cut-off in units of the potential's cut-off) and
    ``_compute_centers``.
    """

    _required_method: str = ""
    _reach: float = 0.0
    _suitable_potentials: str = ""

    def __init__(self, potential: str = "fe-mendelev2003"):
        from ..potentials import get_potential

        self._potential = get_potential(potential)
        # Built now, so that a missing extra or an unsuitable potential fails before any work.
        self._calculator = self._potential.hessian_calculator()
        if not hasattr(self._calculator, self._required_method):
            raise DescriptorError(
                f"the {self.name} descriptor needs the potential's {self._required_method}, "
                f"which potential {self._potential.name!r} does not provide; "
                + self._suitable_potentials
            )

    def __reduce__(self):
        # Rebuilt from the potential's name in worker processes: the potential's calculator
        # factories are closures, and the calculator is cheap to build again.
        return (type(self), (self._potential.name,))

    @property
    def params(self) -> dict[str, Any]:
        """``potential`` (registered name)."""
        return {"potential": self._potential.name}

    @property
    def dim(self) -> int:
        """One component."""
        return 1

    @property
    def species(self) -> list[str]:
        """The element of the potential."""
        return [self._potential.element]

    @property
    def cutoff(self) -> float:
        """Reach of one atom's value, Å: a multiple of the potential's cut-off."""
        return self._reach * _interaction_cutoff(self._calculator)


class EinsteinDescriptor(_PotentialWellDescriptor):
    """Per-atom -½ ln det of the on-site Hessian block of a reference potential (dimensionless).

    Parameters
    ----------
    potential
        Registered potential name (:func:`ase_vibentropy.potentials.available_potentials`)
        whose Hessian calculator has ``get_onsite_hessian``.

    Raises
    ------
    DescriptorError
        The potential cannot give on-site Hessian blocks.
    UnknownNameError
        No potential of that name.
    MissingDependencyError
        The potential needs an extra that is not installed.
    """

    name = "einstein"
    _required_method = "get_onsite_hessian"
    _reach = 2.0  # an EAM on-site block depends on the densities of the neighbours
    _suitable_potentials = (
        "only the package's EAM calculator gives on-site Hessian blocks; choose an EAM "
        "potential such as fe-mendelev2003"
    )

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """Gradient ∂(w Σ_i E_i)/∂r_k, shape (N, 3), per Å (a gradient, not a force).

        E_i = -½ ln det H_ii, so this is -½ w times the gradient of Σ_i ln det H_ii
        (``EAMCalculator.get_onsite_log_det_gradient``, O(N), whole structure at once).

        Parameters
        ----------
        w
            Weight, shape (1,).
        """
        self.check_atoms(atoms)
        w = self.check_weights(w)
        weights = np.full(len(atoms), -0.5 * float(w[0]))
        gradient, blocks = self._calculator.get_onsite_log_det_gradient(atoms, weights, return_blocks=True)
        _minus_half_log_det(blocks, np.arange(len(atoms)))  # refuses unstable wells clearly
        return gradient

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """E_i for i in ``centers`` (M,), shape (M, 1), dimensionless."""
        centers = np.asarray(centers, dtype=np.intp)
        return _minus_half_log_det(self._calculator.get_onsite_hessian(atoms)[centers], centers)[:, None]


def _interaction_cutoff(calculator: Any) -> float:
    """Interaction range of a Hessian calculator, Å: ``cutoff`` (the package's EAM) or
    matscipy's ``_db_cutoff``."""
    for attribute in ("cutoff", "_db_cutoff"):
        value = getattr(calculator, attribute, None)
        if value is not None:
            return float(value)
    raise DescriptorError(
        f"cannot tell the interaction range of {type(calculator).__name__}: it has neither "
        "'cutoff' nor matscipy's '_db_cutoff'"
    )


class RelaxedEinsteinDescriptor(_PotentialWellDescriptor):
    """Per-atom -½ ln det of the on-site stiffness with relaxing neighbours (dimensionless).

    R_i = -½ ln det(H_ii - Σ_{j≠i} H_ij H_jj⁻¹ H_ji) with the Hessian H (eV/Å²) of a reference
    potential (module docstring).

    Parameters
    ----------
    potential
        Registered potential name whose Hessian calculator has ``get_hessian`` (sparse).

    Raises
    ------
    DescriptorError
        The potential has no analytic Hessian.
    UnknownNameError
        No potential of that name.
    MissingDependencyError
        The potential needs an extra that is not installed.
    """

    name = "einstein-relaxed"
    _required_method = "get_hessian"
    _reach = 4.0  # H_ij to 2 r_c, and H_jj of that partner depends on atoms 2 r_c beyond it
    _suitable_potentials = (
        "choose a potential with an analytic Hessian such as fe-mendelev2003"
    )

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """R_i for i in ``centers`` (M,), shape (M, 1), dimensionless.

        A periodic cell thinner than the reach is first repeated until it is not: the Hessian
        of a small cell sums the couplings of all images of a partner into one block, which
        would mix images here (products of two image couplings), and R_i would then depend on
        the cell. Repeated, every image is its own partner, as in an infinite crystal, so
        values are the same in any supercell and in spatial chunks.
        """
        centers = np.asarray(centers, dtype=np.intp)
        atoms = _repeated_beyond(atoms, self.cutoff)  # the original atoms come first
        calculator = self._calculator
        if hasattr(calculator, "iter_hessian_rows"):  # the package's EAM: bounded memory
            onsite = calculator.get_onsite_hessian(atoms)
            batches = np.array_split(centers, max(1, math.ceil(len(centers) / HESSIAN_ROW_BATCH)))
            rows = calculator.iter_hessian_rows(atoms, batches)
        else:
            hessian = sp.csr_matrix(calculator.get_hessian(atoms, format="sparse"))
            onsite = _diagonal_blocks(hessian, len(atoms))
            batches = [centers]
            rows = iter([hessian[(3 * centers[:, None] + np.arange(3)).ravel()]])
        blocks = np.concatenate(
            [relaxed_onsite_blocks(batch_rows, onsite, batch) for batch_rows, batch in zip(rows, batches)]
        )
        return _minus_half_log_det(blocks, centers, "relaxed-neighbour stiffness")[:, None]


def _repeated_beyond(atoms: Atoms, reach: float) -> Atoms:
    """``atoms`` itself, or if periodic with a plane spacing not above ``reach`` (Å) on some
    axis, ``atoms.repeat`` enough times on that axis that every spacing exceeds it."""
    if not np.all(atoms.pbc):
        return atoms
    heights = 1.0 / np.linalg.norm(np.linalg.inv(atoms.cell.array).T, axis=1)
    repeats = np.floor(reach / heights).astype(int) + 1
    return atoms if np.all(repeats == 1) else atoms.repeat(tuple(repeats))


def relaxed_onsite_blocks(hessian_rows: sp.spmatrix, onsite: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """K_i = H_ii - Σ_{j≠i} H_ij H_jj⁻¹ H_ji for the atoms ``centers`` (M,), shape (M, 3, 3).

    Parameters
    ----------
    hessian_rows
        Rows 3i + α of a symmetric Hessian (eV/Å², atom-major) for i in ``centers``, sparse
        (3M, 3N).
    onsite
        Every on-site block H_jj, shape (N, 3, 3), eV/Å²; those of the partners must be
        positive definite (DescriptorError otherwise).

    Vectorised over the (centre, partner) blocks: one (B, 3, 3) product, summed back to the
    centres with bincounts. K is in eV/Å².
    """
    centers = np.asarray(centers, dtype=np.intp)
    rows = sp.bsr_matrix(hessian_rows, blocksize=(3, 3))
    centre_of_block = np.repeat(np.arange(len(centers)), np.diff(rows.indptr))
    partner = rows.indices
    off_diagonal = partner != centers[centre_of_block]
    centre_of_block, partner = centre_of_block[off_diagonal], partner[off_diagonal]
    coupling = rows.data[off_diagonal]  # H_ij, (B, 3, 3)
    partners = np.unique(partner)
    _minus_half_log_det(onsite[partners], partners)  # every H_jj > 0, or a clear error
    inverse = np.zeros_like(onsite)
    inverse[partners] = np.linalg.inv(onsite[partners])
    transfer = (coupling @ inverse[partner]) @ coupling.transpose(0, 2, 1)  # H_ij H_jj⁻¹ H_ji
    softening = np.stack(
        [np.bincount(centre_of_block, weights=transfer[:, a, b], minlength=len(centers))
         for a in range(3) for b in range(3)],
        axis=1,
    ).reshape(len(centers), 3, 3)
    return onsite[centers] - softening


def _diagonal_blocks(csr: sp.csr_matrix, n_atoms: int) -> np.ndarray:
    """The 3x3 on-site blocks H_ii of a (3N, 3N) matrix, shape (N, 3, 3)."""
    blocks = np.empty((n_atoms, 3, 3))
    atoms = np.arange(n_atoms)
    for a in range(3):
        for b in range(3):
            blocks[:, a, b] = np.asarray(csr[3 * atoms + a, 3 * atoms + b]).ravel()
    return blocks


#: An eigenvalue below this fraction of the block's largest one counts as zero (a relaxed
#: block that is singular in exact arithmetic, as in a free dimer, comes out at ~1e-16 of it).
_SINGULAR_RATIO = 1e-8


def _minus_half_log_det(
    blocks: np.ndarray, atom_indices: np.ndarray, what: str = "on-site Hessian block",
    allow_negative: bool = False,
) -> np.ndarray:
    """-½ ln |det| of each symmetric block (M, 3, 3) -> (M,).

    A block that is not positive definite raises :class:`DescriptorError` naming its atoms
    (``atom_indices``, (M,)) and ``what`` the block is; with ``allow_negative`` only a
    (near-)singular one does, and a block with negative eigenvalues (an atom crossing a saddle
    of its well) gives -½ ln |det|.
    """
    eigenvalues = np.linalg.eigvalsh(blocks)
    floor = _SINGULAR_RATIO * np.abs(eigenvalues).max(axis=1, initial=0.0)
    size = np.abs(eigenvalues) if allow_negative else eigenvalues
    unstable = np.any(size <= floor[:, None], axis=1)
    if np.any(unstable):
        bad = atom_indices[unstable]
        if allow_negative:
            raise DescriptorError(
                f"the {what} of atom(s) {bad[:10].tolist()} is singular (an eigenvalue crosses "
                "zero): its log-determinant is undefined at this configuration"
            )
        raise DescriptorError(
            f"the {what} of atom(s) {bad[:10].tolist()} is not positive definite (the atom "
            "sits at a maximum or saddle of its well, or has too few neighbours to hold it): "
            "relax the structure to a minimum of a condensed phase before computing this "
            "descriptor, or use the descriptor's saddle_points=True at saddle points"
        )
    return -0.5 * np.log(size).sum(axis=1)
