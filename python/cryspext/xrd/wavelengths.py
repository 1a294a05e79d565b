"""X-ray tube wavelengths (Å) and the parsing of wavelength arguments.

Kα1/Kα2 values: G. Hölzer et al., Phys. Rev. A 56, 4554 (1997) for Cr, Fe, Co, Cu; International
Tables for Crystallography Vol. C, Table 4.2.2.1 for Mo and Ag. The Kα2/Kα1 intensity ratio of
every anode is taken as 0.5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Radiation", "radiation", "ANODES"]

# anode: (Kα1, Kα2) in Å
ANODES = {
    "Cr": (2.2897260, 2.2936510),
    "Fe": (1.9360413, 1.9399730),
    "Co": (1.7889961, 1.7928351),
    "Cu": (1.5405929, 1.5444274),
    "Mo": (0.7093171, 0.7136070),
    "Ag": (0.5594218, 0.5638130),
}
KALPHA2_RATIO = 0.5


@dataclass(frozen=True)
class Radiation:
    """Primary wavelength λ1 (Å); with ``kalpha2`` the pattern also holds a λ2 line of relative
    intensity ``ratio`` that peak extraction strips (Rachinger)."""

    wavelength: float
    kalpha2: float | None = None
    ratio: float = KALPHA2_RATIO
    name: str = ""

    def __post_init__(self):
        if not (self.wavelength > 0 and self.wavelength < 10):
            raise ValueError(f"wavelength must be in (0, 10) Å, got {self.wavelength}")
        if self.kalpha2 is not None and not self.kalpha2 > self.wavelength:
            raise ValueError("the Kα2 wavelength must be longer than Kα1")
        if not 0 <= self.ratio < 1:
            raise ValueError("the Kα2/Kα1 ratio must be in [0, 1)")


_NAME = re.compile(r"^\s*(cr|fe|co|cu|mo|ag)\s*[-_ ]?\s*(k\s*(?:a|α|alpha)\s*(1|2|12)?)?\s*$", re.IGNORECASE)


def radiation(spec) -> Radiation:
    """Parse ``spec``: an anode name ("CuKa", "Cu Kα", "Cu" -> Kα1 + Kα2 doublet; "CuKa1" -> Kα1
    alone), a number in Å (monochromatic), or a :class:`Radiation`."""
    if isinstance(spec, Radiation):
        return spec
    if isinstance(spec, bool):
        raise TypeError("wavelength must be a name such as 'CuKa' or a number in Å")
    if isinstance(spec, (int, float)):
        return Radiation(float(spec), None, 0.0, f"{float(spec):g} Å")
    if not isinstance(spec, str):
        raise TypeError(f"wavelength must be a name such as 'CuKa' or a number in Å, got {type(spec).__name__}")
    try:
        return Radiation(float(spec), None, 0.0, f"{float(spec):g} Å")
    except ValueError:
        pass
    m = _NAME.match(spec)
    if not m:
        raise ValueError(
            f"unknown wavelength {spec!r}: use a number in Å or one of "
            + ", ".join(f"{a}Ka" for a in ANODES) + " (append 1 for Kα1 alone)"
        )
    anode = m.group(1).capitalize()
    k1, k2 = ANODES[anode]
    if m.group(3) == "1":
        return Radiation(k1, None, 0.0, f"{anode}Ka1")
    if m.group(3) == "2":
        return Radiation(k2, None, 0.0, f"{anode}Ka2")
    return Radiation(k1, k2, KALPHA2_RATIO, f"{anode}Ka")
