"""Reference potentials: the built-in named ones and users' own (docs/pipeline.md, "Potentials").

:mod:`.registry` holds the :class:`Potential` record and the built-in names; :mod:`.spec` builds
potentials from users' specs (a tabulated EAM file, a LAMMPS pair style, an ASE calculator
factory). :func:`get_potential` takes either.
"""

from .registry import (
    RELAX_FMAX_EV_PER_A,
    RETIRED_POTENTIALS,
    Potential,
    available_potentials,
    equilibrium_cubic_a0,
    get_potential,
    labelling_potential,
    superseded_label_warning,
)

__all__ = [
    "RELAX_FMAX_EV_PER_A",
    "RETIRED_POTENTIALS",
    "Potential",
    "available_potentials",
    "equilibrium_cubic_a0",
    "get_potential",
    "labelling_potential",
    "superseded_label_warning",
]
