"""Markdown tables of the bcc-Fe model results written by ``fe_models.py`` (docs/REPRODUCTION.md §2).

    python benchmarks/reproduction/fe_tables.py --labels afs afs-einstein afs-einstein-relaxed bso4

Reads ``results/fe_<label>.json`` and prints, in k_B: the S_f RMSE / MAE of the full-data fits,
the paper's Fig. 2 and Fig. 3 analogues, cross-validation at p = 0.1 / 0.5 / 0.9 on every row,
the cluster rows, the 8a0 cluster rows and the unstrained cluster rows, and the transfer tests;
then the cross-validation curves of each label. Nothing is computed here: the numbers are the
JSON's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _fit(entry: dict | None) -> str:
    if not entry:
        return "-"
    overall = entry["overall"]
    return f"{overall['rmse_kB']:.2f} / {overall['mae_kB']:.2f} ({overall['n']:,})"


def _cv(entry: dict | None, fractions=(0.1, 0.5, 0.9)) -> str:
    if not entry:
        return "-"
    values = dict(zip(entry["fractions"], entry["test_rmse_mean"]))
    return " / ".join(f"{values[p]:.2f}" if p in values else "-" for p in fractions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", nargs="+", default=["afs", "afs-einstein", "afs-einstein-relaxed"])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    docs = {label: json.loads((args.results / f"fe_{label}.json").read_text()) for label in args.labels}
    rows = [
        ("train, all rows", lambda d: _fit(d["train"])),
        ("Fig. 2 analogue: unstrained 8a0 clusters", lambda d: _fit(d["train_subsets"].get("fig2_8a0_clusters_unstrained"))),
        ("Fig. 3 analogue: 8a0 clusters, all strains", lambda d: _fit(d["train_subsets"].get("fig3_8a0_clusters_all_strains"))),
        ("CV test RMSE p = 0.1 / 0.5 / 0.9, all rows", lambda d: _cv(d["crossval"].get("all"))),
        ("the same, cluster rows", lambda d: _cv(d["crossval"].get("clusters"))),
        ("the same, 8a0 cluster rows", lambda d: _cv(d["crossval"].get("clusters_8a0"))),
        ("the same, unstrained cluster rows", lambda d: _cv(d["crossval"].get("clusters_unstrained"))),
        ("transfer: clusters → random damage", lambda d: _fit(d["transfer"].get("clusters_to_random"))),
        ("the same, fitted to S_f alone", lambda d: _fit(d["transfer"].get("clusters_to_random_formation_target"))),
        ("transfer: 6a0 → 8a0 cells", lambda d: _fit(d["transfer"].get("6a0_to_8a0"))),
        ("transfer: 6a0 + 8a0 → 10a0 + 12a0 clusters", lambda d: _fit(d["transfer"].get("6a0_8a0_to_10a0_12a0_clusters"))),
    ]
    print("| | " + " | ".join(args.labels) + " |")
    print("| --- |" + " --- |" * len(args.labels))
    for name, cell in rows:
        print(f"| {name} | " + " | ".join(cell(docs[label]) for label in args.labels) + " |")
    for label, doc in docs.items():
        cv = doc["crossval"]
        fractions = cv["all"]["fractions"]
        print(f"\n{label}: cross-validation test RMSE (mean ± std over {cv['all']['repeats']} splits)\n")
        print("| p_test | " + " | ".join(f"{p:g}" for p in fractions) + " |")
        print("| --- |" + " --- |" * len(fractions))
        for key in ("all", "clusters", "clusters_8a0", "clusters_unstrained"):
            if key in cv:
                cells = [f"{m:.2f} ± {s:.2f}" for m, s in zip(cv[key]["test_rmse_mean"], cv[key]["test_rmse_std"])]
                print(f"| {key} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
