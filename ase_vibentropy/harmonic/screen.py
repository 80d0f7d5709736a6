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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bulk import perfect_cubic_supercell

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
    hessian: str = "auto",
    fd_step: float | None = None,
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
    hessian
        Hessian route (:func:`~ase_vibentropy.harmonic.compute_hessian` methods): ``"auto"``
        is ``analytic`` for a calculator with ``get_hessian``, else phonopy displacements.
    fd_step
        Displacement of phonopy Hessians, Å (None: the package default); the potential's own
        labelling step, so that the screen sees the Hessians the labels use.

    Returns
    -------
    HessianNoiseScreen
        Deterministic for a deterministic calculator.
    """
    from .reference import harmonic_entropy

    if hessian == "auto":
        hessian = "analytic" if hasattr(calc, "get_hessian") else "phonopy"
    strains = np.arange(-n_steps, n_steps + 1) * float(step)
    entropies = []
    for strain in strains:
        perfect = perfect_cubic_supercell(element, lattice, a0 * (1.0 + strain), n_cells)
        result = harmonic_entropy(perfect, calc, temperature=temperature, hessian=hessian, fmax=None,
                                  step=fd_step)
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


#: Finite-difference steps the step-sensitivity check tries, Å (largest first).
FD_STEPS_A = (1e-2, 1e-3, 1e-4)

#: Largest change of the perfect-lattice entropy per atom accepted between a finite-difference
#: Hessian and the reference one (analytic, or the next smaller step), k_B per atom.
FD_AGREEMENT_TOL_KB = 1e-5


@dataclass(frozen=True)
class PotentialCheck:
    """Everything :func:`check_potential` measures, and its verdict.

    Attributes
    ----------
    name, element, lattice, a0
        The potential and its crystal (a0 in Å).
    hessian_method : str
        The reference Hessian route of the potential: ``analytic`` or ``phonopy``.
    strain : HessianNoiseScreen
        The perfect-lattice entropy against tiny strains (the noise screen).
    fd_steps_A, fd_entropy_kB : tuple of float
        Finite-difference steps (Å) and the perfect-lattice entropy per atom with each (k_B).
    fd_reference_kB : float
        The entropy per atom of the reference Hessian route, k_B.
    safe_fd_step_A : float or None
        Largest step whose entropy is within :data:`FD_AGREEMENT_TOL_KB` of the reference
        (None: no step is).
    n_zero_modes : int
        Modes with |ω²| below 1e-8 of the largest (3 expected: translations).
    lowest_omega2 : float
        Lowest ω² above the zero modes, eV/(Å² amu) (> 0 for a stable lattice).
    seconds : float
        Wall time of the check.
    """

    name: str
    element: str
    lattice: str
    a0: float
    hessian_method: str
    strain: HessianNoiseScreen
    fd_steps_A: tuple[float, ...]
    fd_entropy_kB: tuple[float, ...]
    fd_reference_kB: float
    safe_fd_step_A: float | None
    n_zero_modes: int
    lowest_omega2: float
    seconds: float = field(default=0.0, compare=False)

    @property
    def problems(self) -> list[str]:
        """What fails, one line each (empty when the potential passes)."""
        out = []
        if not self.strain.smooth:
            out.append(
                f"noisy Hessians: the perfect-lattice entropy deviates from a smooth function of "
                f"strain by {self.strain.max_residual_kB:.2e} k_B/atom (tolerance "
                f"{self.strain.tolerance_kB:.0e}); formation entropies will grow with the cell"
            )
        if self.n_zero_modes != 3:
            out.append(f"{self.n_zero_modes} zero modes in the perfect lattice instead of 3 (translations)")
        if not self.lowest_omega2 > 0:
            out.append(f"the perfect lattice is unstable: lowest ω² = {self.lowest_omega2:.3g} eV/(Å² amu)")
        if self.hessian_method != "analytic" and self.safe_fd_step_A is None:
            out.append("no finite-difference step gives a step-independent entropy")
        return out

    @property
    def passed(self) -> bool:
        """True when the Hessians are fit for harmonic entropies."""
        return not self.problems

    def verdict(self) -> str:
        """One line: PASS or FAIL and why."""
        if self.passed:
            return (f"PASS: {self.name} gives smooth {self.hessian_method} Hessians for {self.lattice} "
                    f"{self.element} (strain residual {self.strain.max_residual_kB:.1e} k_B/atom)")
        return f"FAIL: {self.name}: " + "; ".join(self.problems)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (k_B, Å, eV/(Å² amu))."""
        return {
            "potential": self.name, "element": self.element, "lattice": self.lattice, "a0_A": self.a0,
            "hessian_method": self.hessian_method, "passed": self.passed, "problems": self.problems,
            "strain_residual_kB": self.strain.max_residual_kB, "strain_tolerance_kB": self.strain.tolerance_kB,
            "entropy_strain_slope_kB": self.strain.slope_kB,
            "strains": self.strain.strains.tolist(),
            "entropy_per_atom_kB": self.strain.entropy_per_atom_kB.tolist(),
            "fd_steps_A": list(self.fd_steps_A), "fd_entropy_per_atom_kB": list(self.fd_entropy_kB),
            "reference_entropy_per_atom_kB": self.fd_reference_kB, "safe_fd_step_A": self.safe_fd_step_A,
            "n_zero_modes": self.n_zero_modes, "lowest_omega2": self.lowest_omega2, "seconds": self.seconds,
        }


def check_potential(
    potential: Any,
    lattice: str | None = None,
    a0: float | None = None,
    n_cells: int | None = None,
    temperature: float = 300.0,
) -> PotentialCheck:
    """Is ``potential`` fit for harmonic entropies? The Hessian-noise screen, finite-difference
    step sensitivity, zero modes and the lowest ω² of its perfect lattice, in seconds.

    Parameters
    ----------
    potential
        A :class:`~ase_vibentropy.potentials.Potential` (built-in or a user spec).
    lattice, a0
        Crystal to check (default the potential's own lattice and a0, Å).
    n_cells
        Conventional cells per edge of the perfect cells (default 4 with an analytic Hessian,
        3 for phonopy, whose displacements cost more).
    temperature
        K (shifts the entropies by a constant only).

    Returns
    -------
    PotentialCheck
        Deterministic for a deterministic calculator.
    """
    import time

    from .hessian import compute_hessian
    from .reference import harmonic_entropy

    start = time.perf_counter()
    lattice = potential.lattice if lattice is None else lattice
    if a0 is None and lattice != potential.lattice:
        from ..errors import InvalidOptionError

        raise InvalidOptionError(
            f"{potential.name} is a {potential.lattice} potential: give the lattice constant of "
            f"its {lattice} lattice (a0, Å) to check that lattice"
        )
    a0 = float(potential.a0 if a0 is None else a0)
    method = "analytic" if potential.analytic_hessian else "phonopy"
    n_cells = (4 if method == "analytic" else 3) if n_cells is None else int(n_cells)
    calc = potential.hessian_calculator()
    strain = screen_hessian_noise(calc, potential.element, lattice, a0, n_cells=n_cells,
                                  n_steps=5 if method == "analytic" else 3, temperature=temperature,
                                  fd_step=potential.fd_step)
    # step sensitivity on a 3-cell lattice (phonopy displacements dominate the cost)
    perfect = perfect_cubic_supercell(potential.element, lattice, a0, 3)
    reference = harmonic_entropy(perfect, calc, temperature=temperature, fmax=None, solver="bloch",
                                 step=potential.fd_step)
    per_atom = reference.entropy_kB / len(perfect)
    fd = []
    for step in FD_STEPS_A:
        hessian = compute_hessian(perfect, calc, method="phonopy", step=step)
        fd.append(harmonic_entropy(perfect, calc, temperature=temperature, hessian=hessian,
                                   fmax=None, solver="bloch").entropy_kB / len(perfect))
    if method == "analytic":
        agree = [abs(s - per_atom) <= FD_AGREEMENT_TOL_KB for s in fd]
    else:  # each step against the next smaller one
        agree = [abs(a - b) <= FD_AGREEMENT_TOL_KB for a, b in zip(fd[:-1], fd[1:])] + [False]
    safe = next((step for step, ok in zip(FD_STEPS_A, agree) if ok), None)
    omega2 = np.sort(np.asarray(reference.omega2))
    scale = float(np.abs(omega2).max())
    zero = np.abs(omega2) <= 1e-8 * scale
    return PotentialCheck(
        name=potential.name, element=potential.element, lattice=lattice, a0=a0,
        hessian_method=method, strain=strain, fd_steps_A=FD_STEPS_A, fd_entropy_kB=tuple(fd),
        fd_reference_kB=per_atom, safe_fd_step_A=safe, n_zero_modes=int(zero.sum()),
        lowest_omega2=float(omega2[~zero].min()) if (~zero).any() else 0.0,
        seconds=time.perf_counter() - start,
    )
