"""The boosted-tree part of the formula model: exact conversion from scikit-learn, the trainer
on a tiny synthetic data set, the mix with the networks, and the shipped file."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor  # noqa: E402

from cryspext.formula.trees import N_HEADS, bin_features, feature_edges, from_sklearn  # noqa: E402
from cryspext.models import MODELS_DIR, load_torchscript, save_torchscript  # noqa: E402


@pytest.fixture(scope="module")
def toy():
    """Trees for a 12-feature problem: 8 of 14 Bravais classes seen, a binary space-group head
    (lattice 0), a two-parameter regression head (lattice 3; its second column fitted on the log
    of a positive target, as the lattice lengths are), constant heads elsewhere."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 12)).astype(np.float32)
    X[:, 3] = rng.integers(0, 4, 3000)  # a feature with few distinct values
    y = (X[:, 0] > 0) * 2 + (X[:, 1] > X[:, 3]) + rng.integers(0, 2, 3000) * 4
    edges = feature_edges(X)
    Xb = bin_features(X, edges)
    multi = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, random_state=0).fit(Xb, y)
    binary = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xb, y % 2)
    # The first regressor has trees of the shipped lattice kind: 63 leaves (the packing's
    # limit), splits among a random half of the features.
    regs = [HistGradientBoostingRegressor(max_iter=25, max_leaf_nodes=63, min_samples_leaf=5,
                                          max_features=0.5, random_state=0).fit(Xb, 3 * X[:, 0] + X[:, 2]),
            HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(Xb, np.log(4 + np.abs(X[:, 5])))]
    heads = [(multi, 14, list(multi.classes_))]
    heads += [(binary, 3, [0, 2]) if k == 0 else (None, 2, [0.0, 1.0]) for k in range(14)]
    heads += [(regs, 2, [False, True]) if k == 3 else (None, 1, [5.0]) for k in range(14)]
    return edges, multi, binary, regs, from_sklearn(heads, edges)


def _test_rows(n=400):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 12)).astype(np.float32) * 1.5  # also beyond the training range
    X[:, 3] = rng.integers(-1, 5, n)
    return X


def test_binning_matches_between_numpy_and_torch(toy):
    edges, *_, trees = toy
    X = _test_rows()
    np.testing.assert_array_equal(trees.bins(torch.from_numpy(X)).numpy(), bin_features(X, edges))
    assert bin_features(X, edges).max() <= 254


def test_trees_reproduce_scikit_learn(toy, tmp_path):
    edges, multi, binary, regs, trees = toy
    save_torchscript(trees, tmp_path / "t.pt", {"kind": "test"})
    loaded = load_torchscript(tmp_path / "t.pt")  # the scripted, saved and reloaded module
    X = _test_rows()
    Xb, x = bin_features(X, edges), torch.from_numpy(X)
    with torch.no_grad():
        p = loaded.bravais(x).numpy()
        # float16 leaf values: agreement to ~1e-3, not bit for bit
        np.testing.assert_allclose(p[:, multi.classes_], multi.predict_proba(Xb), atol=2e-3)
        assert p[:, [c for c in range(14) if c not in multi.classes_]].max() < 1e-6
        p = loaded.spacegroup(x, 0).numpy()  # binary: columns 0 and 2 of 3
        np.testing.assert_allclose(p[:, [0, 2]], binary.predict_proba(Xb), atol=2e-3)
        assert p[:, 1].max() < 1e-6
        lat = loaded.lattice(x, 3).numpy()
        assert max(len(t.nodes) for rnd in regs[0]._predictors for t in rnd) > 63  # deep trees
        np.testing.assert_allclose(lat[:, 0], regs[0].predict(Xb), atol=5e-3)
        np.testing.assert_allclose(lat[:, 1], np.exp(regs[1].predict(Xb)), rtol=5e-3)  # exp of ln fit
        assert lat[:, 1].min() > 4 - 0.1
        # constant heads give their baseline (logits 0, 1 for the space groups)
        np.testing.assert_allclose(loaded.spacegroup(x[:2], 5).numpy(),
                                   [np.exp([0, 1]) / np.exp([0, 1]).sum()] * 2, rtol=1e-6)
        np.testing.assert_allclose(loaded.lattice(x[:2], 7).numpy(), [[5.0], [5.0]])
        assert loaded.lattice(x[:0], 3).shape == (0, 2)


def test_lattice_given_spacegroup_reproduces_scikit_learn(toy, tmp_path):
    """Lattice heads that read the space group: a regressor fitted with the space-group columns
    after the features, packed next to heads copied from another module."""
    from cryspext.formula.trees import common_groups, spacegroup_columns, spacegroup_edges

    edges, multi, binary, regs, trees = toy
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 12)).astype(np.float32)
    groups = rng.choice([0, 1, 2], p=[0.2, 0.5, 0.3], size=3000)  # positions among lattice 0's groups
    onehot = np.full((14, 8), -1)
    onehot[0] = common_groups(groups)
    assert onehot[0].tolist() == [1, 2, 0, -1, -1, -1, -1, -1]  # most common first
    cols = spacegroup_columns(groups, onehot[0])
    assert cols.shape == (3000, 9) and (cols[:, 0] == groups).all()
    assert (cols[:, 1] == (groups == 1)).all() and (cols[:, 4:] == 0).all()  # one-hot of position 1; padding
    reg = HistGradientBoostingRegressor(max_iter=30, max_leaf_nodes=15, random_state=0).fit(
        np.concatenate([bin_features(X, edges), cols], axis=1), X[:, 0] + 5.0 * groups)
    heads = [(trees, None, h) for h in range(15)]  # copied, not refitted
    heads += [([reg], 1, [False]) if k == 0 else (None, 1, [5.0]) for k in range(14)]
    ext = np.concatenate([edges, spacegroup_edges()])
    save_torchscript(from_sklearn(heads, ext, onehot_groups=onehot), tmp_path / "t.pt", {"kind": "test"})
    new = load_torchscript(tmp_path / "t.pt")
    assert new.lattice_by_spacegroup and not trees.lattice_by_spacegroup
    Xt = _test_rows()
    x, Xb = torch.from_numpy(Xt), bin_features(Xt, edges)
    n = len(Xt)
    with torch.no_grad():
        for h, k in (("bravais", ()), ("spacegroup", (0,)), ("spacegroup", (5,))):  # copied exactly
            assert torch.equal(getattr(new, h)(x, *k), getattr(trees, h)(x, *k))
        by_group = []
        for g in range(3):
            got = new.lattice_given(x, 0, torch.full((n, 1), g), torch.ones(n, 1)).numpy()[:, 0]
            ref = reg.predict(np.concatenate([Xb, spacegroup_columns(np.full(n, g), onehot[0])], axis=1))
            np.testing.assert_allclose(got, ref, atol=5e-3)
            by_group.append(got)
        # weights are normalised; the average is over the groups
        w = torch.tensor([[1.0, 3.0]]).repeat(n, 1)
        mixed = new.lattice_given(x, 0, torch.tensor([[0, 2]]).repeat(n, 1), w).numpy()[:, 0]
        np.testing.assert_allclose(mixed, 0.25 * by_group[0] + 0.75 * by_group[2], atol=1e-4)
        # lattice(): over the trees' own space-group probabilities (3 groups, all of them)
        p = new.spacegroup(x, 0).numpy()
        np.testing.assert_allclose(new.lattice(x, 0).numpy()[:, 0],
                                   (p * np.stack(by_group, 1)).sum(1), atol=1e-3)
        np.testing.assert_allclose(new.lattice(x[:2], 7).numpy(), [[5.0], [5.0]])  # constant head
        with pytest.raises(RuntimeError, match="space group"):
            trees.lattice_given(x, 0, torch.zeros(n, 1, dtype=torch.long), torch.ones(n, 1))
        with pytest.raises(torch.jit.Error, match="same number of rows"):
            new.lattice_given(x, 0, torch.zeros(n - 1, 1, dtype=torch.long), torch.ones(n - 1, 1))


def test_forest_mix_reproduces_scikit_learn(toy, tmp_path):
    """A lattice head of boosted regressors mixed with random forests (``ForestMix``): packed
    from scikit-learn models, and with the boosted part copied from a packed module, it gives
    (1 - w) · boosted + w · forest in the fitted target's units (exp of it for the log column)."""
    from sklearn.ensemble import RandomForestRegressor

    from cryspext.formula.trees import ForestMix

    edges, multi, binary, regs, trees = toy
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 12)).astype(np.float32)
    Xb = bin_features(X, edges)
    targets = [3 * X[:, 0] + X[:, 2], np.log(4 + np.abs(X[:, 5]))]  # those of the toy's regressors
    forests = [RandomForestRegressor(n_estimators=20, max_leaf_nodes=64, max_features="sqrt",
                                     random_state=0).fit(Xb, t) for t in targets]
    assert max(e.tree_.node_count for f in forests for e in f.estimators_) == 127  # the format's limit
    w = 0.3
    Xt = _test_rows()
    x, Xtb = torch.from_numpy(Xt), bin_features(Xt, edges)
    for boosted in (regs, (trees, 15 + 3)):
        heads = [(trees, None, h) for h in range(15)]
        heads += [(ForestMix(boosted, forests, w), 2, [False, True]) if k == 3 else (trees, None, 15 + k)
                  for k in range(14)]
        save_torchscript(from_sklearn(heads, edges), tmp_path / "m.pt", {"kind": "test"})
        new = load_torchscript(tmp_path / "m.pt")
        with torch.no_grad():
            lat = new.lattice(x, 3).numpy()
            assert torch.equal(new.lattice(x, 7), trees.lattice(x, 7))  # other heads copied
        mixed = [(1 - w) * r.predict(Xtb) + w * f.predict(Xtb) for r, f in zip(regs, forests)]
        np.testing.assert_allclose(lat[:, 0], mixed[0], atol=1e-2)
        np.testing.assert_allclose(lat[:, 1], np.exp(mixed[1]), rtol=5e-3)
        # not the boosted trees alone: the forest's share is there
        assert np.abs(lat[:, 0] - regs[0].predict(Xtb)).max() > 0.1


def test_nan_features_are_refused(toy):
    *_, trees = toy
    x = torch.from_numpy(_test_rows(3))
    x[1, 4] = float("nan")
    with pytest.raises(Exception, match="NaN"):
        trees.bravais(x)


def test_wrong_number_of_feature_columns_is_refused(toy):
    *_, trees = toy
    x = torch.from_numpy(_test_rows(3))
    for bad in (x[:, :11], torch.cat([x, x[:, :1]], dim=1)):
        with pytest.raises(ValueError, match="12 feature columns"):
            trees.bravais(bad)


def test_wrong_number_of_heads_is_refused(toy):
    edges, multi, *_ = toy
    with pytest.raises(ValueError, match="heads"):
        from_sklearn([(multi, 14, list(multi.classes_))], edges)


def test_trainer_and_mix_with_networks(tmp_path, monkeypatch):
    """Tiny synthetic data set: fit networks and trees, then check that predict_formula's numbers
    are the card's mix of the two."""
    from cryspext.formula import FEATURE_NAMES, formula_features, predict_formula
    from cryspext.formula.cellgeom import CELL_FEATURE_NAMES
    from cryspext.formula.features import FORMULA_UNIT_FEATURE_NAMES, formula_unit_features
    from cryspext.formula.lattice import BRAVAIS, bravais_of_spacegroup, spacegroups_of_bravais
    from cryspext.formula.confidence import lattice_uncertainty, member_std, temper
    from cryspext.formula.predict import FormulaModels
    from cryspext.training import formula_trees
    from cryspext.training.formula import train_split

    rng = np.random.default_rng(0)
    n = 1400
    sg = rng.choice([225, 194, 62, 14, 166, 139, 2, 12, 221, 229, 71, 63, 123, 70], size=n)
    params = np.abs(rng.normal(6, 1, (n, 6))).astype(np.float32) + 1
    params[:, 3:] = rng.uniform(60, 120, (n, 3))
    X = rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
    np.savez_compressed(
        tmp_path / "arrays.npz", X=X,
        # positive cell features: the cell networks take logarithms of lengths
        C=rng.uniform(0.1, 2, size=(n, len(CELL_FEATURE_NAMES))).astype(np.float32),
        C_primitive=rng.uniform(0.1, 2, size=(n, len(CELL_FEATURE_NAMES))).astype(np.float32),
        primitive=params, conventional=params, niggli=params, params=params, sg=sg,
        bravais=np.array([BRAVAIS.index(bravais_of_spacegroup(int(s))) for s in sg]),
        mp_id=np.arange(n), formula=rng.choice(["NaCl", "Fe2O3", "LiFePO4", "Cu", "SiO2"], size=n),
        digest=np.array("synthetic"),
        niggli_sample=np.arange(0, n, 10),
        C_niggli_sample=rng.normal(size=(n // 10, len(CELL_FEATURE_NAMES))).astype(np.float32))
    out = tmp_path / "models"
    train_split(tmp_path, "future", out, members=2, epochs=1, cell_config={"members": 2, "epochs": 1})
    for name in ("BRAVAIS_TREES", "SPACEGROUP_TREES", "LATTICE_TREES"):
        monkeypatch.setitem(getattr(formula_trees, name), "max_iter", 5)
    monkeypatch.setitem(formula_trees.CONFIDENCE, "future", {  # whatever the real constants are
        "bravais_temperature": 1.3,
        "lattice_uncertainty": {"lengths": {"std_scale": 1.5, "relative_floor": 0.05},
                                "angles": {"std_scale": 2.0, "floor_deg": 3.0}}})
    card = formula_trees.train("future", out, cache=tmp_path)
    assert card["n_trees"] > 0 and card["blend_weight"] == 0.5
    assert json.loads((out / "formula_trees.json").read_text())["kind"] == "formula_trees"
    assert 0 <= card["test_metrics"]["bravais"]["top1"] <= 1

    models = FormulaModels(out)
    assert models.trees is not None
    # Networks and trees (classifiers too) read the formula-unit features after the 221.
    assert card["inputs"] == FEATURE_NAMES + FORMULA_UNIT_FEATURE_NAMES
    assert card["classifier_inputs"] == len(card["inputs"]) == models.n_network_inputs
    assert models.n_tree_inputs == len(card["inputs"])
    x = models.features(["NaCl"])
    np.testing.assert_array_equal(x[0], np.concatenate([formula_features("NaCl"),
                                                        formula_unit_features("NaCl")]))
    with pytest.raises(ValueError, match="FormulaModels.features"):
        models.tree_output("bravais", x[:, :len(FEATURE_NAMES)])
    # With CLASSIFIER_FORMULA_UNIT_INPUTS off (the trees shipped before the networks read the
    # formula-unit features), only the lattice regressors split on them.
    lattice_only = tmp_path / "lattice_only"
    with monkeypatch.context() as mp:
        mp.setattr(formula_trees, "CLASSIFIER_FORMULA_UNIT_INPUTS", False)
        card_l = formula_trees.train("future", lattice_only, cache=tmp_path)
    assert card_l["classifier_inputs"] == len(FEATURE_NAMES)
    t = load_torchscript(lattice_only / "formula_trees.pt")
    classifiers = slice(0, int(t.tree_offsets[15]))
    split_features = t.feature[classifiers][t.left_offset[classifiers] > 0]
    assert int(split_features.max()) < len(FEATURE_NAMES)
    regressors = slice(int(t.tree_offsets[15]), None)
    assert int(t.feature[regressors][t.left_offset[regressors] > 0].max()) >= len(FEATURE_NAMES)
    nets = models.bravais_proba(x).mean(axis=0)
    with torch.no_grad():
        tr = models.trees.bravais(torch.from_numpy(x.astype(np.float32))).numpy()
    # Bravais probabilities mixed with bravais_blend_weight, space groups with blend_weight.
    wb = card["bravais_blend_weight"]
    assert wb == formula_trees.BRAVAIS_BLEND_WEIGHT != card["blend_weight"]
    # ... then tempered with the card's calibration (formula.confidence)
    assert card["confidence"] == formula_trees.CONFIDENCE["future"]  # the constants of its split
    assert models.bravais_temperature == 1.3
    np.testing.assert_allclose(models.bravais(x), temper((1 - wb) * nets + wb * tr, 1.3), rtol=1e-5)
    k = int(np.argmax(models.bravais(x)[0]))
    nets_sg = models.spacegroup_proba(x, BRAVAIS[k])[1].mean(axis=0)
    with torch.no_grad():
        tr_sg = models.trees.spacegroup(torch.from_numpy(x.astype(np.float32)), k).numpy()
    np.testing.assert_allclose(models.spacegroup(x, BRAVAIS[k])[1], 0.5 * nets_sg + 0.5 * tr_sg,
                               rtol=1e-5)
    res = predict_formula("NaCl", top_k=14, model_dir=out)
    probs = {c["bravais"]: c["probability"] for c in res["candidates"]}
    for k, b in enumerate(BRAVAIS):
        assert probs[b] == pytest.approx(models.bravais(x)[0, k], abs=1e-6)
    best = res["candidates"][0]
    groups, p_sg = models.spacegroup(x, best["bravais"])
    assert best["spacegroups"][0]["number"] == groups[int(np.argmax(p_sg[0]))]
    names, lat = models.lattice(x, best["bravais"])
    assert best["lattice"][names[0]]["value"] == pytest.approx(float(lat[0, 0]), rel=1e-5)
    # Lattice parameters: lengths mixed with length_blend_weight, free angles with
    # angle_blend_weight; the trees fit the lengths as ln(length) and return Å.
    assert card["angle_blend_weight"] == formula_trees.ANGLE_BLEND_WEIGHT != card["blend_weight"]
    assert card["length_blend_weight"] == formula_trees.LENGTH_BLEND_WEIGHT != card["blend_weight"]
    assert card["settings"]["lattice_lengths"] == "ln(Å)"
    # The future split's lattice heads mix in random forests (LATTICE_FOREST_WEIGHT): each
    # column holds its boosted rounds and the forest's trees.
    assert card["settings"]["lattice_forest_weight"] == formula_trees.LATTICE_FOREST_WEIGHT["future"] > 0
    k_mP, n_forest = BRAVAIS.index("mP"), formula_trees.LATTICE_FOREST["n_estimators"]
    t0, t1 = models.trees.tree_offsets[15 + k_mP: 17 + k_mP].tolist()
    assert t1 - t0 == 3 * (5 + n_forest) + formula_trees.ANGLE_TREES["max_iter"] + n_forest
    names, lat = models.lattice(x, "mP")
    assert names == ["a", "b", "c", "beta"]
    nets = models.lattice_parameters(x, "mP")[1].mean(axis=0)
    k = BRAVAIS.index("mP")
    # The lattice trees read the space group: their values for the 5 groups the whole model
    # finds likeliest, averaged with its probabilities.
    assert card["settings"]["lattice_by_spacegroup"] and models.trees.lattice_by_spacegroup
    p_sg = models.spacegroup(x, "mP")[1]
    top = np.argsort(-p_sg[0])[:5]
    xt = torch.from_numpy(x.astype(np.float32))
    with torch.no_grad():
        per_group = np.stack([models.trees.lattice_given(xt, k, torch.tensor([[int(g)]]),
                                                         torch.ones(1, 1)).numpy()[0] for g in top])
    tr = (p_sg[0, top, None] * per_group).sum(0, keepdims=True) / p_sg[0, top].sum()
    np.testing.assert_allclose(models.tree_lattice(x, k), tr, rtol=1e-5)
    c0, c1 = models.trees.column_offsets[15 + k: 17 + k].tolist()
    assert models.trees.exp_columns[c0:c1].tolist() == [True, True, True, False]
    assert tr[0, :3].min() > 0  # lengths, in Å
    w = np.array([card["length_blend_weight"]] * 3 + [card["angle_blend_weight"]])
    np.testing.assert_allclose(lat, (1 - w) * nets + w * tr, rtol=1e-6)
    res = predict_formula("NaCl", top_k=14, model_dir=out)
    got = next(c for c in res["candidates"] if c["bravais"] == "mP")["lattice"]
    assert got["beta"]["value"] == pytest.approx(float(lat[0, 3]), rel=1e-5)
    assert got["alpha"]["value"] == got["gamma"]["value"] == 90.0
    # A space group the user gives: one candidate, its lattice, the parameters given that group.
    given = predict_formula("NaCl", spacegroup=62, model_dir=out)
    assert given["spacegroup"] == 62 and [c["bravais"] for c in given["candidates"]] == ["oP"]
    cand = given["candidates"][0]
    assert cand["probability"] == pytest.approx(float(models.bravais(x)[0, BRAVAIS.index("oP")]), abs=1e-6)
    groups_oP, p_oP = models.spacegroup(x, "oP")
    assert [s["number"] for s in cand["spacegroups"]] == [62]
    assert cand["spacegroups"][0]["probability"] == pytest.approx(float(p_oP[0, groups_oP.index(62)]), rel=1e-5)
    k_oP = BRAVAIS.index("oP")
    with torch.no_grad():
        tr_62 = models.trees.lattice_given(xt, k_oP, torch.tensor([[groups_oP.index(62)]]),
                                           torch.ones(1, 1)).numpy()
    names_oP, members_oP = models.lattice_parameters(x, "oP")
    want = models.lattice_mix(members_oP.mean(axis=0), tr_62, "oP")[0]
    assert [cand["lattice"][n]["value"] for n in names_oP] == pytest.approx(want.tolist(), rel=1e-5)
    for bad, err in ((0, ValueError), (231, ValueError), ("62", TypeError), (True, TypeError)):
        with pytest.raises(err):
            predict_formula("NaCl", spacegroup=bad, model_dir=out)
    # Each parameter's σ from the members' std and the card's constants; NaN without them.
    members = models.lattice_parameters(x, "mP")[1]
    sigma = lattice_uncertainty(names, lat, member_std(members), card["confidence"]["lattice_uncertainty"])[0]
    assert [got[n]["uncertainty"] for n in names] == pytest.approx(sigma.tolist(), rel=1e-5)
    assert sigma[0] >= 0.05 * lat[0, 0] and sigma[3] >= 3.0  # at least the floors
    assert got["alpha"]["uncertainty"] == got["alpha"]["std"] == 0.0  # fixed by symmetry
    tp = next(c for c in res["candidates"] if c["bravais"] == "tP")["lattice"]
    assert tp["b"]["std"] == tp["a"]["std"] > 0  # b = a: the same number, the same spread

    # The cell trees, mixed into predict_cell the same way.
    from cryspext.formula import predict_cell
    from cryspext.formula.cellgeom import cell_features
    from cryspext.formula.predict import _models

    monkeypatch.setitem(formula_trees.CELL_TREES, "max_iter", 5)
    cell_card = formula_trees.train_cell_trees("future", out, cache=tmp_path)
    assert cell_card["kind"] == "cell_trees" and cell_card["n_trees"] > 0
    w = cell_card["blend_weight"]
    assert w == formula_trees.CELL_BLEND_WEIGHT
    _models.cache_clear()
    models = FormulaModels(out)
    assert models.cell_trees is not None
    c = cell_features([4, 4, 4, 90, 90, 90], 2e-3)[None, :]
    mixed = models.cell_mix(c)
    np.testing.assert_allclose(mixed, (1 - w) * models.cell_proba(c).mean(0) + w * models.cell_tree_proba(c),
                               rtol=1e-6)
    res = predict_cell(4, 4, 4, 90, 90, 90, top_k=3, model_dir=out)
    top = res["spacegroups"][0]
    assert top["number"] == int(np.argmax(mixed[0])) + 1
    assert top["probability"] == pytest.approx(float(mixed[0].max()), rel=1e-6)

    # The standard-setting trees: the cell as written, mixed in by setting="standard" only.
    from cryspext.formula.cellsetting import standard_setting_features

    std_card = formula_trees.train_standard_cell_trees("future", out, cache=tmp_path)
    assert std_card["kind"] == "cell_standard_trees" and set(std_card["test_metrics"]) == {
        "conventional", "niggli", "primitive"}
    _models.cache_clear()
    models = FormulaModels(out)
    cell = [4, 5, 6, 90, 90, 90]
    c = cell_features(cell, 2e-3)[None, :]
    with torch.no_grad():
        p_std = models.cell_standard_trees.probabilities(torch.from_numpy(standard_setting_features(cell)), 0).numpy()
    w = std_card["blend_weight"]
    assert w == formula_trees.STANDARD_CELL_BLEND_WEIGHT
    expected = (1 - w) * models.cell_mix(c) + w * p_std
    res = predict_cell(*cell, top_k=1, model_dir=out, setting="standard")
    assert res["spacegroups"][0]["number"] == int(np.argmax(expected[0])) + 1
    assert res["spacegroups"][0]["probability"] == pytest.approx(float(expected[0].max()), rel=1e-5)

    # Trees without the formula-unit features (as shipped before them) read the networks'
    # columns only.
    import shutil

    from cryspext.training import formula as training_formula

    old = tmp_path / "old"
    old.mkdir()
    for name in ("cell.pt", "cell.json"):
        shutil.copy(out / name, old / name)
    monkeypatch.setattr(formula_trees, "FORMULA_UNIT_INPUTS", False)
    monkeypatch.setattr(training_formula, "NETWORK_FORMULA_UNIT_INPUTS", False)
    monkeypatch.setitem(formula_trees.CONFIDENCE, "future", None)  # and without calibration constants
    train_split(tmp_path, "future", old, members=1, epochs=1, cell="keep")
    assert formula_trees.train("future", old, cache=tmp_path)["inputs"] == FEATURE_NAMES
    _models.cache_clear()
    res = predict_formula("NaCl", top_k=14, model_dir=old)
    got = next(c for c in res["candidates"] if c["bravais"] == "mP")["lattice"]
    assert np.isnan(got["a"]["uncertainty"]) and got["a"]["std"] == 0.0  # one member: no spread
    models = FormulaModels(old)
    assert models.n_tree_inputs == len(FEATURE_NAMES)
    np.testing.assert_array_equal(models.features(["NaCl"]), formula_features("NaCl")[None, :])
    names, lat = models.lattice(formula_features("NaCl")[None, :], "mP")
    assert predict_formula("NaCl", top_k=14, model_dir=old)["candidates"] and lat.shape == (1, 4)

    # --refit-lattice refits the lattice regressors only (here: to ones that do not read the
    # space group), on the card's rows; the classifiers are copied.
    import shutil as _shutil

    refit = tmp_path / "refit"
    _shutil.copytree(out, refit)
    monkeypatch.setattr(formula_trees, "FORMULA_UNIT_INPUTS", True)
    monkeypatch.setattr(formula_trees, "LATTICE_BY_SPACEGROUP", False)
    before = load_torchscript(refit / "formula_trees.pt")
    formula_trees.main(["--refit-lattice", str(refit / "formula_trees.pt"), "--cache", str(tmp_path)])
    after = load_torchscript(refit / "formula_trees.pt")
    refit_card = json.loads((refit / "formula_trees.json").read_text())
    assert not after.lattice_by_spacegroup and not refit_card["settings"]["lattice_by_spacegroup"]
    assert refit_card["lattice_refit_s"] > 0 and refit_card["n_trees"] == int(after.roots.numel())
    with torch.no_grad():
        assert torch.equal(after.bravais(xt), before.bravais(xt))
        assert torch.equal(after.spacegroup(xt, 3), before.spacegroup(xt, 3))
        assert not torch.equal(after.lattice(xt, k), before.lattice(xt, k))
    _models.cache_clear()
    with pytest.raises(ValueError, match="cannot take a space group"):
        predict_formula("NaCl", spacegroup=62, model_dir=refit)
    assert len(predict_formula("NaCl", top_k=2, model_dir=refit)["candidates"]) == 2
    monkeypatch.setattr(formula_trees, "LATTICE_BY_SPACEGROUP", True)
    formula_trees.main(["--refit-lattice", str(refit / "formula_trees.pt"), "--cache", str(tmp_path)])
    with torch.no_grad():  # back to the same fit
        np.testing.assert_allclose(load_torchscript(refit / "formula_trees.pt").lattice(xt, k),
                                   before.lattice(xt, k), rtol=1e-6)
    # ... and without the forests of the future split's lattice heads: fewer trees, other values
    monkeypatch.setitem(formula_trees.LATTICE_FOREST_WEIGHT, "future", 0.0)
    formula_trees.main(["--refit-lattice", str(refit / "formula_trees.pt"), "--cache", str(tmp_path)])
    boosted_only = load_torchscript(refit / "formula_trees.pt")
    assert json.loads((refit / "formula_trees.json").read_text())["settings"]["lattice_forest_weight"] == 0
    n_forest = formula_trees.LATTICE_FOREST["n_estimators"]
    n_lattice_columns = int(before.baseline.numel() - before.column_offsets[15])  # 37, all fitted here
    assert int(before.roots.numel()) - int(boosted_only.roots.numel()) == n_forest * n_lattice_columns
    with torch.no_grad():
        assert not np.allclose(boosted_only.lattice(xt, k), before.lattice(xt, k), rtol=1e-3)

    # --repack writes the current mixing weights onto the card and leaves the trees as they are.
    card_path = out / "formula_trees.json"
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "length_blend_weight": 0.123,
                                     "bravais_blend_weight": 0.321, "confidence": {"old": 1}}))
    xt = torch.from_numpy(x.astype(np.float32))
    with torch.no_grad():
        before = load_torchscript(out / "formula_trees.pt").lattice(xt, BRAVAIS.index("mP"))
        formula_trees.main(["--repack", str(out / "formula_trees.pt")])
        after = load_torchscript(out / "formula_trees.pt").lattice(xt, BRAVAIS.index("mP"))
    repacked = json.loads(card_path.read_text())
    assert repacked["length_blend_weight"] == formula_trees.LENGTH_BLEND_WEIGHT
    assert repacked["bravais_blend_weight"] == formula_trees.BRAVAIS_BLEND_WEIGHT
    assert repacked["blend"] == formula_trees.FORMULA_BLEND_RULE
    assert repacked["confidence"] == formula_trees.CONFIDENCE["future"]  # the set of the card's split
    assert torch.equal(before, after)

    # --refit-classifiers refits the Bravais and space-group classifiers on the card's rows plus
    # COD's training half (training.cod) and copies the lattice regressors. The synthetic COD
    # table labels every composition Fd-3m (227), a group of cF no training row has.
    import gzip

    shared = tmp_path / "shared"
    (shared / "mp").mkdir(parents=True)
    metals = ["Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Al", "Ga", "Zn", "Cd", "Mn"]
    cod_rows = [[f"{m}Fe2O4", 1000 + i, 227] for i, m in enumerate(metals)]
    cod_rows += [["Fe3O4", 2000, 227], ["Na2Cl2", 2001, 225]]  # in the MP table: left out
    with gzip.open(shared / "mp" / "cod_formula_sg.json.gz", "wt") as f:
        json.dump(cod_rows, f)
    with gzip.open(shared / "mp" / "mp_ehull.json.gz", "wt") as f:
        json.dump({"Fe3O4": [[0.0, 1]], "NaCl": [[0.0, 2]]}, f)
    cod_out = tmp_path / "cod"
    _shutil.copytree(out, cod_out)
    before = load_torchscript(cod_out / "formula_trees.pt")
    formula_trees.main(["--refit-classifiers", str(cod_out / "formula_trees.pt"), "--cache",
                        str(tmp_path), "--shared", str(shared)])
    after = load_torchscript(cod_out / "formula_trees.pt")
    cod_card = json.loads((cod_out / "formula_trees.json").read_text())["cod_labels"]
    assert cod_card["n_compositions"] == len(metals) and 0 < cod_card["n_rows"] < len(metals)
    cF, column_227 = BRAVAIS.index("cF"), spacegroups_of_bravais("cF").index(227)
    with torch.no_grad():
        assert torch.equal(after.lattice(xt, k), before.lattice(xt, k))
        assert float(before.spacegroup(xt, cF)[:, column_227].max()) < 1e-6  # never seen
        assert float(after.spacegroup(xt, cF)[:, column_227].max()) > 1e-3
        assert not torch.equal(after.bravais(xt), before.bravais(xt))
    # --no-cod refits on the card's rows alone: the classifiers as train() fitted them
    formula_trees.main(["--refit-classifiers", str(cod_out / "formula_trees.pt"), "--cache",
                        str(tmp_path), "--no-cod"])
    again = load_torchscript(cod_out / "formula_trees.pt")
    assert "cod_labels" not in json.loads((cod_out / "formula_trees.json").read_text())
    with torch.no_grad():
        np.testing.assert_allclose(again.bravais(xt), before.bravais(xt), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(again.spacegroup(xt, cF), before.spacegroup(xt, cF), rtol=1e-5, atol=1e-7)


shipped = pytest.mark.skipif(not (MODELS_DIR / "formula" / "formula_trees.pt").is_file(),
                             reason="formula trees not shipped in this checkout")


@shipped
def test_shipped_trees_load_and_are_used():
    from cryspext.formula import FEATURE_NAMES, FORMULA_UNIT_FEATURE_NAMES
    from cryspext.formula.predict import FormulaModels

    card = json.loads((MODELS_DIR / "formula" / "formula_trees.json").read_text())
    assert card["split"] == "random" and 0 < card["blend_weight"] < 1
    # size budget: 31.4 MB since the 800-round Bravais trees (28.0 MB with 400 rounds; 18.6 MB
    # before the 63-leaf lattice trees)
    assert (MODELS_DIR / "formula" / "formula_trees.pt").stat().st_size < 33e6
    models = FormulaModels()
    assert models.trees is not None and models.blend == card["blend_weight"]
    assert models.angle_blend == card["angle_blend_weight"]
    assert models.length_blend == card["length_blend_weight"]
    assert models.bravais_blend == card["bravais_blend_weight"]
    from cryspext.training.formula_trees import CONFIDENCE

    assert card["confidence"] == CONFIDENCE["random"]  # the shipped card carries the current calibration
    assert models.bravais_temperature == CONFIDENCE["random"]["bravais_temperature"]
    assert int(models.trees.tree_offsets.numel()) == N_HEADS + 1
    assert card["inputs"] == FEATURE_NAMES + FORMULA_UNIT_FEATURE_NAMES == (
        models.trees_card["inputs"])
    assert models.n_tree_inputs == len(card["inputs"]) == card["classifier_inputs"]
    assert models.n_network_inputs == len(models.formula_card["inputs"]) == len(card["inputs"])
    x = models.features(["LiFePO4"])
    assert x.shape == (1, len(card["inputs"]))
    p = models.bravais(x)
    assert p.shape == (1, 14) and abs(p.sum() - 1) < 1e-5
    assert not np.allclose(p, models.bravais_proba(x).mean(axis=0))  # the trees count


@pytest.mark.skipif(not (MODELS_DIR / "formula" / "cell_trees.pt").is_file(),
                    reason="cell trees not shipped in this checkout")
def test_shipped_cell_trees_load_and_are_used():
    from cryspext.formula import predict_cell
    from cryspext.formula.cellgeom import cell_features
    from cryspext.formula.predict import FormulaModels

    card = json.loads((MODELS_DIR / "formula" / "cell_trees.json").read_text())
    assert card["split"] == "random" and 0 < card["blend_weight"] < 1
    models = FormulaModels()
    assert models.cell_trees is not None and models.cell_blend == card["blend_weight"]
    c = cell_features([5.43, 5.43, 5.43, 90, 90, 90], 2e-3)[None, :]
    p = models.cell_mix(c)
    assert p.shape == (1, 230) and abs(p.sum() - 1) < 1e-5
    assert not np.allclose(p, models.cell_proba(c).mean(axis=0))  # the trees count
    top = predict_cell(5.43, 5.43, 5.43, 90, 90, 90, top_k=1)["spacegroups"][0]
    assert top["number"] == int(np.argmax(p[0])) + 1


@shipped
@pytest.mark.parametrize("a, b", [("LiFePO4", "O4PFeLi"), ("CuSO4·5H2O", "CuH10SO9"),
                                  ("Ba2NaCe2Ti2FeSi8HO27", "HO27Si8FeTi2Ce2NaBa2"),
                                  ("MgCaSr", "SrCaMg")])
def test_element_order_does_not_change_the_answer(a, b):
    """Trees are step functions: round-off in the features (which depends on the order of the
    elements) must not move a formula across a threshold."""
    from cryspext.formula.predict import FormulaModels

    models = FormulaModels()
    xa, xb = models.features([a]), models.features([b])
    np.testing.assert_array_equal(models.trees.bins(torch.from_numpy(xa.astype(np.float32))),
                                  models.trees.bins(torch.from_numpy(xb.astype(np.float32))))
    np.testing.assert_allclose(models.bravais(xa), models.bravais(xb), atol=1e-6)
    for lattice in ("mP", "cF"):  # the lattice trees also read the formula-unit features
        np.testing.assert_allclose(models.lattice(xa, lattice)[1], models.lattice(xb, lattice)[1],
                                   rtol=1e-6)


def test_calibration_table_has_a_full_set_per_split():
    """formula_calibration.json (written by benchmarks/formula_confidence_validation.py --write):
    each split's set has a temperature and the σ constants, in a plausible range."""
    from cryspext.training import formula_trees

    assert set(formula_trees.CONFIDENCE) == {"random", "future"}
    for split, c in formula_trees.CONFIDENCE.items():
        assert 1.0 <= c["bravais_temperature"] <= 4.0
        u = c["lattice_uncertainty"]
        assert 0 < u["lengths"]["relative_floor"] < 1 and 0 < u["angles"]["floor_deg"] < 30
        assert "--split " + split in c["chosen_by"]
