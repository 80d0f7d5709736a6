"""Regenerate the relaxed bcc-Fe defect structures shipped in examples/data/.

Mendelev 2003 EAM in closed form (``fe-mendelev2003``, core install), fixed cubic 8a0 cell at
a0 = 2.855324 Å, positions relaxed until the largest force is below 1e-9 eV/Å. Also the first
step of a vacancy's nearest-neighbour jump in a 4a0 cell: the initial minimum, the climbing
image of a 7-image NEB band (not refined: max |F| ~ 0.05 eV/Å, the input of
``vibentropy prefactor --refine``) and the metastable midpoint minimum the jump passes.

    python examples/data/make_structures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.io import write


from ase_vibentropy.data.builders import interstitial_cluster, vacancy_cluster, vacancy_jump
from ase_vibentropy.harmonic import climbing_band
from ase_vibentropy.potentials import get_potential

HERE = Path(__file__).parent


def main() -> None:
    fe = get_potential("fe-mendelev2003")
    perfect = fe.perfect_supercell(8)
    rng = np.random.default_rng(0)
    defects = {
        "fe_vacancy_8a0": vacancy_cluster(perfect, 1, rng),
        "fe_dumbbell110_8a0": interstitial_cluster(perfect, 1, "bcc", rng),
        "fe_di_interstitial_8a0": interstitial_cluster(perfect, 2, "bcc", rng),
    }
    for name, atoms in defects.items():
        relaxed = fe.relax(atoms, fmax=1e-9)
        relaxed.calc = None
        relaxed.info.update(potential=fe.name, potential_version=fe.version, lattice="bcc", a0=fe.a0, n_cells=8)
        write(HERE / f"{name}.extxyz", relaxed)
        print(name, len(relaxed))
    write_vacancy_jump(fe)


def write_vacancy_jump(fe) -> None:
    """Initial minimum, NEB climbing image and midpoint minimum of the 4a0 vacancy jump."""
    calc = fe.hessian_calculator()
    initial, final = (fe.relax(atoms, fmax=1e-9, calc=calc) for atoms in vacancy_jump(fe.perfect_supercell(4)))
    images, _ = climbing_band(initial, final, fe.hessian_calculator, n_images=5)
    energies = [image.get_potential_energy() for image in images]
    climbing = images[int(np.argmax(energies))].copy()
    midpoint = fe.relax(images[3], fmax=1e-9, calc=calc)
    for name, atoms in (("initial", initial), ("climbing", climbing), ("midpoint", midpoint)):
        atoms.calc = None
        atoms.info.update(potential=fe.name, potential_version=fe.version, lattice="bcc", a0=fe.a0, n_cells=4)
        write(HERE / f"fe_vacancy_jump_{name}_4a0.extxyz", atoms)
        print(f"fe_vacancy_jump_{name}_4a0", len(atoms))


if __name__ == "__main__":
    main()
