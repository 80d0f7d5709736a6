"""Vacancy migration by NEB, with the vibrational entropy and its uncertainty along the path.

Shows: one VibEntropyCalculator per NEB image (each wrapping its own force calculator), the
band relaxed with FIRE, then the energy barrier and S - S_initial (k_B) with the model's
predictive standard deviation at every image. The end points are symmetry images of one
vacancy, so their entropies agree; intermediate images are not minima, so their S is the
model's extrapolation (the std says how far to trust it).

    python examples/neb_vacancy_migration.py                 # bcc Fe, 4x4x4 cells, 7 images
    python examples/neb_vacancy_migration.py --quick --potential emt-cu --model my_model.json
"""

from __future__ import annotations

import numpy as np
from ase.mep import NEB
from ase.optimize import FIRE

from _common import describe, kB, parser, setup
from ase_vibentropy import VibEntropyCalculator
from ase_vibentropy.data.builders import central_site, minimum_image, perfect_lattice


def end_points(potential, cells: int):
    """Relaxed vacancy before and after one nearest-neighbour jump (same cell, same atoms)."""
    perfect = perfect_lattice(potential.element, potential.lattice, potential.a0, cells)
    site = central_site(perfect)
    offsets = minimum_image(perfect.positions - perfect.positions[site], perfect.cell.array)
    distances = np.linalg.norm(offsets, axis=1)
    distances[site] = np.inf
    jumper = int(np.argmin(distances))  # a nearest neighbour of the vacant site
    initial = perfect.copy()
    del initial[site]
    final = initial.copy()
    final.positions[jumper - (jumper > site)] = perfect.positions[site]
    relaxed = []
    for atoms in (initial, final):
        atoms.calc = potential.force_calculator()
        FIRE(atoms, logfile=None).run(fmax=1e-3, steps=2000)
        relaxed.append(atoms)
    return relaxed


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = parser(__doc__.splitlines()[0], cells=4, quick_cells=3)
    p.add_argument("--images", type=int, default=None, help="interior images (default 5, 3 quick)")
    args = p.parse_args(argv)
    model, potential, cells = setup(args)
    n_interior = args.images or (3 if args.quick else 5)
    initial, final = end_points(potential, cells)
    images = [initial] + [initial.copy() for _ in range(n_interior)] + [final]
    for image in images:
        # Saddle-region images are not minima by construction: no force warning.
        image.calc = VibEntropyCalculator(
            model, calc=potential.force_calculator(), fmax_warning=None, std_warning_kB=None
        )
    neb = NEB(images, climb=True, method="improvedtangent")
    neb.interpolate(mic=True)
    print(f"vacancy migration: {describe(initial)}, {len(images)} images, "
          f"T = {images[0].calc.temperature:.0f} K")
    converged = FIRE(neb, logfile=None).run(fmax=0.05 if args.quick else 0.01, steps=500)
    energies = np.array([im.get_potential_energy() for im in images])
    S = np.array([im.calc.get_property("vibrational_entropy", im) for im in images])
    std = np.array([im.calc.get_property("vibrational_entropy_std", im) for im in images])
    print(f"NEB converged: {converged}; barrier {energies.max() - energies[0]:.4f} eV")
    print(f"{'image':>5} {'E - E0 (eV)':>12} {'S - S0 (k_B)':>13} {'std (k_B)':>10}")
    for k, (e, s, d) in enumerate(zip(energies, S, std)):
        print(f"{k:5d} {e - energies[0]:12.4f} {kB(s - S[0]):13.3f} {kB(d):10.3f}")
    return {
        "converged": bool(converged),
        "barrier_eV": float(energies.max() - energies[0]),
        "entropy_kB": [kB(s) for s in S],
        "std_kB": [kB(d) for d in std],
    }


if __name__ == "__main__":
    main()
