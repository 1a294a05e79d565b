"""Strided pattern matching (ARISE thesis ch. 6): class-probability and uncertainty maps of large samples.

    >>> from cryspext.spm import spm
    >>> result = spm(atoms, box=16.0, stride=3.0)        # SPMResult
    >>> result.probability("fcc_Cu_A_cF4_225_a")           # (nz, ny, nx) map
    >>> result.per_atom().label_names                      # label of every atom
    >>> result.save("maps.npz"); result.plot("maps.png")
"""

from __future__ import annotations

from .core import iter_spm, load, spm, subgrid
from .mc import MCResult, SharedMaskMLP, mc_dropout
from .result import PerAtomResult, SPMResult, project_to_atoms

__all__ = ["spm", "iter_spm", "load", "subgrid", "SPMResult", "PerAtomResult", "project_to_atoms", "MCResult", "mc_dropout", "SharedMaskMLP"]
