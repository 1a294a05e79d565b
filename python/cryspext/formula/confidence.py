"""Calibration of the formula model: tempered Bravais probabilities, corrected lattice values
and lattice uncertainties.

The mixed Bravais probabilities of networks and trees are over-confident, the mixed lattice
values of formulas unlike the training ones are biased, and the spread of the network members
alone says little about how far a predicted lattice angle is off. All three are corrected with
constants chosen on a validation slice of the training rows, one set per split
(``benchmarks/formula_confidence_validation.py``; stored on the ``formula_trees`` card as
``confidence``, written by ``training.formula_trees`` from ``training.formula_trees.CONFIDENCE``):

* ``bravais_temperature`` T: probabilities p → p^(1/T), renormalised (T > 1 softens them; the
  ranking never changes);
* ``lattice_correction``: for each lattice and free parameter, value → offset + slope · value
  (Å or degrees), the least-squares line from the mixed value to the true one on the slice,
  its slope drawn towards 1 (``training.formula_confidence.fit_lattice_correction``); it
  takes out a drift of the mean, as on formulas newer than the training ones;
* ``lattice_uncertainty``: for the lengths, σ = sqrt((s · std)² + (r · value)²) in Å (std over
  the network members, unbiased, in Å; r a relative floor); for the free angles,
  σ = sqrt((s · std)² + f²) in degrees (f a floor in degrees). The constants s, r and f are
  fitted so that σ is the 68.27 % quantile of the validation errors' size (as ±1 std of a
  Gaussian); the errors have heavier tails than a Gaussian, so ±2σ holds fewer than 95 %.
"""

from __future__ import annotations

import numpy as np

from .lattice import ANGLES, FREE_PARAMETERS, full_parameters

__all__ = ["temper", "correct_lattice", "member_std", "lattice_uncertainty", "full_uncertainties"]


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


def correct_lattice(names, value: np.ndarray, correction: dict | None) -> np.ndarray:
    """Free parameters ``names`` (last axis of ``value``, Å or degrees) after the lattice
    correction ``correction`` = {parameter: [slope, offset]} of their lattice; a parameter
    without one (or ``correction`` None) is left as it is. A corrected length is kept at
    half the mixed one or more."""
    value = np.array(value, float)
    for j, n in enumerate(names):
        if correction and n in correction:
            slope, offset = correction[n]
            line = offset + slope * value[..., j]
            # A line fitted on typical cells must not take an unusual length to zero or below.
            value[..., j] = line if n in ANGLES else np.maximum(line, 0.5 * value[..., j])
    return value


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
