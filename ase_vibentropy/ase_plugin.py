"""Registration of :class:`~ase_vibentropy.calculator.VibEntropyCalculator` with ASE.

ASE (>= 3.24) collects plug-ins from the entry-point group ``ase.plugins``: each entry point
names a module whose ``__ase_plugins__`` set holds ``CalculatorPlugin`` objects (see
``ase._4.plugins``). ``ase info --plugins`` lists them. ase-vibentropy declares::

    [project.entry-points."ase.plugins"]
    vibentropy = "ase_vibentropy.ase_plugin"

Loading this module also registers the class under the name ``"vibentropy"`` with
``ase.calculators.calculator.register_calculator_class``, so that
``get_calculator_class("vibentropy")`` works once ASE's plug-ins are loaded (``import
ase._4.plugins``) or ``ase_vibentropy.ase_plugin`` is imported. Nothing heavy is imported here:
the calculator module itself is resolved only when ASE asks for the class.
"""

from __future__ import annotations

import sys
from typing import Any

#: Name under which ASE lists and constructs the calculator.
CALCULATOR_NAME = "vibentropy"

CITATION = (
    "C. Lapointe, T. D. Swinburne, L. Thiry, S. Mallat, L. Proville, C. S. Becquart, "
    "M.-C. Marinica, Machine learning surrogate models for prediction of point defect "
    "vibrational entropy, Phys. Rev. Materials 4, 063802 (2020)"
)


def get_calculator_class() -> type:
    """The :class:`~ase_vibentropy.calculator.VibEntropyCalculator` class (imported on demand)."""
    from .calculator import VibEntropyCalculator

    return VibEntropyCalculator


def _calculator_plugins() -> set[Any]:
    try:
        from ase._4.plugins.plugin import CalculatorPlugin
    except ImportError:  # ASE < 3.24 has no plug-in collection; name registration still works
        return set()
    return {
        CalculatorPlugin(
            name=CALCULATOR_NAME,
            citation=CITATION,
            module=sys.modules[__name__],
            implementation=get_calculator_class,
        )
    }


def _register_name() -> None:
    from ase.calculators import calculator as ase_calculator

    if CALCULATOR_NAME in ase_calculator.external_calculators:
        return
    from .calculator import VibEntropyCalculator

    ase_calculator.register_calculator_class(CALCULATOR_NAME, VibEntropyCalculator)


__ase_plugins__ = _calculator_plugins()
_register_name()
