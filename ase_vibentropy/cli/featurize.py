"""``vibentropy featurize``: store descriptor sums in every row of an ase.db (resumable)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

DESCRIPTION = """Compute Σ_i D_i of every row (and of its perfect-lattice reference) for one
descriptor and store them in the row's data under the descriptor hash. Rows already featurized
for that descriptor are skipped, so an interrupted run resumes."""

EPILOG = """example:
  vibentropy featurize fe.db --descriptor afs --param n_max=20 --param l_max=10 --workers 2"""


def parse_params(assignments: list[str] | None) -> dict[str, Any]:
    """``["n_max=20", "r_cut=5.0", "species=[\\"Fe\\"]"]`` -> dict; values parsed as JSON, else str."""
    params: dict[str, Any] = {}
    for item in assignments or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def add_database_command(
    subparsers,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str,
    epilog: str,
    db_help: str,
) -> argparse.ArgumentParser:
    """Add sub-command ``name`` that reads an ase.db (positional ``DB``, help ``db_help``) and is
    carried out by ``handler(args) -> exit code``; return its parser for the remaining options."""
    parser = subparsers.add_parser(
        name, help=help, description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("db", metavar="DB", help=db_help)
    parser.set_defaults(func=handler)
    return parser


def add_descriptor_arguments(parser: argparse.ArgumentParser) -> None:
    """``--descriptor NAME`` and repeatable ``--param KEY=VALUE``."""
    parser.add_argument("--descriptor", required=True, metavar="NAME", help="descriptor name (afs, bso4, ...)")
    parser.add_argument(
        "--param", action="append", metavar="KEY=VALUE", default=[],
        help="descriptor parameter (repeatable; JSON values, e.g. n_max=20)",
    )


def add_target_arguments(parser: argparse.ArgumentParser, target_help: str) -> None:
    """``--target`` and ``--core-radius`` of the fitting commands (train, crossval)."""
    parser.add_argument(
        "--target", choices=("formation", "total", "joint", "migration"), default="joint",
        help=target_help,
    )
    parser.add_argument(
        "--core-radius", type=float, metavar="R",
        help="migration: an exact core of R Å around the moving atoms (e.g. 6)",
    )


def training_set_from_args(args: argparse.Namespace, db: Any, provider, temperature: float | None):
    """The training set of ``--target`` (and ``--core-radius``) for ``provider``'s sums."""
    from ..errors import InvalidOptionError
    from ..features import load_training_set

    if args.core_radius is not None and args.target != "migration":
        raise InvalidOptionError(f"--core-radius belongs to --target migration, not {args.target}")
    return load_training_set(db, provider.hash, args.target, temperature, args.select,
                             core_radius=args.core_radius, provider=provider,
                             progress=not (args.quiet or getattr(args, "json", False)))


def provider_from_args(args: argparse.Namespace):
    """The descriptor provider named by ``--descriptor`` with the ``--param`` values."""
    from ..descriptors import get

    return get(args.descriptor, **parse_params(args.param))


def ensure_featurized(db: Any, provider, quiet: bool = False) -> None:
    """Featurize rows missing this descriptor's sums, telling the user on stderr."""
    from ..features import featurize_database, missing_rows

    todo = missing_rows(db, provider.hash)
    if todo:
        print(
            f"featurizing {len(todo)} row(s) with {provider.name} (hash {provider.hash}) first",
            file=sys.stderr,
        )
        featurize_database(db, provider, progress=not quiet)


def run(args: argparse.Namespace) -> int:
    """Featurize every row of ``args.db`` missing the descriptor sums; return the exit code."""
    from ..features import connect, featurize_database

    db = connect(args.db)
    provider = provider_from_args(args)
    report = featurize_database(db, provider, chunk_size=args.chunk_size, progress=not args.quiet,
                                workers=args.workers)
    print(
        f"{args.db}: featurized {report['featurized']} row(s), skipped {report['skipped']} already "
        f"done; {report['bulk_cells']} bulk cell(s); descriptor {provider.name} hash {provider.hash}"
    )
    return 0


def register(subparsers) -> None:
    """Add the ``featurize`` sub-command."""
    parser = add_database_command(
        subparsers, "featurize", run, help="store descriptor sums in a database",
        description=DESCRIPTION, epilog=EPILOG,
        db_help="ase.db file (rows per docs/architecture.md)",
    )
    add_descriptor_arguments(parser)
    parser.add_argument("--chunk-size", type=int, default=20_000, help="centre atoms per chunk")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes featurizing rows at once (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
