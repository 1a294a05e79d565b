"""From a formula or a unit cell alone: likely Bravais lattice, space group and lattice parameters.

* ``predict_formula("LiFePO4", top_k=3)`` — CRYSPNet-style network ensembles mixed with
  gradient-boosted trees, on Magpie-style features; ``predict_formulas([...])`` for many;
  ``plot.plot_formula(answer, "out.png")`` draws one answer.
* ``predict_cell(a, b, c, alpha, beta, gamma)`` — space group from the cell geometry; with
  ``formula=...`` from the cell and the formula together.
* ``table.answer_rows`` / ``table.write_csv`` — answers as one flat row per formula and
  candidate lattice (CSV, pandas).
* ``check_cell(formula, spacegroup, cell)`` / ``check_structure(atoms)`` — how well a proposed
  space group and cell (an indexing, a CIF) fit what the model expects for the formula.
* ``find_analogues("NaMnPO4")`` — known compounds (Materials Project training formulas) of the
  same stoichiometry with the most similar elements, with their space groups and cells;
  ``seed_structure("NaMnPO4")`` — the nearest one's structure with the formula's elements
  substituted, an ``ase.Atoms`` to relax.
* ``parse_formula`` / ``formula_features`` / ``formula_unit_features`` — the parser and the
  features behind them (intensive Magpie-style statistics; the size of the reduced formula).

The element data ship with cryspext (``data/elements.json``); pymatgen and matminer are not
needed at run time.
"""

from __future__ import annotations

from .features import FEATURE_NAMES, FORMULA_UNIT_FEATURE_NAMES, formula_features, formula_unit_features
from .lattice import BRAVAIS, BRAVAIS_NAMES, bravais_of_spacegroup
from .parse import as_composition, parse_formula
from .check import check_cell, check_structure
from .analogues import find_analogues, seed_structure
from .predict import FormulaModels, predict_cell, predict_formula, predict_formulas

__all__ = [
    "predict_formula",
    "predict_formulas",
    "predict_cell",
    "check_cell",
    "check_structure",
    "find_analogues",
    "seed_structure",
    "parse_formula",
    "as_composition",
    "formula_features",
    "formula_unit_features",
    "FEATURE_NAMES",
    "FORMULA_UNIT_FEATURE_NAMES",
    "BRAVAIS",
    "BRAVAIS_NAMES",
    "bravais_of_spacegroup",
    "FormulaModels",
]
