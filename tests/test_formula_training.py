"""The training pipeline end to end on a tiny synthetic data set (seconds, no shared data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryspext.formula import (
    FEATURE_NAMES,
    FORMULA_UNIT_FEATURE_NAMES,
    formula_features,
    formula_unit_features,
    predict_cell,
    predict_formula,
)
from cryspext.formula.cellgeom import CELL_FEATURE_NAMES
from cryspext.formula.lattice import BRAVAIS, bravais_of_spacegroup
from cryspext.training.formula import r2_score, split_indices, train_split

torch = pytest.importorskip("torch")


def _rows(formulas) -> np.ndarray:
    """Input rows of the trained networks: the formula features, then the formula-unit ones."""
    return np.stack([np.concatenate([formula_features(f), formula_unit_features(f)])
                     for f in formulas]).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    cache = tmp_path_factory.mktemp("formula_cache")
    rng = np.random.default_rng(0)
    n = 1400
    sg = rng.choice([225, 194, 62, 14, 166, 139, 2, 12, 221, 229, 71, 63, 123, 70], size=n)
    params = np.abs(rng.normal(6, 1, (n, 6))).astype(np.float32) + 1
    params[:, 3:] = rng.uniform(60, 120, (n, 3))
    C = rng.normal(size=(n, len(CELL_FEATURE_NAMES))).astype(np.float32)
    C[:, 14:17] = np.abs(C[:, 14:17]) + 1  # the lengths a b c, whose logs the cell networks read
    np.savez_compressed(
        cache / "arrays.npz",
        X=rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32),
        C=C, C_primitive=C,
        primitive=params,
        conventional=params, niggli=params, params=params, sg=sg,
        bravais=np.array([BRAVAIS.index(bravais_of_spacegroup(int(s))) for s in sg]),
        mp_id=np.arange(n), formula=rng.choice(["NaCl", "Fe2O3", "LiFePO4", "Cu", "SiO2"], size=n),
        digest=np.array("synthetic"),
        niggli_sample=np.arange(0, n, 10),
        C_niggli_sample=rng.normal(size=(n // 10, len(CELL_FEATURE_NAMES))).astype(np.float32),
    )
    out = cache / "models"
    summary = train_split(cache, "future", out, members=2, epochs=1,
                          cell_config={"members": 2, "epochs": 1})
    return out, summary


def test_training_writes_loadable_models_with_cards(tiny_models):
    out, summary = tiny_models
    for name in ("formula", "cell"):
        assert (out / f"{name}.pt").is_file()
        card = json.loads((out / f"{name}.json").read_text())
        assert card["split"] == "future" and card["training_data_sha256_16"] == "synthetic"
    card = json.loads((out / "formula.json").read_text())
    assert card["bravais_classes"] == BRAVAIS
    assert card["seed"] == 100  # the default: member m seeded 100 + m, recorded for retraining
    # The networks read the formula-unit features too, as natural logs.
    assert card["inputs"] == FEATURE_NAMES + FORMULA_UNIT_FEATURE_NAMES
    assert card["log_inputs"] == FORMULA_UNIT_FEATURE_NAMES
    assert 0 <= summary["bravais"]["top1"] <= 1
    res = predict_formula("NaCl", top_k=2, model_dir=out)
    assert len(res["candidates"]) == 2
    cell = predict_cell(4, 4, 4, 90, 90, 90, top_k=2, model_dir=out)
    assert len(cell["spacegroups"]) == 2
    both = predict_cell(4, 4, 4, 90, 90, 90, top_k=230, model_dir=out, formula="NaCl")
    assert np.isfinite([s["probability"] for s in both["spacegroups"]]).all()


def test_cards_record_what_the_training_formulas_cover(tiny_models):
    """training_coverage on the card: per element the training formulas holding it (from the
    mole-fraction columns), the atoms of the reduced formulas (Cu 1 … LiFePO4 7); the
    ``coverage`` step writes the same onto a card that lacks it and refuses another split."""
    from cryspext.training.formula import _split, add_training_coverage, dataset_arrays, main

    out, _ = tiny_models
    card = json.loads((out / "formula.json").read_text())
    cover = card["training_coverage"]
    arr = dataset_arrays(out.parent)
    train = _split(arr, "future")[0]
    j = FEATURE_NAMES.index("x_Fe")
    assert cover["formulas_per_element"].get("Fe", 0) == int(np.sum(arr["X"][train, j] > 0)) > 0
    assert cover["atoms_per_formula_unit"] == [1.0, 7.0]
    groups, counts = np.unique(arr["sg"][train], return_counts=True)
    assert cover["formulas_per_spacegroup"] == {str(g): int(n) for g, n in zip(groups, counts)}
    del card["training_coverage"]
    (out / "formula.json").write_text(json.dumps(card))
    assert main(["coverage", "--split", "future", "--cache", str(out.parent), "--out", str(out)]) == 0
    assert json.loads((out / "formula.json").read_text())["training_coverage"] == cover
    with pytest.raises(ValueError, match="split"):
        add_training_coverage(out.parent, "random", out)


def test_lattice_parameters_stay_in_their_sigmoid_range(tiny_models):
    out, _ = tiny_models
    card = json.loads((out / "formula.json").read_text())
    res = predict_formula("LiFePO4", top_k=14, model_dir=out)
    for cand in res["candidates"]:
        meta = card["parameters"][cand["bravais"]]
        for name, lo, hi in zip(meta["free"], meta["lo"], meta["hi"]):
            v = cand["lattice"][name]["value"]
            assert lo - 1e-3 <= v <= hi + 1e-3


def test_joint_outputs_agree_with_the_space_group_table(tiny_models):
    """Bravais probabilities are the space-group softmax summed per lattice, and the space
    groups a lattice's head ranks are those the card names (spglib/ITA table as the oracle)."""
    from cryspext.formula.predict import FormulaModels

    out, _ = tiny_models
    models = FormulaModels(out)
    assert models.n_network_inputs == len(FEATURE_NAMES) + len(FORMULA_UNIT_FEATURE_NAMES)
    x = np.random.default_rng(3).normal(size=(4, models.n_network_inputs)).astype(np.float32)
    p_b = models.bravais_proba(x)  # (members, 4, 14)
    np.testing.assert_allclose(p_b.sum(axis=-1), 1.0, atol=1e-5)
    raw = models.formula._raw(torch.from_numpy(x)).detach()
    p_sg = torch.softmax(raw[:, :, :230], dim=-1).numpy()
    for k, b in enumerate(BRAVAIS):
        groups, p = models.spacegroup_proba(x, b)
        assert all(bravais_of_spacegroup(g) == b for g in groups)
        assert len(groups) == sum(bravais_of_spacegroup(n) == b for n in range(1, 231))
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-5)
        # P(lattice) from the Bravais output = Σ over that lattice's groups of P(space group).
        np.testing.assert_allclose(p_b[:, :, k], p_sg[:, :, np.array(groups) - 1].sum(-1),
                                   rtol=1e-4, atol=1e-6)


def test_splits_are_disjoint_and_future_is_by_id():
    rows = [{"mp_id": i} for i in rng_ids()]
    for split in ("random", "future"):
        tr, te = split_indices(rows, split)
        assert len(set(tr) & set(te)) == 0 and len(tr) + len(te) == len(rows)
    tr, te = split_indices(rows, "future")
    assert max(rows[i]["mp_id"] for i in tr) < min(rows[i]["mp_id"] for i in te)
    with pytest.raises(ValueError):
        split_indices(rows, "sideways")


def rng_ids():
    return np.random.default_rng(5).permutation(1000).tolist()


def test_r2_score_against_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    t, p = rng.normal(size=50), rng.normal(size=50)
    assert r2_score(t, p) == pytest.approx(sk.r2_score(t, p))


def test_validation_run_holds_out_a_slice_of_the_training_rows(tiny_models, tmp_path):
    """``validate=True`` scores on a slice of the training rows (never the test rows), writes a
    card saying so and trains no cell model; the CLI refuses it without --out."""
    from cryspext.training.formula import _split, dataset_arrays, main, validation_split

    out, _ = tiny_models
    cache = out.parent
    arr = dataset_arrays(cache)
    train, test = _split(arr, "future")
    fit, val = validation_split(arr, train, "future")
    assert len(np.intersect1d(val, test)) == 0 and len(np.intersect1d(fit, val)) == 0
    assert len(fit) + len(val) == len(train)
    # future: the validation slice is the newest part of the training rows
    assert arr["mp_id"][val].min() > arr["mp_id"][fit].max()
    summary = train_split(cache, "future", tmp_path / "val", members=1, epochs=1, validate=True)
    card = json.loads((tmp_path / "val" / "formula.json").read_text())
    assert "validation slice" in card["validation_run"] and card["n_test"] == len(val)
    assert summary["cell"] is None and not (tmp_path / "val" / "cell.pt").exists()
    with pytest.raises(SystemExit):
        main(["train", "--validate", "--cache", str(cache)])


def test_merge_takes_the_first_members_of_each_source(tiny_models, tmp_path):
    """``merge`` stacks the first n members of each source: its per-member outputs are the
    sources' members, in order, and the card and summary count them."""
    from cryspext.models import load_torchscript
    from cryspext.training.formula import merge_formula_ensembles

    out, _ = tiny_models
    summary = merge_formula_ensembles(out.parent, "future", [(out, 1), (out, 2)], tmp_path / "m")
    assert summary["members"] == 3
    card = json.loads((tmp_path / "m" / "formula.json").read_text())
    assert card["members"] == 3 and [o["used"] for o in card["member_sources"]] == [1, 2]
    assert [o["seed"] for o in card["member_sources"]] == [100, 100]  # each source's seed
    assert card["training_coverage"] == json.loads((out / "formula.json").read_text())["training_coverage"]
    x = torch.from_numpy(_rows(["NaCl", "LiFePO4"]))
    with torch.no_grad():
        src = load_torchscript(out / "formula.pt")(x).numpy()
        merged = load_torchscript(tmp_path / "m" / "formula.pt")(x).numpy()
    np.testing.assert_allclose(merged, src[[0, 0, 1]], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="members"):
        merge_formula_ensembles(out.parent, "future", [(out, 3)], tmp_path / "bad")
    # A folder whose cell model was trained by its own command (as ``recipe`` does): the
    # summary takes the cell model's time from its card.
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "cell.json").write_text(json.dumps({"training_time_s": 12.5}))
    timings = merge_formula_ensembles(out.parent, "future", [(out, 1)], tmp_path / "c")["timings"]
    assert timings["cell_s"] == 12.5 and "training.cell train --split future" in timings["cell_trained_by"]
    assert timings["total_s"] == pytest.approx(12.5 + timings["formula_s"])


def test_merge_picks_members_by_index_and_keeps_their_provenance(tiny_models, tmp_path):
    """A list picks members by index, in the given order; picking from a merged ensemble
    carries each member's own provenance (architecture, epochs) onto the new card."""
    from cryspext.models import load_torchscript
    from cryspext.training.formula import main, merge_formula_ensembles

    out, _ = tiny_models
    merge_formula_ensembles(out.parent, "future", [(out, [1]), (out, 2)], tmp_path / "m")
    card_m = json.loads((tmp_path / "m" / "formula.json").read_text())
    # Mark the second source entry so that its members are told apart from the first one's.
    card_m["member_sources"][1]["epochs"] = 99
    (tmp_path / "m" / "formula.json").write_text(json.dumps(card_m))
    main(["merge", "--split", "future", "--cache", str(out.parent),
          "--source", f"{tmp_path / 'm'}:2,0", "--out", str(tmp_path / "m2")])
    card = json.loads((tmp_path / "m2" / "formula.json").read_text())
    assert card["members"] == 2
    assert [(o["epochs"], o["used"]) for o in card["member_sources"]] == [(99, 1), (1, 1)]
    x = torch.from_numpy(_rows(["NaCl", "SiO2"]))
    with torch.no_grad():
        src = load_torchscript(out / "formula.pt")(x).numpy()
        merged = load_torchscript(tmp_path / "m2" / "formula.pt")(x).numpy()
    # m holds source members [1, 0, 1]; m2 takes m's members 2 and 0, i.e. source 1 and 1.
    np.testing.assert_allclose(merged, src[[1, 1]], rtol=1e-6, atol=1e-7)
    for bad in ([2], [0, 0], []):
        with pytest.raises(ValueError, match="members"):
            merge_formula_ensembles(out.parent, "future", [(out, bad)], tmp_path / "bad")
    with pytest.raises(SystemExit):
        main(["merge", "--split", "future", "--cache", str(out.parent),
              "--source", f"{out}:x,y", "--out", str(tmp_path / "bad")])


def test_merge_refuses_members_with_other_inputs(tiny_models, tmp_path):
    """Members trained on other input columns (e.g. without the formula-unit features) cannot
    share an ensemble: they would read the wrong columns."""
    import shutil

    from cryspext.training.formula import merge_formula_ensembles

    out, _ = tiny_models
    other = tmp_path / "other"
    shutil.copytree(out, other)
    card = json.loads((other / "formula.json").read_text())
    card["inputs"] = FEATURE_NAMES
    (other / "formula.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="other inputs"):
        merge_formula_ensembles(out.parent, "future", [(out, 1), (other, 1)], tmp_path / "m")


def test_networks_without_the_formula_unit_features_still_train_and_predict(tiny_models, tmp_path,
                                                                           monkeypatch):
    """``NETWORK_FORMULA_UNIT_INPUTS = False`` gives the earlier 221-input networks (as in
    older model folders), and predict_formula feeds them their own columns."""
    import shutil

    from cryspext.formula.predict import FormulaModels
    from cryspext.training import formula as T

    out, _ = tiny_models
    old = tmp_path / "old"
    old.mkdir()
    for name in ("cell.pt", "cell.json"):
        shutil.copy(out / name, old / name)
    monkeypatch.setattr(T, "NETWORK_FORMULA_UNIT_INPUTS", False)
    T.train_split(out.parent, "future", old, members=1, epochs=1, cell="keep")
    card = json.loads((old / "formula.json").read_text())
    assert card["inputs"] == FEATURE_NAMES and card["log_inputs"] == []
    models = FormulaModels(old)
    assert models.n_network_inputs == len(FEATURE_NAMES)
    np.testing.assert_array_equal(models.features(["NaCl"]), formula_features("NaCl")[None, :])
    assert len(predict_formula("NaCl", top_k=2, model_dir=old)["candidates"]) == 2


def test_volume_step_writes_the_table_the_combination_then_uses(tiny_models, tmp_path):
    """``volume`` fits ln P(ρ | group) on the training rows' conventional cells and the primitive
    cells of the centred ones (here: the same synthetic parameters) and writes it with a card;
    the formula + cell combination (``FormulaModels.formula_and_cell``) then multiplies by
    P(ρ | group)^δ."""
    import shutil

    from cryspext.formula import cellvolume
    from cryspext.formula.predict import FormulaModels
    from cryspext.training.formula import VOLUME_DELTA, _split, dataset_arrays, main

    out, _ = tiny_models
    models = tmp_path / "m"
    shutil.copytree(out, models)
    assert main(["volume", "--split", "future", "--cache", str(out.parent), "--out", str(models)]) == 0
    card = json.loads((models / "cell_volume.json").read_text())
    assert card["delta"] == VOLUME_DELTA["future"] and card["kind"] == "cell_volume"
    arr = dataset_arrays(out.parent)
    train = _split(arr, "future")[0]
    centred = train[[BRAVAIS[b][1] != "P" for b in arr["bravais"][train]]]
    rows = np.concatenate([train, centred])
    fu = np.array([formula_unit_features(str(f))[1] for f in arr["formula"][rows]])
    rho = np.log(cellvolume.cell_volume(arr["conventional"][rows]) / fu)
    table = cellvolume.fit_table(rho, arr["sg"][rows])
    got = np.load(models / "cell_volume.npz")["log_density"]
    np.testing.assert_allclose(got, table, atol=1e-4)  # float32 formula-unit volumes there
    # The combination of two flat distributions: the prior's inverse, times the volume term.
    flat = np.full((2, 230), 1 / 230)
    volumes, fu_volumes = [100.0, 400.0], [25.0, 25.0]
    without = FormulaModels(out).formula_and_cell(flat, flat, volumes, fu_volumes)
    m = FormulaModels(models)
    with_table = m.formula_and_cell(flat, flat, volumes, fu_volumes)
    expected = 1 / m.spacegroup_prior()
    np.testing.assert_allclose(without, np.tile(expected / expected.sum(), (2, 1)), rtol=1e-9)
    expected = expected * np.exp(card["delta"] * cellvolume.log_likelihood(got, np.log([4.0, 16.0])))
    np.testing.assert_allclose(with_table, expected / expected.sum(axis=1, keepdims=True), rtol=1e-6)
    assert np.abs(np.log(with_table[0] / with_table[1])).max() > 0.1  # the volume moves the answer


def test_analogues_step_writes_the_training_formulas_by_pattern(tiny_models, tmp_path):
    """``analogues`` writes the split's training rows (formula, id, group, lattice, cell) with a
    card; ``find_analogues`` then reads that folder's table: KCl's analogues are the NaCl rows
    (K and Na one apart on the Mendeleev scale), never a test row."""
    from cryspext.formula.analogues import find_analogues
    from cryspext.training.formula import _split, dataset_arrays, main

    out, _ = tiny_models
    models = tmp_path / "m"
    models.mkdir()
    assert main(["analogues", "--split", "future", "--cache", str(out.parent), "--out", str(models),
                 "--no-structures"]) == 0
    card = json.loads((models / "analogues.json").read_text())
    arr = dataset_arrays(out.parent)
    train, test = _split(arr, "future")
    assert card["kind"] == "analogues" and card["n_formulas"] == len(train) and card["n_patterns"] == 5
    got = find_analogues("KCl", n=3, model_dir=models)
    assert got["pattern"] == [1, 1] and got["of"] is None
    nacl = train[arr["formula"][train] == "NaCl"]
    assert [a["mp_id"] for a in got["analogues"]] == [f"mp-{i}" for i in sorted(arr["mp_id"][nacl])[:3]]
    assert all(a["formula"] == "NaCl" and a["distance"] == 1.0 for a in got["analogues"])
    assert not set(int(a["mp_id"][3:]) for a in got["analogues"]) & set(arr["mp_id"][test].tolist())
    first = nacl[np.argmin(arr["mp_id"][nacl])]
    assert got["analogues"][0]["spacegroup"] == arr["sg"][first]
    np.testing.assert_allclose(list(got["analogues"][0]["conventional"].values()),
                               arr["conventional"][first], atol=1e-4)


def test_tune_step_fine_tunes_the_members_and_checks_the_run_kind(tiny_models, tmp_path):
    """``tune`` (here without COD, the control) writes a loadable ensemble of as many members,
    different from the source, with a card that says how it was tuned; a full model is not
    tuned as a validation run."""
    from cryspext.models import load_torchscript
    from cryspext.training.formula import main

    out, _ = tiny_models
    assert main(["tune", "--split", "future", "--cache", str(out.parent), "--model", str(out),
                 "--out", str(tmp_path / "t"), "--no-cod", "--tune-epochs", "1"]) == 0
    card = json.loads((tmp_path / "t" / "formula.json").read_text())
    assert card["fine_tuning"]["epochs"] == 1 and card["fine_tuning"]["n_cod_rows"] == 0
    x = torch.from_numpy(_rows(["NaCl", "LiFePO4"]))
    with torch.no_grad():
        src = load_torchscript(out / "formula.pt")(x).numpy()
        tuned = load_torchscript(tmp_path / "t" / "formula.pt")(x).numpy()
    assert tuned.shape == src.shape and np.abs(tuned - src).max() > 1e-4
    with pytest.raises(ValueError, match="validate"):
        main(["tune", "--split", "future", "--cache", str(out.parent), "--model", str(out),
              "--out", str(tmp_path / "v"), "--no-cod", "--validate"])


def test_a_no_cell_run_writes_the_formula_model_only(tiny_models, tmp_path):
    """``train --no-cell`` (members to be merged elsewhere) trains no cell-geometry model and
    records its seed on the card; an unknown ``cell`` choice is refused before training."""
    from cryspext.training.formula import main

    out, _ = tiny_models
    run = tmp_path / "run"
    main(["train", "--split", "future", "--cache", str(out.parent), "--members", "1",
          "--epochs", "1", "--seed", "7", "--no-cell", "--out", str(run)])
    assert (run / "formula.pt").is_file() and not (run / "cell.pt").exists()
    assert json.loads((run / "formula.json").read_text())["seed"] == 7
    with pytest.raises(SystemExit):  # keep and none at once
        main(["train", "--cache", str(out.parent), "--keep-cell", "--no-cell", "--out", str(run)])
    with pytest.raises(ValueError, match="cell="):
        train_split(out.parent, "future", run, members=1, epochs=1, cell="skip")


def test_recipe_runs_are_the_merged_sources_with_distinct_seeds(tmp_path):
    """``recipe`` trains each run of ``RECIPE_RUNS`` without a cell model and merges exactly
    those members; the runs' seed ranges do not overlap."""
    from cryspext.training.formula import RECIPE_RUNS, recipe_commands

    out = tmp_path / "models"
    lanes, merge = recipe_commands("future", out, tmp_path / "cache", threads=2, shared=tmp_path / "shared")
    commands = [c for lane in lanes for c in lane]
    trains = [c for c in commands if c[2:4] == ["cryspext.training.formula", "train"]]
    assert len(trains) == len(RECIPE_RUNS)
    assert all("--no-cell" in c and c[c.index("--split") + 1] == "future" for c in trains)
    sources = [merge[i + 1] for i, x in enumerate(merge) if x == "--source"]
    assert sources == [f"{c[c.index('--out') + 1]}:{c[c.index('--members') + 1]}" for c in trains]
    seeds = [set(range(r["seed"], r["seed"] + r["members"])) for r in RECIPE_RUNS]
    assert not set.intersection(*seeds)
    # the cell model, the volume table, the analogue table and the trees go to the model folder,
    # next to the merged ensemble
    assert sum(c[c.index("--out") + 1] == str(out) for c in commands) == 4
    assert any(c[2:4] == ["cryspext.training.formula", "volume"] for c in commands)
    assert any(c[2:4] == ["cryspext.training.formula", "analogues"] for c in commands)
    assert merge[merge.index("--out") + 1] == str(out)
    # the trees' classifiers learn COD's labels from the shared folder, unless told not to
    trees = next(c for c in commands if c[2:4] == ["cryspext.training.formula", "trees"])
    assert trees[trees.index("--shared") + 1] == str(tmp_path / "shared") and "--no-cod" not in trees
    lanes, _ = recipe_commands("future", out, tmp_path / "cache", shared=tmp_path / "shared", cod=False)
    assert "--no-cod" in next(c for lane in lanes for c in lane if c[3] == "trees")


def test_recipe_dry_run_prints_the_commands(tmp_path, capsys):
    from cryspext.training.formula import main

    assert main(["recipe", "--split", "future", "--cache", str(tmp_path), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "cryspext.training.cell train" in text and "formula merge" in text
    assert not any(tmp_path.iterdir())  # nothing ran, nothing written


def test_run_lanes_keeps_order_within_a_lane_and_stops_at_a_failure(tmp_path):
    import sys

    from cryspext.training.formula import run_lanes

    def append(name, text):
        return [sys.executable, "-c", f"open({str(tmp_path / name)!r}, 'a').write({text!r})"]

    run_lanes([[append("a", "1"), append("a", "2")], [append("b", "x")]], 2, tmp_path / "logs")
    assert (tmp_path / "a").read_text() == "12" and (tmp_path / "b").read_text() == "x"
    fail = [sys.executable, "-c", "raise SystemExit(3)"]
    with pytest.raises(RuntimeError, match="exited with 3"):
        run_lanes([[fail, append("c", "never")]], 1, tmp_path / "logs")
    assert not (tmp_path / "c").exists()


def test_dataset_file_bytes_do_not_depend_on_the_write_time(tmp_path, monkeypatch):
    """The card's ``training_data_sha256_16`` hashes the gzip file: its header must not hold
    the write time, or the same data would give another hash."""
    import time

    from cryspext.training.formula import write_json_gz

    data = {"rows": [{"formula": "NaCl", "sg": 225}]}
    write_json_gz(data, tmp_path / "one.json.gz")
    monkeypatch.setattr(time, "time", lambda: 2e9)
    write_json_gz(data, tmp_path / "two.json.gz")
    assert (tmp_path / "one.json.gz").read_bytes() == (tmp_path / "two.json.gz").read_bytes()
    import gzip

    assert json.loads(gzip.open(tmp_path / "two.json.gz", "rt").read()) == data


def test_joint_formula_cell_trees_are_mixed_into_predict_cell(tiny_models, tmp_path, monkeypatch):
    """Joint trees (formula and cell read together): (1 − w) · the naive-Bayes answer + w · their
    probabilities for the rows' ``formulacell.joint_features``, w from their card; without a
    formula or with a fractional one, predict_cell does not read them."""
    import shutil

    from cryspext.formula.cellgeom import cell_features
    from cryspext.formula.formulacell import JOINT_FEATURE_NAMES, joint_features
    from cryspext.formula.predict import FormulaModels
    from cryspext.training import formula_trees

    out, _ = tiny_models
    joint_dir = tmp_path / "with_joint"
    shutil.copytree(out, joint_dir)
    monkeypatch.setitem(formula_trees.FORMULA_CELL_TREES, "max_iter", 5)
    monkeypatch.setattr(formula_trees, "FORMULA_CELL_BLEND_WEIGHT", 0.4)
    card = formula_trees.train_formula_cell_trees("future", joint_dir, cache=out.parent)
    assert card["kind"] == "formula_cell_trees" and card["inputs"] == JOINT_FEATURE_NAMES
    assert card["blend_weight"] == 0.4 and card["n_trees"] > 0
    assert set(card["test_metrics"]) == {"conventional", "primitive"}
    models = FormulaModels(joint_dir)
    cell = (4.0, 4.0, 4.0, 90, 90, 90)
    joint = joint_features(["NaCl"], models.features(["NaCl"]), cell_features(cell)[None])
    p_joint = models.formula_cell_tree_proba(joint)[0]
    assert p_joint.shape == (230,) and p_joint.sum() == pytest.approx(1, abs=1e-5)
    naive = {s["number"]: s["probability"] for s in
             predict_cell(*cell, top_k=230, model_dir=out, formula="NaCl")["spacegroups"]}
    mixed = predict_cell(*cell, top_k=230, model_dir=joint_dir, formula="NaCl")["spacegroups"]
    assert sum(s["probability"] for s in mixed) == pytest.approx(1, abs=1e-6)
    for s in mixed[:20]:
        assert s["probability"] == pytest.approx(0.6 * naive[s["number"]] + 0.4 * p_joint[s["number"] - 1],
                                                 rel=1e-5, abs=1e-9)
        assert s["joint_probability"] == pytest.approx(p_joint[s["number"] - 1], rel=1e-6)
    alone = predict_cell(*cell, top_k=230, model_dir=out)["spacegroups"]
    assert predict_cell(*cell, top_k=230, model_dir=joint_dir)["spacegroups"] == alone
    # They learned whole-number formulas: a fractional one keeps the naive-Bayes answer.
    assert (predict_cell(*cell, top_k=230, model_dir=joint_dir, formula="Na0.5K0.5Cl")["spacegroups"]
            == predict_cell(*cell, top_k=230, model_dir=out, formula="Na0.5K0.5Cl")["spacegroups"])
    with pytest.raises(ValueError, match="joint"):
        FormulaModels(out).formula_cell_tree_proba(joint)
    with pytest.raises(ValueError, match="joint"):  # joint probabilities need the trees' weight
        FormulaModels(out).formula_and_cell(np.full((1, 230), 1 / 230), np.full((1, 230), 1 / 230),
                                            [64.0], [30.0], p_joint[None])
