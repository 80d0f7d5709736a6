"""Regenerate the relaxed bcc-Fe defect structures shipped in examples/data/.

Mendelev 2003 EAM in closed form (``fe-mendelev2003``, core install), fixed cubic 8a0 cell at
a0 = 2.855324 Å, positions relaxed until the largest force is below 1e-9 eV/Å.

    python examples/data/make_structures.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.io import write

from ase_vibentropy.data.builders import interstitial_cluster, vacancy_cluster
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


if __name__ == "__main__":
    main()
