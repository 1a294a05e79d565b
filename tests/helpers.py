"""Test helpers: random structures and reference implementations."""

from __future__ import annotations

import gzip
import itertools
import json

import numpy as np


def mp_records(shared_data, every: int = 1):
    """Every `every`-th record (dict: lattice, frac, species, sg, n, ...) of the Materials
    Project dump in shared/data/mp, in file order."""
    with gzip.open(shared_data / "mp" / "mp_structures.jsonl.gz", "rt") as fh:
        for line in itertools.islice(fh, 0, None, every):
            yield json.loads(line)


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
