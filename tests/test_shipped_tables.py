"""The shipped data tables (benchmarks/reproduction/data/fe_shipped_<descriptor>.npz) are the
training data of the shipped models: the descriptor sums, targets and metadata of every row.

Independent expectation: each model file stores the training RMSE/MAE that ``vibentropy train``
measured on its database; the table, exported separately from that database, must reproduce
them when its rows are pushed through the model (Eq. 15 formation features), and its targets
must come from the model's reference potential.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ase_vibentropy.model import formation_features
from ase_vibentropy.model_io import load_model, shipped_models

DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduction" / "data"


SHIPPED_LABELS = sorted(
    name.removeprefix("fe-mendelev2003-") for name in shipped_models()
    if name.startswith("fe-mendelev2003-") and load_model(name).target != "migration"
)
DESCRIPTOR_OF = {"afs": "afs", "bso4": "bso4", "scattering": "scattering", "afs-einstein": "stack",
                 "afs-einstein-relaxed": "stack", "afs-stiffness": "stack"}


def test_every_shipped_fe_model_has_its_table():
    assert {path.stem.removeprefix("fe_shipped_") for path in DATA.glob("fe_shipped_*.npz")} == set(SHIPPED_LABELS)


@pytest.mark.parametrize("label", SHIPPED_LABELS)
def test_table_reproduces_the_shipped_models_training_errors(label):
    descriptor = DESCRIPTOR_OF[label]
    table = np.load(DATA / f"fe_shipped_{label}.npz", allow_pickle=False)
    model = load_model(f"fe-mendelev2003-{label}")
    assert str(table["descriptor"]) == descriptor == model.descriptor
    assert json.loads(str(table["descriptor_params"])) == model.descriptor_provider().params
    assert set(table["potential"].tolist()) == {model.training_summary_["potential"]}
    assert len(np.unique(table["row_id"])) == len(table["row_id"])

    delta = formation_features(table["D_sum"], table["n_atoms"], table["D_bulk_sum"], table["n_bulk"])
    perfect = np.abs(delta).max(axis=1) <= 1e-9 * np.abs(table["D_bulk_sum"]).max(axis=1)
    delta, target = delta[~perfect], table["Sf_kB"][~perfect]  # perfect cells are not scored
    predicted = model.predict(delta, is_total=False)  # formation rows
    train = model.metrics_["train"]
    assert len(target) == train["n"]
    np.testing.assert_allclose(np.sqrt(np.mean((predicted - target) ** 2)), train["rmse_kB"], rtol=1e-8)
    np.testing.assert_allclose(np.mean(np.abs(predicted - target)), train["mae_kB"], rtol=1e-8)
