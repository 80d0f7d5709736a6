"""``vibentropy crossval``: repeated random train/test splits (the paper's Fig. 6 inset)."""

from __future__ import annotations

import argparse
import json

from .featurize import (
    add_database_command,
    add_descriptor_arguments,
    add_target_arguments,
    ensure_featurized,
    provider_from_args,
    training_set_from_args,
)

DESCRIPTION = """For each test fraction p, split the labelled rows of DB at random REPEATS times,
fit on the rest and report train and test RMSE/MAE (k_B) as mean ± std. Perfect-lattice rows of
a joint fit stay in every training set and are never scored. --group-by KEY splits whole
groups instead of rows (e.g. a configuration and its strained copies). A migration fit
(--target migration) splits whole saddles: both directions of a jump stay on one side."""

EPILOG = """example:
  vibentropy crossval fe.db --descriptor afs --fractions 0.1 0.5 0.9 --repeats 100 --plot cv.png"""


def run(args: argparse.Namespace) -> int:
    """Repeated random-split cross-validation on ``args.db``; return the exit code."""
    from ..evaluation import ATTEMPT_FREQUENCY_FACTOR, repeated_random_splits
    from ..features import connect, row_groups
    from ..harmonic.jump_core import DEFAULT_MOVED_A
    from ..model import LDMLModel

    db = connect(args.db)
    provider = provider_from_args(args)
    ensure_featurized(db, provider, quiet=args.quiet or args.json)
    data = training_set_from_args(args, db, provider, None)
    estimator = LDMLModel(
        descriptor=provider.name, descriptor_params=provider.params, target=args.target,
        temperature=data.temperature, core_radius=args.core_radius,
        core_moved=data.extra.get("core_moved_A", DEFAULT_MOVED_A),
    )
    if args.group_by:
        groups = row_groups(db, data, args.group_by, args.select)
    else:  # both directions of a jump carry their saddle's row id: never split them
        groups = data.row_id if args.target == "migration" else None
    result = repeated_random_splits(
        estimator, data, args.fractions, args.repeats, args.seed, progress=not (args.quiet or args.json),
        groups=groups,
    )
    if args.json:
        print(json.dumps({"descriptor": provider.name, "hash": provider.hash, "target": args.target,
                          **result.to_dict()}))
    else:
        grouped = f" in {result.n_groups} groups of {args.group_by}" if args.group_by else ""
        print(f"{args.db}: {result.n_rows} rows{grouped}, {result.repeats} splits per fraction, target {args.target}")
        jumps = result.test_nu_within_factor_mean is not None
        print(f"{'p_test':>6} {'train_RMSE':>16} {'test_RMSE':>16} {'test_MAE':>16} {'in_2std':>8}"
              + (f" {f'nu_in_{ATTEMPT_FREQUENCY_FACTOR:g}x':>12}" if jumps else ""))
        for k, p in enumerate(result.fractions):
            print(
                f"{p:>6.2f} {result.train_rmse_mean[k]:>8.3f} ± {result.train_rmse_std[k]:<5.3f} "
                f"{result.test_rmse_mean[k]:>8.3f} ± {result.test_rmse_std[k]:<5.3f} "
                f"{result.test_mae_mean[k]:>8.3f} ± {result.test_mae_std[k]:<5.3f} "
                f"{result.test_coverage_mean[k]:>8.0%}"
                + (f" {result.test_nu_within_factor_mean[k]:>12.0%}" if jumps else "")
                + ("  (underdetermined fits)" if result.n_underdetermined[k] else "")
            )
    if args.plot:
        from ..plotting import crossval_plot

        crossval_plot(result, args.plot)
    return 0


def register(subparsers) -> None:
    """Add the ``crossval`` sub-command."""
    parser = add_database_command(
        subparsers, "crossval", run, help="repeated random-split cross-validation",
        description=DESCRIPTION, epilog=EPILOG,
        db_help="ase.db file with S_kB / Sf_kB labels",
    )
    add_descriptor_arguments(parser)
    add_target_arguments(parser, "what to fit (default joint; migration: ΔS_m of the saddle rows)")
    parser.add_argument(
        "--fractions", type=float, nargs="+", metavar="P",
        default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], help="test fractions (default 0.1 .. 0.9)",
    )
    parser.add_argument("--repeats", type=int, default=100, help="random splits per fraction (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the splits")
    parser.add_argument("--plot", metavar="PNG", help="write the cross-validation curve")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--select", metavar="QUERY", help="ase.db selection")
    parser.add_argument("--group-by", metavar="KEY",
                        help="keep rows sharing this key's value on one side of every split "
                             "(rows without it are their own group)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
