"""Migration models: ΔS_m = w · (Σ D^saddle - Σ D^minimum) + b, fitted on stored saddles.

Independent expectations: a synthetic linear law recovered by the fit, the descriptor sums of
the stored structures computed afresh, and the exact classical temperature dependence of ΔS_m
(one mode fewer at the saddle: d ΔS_m / d ln T = -1) from the harmonic route itself.
"""

from __future__ import annotations

import json

import ase.db
import numpy as np
import pytest

from ase_vibentropy import descriptors
from ase_vibentropy.cli.main import main
from ase_vibentropy.data.pipeline import generate
from ase_vibentropy.data.recipe import parse_recipe
from ase_vibentropy.errors import InvalidOptionError, ModelDomainError
from ase_vibentropy.features import featurize_database, load_training_set
from ase_vibentropy.harmonic import attempt_frequency
from ase_vibentropy.model import LDMLModel
from ase_vibentropy.model_io import load_model, save_model
from ase_vibentropy.potentials import get_potential
from ase_vibentropy.predictor import EntropyPredictor
from ase_vibentropy.units import KB_EV_PER_K

SADDLE_STIFFNESS = {"potential": "fe-mendelev2003", "saddle_points": True}
RECIPE = {
    "potential": "fe-mendelev2003", "sizes": [4], "strains": [0.0, 0.01, 0.02], "seed": 11,
    "reference": {"hessian": "analytic", "solver": "dense", "fmax": 1e-6},
    "exploration": {"method": "dimer", "minima_per_job": 2, "max_events": 6, "store_saddles": True,
                    "saddles_per_job": 2},
    "families": {"V1": {"count": 2}},
}


def test_a_migration_fit_recovers_a_linear_law_with_its_constant(tmp_path):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    w, b = np.array([0.4, -1.1, 0.25]), 1.7
    y = X @ w + b + 0.01 * rng.normal(size=200)
    model = LDMLModel(descriptor="stiffness", target="migration").fit(X, y)
    np.testing.assert_allclose(model.coef_, w, atol=0.01)
    assert model.migration_constant_ == pytest.approx(b, abs=0.01)
    assert model.per_atom_constant_ == 0.0
    np.testing.assert_allclose(model.predict(X[:5]), X[:5] @ model.coef_ + model.migration_constant_)
    with pytest.raises(ModelDomainError, match="jump"):
        model.predict(X[:2], is_total=True)
    with pytest.raises(ModelDomainError, match="total-entropy rows"):
        LDMLModel(descriptor="stiffness", target="migration").fit(X, y, n_atoms=np.ones(200),
                                                                  is_total=np.ones(200, dtype=bool))
    path = save_model(model, tmp_path / "migration.json")
    again = load_model(path)
    assert again.target == "migration" and again.migration_constant_ == model.migration_constant_
    np.testing.assert_array_equal(again.predict(X, return_std=True)[1], model.predict(X, return_std=True)[1])


@pytest.fixture(scope="module")
def jump_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("jumps") / "fe.db"
    summary = generate(parse_recipe(RECIPE), str(path), workers=1, progress=False)
    assert summary.n_failed == 0
    provider = descriptors.get("stack", parts=[["afs", {"n_max": 3, "l_max": 2}], ["stiffness", SADDLE_STIFFNESS]])
    featurize_database(str(path), provider, progress=False)
    return path, provider


def test_jump_rows_are_saddle_minus_minimum_sums_with_both_directions(jump_db):
    path, provider = jump_db
    db = ase.db.connect(str(path))
    data = load_training_set(str(path), provider.hash, "migration")
    saddles = list(db.select(stationary_point="saddle"))
    # one row per direction; a jump to a copy of its own minimum has one direction
    expected_rows = sum(1 if s.from_minimum == s.to_minimum else 2 for s in saddles)
    assert len(saddles) >= 2 and len(data) == expected_rows
    assert set(data.kind) == {"migration"} and data.summary()["n_migration"] == len(data)
    minima = {(r.job_id, r.minimum_index): r for r in db.select() if r.get("stationary_point") != "saddle"}
    for saddle in saddles:
        rows = np.flatnonzero(data.row_id == saddle.id)
        assert len(rows) == (1 if saddle.from_minimum == saddle.to_minimum else 2)
        saddle_sum = provider.compute(saddle.toatoms()).sum(axis=0)
        for row, index, side in zip(rows, (saddle.from_minimum, saddle.to_minimum), ("forward", "backward")):
            minimum = minima[(saddle.job_id, index)]
            expected = saddle_sum - provider.compute(minimum.toatoms()).sum(axis=0)
            np.testing.assert_allclose(data.X[row], expected, rtol=1e-9, atol=1e-9)
            assert data.y[row] == pytest.approx(getattr(saddle, f"dS_m_{side}_kB"), abs=1e-12)


@pytest.mark.filterwarnings("ignore::ase_vibentropy.model.UnderdeterminedFitWarning")
def test_predicted_migration_entropy_follows_the_exact_temperature_law(jump_db, tmp_path):
    path, provider = jump_db
    data = load_training_set(str(path), provider.hash, "migration")
    model = LDMLModel(descriptor=provider.name, descriptor_params=provider.params, target="migration",
                      element="Fe", lattice="bcc", a0=2.855324).fit(data.X, data.y)
    predictor = EntropyPredictor(model)
    db = ase.db.connect(str(path))
    saddle = next(db.select(stationary_point="saddle"))
    minimum = next(r for r in db.select(job_id=saddle.job_id) if r.get("minimum_index") == saddle.from_minimum
                   and r.get("stationary_point") != "saddle")
    initial, transition = minimum.toatoms(), saddle.toatoms()
    at_300, std = predictor.predict_migration_entropy(initial, transition, 300.0, return_std=True)
    x = provider.compute(transition).sum(axis=0) - provider.compute(initial).sum(axis=0)
    assert at_300 / KB_EV_PER_K == pytest.approx(x @ model.coef_ + model.migration_constant_, abs=1e-9)
    assert std > 0
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    exact = {t: attempt_frequency(initial, transition, calc, temperature=t).delta_S_m_kB for t in (300.0, 600.0)}
    predicted_600 = predictor.predict_migration_entropy(initial, transition, 600.0) / KB_EV_PER_K
    assert predicted_600 - at_300 / KB_EV_PER_K == pytest.approx(exact[600.0] - exact[300.0], abs=1e-9)
    nu, factor = predictor.predict_attempt_frequency(initial, transition, 300.0, return_std=True)
    h_nu_over_kt = nu * 1e12 * 4.135667696e-15 / (KB_EV_PER_K * 300.0)
    assert np.log(h_nu_over_kt) - 1.0 == pytest.approx(at_300 / KB_EV_PER_K, abs=1e-6)
    assert factor == pytest.approx(np.exp(std / KB_EV_PER_K))
    with pytest.raises(ModelDomainError, match="migration"):
        predictor.predict_formation_entropy(initial)
    from ase_vibentropy.calculator import VibEntropyCalculator

    with pytest.raises(ModelDomainError, match="migration model"):
        VibEntropyCalculator(model)
    minimum_model = EntropyPredictor("fe-mendelev2003-afs")
    with pytest.raises(ModelDomainError, match="trained on saddles"):
        minimum_model.predict_migration_entropy(initial, transition)


def test_train_crossval_and_prefactor_take_a_migration_model(jump_db, tmp_path, capsys):
    path, provider = jump_db
    param = f"parts={json.dumps(provider.params['parts'])}"
    model_path = tmp_path / "jumps.json"
    assert main(["train", str(path), "--descriptor", "stack", "--param", param, "--target", "migration",
                 "-o", str(model_path), "--quiet"]) == 0
    assert "migration" in capsys.readouterr().out
    assert main(["crossval", str(path), "--descriptor", "stack", "--param", param, "--target", "migration",
                 "--fractions", "0.4", "--repeats", "3", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    saddles = list(ase.db.connect(str(path)).select(stationary_point="saddle"))
    n_rows = sum(1 if s.from_minimum == s.to_minimum else 2 for s in saddles)
    assert result["n_groups"] == len(saddles) and result["n_rows"] == n_rows  # jumps kept whole
    db = ase.db.connect(str(path))
    saddle = next(db.select(stationary_point="saddle"))
    minimum = next(r for r in db.select(job_id=saddle.job_id) if r.get("minimum_index") == saddle.from_minimum
                   and r.get("stationary_point") != "saddle")
    from ase.io import write

    write(tmp_path / "initial.extxyz", minimum.toatoms())
    write(tmp_path / "saddle.extxyz", saddle.toatoms())
    assert main(["prefactor", str(tmp_path / "initial.extxyz"), str(tmp_path / "saddle.extxyz"),
                 "--model", str(model_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    predicted = report["model_prediction"]["forward"]
    from ase.io import read

    expected = EntropyPredictor(str(model_path)).predict_migration_entropy(
        read(tmp_path / "initial.extxyz"), read(tmp_path / "saddle.extxyz"))
    assert predicted["delta_S_m_kB"] == pytest.approx(expected / KB_EV_PER_K, rel=1e-12)
    assert report["forward"]["delta_S_m_kB"] == pytest.approx(saddle.dS_m_forward_kB, abs=1e-6)


def test_the_neb_example_prints_a_migration_models_prediction_of_every_step(jump_db, tmp_path):
    from test_workflows import load_example

    path, provider = jump_db
    param = f"parts={json.dumps(provider.params['parts'])}"
    model_path = tmp_path / "jumps.json"
    assert main(["train", str(path), "--descriptor", "stack", "--param", param, "--target", "migration",
                 "-o", str(model_path), "--quiet"]) == 0
    result = load_example("neb_vacancy_migration").main(["--migration-model", str(model_path)])
    assert len(result["model_migration"]) == 2 * len(result["jumps"])  # both sides of every step
    for record in result["model_migration"]:
        # the printed ν* is the Vineyard frequency of the printed ΔS_m
        h_nu_over_kt = record["nu_THz"] * 1e12 * 4.135667696e-15 / (KB_EV_PER_K * 300.0)
        assert np.log(h_nu_over_kt) - 1.0 == pytest.approx(record["dS_m_kB"], abs=1e-6)
        assert record["nu_factor"] == pytest.approx(np.exp(record["std_kB"]), rel=1e-9)


@pytest.mark.filterwarnings("ignore::ase_vibentropy.model.UnderdeterminedFitWarning")
def test_a_core_model_adds_the_outer_atoms_term_to_the_exact_core(jump_db, tmp_path, capsys):
    from ase_vibentropy.harmonic.jump_core import core_migration_entropy, jump_core_region

    path, provider = jump_db
    radius = 4.0
    plain = load_training_set(str(path), provider.hash, "migration")
    data = load_training_set(str(path), provider.hash, "migration", core_radius=radius, provider=provider)
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    db = ase.db.connect(str(path))
    minima = {(r.job_id, r.minimum_index): r for r in db.select() if r.get("stationary_point") != "saddle"}
    assert data.summary()["n_skipped_core"] == 0 and len(data) == len(plain)
    # the entropies themselves are unchanged: residual + core = the stored ΔS_m
    np.testing.assert_allclose(data.y + data.core_kB, plain.y, atol=1e-12)
    saddle = db.get(id=int(data.row_id[0]))
    initial, transition = minima[(saddle.job_id, saddle.from_minimum)].toatoms(), saddle.toatoms()
    region = jump_core_region(initial, transition, radius)
    outside = np.setdiff1d(np.arange(len(initial)), region)
    expected_x = provider.compute(transition)[outside].sum(0) - provider.compute(initial)[outside].sum(0)
    np.testing.assert_allclose(data.X[0], expected_x, rtol=1e-9, atol=1e-9)
    core = core_migration_entropy(initial, transition, region, calc, 300.0)
    assert data.core_kB[0] == pytest.approx(core, abs=1e-10)

    model = LDMLModel(descriptor=provider.name, descriptor_params=provider.params, target="migration",
                      element="Fe", lattice="bcc", a0=2.855324, core_radius=radius).fit(data.X, data.y)
    model.training_summary_ = {**model.training_summary_, **data.summary()}
    again = load_model(save_model(model, tmp_path / "core.json"))
    assert (again.core_radius, again.core_moved) == (radius, model.core_moved)
    predicted, std = EntropyPredictor(again).predict_migration_entropy(initial, transition, 300.0, return_std=True)
    assert predicted / KB_EV_PER_K == pytest.approx(core + expected_x @ model.coef_ + model.migration_constant_,
                                                    abs=1e-8)
    assert std > 0
    with pytest.raises(InvalidOptionError, match="same structure"):
        EntropyPredictor(again).predict_migration_entropy(initial, initial)

    param = f"parts={json.dumps(provider.params['parts'])}"
    cli_model = tmp_path / "cli_core.json"
    assert main(["train", str(path), "--descriptor", "stack", "--param", param, "--target", "migration",
                 "--core-radius", str(radius), "-o", str(cli_model), "--quiet"]) == 0
    assert load_model(cli_model).core_radius == radius
    assert main(["validate", str(path), "--model", str(cli_model), "--json", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["train", str(path), "--descriptor", "stack", "--param", param, "--target", "joint",
                 "--core-radius", "4", "-o", str(tmp_path / "x.json"), "--quiet"]) != 0
    assert "--core-radius belongs to --target migration" in capsys.readouterr().err
    with pytest.raises(InvalidOptionError, match="core_radius"):
        LDMLModel(target="formation", core_radius=4.0).fit(data.X, data.y)
