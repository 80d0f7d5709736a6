"""``vibentropy train``: fit an LDML model on a featurized database and save it."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .featurize import (
    add_database_command,
    add_descriptor_arguments,
    add_target_arguments,
    ensure_featurized,
    provider_from_args,
    training_set_from_args,
)

DESCRIPTION = """Fit S = w · Σ_i D_i (+ c N) by Bayesian ridge regression on DB (unfeaturized rows
are featurized first). joint (default, shipped models): S_f with perfect-lattice totals; formation:
S_f; total: S of whole cells; migration: ΔS_m = w · (Σ D^saddle - Σ D^minimum) + b of the saddle
rows (e.g. stiffness saddle_points=true), plus an exact core's ΔS_m with --core-radius."""

EPILOG = """example:
  vibentropy train fe.db --descriptor afs --target joint -o fe-afs.json --plot parity.png"""


def run(args: argparse.Namespace) -> int:
    """Featurize if needed, fit, save the model (and a parity plot); return the exit code."""
    from ..evaluation import calibrate_std, evaluate
    from ..features import connect, row_groups
    from ..harmonic.jump_core import DEFAULT_MOVED_A
    from ..model import LDMLModel
    from ..model_io import check_output_path, save_model

    check_output_path(args.output)  # before featurizing and fitting: a bad -o costs nothing
    db = connect(args.db)
    provider = provider_from_args(args)
    ensure_featurized(db, provider, quiet=args.quiet)
    data = training_set_from_args(args, db, provider, args.temperature)
    model = LDMLModel(
        descriptor=provider.name,
        descriptor_params=provider.params,
        target=args.target,
        temperature=data.temperature,
        element=data.element,
        lattice=data.lattice,
        a0=data.a0,
        core_radius=args.core_radius,
        core_moved=data.extra.get("core_moved_A", DEFAULT_MOVED_A),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data.X, data.y, **data.row_kinds())
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    # the database and its rows (ids), so that validate can tell training rows from new ones
    model.training_summary_ = {**model.training_summary_, **data.summary(), "database": os.path.abspath(str(args.db)),
                               "training_row_ids": sorted({int(i) for i in data.row_id if i >= 0})}
    if args.calibrate_std_by:
        calibration = calibrate_std(
            model, data, row_groups(db, data, args.calibrate_std_by, args.select),
            coverage=args.coverage,
        )
        model.std_scale_ = calibration["std_scale"]
        model.training_summary_["std_calibration"] = {"group_by": args.calibrate_std_by, **calibration}
        print(
            f"std calibrated on {calibration['n_rows']} leave-one-{args.calibrate_std_by}-out "
            f"residuals: x{calibration['std_scale']:.2f} (2-sigma coverage "
            f"{calibration['coverage_before']:.0%} -> {calibration['coverage_after']:.0%})"
        )
    result = evaluate(model, data)  # with the calibrated std
    model.metrics_ = {
        **model.metrics_,
        "scored_kind": result["kind"],
        "train": result["overall"],
        "by_family": result["by_family"],
    }
    save_model(model, args.output)
    overall = result["overall"]
    counts = data.summary()
    kinds = ", ".join(f"{counts[f'n_{k}']} {k}" for k in ("formation", "total", "migration") if counts[f"n_{k}"])
    print(
        f"trained {args.target} model on {len(data)} rows ({kinds}) at {data.temperature:g} K with {provider.name} "
        f"(dim {provider.dim}): train RMSE {overall['rmse_kB']:.3f} k_B, MAE {overall['mae_kB']:.3f} "
        f"k_B on {result['kind']} rows -> {args.output}"
    )
    if args.plot:
        from ..plotting import parity_plot

        sel = result["scored"]
        parity_plot(
            (data.y + data.core_kB)[sel], (result["predictions"] + data.core_kB)[sel],
            data.family[sel], args.plot,
            quantity={"formation": "S_f", "migration": r"\Delta S_m"}.get(result["kind"], "S"),
            title=f"training set, {provider.name}",
        )
        print(f"parity plot -> {args.plot}")
    return 0


def register(subparsers) -> None:
    """Add the ``train`` sub-command."""
    parser = add_database_command(
        subparsers, "train", run, help="fit an LDML model on a database",
        description=DESCRIPTION, epilog=EPILOG,
        db_help="ase.db file with S_kB / Sf_kB labels",
    )
    add_descriptor_arguments(parser)
    add_target_arguments(parser, "what to fit (default joint)")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL.json", help="model file to write")
    parser.add_argument("--plot", metavar="PNG", help="write a parity plot of the training rows")
    parser.add_argument("--temperature", type=float, metavar="K", help="training temperature (default: the rows')")
    parser.add_argument("--select", metavar="QUERY", help="ase.db selection, e.g. 'n_cells=8'")
    parser.add_argument(
        "--calibrate-std-by", metavar="KEY",
        help="scale the predictive std so that it covers the leave-one-group-out residuals of "
             "the groups of this row key, or of several (family,strain; see --coverage)",
    )
    parser.add_argument(
        "--coverage", type=float, default=0.9,
        help="fraction of those residuals to cover at 2 sigma (default 0.9)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
