"""Physical constants in ASE units, and the unit conversions the package uses.

Lengths Å, energies eV, masses amu, temperatures K, entropies eV/K (API) or k_B (reports).
"""

from __future__ import annotations

from ase import units as _ase_units

#: Boltzmann constant, eV/K.
KB_EV_PER_K: float = _ase_units.kB

#: Reduced Planck constant, eV s.
HBAR_EV_S: float = _ase_units._hbar / _ase_units._e

#: Angular frequency of 1 sqrt(eV/(Å² amu)) in rad/s (≈ 9.82269e13).
OMEGA_UNIT_RAD_PER_S: float = (_ase_units._e / (1e-20 * _ase_units._amu)) ** 0.5

#: Default temperature, K.
DEFAULT_TEMPERATURE_K: float = 300.0


def ev_per_k_to_kb(entropy_ev_per_k):
    """Convert an entropy from eV/K to units of k_B (array-friendly)."""
    return entropy_ev_per_k / KB_EV_PER_K


def kb_to_ev_per_k(entropy_kb):
    """Convert an entropy from units of k_B to eV/K (array-friendly)."""
    return entropy_kb * KB_EV_PER_K
