"""Mass-weighted harmonic spectrum, zero modes and imaginary modes.

D = M^-1/2 H M^-1/2 with H in eV/Å² and masses in amu; its eigenvalues ω² are in eV/(Å² amu)
(1 sqrt(eV/(Å² amu)) = :data:`ase_vibentropy.units.OMEGA_UNIT_RAD_PER_S` rad/s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..errors import (
    HigherOrderSaddleError,
    InvalidOptionError,
    NotAMinimumError,
    SaddleIsMinimumError,
    ZeroModeError,
)
from .hessian import HessianMatrix

#: |ω²| below this fraction of max |ω²| counts as zero (numerical noise). Physical modes of the
#: largest cells used here (16³ bcc cells) stay above ~3e-3 of the maximum.
DEFAULT_ZERO_TOL = 1e-4

#: Kinds of stationary point the harmonic formulas accept, and the number of negative ω² each
#: must have: a minimum none, a first-order saddle (a transition state) exactly one.
STATIONARY_POINTS = {"minimum": 0, "saddle": 1}


def mass_weighted_hessian(hessian: HessianMatrix, masses: np.ndarray) -> HessianMatrix:
    """D = M^-1/2 H M^-1/2, eV/(Å² amu), same type (dense or sparse) and shape (3N, 3N) as H.

    Parameters
    ----------
    hessian
        (3N, 3N) Hessian, eV/Å², dense array or scipy.sparse matrix.
    masses
        (N,) atomic masses, amu.
    """
    inv_sqrt = np.repeat(1.0 / np.sqrt(np.asarray(masses, dtype=np.float64)), 3)
    if sp.issparse(hessian):
        scale = sp.diags(inv_sqrt)
        return (scale @ sp.csr_matrix(hessian) @ scale).tocsr()
    hessian = np.asarray(hessian, dtype=np.float64)
    return hessian * inv_sqrt[:, None] * inv_sqrt[None, :]


def _dense(matrix: HessianMatrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix, dtype=np.float64)


def omega2_spectrum(hessian: HessianMatrix, masses: np.ndarray) -> np.ndarray:
    """Squared angular frequencies ω², eV/(Å² amu), shape (3N,), ascending (dense eigvalsh).

    Parameters
    ----------
    hessian
        (3N, 3N) Hessian, eV/Å² (dense or sparse; densified).
    masses
        (N,) masses, amu.
    """
    return scipy.linalg.eigvalsh(
        _dense(mass_weighted_hessian(hessian, masses)), overwrite_a=True, check_finite=False
    )


def normal_modes(
    hessian: HessianMatrix, masses: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ω² (3N,) eV/(Å² amu), ascending, and orthonormal eigenvectors ξ (3N, 3N) of D.

    Column ν of ξ is mode ν; row 3i+α is its component on atom i, direction α (Eq. 8-11).
    """
    return scipy.linalg.eigh(
        _dense(mass_weighted_hessian(hessian, masses)), overwrite_a=True, check_finite=False
    )


@dataclass(frozen=True)
class ModeClassification:
    """Which modes of a spectrum enter the sums Σ' (Eq. 2).

    Attributes
    ----------
    vibrational : (3N,) bool array
        True for the modes kept in Σ' (real, non-zero).
    zero : (3N,) bool array
        The ``n_zero`` modes of smallest |ω²| (translations, rotations).
    n_imaginary : int
        Modes with ω² < -tolerance (not counted among the zero modes; at a saddle, 1: the
        unstable mode, excluded from Σ').
    min_omega2 : float
        Smallest ω² outside the zero modes, eV/(Å² amu).
    tolerance : float
        Absolute |ω²| tolerance used, eV/(Å² amu).
    """

    vibrational: np.ndarray
    zero: np.ndarray
    n_imaginary: int
    min_omega2: float
    tolerance: float


def check_stationary_point(
    stationary_point: str,
    n_negative: int,
    min_omega2: float,
    tolerance: float,
    allow_imaginary: bool = False,
    exact_count: bool = True,
) -> None:
    """Check the number of negative ω² against the kind of stationary point.

    The one place where the mode count of a minimum or a first-order saddle is enforced (the
    dense spectrum and the sparse saddle route both call it).

    Parameters
    ----------
    stationary_point
        ``minimum`` (no negative ω²) or ``saddle`` (exactly one).
    n_negative
        Modes with ω² < -``tolerance`` outside the zero modes.
    min_omega2
        Most negative (or smallest) ω² outside the zero modes, eV/(Å² amu).
    tolerance
        Absolute |ω²| tolerance used, eV/(Å² amu) (for the messages).
    allow_imaginary
        Minimum only: accept negative ω² (reported, excluded from Σ').
    exact_count
        False when ``n_negative`` is only a lower bound (the sparse route computes a few of
        the lowest eigenvalues): the message then says "at least".

    Raises
    ------
    NotAMinimumError
        A minimum with negative ω² (unless ``allow_imaginary``).
    SaddleIsMinimumError
        A saddle without a negative ω².
    HigherOrderSaddleError
        A saddle with two or more negative ω².
    InvalidOptionError
        Unknown ``stationary_point``.
    """
    if stationary_point not in STATIONARY_POINTS:
        raise InvalidOptionError(
            f"unknown stationary_point {stationary_point!r}; known: {', '.join(STATIONARY_POINTS)}"
        )
    count = f"{n_negative}" if exact_count else f"at least {n_negative}"
    if stationary_point == "minimum":
        if n_negative and not allow_imaginary:
            raise NotAMinimumError(
                f"not a minimum: {count} imaginary mode(s), most negative ω² = "
                f"{min_omega2:.4g} eV/(Å² amu) (tolerance {tolerance:.2g}); relax the structure "
                "further or pass allow_imaginary=True to report them (or "
                "stationary_point='saddle' for a transition state)",
                n_imaginary=n_negative,
                min_omega2=min_omega2,
            )
        return
    if n_negative == 0:
        raise SaddleIsMinimumError(
            f"not a first-order saddle: no negative ω² (smallest ω² = {min_omega2:.4g} "
            f"eV/(Å² amu), tolerance {tolerance:.2g}): the structure is a minimum; pass the "
            "saddle point (e.g. refine_saddle on the NEB climbing image), or use "
            "stationary_point='minimum'",
            n_negative=0,
            min_omega2=min_omega2,
        )
    if n_negative > 1:
        raise HigherOrderSaddleError(
            f"not a first-order saddle: {count} negative ω², most negative {min_omega2:.4g} "
            f"eV/(Å² amu) (tolerance {tolerance:.2g}); a transition state has exactly one: "
            "refine the saddle from a climbing image closer to the barrier top",
            n_negative=n_negative,
            min_omega2=min_omega2,
        )


def classify_modes(
    omega2: np.ndarray,
    n_zero: int,
    zero_tol: float = DEFAULT_ZERO_TOL,
    allow_imaginary: bool = False,
    stationary_point: str = "minimum",
) -> ModeClassification:
    """Split a spectrum into zero, imaginary and vibrational modes, checking the zero count.

    Parameters
    ----------
    omega2
        (3N,) eigenvalues ω² of D, eV/(Å² amu), any order.
    n_zero
        Expected number of zero modes (``structure.n_zero_modes``: 3 periodic, 6 or 5
        isolated).
    zero_tol
        Relative tolerance: |ω²| < zero_tol * max|ω²| is numerically zero.
    allow_imaginary
        Minimum only: report imaginary modes (excluded from Σ') instead of raising.
    stationary_point
        ``minimum`` or ``saddle`` (exactly one negative ω², the unstable mode, which is
        excluded from Σ': n' = 3N - 4 in a periodic cell); see
        :func:`check_stationary_point`.

    Raises
    ------
    NotAMinimumError
        A minimum with ω² < -tolerance outside the zero modes (count and most negative).
    SaddleIsMinimumError, HigherOrderSaddleError
        A saddle without, or with more than one, negative ω².
    ZeroModeError
        The ``n_zero`` smallest |ω²| are not all ~0, or one more mode is ~0 as well.
    """
    omega2 = np.asarray(omega2, dtype=np.float64)
    scale = float(np.max(np.abs(omega2))) if omega2.size else 0.0
    tolerance = zero_tol * scale
    order = np.argsort(np.abs(omega2), kind="stable")
    zero = np.zeros(omega2.shape, dtype=bool)
    zero[order[:n_zero]] = True
    rest = omega2[~zero]
    imaginary = rest < -tolerance
    n_imaginary = int(imaginary.sum())
    min_omega2 = float(rest.min()) if rest.size else float("nan")
    check_stationary_point(stationary_point, n_imaginary, min_omega2, tolerance, allow_imaginary)
    largest_zero = float(np.abs(omega2[order[n_zero - 1]])) if n_zero else 0.0
    if n_zero and largest_zero > tolerance:
        raise ZeroModeError(
            f"expected {n_zero} zero modes (translations/rotations) but the {n_zero} smallest "
            f"|ω²| reach {largest_zero:.3g} eV/(Å² amu) > tolerance {tolerance:.2g}: the "
            "structure is not relaxed or the Hessian violates translational invariance"
        )
    if rest.size and float(np.abs(omega2[order[n_zero]])) <= tolerance:
        raise ZeroModeError(
            f"found more than {n_zero} zero modes (|ω²| = {abs(omega2[order[n_zero]]):.3g} "
            f"<= {tolerance:.2g} eV/(Å² amu)): a free fragment, a flat direction or a "
            "Hessian that is too coarse; check the structure and the calculator cut-off"
        )
    vibrational = ~zero & (omega2 > tolerance)
    return ModeClassification(vibrational, zero, n_imaginary, min_omega2, tolerance)
