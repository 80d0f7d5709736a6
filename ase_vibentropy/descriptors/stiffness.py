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
contracts the derivatives of the three components with the derivatives of the blocks
(:meth:`~ase_vibentropy.eam.EAMCalculator.get_half_bond_contraction_gradient`): O(N), whole
structure at once, each bond listed once and its 3x3 products formed in batches, so memory
stays a few floats per bond (0.9 GB for the free-energy forces of 10^5 atoms). Where the
potential is piecewise cubic its third derivative jumps as a bond crosses a knot, and so do
the entropic forces.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from ..eam.calculator import BOND_BATCH, GRADIENT_BATCH
from ..errors import DescriptorError
from ..threads import default_threads, threaded_map
from .einstein import _PotentialWellDescriptor, _interaction_cutoff, _minus_half_log_det, _repeated_beyond


class StiffnessDescriptor(_PotentialWellDescriptor):
    """Per-atom [E_i, B_i, C_i] of the Hessian blocks of a reference potential (dimensionless).

    Parameters
    ----------
    potential
        Registered potential name whose Hessian calculator has ``get_half_bond_blocks`` (the
        package's EAM calculator, for example ``fe-mendelev2003``).
    n_threads
        Threads over the batches of bonds (default: the CPUs this process may use, at most
        4); an execution setting, not a parameter: results do not depend on it.
    saddle_points
        False (default): a block that is not positive definite raises (the structure is not
        at a minimum). True: such blocks (the jumping atom at a saddle) give -½ ln |det| and
        the components stay smooth functions of the positions wherever no block is singular;
        for saddle-point models. Identical values at minima.

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
    whole_structure = True  # one pass over the bonds, 64 bytes each: no chunk halos of 3 r_c
    _required_method = "get_half_bond_blocks"
    _reach = 3.0  # H_jj of a bonded neighbour j depends on the atoms 2 r_c from j
    _suitable_potentials = (
        "only the package's EAM calculator gives bond blocks; choose an EAM potential such as "
        "fe-mendelev2003"
    )

    def __init__(self, potential: str = "fe-mendelev2003", n_threads: int | None = None,
                 saddle_points: bool = False):
        super().__init__(potential)
        self.n_threads = default_threads() if n_threads is None else max(1, int(n_threads))
        if not isinstance(saddle_points, (bool, np.bool_)):
            raise DescriptorError(f"saddle_points must be True or False, got {saddle_points!r}")
        self.saddle_points = bool(saddle_points)

    def __reduce__(self):
        return (type(self), (self._potential.name, None, self.saddle_points))

    @property
    def params(self) -> dict[str, Any]:
        """``potential``, and ``saddle_points`` when True (so that the minimum-only
        descriptor keeps its parameter set and hash)."""
        params = super().params
        if self.saddle_points:
            params["saddle_points"] = True
        return params

    @property
    def dim(self) -> int:
        """Three components: E_i, B_i, C_i."""
        return 3

    @property
    def _image_free_height(self) -> float:
        """Plane spacing, Å, below which a periodic cell is repeated: 2 r_c, so that no atom
        bonds to two images of one atom and the blocks are those of an infinite crystal."""
        return 2.0 * _interaction_cutoff(self._calculator)

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """[E_i, B_i, C_i] for i in ``centers`` (M,), shape (M, 3), dimensionless.

        One pass over the bonds, each listed once (the memory-lean
        :meth:`~ase_vibentropy.eam.EAMCalculator.get_half_bond_blocks`), of the structure
        repeated beyond 2 r_c where needed. Only the blocks of the centres and their bonded
        partners are checked and inverted: in a spatial chunk the atoms at the edge of the halo
        have cut environments and need not be stable.
        """
        n_original = len(atoms)
        centers = np.asarray(centers, dtype=np.intp)
        structure = _repeated_beyond(atoms, self._image_free_height)
        n_atoms = len(structure)
        blocks = self._calculator.get_half_bond_blocks(structure, self.n_threads)
        onsite = blocks["onsite"]
        i_n, j_n = blocks["i"], blocks["j"]
        if len(centers) == n_atoms:  # every atom: no bond to select
            ends = [(i_n, j_n, slice(None)), (j_n, i_n, slice(None))]
            needed = np.arange(n_atoms)
        else:
            is_center = np.zeros(n_atoms, dtype=bool)
            is_center[centers] = True
            from_i, from_j = np.flatnonzero(is_center[i_n]), np.flatnonzero(is_center[j_n])
            ends = [(i_n[from_i], j_n[from_i], from_i), (j_n[from_j], i_n[from_j], from_j)]
            needed = np.union1d(centers, np.union1d(j_n[from_i], i_n[from_j]))
        einstein = _minus_half_log_det(onsite[needed], needed % n_original, f"{self.name} on-site block",
                                       self.saddle_points)
        einstein = einstein[np.searchsorted(needed, centers)]  # needed: sorted, holds the centres
        inverse = np.zeros_like(onsite)
        inverse[needed] = np.linalg.inv(onsite[needed])
        softening = np.zeros_like(onsite)
        for at, partner, bonds in ends:  # S_i from the bonds seen from either end
            softening += _bond_softening(at, partner, blocks["unit"][bonds], blocks["radial"][bonds],
                                         blocks["tangential"][bonds], inverse, self.n_threads)
        onsite, inverse, softening = onsite[centers], inverse[centers], softening[centers]
        relaxed = _minus_half_log_det(onsite - softening, centers, "bond-relaxed stiffness",
                                      self.saddle_points)
        coupling = np.einsum("mab,mba->m", inverse, softening)
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
        atoms = _repeated_beyond(atoms, self._image_free_height)
        n_copies = len(atoms) // n_atoms  # a thin cell was repeated: copy c of atom k is c N + k
        copy_of = np.arange(len(atoms)) % n_atoms
        blocks = self._calculator.get_half_bond_blocks(atoms, self.n_threads)
        onsite, i_n, j_n = blocks["onsite"], blocks["i"], blocks["j"]
        _minus_half_log_det(onsite, copy_of, f"{self.name} on-site block", self.saddle_points)
        inverse = np.linalg.inv(onsite)
        softening = np.zeros_like(onsite)
        for at, partner in ((i_n, j_n), (j_n, i_n)):
            softening += _bond_softening(at, partner, blocks["unit"], blocks["radial"],
                                         blocks["tangential"], inverse, self.n_threads)
        relaxed = onsite - softening
        _minus_half_log_det(relaxed, copy_of, "bond-relaxed stiffness", self.saddle_points)
        relaxed_inverse = np.linalg.inv(relaxed)
        onsite_weights = (-0.5 * w_e) * inverse - (0.5 * w_b) * relaxed_inverse
        onsite_weights -= w_c * (inverse @ softening @ inverse)
        y = (0.5 * w_b) * relaxed_inverse + w_c * inverse
        inverse9, y9 = inverse.reshape(-1, 9), y.reshape(-1, 9)

        def bond_products(b: slice) -> tuple[np.ndarray, ...]:
            """A_j K_n, A_i K_n, Y_i, Y_j of the bonds of batch ``b``, (B, 3, 3) each."""
            u = blocks["unit"][b]
            bond = (blocks["radial"][b][:, None, None] * u[:, :, None] * u[:, None, :]
                    + blocks["tangential"][b][:, None, None] * np.eye(3))  # K_n
            a_i = np.take(inverse9, i_n[b], axis=0).reshape(-1, 3, 3)
            a_j = np.take(inverse9, j_n[b], axis=0).reshape(-1, 3, 3)
            y_i = np.take(y9, i_n[b], axis=0).reshape(-1, 3, 3)
            y_j = np.take(y9, j_n[b], axis=0).reshape(-1, 3, 3)
            return a_j @ bond, a_i @ bond, y_i, y_j

        def through_partner(b: slice) -> np.ndarray:
            """-Σ A_j K Y_i K A_j over the batch's bonds, by partner j, from both ends (N, 3, 3)."""
            a_j_k, a_i_k, y_i, y_j = bond_products(b)
            return -(_sum_blocks(j_n[b], a_j_k @ y_i @ a_j_k.transpose(0, 2, 1), len(atoms))
                     + _sum_blocks(i_n[b], a_i_k @ y_j @ a_i_k.transpose(0, 2, 1), len(atoms)))

        def bond_weights(b: slice) -> np.ndarray:
            """P_n = A_j K Y_i + Y_i K A_j, from both ends, (B, 3, 3)."""
            a_j_k, a_i_k, y_i, y_j = bond_products(b)
            half = a_j_k @ y_i + a_i_k @ y_j
            return half + half.transpose(0, 2, 1)

        batches = [slice(k, k + GRADIENT_BATCH) for k in range(0, len(i_n), GRADIENT_BATCH)]
        for part in threaded_map(through_partner, batches, self.n_threads):
            onsite_weights += part
        gradient = self._calculator.get_half_bond_contraction_gradient(
            blocks, onsite_weights, bond_weights, self.n_threads)
        # Moving atom k moves every copy of it, and the copies hold n_copies times w · Σ D.
        return gradient.reshape(n_copies, n_atoms, 3).sum(axis=0) / n_copies


#: Upper-triangle components (p, q) of a symmetric 3x3 block.
_SYMMETRIC = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


def _bond_softening(
    at: np.ndarray, partner: np.ndarray, unit: np.ndarray, radial: np.ndarray,
    tangential: np.ndarray, inverse: np.ndarray, n_threads: int = 1,
) -> np.ndarray:
    """S_i = Σ_n K_n A_j K_n summed to the atoms ``at`` of the bonds n, with j = ``partner``
    (both (K,)), shape (N, 3, 3), eV/Å² (zero for atoms without such bonds).

    With K = a r̂r̂ᵀ + b 1 (``radial`` a, ``tangential`` b, ``unit`` r̂ (K, 3)) and A = H_jj⁻¹
    (``inverse``, (N, 3, 3), Å²/eV) a bond gives K A K = a² (r̂ᵀA r̂) r̂r̂ᵀ + a b (A r̂ r̂ᵀ +
    r̂ r̂ᵀA) + b² A, even in r̂, summed component by component (six bincounts over the bonds
    instead of (K, 3, 3) matrix products), :data:`~ase_vibentropy.eam.calculator.BOND_BATCH`
    bonds at a time on ``n_threads`` threads, reduced in order.
    """
    n_atoms = len(inverse)
    # the six independent components of each A, (N, 6): np.take of rows is several times
    # faster than fancy indexing of (N, 3, 3)
    inverse6 = np.stack([inverse[:, p, q] for p, q in _SYMMETRIC], axis=1)

    def batch_part(batch: slice) -> np.ndarray:
        u, a, b, to = unit[batch], radial[batch], tangential[batch], at[batch]
        partner_inverse = np.take(inverse6, partner[batch], axis=0)
        component = {pq: partner_inverse[:, c] for c, pq in enumerate(_SYMMETRIC)}
        component.update({(q, p): value for (p, q), value in list(component.items())})
        a_unit = [sum(component[p, q] * u[:, q] for q in range(3)) for p in range(3)]  # A r̂
        along = a * a * sum(u[:, p] * a_unit[p] for p in range(3))
        cross = a * b
        square = b * b
        part = np.empty((n_atoms, 3, 3))
        for p, q in _SYMMETRIC:
            value = (along * u[:, p] * u[:, q] + cross * (a_unit[p] * u[:, q] + u[:, p] * a_unit[q])
                     + square * component[p, q])
            part[:, p, q] = part[:, q, p] = np.bincount(to, weights=value, minlength=n_atoms)
        return part

    batches = [slice(k, k + BOND_BATCH) for k in range(0, len(at), BOND_BATCH)]
    softening = np.zeros((n_atoms, 3, 3))
    for part in threaded_map(batch_part, batches, n_threads):
        softening += part
    return softening


def _sum_blocks(index: np.ndarray, blocks: np.ndarray, n_atoms: int) -> np.ndarray:
    """Σ of the 3x3 ``blocks`` (M, 3, 3) by atom ``index`` (M,), shape (n_atoms, 3, 3)."""
    flat = blocks.reshape(len(blocks), 9)
    return np.stack(
        [np.bincount(index, weights=flat[:, c], minlength=n_atoms) for c in range(9)], axis=1
    ).reshape(n_atoms, 3, 3)
