"""A cell as written in its standard setting: the raw-parameter features of seed 001.

``cellgeom`` makes every cell canonical, so any basis of a lattice gives the same answer. A
cell written in the conventional *standard setting* of its space group (ITA conventions, as a
database CIF or spglib's standardised cell gives it) says more than its lattice: which axis is
unique, how the orthorhombic axes are ordered, that β > 90°. The raw parameters keep that, and a
classifier on them learns it (the seed-001 forest in ``benchmarks/RESULTS_formula.md`` is ahead
of every setting-independent model on conventional cells, and far behind on the same cells in
another basis). ``predict_cell(..., setting="standard")`` mixes such trees with the canonical
model; the default, ``setting="any"``, does not, because on a reduced or primitive cell they mislead.
"""

from __future__ import annotations

import numpy as np

from .cellvolume import cell_volume

__all__ = ["STANDARD_FEATURE_NAMES", "standard_setting_features"]

STANDARD_FEATURE_NAMES = ["a", "b", "c", "alpha", "beta", "gamma", "volume",
                          "b_over_a", "c_over_a", "anisotropy", "abc_over_v"]


def standard_setting_features(params) -> np.ndarray:
    """(n, 11) float32 features of cells ``params`` (n, 6) = a, b, c (Å), α, β, γ (degrees), as
    written: the six parameters, the volume (Å³), b/a, c/a, |a − c|/(a + c) and abc/V. The cells
    must form cells (``cellgeom`` checks a user's cell first)."""
    p = np.atleast_2d(np.asarray(params, dtype=float))
    if p.ndim != 2 or p.shape[1] != 6:
        raise ValueError(f"expected cells of six parameters (a, b, c, α, β, γ), got shape {p.shape}")
    a, b, c = p[:, 0], p[:, 1], p[:, 2]
    v = np.maximum(cell_volume(p), 1e-12)
    return np.column_stack([p, v, b / a, c / a, np.abs(a - c) / (a + c), a * b * c / v]).astype(np.float32)
