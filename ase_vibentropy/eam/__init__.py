"""Embedded-atom potentials with exact analytic Hessians.

* :class:`EAMCalculator`: one-element EAM (ASE calculator) with a vectorised sparse Hessian,
  on-site Hessian blocks and their gradients; the three functions are pluggable.
* :func:`mendelev2003_fe`: the Mendelev et al. 2003 Fe EAM in closed form (the reference).
* :func:`tabulated_eam`: splines through the tables of a setfl file (cross-checks only), or,
  with ``fit="knots"``, least-squares splines that keep the knots found in the tables
  (:mod:`ase_vibentropy.eam.knots`), smooth enough for Hessians.
"""

from .calculator import EAMCalculator
from .mendelev2003 import mendelev2003_fe
from .tables import tabulated_eam

__all__ = ["EAMCalculator", "mendelev2003_fe", "tabulated_eam"]
