"""Predicted formation entropy of a relaxed defect next to the exact harmonic one (phonopy).

Shows: the surrogate's S_f (Eq. 15, bulk="auto": the perfect lattice in the same cell) with its
predictive standard deviation, against the exact classical harmonic S_f = S_d - (N_d/N_b) S_b
(Eq. 2-3) from phonopy finite displacements of the relaxed defect and bulk cells, and the
difference. Tabulated EAM potentials (Fe) need small steps (docs/theory.md): 1e-4 Å is used for
them, 1e-3 Å (the paper's value) for smooth potentials.

    python examples/phonopy_crosscheck.py                    # bcc Fe vacancy, 4x4x4 cells
    python examples/phonopy_crosscheck.py --quick --potential emt-cu --model my_model.json
"""

from __future__ import annotations

from _common import describe, kB, parser, setup
from ase_vibentropy import VibEntropyCalculator
from ase_vibentropy.data.builders import central_site, perfect_lattice
from ase_vibentropy.harmonic import bulk_for_cell, formation_entropy, harmonic_entropy
from ase_vibentropy.predictor import EntropyPredictor


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = parser(__doc__.splitlines()[0], cells=4, quick_cells=2)
    p.add_argument("--vacancies", type=int, default=1, help="vacancies at the cell centre (1 or 2)")
    args = p.parse_args(argv)
    model, potential, cells = setup(args)

    perfect = perfect_lattice(potential.element, potential.lattice, potential.a0, cells)
    defect = perfect.copy()
    del defect[central_site(defect)]
    if args.vacancies == 2:
        del defect[central_site(defect)]
    defect = potential.relax(defect, fmax=1e-5)  # tight: the exact reference needs a minimum
    bulk = bulk_for_cell(defect, model.lattice, model.a0, model.element)
    step = 1e-4 if potential.analytic_hessian else 1e-3
    print(f"{args.vacancies} vacancy(ies): {describe(defect)}; phonopy step {step:g} Å")

    reference_calc = potential.hessian_calculator()
    exact_d = harmonic_entropy(defect, reference_calc, hessian="phonopy", step=step, fmax=1e-4)
    exact_b = harmonic_entropy(bulk, reference_calc, hessian="phonopy", step=step, fmax=1e-4)
    exact = formation_entropy(exact_d, exact_b)

    calc = VibEntropyCalculator(model, bulk="auto", temperature=exact_d.temperature)
    predicted = calc.get_property("formation_entropy", defect)
    _, std = EntropyPredictor(model).predict_formation_entropy(defect, bulk, return_std=True)
    print(f"predicted S_f = {kB(predicted):8.3f} ± {kB(std):.3f} k_B (LDML, Eq. 15)")
    print(f"exact     S_f = {kB(exact):8.3f} k_B (phonopy Hessian, Eq. 2-3)")
    print(f"difference    = {kB(predicted - exact):+8.3f} k_B")
    return {"predicted_kB": kB(predicted), "std_kB": kB(std), "exact_kB": kB(exact)}


if __name__ == "__main__":
    main()
