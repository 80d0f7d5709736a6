"""Harmonic entropy formulas: total (Eq. 2), quantum option, formation (Eq. 3), local (Eq. 11).

All inputs are squared angular frequencies ω² in eV/(Å² amu) of the vibrational modes only
(zero modes already removed: the sums Σ' of Eq. 2). Entropies are returned in eV/K.
"""

from __future__ import annotations

import numpy as np

from ..units import HBAR_EV_S, KB_EV_PER_K, OMEGA_UNIT_RAD_PER_S


def log_thermal_frequency(temperature: float) -> float:
    """ln(k_B T / ħ) with ω measured in sqrt(eV/(Å² amu)); dimensionless.

    ln(k_B T / ħω) = ln_thermal - ½ ln ω² for ω² in eV/(Å² amu).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive (K), got {temperature}")
    return float(np.log(KB_EV_PER_K * temperature / (HBAR_EV_S * OMEGA_UNIT_RAD_PER_S)))


def classical_mode_entropies(omega2: np.ndarray, temperature: float) -> np.ndarray:
    """Per-mode classical entropy k_B [ln(k_B T/ħω_ν) + 1] (Eq. 2), eV/K, shape of ``omega2``."""
    omega2 = np.asarray(omega2, dtype=np.float64)
    return KB_EV_PER_K * (log_thermal_frequency(temperature) - 0.5 * np.log(omega2) + 1.0)


def quantum_mode_entropies(omega2: np.ndarray, temperature: float) -> np.ndarray:
    """Per-mode quantum harmonic entropy k_B [x/(eˣ - 1) - ln(1 - e⁻ˣ)], x = ħω/k_B T; eV/K."""
    omega2 = np.asarray(omega2, dtype=np.float64)
    x = np.sqrt(omega2) * (HBAR_EV_S * OMEGA_UNIT_RAD_PER_S) / (KB_EV_PER_K * temperature)
    return KB_EV_PER_K * (x / np.expm1(x) - np.log(-np.expm1(-x)))


def mode_entropies(omega2: np.ndarray, temperature: float, quantum: bool = False) -> np.ndarray:
    """Per-mode entropies, eV/K, classical (Eq. 2) or quantum; shape of ``omega2``."""
    if quantum:
        return quantum_mode_entropies(omega2, temperature)
    return classical_mode_entropies(omega2, temperature)


def harmonic_entropy_from_omega2(
    omega2: np.ndarray, temperature: float, quantum: bool = False
) -> float:
    """Total entropy S = Σ'_ν s_ν of the vibrational modes ``omega2`` (n',), eV/K (Eq. 2)."""
    return float(np.sum(mode_entropies(omega2, temperature, quantum)))


def classical_entropy_from_log_pdet(log_pdet: float, n_modes: int, temperature: float) -> float:
    """S = k_B [n' (ln(k_B T/ħ) + 1) - ½ Σ' ln ω²] (Eq. 2), eV/K.

    Parameters
    ----------
    log_pdet
        Σ' ln ω² = ln pdet(D), with ω² in eV/(Å² amu).
    n_modes
        n', the number of vibrational modes (3N - 3 for a periodic cell).
    temperature
        K.
    """
    return float(
        KB_EV_PER_K * (n_modes * (log_thermal_frequency(temperature) + 1.0) - 0.5 * log_pdet)
    )


def shift_classical_entropy(
    entropy: float, n_modes: int, temperature_from: float, temperature_to: float
) -> float:
    """S(T) = S(T0) + n' k_B ln(T/T0), exact for the classical harmonic entropy; eV/K."""
    return float(entropy + n_modes * KB_EV_PER_K * np.log(temperature_to / temperature_from))


def formation_entropy_value(
    entropy_defect: float, n_defect: int, entropy_bulk: float, n_bulk: int
) -> float:
    """S_f = S_d - (N_d/N_b) S_b (Eq. 3), with the mode-count term kept.

    ``entropy_defect`` and ``entropy_bulk`` of cells with ``n_defect`` and ``n_bulk`` atoms
    filling the same cell, both in eV/K or both in k_B; S_f comes out in the same unit.
    """
    return float(entropy_defect - (n_defect / n_bulk) * entropy_bulk)


def local_entropies(
    omega2: np.ndarray, modes: np.ndarray, temperature: float, quantum: bool = False
) -> np.ndarray:
    """Local entropies s_i = Σ_α Σ'_ν s_ν |ξ_iα(ν)|² (Eq. 8-11), eV/K, shape (N,).

    Parameters
    ----------
    omega2
        (n',) ω² of the vibrational modes, eV/(Å² amu).
    modes
        (3N, n') matching orthonormal eigenvectors of D (columns).
    temperature
        K.
    quantum
        Quantum instead of classical per-mode entropies.

    Σ_i s_i = S exactly because every column of ``modes`` has unit norm.
    """
    weights = (np.abs(modes) ** 2) @ mode_entropies(omega2, temperature, quantum)  # (3N,)
    return weights.reshape(-1, 3).sum(axis=1)


def local_phonon_dos(
    omega2: np.ndarray,
    modes: np.ndarray,
    omega_grid: np.ndarray,
    width: float,
) -> np.ndarray:
    """Gaussian-broadened local phonon DOS ρ_i(ω) = Σ_α Σ_ν |ξ_iα(ν)|² δ(ω - ω_ν) (Eq. 8-11).

    Parameters
    ----------
    omega2
        (n',) ω² of the modes to include, eV/(Å² amu) (non-negative).
    modes
        (3N, n') matching orthonormal eigenvectors of D.
    omega_grid
        (G,) angular frequencies ω at which to evaluate, sqrt(eV/(Å² amu)).
    width
        Gaussian standard deviation replacing δ, sqrt(eV/(Å² amu)).

    Returns
    -------
    (N, G) array, states per unit ω (1 / sqrt(eV/(Å² amu))); ∫ρ_i dω = Σ_α Σ'_ν |ξ_iα(ν)|².
    """
    omega = np.sqrt(np.clip(np.asarray(omega2, dtype=np.float64), 0.0, None))
    grid = np.asarray(omega_grid, dtype=np.float64)
    kernel = np.exp(-0.5 * ((grid[None, :] - omega[:, None]) / width) ** 2) / (
        width * np.sqrt(2.0 * np.pi)
    )  # (n', G)
    weights = (np.abs(modes) ** 2).reshape(-1, 3, modes.shape[1]).sum(axis=1)  # (N, n')
    return weights @ kernel
