"""Shared command-line handling of the example scripts (not an example itself).

Every example takes ``--model`` (a shipped-model name or a model file; default: the shipped
Fe model) and ``--potential`` (a name known to ``ase_vibentropy.potentials.get_potential``;
default ``fe-mendelev2003``, the closed form, core install), ``--cells`` (conventional cells
per cubic-cell edge) and ``--quick`` (the smallest meaningful run, used by the tests).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from ase import Atoms

from ase_vibentropy.calculator import DEFAULT_MODEL, DomainWarning
from ase_vibentropy.units import KB_EV_PER_K

DEFAULT_POTENTIAL = "fe-mendelev2003"


def parser(description: str, cells: int, quick_cells: int) -> argparse.ArgumentParser:
    """Argument parser with the options shared by all examples."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default=None,
                   help=f"model name or file (default: the shipped {DEFAULT_MODEL!r})")
    p.add_argument("--potential", default=DEFAULT_POTENTIAL,
                   help=f"reference potential name (default {DEFAULT_POTENTIAL!r})")
    p.add_argument("--cells", type=int, default=None,
                   help=f"conventional cells per edge (default {cells}, {quick_cells} with --quick)")
    p.add_argument("--quick", action="store_true", help="smallest meaningful run (tests)")
    p.set_defaults(_cells=cells, _quick_cells=quick_cells)
    return p


def setup(args: argparse.Namespace) -> tuple[Any, Any, int]:
    """Return (model, potential, cells per edge) for the parsed arguments.

    The model's element, lattice and a0 must match the potential's: the model describes the
    vibrations of that potential's crystal.
    """
    from ase_vibentropy.model_io import load_model
    from ase_vibentropy.potentials import get_potential

    potential = get_potential(args.potential)
    model = load_model(args.model or DEFAULT_MODEL)
    if model.element is not None and model.element != potential.element:
        raise SystemExit(
            f"the model describes {model.element} but the potential {potential.name!r} is for "
            f"{potential.element}: pass a matching --model"
        )
    cells = args.cells or (args._quick_cells if args.quick else args._cells)
    first_domain_warning_only()
    return model, potential, cells


def first_domain_warning_only() -> None:
    """Show the first warning of each DomainWarning kind only.

    The examples print the predictive std in their tables anyway; repeating the warning at every
    optimizer step would bury them.
    """
    seen: set[type] = set()
    show = warnings.showwarning

    def first_of_each_kind(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DomainWarning):
            if category in seen:
                return
            seen.add(category)
            message = f"{message} [further {category.__name__}s are not shown]"
        show(message, category, filename, lineno, file, line)

    warnings.simplefilter("always", DomainWarning)
    warnings.showwarning = first_of_each_kind


def kB(entropy_eV_per_K: float) -> float:
    """Entropy in units of k_B."""
    return entropy_eV_per_K / KB_EV_PER_K


def describe(atoms: Atoms) -> str:
    """One-line description: formula and cell edge."""
    return f"{atoms.get_chemical_formula()} in a {atoms.cell.lengths()[0]:.3f} Å cubic cell"
