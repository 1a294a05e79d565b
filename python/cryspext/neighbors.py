"""Neighbour lists computed by the C++ core (cell-list algorithm, O(N))."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _core
from .structure import as_structure

__all__ = ["NeighborList", "neighbor_list"]


@dataclass(frozen=True)
class NeighborList:
    """Pairs (i, j, S) with distance d = |r_j + S·cell − r_i| < cutoff.

    ``i``, ``j``: int32 atom indices, sorted by ``i``; ``shifts``: int32 (n_pairs, 3) cell
    shifts relative to the positions as given; ``distances``: Å; ``vectors``: Å (n_pairs, 3),
    only when requested.
    """

    i: np.ndarray
    j: np.ndarray
    shifts: np.ndarray
    distances: np.ndarray
    vectors: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.i.shape[0])


def neighbor_list(structure, cutoff: float, *, half: bool = False, vectors: bool = False) -> NeighborList:
    """All neighbour pairs within ``cutoff`` (Å) of ``structure``.

    ``structure`` is anything :func:`cryspext.as_structure` accepts. The full list holds
    each pair in both directions (as ``ase.neighborlist.neighbor_list``); ``half=True`` keeps
    one direction (i < j, or i == j with a lexicographically positive shift).
    Raises ``ValueError`` for a negative/NaN cutoff, an empty structure, non-finite
    positions or a singular periodic cell.
    """
    cutoff = float(cutoff)
    if math.isnan(cutoff) or cutoff < 0 or math.isinf(cutoff):
        raise ValueError(f"cutoff must be a finite number >= 0 Å, got {cutoff}")
    s = as_structure(structure)
    if len(s) == 0:
        raise ValueError("structure has no atoms")
    out = _core.neighbor_list(s.positions, s.cell, s.pbc, cutoff, half, vectors)
    return NeighborList(out["i"], out["j"], out["S"], out["d"], out.get("D"))
