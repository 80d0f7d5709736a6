"""One-dimensional functions of an embedded-atom model, with derivatives up to the third.

An EAM needs three functions of one variable: the pair energy φ(r) (eV, r in Å), the density
f(r) (arbitrary density units) and the embedding energy F(ρ) (eV). The calculator asks each for
its value and first two derivatives in one call (``fn(x) -> (v, v', v'')``), and for the third
derivative separately (``fn.third(x)``, needed only by the gradients of the Einstein
descriptors). Every function here is vectorised over ``x`` of any shape.

* :class:`PiecewiseCubic`: a C² piecewise cubic in Taylor form on each interval, from exact
  coefficients (closed-form truncated cubics) or from an interpolating spline (tables).
* :class:`PairFromRPhi`: φ and its derivatives from a function of r·φ(r) (setfl files tabulate
  r·φ).
* :class:`Spliced`: two functions joined at a point (the short-range parts of a pair potential).
* :class:`ExpPolynomial`, :class:`ScreenedCoulomb`, :class:`SqrtPlusQuadraticEmbedding`: the
  analytic pieces of the Mendelev 2003 Fe potential.
"""

from __future__ import annotations

from math import comb

import numpy as np
from scipy.interpolate import PPoly


class PiecewiseCubic:
    """A piecewise cubic p(x) = c3 t³ + c2 t² + c1 t + c0, t = x - x_k on [x_k, x_{k+1}).

    Outside ``[breaks[0], breaks[-1])`` it extrapolates with the end pieces unless
    ``zero_beyond`` is set, in which case it is exactly zero for x >= breaks[-1] (a cut-off).

    Parameters
    ----------
    breaks
        Interval ends, shape (K + 1,), increasing.
    coefficients
        Shape (4, K): rows c3, c2, c1, c0 of each interval, as :class:`scipy.interpolate.PPoly`.
    zero_beyond
        Make the function vanish identically at and beyond the last break.
    """

    def __init__(self, breaks: np.ndarray, coefficients: np.ndarray, zero_beyond: bool = False):
        self._breaks = np.asarray(breaks, dtype=float)
        self._coefficients = np.asarray(coefficients, dtype=float)
        if self._coefficients.shape != (4, len(self._breaks) - 1):
            raise ValueError(
                f"coefficients must have shape (4, {len(self._breaks) - 1}), "
                f"got {self._coefficients.shape}"
            )
        self._zero_beyond = zero_beyond

    @classmethod
    def from_spline(cls, spline: object) -> "PiecewiseCubic":
        """The piecewise-polynomial form of a cubic FITPACK spline (identical up to round-off)."""
        polynomial = PPoly.from_spline(spline._eval_args)
        return cls(polynomial.x, polynomial.c)

    @classmethod
    def truncated_cubics(cls, knots: np.ndarray, amplitudes: np.ndarray, start: float) -> "PiecewiseCubic":
        """Σ_k a_k (r_k - x)³ H(r_k - x) for x >= ``start``, exactly zero beyond the last knot.

        On each interval [x_m, x_{m+1}) the active terms are those with r_k > x_m; each is
        expanded about x_m, (d - t)³ = d³ - 3d²t + 3dt² - t³ with d = r_k - x_m, so the
        coefficients are exact sums and no cancellation between large powers of x occurs.
        """
        knots = np.asarray(knots, dtype=float)
        amplitudes = np.asarray(amplitudes, dtype=float)
        breaks = np.concatenate([[start], knots[knots > start]])
        coefficients = np.zeros((4, len(breaks) - 1))
        for m, x_m in enumerate(breaks[:-1]):
            active = knots > x_m
            a, d = amplitudes[active], knots[active] - x_m
            coefficients[:, m] = [-a.sum(), 3.0 * (a * d).sum(), -3.0 * (a * d**2).sum(), (a * d**3).sum()]
        return cls(breaks, coefficients, zero_beyond=True)

    def _pieces(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        piece = np.searchsorted(self._breaks, x, side="right") - 1
        np.clip(piece, 0, self._coefficients.shape[1] - 1, out=piece)
        inside = x < self._breaks[-1] if self._zero_beyond else np.ones(np.shape(x), dtype=bool)
        return piece, x - self._breaks[piece], inside

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p(x), p'(x), p''(x)) at ``x`` (any shape)."""
        x = np.asarray(x, dtype=float)
        piece, dx, inside = self._pieces(x)
        c3, c2, c1, c0 = self._coefficients[:, piece]
        value = ((c3 * dx + c2) * dx + c1) * dx + c0
        first = (3.0 * c3 * dx + 2.0 * c2) * dx + c1
        second = 6.0 * c3 * dx + 2.0 * c2
        return value * inside, first * inside, second * inside

    def third(self, x: np.ndarray) -> np.ndarray:
        """p'''(x): piecewise constant, it jumps at the breaks."""
        x = np.asarray(x, dtype=float)
        piece, _, inside = self._pieces(x)
        return 6.0 * self._coefficients[0, piece] * inside


class PairFromRPhi:
    """φ(r) and its derivatives from a function g(r) = r φ(r) (how setfl files store φ).

    φ = g/r, φ' = (g' - φ)/r, φ'' = (g'' - 2φ')/r, φ''' = (g''' - 3φ'')/r.
    """

    def __init__(self, r_times_phi: PiecewiseCubic):
        self._g = r_times_phi

    def __call__(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g, dg, ddg = self._g(r)
        phi = g / r
        dphi = (dg - phi) / r
        ddphi = (ddg - 2.0 * dphi) / r
        return phi, dphi, ddphi

    def third(self, r: np.ndarray) -> np.ndarray:
        _, _, ddphi = self(r)
        return (self._g.third(r) - 3.0 * ddphi) / r


class Spliced:
    """``below`` for x < ``at`` and ``above`` for x >= ``at``, each evaluated only where it applies."""

    def __init__(self, below: object, above: object, at: float):
        self._below, self._above, self._at = below, above, float(at)

    def _split(self, x: np.ndarray, method: str) -> list[np.ndarray]:
        x = np.asarray(x, dtype=float)
        low = x < self._at
        pieces = []
        for mask, function in ((~low, self._above), (low, self._below)):
            if mask.any() or function is self._above:  # above always: it fixes the output count
                parts = getattr(function, method)(x[mask])
                pieces.append((mask, parts if isinstance(parts, tuple) else (parts,)))
        out = [np.empty(x.shape) for _ in pieces[0][1]]
        for mask, parts in pieces:
            for o, part in zip(out, parts):
                o[mask] = part
        return out

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(self._split(x, "__call__"))

    def third(self, x: np.ndarray) -> np.ndarray:
        return self._split(x, "third")[0]


class ExpPolynomial:
    """exp(B0 + B1 x + B2 x² + B3 x³) and its derivatives."""

    def __init__(self, b: tuple[float, float, float, float]):
        self._p = np.polynomial.Polynomial(b)

    def _derivatives(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        x = np.asarray(x, dtype=float)
        g = np.exp(self._p(x))
        p1, p2, p3 = (self._p.deriv(n)(x) for n in (1, 2, 3))
        return g, p1 * g, (p2 + p1**2) * g, (p3 + 3.0 * p1 * p2 + p1**3) * g

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._derivatives(x)[:3]

    def third(self, x: np.ndarray) -> np.ndarray:
        return self._derivatives(x)[3]


class ScreenedCoulomb:
    """(Z/r) Σ_i c_i exp(-d_i r), Z in eV Å, d_i in 1/Å; derivatives by Leibniz's rule."""

    def __init__(self, z: float, c: tuple[float, ...], d: tuple[float, ...]):
        self._z, self._c, self._d = float(z), np.asarray(c, float), np.asarray(d, float)

    def _derivative(self, r: np.ndarray, n: int) -> np.ndarray:
        r = np.asarray(r, dtype=float)
        exponentials = np.exp(-np.multiply.outer(r, self._d))  # (..., n_terms)
        total = np.zeros(r.shape)
        for m in range(n + 1):
            u_m = exponentials @ (self._c * (-self._d) ** m)  # m-th derivative of Σ c e^{-dr}
            k = n - m  # k-th derivative of 1/r
            total += comb(n, m) * u_m * (-1) ** k * np.prod(np.arange(1, k + 1)) / r ** (k + 1)
        return self._z * total

    def __call__(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._derivative(r, 0), self._derivative(r, 1), self._derivative(r, 2)

    def third(self, r: np.ndarray) -> np.ndarray:
        return self._derivative(r, 3)


class SqrtPlusQuadraticEmbedding:
    """F(ρ) = -√ρ + q ρ² (eV, ρ dimensionless); zero, with zero derivatives, at ρ <= 0.

    An atom with no neighbour inside the density cut-off has ρ = 0, where √ρ has an infinite
    slope; its embedding derivatives only ever multiply density derivatives that vanish there,
    so they are set to zero instead of inf.
    """

    def __init__(self, q: float):
        self._q = float(q)

    def _derivatives(self, rho: np.ndarray) -> tuple[np.ndarray, ...]:
        rho = np.asarray(rho, dtype=float)
        positive = rho > 0.0
        s = np.sqrt(np.where(positive, rho, 1.0))
        q = self._q
        value = np.where(positive, -s + q * rho**2, 0.0)
        first = np.where(positive, -0.5 / s + 2.0 * q * rho, 0.0)
        second = np.where(positive, 0.25 / s**3 + 2.0 * q, 0.0)
        third = np.where(positive, -0.375 / s**5, 0.0)
        return value, first, second, third

    def __call__(self, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._derivatives(rho)[:3]

    def third(self, rho: np.ndarray) -> np.ndarray:
        return self._derivatives(rho)[3]
