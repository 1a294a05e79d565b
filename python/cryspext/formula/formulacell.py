"""Features of a formula and its cell read together, for the joint trees of
``predict_cell(..., formula=...)``.

The formula model and the cell model each see half of a crystal, and their naive-Bayes product
(``FormulaModels.formula_and_cell``) cannot see what only the two halves together tell: how many
atoms of each element the cell holds. Those counts must be sums of the Wyckoff multiplicities of
the space group (one Ti in a cubic cell of 60 Å³ fits Pm-3m, not Fm-3m), so a model that reads
them next to the cell learns much of what neither half knows.

Columns (``JOINT_FEATURE_NAMES``): the formula unit (atoms, Σ elemental ground-state volumes in
Å³), ρ = ln(V_cell / V_formula unit) and e^ρ (about Z, formula units per cell), e^ρ × atoms (about
the atoms per cell), the 4 largest amounts of the reduced formula and e^ρ × each (about the atoms
of that element per cell; 0 where the formula has fewer elements), a few of the formula's
chemistry features (``JOINT_FORMULA_COLUMNS`` of ``features.FEATURE_NAMES``), then the cell's
canonical features (``cellgeom.CELL_FEATURE_NAMES``). The cell is read as given: a conventional
cell of a centred lattice holds 2–4 times the atoms of its primitive cell, which the trees learn
with the metric lattice type.
"""

from __future__ import annotations

import numpy as np

from .cellgeom import CELL_FEATURE_NAMES
from .features import FEATURE_NAMES, formula_unit_features, reduced_amounts
from .parse import as_composition

__all__ = ["JOINT_FORMULA_COLUMNS", "JOINT_FEATURE_NAMES", "N_AMOUNTS", "joint_features"]

N_AMOUNTS = 4  # amounts of the reduced formula kept, largest first
# Chemistry that decides between structure types at the same counts (ionic or metallic, d or
# f shell, size mismatch); fixed by hand, not selected on data.
JOINT_FORMULA_COLUMNS = [
    "stoich_p0", "mean_electronegativity", "range_electronegativity", "max_ionic_char",
    "avg_ionic_char", "charge_balance_possible", "mean_row", "mean_column", "range_column",
    "mean_covalent_radius", "range_covalent_radius", "mean_n_valence", "frac_p_valence",
    "frac_d_valence", "frac_f_valence", "mean_mendeleev_number", "range_mendeleev_number",
    "min_mendeleev_number", "max_mendeleev_number"]
JOINT_FEATURE_NAMES = (
    ["atoms_per_formula_unit", "formula_unit_volume", "log_volume_ratio", "formula_units_per_cell",
     "atoms_per_cell"]
    + [f"amount_{i + 1}" for i in range(N_AMOUNTS)]
    + [f"cell_atoms_{i + 1}" for i in range(N_AMOUNTS)]
    + JOINT_FORMULA_COLUMNS + list(CELL_FEATURE_NAMES))

_PICK = [FEATURE_NAMES.index(n) for n in JOINT_FORMULA_COLUMNS]
_LOG_VOLUME = list(CELL_FEATURE_NAMES).index("log_volume")


def joint_features(formulas, X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """(n, len(JOINT_FEATURE_NAMES)) float32 joint features of ``formulas`` (a sequence of
    formula str, pymatgen ``Composition`` or mappings), their formula features ``X`` (n, ≥ 221;
    ``features.formula_features``, further columns ignored) and the canonical features ``C``
    (n, 25; ``cellgeom.cell_features``) of their cells."""
    X, C = np.asarray(X, dtype=float), np.asarray(C, dtype=float)
    n = len(formulas)
    if X.ndim != 2 or X.shape[0] != n or X.shape[1] < len(FEATURE_NAMES):
        raise ValueError(f"X must be ({n}, ≥ {len(FEATURE_NAMES)}), got {X.shape}")
    if C.shape != (n, len(CELL_FEATURE_NAMES)):
        raise ValueError(f"C must be ({n}, {len(CELL_FEATURE_NAMES)}), got {C.shape}")
    unit = np.zeros((n, 2))
    amounts = np.zeros((n, N_AMOUNTS))
    for i, formula in enumerate(formulas):
        composition = as_composition(formula)
        unit[i] = formula_unit_features(composition)
        a = np.sort(reduced_amounts(list(composition.values())))[::-1][:N_AMOUNTS]
        amounts[i, : len(a)] = a
    rho = C[:, _LOG_VOLUME] - np.log(unit[:, 1])
    z = np.exp(rho)
    out = np.column_stack([unit, rho, z, unit[:, 0] * z, amounts, amounts * z[:, None],
                           X[:, _PICK], C])
    return out.astype(np.float32)
