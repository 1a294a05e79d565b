"""Random defects used to test robustness (thesis Table 5.1 protocol).

- displacements: every Cartesian component of every atom moves by a random amount of scale
  ``delta · d_NN`` (``delta`` a fraction, e.g. 0.07 for 7 %): uniform in [−δ·d_NN, +δ·d_NN]
  (``distribution="uniform"``, the default: ARISE's ``uniform_scaled`` noise; with it the
  OVITO/CNA baselines reproduce the thesis's Table 5.2 figures) or Gaussian with standard
  deviation δ·d_NN (``"gaussian"``, √3 times stronger);
- missing atoms: a fraction ``eta`` of the atoms (rounded, at least one when eta > 0) is
  removed at random, never all of them.
"""

from __future__ import annotations

import numpy as np

from ..structure import Structure

__all__ = ["displace_atoms", "remove_atoms", "make_defective", "typical_nn_distance"]


def typical_nn_distance(structure: Structure) -> float:
    """Median over atoms of the distance to the nearest other atom (Å): the defect length unit.

    (For pristine prototypes this is the nearest-neighbour distance d_NN; the median ignores the
    few under-coordinated surface atoms of finite clusters.)
    """
    from ..neighbors import neighbor_list

    if len(structure) < 2 and not structure.pbc.any():
        raise ValueError("need at least two atoms (or a periodic cell) to define a neighbour distance")
    cutoff = 3.0
    for _ in range(8):
        nl = neighbor_list(structure, cutoff)
        if len(nl):
            nearest = np.full(len(structure), np.inf)
            np.minimum.at(nearest, nl.i, nl.distances)
            if np.isfinite(nearest).mean() > 0.5:
                return float(np.median(nearest[np.isfinite(nearest)]))
        cutoff *= 2.0
    raise ValueError("no neighbours found within 384 Å")


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def displace_atoms(structure: Structure, delta: float, d_nn: float, seed=None, distribution: str = "uniform") -> Structure:
    """Random displacements of scale ``delta * d_nn`` Å per component (uniform or Gaussian)."""
    if not (0 <= float(delta) < 1):
        raise ValueError(f"delta must be a fraction in [0, 1), got {delta}")
    if not (np.isfinite(d_nn) and d_nn > 0):
        raise ValueError(f"d_nn must be a positive length in Å, got {d_nn}")
    scale = float(delta) * float(d_nn)
    shape = structure.positions.shape
    if distribution == "uniform":
        noise = _rng(seed).uniform(-scale, scale, size=shape)
    elif distribution == "gaussian":
        noise = _rng(seed).normal(0.0, scale, size=shape)
    else:
        raise ValueError(f"distribution must be 'uniform' or 'gaussian', got {distribution!r}")
    return Structure(structure.positions + noise, structure.cell, structure.pbc, structure.numbers, info=dict(structure.info))


def remove_atoms(structure: Structure, eta: float, seed=None) -> Structure:
    """Remove ``round(eta * n)`` random atoms (at least one if ``eta > 0``, never all)."""
    if not (0 <= float(eta) < 1):
        raise ValueError(f"eta must be a fraction in [0, 1), got {eta}")
    n = len(structure)
    k = int(round(float(eta) * n))
    if eta > 0:
        k = max(k, 1)
    k = min(k, n - 1)
    if k <= 0:
        return structure
    drop = _rng(seed).choice(n, size=k, replace=False)
    keep = np.ones(n, dtype=bool)
    keep[drop] = False
    return Structure(structure.positions[keep], structure.cell, structure.pbc, structure.numbers[keep], info=dict(structure.info))


def make_defective(
    structure: Structure, *, delta: float = 0.0, eta: float = 0.0, d_nn: float | None = None, seed=None, distribution: str = "uniform"
) -> Structure:
    """Remove a fraction ``eta`` of atoms, then displace the rest by ``delta · d_nn`` (see above)."""
    if not (0 <= float(delta) < 1 and 0 <= float(eta) < 1):
        raise ValueError(f"delta and eta must be fractions in [0, 1), got delta={delta}, eta={eta}")
    rng = _rng(seed)
    out = remove_atoms(structure, eta, rng) if eta > 0 else structure
    if delta > 0:
        if d_nn is None:
            raise ValueError("d_nn (Å) is needed for displacements")
        out = displace_atoms(out, delta, d_nn, rng, distribution)
    return out
