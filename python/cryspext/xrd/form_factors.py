"""Atomic X-ray form factors f(s), s = sinθ/λ (Å⁻¹), as coefficient tables for the C++ core.

The default table (``FormFactors.it92()``) is the 4-Gaussian + constant fit of International
Tables for Crystallography Vol. C (1992), Table 6.1.1.4, for H..Cf, taken from the gemmi
package (see ``form_factors_it92.json`` and ``make_form_factors.py``). ``FormFactors.pymatgen()``
reads pymatgen's own table (Mott–Bethe form) so that cryspext can reproduce pymatgen's
``XRDCalculator`` exactly; it needs pymatgen installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["FormFactors"]

_IT92 = Path(__file__).with_name("form_factors_it92.json")
N_ROWS = 119  # Z = 0..118


@dataclass(frozen=True)
class FormFactors:
    """A (119, 9) coefficient table a1..a4, b1..b4, c indexed by Z (NaN rows: element missing).

    ``kind`` 0: f(s) = Σ a_i exp(-b_i s²) + c (Cromer–Mann form);
    ``kind`` 1: f(s) = Z - 41.78214 s² Σ a_i exp(-b_i s²) (pymatgen's Mott–Bethe form).
    """

    table: np.ndarray
    kind: int = 0
    name: str = "custom"

    def __post_init__(self):
        table = np.ascontiguousarray(self.table, dtype=np.float64)
        if table.shape != (N_ROWS, 9):
            raise ValueError(f"form-factor table must have shape ({N_ROWS}, 9), got {table.shape}")
        if self.kind not in (0, 1):
            raise ValueError("kind must be 0 (Cromer-Mann form) or 1 (Mott-Bethe form)")
        object.__setattr__(self, "table", table)

    def available(self, z: int) -> bool:
        return 0 <= z < N_ROWS and bool(np.all(np.isfinite(self.table[z])))

    def __call__(self, z: int, s: np.ndarray | float) -> np.ndarray:
        """f(s) for atomic number ``z`` at s = sinθ/λ (Å⁻¹), in electrons."""
        if not self.available(z):
            raise ValueError(f"no form factor for atomic number {z} in table {self.name!r}")
        a, b, c = self.table[z, :4], self.table[z, 4:8], self.table[z, 8]
        s2 = np.asarray(s, dtype=float)[..., None] ** 2
        gauss = np.sum(a * np.exp(-b * s2), axis=-1)
        if self.kind == 1:
            return z - 41.78214 * s2[..., 0] * gauss
        return gauss + c

    @staticmethod
    def it92() -> "FormFactors":
        """International Tables Vol. C (1992) Table 6.1.1.4 coefficients (shipped, H..Cf)."""
        return _it92()

    @staticmethod
    def pymatgen() -> "FormFactors":
        """pymatgen's ``atomic_scattering_params.json`` (Mott–Bethe form; needs pymatgen)."""
        return _pymatgen()

    @staticmethod
    def provenance() -> str:
        return json.loads(_IT92.read_text())["provenance"]


@lru_cache(maxsize=None)
def _it92() -> FormFactors:
    data = json.loads(_IT92.read_text())
    table = np.full((N_ROWS, 9), np.nan)
    for entry in data["elements"].values():
        table[entry["Z"]] = entry["coefficients"]
    return FormFactors(table, 0, "it92")


@lru_cache(maxsize=None)
def _pymatgen() -> FormFactors:
    try:
        from pymatgen.analysis.diffraction import xrd as pmg_xrd
        from pymatgen.core import Element
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("FormFactors.pymatgen() needs pymatgen (pip install pymatgen)") from exc
    table = np.full((N_ROWS, 9), np.nan)
    for symbol, pairs in pmg_xrd.ATOMIC_SCATTERING_PARAMS.items():
        z = Element(symbol).Z
        pairs = np.asarray(pairs, dtype=float)
        table[z, :4] = pairs[:, 0]
        table[z, 4:8] = pairs[:, 1]
        table[z, 8] = 0.0
    return FormFactors(table, 1, "pymatgen")
