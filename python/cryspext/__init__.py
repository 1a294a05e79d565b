"""cryspext: crystal-structure recognition from atoms, powder XRD patterns or formulas."""

from __future__ import annotations

from ._version import __version__
from .boxes import BoxGrid, strided_boxes
from .neighbors import NeighborList, neighbor_list
from .structure import Structure, as_structure

__all__ = [
    "__version__",
    "Structure",
    "as_structure",
    "NeighborList",
    "neighbor_list",
    "BoxGrid",
    "strided_boxes",
]
