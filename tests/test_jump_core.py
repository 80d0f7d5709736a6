"""The exact fixed-boundary core of a jump (ase_vibentropy.harmonic.jump_core).

Independent expectations: the core region against a brute-force minimum over periodic images
(orthogonal and skewed cells);
ΔS_core against the eigenvalues of the block of a finite-difference Hessian of the whole cell,
mass-weighted and summed into 1 + ln(k_B T/ħω) per mode from CODATA constants here; invariance
under a common translation and a common permutation of the atoms; the negative-mode counts of
Cauchy interlacing (a minimum's block has none, so a minimum passed as the saddle is refused).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.constants as const
from ase.io import read

from ase_vibentropy.errors import (
    CellMismatchError,
    InvalidOptionError,
    NotAFirstOrderSaddleError,
    NotAMinimumError,
)
from ase_vibentropy.harmonic import refine_saddle
from ase_vibentropy.harmonic.hessian import finite_difference_hessian
from ase_vibentropy.harmonic.jump_core import (
    core_migration_entropy,
    jump_core_region,
    jump_displacements,
)
from ase_vibentropy.potentials import get_potential

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


@pytest.fixture(scope="module")
def jump():
    """The 4a0 bcc-Fe vacancy jump's first step: initial minimum and refined saddle (127 atoms)."""
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    initial = read(DATA / "fe_vacancy_jump_initial_4a0.extxyz")
    saddle = refine_saddle(read(DATA / "fe_vacancy_jump_climbing_4a0.extxyz"), calc)
    return calc, initial, saddle


def brute_force_region(minimum, saddle, radius, moved):
    cell = saddle.cell.array
    u = saddle.positions - minimum.positions
    u -= np.round(u @ np.linalg.inv(cell)) @ cell  # minimum image of an orthogonal cell
    u -= u.mean(axis=0)
    active = np.flatnonzero(np.linalg.norm(u, axis=1) > moved)
    images = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)]) @ cell
    inside = set()
    for a in active:
        for b in range(len(saddle)):
            d = saddle.positions[b] + images - saddle.positions[a]
            if np.min(np.linalg.norm(d, axis=1)) <= radius:
                inside.add(b)
    return np.array(sorted(inside))


@pytest.mark.parametrize("radius", [3.0, 5.0])
def test_core_region_is_every_atom_near_a_moving_atom(jump, radius):
    _, initial, saddle = jump
    region = jump_core_region(initial, saddle, radius)
    np.testing.assert_array_equal(region, brute_force_region(initial, saddle, radius, 0.1))
    step = np.linalg.norm(jump_displacements(initial, saddle), axis=1)
    assert step.max() > 1.0 and np.all(np.isin(np.flatnonzero(step > 0.1), region))
    drifted = saddle.copy()
    drifted.positions += [0.3, -0.2, 0.1]  # a rigid drift of the cell is not motion
    drifted.wrap()
    np.testing.assert_array_equal(jump_core_region(initial, drifted, radius), region)


def test_core_entropy_is_the_classical_entropy_of_the_hessian_blocks(jump):
    calc, initial, saddle = jump
    region = jump_core_region(initial, saddle, 4.0)
    T = 300.0
    dofs = (3 * region[:, None] + np.arange(3)).ravel()
    entropy = {}
    for name, atoms in (("saddle", saddle), ("minimum", initial)):
        block = finite_difference_hessian(atoms, calc, step=1e-4)[np.ix_(dofs, dofs)]
        inv_sqrt_m = np.repeat(1.0 / np.sqrt(atoms.get_masses()[region]), 3)
        omega2 = np.linalg.eigvalsh(block * np.outer(inv_sqrt_m, inv_sqrt_m))
        omega2 *= const.e / (1e-20 * const.atomic_mass)  # (rad/s)²
        kept = omega2[1:] if name == "saddle" else omega2
        assert (omega2 < 0).sum() == (1 if name == "saddle" else 0)
        entropy[name] = np.sum(1.0 + np.log(const.k * T / (const.hbar * np.sqrt(kept))))
    expected = entropy["saddle"] - entropy["minimum"]
    assert core_migration_entropy(initial, saddle, region, calc, T) == pytest.approx(expected, abs=1e-6)


def test_core_entropy_does_not_depend_on_atom_order_or_origin(jump):
    calc, initial, saddle = jump
    region = jump_core_region(initial, saddle, 5.0)
    reference = core_migration_entropy(initial, saddle, region, calc, 300.0)
    order = np.random.default_rng(3).permutation(len(initial))
    moved = []
    for atoms in (initial, saddle):
        copy = atoms[order]
        copy.positions += [1.1, -0.7, 2.3]
        copy.wrap()
        moved.append(copy)
    region_moved = jump_core_region(*moved, 5.0)
    np.testing.assert_array_equal(np.sort(order[region_moved]), region)
    assert core_migration_entropy(*moved, region_moved, calc, 300.0) == pytest.approx(reference, abs=1e-9)
    # one mode fewer at the saddle: d ΔS_core / d ln T = -1 exactly (classical)
    at_600 = core_migration_entropy(initial, saddle, region, calc, 600.0)
    assert at_600 - reference == pytest.approx(-np.log(2.0), abs=1e-9)


def test_cores_without_one_unstable_mode_and_bad_inputs_are_refused(jump):
    calc, initial, saddle = jump
    region = jump_core_region(initial, saddle, 5.0)
    with pytest.raises(NotAFirstOrderSaddleError, match="0 negative ω² at the saddle") as info:
        core_migration_entropy(initial, initial, region, calc, 300.0)
    assert info.value.n_negative == 0
    with pytest.raises(NotAMinimumError, match="at the minimum"):
        core_migration_entropy(saddle, saddle, region, calc, 300.0)
    with pytest.raises(InvalidOptionError, match="same structure"):
        jump_core_region(initial, initial, 5.0)
    with pytest.raises(InvalidOptionError, match="holds all 127 atoms"):
        core_migration_entropy(initial, saddle, np.arange(len(saddle)), calc, 300.0)
    with pytest.raises(CellMismatchError):
        jump_core_region(initial, saddle[:-1], 5.0)
    with pytest.raises(InvalidOptionError, match="core radius"):
        jump_core_region(initial, saddle, -1.0)


def test_core_terms_from_the_cores_neighbourhood_equal_those_of_the_whole_cell():
    from ase_vibentropy import descriptors
    from ase_vibentropy.data.builders import minimum_image, vacancy_jump
    from ase_vibentropy.harmonic.jump_core import core_neighbourhood, core_terms, hessian_reach

    potential = get_potential("fe-mendelev2003")
    calc = potential.hessian_calculator()
    initial, final = vacancy_jump(potential.perfect_supercell(8))
    initial, final = potential.relax(initial, calc=calc), potential.relax(final, calc=calc)
    guess = initial.copy()
    guess.positions += minimum_image(final.positions - initial.positions, initial.cell.array) / 3.0
    saddle = refine_saddle(guess, calc)
    provider = descriptors.get("afs", n_max=3, l_max=2)
    sums = [provider.compute(a).sum(axis=0) for a in (saddle, initial)]
    terms = core_terms(initial, saddle, calc, provider, 300.0, *sums, radius=3.0)
    keep = core_neighbourhood(saddle, terms.region, max(hessian_reach(calc), provider.cutoff))
    assert 0 < len(keep) < len(saddle) - 50  # the cut-out is in use
    # the whole cell, brute force: its own Hessian rows and descriptors of every atom
    whole = core_migration_entropy(initial, saddle, terms.region, calc, 300.0)
    outside = np.setdiff1d(np.arange(len(saddle)), terms.region)
    outer = provider.compute(saddle)[outside].sum(0) - provider.compute(initial)[outside].sum(0)
    assert terms.delta_s_kB == pytest.approx(whole, abs=1e-9)
    np.testing.assert_allclose(terms.outer_features, outer, rtol=1e-9, atol=1e-9)


def test_core_region_in_a_skewed_cell_counts_every_periodic_image():
    from ase.build import bulk

    minimum = bulk("Fe", "bcc", a=2.855324).repeat((5, 5, 5))  # primitive cell: 109.5° angles
    saddle = minimum.copy()
    saddle.positions[17] += [0.4, 0.3, -0.2]
    region = jump_core_region(minimum, saddle, 4.2)
    cell = saddle.cell.array
    shifts = np.array([[i, j, k] for i in range(-2, 3) for j in range(-2, 3) for k in range(-2, 3)]) @ cell
    # the one atom that moves (the others drift by the mean, far below 0.1 Å), over 125 images
    d = np.linalg.norm(saddle.positions[:, None, :] + shifts[None] - saddle.positions[17], axis=2).min(axis=1)
    np.testing.assert_array_equal(region, np.flatnonzero(d <= 4.2))
    assert 17 in region and 10 < len(region) < len(saddle)
