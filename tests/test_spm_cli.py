"""``cryspext spm`` and ``cryspext demo`` end to end, with the stand-ins patched in as defaults."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_spm_support import TinyMCModel, rdf_descriptor

from cryspext.spm import core
from cryspext.build import polycrystal
from cryspext.cli import main
from cryspext.spm import SPMResult
from cryspext.spm.demo import EXPECTED, run_demo


@pytest.fixture()
def standins(monkeypatch):
    model = TinyMCModel(13, classes=list(EXPECTED.values()), p=0.1)
    monkeypatch.setattr(core, "_default_model", lambda: model)
    monkeypatch.setattr(core, "_default_descriptor", lambda: rdf_descriptor)
    return model


def test_spm_command_writes_maps_picture_and_labels(tmp_path, standins, capsys):
    import ase.io

    atoms = polycrystal((40.0, 40.0, 10.0), ("fcc", "bcc"), seed=3)
    src = tmp_path / "grains.extxyz"
    ase.io.write(src, atoms)
    rc = main(["spm", str(src), "--box", "10", "--stride", "4", "--mc-samples", "40", "--quiet",
               "--out", str(tmp_path / "maps.npz"), "--png", str(tmp_path / "maps.png"),
               "--extxyz", str(tmp_path / "labels.extxyz")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "boxes" in text and "assigned classes" in text
    maps = SPMResult.load(tmp_path / "maps.npz")
    assert maps.box == 10.0 and maps.classes == standins.classes
    assert (tmp_path / "maps.png").read_bytes()[:4] == b"\x89PNG"
    back = ase.io.read(tmp_path / "labels.extxyz")
    assert len(back) == len(atoms) and set(back.arrays["arise_label"]) <= set(standins.classes)
    assert np.isfinite(back.arrays["arise_mutual_information"]).all()


def test_spm_command_bad_input(tmp_path, standins, capsys):
    assert main(["spm", str(tmp_path / "missing.xyz")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["spm", str(tmp_path / "missing.xyz"), "--out", "maps.txt"]) == 2
    with pytest.raises(SystemExit):
        main(["spm"])  # FILE is required


def test_demo_scores_and_outputs(tmp_path, standins):
    summary = run_demo(tmp_path, size=40.0, box=10.0, stride=5.0, mc_samples=30, render=False, progress=False)
    for name in ("maps.npz", "maps.png", "atoms.extxyz", "polycrystal.extxyz", "summary.json"):
        assert (tmp_path / name).is_file(), name
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["interior_boxes"] == summary["interior_boxes"] > 0
    assert 0.0 <= summary["interior_accuracy"] <= 1.0
    assert summary["boundary_boxes"] > 0 and np.isfinite(summary["mi_median_boundary"])
    with pytest.raises(ValueError):
        run_demo(tmp_path, size=15.0, box=10.0)


def test_score_grains_against_a_perfect_classifier():
    """An oracle 'classifier' that reads the grain of the box centre: interior accuracy must be 1."""
    from cryspext.spm import spm
    from cryspext.spm.demo import score_grains

    atoms = polycrystal((40.0, 40.0, 10.0), ("fcc", "bcc"), seed=3)
    grain = atoms.arrays["grain"]
    classes = [EXPECTED["fcc"], EXPECTED["bcc"]]

    class Oracle:
        def __init__(self):
            self.classes = classes

        def predict(self, x, mc_samples=1, seed=None):
            p = np.zeros((len(x), 2))
            p[np.arange(len(x)), x[:, 0].astype(int)] = 1.0
            return type("P", (), {"probabilities": p, "mutual_information": np.zeros(len(x))})()

    def majority_grain(structure, grid):
        out = np.zeros((grid.n_boxes, 1))
        for b in range(grid.n_boxes):
            m = grid.members(b)
            out[b, 0] = np.bincount(grain[m], minlength=2).argmax() if m.size else 0
        return out

    r = spm(atoms, box=10.0, stride=3.0, model=Oracle(), descriptor=majority_grain, mc_samples=5, progress=False)
    s = score_grains(r, atoms)
    assert s["interior_boxes"] > 0 and s["interior_accuracy"] == 1.0
