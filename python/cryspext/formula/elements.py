"""The elemental property table shipped with cryspext (package data ``data/elements.json``).

Derived from matminer's bundled Magpie tables by ``python -m cryspext.training.formula
elements`` (see the ``provenance`` entry of the file). Read without pymatgen or matminer.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["SYMBOLS", "MAX_Z", "PROPERTIES", "element_table", "provenance", "atomic_number"]

_PATH = Path(__file__).resolve().parent / "data" / "elements.json"
_DATA = json.loads(_PATH.read_text())

SYMBOLS: list[str] = list(_DATA["symbols"])  # Z = 1 .. len(SYMBOLS)
PROPERTIES: list[str] = list(_DATA["properties"])
# Elements with data for (nearly) every property; heavier ones are refused by the features.
MAX_Z = 103
_Z = {s: i + 1 for i, s in enumerate(SYMBOLS)}


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol; ``ValueError`` for an unknown one."""
    try:
        return _Z[symbol]
    except KeyError:
        raise ValueError(f"unknown element {symbol!r}") from None


def provenance() -> str:
    """Where the table comes from (one line)."""
    return _DATA["provenance"]


@lru_cache(maxsize=1)
def element_table() -> tuple[np.ndarray, list[list[int]]]:
    """(values (MAX_Z, n_properties), common oxidation states per element) for Z = 1..MAX_Z.

    A few values are missing upstream (electronegativity of He, Ne, Ar, Rn, Lr; melting point
    of He and Fr; covalent radius of Bk..Lr). They are imputed with the mean of that property
    over the elements that have it, so that such formulas still get finite features.
    """
    values = np.array(
        [[np.nan if v is None else v for v in _DATA["properties"][p][:MAX_Z]] for p in PROPERTIES],
        dtype=float,
    ).T
    col_mean = np.nanmean(values, axis=0)
    missing = np.isnan(values)
    values[missing] = np.take(col_mean, np.nonzero(missing)[1])
    return values, [list(o) for o in _DATA["oxidation_states"][:MAX_Z]]
