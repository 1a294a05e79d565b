"""Setting-independent features of a unit cell (a, b, c in Å; α, β, γ in degrees).

The same lattice can be written in many bases (a CIF's conventional cell, a Niggli-reduced
cell, another monoclinic setting...). A model fed the raw six numbers learns the *setting*
(e.g. "α = β = γ = 90° and a = b" → tetragonal) and fails on another basis — the leakage the
thesis of seed 001 does not test. Here every input is first made canonical: the metric lattice
type found by ASE (``Cell.get_bravais_lattice``, one of 14) and the Niggli-reduced cell
(``ase.build.tools.niggli_reduce_cell``), which is unique for a lattice. Then the ratios of
seed 001 are taken on that reduced cell: b/a, c/a, |a − c|/(a + c), abc/V.

The cell is read as a lattice: a conventional centred cell (e.g. cubic F given as a = b = c,
90°) is the lattice of that cell, so centring must come from the statistics of the data.
"""

from __future__ import annotations

import math

import numpy as np

from .cellvolume import cell_volume

__all__ = ["ASE_LATTICES", "CELL_FEATURE_NAMES", "MAX_LENGTH", "MIN_TRANSLATION", "TRAINING_LENGTHS",
           "canonical_cell", "canonical_features", "cell_features", "cell_volume"]

ASE_LATTICES = ["CUB", "FCC", "BCC", "TET", "BCT", "ORC", "ORCF", "ORCI", "ORCC", "HEX", "RHL",
                "MCL", "MCLC", "TRI"]

CELL_FEATURE_NAMES = (
    [f"lattice_{n}" for n in ASE_LATTICES]
    + ["a", "b", "c", "cos_alpha", "cos_beta", "cos_gamma", "log_volume",
       "b_over_a", "c_over_a", "anisotropy", "abc_over_v"]
)

# Cells no crystal has are refused. No two atoms sit closer than ~0.5 Å, so neither can a lattice
# point and its neighbour (the shortest translation is the first length of the Niggli-reduced
# cell; a near-zero volume always makes it short too). 10⁴ Å (1 µm) is beyond any known cell.
MIN_TRANSLATION = 0.5  # Å
MAX_LENGTH = 1.0e4  # Å
# Niggli-reduced lengths of the Materials Project cells the cell model was trained on
# (1.649–436.6 Å over all formulas of `python -m cryspext.training.formula data`), rounded
# outwards. Cells outside this range are extrapolation: predict_cell warns and says so.
TRAINING_LENGTHS = (1.6, 440.0)  # Å


def _check(params) -> np.ndarray:
    try:
        p = np.asarray(params, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError("cell parameters must be six numbers (a, b, c, alpha, beta, gamma)") from None
    if p.shape != (6,):
        raise ValueError(f"expected six cell parameters (a, b, c, α, β, γ), got {p.size}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"cell parameters must be finite, got {p.tolist()}")
    if np.any(p[:3] <= 0):
        raise ValueError(f"cell lengths must be positive (Å), got {p[:3].tolist()}")
    if np.any(p[:3] > MAX_LENGTH):
        raise ValueError(f"cell lengths above {MAX_LENGTH:g} Å are not a crystal's, got {p[:3].tolist()}"
                         " (lengths are in Å)")
    if np.any(p[3:] <= 0) or np.any(p[3:] >= 180):
        raise ValueError(f"cell angles must be in (0, 180) degrees, got {p[3:].tolist()}")
    ca, cb, cg = np.cos(np.radians(p[3:]))
    if 1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg <= 1e-10:
        raise ValueError(f"angles {p[3:].tolist()} do not form a cell (zero or imaginary volume)")
    return p


def canonical_cell(params, tolerance: float = 2e-3) -> tuple[str, np.ndarray]:
    """(ASE metric lattice type, Niggli-reduced a, b, c, α, β, γ) of a cell.

    ``tolerance`` is ASE's ``eps`` for recognising equal lengths/right angles (relative scale).
    """
    from ase.build.tools import niggli_reduce_cell
    from ase.cell import Cell

    p = _check(params)
    cell = Cell.fromcellpar(p)
    try:
        name = cell.get_bravais_lattice(eps=tolerance).name
    except (RuntimeError, ValueError):  # ASE could not decide: treat as triclinic
        name = "TRI"
    reduced, _op = niggli_reduce_cell(np.array(cell))
    params = Cell(reduced).cellpar()
    if params[0] < MIN_TRANSLATION:
        raise ValueError(
            f"the lattice of cell {p.tolist()} has a translation of {params[0]:.3g} Å, shorter than "
            f"{MIN_TRANSLATION} Å: no crystal has lattice points that close (lengths are in Å; a "
            "nearly flat cell also gives this)")
    return name, params


def cell_features(params, tolerance: float = 2e-3) -> np.ndarray:
    """Feature vector (len(CELL_FEATURE_NAMES),) of a cell, identical for any basis of it."""
    return canonical_features(*canonical_cell(params, tolerance))


def canonical_features(name: str, r) -> np.ndarray:
    """``cell_features`` of a cell already made canonical: ASE lattice ``name`` and Niggli cell
    ``r`` (a, b, c, α, β, γ), as ``canonical_cell`` returns them."""
    a, b, c = r[:3]
    volume = float(cell_volume(r))
    onehot = np.zeros(len(ASE_LATTICES))
    onehot[ASE_LATTICES.index(name)] = 1.0
    cosines = np.cos(np.radians(r[3:]))
    # Right angles give cosines of 6e-17 or 3e-14 depending on the basis: make them exact.
    cosines[np.abs(cosines) < 1e-12] = 0.0
    derived = [math.log(volume), b / a, c / a, abs(a - c) / (a + c), a * b * c / volume]
    return np.concatenate([onehot, [a, b, c], cosines, derived])


