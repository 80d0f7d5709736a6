"""The orthonormal radial basis g_n(r) of the AFS descriptor (Bartók et al. 2013).

Primitive functions φ_α(r) = (r_c - r)^(α+2) / N_α, α = 1..n_max, N_α = sqrt(r_c^(2α+5)/(2α+5)),
overlap S_αβ = ∫_0^rc φ_α φ_β dr = sqrt((2α+5)(2β+5)) / (α+β+5), and g_n = Σ_α W_nα φ_α with
W = S^(-1/2) (symmetric orthonormalisation).

cond(S) ~ 1e32 at n_max = 20, so W cannot be computed, nor Σ_α W_nα φ_α evaluated, in float64
(the entries of W reach ~1e16 and cancel). Both problems go away in an equivalent basis: with
x = (r_c - r)/r_c, φ_α = x³ sqrt(2α+5) x^(α-1) / sqrt(r_c), and the monomials x^m (m < n_max)
are rewritten in the polynomials q_k(x) = sqrt(2k+7) P_k^(0,6)(2x - 1), orthonormal on [0, 1]
with weight x^6 (Jacobi). Then

    g_n(r) = Σ_k B_nk x³ q_k(x) / sqrt(r_c),     B = S^(-1/2) D L,

where D = diag(sqrt(2α+5)) and L is the Cholesky factor of the weighted monomial moments
H_mk = 1/(m+k+7) (x^m = Σ_k L_mk q_k). B B^T = W D H D W = W S W = 1: B is orthogonal, so it
can be rounded to float64 without loss, and q_k is evaluated by its stable three-term recurrence.
B is computed once, with mpmath at ``dps`` digits (>= 60), and cached; it does not depend on
r_c (the basis is scale-free in x).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..errors import DescriptorError

#: Decimal digits used for the orthonormalisation (cond(S) ~ 1e32 at n_max = 20).
DEFAULT_DPS = 60


@lru_cache(maxsize=16)
def rotation_matrix(n_max: int, dps: int = DEFAULT_DPS) -> np.ndarray:
    """The orthogonal matrix B (n_max, n_max) mapping x³ q_k(x)/sqrt(r_c) to g_n (module docstring).

    Computed in ``dps``-digit arithmetic (mpmath): S^(-1/2) by a symmetric eigendecomposition,
    the Cholesky factor L of H_mk = 1/(m+k+7) exactly as rationals converted at that precision.
    """
    if n_max < 1:
        raise DescriptorError(f"n_max must be >= 1, got {n_max}")
    if dps < 40:
        raise DescriptorError(
            f"dps={dps} digits cannot orthonormalise the AFS radial basis (cond(S) ~ 1e32 at "
            "n_max = 20); use dps >= 60"
        )
    import mpmath

    ctx = mpmath.MPContext()
    ctx.dps = dps
    n = n_max
    S = ctx.matrix(n, n)
    H = ctx.matrix(n, n)
    D = ctx.matrix(n, n)
    for a in range(n):
        alpha = a + 1
        D[a, a] = ctx.sqrt(2 * alpha + 5)
        for b in range(n):
            beta = b + 1
            S[a, b] = ctx.sqrt((2 * alpha + 5) * (2 * beta + 5)) / (alpha + beta + 5)
            H[a, b] = ctx.mpf(1) / (a + b + 7)
    eigenvalues, eigenvectors = ctx.eigsy(S)
    inv_sqrt = ctx.diag([1 / ctx.sqrt(v) for v in eigenvalues])
    W = eigenvectors * inv_sqrt * eigenvectors.T
    L = ctx.cholesky(H)
    B = W * D * L
    return np.array([[float(B[i, j]) for j in range(n)] for i in range(n)])


def jacobi_06(x: np.ndarray, n_max: int, derivative: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """q_k(x) = sqrt(2k+7) P_k^(0,6)(2x - 1) for k = 0..n_max-1, and optionally dq_k/dx.

    Parameters
    ----------
    x
        Points in [0, 1], any shape.
    n_max
        Number of polynomials.
    derivative
        Also return dq_k/dx.

    Returns
    -------
    (q, dq)
        Arrays of shape (n_max,) + x.shape; dq is None unless ``derivative``.
    """
    x = np.asarray(x, dtype=float)
    t = 2.0 * x - 1.0
    P = np.empty((n_max,) + x.shape)
    dP = np.empty((n_max,) + x.shape) if derivative else None
    P[0] = 1.0
    if derivative:
        dP[0] = 0.0
    if n_max > 1:
        P[1] = 4.0 * t - 3.0
        if derivative:
            dP[1] = 4.0
    # Jacobi recurrence with a = 0, b = 6:
    # 2n(n+6)(2n+4) P_n = (2n+5)[(2n+6)(2n+4) t - 36] P_{n-1} - 2(n-1)(n+5)(2n+6) P_{n-2}
    for k in range(2, n_max):
        c0 = 2.0 * k * (k + 6) * (2 * k + 4)
        c1 = (2 * k + 5) * (2 * k + 6) * (2 * k + 4) / c0
        c2 = (2 * k + 5) * 36.0 / c0
        c3 = 2.0 * (k - 1) * (k + 5) * (2 * k + 6) / c0
        P[k] = (c1 * t - c2) * P[k - 1] - c3 * P[k - 2]
        if derivative:
            dP[k] = c1 * P[k - 1] + (c1 * t - c2) * dP[k - 1] - c3 * dP[k - 2]
    scale = np.sqrt(2.0 * np.arange(n_max) + 7.0).reshape((n_max,) + (1,) * x.ndim)
    q = P * scale
    dq = dP * (2.0 * scale) if derivative else None  # dt/dx = 2
    return q, dq


class RadialBasis:
    """g_n(r), n = 1..n_max, orthonormal on [0, r_c] (∫ g_n g_m dr = δ_nm), zero beyond r_c.

    Parameters
    ----------
    n_max
        Number of radial functions (>= 1).
    r_cut
        Cut-off radius r_c, Å (> 0).
    dps
        Decimal digits for the one-off orthonormalisation (see module docstring).
    """

    def __init__(self, n_max: int, r_cut: float, dps: int = DEFAULT_DPS):
        if not (isinstance(n_max, (int, np.integer)) and n_max >= 1):
            raise DescriptorError(f"n_max must be an integer >= 1, got {n_max!r}")
        if not (np.isfinite(r_cut) and r_cut > 0):
            raise DescriptorError(f"r_cut must be a positive length in Å, got {r_cut!r}")
        self.n_max = int(n_max)
        self.r_cut = float(r_cut)
        self.dps = int(dps)
        self.B = rotation_matrix(self.n_max, self.dps)

    def __call__(self, r: np.ndarray, derivative: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Values g_n(r) and optionally dg_n/dr, with the radial index last.

        Parameters
        ----------
        r
            Distances, Å, any shape; values >= r_c give exactly 0.
        derivative
            Also return dg_n/dr (Å^-3/2 per Å).

        Returns
        -------
        (g, dg)
            Shape r.shape + (n_max,), units Å^-1/2 (and Å^-3/2); dg is None unless ``derivative``.
        """
        r = np.asarray(r, dtype=float)
        x = np.clip((self.r_cut - r) / self.r_cut, 0.0, None).reshape(-1)
        q, dq = jacobi_06(x, self.n_max, derivative)  # (n_max, P)
        inv_sqrt_rc = 1.0 / math.sqrt(self.r_cut)
        x2 = x * x
        x3 = x2 * x
        # (P, n) = (x³ q)ᵀ Bᵀ: the radial index ends up contiguous for the batched products
        g = (q * (x3 * inv_sqrt_rc)).T @ self.B.T
        if not derivative:
            return g.reshape(r.shape + (self.n_max,)), None
        # d/dr = -(1/r_c) d/dx and d/dx (x³ q) = 3x² q + x³ q'
        inner = q * (3.0 * x2) + dq * x3
        dg = inner.T @ (self.B.T * (-inv_sqrt_rc / self.r_cut))
        return g.reshape(r.shape + (self.n_max,)), dg.reshape(r.shape + (self.n_max,))
