"""Angular Fourier series (AFS) descriptor of Bartók, Kondor and Csányi (PRB 87, 184115, 2013).

As the paper's authors evaluated it:

    A^i_{n,l} = Σ_{j<k in R_i} g_n(r_ij) g_n(r_ik) T_l(cos θ_jik),   n = 1..n_max, l = 0..l_max,

over unordered pairs of distinct neighbours within r_cut, with the orthonormal radial basis g_n of
:mod:`.radial` and Chebyshev polynomials T_l. Component order is n-major: (n-1)(l_max+1) + l.

Fast route (cost O(n_nb n_max l_max²) per atom): expand T_l = Σ_λ c_lλ P_λ (exact rationals,
:func:`.spherical.chebyshev_to_legendre`) and use the addition theorem
P_λ(r̂·r̂') = 4π/(2λ+1) Σ_m Y_λm(r̂) Y_λm(r̂'). With c_nλm = Σ_j g_n(r_j) Y_λm(r̂_j) and
p_nλ = Σ_m c_nλm², the full double sum over ordered pairs (j, k), diagonal included, is
Σ_λ c_lλ 4π/(2λ+1) p_nλ; the diagonal j = k contributes Σ_j g_n(r_j)² T_l(1) = Σ_j g_n(r_j)², so

    A_{n,l} = ½ [ Σ_λ c_lλ 4π/(2λ+1) p_nλ - Σ_j g_n(r_j)² ].

Species: the descriptor is element-agnostic (every neighbour counts alike, as in the paper's
single-element Fe study). ``species`` restricts the elements a provider accepts: a structure with
any other element raises :class:`~ase_vibentropy.errors.DescriptorError`, so a model trained on
Fe is never silently applied to Fe-Cr. ``species=None`` accepts any element.

Gradients: :meth:`AFSDescriptor.vjp` differentiates w · Σ_i A^i through c_nλm and g_n analytically
(no (N, 3, N, dim) Jacobian is formed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from ..errors import DescriptorError
from ..threads import default_threads, threaded_map
from .base import DescriptorProvider
from .chunks import iter_spatial_chunks
from .neighbors import Pairs, neighbor_pairs
from .radial import RadialBasis
from .spherical import chebyshev_to_legendre, real_spherical_harmonics, real_spherical_harmonics_vjp

#: Default number of padded (centre, neighbour) slots evaluated at once; sets peak memory
#: (about 8 (l_max+1)² bytes per slot for the spherical harmonics: 16 MB at l_max = 10).
DEFAULT_PAIR_BATCH = 16_384


def validate_species(species: Sequence[str] | None) -> list[str] | None:
    """Sorted unique chemical symbols, or None; DescriptorError for anything else."""
    if species is None:
        return None
    if isinstance(species, str):
        species = [species]
    symbols = sorted(set(species))
    bad = [s for s in symbols if s not in chemical_symbols[1:]]
    if bad or not symbols:
        raise DescriptorError(
            f"species must be a non-empty list of chemical symbols such as ['Fe'], got {species!r}"
        )
    return symbols


class AFSDescriptor(DescriptorProvider):
    """Per-atom AFS descriptor A^i_{n,l}, dim = n_max (l_max + 1) (220 by default).

    Parameters
    ----------
    n_max
        Number of radial functions (>= 1); 20 in the paper.
    l_max
        Largest Chebyshev order (>= 0); 10 in the paper.
    r_cut
        Cut-off radius, Å (> 0); 5 in the paper.
    species
        Chemical symbols the provider accepts (None: any). The descriptor itself does not
        distinguish elements (module docstring).
    pair_batch
        Padded neighbour slots evaluated per batch (memory knob, not a descriptor parameter).
    n_threads
        Worker threads for the batches (default: the CPUs this process may use, at most 4).
    """

    name = "afs"

    def __init__(
        self,
        n_max: int = 20,
        l_max: int = 10,
        r_cut: float = 5.0,
        species: Sequence[str] | None = None,
        pair_batch: int = DEFAULT_PAIR_BATCH,
        n_threads: int | None = None,
    ):
        if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or n_max < 1:
            raise DescriptorError(f"AFS n_max must be an integer >= 1 (paper: 20), got {n_max!r}")
        if isinstance(l_max, bool) or not isinstance(l_max, (int, np.integer)) or l_max < 0:
            raise DescriptorError(f"AFS l_max must be an integer >= 0 (paper: 10), got {l_max!r}")
        try:
            r_cut = float(r_cut)
        except (TypeError, ValueError):
            raise DescriptorError(f"AFS r_cut must be a length in Å, got {r_cut!r}") from None
        if not (math.isfinite(r_cut) and r_cut > 0):
            raise DescriptorError(f"AFS r_cut must be a positive length in Å (paper: 5), got {r_cut!r}")
        if pair_batch < 1:
            raise DescriptorError(f"pair_batch must be >= 1, got {pair_batch}")
        self.n_max = int(n_max)
        self.l_max = int(l_max)
        self.r_cut = r_cut
        self._species = validate_species(species)
        self.pair_batch = int(pair_batch)
        self.n_threads = default_threads() if n_threads is None else max(1, int(n_threads))
        self.radial = RadialBasis(self.n_max, self.r_cut)
        lam = np.arange(self.l_max + 1)
        # kernel[λ, l] = c_lλ 4π/(2λ+1): turns p_nλ into the ordered-pair sum (module docstring)
        self.kernel = chebyshev_to_legendre(self.l_max).T * (4 * math.pi / (2 * lam + 1))[:, None]
        # degree λ of each spherical-harmonic column l² + l + m
        self._degree = np.repeat(lam, 2 * lam + 1)
        self._kernel_by_component = np.ascontiguousarray(self.kernel[self._degree])  # ((l+1)², l+1)

    # ------------------------------------------------------------------ protocol
    @property
    def params(self) -> dict[str, Any]:
        """``n_max``, ``l_max``, ``r_cut`` (Å) and ``species`` (list of symbols or None)."""
        return {"n_max": self.n_max, "l_max": self.l_max, "r_cut": self.r_cut, "species": self._species}

    @property
    def dim(self) -> int:
        """n_max (l_max + 1)."""
        return self.n_max * (self.l_max + 1)

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """A^i for i in ``centers`` (M,), shape (M, dim), units Å^-1 (g_n² ~ 1/length)."""
        centers = np.asarray(centers, dtype=np.intp)
        out = np.zeros((len(centers), self.dim))
        layout = _PaddedPairs(neighbor_pairs(atoms, self.r_cut, centers), len(atoms), centers, self.r_cut)

        def work(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            d, u, _ = layout.gather(rows)
            g, _ = self.radial(d)  # (M, K, n)
            coeffs = self._expansion(g, u)  # (M, (l+1)², n)
            return rows, self._features(coeffs, g).reshape(len(rows), self.dim)

        for rows, values in threaded_map(work, layout.batches(self.pair_batch, self.n_threads), self.n_threads):
            out[rows] = values
        return out

    def vjp(self, atoms: Atoms, w: np.ndarray, chunk_size: int = 20_000) -> np.ndarray:
        """Gradient ∂(w · Σ_i A^i)/∂r_k, shape (N, 3), Å^-2 per unit of w (a gradient, not a force).

        Large structures are processed in spatial chunks of about ``chunk_size`` centres (with a
        halo of r_cut), so memory stays bounded; contributions are added back to the parent atoms.

        Parameters
        ----------
        atoms
            Periodic or isolated structure.
        w
            Weights, shape (dim,), in n-major component order.
        chunk_size
            Centres per spatial chunk for large structures.
        """
        self.check_atoms(atoms)
        w = self.check_weights(w)
        if len(atoms) <= chunk_size:
            return self._vjp_centers(atoms, np.arange(len(atoms)), w)[0]
        grad = np.zeros((len(atoms), 3))
        for sub, n_centers in iter_spatial_chunks(atoms, self.r_cut, chunk_size):
            sub_grad = self._vjp_centers(sub, np.arange(n_centers), w)[0]
            parent = sub.arrays["parent_index"]
            for axis in range(3):
                grad[:, axis] += np.bincount(parent, sub_grad[:, axis], minlength=len(atoms))
        return grad

    def strain_gradient(self, atoms: Atoms, w: np.ndarray, chunk_size: int = 20_000) -> np.ndarray:
        """∂(w · Σ_i A^i)/∂ε, shape (3, 3), Å^-1 per unit of w: Σ_ij (∂E/∂r_ij) ⊗ r_ij over
        the neighbour pairs (the same pair gradients as :meth:`vjp`), in spatial chunks for
        large structures."""
        self.check_atoms(atoms)
        w = self.check_weights(w)
        if len(atoms) <= chunk_size:
            return self._vjp_centers(atoms, np.arange(len(atoms)), w, virial=True)[1]
        return sum(
            self._vjp_centers(sub, np.arange(n_centers), w, virial=True)[1]
            for sub, n_centers in iter_spatial_chunks(atoms, self.r_cut, chunk_size)
        )

    # ------------------------------------------------------------------ numerics
    def _expansion(self, g: np.ndarray, u: np.ndarray) -> np.ndarray:
        """c_nλm = Σ_j g_n(r_j) Y_λm(r̂_j), shape (M, (l_max+1)², n_max), from g (M, K, n)."""
        # component-major Y keeps every harmonic's row contiguous while it is written; the
        # transposed view is still a valid strided operand for the batched BLAS product
        Y = real_spherical_harmonics(u, self.l_max, axis=0)  # ((l+1)², M, K)
        return np.matmul(Y.transpose(1, 0, 2), g)

    def _features(self, coeffs: np.ndarray, g: np.ndarray) -> np.ndarray:
        """A_{n,l} = ½ [Σ_λ c_lλ 4π/(2λ+1) p_nλ - Σ_j g_n²], shape (M, n_max, l_max+1).

        p_nλ = Σ_m c_nλm² and the sum over λ are one matrix product: Σ_λm c_nλm² K[λm, l] with
        K[λm, l] = kernel[λ, l] (one BLAS call instead of a segmented reduction, 3x faster).
        """
        squared = coeffs * coeffs  # (M, (l+1)², n)
        ordered = np.matmul(squared.transpose(0, 2, 1), self._kernel_by_component)  # (M, n, l)
        diagonal = np.einsum("mkn,mkn->mn", g, g)  # Σ_j g_n(r_j)², (M, n)
        return 0.5 * (ordered - diagonal[:, :, None])

    def _vjp_centers(
        self, atoms: Atoms, centers: np.ndarray, w: np.ndarray, virial: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Gradient of w · Σ_{i in centers} A^i with respect to every position, shape (N, 3),
        and with ``virial`` its strain gradient Σ_ij g_ij ⊗ r_ij, shape (3, 3) (else None)."""
        w_nl = w.reshape(self.n_max, self.l_max + 1)
        # E = Σ_i [Σ_nλ U_nλ p^i_nλ - ½ Σ_n v_n Σ_j g_n(r_ij)²]
        U = 0.5 * w_nl @ self.kernel.T  # (n, λ)
        v = w_nl.sum(axis=1)  # (n,)
        U_cols = U[:, self._degree].T  # ((l+1)², n)
        pairs = neighbor_pairs(atoms, self.r_cut, centers)
        layout = _PaddedPairs(pairs, len(atoms), centers, self.r_cut)

        def work(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            d, u, slot = layout.gather(rows)
            g, dg = self.radial(d, derivative=True)  # (M, K, n)
            Y = real_spherical_harmonics(u, self.l_max, axis=0)  # ((l+1)², M, K)
            H = 2.0 * np.matmul(Y.transpose(1, 0, 2), g) * U_cols  # ∂E/∂c_nλm, (M, (l+1)², n)
            # per slot: a_λm = Σ_n H_nλm g_n(r) (angular part), b_λm = Σ_n H_nλm g'_n(r) (radial)
            a = np.matmul(H, g.transpose(0, 2, 1))  # (M, (l+1)², K)
            b = np.matmul(H, dg.transpose(0, 2, 1))
            radial = np.einsum("mck,cmk->mk", b, Y) - (g * dg) @ v
            tangent = real_spherical_harmonics_vjp(u, self.l_max, a, axis=1)
            tangent -= np.sum(tangent * u, axis=-1, keepdims=True) * u
            dE_dD = radial[..., None] * u + tangent / d[..., None]  # (M, K, 3)
            valid = slot >= 0
            return slot[valid], dE_dD[valid]

        grad = np.zeros((len(atoms), 3))
        strain = np.zeros((3, 3)) if virial else None
        for p, dE_dD in threaded_map(work, layout.batches(self.pair_batch, self.n_threads), self.n_threads):
            i, j = pairs.i[p], pairs.j[p]
            for axis in range(3):
                grad[:, axis] += np.bincount(j, dE_dD[:, axis], minlength=len(atoms))
                grad[:, axis] -= np.bincount(i, dE_dD[:, axis], minlength=len(atoms))
            if strain is not None:
                strain += dE_dD.T @ pairs.D[p]  # r_ij -> (I + ε) r_ij
        return grad, strain

    @property
    def species(self) -> list[str] | None:
        """Chemical symbols the provider accepts (None: any)."""
        return None if self._species is None else list(self._species)


class _PaddedPairs:
    """Neighbour pairs of selected centres laid out as (centre, slot) arrays padded to K slots.

    Batched matrix products need a common neighbour count; padding slots get d = r_cut and
    u = ẑ, where g_n and dg_n/dr vanish exactly, so they contribute nothing.

    Parameters
    ----------
    pairs
        Directed pairs sorted by centre (from :func:`.neighbors.neighbor_pairs`).
    n_atoms
        Number of atoms of the structure.
    centers
        Centre indices (M,); rows of the layout follow this order.
    r_cut
        Cut-off, Å.
    """

    def __init__(self, pairs: Pairs, n_atoms: int, centers: np.ndarray, r_cut: float):
        counts = np.bincount(pairs.i, minlength=n_atoms)
        self.start = (np.cumsum(counts) - counts)[centers]
        self.counts = counts[centers]
        self.k_max = int(self.counts.max()) if len(centers) else 0
        self.pairs = pairs
        self.unit = pairs.D / pairs.d[:, None] if len(pairs.d) else np.zeros((0, 3))
        self.r_cut = r_cut
        self.n_centers = len(centers)

    def batches(self, pair_batch: int, n_threads: int = 1) -> list[np.ndarray]:
        """Row ranges (into ``centers``) of at most ``pair_batch`` padded slots each, and at
        least 4 per thread when there are enough centres (so small cells use every core)."""
        if self.k_max == 0:
            return []
        per_batch = max(1, min(pair_batch // self.k_max, -(-self.n_centers // (4 * n_threads))))
        per_batch = max(per_batch, min(32, pair_batch // self.k_max))
        return [
            np.arange(lo, min(lo + per_batch, self.n_centers))
            for lo in range(0, self.n_centers, per_batch)
        ]

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distances d (M, K) Å, unit vectors u (M, K, 3) and pair indices (M, K) (-1: padding)."""
        slots = np.arange(self.k_max)
        valid = slots[None, :] < self.counts[rows, None]
        slot = np.where(valid, self.start[rows, None] + slots[None, :], -1)
        d = np.where(valid, self.pairs.d[slot], self.r_cut)
        u = np.where(valid[..., None], self.unit[slot], np.array([0.0, 0.0, 1.0]))
        return d, u, slot
