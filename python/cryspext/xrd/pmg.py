"""pymatgen adapters (need pymatgen): a δ-pattern calculator and a space-group/volume analyzer.

``DeltaXRDCalculator`` is an ``AbstractDiffractionPatternCalculator``: ``get_pattern`` returns a
``DiffractionPattern`` of ideal |F_hkl|² (no Lorentz–polarisation factor, no line shape) whose x
axis is 1/d in Å⁻¹ (``wavelength=None``) or 2θ in degrees for a given wavelength.
``SpgVolAnalyzer`` predicts space group and primitive volume from a structure or a measured pattern.
"""

from __future__ import annotations

import math

import numpy as np
from pymatgen.analysis.diffraction.core import AbstractDiffractionPatternCalculator, DiffractionPattern, get_unique_families

from .analyze import PatternResult, predict_pattern
from .form_factors import FormFactors
from .model import Prediction, load_model
from .profile import reflections
from .wavelengths import radiation

__all__ = ["DeltaXRDCalculator", "SpgVolAnalyzer"]


class DeltaXRDCalculator(AbstractDiffractionPatternCalculator):
    """Ideal δ-function powder pattern computed by cryspext's C++ core.

    Args:
        wavelength: None for a 1/d axis (Å⁻¹), else a name ("CuKa" uses Kα1) or a number in Å
            for a 2θ axis (degrees).
        b_factor: isotropic Debye–Waller B (Å²): a number or a dict by element.
        form_factors: a :class:`~cryspext.xrd.FormFactors` (default IT92).
    """

    def __init__(self, wavelength=None, b_factor=2.0, form_factors: FormFactors | None = None):
        self.wavelength = None if wavelength is None else radiation(wavelength).wavelength
        self.b_factor = b_factor
        self.form_factors = form_factors

    def get_pattern(self, structure, scaled=True, two_theta_range=None, inv_d_range=(0.1131, 1.0625)):
        """The pattern: one peak per distinct 1/d with its summed |F|² and hkl families.

        ``two_theta_range`` (degrees) applies when a wavelength is set, ``inv_d_range`` (Å⁻¹)
        otherwise. ``scaled`` normalises the strongest peak to 100.
        """
        lo, hi = inv_d_range
        if self.wavelength is not None:
            if two_theta_range is None:
                lo, hi = 1e-6, 2.0 / self.wavelength
            else:
                lo, hi = (2 * math.sin(math.radians(t / 2)) / self.wavelength for t in two_theta_range)
                lo = max(lo, 1e-6)
        r = reflections(structure, inv_d_min=lo, inv_d_max=hi, b_factor=self.b_factor, form_factors=self.form_factors)
        if len(r) == 0:
            return DiffractionPattern([], [], [], [])
        order = np.argsort(r.inv_d, kind="stable")
        g, inten, hkl = r.inv_d[order], r.intensity[order], r.hkl[order]
        starts = np.concatenate([[0], np.nonzero(np.diff(g) > 1e-8 * np.maximum(g[1:], 1))[0] + 1, [len(g)]])
        xs, ys, families, ds = [], [], [], []
        for a, b in zip(starts[:-1], starts[1:]):
            gg = float(g[a:b].mean())
            members = [tuple(int(v) for v in h) for h in hkl[a:b]] + [tuple(-int(v) for v in h) for h in hkl[a:b]]
            fam = get_unique_families(members)
            families.append([{"hkl": k, "multiplicity": m} for k, m in fam.items()])
            ys.append(float(inten[a:b].sum()))
            ds.append(1.0 / gg)
            if self.wavelength is None:
                xs.append(gg)
            else:
                xs.append(math.degrees(2 * math.asin(min(1.0, gg * self.wavelength / 2))))
        # Like pymatgen, drop peaks below SCALED_INTENSITY_TOL % of the strongest (extinctions).
        keep = np.asarray(ys) / max(ys) * 100 > self.SCALED_INTENSITY_TOL
        xs, ys, families, ds = ([v for v, k in zip(seq, keep) if k] for seq in (xs, ys, families, ds))
        pattern = DiffractionPattern(xs, ys, families, ds)
        if scaled:
            pattern.normalize(mode="max", value=100)
        return pattern


class SpgVolAnalyzer:
    """Space group and primitive-cell volume (Å³) with the shipped SpgVolNet-style ensemble."""

    def __init__(self, top: int = 5):
        self.top = top
        self.model = load_model()

    def from_structure(self, structure) -> Prediction:
        """Predict from a pymatgen ``Structure`` (its ideal δ-profile)."""
        return self.model.predict_structures([structure], self.top)[0]

    def from_pattern(self, pattern, wavelength="CuKa", **peak_options) -> PatternResult:
        """Predict from a measured pattern (path, Pattern or (2θ, I) arrays); returns peaks and prediction."""
        return predict_pattern(pattern, wavelength, self.top, **peak_options)
