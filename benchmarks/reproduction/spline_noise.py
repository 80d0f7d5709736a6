"""Spline noise in Fe_mm.eam.fs and what it does to fixed-cell formation entropies.

Prints and saves (JSON + PNG):

1. the perfect-lattice entropy per atom S_b/N (k_B, 4a0 cell, exact log-det) against isotropic
   strain, for three versions of the Mendelev 2003 potential: the closed form
   (``fe-mendelev2003``, the reference), splines through every point of the file's tables
   (``fe-mendelev2003-table``, matscipy's and LAMMPS' interpolation), and splines through every
   8th point (the resampling that removes most of the noise but not next to the knots);
2. S_f of the relaxed vacancy and <110> dumbbell in 4a0-12a0 cells (fixed cubic cell at a0,
   centred defect, relaxed to 1e-6 eV/Å with each version's own calculator), for all three;
3. the same in 8a0 cells at -1, +1 and +2 % strain, where the resampled spline fails next to the
   2.5 Å pair knot.

    python benchmarks/reproduction/spline_noise.py          # a few minutes on 2 cores

Needs the ``lammps`` extra (the potential file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from ase_vibentropy.eam import mendelev2003_fe, tabulated_eam
from ase_vibentropy.harmonic import bulk_for_cell, harmonic_entropy, relax_to_minimum
from ase_vibentropy.harmonic.reference import formation_entropy
from ase_vibentropy.data.builders import centred_point_defect
from ase_vibentropy.potentials.registry import _lammps_potential_file
from ase_vibentropy.units import KB_EV_PER_K

HERE = Path(__file__).resolve().parent
A0 = 2.855324  # Å
#: Versions of the potential: name -> calculator factory.
POTENTIALS = {
    "closed form": mendelev2003_fe,
    "table splines": lambda: tabulated_eam(_lammps_potential_file("Fe_mm.eam.fs"), "eam/fs", 1),
    "every 8th point": lambda: tabulated_eam(_lammps_potential_file("Fe_mm.eam.fs"), "eam/fs", 8),
}
STRAINS = (-3e-3, -1e-3, -3e-4, -1e-4, -3e-5, -1e-5, 0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)


#: Strains of the 8a0 cells of part 3.
STRAINED = (-0.01, 0.01, 0.02)


def formation_entropy_kB(calc, n_cells: int, defect: str, a: float) -> float:
    """S_f (k_B) of the centred defect relaxed in the n³ cube of lattice constant ``a`` (Å)."""
    atoms = relax_to_minimum(centred_defect(n_cells, defect, a), calc, fmax=1e-6)
    reference = bulk_for_cell(atoms, "bcc", a, "Fe")
    return formation_entropy(
        harmonic_entropy(atoms, calc, hessian="analytic", solver="logdet", fmax=None),
        harmonic_entropy(reference, calc, hessian="analytic", solver="logdet", fmax=None),
    ) / KB_EV_PER_K


def centred_defect(n_cells: int, defect: str, a0: float) -> Atoms:
    """bcc Fe n³ cube with a vacancy ("V1") or a <110> dumbbell ("I1", ±1 Å) on the central site."""
    perfect = bulk("Fe", "bcc", a=a0, cubic=True).repeat((n_cells,) * 3)
    return centred_point_defect(perfect, {"V1": "V1", "I1": "I1<110>"}[defect], separation=2.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8, 10, 12])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw the PNG from the JSON of an earlier run")
    args = parser.parse_args(argv)
    if args.plot_only:
        return plot(json.loads((args.out / "spline_noise.json").read_text()), args.out)
    result: dict = {"strain": list(STRAINS), "Sb_per_atom_kB": {}, "Sf_kB": {}, "Sf_8a0_strained_kB": {}}
    for name, make in POTENTIALS.items():
        calc = make()
        per_atom = []
        for strain in STRAINS:
            atoms = bulk("Fe", "bcc", a=A0 * (1 + strain), cubic=True).repeat((4, 4, 4))
            exact = harmonic_entropy(atoms, calc, hessian="analytic", solver="logdet", fmax=None)
            per_atom.append(exact.entropy_kB / len(atoms))
        result["Sb_per_atom_kB"][name] = per_atom
        print(name, "S_b/N (k_B) at strains", " ".join(f"{s:+.0e}:{v:.6f}" for s, v in zip(STRAINS, per_atom)), flush=True)
        result["Sf_kB"][name] = {}
        for defect in ("V1", "I1"):
            values = []
            for n_cells in args.sizes:
                start = time.perf_counter()
                s_f = formation_entropy_kB(calc, n_cells, defect, A0)
                values.append(s_f)
                print(f"{name} {defect} {n_cells}a0: S_f = {s_f:.3f} k_B "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
            result["Sf_kB"][name][defect] = dict(zip(map(str, args.sizes), values))
            strained = {f"{strain:+.2f}": formation_entropy_kB(calc, 8, defect, A0 * (1 + strain))
                        for strain in STRAINED}
            result["Sf_8a0_strained_kB"].setdefault(name, {})[defect] = strained
            print(f"{name} {defect} 8a0 strained:", ", ".join(f"{k}: {v:.3f}" for k, v in strained.items()),
                  flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "spline_noise.json").write_text(json.dumps(result, indent=1))
    print("wrote", args.out / "spline_noise.json")
    return plot(result, args.out)


def plot(result: dict, out: Path) -> int:
    """Draw ``spline_noise.png`` from the results dictionary."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no PNG (pip install 'ase-vibentropy[plot]')")
        return 0
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    # one colour and marker per version of the potential in both panels; V1 solid, I1 dashed
    for k, (name, marker) in enumerate(zip(result["Sb_per_atom_kB"], ("o", "s", "^"))):
        left.plot(np.array(result["strain"]) * 100, result["Sb_per_atom_kB"][name], marker=marker,
                  color=f"C{k}", label=name)
        for defect, style in (("V1", "-"), ("I1", "--")):
            sizes = [int(n) for n in result["Sf_kB"][name][defect]]
            n_atoms = [2 * n**3 for n in sizes]
            right.plot(n_atoms, list(result["Sf_kB"][name][defect].values()), style, marker=marker,
                       color=f"C{k}", label=f"{name}, {defect}")
    # the scale first: setting it afterwards would replace the formatter
    left.set_xscale("symlog", linthresh=1e-3)
    left.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    left.set(xlabel="isotropic strain (%)", ylabel="$S_b/N$ ($k_B$)",
             title="perfect lattice, $4a_0$ cell (symmetric log scale)")
    right.set(xscale="log", xlabel="lattice sites", ylabel="$S_f$ ($k_B$)",
              title="fixed cubic cell at $a_0$: V1 solid, I1 dashed")
    right.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set_xticks(n_atoms, [f"{n:,}" for n in n_atoms])
    for ax in (left, right):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "spline_noise.png", dpi=120)
    plt.close(fig)
    print("wrote", out / "spline_noise.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
