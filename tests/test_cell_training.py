"""The cell-geometry trainer (training.cell) on a tiny synthetic data set (seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryspext.formula.cellgeom import CELL_FEATURE_NAMES, cell_features
from cryspext.formula.lattice import BRAVAIS, bravais_of_spacegroup

torch = pytest.importorskip("torch")

from cryspext.formula.cellnet import CellNet, derived_inputs, freeze_cell, ple_edges  # noqa: E402
from cryspext.training.cell import (  # noqa: E402
    fit_cell_member,
    main,
    setting_check,
    topk,
    train_cell,
    validate,
)
from cryspext.models import load_torchscript  # noqa: E402


def _cell_params(rng, n):
    """(a b c α β γ (n, 6), space groups): tetragonal cells whose space group is set by c/a
    alone (123 below 1.5, 139 above), so a model that reads the cell must beat the 50 % of a
    constant guess."""
    a = rng.uniform(3, 6, n)
    ratio = rng.uniform(0.8, 2.2, n)
    params = np.stack([a, a, a * ratio, np.full(n, 90.0), np.full(n, 90.0), np.full(n, 90.0)], 1)
    return params, np.where(ratio < 1.5, 123, 139)


def _cells(rng, n):
    """(features, space groups) of ``_cell_params``."""
    params, sg = _cell_params(rng, n)
    return np.stack([cell_features(p) for p in params]).astype(np.float32), sg


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cell_cache")
    rng = np.random.default_rng(0)
    n = 1200
    params, sg = _cell_params(rng, n)
    C = np.stack([cell_features(p) for p in params]).astype(np.float32)
    np.savez_compressed(
        cache / "arrays.npz", C=C, C_primitive=C, sg=sg, mp_id=np.arange(n),
        bravais=np.array([BRAVAIS.index(bravais_of_spacegroup(int(s))) for s in sg]),
        conventional=params, primitive=params, digest=np.array("synthetic"))
    out = cache / "models"
    cfg = {"members": 2, "epochs": 8, "hidden": [32], "bins": 8, "embed_dim": 4, "batch": 64}
    card = train_cell(cache, "random", out, config=cfg)
    return out, card


def test_trainer_writes_a_model_with_its_card(tiny_model):
    out, card = tiny_model
    saved = json.loads((out / "cell.json").read_text())
    assert saved["members"] == 2 and saved["inputs"] == list(CELL_FEATURE_NAMES)
    assert saved["training_data_sha256_16"] == "synthetic" and saved["split"] == "random"
    for setting in ("conventional", "primitive"):
        assert 0 <= saved["test_metrics"][setting]["top1"] <= saved["test_metrics"][setting]["top3"]
        assert setting in saved["random_forest_30_trees_test_metrics"]
    model = load_torchscript(out / "cell.pt")
    rng = np.random.default_rng(1)
    C, sg = _cells(rng, 300)
    with torch.no_grad():
        p = model(torch.from_numpy(C)).numpy()
    assert p.shape == (2, 300, 230)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-4)
    # the space group is a function of c/a here: a working model must beat a constant guess
    assert topk(p.mean(0), sg)["top1"] > 0.8


def test_frozen_network_matches_the_training_network():
    rng = np.random.default_rng(2)
    C, sg = _cells(rng, 200)
    x = torch.from_numpy(C)
    net = CellNet(ple_edges(derived_inputs(x).numpy(), 6), 4, [16, 8])
    net.train()
    net(x)  # one pass in training mode moves the BatchNorm statistics off their defaults
    net.eval()
    with torch.no_grad():
        ref = torch.softmax(net(x), dim=-1).numpy()
        got = freeze_cell(net)(x).numpy()
    np.testing.assert_allclose(got, ref, atol=2e-3)  # float16 weights


def test_ple_edges_increase():
    x = np.concatenate([np.zeros(50), np.linspace(1, 2, 50)])[:, None]  # half the rows tied
    e = ple_edges(x, 10)[0]
    assert e.shape == (11,) and np.all(np.diff(e) > 0)


def test_float_noise_does_not_move_the_encoding():
    """cos 90° is 6e-17 in one setting of a cell and -3e-14 in another: many rows at 0 with a
    little noise must not give a bin as narrow as the noise (a step in the encoding)."""
    rng = np.random.default_rng(4)
    col = np.concatenate([np.zeros(500), rng.normal(0, 1e-15, 100), rng.uniform(-0.5, 0.5, 400)])
    e = torch.from_numpy(ple_edges(col[:, None], 32))
    lo, width = e[:, :-1], e[:, 1:] - e[:, :-1]
    enc = [torch.clamp((torch.tensor([[v]])[:, :, None] - lo) / width, 0, 1)
           for v in (6.1e-17, -3.1e-14)]
    assert float(width.min()) >= 1e-3 * 0.9
    assert float((enc[0] - enc[1]).abs().max()) < 1e-6


@pytest.mark.parametrize("C, sg", [(np.zeros((5, 3)), np.ones(5)),
                                   (np.zeros((5, len(CELL_FEATURE_NAMES))), np.zeros(5)),
                                   (np.zeros((5, len(CELL_FEATURE_NAMES))), np.ones(4))])
def test_bad_training_input(C, sg):
    with pytest.raises(ValueError):
        fit_cell_member(C, sg, seed=0)


def test_features_with_a_length_at_or_below_zero_are_refused_before_training():
    """The networks read the logs of a, b, c: such rows would turn every weight into NaN."""
    C, sg = _cells(np.random.default_rng(1), 20)
    for value in (0.0, -1.0, np.nan):
        bad = C.copy()
        bad[3, 14] = value  # the length a of one row
        with pytest.raises(ValueError, match="1 of 20 rows"):
            fit_cell_member(bad, sg, seed=0)


def test_unknown_split(tiny_model, tmp_path):
    with pytest.raises(ValueError):
        train_cell(tiny_model[0].parent, "sideways", tmp_path)


def test_derived_inputs_read_the_right_columns():
    """derived_inputs indexes the feature vector by position: check it against the names."""
    f = cell_features([4.0, 5.0, 7.0, 90, 100, 90])
    d = derived_inputs(torch.from_numpy(f[None].astype(np.float32)))[0].numpy()
    names = list(CELL_FEATURE_NAMES)
    a, b, c = (f[names.index(k)] for k in "abc")
    v = np.exp(f[names.index("log_volume")])
    np.testing.assert_allclose(d[11:], [np.log(a), np.log(b), np.log(c), np.log(c / b),
                                        np.log(v ** (1 / 3) / a), np.log(v ** (1 / 3) / c)],
                               rtol=1e-5)


def test_validation_uses_only_training_rows(tiny_model):
    cache = tiny_model[0].parent
    cfg = {"members": 1, "epochs": 4, "hidden": [16], "bins": 8, "embed_dim": 4, "batch": 64}
    res = validate(cache, "future", config=cfg, forest=False)
    for setting in ("conventional", "primitive"):
        assert res["validation"][setting]["top1"] > 0.6  # c/a decides the class here


def test_cli_rejects_unknown_settings(tiny_model):
    with pytest.raises(SystemExit) as err:
        main(["validate", "--cache", str(tiny_model[0].parent), "--set", "depth=3"])
    assert err.value.code == 2
    with pytest.raises(SystemExit):
        main(["validate", "--cache", str(tiny_model[0].parent), "--set", "bins=many"])


def test_setting_check_finds_the_trained_model_basis_independent(tiny_model):
    """The tiny model sees only canonical features, so test cells rewritten in random bases
    of the same lattice keep their top-1 space group."""
    out, _ = tiny_model
    res = setting_check(out.parent, "random", out, n_cells=40, n_bases=2)
    assert res["cells"] == 40 and res["rewritten"] == 80
    assert res["same_top1"] == 1.0
