"""Strided pattern matching with stand-in descriptor and model (tests/test_spm_support.py)."""

from __future__ import annotations

import numpy as np
import pytest
from test_spm_support import TinyMCModel, rdf_descriptor

from cryspext import strided_boxes
from cryspext.build import polycrystal
from cryspext.spm import SPMResult, mc_dropout, spm, subgrid


@pytest.fixture(scope="module")
def slab():
    return polycrystal((40.0, 40.0, 10.0), ("fcc", "bcc"), seed=3)


@pytest.fixture(scope="module")
def model():
    return TinyMCModel(13, p=0.2)


@pytest.fixture(scope="module")
def result(slab, model):
    return spm(slab, box=10.0, stride=3.0, model=model, descriptor=rdf_descriptor, mc_samples=200, progress=False)


class Recorder:
    """Wraps a model and keeps every per-pass probability it produced, per input row."""

    def __init__(self, model):
        self.model, self.classes, self.log = model, model.classes, []

    def predict(self, x, mc_samples=1000, seed=None):
        self.log.append((np.asarray(x).copy(), self.model.passes(x, mc_samples, seed)))
        return self.model.predict(x, mc_samples, seed)


def entropy(p):
    return -np.sum(p * np.log(np.clip(p, 1e-12, 1)), axis=-1)


def test_blocks_combine_to_the_mc_estimate_of_all_passes(model):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 13))
    rec = Recorder(model)
    r = mc_dropout(rec, x, mc_samples=400, block=20, min_samples=60, tolerance=0.02, seed=1)
    # Oracle: stack all recorded passes of each row, then eq. 2.3.2.1 and 2.3.2.5 directly.
    for i in range(len(x)):
        passes = np.concatenate([pt[:, np.flatnonzero(np.all(xs == x[i].astype(np.float32), axis=1))[0]]
                                 for xs, pt in rec.log if np.any(np.all(xs == x[i].astype(np.float32), axis=1))])
        assert passes.shape[0] == r.passes[i]
        p = passes.mean(axis=0)
        np.testing.assert_allclose(r.probabilities[i], p, atol=1e-9)
        np.testing.assert_allclose(r.mutual_information[i], entropy(p) - entropy(passes).mean(), atol=1e-9)
    assert r.passes.min() >= 60 and r.passes.max() <= 400


def test_adaptive_stops_early_only_when_converged():
    deterministic = TinyMCModel(5, p=0.0)
    x = np.random.default_rng(1).normal(size=(10, 5))
    r = mc_dropout(deterministic, x, mc_samples=1000, block=10, min_samples=50, seed=0)
    assert np.all(r.passes == 50)  # nothing varies between passes: stop at the minimum
    noisy = TinyMCModel(5, p=0.5)
    r = mc_dropout(noisy, x, mc_samples=300, block=10, min_samples=50, tolerance=1e-6, seed=0)
    assert np.all(r.passes == 300)  # an unreachable tolerance: every box draws all passes


def test_adaptive_error_no_worse_than_fixed_1000_passes():
    # Errors against a long reference run (T = 5000): boxes that stopped early must not be
    # worse off than the fixed T = 1000 estimate is for all boxes.
    m = TinyMCModel(13, p=0.05, hidden=256)
    m.w1 *= 0.5
    x = np.random.default_rng(2).normal(size=(120, 13))
    ref = mc_dropout(m, x, mc_samples=5000, adaptive=False, seed=5)
    fixed = mc_dropout(m, x, mc_samples=1000, adaptive=False, seed=7)
    ada = mc_dropout(m, x, mc_samples=1000, tolerance=0.01, seed=6)
    rows, top = np.arange(len(x)), np.argmax(ref.probabilities, axis=1)
    early = ada.passes < 1000
    assert 0.1 < early.mean() < 1.0
    for r in (ada, fixed):
        r.dp = np.abs(r.probabilities[rows, top] - ref.probabilities[rows, top])
        r.dmi = np.abs(r.mutual_information - ref.mutual_information)
    assert np.percentile(ada.dp[early], 95) <= 1.5 * np.percentile(fixed.dp, 95)
    assert np.percentile(ada.dmi[early], 95) <= 1.5 * np.percentile(fixed.dmi, 95)


def test_maps_shapes_and_invalid_boxes(slab, model, result):
    grid = strided_boxes(slab, 10.0, 3.0)
    assert result.shape == grid.shape
    assert result.probabilities.shape == (len(model.classes),) + grid.shape
    np.testing.assert_array_equal(result.counts, grid.counts)
    np.testing.assert_allclose(result.centres, grid.centres)
    v = result.valid
    np.testing.assert_allclose(np.nansum(result.probabilities, axis=0)[v], 1.0, atol=1e-5)
    assert np.all(result.mutual_information[v] >= 0)
    assert np.all(result.mutual_information[v] <= result.predictive_entropy[v] + 1e-6)
    # A minimum atom count above every box leaves all maps NaN.
    empty = spm(slab, box=10.0, stride=3.0, model=model, descriptor=rdf_descriptor, min_atoms=10**6,
                mc_samples=10, progress=False)
    assert not empty.valid.any() and np.all(np.isnan(empty.mutual_information))
    assert np.all(empty.labels == -1)


def test_invalid_descriptor_rows_become_nan(slab, model):
    def half_nan(structure, grid):
        x = rdf_descriptor(structure, grid)
        x[::2] = np.nan
        return x

    r = spm(slab, box=10.0, stride=3.0, model=model, descriptor=half_nan, mc_samples=20, progress=False)
    flat = r.valid.ravel()
    assert not flat[::2].any() and np.isnan(r.mutual_information.ravel()[::2]).all()


def test_per_atom_projection_matches_brute_force(slab, result):
    pa = result.per_atom(fill="nan")
    pos = slab.get_positions()
    centres = result.centres.reshape(-1, 3)
    flat_p = result.probabilities.reshape(len(result.classes), -1).T
    flat_mi = result.mutual_information.ravel()
    valid = result.valid.ravel()
    half = result.box / 2
    for a in np.random.default_rng(0).choice(len(slab), 25, replace=False):
        inside = np.all(np.abs(pos[a] - centres) <= half + 1e-9, axis=1) & valid
        assert pa.n_boxes[a] == inside.sum()
        if inside.any():
            np.testing.assert_allclose(pa.probabilities[a], flat_p[inside].mean(axis=0), rtol=1e-5)
            np.testing.assert_allclose(pa.mutual_information[a], flat_mi[inside].mean(), rtol=1e-5)
            assert pa.labels[a] == np.argmax(flat_p[inside].mean(axis=0))
        else:
            assert pa.labels[a] == -1 and np.isnan(pa.mutual_information[a])
    filled = result.per_atom()
    assert np.all(filled.labels >= 0) and not np.isnan(filled.mutual_information).any()


def test_save_load_round_trip(tmp_path, slab, result):
    path = result.save(tmp_path / "maps.npz")
    back = SPMResult.load(path)
    for name in ("probabilities", "mutual_information", "predictive_entropy", "passes", "counts", "valid", "x", "y", "z"):
        np.testing.assert_array_equal(getattr(back, name), getattr(result, name))
    assert back.classes == result.classes and back.box == result.box and back.settings == result.settings
    with pytest.raises(ValueError):
        back.per_atom()  # no membership after loading ...
    np.testing.assert_allclose(back.per_atom(slab).probabilities, result.per_atom().probabilities)  # ... unless given
    with pytest.raises(ValueError):
        result.save(tmp_path / "maps.txt")
    with pytest.raises(ValueError):
        SPMResult.load(tmp_path / "missing.npz")


def test_plot_writes_png(tmp_path, result):
    import matplotlib

    matplotlib.use("Agg")
    fig = result.plot(tmp_path / "maps.png", classes=[result.classes[0]])
    assert len(fig.axes) >= 4
    data = (tmp_path / "maps.png").read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) > 5000
    with pytest.raises(ValueError):
        result.plot(axis="w")


def test_subgrid_layers_partition_the_membership(slab):
    grid = strided_boxes(slab, 8.0, 2.0, slab_axis=None)
    bulk = polycrystal((24.0, 24.0, 24.0), ("fcc",), seed=0)
    grid = strided_boxes(bulk, 8.0, 4.0)
    nz = grid.shape[0]
    parts = [subgrid(grid, k, min(k + 2, nz)) for k in range(0, nz, 2)]
    assert sum(p.n_boxes for p in parts) == grid.n_boxes
    np.testing.assert_array_equal(np.concatenate([p.indices for p in parts]), grid.indices)
    b = grid.shape[1] * grid.shape[2] * 2 + 3  # a box in the second part
    np.testing.assert_array_equal(parts[1].members(3), grid.members(b))
    with pytest.raises(ValueError):
        subgrid(grid, 2, 1)


def test_trajectory_and_seed_reproducibility(slab, model):
    shifted = slab.copy()
    shifted.positions += 0.01
    rs = spm([slab, shifted], box=10.0, stride=5.0, model=model, descriptor=rdf_descriptor, mc_samples=50,
             progress=False)
    assert isinstance(rs, list) and len(rs) == 2
    again = spm(slab, box=10.0, stride=5.0, model=model, descriptor=rdf_descriptor, mc_samples=50, progress=False)
    np.testing.assert_array_equal(again.probabilities, rs[0].probabilities)


def test_dask_cluster_gives_the_same_maps(slab, model, result):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = spm(slab, box=10.0, stride=3.0, model=model, descriptor=rdf_descriptor, mc_samples=200,
                     client=client, chunk_boxes=50, progress=False)
    local = spm(slab, box=10.0, stride=3.0, model=model, descriptor=rdf_descriptor, mc_samples=200,
                chunk_boxes=50, progress=False)
    np.testing.assert_allclose(remote.probabilities, local.probabilities, equal_nan=True)
    np.testing.assert_allclose(remote.mutual_information, local.mutual_information, equal_nan=True)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"box": -1.0}, ValueError),
        ({"stride": 0.0}, ValueError),
        ({"mc_samples": 0}, ValueError),
        ({"min_atoms": 0}, ValueError),
        ({"tolerance": -0.1}, ValueError),
        ({"descriptor": "soap"}, TypeError),
        ({"model": object()}, TypeError),
        ({"client": 42}, TypeError),
        ({"precision": "float16"}, ValueError),
    ],
)
def test_bad_input(slab, model, kwargs, error):
    args = {"model": model, "descriptor": rdf_descriptor, "mc_samples": 10, "progress": False} | kwargs
    with pytest.raises(error):
        spm(slab, **args)


def test_bad_structure_and_descriptor_shape(model, slab):
    with pytest.raises(TypeError):
        spm(42, model=model, descriptor=rdf_descriptor)
    with pytest.raises(ValueError):
        spm([], model=model, descriptor=rdf_descriptor)
    with pytest.raises(ValueError):
        spm(slab, box=10.0, stride=3.0, model=model, descriptor=lambda s, g: np.zeros((3, 13)), progress=False)


def test_iter_spm_reports_progress_then_returns_the_result(slab, model, result):
    from cryspext.spm import iter_spm

    steps = iter_spm(slab, box=10.0, stride=3.0, model=model, descriptor=rdf_descriptor, mc_samples=200,
                     chunk_boxes=40)
    fractions = []
    try:
        while True:
            fractions.append(next(steps))
    except StopIteration as stop:
        out = stop.value
    assert fractions[0] == 0.0 and fractions[-1] == pytest.approx(1.0) and len(fractions) > 2
    assert np.all(np.diff(fractions) >= 0)
    assert out.shape == result.shape and np.array_equal(out.valid, result.valid)


def test_subgrid_rows_of_a_slab(slab):
    grid = strided_boxes(slab, 10.0, 3.0)
    assert grid.shape[0] == 1
    parts = [subgrid(grid, k, min(k + 3, grid.shape[1])) for k in range(0, grid.shape[1], 3)]
    np.testing.assert_array_equal(np.concatenate([p.counts for p in parts], axis=1), grid.counts)
    b = 3 * grid.shape[2] + 1
    np.testing.assert_array_equal(parts[1].members(1), grid.members(b))


def _per_row_dropout_reference(weights, biases, p, x, t, rng):
    """Textbook MC dropout in numpy: independent masks for every input row and pass."""
    probs, ents = [], []
    for _ in range(t):
        h = x
        for k, (w, b) in enumerate(zip(weights, biases)):
            h = (h * (rng.random(h.shape) >= p) / (1 - p)) @ w + b
            if k < len(weights) - 1:
                h = np.maximum(h, 0)
        e = np.exp(h - h.max(axis=1, keepdims=True))
        q = e / e.sum(axis=1, keepdims=True)
        probs.append(q)
        ents.append(entropy(q))
    pm = np.mean(probs, axis=0)
    return pm, entropy(pm) - np.mean(ents, axis=0)


def test_shared_mask_mc_matches_per_row_dropout_in_distribution():
    from cryspext.spm import SharedMaskMLP

    rng = np.random.default_rng(0)
    sizes = [8, 32, 32, 5]
    weights = [rng.normal(size=(a, b)) / np.sqrt(a) * 2 for a, b in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(size=b) * 0.1 for b in sizes[1:]]
    x = rng.normal(size=(40, 8))
    fast = SharedMaskMLP(weights, biases, 0.2, list("abcde"))
    got = fast.predict(x, mc_samples=3000, seed=3)
    ref_p, ref_mi = _per_row_dropout_reference(weights, biases, 0.2, x, 3000, rng)
    # Both are T = 3000 estimates of the same expectation: agree to MC precision.
    assert np.max(np.abs(got.probabilities - ref_p)) < 0.06
    assert np.max(np.abs(got.mutual_information - ref_mi)) < 0.06
    assert np.mean(np.abs(got.mutual_information - ref_mi)) < 0.015
    assert np.all(got.mutual_information > 0.005)  # dropout really varies the passes
    again = fast.predict(x, mc_samples=50, seed=3)
    np.testing.assert_array_equal(again.probabilities, fast.predict(x, mc_samples=50, seed=3).probabilities)
    no_dropout = SharedMaskMLP(weights, biases, 0.0, list("abcde")).predict(x, mc_samples=5)
    np.testing.assert_allclose(no_dropout.mutual_information, 0.0, atol=1e-6)
    with pytest.raises(ValueError):
        fast.predict(np.zeros((3, 7)))
    with pytest.raises(ValueError):
        SharedMaskMLP(weights, biases, 1.0, list("abcde"))
    with pytest.raises(ValueError):
        SharedMaskMLP(weights, biases, 0.2, list("abcde"), dtype="float16")
    # bfloat16 hidden layers, same masks (same seed): rounding far below the MC noise above.
    low = SharedMaskMLP(weights, biases, 0.2, list("abcde"), dtype="bfloat16").predict(x, mc_samples=200, seed=9)
    high = fast.predict(x, mc_samples=200, seed=9)
    assert np.max(np.abs(low.probabilities - high.probabilities)) < 0.02
    assert np.max(np.abs(low.mutual_information - high.mutual_information)) < 0.02


def _shipped_model():
    arise = pytest.importorskip("cryspext.arise")
    pytest.importorskip("cryspext.descriptors")
    for name in ("arise", "dev"):
        try:
            return arise.load_model(name)
        except FileNotFoundError:
            continue
    pytest.skip("no shipped ARISE model")


def test_shipped_arise_maps_a_two_grain_slab():
    """End to end with the shipped model and SOAP: grain interiors get their prototype, and
    MI is higher in boxes straddling the boundary than inside the grains."""
    from cryspext.spm.demo import EXPECTED, score_grains

    model = _shipped_model()
    atoms = polycrystal((56.0, 28.0, 16.0), ("fcc", "bcc"), centres=[[14.0, 14.0, 8.0], [42.0, 14.0, 8.0]], seed=1)
    r = spm(atoms, box=16.0, stride=4.0, mc_samples=300, model=model, progress=False)
    s = score_grains(r, atoms)
    assert s["interior_boxes"] >= 4 and s["boundary_boxes"] >= 2
    assert s["interior_accuracy"] >= 0.95
    assert s["mi_median_boundary"] > s["mi_median_interior"]
    labels = r.per_atom().label_names
    grain = atoms.arrays["grain"]
    x = atoms.positions[:, 0]
    assert np.mean(labels[(grain == 0) & (x < 8)] == EXPECTED["fcc"]) > 0.9
    assert np.mean(labels[(grain == 1) & (x > 48)] == EXPECTED["bcc"]) > 0.9
