"""Defect database pipeline: build, explore, relax, label and store defect configurations.

Modules, top to bottom of the data flow:

- :mod:`.builders`  perfect lattices, vacancy and interstitial clusters, Frenkel damage,
  cascade cores, isotropic strain (all seeded with ``numpy.random.Generator``);
- :mod:`.analysis`  Wigner-Seitz occupancy, inertia fingerprints, de-duplication;
- :mod:`.explore`   random placement + quench, activation-relaxation on ASE's dimer method;
- :mod:`.recipe`    TOML recipes with strict validation;
- :mod:`.jobs`      the deterministic job list of a recipe;
- :mod:`.store`     ase.db rows (one transaction per finished job);
- :mod:`.pipeline`  labelling and parallel execution (process pool or Dask).
"""

from __future__ import annotations
