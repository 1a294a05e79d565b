"""predict_formula and the `cryspext formula` command, on the shipped models."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from cryspext.formula import BRAVAIS, bravais_of_spacegroup, predict_formula, predict_formulas
from cryspext.formula.lattice import FREE_PARAMETERS, spacegroups_of_bravais
from cryspext.models import MODELS_DIR

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "formula" / "formula.pt").is_file(),
                                reason="formula models not shipped in this checkout")


def test_result_structure_and_consistency():
    res = predict_formula("LiFePO4", top_k=3)
    assert res["composition"] == {"Li": 1.0, "Fe": 1.0, "P": 1.0, "O": 4.0}
    cands = res["candidates"]
    assert len(cands) == 3
    probs = [c["probability"] for c in cands]
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1 + 1e-6
    assert len({c["bravais"] for c in cands}) == 3
    for c in cands:
        b = c["bravais"]
        assert b in BRAVAIS and c["spread"] >= 0
        sgs = [s["number"] for s in c["spacegroups"]]
        assert all(bravais_of_spacegroup(n) == b for n in sgs)
        assert set(sgs) <= set(spacegroups_of_bravais(b))
        lat = c["lattice"]
        assert all(lat[k]["value"] > 0 for k in lat)
        fixed = set(lat) - set(FREE_PARAMETERS[b])
        # an angle fixed by symmetry has no spread; a length set equal to a free one shares it
        fixed_angles = fixed & {"alpha", "beta", "gamma"} if b != "hR" else set()
        assert all(lat[k]["std"] == lat[k]["uncertainty"] == 0 for k in fixed_angles)
        for k in fixed - fixed_angles:
            twin = "a" if k in "bc" else "alpha"
            assert lat[k]["std"] == lat[twin]["std"] and lat[k]["uncertainty"] == lat[twin]["uncertainty"]
        # the shipped model is calibrated: every free parameter has a positive σ
        assert all(lat[k]["uncertainty"] > 0 for k in FREE_PARAMETERS[b])
        if b[0] == "c":
            assert lat["a"]["value"] == lat["b"]["value"] == lat["c"]["value"]
            assert lat["alpha"]["value"] == 90
        if b == "hP":
            assert lat["gamma"]["value"] == 120
        assert ("hexagonal_setting" in c) == (b == "hR")


def test_rhombohedral_candidates_also_in_hexagonal_axes():
    from cryspext.formula.lattice import hexagonal_to_rhombohedral

    cand = predict_formula("LiCoO2", spacegroup=166)["candidates"][0]
    hexagonal, lat = cand["hexagonal_setting"], cand["lattice"]
    np.testing.assert_allclose(hexagonal_to_rhombohedral(hexagonal["a"]["value"], hexagonal["c"]["value"]),
                               (lat["a"]["value"], lat["alpha"]["value"]), rtol=1e-9)
    for v in hexagonal.values():
        assert v["std"] > 0 and v["uncertainty"] > 0


def test_hexagonal_uncertainty_matches_sampling():
    from cryspext.formula.lattice import rhombohedral_to_hexagonal, rhombohedral_to_hexagonal_uncertainty

    rng = np.random.default_rng(0)
    for a_r, alpha, s_a, s_alpha in ((5.0, 33.0, 0.02, 0.1), (3.5, 60.0, 0.01, 0.2), (6.0, 95.0, 0.05, 0.3)):
        draws = np.array([rhombohedral_to_hexagonal(a, al) for a, al in
                          zip(rng.normal(a_r, s_a, 20000), rng.normal(alpha, s_alpha, 20000))])
        np.testing.assert_allclose(draws.std(axis=0),
                                   rhombohedral_to_hexagonal_uncertainty(a_r, alpha, s_a, s_alpha), rtol=0.03)
    assert np.isnan(rhombohedral_to_hexagonal_uncertainty(4.0, 120.0, 0.1, 1.0)).all()
    assert np.isnan(rhombohedral_to_hexagonal_uncertainty(4.0, 30.0, float("nan"), 1.0)).all()


def test_composition_and_string_agree():
    pmg = pytest.importorskip("pymatgen.core")
    a = predict_formula("Fe2O3", top_k=2)
    b = predict_formula(pmg.Composition("Fe4O6"), top_k=2)
    assert [c["bravais"] for c in a["candidates"]] == [c["bravais"] for c in b["candidates"]]
    np.testing.assert_allclose([c["probability"] for c in a["candidates"]],
                               [c["probability"] for c in b["candidates"]], rtol=1e-5)


def test_fractional_and_hydrate_formulas_are_handled():
    assert predict_formula("Al2.6652O4", top_k=1)["candidates"]
    assert predict_formula("CuSO4·5H2O", top_k=1)["candidates"]


@pytest.mark.parametrize("bad, exc", [("Xx2O", ValueError), ("SO4^2-", ValueError),
                                      ("La2-xSrxCuO4", ValueError), (17, TypeError)])
def test_bad_formula(bad, exc):
    with pytest.raises(exc):
        predict_formula(bad)


def test_bad_top_k():
    with pytest.raises(ValueError):
        predict_formula("NaCl", top_k=0)
    with pytest.raises(ValueError):
        predict_formula("NaCl", top_k=15)
    with pytest.raises(TypeError):
        predict_formula("NaCl", top_k="2")


@pytest.mark.filterwarnings("ignore:.*extrapolation:UserWarning")  # a few hold rare elements
def test_unseen_cod_formulas_beat_the_frequency_baseline(shared_data):
    """COD compounds whose formula is not in the MP table (never trained on): the Bravais
    lattice from COD's space group must be in the top 2 more often than the two most
    frequent MP Bravais lattices are."""
    mp = json.load(gzip.open(shared_data / "mp" / "mp_ehull.json.gz", "rt"))
    cod = json.load(gzip.open(shared_data / "mp" / "cod_formula_sg.json.gz", "rt"))
    freq = np.zeros(len(BRAVAIS))
    for lst in mp.values():
        if lst:
            freq[BRAVAIS.index(bravais_of_spacegroup(lst[0][1]))] += 1
    top2 = set(np.argsort(-freq)[:2].tolist())
    rng = np.random.default_rng(1)
    seen, rows = set(), []
    for i in rng.permutation(len(cod)):
        f, _cid, sg = cod[i]
        if f in mp or f in seen:
            continue
        seen.add(f)
        rows.append((f, sg))
        if len(rows) == 200:
            break
    hits = base = 0
    for f, sg in rows:
        b = BRAVAIS.index(bravais_of_spacegroup(sg))
        res = predict_formula(f, top_k=2)
        hits += b in [BRAVAIS.index(c["bravais"]) for c in res["candidates"]]
        base += b in top2
    assert hits > base, (hits, base)


def test_formulas_outside_the_training_data_are_flagged():
    """Yb is in no training formula (the Materials Project data used hold none), He in one;
    Fe1000000O is a million-atom formula unit: extrapolations, flagged and warned about.
    LiFePO4 is well inside."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cover = predict_formula("LiFePO4", top_k=1)["training_coverage"]
    assert cover["in_training_range"] and cover["reasons"] == []
    assert min(cover["formulas_per_element"].values()) > 1000 and cover["atoms_per_formula_unit"] == 7
    for formula, why in (("YbB6", "Yb is in 0 training formulas"), ("HeO2", "He is in 1 training formula"),
                         ("Fe1000000O", "1e+06 atoms")):
        with pytest.warns(UserWarning, match="extrapolation"):
            cover = predict_formula(formula, top_k=1)["training_coverage"]
        assert not cover["in_training_range"] and any(why in r for r in cover["reasons"]), cover


def test_huge_amounts_do_not_overflow():
    """Amounts beyond int64 (2**63) are not reduced by a greatest common divisor (which would
    overflow), and give finite features."""
    import warnings

    from cryspext.formula import formula_unit_features

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fu = formula_unit_features("H99999999999999999999O")
    assert np.all(np.isfinite(fu)) and fu[0] == pytest.approx(1e20)


def test_cli_json_and_errors(capsys):
    from cryspext.cli import main

    assert main(["formula", "LiFePO4", "--json", "--top", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["candidates"]) == 2
    assert main(["formula", "NaCl"]) == 0
    assert "space groups" in capsys.readouterr().out
    assert main(["formula", "Xq2"]) == 2
    assert "unknown element" in capsys.readouterr().err
    assert main(["formula", "YbB6", "--top", "1"]) == 0
    captured = capsys.readouterr()
    assert "an extrapolation: Yb is in 0 training formulas" in captured.out
    assert "note" not in captured.err  # the coverage is said once, in the answer
    assert main(["formula", "CuSO4.5H2O", "--top", "1"]) == 0  # a note on how it was read
    assert "note: '.' in formula 'CuSO4.5H2O' is a decimal point" in capsys.readouterr().err


def test_cli_spacegroup_given(capsys):
    """--spacegroup: one candidate, the lattice of that group, its parameters given it."""
    from cryspext.cli import main

    assert main(["formula", "LiFePO4", "--spacegroup", "62", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spacegroup"] == 62 and len(out["candidates"]) == 1
    cand = out["candidates"][0]
    assert cand["bravais"] == "oP" and [s["number"] for s in cand["spacegroups"]] == [62]
    free = predict_formula("LiFePO4", top_k=14)["candidates"]
    marginal = next(c for c in free if c["bravais"] == "oP")["lattice"]
    assert cand["lattice"]["a"]["value"] != marginal["a"]["value"]  # the group changes the answer
    assert cand["probability"] == pytest.approx(next(c for c in free if c["bravais"] == "oP")["probability"])
    assert main(["formula", "LiFePO4", "--spacegroup", "62"]) == 0
    assert "space group 62" in capsys.readouterr().out
    assert main(["formula", "LiFePO4", "--spacegroup", "231"]) == 2
    assert main(["formula", "cell", "4", "4", "4", "90", "90", "90", "--spacegroup", "225"]) == 2
    assert "--spacegroup" in capsys.readouterr().err


def _same_answers(many, one):
    """Answers equal up to float32 rounding (the batch runs the models on other shapes)."""
    assert len(many) == len(one)
    for a, b in zip(many, one):
        assert {k: v for k, v in a.items() if k != "candidates"} == {k: v for k, v in b.items() if k != "candidates"}
        assert [c["bravais"] for c in a["candidates"]] == [c["bravais"] for c in b["candidates"]]
        for ca, cb in zip(a["candidates"], b["candidates"]):
            assert [s["number"] for s in ca["spacegroups"]] == [s["number"] for s in cb["spacegroups"]]
            assert ca["probability"] == pytest.approx(cb["probability"], abs=1e-5)
            for n in ca["lattice"]:
                assert ca["lattice"][n]["value"] == pytest.approx(cb["lattice"][n]["value"], rel=1e-4)
                assert ca["lattice"][n]["uncertainty"] == pytest.approx(cb["lattice"][n]["uncertainty"], rel=1e-4)
            assert ("hexagonal_setting" in ca) == ("hexagonal_setting" in cb)


def test_predict_formulas_equals_one_at_a_time():

    formulas = ["LiFePO4", "Ba0.5Sr0.5TiO3", {"Fe": 2, "O": 3}, "LiCoO2", "Fe0.95O", "NaCl", "LiFePO4"]
    _same_answers(predict_formulas(formulas, top_k=4), [predict_formula(f, top_k=4) for f in formulas])
    _same_answers(predict_formulas(formulas, spacegroup=166, vegard=False),
                  [predict_formula(f, spacegroup=166, vegard=False) for f in formulas])
    assert predict_formulas([]) == []


def test_predict_formulas_errors_and_warning():
    from cryspext.formula import predict_formulas

    with pytest.raises(ValueError, match=r"formula 1 \('Xq2'\)"):
        predict_formulas(["NaCl", "Xq2"])
    with pytest.raises(TypeError, match="sequence of formulas"):
        predict_formulas("NaCl")
    with pytest.warns(UserWarning, match="1 of 2 formulas lie outside the training data"):
        out = predict_formulas(["YbB6", "NaCl"], top_k=1)
    assert [o["training_coverage"]["in_training_range"] for o in out] == [False, True]


def test_cli_file_of_formulas(tmp_path, capsys):
    from cryspext.cli import main

    path = tmp_path / "formulas.txt"
    path.write_text("LiFePO4\n\n# a solid solution\nBa0.5Sr0.5TiO3  # BST\n")
    assert main(["formula", "--file", str(path), "--json", "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["formula"] for line in lines] == ["LiFePO4", "Ba0.5Sr0.5TiO3"]
    assert main(["formula", "--file", str(path)]) == 0
    assert "Vegard's law" in capsys.readouterr().out
    assert main(["formula", "NaCl", "--file", str(path)]) == 2
    assert main(["formula"]) == 2
    assert "give a formula" in capsys.readouterr().err


def test_answers_as_table_rows_and_csv(tmp_path, capsys):
    import csv

    from cryspext.cli import main
    from cryspext.formula.table import COLUMNS, answer_rows, write_csv

    answers = predict_formulas(["LiFePO4", "Fe2O3"], top_k=3)
    rows = answer_rows(answers)
    assert len(rows) == 6 and all(list(r) == COLUMNS for r in rows)
    assert [r["rank"] for r in rows] == [1, 2, 3, 1, 2, 3]
    for row, (answer, k) in zip(rows, [(a, k) for a in answers for k in range(3)]):
        cand = answer["candidates"][k]
        assert row["bravais"] == cand["bravais"] and row["probability"] == cand["probability"]
        assert row["spacegroup"] == cand["spacegroups"][0]["number"]
        assert row["b"] == cand["lattice"]["b"]["value"] and row["sigma_gamma"] == cand["lattice"]["gamma"]["uncertainty"]
        assert (row["hexagonal_a"] != "") == (cand["bravais"] == "hR")
    assert answer_rows(answers[0]) == rows[:3]  # one answer alone
    path = tmp_path / "out.csv"
    assert write_csv(answers, path) == 6
    read = list(csv.DictReader(path.open()))
    assert [r["formula"] for r in read] == ["LiFePO4"] * 3 + ["Fe2O3"] * 3
    assert float(read[0]["a"]) == pytest.approx(rows[0]["a"])
    listing = tmp_path / "formulas.txt"
    listing.write_text("LiFePO4\nFe2O3\n")
    assert main(["formula", "--file", str(listing), "--top", "1", "--csv", str(tmp_path / "cli.csv")]) == 0
    assert "wrote 2 rows" in capsys.readouterr().err
    assert [r["bravais"] for r in csv.DictReader((tmp_path / "cli.csv").open())] == ["oP", "hR"]


def test_plot_formula(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from cryspext.cli import main
    from cryspext.formula.plot import plot_formula

    answer = predict_formula("Ba0.5Sr0.5TiO3", top_k=3)
    fig = plot_formula(answer, tmp_path / "bst.png")
    assert (tmp_path / "bst.png").stat().st_size > 10_000
    left, right = fig.axes
    assert len(left.patches) == 3  # one bar per candidate
    assert "Vegard" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="answer of predict_formula"):
        plot_formula({"formula": "NaCl"})
    assert main(["formula", "NaCl", "--top", "2", "--png", str(tmp_path / "nacl.png")]) == 0
    assert (tmp_path / "nacl.png").stat().st_size > 10_000
    assert main(["formula", "--file", str(tmp_path / "none.txt"), "--png", str(tmp_path / "x.png")]) == 2


def test_a_folder_without_the_cell_model_still_predicts_formulas(tmp_path):
    """The cell networks load on first use: formula-only model folders (e.g. a split's formula
    ensemble alone) answer predict_formula, and a cell question names the missing file."""
    import shutil

    from cryspext.formula.predict import FormulaModels
    from cryspext.models import MODELS_DIR

    for name in ("formula.pt", "formula.json"):
        shutil.copy(MODELS_DIR / "formula" / name, tmp_path / name)
    m = FormulaModels(tmp_path)
    assert m.bravais(m.features(["NaCl"])).shape == (1, 14)
    assert predict_formula("NaCl", top_k=1, model_dir=tmp_path)["candidates"][0]["bravais"]
    with pytest.raises(FileNotFoundError, match="cell.pt"):
        m.cell_proba(np.zeros((1, 10), np.float32))
