"""Calibrated confidence of the formula model (``formula.confidence``) and the fitting of its
constants (``training.formula_confidence``) on synthetic data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cryspext.formula.confidence import full_uncertainties, lattice_uncertainty, member_std, temper
from cryspext.training.formula_confidence import coverage, fit_lattice_uncertainty, fit_temperature, nll


def _probabilities(n, classes, rng):
    logits = rng.normal(scale=2.0, size=(n, classes))
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def test_temper_keeps_ranking_and_normalisation():
    rng = np.random.default_rng(0)
    p = _probabilities(50, 14, rng)
    p[:, 3] = 0.0  # an impossible class
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(temper(p, 1.0), p)
    for t in (0.5, 1.7, 50.0):
        q = temper(p, t)
        np.testing.assert_allclose(q.sum(axis=1), 1.0)
        np.testing.assert_array_equal(np.argsort(-q, axis=1)[:, :5], np.argsort(-p, axis=1)[:, :5])
        assert np.all(q[:, 3] == 0)
    assert np.all(temper(p, 2.0).max(axis=1) < p.max(axis=1))  # softer
    with pytest.raises(ValueError, match="temperature"):
        temper(p, 0.0)


def test_fitted_temperature_undoes_a_known_sharpening():
    """Labels drawn from q; a model reporting q sharpened to the power 1.5 is over-confident,
    and the fitted temperature brings it back (T ≈ 1.5)."""
    rng = np.random.default_rng(1)
    q = _probabilities(20000, 14, rng)
    y = np.array([rng.choice(14, p=row) for row in q])
    t, scores = fit_temperature(temper(q, 1 / 1.5), y)
    assert t == pytest.approx(1.5, abs=0.1)
    assert scores[t] == min(scores.values())
    assert fit_temperature(q, y)[0] == pytest.approx(1.0, abs=0.1)  # calibrated already


def test_temperature_fitted_to_the_answer_after_a_later_mix():
    """``then`` scores the answer built from the tempered probabilities (the formula model mixes
    the analogue vote in after tempering): labels drawn from 0.8 · q + 0.2 · v, a model giving q
    sharpened to the power 1.5, then mixed with v: the fit finds T ≈ 1.5 for that answer."""
    rng = np.random.default_rng(2)
    q, v = _probabilities(20000, 14, rng), _probabilities(20000, 14, rng)
    y = np.array([rng.choice(14, p=row) for row in 0.8 * q + 0.2 * v])

    def mix(p):
        return 0.8 * p + 0.2 * v

    t, scores = fit_temperature(temper(q, 1 / 1.5), y, then=mix)
    assert t == pytest.approx(1.5, abs=0.1)
    assert scores[t] == pytest.approx(nll(mix(temper(temper(q, 1 / 1.5), t)), y))
    plain = fit_temperature(temper(q, 1 / 1.5), y)
    assert fit_temperature(temper(q, 1 / 1.5), y, then=lambda p: p) == plain


def test_member_std_is_unbiased_and_zero_for_one_member():
    v = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    np.testing.assert_allclose(member_std(v), [2.0, 0.0])
    np.testing.assert_array_equal(member_std(v[:1]), [0.0, 0.0])


def test_lattice_uncertainty_combines_std_and_floor():
    constants = {"lengths": {"std_scale": 2.0, "relative_floor": 0.1},
                 "angles": {"std_scale": 1.0, "floor_deg": 4.0}}
    sigma = lattice_uncertainty(["a", "beta"], np.array([[5.0, 100.0]]), np.array([[0.3, 3.0]]), constants)
    np.testing.assert_allclose(sigma, [[np.hypot(0.6, 0.5), 5.0]])


def test_fitted_uncertainty_recovers_known_constants():
    rng = np.random.default_rng(2)
    n = 20000
    value = rng.uniform(3, 15, n)
    std = rng.uniform(0.05, 1.0, n)
    err = rng.normal(size=n) * np.hypot(2.0 * std, 0.05 * value)
    c, _ = fit_lattice_uncertainty(err, std, value, np.arange(0, 0.2, 0.005))
    assert c["std_scale"] == pytest.approx(2.0, abs=0.2)
    assert c["floor"] == pytest.approx(0.05, abs=0.01)
    cov = coverage(err, np.hypot(c["std_scale"] * std, c["floor"] * value))
    assert cov["within_1_sigma"] == pytest.approx(0.683, abs=0.02)
    assert cov["within_2_sigma"] == pytest.approx(0.954, abs=0.01)
    with pytest.raises(ValueError, match="positive"):  # σ = 0 for every candidate
        fit_lattice_uncertainty(err, np.zeros(n), value, [0.0])


@pytest.mark.parametrize("bravais, free, expected", [
    ("tP", {"a": 0.2, "c": 0.4}, {"a": 0.2, "b": 0.2, "c": 0.4, "alpha": 0, "beta": 0, "gamma": 0}),
    ("hP", {"a": 0.2, "c": 0.4}, {"a": 0.2, "b": 0.2, "c": 0.4, "alpha": 0, "beta": 0, "gamma": 0}),
    ("hR", {"a": 0.2, "alpha": 1.5}, {"a": 0.2, "b": 0.2, "c": 0.2, "alpha": 1.5, "beta": 1.5, "gamma": 1.5}),
    ("mC", {"a": 0.1, "b": 0.2, "c": 0.3, "beta": 2.0},
     {"a": 0.1, "b": 0.2, "c": 0.3, "alpha": 0, "beta": 2.0, "gamma": 0}),
    ("cF", {"a": 0.2}, {"a": 0.2, "b": 0.2, "c": 0.2, "alpha": 0, "beta": 0, "gamma": 0}),
])
def test_full_uncertainties_follow_the_symmetry(bravais, free, expected):
    assert full_uncertainties(bravais, free) == expected
