"""Small, fully analytic ingredients for the calculator and workflow tests.

* :class:`PairDensityDescriptor`: D_i,k = Σ_j (1 - r_ij/r_c)^(k+2), k = 1..3, a smooth local
  descriptor with an analytic vjp written independently of the package's descriptors. It counts
  its evaluations, so tests can check that cached results do no work.
* :func:`exact_total_entropy_kB`: the classical harmonic entropy (Eq. 2) from a
  central-difference Hessian and a dense eigenvalue sum, written plainly.
* :func:`emt_cu_model` / :func:`emt_cu_afs_model`: ``LDMLModel`` (target "total") fitted on exact
  EMT-Cu entropies of eight 31-32 atom cells, the stand-ins for the shipped Fe model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.neighborlist import neighbor_list
from ase.units import _amu, _e, _hbar, kB

from ase_vibentropy.descriptors.base import DescriptorProvider
from ase_vibentropy.model import LDMLModel

CU_A0 = 3.59  # EMT Cu lattice constant, Å (close to its minimum, 3.5903)


class PairDensityDescriptor(DescriptorProvider):
    """D_i,k = Σ_j (1 - r_ij/r_c)^(k+2), k = 1..3: smooth (C²) at r_c, analytic gradient."""

    name = "pair-density-test"
    calls = {"compute": 0, "vjp": 0}

    def __init__(self, r_cut: float = 4.5, species: list[str] | None = None):
        self.r_cut = float(r_cut)
        self._species = species

    @property
    def params(self) -> dict[str, Any]:
        return {"r_cut": self.r_cut, "species": self._species}

    @property
    def dim(self) -> int:
        return 3

    def _compute_centers(self, atoms: Atoms, centers: np.ndarray) -> np.ndarray:
        type(self).calls["compute"] += 1
        i, d = neighbor_list("id", atoms, self.r_cut)
        x = 1.0 - d / self.r_cut
        powers = np.stack([x**3, x**4, x**5], axis=1)
        out = np.zeros((len(atoms), 3))
        np.add.at(out, i, powers)
        return out[centers]

    def vjp(self, atoms: Atoms, w: np.ndarray) -> np.ndarray:
        type(self).calls["vjp"] += 1
        w = self.check_weights(w)
        i, j, d, D = neighbor_list("ijdD", atoms, self.r_cut)
        x = 1.0 - d / self.r_cut
        # d/dr of Σ_k w_k x^(k+2), with dx/dr = -1/r_c.
        g = -(3 * w[0] * x**2 + 4 * w[1] * x**3 + 5 * w[2] * x**4) / self.r_cut
        # D = r_j - r_i (+ shift): ∂r_ij/∂r_j = D/d, ∂r_ij/∂r_i = -D/d.
        contrib = (g / d)[:, None] * D
        grad = np.zeros((len(atoms), 3))
        np.add.at(grad, j, contrib)
        np.add.at(grad, i, -contrib)
        return grad


def central_difference_hessian(atoms: Atoms, calc: Any, step: float = 1e-3) -> np.ndarray:
    """Hessian (3N, 3N) eV/Å² by central differences of ``calc``'s forces, symmetrised."""
    work = atoms.copy()
    work.calc = calc
    n = 3 * len(atoms)
    hessian = np.zeros((n, n))
    for k in range(n):
        a, c = divmod(k, 3)
        for sign in (1, -1):
            work.positions[a, c] = atoms.positions[a, c] + sign * step
            hessian[k] -= sign * work.get_forces().ravel() / (2 * step)
        work.positions[a, c] = atoms.positions[a, c]
    return 0.5 * (hessian + hessian.T)


def exact_total_entropy_kB(atoms: Atoms, calc: Any, temperature: float = 300.0) -> float:
    """Classical harmonic entropy of a periodic cell, k_B (Eq. 2, 3 zero modes dropped)."""
    hessian = central_difference_hessian(atoms, calc)
    inv_sqrt_m = np.repeat(atoms.get_masses() ** -0.5, 3)
    omega2 = np.linalg.eigvalsh(inv_sqrt_m[:, None] * hessian * inv_sqrt_m[None, :])[3:]
    assert omega2.min() > 0, "test structure is not a minimum"
    omega = np.sqrt(omega2 * _e / (1e-20 * _amu))  # rad/s
    return float(np.sum(np.log(kB * temperature / (_hbar / _e * omega)) + 1.0))


def relaxed(atoms: Atoms, fmax: float = 1e-4) -> Atoms:
    """``atoms`` relaxed with EMT at fixed cell (BFGS)."""
    from ase.optimize import BFGS

    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=fmax, steps=500)
    atoms.calc = None
    return atoms


def cu_cell(strain: float = 0.0, vacancy: bool = False) -> Atoms:
    """32-site cubic fcc Cu cell (2x2x2 conventional) under isotropic strain, optional vacancy."""
    atoms = bulk("Cu", "fcc", a=CU_A0 * (1 + strain), cubic=True).repeat(2)
    if vacancy:
        del atoms[0]
    return atoms


@lru_cache(maxsize=None)
def training_structures() -> tuple[tuple[Atoms, float], ...]:
    """Relaxed EMT-Cu cells (perfect and vacancy; strains -1..+2 %) and exact S (k_B)."""
    from ase_vibentropy.harmonic import harmonic_entropy

    out = []
    for strain in (-0.01, 0.0, 0.01, 0.02):
        for atoms in (cu_cell(strain), cu_cell(strain, vacancy=True)):
            atoms = relaxed(atoms)
            # Training labels from the package's phonopy route (symmetry makes it fast); the
            # plain central-difference route above is what tests compare predictions with.
            result = harmonic_entropy(atoms, EMT(), hessian="phonopy", fmax=1e-3)
            out.append((atoms, result.entropy_kB))
    return tuple(out)


def _fit(provider: DescriptorProvider, **kwargs: Any) -> LDMLModel:
    data = training_structures()
    X = np.array([provider.compute_sum(atoms) for atoms, _ in data])
    y = np.array([S for _, S in data])
    n = np.array([len(atoms) for atoms, _ in data])
    model = LDMLModel(target="total", element="Cu", lattice="fcc", a0=CU_A0, **kwargs)
    model.set_params(descriptor=kwargs.get("descriptor", provider))
    return model.fit(X, y, n_atoms=n)


def emt_cu_model(**kwargs: Any) -> LDMLModel:
    """LDMLModel (target "total", analytic test descriptor) on exact EMT-Cu entropies of 8 cells."""
    return _fit(PairDensityDescriptor(), **kwargs)


#: Small AFS used by the workflow tests (a registered descriptor, so the model can be saved).
SMALL_AFS = {"n_max": 2, "l_max": 2, "r_cut": 4.5}


def emt_cu_afs_model() -> LDMLModel:
    """LDMLModel (target "total", AFS(2, 2, 4.5 Å)) on the same exact EMT-Cu entropies."""
    from ase_vibentropy.descriptors import get

    return _fit(get("afs", **SMALL_AFS), descriptor="afs", descriptor_params=dict(SMALL_AFS))
