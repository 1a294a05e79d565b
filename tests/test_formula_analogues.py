"""Known analogues of a formula (``formula.analogues``): patterns, nearest search, the vote,
the shipped table and the API/CLI around them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryspext.formula.analogues import (AnalogueTable, analogue_vote, find_analogues,
                                        load_table, pattern, table_columns)
from cryspext.formula.lattice import BRAVAIS
from cryspext.formula.parse import parse_formula

# A small table: (formula, id, space group, Bravais lattice, conventional cell).
ROWS = [("NaCl", 1, 225, "cF", [5.6, 5.6, 5.6, 90, 90, 90]),
        ("KCl", 2, 225, "cF", [6.3, 6.3, 6.3, 90, 90, 90]),
        ("CsCl", 3, 221, "cP", [4.1, 4.1, 4.1, 90, 90, 90]),
        ("NaBr", 4, 225, "cF", [6.0, 6.0, 6.0, 90, 90, 90]),
        ("MgO", 5, 225, "cF", [4.2, 4.2, 4.2, 90, 90, 90]),
        ("LiFePO4", 6, 62, "oP", [10.3, 6.0, 4.7, 90, 90, 90]),
        ("NaFePO4", 7, 62, "oP", [10.4, 6.2, 4.9, 90, 90, 90]),
        ("TiO2", 8, 136, "tP", [4.6, 4.6, 3.0, 90, 90, 90])]


def small_table() -> AnalogueTable:
    f, i, sg, b, cell = zip(*ROWS)
    return AnalogueTable(table_columns(f, i, sg, [BRAVAIS.index(x) for x in b], cell))


def test_pattern_orders_elements_by_electronegativity_and_reduces_the_formula():
    amounts, mendeleev, reduced = pattern(parse_formula("Li2Fe2P2O8"))
    assert amounts == (1, 1, 1, 4) and list(reduced) == ["Li", "Fe", "P", "O"]
    assert pattern(parse_formula("PO4FeLi"))[0] == amounts
    np.testing.assert_array_equal(pattern(parse_formula("O4PFeLi"))[1], mendeleev)
    assert pattern(parse_formula("TiO2"))[0] == (1, 2)


@pytest.mark.parametrize("bad", [{"Fe": 0.95, "O": 1.0}, {}, {"Na": 0.0}, {"Na": -1.0, "Cl": 1.0},
                                 {"Na": float("inf"), "Cl": 1.0}, {"Na": float("nan"), "Cl": 1.0}])
def test_pattern_refuses_fractional_empty_and_negative_amounts(bad):
    with pytest.raises(ValueError):
        pattern(bad)


def test_pattern_refuses_unknown_elements():
    with pytest.raises(ValueError, match="Xx|element"):
        pattern({"Xx": 1.0, "O": 1.0})


ELEMENTS = ["Li", "Na", "K", "Mg", "Ca", "Fe", "Ti", "Al", "Si", "P", "S", "O", "F", "Cl"]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(ELEMENTS), st.integers(1, 6), min_size=1, max_size=5),
       st.integers(1, 4), st.randoms(use_true_random=False))
def test_pattern_does_not_depend_on_element_order_or_formula_units(comp, k, rnd):
    """The same compound written in any element order, or as k formula units, has one pattern."""
    items = list(comp.items())
    rnd.shuffle(items)
    a = pattern(comp)
    b = pattern({el: n * k for el, n in items})
    assert a[0] == b[0] and a[2] == b[2]
    np.testing.assert_array_equal(a[1], b[1])


def test_nearest_finds_the_same_pattern_nearest_first():
    t = small_table()
    amounts, mendeleev, _ = pattern(parse_formula("KBr"))
    rows, dist = t.nearest(amounts, mendeleev, 10)
    names = [str(t.columns["formula"][r]) for r in rows]
    assert set(names) == {"NaCl", "KCl", "CsCl", "NaBr", "MgO"}  # every (1, 1) formula, no other
    assert np.all(np.diff(dist) >= 0) and names[:3] == ["KCl", "NaBr", "NaCl"]
    # the formula itself is at distance 0 and first
    rows, dist = t.nearest(*pattern(parse_formula("NaFePO4"))[:2], 2)
    assert str(t.columns["formula"][rows[0]]) == "NaFePO4" and dist[0] == 0 and dist[1] > 0
    # a pattern the table lacks: nothing
    rows, dist = t.nearest(*pattern(parse_formula("Fe3O4"))[:2], 5)
    assert len(rows) == 0 and len(dist) == 0


def test_vote_is_a_distribution_and_flags_formulas_without_analogues():
    t = small_table()
    comps = [parse_formula(f) for f in ("KBr", "Fe3O4", "LiMnPO4")] + [{"Ba": 0.5, "Sr": 0.5, "Ti": 1, "O": 3}]
    pb, psg, covered = analogue_vote(t, comps)
    np.testing.assert_allclose(pb.sum(1), 1)
    np.testing.assert_allclose(psg.sum(1), 1)
    assert covered.tolist() == [True, False, True, False]
    assert BRAVAIS[int(np.argmax(pb[0]))] == "cF" and np.argmax(psg[0]) + 1 == 225
    assert BRAVAIS[int(np.argmax(pb[2]))] == "oP"
    # without analogues: the table's class frequencies
    freq = np.bincount([BRAVAIS.index(r[3]) for r in ROWS], minlength=14) / len(ROWS)
    np.testing.assert_allclose(pb[1], freq)


def test_an_empty_table_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        AnalogueTable(table_columns([], [], [], [], np.zeros((0, 6))))


def test_table_columns_refuse_bad_cells():
    with pytest.raises(ValueError, match="positive"):
        table_columns(["NaCl"], [1], [225], [BRAVAIS.index("cF")], [[-5.6, 5.6, 5.6, 90, 90, 90]])
    with pytest.raises(ValueError, match="finite"):
        table_columns(["NaCl"], [1], [225], [BRAVAIS.index("cF")], [[np.nan, 5.6, 5.6, 90, 90, 90]])


def test_shipped_table_is_the_random_split_training_formulas():
    t = load_table()
    assert t.card["split"] == "random" and t.card["n_formulas"] == len(t)
    assert "CC-BY 4.0" in t.card["training_data"]
    assert len(np.unique(t.columns["formula"])) == len(t)  # one row per reduced formula
    assert len(np.unique(t.columns["mp_id"])) == len(t)
    c = t.columns["conventional"]
    assert np.isfinite(c).all() and (c[:, :3] > 0).all()


def test_find_analogues_on_the_shipped_table():
    got = find_analogues("NaMnPO4", n=4)
    assert got["pattern"] == [1, 1, 1, 4] and got["of"] is None and len(got["analogues"]) == 4
    for a in got["analogues"]:
        assert pattern(parse_formula(a["formula"]))[0] == (1, 1, 1, 4)
        assert a["mp_id"].startswith("mp-") and 1 <= a["spacegroup"] <= 230 and a["bravais"] in BRAVAIS
        assert set(a["conventional"]) == {"a", "b", "c", "alpha", "beta", "gamma"}
    d = [a["distance"] for a in got["analogues"]]
    assert d == sorted(d)
    shares = [v["share"] for v in got["vote"]]
    assert abs(sum(shares) - 1) < 1e-3 and shares == sorted(shares, reverse=True)
    json.dumps(got)  # plain JSON types


def test_a_fractional_formula_uses_its_heaviest_end_member():
    got = find_analogues("Ba0.5Sr0.5TiO3", n=2)
    assert got["of"] in ("BaTiO3", "SrTiO3") and got["pattern"] == [1, 1, 3]


def test_a_new_stoichiometry_has_no_analogues_and_no_vote():
    got = find_analogues("Li13Fe11O17", n=3)
    assert got["analogues"] == [] and got["vote"] is None


def test_a_formula_with_more_elements_than_any_stored_has_no_analogues():
    big = "LiNaKRbCsBeMgCaSrBaO11"
    got = find_analogues(big, n=2)
    assert got["analogues"] == [] and got["vote"] is None and len(got["pattern"]) == 11
    with pytest.raises(ValueError):
        find_analogues("LiNaKRbCsBeMgCaSrXxO11")


@pytest.mark.parametrize("n", [0, -2, 1.5, True])
def test_find_analogues_refuses_a_bad_count(n):
    with pytest.raises(ValueError):
        find_analogues("NaCl", n=n)


def test_find_analogues_refuses_bad_formulas():
    for bad in ("Xx2O3", "Na(Cl", ""):
        with pytest.raises(ValueError):
            find_analogues(bad)


def test_predict_formula_and_batch_carry_the_analogues():
    from cryspext.formula import predict_formula, predict_formulas

    one = predict_formula("KFePO4", top_k=1, analogues=3)
    assert one["analogues"] == find_analogues("KFePO4", 3)["analogues"]
    assert one["analogues_of"] is None and one["analogues_vote"] == find_analogues("KFePO4", 3)["vote"]
    assert "analogues" not in predict_formula("KFePO4", top_k=1)
    many = predict_formulas(["KFePO4", "NaCl"], top_k=1, analogues=3)
    assert many[0]["analogues"] == one["analogues"]
    with pytest.raises(ValueError, match="analogues"):
        predict_formula("NaCl", analogues=-1)


def test_cli_lists_the_analogues(capsys):
    from cryspext.cli import main

    assert main(["formula", "NaMnPO4", "--top", "1", "--analogues", "2"]) == 0
    text = capsys.readouterr().out
    assert "known analogues" in text and "mp-" in text and "their vote" in text
    assert main(["formula", "NaMnPO4", "--top", "1", "--analogues", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["analogues"]) == 2



@pytest.mark.parametrize("extra", [["--csv", "x.csv"], ["--check", "225", "5.6", "5.6", "5.6", "90", "90", "90"]])
def test_cli_refuses_analogues_where_they_cannot_be_shown(extra, tmp_path, monkeypatch, capsys):
    from cryspext.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["formula", "NaCl", "--analogues", "2", *extra]) == 2
    assert "--analogues goes with" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
