"""The descriptor-provider protocol shared by every descriptor (SPEC §6-7, issue 3).

A provider maps a structure to per-atom descriptor vectors D_i (N, dim). The LDML model only
needs Σ_i D_i (and, for entropic forces, the gradient of w · Σ_i D_i), so the protocol offers a
streamed sum and a vector-Jacobian product besides the per-atom array.

Subclasses implement :meth:`DescriptorProvider._compute_centers` (descriptors of selected
centre atoms, every atom acting as a neighbour) and, where they have analytic gradients,
:meth:`DescriptorProvider.vjp`. Local descriptors get a bounded-memory :meth:`compute_sum`
for free: the cell is cut into spatial chunks, each evaluated with a halo of ``cutoff``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from ..errors import DescriptorError
from ..structure import check_structure
from .chunks import iter_spatial_chunks


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
    """

    name: ClassVar[str] = ""
    is_local: ClassVar[bool] = True

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
        """Raise a specific error if ``atoms`` cannot be described by this provider."""
        check_structure(atoms)
        species = self.species
        if species is not None:
            unknown = sorted(set(atoms.get_chemical_symbols()) - set(species))
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

    def compute(self, atoms: Atoms) -> np.ndarray:
        """Per-atom descriptors D_i, shape (N, dim)."""
        self.check_atoms(atoms)
        return self._compute_centers(atoms, np.arange(len(atoms)))

    def compute_sum(self, atoms: Atoms, chunk_size: int = 20_000) -> np.ndarray:
        """Σ_i D_i, shape (dim,), without holding the (N, dim) array for large N.

        Local providers evaluate spatial chunks of about ``chunk_size`` centre atoms, each with a
        halo of :attr:`cutoff`, so peak memory is set by one chunk's neighbour list.
        """
        self.check_atoms(atoms)
        if not self.is_local or len(atoms) <= chunk_size:
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

    def _check_weights(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=float)
        if w.shape != (self.dim,):
            raise DescriptorError(f"weights must have shape ({self.dim},), got {w.shape}")
        return w
