"""EAM calculators from tabulated setfl files (``eam/alloy``, ``eam/fs``), one element.

A setfl file stores F(ρ), f(r) and r·φ(r) on fine grids with about 10 significant digits. An
interpolating cubic spline through every point (matscipy's and LAMMPS' own interpolation) turns
that rounding into noise in the second derivatives: energies and forces hardly notice, Hessians
do (docs/theory.md, "Tabulated potentials and Hessian noise"). The interpolating calculators exist to
cross-check against LAMMPS and matscipy, and to study that noise; the reference for Mendelev
2003 Fe is the closed form of :mod:`ase_vibentropy.eam.mendelev2003`.

``fit="knots"`` is the remedy: it finds the knots of the potential's own cubic splines in the
tables (:mod:`ase_vibentropy.eam.knots`) and fits least-squares cubic splines that keep them,
on a coarse grid elsewhere. Its second derivatives are smooth and unbiased next to the knots;
for Mendelev 2003 Fe its formation entropies agree with the closed form's (docs/theory.md).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import InterpolatedUnivariateSpline

from .calculator import EAMCalculator
from .functions import PairFromRPhi, PiecewiseCubic
from .knots import knotted_piecewise_cubic, table_noise

#: Ways of turning the tables into functions (``fit`` of :func:`tabulated_eam`).
FITS = ("interpolate", "knots")


def _first_table(table: np.ndarray) -> np.ndarray:
    """The one-element table of a nested array (``eam/alloy`` stores f per element, ``eam/fs``
    per pair of elements)."""
    table = np.asarray(table)
    while table.ndim > 1:
        table = table[0]
    return table


def _spline(spacing: float, table: np.ndarray, stride: int) -> PiecewiseCubic:
    """Interpolating cubic spline through every ``stride``-th point (and the last) of a table."""
    grid = np.arange(len(table)) * spacing
    keep = np.arange(0, len(table), stride)
    if keep[-1] != len(table) - 1:
        keep = np.append(keep, len(table) - 1)  # keep the cut-off end of the table
    return PiecewiseCubic.from_spline(InterpolatedUnivariateSpline(grid[keep], table[keep]))


def _knotted_functions(parameters, F: np.ndarray, f: np.ndarray, rep: np.ndarray):
    """f(r), F(ρ) and φ(r) as least-squares splines that keep the tables' knots.

    φ is fitted as (r·φ)/r (a sum of truncated cubics in φ is one of quartics in r·φ), with the
    noise of the printed r·φ divided by r, on r > 0. f and φ vanish beyond the cut-off (f from
    its last knot when the table ends in exact zeros).
    """
    r = np.arange(len(rep)) * parameters.distance_grid_spacing
    rho = np.arange(len(F)) * parameters.density_grid_spacing
    cutoff = float(parameters.cutoff)
    density, _ = knotted_piecewise_cubic(r, f, cutoff=cutoff)
    embedding, _ = knotted_piecewise_cubic(rho, F)
    noise = table_noise(rep)[1:] / r[1:]
    pair, _ = knotted_piecewise_cubic(r[1:], rep[1:] / r[1:], cutoff=cutoff, noise=noise)
    return density, embedding, pair


def tabulated_eam(filename: str, kind: str = "eam/fs", stride: int = 1,
                  fit: str = "interpolate") -> EAMCalculator:
    """EAM calculator of a one-element setfl file, its tables turned into cubic splines.

    Parameters
    ----------
    filename
        setfl file (``eam/alloy`` or ``eam/fs``) of a single element.
    kind
        ``"eam/alloy"`` or ``"eam/fs"``, as for matscipy's ``read_eam``.
    stride
        Interpolate every ``stride``-th table point (>= 1). 1 is matscipy's own interpolation
        (its energies and forces to round-off); larger strides smooth the second derivatives
        but bias them next to the potential's own knots. Only with ``fit="interpolate"``.
    fit
        ``"interpolate"``: interpolating splines through every ``stride``-th point (noisy
        second derivatives at stride 1). ``"knots"``: least-squares splines on the knots
        detected in the tables plus a coarse grid (:mod:`ase_vibentropy.eam.knots`): smooth
        second derivatives, exact next to the knots; for Hessians and entropies.

    Returns
    -------
    EAMCalculator
        Energies eV, forces eV/Å, Hessian eV/Å².

    Raises
    ------
    ValueError
        ``stride`` is not an integer >= 1, ``fit`` is unknown, ``fit="knots"`` with
        ``stride != 1``, or the file describes more than one element.
    """
    from ase.data import chemical_symbols
    from matscipy.calculators.eam.io import read_eam

    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(map(repr, FITS))}, got {fit!r}")
    if fit == "knots" and stride != 1:
        raise ValueError(
            f"stride={stride} applies to fit='interpolate' only: fit='knots' uses every table "
            "point (leave stride at 1)"
        )
    _, parameters, F, f, rep = read_eam(filename, kind=kind)
    symbols = [str(s) for s in np.atleast_1d(parameters.symbols)]
    if len(symbols) != 1:
        raise ValueError(
            f"{filename} describes {len(symbols)} elements; tabulated_eam handles one-element "
            "files (use matscipy.calculators.eam.EAM for alloys)"
        )
    # The element comes from its symbol: some published files carry a wrong atomic number
    # (Cu_mishin1.eam.alloy gives Z = 1), which LAMMPS ignores too.
    symbol = symbols[0].capitalize()
    if symbol not in chemical_symbols:
        raise ValueError(f"{filename} names the element {symbols[0]!r}, which is not a chemical symbol")
    if fit == "knots":
        density, embedding, pair = _knotted_functions(
            parameters, _first_table(F), _first_table(f), _first_table(rep))
        return EAMCalculator(symbol=symbol, density=density, embedding=embedding, pair=pair,
                             cutoff=float(parameters.cutoff))
    return EAMCalculator(
        symbol=symbol,
        density=_spline(parameters.distance_grid_spacing, _first_table(f), stride),
        embedding=_spline(parameters.density_grid_spacing, _first_table(F), stride),
        pair=PairFromRPhi(_spline(parameters.distance_grid_spacing, _first_table(rep), stride)),
        cutoff=float(parameters.cutoff),
    )
