"""check_cell / check_structure: a space group and cell against the formula model's expectations."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryspext.formula.check import check_cell, check_structure
from cryspext.formula.predict import predict_cell, predict_formula


def test_a_known_cell_fits_and_the_numbers_are_predict_formulas():
    r = check_cell("NaCl", 225, (5.64, 5.64, 5.64, 90, 90, 90))
    ranking = predict_formula("NaCl", top_k=14, n_spacegroups=230)
    names = [c["bravais"] for c in ranking["candidates"]]
    assert r["bravais"] == "cF" and r["bravais_rank"] == names.index("cF") + 1
    assert r["bravais_probability"] == ranking["candidates"][names.index("cF")]["probability"]
    told = predict_formula("NaCl", spacegroup=225)["candidates"][0]["lattice"]["a"]
    a = r["lattice"]["a"]
    assert list(r["lattice"]) == ["a"] and a["predicted"] == told["value"]
    assert a["z"] == pytest.approx((5.64 - told["value"]) / told["uncertainty"])
    assert r["max_abs_z"] == abs(a["z"]) < 2
    both = predict_cell(5.64, 5.64, 5.64, 90, 90, 90, top_k=1, formula="NaCl", setting="standard")["spacegroups"][0]
    assert r["with_cell"] == {"probability": both["probability"], "rank": 1} and both["number"] == 225
    json.dumps(r)  # plain JSON types


def test_a_wrong_cell_or_group_stands_out():
    fits = check_cell("NaCl", 225, (5.64, 5.64, 5.64, 90, 90, 90))
    too_big = check_cell("NaCl", 225, (9.0, 9.0, 9.0, 90, 90, 90))
    assert too_big["max_abs_z"] > 3 > fits["max_abs_z"]
    triclinic = check_cell("NaCl", 2, (3.99, 3.99, 3.99, 60, 60, 60))
    assert triclinic["bravais_rank"] > fits["bravais_rank"]
    assert set(triclinic["lattice"]) == {"a", "b", "c", "alpha", "beta", "gamma"}
    rare = check_cell("NaCl", 196, (5.64, 5.64, 5.64, 90, 90, 90))  # F23, also cF
    assert rare["spacegroup_rank"] > fits["spacegroup_rank"] == 1
    assert rare["with_cell"]["rank"] > fits["with_cell"]["rank"] == 1


def test_rhombohedral_groups_on_either_axes_agree():
    hexagonal = check_cell("Fe2O3", 167, (5.035, 5.035, 13.75, 90, 90, 120))
    from cryspext.formula.lattice import hexagonal_to_rhombohedral

    a_r, alpha = hexagonal_to_rhombohedral(5.035, 13.75)
    rhombohedral = check_cell("Fe2O3", 167, (a_r, a_r, a_r, alpha, alpha, alpha))
    assert set(hexagonal["lattice"]) == {"a", "alpha"}
    for n in ("a", "alpha"):
        assert hexagonal["lattice"][n]["z"] == pytest.approx(rhombohedral["lattice"][n]["z"], rel=1e-9)
    # with_cell: hexagonal axes are the standard setting the standard-setting trees learned;
    # rhombohedral axes are not, so they are read setting-independently.
    for r, cell, setting in ((hexagonal, (5.035, 5.035, 13.75, 90, 90, 120), "standard"),
                             (rhombohedral, (a_r, a_r, a_r, alpha, alpha, alpha), "any")):
        ranked = predict_cell(*cell, top_k=230, formula="Fe2O3", setting=setting)["spacegroups"]
        assert r["with_cell"]["probability"] == next(s["probability"] for s in ranked if s["number"] == 167)


@pytest.mark.parametrize("spacegroup, cell, words", [
    (0, (5, 5, 5, 90, 90, 90), "1..230"),
    (231, (5, 5, 5, 90, 90, 90), "1..230"),
    (225, (5, 6, 7, 90, 90, 90), "metric of a cF"),
    (62, (5, 6, 7, 90, 100, 90), "metric of a oP"),
    (167, (5, 6, 13, 90, 90, 120), "a = b"),
    (225, (5, 5, float("nan"), 90, 90, 90), "finite"),
    (225, (-5, -5, -5, 90, 90, 90), "positive"),
    (1, (5, 5, 5, 10, 10, 170), "do not form a cell"),
    (225, (5, 5), "six"),
])
def test_bad_questions_are_refused(spacegroup, cell, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        check_cell("NaCl", spacegroup, cell)


def test_small_errors_of_a_measured_cell_are_accepted():
    r = check_cell("NaCl", 225, (5.640, 5.642, 5.639, 90.02, 89.97, 90.0))
    assert r["lattice"]["a"]["given"] == 5.640


def test_structure_check_finds_group_cell_and_reduced_formula():
    from ase.build import bulk

    conventional = bulk("NaCl", "rocksalt", a=5.64, cubic=True)  # Na4Cl4
    r = check_structure(conventional)
    assert r["formula"] == "NaCl" and r["spacegroup"] == 225 and r["symprec"] == 0.1
    assert r["lattice"]["a"]["given"] == pytest.approx(5.64)
    assert r["lattice"]["a"]["z"] == pytest.approx(check_cell("NaCl", 225, (5.64,) * 3 + (90,) * 3)["lattice"]["a"]["z"])
    # the primitive cell in another orientation gives the same answer
    prim = bulk("NaCl", "rocksalt", a=5.64)
    prim.rotate(33, "z", rotate_cell=True)
    assert check_structure(prim)["lattice"]["a"]["given"] == pytest.approx(5.64, rel=1e-6)


def test_structure_check_refuses_what_is_no_crystal():
    from ase import Atoms

    with pytest.raises(ValueError, match="periodic"):
        check_structure(Atoms("H2O", positions=[[0, 0, 0], [0.8, 0.6, 0], [-0.8, 0.6, 0]]))


def test_cli_check(capsys, tmp_path):
    from cryspext.cli import main

    assert main(["formula", "LiFePO4", "--check", "62", "10.33", "6.01", "4.69", "90", "90", "90"]) == 0
    out = capsys.readouterr().out
    assert "rank" in out and "z = " in out
    assert main(["formula", "NaCl", "--check", "225", "9", "9", "9", "90", "90", "90", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_z"] > 3
    assert main(["formula", "--check", "225", "5", "5", "5", "90", "90", "90"]) == 2
    assert "needs a formula" in capsys.readouterr().err
    assert main(["formula", "NaCl", "--check", "x", "5", "5", "5", "90", "90", "90"]) == 2
    capsys.readouterr()
    from ase.build import bulk

    path = tmp_path / "nacl.cif"
    bulk("NaCl", "rocksalt", a=5.64).write(path)
    assert main(["formula", "--structure", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["spacegroup"] == 225
    assert main(["formula", "NaCl", "--structure", str(path)]) == 2


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 230), st.floats(2.5, 25.0), st.floats(2.5, 25.0), st.floats(2.5, 25.0),
       st.floats(60.0, 120.0), st.floats(60.0, 120.0), st.floats(60.0, 120.0), st.booleans())
def test_any_cell_of_any_group_gets_finite_ranks_and_z(sg, a, b, c, alpha, beta, gamma, hexagonal_axes):
    """Cells built with the metric of their group's lattice (free values drawn at random) are
    accepted, and the answer is complete and finite; a drawn triplet of angles that forms no cell
    is refused with ValueError, never anything else."""
    from cryspext.formula.lattice import FREE_PARAMETERS, bravais_of_spacegroup, full_parameters
    from cryspext.formula.lattice import rhombohedral_to_hexagonal

    bravais = bravais_of_spacegroup(sg)
    drawn = dict(a=a, b=b, c=c, alpha=alpha, beta=beta, gamma=gamma)
    if bravais == "hR":
        drawn["alpha"] = min(alpha, 100.0)
    p = full_parameters(bravais, {n: drawn[n] for n in FREE_PARAMETERS[bravais]})
    cell = [p[n] for n in ("a", "b", "c", "alpha", "beta", "gamma")]
    if bravais == "hR" and hexagonal_axes:
        a_hex, c_hex = rhombohedral_to_hexagonal(p["a"], p["alpha"])
        cell = [a_hex, a_hex, c_hex, 90.0, 90.0, 120.0]
    try:
        r = check_cell("LiFePO4", sg, cell)
    except ValueError as err:
        assert bravais == "aP" and "do not form a cell" in str(err)
        return
    assert 1 <= r["bravais_rank"] <= 14 and 1 <= r["with_cell"]["rank"] <= 230
    assert set(r["lattice"]) == set(FREE_PARAMETERS[bravais])
    assert all(math.isfinite(v["z"]) for v in r["lattice"].values()) and math.isfinite(r["max_abs_z"])
