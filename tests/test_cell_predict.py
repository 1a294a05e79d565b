"""predict_cell: space group from a unit cell, independent of the cell's setting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryspext.formula import predict_cell
from cryspext.formula.cellgeom import canonical_cell, cell_features
from cryspext.models import MODELS_DIR
from cryspext.training.cell import random_unimodular
from helpers import mp_records

ase_cell = pytest.importorskip("ase.cell")
Cell = ase_cell.Cell

CELLS = [
    [5.431, 5.431, 5.431, 90, 90, 90],      # Si, conventional cubic
    [3.84, 3.84, 3.84, 60, 60, 60],         # an fcc primitive cell
    [3.21, 3.21, 5.21, 90, 90, 120],        # hcp Mg
    [5.2, 6.1, 7.3, 90, 103.2, 90],         # monoclinic
    [10.33, 6.01, 4.69, 90, 90, 90],        # LiFePO4 (Pnma)
    [5.1, 6.3, 7.7, 80.2, 103.9, 95.4],     # triclinic
]


@pytest.mark.parametrize("params", CELLS)
def test_features_do_not_depend_on_the_basis(params):
    rng = np.random.default_rng(0)
    ref = cell_features(params)
    cell = np.array(Cell.fromcellpar(params))
    for _ in range(5):
        other = Cell(random_unimodular(rng) @ cell).cellpar()
        np.testing.assert_allclose(cell_features(other), ref, rtol=1e-6, atol=1e-6)


def test_canonical_lattice_types_match_ase_oracle():
    assert canonical_cell(CELLS[0])[0] == "CUB"
    assert canonical_cell(CELLS[1])[0] == "FCC"
    assert canonical_cell(CELLS[2])[0] == "HEX"
    assert canonical_cell(CELLS[4])[0] == "ORC"


@pytest.mark.parametrize("bad, exc", [
    ([5, 5, -5, 90, 90, 90], ValueError), ([5, 5, 5, 90, 90, 190], ValueError),
    ([5, 5, 5, 120, 120, 120], ValueError), ([5, 5, float("nan"), 90, 90, 90], ValueError),
    (["a", 5, 5, 90, 90, 90], TypeError),
    # cells no crystal has: a lattice translation of 1e-6 Å, a nearly flat cell (its lattice has
    # a 0.006 Å translation), a 0.4 Å cube, a 100 µm axis
    ([1, 1e-6, 1, 90, 90, 90], ValueError), ([1, 1, 1, 119.999, 120, 120], ValueError),
    ([0.4, 0.4, 0.4, 90, 90, 90], ValueError), ([1e6, 5, 5, 90, 90, 90], ValueError)])
def test_bad_cells(bad, exc):
    with pytest.raises(exc):
        cell_features(bad)


def test_flat_cells_are_refused_in_any_basis():
    """A cell of long vectors but nearly no volume hides a short translation that only the
    reduction finds: 10 × 10 Å base, third vector (3, 4, 1e-4) Å (volume 0.01 Å³)."""
    from cryspext.formula.cellgeom import MIN_TRANSLATION

    flat = Cell([[10, 0, 0], [0, 10, 0], [3, 4, 1e-4]]).cellpar()
    assert min(flat[:3]) > 4  # no short length as given
    with pytest.raises(ValueError, match="translation"):
        canonical_cell(flat)
    # the shortest training-like cell still passes
    assert canonical_cell([MIN_TRANSLATION * 4] * 3 + [90] * 3)[0] == "CUB"


shipped = pytest.mark.skipif(not (MODELS_DIR / "formula" / "cell.pt").is_file(),
                             reason="cell model not shipped in this checkout")


@shipped
def test_predict_cell_is_setting_invariant_unlike_raw_parameters():
    """The leakage caveat: the same lattice in a reduced setting must give the same answer."""
    rng = np.random.default_rng(3)
    for params in CELLS:
        ref = predict_cell(*params, top_k=3)
        other = Cell(random_unimodular(rng) @ np.array(Cell.fromcellpar(params))).cellpar()
        got = predict_cell(*other, top_k=3)
        assert [s["number"] for s in got["spacegroups"]] == [s["number"] for s in ref["spacegroups"]]
        # and the raw parameters really did change (so the test is not vacuous)
        assert not np.allclose(other, params, atol=1e-3) or params[3:] == [90, 90, 90]


@shipped
def test_predict_cell_result_and_errors():
    from cryspext.formula.lattice import bravais_of_spacegroup

    res = predict_cell(5.431, 5.431, 5.431, 90, 90, 90, top_k=4)
    assert res["lattice_type"] == "CUB"
    assert len(res["spacegroups"]) == 4
    probs = [s["probability"] for s in res["spacegroups"]]
    assert probs == sorted(probs, reverse=True)
    for s in res["spacegroups"]:
        assert s["bravais"] == bravais_of_spacegroup(s["number"])
    with pytest.raises(ValueError):
        predict_cell(5, 5, 5, 90, 90, 90, top_k=0)
    with pytest.raises(ValueError):
        predict_cell(5, 5, 5, 90, 90, 90, tolerance=-1)


@shipped
def test_predict_cell_flags_cells_outside_the_training_range():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an ordinary cell warns nothing
        assert predict_cell(*CELLS[2], top_k=1)["in_training_range"] is True
    with pytest.warns(UserWarning, match="extrapolation"):
        res = predict_cell(4, 4, 1000, 90, 90, 90, top_k=1)  # a 1000 Å axis: MP cells reach 437 Å
    assert res["in_training_range"] is False
    with pytest.warns(UserWarning, match="extrapolation"):
        assert predict_cell(1.2, 1.2, 1.2, 90, 90, 90, top_k=1)["in_training_range"] is False


@pytest.fixture(scope="module")
def mp_cells(shared_data):
    """(conventional, primitive, space group) of every 500th MP structure, spglib as oracle."""
    spglib = pytest.importorskip("spglib")
    from ase.data import atomic_numbers

    out = []
    for rec in mp_records(shared_data, every=500):
        ds = spglib.get_symmetry_dataset(
            (rec["lattice"], rec["frac"], [atomic_numbers[s] for s in rec["species"]]), symprec=0.1)
        out.append((Cell(ds.std_lattice).cellpar(), Cell(ds.primitive_lattice).cellpar(), ds.number))
    return out


@shipped
@pytest.mark.parametrize("setting", [0, 1], ids=["conventional", "primitive"])
def test_mp_cells_beat_the_frequency_baseline(mp_cells, setting):
    """Cells of MP structures, conventional or primitive: the model's top-3 must hold the true
    space group far more often than the three most frequent space groups (14, 62, 2) do."""
    hits = base = 0
    for cells in mp_cells:
        top = [s["number"] for s in predict_cell(*cells[setting], top_k=3)["spacegroups"]]
        hits += cells[2] in top
        base += cells[2] in (14, 62, 2)
    assert len(mp_cells) > 100
    assert hits > 1.5 * base, (hits, base, len(mp_cells))


@shipped
def test_cli_cell(capsys):
    from cryspext.cli import main

    assert main(["formula", "cell", "3.21", "3.21", "5.21", "90", "90", "120", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["lattice_type"] == "HEX" and out["in_training_range"] is True
    assert main(["formula", "cell", "1", "2"]) == 2
    assert main(["formula", "cell", "4", "4", "1000", "90", "90", "90"]) == 0
    assert "extrapolation" in capsys.readouterr().out
    assert main(["formula", "cell", "1", "1", "1", "119.999", "120", "120"]) == 2
    assert "translation" in capsys.readouterr().err


@shipped
@pytest.mark.parametrize("name, structure, a, bravais",
                         [("Cu", "fcc", 3.61, "cF"), ("Fe", "bcc", 2.87, "cI")])
def test_primitive_cells_of_centred_cubic_lattices(name, structure, a, bravais):
    """A primitive fcc/bcc cell (ASE builds it) has a centred-cubic metric: the top space group
    must be of that centred lattice, although the cell itself looks rhombohedral."""
    from ase.build import bulk

    params = bulk(name, structure, a=a).cell.cellpar()
    res = predict_cell(*params, top_k=3)
    assert res["lattice_type"] == structure.upper()
    assert res["spacegroups"][0]["bravais"] == bravais


@shipped
def test_formula_and_cell_combined():
    """predict_cell(..., formula=...): P(formula) · P(cell) / P(group) · P(ρ | group)^δ,
    renormalised, with ρ = ln(V_cell / V_formula unit) and the shipped table (mixed with the
    joint formula-and-cell trees where they are shipped); the rock-salt and CsCl cells get their
    own groups."""
    import json

    from cryspext.formula.features import formula_unit_features
    from cryspext.formula.predict import FormulaModels, _models
    from cryspext.models import MODELS_DIR

    cell = (4.0, 4.0, 4.0, 90, 90, 90)
    alone = predict_cell(*cell, top_k=230)
    assert alone["spacegroups"][0]["number"] == 221
    nacl = predict_cell(*cell, top_k=230, formula="NaCl")
    assert nacl["formula"] == "NaCl"
    # The rock-salt cell (a = 5.64 Å, four NaCl) is Fm-3m; CsCl's (4.12 Å, one) Pm-3m.
    assert predict_cell(5.64, 5.64, 5.64, 90, 90, 90, top_k=1, formula="NaCl")["spacegroups"][0]["number"] == 225
    assert predict_cell(4.12, 4.12, 4.12, 90, 90, 90, top_k=1, formula="CsCl")["spacegroups"][0]["number"] == 221
    m = _models(None)
    assert isinstance(m, FormulaModels)
    nacl_comp = [{"Na": 1, "Cl": 1}]  # with the analogue vote, as predict_formula ranks
    from_formula = m.spacegroup_distribution(m.features(nacl_comp), nacl_comp)[0]
    assert from_formula.sum() == pytest.approx(1, abs=1e-5)
    cell_p = {s["number"]: s["probability"] for s in alone["spacegroups"]}
    # The volume term, read from the shipped files directly: ln P(ρ | group) interpolated on its grid.
    table = np.load(MODELS_DIR / "formula" / "cell_volume.npz")
    delta = json.loads((MODELS_DIR / "formula" / "cell_volume.json").read_text())["delta"]
    rho = np.log(4.0 ** 3 / formula_unit_features("NaCl")[1])
    assert nacl["volume_ratio"] == pytest.approx(np.exp(rho))
    volume = np.exp(delta * np.array([np.interp(rho, table["grid"], row) for row in table["log_density"]]))
    expected = np.array([from_formula[g - 1] * cell_p[g] for g in range(1, 231)]) / m.spacegroup_prior() * volume
    expected /= expected.sum()
    if m.formula_cell_trees is not None:  # mixed with the joint trees, weight on their card
        from cryspext.formula.cellgeom import cell_features
        from cryspext.formula.formulacell import joint_features

        w = json.loads((MODELS_DIR / "formula" / "formula_cell_trees.json").read_text())["blend_weight"]
        p_joint = m.formula_cell_tree_proba(joint_features(nacl_comp, m.features(nacl_comp),
                                                           cell_features(cell)[None]))[0]
        assert 0 < w < 1 and p_joint.sum() == pytest.approx(1, abs=1e-5)
        expected = (1 - w) * expected + w * p_joint
        top = nacl["spacegroups"][0]
        assert top["joint_probability"] == pytest.approx(p_joint[top["number"] - 1], rel=1e-6)
    got = {s["number"]: s for s in nacl["spacegroups"]}
    assert len(got) == 230 and sum(s["probability"] for s in got.values()) == pytest.approx(1)
    for g in (225, 221, 216):
        assert got[g]["probability"] == pytest.approx(expected[g - 1], rel=1e-6)
        assert got[g]["cell_probability"] == pytest.approx(cell_p[g])
        assert got[g]["formula_probability"] == pytest.approx(from_formula[g - 1])
    with pytest.warns(UserWarning, match="Yb"):
        predict_cell(*cell, formula="YbB6")
    with pytest.raises(ValueError, match="unknown element"):
        predict_cell(*cell, formula="Xx2")


@shipped
def test_cli_cell_with_formula(capsys):
    from cryspext.cli import main

    assert main(["formula", "cell", "5.64", "5.64", "5.64", "90", "90", "90", "--of", "NaCl", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "together" in out and "225 Fm-3m" in out.splitlines()[3]
    assert "read together" in out.splitlines()[3]  # the joint trees' part
    assert "formula-unit volume = " in out.splitlines()[1]
    assert main(["formula", "NaCl", "--of", "KCl"]) == 2
    assert "--of goes with 'cell'" in capsys.readouterr().err


@shipped
def test_standard_setting_mixes_in_the_trees_that_read_the_cell_as_written():
    """setting="standard": (1 − w) · the setting-independent mix + w · the trees on the cell as
    written (w on their card); those read the order of the axes, which the default ignores."""
    import json

    import torch

    from cryspext.formula.cellsetting import standard_setting_features
    from cryspext.models import load_torchscript

    folder = MODELS_DIR / "formula"
    w = json.loads((folder / "cell_standard_trees.json").read_text())["blend_weight"]
    trees = load_torchscript(folder / "cell_standard_trees.pt")
    cell = (5.4, 7.7, 9.9, 90, 90, 90)
    alone = {s["number"]: s["probability"] for s in predict_cell(*cell, top_k=230)["spacegroups"]}
    standard = predict_cell(*cell, top_k=230, setting="standard")
    assert standard["setting"] == "standard"
    with torch.no_grad():
        p_trees = trees.probabilities(torch.from_numpy(standard_setting_features(cell)), 0).numpy()[0]
    for s in standard["spacegroups"][:10]:
        expected = (1 - w) * alone[s["number"]] + w * p_trees[s["number"] - 1]
        assert s["probability"] == pytest.approx(expected, rel=1e-5, abs=1e-7)
    permuted = (9.9, 5.4, 7.7, 90, 90, 90)
    any_setting = predict_cell(*permuted, top_k=230)
    assert {s["number"]: s["probability"] for s in any_setting["spacegroups"]} == pytest.approx(alone)
    other = {s["number"]: s["probability"] for s in predict_cell(*permuted, top_k=230, setting="standard")["spacegroups"]}
    assert max(abs(other[g] - s["probability"]) for g, s in
               ((s["number"], s) for s in standard["spacegroups"])) > 1e-3
    with pytest.raises(ValueError, match="setting"):
        predict_cell(*cell, setting="conventional")


@shipped
def test_cli_standard_setting(capsys):
    from cryspext.cli import main

    assert main(["formula", "cell", "5.4", "7.7", "9.9", "90", "90", "90", "--standard-setting", "--json"]) == 0
    assert '"setting": "standard"' in capsys.readouterr().out
    assert main(["formula", "NaCl", "--standard-setting"]) == 2
    assert "--standard-setting goes with 'cell'" in capsys.readouterr().err
