"""Seconds of an exact Vineyard attempt frequency (saddle + minimum) against cell size.

bcc Fe with one vacancy (closed-form Mendelev 2003 EAM), 2 n³ - 1 atoms, the first step of the
nearest-neighbour jump (initial minimum -> saddle; the jump is two-step with this potential).
Per cell: the two end points are relaxed to 1e-6 eV/Å, the saddle is refined
(``harmonic.refine_saddle``) from the straight-line point one third of the way, and
``harmonic.attempt_frequency`` runs on the dense route (eigvalsh of both spectra) and on the
log-det route (one Cholesky-type factorisation of the minimum, and of the saddle with its
unstable mode deflated). Columns: ``t_refine`` the saddle refinement, ``t_nu`` the attempt
frequency (both Hessians included), ν* (THz) and ΔS_m (k_B, 300 K); the two routes agree to
the digits shown. With ``--model`` (a migration model: ``vibentropy train DB --target
migration``), the predicted ν* of the same jump is timed too (``t_pred``, both descriptor sums
included), with its one-sigma factor.

Usage::

    python benchmarks/saddle_scaling.py --cells 4 6 8 10 --max-dense-atoms 2000 [--model M.json]
"""

from __future__ import annotations

import argparse
import time


from ase_vibentropy.data.builders import minimum_image, vacancy_jump
from ase_vibentropy.harmonic import attempt_frequency, refine_saddle
from ase_vibentropy.potentials import get_potential


def jump_end_points(potential, cells: int):
    """Relaxed vacancy before and after one nearest-neighbour jump, with the calculator."""
    calc = potential.hessian_calculator()
    initial, final = vacancy_jump(potential.perfect_supercell(cells))
    return potential.relax(initial, calc=calc), potential.relax(final, calc=calc), calc


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, nargs="+", default=[4, 6, 8, 10],
                   help="conventional cells per edge (default 4 6 8 10: 127-1999 atoms)")
    p.add_argument("--max-dense-atoms", type=int, default=2000,
                   help="largest cell for the dense route (default 2000)")
    p.add_argument("--model", help="migration model (file or shipped name): also time its predicted ν*")
    args = p.parse_args(argv)
    potential = get_potential("fe-mendelev2003")
    predictor = None
    if args.model:
        from ase_vibentropy.predictor import EntropyPredictor

        predictor = EntropyPredictor(args.model)
    print(f"{'N':>6} {'solver':>22} {'t_refine/s':>10} {'t_nu/s':>8} {'nu/THz':>12} {'dS_m/kB':>12}")
    print("-" * 76)
    for cells in args.cells:
        initial, final, calc = jump_end_points(potential, cells)
        guess = initial.copy()
        path = minimum_image(final.positions - initial.positions, initial.cell.array)
        guess.positions = initial.positions + path / 3.0
        start = time.perf_counter()
        saddle = refine_saddle(guess, calc)
        t_refine = time.perf_counter() - start
        solvers = ["logdet"] + (["dense"] if len(initial) <= args.max_dense_atoms else [])
        for solver in solvers:
            start = time.perf_counter()
            result = attempt_frequency(initial, saddle, calc, solver=solver, fmax=1e-5)
            t_nu = time.perf_counter() - start
            name = result.saddle.solver
            print(f"{len(initial):>6} {name:>22} {t_refine:>10.2f} {t_nu:>8.2f} "
                  f"{result.nu_THz:>12.6f} {result.delta_S_m_kB:>12.6f}", flush=True)
        if predictor is not None:
            start = time.perf_counter()
            nu, factor = predictor.predict_attempt_frequency(initial, saddle, return_std=True)
            t_pred = time.perf_counter() - start
            print(f"{len(initial):>6} {'model (t_pred)':>22} {'':>10} {t_pred:>8.3f} "
                  f"{nu:>12.6f} {'x/÷ ' + format(factor, '.3f'):>12}", flush=True)


if __name__ == "__main__":
    main()
