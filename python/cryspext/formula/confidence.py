"""Calibrated confidence of the formula model: tempered Bravais probabilities and lattice
uncertainties.

The mixed Bravais probabilities of networks and trees are over-confident, and the spread of
the network members alone says little about how far a predicted lattice angle is off. Both are
corrected with a few constants chosen on a validation slice of the training rows, one set per
split (``benchmarks/formula_confidence_validation.py``; stored on the ``formula_trees`` card
as ``confidence``, written by ``training.formula_trees`` from its ``CONFIDENCE`` table):

* ``bravais_temperature`` T: probabilities p → p^(1/T), renormalised (T > 1 softens them; the
  ranking never changes);
* ``lattice_uncertainty``: for the lengths, σ = sqrt((s · std)² + (r · value)²) in Å (std over
  the network members, unbiased, in Å; r a relative floor); for the free angles,
  σ = sqrt((s · std)² + f²) in degrees (f a floor in degrees). The constants s, r and f are
  fitted so that σ is the 68.27 % quantile of the validation errors' size (as ±1 std of a
  Gaussian); the errors have heavier tails than a Gaussian, so ±2σ holds fewer than 95 %.
"""

from __future__ import annotations

import numpy as np

from .lattice import ANGLES, FREE_PARAMETERS, full_parameters

__all__ = ["temper", "member_std", "lattice_uncertainty", "full_uncertainties"]


def temper(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities ``p`` (last axis sums to 1) raised to 1 / ``temperature`` and renormalised."""
    p = np.asarray(p, float)
    if temperature == 1.0:
        return p
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logp = np.log(np.maximum(p, 1e-300)) / temperature
    logp -= logp.max(axis=-1, keepdims=True)
    q = np.exp(logp) * (p > 0)  # impossible classes stay impossible
    return q / q.sum(axis=-1, keepdims=True)


def member_std(values: np.ndarray) -> np.ndarray:
    """Unbiased std over the first axis (the members); 0 for a single member. The unbiased
    form lets constants fitted with a 3-member validation ensemble serve a 7-member one."""
    values = np.asarray(values, float)
    return values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.zeros(values.shape[1:])


def lattice_uncertainty(names, value: np.ndarray, std: np.ndarray, constants: dict) -> np.ndarray:
    """σ (Å or degrees) of free parameters ``names`` (last axis of ``value``/``std``), from
    ``constants`` = {"lengths": {"std_scale", "relative_floor"}, "angles": {"std_scale",
    "floor_deg"}} (see the module docstring)."""
    value, std = np.asarray(value, float), np.asarray(std, float)
    out = np.empty(np.broadcast(value, std).shape)
    for j, n in enumerate(names):
        if n in ANGLES:
            c = constants["angles"]
            floor = c["floor_deg"]
        else:
            c = constants["lengths"]
            floor = c["relative_floor"] * np.abs(value[..., j])
        out[..., j] = np.hypot(c["std_scale"] * std[..., j], floor)
    return out


def full_uncertainties(bravais: str, free: dict[str, float]) -> dict[str, float]:
    """Uncertainties (or stds) of all six parameters from those of the free ones: a length set
    equal to a free one by symmetry (b = a in tP) shares its uncertainty, as do the three equal
    angles of hR; an angle fixed by symmetry (90°, 120°) has 0."""
    names = FREE_PARAMETERS[bravais]
    values = full_parameters(bravais, free)
    if bravais != "hR":
        values.update({n: 0.0 for n in ANGLES if n not in names})
    return values
