"""Builders of the defect database: atom counts, geometry, and Wigner-Seitz finding what was built."""

from __future__ import annotations

import numpy as np
import pytest
from ase.geometry import get_distances

from ase_vibentropy.data import builders
from ase_vibentropy.data.analysis import wigner_seitz
from ase_vibentropy.errors import InvalidStructureError, UnknownNameError

A0_FE = 2.855324


def _min_distance(atoms) -> float:
    _, d = get_distances(atoms.positions, cell=atoms.cell, pbc=True)
    np.fill_diagonal(d, np.inf)
    return float(d.min())


@pytest.mark.parametrize(("lattice", "per_cell", "nn_factor"), [("bcc", 2, np.sqrt(3) / 2), ("fcc", 4, 1 / np.sqrt(2))])
def test_perfect_lattice_has_atoms_per_cell_times_n_cubed_and_textbook_neighbour_distance(lattice, per_cell, nn_factor):
    atoms = builders.perfect_lattice("Fe", lattice, A0_FE, 3)
    assert len(atoms) == per_cell * 27
    assert np.allclose(atoms.cell, np.eye(3) * 3 * A0_FE)
    assert _min_distance(atoms) == pytest.approx(nn_factor * A0_FE, rel=1e-12)
    assert builders.nearest_neighbour_distance(lattice, A0_FE) == pytest.approx(nn_factor * A0_FE)


def test_unknown_lattice_is_named():
    with pytest.raises(UnknownNameError, match="hcp"):
        builders.perfect_lattice("Fe", "hcp", A0_FE, 2)


def test_isotropic_strain_scales_volume_by_cube_and_keeps_fractional_positions():
    atoms = builders.perfect_lattice("Fe", "bcc", A0_FE, 2)
    strained = builders.apply_strain(atoms, 0.02)
    assert strained.get_volume() == pytest.approx(atoms.get_volume() * 1.02**3, rel=1e-12)
    assert np.allclose(strained.get_scaled_positions(), atoms.get_scaled_positions())


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_compact_vacancy_cluster_removes_n_sites_that_wigner_seitz_finds(n, rng):
    perfect = builders.perfect_lattice("Fe", "bcc", A0_FE, 4)
    defect = builders.vacancy_cluster(perfect, n, rng)
    assert len(defect) == len(perfect) - n
    ws = wigner_seitz(defect, perfect)
    assert ws.n_vacancies == n and ws.n_interstitials == 0
    # Independent expectation: the empty sites are exactly the perfect positions no atom occupies.
    _, d = get_distances(perfect.positions, defect.positions, cell=perfect.cell, pbc=True)
    empty = np.flatnonzero(d.min(axis=1) > 1e-8)
    assert sorted(ws.vacancy_sites.tolist()) == sorted(empty.tolist())


def test_compact_divacancy_in_bcc_is_a_first_neighbour_pair(rng):
    perfect = builders.perfect_lattice("Fe", "bcc", A0_FE, 4)
    ws = wigner_seitz(builders.vacancy_cluster(perfect, 2, rng), perfect)
    (a, b) = ws.vacancy_positions
    d = builders.minimum_image(a - b, perfect.cell)
    assert np.linalg.norm(d) == pytest.approx(np.sqrt(3) / 2 * A0_FE)


def test_scattered_vacancies_depend_on_the_seed_and_are_reproducible():
    perfect = builders.perfect_lattice("Fe", "bcc", A0_FE, 4)
    first = builders.vacancy_cluster(perfect, 3, np.random.default_rng(1), "scattered")
    again = builders.vacancy_cluster(perfect, 3, np.random.default_rng(1), "scattered")
    other = builders.vacancy_cluster(perfect, 3, np.random.default_rng(2), "scattered")
    assert np.array_equal(first.positions, again.positions)
    assert not np.array_equal(first.positions, other.positions)


@pytest.mark.parametrize("kind", ["dumbbell", "crowdion"])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_interstitial_cluster_adds_n_atoms_that_wigner_seitz_finds(kind, n, rng):
    perfect = builders.perfect_lattice("Fe", "bcc", A0_FE, 4)
    defect = builders.interstitial_cluster(perfect, n, "bcc", rng, kind=kind)
    assert len(defect) == len(perfect) + n
    ws = wigner_seitz(defect, perfect)
    assert ws.n_interstitials == n and ws.n_vacancies == 0
    assert _min_distance(defect) > 0.5


def test_bcc_dumbbell_is_split_along_110_about_its_site():
    perfect = builders.perfect_lattice("Fe", "bcc", A0_FE, 3)
    axis = np.array([1.0, 1.0, 0.0])
    defect = builders.interstitial_cluster(perfect, 1, "bcc", np.random.default_rng(0), direction=axis)
    ws = wigner_seitz(defect, perfect)
    pair = defect.positions[ws.defect_atoms]
    separation = builders.minimum_image(pair[0] - pair[1], defect.cell)
    assert np.allclose(np.cross(separation, axis), 0.0, atol=1e-12)
    midpoint = pair[1] + separation / 2
    site = ws.interstitial_positions[0]
    assert np.allclose(builders.minimum_image(midpoint - site, defect.cell), 0.0, atol=1e-12)


def test_bcc_crowdion_sits_midway_between_first_neighbours_on_111():
    perfect = builders.perfect_lattice("Fe", "bcc", A0_FE, 3)
    defect = builders.interstitial_cluster(
        perfect, 1, "bcc", np.random.default_rng(0), kind="crowdion", direction=[1, 1, 1]
    )
    extra = defect.positions[-1]
    # Two perfect sites at a0 √3/4 from the extra atom, both on its <111> line.
    d = np.linalg.norm(builders.minimum_image(perfect.positions - extra, perfect.cell), axis=1)
    assert np.sum(np.isclose(d, np.sqrt(3) / 4 * A0_FE)) == 2


def test_frenkel_damage_keeps_atom_count_and_makes_equal_numbers_of_vacancies_and_interstitials():
    perfect = builders.perfect_lattice("Fe", "bcc", A0_FE, 4)
    clearance = 0.6 * np.cbrt(perfect.get_volume() / len(perfect))
    for seed in range(4):
        damaged = builders.frenkel_damage(perfect, 10, np.random.default_rng(seed))
        assert len(damaged) == len(perfect)
        ws = wigner_seitz(damaged, perfect)
        assert ws.n_vacancies == ws.n_interstitials
        assert 1 <= ws.n_vacancies <= 10
        assert _min_distance(damaged) >= clearance - 1e-9


def test_cascade_core_only_moves_atoms_inside_its_sphere():
    perfect = builders.perfect_lattice("Cu", "fcc", 3.61, 3)
    radius = 3.0
    core = builders.cascade_core(perfect, radius, np.random.default_rng(3))
    centre = np.diag(perfect.cell) / 2
    inside = np.linalg.norm(perfect.positions - centre, axis=1) < radius
    assert inside.sum() > 3
    assert np.allclose(core.positions[~inside], perfect.positions[~inside])
    assert not np.allclose(core.positions[inside], perfect.positions[inside])
    assert np.all(np.linalg.norm(core.positions[inside] - centre, axis=1) < radius)
    assert _min_distance(core) >= 0.6 * np.cbrt(perfect.get_volume() / len(perfect)) - 1e-9


def test_impossible_requests_raise_structure_errors():
    perfect = builders.perfect_lattice("Cu", "fcc", 3.61, 1)
    with pytest.raises(InvalidStructureError, match="radius"):
        builders.cascade_core(perfect, 5.0, np.random.default_rng(0))
    with pytest.raises(InvalidStructureError, match="n_vacancies"):
        builders.vacancy_cluster(perfect, 0, np.random.default_rng(0))
    with pytest.raises(UnknownNameError, match="kind"):
        builders.interstitial_cluster(perfect, 1, "fcc", np.random.default_rng(0), kind="split")


def test_centred_point_defects_have_the_right_atoms_around_the_central_site():
    from ase.build import bulk as ase_bulk

    from ase_vibentropy.data.builders import central_site, centred_point_defect
    from ase_vibentropy.errors import UnknownNameError

    perfect = ase_bulk("Fe", "bcc", a=2.855, cubic=True).repeat(4)
    centre = perfect.positions[central_site(perfect)]
    assert len(centred_point_defect(perfect, "V1")) == len(perfect) - 1
    assert len(centred_point_defect(perfect, "V2")) == len(perfect) - 2
    dumbbell = centred_point_defect(perfect, "I1<110>", separation=2.0)
    pair = dumbbell.positions[-2:]
    np.testing.assert_allclose(pair.mean(axis=0), centre, atol=1e-12)
    np.testing.assert_allclose(np.abs(pair[0] - pair[1]), [np.sqrt(2), np.sqrt(2), 0.0], atol=1e-12)
    with pytest.raises(UnknownNameError, match="known: V1, V2"):
        centred_point_defect(perfect, "I3")


@pytest.mark.parametrize("lattice, a", [("bcc", 2.855324), ("fcc", 3.615), ("sc", 2.3)])
def test_perfect_supercell_is_ase_repeat_of_the_cubic_cell(lattice, a):
    from ase.build import bulk

    from ase_vibentropy.harmonic import perfect_cubic_supercell

    for n in (1, 2, 5):
        expected = bulk("Fe", lattice, a=a, cubic=True).repeat(n)
        built = perfect_cubic_supercell("Fe", lattice, a, n)
        np.testing.assert_array_equal(built.positions, expected.positions)
        np.testing.assert_array_equal(built.numbers, expected.numbers)
        np.testing.assert_array_equal(built.cell.array, expected.cell.array)
        assert built.pbc.all()
