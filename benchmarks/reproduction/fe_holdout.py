"""Test the bcc-Fe models on a fresh database that no model has seen (REPRODUCTION §3).

    vibentropy generate examples/recipes/fe_random_holdout.toml --db runs/fe_random_holdout.db --workers 2
    python benchmarks/reproduction/fe_holdout.py --holdout runs/fe_random_holdout.db \\
        --merged runs/fe_models_closed.db
    vibentropy generate examples/recipes/fe_holdout_strained.toml --db runs/fe_holdout_strained.db
    python benchmarks/reproduction/fe_holdout.py --holdout runs/fe_holdout_strained.db \\
        --name holdout_strained --transfer afs-stiffness --calibrate-std-by family

The random-damage database of `fe_models.py` is looked at whenever models are compared, so its
transfer error is no longer a clean out-of-sample estimate. This script scores,
on every labelled row of a database generated after the models were chosen:

  1. each shipped model ``fe-mendelev2003-<label>`` as shipped (trained on all 2,863 rows);
  2. for ``--transfer`` labels, the paper's protocol of Fig. 6b: the joint model trained on the
     cluster rows only of the merged database that `fe_models.py --merged M` left
     (``<M stem>_<label>.db``, the same selection as there), tested on the fresh cells.

each overall, per family, per strain and per cell size (RMSE, MAE, coverage of the errors by
twice the predictive std), and writes `results/fe_<name>.json` and one parity PNG per score. Nothing is fitted to the
held-out rows; the rows are featurized in place (resumable: their sums stay in the database).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fe_models import SHIPPED_MODELS, descriptor_arguments, run_cli  # noqa: E402

#: The cluster rows of a merged database (fe_models.selections with random-damage databases).
CLUSTER_SELECTION = "role=clusters,family!=random,family!=cascade"


def score(holdout: Path, model: str | Path, png: Path) -> dict:
    """`vibentropy validate --json` of ``model`` on every labelled row of ``holdout``, with the
    overall metrics of each strain and cell size under ``by_strain`` and ``by_size``."""
    import ase.db

    result = json.loads(run_cli("validate", holdout, "--model", model, "--json", "--quiet", "--plot", png))
    rows = [row for row in ase.db.connect(str(holdout)).select() if row.get("family") != "bulk"]
    for key, field in (("by_strain", "strain"), ("by_size", "n_cells")):
        result[key] = {
            str(value): json.loads(run_cli("validate", holdout, "--model", model, "--json", "--quiet",
                                           "--select", f"{field}={value}"))["overall"]
            for value in sorted({row.get(field) for row in rows})
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holdout", type=Path, required=True, help="labelled held-out ase.db")
    parser.add_argument("--merged", type=Path, default=Path("runs/fe_models_closed.db"),
                        help="the --merged path given to fe_models.py (its per-model databases)")
    parser.add_argument("--models", nargs="+", default=list(SHIPPED_MODELS),
                        help=f"shipped-model labels to score (default: {' '.join(SHIPPED_MODELS)})")
    parser.add_argument("--transfer", nargs="*", default=["afs", "afs-einstein", "afs-einstein-relaxed"],
                        help="labels whose cluster-only model is also scored")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--name", default="holdout", help="results/fe_<name>.json and PNG prefix")
    parser.add_argument("--calibrate-std-by", metavar="KEY",
                        help="calibrate the cluster-only models' std as fe_models.py did")
    args = parser.parse_args(argv)
    if not args.holdout.exists():
        parser.error(f"--holdout {args.holdout} does not exist; generate it with the recipe first")
    for label in [*args.models, *args.transfer]:
        descriptor_arguments(label)  # unknown labels stop here, before any work

    results: dict = {"holdout": str(args.holdout), "shipped": {}, "clusters_only": {}}
    for label in args.models:
        result = score(args.holdout, f"fe-mendelev2003-{label}", args.out / f"fe_{args.name}_{label}_parity.png")
        results["shipped"][label] = result
        print(f"shipped {label}: S_f RMSE {result['overall']['rmse_kB']:.3f} k_B on {result['overall']['n']} rows")
    for label in args.transfer:
        merged = args.merged.with_name(f"{args.merged.stem}_{label}.db")
        if not merged.exists():
            sys.exit(f"{merged} does not exist: run fe_models.py --descriptors {label} --merged {args.merged} first")
        model = args.out / f"fe_{args.name}_{label}_clusters_model.json"
        calibrate = ("--calibrate-std-by", args.calibrate_std_by) if args.calibrate_std_by else ()
        run_cli("train", merged, *descriptor_arguments(label), "--target", "joint", "-o", model,
                "--select", CLUSTER_SELECTION, "--quiet", *calibrate)
        result = score(args.holdout, model, args.out / f"fe_{args.name}_{label}_clusters_only_parity.png")
        model.unlink()
        results["clusters_only"][label] = result
        print(f"clusters only {label}: S_f RMSE {result['overall']['rmse_kB']:.3f} k_B on {result['overall']['n']} rows")
    (args.out / f"fe_{args.name}.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
