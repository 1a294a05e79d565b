"""Composition features in the CRYSPNet / Magpie style, computed from the shipped element table.

For each elemental property (``elements.PROPERTIES``): the mole-fraction weighted mean, the
average deviation Σ xᵢ|fᵢ − mean|, the minimum, maximum and range. No mode features: they jump
when the majority element changes (CRYSPNet, Sec. II B). Then stoichiometry p-norms
(p = 0, 2, 3, 5, 7, 10), the fraction of valence electrons in s, p, d and f orbitals, ionic
character (charge balance possible with common oxidation states, max and mean
1 − exp(−(Δχ)²/4)) and the mole fraction of each element Z = 1..103.

All of these are intensive: Fe2O3 and FeO1.5 give the same vector. The lattice lengths are not:
they grow with the size of the formula unit. ``formula_unit_features`` gives two extensive
features of the reduced formula (``FORMULA_UNIT_FEATURE_NAMES``): its number of atoms and the sum
of its elements' ground-state volumes per atom (Å³). The shipped formula models (networks
and boosted trees) read them after the 221 intensive features (``predict.FormulaModels``).
"""

from __future__ import annotations

import itertools

import numpy as np

from .elements import MAX_Z, PROPERTIES, SYMBOLS, element_table
from .parse import as_composition

__all__ = ["FEATURE_NAMES", "FORMULA_UNIT_FEATURE_NAMES", "formula_features", "composition_features",
           "formula_unit_features", "formula_unit_rows", "reduced_amounts"]

_STATS = ["mean", "avg_dev", "min", "max", "range"]
_PNORMS = [0, 2, 3, 5, 7, 10]
_ORBITALS = ["s", "p", "d", "f"]

FEATURE_NAMES: list[str] = (
    [f"{s}_{p}" for p in PROPERTIES for s in _STATS]
    + [f"stoich_p{p}" for p in _PNORMS]
    + [f"frac_{o}_valence" for o in _ORBITALS]
    + ["charge_balance_possible", "max_ionic_char", "avg_ionic_char"]
    + [f"x_{SYMBOLS[z - 1]}" for z in range(1, MAX_Z + 1)]
)

# atoms in the reduced formula; Σ amount × ground-state volume per atom of the element (Å³)
FORMULA_UNIT_FEATURE_NAMES: list[str] = ["atoms_per_formula_unit", "formula_unit_volume"]

_IDX = {p: i for i, p in enumerate(PROPERTIES)}
# Beyond this many oxidation-state combinations the charge-balance search gives up (→ 0).
_MAX_COMBINATIONS = 200_000


def _charge_balanced(amounts: np.ndarray, states: list[list[int]]) -> bool:
    """True if one common oxidation state per element makes the formula neutral.

    Elements without listed states (noble gases) count as 0. Fractional amounts are allowed
    (balance within 1e-6 of the total amount).
    """
    choices = [s if s else [0] for s in states]
    if int(np.prod([len(c) for c in choices])) > _MAX_COMBINATIONS:
        return False
    tol = 1e-6 * float(amounts.sum())
    for combo in itertools.product(*choices):
        if abs(float(np.dot(amounts, combo))) <= tol:
            # A formula of one element is not an ionic compound.
            return len(amounts) > 1 and any(c != 0 for c in combo)
    return False


def _atomic_numbers(composition: dict[str, float]) -> np.ndarray:
    """Z of each element of ``composition``; a ValueError for elements without data."""
    z = []
    for el in composition:
        idx = SYMBOLS.index(el) + 1 if el in SYMBOLS else 0
        if not 1 <= idx <= MAX_Z:
            raise ValueError(
                f"no elemental property data for {el!r}: cryspext supports elements with "
                f"Z = 1..{MAX_Z} ({SYMBOLS[0]}..{SYMBOLS[MAX_Z - 1]})"
            )
        z.append(idx)
    return np.asarray(z)


def composition_features(composition: dict[str, float]) -> np.ndarray:
    """Feature vector (len(FEATURE_NAMES),) of an {element: amount} composition."""
    table, oxi = element_table()
    z = _atomic_numbers(composition)
    amounts = np.array([composition[el] for el in composition], dtype=float)
    x = amounts / amounts.sum()
    f = table[z - 1]  # (n_elements, n_properties)

    mean = x @ f
    avg_dev = x @ np.abs(f - mean)
    fmin, fmax = f.min(axis=0), f.max(axis=0)
    stats = np.stack([mean, avg_dev, fmin, fmax, fmax - fmin], axis=1).reshape(-1)

    pnorms = [float(len(x)) if p == 0 else float((x**p).sum() ** (1.0 / p)) for p in _PNORMS]

    valence = np.array([mean[_IDX[f"n{o}_valence"]] for o in _ORBITALS])
    total = mean[_IDX["n_valence"]]
    orbital = valence / total if total > 0 else np.zeros(4)

    chi = f[:, _IDX["electronegativity"]]
    ionic = 1.0 - np.exp(-0.25 * (chi[:, None] - chi[None, :]) ** 2)
    max_ionic = float(ionic.max())
    # Over unordered pairs i < j (the diagonal is zero), as in Ward et al.'s Magpie set.
    avg_ionic = 0.5 * float(x @ ionic @ x)
    balanced = float(_charge_balanced(amounts, [oxi[i - 1] for i in z]))

    fractions = np.zeros(MAX_Z)
    np.add.at(fractions, z - 1, x)
    out = np.concatenate(
        [stats, pnorms, orbital, [balanced, max_ionic, avg_ionic], fractions]
    ).astype(np.float64)
    # Round-off zeros (a deviation of 2e-16 when all elements share a value, depending on the
    # element order) become exact zeros, so the order of a formula cannot change a tree's path.
    out[np.abs(out) < 1e-12] = 0.0
    return out


def formula_features(formula) -> np.ndarray:
    """Features of a formula str, pymatgen ``Composition`` or {element: amount} mapping."""
    return composition_features(as_composition(formula))


def reduced_amounts(amounts) -> np.ndarray:
    """Amounts of the reduced formula: whole-number amounts divided by their greatest common
    divisor (Fe4O6 → Fe2O3, O2 → O); amounts that are not all whole numbers (Li0.5CoO2) as given,
    except for a single element, whose formula unit is one atom whatever its amount (Pd1.7 → Pd).
    """
    a = np.asarray(amounts, dtype=float)
    if a.size == 1:
        return np.ones(1)
    whole = np.round(a)
    # Beyond 2**53 a float is no exact whole number (and int64 overflows at 2**63).
    if np.all(whole >= 1) and np.all(whole < 2.0**53) and np.all(np.abs(a - whole) <= 1e-6):
        return whole / np.gcd.reduce(whole.astype(np.int64))
    return a


def formula_unit_features(formula) -> np.ndarray:
    """(2,) extensive features of the reduced formula (``FORMULA_UNIT_FEATURE_NAMES``): the
    number of atoms and Σ amount × ground-state volume per atom (Å³, the element table's
    ``gs_volume_per_atom``). A formula str, pymatgen ``Composition`` or mapping."""
    composition = as_composition(formula)
    table, _ = element_table()
    z = _atomic_numbers(composition)
    n = reduced_amounts(list(composition.values()))
    volume = float(n @ table[z - 1, _IDX["gs_volume_per_atom"]])
    return np.array([n.sum(), volume])


def formula_unit_rows(formulas) -> np.ndarray:
    """(n, 2) ``formula_unit_features`` of each of ``formulas`` (a sequence)."""
    return np.stack([formula_unit_features(f) for f in formulas])
