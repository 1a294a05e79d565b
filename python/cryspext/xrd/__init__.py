"""Powder X-ray diffraction: ideal δ-profiles (C++), measured patterns, space group + volume.

- :func:`delta_profile` / :func:`delta_profiles`: |F_hkl|² on a uniform 1/d grid (Å⁻¹);
  :func:`reflections`: the reflections themselves. Form factors: International Tables Vol. C
  (1992) Table 6.1.1.4 (4 Gaussians + constant), from the gemmi package's table.
- :func:`read_pattern`, :func:`extract_peaks`, :func:`to_profile`: measured patterns (Scheme 2).
- :func:`predict_structure`, :func:`predict_pattern`: the shipped SpgVolNet-style ensemble.
- ``cryspext.xrd.pmg``: pymatgen calculator and analyzer classes (needs pymatgen).
"""

from __future__ import annotations

from .analyze import PatternResult, predict_pattern, predict_structure
from .form_factors import FormFactors
from .model import Prediction, load_model
from .pattern import Pattern, Peaks, extract_peaks, read_pattern, to_profile
from .profile import DeltaGrid, Reflections, delta_profile, delta_profiles, reflections
from .wavelengths import Radiation, radiation

__all__ = [
    "DeltaGrid", "Reflections", "delta_profile", "delta_profiles", "reflections", "FormFactors",
    "Pattern", "Peaks", "read_pattern", "extract_peaks", "to_profile", "Radiation", "radiation",
    "Prediction", "load_model", "PatternResult", "predict_structure", "predict_pattern",
]
