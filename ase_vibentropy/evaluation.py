"""Validation of LDML models: RMSE/MAE, repeated random splits, transfer between databases.

Follows the paper's protocol (Eq. 22-23 and Fig. 6): errors in k_B on training and test rows;
for each test fraction p in 0.1..0.9 the data are split at random ``repeats`` times (100 in the
paper) and the errors averaged. Rows flagged ``anchor`` in a
:class:`~ase_vibentropy.features.TrainingSet` (the perfect-lattice rows of a joint fit) are kept
in every training split and never scored: they pin the bulk, they are not test cases.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import mean_absolute_error, root_mean_squared_error
from sklearn.model_selection import GroupShuffleSplit, LeaveOneGroupOut

from .errors import DatabaseError, InvalidOptionError
from .features import TrainingSet
from .model import UnderdeterminedFitWarning

__all__ = [
    "ATTEMPT_FREQUENCY_FACTOR",
    "DEFAULT_FRACTIONS",
    "CrossValidationResult",
    "attempt_frequency_metrics",
    "calibrate_std",
    "evaluate",
    "mae",
    "regression_metrics",
    "repeated_random_splits",
    "rmse",
    "transfer_test",
]

#: Test fractions of the paper's cross-validation (Fig. 6 inset).
DEFAULT_FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root-mean-square error (Eq. 22), in the units of the inputs (k_B)."""
    return float(root_mean_squared_error(y_true, y_pred))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error (Eq. 23), in the units of the inputs (k_B)."""
    return float(mean_absolute_error(y_true, y_pred))


#: Ratio of predicted to exact attempt frequency within which a migration model's prediction
#: counts as accurate (``nu_within_factor`` of :func:`attempt_frequency_metrics`): an error of
#: ln 1.35 = 0.30 k_B in ΔS_m, the accuracy a kinetic Monte Carlo rate needs next to its barrier.
ATTEMPT_FREQUENCY_FACTOR: float = 1.35


def attempt_frequency_metrics(y_true: Any, y_pred: Any,
                              factor: float = ATTEMPT_FREQUENCY_FACTOR) -> dict[str, float]:
    """How far predicted Vineyard attempt frequencies are from the exact ones, from ΔS_m (k_B).

    For classical migration entropies at one temperature ν* = (k_B T / h) exp(ΔS_m / k_B + 1)
    (harmonic TST), so the ratio of predicted to exact ν* is exp(ΔS_m^pred - ΔS_m^exact)
    exactly: the metrics need no frequencies. Returns ``nu_within_factor`` (fraction of jumps whose ratio lies in
    [1/factor, factor]), ``nu_factor`` (the factor itself), ``nu_factor_median`` and
    ``nu_factor_q90`` (median and 90th percentile of max(ratio, 1/ratio)).
    """
    error = np.abs(np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float))
    ratio = np.exp(error)  # max(ν*_pred / ν*_exact, ν*_exact / ν*_pred)
    return {
        "nu_within_factor": float(np.mean(error <= np.log(factor))),
        "nu_factor": float(factor),
        "nu_factor_median": float(np.median(ratio)),
        "nu_factor_q90": float(np.quantile(ratio, 0.9)),
    }


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """``{"rmse_kB", "mae_kB", "n"}`` of predictions against exact values (k_B)."""
    return {"rmse_kB": rmse(y_true, y_pred), "mae_kB": mae(y_true, y_pred), "n": int(np.size(y_true))}


def evaluate(model, data: TrainingSet) -> dict[str, Any]:
    """Errors of a fitted model on every non-anchor row of ``data``.

    Returns
    -------
    dict
        ``predictions`` (n,) and ``std`` (n,) in k_B for all rows of ``data``; ``overall``
        metrics over the scored rows of the main kind (formation rows when present, else jump
        rows of a migration fit, else total rows); ``by_kind`` and ``by_family`` metrics;
        ``mean_std_kB``. ``overall`` and each family also hold ``coverage_2sigma``, the
        fraction of rows whose error is within twice the predictive std, and for jump rows the
        attempt-frequency metrics of :func:`attempt_frequency_metrics`.
    """
    pred, std = model.predict(data.X, return_std=True, **data.row_kinds())
    scored = ~data.anchor
    if not scored.any():
        raise DatabaseError("the test set has no rows to score (only perfect-lattice rows)")
    main = next(k for k in ("formation", "migration", "total") if np.any(scored & (data.kind == k)))
    sel = scored & (data.kind == main)
    by_kind = {
        k: regression_metrics(data.y[scored & (data.kind == k)], pred[scored & (data.kind == k)])
        for k in ("formation", "migration", "total")
        if np.any(scored & (data.kind == k))
    }
    within = np.abs(pred - data.y) <= 2.0 * std

    def metrics(rows: np.ndarray) -> dict[str, float]:
        out = {**regression_metrics(data.y[rows], pred[rows]), "coverage_2sigma": float(np.mean(within[rows]))}
        if main == "migration":
            out.update(attempt_frequency_metrics(data.y[rows], pred[rows]))
        return out

    by_family = {f: metrics(sel & (data.family == f)) for f in sorted(set(data.family[sel].tolist()))}
    return {
        "kind": main,
        "overall": metrics(sel),
        "by_kind": by_kind,
        "by_family": by_family,
        "mean_std_kB": float(np.mean(std[sel])),
        "predictions": pred,
        "std": std,
        "scored": sel,
    }


@dataclass
class CrossValidationResult:
    """Errors of repeated random splits, one entry per test fraction (k_B).

    Attributes
    ----------
    fractions : (k,) test fractions p
    repeats : random splits per fraction
    n_rows : scored rows split between train and test
    train_rmse_mean, train_rmse_std, test_rmse_mean, test_rmse_std : (k,)
    train_mae_mean, train_mae_std, test_mae_mean, test_mae_std : (k,)
    n_underdetermined : (k,) splits with fewer training rows than parameters
    n_groups : groups split between train and test (= n_rows without groups)
    test_coverage_mean : (k,) fraction of test rows within twice the predictive std (the fit's
        own Bayesian std: a model trained with ``calibrate_std`` scales it afterwards)
    test_nu_within_factor_mean : (k,) jump rows of a migration fit only (else None): fraction of
        test jumps whose predicted ν* is within :data:`ATTEMPT_FREQUENCY_FACTOR` of the exact one
    """

    fractions: np.ndarray
    repeats: int
    n_rows: int
    train_rmse_mean: np.ndarray
    train_rmse_std: np.ndarray
    test_rmse_mean: np.ndarray
    test_rmse_std: np.ndarray
    train_mae_mean: np.ndarray
    train_mae_std: np.ndarray
    test_mae_mean: np.ndarray
    test_mae_std: np.ndarray
    n_underdetermined: np.ndarray
    n_groups: int | None = None
    test_coverage_mean: np.ndarray | None = None
    test_nu_within_factor_mean: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (lists of floats)."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}


def _fit_quiet(estimator, data: TrainingSet) -> tuple[Any, bool]:
    """Fit a clone of ``estimator``; report whether the fit was underdetermined."""
    model = clone(estimator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnderdeterminedFitWarning)
        model.fit(data.X, data.y, **data.row_kinds())
    under = any(issubclass(w.category, UnderdeterminedFitWarning) for w in caught)
    for w in caught:
        if not issubclass(w.category, UnderdeterminedFitWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, under


def repeated_random_splits(
    estimator,
    data: TrainingSet,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    repeats: int = 100,
    random_state: int | None = 0,
    progress: bool = True,
    groups: Any = None,
) -> CrossValidationResult:
    """Train/test errors averaged over ``repeats`` random splits for each test fraction.

    The splits are scikit-learn's ``GroupShuffleSplit`` over the scored rows: with ``groups``,
    whole groups go to one side of a split (the fraction p applies to the groups), e.g. a
    configuration and its strained copies, which a split by rows would put on both sides;
    without, every row is its own group (a plain shuffle split).

    Parameters
    ----------
    estimator
        An unfitted :class:`~ase_vibentropy.model.LDMLModel` (cloned for every split).
    data
        Rows to split; anchor rows are always in the training part and never scored.
    fractions
        Test fractions p, each in (0, 1).
    repeats
        Random splits per fraction (the paper used 100).
    random_state
        Seed of the splits (None: fresh entropy).
    progress
        Show a tqdm progress bar.
    groups
        (n,) group label of every row of ``data`` (labels of anchor rows are ignored), or None:
        every row is its own group.

    Raises
    ------
    InvalidOptionError
        A fraction outside (0, 1), ``repeats`` < 1, or ``groups`` of the wrong length.
    DatabaseError
        Fewer than 3 scored rows (or groups).
    """
    from tqdm.auto import tqdm

    fractions = np.asarray(fractions, dtype=float)
    if np.any((fractions <= 0) | (fractions >= 1)):
        raise InvalidOptionError(f"test fractions must lie strictly between 0 and 1, got {fractions.tolist()}")
    if repeats < 1:
        raise InvalidOptionError(f"repeats must be at least 1, got {repeats}")
    scored = np.flatnonzero(~data.anchor)
    anchors = np.flatnonzero(data.anchor)
    n = len(scored)
    codes = _group_codes(scored, groups, len(data))
    n_groups = int(codes.max()) + 1 if n else 0
    if n_groups < 3:
        raise DatabaseError(f"cross-validation needs at least 3 scored rows (groups), the data have {n_groups}")
    # one random stream across fractions: the splits of different fractions are independent
    stream = np.random.RandomState(random_state)
    stats = np.zeros((len(fractions), repeats, 6))
    jumps = bool(np.all(data.kind[scored] == "migration"))
    under = np.zeros(len(fractions), dtype=int)
    bar = tqdm(total=len(fractions) * repeats, desc="cross-validation", disable=not progress)
    for k, p in enumerate(fractions):
        n_test = min(max(1, int(round(p * n_groups))), n_groups - 2)
        splitter = GroupShuffleSplit(n_splits=repeats, test_size=n_test, random_state=stream)
        for r, (train_pos, test_pos) in enumerate(splitter.split(scored, groups=codes)):
            scored_train, test = scored[train_pos], scored[test_pos]
            train = np.concatenate([scored_train, anchors])
            model, was_under = _fit_quiet(estimator, data.subset(train))
            under[k] += was_under
            pred_train = model.predict(data.X[scored_train], **data.subset(scored_train).row_kinds())
            pred_test, std_test = model.predict(data.X[test], return_std=True,
                                                **data.subset(test).row_kinds())
            stats[k, r] = (
                rmse(data.y[scored_train], pred_train),
                rmse(data.y[test], pred_test),
                mae(data.y[scored_train], pred_train),
                mae(data.y[test], pred_test),
                np.mean(np.abs(pred_test - data.y[test]) <= 2.0 * std_test),
                attempt_frequency_metrics(data.y[test], pred_test)["nu_within_factor"] if jumps else np.nan,
            )
            bar.update()
    bar.close()
    mean, std = stats.mean(axis=1), stats.std(axis=1)
    return CrossValidationResult(
        fractions=fractions,
        repeats=int(repeats),
        n_rows=int(n),
        train_rmse_mean=mean[:, 0],
        train_rmse_std=std[:, 0],
        test_rmse_mean=mean[:, 1],
        test_rmse_std=std[:, 1],
        train_mae_mean=mean[:, 2],
        train_mae_std=std[:, 2],
        test_mae_mean=mean[:, 3],
        test_mae_std=std[:, 3],
        n_underdetermined=under,
        n_groups=int(n_groups),
        test_coverage_mean=mean[:, 4],
        test_nu_within_factor_mean=mean[:, 5] if jumps else None,
    )


def _group_codes(scored: np.ndarray, groups: Any, n_rows: int) -> np.ndarray:
    """Group number of each ``scored`` row, numbered by first appearance (0, 1, ...), so one
    group per row gives exactly the row splits of a plain shuffle split."""
    if groups is None:
        return np.arange(len(scored))
    groups = np.asarray(groups)
    if groups.shape != (n_rows,):
        raise InvalidOptionError(f"groups must give one label per row ({n_rows}), got shape {groups.shape}")
    _, first, inverse = np.unique(groups[scored], return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse.ravel()]


def transfer_test(estimator, train: TrainingSet, test: TrainingSet) -> dict[str, Any]:
    """Fit on one database and score on another (the paper's Fig. 6b).

    Both sets must come from the same descriptor (same hash). Returns ``{"train": metrics on
    the training rows, "test": metrics on the other database, "model": the fitted model}``.
    """
    if train.descriptor_hash != test.descriptor_hash:
        raise DatabaseError(
            f"train and test rows use different descriptors ({train.descriptor_hash} vs "
            f"{test.descriptor_hash}): featurize both databases with the same descriptor"
        )
    model = clone(estimator).fit(train.X, train.y, **train.row_kinds())
    return {"train": evaluate(model, train)["overall"], "test": evaluate(model, test)["overall"], "model": model}


def calibrate_std(
    estimator, data: TrainingSet, groups: Any, coverage: float = 0.9, n_sigma: float = 2.0
) -> dict[str, Any]:
    """Scale factor of the predictive std from leave-one-group-out residuals.

    Every group (for example a defect family) is predicted by a clone of ``estimator`` fitted
    on the other groups (anchor rows always in the fit), so each residual is out of sample and
    of the kind a user meets: a configuration unlike the training ones. The factor is
    κ = max(1, q/``n_sigma``) with q the ``coverage`` quantile of |residual|/std (numpy's
    linear interpolation between order statistics, so on few rows the covered fraction can
    fall a little short of ``coverage``; ``coverage_after`` says what it is). It never shrinks
    the Bayesian std. Set it with ``model.std_scale_ = result["std_scale"]``.

    Parameters
    ----------
    estimator
        An unfitted :class:`~ase_vibentropy.model.LDMLModel`.
    data
        The training rows.
    groups
        (n,) label of every row (those of anchor rows are ignored); at least 2 groups.
    coverage, n_sigma
        Fraction of residuals, in (0, 1), to cover within ``n_sigma`` (> 0) std.

    Returns
    -------
    dict
        ``std_scale``, the uncalibrated and calibrated ``coverage_before`` / ``coverage_after``
        of the out-of-sample residuals, ``n_rows``, ``n_groups``, ``coverage``, ``n_sigma``
        and per group its ``rmse_kB`` and ``coverage_before``.

    Raises
    ------
    InvalidOptionError
        ``coverage`` or ``n_sigma`` out of range, or ``groups`` of the wrong length.
    DatabaseError
        Fewer than 2 groups among the scored rows.
    """
    if not 0.0 < coverage < 1.0 or not n_sigma > 0.0:
        raise InvalidOptionError(
            f"coverage must lie in (0, 1) and n_sigma be positive; got {coverage} and {n_sigma}"
        )
    scored = np.flatnonzero(~data.anchor)
    anchors = np.flatnonzero(data.anchor)
    codes = _group_codes(scored, groups, len(data))
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    if n_groups < 2:
        raise DatabaseError(f"std calibration needs at least 2 groups of scored rows, the data have {n_groups}")
    labels = np.asarray(groups)[scored]
    ratio = np.empty(len(scored))
    residual = np.empty(len(scored))
    for train_pos, test_pos in LeaveOneGroupOut().split(scored, groups=codes):
        model, _ = _fit_quiet(estimator, data.subset(np.concatenate([scored[train_pos], anchors])))
        test = data.subset(scored[test_pos])
        mean, std = model.predict(test.X, return_std=True, **test.row_kinds())
        residual[test_pos] = mean - test.y
        ratio[test_pos] = np.abs(residual[test_pos]) / std
    scale = max(1.0, float(np.quantile(ratio, coverage)) / n_sigma)
    per_group = {
        str(label): {
            "n_rows": int(np.sum(labels == label)),
            "rmse_kB": rmse(np.zeros(int(np.sum(labels == label))), residual[labels == label]),
            "coverage_before": float(np.mean(ratio[labels == label] <= n_sigma)),
        }
        for label in np.unique(labels)
    }
    return {
        "std_scale": scale,
        "coverage": float(coverage),
        "n_sigma": float(n_sigma),
        "n_rows": int(len(scored)),
        "n_groups": n_groups,
        "coverage_before": float(np.mean(ratio <= n_sigma)),
        "coverage_after": float(np.mean(ratio <= n_sigma * scale)),
        "by_group": per_group,
    }
