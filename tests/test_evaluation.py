"""Validation tools: RMSE/MAE, repeated random splits, transfer test (paper Eq. 22-23, Fig. 6)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ase_vibentropy.errors import DatabaseError
from ase_vibentropy.evaluation import (
    attempt_frequency_metrics,
    calibrate_std,
    evaluate,
    mae,
    regression_metrics,
    repeated_random_splits,
    rmse,
    transfer_test,
)
from ase_vibentropy.features import TrainingSet
from ase_vibentropy.model import LDMLModel

W = np.array([1.5, -0.5, 0.25])


def linear_set(rng, n=60, noise=0.3, descriptor_hash="abc", n_anchor=0):
    """Formation-like rows y = X w + noise, families alternating V1/I1, plus anchor total rows."""
    X = rng.normal(size=(n, 3)) * [3.0, 2.0, 5.0]
    y = X @ W + noise * rng.standard_normal(n)
    family = np.array(["V1", "I1"] * (n // 2))
    kind = np.array(["formation"] * n)
    n_atoms = np.zeros(n)
    anchor = np.zeros(n, dtype=bool)
    if n_anchor:
        Xb = rng.normal(size=(n_anchor, 3)) + 50.0
        X = np.vstack([X, Xb])
        y = np.concatenate([y, Xb @ W + 2.0 * 100])
        family = np.concatenate([family, ["bulk"] * n_anchor])
        kind = np.concatenate([kind, ["total"] * n_anchor])
        n_atoms = np.concatenate([n_atoms, [100.0] * n_anchor])
        anchor = np.concatenate([anchor, np.ones(n_anchor, dtype=bool)])
    return TrainingSet(
        X=X, y=y, n_atoms=n_atoms, kind=kind, family=family, row_id=np.arange(len(y)),
        anchor=anchor, temperature=300.0, descriptor_hash=descriptor_hash,
    )


def test_rmse_and_mae_match_hand_computed_values():
    exact, predicted = [1.0, 2.0, 3.0, 4.0], [1.0, 5.0, -1.0, 4.0]  # errors 0, 3, -4, 0
    assert rmse(exact, predicted) == pytest.approx(np.sqrt(25.0 / 4))
    assert mae(exact, predicted) == pytest.approx(7.0 / 4)
    assert regression_metrics(exact, predicted)["n"] == 4


def test_attempt_frequency_metrics_are_the_ratios_of_vineyard_frequencies():
    from ase_vibentropy.harmonic.saddle import vineyard_frequency_THz

    exact = np.array([0.0, 1.0, -2.0, 3.0, 0.5])
    predicted = exact + np.array([0.1, -0.29, 0.31, 0.0, -1.0])
    ratio = np.array([vineyard_frequency_THz(p, 450.0) / vineyard_frequency_THz(e, 450.0)
                      for p, e in zip(predicted, exact)])
    factor = np.maximum(ratio, 1.0 / ratio)
    metrics = attempt_frequency_metrics(exact, predicted)
    assert metrics["nu_factor"] == 1.35
    assert metrics["nu_within_factor"] == pytest.approx(np.mean(factor <= 1.35))  # 3 of 5
    assert metrics["nu_within_factor"] == pytest.approx(0.6)
    assert metrics["nu_factor_median"] == pytest.approx(np.median(factor))
    assert metrics["nu_factor_q90"] == pytest.approx(np.quantile(factor, 0.9))
    assert attempt_frequency_metrics(exact, predicted, factor=3.0)["nu_within_factor"] == 1.0


def test_cross_validation_coverage_of_a_correct_model_is_that_of_a_gaussian(rng):
    data = linear_set(rng, n=400, noise=0.3)
    result = repeated_random_splits(LDMLModel(descriptor="none"), data, [0.3], repeats=10, progress=False)
    # errors of a well-specified Bayesian linear fit are Gaussian: 95.4 % fall within 2 std
    assert result.test_coverage_mean[0] == pytest.approx(0.954, abs=0.03)
    assert result.test_nu_within_factor_mean is None  # formation rows: no attempt frequencies
    jumps = linear_set(rng, n=400, noise=0.3)
    jumps.kind[:] = "migration"
    result = repeated_random_splits(LDMLModel(descriptor="none", target="migration"), jumps, [0.3],
                                    repeats=10, progress=False)
    # |error| <= ln 1.35 = 0.300 k_B for Gaussian errors of std 0.3 (plus the fit's own spread)
    assert result.test_nu_within_factor_mean[0] == pytest.approx(0.68, abs=0.05)


def test_test_error_of_a_correct_linear_model_approaches_the_noise_level(rng):
    data = linear_set(rng, n=400, noise=0.3)
    result = repeated_random_splits(LDMLModel(descriptor="none"), data, [0.2, 0.5], repeats=10, progress=False)
    np.testing.assert_allclose(result.test_rmse_mean, 0.3, rtol=0.15)
    np.testing.assert_allclose(result.train_rmse_mean, 0.3, rtol=0.1)
    assert np.all(result.test_rmse_std > 0) and result.repeats == 10 and result.n_rows == 400


def test_train_error_is_below_test_error_when_rows_are_few(rng):
    # With k parameters and m training rows, E[train MSE] = σ²(1 - k/m), E[test MSE] ≈ σ²(1 + k/m).
    data = linear_set(rng, n=30, noise=0.3)
    result = repeated_random_splits(LDMLModel(descriptor="none"), data, [0.5], repeats=50, progress=False)
    assert result.train_rmse_mean[0] < 0.3 < result.test_rmse_mean[0]


def test_splits_are_reproducible_with_a_seed(rng):
    data = linear_set(rng, n=40)
    a = repeated_random_splits(LDMLModel(descriptor="none"), data, [0.3], repeats=5, random_state=3, progress=False)
    b = repeated_random_splits(LDMLModel(descriptor="none"), data, [0.3], repeats=5, random_state=3, progress=False)
    assert a.to_dict() == b.to_dict()


class RecordingModel(LDMLModel):
    """LDMLModel that remembers the rows of every training set it sees (class-level log)."""

    seen: list = []

    def fit(self, X, y, n_atoms=None, is_total=None):
        type(self).seen.append(np.asarray(n_atoms).copy())
        return super().fit(X, y, n_atoms=n_atoms, is_total=is_total)


def test_anchor_rows_are_in_every_training_split_and_never_scored(rng):
    data = linear_set(rng, n=30, n_anchor=3)
    RecordingModel.seen = []
    result = repeated_random_splits(
        RecordingModel(descriptor="none", target="joint"), data, [0.5, 0.9], repeats=4, progress=False
    )
    assert len(RecordingModel.seen) == 8
    assert all(np.count_nonzero(n == 100.0) == 3 for n in RecordingModel.seen)
    assert result.n_rows == 30



class RowRecordingModel(LDMLModel):
    """LDMLModel that remembers which rows (first feature column = row index) it trains on and
    predicts (class-level logs)."""

    trained: list = []
    predicted: list = []

    def fit(self, X, y, n_atoms=None, is_total=None):
        type(self).trained.append(np.asarray(X)[:, 0].astype(int))
        return super().fit(X, y, n_atoms=n_atoms, is_total=is_total)

    def predict(self, X, return_std=False, n_atoms=None, is_total=None):
        type(self).predicted.append(np.asarray(X)[:, 0].astype(int))
        return super().predict(X, return_std=return_std, n_atoms=n_atoms, is_total=is_total)


def test_grouped_splits_never_put_one_group_on_both_sides(rng):
    data = linear_set(rng, n=60)
    data.X[:, 0] = np.arange(60)  # the row index, recorded by the model
    groups = np.repeat(np.arange(20), 3)[rng.permutation(60)]  # 20 groups of 3 rows, shuffled
    RowRecordingModel.trained, RowRecordingModel.predicted = [], []
    result = repeated_random_splits(RowRecordingModel(descriptor="none"), data, [0.25], repeats=5,
                                    progress=False, groups=groups)
    assert result.n_groups == 20 and result.n_rows == 60
    # predict is called on the training rows, then on the test rows, once per split
    tests = RowRecordingModel.predicted[1::2]
    for train, test in zip(RowRecordingModel.trained, tests):
        assert not set(groups[train]) & set(groups[test])
        assert len(set(groups[test])) == 5  # round(0.25 * 20) whole groups
        assert len(test) == 15 and len(train) == 45


def test_one_group_per_row_is_the_plain_row_split(rng):
    data = linear_set(rng, n=40, n_anchor=2)
    plain = repeated_random_splits(LDMLModel(descriptor="none", target="joint"), data, [0.3, 0.7],
                                   repeats=3, progress=False, random_state=5)
    grouped = repeated_random_splits(LDMLModel(descriptor="none", target="joint"), data, [0.3, 0.7],
                                     repeats=3, progress=False, random_state=5,
                                     groups=[f"row {41 - i}" for i in range(42)])
    # labels in any order, one per row: the same seed draws the same splits, so the numbers are
    # identical, not merely close
    for field in ("train_rmse_mean", "test_rmse_mean", "test_rmse_std", "test_mae_mean"):
        np.testing.assert_array_equal(getattr(grouped, field), getattr(plain, field))
    assert grouped.n_groups == plain.n_groups == 40


def test_groups_of_the_wrong_length_are_refused(rng):
    from ase_vibentropy.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="one label per row"):
        repeated_random_splits(LDMLModel(descriptor="none"), linear_set(rng, n=12), [0.5], repeats=1,
                               progress=False, groups=[0, 1, 2])

def test_underdetermined_splits_are_counted_not_warned(rng):
    data = linear_set(rng, n=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = repeated_random_splits(LDMLModel(descriptor="none"), data, [0.1, 0.9], repeats=3, progress=False)
    assert result.n_underdetermined.tolist() == [0, 3]  # 4 rows for 4 parameters vs 2 rows


def test_transfer_test_scores_the_other_database(rng):
    train, test = linear_set(rng, n=80, noise=0.1), linear_set(rng, n=50, noise=0.1)
    out = transfer_test(LDMLModel(descriptor="none"), train, test)
    assert out["test"]["n"] == 50 and out["test"]["rmse_kB"] < 0.2
    np.testing.assert_allclose(out["model"].coef_, W, atol=0.02)
    with pytest.raises(DatabaseError, match="different descriptors"):
        transfer_test(LDMLModel(descriptor="none"), train, linear_set(rng, descriptor_hash="xyz"))


def test_evaluate_reports_each_family(rng):
    data = linear_set(rng, n=40, noise=0.2, n_anchor=2)
    model = LDMLModel(descriptor="none", target="joint").fit(data.X, data.y, **data.row_kinds())
    out = evaluate(model, data)
    assert out["kind"] == "formation" and set(out["by_family"]) == {"V1", "I1"}
    assert out["overall"]["n"] == 40
    sel = data.family == "V1"
    assert out["by_family"]["V1"]["rmse_kB"] == pytest.approx(rmse(data.y[sel], out["predictions"][sel]))
    assert out["mean_std_kB"] > 0


def test_plots_are_written_and_a_missing_matplotlib_names_the_extra(rng, tmp_path, monkeypatch):
    import sys

    from ase_vibentropy.errors import MissingDependencyError
    from ase_vibentropy.plotting import crossval_plot, parity_plot

    data = linear_set(rng, n=20)
    parity_plot(data.y, data.y + 0.1, data.family, tmp_path / "p.png", std=np.full(20, 0.2))
    result = repeated_random_splits(LDMLModel(descriptor="none"), data, [0.3, 0.6], repeats=2, progress=False)
    crossval_plot(result, tmp_path / "cv.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "cv.png").read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(MissingDependencyError, match=r"ase-vibentropy\[plot\]"):
        parity_plot(data.y, data.y, data.family, tmp_path / "q.png")


def test_std_calibration_leaves_a_well_specified_model_alone(rng):
    # y = X w + Gaussian noise, the model's own assumptions: out-of-sample residuals are
    # N(0, std²), so 2 std covers ~95 % of them and the factor stays at 1
    data = linear_set(rng, n=400, noise=0.3)
    groups = np.repeat(np.arange(8), 50)
    result = calibrate_std(LDMLModel(descriptor="none"), data, groups)
    assert result["std_scale"] == 1.0
    assert 0.9 <= result["coverage_before"] <= 0.99 and result["n_groups"] == 8


def test_std_calibration_widens_the_std_to_cover_extrapolation(rng):
    # a curvature the linear features cannot follow (0.05 x0²), with the rows grouped by x0:
    # a held-out group at either end is an extrapolation whose error the Bayesian std (fitted
    # to the scatter inside the training range) underestimates; the factor restores coverage
    data = linear_set(rng, n=400, noise=0.3)
    x0 = data.X[:, 0]
    data.y[:] += 0.05 * x0**2
    groups = np.digitize(x0, np.quantile(x0, np.linspace(0, 1, 11)[1:-1]))
    result = calibrate_std(LDMLModel(descriptor="none"), data, groups, coverage=0.9)
    assert result["coverage_before"] < 0.88
    assert result["std_scale"] > 1.2
    assert result["coverage_after"] >= 0.9
    assert set(result["by_group"]) == {str(g) for g in range(10)}
    model = LDMLModel(descriptor="none").fit(data.X, data.y)
    _, std = model.predict(data.X[:5], return_std=True)
    model.std_scale_ = result["std_scale"]
    np.testing.assert_allclose(model.predict(data.X[:5], return_std=True)[1], result["std_scale"] * std)


def test_std_calibration_refuses_bad_options(rng):
    data = linear_set(rng, n=40)
    with pytest.raises(DatabaseError, match="at least 2 groups"):
        calibrate_std(LDMLModel(descriptor="none"), data, np.zeros(40))
    with pytest.raises(Exception, match="coverage"):
        calibrate_std(LDMLModel(descriptor="none"), data, np.arange(40), coverage=1.5)


def test_an_empty_group_key_is_refused():
    from ase_vibentropy.errors import InvalidOptionError
    from ase_vibentropy.features import row_groups

    with pytest.raises(InvalidOptionError, match="at least one row key"):
        row_groups(None, None, " , ")
