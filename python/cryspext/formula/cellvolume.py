"""How many formula units a cell holds, as evidence for its space group.

The formula model and the cell model each see half of a crystal: neither knows the ratio of the
cell's volume to the volume of one formula unit, which is close to Z (formula units per cell)
times a packing factor. Z is tied to the space group through its Wyckoff multiplicities (rock
salt: 4 in Fm-3m; perovskite: 1 in Pm-3m), so the ratio separates groups that the two models
alone confuse. ``predict_cell(..., formula=...)`` multiplies its combination by
P(ρ | group)^δ, with ρ = ln(V_cell / V_formula unit) and V_formula unit the formula's
``formula_unit_volume`` (Σ amount × elemental ground-state volume per atom, Å³).

P(ρ | group) is a table over a grid of ρ, fitted on training cells (``fit_table``): a Gaussian
kernel density of each group's ρ values, drawn towards the density of all groups by a few
pseudo-rows so that rare groups stay smooth. A cell is given in some setting; the table learns
the conventional cells and, for centred lattices, the primitive ones as well (the cell model's
training rows), so either setting finds its peak.
"""

from __future__ import annotations

import numpy as np

# Grid of ρ = ln(V_cell / V_formula unit): ratios from e^-2 (0.14) to e^7 (1100).
GRID = np.round(np.arange(-2.0, 7.0 + 1e-9, 0.05), 4)
BANDWIDTH = 0.05  # kernel width in ρ (5 % in volume); fixed, not fitted
PSEUDO_ROWS = 20.0  # rows of the all-groups density added to each group's
FLOOR = 1e-6  # density floor, so that no ratio rules a group out


def cell_volume(params) -> np.ndarray:
    """Volume (Å³) of cells ``params`` = (..., 6) a, b, c (Å), α, β, γ (degrees)."""
    p = np.asarray(params, dtype=float)
    a, b, c = p[..., 0], p[..., 1], p[..., 2]
    ca, cb, cg = (np.cos(np.radians(p[..., i])) for i in (3, 4, 5))
    return a * b * c * np.sqrt(np.clip(1 - ca ** 2 - cb ** 2 - cg ** 2 + 2 * ca * cb * cg, 0.0, None))


def volume_ratio(cell_volume_A3, formula_unit_volume_A3) -> np.ndarray:
    """ρ = ln(V_cell / V_formula unit); both volumes in Å³ and positive."""
    v, f = np.asarray(cell_volume_A3, float), np.asarray(formula_unit_volume_A3, float)
    if np.any(~(v > 0)) or np.any(~(f > 0)):
        raise ValueError("cell and formula-unit volumes must be positive and finite")
    return np.log(v / f)


def _kde(rho: np.ndarray) -> np.ndarray:
    """(len(GRID),) Gaussian kernel density of ``rho`` on ``GRID`` (integrates to 1)."""
    if not len(rho):
        return np.zeros(len(GRID))
    z = (GRID[:, None] - rho[None, :]) / BANDWIDTH
    return np.exp(-0.5 * z ** 2).sum(1) / (len(rho) * BANDWIDTH * np.sqrt(2 * np.pi))


def fit_table(rho: np.ndarray, spacegroups: np.ndarray) -> np.ndarray:
    """(230, len(GRID)) float32 ln P(ρ | group) from training ratios ``rho`` and their space
    groups (1..230): each group's kernel density, with ``PSEUDO_ROWS`` rows of the density of all
    groups, floored at ``FLOOR``."""
    rho, sg = np.asarray(rho, float), np.asarray(spacegroups, int)
    everything = _kde(rho)
    table = np.empty((230, len(GRID)))
    for g in range(1, 231):
        own = rho[sg == g]
        table[g - 1] = (len(own) * _kde(own) + PSEUDO_ROWS * everything) / (len(own) + PSEUDO_ROWS)
    return np.log(np.maximum(table, FLOOR)).astype(np.float32)


def log_likelihood(table: np.ndarray, rho) -> np.ndarray:
    """(n, 230) ln P(ρ | group) at ratios ``rho`` (n,), linear in ρ between grid points;
    outside the grid, the edge values."""
    rho = np.atleast_1d(np.asarray(rho, float))
    x = np.clip(rho, GRID[0], GRID[-1])
    i = np.clip(np.searchsorted(GRID, x) - 1, 0, len(GRID) - 2)
    t = ((x - GRID[i]) / (GRID[i + 1] - GRID[i]))[:, None]
    return (1 - t) * table[:, i].T + t * table[:, i + 1].T
