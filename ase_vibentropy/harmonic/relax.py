"""Relaxation at fixed cell, and the residual-force check every harmonic result relies on.

The harmonic formulas expand the energy about a minimum: a structure with residual forces
above a tolerance is refused (:class:`~ase_vibentropy.errors.NotRelaxedError`) rather than
silently giving a wrong entropy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.optimize import BFGS, FIRE, LBFGS
from ase.optimize.optimize import Optimizer

from ..errors import NotRelaxedError, UnknownNameError
from ..structure import check_structure
from .hessian import calculation_copy, resolve_calculator

#: Largest residual force accepted by default before a Hessian is computed, eV/Å.
DEFAULT_FMAX_EV_PER_A = 1e-3

#: ASE optimizers available by name.
OPTIMIZERS: dict[str, type[Optimizer]] = {"BFGS": BFGS, "LBFGS": LBFGS, "FIRE": FIRE}


def max_force(atoms: Atoms, calc: Any | None = None) -> float:
    """Largest per-atom force norm max_i |F_i|, eV/Å (``calc`` default ``atoms.calc``)."""
    work = calculation_copy(atoms, resolve_calculator(atoms, calc))
    forces = np.asarray(work.get_forces())
    return float(np.sqrt((forces**2).sum(axis=1)).max())


def check_relaxed(
    atoms: Atoms, calc: Any | None = None, fmax: float = DEFAULT_FMAX_EV_PER_A
) -> float:
    """Return max_i |F_i| (eV/Å); raise :class:`NotRelaxedError` if it exceeds ``fmax`` eV/Å."""
    largest = max_force(atoms, calc)
    if not largest <= fmax:
        raise NotRelaxedError(
            f"the structure is not relaxed: largest residual force {largest:.3g} eV/Å exceeds "
            f"fmax = {fmax:.3g} eV/Å, and the harmonic entropy assumes a minimum; relax it first "
            "(relax=True, --relax, or harmonic.relax_positions) or raise fmax",
            max_force=largest,
            fmax=fmax,
        )
    return largest


def relax_positions(
    atoms: Atoms,
    calc: Any | None = None,
    fmax: float = DEFAULT_FMAX_EV_PER_A / 10,
    optimizer: str | type[Optimizer] = "BFGS",
    steps: int = 10_000,
    logfile: str | None = None,
) -> Atoms:
    """Relax the positions at fixed cell; return a relaxed copy with ``calc`` attached.

    An isolated structure without a cell comes back with a vacuum box as its cell (pbc False).

    Parameters
    ----------
    atoms
        Starting structure (not modified).
    calc
        ASE calculator (default ``atoms.calc``).
    fmax
        Convergence criterion on max_i |F_i|, eV/Å.
    optimizer
        ``BFGS`` | ``LBFGS`` | ``FIRE`` or an ASE ``Optimizer`` subclass.
    steps
        Largest number of optimizer steps.
    logfile
        Optimizer log (default: silent).

    Raises
    ------
    NotRelaxedError
        The optimizer stopped after ``steps`` steps with forces still above ``fmax``.
    UnknownNameError
        Unknown optimizer name.
    """
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise UnknownNameError(
                f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}"
            )
        optimizer = OPTIMIZERS[optimizer]
    check_structure(atoms)
    work = calculation_copy(atoms, resolve_calculator(atoms, calc))
    opt = optimizer(work, logfile=logfile)
    opt.run(fmax=fmax, steps=steps)
    largest = float(np.sqrt((work.get_forces() ** 2).sum(axis=1)).max())
    if largest > fmax:
        raise NotRelaxedError(
            f"relaxation did not converge in {steps} steps: largest force {largest:.3g} eV/Å > "
            f"fmax = {fmax:.3g} eV/Å; allow more steps or start closer to a minimum",
            max_force=largest,
            fmax=fmax,
        )
    return work
