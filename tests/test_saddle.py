"""First-order saddles: mode counts, Vineyard attempt frequencies, refinement, the Fe vacancy jump.

The analytic case is a periodic cell of two atoms whose energy depends only on their separation
r = x_2 - x_1 - r_0 = (u, v, w):

    E = a (u² - b²)² + ½ (k_0 + c u²) v² + ½ k_w w²

Minima at u = ±b, a first-order saddle at u = 0 (ΔE = a b⁴). The Hessian is [[K, -K], [-K, K]]
with K = ∂²E/∂r², so the three vibrational ω² are the curvatures of K over the reduced mass μ,
and ν* = (1/2π) sqrt(8ab²/μ) sqrt((k_0 + c b²)/k_0) (the w mode cancels) in closed form.
With k_w < 0 the point u = 0 is a second-order saddle.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from ase_vibentropy.cli.main import main
from ase_vibentropy.data.builders import minimum_image, vacancy_jump
from ase_vibentropy.errors import (
    CellMismatchError,
    HigherOrderSaddleError,
    NotAFirstOrderSaddleError,
    NotAMinimumError,
    NotRelaxedError,
    SaddleIsMinimumError,
)
from ase_vibentropy.harmonic import (
    attempt_frequency,
    band_jumps,
    band_segments,
    climbing_band,
    harmonic_entropy,
    log_pdet_saddle,
    omega2_spectrum,
    refine_saddle,
)
from ase_vibentropy.potentials import get_potential
from ase_vibentropy.units import HBAR_EV_S, KB_EV_PER_K, OMEGA_UNIT_RAD_PER_S

A, B, K0, C, KW = 0.8, 0.4, 3.0, 5.0, 2.0  # eV/Å⁴, Å, eV/Å², eV/Å⁴, eV/Å²
R0 = np.array([2.5, 0.3, 0.2])  # Å
MASSES = (1.0, 3.0)  # amu: reduced mass 0.75


class DoubleWell(Calculator):
    """E(u, v, w) of the module docstring, eV; forces eV/Å; get_hessian eV/Å² (6, 6)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, kw: float = KW):
        super().__init__()
        self.kw = kw

    def _separation(self, atoms: Atoms) -> np.ndarray:
        return atoms.positions[1] - atoms.positions[0] - R0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        u, v, w = self._separation(self.atoms)
        energy = A * (u * u - B * B) ** 2 + 0.5 * (K0 + C * u * u) * v * v + 0.5 * self.kw * w * w
        grad = np.array([4 * A * u * (u * u - B * B) + C * u * v * v, (K0 + C * u * u) * v,
                         self.kw * w])
        self.results = {"energy": energy, "forces": np.array([grad, -grad])}

    def get_hessian(self, atoms: Atoms) -> np.ndarray:
        u, v, _ = self._separation(atoms)
        k = np.array([[12 * A * u * u - 4 * A * B * B + C * v * v, 2 * C * u * v, 0.0],
                      [2 * C * u * v, K0 + C * u * u, 0.0],
                      [0.0, 0.0, self.kw]])
        return np.block([[k, -k], [-k, k]])


def pair(u: float, kw: float = KW, v: float = 0.0) -> Atoms:
    atoms = Atoms("H2", positions=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0] + R0 + [u, v, 0.0]],
                  cell=np.eye(3) * 10.0, pbc=True)
    atoms.set_masses(MASSES)
    atoms.calc = DoubleWell(kw)
    return atoms


MU = MASSES[0] * MASSES[1] / sum(MASSES)


def test_vineyard_frequency_and_migration_entropy_are_analytic():
    result = attempt_frequency(pair(B), pair(0.0), temperature=500.0)
    omega_u = np.sqrt(8 * A * B * B / MU) * OMEGA_UNIT_RAD_PER_S  # rad/s
    nu = omega_u / (2 * np.pi) * np.sqrt((K0 + C * B * B) / K0)
    assert result.nu_THz == pytest.approx(nu / 1e12, rel=1e-12)
    assert result.delta_E == pytest.approx(A * B**4, rel=1e-12)
    assert (result.n_modes_minimum, result.n_modes_saddle) == (3, 2)
    # ΔS_m from the per-mode formula k_B [ln(k_B T/ħω) + 1] with the u mode missing at the saddle
    thermal = KB_EV_PER_K * 500.0 / HBAR_EV_S
    expected = -(np.log(thermal / omega_u) + 1.0) + 0.5 * np.log((K0 + C * B * B) / K0)
    assert result.delta_S_m_kB == pytest.approx(expected, rel=1e-12)
    h_nu_over_kT = 2 * np.pi * HBAR_EV_S * result.nu_THz * 1e12 / (KB_EV_PER_K * 500.0)
    assert result.delta_S_m_kB == pytest.approx(np.log(h_nu_over_kT) - 1.0, rel=1e-12)
    assert result.unstable_omega2 == pytest.approx(-4 * A * B * B / MU, rel=1e-12)


def test_quantum_prefactor_is_the_partition_function_ratio_and_tends_to_vineyard():
    def z_ratio(temperature):
        hw = HBAR_EV_S * OMEGA_UNIT_RAD_PER_S / (KB_EV_PER_K * temperature)
        sad = np.sqrt(np.array([K0, KW]) / MU) * hw
        mini = np.sqrt(np.array([8 * A * B * B, K0 + C * B * B, KW]) / MU) * hw
        return np.prod(2 * np.sinh(mini / 2)) / np.prod(2 * np.sinh(sad / 2))

    cold = attempt_frequency(pair(B), pair(0.0), temperature=50.0, quantum=True)
    thermal_THz = KB_EV_PER_K * 50.0 / (2 * np.pi * HBAR_EV_S) / 1e12
    assert cold.nu_quantum_THz == pytest.approx(thermal_THz * z_ratio(50.0), rel=1e-10)
    hot = attempt_frequency(pair(B), pair(0.0), temperature=1e7, quantum=True)
    assert hot.nu_quantum_THz == pytest.approx(hot.nu_THz, rel=1e-6)
    assert hot.delta_S_m_quantum == pytest.approx(hot.delta_S_m, rel=1e-6)


@pytest.mark.parametrize("solver", ["dense", "logdet"])
def test_a_minimum_passed_as_a_saddle_is_refused(solver):
    with pytest.raises(SaddleIsMinimumError, match="no negative") as info:
        harmonic_entropy(pair(B), stationary_point="saddle", solver=solver)
    assert info.value.n_negative == 0
    # the softest vibrational mode at the minimum is reported, not a zero mode
    softest = min(8 * A * B * B, K0 + C * B * B, KW) / MU
    assert info.value.min_omega2 == pytest.approx(softest, rel=1e-8)


@pytest.mark.parametrize("solver", ["dense", "logdet"])
def test_a_second_order_saddle_is_refused_with_its_count_and_lowest_mode(solver):
    with pytest.raises(HigherOrderSaddleError, match="2 negative") as info:
        harmonic_entropy(pair(0.0, kw=-KW), stationary_point="saddle", solver=solver)
    assert info.value.n_negative == 2
    assert info.value.min_omega2 == pytest.approx(min(-4 * A * B * B, -KW) / MU, rel=1e-8)
    assert isinstance(info.value, NotAFirstOrderSaddleError)


def test_a_saddle_passed_as_a_minimum_is_still_refused():
    with pytest.raises(NotAMinimumError, match="stationary_point='saddle'"):
        harmonic_entropy(pair(0.0), solver="dense")


def test_refinement_climbs_to_the_saddle_not_down_to_a_minimum():
    start = pair(0.15, v=0.05)  # closer to the saddle than to the minimum, off the path
    refined = refine_saddle(start, fmax=1e-12)
    u, v, w = refined.positions[1] - refined.positions[0] - R0
    assert abs(u) < 1e-8 and abs(v) < 1e-8 and abs(w) < 1e-8


def test_refinement_near_a_second_order_saddle_is_refused():
    # with w unstable too (curvature -KW), u is a second direction of negative curvature
    # (12 A u² - 4 A B² < 0 near u = 0) besides the climbing one: no first-order saddle is near
    with pytest.raises(NotRelaxedError, match="second direction of negative curvature"):
        refine_saddle(pair(0.05, kw=-KW), fmax=1e-10)


def test_minimum_and_saddle_must_share_the_cell():
    other = pair(0.0)
    other.set_cell(np.eye(3) * 11.0)
    with pytest.raises(CellMismatchError, match="different cells"):
        attempt_frequency(pair(B), other)


def test_band_segments_split_at_intermediate_minima():
    assert band_segments(np.array([0.0, 0.3, 0.6, 0.5, 0.6, 0.3, 0.0])) == [(0, 2, 3), (3, 4, 6)]
    assert band_segments(np.array([0.0, 0.4, 0.7, 0.4, 0.1])) == [(0, 2, 4)]


# --- bcc Fe (closed-form Mendelev 2003), vacancy nearest-neighbour jump, 4a0 cell --------------


@pytest.fixture(scope="module")
def fe_band():
    potential = get_potential("fe-mendelev2003")
    initial, final = vacancy_jump(potential.perfect_supercell(4))
    calc = potential.hessian_calculator()
    initial, final = potential.relax(initial, calc=calc), potential.relax(final, calc=calc)
    images, _ = climbing_band(initial, final, potential.hessian_calculator, n_images=5, steps=500)
    return images, calc


@pytest.fixture(scope="module")
def fe_jumps(fe_band):
    images, calc = fe_band
    return band_jumps(images, calc)


def test_fe_vacancy_end_points_have_equal_entropies(fe_band):
    images, calc = fe_band
    s = [harmonic_entropy(images[k], calc, fmax=1e-5).entropy_kB for k in (0, -1)]
    assert s[0] == pytest.approx(s[1], abs=1e-8)  # k_B: the same vacancy, translated


def test_fe_vacancy_jump_is_two_step_and_symmetric(fe_jumps):
    # initial -> saddle -> metastable midpoint -> symmetric saddle -> final
    assert len(fe_jumps) == 2
    first, second = fe_jumps
    assert first.images[2] == second.images[0]  # the intermediate minimum
    assert first.forward.delta_E == pytest.approx(second.backward.delta_E, abs=1e-8)
    assert first.forward.nu_THz == pytest.approx(second.backward.nu_THz, rel=1e-7)
    assert first.forward.delta_S_m_kB == pytest.approx(second.backward.delta_S_m_kB, abs=1e-6)
    assert 0 < first.backward.delta_E < first.forward.delta_E
    for jump in fe_jumps:
        for side in (jump.forward, jump.backward):
            kT_over_h = KB_EV_PER_K * side.temperature / (2 * np.pi * HBAR_EV_S) / 1e12
            assert side.delta_S_m_kB == pytest.approx(np.log(side.nu_THz / kT_over_h) - 1, rel=1e-12)


def test_fe_minimum_passed_as_a_saddle_reports_its_softest_mode_on_the_sparse_route(fe_jumps):
    minimum = fe_jumps[0].left
    omega2 = omega2_spectrum(minimum.calc.get_hessian(minimum), minimum.get_masses())
    with pytest.raises(SaddleIsMinimumError) as info:
        log_pdet_saddle(minimum.calc.get_hessian(minimum), minimum.get_masses())
    assert info.value.min_omega2 == pytest.approx(omega2[3], rel=1e-6)


def test_fe_saddle_dense_and_sparse_routes_agree(fe_jumps):
    saddle = fe_jumps[0].saddle
    calc = saddle.calc
    hessian, masses = calc.get_hessian(saddle), saddle.get_masses()
    omega2 = omega2_spectrum(hessian, masses)
    assert np.count_nonzero(omega2 < -1e-6) == 1
    brute = float(np.sum(np.log(omega2[4:])))  # the unstable mode and 3 zero modes left out
    for backend in ("splu", "dense-cholesky", "dissection"):
        sparse = log_pdet_saddle(hessian, masses, backend=backend,
                                 scaled_positions=saddle.get_scaled_positions())
        assert sparse.log_pdet == pytest.approx(brute, rel=1e-10), backend
        assert sparse.unstable_omega2 == pytest.approx(omega2[0], rel=1e-10)
    dense = harmonic_entropy(saddle, stationary_point="saddle", solver="dense", fmax=1e-6)
    logdet = harmonic_entropy(saddle, stationary_point="saddle", solver="logdet", fmax=1e-6)
    assert logdet.entropy == pytest.approx(dense.entropy, rel=1e-10)
    assert dense.n_modes == logdet.n_modes == 3 * len(saddle) - 4


def test_fe_refinement_from_a_perturbed_saddle(fe_jumps):
    saddle = fe_jumps[0].saddle
    start = saddle.copy()
    start.positions += np.random.default_rng(3).normal(scale=0.01, size=start.positions.shape)
    refined = refine_saddle(start, saddle.calc)
    forces = refined.get_forces()
    assert np.sqrt((forces**2).sum(axis=1)).max() <= 1e-6
    omega2 = omega2_spectrum(saddle.calc.get_hessian(refined), refined.get_masses())
    assert np.count_nonzero(omega2 < -1e-6) == 1
    shift = minimum_image(refined.positions - saddle.positions, saddle.cell.array)
    shift -= shift.mean(axis=0)
    assert np.abs(shift).max() < 1e-6  # the same saddle, up to a rigid translation


# --- the vibentropy prefactor command ------------------------------------------------------


@pytest.fixture(scope="module")
def fe_files(fe_jumps, tmp_path_factory):
    from ase.io import write

    folder = tmp_path_factory.mktemp("prefactor")
    jump = fe_jumps[0]
    paths = {}
    for name, atoms in (("initial", jump.left), ("saddle", jump.saddle), ("final", jump.right)):
        paths[name] = folder / f"{name}.traj"  # full precision (extxyz keeps 1e-8 Å)
        write(paths[name], atoms)
    return paths, jump


def test_cli_prefactor_json_matches_the_python_api(fe_files, capsys):
    paths, jump = fe_files
    code = main(["prefactor", str(paths["initial"]), str(paths["saddle"]), "--final",
                 str(paths["final"]), "--potential", "fe-mendelev2003", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["forward"]["delta_E_eV"] == pytest.approx(jump.forward.delta_E, abs=1e-9)
    assert report["forward"]["nu_THz"] == pytest.approx(jump.forward.nu_THz, rel=1e-10)
    assert report["backward"]["delta_S_m_kB"] == pytest.approx(jump.backward.delta_S_m_kB, abs=1e-7)
    assert report["forward"]["n_modes_minimum"] - report["forward"]["n_modes_saddle"] == 1


def test_cli_prefactor_refuses_a_minimum_as_saddle(fe_files, capsys):
    paths, _ = fe_files
    code = main(["prefactor", str(paths["initial"]), str(paths["final"]),
                 "--potential", "fe-mendelev2003"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no negative" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_prefactor_with_a_model_predicts_the_minima_only(fe_files, capsys):
    paths, jump = fe_files
    code = main(["prefactor", str(paths["initial"]), str(paths["saddle"]), "--json",
                 "--model", "fe-mendelev2003-afs"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    model = report["model_prediction"]
    assert model["saddle"] is None and "saddle" in model["note"]
    assert np.isfinite(model["initial"]["S_kB"]) and model["initial"]["S_std_kB"] > 0
    assert "final" not in model  # no --final, no final minimum
