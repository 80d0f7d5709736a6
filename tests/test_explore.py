"""Explorers: activation-relaxation on the dimer method, and random placement + quench.

EMT Cu in a 2x2x2 fcc cell keeps these fast; the defect is a di-interstitial.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ase.calculators.emt import EMT

from ase_vibentropy.data import builders, explore
from ase_vibentropy.data.analysis import same_configuration, wigner_seitz


@pytest.fixture(scope="module")
def cu2():
    return builders.perfect_lattice("Cu", "fcc", 3.61, 2)


def _max_force(atoms) -> float:
    work = atoms.copy()
    work.calc = EMT()
    return float(np.linalg.norm(work.get_forces(), axis=1).max())


@pytest.fixture(scope="module")
def di_interstitial_exploration(cu2):
    start = builders.interstitial_cluster(cu2, 2, "fcc", np.random.default_rng(7))
    explorer = explore.ActivationRelaxationExplorer(
        EMT(), cu2, np.random.default_rng(0), dimer_fmax=0.05, dimer_steps=150
    )
    return explorer.explore(start, n_minima=2, max_events=3)


def test_dimer_explorer_finds_several_distinct_minima_of_a_di_interstitial(di_interstitial_exploration):
    minima = di_interstitial_exploration.minima
    assert len(minima) >= 2
    for a, b in itertools.combinations(minima, 2):
        assert not same_configuration(a.energy, a.fingerprint, b.energy, b.fingerprint)
    assert di_interstitial_exploration.n_saddles >= len(minima) - 1


def test_explored_minima_are_relaxed_and_keep_two_extra_atoms(di_interstitial_exploration, cu2):
    for minimum in di_interstitial_exploration.minima:
        assert _max_force(minimum.atoms) <= explore.QUENCH_FMAX_EV_PER_A
        ws = wigner_seitz(minimum.atoms, cu2)
        # Atom conservation: interstitials minus vacancies is the number of extra atoms.
        assert ws.n_interstitials - ws.n_vacancies == 2
        assert len(minimum.atoms) == len(cu2) + 2


def test_new_minima_are_reached_over_a_positive_barrier(di_interstitial_exploration):
    for minimum in di_interstitial_exploration.minima[1:]:
        assert minimum.barrier > 0
        assert 0 <= minimum.parent < len(di_interstitial_exploration.minima)


def test_pushes_are_seeded_local_and_of_the_requested_norm(cu2):
    start = builders.interstitial_cluster(cu2, 2, "fcc", np.random.default_rng(7))
    pushes = [
        explore.ActivationRelaxationExplorer(EMT(), cu2, np.random.default_rng(seed), push_amplitude=0.4).push_vector(start)
        for seed in (1, 1, 2)
    ]
    assert np.array_equal(pushes[0], pushes[1])
    assert not np.array_equal(pushes[0], pushes[2])
    assert np.linalg.norm(pushes[0]) == pytest.approx(0.4)
    moved = np.linalg.norm(pushes[0], axis=1) > 0
    assert 1 <= moved.sum() < len(start) // 2


def test_random_placement_is_seeded_and_conserves_atoms(cu2):
    first = explore.random_placement(cu2, 2, 1, np.random.default_rng(3))
    again = explore.random_placement(cu2, 2, 1, np.random.default_rng(3))
    assert np.array_equal(first.positions, again.positions)
    assert len(first) == len(cu2) + 1


def test_random_placement_and_quench_gives_distinct_relaxed_minima(cu2):
    result = explore.explore_random(cu2, EMT(), 2, 0, np.random.default_rng(1), n_minima=2, max_trials=2)
    assert 1 <= len(result.minima) <= 2
    assert result.n_events == len(result.minima) + result.n_known + result.n_failed
    for minimum in result.minima:
        assert _max_force(minimum.atoms) <= explore.QUENCH_FMAX_EV_PER_A
        assert minimum.n_interstitials - minimum.n_vacancies == 2


def test_the_same_seed_gives_the_same_exploration(cu2, di_interstitial_exploration):
    start = builders.interstitial_cluster(cu2, 2, "fcc", np.random.default_rng(7))
    explorer = explore.ActivationRelaxationExplorer(
        EMT(), cu2, np.random.default_rng(0), dimer_fmax=0.05, dimer_steps=150
    )
    again = explorer.explore(start, n_minima=2, max_events=3)
    assert again.summary() == di_interstitial_exploration.summary()
    for a, b in zip(again.minima, di_interstitial_exploration.minima):
        assert np.allclose(a.atoms.positions, b.atoms.positions, atol=1e-10)


def test_asking_for_saddles_explores_on_and_keeps_each_jump_once(cu2, di_interstitial_exploration):
    start = builders.interstitial_cluster(cu2, 2, "fcc", np.random.default_rng(7))
    explorer = explore.ActivationRelaxationExplorer(
        EMT(), cu2, np.random.default_rng(0), dimer_fmax=0.05, dimer_steps=150
    )
    result = explorer.explore(start, n_minima=2, max_events=6, n_saddles=3)
    assert len(result.saddles) >= 3 or result.n_events == 6  # stopped for a reason
    # the same seed without the request stops as soon as it has two minima
    assert result.n_events > di_interstitial_exploration.n_events or len(result.saddles) >= 3
    assert len(result.saddles) > len(di_interstitial_exploration.saddles)
    n_minima = len(result.minima)
    for saddle in result.saddles:
        assert saddle.origin != saddle.target
        assert 0 <= saddle.origin < n_minima and 0 <= saddle.target < n_minima
        assert saddle.energy > max(result.minima[saddle.origin].energy, result.minima[saddle.target].energy)
    for a, b in itertools.combinations(result.saddles, 2):
        same_ends = {a.origin, a.target} == {b.origin, b.target}
        assert not (same_ends and abs(a.energy - b.energy) <= explorer.energy_tol)


@pytest.fixture(scope="module")
def cu3():
    return builders.perfect_lattice("Cu", "fcc", 3.61, 3)


@pytest.fixture(scope="module")
def vacancy_hops(cu3):
    """A single vacancy (3x3x3 cell: the 2x2x2 one is too small for its dimer searches), whose
    every jump leads to a moved copy of itself."""
    rng = np.random.default_rng(1)
    start = builders.vacancy_cluster(cu3, 1, rng)
    explorer = explore.ActivationRelaxationExplorer(
        EMT(), cu3, rng, dimer_fmax=0.05, dimer_steps=150, verify_saddles=True, stall_events=4,
    )
    return explorer, explorer.explore(start, n_minima=3, n_saddles=3, max_events=20)


def test_a_vacancy_hop_is_kept_as_a_jump_to_a_copy_of_its_own_minimum(vacancy_hops):
    explorer, result = vacancy_hops
    assert len(result.minima) == 1  # every hop leads to the same configuration, moved
    assert result.saddles and all(s.origin == s.target == 0 for s in result.saddles)
    assert result.n_unconnected == 0  # the near side of each hop quenches back (drift removed)
    assert all(s.energy > result.minima[0].energy for s in result.saddles)
    # it stopped because nothing new turned up, before its event budget
    assert result.n_events < 20 and len(result.minima) < 3


def test_a_rigid_drift_is_the_same_minimum_and_a_hop_is_not(vacancy_hops):
    explorer, result = vacancy_hops
    minimum = result.minima[0].atoms
    drifted = minimum.copy()
    drifted.positions += [0.7, -0.6, 0.3]  # more than the jump threshold, for every atom
    assert explorer._same_minimum(drifted, minimum)
    hopped = minimum.copy()
    hopped.positions[0] += [explore.JUMP_DISPLACEMENT_A + 0.1, 0.0, 0.0]
    assert not explorer._same_minimum(hopped, minimum)


def test_the_neb_band_between_the_ends_of_a_hop_finds_the_dimer_barrier(cu3, vacancy_hops):
    _, result = vacancy_hops
    origin = result.minima[0].atoms
    explorer = explore.ActivationRelaxationExplorer(
        EMT(), cu3, np.random.default_rng(2), dimer_fmax=0.05, dimer_steps=150, neb_images=1,
        neb_calculator=EMT,
    )
    found = next(f for f in (explorer.find_saddle(origin) for _ in range(10)) if f is not None)
    saddle, mode, energy = found
    ends = [explorer._quench_side(saddle, mode, sign) for sign in (1.0, -1.0)]
    # a symmetric hop: the band's single image sits on the midpoint saddle by symmetry
    band = explorer._band_saddle(ends[0], ends[1], 0, 0)
    assert band is not None and band.search == "neb"
    assert band.energy == pytest.approx(energy, abs=2e-2)
    assert band.energy > max(e.get_potential_energy() for e in ends)


def test_a_band_needs_a_calculator_factory(cu3):
    with pytest.raises(ValueError, match="neb_calculator"):
        explore.ActivationRelaxationExplorer(EMT(), cu3, np.random.default_rng(0), neb_images=3)
