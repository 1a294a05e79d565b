"""Space group and primitive-cell volume from a crystal structure or a measured powder pattern."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .model import Prediction, load_model
from .pattern import Peaks, extract_peaks, to_profile

__all__ = ["PatternResult", "predict_structure", "predict_pattern"]


@dataclass
class PatternResult:
    """What came out of a measured pattern: the peaks, the model input built from them, the prediction."""

    peaks: Peaks
    profile: np.ndarray
    prediction: Prediction

    def as_dict(self) -> dict:
        r = self.peaks.radiation
        return {
            "wavelength_A": r.wavelength,
            "kalpha2_A": r.kalpha2,
            "n_peaks": len(self.peaks),
            "prediction": self.prediction.as_dict(),
            "peaks": self.peaks.as_dicts(),
        }


def predict_structure(structure: Any, top: int = 5) -> Prediction:
    """Predict space group and primitive volume (Å³) from a structure's ideal δ-profile."""
    return load_model().predict_structures([structure], top)[0]


def predict_pattern(pattern: Any, wavelength="CuKa", top: int = 5, **peak_options) -> PatternResult:
    """Extract peaks from a measured pattern (file, :class:`~cryspext.xrd.pattern.Pattern` or
    (2θ, I) arrays), bin them on the model's 1/d grid and predict. ``peak_options`` go to
    :func:`~cryspext.xrd.pattern.extract_peaks`."""
    model = load_model()
    peaks = extract_peaks(pattern, wavelength, **peak_options)
    profile = to_profile(peaks, model.grid)
    if not profile.any():
        raise ValueError(
            f"none of the {len(peaks)} peaks lies inside the model's 1/d range "
            f"[{model.grid.inv_d_min}, {model.grid.inv_d_max}] Å⁻¹: check the wavelength"
        )
    return PatternResult(peaks, profile, model.predict_profiles(profile, top)[0])
