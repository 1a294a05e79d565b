"""Fitting the confidence constants of ``formula.confidence`` on a validation slice.

``fit_temperature`` picks the Bravais temperature that minimises the negative log-likelihood of
the true lattices; ``fit_lattice_uncertainty`` picks the constants of the lattice σ that make
it the 68.27 % quantile of |error| (the share of a Gaussian within ±1 std), by the pinball
loss: the errors are heavy-tailed, so a Gaussian likelihood would inflate σ until far more
than 68 % of the errors lie within it. Both search a grid (a handful of constants,
thousands of rows: a grid is exact enough and has no convergence to check). Used by
``benchmarks/formula_confidence_validation.py``, which stores the chosen constants in
``training/formula_calibration.json`` (read as ``training.formula_trees.CONFIDENCE``).
"""

from __future__ import annotations

import numpy as np

from ..formula.confidence import temper

TEMPERATURES = np.round(np.arange(0.7, 4.001, 0.05), 2)  # the future slice needs 2.65
STD_SCALES = np.round(np.arange(0.0, 6.001, 0.1), 2)
RELATIVE_FLOORS = np.round(np.arange(0.0, 0.5001, 0.005), 3)
ANGLE_FLOORS_DEG = np.round(np.arange(0.0, 30.001, 0.25), 2)


def nll(p: np.ndarray, y: np.ndarray, floor: float = 1e-12) -> float:
    """Mean negative log-likelihood (nats) of labels ``y`` under (n, classes) probabilities,
    each floored at ``floor`` (a class given probability 0 would make it infinite)."""
    return float(-np.log(np.maximum(p[np.arange(len(y)), y], floor)).mean())


def fit_temperature(p: np.ndarray, y: np.ndarray, grid=TEMPERATURES, then=None) -> tuple[float, dict]:
    """(the temperature of ``grid`` with the lowest NLL, {temperature: NLL}). ``then``, if
    given, maps the tempered probabilities to the answer that is scored (the formula model
    mixes the analogue vote in after tempering, ``predict.FormulaModels.with_vote``)."""
    scores = {float(t): nll(temper(p, t) if then is None else then(temper(p, t)), y) for t in grid}
    return min(scores, key=scores.get), scores


LEVEL = 0.6827  # the share of a Gaussian within ±1 std


def quantile_loss(abs_err: np.ndarray, sigma: np.ndarray, level: float = LEVEL) -> float:
    """Mean pinball loss of ``sigma`` as the ``level`` quantile of |error|: the σ that
    minimises it holds that share of the errors, and among such σ it prefers the ones that
    follow the errors (small where errors are small). Unlike a Gaussian likelihood it is not
    pulled up by the heavy tails of the lattice errors."""
    d = np.asarray(abs_err, float) - np.asarray(sigma, float)
    return float(np.mean(np.maximum(level * d, (level - 1) * d)))


def fit_lattice_uncertainty(err: np.ndarray, std: np.ndarray, floor_unit: np.ndarray,
                            floors, scales=STD_SCALES, level: float = LEVEL) -> tuple[dict, float]:
    """The (std_scale s, floor f) of ``scales`` × ``floors`` for which σ = sqrt((s · std)² +
    (f · floor_unit)²) is the best ``level`` quantile of |err| (lowest ``quantile_loss``):
    ``floor_unit`` is |value| for a relative floor (lengths) or 1 for a floor in degrees
    (angles). Returns ({"std_scale", "floor"}, loss); a pair giving σ = 0 anywhere is skipped."""
    err, std, unit = (np.asarray(v, float) for v in (err, std, floor_unit))
    abs_err = np.abs(err)
    best, best_loss = None, np.inf
    for s in scales:
        for f in floors:
            sigma = np.hypot(s * std, f * unit)
            if not np.all(sigma > 0):
                continue
            loss = quantile_loss(abs_err, sigma, level)
            if loss < best_loss:
                best, best_loss = {"std_scale": float(s), "floor": float(f)}, loss
    if best is None:
        raise ValueError("no constants give a positive σ for every row")
    return best, best_loss


def coverage(err: np.ndarray, sigma: np.ndarray) -> dict:
    """Shares of |err| within 1 and 2 σ (0.683 and 0.954 for Gaussian errors)."""
    err = np.abs(err)
    return {"within_1_sigma": float(np.mean(err <= sigma)), "within_2_sigma": float(np.mean(err <= 2 * sigma))}
