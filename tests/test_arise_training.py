"""The ARISE training script on a toy data set: it trains, keeps the best checkpoint and exports a
TorchScript file + card that the inference code loads (no SOAP or shared data needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryspext.arise.model import AriseModel
from cryspext.models import load_torchscript
from cryspext.training.arise import EXTRINSIC, EXTRINSIC_THESIS, settings_grid, train


def test_settings_grid_is_the_thesis_grid():
    grid = settings_grid(EXTRINSIC_THESIS)
    assert len(grid) == 99  # 11 cutoffs x 3 sigmas x 3 extrinsic factors
    assert {g[0] for g in grid} == {round(3.0 + 0.2 * k, 1) for k in range(11)}
    assert {g[1] for g in grid} == {0.08, 0.10, 0.12} and {g[2] for g in grid} == {0.95, 1.0, 1.05}


def test_default_grid_widens_only_the_extrinsic_scaling():
    grid = settings_grid()
    assert len(grid) == 33 * len(EXTRINSIC)
    assert set(settings_grid(EXTRINSIC_THESIS)) <= set(grid)
    assert {(g[0], g[1]) for g in grid} == {(g[0], g[1]) for g in settings_grid(EXTRINSIC_THESIS)}
    # The d_NN measured on displaced structures is smaller than the pristine one: the grid
    # reaches below 0.95 (see the module docstring).
    assert min(EXTRINSIC) < 0.95 and len(set(EXTRINSIC)) == len(EXTRINSIC)


def _toy_dataset(path, seed):
    """Three well-separated classes 'a', 'b', 'c' of 20 noisy copies of a random (316,) centre,
    written like the assembled training set; returns the centres."""
    rng = np.random.default_rng(seed)
    centres = rng.random((3, 316))
    x = np.concatenate([c + 0.01 * rng.standard_normal((20, 316)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(3), 20)
    np.savez(
        path, x=x, y=y, x_val=x[::4], y_val=y[::4], val_tags=np.array(["pristine"] * len(y[::4])),
        classes=np.array(["a", "b", "c"]),
    )
    return centres


def test_train_exports_a_loadable_model(tmp_path):
    centres = _toy_dataset(tmp_path / "toy.npz", seed=0)
    card = train(tmp_path / "toy.npz", tmp_path / "out", epochs=30, batch_size=16, lr=3e-3, threads=1, name="toy")
    assert card["metrics"]["validation_accuracy"] == 1.0
    assert card["classes"] == ["a", "b", "c"]
    saved = json.loads((tmp_path / "out" / "toy.json").read_text())
    assert saved["training"]["data_hash_sha256"] == card["training"]["data_hash_sha256"]
    model = AriseModel(load_torchscript(tmp_path / "out" / "toy.pt"), saved)
    pred = model.predict(centres, mc_samples=50, seed=0)
    assert pred.labels == ["a", "b", "c"]


def test_train_ensemble_stacks_members_and_resumes(tmp_path, capsys):
    from cryspext.training.arise import train_ensemble

    centres = _toy_dataset(tmp_path / "toy.npz", seed=1)
    kw = dict(member_dir=tmp_path / "members", seed=5, name="toy", epochs=20, batch_size=16, lr=3e-3, threads=1)
    card = train_ensemble(tmp_path / "toy.npz", tmp_path / "out", 2, **kw)
    assert card["ensemble"]["members"] == 2 and card["ensemble"]["seeds"] == [5, 6]
    assert card["metrics"]["validation_accuracy"] == 1.0
    assert sorted(p.name for p in (tmp_path / "members").glob("*.pt")) == ["toy_seed5.pt", "toy_seed6.pt"]
    model = AriseModel(load_torchscript(tmp_path / "out" / "toy.pt"), json.loads((tmp_path / "out" / "toy.json").read_text()))
    assert model.predict(centres, mc_samples=10, seed=0).labels == ["a", "b", "c"]
    capsys.readouterr()
    train_ensemble(tmp_path / "toy.npz", tmp_path / "out2", 2, **kw)  # members reused, not retrained
    assert capsys.readouterr().out.count("reusing") == 2
    with pytest.raises(ValueError):
        train_ensemble(tmp_path / "toy.npz", tmp_path / "out3", 0, **kw)
