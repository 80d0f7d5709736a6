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
(:func:`_condition_on_totals`, the batch posterior at fixed precisions). The totals pin c and the
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
known". It is the same quantity scikit-learn's ``BayesianRidge.predict(return_std=True)`` gives.

Units: feature-level :meth:`LDMLModel.predict` works in k_B; structure-level methods return eV/K.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

import numpy as np
from ase import Atoms
from scipy.linalg import solve_triangular
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import BayesianRidge

from .errors import (
    CellMismatchError,
    DescriptorError,
    ModelDomainError,
    SupersededLabelsWarning,
    UnknownNameError,
)
from .structure import n_zero_modes, periodicity
from .units import DEFAULT_TEMPERATURE_K, KB_EV_PER_K

__all__ = [
    "LDMLModel",
    "TARGETS",
    "UnderdeterminedFitWarning",
    "check_model_element",
    "formation_features",
    "n_vibrational_modes",
]

#: Allowed values of ``LDMLModel(target=...)``.
TARGETS = ("total", "formation", "joint")


class UnderdeterminedFitWarning(UserWarning):
    """Fewer training rows than fitted parameters: w is set by the ridge prior, not the data."""


def n_vibrational_modes(atoms: Atoms) -> int:
    """Number n' of non-zero modes: 3N - 3 periodic, 3N - 6 (or 3N - 5 linear) isolated (docs/theory.md, "Harmonic spectrum")."""
    return 3 * len(atoms) - n_zero_modes(atoms)


def check_model_element(element: str | None, atoms: Atoms) -> None:
    """Raise :class:`ModelDomainError` unless every atom is ``element`` (None: no check).

    One weight vector per element (Eq. 14): a single-element model has no weights for another
    element, and applying it to an alloy would silently treat every atom as ``element``.
    """
    if element is None:
        return
    symbols = set(atoms.get_chemical_symbols())
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


def _condition_on_totals(
    X_formation: np.ndarray, y_formation: np.ndarray, A_total: np.ndarray, y_total: np.ndarray,
    noise_precision: float, weight_precision: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior of the weights given the formation rows and then the total-entropy rows.

    With the precisions fixed at the values BayesianRidge fitted on the formation rows alone
    (alpha = ``noise_precision``, lambda = ``weight_precision``), conditioning the formation
    posterior on the totals is the same as the batch Gaussian posterior over all rows:

        Σ' = (lambda I + alpha (XᵀX + AᵀA))⁻¹,    w' = alpha Σ' (Xᵀy + Aᵀy_t).

    w moves only along directions the formation data left uncertain, so the formation
    predictions barely change while c (the per-atom constant, invisible to formation rows) and
    the bulk part of w are pinned by the totals. Both come from one QR factorisation of the stacked
    whitened system [sqrt(alpha) X; sqrt(alpha) A; sqrt(lambda) I], which stays accurate when
    the formation rows are interpolated (alpha huge) and the totals are nearly proportional
    (perfect lattices of several cell sizes); the gain form cov Aᵀ(A cov Aᵀ + I/alpha)⁻¹ loses
    all precision there.

    Shapes: X_formation (n, p), y_formation (n,), A_total (m, p), y_total (m,).
    Returns (mean (p,), cov (p, p)).
    """
    n_params = X_formation.shape[1]
    stacked = np.vstack([
        np.sqrt(noise_precision) * X_formation,
        np.sqrt(noise_precision) * A_total,
        np.sqrt(weight_precision) * np.eye(n_params),
    ])
    rhs = np.concatenate([
        np.sqrt(noise_precision) * y_formation,
        np.sqrt(noise_precision) * y_total,
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
        ``"formation"``, ``"total"`` or ``"joint"`` (see the module docstring). Only ``total``
        and ``joint`` models predict total and local entropies.
    per_atom_constant
        Add a constant descriptor component (one per atom): the column is N for total rows and
        N_d - (N_d/N_b) N_b = 0 for formation rows. It keeps extensivity, unlike an intercept.
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

    Attributes
    ----------
    coef_ : ndarray, shape (dim,)
        Weights w, k_B per descriptor unit.
    per_atom_constant_ : float
        c, k_B per atom (0.0 when ``per_atom_constant`` is False).
    sigma_ : ndarray, shape (dim + 1, dim + 1) or (dim, dim)
        Posterior covariance of (w, c) in the unscaled basis, k_B² per descriptor unit².
    alpha_, lambda_ : float
        Fitted noise precision (1/k_B²) and weight precision of the scaled problem.
    feature_scale_ : ndarray, shape (dim + 1,) or (dim,)
        Column scales used during the fit (ones when ``scale_features`` is False).
    n_features_in_ : int
        Descriptor dimension dim.
    n_iter_ : int
        Iterations of the evidence maximisation.
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

    # ------------------------------------------------------------------ design matrix
    def _check_target(self) -> None:
        if self.target not in TARGETS:
            raise UnknownNameError(
                f"target must be one of {', '.join(TARGETS)}, got {self.target!r}"
            )

    def _design(self, X: Any, n_atoms: Any, fitting: bool) -> np.ndarray:
        """Stack X (n, dim) with the per-atom-constant column (n,) when enabled."""
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise DescriptorError(f"X must have shape (n_rows, dim), got {X.shape}")
        if not fitting and X.shape[1] != self.n_features_in_:
            raise DescriptorError(
                f"X has {X.shape[1]} descriptor columns but the model was fitted with "
                f"{self.n_features_in_}: use the model's descriptor ({self.descriptor!r})"
            )
        if not np.isfinite(X).all():
            raise DescriptorError("X contains NaN or infinite values: check the descriptor sums")
        if not self.per_atom_constant:
            return X
        if n_atoms is None:
            if self.target == "formation":
                # Formation rows: N_d - (N_d/N_b) N_b = 0, the constant cancels (Eq. 15).
                n_atoms = np.zeros(len(X))
            else:
                raise ModelDomainError(
                    f"a {self.target!r} model with per_atom_constant=True needs n_atoms: the atom "
                    "count N for total-entropy rows and 0 for formation rows"
                )
        count = np.broadcast_to(np.asarray(n_atoms, dtype=float), (len(X),))
        return np.column_stack([X, count])

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X: Any, y: Any, n_atoms: Any = None) -> LDMLModel:
        """Fit w (and c) by Bayesian ridge regression.

        Parameters
        ----------
        X
            Features, shape (n, dim): Σ_i D_i for total rows, Σ D^d - (N_d/N_b) Σ D^b for
            formation rows.
        y
            Entropies in k_B at :attr:`temperature`, shape (n,).
        n_atoms
            Per-atom-constant column, shape (n,): N for total rows, 0 for formation rows.
            Optional for ``target="formation"`` (zeros), required otherwise when
            ``per_atom_constant`` is True.

        Returns
        -------
        self
        """
        self._check_target()
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        A = self._design(X, n_atoms, fitting=True)
        if len(A) != len(y):
            raise DescriptorError(f"X has {len(A)} rows but y has {len(y)}")
        if self.target != "formation" and self.per_atom_constant and not np.any(A[:, -1]):
            raise ModelDomainError(
                f"a {self.target!r} fit needs total-entropy rows (n_atoms = N > 0, e.g. the "
                "perfect-lattice cells with S_bulk_kB); all rows are formation rows: add them or "
                "use target='formation'"
            )
        if len(y) < 2:
            raise DescriptorError("at least 2 training rows are needed")
        if not np.isfinite(y).all():
            raise DescriptorError("y contains NaN or infinite entropies")
        if len(y) < A.shape[1]:
            warnings.warn(
                f"{len(y)} training rows for {A.shape[1]} parameters: the fit is "
                "underdetermined and w is set by the ridge prior along unseen directions; "
                "add rows or use a smaller descriptor",
                UnderdeterminedFitWarning,
                stacklevel=2,
            )
        joint = self.target == "joint" and self.per_atom_constant
        # A joint fit learns w from the formation rows alone, then conditions that posterior on
        # the total rows (see _condition_on_totals), so S_f keeps the accuracy of a formation fit.
        fitted_rows = A[:, -1] == 0.0 if joint else np.ones(len(A), dtype=bool)
        if joint and fitted_rows.sum() < 2:
            raise ModelDomainError(
                "a 'joint' fit needs at least 2 formation rows (n_atoms = 0) besides the "
                "total-entropy rows: add defect rows or use target='total'"
            )
        # Columns that vanish on the fitted rows up to round-off (the per-atom constant, and any
        # descriptor component that counts atoms, such as scattering's l = 0 ones: their
        # formation features are D_d - (N_d/N_b) D_b ~ 1e-13) are set to exactly zero there.
        # Scaled to unit size, round-off would become a feature with weights of 1e40.
        column_rms = np.sqrt(np.mean(A[fitted_rows] ** 2, axis=0))
        negligible = column_rms <= NEGLIGIBLE_COLUMN_RATIO * column_rms.max()
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
        if joint:
            weights_scaled, sigma_scaled = _condition_on_totals(
                A_fit[fitted_rows] / scale, y[fitted_rows], A_fit[~fitted_rows] / scale,
                y[~fitted_rows], noise_precision=regressor.alpha_,
                weight_precision=regressor.lambda_,
            )
        # Fold the scaling back: x·w = (x/s)·w_s and x Σ x^T = (x/s) Σ_s (x/s)^T.
        weights = weights_scaled / scale
        self.feature_scale_ = scale
        self.sigma_ = sigma_scaled / np.outer(scale, scale)
        self.alpha_ = float(regressor.alpha_)
        self.lambda_ = float(regressor.lambda_)
        self.n_iter_ = int(regressor.n_iter_)
        self.n_features_in_ = X.shape[1] if X.ndim == 2 else X.shape[0]
        self.coef_ = weights[: self.n_features_in_].copy()
        self.per_atom_constant_ = float(weights[-1]) if self.per_atom_constant else 0.0
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
        """(w, c) or w, matching the columns of the design matrix."""
        if self.per_atom_constant:
            return np.append(self.coef_, self.per_atom_constant_)
        return self.coef_

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                "this LDMLModel is not fitted yet: call fit(X, y) or load a model file"
            )

    def predict(
        self, X: Any, return_std: bool = False, n_atoms: Any = None
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted entropies in k_B at :attr:`temperature`, shape (n,).

        Parameters
        ----------
        X
            Features, shape (n, dim) (as in :meth:`fit`).
        return_std
            Also return the predictive standard deviation sqrt(x Σ x^T + 1/alpha_), k_B.
        n_atoms
            Per-atom-constant column (N for total rows, 0 for formation rows), shape (n,).
        """
        self._check_fitted()
        A = self._design(X, n_atoms, fitting=False)
        mean = A @ self._weights
        if not return_std:
            return mean
        variance = np.einsum("ij,jk,ik->i", A, self.sigma_, A) + 1.0 / self.alpha_
        return mean, np.sqrt(np.maximum(variance, 0.0))

    # ------------------------------------------------------------------ descriptor
    def descriptor_provider(self):
        """The descriptor provider (built once from ``descriptor`` and ``descriptor_params``)."""
        from .descriptors import get
        from .descriptors.base import DescriptorProvider

        if isinstance(self.descriptor, DescriptorProvider):
            return self.descriptor
        key = (self.descriptor, repr(sorted((self.descriptor_params or {}).items())))
        cached = self.__dict__.get("_provider_cache")
        if cached is None or cached[0] != key:
            provider = get(self.descriptor, **(self.descriptor_params or {}))
            self.__dict__["_provider_cache"] = (key, provider)
            self.__dict__["_sum_cache"] = {}
        return self.__dict__["_provider_cache"][1]

    def _check_atoms(self, atoms: Atoms) -> None:
        check_model_element(self.element, atoms)
        from .potentials import superseded_label_warning

        message = superseded_label_warning(getattr(self, "training_summary_", {}).get("potential"))
        if message is not None:
            warnings.warn(message, SupersededLabelsWarning, stacklevel=3)

    @staticmethod
    def _check_same_cell(atoms: Atoms, bulk: Atoms) -> None:
        """S_f compares the defect with the perfect lattice in the SAME cell (Eq. 3)."""
        if periodicity(atoms) != periodicity(bulk):
            raise CellMismatchError("defect and bulk cells must both be periodic (or both isolated)")
        scale = max(float(np.abs(atoms.cell.array).max()), 1.0)
        if not np.allclose(atoms.cell.array, bulk.cell.array, rtol=0.0, atol=1e-6 * scale):
            raise CellMismatchError(
                "the bulk reference must fill the same cell as the defect structure (same volume "
                "and strain, Eq. 3); build it with ase_vibentropy.harmonic.bulk_for_cell"
            )

    def _check_total_defined(self) -> None:
        if self.target == "formation":
            raise ModelDomainError(
                "this model was trained on formation entropies only: its per-atom constant "
                "and the bulk part of w are undetermined, so total and local entropies are "
                "undefined; use predict_formation_entropy, or train with target='joint'"
            )

    def _temperature(self, temperature: float | None) -> float:
        temperature = self.temperature if temperature is None else float(temperature)
        if not temperature > 0:
            raise ModelDomainError(f"temperature must be positive (K), got {temperature}")
        return temperature

    # ------------------------------------------------------------------ descriptor passes
    def set_execution(
        self,
        workers: int | None = None,
        scheduler: Any = None,
        chunk_size: int | None = None,
        executor: str = "thread",
    ) -> LDMLModel:
        """Choose how descriptor passes run (:mod:`ase_vibentropy.parallel`); returns self.

        Parameters
        ----------
        workers
            Local workers over spatial chunks (None: every CPU this process may use; 1: serial).
        scheduler
            Dask scheduler address, ``LocalCluster`` or ``Client``: passes run on that cluster.
        chunk_size
            Centre atoms per spatial chunk (None: ``parallel.DEFAULT_CHUNK_SIZE``).
        executor
            ``"thread"`` or ``"process"`` for the local workers.

        Not a model parameter: it is not saved in model files and does not change any result
        (chunked, parallel and Dask passes agree with the serial one to rounding).
        """
        from .parallel import DEFAULT_CHUNK_SIZE, EXECUTORS

        if executor not in EXECUTORS:
            raise UnknownNameError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        if workers is not None and int(workers) < 1:
            raise DescriptorError(f"workers must be >= 1 (or None for every CPU), got {workers}")
        self.__dict__["_execution_settings"] = {
            "workers": None if workers is None else int(workers),
            "scheduler": scheduler,
            "chunk_size": DEFAULT_CHUNK_SIZE if chunk_size is None else int(chunk_size),
            "executor": executor,
        }
        return self

    def _execution(self) -> dict[str, Any]:
        from .parallel import DEFAULT_CHUNK_SIZE

        default = {"workers": None, "scheduler": None, "chunk_size": DEFAULT_CHUNK_SIZE, "executor": "thread"}
        return self.__dict__.get("_execution_settings", default)

    def _structure_key(self, atoms: Atoms) -> str:
        """Exact digest of provider, species, cell, positions and pbc."""
        digest = hashlib.sha1(self.descriptor_provider().hash.encode())
        for part in (
            np.asarray(atoms.numbers, dtype=np.int64),
            np.asarray(atoms.cell.array, dtype=float),
            np.asarray(atoms.positions, dtype=float),
            np.asarray(atoms.pbc, dtype=bool),
        ):
            digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()

    def _cached_pass(self, atoms: Atoms, local: bool):
        """The cached :class:`~ase_vibentropy.parallel.DescriptorPass` of ``atoms`` or None."""
        entry = self.__dict__.get("_sum_cache", {}).get(self._structure_key(atoms))
        if entry is None or (local and (entry.projection is None or not np.array_equal(entry.weights, self.coef_))):
            return None
        return entry

    def _store_pass(self, atoms: Atoms, result, weights: np.ndarray | None, room: int = 16) -> None:
        cache = self.__dict__.setdefault("_sum_cache", {})
        while len(cache) >= max(room, 16):
            cache.pop(next(iter(cache)))  # oldest first
        result.weights = None if weights is None else weights.copy()
        cache[self._structure_key(atoms)] = result

    def prefetch(self, structures: list[Atoms], local: bool = False) -> None:
        """Run the descriptor passes of ``structures`` now (all at once on a Dask cluster) and
        cache them, so the structure-level predictions that follow do no descriptor work.

        With ``local``, the passes also keep the per-atom projections w · D_i (N,) that
        :meth:`local_entropies` and :meth:`local_formation_entropies` need; at most one spatial
        chunk's descriptors are alive at a time either way.
        """
        from .parallel import dask_descriptor_passes, descriptor_pass

        execution = self._execution()
        weights = self.coef_ if local else None
        todo = [atoms for atoms in structures if self._cached_pass(atoms, local) is None]
        if not todo:
            return
        provider = self.descriptor_provider()
        if execution["scheduler"] is not None:
            results = dask_descriptor_passes(
                execution["scheduler"], provider, todo, weights=weights, chunk_size=execution["chunk_size"]
            )
        else:
            results = [
                descriptor_pass(
                    provider, atoms, weights=weights, chunk_size=execution["chunk_size"],
                    workers=execution["workers"], executor=execution["executor"],
                )
                for atoms in todo
            ]
        for atoms, result in zip(todo, results):
            self._store_pass(atoms, result, weights, room=2 * len(structures))

    def _pass(self, atoms: Atoms, local: bool = False):
        cached = self._cached_pass(atoms, local)
        if cached is None:
            self.prefetch([atoms], local=local)
            cached = self._cached_pass(atoms, local)
        return cached

    def descriptor_sum(self, atoms: Atoms) -> np.ndarray:
        """Σ_i D_i of ``atoms``, shape (dim,).

        Evaluated in spatial chunks (on the workers or cluster of :meth:`set_execution`); a perfect
        Bravais lattice costs one small cell (Σ D = N D_perfect). The last few structures are
        cached by an exact digest of species, cell, positions and pbc (bulk references and the
        S / S_f pair of one structure recur in a calculator).
        """
        return np.asarray(self._pass(atoms).total, dtype=float).copy()

    def local_projections(self, atoms: Atoms) -> np.ndarray:
        """w · D_i for every atom, shape (N,), k_B at the training temperature (no constant c).

        Streamed over spatial chunks: the (N, dim) descriptor array is never formed.
        """
        self._check_fitted()
        return self._pass(atoms, local=True).projection.copy()

    # ------------------------------------------------------------------ structure level
    def predict_entropy(
        self, atoms: Atoms, temperature: float | None = None, return_std: bool = False
    ) -> float | tuple[float, float]:
        """Total vibrational entropy S(T) of ``atoms`` in eV/K (Eq. 14 plus c N).

        S(T) = S(T0) + n' k_B ln(T/T0), n' = 3N - 3 (periodic) or 3N - 6 (isolated). With
        ``return_std``, also the predictive standard deviation in eV/K (T-independent).
        """
        self._check_fitted()
        self._check_total_defined()
        self._check_atoms(atoms)
        temperature = self._temperature(temperature)
        x = self.descriptor_sum(atoms)
        mean, std = self.predict(x[None, :], return_std=True, n_atoms=[len(atoms)])
        shift = n_vibrational_modes(atoms) * np.log(temperature / self.temperature)
        entropy = float(mean[0] + shift) * KB_EV_PER_K
        return (entropy, float(std[0]) * KB_EV_PER_K) if return_std else entropy

    def formation_mode_excess(self, atoms: Atoms, bulk: Atoms) -> float:
        """n'_d - (N_d/N_b) n'_b, the T-dependent mode-count term of S_f (3(N_d/N_b - 1) periodic)."""
        return n_vibrational_modes(atoms) - len(atoms) / len(bulk) * n_vibrational_modes(bulk)

    def predict_formation_entropy(
        self,
        atoms: Atoms,
        bulk: Atoms,
        temperature: float | None = None,
        return_std: bool = False,
    ) -> float | tuple[float, float]:
        """Formation entropy S_f(T) = w · (Σ D^d - (N_d/N_b) Σ D^b) (Eq. 15) in eV/K.

        ``bulk`` is the perfect lattice filling the same cell (same volume and strain).
        S_f(T) = S_f(T0) + (n'_d - (N_d/N_b) n'_b) k_B ln(T/T0). With ``return_std``, also the
        predictive standard deviation in eV/K.
        """
        self._check_fitted()
        self._check_atoms(atoms)
        self._check_atoms(bulk)
        self._check_same_cell(atoms, bulk)
        temperature = self._temperature(temperature)
        x = formation_features(
            self.descriptor_sum(atoms),
            len(atoms),
            self.descriptor_sum(bulk),
            len(bulk),
        )
        mean, std = self.predict(x[None, :], return_std=True, n_atoms=[0.0])
        shift = self.formation_mode_excess(atoms, bulk) * np.log(temperature / self.temperature)
        entropy = float(mean[0] + shift) * KB_EV_PER_K
        return (entropy, float(std[0]) * KB_EV_PER_K) if return_std else entropy

    def local_entropies(self, atoms: Atoms, temperature: float | None = None) -> np.ndarray:
        """Per-atom entropies s_i = w · D_i + c (Eq. 13), shape (N,), eV/K; Σ_i s_i = S.

        The temperature shift n' k_B ln(T/T0) is shared equally (n'/N per atom), which is exact
        for a single element (the zero modes weigh 1/N on every atom).
        """
        self._check_fitted()
        self._check_total_defined()
        self._check_atoms(atoms)
        temperature = self._temperature(temperature)
        per_atom = self.local_projections(atoms) + self.per_atom_constant_
        shift = n_vibrational_modes(atoms) / len(atoms) * np.log(temperature / self.temperature)
        return (per_atom + shift) * KB_EV_PER_K

    def local_formation_entropies(
        self, atoms: Atoms, bulk: Atoms, temperature: float | None = None
    ) -> np.ndarray:
        """Local formation contributions w · (D_i - <D>_b), shape (N_d,), eV/K; they sum to S_f.

        <D>_b = Σ D^b / N_b is the mean bulk descriptor of the reference cell.
        """
        self._check_fitted()
        self._check_atoms(atoms)
        self._check_same_cell(atoms, bulk)
        temperature = self._temperature(temperature)
        mean_bulk = self.descriptor_sum(bulk) / len(bulk)
        per_atom = self.local_projections(atoms) - mean_bulk @ self.coef_
        shift_per_atom = (
            n_vibrational_modes(atoms) / len(atoms) - n_vibrational_modes(bulk) / len(bulk)
        ) * np.log(temperature / self.temperature)
        return (per_atom + shift_per_atom) * KB_EV_PER_K

    def entropy_gradient(self, atoms: Atoms) -> np.ndarray:
        """∂S/∂r_k = w · ∂(Σ_i D_i)/∂r_k, shape (N, 3), eV/K/Å (T-independent; c drops out).

        The same gradient is that of S_f at fixed bulk reference.
        """
        self._check_fitted()
        self._check_atoms(atoms)
        provider = self.descriptor_provider()
        if not provider.has_gradient:
            raise DescriptorError(
                f"the {provider!r} descriptor has no analytic gradient: entropic forces and "
                "free-energy forces need a model whose descriptor has one (e.g. "
                "fe-mendelev2003-afs); use mode='entropy' or another model"
            )
        return np.asarray(provider.vjp(atoms, self.coef_)) * KB_EV_PER_K
