"""Compare the shipped bcc-Fe models on the same rows, from their shipped tables alone.

    python benchmarks/reproduction/fe_same_rows.py

The tables ``data/fe_shipped_<label>.npz`` (descriptor sums, closed-form targets and metadata of
every training row of a shipped model, written by ``fe_models.py --ship``) were built from
databases that overlap but are not identical (the random-damage rows of the newer models are a
subset of the older ones'). This script keeps the rows every table has (matched by source
role, family, atom count and S_f to 1e-7 k_B) and, for every model, with the formation target:

  * leave-one-family-out over the cluster families (V1-V4, I1-I4): each family predicted by
    a fit to the other seven (RMSE over all cluster rows);
  * clusters -> random damage: a fit to every cluster row, tested on the random-damage rows;

and prints one table (S_f RMSE in k_B) and writes ``results/fe_same_rows.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ase_vibentropy.model import LDMLModel

HERE = Path(__file__).resolve().parent
LABELS = ("afs", "afs-einstein", "afs-einstein-relaxed", "afs-stiffness")
CLUSTER_FAMILIES = ("V1", "V2", "V3", "V4", "I1", "I2", "I3", "I4")
#: Databases whose rows are random damage (the role the merge of fe_models.py gives them).
RANDOM_SOURCES = ("fe_random", "fe_random_dense")


def load(label: str) -> dict[tuple, tuple[np.ndarray, float, str]]:
    """Row key -> (formation features, S_f, family) of one table."""
    table = np.load(HERE / "data" / f"fe_shipped_{label}.npz")
    features = table["D_sum"] - (table["n_atoms"] / table["n_bulk"])[:, None] * table["D_bulk_sum"]
    rows = {}
    for k in range(len(table["Sf_kB"])):
        role = "random" if str(table["source"][k]) in RANDOM_SOURCES else "clusters"
        key = (role, str(table["family"][k]), int(table["n_atoms"][k]), round(float(table["Sf_kB"][k]), 7))
        rows[key] = (features[k], float(table["Sf_kB"][k]), str(table["family"][k]))
    return rows


def rmse(predicted: np.ndarray, exact: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - exact) ** 2)))


def main() -> int:
    tables = {label: load(label) for label in LABELS}
    common = sorted(set.intersection(*(set(rows) for rows in tables.values())))
    is_cluster = np.array([key[0] == "clusters" and key[1] in CLUSTER_FAMILIES for key in common])
    is_random = np.array([key[0] == "random" for key in common])
    family = np.array([key[1] for key in common])
    results = {"n_common": len(common), "n_cluster": int(is_cluster.sum()), "n_random": int(is_random.sum()),
               "models": {}}
    print(f"{len(common)} rows in every table: {is_cluster.sum()} cluster rows, {is_random.sum()} random-damage rows")
    print(f"{'model':>22} {'dim':>4} {'leave-one-family-out':>21} {'clusters -> random':>19}")
    for label, rows in tables.items():
        X = np.array([rows[key][0] for key in common])
        y = np.array([rows[key][1] for key in common])
        held_out = np.empty(is_cluster.sum())
        cluster_rows = np.flatnonzero(is_cluster)
        for name in CLUSTER_FAMILIES:
            test = family[cluster_rows] == name
            fit = LDMLModel(descriptor="none").fit(X[cluster_rows[~test]], y[cluster_rows[~test]])
            held_out[test] = fit.predict(X[cluster_rows[test]]) - y[cluster_rows[test]]
        lofo = float(np.sqrt(np.mean(held_out**2)))
        transfer = rmse(LDMLModel(descriptor="none").fit(X[is_cluster], y[is_cluster]).predict(X[is_random]), y[is_random])
        results["models"][label] = {"dim": int(X.shape[1]), "leave_one_family_out_rmse_kB": lofo,
                                    "clusters_to_random_rmse_kB": transfer}
        print(f"{label:>22} {X.shape[1]:>4} {lofo:>21.3f} {transfer:>19.3f}")
    (HERE / "results" / "fe_same_rows.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
