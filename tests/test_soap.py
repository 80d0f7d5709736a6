"""SOAP provider backed by featomic (the ``soap`` extra): symmetries, extensivity, gradients."""

from __future__ import annotations

import subprocess
import sys

import pytest
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

from ase_vibentropy import descriptors
from ase_vibentropy.errors import DescriptorError, MissingDependencyError

featomic = pytest.importorskip("featomic", reason="the soap extra (featomic) is not installed")


@pytest.fixture(scope="module")
def soap():
    """Default SOAP: n_max 8, l_max 6, r_cut 5 Å."""
    return descriptors.get("soap")


@pytest.fixture(scope="module")
def small_soap():
    return descriptors.get("soap", n_max=4, l_max=3, r_cut=4.5)


def test_default_soap_has_the_benchmark_hyperparameters(soap):
    assert soap.params["n_max"] == 8 and soap.params["l_max"] == 6 and soap.params["r_cut"] == 5.0
    assert soap.dim == 8 * 8 * 7
    assert soap.compute(bcc_fe(2)).shape == (16, soap.dim)


def test_soap_values_are_featomics_power_spectrum(small_soap):
    atoms = fe_vacancy_cell(2)
    calc = featomic.SoapPowerSpectrum(
        cutoff={"radius": 4.5, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={"type": "TensorProduct", "max_angular": 3, "radial": {"type": "Gto", "max_radial": 3}},
    )
    block = calc.compute(atoms).block(0)
    assert_descriptors_close(small_soap.compute(atoms), block.values, 1e-12, "featomic")


@pytest.mark.parametrize("make", [fe_vacancy_cell, triclinic_fe_cell, random_cluster])
def test_soap_is_invariant_under_translation_rotation_and_permutation(soap, make):
    atoms = make()
    assert_translation_invariant(soap, atoms, rtol=1e-9)
    assert_rotation_invariant(soap, atoms, seed=4, rtol=1e-8)
    assert_permutation_invariant(soap, atoms, seed=5, rtol=1e-9)


def test_soap_is_extensive_in_a_cell_smaller_than_twice_the_cutoff(soap):
    assert_extensive(soap, bcc_fe(2), reps=(2, 2, 2), rtol=1e-8)
    assert_extensive(soap, fe_vacancy_cell(2), reps=(2, 1, 2), rtol=1e-8)


def test_chunked_soap_sum_equals_unchunked(small_soap):
    assert_compute_sum_matches(small_soap, fe_vacancy_cell(3), 9, rtol=1e-9)


def test_soap_is_smooth_at_the_cutoff(small_soap):
    assert_smooth_at_cutoff(small_soap)


def test_soap_vjp_matches_finite_differences(small_soap):
    # featomic splines its radial integrals (C1 cubic Hermite), so central differences agree with
    # its analytic derivative to ~1e-7, not to round-off
    assert_vjp_matches_finite_differences(small_soap, fe_vacancy_cell(2), indices=[0, 5], rtol=1e-6)
    assert_vjp_matches_finite_differences(small_soap, random_cluster(8, radius=3.0), indices=[1, 4], rtol=1e-6)


def test_soap_is_element_agnostic_but_checks_species():
    provider = descriptors.get("soap", n_max=3, l_max=2, species=["Cr", "Fe"])
    atoms = fe_vacancy_cell(2)
    alloy = atoms.copy()
    alloy.symbols[[1, 2]] = "Cr"
    assert_descriptors_close(provider.compute(alloy), provider.compute(atoms), 1e-13, "agnostic")
    alloy.symbols[0] = "Ni"
    with pytest.raises(DescriptorError, match="Ni"):
        provider.compute(alloy)


@pytest.mark.parametrize(
    "params", [{"r_cut": 0}, {"n_max": 0}, {"l_max": -1}, {"cutoff_smoothing_width": 9.0}]
)
def test_bad_soap_parameters_raise_descriptor_error(params):
    with pytest.raises(DescriptorError):
        descriptors.get("soap", **params)


def test_soap_module_imports_without_featomic():
    code = (
        "import sys; import ase_vibentropy.descriptors.soap as s; "
        "assert 'featomic' not in sys.modules; s.SOAPDescriptor().params"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_featomic_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "featomic", None)  # makes `import featomic` fail
    provider = descriptors.get("soap")
    with pytest.raises(MissingDependencyError, match=r"ase-vibentropy\[soap\]"):
        provider.compute(bcc_fe(1))
