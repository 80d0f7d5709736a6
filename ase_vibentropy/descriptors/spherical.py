"""Spherical harmonics and Legendre/Chebyshev helpers shared by the angular descriptors.

Real spherical harmonics are evaluated by a vectorised recurrence on Cartesian unit vectors,
written without any division by sin θ so that they and their gradients are smooth everywhere:

    Y_lm(u) = s_m N_lm Q_l^m(z) C_m(x, y)      (m > 0, "cosine" type)
    Y_l,-m(u) = s_m N_lm Q_l^m(z) S_m(x, y)    (m > 0, "sine" type)
    Y_l0(u) = N_l0 Q_l^0(z)

with C_m + i S_m = (x + i y)^m, Q_l^m(z) = d^m P_l(z)/dz^m (so that P_l^m = sin^m θ Q_l^m,
without the Condon-Shortley phase), s_m = sqrt(2) and N_lm = sqrt((2l+1)/(4π) (l-m)!/(l+m)!).
They are orthonormal on the sphere, and the addition theorem reads
Σ_m Y_lm(u) Y_lm(u') = (2l+1)/(4π) P_l(u · u').

Component ordering everywhere: index l² + l + m for m = -l..l ((l_max+1)² components).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np


def sph_index(l: int, m: int) -> int:
    """Column of (l, m) in the (l_max+1)² layout: l² + l + m."""
    return l * l + l + m


@lru_cache(maxsize=32)
def _normalisation(l_max: int) -> np.ndarray:
    """N_lm = sqrt((2l+1)/(4π) (l-m)!/(l+m)!) for 0 <= m <= l <= l_max, shape (l_max+1, l_max+1)."""
    norm = np.zeros((l_max + 1, l_max + 1))
    for l in range(l_max + 1):
        for m in range(l + 1):
            ratio = math.exp(math.lgamma(l - m + 1) - math.lgamma(l + m + 1))
            norm[l, m] = math.sqrt((2 * l + 1) / (4 * math.pi) * ratio)
    return norm


def _legendre_derivative_table(z: np.ndarray, l_max: int) -> list[list[np.ndarray]]:
    """Q[l][m] = d^m P_l/dz^m (z) for 0 <= m <= l <= l_max, each with the shape of ``z``.

    Recurrences (no Condon-Shortley phase): Q_m^m = (2m-1)!!, Q_{m+1}^m = (2m+1) z Q_m^m,
    (l-m) Q_l^m = (2l-1) z Q_{l-1}^m - (l+m-1) Q_{l-2}^m.
    """
    Q: list[list[np.ndarray]] = [[None] * (l + 1) for l in range(l_max + 1)]  # type: ignore[list-item]
    double_factorial = 1.0
    for m in range(l_max + 1):
        if m > 0:
            double_factorial *= 2 * m - 1
        Q[m][m] = np.full_like(z, double_factorial)
        if m + 1 <= l_max:
            Q[m + 1][m] = (2 * m + 1) * z * Q[m][m]
        for l in range(m + 2, l_max + 1):
            Q[l][m] = ((2 * l - 1) * z * Q[l - 1][m] - (l + m - 1) * Q[l - 2][m]) / (l - m)
    return Q


def _azimuthal_table(x: np.ndarray, y: np.ndarray, l_max: int) -> tuple[list, list]:
    """C_m, S_m with C_m + i S_m = (x + i y)^m for m = 0..l_max."""
    C = [np.ones_like(x)]
    S = [np.zeros_like(x)]
    for m in range(1, l_max + 1):
        C.append(x * C[m - 1] - y * S[m - 1])
        S.append(x * S[m - 1] + y * C[m - 1])
    return C, S


def _polynomial_tables(unit_vectors: np.ndarray, l_max: int) -> tuple:
    """``(x, Q, C, S, norm)`` for unit vectors of shape (..., 3): x = u[..., 0], the tables of
    :func:`_legendre_derivative_table` (in z) and :func:`_azimuthal_table` (in x, y), and
    :func:`_normalisation`, shape (l_max+1, l_max+1)."""
    u = np.asarray(unit_vectors, dtype=float)
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    return x, _legendre_derivative_table(z, l_max), *_azimuthal_table(x, y, l_max), _normalisation(l_max)


@lru_cache(maxsize=32)
def _normalised_recurrence(l_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scalars of the recurrence for Q̄_l^m = s_m N_lm Q_l^m (s_0 = 1, s_m = sqrt 2).

    Q̄_m^m = s_m N_mm (2m-1)!! (a constant), and for l > m
    Q̄_l^m = a_lm z Q̄_{l-1}^m - b_lm Q̄_{l-2}^m with a_lm = (2l-1)/(l-m) N_lm/N_{l-1,m} and
    b_lm = (l+m-1)/(l-m) N_lm/N_{l-2,m}. Returns (diagonal (l_max+1,), a, b (l_max+1, l_max+1)).
    """
    norm = _normalisation(l_max)
    diagonal = np.zeros(l_max + 1)
    a = np.zeros((l_max + 1, l_max + 1))
    b = np.zeros((l_max + 1, l_max + 1))
    double_factorial = 1.0
    for m in range(l_max + 1):
        if m > 0:
            double_factorial *= 2 * m - 1
        diagonal[m] = (math.sqrt(2.0) if m else 1.0) * norm[m, m] * double_factorial
        for l in range(m + 1, l_max + 1):
            a[l, m] = (2 * l - 1) / (l - m) * norm[l, m] / norm[l - 1, m]
            if l >= m + 2:
                b[l, m] = (l + m - 1) / (l - m) * norm[l, m] / norm[l - 2, m]
    return diagonal, a, b


def real_spherical_harmonics(
    unit_vectors: np.ndarray, l_max: int, out: np.ndarray | None = None, axis: int = -1
) -> np.ndarray:
    """Real orthonormal spherical harmonics Y_lm(u), l = 0..l_max.

    Parameters
    ----------
    unit_vectors
        Unit vectors, shape (..., 3) (not re-normalised).
    l_max
        Largest degree.
    out
        Optional output array of shape (..., (l_max+1)²) (``axis=-1``) or with the component axis
        inserted at ``axis``.
    axis
        Position of the component axis in the result.

    Returns
    -------
    ndarray
        Y with the (l_max+1)² components (index l² + l + m) along ``axis``; dimensionless.
    """
    u = np.asarray(unit_vectors, dtype=float)
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    batch = x.shape
    n_comp = (l_max + 1) ** 2
    if out is None:
        shape = list(batch)
        shape.insert(axis if axis >= 0 else len(batch) + 1 + axis, n_comp)
        out = np.empty(shape)
    view = np.moveaxis(out, axis, 0)
    z = np.ascontiguousarray(z)
    diagonal, a, b = _normalised_recurrence(l_max)
    C, S = _azimuthal_table(np.ascontiguousarray(x), np.ascontiguousarray(y), l_max)
    # Per m, run the l-recurrence on two rolling arrays (cache-friendly, few temporaries).
    prev2 = np.empty(batch)
    prev = np.empty(batch)
    cur = np.empty(batch)
    scratch = np.empty(batch)
    for m in range(l_max + 1):
        prev.fill(diagonal[m])
        for l in range(m, l_max + 1):
            if l == m:
                q = prev
            else:
                np.multiply(z, prev, out=cur)
                cur *= a[l, m]
                if l >= m + 2:
                    np.multiply(prev2, b[l, m], out=scratch)
                    cur -= scratch
                prev2, prev, cur = prev, cur, prev2
                q = prev
            if m == 0:
                view[sph_index(l, 0)] = q
            else:
                np.multiply(q, C[m], out=view[sph_index(l, m)])
                np.multiply(q, S[m], out=view[sph_index(l, -m)])
    return out


def real_spherical_harmonics_vjp(
    unit_vectors: np.ndarray, l_max: int, weights: np.ndarray, axis: int = -1
) -> np.ndarray:
    """Σ_lm weights_lm ∇_u F_lm(u), shape (..., 3), with F_lm the polynomial form of Y_lm.

    F_lm(x, y, z) (module docstring) equals Y_lm on the unit sphere; its gradient is not
    tangential. The gradient of Y_lm(r/|r|) with respect to a vector r is
    (I - û ûᵀ) ∇_u F_lm / |r|, which the caller applies.

    Parameters
    ----------
    unit_vectors
        Shape (..., 3).
    l_max
        Largest degree.
    weights
        Shape (..., (l_max+1)²), component index l² + l + m, or with the component axis at
        ``axis`` (the other axes matching ``unit_vectors.shape[:-1]``).
    axis
        Position of the component axis of ``weights``.
    """
    x, Q, C, S, norm = _polynomial_tables(unit_vectors, l_max)
    weights = np.moveaxis(weights, axis, 0)
    sqrt2 = math.sqrt(2.0)
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gz = np.zeros_like(x)
    for l in range(l_max + 1):
        # d/dz Q_l^m = Q_l^{m+1}; d/dx (C_m, S_m) = m (C_{m-1}, S_{m-1});
        # d/dy (C_m, S_m) = m (-S_{m-1}, C_{m-1}).
        w0 = weights[sph_index(l, 0)]
        if l >= 1:
            gz += (norm[l, 0] * w0) * Q[l][1]
        for m in range(1, l + 1):
            wc = weights[sph_index(l, m)] * (sqrt2 * norm[l, m])
            ws = weights[sph_index(l, -m)] * (sqrt2 * norm[l, m])
            q = Q[l][m]
            gx += m * q * (wc * C[m - 1] + ws * S[m - 1])
            gy += m * q * (ws * C[m - 1] - wc * S[m - 1])
            if m < l:
                gz += Q[l][m + 1] * (wc * C[m] + ws * S[m])
    return np.stack([gx, gy, gz], axis=-1)


def complex_spherical_harmonics(unit_vectors: np.ndarray, l_max: int) -> np.ndarray:
    """Complex orthonormal spherical harmonics Y_l^m(u) with the Condon-Shortley phase.

    Y_l^m = (-1)^m N_lm Q_l^m(z) (x + i y)^m for m >= 0 and Y_l^{-m} = (-1)^m conj(Y_l^m), as in
    scipy.special.sph_harm_y and most physics texts.

    Parameters
    ----------
    unit_vectors
        Shape (..., 3).
    l_max
        Largest degree.

    Returns
    -------
    ndarray, complex
        Shape (..., (l_max+1)²), component index l² + l + m.
    """
    x, Q, C, S, norm = _polynomial_tables(unit_vectors, l_max)
    out = np.empty(x.shape + ((l_max + 1) ** 2,), dtype=complex)
    for l in range(l_max + 1):
        for m in range(l + 1):
            value = ((-1) ** m * norm[l, m]) * Q[l][m] * (C[m] + 1j * S[m])
            out[..., sph_index(l, m)] = value
            if m > 0:
                out[..., sph_index(l, -m)] = (-1) ** m * np.conj(value)
    return out


# --------------------------------------------------------------------------- polynomials
@lru_cache(maxsize=64)
def legendre_monomials(n: int) -> tuple[Fraction, ...]:
    """Exact monomial coefficients (a_0..a_n) of the Legendre polynomial P_n(x) = Σ_k a_k x^k.

    Bonnet's recurrence (k+1) P_{k+1} = (2k+1) x P_k - k P_{k-1} in rational arithmetic.
    """
    prev: list[Fraction] = [Fraction(1)]
    if n == 0:
        return tuple(prev)
    cur: list[Fraction] = [Fraction(0), Fraction(1)]
    for k in range(1, n):
        nxt = [Fraction(0)] * (k + 2)
        for power, coef in enumerate(cur):
            nxt[power + 1] += Fraction(2 * k + 1, k + 1) * coef
        for power, coef in enumerate(prev):
            nxt[power] -= Fraction(k, k + 1) * coef
        prev, cur = cur, nxt
    return tuple(cur)


@lru_cache(maxsize=64)
def chebyshev_monomials(n: int) -> tuple[Fraction, ...]:
    """Exact monomial coefficients of the Chebyshev polynomial T_n (T_{k+1} = 2x T_k - T_{k-1})."""
    prev: list[Fraction] = [Fraction(1)]
    if n == 0:
        return tuple(prev)
    cur: list[Fraction] = [Fraction(0), Fraction(1)]
    for k in range(1, n):
        nxt = [Fraction(0)] * (k + 2)
        for power, coef in enumerate(cur):
            nxt[power + 1] += 2 * coef
        for power, coef in enumerate(prev):
            nxt[power] -= coef
        prev, cur = cur, nxt
    return tuple(cur)


@lru_cache(maxsize=32)
def chebyshev_to_legendre_exact(l_max: int) -> tuple[tuple[Fraction, ...], ...]:
    """Exact rationals c_lλ with T_l(x) = Σ_λ c_lλ P_λ(x), rows l = 0..l_max, columns λ = 0..l_max.

    c_lλ = (2λ+1)/2 ∫_{-1}^{1} T_l(x) P_λ(x) dx, integrated monomial by monomial
    (∫ x^k dx = 2/(k+1) for even k, 0 for odd k). E.g. T_2 = -P_0/3 + 4 P_2/3.
    """
    rows = []
    for l in range(l_max + 1):
        t = chebyshev_monomials(l)
        row = []
        for lam in range(l_max + 1):
            p = legendre_monomials(lam)
            integral = Fraction(0)
            for a, ta in enumerate(t):
                if ta == 0:
                    continue
                for b, pb in enumerate(p):
                    if pb != 0 and (a + b) % 2 == 0:
                        integral += ta * pb * Fraction(2, a + b + 1)
            row.append(Fraction(2 * lam + 1, 2) * integral)
        rows.append(tuple(row))
    return tuple(rows)


def chebyshev_to_legendre(l_max: int) -> np.ndarray:
    """c_lλ of :func:`chebyshev_to_legendre_exact` as floats, shape (l_max+1, l_max+1) [l, λ]."""
    return np.array([[float(c) for c in row] for row in chebyshev_to_legendre_exact(l_max)])
