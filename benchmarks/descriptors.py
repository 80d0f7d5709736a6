"""Time Σ_i D_i for every registered descriptor provider on rattled bcc Fe cells.

Prints, per cell size, the seconds and atoms per second of ``provider.compute_sum(atoms)`` (and of
the gradient ``provider.vjp(atoms, w)`` for the providers named by ``--vjp``) for
each provider registered in the ``ase_vibentropy.descriptors`` entry-point group (providers that
cannot be built or imported are skipped with a note), and of featomic's SoapPowerSpectrum
(n_max 8, l_max 6, r_cut 5 Å) called directly in the same process as the reference. The peak
resident memory during each run is sampled from /proc (Linux).

Targets: AFS(20, 10) no slower than featomic SOAP on the same cell; Σ AFS over
128,000 atoms in <= 15 s on 2 cores with bounded memory.

Usage::

    python benchmarks/descriptors.py                      # 1,024, 16,000 and 128,000 atoms
    python benchmarks/descriptors.py --sizes 1024 16000   # smaller run
    python benchmarks/descriptors.py --providers afs soap --repeat 3
    python benchmarks/descriptors.py --vjp                # no gradient timings
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.build import bulk

A0_FE = 2.855324  # Å, Mendelev 2003 (docs/theory.md)


def bcc_fe_cell(n_atoms: int) -> Atoms:
    """Cubic bcc Fe supercell with ``n_atoms`` = 2 n³ atoms, rattled by 0.02 Å (seeded).

    The rattle keeps every provider on its ordinary route: on a perfect lattice of more than
    ``chunk_size`` atoms, ``compute_sum`` would take the one-small-cell shortcut and time nothing.
    """
    n = round((n_atoms / 2) ** (1 / 3))
    if 2 * n**3 != n_atoms:
        raise SystemExit(f"--sizes: {n_atoms} is not 2 n³ (bcc cubic cell); try 1024, 16000, 128000")
    atoms = bulk("Fe", "bcc", a=A0_FE, cubic=True) * (n, n, n)
    atoms.rattle(stdev=0.02, seed=0)
    return atoms


class PeakRSS:
    """Context manager sampling this process's resident memory (MB) every 20 ms."""

    def __init__(self) -> None:
        self.peak_mb = float("nan")
        self._stop = threading.Event()

    @staticmethod
    def _rss_mb() -> float:
        try:
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError):
            return float("nan")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = np.fmax(self.peak_mb, self._rss_mb())
            self._stop.wait(0.02)

    def __enter__(self) -> PeakRSS:
        self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def time_call(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """Best wall time of ``repeat`` calls (s), its CPU time (s, all threads) and peak RSS (MB).

    CPU / wall is the number of cores the call actually got: on a shared machine it shows
    how much of a slow wall time is contention.
    """
    best, best_cpu = float("inf"), float("nan")
    with PeakRSS() as rss:
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall = time.perf_counter() - start
            if wall < best:
                best, best_cpu = wall, time.process_time() - start_cpu
    return best, best_cpu, rss.peak_mb


def featomic_soap_runner() -> Callable[[Atoms], object] | None:
    """featomic's SoapPowerSpectrum (n_max 8, l_max 6, r_cut 5 Å) called directly, or None."""
    try:
        import featomic
    except ImportError:
        return None
    calc = featomic.SoapPowerSpectrum(
        cutoff={"radius": 5.0, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={"type": "TensorProduct", "max_angular": 6, "radial": {"type": "Gto", "max_radial": 7}},
    )

    def run(atoms: Atoms) -> np.ndarray:
        return calc.compute(atoms).block(0).values.sum(axis=0)

    return run


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a Markdown table."""
    from ase_vibentropy import descriptors

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 16000, 128000])
    parser.add_argument("--providers", nargs="+", default=None, help="default: every registered one")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--skip-featomic", action="store_true", help="do not run featomic directly")
    parser.add_argument(
        "--vjp", nargs="*", default=["afs"], metavar="NAME",
        help="also time provider.vjp(atoms, w) for these providers (default: afs)",
    )
    args = parser.parse_args(argv)

    runners: dict[str, Callable[[Atoms], object]] = {}
    for name in args.providers or descriptors.available():
        try:
            provider = descriptors.get(name)
            provider.compute_sum(bcc_fe_cell(16))  # imports, caches (AFS radial basis), warm-up
        except Exception as exc:  # a broken or missing plug-in must not stop the benchmark
            print(f"note: skipping provider {name!r}: {type(exc).__name__}: {exc}")
            continue
        runners[f"{name} (dim {provider.dim})"] = provider.compute_sum
        if name in args.vjp and provider.has_gradient:
            w = np.random.default_rng(0).normal(size=provider.dim)
            runners[f"{name} vjp"] = lambda atoms, p=provider, w=w: p.vjp(atoms, w)
    if not args.skip_featomic:
        soap = featomic_soap_runner()
        if soap is None:
            print("note: featomic is not installed (pip install 'ase-vibentropy[soap]'); no reference")
        else:
            soap(bcc_fe_cell(16))
            runners["featomic SOAP direct (8, 6, 5 Å)"] = soap

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\nΣ_i D_i on cubic bcc Fe (a0 = {A0_FE} Å); {cpus} CPUs available; best of {args.repeat}\n")
    print("| atoms | descriptor | seconds | atoms/s | CPU s | peak RSS (MB) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    results: dict[tuple[int, str], float] = {}
    for size in args.sizes:
        atoms = bcc_fe_cell(size)
        for label, run in runners.items():
            seconds, cpu, peak = time_call(lambda run=run: run(atoms), args.repeat)
            results[(size, label)] = seconds
            print(
                f"| {size:,} | {label} | {seconds:.3f} | {size / seconds:,.0f} | {cpu:.2f} | {peak:,.0f} |",
                flush=True,
            )

    afs = next((label for label in runners if label.startswith("afs (")), None)
    ref = next((label for label in runners if label.startswith("featomic")), None)
    if afs:
        print()
        for size in args.sizes:
            if ref:
                ratio = results[(size, afs)] / results[(size, ref)]
                print(f"{size:,} atoms: AFS / featomic SOAP time = {ratio:.2f} (target <= 1)")
        if 128000 in args.sizes:
            print(f"128,000 atoms: Σ AFS in {results[(128000, afs)]:.1f} s (target <= 15 s on 2 cores)")


if __name__ == "__main__":
    main()
