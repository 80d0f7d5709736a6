"""Solid-harmonic wavelet scattering S_{J,L} (paper Eq. 19-21).

Expectations come from closed forms (Legendre addition theorem, a single Gaussian atom, the
l = 0 channel counting atoms), plain-sum structure factors written here, and symmetry. Grids are
coarse where a property holds exactly on any grid (rotation with the cell, permutations, grid
translations, commensurate replicas) and finer where the quadrature error is what is tested.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from descriptor_checks import (
    assert_descriptors_close,
    assert_permutation_invariant,
    assert_rotation_invariant,
    assert_vjp_matches_finite_differences,
    fe_vacancy_cell,
    random_cluster,
    random_rotation,
    rotated,
    triclinic_fe_cell,
)
from scipy.integrate import quad
from scipy.special import eval_legendre, sph_harm_y

from ase_vibentropy import descriptors
from ase_vibentropy.descriptors.scattering import (
    PAPER_SCALES,
    WaveletScatteringDescriptor,
    deposit_density_hat,
    real_solid_harmonics,
    single_atom_scattering,
)
from ase_vibentropy.errors import DescriptorError

#: Cheap settings for tests of exact properties (any grid satisfies them).
FAST = dict(scales=(0.0, 0.5, 1.0, 3.0), l_max=5, grid_spacing=0.28)


def fast(**extra) -> WaveletScatteringDescriptor:
    return WaveletScatteringDescriptor(**{**FAST, **extra})


# --------------------------------------------------------------------------- building blocks
def test_real_solid_harmonics_obey_the_legendre_addition_theorem(rng):
    # Σ_m Y_lm(a) Y_lm(b) = (2l+1)/(4π) P_l(â·b̂) holds only for an orthonormal real basis of
    # degree l: it checks normalisation, completeness and rotation covariance at once.
    a, b = rng.normal(size=(2, 7, 3))
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    ya, yb = real_solid_harmonics(a, 12), real_solid_harmonics(b, 12)
    for l in range(13):
        lhs = np.einsum("mi,mi->i", ya[l], yb[l])
        rhs = (
            (2 * l + 1)
            / (4 * np.pi)
            * (na * nb) ** l
            * eval_legendre(l, np.sum(a * b, 1) / (na * nb))
        )
        np.testing.assert_allclose(lhs, rhs, rtol=1e-11, atol=1e-13 * np.max(np.abs(rhs)))


def test_real_solid_harmonics_match_scipy_complex_harmonics_in_magnitude(rng):
    # Real Y_l,±m = √2 (Re, Im) of the complex Y_l^|m| up to the Condon-Shortley sign.
    v = rng.normal(size=(5, 3))
    r = np.linalg.norm(v, axis=1)
    theta, phi = np.arccos(v[:, 2] / r), np.arctan2(v[:, 1], v[:, 0])
    ours = real_solid_harmonics(v, 6)
    for l in range(7):
        for m in range(-l, l + 1):
            y = sph_harm_y(l, abs(m), theta, phi)
            expected = y.real if m == 0 else math.sqrt(2) * (y.real if m > 0 else y.imag)
            np.testing.assert_allclose(
                np.abs(ours[l][m + l]), np.abs(expected * r**l), rtol=1e-10, atol=1e-12
            )


def test_solid_harmonics_are_regular_at_the_origin():
    at_zero = real_solid_harmonics(np.zeros(3), 9)
    assert at_zero[0][0] == pytest.approx(1 / math.sqrt(4 * math.pi))
    for l in range(1, 10):
        assert np.all(at_zero[l] == 0.0)


def test_gaussian_gridding_equals_the_direct_structure_factor_in_a_triclinic_cell():
    atoms = triclinic_fe_cell(2)
    cell = atoms.cell.array
    shape = (30, 32, 27)
    tau = 1.25 * float(np.max(np.linalg.norm(cell, axis=1) / np.array(shape)))
    hat = deposit_density_hat(atoms.get_scaled_positions(), cell, shape, tau)
    m = np.stack(
        np.meshgrid(
            np.fft.fftfreq(shape[0], 1 / shape[0]),
            np.fft.fftfreq(shape[1], 1 / shape[1]),
            np.arange(shape[2] // 2 + 1),
            indexing="ij",
        ),
        axis=-1,
    )
    k = 2 * np.pi * m @ np.linalg.inv(cell).T
    structure_factor = np.zeros(k.shape[:3], dtype=complex)
    for r in atoms.positions:  # plain sum over atoms
        structure_factor += np.exp(-1j * k @ r)
    k2 = np.sum(k * k, axis=-1)
    expected = structure_factor * np.exp(-0.5 * tau**2 * k2) * np.prod(shape) / atoms.cell.volume
    # Compare where the scattering uses it: after the narrowest field envelope
    # exp(-(σ² + s0² - τ²) k²/2).
    weight = np.exp(-0.5 * (1.25**2 + 2.5**2 - tau**2) * k2)
    err = np.max(np.abs((hat - expected) * weight)) / np.max(np.abs(expected * weight))
    assert err < 1e-12


def test_single_atom_closed_form_equals_the_radial_integral():
    # g_σ * ψ_{j,l}^m = s^l A^-(2l+3)/2 (2π)^-3/2 e^{-r²/2A} r^l Y_lm, A = σ² + s²
    # (product of Gaussians in Fourier space), and Σ_m Y_lm² = (2l+1)/4π.
    sigma, s = 1.1, 3.7
    a = sigma**2 + s**2
    for l in range(10):
        amplitude = (
            s**l
            * a ** (-(2 * l + 3) / 2)
            * (2 * np.pi) ** -1.5
            * math.sqrt((2 * l + 1) / (4 * np.pi))
        )
        radial, _ = quad(
            lambda r, c=amplitude, l=l: 4 * np.pi * r**2 * c * r**l * np.exp(-r * r / (2 * a)),
            0,
            np.inf,
            epsabs=0,
            epsrel=1e-13,
        )
        assert single_atom_scattering(sigma, s, l) == pytest.approx(radial, rel=1e-11)


# --------------------------------------------------------------------------- analytic values
def test_single_isolated_atom_gives_the_closed_form_coefficients():
    provider = WaveletScatteringDescriptor(scales=(0.0, 1.0), l_max=4, grid_spacing=0.7)
    got = provider.compute_sum(Atoms("Fe", positions=[[0.3, 0.1, -0.2]], pbc=False)).reshape(2, 5)
    expected = np.array(
        [[single_atom_scattering(1.25, 2.5 * 2**j, l) for l in range(5)] for j in (0, 1)]
    )
    # Even l: the modulus is smooth, the grid sum is spectrally exact. Odd l: the field vanishes
    # at the atom like |r|^l, a cusp for l = 1 that the grid sum resolves to ~h^4.
    np.testing.assert_allclose(got[:, 0::2], expected[:, 0::2], rtol=1e-9)
    np.testing.assert_allclose(got[:, 1::2], expected[:, 1::2], rtol=1e-4)


@pytest.mark.parametrize(
    "atoms",
    [fe_vacancy_cell(2, rattle=0.1), triclinic_fe_cell(2), random_cluster(5, radius=2.5)],
    ids=["vacancy-cell", "triclinic", "cluster"],
)
def test_l0_channel_counts_atoms(atoms):
    # ρ >= 0 and ψ_{j,0} >= 0, so the modulus is idle: S[j,0] = ∫ρ * ψ = N ∫ψ = N/√(4π).
    provider = WaveletScatteringDescriptor(scales=(0.0, 2.0), l_max=1, grid_spacing=0.5)
    s = provider.compute_sum(atoms).reshape(2, 2)
    np.testing.assert_allclose(s[:, 0], len(atoms) / math.sqrt(4 * math.pi), rtol=1e-11)


def test_perfect_crystal_has_no_angular_signal_when_the_wavelet_is_wider_than_the_cell():
    # A perfect bcc crystal's density has Fourier terms only at k = 0 and at |k| >= 2π√2/a0; at
    # s = 20 Å the envelope exp(-s²k²/2) kills the latter, and ψ̂_{l>0}(0) = 0, so every l > 0
    # field vanishes.
    provider = WaveletScatteringDescriptor(scales=(3.0,), l_max=3, grid_spacing=0.28)
    s = provider.compute_sum(bulk("Fe", "bcc", a=2.855324, cubic=True) * 2)
    assert np.all(np.abs(s[1:]) < 1e-12 * s[0])


# --------------------------------------------------------------------------- invariances
def test_rotating_a_periodic_cell_with_its_atoms_leaves_S_unchanged():
    provider = fast()
    for atoms in (fe_vacancy_cell(2, rattle=0.1), triclinic_fe_cell(2)):
        assert_rotation_invariant(provider, atoms, seed=3, rtol=1e-10)


def test_cubic_rotation_of_the_atoms_inside_a_fixed_cell_is_exact():
    # A 90° turn about z maps the cubic cell and its FFT grid onto themselves.
    atoms = fe_vacancy_cell(2, rattle=0.1)
    turned = atoms.copy()
    turned.positions = atoms.positions @ np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]]).T
    turned.wrap()
    provider = fast()
    assert_descriptors_close(
        provider.compute_sum(turned), provider.compute_sum(atoms), 1e-10, "C4 rotation"
    )


def test_improper_rotation_leaves_S_unchanged():
    # Σ_m |.|² is invariant under inversion too (Y_lm -> (-1)^l Y_lm).
    atoms = fe_vacancy_cell(2, rattle=0.1)
    mirrored = atoms.copy()
    mirrored.positions = -atoms.positions
    mirrored.wrap()
    provider = fast()
    assert_descriptors_close(
        provider.compute_sum(mirrored), provider.compute_sum(atoms), 1e-10, "inversion"
    )


def test_isolated_cluster_rotation_changes_S_only_by_the_quadrature_error():
    # Each orientation gets its own axis-aligned padded box, hence a different grid.
    cluster = random_cluster(5, radius=2.5)
    provider = WaveletScatteringDescriptor(scales=(0.0, 1.0), l_max=3, grid_spacing=0.5)
    assert_descriptors_close(
        provider.compute_sum(rotated(cluster, random_rotation(2))),
        provider.compute_sum(cluster),
        1e-5,
        "cluster rotation",
    )


def test_translation_by_a_grid_vector_is_exact():
    atoms = fe_vacancy_cell(2, rattle=0.1)
    length = atoms.cell.lengths()[0]
    provider = WaveletScatteringDescriptor(
        scales=(0.0,), l_max=6, grid_spacing=length / 39.9
    )  # 40³ grid
    moved = atoms.copy()
    moved.positions += np.array([5, -3, 7]) / 40 @ atoms.cell.array
    moved.wrap()
    assert_descriptors_close(
        provider.compute_sum(moved), provider.compute_sum(atoms), 1e-10, "grid translation"
    )


def test_any_translation_changes_S_only_by_the_quadrature_error():
    # The deposition is translation exact; the grid sum of the modulus is not, by ~h^4 at cusps.
    atoms = fe_vacancy_cell(2, rattle=0.1)
    provider = WaveletScatteringDescriptor(scales=(0.0, 0.75), l_max=5)  # default grid spacing
    moved = atoms.copy()
    moved.positions += [0.731, -1.372, 2.113]
    moved.wrap()
    assert_descriptors_close(
        provider.compute_sum(moved), provider.compute_sum(atoms), 1e-5, "translation"
    )


def test_permuting_atoms_changes_nothing():
    atoms = fe_vacancy_cell(2, rattle=0.1)
    provider = fast()
    assert_permutation_invariant(provider, atoms, rtol=1e-11)
    perm = np.random.default_rng(5).permutation(len(atoms))
    assert_descriptors_close(
        provider.compute_sum(atoms[perm]), provider.compute_sum(atoms), 1e-11, "perm"
    )


def test_replica_gives_n_times_S_on_commensurate_grids():
    # One scale and a spacing that gives 40 points on the cell and 80 on the 2x1x1 replica: the
    # replica's grid is the cell's grid repeated, so S is exactly extensive.
    atoms = fe_vacancy_cell(2, rattle=0.1)
    length = atoms.cell.lengths()[0]
    provider = WaveletScatteringDescriptor(
        scales=(0.0,), l_max=6, grid_spacing=length / 39.9, min_points=4
    )
    small = provider.compute_sum(atoms)
    big = provider.compute_sum(atoms.repeat((2, 1, 1)))
    assert_descriptors_close(big, 2 * small, 1e-10, "extensivity")


def test_replica_gives_n_times_S_within_quadrature_error_with_default_grids():
    atoms = fe_vacancy_cell(2, rattle=0.1)
    provider = WaveletScatteringDescriptor(scales=(0.0, 0.5, 2.0), l_max=4, grid_spacing=0.28)
    big = provider.compute_sum(atoms.repeat((2, 2, 1)))
    assert_descriptors_close(
        big, 4 * provider.compute_sum(atoms), 1e-4, "extensivity, default grids"
    )


def test_halving_the_default_grid_spacing_changes_S_by_less_than_1e_minus_6():
    atoms = fe_vacancy_cell(2, rattle=0.1)
    coarse = WaveletScatteringDescriptor(scales=(0.0, 0.75), l_max=5)
    fine = WaveletScatteringDescriptor(
        scales=(0.0, 0.75), l_max=5, grid_spacing=coarse.grid_spacing / 2
    )
    s_coarse, s_fine = coarse.compute_sum(atoms), fine.compute_sum(atoms)
    assert np.max(np.abs(s_coarse / s_fine - 1)) < 1e-6


# --------------------------------------------------------------------------- protocol
def test_registry_builds_the_paper_descriptor_with_90_components():
    provider = descriptors.get("scattering")
    assert isinstance(provider, WaveletScatteringDescriptor)
    assert provider.dim == 90 and provider.is_local is False
    assert provider.params["scales"] == list(PAPER_SCALES) and provider.params["l_max"] == 9
    rebuilt = descriptors.get("scattering", **provider.params)
    assert rebuilt.hash == provider.hash
    assert len(provider.component_labels()) == 90


def test_per_atom_rows_are_equal_shares_summing_to_S():
    atoms = fe_vacancy_cell(2, rattle=0.1)
    provider = fast()
    rows = provider.compute(atoms)
    assert rows.shape == (len(atoms), provider.dim)
    np.testing.assert_array_equal(rows, np.broadcast_to(rows[0], rows.shape))
    np.testing.assert_allclose(rows.sum(axis=0), provider.compute_sum(atoms), rtol=1e-13)


def test_species_blocks_equal_the_single_species_descriptor_of_each_sublattice():
    atoms = fe_vacancy_cell(2, rattle=0.1)
    symbols = atoms.get_chemical_symbols()
    for i in range(0, len(atoms), 3):
        symbols[i] = "Cr"
    atoms.set_chemical_symbols(symbols)
    provider = fast(species=["Fe", "Cr"])
    both = provider.compute_sum(atoms)
    assert both.shape == (2 * 4 * 6,)
    for block, symbol in enumerate(["Fe", "Cr"]):
        sub = atoms[[i for i, s in enumerate(symbols) if s == symbol]]
        assert_descriptors_close(
            both[block * 24 : (block + 1) * 24], fast().compute_sum(sub), 1e-12, symbol
        )


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params",
    [
        {"sigma": -1.0},
        {"sigma": "wide"},
        {"base_scale": 0.0},
        {"scales": []},
        {"scales": [0.0, 0.0]},
        {"scales": [0.0, float("nan")]},
        {"l_max": -1},
        {"l_max": 2.5},
        {"grid_spacing": 1.5},
        {"grid_spacing": float("inf")},
        {"min_points": 2},
        {"padding": 1.0},
        {"species": "Fe"},
        {"species": ["Fe", "Fe"]},
    ],
)
def test_bad_parameters_raise_descriptor_error(params):
    with pytest.raises(DescriptorError):
        WaveletScatteringDescriptor(**params)


def test_unconfigured_species_raise_descriptor_error():
    atoms = fe_vacancy_cell(2)
    atoms[0].symbol = "Cr"
    with pytest.raises(DescriptorError, match="Cr"):
        fast(species=["Fe"]).compute_sum(atoms)


# --------------------------------------------------------------------------- gradient
@pytest.mark.parametrize(
    "atoms", [fe_vacancy_cell(2, rattle=0.1), triclinic_fe_cell(2)], ids=["cubic", "triclinic"]
)
def test_vjp_matches_central_finite_differences_in_periodic_cells(atoms):
    provider = WaveletScatteringDescriptor(scales=(0.0, 0.75, 2.0), l_max=4, grid_spacing=0.28)
    assert_vjp_matches_finite_differences(provider, atoms, h=1e-4, rtol=1e-6, indices=[0, 5, 11])


def test_vjp_matches_central_finite_differences_for_an_isolated_cluster():
    cluster = random_cluster(3, radius=2.0)
    provider = WaveletScatteringDescriptor(scales=(0.0, 1.0), l_max=3, grid_spacing=0.7)
    assert_vjp_matches_finite_differences(provider, cluster, h=1e-4, rtol=1e-6, indices=[1])


def test_gradient_sums_to_zero_in_a_periodic_cell():
    # S is invariant under a rigid translation, so Σ_i ∂(w·S)/∂r_i = 0 (grid translations are
    # exact symmetries of the discrete S, and the deposition is exactly translation covariant).
    provider = WaveletScatteringDescriptor(scales=(0.0, 1.0), l_max=4, grid_spacing=0.28)
    atoms = fe_vacancy_cell(2, rattle=0.1)
    grad = provider.vjp(atoms, np.random.default_rng(2).normal(size=provider.dim))
    assert np.max(np.abs(grad.sum(axis=0))) < 1e-3 * np.max(np.abs(grad))
