"""Joint formula-and-cell features (``formula.formulacell``): counts of atoms per cell from the
volume ratio, next to the formula's chemistry columns and the cell's canonical features."""

import numpy as np
import pytest

from cryspext.formula.cellgeom import CELL_FEATURE_NAMES, cell_features
from cryspext.formula.features import FEATURE_NAMES, formula_features, formula_unit_features
from cryspext.formula.formulacell import JOINT_FEATURE_NAMES, JOINT_FORMULA_COLUMNS, N_AMOUNTS, joint_features


def _joint(formulas, cells):
    X = np.stack([formula_features(f) for f in formulas])
    C = np.stack([cell_features(c) for c in cells])
    return {n: v for n, v in zip(JOINT_FEATURE_NAMES, joint_features(formulas, X, C).T)}


def test_columns_are_the_formula_unit_the_counts_the_chemistry_and_the_cell():
    assert len(JOINT_FEATURE_NAMES) == len(set(JOINT_FEATURE_NAMES)) == (
        5 + 2 * N_AMOUNTS + len(JOINT_FORMULA_COLUMNS) + len(CELL_FEATURE_NAMES))
    assert set(JOINT_FORMULA_COLUMNS) <= set(FEATURE_NAMES)
    cell = [5.64, 5.64, 5.64, 90, 90, 90]
    f = _joint(["NaCl"], [cell])
    atoms, volume = formula_unit_features("NaCl")
    z = 5.64 ** 3 / volume
    assert f["atoms_per_formula_unit"][0] == atoms == 2
    assert f["formula_unit_volume"][0] == pytest.approx(volume, rel=1e-6)
    assert f["log_volume_ratio"][0] == pytest.approx(np.log(z), rel=1e-5)
    assert f["formula_units_per_cell"][0] == pytest.approx(z, rel=1e-5)
    assert f["atoms_per_cell"][0] == pytest.approx(2 * z, rel=1e-5)
    assert [f[f"amount_{i}"][0] for i in range(1, 5)] == [1, 1, 0, 0]
    assert f["cell_atoms_1"][0] == pytest.approx(z, rel=1e-5) and f["cell_atoms_3"][0] == 0
    x = formula_features("NaCl")
    for name in JOINT_FORMULA_COLUMNS:
        assert f[name][0] == pytest.approx(x[FEATURE_NAMES.index(name)], rel=1e-6)
    c = cell_features(cell)
    for name, value in zip(CELL_FEATURE_NAMES, c):
        assert f[name][0] == pytest.approx(value, rel=1e-6, abs=1e-7)


def test_counts_follow_the_cell_given():
    """A conventional cubic F cell holds 4 primitive cells: 4 times the atoms; the same lattice
    in another basis of the same volume gives the same features (canonical cell)."""
    a = 5.64
    conventional = [a, a, a, 90, 90, 90]
    primitive = [a / np.sqrt(2)] * 3 + [60, 60, 60]
    f = _joint(["NaCl", "NaCl"], [conventional, primitive])
    assert f["formula_units_per_cell"][0] / f["formula_units_per_cell"][1] == pytest.approx(4, rel=1e-4)
    assert f["cell_atoms_2"][0] / f["cell_atoms_2"][1] == pytest.approx(4, rel=1e-4)
    sheared = [a, a * np.sqrt(2), a, 90, 90, 45]  # vectors a, a + b, c of the same cubic cell
    g = _joint(["NaCl"], [sheared])
    for n in JOINT_FEATURE_NAMES:
        assert g[n][0] == pytest.approx(f[n][0], rel=1e-4, abs=1e-6), n


def test_amounts_are_reduced_sorted_and_cut_at_four():
    f = _joint(["Fe4O6", "Li0.5CoO2", "BaCaSrMgTiO6"], [[5, 5, 13.7, 90, 90, 120]] * 3)
    assert [f[f"amount_{i}"][0] for i in range(1, 5)] == [3, 2, 0, 0]  # Fe2O3
    assert [f[f"amount_{i}"][1] for i in range(1, 5)] == [2, 1, 0.5, 0]  # fractional: as written
    assert [f[f"amount_{i}"][2] for i in range(1, 5)] == [6, 1, 1, 1]  # six elements: 4 largest
    assert f["atoms_per_formula_unit"][2] == 11  # all of them still count


def test_bad_rows_are_refused():
    X = formula_features("NaCl")[None]
    C = cell_features([4, 4, 4, 90, 90, 90])[None]
    with pytest.raises(ValueError, match="X must be"):
        joint_features(["NaCl", "KCl"], X, C)
    with pytest.raises(ValueError, match="C must be"):
        joint_features(["NaCl"], X, C[:, :10])
    with pytest.raises(ValueError, match="unknown element"):
        joint_features(["Xx2"], X, C)
