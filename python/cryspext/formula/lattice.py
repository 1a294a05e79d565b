"""Bravais lattices as CRYSPNet counts them, and the free lattice parameters of each.

CRYSPNet (Liang et al. 2020) uses 14 classes: trigonal space groups with an R lattice are
"rhombohedral P" (their cell given as the rhombohedral primitive cell, a = b = c, α = β = γ),
every other trigonal and all hexagonal groups are "hexagonal P". A-centred orthorhombic groups
(38–41) count as base-centred "orthorhombic C". Lengths in Å, angles in degrees.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "BRAVAIS",
    "BRAVAIS_NAMES",
    "FREE_PARAMETERS",
    "PARAMETER_NAMES",
    "ANGLES",
    "bravais_of_spacegroup",
    "spacegroups_of_bravais",
    "hexagonal_to_rhombohedral",
    "rhombohedral_to_hexagonal",
    "cell_parameters",
    "full_parameters",
]

# Pearson-style symbols, in the order the models' outputs use.
BRAVAIS = ["aP", "mP", "mC", "oP", "oC", "oI", "oF", "tP", "tI", "hP", "hR", "cP", "cI", "cF"]

BRAVAIS_NAMES = {
    "aP": "triclinic P",
    "mP": "monoclinic P",
    "mC": "monoclinic C",
    "oP": "orthorhombic P",
    "oC": "orthorhombic C",
    "oI": "orthorhombic I",
    "oF": "orthorhombic F",
    "tP": "tetragonal P",
    "tI": "tetragonal I",
    "hP": "hexagonal P",
    "hR": "rhombohedral P",
    "cP": "cubic P",
    "cI": "cubic I",
    "cF": "cubic F",
}

PARAMETER_NAMES = ["a", "b", "c", "alpha", "beta", "gamma"]
ANGLES = ("alpha", "beta", "gamma")  # the parameters in degrees

# Only the parameters a lattice leaves free (the others follow from symmetry).
FREE_PARAMETERS = {
    "aP": ["a", "b", "c", "alpha", "beta", "gamma"],
    "mP": ["a", "b", "c", "beta"],
    "mC": ["a", "b", "c", "beta"],
    "oP": ["a", "b", "c"],
    "oC": ["a", "b", "c"],
    "oI": ["a", "b", "c"],
    "oF": ["a", "b", "c"],
    "tP": ["a", "c"],
    "tI": ["a", "c"],
    "hP": ["a", "c"],
    "hR": ["a", "alpha"],
    "cP": ["a"],
    "cI": ["a"],
    "cF": ["a"],
}

# Centred space groups by crystal family (International Tables, vol. A); the rest are P.
_MONO_C = {5, 8, 9, 12, 15}
_ORTHO_C = {20, 21, 35, 36, 37, 38, 39, 40, 41, 63, 64, 65, 66, 67, 68}
_ORTHO_F = {22, 42, 43, 69, 70}
_ORTHO_I = {23, 24, 44, 45, 46, 71, 72, 73, 74}
_TETRA_I = {79, 80, 82, 87, 88, 97, 98, 107, 108, 109, 110, 119, 120, 121, 122, 139, 140, 141, 142}
_RHOMBO = {146, 148, 155, 160, 161, 166, 167}
_CUBIC_F = {196, 202, 203, 209, 210, 216, 219, 225, 226, 227, 228}
_CUBIC_I = {197, 199, 204, 206, 211, 214, 217, 220, 229, 230}


def bravais_of_spacegroup(number: int) -> str:
    """CRYSPNet Bravais class (Pearson-style symbol, e.g. ``"cF"``) of space group 1–230."""
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
        raise TypeError(f"space-group number must be an int, got {type(number).__name__}")
    n = int(number)
    if not 1 <= n <= 230:
        raise ValueError(f"space-group number must be in 1..230, got {n}")
    if n <= 2:
        return "aP"
    if n <= 15:
        return "mC" if n in _MONO_C else "mP"
    if n <= 74:
        if n in _ORTHO_C:
            return "oC"
        if n in _ORTHO_F:
            return "oF"
        if n in _ORTHO_I:
            return "oI"
        return "oP"
    if n <= 142:
        return "tI" if n in _TETRA_I else "tP"
    if n <= 194:
        return "hR" if n in _RHOMBO else "hP"
    if n in _CUBIC_F:
        return "cF"
    if n in _CUBIC_I:
        return "cI"
    return "cP"


def spacegroups_of_bravais(bravais: str) -> list[int]:
    """All space-group numbers of one Bravais class, ascending."""
    if bravais not in FREE_PARAMETERS:
        raise ValueError(f"unknown Bravais lattice {bravais!r}; expected one of {BRAVAIS}")
    return [n for n in range(1, 231) if bravais_of_spacegroup(n) == bravais]


def hexagonal_to_rhombohedral(a_hex: float, c_hex: float) -> tuple[float, float]:
    """(a_r in Å, α_r in degrees) of the rhombohedral primitive cell from hexagonal axes (Å).

    a_r² = a²/3 + c²/9 and cos α_r = (2c² − 3a²) / (2c² + 6a²) (CRYSPNet appendix A).
    """
    a2, c2 = a_hex * a_hex, c_hex * c_hex
    a_r = math.sqrt(a2 / 3.0 + c2 / 9.0)
    cos_alpha = (2.0 * c2 - 3.0 * a2) / (2.0 * c2 + 6.0 * a2)
    return a_r, math.degrees(math.acos(max(-1.0, min(1.0, cos_alpha))))


def rhombohedral_to_hexagonal(a_r: float, alpha: float) -> tuple[float, float]:
    """(a, c) in Å of the hexagonal (obverse) axes of a rhombohedral primitive cell (a_r in Å,
    α in degrees), the inverse of ``hexagonal_to_rhombohedral``: a = 2 a_r sin(α/2),
    c = a_r √(3 (1 + 2 cos α))."""
    half = math.radians(alpha) / 2.0
    return 2.0 * a_r * math.sin(half), a_r * math.sqrt(max(0.0, 3.0 * (1.0 + 2.0 * math.cos(2.0 * half))))


def rhombohedral_to_hexagonal_uncertainty(a_r: float, alpha: float, sigma_a: float,
                                          sigma_alpha: float) -> tuple[float, float]:
    """(σ_a, σ_c) in Å of ``rhombohedral_to_hexagonal``'s (a, c), to first order, from σ_a (Å)
    and σ_α (degrees) of the rhombohedral cell taken as independent errors. NaN where c has
    no derivative (α at 120°, a flat cell) or an input is NaN."""
    x = math.radians(alpha)
    root_sq = 3.0 * (1.0 + 2.0 * math.cos(x))
    if not root_sq > 1e-9:  # at 120° (to rounding) the cell is flat: c = 0, no derivative
        return math.nan, math.nan
    root, s_x = math.sqrt(root_sq), math.radians(sigma_alpha)
    # a = 2 a_r sin(x/2): ∂/∂a_r = 2 sin(x/2), ∂/∂x = a_r cos(x/2)
    sigma_hex_a = math.hypot(2.0 * math.sin(x / 2.0) * sigma_a, a_r * math.cos(x / 2.0) * s_x)
    # c = a_r √(3 (1 + 2 cos x)): ∂/∂a_r = the root, ∂/∂x = −3 a_r sin x / root
    sigma_hex_c = math.hypot(root * sigma_a, 3.0 * a_r * math.sin(x) / root * s_x)
    return sigma_hex_a, sigma_hex_c


def cell_parameters(cell) -> np.ndarray:
    """(a, b, c, α, β, γ) in Å and degrees of a 3×3 cell given as rows."""
    m = np.asarray(cell, dtype=float)
    if m.shape != (3, 3):
        raise ValueError(f"cell must be 3x3, got shape {m.shape}")
    lengths = np.linalg.norm(m, axis=1)
    if np.any(lengths <= 0):
        raise ValueError("cell has a zero-length vector")

    def angle(i, j):
        c = float(m[i] @ m[j] / (lengths[i] * lengths[j]))
        return math.degrees(math.acos(max(-1.0, min(1.0, c))))

    return np.array([*lengths, angle(1, 2), angle(0, 2), angle(0, 1)])


def full_parameters(bravais: str, free: dict[str, float]) -> dict[str, float]:
    """Expand the free parameters of a Bravais lattice to all six (a, b, c Å; α, β, γ degrees)."""
    if bravais not in FREE_PARAMETERS:
        raise ValueError(f"unknown Bravais lattice {bravais!r}")
    a = free["a"]
    family = bravais[0]
    if family == "c":
        return dict(a=a, b=a, c=a, alpha=90.0, beta=90.0, gamma=90.0)
    if family == "t":
        return dict(a=a, b=a, c=free["c"], alpha=90.0, beta=90.0, gamma=90.0)
    if bravais == "hP":
        return dict(a=a, b=a, c=free["c"], alpha=90.0, beta=90.0, gamma=120.0)
    if bravais == "hR":
        al = free["alpha"]
        return dict(a=a, b=a, c=a, alpha=al, beta=al, gamma=al)
    if family == "o":
        return dict(a=a, b=free["b"], c=free["c"], alpha=90.0, beta=90.0, gamma=90.0)
    if family == "m":
        return dict(a=a, b=free["b"], c=free["c"], alpha=90.0, beta=free["beta"], gamma=90.0)
    return {k: free[k] for k in PARAMETER_NAMES}
