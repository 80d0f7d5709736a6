"""``vibentropy validate``: errors of a trained model on a database (e.g. a transfer test)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .featurize import add_database_command, ensure_featurized

DESCRIPTION = """Predict the labelled rows of DB with a trained model and report RMSE and MAE
(k_B) overall and per defect family. Train on one database and validate on another for the
paper's transfer test. Rows without the model's descriptor sums are featurized first."""

EPILOG = """example:
  vibentropy validate random.db --model fe-afs.json --plot transfer.png"""


def run(args: argparse.Namespace) -> int:
    """Score a model on the labelled rows of ``args.db``; return the exit code."""
    from ..evaluation import evaluate
    from ..features import connect, load_training_set
    from ..model_io import load_model

    model = load_model(args.model)
    provider = model.descriptor_provider()
    db = connect(args.db)
    ensure_featurized(db, provider, quiet=args.quiet or args.json)
    # joint: formation rows are scored; perfect-lattice rows are loaded as unscored anchors.
    data = load_training_set(db, provider.hash, model.target, model.temperature, args.select)
    result = evaluate(model, data)
    trained_here = _trained_on(model, args.db)
    if args.json:
        print(json.dumps({
            "model": str(args.model),
            "database": str(args.db),
            "training_rows": trained_here,
            "kind": result["kind"],
            "temperature_K": data.temperature,
            "overall": result["overall"],
            "by_family": result["by_family"],
            "mean_std_kB": result["mean_std_kB"],
        }))
    else:
        print(f"{args.db}: {result['kind']} entropies of {result['overall']['n']} rows, model {args.model}")
        print(f"{'family':>12} {'n':>6} {'RMSE_kB':>9} {'MAE_kB':>9} {'in_2std':>8}")
        for family, m in [*result["by_family"].items(), ("all", result["overall"])]:
            print(f"{family:>12} {m['n']:>6} {m['rmse_kB']:>9.3f} {m['mae_kB']:>9.3f} {m['coverage_2sigma']:>8.0%}")
        print(f"mean predictive std {result['mean_std_kB']:.3f} k_B")
    if trained_here:
        print("vibentropy validate: warning: the model was trained on this database: these are "
              "training errors and a training-row std, not an estimate for new structures (use "
              "'vibentropy crossval' or a held-out database)", file=sys.stderr)
    if args.plot:
        from ..plotting import parity_plot

        sel = result["scored"]
        parity_plot(
            data.y[sel], result["predictions"][sel], data.family[sel], args.plot,
            std=result["std"][sel], quantity="S_f" if result["kind"] == "formation" else "S",
            title=f"validation on {os.path.basename(str(args.db))}",
        )
    return 0


def _trained_on(model, db) -> bool:
    """True when ``db`` is the database the model's training summary names."""
    trained = (getattr(model, "training_summary_", {}) or {}).get("database")
    if not trained:
        return False
    return os.path.realpath(str(trained)) == os.path.realpath(str(db))


def register(subparsers) -> None:
    """Add the ``validate`` sub-command."""
    parser = add_database_command(
        subparsers, "validate", run, help="errors of a model on a database",
        description=DESCRIPTION, epilog=EPILOG,
        db_help="ase.db file with S_kB / Sf_kB labels",
    )
    parser.add_argument("--model", required=True, metavar="MODEL", help="model file or shipped name")
    parser.add_argument("--plot", metavar="PNG", help="write a parity plot with error bars")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--select", metavar="QUERY", help="ase.db selection, e.g. 'family=V1'")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
