"""Test helpers: random structures and reference implementations."""

from __future__ import annotations

import numpy as np


def pair_set(i, j, S) -> set:
    """Set of (i, j, S0, S1, S2) tuples for exact comparison of neighbour lists."""
    S = np.asarray(S).reshape(-1, 3)
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), *S.T.tolist()))


def random_triclinic_cell(rng: np.random.Generator, scale: float = 4.0) -> np.ndarray:
    """A random, reasonably conditioned triclinic cell (rows, Å)."""
    while True:
        cell = rng.normal(size=(3, 3)) * scale / 2 + np.eye(3) * scale
        vol = abs(np.linalg.det(cell))
        if vol > 0.2 * np.prod(np.linalg.norm(cell, axis=1)):
            return cell
