"""Wigner-Seitz analysis, inertia fingerprints, de-duplication and the minimum check."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from ase_vibentropy.data import analysis, builders
from ase_vibentropy.data.explore import quench
from ase_vibentropy.errors import CellMismatchError

A0_CU = 3.61


@pytest.fixture(scope="module")
def cu3():
    return builders.perfect_lattice("Cu", "fcc", A0_CU, 3)


def test_perfect_lattice_has_no_defects_even_rattled_or_shifted_by_cell_vectors(cu3, rng):
    moved = cu3.copy()
    moved.positions += rng.normal(scale=0.1, size=moved.positions.shape)
    moved.positions += np.asarray(cu3.cell)[0] * rng.integers(-2, 3, size=(len(cu3), 1))
    ws = analysis.wigner_seitz(moved, cu3)
    assert ws.n_vacancies == 0 and ws.n_interstitials == 0
    assert np.all(ws.occupancy == 1)


def test_wigner_seitz_works_in_a_non_orthogonal_cell():
    perfect = bulk("Fe", "bcc", a=2.855).repeat(4)  # rhombohedral primitive cells
    defect = perfect.copy()
    del defect[17]
    extra = perfect.copy()
    extra.append("Fe")
    extra.positions[-1] = perfect.positions[5] + [0.7, 0.7, 0.0]
    ws_v = analysis.wigner_seitz(defect, perfect)
    ws_i = analysis.wigner_seitz(extra, perfect)
    assert (ws_v.n_vacancies, ws_v.n_interstitials) == (1, 0)
    assert np.allclose(ws_v.vacancy_positions[0], perfect.positions[17])
    assert (ws_i.n_vacancies, ws_i.n_interstitials) == (0, 1)
    assert ws_i.interstitial_sites.tolist() == [5]


def test_wigner_seitz_refuses_a_reference_in_another_cell(cu3):
    with pytest.raises(CellMismatchError, match="same cell"):
        analysis.wigner_seitz(cu3, builders.apply_strain(cu3, 0.01))


def test_dumbbell_fingerprint_is_d_to_the_fourth_over_two(cu3):
    # Two unit masses d apart: moments (0, d²/2, d²/2), so Σ λ² = d⁴/2.
    defect = builders.interstitial_cluster(cu3, 1, "fcc", np.random.default_rng(0), direction=[1, 0, 0])
    ws = analysis.wigner_seitz(defect, cu3)
    pair = defect.positions[ws.defect_atoms]
    d = np.linalg.norm(builders.minimum_image(pair[0] - pair[1], defect.cell))
    assert analysis.inertia_fingerprint(defect, cu3) == pytest.approx(d**4 / 2, rel=1e-12)


def test_periodic_moments_equal_the_textbook_inertia_tensor_of_a_compact_cluster(rng):
    points = rng.normal(scale=1.0, size=(5, 3)) + 6.0
    centred = points - points.mean(axis=0)
    brute = np.zeros((3, 3))
    for r in centred:  # written plainly: I = Σ (|r|² 1 - r rᵀ)
        brute += np.dot(r, r) * np.eye(3) - np.outer(r, r)
    expected = np.sort(np.linalg.eigvalsh(brute))
    got = analysis.periodic_principal_moments(points, np.eye(3) * 40.0)
    assert np.allclose(got, expected, rtol=1e-12)


def test_fingerprint_is_invariant_under_lattice_symmetry_and_boundary_crossing(cu3):
    defect = builders.interstitial_cluster(cu3, 3, "fcc", np.random.default_rng(4))
    reference_fp = analysis.inertia_fingerprint(defect, cu3)
    assert reference_fp is not None
    # Cubic symmetry: permute axes (the cubic cell maps onto itself).
    permuted = defect.copy()
    permuted.positions = defect.positions[:, [2, 0, 1]]
    # Boundary crossing: a lattice translation that moves the central cluster across the faces.
    shifted = defect.copy()
    shifted.positions += A0_CU * np.array([1.0, 0.5, 1.5])
    shifted.wrap()
    for variant in (permuted, shifted):
        assert analysis.inertia_fingerprint(variant, cu3) == pytest.approx(reference_fp, rel=1e-10)


def test_vacancy_only_configurations_have_no_fingerprint(cu3, rng):
    assert analysis.inertia_fingerprint(builders.vacancy_cluster(cu3, 2, rng), cu3) is None


def test_deduplicate_merges_within_tolerance_and_keeps_distinct():
    energies = [1.000, 1.004, 1.500, 2.000, 2.000, 2.003, 2.0]
    fingerprints = [None, None, None, 100.0, 130.0, 100.02, None]
    kept, rep = analysis.deduplicate(energies, fingerprints)
    # 1.004 merges into 1.000; 130 Å⁴ differs from 100 Å⁴ by 30 %: distinct; 100.02 within
    # 1e-3 relative: merged; a vacancy-only cell never merges with an interstitial one.
    assert kept.tolist() == [0, 2, 3, 4, 6]
    assert rep.tolist() == [0, 0, 2, 3, 4, 3, 6]


@pytest.fixture(scope="module")
def cu2():
    return builders.perfect_lattice("Cu", "fcc", A0_CU, 2)


def _rattled(atoms, seed, scale=0.03):
    moved = atoms.copy()
    moved.positions += np.random.default_rng(seed).normal(scale=scale, size=moved.positions.shape)
    return moved


@pytest.fixture(scope="module")
def relaxed_interstitials(cu2):
    emt = EMT()
    # In a 2x2x2 cell the symmetric <100> dumbbell is a saddle: a rattled start relaxes to a
    # lower, less symmetric minimum.
    symmetric = quench(builders.interstitial_cluster(cu2, 1, "fcc", np.random.default_rng(0), direction=[1, 0, 0]), emt)
    minimum = quench(_rattled(symmetric, 1), emt)
    again = quench(_rattled(minimum, 2), emt)
    # The cubic axis permutation maps the perfect cell onto itself: a symmetry-equivalent copy.
    permuted = minimum.copy()
    permuted.positions = minimum.positions[:, [2, 0, 1]]
    equivalent = quench(_rattled(permuted, 3), emt)
    return [minimum, again, equivalent, symmetric]


def test_dedup_merges_re_relaxed_and_symmetry_equivalent_copies(relaxed_interstitials, cu2):
    energies = [a.get_potential_energy() for a in relaxed_interstitials]
    fingerprints = [analysis.inertia_fingerprint(a, cu2) for a in relaxed_interstitials]
    assert energies[3] - energies[0] > analysis.ENERGY_TOLERANCE_EV
    kept, rep = analysis.deduplicate(energies, fingerprints)
    assert kept.tolist() == [0, 3] and rep.tolist() == [0, 0, 0, 3]


def test_dedup_keeps_first_and_second_neighbour_divacancies_apart(cu2):
    emt = EMT()
    centre = builders.central_site(cu2)
    d = np.linalg.norm(builders.minimum_image(cu2.positions - cu2.positions[centre], cu2.cell), axis=1)
    first_nn = int(np.flatnonzero(np.isclose(d, A0_CU / np.sqrt(2)))[0])
    second_nn = int(np.flatnonzero(np.isclose(d, A0_CU))[0])
    configs = []
    for partner in (first_nn, second_nn, first_nn):
        keep = np.ones(len(cu2), dtype=bool)
        keep[[centre, partner]] = False
        configs.append(quench(cu2[keep], emt))
    energies = [a.get_potential_energy() for a in configs]
    assert abs(energies[0] - energies[1]) > analysis.ENERGY_TOLERANCE_EV
    kept, rep = analysis.deduplicate(energies, [None] * 3)
    assert kept.tolist() == [0, 1] and rep.tolist() == [0, 1, 0]


def test_minimum_check_accepts_a_vacancy_and_flags_the_migration_saddle():
    perfect = builders.perfect_lattice("Cu", "fcc", A0_CU, 2)
    emt = EMT()
    vacancy = perfect.copy()
    site = builders.central_site(perfect)
    d = np.linalg.norm(builders.minimum_image(perfect.positions - perfect.positions[site], perfect.cell), axis=1)
    neighbour = int(np.flatnonzero(np.isclose(d, A0_CU / np.sqrt(2)))[0])
    del vacancy[site]
    assert analysis.count_imaginary_modes(quench(vacancy, emt, fmax=1e-4), emt) == 0
    # The neighbour halfway to the vacancy: forces vanish on it by symmetry and the
    # symmetric relaxation stays on the migration saddle (one unstable mode).
    saddle = perfect.copy()
    saddle.positions[neighbour] += 0.5 * builders.minimum_image(
        perfect.positions[site] - perfect.positions[neighbour], perfect.cell
    )
    del saddle[site]
    assert analysis.count_imaginary_modes(quench(saddle, emt, fmax=1e-4), emt) >= 1
