"""Knots of a tabulated cubic-spline function, and a least-squares spline that keeps them.

Most published EAM functions are sums of truncated cubics a_k (r_k - r)³ H(r_k - r): piecewise
cubics whose third derivative is constant between the knots r_k and jumps at them. A setfl file
prints such a function on a fine uniform grid with ~10 significant digits. Interpolating every
point turns the rounding into second-derivative noise; resampling a coarse subset smooths the
noise but also smooths the knots (docs/theory.md, "Tabulated potentials and Hessian noise").
This module finds the knots from the table alone and fits a least-squares cubic spline that has
them as its own knots, so the fit is exact (up to the table's noise) where the function is a
piecewise cubic and smooth everywhere else.

Detection (:func:`detect_knots`)
    Fourth differences Δ⁴_s y of the table with step s = ``scale`` grid points vanish wherever
    the five points of a stencil lie within one cubic piece. A knot with third-derivative jump
    J adds a bump J s³ B(·) (B the cubic B-spline) over the 4 s stencils that contain it, while
    the table noise σ stays σ √70 whatever s: a step of s grid points raises the signal to noise
    ratio s³-fold. A smooth background (exponentials, √ρ) is removed by a running median, the
    noise is a running robust scale (quantiles of |residual|), and runs of samples beyond
    ``threshold`` noise levels are candidate knots. Each candidate is located to sub-grid
    precision by least squares over candidate positions τ: the table around it is fitted by a
    cubic plus a (x - τ)³₊ term (a C² knot), or plus also a (x - τ)²₊ term (a C¹ junction, where
    the second derivative jumps too); a candidate the model does not explain to within the noise
    is not a knot of a piecewise cubic and is dropped. More candidates than ``max_knots`` means
    the function is not a piecewise cubic at all: the detection returns no knots and the fit
    falls back to its coarse uniform grid.

Fit (:func:`fit_spline`)
    A least-squares cubic B-spline (:func:`scipy.interpolate.make_lsq_spline`, weights 1/σ) on
    the detected knots (simple knots, C²; double knots at C¹ junctions) plus a coarse uniform
    grid of ``coarse`` table points; knot intervals whose residual exceeds the noise (the
    function is not a cubic there, e.g. a screened Coulomb core or √ρ near 0) are halved, down
    to ``min_interval`` table points. A coarse grid averages the noise over many table points,
    so the second derivatives are smooth; the detected knots let the third derivative jump
    where the function's does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline, PPoly, make_lsq_spline
from scipy.ndimage import maximum_filter1d, median_filter, percentile_filter
from scipy.optimize import minimize_scalar

from .functions import PiecewiseCubic

__all__ = ["KnotDetection", "detect_knots", "fit_spline", "knotted_piecewise_cubic", "printed_digits",
           "table_noise"]

#: Largest rms residual, in units of the table noise, of a local knot model that is accepted.
_ACCEPT_RMS = 3.0

#: Stencil weights of a fourth difference.
_D4 = np.array([1.0, -4.0, 6.0, -4.0, 1.0])


@dataclass(frozen=True)
class KnotDetection:
    """Knots found in a table by :func:`detect_knots`.

    Attributes
    ----------
    positions : (K,) array
        Knot positions in the units of the table's abscissa (Å for f(r) and φ(r)), increasing.
    continuity : (K,) int array
        2 for a C² knot (only the third derivative jumps), 1 for a C¹ junction (the second
        derivative jumps too), 0 for a kink, -1 for a jump of the value. The fit gives each
        knot multiplicity 3 - continuity.
    third_jumps : (K,) array
        Jump of the third derivative across each knot, value units per abscissa unit³.
    second_jumps : (K,) array
        Jump of the second derivative (0 at C² knots), value units per abscissa unit².
    noise : (N,) array
        Estimated noise (standard deviation) of each table value, value units.
    n_candidates : int
        Candidates before the model test; ``flooded`` when there were more than allowed.
    flooded : bool
        True when the table had too many candidates to be a piecewise cubic: no knots returned.
    """

    positions: np.ndarray
    continuity: np.ndarray
    third_jumps: np.ndarray
    second_jumps: np.ndarray
    noise: np.ndarray
    n_candidates: int
    flooded: bool


def _fourth_differences(y: np.ndarray, step: int) -> np.ndarray:
    """Δ⁴ with step ``step``: (N - 4 step,), entry i from y[i], y[i+s], ..., y[i+4s]."""
    n = len(y) - 4 * step
    return sum(w * y[k * step:k * step + n] for k, w in enumerate(_D4))


def _robust_scale(residual: np.ndarray, window: int) -> np.ndarray:
    """Running noise scale of ``residual``: the larger of the median and the 75 % quantile of
    |residual| in ``window``, each divided by its Gaussian value (the median alone is zero for
    values quantised by printing, where most residuals are exactly zero)."""
    magnitude = np.abs(residual)
    q50 = median_filter(magnitude, size=window, mode="nearest") / 0.6745
    q75 = percentile_filter(magnitude, 75, size=window, mode="nearest") / 1.1503
    return np.maximum(q50, q75)


def printed_digits(values: np.ndarray, window: int = 65) -> np.ndarray:
    """Significant digits each value was printed with, shape (N,): the fewest (4 to 17) that
    reproduce it, maximised over a running ``window`` (values ending in zeros need fewer); 17
    for zeros with no nonzero neighbour. Files mix precisions (``Fe_mm.eam.fs`` prints F(ρ) with
    10 to 12 digits, r·φ with 15)."""
    y = np.asarray(values, dtype=float)
    nonzero = np.isfinite(y) & (np.abs(y) > 1e-300)  # subnormals count as zeros
    exponent = np.floor(np.log10(np.where(nonzero, np.abs(y), 1.0)))
    digits = np.full(y.shape, 17)
    for d in range(16, 3, -1):
        unit = 10.0 ** (exponent - d + 1)
        exact = np.abs(np.round(y / unit) * unit - y) <= 4.0 * np.finfo(float).eps * np.abs(y)
        digits[exact & nonzero] = d
    digits[~nonzero] = 0
    digits = maximum_filter1d(digits, size=window, mode="nearest")
    return np.where(digits > 0, digits, 17)


def table_noise(values: np.ndarray, window: int = 65) -> np.ndarray:
    """Estimated noise σ of each value of a uniform table.

    The larger of (a) the running robust scale of Δ⁴y (minus its running median) divided by √70,
    the standard deviation of Δ⁴ of unit white noise, and (b) the rounding of the printed values,
    u/√12 with u the unit of the last of :func:`printed_digits` digits (where y is monotone and
    smooth, (a) sees no noise).

    Parameters
    ----------
    values
        Table values as printed, shape (N,), N > ``window``.
    window
        Points of the running median background and robust scale (odd).

    Returns
    -------
    (N,) array
        σ_i in value units, never below the smallest positive double.
    """
    y = np.asarray(values, dtype=float)
    d4 = _fourth_differences(y, 1)
    residual = d4 - median_filter(d4, size=window, mode="nearest")
    sigma = np.pad(_robust_scale(residual, window) / np.sqrt(70.0), (2, 2), mode="edge")
    digits = printed_digits(y, window)
    magnitude = maximum_filter1d(np.abs(y), size=5, mode="nearest")
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log10(np.where(magnitude > 0, magnitude, 1.0)))
    rounding = np.where(magnitude > 0, 10.0 ** (exponent - digits + 1) / np.sqrt(12.0), 0.0)
    return np.maximum(np.maximum(sigma, rounding), np.finfo(float).tiny)


def _fit_at(y: np.ndarray, sigma: float, taus: np.ndarray, first: int, last: int,
            continuity: int, degree: int = 3) -> tuple[float, float, float, float]:
    """Best of the candidate positions ``taus`` (grid units) for a knot of ``continuity`` (2: the
    third derivative jumps, 1: the second too, 0: the first too, -1: the value too) on a
    polynomial background of ``degree``, fitted to y[first:last+1]: (rms residual / σ, τ, third
    jump, second jump), the jumps per grid step³ and step²."""
    # a knot at or beyond the window's ends is no knot of the window (its column would vanish or
    # repeat the background): keep candidates with at least two points on either side
    taus = np.asarray(taus, dtype=float)
    taus = taus[(taus > first + 1) & (taus < last - 1)]
    if taus.size == 0:
        return float("inf"), float("nan"), 0.0, 0.0
    j = np.arange(first, last + 1, dtype=float)
    centre, half = 0.5 * (first + last), max(0.5 * (last - first), 1.0)
    u = (j - centre) / half
    s = np.clip((j[None, :] - taus[:, None]) / half, 0.0, None)  # (T, n)
    jumps = [s**3, s**2, s, (s > 0).astype(float)][:3 - continuity]
    columns = [np.broadcast_to(u**p, s.shape) for p in range(degree + 1)] + jumps
    design = np.stack(columns, axis=-1)  # (T, n, p)
    target = y[first:last + 1] - np.polyval(np.polyfit(u, y[first:last + 1], degree), u)  # conditioning
    q, r = np.linalg.qr(design)
    projection = np.einsum("tnp,n->tp", q, target)
    rss = np.sum(target**2) - np.sum(projection**2, axis=1)
    order = np.argsort(rss)[:3]  # direct residuals of the best few
    coefficients = np.linalg.solve(r[order], projection[order][..., None])[..., 0]
    residual = target[None, :] - np.einsum("tnp,tp->tn", design[order], coefficients)
    rss_best = np.sum(residual**2, axis=1)
    k = int(np.argmin(rss_best))
    rms = np.sqrt(rss_best[k] / max(len(j) - design.shape[-1], 1)) / sigma
    c = coefficients[k][degree + 1:]
    second = 2.0 * c[1] / half**2 if continuity <= 1 else 0.0
    return float(rms), float(taus[order[k]]), float(6.0 * c[0] / half**3), float(second)


def _locate(y: np.ndarray, noise: np.ndarray, lo: float, hi: float, first: int, last: int,
            resolution: float, scale: int) -> tuple[float, int, float, float] | None:
    """Least-squares position of one knot in grid units within [lo, hi].

    Models, in order: a cubic background with a C² knot, then with a C¹ knot (the second
    derivative jumps too), a C⁰ knot and a jump of the value, then the same on a quintic
    background (a smooth non-cubic side, such
    as the exponential next to a C¹ junction). Each is fitted to the points within 4, 2, 1 or 0
    ``scale`` of [lo, hi] (inside [first, last]); the first model and reach whose rms residual
    is within ``_ACCEPT_RMS`` σ wins.

    Returns
    -------
    (τ, continuity, third-derivative jump, second-derivative jump), jumps per grid step³ and
    step², or None when no model explains the points to within their noise.
    """
    taus = np.arange(lo, hi + 0.5 * resolution, resolution)
    for degree in (3, 5):
        for continuity in (2, 1, 0, -1):
            for reach in (4 * scale, 2 * scale, scale, 0):
                a = int(max(first, np.floor(lo) - reach))
                b = int(min(last, np.ceil(hi) + reach))
                if b - a < 4 * (degree + 3):
                    continue
                sigma = float(np.median(noise[a:b + 1]))
                rms, tau, third, second = _fit_at(y, sigma, taus, a, b, continuity, degree)
                if rms <= _ACCEPT_RMS:
                    # the fit of the table needs the knot far more precisely than the grid
                    # search gives (a knot 0.004 steps off already leaves residuals of 30 σ)
                    best = minimize_scalar(
                        lambda t: _fit_at(y, sigma, np.array([t]), a, b, continuity, degree)[0],
                        bounds=(tau - 2 * resolution, tau + 2 * resolution), method="bounded",
                        options={"xatol": 1e-7})
                    _, tau, third, second = _fit_at(y, sigma, np.array([best.x]), a, b, continuity, degree)
                    return tau, continuity, third, second
    return None


def detect_knots(
    values: np.ndarray,
    spacing: float,
    origin: float = 0.0,
    scale: int = 8,
    threshold: float = 8.0,
    max_knots: int | None = None,
    resolution: float = 0.02,
    noise: np.ndarray | None = None,
) -> KnotDetection:
    """Knots of a tabulated piecewise-cubic function (see the module docstring).

    Parameters
    ----------
    values
        Table y_i = g(origin + i · spacing), shape (N,), N >= 40 ``scale``.
    spacing
        Grid step, abscissa units (Å, or density units for F(ρ)).
    origin
        Abscissa of the first value.
    scale
        Step s of the fourth differences, grid points: the signal-to-noise ratio of a knot
        grows as s³, but knots closer than ~8 s grid points (the running noise window then
        holds both bumps) can be missed altogether, and the fit is then refined on a finer
        grid there instead. The knots of Mendelev-type potentials lie ~200 grid points apart.
    threshold
        Candidate knots: |Δ⁴_s y - running median| beyond ``threshold`` times its running robust
        scale.
    max_knots
        Most candidates accepted; more mean the function is not a piecewise cubic and no knot is
        returned. Default: one per 16 ``scale`` grid points.
    resolution
        Step of the candidate positions of the least-squares location, grid points.
    noise
        Noise σ of each value, shape (N,); default :func:`table_noise` of ``values``.

    Returns
    -------
    KnotDetection
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or len(y) < 40 * scale:
        raise ValueError(f"need a 1-D table of at least {40 * scale} values, got shape {y.shape}")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale!r}")
    noise = table_noise(y) if noise is None else np.asarray(noise, dtype=float)
    window = 16 * scale + 1
    d4 = _fourth_differences(y, scale)
    residual = d4 - median_filter(d4, size=window, mode="nearest")
    level = np.maximum(_robust_scale(residual, window), np.sqrt(70.0) * noise[2 * scale:len(y) - 2 * scale])
    hits = np.flatnonzero(np.abs(residual) > threshold * level)
    empty = np.array([]), np.array([], dtype=int)
    if hits.size == 0:
        return KnotDetection(empty[0], empty[1], empty[0], empty[0], noise, 0, False)
    # runs of hits closer than 2 s are one candidate; a knot at τ hits stencils i in (τ - 4s, τ)
    breaks = np.flatnonzero(np.diff(hits) > 2 * scale)
    starts = hits[np.concatenate([[0], breaks + 1])]
    ends = hits[np.concatenate([breaks, [len(hits) - 1]])]
    limit = max(1, len(y) // (16 * scale)) if max_knots is None else max_knots
    if len(starts) > limit:
        return KnotDetection(empty[0], empty[1], empty[0], empty[0], noise, len(starts), True)
    positions, continuity, thirds, seconds = [], [], [], []
    for n, (a, b) in enumerate(zip(starts, ends)):
        lo, hi = float(a), float(min(b + 4 * scale, len(y) - 1))
        if hi - lo > 12 * scale:  # a wide run: a smooth non-cubic stretch, not a knot
            continue
        left = ends[n - 1] + 4 * scale if n > 0 else 0
        right = starts[n + 1] if n + 1 < len(starts) else len(y) - 1
        first = int(max(left, 0))
        last = int(min(right, len(y) - 1))
        found = _locate(y, noise, lo, hi, first, last, resolution, scale)
        if found is None:
            continue
        tau, c, third, second = found
        positions.append(origin + tau * spacing)
        continuity.append(c)
        thirds.append(third / spacing**3)
        seconds.append(second / spacing**2)
    return KnotDetection(np.array(positions), np.array(continuity, dtype=int), np.array(thirds),
                         np.array(seconds), noise, len(starts), False)


def fit_spline(
    x: np.ndarray,
    values: np.ndarray,
    detection: KnotDetection,
    coarse: int = 192,
    min_interval: int = 2,
    max_rounds: int = 8,
    tolerance: float = 1.5,
) -> BSpline:
    """Weighted least-squares cubic B-spline on the detected knots plus a coarse uniform grid.

    Parameters
    ----------
    x
        Uniform abscissae, shape (N,), increasing.
    values
        Table values, shape (N,).
    detection
        Knots and noise of the table (:func:`detect_knots`).
    coarse
        Spacing of the uniform interior knots, table points (uniform knots closer than half
        of it to a detected knot are left out).
    min_interval
        Smallest knot interval that refinement creates, table points.
    max_rounds
        Refinement rounds: each halves the intervals whose rms residual exceeds ``tolerance``
        times the noise.
    tolerance
        Largest accepted rms of (fit - table)/σ over a knot interval.

    Returns
    -------
    scipy.interpolate.BSpline
        Cubic, on [x[0], x[-1]].
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(values, dtype=float)
    h = x[1] - x[0]
    sigma = detection.noise
    weights = 1.0 / sigma
    weights = weights / np.median(weights)
    detected = detection.positions[(detection.positions > x[0] + 2 * h) & (detection.positions < x[-1] - 2 * h)]
    continuity = detection.continuity[np.isin(detection.positions, detected)]
    extra = np.repeat(detected, np.clip(2 - continuity, 0, 3))  # multiplicity 3 - continuity
    n_coarse = max(int(round((x[-1] - x[0]) / (coarse * h))), 1)
    uniform = np.linspace(x[0], x[-1], n_coarse + 1)[1:-1]
    if detected.size:
        gap = np.min(np.abs(uniform[:, None] - detected[None, :]), axis=1)
        uniform = uniform[gap > 0.5 * coarse * h]
    interior = np.sort(np.concatenate([uniform, detected]))
    splits = 0
    while True:
        knots = np.concatenate([[x[0]] * 4, np.sort(np.concatenate([interior, extra])), [x[-1]] * 4])
        spline = make_lsq_spline(x, y, knots, k=3, w=weights)
        z = (spline(x) - y) / sigma
        edges = np.concatenate([[x[0]], interior, [x[-1]]])
        cell = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        count = np.maximum(np.bincount(cell, None, len(edges) - 1), 1)
        rms = np.sqrt(np.bincount(cell, z**2, len(edges) - 1) / count)
        wide = np.diff(edges) >= 2 * min_interval * h
        split = (rms > tolerance) & wide
        if split.any() and splits < max_rounds:
            interior = np.sort(np.concatenate([interior, 0.5 * (edges[:-1] + edges[1:])[split]]))
            splits += 1
            continue
        return spline


def knotted_piecewise_cubic(
    x: np.ndarray,
    values: np.ndarray,
    cutoff: float | None = None,
    scale: int = 8,
    coarse: int = 192,
    noise: np.ndarray | None = None,
) -> tuple[PiecewiseCubic, KnotDetection]:
    """A :class:`PiecewiseCubic` least-squares fit of a uniform table that keeps its knots.

    Parameters
    ----------
    x
        Uniform abscissae, shape (N,).
    values
        Table values, shape (N,).
    cutoff
        The function is exactly zero at and beyond ``cutoff`` (the last table point extends to
        it). A trailing run of exact zeros in the table ending a detected knot moves the cut-off
        to that knot (a density that vanishes before the pair cut-off). None: extrapolate.
    scale, coarse
        As in :func:`detect_knots` and :func:`fit_spline`.
    noise
        Noise σ of each value, shape (N,); default :func:`table_noise` of ``values`` (give it
        for a table derived from the printed one, e.g. φ = (rφ)/r).

    Returns
    -------
    (PiecewiseCubic, KnotDetection)
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(values, dtype=float)
    detection = detect_knots(y, x[1] - x[0], origin=x[0], scale=scale, noise=noise)
    spline = fit_spline(x, y, detection, coarse=coarse)
    polynomial = PPoly.from_spline(spline)
    keep = np.flatnonzero(np.diff(polynomial.x) > 0)
    breaks = np.append(polynomial.x[keep], polynomial.x[keep[-1] + 1])
    coefficients = polynomial.c[:, keep]
    end = cutoff
    nonzero = np.flatnonzero(y != 0.0)
    if nonzero.size and nonzero[-1] < len(y) - 4 * scale and detection.positions.size:
        # trailing exact zeros: the function ends at the knot where they begin
        start = x[nonzero[-1]]
        near = detection.positions[np.abs(detection.positions - start) <= 2.0 * (x[1] - x[0])]
        if near.size:
            end = float(near[-1])
    if end is None:
        return PiecewiseCubic(breaks, coefficients), detection
    inside = breaks[:-1] < end
    breaks = np.append(breaks[:-1][inside], end)
    return PiecewiseCubic(breaks, coefficients[:, inside], zero_beyond=True), detection
