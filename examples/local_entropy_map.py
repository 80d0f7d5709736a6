"""Local formation entropies of a relaxed defect: exact (Eq. 8-11) next to the models' w · (D_i - <D>_b).

Shows: the exact local entropies s_i = k_B Σ'_ν [ln(k_B T/ħω_ν) + 1] |ξ_i(ν)|² of a relaxed
defect cell (dense diagonalisation, O(N³), so a small cell), turned into local formation
contributions s_i - S_b/N_b (they sum to S_f), next to what each model assigns to each atom,
w · (D_i - <D>_b) (they sum to the model's S_f). The models were never trained on local
entropies: agreement atom by atom is a test of the descriptor, not of the fit. Writes
``OUT.extxyz`` (per-atom arrays ``sf_exact_kB`` and ``sf_<model>_kB``), ``OUT.json`` (sums,
RMSE and correlation per model) and, with the plot extra, ``OUT.png`` (local parity).

    python examples/local_entropy_map.py                       # I1<110> dumbbell, 5x5x5 cells
    python examples/local_entropy_map.py --defect V1 --models fe-mendelev2003-afs
"""

from __future__ import annotations

import json

import numpy as np
from ase import Atoms
from ase.io import write

from _common import describe, kB, parser, setup
from ase_vibentropy.data.builders import central_site, perfect_lattice
from ase_vibentropy.errors import MissingDependencyError
from ase_vibentropy.harmonic import bulk_for_cell, harmonic_entropy
from ase_vibentropy.model_io import load_model
from ase_vibentropy.predictor import EntropyPredictor

DEFAULT_MODELS = ["fe-mendelev2003-afs", "fe-mendelev2003-afs-einstein", "fe-mendelev2003-afs-einstein-relaxed"]


def build_defect(perfect, defect: str):
    """``perfect`` with a vacancy (V1) or a <110> dumbbell (I1) on its central site."""
    atoms = perfect.copy()
    site = central_site(atoms)
    origin = atoms.positions[site].copy()
    del atoms[site]
    if defect == "I1":
        shift = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)  # ±1 Å along [110]
        atoms.extend(Atoms([atoms[0].symbol] * 2, positions=[origin + shift, origin - shift]))
    return atoms


def main(argv: list[str] | None = None) -> dict:
    p = parser(__doc__.splitlines()[0], cells=5, quick_cells=3)
    p.set_defaults(potential="fe-mendelev2003")
    p.add_argument("--defect", choices=("I1", "V1"), default="I1")
    p.add_argument("--models", nargs="+", default=None,
                   help=f"models to compare (default: --model if given, else {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--out", default="local_entropy_map", help="output stem (.extxyz, .json, .png)")
    args = p.parse_args(argv)
    model, potential, cells = setup(args)
    names = args.models or ([args.model] if args.model else DEFAULT_MODELS)
    models = {name: load_model(name) for name in names}

    perfect = perfect_lattice(potential.element, potential.lattice, potential.a0, cells)
    defect = potential.relax(build_defect(perfect, args.defect), fmax=1e-5)
    bulk = bulk_for_cell(defect, model.lattice, model.a0, model.element)
    print(f"{args.defect}: {describe(defect)}, {len(defect)} atoms")

    calc = potential.hessian_calculator()
    exact_d = harmonic_entropy(defect, calc, solver="dense", local=True, fmax=1e-4)
    exact_b = harmonic_entropy(bulk, calc, solver="dense", fmax=None)
    exact_local = exact_d.local_entropies_kB - kB(exact_b.entropy) / len(bulk)
    exact_sf = float(exact_local.sum())
    print(f"exact: S_f = {exact_sf:.3f} k_B = Σ_i (s_i - S_b/N_b)")

    defect.arrays["sf_exact_kB"] = exact_local
    summary: dict = {"defect": args.defect, "n_atoms": len(defect), "exact_Sf_kB": exact_sf, "models": {}}
    for name, m in models.items():
        local = kB(EntropyPredictor(m).local_formation_entropies(defect, bulk))
        error = local - exact_local
        summary["models"][name] = {
            "Sf_kB": float(local.sum()),
            "local_rmse_kB": float(np.sqrt(np.mean(error**2))),
            "local_correlation": float(np.corrcoef(local, exact_local)[0, 1]),
        }
        defect.arrays[f"sf_{name}_kB"] = local
        row = summary["models"][name]
        print(f"{name}: S_f = {row['Sf_kB']:.3f} k_B; per atom RMSE {row['local_rmse_kB']:.4f} k_B, "
              f"correlation {row['local_correlation']:.3f}")

    write(f"{args.out}.extxyz", defect, format="extxyz")
    with open(f"{args.out}.json", "w") as fh:
        json.dump(summary, fh, indent=1)
    try:
        plot(defect, names, f"{args.out}.png")
    except MissingDependencyError as exc:
        print(f"no PNG: {exc}")
    return summary


def plot(atoms, names: list[str], path: str) -> None:
    """Parity of the local formation contributions, one panel per model."""
    from ase_vibentropy.plotting import pyplot

    plt = pyplot("the local-entropy parity plot")
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 4.2), squeeze=False)
    exact = atoms.arrays["sf_exact_kB"]
    for ax, name in zip(axes[0], names):
        local = atoms.arrays[f"sf_{name}_kB"]
        ax.scatter(exact, local, s=8, alpha=0.7)
        lo, hi = min(exact.min(), local.min()), max(exact.max(), local.max())
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set_xlabel(r"exact $s_i - S_b/N_b$ ($k_B$)")
        ax.set_ylabel(r"model $w \cdot (D_i - \langle D\rangle_b)$ ($k_B$)")
        rmse = float(np.sqrt(np.mean((local - exact) ** 2)))
        ax.set_title(f"{name}\n{len(exact)} atoms: RMSE {rmse:.3f} $k_B$, "
                     f"correlation {np.corrcoef(local, exact)[0, 1]:.2f}", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
