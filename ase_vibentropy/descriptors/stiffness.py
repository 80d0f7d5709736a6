"""Local stiffness descriptors: each atom's well, with its bonded neighbours held or relaxing.

An extension of the paper (not among its descriptors), three dimensionless components per atom
from the Hessian blocks of a named reference potential (eV/Å², docs/descriptors.md):

    E_i = -½ ln det H_ii                          (neighbours fixed: the Einstein component)
    B_i = -½ ln det(H_ii - S_i)                   (bonded neighbours relaxing in their wells)
    C_i = tr(H_ii⁻¹ S_i)                          (the first-order coupling, B_i ≈ E_i + ½ C_i)

with S_i = Σ_{n: bonds of i} K_n H_jj⁻¹ K_n over the bonds n = (i -> j) within the potential's
cut-off, K_n = ψ'' r̂r̂ᵀ + (ψ'/r)(1 - r̂r̂ᵀ) the pair-like block a bond contributes to H_ij
(:meth:`~ase_vibentropy.eam.EAMCalculator.get_bond_blocks`). B_i is the Schur complement of
atom i in the cluster {i and its bonded neighbours}, each neighbour coupled to i alone: the
softening an atom feels when the atoms it is bonded to follow it (dumbbell partners, atoms
next to a vacancy), to second order in the bonds. Unlike ``einstein-relaxed`` it keeps only
the bonds' pair-like coupling (the embedding terms couple atoms to 2 r_c through shared
neighbours and are left out), so it costs one pass over the bonds, and it has an analytic
gradient.

ln det H = Σ_i ln det H_ii + Σ_i ln det(1 - X_i) + ... in the block expansion of the log-det
(X_i = H_ii⁻¹ S_i at second order in the off-diagonal blocks), so a linear model on Σ_i D_i
with these components follows the exact log-det where geometric descriptors can only follow
smooth functions of the distances.

Reach: B_i needs H_jj of its bonded neighbours j, which depends on the atoms 2 r_c from j, so
the descriptor's cut-off is 3 r_c. A periodic cell thinner than 2 r_c is first repeated (every
image its own atom, as in an infinite crystal), so values are the same in every supercell and
in spatial chunks.

Gradient: :meth:`StiffnessDescriptor.vjp` (a thin periodic cell through its repeated copy)
contracts the derivatives of the three components
with the derivatives of the blocks (:meth:`~ase_vibentropy.eam.EAMCalculator.get_block_contraction_gradient`):
O(N), whole structure at once. Where the potential is piecewise cubic its third derivative
jumps as a bond crosses a knot, and so do the entropic forces.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..errors import DescriptorError
from .einstein import _PotentialWellDescriptor, _interaction_cutoff, _minus_half_log_det, _repeated_beyond


class StiffnessDescriptor(_PotentialWellDescriptor):
    """Per-atom [E_i, B_i, C_i] of the Hessian blocks of a reference potential (dimensionless).

    Parameters
    ----------
    potential
        Registered potential name whose Hessian calculator has ``get_bond_blocks`` (the
        package's EAM calculator, for example ``fe-mendelev2003``).

    Raises
    ------
    DescriptorError
        The potential cannot give its bond blocks.
    UnknownNameError
        No potential of that name.
    MissingDependencyError
        The potential needs an extra that is not installed.
    """

    name = "stiffness"
    _required_method = "get_bond_blocks"
    _reach = 3.0  # H_jj of a bonded neighbour j depends on the atoms 2 r_c from j
    _suitable_potentials = (
        "only the package's EAM calculator gives bond blocks; choose an EAM potential such as "
        "fe-mendelev2003"
    )

    @property
    def dim(self) -> int:
        """Three components: E_i, B_i, C_i."""
        return 3

    @property
    def _image_free_height(self) -> float:
        """Plane spacing, Å, below which a periodic cell is repeated: 2 r_c, so that no atom
        bonds to two images of one atom and the blocks are those of an infinite crystal."""
        return 2.0 * _interaction_cutoff(self._calculator)

    def _blocks(
        self, atoms: Atoms, centers: np.ndarray | None = None
    ) -> tuple[Atoms, dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """The blocks of ``atoms`` (repeated beyond 2 r_c where needed; the original atoms come
        first) for the atoms ``centers`` (default: all of the structure used).

        Returns (structure used, its bond blocks, the bonds of the centres (K,), H_jj⁻¹
        (N', 3, 3) for the centres and their bonded partners (zero elsewhere), S_i (N', 3, 3)
        for the centres (zero elsewhere)). Only those atoms' blocks are checked and inverted:
        in a spatial chunk the atoms at the edge of the halo have cut environments and need not
        be stable.
        """
        n_original = len(atoms)
        atoms = _repeated_beyond(atoms, self._image_free_height)
        n_atoms = len(atoms)
        blocks = self._calculator.get_bond_blocks(atoms)
        onsite = blocks["onsite"]
        centers = np.arange(n_atoms) if centers is None else np.asarray(centers, dtype=np.intp)
        is_center = np.zeros(n_atoms, dtype=bool)
        is_center[centers] = True
        mine = np.flatnonzero(is_center[blocks["i"]])
        needed = np.union1d(centers, blocks["j"][mine])
        _minus_half_log_det(onsite[needed], needed % n_original, f"{self.name} on-site block")
        inverse = np.zeros_like(onsite)
        inverse[needed] = np.linalg.inv(onsite[needed])
        softening = _bond_softening(blocks, inverse, mine)
        return atoms, blocks, mine, inverse, softening

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """[E_i, B_i, C_i] for i in ``centers`` (M,), shape (M, 3), dimensionless."""
        centers = np.asarray(centers, dtype=np.intp)
        _, blocks, _, inverse, softening = self._blocks(atoms, centers)
        onsite = blocks["onsite"][centers]
        einstein = _minus_half_log_det(onsite, centers, f"{self.name} on-site block")
        relaxed = _minus_half_log_det(onsite - softening[centers], centers, "bond-relaxed stiffness")
        coupling = np.einsum("mab,mba->m", inverse[centers], softening[centers])
        return np.stack([einstein, relaxed, coupling], axis=1)

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """Gradient ∂(w · Σ_i D_i)/∂r_k, shape (N, 3), per Å (a gradient, not a force).

        With A_i = H_ii⁻¹, M_i = H_ii - S_i and the symmetric weights
        W_i = -½ w_E A_i - ½ w_B M_i⁻¹ - w_C A_i S_i A_i and Y_i = ½ w_B M_i⁻¹ + w_C A_i,

            d(w · Σ D) = Σ_i tr(W_i dH_ii) + Σ_i tr(Y_i dS_i),
            tr(Y_i dS_i) = Σ_n tr(P_n dK_n) - tr(A_j K_n Y_i K_n A_j dH_jj),
            P_n = A_j K_n Y_i + Y_i K_n A_j,

        and the block derivatives are contracted by the potential's calculator.

        Parameters
        ----------
        w
            Weights, shape (3,).
        """
        self.check_atoms(atoms)
        w_e, w_b, w_c = self.check_weights(w)
        n_atoms = len(atoms)
        atoms, blocks, _, inverse, softening = self._blocks(atoms)
        n_copies = len(atoms) // n_atoms  # a thin cell was repeated: copy c of atom k is c N + k
        relaxed = blocks["onsite"] - softening
        _minus_half_log_det(relaxed, np.arange(len(atoms)) % n_atoms, "bond-relaxed stiffness")
        relaxed_inverse = np.linalg.inv(relaxed)
        i_n, j_n, unit = blocks["i"], blocks["j"], blocks["unit"]
        bond = (blocks["radial"][:, None, None] * unit[:, :, None] * unit[:, None, :]
                + blocks["tangential"][:, None, None] * np.eye(3))  # K_n, (M, 3, 3)
        onsite_weights = (-0.5 * w_e) * inverse - (0.5 * w_b) * relaxed_inverse
        onsite_weights -= w_c * (inverse @ softening @ inverse)
        y = (0.5 * w_b) * relaxed_inverse + w_c * inverse
        a_k = inverse[j_n] @ bond  # A_j K_n, (M, 3, 3)
        a_k_y = a_k @ y[i_n]
        bond_weights = a_k_y + a_k_y.transpose(0, 2, 1)  # A_j K Y + Y K A_j
        onsite_weights -= _sum_blocks(j_n, a_k_y @ a_k.transpose(0, 2, 1), len(atoms))
        gradient = self._calculator.get_block_contraction_gradient(
            atoms, onsite_weights, bond_weights, bond_blocks=blocks
        )
        # Moving atom k moves every copy of it, and the copies hold n_copies times w · Σ D.
        return gradient.reshape(n_copies, n_atoms, 3).sum(axis=0) / n_copies


def _bond_softening(blocks: dict[str, np.ndarray], inverse: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    """S_i = Σ_n K_n A_j K_n over the bonds n = (i -> j) in ``bonds`` (indices, (K,)), shape
    (N, 3, 3), eV/Å² (zero for atoms without such bonds).

    With K = a r̂r̂ᵀ + b 1 and A = H_jj⁻¹ (``inverse``, (N, 3, 3), Å²/eV) a bond gives
    K A K = a² (r̂ᵀA r̂) r̂r̂ᵀ + a b (A r̂ r̂ᵀ + r̂ r̂ᵀA) + b² A, summed component by component
    (six bincounts over the bonds instead of (K, 3, 3) matrix products).
    """
    i_n, unit = blocks["i"][bonds], blocks["unit"][bonds]
    a, b = blocks["radial"][bonds], blocks["tangential"][bonds]
    partner = inverse[blocks["j"][bonds]]
    a_unit = np.einsum("nab,nb->na", partner, unit)
    along = a * a * np.einsum("na,na->n", unit, a_unit)
    cross = a * b
    square = b * b
    n_atoms = len(inverse)
    softening = np.empty((n_atoms, 3, 3))
    for p in range(3):
        for q in range(p, 3):
            value = (along * unit[:, p] * unit[:, q]
                     + cross * (a_unit[:, p] * unit[:, q] + unit[:, p] * a_unit[:, q])
                     + square * partner[:, p, q])
            softening[:, p, q] = softening[:, q, p] = np.bincount(i_n, weights=value, minlength=n_atoms)
    return softening


def _sum_blocks(index: np.ndarray, blocks: np.ndarray, n_atoms: int) -> np.ndarray:
    """Σ of the 3x3 ``blocks`` (M, 3, 3) by atom ``index`` (M,), shape (n_atoms, 3, 3)."""
    flat = blocks.reshape(len(blocks), 9)
    return np.stack(
        [np.bincount(index, weights=flat[:, c], minlength=n_atoms) for c in range(9)], axis=1
    ).reshape(n_atoms, 3, 3)
