"""cryspext: crystal-structure recognition from atoms, powder XRD patterns or formulas.

Atoms:     ``classify`` (ARISE-style Bayesian classifier, 108 prototypes), ``spm`` (strided
           pattern matching maps over large samples), ``descriptors`` (ARISE SOAP).
Patterns:  ``xrd`` (ideal δ-profiles, space group + volume from a structure or measured pattern).
Formulas:  ``predict_formula`` (``predict_formulas`` for many), ``predict_cell`` (Bravais lattice,
           space group, lattice parameters); ``check_cell`` / ``check_structure`` (does a
           proposed space group and cell fit the formula?); ``find_analogues`` (known
           compounds of the same stoichiometry with similar elements); ``seed_structure`` (a
           starting structure from the nearest of them, elements substituted).
Geometry:  ``neighbor_list``, ``strided_boxes``; ``as_structure`` reads ASE, pymatgen, OVITO, files.

Sub-packages that need torch are imported on first use, so ``import cryspext`` stays light.
"""

from __future__ import annotations

import importlib
import types

from ._version import __version__
from .boxes import BoxGrid, strided_boxes
from .neighbors import NeighborList, neighbor_list
from .structure import Structure, as_structure
from . import spm  # noqa: E402
from .spm import SPMResult  # noqa: E402


class _CallableModule(types.ModuleType):
    """``cryspext.spm`` is both a sub-package and, called, its main function ``cryspext.spm.spm``.

    Rebinding the attribute to the function instead would break ``import cryspext.spm.core``.
    """

    def __call__(self, *args, **kwargs):
        return self.spm(*args, **kwargs)


spm.__class__ = _CallableModule

# name -> (module, attribute); resolved lazily by __getattr__.
_LAZY = {
    "classify": ("cryspext.arise", "classify"),
    "classify_many": ("cryspext.arise", "classify_many"),
    "ClassificationResult": ("cryspext.arise", "ClassificationResult"),
    "arise_soap": ("cryspext.descriptors", "arise_soap"),
    "arise_soap_batch": ("cryspext.descriptors", "arise_soap_batch"),
    "arise_soap_boxes": ("cryspext.descriptors", "arise_soap_boxes"),
    "soap_per_atom": ("cryspext.descriptors", "soap_per_atom"),
    "nearest_neighbor_distance": ("cryspext.descriptors", "nearest_neighbor_distance"),
    "delta_profile": ("cryspext.xrd", "delta_profile"),
    "predict_pattern": ("cryspext.xrd", "predict_pattern"),
    "predict_formula": ("cryspext.formula", "predict_formula"),
    "predict_formulas": ("cryspext.formula", "predict_formulas"),
    "predict_cell": ("cryspext.formula", "predict_cell"),
    "check_cell": ("cryspext.formula", "check_cell"),
    "check_structure": ("cryspext.formula", "check_structure"),
    "find_analogues": ("cryspext.formula", "find_analogues"),
    "seed_structure": ("cryspext.formula", "seed_structure"),
    "polycrystal": ("cryspext.build", "polycrystal"),
}
_SUBMODULES = {"arise", "descriptors", "xrd", "formula", "build", "models", "training"}

__all__ = [
    "__version__",
    "Structure",
    "as_structure",
    "NeighborList",
    "neighbor_list",
    "BoxGrid",
    "strided_boxes",
    "spm",
    "SPMResult",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"cryspext.{name}")
    raise AttributeError(f"module 'cryspext' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
