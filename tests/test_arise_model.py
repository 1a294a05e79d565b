"""ARISE Bayesian MLP and Monte-Carlo-dropout inference (no shipped model or SOAP needed).

Oracles: the thesis (Table 4.1 parameter count), an explicit NumPy evaluation of eqs. 2.3.2.1–2.3.2.5
on the per-pass probabilities, and elementary identities (no dropout → no epistemic uncertainty).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryspext.arise.model import AriseModel, BayesianMLP, MCPrediction
from cryspext.arise.result import ClassificationResult
from cryspext.models import load_torchscript, save_torchscript


def _card(n_out=108):
    return {"classes": [f"c{i}" for i in range(n_out)], "n_features": 316, "descriptor": {"cutoff": 4.0}}


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    torch.manual_seed(0)
    module = BayesianMLP(p=0.2)  # large p so that the passes differ visibly
    path = tmp_path_factory.mktemp("arise") / "toy.pt"
    save_torchscript(module, path, _card())
    return AriseModel(load_torchscript(path), _card()), module


def test_parameter_count_matches_thesis_table_4_1():
    assert sum(p.numel() for p in BayesianMLP().parameters()) == 371_820


def test_mc_is_deterministic_with_seed_and_varies_without(scripted):
    model, _ = scripted
    x = np.random.default_rng(1).random((5, 316))
    a = model.predict(x, mc_samples=50, seed=3)
    b = model.predict(x, mc_samples=50, seed=3)
    c = model.predict(x, mc_samples=50, seed=4)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    np.testing.assert_array_equal(a.mutual_information, b.mutual_information)
    assert not np.allclose(a.probabilities, c.probabilities)


def test_seed_leaves_global_rng_untouched(scripted):
    model, _ = scripted
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    model.predict(np.ones((2, 316)), mc_samples=4, seed=1)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_mc_matches_explicit_formulas(scripted):
    """Per-pass probabilities recomputed by hand, then eqs. 2.3.2.1, 2.3.2.3, 2.3.2.5 in NumPy."""
    model, module = scripted
    x = np.random.default_rng(2).random((3, 316)).astype(np.float32)
    T = 40
    pred = model.predict(x, mc_samples=T, seed=11)
    # Same RNG stream: rows repeated T times, one stochastic pass each.
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        torch.manual_seed(11)
        rows = torch.from_numpy(x).repeat_interleave(T, dim=0)
        logits, h1, _, h3 = module.hidden(rows, True)
    pt = torch.softmax(logits.double(), dim=1).numpy().reshape(3, T, -1)
    mean = pt.mean(axis=1)
    entropy = -(mean * np.log(mean)).sum(axis=1)
    expected_entropy = -(pt * np.log(pt)).sum(axis=2).mean(axis=1)
    np.testing.assert_allclose(pred.probabilities, mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pred.predictive_entropy, entropy, rtol=1e-4)
    np.testing.assert_allclose(pred.mutual_information, entropy - expected_entropy, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(pred.hidden["h1"], h1.numpy().reshape(3, T, -1).mean(axis=1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pred.hidden["h3"], h3.numpy().reshape(3, T, -1).mean(axis=1), rtol=1e-4, atol=1e-5)


def test_views_spread_the_passes_and_average_over_all_of_them():
    """(n, V, 316) input: view v gets ⌊T/V⌋ (+1 for v < T mod V) passes; probabilities, expected
    entropy and MI are the averages over all T passes, recomputed here view by view."""
    torch.manual_seed(0)
    module = BayesianMLP(p=0.2)
    model = AriseModel(module, _card())
    x = np.random.default_rng(5).random((4, 3, 316)).astype(np.float32)
    T = 11  # 4 + 4 + 3 passes
    pred = model.predict(x, mc_samples=T, seed=2)
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        torch.manual_seed(2)
        per_pass = []
        for v, t_v in enumerate((4, 4, 3)):
            rows = torch.from_numpy(x[:, v]).repeat_interleave(t_v, dim=0)
            per_pass.append(torch.softmax(module(rows, True).double(), dim=1).numpy().reshape(4, t_v, -1))
    pt = np.concatenate(per_pass, axis=1)  # (n, T, C)
    mean = pt.mean(axis=1)
    entropy = -(mean * np.log(mean)).sum(axis=1)
    expected_entropy = -(pt * np.log(pt)).sum(axis=2).mean(axis=1)
    np.testing.assert_allclose(pred.probabilities, mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(pred.mutual_information, entropy - expected_entropy, rtol=1e-3, atol=1e-5)
    # Fewer passes than views: the surplus views are skipped, nothing divides by zero.
    few = model.predict(x, mc_samples=2, seed=0)
    np.testing.assert_allclose(few.probabilities.sum(axis=1), 1.0, atol=1e-9)
    # One view given as (n, 1, 316) is the plain (n, 316) call.
    np.testing.assert_array_equal(model.predict(x[:, :1], mc_samples=5, seed=1).probabilities,
                                  model.predict(x[:, 0], mc_samples=5, seed=1).probabilities)


def test_descriptor_views_from_the_card():
    card = _card()
    assert AriseModel(BayesianMLP(), card).descriptor_views == [{"cutoff": 4.0}]
    card["inference"] = {"descriptor_views": [{}, {"cutoff": 3.8}]}
    assert AriseModel(BayesianMLP(), card).descriptor_views == [{"cutoff": 4.0}, {"cutoff": 3.8}]


def test_without_dropout_mutual_information_vanishes():
    torch.manual_seed(0)
    module = BayesianMLP(p=0.0)
    model = AriseModel(module, _card())
    x = np.random.default_rng(3).random((4, 316))
    pred = model.predict(x, mc_samples=20, seed=0)
    np.testing.assert_allclose(pred.mutual_information, 0.0, atol=1e-5)
    with torch.no_grad():
        p = torch.softmax(module(torch.from_numpy(x).float(), stochastic=False), 1).numpy()
    np.testing.assert_allclose(pred.probabilities, p, rtol=1e-4, atol=1e-6)


def test_uncertainty_bounds_and_shapes(scripted):
    model, _ = scripted
    x = np.random.default_rng(4).random((7, 316))
    pred = model.predict(x, mc_samples=30, seed=0, max_rows=64)  # forces several chunks
    assert isinstance(pred, MCPrediction) and len(pred) == 7
    assert pred.probabilities.shape == (7, 108)
    np.testing.assert_allclose(pred.probabilities.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(pred.mutual_information >= 0)
    assert np.all(pred.mutual_information <= pred.predictive_entropy + 1e-9)
    assert np.all(pred.predictive_entropy <= np.log(108) + 1e-9)
    assert {k: v.shape for k, v in pred.hidden.items()} == {"h1": (7, 256), "h2": (7, 512), "h3": (7, 256)}
    whole = model.predict(x, mc_samples=30, seed=0)
    assert pred.labels == [model.classes[i] for i in np.argmax(pred.probabilities, 1)]
    assert whole.probabilities.shape == pred.probabilities.shape


@pytest.mark.parametrize(
    "bad, exc",
    [
        (np.ones((2, 315)), ValueError),
        (np.ones((0, 316)), ValueError),
        (np.full((1, 316), np.nan), ValueError),
        (np.ones((2, 3, 4, 316)), ValueError),
        (np.ones((2, 0, 316)), ValueError),
        ("fcc", TypeError),
    ],
)
def test_bad_descriptors(scripted, bad, exc):
    model, _ = scripted
    with pytest.raises(exc):
        model.predict(bad, mc_samples=2)


@pytest.mark.parametrize("samples, exc", [(0, ValueError), (-5, ValueError), (2.5, TypeError), ("10", TypeError)])
def test_bad_mc_samples(scripted, samples, exc):
    model, _ = scripted
    with pytest.raises(exc):
        model.predict(np.ones(316), mc_samples=samples)


def test_result_object():
    probs = np.array([0.1, 0.6, 0.3])
    r = ClassificationResult(
        label="b", probabilities=probs, classes=["a", "b", "c"], mutual_information=0.01,
        predictive_entropy=0.9, hidden_layers={"h1": np.zeros(4), "h2": np.zeros(5), "h3": np.ones(4)},
    )
    assert r.ranking(2) == [("b", 0.6), ("c", 0.3)]
    assert r.ranking(10)[-1] == ("a", 0.1)
    assert r.probability == pytest.approx(0.6)
    assert r.probabilities_dict()["c"] == pytest.approx(0.3)
    np.testing.assert_array_equal(r.hidden(3), np.ones(4))
    assert r.hidden("h2").shape == (5,)
    assert r.as_dict(1)["ranking"] == [{"class": "b", "probability": 0.6}]
    with pytest.raises(ValueError):
        r.hidden("h4")
    with pytest.raises(ValueError):
        r.ranking(0)
    with pytest.raises(TypeError):
        r.ranking("3")


# --- deep ensemble (EnsembleMLP) -------------------------------------------------------------


def _members(k, p, seed=0):
    torch.manual_seed(seed)
    return [BayesianMLP(p=p) for _ in range(k)]


def test_ensemble_of_one_is_the_network_itself():
    """K = 1: same masks from the same seed, so the same statistics as the plain network."""
    from cryspext.arise.model import EnsembleMLP

    (net,) = _members(1, 0.2)
    x = torch.from_numpy(np.random.default_rng(5).random((4, 316)).astype(np.float32))
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        torch.manual_seed(3)
        a = net.mc(x, 30)
        torch.manual_seed(3)
        b = EnsembleMLP([net]).mc(x, 30)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("T", [4, 5, 7])
def test_ensemble_splits_passes_over_members(T):
    """Without dropout, pass t is member t mod K: the mean is the pass-count-weighted mean of the
    members' softmax outputs, and the MI is what the members disagree on (H(mean) − mean H)."""
    from cryspext.arise.model import EnsembleMLP

    nets = _members(2, 0.0, seed=1)
    x = torch.from_numpy(np.random.default_rng(6).random((3, 316)).astype(np.float32))
    with torch.inference_mode():
        per = [torch.softmax(n(x, stochastic=False).double(), 1).numpy() for n in nets]
    counts = [len(range(k, T, 2)) for k in range(2)]
    mean = sum(c * q for c, q in zip(counts, per)) / T
    ent = lambda q: -(q * np.log(q)).sum(-1)  # noqa: E731
    expected_mi = ent(mean) - sum(c * ent(q) for c, q in zip(counts, per)) / T
    card = _card()
    model = AriseModel(EnsembleMLP(nets).eval(), card)
    pred = model.predict(x.numpy(), mc_samples=T, seed=0)
    np.testing.assert_allclose(pred.probabilities, mean, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(pred.mutual_information, expected_mi, rtol=1e-3, atol=1e-6)
    assert np.all(pred.mutual_information > 0)  # two different networks disagree
    # hidden(): member 0's activations.
    with torch.inference_mode():
        _, h1, _, h3 = nets[0].hidden(x, False)
    np.testing.assert_allclose(pred.hidden["h1"], h1.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pred.hidden["h3"], h3.numpy(), rtol=1e-4, atol=1e-5)


def test_ensemble_torchscript_round_trip(tmp_path):
    from cryspext.arise.model import EnsembleMLP

    ens = EnsembleMLP(_members(3, 0.1, seed=2)).eval()
    path = tmp_path / "ens.pt"
    save_torchscript(ens, path, _card())
    model = AriseModel(load_torchscript(path), _card())
    x = np.random.default_rng(7).random((5, 316))
    a = model.predict(x, mc_samples=20, seed=4)
    b = AriseModel(ens, _card()).predict(x, mc_samples=20, seed=4)
    np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a.mutual_information, b.mutual_information, rtol=1e-4, atol=1e-6)
    assert {k: v.shape for k, v in a.hidden.items()} == {"h1": (5, 256), "h2": (5, 512), "h3": (5, 256)}
    # The deterministic forward gives log-probabilities (rows sum to one after exp).
    with torch.inference_mode():
        logp = load_torchscript(path)(torch.from_numpy(x).float(), False)
    np.testing.assert_allclose(logp.exp().sum(1).numpy(), 1.0, rtol=1e-5)


def test_ensemble_rejects_bad_members():
    from cryspext.arise.model import EnsembleMLP

    with pytest.raises(ValueError):
        EnsembleMLP([])
    with pytest.raises(ValueError):
        EnsembleMLP([BayesianMLP(p=0.01), BayesianMLP(p=0.02)])
