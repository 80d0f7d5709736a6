"""The LDML surrogate of the harmonic vibrational entropy (paper Eq. 13-15; docs/theory.md).

The entropy of a structure is linear in the sum of per-atom descriptors,

    S = w · Σ_i D_i + c N                                  (Eq. 14, plus a per-atom constant c)
    S_f = w · (Σ_i D_i^d - (N_d/N_b) Σ_i D_i^b)            (Eq. 15; c cancels exactly)

and w (with c) is fitted by Bayesian ridge regression (scikit-learn ``BayesianRidge`` with
``fit_intercept=False`` and its default Gamma priors, as in the paper). There is no global
intercept: it would break extensivity (n copies of a cell must give n times its entropy).

Which targets to fit
--------------------
``target="formation"`` fits formation rows only (features Σ D^d - (N_d/N_b) Σ D^b, Eq. 15). The
per-atom constant c multiplies N_d - (N_d/N_b) N_b = 0 there, and every direction of w along which
the bulk descriptor is constant is seen only through differences, so the total entropy S (and the
local entropies w · D_i + c) of such a model is undefined: asking for it raises
:class:`~ase_vibentropy.errors.ModelDomainError`. Only S_f and the local formation contributions
w · (D_i - D_bulk) are available.

``target="total"`` fits total entropies of whole cells (features Σ D_i and the atom count N).

``target="joint"`` uses formation rows (ΔD, 0; S_f) and total rows of the perfect-lattice cells
(Σ D^b, N_b; S_b) in two exact Bayesian steps: BayesianRidge on the formation rows gives the
precisions and a posterior of (w, c); that posterior is then conditioned on the total rows
(:func:`_condition_on_totals`, the batch posterior at fixed precisions), with the totals' own
noise variance found by maximising their evidence (:func:`total_noise_precision`: a finite
cell's total holds terms no local sum represents, several k_B, far above the formation rows'
noise). The totals pin c and the
bulk part of w (so S and local entropies become defined) while S_f keeps the accuracy of a
formation-only fit; one BayesianRidge over all rows lets the few large totals set the evidence
and doubles the S_f error (docs/model.md). Total rows of defect cells add nothing: they are
exactly the formation row plus N_d/N_b times the bulk row. The shipped models use ``joint``.

Predictive standard deviation
-----------------------------
``sqrt(x Σ x^T + 1/alpha_)`` with Σ the posterior covariance of the weights and 1/alpha_ the
fitted noise variance. The noise term is included: it is the scatter of the exact entropies
around the best linear model (the irreducible error of the surrogate, ~ the training RMSE), so
the std is an error bar on "how far from the exact harmonic value", not only on "how well w is
known". It is the same quantity scikit-learn's ``BayesianRidge.predict(return_std=True)`` gives,
times ``std_scale_`` (1 after ``fit``): the factor
:func:`ase_vibentropy.evaluation.calibrate_std` finds from out-of-sample residuals, so that the
std also covers the error of extrapolating to families the fit has not seen (the Bayesian std
alone knows only the scatter of the training rows).

``target="migration"`` fits jumps: rows (Σ D^saddle - Σ D^minimum, ΔS_m) of a first-order saddle
and a minimum it connects, in the same cell. ΔS_m = w · ΔD + b, where the migration constant b
stands for the mode the saddle has lost (3N - 4 against 3N - 3 modes: an O(1) term no extensive
sum represents, as the per-atom constant cannot: N cancels). Such a model predicts migration
entropies only.

Row kinds
---------
Every training row is a formation row (features ΔD, the per-atom-constant column 0) or a total
row (features Σ D, the column N). ``fit`` takes the kinds explicitly (``is_total``); they are
never inferred from the atom counts. ``target="formation"`` fits formation rows only,
``"total"`` total rows only, ``"joint"`` needs both.

This module is the estimator on feature matrices, in scikit-learn's conventions (``fit``,
``predict``, ``score``, ``get_params``/``clone``; ``check_estimator`` passes for the formation
target, see tests/test_model.py for the documented exceptions). Entropies of structures (descriptor
passes, bulk references, temperatures, gradients) are :mod:`ase_vibentropy.predictor`'s job.

Units: k_B throughout (features in descriptor units).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from ase import Atoms
from scipy.linalg import solve_triangular
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import BayesianRidge
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted, validate_data

from .errors import DescriptorError, InvalidOptionError, ModelDomainError, UnknownNameError
from .harmonic.jump_core import DEFAULT_MOVED_A
from .structure import distinct_symbols
from .units import DEFAULT_TEMPERATURE_K

__all__ = [
    "LDMLModel",
    "TARGETS",
    "UnderdeterminedFitWarning",
    "check_model_element",
    "formation_features",
]

#: Allowed values of ``LDMLModel(target=...)``.
TARGETS = ("total", "formation", "joint", "migration")


class UnderdeterminedFitWarning(UserWarning):
    """Fewer training rows than fitted parameters: w is set by the ridge prior, not the data."""


def check_model_element(element: str | None, atoms: Atoms) -> None:
    """Raise :class:`ModelDomainError` unless every atom is ``element`` (None: no check).

    One weight vector per element (Eq. 14): a single-element model has no weights for another
    element, and applying it to an alloy would silently treat every atom as ``element``.
    """
    if element is None:
        return
    symbols = distinct_symbols(atoms)
    foreign = sorted(symbols - {element})
    if not foreign:
        return
    if element not in symbols:
        raise ModelDomainError(
            f"the model was trained on {element} but the structure contains only "
            f"{', '.join(foreign)}: {', '.join(foreign)} is unknown to this model; use a model "
            f"trained for {', '.join(foreign)}"
        )
    raise ModelDomainError(
        f"this model was trained for {element} only; the structure mixes {element} with "
        f"{', '.join(foreign)}, and a single-element model has no weights for "
        f"{', '.join(foreign)}: use a model trained on that alloy"
    )


def formation_features(
    defect_sum: np.ndarray, n_defect: np.ndarray | int, bulk_sum: np.ndarray, n_bulk: np.ndarray | int
) -> np.ndarray:
    """Formation features Σ_i D_i^d - (N_d/N_b) Σ_i D_i^b of Eq. 15.

    Parameters
    ----------
    defect_sum, bulk_sum
        Descriptor sums of the defect cell and of the perfect lattice in the same cell, shape
        (dim,) or (n, dim).
    n_defect, n_bulk
        Atom counts N_d and N_b, scalars or shape (n,).

    Returns
    -------
    ndarray, shape (dim,) or (n, dim)
    """
    ratio = np.asarray(n_defect, dtype=float) / np.asarray(n_bulk, dtype=float)
    return np.asarray(defect_sum, dtype=float) - ratio[..., None] * np.asarray(bulk_sum, dtype=float)


def total_noise_precision(
    A_total: np.ndarray, y_total: np.ndarray, mean: np.ndarray, cov: np.ndarray, noise_precision: float,
) -> float:
    """Noise precision of the total-entropy rows by type-II maximum likelihood (k_B⁻²).

    A local model cannot represent every part of a finite cell's total entropy (the zero modes
    a periodic cell lacks, its discrete Brillouin-zone sampling: O(1) to O(10) k_B per cell), so
    the totals scatter about the best linear model far more than the formation entropies do.
    Given the formation posterior N(mean, cov), the totals are distributed as
    N(A mean, A cov Aᵀ + σ_t² I); σ_t² maximises that evidence,

        ln p(y_t | σ_t²) = -½ Σ_k [ (Uᵀr)_k² / (μ_k + σ_t²) + ln(μ_k + σ_t²) ] + const,

    with r = y_t - A mean and A cov Aᵀ = U diag(μ) Uᵀ, searched on a log scale and never below
    the formation rows' noise variance 1/``noise_precision`` (the totals are not more exact than
    the formation rows). Shapes: A_total (m, p), y_total (m,), mean (p,), cov (p, p).
    """
    from scipy.optimize import minimize_scalar

    mu, u = np.linalg.eigh(A_total @ cov @ A_total.T)
    mu = np.clip(mu, 0.0, None)
    projected = (u.T @ (y_total - A_total @ mean)) ** 2
    floor = 1.0 / noise_precision

    def minus_log_evidence(log_var: float) -> float:
        variance = mu + np.exp(log_var)
        return 0.5 * float(np.sum(projected / variance + np.log(variance)))

    upper = np.log(max(floor, float(projected.max()), float(mu.max()), 1.0) * 1e4)
    best = minimize_scalar(minus_log_evidence, bounds=(np.log(floor), upper), method="bounded",
                           options={"xatol": 1e-6})
    return float(1.0 / np.exp(best.x))


def _condition_on_totals(
    X_formation: np.ndarray, y_formation: np.ndarray, A_total: np.ndarray, y_total: np.ndarray,
    noise_precision: float, weight_precision: float, total_precision: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior of the weights given the formation rows and then the total-entropy rows.

    With the precisions fixed at the values BayesianRidge fitted on the formation rows alone
    (alpha = ``noise_precision``, lambda = ``weight_precision``) and the totals' own noise
    precision alpha_t (``total_precision``, default alpha; :func:`total_noise_precision`),
    conditioning the formation posterior on the totals is the same as the batch Gaussian
    posterior over all rows:

        Σ' = (lambda I + alpha XᵀX + alpha_t AᵀA)⁻¹,    w' = Σ' (alpha Xᵀy + alpha_t Aᵀy_t).

    w moves only along directions the formation data left uncertain (the less, the noisier the
    totals), so the formation predictions barely change while c (the per-atom constant,
    invisible to formation rows) and the bulk part of w are pinned by the totals. Both come
    from one QR factorisation of the stacked whitened system [sqrt(alpha) X; sqrt(alpha_t) A;
    sqrt(lambda) I], which stays accurate when the formation rows are interpolated (alpha huge)
    and the totals are nearly proportional (perfect lattices of several cell sizes); the gain
    form cov Aᵀ(A cov Aᵀ + I/alpha_t)⁻¹ loses all precision there.

    Shapes: X_formation (n, p), y_formation (n,), A_total (m, p), y_total (m,).
    Returns (mean (p,), cov (p, p)).
    """
    total_precision = noise_precision if total_precision is None else total_precision
    n_params = X_formation.shape[1]
    stacked = np.vstack([
        np.sqrt(noise_precision) * X_formation,
        np.sqrt(total_precision) * A_total,
        np.sqrt(weight_precision) * np.eye(n_params),
    ])
    rhs = np.concatenate([
        np.sqrt(noise_precision) * y_formation,
        np.sqrt(total_precision) * y_total,
        np.zeros(n_params),
    ])
    # Householder QR (backward stable, a third of the cost of an SVD): stacked = Q R with R
    # invertible thanks to the sqrt(lambda) I block, so Σ' = R⁻¹R⁻ᵀ and w' = R⁻¹ Qᵀ rhs.
    q, r = np.linalg.qr(stacked)
    mean = solve_triangular(r, q.T @ rhs)
    r_inv = solve_triangular(r, np.eye(n_params))
    cov = r_inv @ r_inv.T
    return mean, 0.5 * (cov + cov.T)


#: A design column whose root-mean-square over the fitted rows is below this fraction of the
#: largest column's is round-off, not signal (see :meth:`LDMLModel.fit`).
NEGLIGIBLE_COLUMN_RATIO = 1e-10


class LDMLModel(RegressorMixin, BaseEstimator):
    """Linear-in-descriptor (LDML) vibrational entropy model fitted by Bayesian ridge regression.

    Parameters
    ----------
    descriptor
        Registered descriptor name (``ase_vibentropy.descriptors.get``) or a
        :class:`~ase_vibentropy.descriptors.base.DescriptorProvider` instance.
    descriptor_params
        Parameters of the descriptor when ``descriptor`` is a name (None: its defaults).
    target
        ``"formation"``, ``"total"``, ``"joint"`` or ``"migration"`` (see the module
        docstring). Only ``total`` and ``joint`` models predict total and local entropies;
        ``migration`` models predict ΔS_m of jumps only.
    per_atom_constant
        Add a constant descriptor component (one per atom): the column is N for total rows and
        N_d - (N_d/N_b) N_b = 0 for formation rows. It keeps extensivity, unlike an intercept.
        Ignored by ``migration`` fits, whose constant column is the migration constant b.
    temperature
        Temperature T0 of the training entropies, K. Predictions at T use the exact classical
        shift S(T) = S(T0) + n' k_B ln(T/T0).
    element, lattice, a0
        Element, lattice (``"bcc"``, ``"fcc"``) and unstrained lattice constant (Å) of the
        reference crystal; stored in model files, used for default bulk references.
    scale_features
        Divide each column by its root-mean-square before the fit. The scaling is folded back
        into ``coef_`` and ``sigma_``, so predictions and std are those of the scaled fit.
    max_iter, tol, alpha_1, alpha_2, lambda_1, lambda_2, alpha_init, lambda_init
        Passed to :class:`sklearn.linear_model.BayesianRidge` (its defaults are the paper's).
    core_radius, core_moved
        ``migration`` only: radius R (Å) of the jumps' exact fixed-boundary cores and the
        displacement (Å) that makes an atom part of a jump
        (:mod:`ase_vibentropy.harmonic.jump_core`). The model is then
        ΔS_m = ΔS_core(R) + w · Σ_{i outside the core} ΔD_i + b, fitted on rows of outer
        features and residuals ΔS_m - ΔS_core (``load_training_set(..., core_radius=R)``).
        None: no core, ΔS_m = w · ΔD + b.

    Attributes
    ----------
    coef_ : ndarray, shape (dim,)
        Weights w, k_B per descriptor unit.
    per_atom_constant_ : float
        c, k_B per atom (0.0 when ``per_atom_constant`` is False or for ``migration``).
    migration_constant_ : float
        b, k_B (``migration`` fits; 0.0 otherwise).
    sigma_ : ndarray, shape (dim + 1, dim + 1) or (dim, dim)
        Posterior covariance of (w, c) in the unscaled basis, k_B² per descriptor unit².
    alpha_, lambda_ : float
        Fitted noise precision (1/k_B²) and weight precision of the scaled problem.
    total_alpha_ : float
        Noise precision of the total-entropy rows (1/k_B²; :func:`total_noise_precision` for a
        joint fit, ``alpha_`` otherwise).
    feature_scale_ : ndarray, shape (dim + 1,) or (dim,)
        Column scales used during the fit (ones when ``scale_features`` is False).
    n_features_in_ : int
        Descriptor dimension dim.
    n_iter_ : int
        Iterations of the evidence maximisation.
    std_scale_ : float
        Factor applied to the predictive std (1.0 after ``fit``; set by
        :func:`ase_vibentropy.evaluation.calibrate_std`).
    training_summary_, metrics_ : dict
        Row count and target range of the training set; ``fit_rmse_kB`` / ``fit_mae_kB`` over
        every fitted row (formation and total rows together), k_B. ``vibentropy train`` adds the
        errors on the formation rows alone and per family.
    """

    def __init__(
        self,
        descriptor: Any = "afs",
        descriptor_params: dict[str, Any] | None = None,
        target: str = "formation",
        per_atom_constant: bool = True,
        temperature: float = DEFAULT_TEMPERATURE_K,
        element: str | None = None,
        lattice: str | None = None,
        a0: float | None = None,
        scale_features: bool = True,
        max_iter: int = 300,
        tol: float = 1e-3,
        alpha_1: float = 1e-6,
        alpha_2: float = 1e-6,
        lambda_1: float = 1e-6,
        lambda_2: float = 1e-6,
        alpha_init: float | None = None,
        lambda_init: float | None = None,
        core_radius: float | None = None,
        core_moved: float = DEFAULT_MOVED_A,
    ):
        self.descriptor = descriptor
        self.descriptor_params = descriptor_params
        self.target = target
        self.per_atom_constant = per_atom_constant
        self.temperature = temperature
        self.element = element
        self.lattice = lattice
        self.a0 = a0
        self.scale_features = scale_features
        self.max_iter = max_iter
        self.tol = tol
        self.alpha_1 = alpha_1
        self.alpha_2 = alpha_2
        self.lambda_1 = lambda_1
        self.lambda_2 = lambda_2
        self.alpha_init = alpha_init
        self.lambda_init = lambda_init
        self.core_radius = core_radius
        self.core_moved = core_moved

    # ------------------------------------------------------------------ design matrix
    def _check_target(self) -> None:
        if self.target not in TARGETS:
            raise UnknownNameError(
                f"target must be one of {', '.join(TARGETS)}, got {self.target!r}"
            )
        if self.core_radius is not None and (self.target != "migration" or not self.core_radius > 0):
            raise InvalidOptionError(
                f"core_radius (Å) is the exact core of a 'migration' model and must be > 0; got "
                f"{self.core_radius} with target {self.target!r}")

    @property
    def _constant_column(self) -> str | None:
        """The design's constant column: ``"migration"`` (ones), ``"per_atom"`` (N or 0) or None."""
        if self.target == "migration":
            return "migration"
        return "per_atom" if self.per_atom_constant else None

    def _row_kinds(self, n_rows: int, is_total: Any) -> np.ndarray:
        """The explicit kind of every fitted row, shape (n_rows,): True for total rows."""
        default = {"formation": False, "total": True, "migration": False}.get(self.target)
        if is_total is None:
            if default is None:
                raise ModelDomainError(
                    "a 'joint' fit needs the kind of every row: pass is_total=<bool array, True "
                    "for total-entropy rows (features Σ D, n_atoms N) and False for formation "
                    "rows> (TrainingSet.kind == 'total' gives it)"
                )
            return np.full(n_rows, default)
        kinds = self._row_kinds_any(n_rows, is_total)
        if default is not None and np.any(kinds != default):
            if self.target == "migration":
                raise ModelDomainError(
                    "a 'migration' fit takes jump rows (Σ D^saddle - Σ D^minimum, ΔS_m) only, "
                    f"but {int(np.sum(kinds))} row(s) are marked as total-entropy rows"
                )
            wrong = "total" if self.target == "formation" else "formation"
            raise ModelDomainError(
                f"a {self.target!r} fit takes {self.target} rows only, but "
                f"{int(np.sum(kinds != default))} row(s) are {wrong} rows: use target='joint' "
                "to fit both kinds"
            )
        return kinds

    def _design(self, X: np.ndarray, n_atoms: Any, is_total: np.ndarray) -> np.ndarray:
        """X (n, dim) with the constant column: for ``migration`` ones (b), otherwise, when
        enabled, the per-atom-constant column, N for total rows and N_d - (N_d/N_b) N_b = 0 for
        formation rows (Eq. 15, c cancels)."""
        if self._constant_column == "migration":
            return np.column_stack([X, np.ones(len(X))])
        if not self.per_atom_constant:
            return X
        count = np.zeros(len(X))
        if np.any(is_total):
            if n_atoms is None:
                raise ModelDomainError(
                    "total-entropy rows of a model with per_atom_constant=True need n_atoms, the "
                    "atom count N of each row (formation rows ignore it)"
                )
            n_atoms = np.asarray(n_atoms, dtype=float)
            if n_atoms.ndim > 1 or (n_atoms.ndim == 1 and len(n_atoms) != len(X)):
                raise DescriptorError(f"n_atoms must have shape ({len(X)},), got {n_atoms.shape}")
            n_atoms = np.broadcast_to(n_atoms, (len(X),))
            count = np.where(is_total, n_atoms, 0.0)
        return np.column_stack([X, count])

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any, n_atoms: Any = None, is_total: Any = None) -> LDMLModel:
        """Fit w (and c) by Bayesian ridge regression.

        Parameters
        ----------
        X
            Features, shape (n, dim): Σ_i D_i for total rows, Σ D^d - (N_d/N_b) Σ D^b for
            formation rows.
        y
            Entropies in k_B at :attr:`temperature`, shape (n,).
        n_atoms
            Atom count N of each row, shape (n,); needed for total rows when
            ``per_atom_constant`` is True, ignored for formation rows.
        is_total
            Row kinds, bool shape (n,): True for total-entropy rows. Default: every row a
            formation row (``target="formation"``) or a total row (``"total"``); required for
            ``"joint"``.

        Returns
        -------
        self
        """
        self._check_target()
        X, y = validate_data(self, X, y, y_numeric=True, ensure_min_samples=2)
        is_total = self._row_kinds(len(y), is_total)
        A = self._design(X, n_atoms, is_total)
        if len(y) < A.shape[1]:
            warnings.warn(
                f"{len(y)} training rows for {A.shape[1]} parameters: the fit is "
                "underdetermined and w is set by the ridge prior along unseen directions; "
                "add rows or use a smaller descriptor",
                UnderdeterminedFitWarning,
                stacklevel=2,
            )
        joint = self.target == "joint"
        # A joint fit learns w from the formation rows alone, then conditions that posterior on
        # the total rows (see _condition_on_totals), so S_f keeps the accuracy of a formation fit.
        fitted_rows = ~is_total if joint else np.ones(len(A), dtype=bool)
        if joint and (fitted_rows.sum() < 2 or not is_total.any()):
            raise ModelDomainError(
                f"a 'joint' fit needs at least 2 formation rows and 1 total-entropy row; got "
                f"{int(fitted_rows.sum())} and {int(is_total.sum())}: add rows or use "
                "target='formation' / 'total'"
            )
        # Columns that vanish on the fitted rows up to round-off (the per-atom constant, and any
        # descriptor component that counts atoms, such as scattering's l = 0 ones: their
        # formation features are D_d - (N_d/N_b) D_b ~ 1e-13) are set to exactly zero there.
        # Scaled to unit size, round-off would become a feature with weights of 1e40.
        column_rms = np.sqrt(np.mean(A[fitted_rows] ** 2, axis=0))
        negligible = column_rms <= NEGLIGIBLE_COLUMN_RATIO * max(column_rms.max(), np.finfo(float).tiny)
        A_fit = A.copy()
        A_fit[np.ix_(fitted_rows, negligible)] = 0.0
        scale = np.where(negligible, 1.0, column_rms) if self.scale_features else np.ones(A.shape[1])
        regressor = BayesianRidge(
            fit_intercept=False,
            max_iter=self.max_iter,
            tol=self.tol,
            alpha_1=self.alpha_1,
            alpha_2=self.alpha_2,
            lambda_1=self.lambda_1,
            lambda_2=self.lambda_2,
            alpha_init=self.alpha_init,
            lambda_init=self.lambda_init,
        ).fit(A_fit[fitted_rows] / scale, y[fitted_rows])
        weights_scaled, sigma_scaled = regressor.coef_, regressor.sigma_
        self.total_alpha_ = float(regressor.alpha_)
        if joint:
            totals = A_fit[~fitted_rows] / scale
            self.total_alpha_ = total_noise_precision(
                totals, y[~fitted_rows], weights_scaled, sigma_scaled, regressor.alpha_)
            weights_scaled, sigma_scaled = _condition_on_totals(
                A_fit[fitted_rows] / scale, y[fitted_rows], totals, y[~fitted_rows],
                noise_precision=regressor.alpha_, weight_precision=regressor.lambda_,
                total_precision=self.total_alpha_,
            )
        # Fold the scaling back: x·w = (x/s)·w_s and x Σ x^T = (x/s) Σ_s (x/s)^T.
        weights = weights_scaled / scale
        self.feature_scale_ = scale
        self.sigma_ = sigma_scaled / np.outer(scale, scale)
        self.alpha_ = float(regressor.alpha_)
        self.lambda_ = float(regressor.lambda_)
        self.n_iter_ = int(regressor.n_iter_)
        self.std_scale_ = 1.0
        self.coef_ = weights[: self.n_features_in_].copy()
        constant = self._constant_column
        self.per_atom_constant_ = float(weights[-1]) if constant == "per_atom" else 0.0
        self.migration_constant_ = float(weights[-1]) if constant == "migration" else 0.0
        residual = A @ weights - y
        self.training_summary_ = {
            "n_rows": int(len(y)),
            "n_parameters": int(A.shape[1]),
            "y_min_kB": float(y.min()),
            "y_max_kB": float(y.max()),
        }
        self.metrics_ = {
            "fit_rmse_kB": float(np.sqrt(np.mean(residual**2))),
            "fit_mae_kB": float(np.mean(np.abs(residual))),
        }
        return self

    @property
    def _weights(self) -> np.ndarray:
        """(w, c), (w, b) or w, matching the columns of the design matrix."""
        constant = self._constant_column
        if constant == "migration":
            return np.append(self.coef_, getattr(self, "migration_constant_", 0.0))
        if constant == "per_atom":
            return np.append(self.coef_, self.per_atom_constant_)
        return self.coef_

    def _check_fitted(self) -> None:
        check_is_fitted(
            self, "coef_",
            msg="this LDMLModel is not fitted yet: call fit(X, y) or load a model file",
        )

    def _prediction_kinds(self, n_rows: int, n_atoms: Any, is_total: Any) -> np.ndarray:
        if is_total is not None:
            kinds = self._row_kinds_any(n_rows, is_total)
            if self.target in ("formation", "migration") and kinds.any():
                raise ModelDomainError(
                    f"a {self.target} model does not define total entropies (its per-atom "
                    "constant and the bulk part of w are undetermined): predict "
                    f"{'jump' if self.target == 'migration' else 'formation'} rows only"
                )
            return kinds
        if self.target == "total":
            return np.ones(n_rows, dtype=bool)
        if self.target == "joint" and n_atoms is not None:
            raise ModelDomainError(
                "a 'joint' model predicts formation and total rows: pass is_total=<bool array> "
                "with n_atoms to say which rows are totals"
            )
        return np.zeros(n_rows, dtype=bool)

    @staticmethod
    def _row_kinds_any(n_rows: int, is_total: Any) -> np.ndarray:
        kinds = np.asarray(is_total)
        if kinds.ndim == 0:
            kinds = np.full(n_rows, bool(kinds))
        if kinds.dtype != bool or kinds.shape != (n_rows,):
            raise DescriptorError(
                f"is_total must be a boolean array of shape ({n_rows},), got dtype {kinds.dtype} "
                f"and shape {kinds.shape}"
            )
        return kinds

    def predict(
        self, X: Any, return_std: bool = False, n_atoms: Any = None, is_total: Any = None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted entropies in k_B at :attr:`temperature`, shape (n,).

        Parameters
        ----------
        X
            Features, shape (n, dim) (as in :meth:`fit`).
        return_std
            Also return the predictive standard deviation
            ``std_scale_`` sqrt(x Σ x^T + 1/alpha_), k_B (1/total_alpha_, the totals' own noise
            variance, for total rows).
        n_atoms
            Atom count N of each total row, shape (n,) (with ``per_atom_constant``).
        is_total
            Row kinds, bool (n,) or a scalar. Default: total rows for a ``"total"`` model,
            formation rows otherwise.
        """
        self._check_fitted()
        X = validate_data(self, X, reset=False)
        kinds = self._prediction_kinds(len(X), n_atoms, is_total)
        A = self._design(X, n_atoms, kinds)
        mean = A @ self._weights
        if not return_std:
            return mean
        noise = np.where(kinds, 1.0 / getattr(self, "total_alpha_", self.alpha_), 1.0 / self.alpha_)
        variance = np.einsum("ij,jk,ik->i", A, self.sigma_, A) + noise
        return mean, getattr(self, "std_scale_", 1.0) * np.sqrt(np.maximum(variance, 0.0))

    def score(
        self, X: Any, y: Any, sample_weight: Any = None, n_atoms: Any = None, is_total: Any = None
    ) -> float:
        """Coefficient of determination R² of :meth:`predict` on (X, y), as scikit-learn's."""
        prediction = self.predict(X, n_atoms=n_atoms, is_total=is_total)
        return float(r2_score(y, prediction, sample_weight=sample_weight))

    def descriptor_provider(self):
        """A descriptor provider built from ``descriptor`` and ``descriptor_params``."""
        from .descriptors import get
        from .descriptors.base import DescriptorProvider

        if isinstance(self.descriptor, DescriptorProvider):
            return self.descriptor
        return get(self.descriptor, **(self.descriptor_params or {}))
