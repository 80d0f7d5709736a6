"""The descriptor-provider protocol shared by every descriptor.

A provider maps a structure to per-atom descriptor vectors D_i (N, dim). The LDML model only
needs Σ_i D_i (and, for entropic forces, the gradient of w · Σ_i D_i), so the protocol offers a
streamed sum and a vector-Jacobian product besides the per-atom array.

Subclasses implement :meth:`DescriptorProvider._compute_centers` (descriptors of selected
centre atoms, every atom acting as a neighbour) and, where they have analytic gradients,
:meth:`DescriptorProvider.vjp`. Local descriptors get a bounded-memory :meth:`compute_sum`
for free: the cell is cut into spatial chunks, each evaluated with a halo of ``cutoff``.

Perfect-lattice shortcut
------------------------
In a perfect Bravais lattice every atom has the same environment, so a local descriptor gives
Σ_i D_i = N D_perfect, with D_perfect the descriptor of one atom of that lattice, computed on a
small cell of the same primitive vectors. The bulk reference of a formation entropy (Eq. 15) is
such a lattice and has as many atoms as the defect cell: the shortcut makes its sum cost one small
cell instead of a second pass over 10^6 atoms. :func:`bravais_basis` proves the structure is a
lattice before it is used (see there); anything else takes the ordinary route.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from ..errors import DescriptorError
from ..structure import check_structure, distinct_symbols, periodicity
from .chunks import iter_spatial_chunks, rows_times

#: Largest distance, Å, of an atom from the lattice point it is taken for by the perfect-lattice
#: shortcut. The descriptors are smooth, so this moves Σ D by ~1e-9 relative at most.
LATTICE_TOLERANCE_A = 1e-8


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal parameters give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class DescriptorProvider(ABC):
    """Base class of per-atom descriptor providers.

    Class attributes
    ----------------
    name : str
        Registry name (``"afs"``, ``"bso4"``, ...).
    is_local : bool
        True when D_i depends only on neighbours within :attr:`cutoff` (enables chunking).
    whole_structure : bool
        True when evaluating a whole structure at once already takes memory proportional to
        its bonds, a few floats each: passes then never cut it into chunks, whose halos of
        :attr:`cutoff` would repeat work (:meth:`needs_chunks`).
    """

    name: ClassVar[str] = ""
    is_local: ClassVar[bool] = True
    whole_structure: ClassVar[bool] = False

    def needs_chunks(self, n_atoms: int, chunk_size: int) -> bool:
        """Whether a pass over ``n_atoms`` atoms is cut into spatial chunks of ``chunk_size``
        centres: local providers on larger structures, unless :attr:`whole_structure`."""
        return self.is_local and not self.whole_structure and n_atoms > chunk_size

    # ------------------------------------------------------------------ parameters
    @property
    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Complete, JSON-serialisable parameter set; ``get(name, **params)`` rebuilds it."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Number of descriptor components."""

    @property
    def cutoff(self) -> float:
        """Radius of the atomic environment, Å (``inf`` for global descriptors)."""
        return float(self.params.get("r_cut", np.inf))

    @property
    def species(self) -> list[str] | None:
        """Chemical symbols the provider is configured for (None: any)."""
        species = self.params.get("species")
        return None if species is None else list(species)

    @property
    def hash(self) -> str:
        """Hex digest identifying name and parameters (16 hex characters of sha256)."""
        payload = canonical_json({"name": self.name, "params": self.params})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ evaluation
    def check_atoms(self, atoms: Atoms) -> None:
        """Raise a specific error if ``atoms`` cannot be described by this provider:
        :func:`~ase_vibentropy.structure.check_structure`, then :meth:`check_compatible`."""
        check_structure(atoms)
        self.check_compatible(atoms)

    def check_compatible(self, atoms: Atoms) -> None:
        """This provider's own checks of a structure that passed
        :func:`~ase_vibentropy.structure.check_structure` (default: its species); a stack runs
        the structure check once and every part's own checks."""
        species = self.species
        if species is not None:
            unknown = sorted(distinct_symbols(atoms) - set(species))
            if unknown:
                raise DescriptorError(
                    f"{self.name} descriptor is configured for species {species} but the "
                    f"structure contains {unknown}: build it with species including them"
                )

    @abstractmethod
    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """Descriptors of the atoms ``centers`` (indices, shape (M,)), every atom a neighbour.

        Returns an array of shape (M, dim). ``atoms`` has been checked already.
        """

    def compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """Descriptors of the atoms ``centers`` (indices, shape (M,)), shape (M, dim), every
        atom of ``atoms`` acting as a neighbour (a spatial chunk with its halo, or a whole
        structure). ``atoms`` must have passed :meth:`check_atoms`; subclasses implement
        :meth:`_compute_centers`."""
        return self._compute_centers(atoms, np.asarray(centers))

    def compute(self, atoms: Atoms) -> np.ndarray:
        """Per-atom descriptors D_i, shape (N, dim)."""
        self.check_atoms(atoms)
        return self._compute_centers(atoms, np.arange(len(atoms)))

    def compute_sum(
        self, atoms: Atoms, chunk_size: int = 20_000, lattice_shortcut: bool = True
    ) -> np.ndarray:
        """Σ_i D_i, shape (dim,), without holding the (N, dim) array for large N.

        Local providers evaluate spatial chunks of about ``chunk_size`` centre atoms, each with a
        halo of :attr:`cutoff`, so peak memory is set by one chunk's neighbour list. With
        ``lattice_shortcut``, a perfect Bravais lattice costs one small cell
        (:func:`perfect_lattice_sum`), under the same condition as
        :func:`ase_vibentropy.parallel.descriptor_pass`, the path the package itself uses (in
        parallel, on Dask, with per-atom projections).
        """
        self.check_atoms(atoms)
        if lattice_shortcut:
            total = perfect_lattice_sum(self, atoms, checked=True)
            if total is not None:
                return total
        if not self.needs_chunks(len(atoms), chunk_size):
            return self._compute_centers(atoms, np.arange(len(atoms))).sum(axis=0)
        total = np.zeros(self.dim)
        for sub_atoms, n_centers in iter_spatial_chunks(atoms, self.cutoff, chunk_size):
            total += self._compute_centers(sub_atoms, np.arange(n_centers)).sum(axis=0)
        return total

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """Gradient ∂(w · Σ_i D_i)/∂r_k, shape (N, 3), units of D per Å (a gradient, not a force).

        Parameters
        ----------
        w
            Weights, shape (dim,).
        """
        raise NotImplementedError(f"the {self.name} descriptor has no analytic gradient")

    @property
    def has_gradient(self) -> bool:
        """True when :meth:`vjp` is implemented."""
        return type(self).vjp is not DescriptorProvider.vjp

    def strain_gradient(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """∂(w · Σ_i D_i)/∂ε_ab under the homogeneous strain r -> (I + ε) r of cell and
        positions, shape (3, 3), units of D (the virial of w · Σ D; symmetric for rotation
        invariant descriptors). For a pair-resolved gradient g_ij = ∂E/∂r_ij it is
        Σ_ij g_ij ⊗ r_ij.

        Parameters
        ----------
        w
            Weights, shape (dim,).
        """
        raise NotImplementedError(f"the {self.name} descriptor has no analytic strain gradient")

    @property
    def has_strain_gradient(self) -> bool:
        """True when :meth:`strain_gradient` is implemented."""
        return type(self).strain_gradient is not DescriptorProvider.strain_gradient

    def check_weights(self, w: np.ndarray) -> np.ndarray:
        """``w`` as a float array of shape (dim,), else :class:`DescriptorError`."""
        w = np.asarray(w, dtype=float)
        if w.shape != (self.dim,):
            raise DescriptorError(f"weights must have shape ({self.dim},), got {w.shape}")
        return w


# --------------------------------------------------------------------------- perfect lattices
def bravais_basis(atoms: Atoms, tol: float = LATTICE_TOLERANCE_A) -> np.ndarray | None:
    """Primitive vectors (3, 3), Å (rows), if ``atoms`` is a perfect one-element Bravais lattice.

    Returns None otherwise (isolated structures, several elements, defects, displacements larger
    than ``tol`` Å, a lattice with a basis).

    The proof, O(N): take g_1, g_2, g_3, the shortest independent vectors from atom 0 to the
    others (successive minima, a basis of any 3D lattice). Accept when (i) the cell vectors are
    integer combinations of the g_k, so the g-lattice G contains the cell's lattice and G / cell
    has |det C| / |det g| points, (ii) that count is N, and (iii) every atom lies within ``tol``
    of a point of G. The atoms are distinct modulo the cell (``check_structure`` refuses
    overlaps), so N of them on N points fill G: the structure is that lattice, and every atom
    has the same environment.
    """
    if periodicity(atoms) != "periodic" or len(np.unique(atoms.numbers)) != 1:
        return None
    n_atoms = len(atoms)
    cell = atoms.cell.array
    if n_atoms == 1:
        return cell.copy()
    frac = rows_times(atoms.positions, np.linalg.inv(cell))
    rel = frac - frac[0]
    rel -= np.round(rel)
    cart = rows_times(rel, cell)
    length2 = np.einsum("ij,ij->i", cart, cart)
    length2[0] = np.inf
    n_candidates = min(n_atoms - 1, 64)
    candidates = np.argpartition(length2, n_candidates - 1)[:n_candidates]
    candidates = candidates[np.argsort(length2[candidates], kind="stable")]
    picked: list[int] = []
    scale = np.sqrt(length2[candidates[0]])
    for c in candidates:
        trial = cart[picked + [c]]
        if np.linalg.matrix_rank(trial, tol=1e-6 * scale) == len(picked) + 1:
            picked.append(int(c))
            if len(picked) == 3:
                break
    if len(picked) < 3:
        return None
    g_frac = rel[picked]
    g_cart = cart[picked]
    det = abs(np.linalg.det(g_frac))
    if det == 0 or abs(det * n_atoms - 1.0) > 1e-6:
        return None
    cell_in_g = np.linalg.inv(g_frac)  # rows: cell vectors in the g basis
    if np.abs(cell_in_g - np.round(cell_in_g)).max() > 1e-6:
        return None
    coords = rows_times(rel, cell_in_g)
    off = rows_times(coords - np.round(coords), g_cart)
    if np.einsum("ij,ij->i", off, off).max() > tol * tol:
        return None
    return g_cart


def perfect_lattice_descriptor(provider: DescriptorProvider, basis: np.ndarray, number: int) -> np.ndarray:
    """D_perfect, shape (dim,): the descriptor of one atom of the Bravais lattice ``basis`` (3, 3) Å
    of element ``number``, evaluated on a small periodic cell (the primitive cell repeated until
    every plane spacing exceeds twice the cut-off)."""
    heights = 1.0 / np.linalg.norm(np.linalg.inv(basis).T, axis=1)
    repeats = np.maximum(1, np.ceil(2.0 * provider.cutoff / heights)).astype(int)
    small = Atoms(numbers=[number], positions=[[0.0, 0.0, 0.0]], cell=basis, pbc=True).repeat(repeats)
    return provider._compute_centers(small, np.array([0]))[0]


def perfect_lattice_sum(
    provider: DescriptorProvider, atoms: Atoms, checked: bool = False
) -> np.ndarray | None:
    """Σ_i D_i = N D_perfect, shape (dim,), when ``atoms`` is a perfect Bravais lattice and the
    provider is local; None otherwise (then compute the sum directly).

    Parameters
    ----------
    provider
        Descriptor provider; only local ones (:attr:`DescriptorProvider.is_local`) qualify.
    atoms
        Candidate structure.
    checked
        ``atoms`` already passed :meth:`DescriptorProvider.check_atoms`.
    """
    if not provider.is_local or not np.isfinite(provider.cutoff):
        return None
    if not checked:
        provider.check_atoms(atoms)
    basis = bravais_basis(atoms)
    if basis is None:
        return None
    return len(atoms) * perfect_lattice_descriptor(provider, basis, int(atoms.numbers[0]))
