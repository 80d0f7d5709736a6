"""Prediction at scale against the exact routes.

For bcc Fe cells of about N = 10^3 ... 10^6 atoms with vacancies (Mendelev 2003 EAM, a0 =
2.855324 Å; one vacancy per 10^5 sites, at least one, at seeded random sites), prints seconds and
peak memory of

- ``predict``: S, S_f and both standard deviations from a shipped model (``--model``, default
  the default model; bulk reference by the perfect-lattice shortcut), on ``--workers`` cores;
- ``logdet``: the exact S of the defect cell by the log-determinant route (analytic Hessian +
  one factorisation, docs/theory.md), where feasible (``--logdet-max``);
- ``dense``: the exact S by the dense route (analytic Hessian + eigvalsh), where feasible
  (``--dense-max``);

plus the speed-ups of prediction over both exact routes, and writes a log-log PNG of time
against N. For the smallest N it also times a second structure in the same process (the
first large call pays one-off costs) and prints the arithmetic bound on the speed-up over the
dense route: the flops of the AFS expansion against those of the 3N x 3N tridiagonalisation
(:func:`arithmetic_counts`). The exact routes time the defect cell only (their bulk reference would add as much
again), so the speed-ups are lower bounds. Each (N, route) runs in a fresh subprocess, whose
``ru_maxrss`` is its peak memory. The arithmetic bound counts the AFS(20,10) expansion of the
paper's model.

Usage::

    python benchmarks/scaling.py --sizes 1000 10000 100000 1000000 --workers 2 --png scaling.png
    python benchmarks/scaling.py --model fe-mendelev2003-afs      # the paper's model
    python benchmarks/scaling.py --sizes 1000000 --cli   # also `vibentropy predict --local` and
                                                         # the ASE calculator, end to end
    python benchmarks/scaling.py --sizes 100000 --forces  # free-energy forces (calculator)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

from ase_vibentropy.model_io import DEFAULT_MODEL

A0 = 2.855324  # Å, Mendelev 2003 Fe (docs/theory.md)


def defect_cell(n_atoms_target: int, seed: int = 0):
    """bcc Fe cube of n³ conventional cells (2 n³ ≈ ``n_atoms_target``) with vacancies."""
    import numpy as np
    from ase.build import bulk

    n = max(2, round((n_atoms_target / 2) ** (1 / 3)))
    atoms = bulk("Fe", "bcc", a=A0, cubic=True).repeat((n, n, n))
    n_vac = max(1, len(atoms) // 100_000)
    rng = np.random.default_rng(seed)
    del atoms[np.sort(rng.choice(len(atoms), n_vac, replace=False))]
    return atoms


def run_predict(n_atoms: int, model_path: str, workers: int) -> dict:
    from ase_vibentropy.harmonic import bulk_for_cell
    from ase_vibentropy.predictor import EntropyPredictor
    from ase_vibentropy.units import KB_EV_PER_K

    model = EntropyPredictor(model_path, workers=workers)
    # warm-up on a 16-atom cell: first-call costs (shared libraries, thread pools) are paid
    # once per process, not per structure
    model.predict_entropy(defect_cell(16))
    atoms = defect_cell(n_atoms)
    start, cpu_start = time.perf_counter(), time.process_time()
    bulk = bulk_for_cell(atoms, "bcc", A0, "Fe")
    s, s_std = model.predict_entropy(atoms, return_std=True)
    sf, sf_std = model.predict_formation_entropy(atoms, bulk, return_std=True)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    # a second, different structure of the same size in the same process (as in MD, NEB or a
    # screening loop): the first large call also pays one-off costs (first touch of the work
    # arrays, thread start-up); positions moved by 1e-4 Å so that no cached sum is reused
    second = atoms.copy()
    second.rattle(1e-4, seed=1)
    start = time.perf_counter()
    model.predict_entropy(second, return_std=True)
    model.predict_formation_entropy(second, bulk_for_cell(second, "bcc", A0, "Fe"), return_std=True)
    seconds_repeat = time.perf_counter() - start
    return {"n_atoms": len(atoms), "seconds": seconds, "cpu_seconds": cpu_seconds,
            "seconds_repeat": seconds_repeat, "S_kB": s / KB_EV_PER_K, "Sf_kB": sf / KB_EV_PER_K,
            "S_std_kB": s_std / KB_EV_PER_K, "Sf_std_kB": sf_std / KB_EV_PER_K}


def run_exact(n_atoms: int, solver: str) -> dict:
    from ase_vibentropy.harmonic import harmonic_entropy
    from ase_vibentropy.potentials import get_potential

    atoms = defect_cell(n_atoms)
    calc = get_potential("fe-mendelev2003").hessian_calculator()
    start, cpu_start = time.perf_counter(), time.process_time()
    # unrelaxed vacancies are minima of this potential (benchmarks/reference_scaling.py); the
    # timing is of the Hessian and the solver, not of a relaxation
    result = harmonic_entropy(atoms, calc, hessian="analytic", solver=solver, fmax=None)
    return {"n_atoms": len(atoms), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu_start, "S_kB": result.entropy_kB}


def run_cli(n_atoms: int, model_path: str, workers: int, directory: str) -> dict:
    """`vibentropy predict FILE --lattice bcc --local OUT` on one frame, including file I/O."""
    from ase.io import write

    path = os.path.join(directory, f"cell-{n_atoms}.extxyz")
    atoms = defect_cell(n_atoms)
    write(path, atoms, format="extxyz")
    out = os.path.join(directory, f"local-{n_atoms}.extxyz")
    from ase_vibentropy.cli.main import main

    start, cpu_start = time.perf_counter(), time.process_time()
    code = main(["predict", path, "--model", model_path, "--lattice", "bcc", "--workers", str(workers),
                 "--local", out, "--json"])
    return {"n_atoms": len(atoms), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu_start, "exit": code}


def run_calculator(n_atoms: int, model_path: str, workers: int) -> dict:
    """The ASE calculator (bulk='auto'): S, its std and S_f of one defect cell."""
    from ase_vibentropy.calculator import VibEntropyCalculator
    from ase_vibentropy.predictor import EntropyPredictor

    model = EntropyPredictor(model_path, workers=workers)
    atoms = defect_cell(n_atoms)
    atoms.calc = VibEntropyCalculator(model, bulk="auto", std_warning_kB=None, fmax_warning=None)
    start, cpu_start = time.perf_counter(), time.process_time()
    s = atoms.calc.get_property("vibrational_entropy", atoms)
    atoms.calc.get_property("vibrational_entropy_std", atoms)
    sf = atoms.calc.get_property("formation_entropy", atoms)
    return {"n_atoms": len(atoms), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu_start, "S_eV_per_K": s, "Sf_eV_per_K": sf}


def run_forces(n_atoms: int, model_path: str, workers: int) -> dict:
    """The ASE calculator in free-energy mode around the closed-form EAM: energy and forces of
    U - T S (300 K) of one defect cell, the model's analytic gradient included."""
    import numpy as np

    from ase_vibentropy.calculator import VibEntropyCalculator
    from ase_vibentropy.potentials import get_potential
    from ase_vibentropy.predictor import EntropyPredictor

    model = EntropyPredictor(model_path, workers=workers)
    atoms = defect_cell(n_atoms)
    atoms.calc = VibEntropyCalculator(model, calc=get_potential("fe-mendelev2003").hessian_calculator(),
                                      mode="free_energy", temperature=300.0, bulk="auto",
                                      std_warning_kB=None, fmax_warning=None)
    start, cpu_start = time.perf_counter(), time.process_time()
    atoms.get_potential_energy()
    forces = atoms.get_forces()
    return {"n_atoms": len(atoms), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu_start,
            "max_force_eV_per_A": float(np.abs(forces).max())}


def child(route: str, n_atoms: int, model_path: str, workers: int, directory: str) -> None:
    if route == "predict":
        row = run_predict(n_atoms, model_path, workers)
    elif route == "cli":
        row = run_cli(n_atoms, model_path, workers, directory)
    elif route == "calculator":
        row = run_calculator(n_atoms, model_path, workers)
    elif route == "forces":
        row = run_forces(n_atoms, model_path, workers)
    else:
        row = run_exact(n_atoms, route)
    row["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    row["route"] = route
    print("RESULT " + json.dumps(row), flush=True)


def measure(route: str, n_atoms: int, model_path: str, workers: int, directory: str) -> dict | None:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", route, str(n_atoms), model_path, str(workers), directory],
        capture_output=True, text=True, check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        reason = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {route} at N={n_atoms} failed: {reason}", flush=True)
        return None
    return json.loads(lines[-1][len("RESULT "):])


def arithmetic_counts(n_atoms: int) -> dict:
    """Floating-point operations of the two routes for the N = ``n_atoms`` defect cell.

    - descriptor: the AFS expansion c_nλm = Σ_j g_n(r_ij) Y_λm(r̂_ij), 2 n_max (l_max+1)²
      flops per directed pair, the cheapest exact formulation we know (the triplet form costs
      n_max (l_max+1) per unordered neighbour pair of every centre, 2.3x more here); the
      radial functions, harmonics and squares are left out, so this undercounts prediction.
    - dense: Householder tridiagonalisation of the 3N x 3N Hessian, (4/3)(3N)³ flops, the
      leading term of ``eigvalsh``; the Hessian itself is left out, so this undercounts too.

    Their ratio is the speed-up prediction would reach if both ran at the same flop rate.
    """
    from ase_vibentropy.descriptors import get
    from ase_vibentropy.descriptors.neighbors import neighbor_pairs
    import numpy as np

    atoms = defect_cell(n_atoms)
    afs = get("afs")
    n_pairs = len(neighbor_pairs(atoms, afs.r_cut, np.arange(len(atoms))).d)
    descriptor = 2.0 * n_pairs * afs.n_max * (afs.l_max + 1) ** 2
    dense = 4.0 / 3.0 * (3 * len(atoms)) ** 3
    return {"n_atoms": len(atoms), "n_pairs": n_pairs, "descriptor_flops": descriptor, "dense_flops": dense}


def plot(rows: list[dict], path: str) -> None:
    from ase_vibentropy.plotting import pyplot

    plt = pyplot("the scaling plot")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for route, marker, label in (("predict", "o", "LDML prediction ($S$, $S_f$, std)"),
                                 ("logdet", "s", "exact S, log-det route"),
                                 ("dense", "^", "exact S, dense eigvalsh")):
        pts = sorted((r["n_atoms"], r["seconds"]) for r in rows if r["route"] == route)
        if pts:
            ax.loglog(*zip(*pts), marker=marker, label=label)
    ax.set_xlabel("atoms N")
    ax.set_ylabel("wall time (s)")
    ax.set_title("bcc Fe with vacancies: prediction against the exact routes", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=2, help="cores for the prediction")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"shipped model name or model file (default {DEFAULT_MODEL})")
    parser.add_argument("--dense-max", type=int, default=2000, help="largest N for the dense route")
    parser.add_argument("--logdet-max", type=int, default=2000,
                        help="largest N for the log-det route (it scales ~N²)")
    parser.add_argument("--png", default="scaling.png", help="log-log plot of time against N")
    parser.add_argument("--cli", action="store_true", help="also time `vibentropy predict --local` end to end")
    parser.add_argument("--forces", action="store_true",
                        help="also time free-energy forces (U - T S) through the calculator")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        route, n_atoms, model_path, workers, directory = args.child
        child(route, int(n_atoms), model_path, int(workers), directory)
        return 0
    print(f"load average before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        model_path = args.model
        print(f"model: {model_path}")
        header = (f"{'N':>8} {'predict/s':>10} {'MB':>6} {'logdet/s':>9} {'MB':>6} {'dense/s':>8} {'MB':>6} "
                  f"{'x logdet':>9} {'x dense':>8} {'us/atom':>8} {'cpu us/atom':>11}")
        print(header)
        print("-" * len(header))
        for size in args.sizes:
            got = {"predict": measure("predict", size, model_path, args.workers, directory)}
            if size <= args.logdet_max:
                got["logdet"] = measure("logdet", size, model_path, args.workers, directory)
            if size <= args.dense_max:
                got["dense"] = measure("dense", size, model_path, args.workers, directory)
            rows += [r for r in got.values() if r]

            def cell(route: str, key: str, spec: str) -> str:
                r = got.get(route)
                return format(r[key], spec) if r else "-"

            p = got["predict"]
            ratio = {k: (format(got[k]["seconds"] / p["seconds"], ".0f") if got.get(k) and p else "-")
                     for k in ("logdet", "dense")}
            per_atom = format(1e6 * p["seconds"] / p["n_atoms"], ".1f") if p else "-"
            cpu_per_atom = format(1e6 * p["cpu_seconds"] / p["n_atoms"], ".1f") if p else "-"
            n_shown = p["n_atoms"] if p else size
            print(f"{n_shown:>8} {cell('predict', 'seconds', '.2f'):>10} {cell('predict', 'peak_mb', '.0f'):>6} "
                  f"{cell('logdet', 'seconds', '.2f'):>9} {cell('logdet', 'peak_mb', '.0f'):>6} "
                  f"{cell('dense', 'seconds', '.2f'):>8} {cell('dense', 'peak_mb', '.0f'):>6} "
                  f"{ratio['logdet']:>9} {ratio['dense']:>8} {per_atom:>8} {cpu_per_atom:>11}", flush=True)
        if args.cli:
            for size in args.sizes:
                r = measure("cli", size, model_path, args.workers, directory)
                if r:
                    print(f"vibentropy predict --local, N={r['n_atoms']}: {r['seconds']:.2f} s wall, "
                          f"{r['cpu_seconds']:.2f} s CPU (incl. reading and writing extxyz), "
                          f"peak {r['peak_mb']:.0f} MB", flush=True)
                r = measure("calculator", size, model_path, args.workers, directory)
                if r:
                    print(f"VibEntropyCalculator S, std, S_f, N={r['n_atoms']}: {r['seconds']:.2f} s wall, "
                          f"{r['cpu_seconds']:.2f} s CPU, peak {r['peak_mb']:.0f} MB", flush=True)
        if args.forces:
            for size in args.sizes:
                r = measure("forces", size, model_path, args.workers, directory)
                if r:
                    print(f"VibEntropyCalculator free-energy forces (U - T S, 300 K), N={r['n_atoms']}: "
                          f"{r['seconds']:.2f} s wall, {r['cpu_seconds']:.2f} s CPU, "
                          f"peak {r['peak_mb']:.0f} MB", flush=True)
    smallest = min(args.sizes)
    if smallest <= args.dense_max:
        counts = arithmetic_counts(smallest)
        timed = {r["route"]: r["seconds"] for r in rows if r["n_atoms"] == counts["n_atoms"]}
        print(f"arithmetic at N={counts['n_atoms']} ({counts['n_pairs']} directed pairs within r_cut): "
              f"AFS expansion {counts['descriptor_flops'] / 1e9:.3f} GFLOP, dense tridiagonalisation "
              f"{counts['dense_flops'] / 1e9:.1f} GFLOP; at equal flop rates the speed-up is at most "
              f"{counts['dense_flops'] / counts['descriptor_flops']:.0f}x")
        repeat = next((r["seconds_repeat"] for r in rows if r["route"] == "predict"
                       and r["n_atoms"] == counts["n_atoms"]), None)
        if repeat and "dense" in timed:
            print(f"  a second structure of N={counts['n_atoms']} in the same process: {repeat:.3f} s "
                  f"({timed['dense'] / repeat:.0f}x the dense route)")
        for route, key in (("predict", "descriptor_flops"), ("dense", "dense_flops")):
            if route in timed:
                print(f"  {route}: {counts[key] / timed[route] / 1e9:.1f} GFLOP/s counted "
                      f"({'lower bound: more work than counted' if route == 'predict' else 'leading term only'})")
    for p in (r for r in rows if r["route"] == "predict"):
        print(f"  N={p['n_atoms']}: S = {p['S_kB']:.3f} ± {p['S_std_kB']:.3f} k_B, "
              f"S_f = {p['Sf_kB']:.3f} ± {p['Sf_std_kB']:.3f} k_B")
    print(f"load average after: {os.getloadavg()}  (wall times scale with the machine's load; "
          "CPU seconds, summed over threads, do not)")
    if args.png and rows:
        plot(rows, args.png)
        print(f"plot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
