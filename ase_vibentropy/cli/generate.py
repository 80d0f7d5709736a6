"""``vibentropy generate``: build and label a defect database from a TOML recipe.

No physics here: :mod:`ase_vibentropy.data.pipeline` does the work; this module parses the
arguments, runs it and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """Build, explore, relax and label the defect configurations of RECIPE (TOML) and store
them in an ase.db database: one row per relaxed configuration with its harmonic entropy S_kB,
formation entropy Sf_kB (Eq. 3, against the perfect lattice of the same strained cell) and the
Wigner-Seitz defect counts. Finished jobs are skipped, so an interrupted run (even kill -9)
restarts where it stopped. Jobs run in local worker processes, or on a Dask cluster with
--scheduler."""

EPILOG = """examples:
  vibentropy generate examples/recipes/cu_emt_small.toml --db cu.db --workers 2
  vibentropy generate examples/recipes/fe_clusters.toml --db fe.db --scheduler tcp://head:8786
  vibentropy db-stats fe.db"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` sub-command."""
    parser = subparsers.add_parser(
        "generate",
        help="build and label a defect database from a TOML recipe",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", metavar="RECIPE.toml", help="recipe file (see examples/recipes/)")
    parser.add_argument("--db", required=True, metavar="URL",
                        help="ase.db path or URL (SQLite file by default, e.g. fe.db)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                       help="local worker processes (default: all cores; 1 = in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="Dask scheduler address, e.g. tcp://host:8786 (needs the dask extra)")
    parser.add_argument("--allow-noisy-hessians", action="store_true",
                        help="label even if the potential fails the Hessian-noise screen")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the recipe; exit code 0 when every job is in the database, 1 when some failed, 130
    when stopped by Ctrl-C (finished jobs kept)."""
    from ..data.pipeline import generate
    from ..data.recipe import load_recipe
    from ..errors import GenerationInterrupted
    recipe = load_recipe(args.recipe)
    try:
        summary = generate(recipe, args.db, workers=args.workers, scheduler=args.scheduler,
                           progress=not args.no_progress, allow_noisy=args.allow_noisy_hessians)
    except GenerationInterrupted as exc:
        print(f"vibentropy generate: {exc}", file=sys.stderr)
        return 130  # the shell's code for a run ended by SIGINT
    if args.json:
        print(json.dumps({
            "recipe_hash": recipe.hash, "n_jobs": summary.n_jobs, "n_skipped": summary.n_skipped,
            "n_run": summary.n_run, "n_failed": summary.n_failed, "n_rows": summary.n_rows,
            "n_non_minima": summary.n_non_minima, "counts": summary.counts,
            "failures": summary.failures, "seconds": round(summary.seconds, 3),
        }, indent=2))
    else:
        print(f"recipe {recipe.source} (hash {recipe.hash}): {summary.n_jobs} jobs, "
              f"{summary.n_skipped} already done, {summary.n_run} run now, {summary.n_failed} failed; "
              f"{summary.n_rows} rows written ({summary.n_non_minima} non-minima stored without "
              f"entropies) in {summary.seconds:.1f} s")
        for job_id, message in summary.failures.items():
            print(f"  failed {job_id}: {message}", file=sys.stderr)
    if summary.n_failed:
        print("some jobs failed: fix the cause and rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0
