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
from .hessian import calculation_copy, resolve_calculator, sparse_hessian

#: Largest residual force accepted by default before a Hessian is computed, eV/Å.
DEFAULT_FMAX_EV_PER_A = 1e-3

#: ASE optimizers available by name.
OPTIMIZERS: dict[str, type[Optimizer]] = {"BFGS": BFGS, "LBFGS": LBFGS, "FIRE": FIRE}


def largest_force(forces: np.ndarray) -> float:
    """max_i |F_i| of forces (N, 3), eV/Å."""
    return float(np.sqrt((np.asarray(forces) ** 2).sum(axis=1)).max())


def max_force(atoms: Atoms, calc: Any | None = None) -> float:
    """Largest per-atom force norm max_i |F_i|, eV/Å (``calc`` default ``atoms.calc``)."""
    work = calculation_copy(atoms, resolve_calculator(atoms, calc))
    return largest_force(work.get_forces())


def check_relaxed(
    atoms: Atoms, calc: Any | None = None, fmax: float = DEFAULT_FMAX_EV_PER_A
) -> float:
    """Return max_i |F_i| (eV/Å); raise :class:`NotRelaxedError` if it exceeds ``fmax`` eV/Å."""
    largest = max_force(atoms, calc)
    if not largest <= fmax:
        raise NotRelaxedError(
            f"the structure is not relaxed: largest residual force {largest:.3g} eV/Å exceeds "
            f"fmax = {fmax:.3g} eV/Å, and the harmonic entropy assumes a stationary point (a "
            "minimum, or a saddle for a transition state); relax it first "
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
    largest = largest_force(work.get_forces())
    if largest > fmax:
        raise NotRelaxedError(
            f"relaxation did not converge in {steps} steps: largest force {largest:.3g} eV/Å > "
            f"fmax = {fmax:.3g} eV/Å; allow more steps or start closer to a minimum",
            max_force=largest,
            fmax=fmax,
        )
    return work


#: Largest step of one Newton iteration, Å (a trust radius: a Newton step is only trusted
#: near a minimum, where it is far smaller).
NEWTON_MAX_STEP_A = 0.05

#: Bounds of the relative residual of the conjugate gradients of one Newton step.
NEWTON_MIN_RTOL = 1e-12
NEWTON_MAX_RTOL = 1e-3

#: Trust radius of the Newton steps :func:`relax_to_minimum` tries first when given a
#: preconditioner, Å: a <110> dumbbell started ±1 Å from its site relaxes in 8 Hessians
#: (16 at 0.05 Å).
NEWTON_FIRST_MAX_STEP_A = 0.3

#: max |F| below which :func:`relax_to_minimum` switches from L-BFGS to Newton steps, eV/Å.
NEWTON_START_FMAX_EV_PER_A = 1e-2


def capped_step(step: np.ndarray, max_step: float) -> tuple[np.ndarray, float]:
    """A position step (3N,) or (N, 3) in Å as (N, 3) without its rigid translation, scaled so
    that no atom moves more than ``max_step`` Å; and its longest per-atom length before scaling."""
    step = np.array(step, dtype=float).reshape(-1, 3)
    step -= step.mean(axis=0)
    longest = float(np.sqrt((step**2).sum(axis=1)).max())
    if longest > max_step:
        step *= max_step / longest
    return step, longest


def newton_polish(
    atoms: Atoms,
    calc: Any | None = None,
    fmax: float = 1e-6,
    steps: int = 20,
    preconditioner: Any | None = None,
    max_step: float = NEWTON_MAX_STEP_A,
) -> Atoms:
    """Polish a nearly relaxed periodic structure with Newton steps on the exact Hessian.

    Each step solves H Δx = F (conjugate gradients on the sparse Hessian, O(N) per product,
    to a relative residual of max|F|² within [:data:`NEWTON_MIN_RTOL`, :data:`NEWTON_MAX_RTOL`];
    the residual forces are orthogonal to the three translational zero modes, so the singular
    system is consistent) and moves by Δx, at most ``max_step`` per atom. Near a
    minimum the residual falls quadratically: three or four steps take max |F| from 1e-2 to
    below 1e-9 eV/Å.

    Parameters
    ----------
    atoms
        Periodic structure close to a minimum (not modified).
    calc
        Calculator with ``get_hessian(atoms)`` (eV/Å², sparse or dense), default ``atoms.calc``.
    fmax
        Convergence criterion on max_i |F_i|, eV/Å.
    steps
        Largest number of Newton steps.
    preconditioner
        Optional symmetric positive (semi-)definite approximation of H⁻¹ (a scipy
        ``LinearOperator`` of shape (3N, 3N), Å²/eV) for the conjugate gradients, e.g. the
        perfect lattice's Green's function (:func:`.embedding.green_preconditioner`): the
        iteration count then no longer grows with the cell.
    max_step
        Trust radius: largest move of one atom in one step, Å.

    Returns
    -------
    Atoms
        A relaxed copy with ``calc`` attached.

    Raises
    ------
    NotRelaxedError
        Not converged after ``steps`` steps, a step raised the forces, or the curvature along
        a Newton step is not positive (the structure is not near a minimum: Newton steps
        converge to any stationary point, so they are refused rather than taken to a saddle).
    """
    from scipy.sparse.linalg import cg

    check_structure(atoms)
    work = calculation_copy(atoms, resolve_calculator(atoms, calc))
    calc = work.calc
    if not hasattr(calc, "get_hessian"):
        raise TypeError(f"newton_polish needs a calculator with get_hessian, got {type(calc).__name__}")
    forces = work.get_forces()
    largest = largest_force(forces)
    for _ in range(steps):
        if largest <= fmax:
            return work
        hessian = sparse_hessian(work, calc)
        rhs = (forces - forces.mean(axis=0)).ravel()  # exactly orthogonal to translations
        # inexact Newton: a relative residual of max|F|² (eV/Å) keeps the convergence
        # superlinear while the first, trust-limited steps need few iterations
        rtol = min(NEWTON_MAX_RTOL, max(NEWTON_MIN_RTOL, largest**2))
        step, info = cg(
            hessian, rhs, rtol=rtol, atol=0.0, maxiter=20 * len(rhs), M=preconditioner
        )
        curvature = float(step @ (hessian @ step))
        del hessian  # before the next one is built: one 10^5-atom Hessian at a time
        if info < 0 or not curvature > 0.0:
            # no descent direction of positive curvature: not near a minimum (Newton steps
            # would walk towards a saddle)
            break
        step, longest = capped_step(step, max_step)
        work.positions = work.positions + step
        forces = work.get_forces()
        new_largest = largest_force(forces)
        if new_largest >= largest and longest < max_step:
            largest = new_largest  # a full Newton step that does not help: not near a minimum
            break
        largest = new_largest
    if largest > fmax:
        raise NotRelaxedError(
            f"Newton polish did not converge: largest force {largest:.3g} eV/Å > fmax = "
            f"{fmax:.3g} eV/Å after at most {steps} steps; the structure is not close to a "
            "minimum (relax it with an optimizer first)",
            max_force=largest,
            fmax=fmax,
        )
    return work


def relax_to_minimum(
    atoms: Atoms,
    calc: Any | None = None,
    fmax: float = 1e-6,
    steps: int = 10_000,
    preconditioner: Any | None = None,
) -> Atoms:
    """Relax the positions at fixed cell to ``fmax`` (eV/Å): L-BFGS, then Newton steps.

    With a calculator that has ``get_hessian`` and a periodic cell, L-BFGS stops at
    :data:`NEWTON_START_FMAX_EV_PER_A` (or ``fmax`` if larger) and :func:`newton_polish`
    finishes; should it fail, L-BFGS goes on to ``fmax``. Otherwise L-BFGS alone.

    With a ``preconditioner`` (an approximate H⁻¹, see :func:`newton_polish`) Newton steps are
    tried first from the start, which on large cells (10^5 atoms) is far cheaper than L-BFGS;
    if they are refused (not near a minimum), the L-BFGS-then-Newton path above follows.

    Returns
    -------
    Atoms
        A relaxed copy with ``calc`` attached.

    Raises
    ------
    NotRelaxedError
        Still above ``fmax`` after ``steps`` L-BFGS steps.
    """
    calc = resolve_calculator(atoms, calc)
    newton = hasattr(calc, "get_hessian") and atoms.cell.rank == 3 and bool(atoms.pbc.all())
    if not newton:
        return relax_positions(atoms, calc, fmax=fmax, optimizer="LBFGS", steps=steps)
    if preconditioner is not None:
        try:
            return newton_polish(
                atoms, calc, fmax=fmax, steps=40, preconditioner=preconditioner,
                max_step=NEWTON_FIRST_MAX_STEP_A,
            )
        except NotRelaxedError:
            pass
    start = relax_positions(atoms, calc, fmax=max(fmax, NEWTON_START_FMAX_EV_PER_A),
                            optimizer="LBFGS", steps=steps)
    try:
        return newton_polish(start, calc, fmax=fmax, preconditioner=preconditioner)
    except NotRelaxedError:
        return relax_positions(start, calc, fmax=fmax, optimizer="LBFGS", steps=steps)
