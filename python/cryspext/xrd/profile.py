"""Ideal δ-function powder profiles on a 1/d axis (seed 003, section 2.5), computed in C++.

A profile is |F_hkl|² accumulated on the nearest point of a uniform 1/d grid (Å⁻¹) and
normalised to a maximum of 1. It depends on the crystal alone: no wavelength, no line shape,
no Lorentz–polarisation factor. Defaults follow the seed: 1/d from 0.1131 to 1.0625 Å⁻¹ in
10001 points, isotropic Debye–Waller B = 2.0 Å² on every atom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .form_factors import FormFactors

__all__ = ["DeltaGrid", "Reflections", "delta_profile", "delta_profiles", "reflections", "scatterers"]


@dataclass(frozen=True)
class DeltaGrid:
    """Uniform 1/d grid: ``n_bins`` points from ``inv_d_min`` to ``inv_d_max`` (Å⁻¹), both included."""

    inv_d_min: float = 0.1131
    inv_d_max: float = 1.0625
    n_bins: int = 10001

    def __post_init__(self):
        lo, hi, n = float(self.inv_d_min), float(self.inv_d_max), self.n_bins
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi <= lo:
            raise ValueError(f"need 0 <= inv_d_min < inv_d_max (Å⁻¹), got {lo}, {hi}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n_bins must be an integer >= 2, got {n!r}")

    @property
    def width(self) -> float:
        """Spacing of grid points, Å⁻¹."""
        return (self.inv_d_max - self.inv_d_min) / (self.n_bins - 1)

    @property
    def axis(self) -> np.ndarray:
        """The grid points, 1/d in Å⁻¹."""
        return np.linspace(self.inv_d_min, self.inv_d_max, self.n_bins)

    def bin_of(self, inv_d: np.ndarray) -> np.ndarray:
        """Index of the nearest grid point (-1 outside the grid)."""
        inv_d = np.asarray(inv_d, dtype=float)
        idx = np.rint((inv_d - self.inv_d_min) / self.width).astype(np.int64)
        inside = (inv_d >= self.inv_d_min) & (inv_d <= self.inv_d_max)
        return np.where(inside, idx, -1)

    def to_dict(self) -> dict:
        return {"inv_d_min": self.inv_d_min, "inv_d_max": self.inv_d_max, "n_bins": int(self.n_bins)}


@dataclass(frozen=True)
class Reflections:
    """Reflections of one structure, one per Friedel pair: Miller indices (m, 3), 1/d (Å⁻¹) and
    intensity 2|F|² (electrons², the pair counted twice)."""

    hkl: np.ndarray
    inv_d: np.ndarray
    intensity: np.ndarray

    def __len__(self) -> int:
        return int(self.inv_d.shape[0])

    def merged(self, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group reflections whose 1/d agree within ``tol`` (Å⁻¹): (inv_d, summed intensity, count).

        ``count`` is the number of reflections in the group, Friedel mates included.
        """
        if len(self) == 0:
            return np.zeros(0), np.zeros(0), np.zeros(0, dtype=int)
        order = np.argsort(self.inv_d, kind="stable")
        g, inten = self.inv_d[order], self.intensity[order]
        starts = np.concatenate([[0], np.nonzero(np.diff(g) > tol)[0] + 1])
        sums = np.add.reduceat(inten, starts)
        counts = np.diff(np.concatenate([starts, [len(g)]])) * 2
        means = np.add.reduceat(g, starts) / (counts / 2)
        return means, sums, counts


def _b_per_atom(b_factor, numbers: np.ndarray) -> np.ndarray:
    if isinstance(b_factor, Mapping):
        from ase.data import chemical_symbols

        out = np.empty(len(numbers))
        for i, z in enumerate(numbers):
            sym = chemical_symbols[z]
            if sym not in b_factor and z not in b_factor:
                raise ValueError(f"b_factor has no entry for {sym}")
            out[i] = b_factor.get(sym, b_factor.get(z))
        return out
    b = np.asarray(b_factor, dtype=float)
    if b.ndim == 0:
        return np.full(len(numbers), float(b))
    if b.shape != (len(numbers),):
        raise ValueError(f"b_factor must be a number, a dict by element or one value per atom ({len(numbers)}), got shape {b.shape}")
    return b


def scatterers(structure: Any, occupancies: Sequence[float] | None = None, b_factor: Any = 2.0):
    """(frac (n, 3), cell (3, 3) Å, numbers (n,), occupancy (n,), B (n,) Å²) for the C++ core.

    Disordered pymatgen structures are expanded: a site holding Fe0.5Ni0.5 becomes two
    scatterers at the same place with occupancies 0.5. ``occupancies`` (one per atom) overrides
    them for other inputs; ``b_factor`` is a number, a dict by element or one value per atom.
    """
    module = type(structure).__module__
    if module.startswith("pymatgen") and hasattr(structure, "lattice") and not structure.is_ordered:
        frac, numbers, occ = [], [], []
        for site in structure:
            for species, amount in site.species.items():
                z = getattr(species, "Z", None)
                if z is None:
                    raise ValueError(f"site species {species} has no atomic number (dummy species?)")
                frac.append(site.frac_coords)
                numbers.append(z)
                occ.append(amount)
        frac = np.asarray(frac, dtype=float).reshape(-1, 3)
        cell = np.asarray(structure.lattice.matrix, dtype=float)
        numbers = np.asarray(numbers, dtype=np.int32)
        occ = np.asarray(occ, dtype=float)
        if occupancies is not None:
            raise ValueError("occupancies are taken from the disordered pymatgen structure; do not pass them too")
    elif module.startswith("pymatgen") and hasattr(structure, "lattice"):
        # Ordered pymatgen structure: read its arrays directly (the C++ core validates them).
        frac = np.asarray(structure.frac_coords, dtype=float).reshape(-1, 3)
        cell = np.asarray(structure.lattice.matrix, dtype=float)
        numbers = np.asarray(structure.atomic_numbers, dtype=np.int32)
        occ = np.ones(len(numbers)) if occupancies is None else np.asarray(occupancies, dtype=float)
        if occ.shape != (len(numbers),):
            raise ValueError(f"occupancies must have one value per atom ({len(numbers)}), got shape {occ.shape}")
    else:
        from ..structure import as_structure

        s = as_structure(structure)
        if not np.all(s.pbc):
            raise ValueError("a powder pattern needs a crystal: the structure must be periodic in all three directions")
        cell = s.cell
        frac = s.positions @ np.linalg.inv(cell)
        numbers = s.numbers
        occ = np.ones(len(s)) if occupancies is None else np.asarray(occupancies, dtype=float)
        if occ.shape != (len(s),):
            raise ValueError(f"occupancies must have one value per atom ({len(s)}), got shape {occ.shape}")
    if len(numbers) == 0:
        raise ValueError("the structure has no atoms")
    if np.any(~np.isfinite(occ)) or np.any(occ < 0) or np.any(occ > 1 + 1e-6):
        raise ValueError("occupancies must lie in [0, 1]")
    return frac, cell, numbers, occ, _b_per_atom(b_factor, numbers)


def _grid(inv_d_min, inv_d_max, n_bins) -> DeltaGrid:
    return DeltaGrid(float(inv_d_min), float(inv_d_max), n_bins)


def _table(form_factors: FormFactors | None) -> FormFactors:
    if form_factors is None:
        return FormFactors.it92()
    if not isinstance(form_factors, FormFactors):
        raise TypeError("form_factors must be a cryspext.xrd.FormFactors (or None for the IT92 table)")
    return form_factors


def reflections(
    structure: Any,
    *,
    inv_d_min: float = 0.1131,
    inv_d_max: float = 1.0625,
    b_factor: Any = 2.0,
    occupancies: Sequence[float] | None = None,
    form_factors: FormFactors | None = None,
) -> Reflections:
    """All reflections with inv_d_min <= 1/d <= inv_d_max (Å⁻¹), one per Friedel pair."""
    from .. import _core

    _grid(inv_d_min, inv_d_max, 2)
    ff = _table(form_factors)
    frac, cell, numbers, occ, b = scatterers(structure, occupancies, b_factor)
    r = _core.xrd_reflections(frac, cell, numbers, occ, b, ff.table, ff.kind, float(inv_d_min), float(inv_d_max))
    return Reflections(r["hkl"], r["inv_d"], r["intensity"])


def delta_profile(
    structure: Any,
    *,
    inv_d_min: float = 0.1131,
    inv_d_max: float = 1.0625,
    n_bins: int = 10001,
    b_factor: Any = 2.0,
    occupancies: Sequence[float] | None = None,
    normalize: bool = True,
    form_factors: FormFactors | None = None,
) -> np.ndarray:
    """δ-profile of one structure: float32 (n_bins,), |F|² summed on the nearest 1/d grid point.

    The grid is ``DeltaGrid(inv_d_min, inv_d_max, n_bins).axis`` (Å⁻¹). ``b_factor`` is the
    isotropic Debye–Waller B (Å²): a number, a dict by element or one value per atom. With
    ``normalize`` the maximum is 1 (an empty profile stays zero); otherwise electrons².
    """
    return delta_profiles(
        [structure], inv_d_min=inv_d_min, inv_d_max=inv_d_max, n_bins=n_bins, b_factor=b_factor,
        occupancies=None if occupancies is None else [occupancies], normalize=normalize,
        form_factors=form_factors,
    )[0]


def delta_profiles(
    structures: Iterable[Any],
    *,
    inv_d_min: float = 0.1131,
    inv_d_max: float = 1.0625,
    n_bins: int = 10001,
    b_factor: Any = 2.0,
    occupancies: Sequence[Sequence[float] | None] | None = None,
    normalize: bool = True,
    form_factors: FormFactors | None = None,
) -> np.ndarray:
    """δ-profiles of many structures, computed in parallel (OpenMP, ``OMP_NUM_THREADS``): (n, n_bins) float32."""
    from .. import _core

    if isinstance(structures, (str, bytes)) or not isinstance(structures, Iterable):
        raise TypeError("structures must be an iterable of structures; use delta_profile() for one")
    grid = _grid(inv_d_min, inv_d_max, n_bins)
    ff = _table(form_factors)
    structures = list(structures)
    if occupancies is not None and len(occupancies) != len(structures):
        raise ValueError("occupancies must have one entry (or None) per structure")
    packed = []
    for i, s in enumerate(structures):
        occ = None if occupancies is None else occupancies[i]
        packed.append(tuple(scatterers(s, occ, b_factor)))
    return _core.xrd_profiles(packed, ff.table, ff.kind, grid.inv_d_min, grid.inv_d_max, int(grid.n_bins), bool(normalize))
