"""A screen for Hessian noise: is a potential smooth enough for harmonic entropies?

Noise in a potential's second derivatives (splines through rounded tables, for instance) does
not average out in a formation entropy: it gives the perfect lattice a false entropy-strain
slope, and the long-range elastic field of a defect then adds ~ln N to S_f (docs/theory.md,
"Tabulated potentials and Hessian noise"). The screen finds it in seconds: the perfect-lattice
entropy per atom s(ε) under tiny isotropic strains ε = k δ (k = -K..K, δ = 1e-5) is a smooth
quadratic for a smooth potential (residuals at round-off, ~1e-12 k_B), while noisy second
derivatives leave residuals orders of magnitude larger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase.build import bulk as ase_bulk

#: Largest residual of s(ε) from its quadratic fit accepted as smooth, k_B per atom.
SMOOTH_RESIDUAL_TOL_KB = 1e-8


@dataclass(frozen=True)
class HessianNoiseScreen:
    """Result of :func:`screen_hessian_noise`.

    Attributes
    ----------
    strains : (M,) array
        Isotropic strains ε of the perfect cells (fractions).
    entropy_per_atom_kB : (M,) array
        Classical harmonic entropy per atom at each strain, k_B (Bloch route, T of the call).
    slope_kB : float
        ds/dε at ε = 0 from the quadratic fit, k_B per atom per unit strain.
    max_residual_kB : float
        Largest |s - quadratic fit|, k_B per atom.
    tolerance_kB : float
        The residual accepted as smooth, k_B per atom.
    """

    strains: np.ndarray
    entropy_per_atom_kB: np.ndarray
    slope_kB: float
    max_residual_kB: float
    tolerance_kB: float

    @property
    def smooth(self) -> bool:
        """True when the residual is within the tolerance: the Hessians are fit for entropies."""
        return self.max_residual_kB <= self.tolerance_kB

    def verdict(self) -> str:
        """One line: pass or fail, with the numbers."""
        state = "smooth" if self.smooth else "NOISY (unfit for harmonic entropies)"
        return (
            f"{state}: perfect-lattice entropy vs strain deviates from a quadratic by "
            f"{self.max_residual_kB:.2e} k_B/atom (tolerance {self.tolerance_kB:.0e}); "
            f"slope ds/dε = {self.slope_kB:.3f} k_B/atom"
        )


def screen_hessian_noise(
    calc: Any,
    element: str,
    lattice: str,
    a0: float,
    n_cells: int = 4,
    n_steps: int = 5,
    step: float = 1e-5,
    temperature: float = 300.0,
    tolerance_kB: float = SMOOTH_RESIDUAL_TOL_KB,
) -> HessianNoiseScreen:
    """Perfect-lattice entropy per atom against tiny strains, and its deviation from a quadratic.

    Parameters
    ----------
    calc
        ASE calculator (with ``get_hessian`` for an analytic Hessian; otherwise phonopy
        displacements are used, which is slower and adds its own finite-difference noise).
    element, lattice, a0
        Chemical symbol, cubic lattice (``"bcc"``, ``"fcc"``, ``"sc"``) and lattice constant (Å).
    n_cells
        Conventional cells per edge of the perfect supercell (its k-grid for the Bloch route).
    n_steps, step
        Strains ε = k ``step`` for k = -``n_steps`` .. ``n_steps``.
    temperature
        K; only shifts s by a constant.
    tolerance_kB
        Largest residual accepted as smooth, k_B per atom.

    Returns
    -------
    HessianNoiseScreen
        Deterministic for a deterministic calculator.
    """
    from .reference import harmonic_entropy

    strains = np.arange(-n_steps, n_steps + 1) * float(step)
    entropies = []
    for strain in strains:
        perfect = ase_bulk(element, lattice, a=a0 * (1.0 + strain), cubic=True).repeat(n_cells)
        result = harmonic_entropy(perfect, calc, temperature=temperature, fmax=None)
        entropies.append(result.entropy_kB / len(perfect))
    entropies = np.array(entropies)
    # fit about the mean so the constant does not swamp the residual's precision
    centred = entropies - entropies.mean()
    coefficients = np.polyfit(strains / step, centred, 2)
    residual = centred - np.polyval(coefficients, strains / step)
    return HessianNoiseScreen(
        strains=strains,
        entropy_per_atom_kB=entropies,
        slope_kB=float(coefficients[1] / step),
        max_residual_kB=float(np.abs(residual).max()),
        tolerance_kB=float(tolerance_kB),
    )
