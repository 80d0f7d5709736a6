"""``vibentropy validate``: errors of a trained model on a database (e.g. a transfer test)."""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

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
    data = load_training_set(db, provider.hash, model.target, model.temperature, args.select,
                             core_radius=model.core_radius, provider=provider,
                             core_moved=model.core_moved, progress=not (args.quiet or args.json))
    result = evaluate(model, data)
    n_trained = _training_rows_scored(model, args.db, data.row_id[result["scored"]])
    trained_here = n_trained > 0
    if args.json:
        print(json.dumps({
            "model": str(args.model),
            "database": str(args.db),
            "training_rows": trained_here,
            "n_training_rows": n_trained,
            "kind": result["kind"],
            "temperature_K": data.temperature,
            "overall": result["overall"],
            "by_family": result["by_family"],
            "mean_std_kB": result["mean_std_kB"],
        }))
    else:
        print(f"{args.db}: {result['kind']} entropies of {result['overall']['n']} rows, model {args.model}")
        jumps = result["kind"] == "migration"
        factor = f"nu_in_{result['overall']['nu_factor']:g}x" if jumps else ""
        print(f"{'family':>12} {'n':>6} {'RMSE_kB':>9} {'MAE_kB':>9} {'in_2std':>8}"
              + (f" {factor:>12} {'nu_q90_x':>9}" if jumps else ""))
        for family, m in [*result["by_family"].items(), ("all", result["overall"])]:
            print(f"{family:>12} {m['n']:>6} {m['rmse_kB']:>9.3f} {m['mae_kB']:>9.3f} {m['coverage_2sigma']:>8.0%}"
                  + (f" {m['nu_within_factor']:>12.0%} {m['nu_factor_q90']:>9.2f}" if jumps else ""))
        print(f"mean predictive std {result['mean_std_kB']:.3f} k_B")
        if jumps:
            print("nu_in_Fx: fraction of jumps whose predicted ν* is within a factor F of the exact "
                  "one; nu_q90_x: the factor 90 % of them are within")
    if trained_here:
        n_scored = int(result["overall"]["n"])
        print(f"vibentropy validate: warning: the model was trained on {n_trained} of these {n_scored} "
              "rows: their errors are training errors and their std a training-row std, not an "
              "estimate for new structures (use 'vibentropy crossval', a --select outside the "
              "training selection, or a held-out database)", file=sys.stderr)
    if args.plot:
        from ..plotting import parity_plot

        sel = result["scored"]
        parity_plot(
            (data.y + data.core_kB)[sel], (result["predictions"] + data.core_kB)[sel],
            data.family[sel], args.plot,
            std=result["std"][sel],
            quantity={"formation": "S_f", "migration": r"\Delta S_m"}.get(result["kind"], "S"),
            title=f"validation on {os.path.basename(str(args.db))}",
        )
    return 0


def _training_rows_scored(model, db, scored_row_ids) -> int:
    """How many of the scored rows (ids in ``db``) the model was trained on: those listed in its
    training summary when ``db`` is its training database; every one when the model records
    the database but not its rows (files written before the row ids were kept)."""
    summary = getattr(model, "training_summary_", {}) or {}
    trained = summary.get("database")
    if not trained or os.path.realpath(str(trained)) != os.path.realpath(str(db)):
        return 0
    ids = summary.get("training_row_ids")
    if ids is None:
        return len(scored_row_ids)
    return int(np.isin(np.asarray(scored_row_ids, dtype=int), np.asarray(ids, dtype=int)).sum())


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
