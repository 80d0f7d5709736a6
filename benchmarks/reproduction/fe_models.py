"""Train, validate and (optionally) ship the bcc-Fe models from a labelled database.

One command gives every Fe number of docs/REPRODUCTION.md:

    python benchmarks/reproduction/fe_models.py --db runs/fe_shipped.db \
        --descriptors afs bso4 --repeats 100 --ship

For each descriptor it featurizes the database (resumable), then through the `vibentropy` CLI:
  1. trains a joint model on every labelled row (train RMSE/MAE, parity PNG), and on the
     8a0 clusters without (paper's Fig. 2) and with (Fig. 3) the strained copies;
  2. cross-validates over test fractions 0.1..0.9 (`--repeats` random splits each; PNG);
  3. transfer tests: trained on the cluster families only, validated on the random-damage
     rows; trained on the 6a0 cells only, validated on the 8a0 cells (parity PNGs);
and writes `results/fe_<descriptor>.json`. With `--ship` the full-data models are copied to
`ase_vibentropy/pretrained/fe-mendelev2003-<descriptor>.json`, and the descriptor sums,
targets and metadata of every row to `benchmarks/reproduction/data/fe_shipped_<descriptor>.npz` (a table anyone
can refit from without the structures).

Nothing here is tuned on a test set: descriptor parameters are the paper's, the priors are
scikit-learn's defaults, and the splits are random with a fixed seed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from ase_vibentropy.cli.main import main as vibentropy

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PRETRAINED = REPO / "ase_vibentropy" / "pretrained"
CLUSTERS = "family!=random,family!=cascade"
RANDOM = "family=random"


def run_cli(*argv: str) -> str:
    """Run one `vibentropy` command, fail loudly on a non-zero exit, return its stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = vibentropy([str(a) for a in argv])
    if code != 0:
        sys.exit(f"vibentropy {' '.join(map(str, argv))} exited with {code}")
    return buffer.getvalue()


def export_table(db_path: Path, descriptor: str, out: Path) -> None:
    """Write descriptor sums, targets and metadata of every labelled row to an .npz table."""
    import ase.db

    from ase_vibentropy import descriptors

    provider = descriptors.get(descriptor)
    columns: dict[str, list] = {key: [] for key in (
        "row_id", "family", "n_atoms", "n_cells", "strain", "n_vac", "n_int", "energy_eV",
        "S_kB", "Sf_kB", "S_bulk_kB", "n_bulk", "D_sum", "D_bulk_sum")}
    for row in ase.db.connect(str(db_path)).select("n_imaginary=0"):
        if row.get("family") == "bulk" or row.get("Sf_kB") is None:
            continue
        columns["row_id"].append(row.id)
        columns["family"].append(row.family)
        columns["n_atoms"].append(row.natoms)
        for key in ("n_cells", "strain", "n_vac", "n_int", "S_kB", "Sf_kB", "S_bulk_kB", "n_bulk"):
            columns[key].append(row.get(key))
        columns["energy_eV"].append(row.energy)
        columns["D_sum"].append(row.data["descriptor_sums"][provider.hash])
        columns["D_bulk_sum"].append(row.data["bulk_descriptor_sums"][provider.hash])
    np.savez_compressed(
        out, descriptor=descriptor, descriptor_params=json.dumps(provider.params),
        descriptor_hash=provider.hash, temperature_K=300.0,
        **{k: np.asarray(v) for k, v in columns.items()},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="labelled ase.db (vibentropy generate)")
    parser.add_argument("--descriptors", nargs="+", default=["afs", "bso4"])
    parser.add_argument("--repeats", type=int, default=100, help="random splits per test fraction")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--ship", action="store_true", help="copy models and tables into the repo")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    for name in args.descriptors:
        run_cli("featurize", args.db, "--descriptor", name, "--quiet")
        model = args.out / f"fe-mendelev2003-{name}.json"
        run_cli("train", args.db, "--descriptor", name, "--target", "joint", "-o", model,
                "--plot", args.out / f"fe_{name}_train_parity.png", "--quiet")
        train = json.loads(run_cli("validate", args.db, "--model", model, "--json", "--quiet"))
        crossval = json.loads(run_cli(
            "crossval", args.db, "--descriptor", name, "--target", "joint",
            "--repeats", args.repeats, "--json", "--quiet",
            "--plot", args.out / f"fe_{name}_crossval.png"))
        subsets = {}
        for label, selection in (
            ("fig2_8a0_clusters_unstrained", f"n_cells=8,strain=0,{CLUSTERS}"),
            ("fig3_8a0_clusters_all_strains", f"n_cells=8,{CLUSTERS}"),
        ):
            partial = args.out / f"fe_{name}_{label}_model.json"
            run_cli("train", args.db, "--descriptor", name, "--target", "joint", "-o", partial,
                    "--select", selection, "--quiet")
            subsets[label] = json.loads(run_cli(
                "validate", args.db, "--model", partial, "--select", selection, "--json", "--quiet"))
            partial.unlink()
        transfers = {}
        for label, train_sel, test_sel in (
            ("clusters_to_random", CLUSTERS, RANDOM),
            ("6a0_to_8a0", "n_cells=6", "n_cells=8"),
        ):
            partial = args.out / f"fe_{name}_{label}_model.json"
            run_cli("train", args.db, "--descriptor", name, "--target", "joint", "-o", partial,
                    "--select", train_sel, "--quiet")
            transfers[label] = json.loads(run_cli(
                "validate", args.db, "--model", partial, "--select", test_sel, "--json", "--quiet",
                "--plot", args.out / f"fe_{name}_{label}_parity.png"))
            partial.unlink()
        summary = {"descriptor": name, "database": str(args.db), "train": train,
                   "train_subsets": subsets, "crossval": crossval, "transfer": transfers}
        (args.out / f"fe_{name}.json").write_text(json.dumps(summary, indent=1))
        print(f"{name}: train RMSE {train['overall']['rmse_kB']:.3f} k_B; transfer "
              + ", ".join(f"{k} {v['overall']['rmse_kB']:.3f}" for k, v in transfers.items()))
        if args.ship:
            shutil.copyfile(model, PRETRAINED / model.name)
            tables = HERE / "data"
            tables.mkdir(exist_ok=True)
            export_table(args.db, name, tables / f"fe_shipped_{name}.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
