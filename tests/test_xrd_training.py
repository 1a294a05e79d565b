"""Training utilities of the XRD models: metrics (against scikit-learn), storage codes, duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from cryspext.training import xrd as T


def test_metrics_match_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    n, c = 500, 7
    y = rng.integers(0, c, n)
    probs = rng.random((n, c))
    probs[np.arange(n), y] += rng.random(n)  # better than chance
    m = T.metrics(probs, y, c)
    pred = probs.argmax(1)
    assert m["top1"] == pytest.approx(sklearn_metrics.accuracy_score(y, pred))
    assert m["macro_recall"] == pytest.approx(sklearn_metrics.recall_score(y, pred, average="macro"))
    assert m["macro_precision"] == pytest.approx(
        sklearn_metrics.precision_score(y, pred, average="macro", zero_division=0))
    assert m["top5"] == pytest.approx(sklearn_metrics.top_k_accuracy_score(y, probs, k=5))


def test_volume_quartiles():
    true = np.log(np.full(4, 100.0))
    pred = np.log(np.array([90.0, 100.0, 110.0, 120.0]))
    q = T.volume_quartiles(pred, true)
    assert q["q25_pct"] == pytest.approx(-2.5) and q["q75_pct"] == pytest.approx(12.5)


def test_storage_codes_round_trip_within_quantisation():
    pytest.importorskip("torch")
    v = np.array([0.0, 5e-5, 1e-4, 3e-3, 0.5, 1.0], dtype=np.float32)
    back = T.decode(T._codes(v)).numpy()
    assert back[0] == 0 and back[1] == 0  # below 1e-4: not stored
    assert np.allclose(back[2:], v[2:], rtol=0.019)  # half of a 10^(4/254) step


def test_near_duplicates_share_a_key():
    # Three sparse profiles: 0 and 1 have the same strong peaks (1 shifted within its bin set), 2 differs.
    indptr = np.array([0, 3, 6, 9])
    indices = np.array([10, 50, 90, 10, 50, 90, 10, 51, 90], dtype=np.uint16)
    values = np.array([1.0, 0.5, 0.02, 1.0, 0.4, 0.03, 1.0, 0.5, 0.02], dtype=np.float16)
    sg = np.array([225, 225, 225])
    keys = T._duplicate_keys(indptr, indices, values, sg)
    assert keys[0][0] == keys[1][0] and keys[0][0] != keys[2][0]
    other_group = T._duplicate_keys(indptr, indices, values, np.array([225, 221, 225]))
    assert other_group[0][0] != other_group[1][0]


def test_model_shapes_and_ensemble():
    torch = pytest.importorskip("torch")
    members = [T.make_model(5, 257, [4, 8], 16), T.make_model(5, 257, [4, 8], 16, coord=True)]
    ens = T.make_ensemble(members, 5.0, 1.0).eval()
    probs, logv = ens(torch.rand(3, 257))
    assert probs.shape == (2, 3, 5) and logv.shape == (2, 3)
    assert torch.allclose(probs.sum(-1), torch.ones(2, 3), atol=1e-5)
