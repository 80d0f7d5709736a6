"""PNG figures of model quality: parity plots and cross-validation curves (``plot`` extra).

matplotlib is imported inside the functions (Agg backend, no display needed), so importing this
module never requires it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._optional import import_optional

__all__ = ["crossval_plot", "parity_plot", "pyplot"]


def pyplot(purpose: str):
    """matplotlib.pyplot on the non-interactive Agg backend; a clear error naming ``purpose`` and
    the ``plot`` extra when matplotlib is not installed."""
    matplotlib = import_optional("matplotlib", "plot", purpose)
    matplotlib.use("Agg")
    return import_optional("matplotlib.pyplot", "plot", purpose)


def _rmse_mae(err: np.ndarray) -> str:
    return f"RMSE {np.sqrt(np.mean(err**2)):.2f}, MAE {np.mean(np.abs(err)):.2f} $k_B$"


def parity_plot(
    y_true: Any,
    y_pred: Any,
    families: Any,
    path: str | Path,
    *,
    std: Any = None,
    quantity: str = "S_f",
    title: str | None = None,
) -> Path:
    """Exact against predicted entropy, one colour per defect family; RMSE/MAE in the legend.

    The legend (one entry per family, with its count, RMSE and MAE) sits beside the axes, so it
    never hides points; larger families are drawn first, so a small family (a test set next to
    its training set) stays visible on top. The title's last line gives RMSE/MAE over all points.

    Parameters
    ----------
    y_true, y_pred
        Exact and predicted entropies, shape (n,), k_B.
    families
        Family label of each point, shape (n,) (``"V1"``, ``"I2"``, ``"random"``, ...).
    path
        Output PNG file.
    std
        Optional predictive standard deviations, shape (n,), k_B, drawn as ±1σ error bars
        (the legend says so).
    quantity
        Axis label of the entropy (``"S_f"`` or ``"S"``).
    title
        First line of the title (above the overall errors).

    Returns
    -------
    Path of the written PNG.
    """
    plt = pyplot("the parity plot")
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    families = np.asarray(families).astype(str)
    fig, ax = plt.subplots(figsize=(8.0, 5.0), dpi=120)
    names = sorted(set(families.tolist()))
    sizes = {name: int(np.sum(families == name)) for name in names}
    handles = {}
    for rank, family in enumerate(sorted(names, key=lambda name: -sizes[name])):
        sel = families == family
        label = f"{family} (n={sizes[family]}): {_rmse_mae(y_pred[sel] - y_true[sel])}"
        index = names.index(family)  # colours repeat after 10 families, markers tell them apart
        style = {"ms": 3, "alpha": 0.7, "label": label, "zorder": 2 + rank, "color": f"C{index % 10}"}
        marker = "os^Dv"[(index // 10) % 5]
        if std is not None:
            handles[family] = ax.errorbar(y_true[sel], y_pred[sel], yerr=np.asarray(std)[sel], fmt=marker,
                                          elinewidth=0.6, **style)
        else:
            (handles[family],) = ax.plot(y_true[sel], y_pred[sel], marker, linestyle="none", **style)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8, zorder=1)
    ax.set_xlabel(f"${quantity}$ exact harmonic ($k_B$)")
    ax.set_ylabel(f"${quantity}$ LDML ($k_B$)")
    overall = f"all {len(y_true)}: {_rmse_mae(y_pred - y_true)}"
    ax.set_title(f"{title}\n{overall}" if title else overall, fontsize=10)
    ax.legend([handles[name] for name in names], [handles[name].get_label() for name in names],
              fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              title="error bars: ±1σ predictive std" if std is not None else None, title_fontsize=7)
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


#: Legend entry of the shaded test fractions where some fits were underdetermined.
UNDERDETERMINED_NOTE = "underdetermined fits (fewer training rows than parameters)"


def crossval_plot(result, path: str | Path, title: str | None = None) -> Path:
    """Train and test RMSE (mean ± std over repeats) against the test fraction (paper Fig. 6).

    Error bars stop at zero (an RMSE is never negative); test fractions where some fits had
    fewer training rows than parameters are shaded grey, with :data:`UNDERDETERMINED_NOTE` in
    the legend, which sits below the axes so it hides no point.

    Parameters
    ----------
    result
        A :class:`~ase_vibentropy.evaluation.CrossValidationResult`.
    path
        Output PNG file.
    title
        Title (default: splits per fraction, rows and groups).
    """
    plt = pyplot("the cross-validation plot")
    fig, ax = plt.subplots(figsize=(5.5, 4.4), dpi=120)
    p = np.asarray(result.fractions, dtype=float)
    for name, mean, std, marker in (
        ("train", result.train_rmse_mean, result.train_rmse_std, "s"),
        ("test", result.test_rmse_mean, result.test_rmse_std, "o"),
    ):
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        ax.errorbar(p, mean, yerr=[np.minimum(std, mean), std], fmt=f"{marker}-", capsize=3,
                    label=f"{name} RMSE (mean ± std)", zorder=3)
    series = ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    under = np.asarray(getattr(result, "n_underdetermined", np.zeros(len(p))))
    half = min(0.04, 0.5 * np.min(np.diff(np.sort(p)))) if len(p) > 1 else 0.04
    bands = [ax.axvspan(x - half, x + half, color="0.85", lw=0, zorder=0) for x, n in zip(p, under) if n]
    if bands:
        ax.add_artist(series)  # a second legend below the first, for the shading
        ax.legend(bands[:1], [UNDERDETERMINED_NOTE], fontsize=8, loc="upper center",
                  bbox_to_anchor=(0.5, -0.24), frameon=False)
    ax.set_xlim(p.min() - 1.5 * half, p.max() + 1.5 * half)
    ax.set_ylim(bottom=0.0)
    ax.set_xticks(p)
    ax.set_xlabel("test fraction p")
    ax.set_ylabel("RMSE ($k_B$)")
    groups = getattr(result, "n_groups", None)
    grouped = f" in {groups} groups" if groups is not None and groups != result.n_rows else ""
    ax.set_title(title or f"{result.repeats} random splits per fraction, {result.n_rows} rows{grouped}",
                 fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def potential_check_plot(check, path: str | Path) -> Path:
    """Two panels of a :class:`~ase_vibentropy.harmonic.screen.PotentialCheck`: the perfect-lattice
    entropy per atom against tiny strains with its deviation from a quadratic (k_B/atom, the
    noise screen), and the finite-difference entropies against the step (Å)."""
    plt = pyplot("plotting a potential check")
    strain = check.strain
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    x = strain.strains * 1e5
    centred = strain.entropy_per_atom_kB - strain.entropy_per_atom_kB.mean()
    fit = np.polyval(np.polyfit(x, centred, 2), x)
    residual = np.abs(centred - fit)
    left.semilogy(x, np.maximum(residual, 1e-16), "o-", label="|s(ε) − quadratic fit|")
    left.axhline(strain.tolerance_kB, color="C3", ls="--", label=f"tolerance {strain.tolerance_kB:.0e}")
    left.set_xlabel("isotropic strain ε (10⁻⁵)")
    left.set_ylabel("deviation from a quadratic (k_B/atom)")
    left.set_title("Hessian-noise screen: " + ("smooth" if strain.smooth else "NOISY"))
    left.legend(loc="center right")
    steps = np.asarray(check.fd_steps_A)
    gap = np.abs(np.asarray(check.fd_entropy_kB) - check.fd_reference_kB)
    right.loglog(steps, np.maximum(gap, 1e-16), "s-", color="C1",
                 label=f"|s(step) − s({check.hessian_method})|")
    right.axhline(1e-5, color="C3", ls="--", label="agreement tolerance 1e-5")
    right.set_xlabel("finite-difference step (Å)")
    right.set_ylabel("entropy difference (k_B/atom)")
    safe = "none" if check.safe_fd_step_A is None else f"{check.safe_fd_step_A:g} Å"
    right.set_title(f"step sensitivity (largest safe step: {safe})")
    right.legend(loc="best")
    fig.suptitle(f"{check.name}: {check.lattice} {check.element}, a0 = {check.a0:.4f} Å — "
                 + ("PASS" if check.passed else "FAIL"))
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
