"""Strided box extraction (the geometric half of strided pattern matching, ARISE thesis 6.1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _core
from .structure import as_structure

__all__ = ["BoxGrid", "strided_boxes"]


@dataclass(frozen=True)
class BoxGrid:
    """Cubic boxes of edge ``box`` (Å) on a grid of centres; box order is (z, y, x) as in ARISE.

    Box ``b = (kz * ny + ky) * nx + kx`` holds atoms ``indices[offsets[b]:offsets[b+1]]``
    (sorted); with periodic wrapping, ``shifts`` gives the cell image of each member
    (member position = positions[index] + shift @ cell). ``valid`` marks boxes with at least
    ``min_atoms`` atoms.
    """

    box: float
    stride: tuple[float, float, float]
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    offsets: np.ndarray
    indices: np.ndarray
    counts: np.ndarray
    valid: np.ndarray
    shifts: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nz, ny, nx)."""
        return tuple(self.counts.shape)

    @property
    def n_boxes(self) -> int:
        return int(self.counts.size)

    @property
    def centres(self) -> np.ndarray:
        """Box centres, shape (nz, ny, nx, 3), Cartesian (x, y, z) in Å."""
        zz, yy, xx = np.meshgrid(self.z, self.y, self.x, indexing="ij")
        return np.stack([xx, yy, zz], axis=-1)

    def members(self, b: int) -> np.ndarray:
        """Atom indices inside box ``b`` (flat index)."""
        return self.indices[self.offsets[b] : self.offsets[b + 1]]


def strided_boxes(
    structure,
    box: float = 16.0,
    stride: float = 2.0,
    *,
    slab_axis: int | None = None,
    periodic: bool = False,
    min_atoms: int = 1,
) -> BoxGrid:
    """Slide a cubic box of edge ``box`` (Å) over ``structure`` with step ``stride`` (Å).

    Along each Cartesian axis the grid of centres is centred on the sample; an axis on
    which the sample is thinner than ``box`` gets a single layer (slab-like direction).
    ``slab_axis`` (0, 1, 2) forces one layer along that axis. ``periodic=True`` wraps boxes
    across periodic faces of an orthorhombic, axis-aligned cell (the stride is then adjusted
    so the boxes tile the cell exactly). Boxes with fewer than ``min_atoms`` atoms are marked
    invalid in ``valid``.
    """
    s = as_structure(structure)
    if len(s) == 0:
        raise ValueError("structure has no atoms")
    box, stride = float(box), float(stride)
    if not (np.isfinite(box) and box > 0):
        raise ValueError(f"box edge must be a positive number of Å, got {box}")
    if not (np.isfinite(stride) and stride > 0):
        raise ValueError(f"stride must be a positive number of Å, got {stride}")
    if stride > box:
        raise ValueError(f"stride ({stride} Å) larger than the box ({box} Å) would leave atoms in no box")
    if min_atoms < 0:
        raise ValueError("min_atoms must be >= 0")
    axis = -1 if slab_axis is None else int(slab_axis)
    out = _core.extract_boxes(s.positions, s.cell, s.pbc, box, stride, axis, periodic)
    counts = out["counts"]
    return BoxGrid(
        box=box,
        stride=tuple(out["stride"]),
        x=out["x"],
        y=out["y"],
        z=out["z"],
        offsets=out["offsets"],
        indices=out["indices"],
        counts=counts,
        valid=counts >= max(int(min_atoms), 1),
        shifts=out.get("shifts"),
    )
