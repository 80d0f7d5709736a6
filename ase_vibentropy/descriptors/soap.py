"""SOAP power spectrum backed by featomic (the ``soap`` extra): a provider from a third party.

This module shows how an external library plugs into the registry: it is declared in the
``ase_vibentropy.descriptors`` entry-point group exactly as a third-party package would, and
featomic is imported only when a descriptor is built or evaluated
(:func:`ase_vibentropy._optional.import_optional`), so the package imports without it.

Hyper-parameters (featomic 0.6 names): Gaussian atomic density of width ``atomic_gaussian_width``
(Å), GTO radial basis with ``n_max`` functions (featomic's ``max_radial = n_max - 1``),
``l_max`` = ``max_angular``, a shifted-cosine cut-off smoothing of width
``cutoff_smoothing_width`` (Å) ending at ``r_cut``. Components are featomic's power-spectrum
properties in its order (l, n_1, n_2): dim = n_max² (l_max + 1) (448 by default).

Species: like the AFS provider, the descriptor is element-agnostic (every atom is given the
same type before calling featomic); ``species`` restricts the accepted elements.

Gradients: :meth:`SOAPDescriptor.vjp` contracts featomic's position gradients with w, batch of
centres by batch of centres (featomic stores ∂D_i/∂r_j densely per neighbour, ~8 MB per
centre at the defaults, so the batches keep memory bounded). It is correct but slow
(about 150 atoms/s); the AFS gradient is the fast route.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms

from .._optional import import_optional
from ..errors import DescriptorError
from .afs import validate_species
from .base import DescriptorProvider

#: Atomic number all atoms get before featomic sees them (element-agnostic descriptor).
_AGNOSTIC_TYPE = 1


class SOAPDescriptor(DescriptorProvider):
    """Per-atom SOAP power spectrum from featomic's ``SoapPowerSpectrum``.

    Parameters
    ----------
    n_max
        Number of radial (GTO) functions (>= 1).
    l_max
        Largest angular channel (>= 0).
    r_cut
        Cut-off radius, Å (> 0).
    atomic_gaussian_width
        Width of the Gaussian atomic density, Å (> 0).
    cutoff_smoothing_width
        Width of the shifted-cosine smoothing before r_cut, Å (0 < width <= r_cut).
    species
        Chemical symbols the provider accepts (None: any).
    gradient_batch
        Centres per featomic call in :meth:`vjp` (memory knob, not a descriptor parameter).
    """

    name = "soap"

    def __init__(
        self,
        n_max: int = 8,
        l_max: int = 6,
        r_cut: float = 5.0,
        atomic_gaussian_width: float = 0.3,
        cutoff_smoothing_width: float = 0.5,
        species: Sequence[str] | None = None,
        gradient_batch: int = 32,
    ):
        if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or n_max < 1:
            raise DescriptorError(f"SOAP n_max must be an integer >= 1, got {n_max!r}")
        if isinstance(l_max, bool) or not isinstance(l_max, (int, np.integer)) or l_max < 0:
            raise DescriptorError(f"SOAP l_max must be an integer >= 0, got {l_max!r}")
        for label, value in (("r_cut", r_cut), ("atomic_gaussian_width", atomic_gaussian_width)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise DescriptorError(f"SOAP {label} must be a positive length in Å, got {value!r}")
        if not (0 < cutoff_smoothing_width <= r_cut):
            raise DescriptorError(
                f"SOAP cutoff_smoothing_width must be in (0, r_cut={r_cut}] Å, got {cutoff_smoothing_width!r}"
            )
        self.n_max = int(n_max)
        self.l_max = int(l_max)
        self.r_cut = float(r_cut)
        self.atomic_gaussian_width = float(atomic_gaussian_width)
        self.cutoff_smoothing_width = float(cutoff_smoothing_width)
        self._species = validate_species(species)
        self.gradient_batch = max(1, int(gradient_batch))
        self._calculator = None

    # ------------------------------------------------------------------ protocol
    @property
    def params(self) -> dict[str, Any]:
        """All hyper-parameters (lengths in Å) and ``species``."""
        return {
            "n_max": self.n_max,
            "l_max": self.l_max,
            "r_cut": self.r_cut,
            "atomic_gaussian_width": self.atomic_gaussian_width,
            "cutoff_smoothing_width": self.cutoff_smoothing_width,
            "species": self._species,
        }

    @property
    def dim(self) -> int:
        """n_max² (l_max + 1)."""
        return self.n_max**2 * (self.l_max + 1)

    @property
    def species(self) -> list[str] | None:
        """Chemical symbols the provider accepts (None: any)."""
        return None if self._species is None else list(self._species)

    def calculator(self):
        """The featomic ``SoapPowerSpectrum`` calculator (built once; needs the soap extra)."""
        if self._calculator is None:
            featomic = import_optional("featomic", "soap", "the SOAP descriptor")
            self._calculator = featomic.SoapPowerSpectrum(
                cutoff={
                    "radius": self.r_cut,
                    "smoothing": {"type": "ShiftedCosine", "width": self.cutoff_smoothing_width},
                },
                density={"type": "Gaussian", "width": self.atomic_gaussian_width},
                basis={
                    "type": "TensorProduct",
                    "max_angular": self.l_max,
                    "radial": {"type": "Gto", "max_radial": self.n_max - 1},
                },
            )
        return self._calculator

    def _agnostic(self, atoms: Atoms) -> Atoms:
        """Copy of ``atoms`` with every atom of one type (the descriptor ignores elements).

        An isolated structure is placed in a periodic box with more than r_cut of vacuum on
        every side: no atom sees an image, so the values are unchanged, but featomic then uses
        its cell list (for pbc=False it searches neighbours pairwise, which measured 2x slower
        at 5,000 atoms and ran out of memory for the 26,000-atom chunks of a 128,000-atom cell).
        """
        if atoms.pbc.any():
            return Atoms(
                numbers=np.full(len(atoms), _AGNOSTIC_TYPE),
                positions=atoms.positions,
                cell=atoms.cell,
                pbc=atoms.pbc,
            )
        vacuum = self.r_cut + 1.0
        lo = atoms.positions.min(axis=0)
        extent = atoms.positions.max(axis=0) - lo
        return Atoms(
            numbers=np.full(len(atoms), _AGNOSTIC_TYPE),
            positions=atoms.positions - lo + vacuum,
            cell=np.diag(extent + 2 * vacuum),
            pbc=True,
        )

    def _run(self, atoms: Atoms, centers: np.ndarray, gradients: bool):
        metatensor = import_optional("metatensor", "soap", "the SOAP descriptor")
        selection = metatensor.Labels(
            ["system", "atom"],
            np.column_stack([np.zeros(len(centers)), centers]).astype(np.int32),
        )
        result = self.calculator().compute(
            self._agnostic(atoms),
            selected_samples=selection,
            gradients=["positions"] if gradients else None,
        )
        return result.block(0)

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        """Power spectra of the atoms ``centers`` (M,), shape (M, dim), featomic's units."""
        centers = np.asarray(centers, dtype=np.intp)
        out = np.zeros((len(centers), self.dim))
        if len(centers) == 0:
            return out
        block = self._run(atoms, centers, gradients=False)
        row = np.full(len(atoms), -1)
        row[centers] = np.arange(len(centers))
        out[row[block.samples.column("atom")]] = block.values
        return out

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        """Gradient ∂(w · Σ_i D_i)/∂r_k, shape (N, 3), per Å (a gradient, not a force).

        Parameters
        ----------
        atoms
            Periodic or isolated structure.
        w
            Weights, shape (dim,), in featomic's property order (l, n_1, n_2).
        """
        self.check_atoms(atoms)
        w = self.check_weights(w)
        grad = np.zeros((len(atoms), 3))
        for lo in range(0, len(atoms), self.gradient_batch):
            centers = np.arange(lo, min(lo + self.gradient_batch, len(atoms)))
            gradient = self._run(atoms, centers, gradients=True).gradient("positions")
            contribution = gradient.values @ w  # (n_gradient_samples, 3)
            moved = gradient.samples.column("atom")
            for axis in range(3):
                grad[:, axis] += np.bincount(moved, contribution[:, axis], minlength=len(atoms))
        return grad
