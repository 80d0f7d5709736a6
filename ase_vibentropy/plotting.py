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

    Parameters
    ----------
    y_true, y_pred
        Exact and predicted entropies, shape (n,), k_B.
    families
        Family label of each point, shape (n,) (``"V1"``, ``"I2"``, ``"random"``, ...).
    path
        Output PNG file.
    std
        Optional predictive standard deviations, shape (n,), k_B, drawn as error bars.
    quantity
        Axis label of the entropy (``"S_f"`` or ``"S"``).
    title
        Figure title.

    Returns
    -------
    Path of the written PNG.
    """
    plt = pyplot("the parity plot")
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    families = np.asarray(families).astype(str)
    fig, ax = plt.subplots(figsize=(5.5, 5.0), dpi=120)
    for family in sorted(set(families.tolist())):
        sel = families == family
        err = y_pred[sel] - y_true[sel]
        label = (
            f"{family} (n={sel.sum()}): RMSE {np.sqrt(np.mean(err**2)):.2f}, "
            f"MAE {np.mean(np.abs(err)):.2f} $k_B$"
        )
        if std is not None:
            ax.errorbar(y_true[sel], y_pred[sel], yerr=np.asarray(std)[sel], fmt="o", ms=3,
                        alpha=0.7, elinewidth=0.6, label=label)
        else:
            ax.plot(y_true[sel], y_pred[sel], "o", ms=3, alpha=0.7, label=label)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8)
    err = y_pred - y_true
    ax.set_xlabel(f"${quantity}$ exact harmonic ($k_B$)")
    ax.set_ylabel(f"${quantity}$ LDML ($k_B$)")
    ax.set_title(
        title or f"all {len(y_true)}: RMSE {np.sqrt(np.mean(err**2)):.2f}, "
        f"MAE {np.mean(np.abs(err)):.2f} $k_B$",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper left")
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def crossval_plot(result, path: str | Path, title: str | None = None) -> Path:
    """Train and test RMSE (mean ± std over repeats) against the test fraction (paper Fig. 6).

    Error bars stop at zero; fractions where some fits had fewer training rows than
    parameters are marked "underdetermined".

    Parameters
    ----------
    result
        A :class:`~ase_vibentropy.evaluation.CrossValidationResult`.
    path
        Output PNG file.
    """
    plt = pyplot("the cross-validation plot")
    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
    p = np.asarray(result.fractions)
    for name, mean, std, marker in (
        ("train", result.train_rmse_mean, result.train_rmse_std, "s"),
        ("test", result.test_rmse_mean, result.test_rmse_std, "o"),
    ):
        mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
        # an RMSE is never negative: the lower bar stops at zero
        ax.errorbar(p, mean, yerr=[np.minimum(std, mean), std], fmt=f"{marker}-", capsize=3,
                    label=f"{name} RMSE")
    under = np.asarray(getattr(result, "n_underdetermined", np.zeros(len(p))))
    for x, count in zip(p, under):
        if count:
            ax.annotate("underdetermined", (x, 0), xytext=(0, 4), textcoords="offset points",
                        rotation=90, fontsize=7, ha="center", va="bottom", color="0.4")
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("test fraction p")
    ax.set_ylabel("RMSE ($k_B$)")
    ax.set_title(title or f"{result.repeats} random splits per fraction, {result.n_rows} rows", fontsize=10)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
