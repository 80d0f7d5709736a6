"""AFS descriptor: definition, radial basis, symmetries, gradients, chunking, errors."""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list
from descriptor_checks import (
    assert_compute_sum_matches,
    assert_descriptors_close,
    assert_extensive,
    assert_permutation_invariant,
    assert_rotation_invariant,
    assert_smooth_at_cutoff,
    assert_translation_invariant,
    assert_vjp_matches_finite_differences,
    bcc_fe,
    fe_vacancy_cell,
    random_cluster,
    triclinic_fe_cell,
)
from numpy.polynomial import chebyshev, legendre
from scipy.special import sph_harm_y

from ase_vibentropy import descriptors
from ase_vibentropy.descriptors.afs import AFSDescriptor
from ase_vibentropy.descriptors.radial import RadialBasis, rotation_matrix
from ase_vibentropy.descriptors.spherical import (
    chebyshev_to_legendre,
    chebyshev_to_legendre_exact,
    complex_spherical_harmonics,
    real_spherical_harmonics,
    real_spherical_harmonics_vjp,
)
from ase_vibentropy.errors import DescriptorError, InvalidStructureError, UnknownNameError


@pytest.fixture(scope="module")
def afs() -> AFSDescriptor:
    """The paper's AFS(20, 10), r_cut 5 Å."""
    return descriptors.get("afs", n_max=20, l_max=10, r_cut=5.0)


@pytest.fixture(scope="module")
def small_afs() -> AFSDescriptor:
    """A cheaper AFS for the finite-difference checks (same code paths)."""
    return descriptors.get("afs", n_max=6, l_max=4, r_cut=4.5)


def plain_radial_basis(n_max: float, r_cut: float, r: np.ndarray, dps: int = 80) -> np.ndarray:
    """g_n(r) = Σ_α (S^-1/2)_nα (r_c - r)^(α+2)/N_α in ``dps``-digit arithmetic, straight from
    the definition (no Jacobi rewrite), shape (len(r), n_max)."""
    ctx = mpmath.MPContext()
    ctx.dps = dps
    S = ctx.matrix(n_max, n_max)
    for a in range(n_max):
        for b in range(n_max):
            S[a, b] = ctx.sqrt((2 * a + 7) * (2 * b + 7)) / (a + b + 7)  # α = a + 1
    values, vectors = ctx.eigsy(S)
    W = vectors * ctx.diag([1 / ctx.sqrt(v) for v in values]) * vectors.T
    rc = ctx.mpf(r_cut)
    out = np.zeros((len(r), n_max))
    for k, rk in enumerate(r):
        phi = [(rc - ctx.mpf(rk)) ** (a + 3) / ctx.sqrt(rc ** (2 * a + 7) / (2 * a + 7)) for a in range(n_max)]
        for n in range(n_max):
            out[k, n] = float(ctx.fsum(W[n, a] * phi[a] for a in range(n_max)))
    return out


def brute_force_afs(atoms: Atoms, n_max: int, l_max: int, r_cut: float) -> np.ndarray:
    """A^i_{n,l} = Σ_{j<k} g_n(r_ij) g_n(r_ik) T_l(cos θ_jik), summed plainly over triplets."""
    i_idx, vectors = neighbor_list("iD", atoms, r_cut)
    basis = RadialBasis(n_max, r_cut)
    out = np.zeros((len(atoms), n_max, l_max + 1))
    for i in range(len(atoms)):
        V = vectors[i_idx == i]
        r = np.linalg.norm(V, axis=1)
        g, _ = basis(r)
        for j in range(len(V)):
            for k in range(j + 1, len(V)):
                cos = np.clip(V[j] @ V[k] / (r[j] * r[k]), -1.0, 1.0)
                T = np.cos(np.arange(l_max + 1) * math.acos(cos))
                out[i] += np.outer(g[j] * g[k], T)
    return out.reshape(len(atoms), -1)


# --------------------------------------------------------------------------- building blocks
def test_chebyshev_to_legendre_coefficients_reproduce_chebyshev_polynomials():
    exact = chebyshev_to_legendre_exact(10)
    # T_2 = -P_0/3 + 4 P_2/3
    assert exact[2][0] == pytest.approx(-1 / 3) and exact[2][2] == pytest.approx(4 / 3)
    coeffs = chebyshev_to_legendre(10)
    for l in range(11):
        expected = legendre.poly2leg(chebyshev.cheb2poly([0] * l + [1]))
        assert np.allclose(coeffs[l, : l + 1], expected, rtol=0, atol=1e-13)
        assert np.all(coeffs[l, l + 1 :] == 0)
        assert all(c == 0 for lam, c in enumerate(exact[l]) if (l - lam) % 2)  # parity


def test_real_spherical_harmonics_obey_the_addition_theorem(rng):
    u = rng.normal(size=(40, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    Y = real_spherical_harmonics(u, 10)
    for l in range(11):
        block = Y[:, l * l : (l + 1) ** 2]
        expected = (2 * l + 1) / (4 * np.pi) * legendre.legval(u @ u.T, [0] * l + [1])
        assert np.allclose(block @ block.T, expected, rtol=0, atol=1e-12)


def test_spherical_harmonic_gradient_matches_finite_differences(rng):
    r = rng.normal(size=(6, 3))
    weights = rng.normal(size=(6, 121))
    d = np.linalg.norm(r, axis=1, keepdims=True)
    u = r / d
    tangent = real_spherical_harmonics_vjp(u, 10, weights)
    analytic = (tangent - np.sum(tangent * u, axis=1, keepdims=True) * u) / d
    h = 1e-6
    numeric = np.zeros_like(r)
    for a in range(3):
        step = np.zeros(3)
        step[a] = h
        plus = real_spherical_harmonics((r + step) / np.linalg.norm(r + step, axis=1, keepdims=True), 10)
        minus = real_spherical_harmonics((r - step) / np.linalg.norm(r - step, axis=1, keepdims=True), 10)
        numeric[:, a] = np.sum(weights * (plus - minus), axis=1) / (2 * h)
    assert np.allclose(analytic, numeric, rtol=1e-7, atol=1e-7 * np.abs(numeric).max())


def test_complex_spherical_harmonics_match_scipy(rng):
    u = rng.normal(size=(30, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    theta, phi = np.arccos(u[:, 2]), np.arctan2(u[:, 1], u[:, 0])
    expected = np.stack(
        [sph_harm_y(l, m, theta, phi) for l in range(9) for m in range(-l, l + 1)], axis=1
    )
    assert np.allclose(complex_spherical_harmonics(u, 8), expected, rtol=0, atol=1e-13)


def test_radial_basis_is_orthonormal_on_the_cutoff_sphere():
    nodes, weights = np.polynomial.legendre.leggauss(60)  # exact for degree <= 119
    r = (nodes + 1) * 2.5
    g, _ = RadialBasis(20, 5.0)(r)
    overlap = (g * (weights * 2.5)[:, None]).T @ g
    assert np.allclose(overlap, np.eye(20), rtol=0, atol=1e-11)


def test_radial_basis_equals_symmetric_orthonormalisation_in_extended_precision():
    r = np.array([0.0, 0.7, 2.2, 2.48, 3.9, 4.6, 4.99])
    expected = plain_radial_basis(20, 5.0, r)
    g, _ = RadialBasis(20, 5.0)(r)
    assert np.allclose(g, expected, rtol=0, atol=1e-13 * np.abs(expected).max())


def test_radial_basis_vanishes_with_zero_slope_at_the_cutoff():
    g, dg = RadialBasis(20, 5.0)(np.array([5.0, 5.3]), derivative=True)
    assert np.all(g == 0) and np.all(dg == 0)


def test_afs_unchanged_when_radial_precision_is_raised():
    assert np.max(np.abs(rotation_matrix(20, 60) - rotation_matrix(20, 100))) < 1e-15
    atoms = fe_vacancy_cell(2)
    low, high = AFSDescriptor(), AFSDescriptor()
    high.radial = RadialBasis(20, 5.0, dps=100)
    assert_descriptors_close(high.compute(atoms), low.compute(atoms), 1e-9, "dps 60 -> 100")


def test_too_few_digits_for_the_radial_basis_are_refused():
    with pytest.raises(DescriptorError, match="dps"):
        rotation_matrix(20, 20)


# --------------------------------------------------------------------------- definition
def test_spherical_harmonic_route_equals_triplet_sum_on_random_clusters(afs):
    for seed in range(3):
        cluster = random_cluster(14, radius=3.5, min_distance=1.9, seed=seed)
        assert_descriptors_close(
            afs.compute(cluster), brute_force_afs(cluster, 20, 10, 5.0), 1e-10, f"cluster {seed}"
        )


def test_spherical_harmonic_route_equals_triplet_sum_on_a_vacancy_cell(afs):
    atoms = fe_vacancy_cell(2, rattle=0.08)  # 15 atoms, 5 Å > half the cell: many images
    assert_descriptors_close(afs.compute(atoms), brute_force_afs(atoms, 20, 10, 5.0), 1e-10, "vacancy")


def test_spherical_harmonic_route_equals_triplet_sum_in_a_triclinic_cell(small_afs):
    atoms = triclinic_fe_cell(2)
    assert_descriptors_close(
        small_afs.compute(atoms), brute_force_afs(atoms, 6, 4, 4.5), 1e-10, "triclinic"
    )


def test_components_are_n_major_and_l0_is_the_pair_product_sum(afs):
    # T_0 = 1: A_{n,0} = Σ_{j<k} g_n(r_j) g_n(r_k) = ½[(Σ_j g_n)² - Σ_j g_n²]
    cluster = random_cluster(10, radius=3.0, min_distance=1.9, seed=5)
    i_idx, d = neighbor_list("id", cluster, 5.0)
    g, _ = RadialBasis(20, 5.0)(d[i_idx == 0])
    expected = 0.5 * (g.sum(axis=0) ** 2 - (g**2).sum(axis=0))
    A = afs.compute(cluster)[0]
    assert afs.dim == 220
    assert np.allclose(A[[n * 11 for n in range(20)]], expected, rtol=1e-12, atol=1e-14)


def test_an_isolated_atom_and_a_dimer_have_zero_afs(afs):
    # no pair of distinct neighbours exists
    assert np.all(afs.compute(Atoms("Fe", positions=[[0, 0, 0]])) == 0)
    dimer = Atoms("Fe2", positions=[[0, 0, 0], [0, 0, 2.3]])
    assert np.allclose(afs.compute(dimer), 0, atol=1e-14)


# --------------------------------------------------------------------------- symmetries
@pytest.mark.parametrize("make", [fe_vacancy_cell, triclinic_fe_cell, random_cluster])
def test_afs_is_invariant_under_translation_rotation_and_permutation(afs, make):
    atoms = make()
    assert_translation_invariant(afs, atoms)
    assert_rotation_invariant(afs, atoms, seed=11)
    assert_permutation_invariant(afs, atoms, seed=12)


def test_afs_is_extensive_in_a_cell_smaller_than_twice_the_cutoff(afs):
    # 2x2x2 bcc: 5.7 Å cell, 5 Å cut-off reaches many images; the 3x3x3 replica must agree atom by atom
    assert_extensive(afs, bcc_fe(2), reps=(3, 3, 3))
    assert_extensive(afs, bcc_fe(1), reps=(4, 4, 4))  # 2.9 Å cell: each atom sees ~29 own images


def test_afs_of_a_vacancy_cell_is_extensive(afs):
    assert_extensive(afs, fe_vacancy_cell(2), reps=(2, 2, 2))


def test_afs_of_a_triclinic_cell_is_extensive(small_afs):
    assert_extensive(small_afs, triclinic_fe_cell(2), reps=(2, 1, 3))


def test_afs_is_smooth_as_a_neighbour_crosses_the_cutoff(afs, small_afs):
    assert_smooth_at_cutoff(afs)
    assert_smooth_at_cutoff(small_afs)


def test_species_are_checked_but_not_distinguished():
    fe_cr = AFSDescriptor(n_max=4, l_max=3, species=["Fe", "Cr"])
    atoms = fe_vacancy_cell(2)
    alloy = atoms.copy()
    alloy.symbols[[0, 3, 5]] = "Cr"
    assert_descriptors_close(fe_cr.compute(alloy), fe_cr.compute(atoms), 1e-14, "element-agnostic")
    with pytest.raises(DescriptorError, match=r"configured for species \['Fe'\].*\['Cr'\]"):
        AFSDescriptor(n_max=4, l_max=3, species=["Fe"]).compute(alloy)


# --------------------------------------------------------------------------- gradients
def test_vjp_matches_finite_differences_in_a_vacancy_cell(afs):
    assert_vjp_matches_finite_differences(afs, fe_vacancy_cell(2), indices=[0, 4, 9])


def test_vjp_matches_finite_differences_in_triclinic_cells_and_clusters(small_afs):
    assert_vjp_matches_finite_differences(small_afs, triclinic_fe_cell(2), indices=[1, 6])
    assert_vjp_matches_finite_differences(small_afs, random_cluster(9, radius=3.0, seed=3))


def test_vjp_sums_to_zero_by_translation_invariance(afs, rng):
    grad = afs.vjp(fe_vacancy_cell(3), rng.normal(size=afs.dim))
    assert np.abs(grad.sum(axis=0)).max() < 1e-10 * np.abs(grad).max()


def test_chunked_vjp_equals_unchunked(small_afs, rng):
    atoms = fe_vacancy_cell(3, rattle=0.1)
    w = rng.normal(size=small_afs.dim)
    assert np.allclose(
        small_afs.vjp(atoms, w, chunk_size=6), small_afs.vjp(atoms, w), rtol=0, atol=1e-11
    )


# --------------------------------------------------------------------------- chunks and threads
def test_chunked_sum_equals_unchunked_across_chunk_boundaries_and_images(afs):
    atoms = fe_vacancy_cell(3, rattle=0.1)  # 53 atoms; chunk_size 5 -> 27 chunks of ~2 atoms
    for chunk_size in (5, 12, 30):
        assert_compute_sum_matches(afs, atoms, chunk_size)


def test_chunked_sum_equals_unchunked_for_triclinic_cells_and_clusters(small_afs):
    assert_compute_sum_matches(small_afs, triclinic_fe_cell(3), 7)
    assert_compute_sum_matches(small_afs, random_cluster(30, radius=6.0, seed=8), 4)


def test_threads_and_batch_sizes_do_not_change_the_result():
    atoms = fe_vacancy_cell(3)
    reference = AFSDescriptor(n_threads=1, pair_batch=1_000_000).compute(atoms)
    other = AFSDescriptor(n_threads=3, pair_batch=100).compute(atoms)  # one centre per batch
    # Only the summation order differs; a component that is a near-cancelling sum of larger
    # terms (here one of 1e-7 against O(1) terms) keeps that sum's round-off, ~1e-13 of it.
    assert_descriptors_close(other, reference, 1e-12, "threads/batches")


# --------------------------------------------------------------------------- parameters and errors
def test_params_are_complete_json_and_rebuild_the_same_provider():
    provider = descriptors.get("afs", n_max=8, l_max=4, r_cut=4.0, species=["Fe"])
    params = json.loads(json.dumps(provider.params))
    assert params == {"n_max": 8, "l_max": 4, "r_cut": 4.0, "species": ["Fe"]}
    rebuilt = descriptors.get("afs", **params)
    assert rebuilt.hash == provider.hash and len(provider.hash) == 16
    assert descriptors.get("afs", n_max=8, l_max=5, r_cut=4.0, species=["Fe"]).hash != provider.hash
    assert provider.dim == 8 * 5 and provider.has_gradient


@pytest.mark.parametrize(
    "params, message",
    [
        ({"r_cut": 0.0}, "r_cut"),
        ({"r_cut": -1.0}, "r_cut"),
        ({"r_cut": float("nan")}, "r_cut"),
        ({"n_max": 0}, "n_max"),
        ({"n_max": 2.5}, "n_max"),
        ({"l_max": -1}, "l_max"),
        ({"species": ["Xx"]}, "species"),
        ({"species": []}, "species"),
    ],
)
def test_bad_parameters_raise_descriptor_error(params, message):
    with pytest.raises(DescriptorError, match=message):
        descriptors.get("afs", **params)


def test_unknown_provider_name_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="afs"):
        descriptors.get("afz")


def test_wrong_weight_shape_is_refused(small_afs):
    with pytest.raises(DescriptorError, match="shape"):
        small_afs.vjp(bcc_fe(1), np.ones(3))


def test_overlapping_atoms_are_refused(afs):
    atoms = bcc_fe(2)
    atoms.positions[1] = atoms.positions[0] + 0.1
    with pytest.raises(InvalidStructureError, match="apart"):
        afs.compute(atoms)


def _strained_sum(afs: AFSDescriptor, atoms: Atoms, w: np.ndarray, strain: np.ndarray) -> float:
    """w · Σ_i A^i of ``atoms`` with cell and positions mapped r -> (I + strain) r."""
    deformed = atoms.copy()
    deformed.set_cell(atoms.cell.array @ (np.eye(3) + strain).T, scale_atoms=True)
    return float(w @ afs.compute_sum(deformed))


def test_strain_gradient_matches_central_differences_of_the_strained_sum(small_afs, rng):
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.set_cell(atoms.cell.array @ [[1.0, 0.03, 0.0], [0.0, 1.0, -0.02], [0.01, 0.0, 1.0]], scale_atoms=True)
    atoms.rattle(0.1, seed=5)
    del atoms[3]
    w = rng.normal(size=small_afs.dim)
    analytic = small_afs.strain_gradient(atoms, w)
    h = 1e-5
    numeric = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            step = np.zeros((3, 3))
            step[a, b] = h
            numeric[a, b] = (_strained_sum(small_afs, atoms, w, step) - _strained_sum(small_afs, atoms, w, -step)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8 * np.abs(numeric).max())
    # a rotation-invariant sum has a symmetric virial
    np.testing.assert_allclose(analytic, analytic.T, atol=1e-10 * np.abs(analytic).max())
    assert np.abs(analytic).max() > 1e-2  # not vacuous


def test_strain_gradient_in_spatial_chunks_equals_the_whole_cell(small_afs, rng):
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(4)
    atoms.rattle(0.05, seed=6)
    w = rng.normal(size=small_afs.dim)
    whole = small_afs.strain_gradient(atoms, w)
    chunked = small_afs.strain_gradient(atoms, w, chunk_size=40)
    np.testing.assert_allclose(chunked, whole, rtol=1e-10, atol=1e-12 * np.abs(whole).max())
