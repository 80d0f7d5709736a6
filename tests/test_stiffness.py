"""The local stiffness descriptor [E_i, B_i, C_i] of a reference potential's Hessian blocks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from descriptor_checks import (
    assert_extensive,
    assert_gradient_matches_one_sided_differences,
    assert_permutation_invariant,
    assert_rotation_invariant,
    assert_translation_invariant,
    bcc_fe,
    fe_vacancy_cell,
    triclinic_fe_cell,
)

from ase_vibentropy import descriptors
from ase_vibentropy.eam import EAMCalculator
from ase_vibentropy.errors import DescriptorError
from ase_vibentropy.potentials import get_potential


@pytest.fixture(scope="module")
def stiffness():
    return descriptors.get("stiffness", potential="fe-mendelev2003")


class LinearEmbedding:
    """F(ρ) = c ρ: an EAM whose Hessian has no F'' terms, so that H_ij = -K_ij for bonded
    atoms and H_ij = 0 beyond the cut-off (a pair potential with ψ = φ + 2 c f)."""

    def __init__(self, slope: float):
        self.slope = slope

    def __call__(self, rho):
        rho = np.asarray(rho, dtype=float)
        return self.slope * rho, np.full_like(rho, self.slope), np.zeros_like(rho)

    def third(self, rho):
        return np.zeros_like(np.asarray(rho, dtype=float))


def pair_only_fe() -> EAMCalculator:
    fe = get_potential("fe-mendelev2003").hessian_calculator()
    return EAMCalculator("Fe", fe.density, LinearEmbedding(-0.3), fe.pair, fe.cutoff)


def test_with_a_pair_hessian_the_components_are_schur_complements_of_the_dense_hessian(stiffness, monkeypatch):
    """Brute force on the dense Hessian of a pair-only EAM (every off-diagonal block is a bond
    block): B_i = -½ ln det(H_ii - Σ_j H_ij H_jj⁻¹ H_ji), C_i = tr(H_ii⁻¹ Σ_j H_ij H_jj⁻¹ H_ji)."""
    calculator = pair_only_fe()
    monkeypatch.setattr(stiffness, "_calculator", calculator)
    atoms = fe_vacancy_cell(4, rattle=0.04)  # 11.4 Å: no atom bonds to two images of another
    hessian = calculator.get_hessian(atoms, format="dense")
    n = len(atoms)
    block = hessian.reshape(n, 3, n, 3).transpose(0, 2, 1, 3)
    expected = np.empty((n, 3))
    for i in range(n):
        onsite = block[i, i]
        softening = sum(
            block[i, j] @ np.linalg.inv(block[j, j]) @ block[j, i]
            for j in range(n) if j != i and np.abs(block[i, j]).max() > 0
        )
        expected[i] = (
            -0.5 * np.log(np.linalg.det(onsite)),
            -0.5 * np.log(np.linalg.det(onsite - softening)),
            np.trace(np.linalg.inv(onsite) @ softening),
        )
    np.testing.assert_allclose(stiffness.compute(atoms), expected, rtol=1e-10, atol=1e-12)


def test_bonded_neighbours_soften_every_atom(stiffness):
    values = stiffness.compute(fe_vacancy_cell(4, rattle=0.05))
    einstein, relaxed, coupling = values.T
    assert np.all(relaxed > einstein) and np.all(coupling > 0)
    # the first-order expansion of -½ ln det(1 - X): B - E = ½ tr X + O(X²), X small
    np.testing.assert_allclose(relaxed - einstein, 0.5 * coupling, rtol=0.5)


def test_the_einstein_component_is_the_einstein_descriptor(stiffness):
    atoms = fe_vacancy_cell(4, rattle=0.05)
    einstein = descriptors.get("einstein", potential="fe-mendelev2003")
    np.testing.assert_allclose(stiffness.compute(atoms)[:, 0], einstein.compute(atoms)[:, 0], rtol=1e-12)


@pytest.mark.parametrize("make", [fe_vacancy_cell, triclinic_fe_cell])
def test_stiffness_is_invariant_under_translation_rotation_and_permutation(stiffness, make):
    atoms = make(rattle=0.03)
    assert_translation_invariant(stiffness, atoms)
    assert_rotation_invariant(stiffness, atoms)
    assert_permutation_invariant(stiffness, atoms)


def test_stiffness_does_not_depend_on_the_cell_and_chunks(stiffness):
    # a 3a0 cell (8.6 Å) is thinner than twice the cut-off: values must be those of an
    # infinite crystal, so equal to those of its 2x1x1 replica, atom by atom
    atoms = fe_vacancy_cell(3, rattle=0.04)
    assert_extensive(stiffness, atoms, reps=(2, 1, 1))
    # the whole structure at once: no pass cuts it into chunks
    assert not stiffness.needs_chunks(10**6, 20_000)
    assert descriptors.get("afs").needs_chunks(10**6, 20_000)


def chunk_sum(provider, atoms, chunk_size: int) -> np.ndarray:
    """Σ_i D_i over isolated spatial chunks with halos of the provider's cut-off (as a stack
    with a chunked part or a Dask pass evaluates it)."""
    from ase_vibentropy.descriptors.chunks import iter_spatial_chunks

    return sum(provider.compute_centers(sub, np.arange(n)).sum(axis=0)
               for sub, n in iter_spatial_chunks(atoms, provider.cutoff, chunk_size))


def test_perfect_lattice_values_are_isotropic_and_the_same_for_every_atom(stiffness):
    values = stiffness.compute(bcc_fe(3))
    np.testing.assert_allclose(values, np.tile(values[0], (len(values), 1)), rtol=1e-12)
    primitive = bcc_fe(1)
    np.testing.assert_allclose(stiffness.compute(primitive), values[:2], rtol=1e-12)


@pytest.mark.parametrize("make", [fe_vacancy_cell, triclinic_fe_cell])
def test_stiffness_gradient_matches_finite_differences(stiffness, make):
    atoms = make(n=4, rattle=0.05)
    w = np.array([0.7, -1.3, 0.4])
    assert_gradient_matches_one_sided_differences(stiffness, atoms, w, step=1e-6, indices=[0, 1, 7, 40])
    gradient = stiffness.vjp(atoms, w)
    assert abs(gradient.sum(axis=0)).max() < 1e-10 * abs(gradient).max()  # translation


def test_stiffness_gradient_in_a_cell_thinner_than_twice_the_cutoff(stiffness):
    atoms = fe_vacancy_cell(2, rattle=0.05)  # 5.7 Å: atoms bond to several images of each other
    assert_gradient_matches_one_sided_differences(
        stiffness, atoms, np.array([0.3, 1.1, -0.6]), step=1e-6, indices=[0, 3, 9]
    )


def test_stiffness_refuses_unstable_wells_and_potentials_without_bond_blocks(stiffness):
    squeezed = fe_vacancy_cell(4, rattle=0.0)
    squeezed.positions[1] = squeezed.positions[2] + [0.9, 0.0, 0.0]  # 0.9 Å from a neighbour
    with pytest.raises(DescriptorError):
        stiffness.compute(squeezed)
    with pytest.raises(DescriptorError, match="bond blocks"):
        descriptors.get("stiffness", potential="lj-ar")


def test_stiffness_stacks_with_afs_and_pickles(stiffness):
    stack = descriptors.get("stack", parts=[["afs", {"n_max": 3, "l_max": 2}], ["stiffness", stiffness.params]])
    assert stack.has_gradient and stack.dim == 3 * 3 + 3
    for provider in (stiffness, stack):
        clone = pickle.loads(pickle.dumps(provider))
        atoms = fe_vacancy_cell(3, rattle=0.03)
        np.testing.assert_array_equal(clone.compute(atoms), provider.compute(atoms))


def test_chunked_sums_of_a_strained_rattled_cell_equal_the_whole_cell(stiffness):
    # the atoms at the edge of a chunk's halo have cut environments whose blocks need not be
    # stable; only the centres and their bonded partners may be asked to be
    from ase_vibentropy.parallel import descriptor_pass

    for strain, rattle in ((1.03, 0.05), (0.97, 0.1)):
        atoms = bcc_fe(6, a0=2.855324 * strain)
        atoms.rattle(rattle, seed=4)
        whole = stiffness.compute(atoms).sum(axis=0)
        np.testing.assert_allclose(chunk_sum(stiffness, atoms, 100), whole, rtol=1e-10)
    # chunks of 200 centres put the vacancy's neighbourhood across chunk borders
    atoms = fe_vacancy_cell(5, rattle=0.04, vacancy=60)
    np.testing.assert_allclose(chunk_sum(stiffness, atoms, 200), stiffness.compute(atoms).sum(axis=0),
                               rtol=1e-10)
    stack = descriptors.get("stack", parts=[["afs", {}], ["stiffness", {}]])
    assert stack.needs_chunks(len(atoms), 200)
    np.testing.assert_allclose(descriptor_pass(stack, atoms, chunk_size=200, workers=1).total,
                               stack.compute(atoms).sum(axis=0), rtol=1e-10)


def test_half_bond_blocks_are_the_directed_bond_blocks():
    """Each bond once (memory-lean) against every directed bond: the same H_ii and K_n."""
    from ase_vibentropy.errors import InvalidStructureError

    calc = get_potential("fe-mendelev2003").hessian_calculator()
    atoms = fe_vacancy_cell(4, rattle=0.05)  # 11.4 Å > 2 r_c: every bond is a pair
    half = calc.get_half_bond_blocks(atoms)
    directed = calc.get_bond_blocks(atoms)
    np.testing.assert_allclose(half["onsite"], directed["onsite"], rtol=0, atol=1e-12)
    assert 2 * len(half["i"]) == len(directed["i"])
    index = {(i, j): n for n, (i, j) in enumerate(zip(directed["i"], directed["j"]))}
    for key in ("radial", "tangential"):
        for i, j in ((half["i"], half["j"]), (half["j"], half["i"])):
            n = np.array([index[pair] for pair in zip(i, j)])
            np.testing.assert_allclose(half[key], directed[key][n], rtol=0, atol=1e-12)
    n = np.array([index[pair] for pair in zip(half["i"], half["j"])])
    np.testing.assert_allclose(half["unit"], directed["unit"][n], rtol=0, atol=1e-14)
    with pytest.raises(InvalidStructureError, match="twice the cut-off"):
        calc.get_half_bond_blocks(bcc_fe(3))


def test_a_stacked_pass_gives_each_parts_sums_and_projections_and_leaves_blas_alone(stiffness):
    from threadpoolctl import threadpool_info

    from ase_vibentropy.parallel import descriptor_pass

    stack = descriptors.get("stack", parts=[["afs", {"n_max": 3, "l_max": 2}], ["stiffness", stiffness.params]])
    atoms = fe_vacancy_cell(4, rattle=0.04)
    w = np.random.default_rng(3).normal(size=stack.dim)
    expected = stack.compute(atoms)
    before = [pool["num_threads"] for pool in threadpool_info()]
    for workers, chunk_size in ((1, 20_000), (2, 20_000), (2, 40)):
        result = descriptor_pass(stack, atoms, w, chunk_size=chunk_size, workers=workers)
        np.testing.assert_allclose(result.total, expected.sum(axis=0), rtol=1e-10)
        np.testing.assert_allclose(result.projection, expected @ w, rtol=1e-9, atol=1e-9)
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def test_batches_and_threads_do_not_change_the_values(monkeypatch):
    from ase_vibentropy.eam import calculator as eam_calculator
    from ase_vibentropy.descriptors import stiffness as stiffness_module

    atoms = fe_vacancy_cell(4, rattle=0.05)
    whole = descriptors.get("stiffness", n_threads=1).compute(atoms)
    for module in (eam_calculator, stiffness_module):
        monkeypatch.setattr(module, "BOND_BATCH", 700)  # about 10 batches of bonds
    serial = descriptors.get("stiffness", n_threads=1).compute(atoms)
    threaded = descriptors.get("stiffness", n_threads=3).compute(atoms)
    np.testing.assert_array_equal(threaded, serial)  # batches reduced in order
    np.testing.assert_allclose(serial, whole, rtol=1e-12, atol=1e-12)


def test_gradient_batches_and_threads_do_not_change_the_gradient(monkeypatch):
    from ase_vibentropy.descriptors import stiffness as stiffness_module
    from ase_vibentropy.eam import calculator as eam_calculator

    atoms = fe_vacancy_cell(4, rattle=0.05)
    w = np.array([0.7, -1.3, 0.4])
    whole = descriptors.get("stiffness", n_threads=1).vjp(atoms, w)
    for module in (eam_calculator, stiffness_module):
        monkeypatch.setattr(module, "GRADIENT_BATCH", 700)  # about 10 batches of bonds
    serial = descriptors.get("stiffness", n_threads=1).vjp(atoms, w)
    threaded = descriptors.get("stiffness", n_threads=3).vjp(atoms, w)
    np.testing.assert_array_equal(threaded, serial)  # batches reduced in order
    np.testing.assert_allclose(serial, whole, rtol=1e-12, atol=1e-12 * abs(whole).max())


def test_half_bond_contraction_gradient_is_the_directed_one():
    """The same L = Σ tr(W H_ii) + Σ tr(P K_n) differentiated over each bond once and over every
    directed bond (P of a bond split between its two directions)."""
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    atoms = fe_vacancy_cell(4, rattle=0.05)
    rng = np.random.default_rng(11)
    onsite_weights = rng.normal(size=(len(atoms), 3, 3))
    onsite_weights += onsite_weights.transpose(0, 2, 1)
    half = calc.get_half_bond_blocks(atoms)
    half_p = rng.normal(size=(len(half["i"]), 3, 3))
    half_p += half_p.transpose(0, 2, 1)
    directed = calc.get_bond_blocks(atoms)
    index = {(i, j): n for n, (i, j) in enumerate(zip(directed["i"], directed["j"]))}
    directed_p = np.zeros((len(directed["i"]), 3, 3))
    for i, j in ((half["i"], half["j"]), (half["j"], half["i"])):
        directed_p[[index[pair] for pair in zip(i, j)]] = 0.5 * half_p
    expected = calc.get_block_contraction_gradient(atoms, onsite_weights, directed_p, bond_blocks=directed)
    gradient = calc.get_half_bond_contraction_gradient(half, onsite_weights, lambda b: half_p[b])
    np.testing.assert_allclose(gradient, expected, rtol=0, atol=1e-11 * abs(expected).max())
    no_bond_weights = calc.get_block_contraction_gradient(atoms, onsite_weights)
    np.testing.assert_allclose(calc.get_half_bond_contraction_gradient(half, onsite_weights),
                               no_bond_weights, rtol=0, atol=1e-11 * abs(no_bond_weights).max())


@pytest.fixture(scope="module")
def vacancy_jump_saddle():
    from pathlib import Path

    from ase.io import read

    from ase_vibentropy.harmonic import refine_saddle

    data = Path(__file__).resolve().parents[1] / "examples" / "data"
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    return refine_saddle(read(data / "fe_vacancy_jump_climbing_4a0.extxyz"), calc)


def test_saddle_points_option_gives_magnitudes_at_a_saddle_and_the_same_values_at_minima(
    stiffness, vacancy_jump_saddle
):
    saddle_aware = descriptors.get("stiffness", saddle_points=True)
    assert saddle_aware.params == {**stiffness.params, "saddle_points": True}
    assert saddle_aware.hash != stiffness.hash
    minimum = fe_vacancy_cell(4, rattle=0.04)
    np.testing.assert_array_equal(saddle_aware.compute(minimum), stiffness.compute(minimum))
    with pytest.raises(DescriptorError, match="saddle_points=True"):
        stiffness.compute(vacancy_jump_saddle)
    values = saddle_aware.compute(vacancy_jump_saddle)
    # the jumping atom: one negative eigenvalue of its on-site block, E = -½ ln |det H_ii|
    blocks = get_potential("fe-mendelev2003").hessian_calculator().get_onsite_hessian(vacancy_jump_saddle)
    eigenvalues = np.linalg.eigvalsh(blocks)
    jumping = np.flatnonzero(eigenvalues[:, 0] < 0)
    assert len(jumping) == 1
    np.testing.assert_allclose(values[:, 0], -0.5 * np.log(np.abs(eigenvalues)).sum(axis=1), rtol=1e-12)
    assert np.all(np.isfinite(values))
    assert pickle.loads(pickle.dumps(saddle_aware)).params == saddle_aware.params
    with pytest.raises(DescriptorError, match="saddle_points must be True or False"):
        descriptors.get("stiffness", saddle_points="yes")


def test_saddle_points_gradient_at_a_saddle_matches_finite_differences(vacancy_jump_saddle):
    saddle_aware = descriptors.get("stiffness", saddle_points=True)
    blocks = get_potential("fe-mendelev2003").hessian_calculator().get_onsite_hessian(vacancy_jump_saddle)
    jumping = int(np.flatnonzero(np.linalg.eigvalsh(blocks)[:, 0] < 0)[0])
    assert_gradient_matches_one_sided_differences(
        saddle_aware, vacancy_jump_saddle, np.array([0.7, -1.3, 0.4]), step=1e-6, indices=[jumping, 0, 5])
