"""Model files: bit-exact round trip, versioning, and the specific errors of bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ldml_helpers import TEST_DESCRIPTOR, RadialPolyDescriptor, cu_bulk, register_descriptor

from ase_vibentropy.errors import (
    DescriptorMismatchError,
    ModelFileError,
    ModelVersionError,
    UnknownNameError,
)
from ase_vibentropy.model import LDMLModel
from ase_vibentropy.model_io import FORMAT_VERSION, load_model, save_model, shipped_models
from ase_vibentropy.predictor import EntropyPredictor

_DELETE = object()


def model_file_with(model, tmp_path, keys: list[str], value: Any = _DELETE) -> Path:
    """Save ``model`` to ``tmp_path/m.json``, then set the JSON entry at ``keys`` to ``value``
    (delete it if no value is given): a hand-damaged model file."""
    path = save_model(model, tmp_path / "m.json")
    doc = json.loads(path.read_text())
    *parents, last = keys
    node = doc
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def fitted(monkeypatch, rng):
    register_descriptor(monkeypatch)
    desc = RadialPolyDescriptor(dim=4)
    cells = [cu_bulk(2, s) for s in (-0.02, -0.01, 0.0, 0.01, 0.02)]
    for cell in cells:
        cell.rattle(0.05, seed=int(rng.integers(1000)))
    X = np.array([desc.compute_sum(c) for c in cells])
    y = X @ np.array([0.3, -0.2, 0.7, 1.1]) + 2.0 * 32 + 0.01 * rng.standard_normal(5)
    model = LDMLModel(
        descriptor=TEST_DESCRIPTOR, descriptor_params=desc.params, target="total",
        element="Cu", lattice="fcc", a0=3.61,
    )
    return model.fit(X, y, n_atoms=[32] * 5), X


def test_save_then_load_is_bit_exact(fitted, tmp_path):
    model, X = fitted
    path = save_model(model, tmp_path / "m.json")
    loaded = load_model(path)
    for name in ("coef_", "sigma_", "feature_scale_"):
        assert np.array_equal(getattr(loaded, name), getattr(model, name)), name
    assert (loaded.alpha_, loaded.lambda_, loaded.per_atom_constant_) == (
        model.alpha_, model.lambda_, model.per_atom_constant_,
    )
    mean, std = model.predict(X, return_std=True, n_atoms=[32] * 5)
    mean2, std2 = loaded.predict(X, return_std=True, n_atoms=[32] * 5)
    assert np.array_equal(mean, mean2) and np.array_equal(std, std2)
    assert loaded.get_params()["target"] == "total" and loaded.a0 == 3.61 and loaded.element == "Cu"
    atoms = cu_bulk(2, 0.005)
    assert EntropyPredictor(loaded).predict_entropy(atoms) == EntropyPredictor(model).predict_entropy(atoms)


def test_the_std_calibration_factor_is_saved_and_a_file_without_one_means_one(fitted, tmp_path):
    model, X = fitted
    _, std = model.predict(X, return_std=True, n_atoms=[32] * 5)
    model.std_scale_ = 2.5
    loaded = load_model(save_model(model, tmp_path / "m.json"))
    np.testing.assert_allclose(loaded.predict(X, return_std=True, n_atoms=[32] * 5)[1], 2.5 * std, rtol=1e-14)
    doc = json.loads((tmp_path / "m.json").read_text())
    del doc["std_scale"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    np.testing.assert_allclose(load_model(tmp_path / "old.json").predict(X, return_std=True, n_atoms=[32] * 5)[1], std, rtol=1e-14)
    doc["std_scale"] = -1.0
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="std_scale"):
        load_model(tmp_path / "bad.json")


def test_the_totals_noise_is_saved_and_a_file_without_it_means_the_formation_noise(fitted, tmp_path):
    model, X = fitted
    model.total_alpha_ = 0.25 * model.alpha_
    loaded = load_model(save_model(model, tmp_path / "m.json"))
    assert loaded.total_alpha_ == model.total_alpha_
    doc = json.loads((tmp_path / "m.json").read_text())
    del doc["total_alpha"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    assert load_model(tmp_path / "old.json").total_alpha_ == model.alpha_


def test_model_file_is_readable_json_with_provenance(fitted, tmp_path):
    model, _ = fitted
    doc = json.loads(save_model(model, tmp_path / "m.json").read_text())
    assert doc["format"] == "ase-vibentropy-ldml" and doc["format_version"] == FORMAT_VERSION
    assert doc["descriptor"]["name"] == TEST_DESCRIPTOR
    assert doc["descriptor"]["hash"] == model.descriptor_provider().hash
    assert doc["descriptor"]["params"]["dim"] == 4
    assert doc["temperature_K"] == 300.0 and doc["lattice"] == "fcc"
    assert len(doc["sigma"]) == 5 and doc["training_summary"]["n_rows"] == 5
    assert "package_version" in doc and "fit_rmse_kB" in doc["metrics"]


def test_truncated_file_is_a_model_file_error(fitted, tmp_path):
    path = save_model(fitted[0], tmp_path / "m.json")
    path.write_text(path.read_text()[:-200])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_model(path)


def test_json_that_is_not_a_model_is_refused(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ModelFileError, match="not an ase-vibentropy model file"):
        load_model(path)


def test_missing_field_is_reported_by_name(fitted, tmp_path):
    path = model_file_with(fitted[0], tmp_path, ["sigma"])
    with pytest.raises(ModelFileError, match="'sigma'"):
        load_model(path)


def test_newer_format_version_is_refused(fitted, tmp_path):
    path = model_file_with(fitted[0], tmp_path, ["format_version"], FORMAT_VERSION + 1)
    with pytest.raises(ModelVersionError, match="upgrade ase-vibentropy"):
        load_model(path)


def test_descriptor_hash_mismatch_is_refused(fitted, tmp_path):
    path = model_file_with(fitted[0], tmp_path, ["descriptor", "hash"], "0" * 16)
    with pytest.raises(DescriptorMismatchError, match="retrain"):
        load_model(path)


def test_unknown_descriptor_plugin_is_named(fitted, tmp_path):
    path = model_file_with(fitted[0], tmp_path, ["descriptor", "name"], "no-such-descriptor")
    with pytest.raises(ModelFileError, match="plug-in 'no-such-descriptor'"):
        load_model(path)


def test_unknown_name_lists_the_shipped_models(tmp_path):
    with pytest.raises(UnknownNameError, match="shipped models") as info:
        load_model(tmp_path / "nowhere.json")
    assert isinstance(info.value, ModelFileError)
    for name in shipped_models():
        assert name in str(info.value)


def test_model_with_nan_weights_cannot_be_saved(fitted, tmp_path):
    model, _ = fitted
    model.coef_ = model.coef_.copy()
    model.coef_[0] = np.nan
    with pytest.raises(ModelFileError, match="NaN"):
        save_model(model, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def _shipped_document(name: str) -> dict:
    from importlib import resources

    return json.loads((resources.files("ase_vibentropy") / "pretrained" / f"{name}.json").read_text())


@pytest.mark.parametrize("old_identity", ["fe-mendelev2003-smooth", "fe-mendelev2003"])
def test_a_model_trained_on_superseded_labels_loads_and_warns_when_it_predicts(tmp_path, old_identity):
    """A model file whose training labels came from the retired resampled splines, or from the
    table splines before labels carried a potential version, still predicts, and says so."""
    from ase.build import bulk

    from ase_vibentropy.errors import SupersededLabelsWarning

    doc = _shipped_document("fe-mendelev2003-afs")
    doc["training_summary"]["potential"] = old_identity
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    model = load_model(path)
    atoms = bulk("Fe", "bcc", a=2.855324, cubic=True).repeat(3)
    del atoms[0]
    with pytest.warns(SupersededLabelsWarning, match="Retrain"):
        value = EntropyPredictor(model).predict_entropy(atoms)
    assert np.isfinite(value)


def test_current_shipped_models_predict_without_a_superseded_labels_warning():
    import warnings

    from ase.build import bulk

    from ase_vibentropy.errors import SupersededLabelsWarning

    atoms = bulk("Fe", "bcc", a=2.855324, cubic=True).repeat(3)
    del atoms[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SupersededLabelsWarning)
        EntropyPredictor(load_model("fe-mendelev2003-afs")).predict_entropy(atoms)


def test_a_model_whose_descriptor_uses_a_retired_potential_names_the_replacement(tmp_path):
    doc = _shipped_document("fe-mendelev2003-afs-einstein")
    for name, params in doc["descriptor"]["params"]["parts"]:
        if "potential" in params:
            params["potential"] = "fe-mendelev2003-smooth"
    path = tmp_path / "old_einstein.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="retired.*'fe-mendelev2003'.*Retrain"):
        load_model(path)
