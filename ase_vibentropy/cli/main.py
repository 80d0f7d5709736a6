"""Entry point of the ``vibentropy`` command.

Each sub-command lives in its own module ``ase_vibentropy.cli.<name>`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code. Errors derived from ``VibEntropyError`` (and
unreadable files, SQLite errors) are printed as one line on stderr, without a traceback, with
exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
import warnings
from collections.abc import Sequence

from .._version import __version__
from ..errors import VibEntropyError

#: Sub-command modules, in the order ``vibentropy --help`` lists them.
SUBCOMMAND_MODULES = (
    "predict",
    "reference",
    "prefactor",
    "featurize",
    "train",
    "validate",
    "crossval",
    "generate",
    "db_stats",
    "check_potential",
)

EPILOG = """examples:
  vibentropy predict examples/data/fe_vacancy_8a0.extxyz --lattice bcc
  vibentropy reference examples/data/fe_vacancy_8a0.extxyz --potential fe-mendelev2003 --lattice bcc --json
  vibentropy prefactor initial.extxyz saddle.extxyz --final final.extxyz --refine
  vibentropy train fe.db --descriptor afs --target formation -o model.json
  vibentropy check-potential my_potential.eam.alloy --plot check.png
Run 'vibentropy COMMAND --help' for the options of one command."""


def add_context(exc: BaseException, context: str) -> BaseException:
    """Prefix the message of ``exc`` with ``context`` (e.g. which frame or row failed), in place.

    The exception keeps its type and attributes, so callers and tests still see e.g. a
    ``NotAMinimumError`` with its ``n_imaginary``.
    """
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (f"{context}: {exc.args[0]}", *exc.args[1:])
    else:
        exc.args = (context, *exc.args)
    return exc


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="vibentropy",
        allow_abbrev=False,
        description="Harmonic vibrational entropy of defective crystals (exact and LDML surrogate).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(subparsers)
    for sub in subparsers.choices.values():
        # an abbreviation such as --mode for --model must be an error, not a silent match
        sub.allow_abbrev = False
    return parser


def _one_line_warnings(command: str):
    """A ``warnings.showwarning`` that prints ``vibentropy COMMAND: warning: MESSAGE`` on stderr:
    the CLI warns where the Python API warns, one line each, without source lines."""

    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        text = " ".join(str(message).split())
        if text not in shown:  # the same warning from two call sites: once
            shown.add(text)
            print(f"vibentropy {command}: warning: {text}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vibentropy`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(args.command)
        if getattr(args, "strict", False):  # --strict: the package's warnings become errors
            from ..domain import DomainWarning
            from ..errors import SupersededLabelsWarning

            warnings.simplefilter("error", DomainWarning)
            warnings.simplefilter("error", SupersededLabelsWarning)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed sub-command with the CLI's error handling."""
    try:
        return int(args.func(args) or 0)
    except (VibEntropyError, UserWarning) as exc:
        print(f"vibentropy {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        # Unreadable files and values ASE's readers reject: still one line, no traceback.
        print(f"vibentropy {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except sqlite3.Error as exc:
        # ase.db opens SQLite files lazily, so a bad path surfaces at the first query.
        print(
            f"vibentropy {args.command}: error: database error ({type(exc).__name__}: {exc}): check "
            "that the database path exists in a writable folder and is an ase.db file",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
