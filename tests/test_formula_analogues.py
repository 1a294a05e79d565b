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


def test_the_vote_is_mixed_into_the_bravais_probabilities(tmp_path):
    """Where a formula has analogues, the whole model's Bravais probabilities (those
    predict_formula ranks by) are (1 − s) · the tempered mix + s · the vote of the folder's
    table; a fractional formula and a new stoichiometry keep the mix, and so does every formula
    with a model folder that has no table."""
    from cryspext.formula.predict import BRAVAIS_VOTE_SHARE, FormulaModels, predict_formula

    m = FormulaModels()
    comps = [parse_formula(f) for f in ("NaMnPO4", "Ba0.5Sr0.5TiO3", "Li13Fe11O17")]
    x = m.features(comps)
    before, after = m.bravais(x), m.bravais(x, comps)
    vote, _, covered = analogue_vote(load_table(), comps)
    assert covered.tolist() == [True, False, False]
    s = BRAVAIS_VOTE_SHARE
    assert 0 < s < 1
    np.testing.assert_allclose(after[0], (1 - s) * before[0] + s * vote[0], rtol=1e-6)
    assert np.abs(after[0] - before[0]).max() > 1e-4  # the vote moved something
    np.testing.assert_array_equal(after[1:], before[1:])
    np.testing.assert_allclose(after.sum(axis=1), 1.0, rtol=1e-5)
    ranked = predict_formula("NaMnPO4", top_k=len(BRAVAIS))["candidates"]
    assert [c["bravais"] for c in ranked] == [BRAVAIS[k] for k in np.argsort(-after[0], kind="stable")]
    for c in ranked:
        assert c["probability"] == pytest.approx(after[0, BRAVAIS.index(c["bravais"])], abs=1e-6)
    with pytest.raises(ValueError, match="compositions"):
        m.with_vote(before, comps[:2])
    # the same models without the table: no vote
    for f in m.directory.iterdir():
        if not f.name.startswith("analogues"):
            (tmp_path / f.name).symlink_to(f)
    bare = FormulaModels(tmp_path)
    assert bare.analogues is None
    np.testing.assert_array_equal(bare.bravais(x, comps), before)


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


# ---- starting structures (seed_structure) ----

def _record(mp_id: int, atoms, sg: int) -> dict:
    """A line of shared/data/mp/mp_structures.jsonl.gz for ``atoms``."""
    return {"id": f"mp-{mp_id}", "formula": atoms.get_chemical_formula("metal", empirical=True),
            "n": len(atoms), "lattice": atoms.cell[:].tolist(), "species": atoms.get_chemical_symbols(),
            "frac": atoms.get_scaled_positions().tolist(), "sg": sg}


@pytest.fixture(scope="module")
def structure_table(tmp_path_factory):
    """A table of three compounds with structures written by ``training.formula``'s
    ``analogue_structures`` from a small mp_structures file (primitive cells, as Materials
    Project stores them), plus one record whose space group disagrees and one missing."""
    import gzip

    from ase import Atoms
    from ase.build import bulk

    from cryspext.training.formula import analogue_structures

    tmp = tmp_path_factory.mktemp("analogues")
    (tmp / "mp").mkdir()
    rocksalt = bulk("NaCl", "rocksalt", a=5.64)
    cscl = bulk("CsCl", "cesiumchloride", a=4.12)
    u = 0.305
    rutile = Atoms("Ti2O4", cell=[4.594, 4.594, 2.959], pbc=True, scaled_positions=[
        (0, 0, 0), (0.5, 0.5, 0.5), (u, u, 0), (1 - u, 1 - u, 0), (0.5 + u, 0.5 - u, 0.5),
        (0.5 - u, 0.5 + u, 0.5)])
    records = [_record(1, rocksalt, 225), _record(3, cscl, 221), _record(8, rutile, 136),
               _record(4, bulk("NaBr", "rocksalt", a=5.97), 225)]
    with gzip.open(tmp / "mp" / "mp_structures.jsonl.gz", "wt") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    # NaBr (id 4) is claimed to be in 221: left without structure; MgO (id 5) has no record.
    rows = [("NaCl", 1, 225, "cF", [5.64, 5.64, 5.64, 90, 90, 90]),
            ("CsCl", 3, 221, "cP", [4.12, 4.12, 4.12, 90, 90, 90]),
            ("NaBr", 4, 221, "cP", [5.97, 5.97, 5.97, 90, 90, 90]),
            ("MgO", 5, 225, "cF", [4.2, 4.2, 4.2, 90, 90, 90]),
            ("TiO2", 8, 136, "tP", [4.594, 4.594, 2.959, 90, 90, 90])]
    f, i, sg, b, cell = zip(*rows)
    columns = table_columns(f, i, sg, [BRAVAIS.index(x) for x in b], cell)
    more, left_out = analogue_structures(tmp, i, f, sg)
    columns.update(more)
    np.savez_compressed(tmp / "analogues.npz", **columns)
    (tmp / "analogues.json").write_text(json.dumps({"kind": "analogues", "split": "random"}))
    return tmp, left_out


def test_analogue_structures_store_asymmetric_units_and_say_what_was_left_out(structure_table):
    tmp, left_out = structure_table
    assert left_out == {"missing_record": 1, "other_spacegroup": 1, "not_standard": 0, "not_regenerated": 0}
    t = AnalogueTable.read(tmp / "analogues.npz")
    hall = t.columns["hall"]
    assert (hall[[0, 1, 4]] > 0).all() and (hall[[2, 3]] == 0).all()
    sizes = np.diff(t.columns["site_offsets"])
    assert sizes.tolist() == [2, 2, 0, 0, 2]  # Na + Cl, Cs + Cl, nothing, nothing, Ti + O
    frac, element = t.sites(0)  # rock salt: 4 Na + 4 Cl in the conventional cell
    assert len(frac) == 8 and sorted(np.bincount(element)) == [4, 4]
    with pytest.raises(ValueError, match="no structure"):
        t.sites(2)


def test_seed_structure_substitutes_elements_and_scales_the_cell(structure_table):
    import spglib

    from cryspext.formula.analogues import seed_structure
    from cryspext.formula.features import formula_unit_features

    tmp, _ = structure_table
    seed = seed_structure("KBr", choose="nearest", model_dir=tmp)
    assert seed.info["seed_of"] == "NaCl" and seed.info["mp_id"] == "mp-1" and seed.info["spacegroup"] == 225
    assert sorted(seed.get_chemical_symbols()) == ["Br"] * 4 + ["K"] * 4
    ds = spglib.get_symmetry_dataset((seed.cell[:], seed.get_scaled_positions(), seed.numbers), symprec=0.01)
    assert ds.number == 225
    ratio = formula_unit_features("KBr")[1] / formula_unit_features("NaCl")[1]
    assert seed.info["volume_scale"] == pytest.approx(ratio, rel=1e-5)
    assert seed.get_volume() == pytest.approx(5.64 ** 3 * ratio, rel=1e-4)
    # Cation on the cation sites: every K has 6 Br neighbours at a/2.
    d = seed.get_all_distances(mic=True)
    k = [i for i, s in enumerate(seed.get_chemical_symbols()) if s == "K"]
    nearest = np.sort(d[k], axis=1)[:, 1]
    assert np.allclose(nearest, seed.cell.lengths()[0] / 2, rtol=1e-3)
    unscaled = seed_structure("KBr", scale=False, choose="nearest", model_dir=tmp)
    assert unscaled.get_volume() == pytest.approx(5.64 ** 3, rel=1e-4)
    # Nearest first: NaBr (distance 1, no structure stored), NaCl (2), CsCl (3); MgO has none.
    second = seed_structure("KBr", rank=1, choose="nearest", model_dir=tmp)
    assert second.info["seed_of"] == "CsCl" and len(second) == 2
    rutile = seed_structure("SnO2", choose="nearest", model_dir=tmp)
    assert rutile.info["seed_of"] == "TiO2" and sorted(set(rutile.get_chemical_symbols())) == ["O", "Sn"]
    assert len(rutile) == 6


def test_seed_structure_refuses_what_it_cannot_build(structure_table):
    from cryspext.formula.analogues import seed_structure

    tmp, _ = structure_table
    with pytest.raises(ValueError, match="rank 2"):
        seed_structure("KBr", rank=2, choose="nearest", model_dir=tmp)
    with pytest.raises(ValueError, match="stoichiometry"):
        seed_structure("Fe2O3", choose="nearest", model_dir=tmp)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="rank"):
            seed_structure("KBr", rank=bad, choose="nearest", model_dir=tmp)
    with pytest.raises(ValueError):
        seed_structure("Xx2O3", choose="nearest", model_dir=tmp)
    frac = seed_structure("Ba0.5Sr0.5Cl", choose="nearest", model_dir=tmp)  # the heaviest end member, BaCl
    assert frac.info["end_member"] in ("BaCl", "SrCl")
    with pytest.raises(ValueError, match="choose"):
        seed_structure("KBr", choose="best", model_dir=tmp)


def test_seed_structure_ranks_the_nearest_analogues_by_the_models_space_group():
    """With the shipped models: of the SEED_K nearest analogues with a structure, the first seed
    has the largest P(space group) · exp(−distance / SEED_TAU); ranks go on through the rest."""
    from cryspext.formula.analogues import SEED_K, SEED_TAU, seed_structure

    if not load_table().has_structures():
        pytest.skip("the shipped table stores no structures")
    seeds = [seed_structure("NaMnPO4", rank=k) for k in range(SEED_K + 1)]
    nearest = [seed_structure("NaMnPO4", rank=k, choose="nearest") for k in range(SEED_K)]
    assert {s.info["mp_id"] for s in seeds[:SEED_K]} == {s.info["mp_id"] for s in nearest}
    scores = [s.info["spacegroup_probability"] * np.exp(-s.info["distance"] / SEED_TAU) for s in seeds[:SEED_K]]
    assert scores == sorted(scores, reverse=True) and 0 < seeds[0].info["spacegroup_probability"] <= 1
    assert np.isnan(seeds[SEED_K].info["spacegroup_probability"])
    assert np.isnan(nearest[0].info["spacegroup_probability"])
    assert seeds[SEED_K].info["distance"] >= max(s.info["distance"] for s in nearest)


def test_shipped_table_regenerates_its_structures():
    """A sample of the shipped table's stored structures: spglib finds the row's space group in
    the regenerated cell and its composition is the formula's, some number of times over."""
    import spglib

    t = load_table()
    if not t.has_structures():
        pytest.skip("the shipped table stores no structures")
    assert t.card["structures"]["stored"] == int((t.columns["hall"] > 0).sum()) > 0.99 * len(t)
    rows = np.random.default_rng(1).choice(np.flatnonzero(t.columns["hall"] > 0), 60, replace=False)
    for r in rows:
        frac, element = t.sites(r)
        formula = str(t.columns["formula"][r])
        amounts = np.array(pattern(parse_formula(formula))[0])
        counts = np.bincount(element, minlength=len(amounts))
        assert (counts % amounts == 0).all() and len(set(counts // amounts)) == 1, formula
        from ase.cell import Cell

        cell = Cell.fromcellpar(t.columns["conventional"][r].astype(float))
        ds = spglib.get_symmetry_dataset((cell[:], frac, element), symprec=0.1, angle_tolerance=5)
        assert ds.number == t.columns["spacegroup"][r], formula


def test_cli_writes_a_seed_structure(tmp_path, capsys):
    from ase.io import read

    from cryspext.cli import main

    if not load_table().has_structures():
        pytest.skip("the shipped table stores no structures")
    path = tmp_path / "seed.cif"
    assert main(["formula", "NaMnPO4", "--top", "1", "--seed-structure", str(path)]) == 0
    assert "seed structure" in capsys.readouterr().out
    atoms = read(path)
    symbols = atoms.get_chemical_symbols()
    n = symbols.count("Na")
    assert n > 0 and symbols.count("Mn") == n and symbols.count("P") == n and symbols.count("O") == 4 * n


@pytest.mark.parametrize("extra", [["--csv", "x.csv"], ["--check", "225", "5.6", "5.6", "5.6", "90", "90", "90"]])
def test_cli_refuses_a_seed_structure_where_it_cannot_be_written(extra, tmp_path, monkeypatch, capsys):
    from cryspext.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["formula", "NaCl", "--seed-structure", "s.cif", *extra]) == 2
    assert "--seed-structure goes with" in capsys.readouterr().err
    assert not (tmp_path / "s.cif").exists() and not (tmp_path / "x.csv").exists()


def test_a_seed_does_not_depend_on_how_the_formula_is_written():
    from cryspext.formula.analogues import seed_structure

    if not load_table().has_structures():
        pytest.skip("the shipped table stores no structures")
    a, b = seed_structure("NaMnPO4"), seed_structure("Mn2Na2P2O8")
    assert a.info == b.info and a.get_chemical_symbols() == b.get_chemical_symbols()
    np.testing.assert_allclose(a.get_scaled_positions(), b.get_scaled_positions())


def test_seed_from_row_refuses_a_formula_of_another_pattern():
    from cryspext.formula.analogues import seed_from_row

    t = load_table()
    row = int(np.flatnonzero(t.columns["key"] == "1-1")[0])
    with pytest.raises(ValueError, match="patterns"):
        seed_from_row(t, row, "LiFePO4")
