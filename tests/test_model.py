"""The LDML estimator (Eq. 13-15): fit, extensivity, formation identity, std, T shift."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import molecule
from ase.units import kB
from ldml_helpers import A0_CU, RadialPolyDescriptor, cu_bulk, defect_cells
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import BayesianRidge

from ase_vibentropy.errors import CellMismatchError, ModelDomainError
from ase_vibentropy.model import LDMLModel, UnderdeterminedFitWarning, formation_features
from ase_vibentropy.predictor import EntropyPredictor

W_TRUE = np.array([0.8, -1.7, 2.5])
C_TRUE = 1.9  # k_B per atom


def descriptor_sum(desc, atoms):
    """Σ_i D_i written as a plain loop over atoms."""
    total = np.zeros(desc.dim)
    for row in desc.compute(atoms):
        total += row
    return total


def joint_rows(desc, rng, noise=0.0):
    """Formation rows (ΔD, 0; S_f) and bulk total rows (Σ D^b, N_b; S_b) of linear entropies."""
    X, y, n = [], [], []
    for strain in (-0.01, 0.0, 0.01, 0.02):
        ref = cu_bulk(2, strain)
        xb = descriptor_sum(desc, ref)
        X.append(xb)
        y.append(xb @ W_TRUE + C_TRUE * len(ref))
        n.append(len(ref))
    for _, strain, atoms in defect_cells(rng):
        ref = cu_bulk(2, strain)
        xd, xb = descriptor_sum(desc, atoms), descriptor_sum(desc, ref)
        s_d = xd @ W_TRUE + C_TRUE * len(atoms)
        s_b = xb @ W_TRUE + C_TRUE * len(ref)
        X.append(xd - len(atoms) / len(ref) * xb)
        y.append(s_d - len(atoms) / len(ref) * s_b + noise * rng.standard_normal())
        n.append(0.0)
    return np.array(X), np.array(y), np.array(n)


@pytest.fixture(scope="module")
def desc():
    return RadialPolyDescriptor(dim=3)


@pytest.fixture(scope="module")
def data(desc):
    return joint_rows(desc, np.random.default_rng(7), noise=1e-3)


@pytest.fixture(scope="module")
def joint_model(desc, data):
    X, y, n = data
    return LDMLModel(descriptor=desc, target="joint", element="Cu", lattice="fcc", a0=A0_CU).fit(
        X, y, n_atoms=n, is_total=n > 0
    )


def test_fit_recovers_the_weights_of_entropies_linear_in_the_descriptor(joint_model):
    np.testing.assert_allclose(joint_model.coef_, W_TRUE, rtol=0, atol=0.01)
    assert joint_model.per_atom_constant_ == pytest.approx(C_TRUE, abs=0.01)
    assert joint_model.metrics_["fit_rmse_kB"] < 5e-3


def test_scaled_fit_predicts_exactly_what_bayesian_ridge_predicts_on_scaled_columns(data, desc):
    X, y, n = data
    model = LDMLModel(descriptor=desc, target="total").fit(X, y, n_atoms=n)
    design = np.column_stack([X, n])
    scale = np.sqrt(np.mean(design**2, axis=0))
    reference = BayesianRidge(fit_intercept=False).fit(design / scale, y)
    X_new = X[:5] * 1.3
    ref_mean, ref_std = reference.predict(design[:5] * 1.3 / scale, return_std=True)
    mean, std = model.predict(X_new, return_std=True, n_atoms=n[:5] * 1.3)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(std, ref_std, rtol=1e-10)


def test_unscaled_fit_is_plain_bayesian_ridge_without_intercept(data, desc):
    X, y, n = data
    model = LDMLModel(descriptor=desc, target="total", scale_features=False).fit(X, y, n_atoms=n)
    reference = BayesianRidge(fit_intercept=False).fit(np.column_stack([X, n]), y)
    np.testing.assert_allclose(model.coef_, reference.coef_[:3], rtol=1e-12)
    np.testing.assert_allclose(model.sigma_, reference.sigma_, rtol=1e-12)


def test_joint_fit_is_the_batch_gaussian_posterior_with_the_formation_fit_precisions(data, desc):
    # The joint fit learns alpha, lambda and w on the formation rows, then conditions on the
    # total rows. With alpha and lambda fixed, the Gaussian posterior mean over all rows at once
    # is (lambda I + alpha AᵀA)⁻¹ alpha Aᵀ y: the sequential update must reproduce it.
    X, y, n = data
    model = LDMLModel(descriptor=desc, target="joint").fit(X, y, n_atoms=n, is_total=n > 0)
    design = np.column_stack([X, n])
    formation = n == 0
    scale = np.sqrt(np.mean(design[formation] ** 2, axis=0))
    scale[scale == 0.0] = 1.0
    first = BayesianRidge(fit_intercept=False).fit(design[formation] / scale, y[formation])
    A = design / scale
    # each row kind with its own noise precision: alpha, and the totals' alpha_t
    row_precision = np.where(formation, first.alpha_, model.total_alpha_)
    precision = first.lambda_ * np.eye(A.shape[1]) + A.T @ (row_precision[:, None] * A)
    batch_mean = np.linalg.solve(precision, A.T @ (row_precision * y)) / scale
    np.testing.assert_allclose(model.coef_, batch_mean[:-1], rtol=1e-7, atol=1e-9)
    assert model.per_atom_constant_ == pytest.approx(batch_mean[-1], rel=1e-7)
    batch_cov = np.linalg.inv(precision) / np.outer(scale, scale)
    np.testing.assert_allclose(model.sigma_, batch_cov, rtol=1e-6, atol=1e-12 * abs(batch_cov).max())


def test_the_totals_noise_is_their_evidence_maximum_and_keeps_the_formation_fit():
    # Formation rows exactly linear up to 0.05 k_B of noise; totals with an extra 5 k_B scatter
    # that no linear model can represent (the finite-cell terms of real totals).
    from ase_vibentropy.model import total_noise_precision

    rng = np.random.default_rng(11)
    n_params = 6
    w_true = rng.normal(size=n_params)
    X = rng.normal(size=(400, n_params))
    y = X @ w_true + 0.05 * rng.normal(size=400)
    bulk = 1.0 + 0.1 * rng.normal(size=(300, n_params))
    sizes = rng.integers(100, 2000, size=300).astype(float)
    A = sizes[:, None] * bulk
    y_total = A @ w_true + 5.0 * rng.normal(size=300)
    formation = BayesianRidge(fit_intercept=False).fit(X, y)
    precision = total_noise_precision(A, y_total, formation.coef_, formation.sigma_, formation.alpha_)
    assert 1.0 / np.sqrt(precision) == pytest.approx(5.0, rel=0.15)
    # brute force: the evidence of the totals on a grid of noise levels peaks there too
    grid = np.geomspace(0.5, 50.0, 400)
    cov_t = A @ formation.sigma_ @ A.T
    r = y_total - A @ formation.coef_

    def log_evidence(sd):
        c = cov_t + sd**2 * np.eye(len(r))
        sign, logdet = np.linalg.slogdet(c)
        return -0.5 * (r @ np.linalg.solve(c, r) + logdet)

    best = grid[np.argmax([log_evidence(sd) for sd in grid])]
    assert 1.0 / np.sqrt(precision) == pytest.approx(best, rel=0.02)
    # exact totals: never less noisy than the formation rows
    exact = total_noise_precision(A, A @ formation.coef_, formation.coef_, formation.sigma_, formation.alpha_)
    assert exact == pytest.approx(formation.alpha_, rel=1e-4)


def test_a_joint_fit_with_noisy_totals_predicts_formation_rows_as_a_formation_fit(desc):
    rng = np.random.default_rng(5)
    X, y, n = joint_rows(desc, rng, noise=0.05)
    total = n > 0
    y = y.copy()
    y[total] += 5.0 * rng.normal(size=int(total.sum()))  # totals far noisier than the rest
    joint = LDMLModel(descriptor=desc, target="joint").fit(X, y, n_atoms=n, is_total=total)
    formation = LDMLModel(descriptor=desc, target="formation").fit(X[~total], y[~total])
    assert joint.total_alpha_ < 0.1 * joint.alpha_
    drift = np.abs(joint.predict(X[~total]) - formation.predict(X[~total])).max()
    assert drift < 0.1 * np.sqrt(1.0 / joint.alpha_)
    # the std of a total row carries the totals' own noise, several k_B: far above the formation std
    _, std_total = joint.predict(X[total][:1], return_std=True, n_atoms=n[total][:1], is_total=True)
    _, std_formation = joint.predict(X[~total][:1], return_std=True)
    assert std_total[0] > 10.0 * std_formation[0]


def test_conditioning_on_totals_stays_exact_when_the_formation_rows_are_interpolated():
    # More weights than formation rows (the fit interpolates: alpha huge) and perfect-lattice
    # totals of three cell sizes that are exactly proportional: the regime of a 91-dimensional
    # descriptor trained on a small subset. Reference: the batch posterior mean and covariance
    # solved in 60-digit arithmetic.
    import mpmath

    from ase_vibentropy.model import _condition_on_totals

    rng = np.random.default_rng(7)
    n_params = 12
    X = np.column_stack([rng.normal(size=(5, n_params - 1)), np.zeros(5)])
    y = rng.normal(size=5)
    bulk_row = np.append(rng.normal(size=n_params - 1), 1.0)
    sizes = np.array([54.0, 128.0, 250.0])
    A = sizes[:, None] * bulk_row
    y_total = 3.1 * sizes
    alpha, lam = 1e12, 1e-3
    mean, cov = _condition_on_totals(X, y, A, y_total, noise_precision=alpha, weight_precision=lam)

    mpmath.mp.dps = 60
    design = mpmath.matrix(np.vstack([X, A]).tolist())
    targets = mpmath.matrix(np.concatenate([y, y_total]).tolist())
    precision = lam * mpmath.eye(n_params) + alpha * design.T * design
    exact_cov = precision**-1
    exact_mean = exact_cov * (alpha * design.T * targets)
    exact_mean = np.array([float(v) for v in exact_mean])
    exact_cov = np.array(exact_cov.tolist(), dtype=float)
    np.testing.assert_allclose(mean, exact_mean, rtol=1e-6, atol=1e-9 * abs(exact_mean).max())
    np.testing.assert_allclose(cov, exact_cov, rtol=1e-5, atol=1e-9 * abs(exact_cov).max())


def test_a_component_that_counts_atoms_does_not_turn_round_off_into_weights():
    # A descriptor component equal to a constant per atom (scattering's l = 0 components) has
    # formation features D_d - (N_d/N_b) D_b that are zero up to round-off (~1e-13). Scaled to
    # unit size, that round-off used to become a feature with weights of 1e40 and S_f of 1e20.
    X, y, n = joint_rows(RadialPolyDescriptor(dim=3), np.random.default_rng(3), noise=1e-3)
    formation = n == 0
    rng = np.random.default_rng(4)
    # two such components (one per wavelet scale), each with its own round-off
    counts = [np.where(formation, 1e-13 * rng.standard_normal(len(n)), n / np.sqrt(4 * np.pi))
              for _ in range(2)]
    X5 = np.column_stack([X, *counts])
    model = LDMLModel(descriptor=RadialPolyDescriptor(dim=5), target="joint").fit(X5, y, n_atoms=n, is_total=n > 0)
    # the data are exactly linear in the three real components (plus 1e-3 noise)
    assert np.all(np.isfinite(model.coef_)) and np.abs(model.coef_[3:]).max() < 1e3
    np.testing.assert_allclose(model.predict(X5[formation]), y[formation], atol=0.02)
    np.testing.assert_allclose(model.coef_[:3], W_TRUE, rtol=0.02)


def test_per_atom_constant_cancels_exactly_in_formation_rows(data, desc):
    X, y, n = data
    formation = n == 0
    with_c = LDMLModel(descriptor=desc, per_atom_constant=True).fit(X[formation], y[formation])
    without = LDMLModel(descriptor=desc, per_atom_constant=False).fit(X[formation], y[formation])
    np.testing.assert_allclose(with_c.predict(X), without.predict(X), rtol=1e-12, atol=1e-12)
    assert with_c.per_atom_constant_ == 0.0


def test_total_entropy_and_formation_entropy_are_extensive(joint_model, rng):
    _, strain, defect = defect_cells(rng)[4]
    ref = cu_bulk(2, strain)
    s1, sf1 = EntropyPredictor(joint_model).predict_entropy(defect), EntropyPredictor(joint_model).predict_formation_entropy(defect, ref)
    s8 = EntropyPredictor(joint_model).predict_entropy(defect * (2, 2, 2))
    sf8 = EntropyPredictor(joint_model).predict_formation_entropy(defect * (2, 2, 2), ref * (2, 2, 2))
    assert s8 == pytest.approx(8 * s1, rel=1e-12)
    assert sf8 == pytest.approx(8 * sf1, rel=1e-10)


def test_formation_entropy_is_the_weighted_descriptor_difference_of_eq15(joint_model, desc, rng):
    _, strain, defect = defect_cells(rng)[7]
    ref = cu_bulk(2, strain)
    n_d, n_b = len(defect), len(ref)
    # Eq. 15 with averages: S_f = N_d w · (<D>_d - <D>_b)
    mean_d = descriptor_sum(desc, defect) / n_d
    mean_b = descriptor_sum(desc, ref) / n_b
    expected = n_d * joint_model.coef_ @ (mean_d - mean_b) * kB
    assert EntropyPredictor(joint_model).predict_formation_entropy(defect, ref) == pytest.approx(expected, rel=1e-12)
    # Eq. 3: the same as S_d - (N_d/N_b) S_b from total predictions (c cancels).
    via_totals = EntropyPredictor(joint_model).predict_entropy(defect) - n_d / n_b * EntropyPredictor(joint_model).predict_entropy(ref)
    assert EntropyPredictor(joint_model).predict_formation_entropy(defect, ref) == pytest.approx(via_totals, rel=1e-9)
    np.testing.assert_allclose(
        formation_features(descriptor_sum(desc, defect), n_d, descriptor_sum(desc, ref), n_b),
        n_d * (mean_d - mean_b),
        rtol=1e-12,
    )


def test_local_entropies_sum_to_the_total_and_local_formation_terms_to_sf(joint_model, rng):
    _, strain, defect = defect_cells(rng)[1]
    ref = cu_bulk(2, strain)
    for temperature in (300.0, 900.0):
        local = EntropyPredictor(joint_model).local_entropies(defect, temperature=temperature)
        assert local.shape == (len(defect),)
        assert local.sum() == pytest.approx(EntropyPredictor(joint_model).predict_entropy(defect, temperature), rel=1e-12)
        local_f = EntropyPredictor(joint_model).local_formation_entropies(defect, ref, temperature=temperature)
        assert local_f.sum() == pytest.approx(
            EntropyPredictor(joint_model).predict_formation_entropy(defect, ref, temperature), rel=1e-9, abs=1e-12
        )
    # In the perfect lattice every atom is equivalent and its formation contribution is zero.
    np.testing.assert_allclose(EntropyPredictor(joint_model).local_formation_entropies(ref, ref), 0.0, atol=1e-15)


def test_temperature_shift_is_exact(joint_model, rng):
    _, strain, defect = defect_cells(rng)[0]  # a vacancy: N_d = 31, N_b = 32
    ref = cu_bulk(2, strain)
    assert (len(defect), len(ref)) == (31, 32)
    ratio = np.log(1200.0 / 300.0)
    ds = EntropyPredictor(joint_model).predict_entropy(defect, 1200.0) - EntropyPredictor(joint_model).predict_entropy(defect, 300.0)
    assert ds == pytest.approx((3 * 31 - 3) * kB * ratio, rel=1e-10)
    dsf = EntropyPredictor(joint_model).predict_formation_entropy(defect, ref, 1200.0) - EntropyPredictor(joint_model).predict_formation_entropy(
        defect, ref, 300.0
    )
    assert dsf == pytest.approx(3 * (31 / 32 - 1) * kB * ratio, rel=1e-8)


def test_isolated_cluster_shifts_with_3n_minus_6_modes(desc):
    cluster = molecule("C6H6")
    cluster.symbols = ["Cu"] * 12
    cluster.positions *= 2.0
    X = np.array([descriptor_sum(desc, cluster) * f for f in (1.0, 1.1, 0.9, 1.2)])
    model = LDMLModel(descriptor=desc, target="total").fit(X, X @ W_TRUE + 12 * C_TRUE, n_atoms=[12] * 4)
    delta = EntropyPredictor(model).predict_entropy(cluster, 600.0) - EntropyPredictor(model).predict_entropy(cluster, 300.0)
    assert delta == pytest.approx((3 * 12 - 6) * kB * np.log(2.0), rel=1e-10)


def test_std_is_larger_far_outside_the_training_set(joint_model, data):
    X, _, n = data
    _, std_in = joint_model.predict(X, return_std=True, n_atoms=n, is_total=n > 0)
    far = X[n > 0].mean(axis=0) * 30.0  # a cell 30 times larger than any in training ...
    far[1] *= -1.0  # ... with a descriptor direction never seen
    _, std_far = joint_model.predict(far[None, :], return_std=True, n_atoms=[30 * 32], is_total=True)
    assert std_far[0] > 10 * std_in.max()
    # The std never drops below the fitted noise level sqrt(1/alpha).
    assert std_in.min() >= np.sqrt(1 / joint_model.alpha_)


def test_entropy_gradient_matches_finite_differences(joint_model, rng):
    _, _, defect = defect_cells(rng)[5]
    grad = EntropyPredictor(joint_model).entropy_gradient(defect)
    assert grad.shape == (len(defect), 3)
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (len(defect) - 1, 2)]:
        plus, minus = defect.copy(), defect.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = (EntropyPredictor(joint_model).predict_entropy(plus) - EntropyPredictor(joint_model).predict_entropy(minus)) / (2 * h)
        assert grad[atom, axis] == pytest.approx(fd, rel=1e-6, abs=1e-12)
    # Translation invariance: the gradient sums to zero.
    np.testing.assert_allclose(grad.sum(axis=0), 0.0, atol=1e-12)


def test_formation_only_model_refuses_total_entropies(data, desc, rng):
    X, y, n = data
    model = LDMLModel(descriptor=desc, target="formation").fit(X[n == 0], y[n == 0])
    _, strain, defect = defect_cells(rng)[0]
    with pytest.raises(ModelDomainError, match="formation entropies only"):
        EntropyPredictor(model).predict_entropy(defect)
    with pytest.raises(ModelDomainError, match="target='joint'"):
        EntropyPredictor(model).local_entropies(defect)
    assert np.isfinite(EntropyPredictor(model).predict_formation_entropy(defect, cu_bulk(2, strain)))


def test_total_model_needs_the_atom_count_column(data, desc):
    X, y, n = data
    with pytest.raises(ModelDomainError, match="need n_atoms"):
        LDMLModel(descriptor=desc, target="joint").fit(X, y, is_total=n > 0)
    with pytest.raises(ModelDomainError, match="the kind of every row"):
        LDMLModel(descriptor=desc, target="joint").fit(X, y, n_atoms=n)


def test_fewer_rows_than_parameters_warns_and_still_fits(desc):
    wide = RadialPolyDescriptor(dim=8)
    X = np.array([descriptor_sum(wide, cu_bulk(2, s)) for s in (-0.01, 0.0, 0.01)])
    with pytest.warns(UnderdeterminedFitWarning, match="3 training rows for 9 parameters"):
        model = LDMLModel(descriptor=wide, target="total").fit(X, X.sum(axis=1), n_atoms=[32] * 3)
    assert np.all(np.isfinite(model.predict(X, n_atoms=[32] * 3)))


def test_bulk_in_another_cell_is_refused(joint_model, rng):
    # S_f compares with the perfect lattice in the SAME cell (Eq. 3); an unstrained bulk next to
    # a strained defect cell would silently mix a strain entropy into S_f.
    _, _, defect = defect_cells(rng)[-1]  # strain +2 %
    with pytest.raises(CellMismatchError, match="same cell"):
        EntropyPredictor(joint_model).predict_formation_entropy(defect, cu_bulk(2, 0.0))


def test_structure_with_a_foreign_element_is_refused(joint_model):
    atoms = cu_bulk(2)
    atoms[0].symbol = "Ni"
    with pytest.raises(ModelDomainError, match="trained for Cu only"):
        EntropyPredictor(joint_model).predict_formation_entropy(atoms, cu_bulk(2))


def test_estimator_follows_scikit_learn_conventions(data, desc):
    X, y, n = data
    model = LDMLModel(descriptor=desc, target="joint", alpha_1=1e-5)
    assert model.get_params()["alpha_1"] == 1e-5
    assert not any(k.endswith("_") for k in vars(model))  # __init__ stores parameters only
    with pytest.raises(NotFittedError):
        model.predict(X)
    assert model.fit(X, y, n_atoms=n, is_total=n > 0) is model
    copy = clone(model).set_params(alpha_1=1e-6)
    assert copy.alpha_1 == 1e-6 and not hasattr(copy, "coef_")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LDMLModel(descriptor=desc, target="formation").fit(X[n == 0], y[n == 0]).score(X[n == 0], y[n == 0])


#: scikit-learn checks the formation-target estimator does not pass, and why.
CHECK_ESTIMATOR_EXCEPTIONS: dict[str, str] = {}


def test_formation_estimator_passes_scikit_learn_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(LDMLModel(descriptor="none"), on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert failed == set(CHECK_ESTIMATOR_EXCEPTIONS), {
        r["check_name"]: str(r["exception"])[:200] for r in results if r["status"] == "failed"
    }
    assert len(results) > 40


def test_score_is_r2_for_joint_and_total_models_given_the_row_kinds(joint_model, data):
    from sklearn.metrics import r2_score

    X, y, n = data
    kinds = n > 0
    expected = r2_score(y, joint_model.predict(X, n_atoms=n, is_total=kinds))
    assert joint_model.score(X, y, n_atoms=n, is_total=kinds) == pytest.approx(expected, rel=1e-14)
    assert expected > 0.999
    with pytest.raises(ModelDomainError, match="is_total"):
        joint_model.predict(X, n_atoms=n)  # the kinds are never guessed from the counts


def test_joint_fit_without_per_atom_constant_still_conditions_on_the_totals(data, desc):
    # The joint fit is a formation fit conditioned on the totals, whatever the design columns:
    # without the constant column the totals still move the bulk part of w, if only a little:
    # they hold C N, which this design cannot represent, so their fitted noise is large.
    X, y, n = data
    kinds = n > 0
    joint = LDMLModel(descriptor=desc, target="joint", per_atom_constant=False).fit(X, y, is_total=kinds)
    plain = LDMLModel(descriptor=desc, target="formation", per_atom_constant=False).fit(X[~kinds], y[~kinds])
    assert np.abs(joint.coef_ - plain.coef_).max() > 1e-9  # far above round-off
    assert joint.total_alpha_ < 1e-3 * joint.alpha_
    first = BayesianRidge(fit_intercept=False).fit(X[~kinds] / np.sqrt(np.mean(X[~kinds] ** 2, axis=0)), y[~kinds])
    assert joint.alpha_ == pytest.approx(first.alpha_, rel=1e-10)


def test_fit_recovers_known_weights_with_the_afs_descriptor_and_stays_extensive(rng):
    from ase_vibentropy import descriptors

    afs = descriptors.get("afs", n_max=3, l_max=2, r_cut=4.0)
    w_true = rng.normal(size=afs.dim)
    cells = []
    for strain in (-0.01, 0.0, 0.01, 0.02):
        for _ in range(3):
            cell = cu_bulk(2, strain)
            cell.rattle(0.08, seed=int(rng.integers(1 << 30)))
            cells.append(cell)
    cells += [atoms for _, _, atoms in defect_cells(rng)]
    X = np.array([afs.compute_sum(c) for c in cells])
    n = np.array([len(c) for c in cells], dtype=float)
    model = LDMLModel(descriptor=afs, target="total", element="Cu").fit(X, X @ w_true + 1.5 * n, n_atoms=n)
    np.testing.assert_allclose(model.coef_, w_true, atol=1e-3 * np.abs(w_true).max())
    assert model.per_atom_constant_ == pytest.approx(1.5, abs=1e-3)

    _, strain, defect = defect_cells(rng)[2]
    ref = cu_bulk(2, strain)
    assert EntropyPredictor(model).predict_entropy(defect * (2, 2, 2)) == pytest.approx(8 * EntropyPredictor(model).predict_entropy(defect), rel=1e-10)
    assert EntropyPredictor(model).predict_formation_entropy(defect * (2, 2, 2), ref * (2, 2, 2)) == pytest.approx(
        8 * EntropyPredictor(model).predict_formation_entropy(defect, ref), rel=1e-8
    )
    h = 1e-5
    plus, minus = defect.copy(), defect.copy()
    plus.positions[2, 1] += h
    minus.positions[2, 1] -= h
    fd = (EntropyPredictor(model).predict_entropy(plus) - EntropyPredictor(model).predict_entropy(minus)) / (2 * h)
    assert EntropyPredictor(model).entropy_gradient(defect)[2, 1] == pytest.approx(fd, rel=1e-5)


def test_descriptor_sums_are_reused_for_the_same_structure_and_redone_when_it_moves(data):
    class Counting(RadialPolyDescriptor):
        calls = 0

        def _compute_centers(self, atoms, centers):
            type(self).calls += 1
            return super()._compute_centers(atoms, centers)

    X, y, n = data
    model = LDMLModel(descriptor=Counting(dim=3), target="joint").fit(X, y, n_atoms=n, is_total=n > 0)
    defect, ref = cu_bulk(2, 0.01), cu_bulk(2, 0.01)
    del defect[3]
    predictor = EntropyPredictor(model)
    first = predictor.predict_formation_entropy(defect, ref)
    predictor.predict_entropy(defect)
    assert predictor.predict_formation_entropy(defect, ref) == first
    assert Counting.calls == 2  # one defect sum and one bulk sum
    defect.positions[0, 0] += 0.01
    assert predictor.predict_formation_entropy(defect, ref) != first
    assert Counting.calls == 3


def test_joint_fit_without_any_total_row_is_refused(data, desc):
    X, y, n = data
    formation = n == 0
    with pytest.raises(ModelDomainError, match="1 total-entropy row"):
        LDMLModel(descriptor=desc, target="joint").fit(
            X[formation], y[formation], n_atoms=n[formation], is_total=~formation[formation]
        )
