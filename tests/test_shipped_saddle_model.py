"""The shipped bcc-Fe migration model (fe-mendelev2003-saddles) loads by name, was trained on
saddles of the closed-form potential with an exact 6 Å core, and predicts the two steps of the
vacancy jump, in a cell an eighth of its training cells' volume, within its spread and within a
factor 1.35 of the exact ν* computed here (Vineyard, from the exact Hessians of both ends)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from ase_vibentropy.harmonic import attempt_frequency, refine_saddle
from ase_vibentropy.model_io import load_model, shipped_models
from ase_vibentropy.potentials import get_potential
from ase_vibentropy.predictor import EntropyPredictor

MODEL = "fe-mendelev2003-saddles"
DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def test_the_migration_model_is_shipped_and_trained_on_closed_form_saddles():
    assert MODEL in shipped_models()
    model = load_model(MODEL)
    summary = model.training_summary_
    assert model.target == "migration"
    assert summary["potential"] == "fe-mendelev2003@v2"
    assert (model.element, model.lattice) == ("Fe", "bcc")
    assert summary["n_migration"] == summary["n_rows"] >= 1000
    assert model.core_radius == summary["core_radius_A"] == 6.0
    assert set(summary["families"]) <= {"V1", "V2", "V3", "V4", "I1", "I2", "I3", "I4"}


@pytest.fixture(scope="module")
def vacancy_jump():
    """The 4a0 vacancy jump's first saddle, refined from the stored climbing image, with the
    initial minimum and the metastable midpoint on its two sides."""
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    initial = read(DATA / "fe_vacancy_jump_initial_4a0.extxyz")
    midpoint = read(DATA / "fe_vacancy_jump_midpoint_4a0.extxyz")
    saddle = refine_saddle(read(DATA / "fe_vacancy_jump_climbing_4a0.extxyz"), calc)
    return calc, initial, midpoint, saddle


@pytest.mark.parametrize("temperature", [300.0, 900.0])
@pytest.mark.parametrize("side", ["initial", "midpoint"])
def test_predicted_attempt_frequency_is_within_two_std_of_the_exact_one(vacancy_jump, side, temperature):
    calc, initial, midpoint, saddle = vacancy_jump
    minimum = initial if side == "initial" else midpoint
    exact = attempt_frequency(minimum, saddle, calc, temperature=temperature)
    nu, factor = EntropyPredictor(MODEL).predict_attempt_frequency(minimum, saddle, temperature,
                                                                   return_std=True)
    assert 1.0 < factor < np.exp(0.3)  # one sigma of ΔS_m below 0.3 k_B
    assert abs(np.log(nu / exact.nu_THz)) <= 2.0 * np.log(factor)
    assert abs(np.log(nu / exact.nu_THz)) < np.log(1.35)
