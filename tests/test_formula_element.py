"""The element-attention formula network (nets.ElementMLP): freezing and shipping keep its
outputs, and it reads the elements of a formula from the mole-fraction features."""

from __future__ import annotations

import numpy as np
import pytest

from cryspext.formula import FEATURE_NAMES, formula_features

torch = pytest.importorskip("torch")

from cryspext.formula.nets import ElementMLP, JointEnsemble, freeze_element  # noqa: E402
from cryspext.models import load_torchscript, save_torchscript  # noqa: E402
from cryspext.training.formula import (  # noqa: E402
    _formula_scaling,
    element_properties,
    lattice_slots,
    spacegroup_bravais_matrix,
)

N_STATS = sum(not n.startswith("x_") for n in FEATURE_NAMES)
FORMULAS = ["NaCl", "LiFePO4", "SrTiO3", "Fe2O3", "CuSO4(H2O)5", "Mg0.5Zn0.5Al2O4", "Si"]


def _model(seed=0):
    torch.manual_seed(seed)
    model = ElementMLP(len(FEATURE_NAMES), [32, 32], 230 + int(lattice_slots()[0][-1]),
                       torch.from_numpy(element_properties()), N_STATS, embed=(N_STATS, 2),
                       dim=16, heads=4, rounds=2)
    # Non-trivial BatchNorm statistics, so that folding them is tested.
    rng = np.random.default_rng(seed)
    x = np.stack([formula_features(f) for f in FORMULAS * 10]).astype(np.float32)
    mean, std = _formula_scaling(x + rng.normal(0, 0.1, x.shape).astype(np.float32),
                                 FEATURE_NAMES)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.from_numpy((x - mean) / std))
    return model.eval(), mean, std


def test_frozen_and_scripted_model_match_the_training_network(tmp_path):
    model, mean, std = _model()
    x = np.stack([formula_features(f) for f in FORMULAS]).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy((x - mean) / std)).numpy()
    frozen = freeze_element(model, mean, std, 2)
    ens = JointEnsemble([frozen], torch.from_numpy(spacegroup_bravais_matrix()),
                        torch.from_numpy(lattice_slots()[0]), torch.zeros(37), torch.ones(37))
    path = tmp_path / "m.pt"
    save_torchscript(ens, path, {})
    loaded = load_torchscript(path)
    with torch.no_grad():
        got = loaded._raw(torch.from_numpy(x))[0].numpy()
    # float16-stored MLP weights: agreement to a few parts in a thousand of the output scale.
    np.testing.assert_allclose(got, ref, atol=5e-3 * np.abs(ref).max())


def test_encoder_sees_only_the_elements_present():
    """Changing the learned embedding of an element absent from a formula leaves that
    formula's encoding unchanged; changing one present changes it."""
    model, mean, std = _model(1)
    enc = model.encoder
    x = torch.from_numpy(np.stack([formula_features("SrTiO3")]).astype(np.float32))
    with torch.no_grad():
        before = enc(x).clone()
        enc.embed.weight[26 - 1] += 1.0  # Fe: absent
        same = enc(x).clone()
        enc.embed.weight[22 - 1] += 1.0  # Ti: present
        changed = enc(x).clone()
    np.testing.assert_allclose(same.numpy(), before.numpy(), atol=1e-6)
    assert float((changed - before).abs().max()) > 1e-3


def test_encoder_is_independent_of_the_fraction_scale():
    """Training feeds 3·x, inference the raw fractions: the encoder renormalises them."""
    model, _, _ = _model(2)
    x = np.stack([formula_features(f) for f in FORMULAS]).astype(np.float32)
    x3 = x.copy()
    x3[:, N_STATS:] *= 3.0
    with torch.no_grad():
        a = model.encoder(torch.from_numpy(x)).numpy()
        b = model.encoder(torch.from_numpy(x3)).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_log_inputs_after_the_fractions_are_frozen_with_the_network():
    """Inputs after the mole fractions (the formula-unit features) are trained on as natural
    logs; the frozen, scripted network takes the logs itself, and its encoder reads only the
    mole-fraction columns."""
    from cryspext.formula import FORMULA_UNIT_FEATURE_NAMES, formula_unit_features
    from cryspext.training.formula import _logged

    names = FEATURE_NAMES + FORMULA_UNIT_FEATURE_NAMES
    n_in = len(names)
    torch.manual_seed(4)
    model = ElementMLP(n_in, [32, 32], 40, torch.from_numpy(element_properties()), N_STATS,
                       embed=(N_STATS, 2), dim=16, heads=4, rounds=2)
    x = np.stack([np.concatenate([formula_features(f), formula_unit_features(f)])
                  for f in FORMULAS * 10]).astype(np.float32)
    log_columns = (len(FEATURE_NAMES), n_in)
    x_log = _logged(x, log_columns)
    np.testing.assert_allclose(x_log[:, -2:], np.log(x[:, -2:]), rtol=1e-6)
    mean, std = _formula_scaling(x_log, names)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.from_numpy((x_log - mean) / std))
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy((x_log - mean) / std)).numpy()
        frozen = torch.jit.script(freeze_element(model, mean, std, 2, log_columns=log_columns))
        got = frozen(torch.from_numpy(x)).numpy()
        # the encoder ignores the columns after the mole fractions
        shifted = x.copy()
        shifted[:, -2:] *= 5.0
        np.testing.assert_array_equal(model.encoder(torch.from_numpy(shifted)).numpy(),
                                      model.encoder(torch.from_numpy(x)).numpy())
        assert not np.allclose(frozen(torch.from_numpy(shifted)).numpy(), got, atol=1e-3)
    np.testing.assert_allclose(got, ref, atol=5e-3 * np.abs(ref).max())


def test_training_with_the_element_network_ships_a_working_model(tmp_path):
    """``train_split(arch="element")`` on a tiny synthetic set writes a model that
    ``predict_formula`` loads, with the architecture on its card."""
    import json

    from cryspext.formula import predict_formula
    from cryspext.formula.cellgeom import CELL_FEATURE_NAMES
    from cryspext.formula.lattice import BRAVAIS, bravais_of_spacegroup
    from cryspext.training.formula import train_split

    rng = np.random.default_rng(0)
    n = 600
    sg = rng.choice([225, 194, 62, 14, 166, 139, 2, 12, 221, 229, 71, 63, 123, 70], size=n)
    params = np.abs(rng.normal(6, 1, (n, 6))).astype(np.float32) + 1
    params[:, 3:] = rng.uniform(60, 120, (n, 3))
    X = np.stack([formula_features(FORMULAS[i % len(FORMULAS)]) for i in range(n)])
    X = (X * rng.uniform(0.9, 1.1, X.shape)).astype(np.float32)
    C = rng.normal(size=(n, len(CELL_FEATURE_NAMES))).astype(np.float32)
    C[:, 14:17] = np.abs(C[:, 14:17]) + 1  # the lengths a b c, whose logs the cell networks read
    np.savez_compressed(
        tmp_path / "arrays.npz", X=X, C=C, C_primitive=C, primitive=params,
        conventional=params, niggli=params, params=params, sg=sg,
        bravais=np.array([BRAVAIS.index(bravais_of_spacegroup(int(s))) for s in sg]),
        mp_id=np.arange(n), formula=np.array([FORMULAS[i % len(FORMULAS)] for i in range(n)]),
        digest=np.array("synthetic"),
        niggli_sample=np.arange(0, n, 10), C_niggli_sample=C[::10])
    out = tmp_path / "models"
    train_split(tmp_path, "random", out, members=2, epochs=1, arch="element",
                cell_config={"members": 1, "epochs": 1})
    card = json.loads((out / "formula.json").read_text())
    assert card["architecture"] == "element" and card["element_encoder"]["rounds"] == 2
    res = predict_formula("LiFePO4", top_k=3, model_dir=out)
    assert len(res["candidates"]) == 3
    assert abs(sum(c["probability"] for c in predict_formula(
        "NaCl", top_k=14, model_dir=out)["candidates"]) - 1) < 1e-4


def test_single_pass_heads_match_the_scripted_methods():
    """predict_formula's one-pass heads give what the one-step TorchScript methods give."""
    from cryspext.formula.lattice import BRAVAIS
    from cryspext.formula.predict import FormulaModels

    models = FormulaModels()
    x = models.features(FORMULAS).astype(np.float32)
    raw = models.raw_outputs(x)
    for b in ("cF", "hR", "mP", "aP"):
        p_b, p_sg, lp = models.heads(raw, b)
        np.testing.assert_allclose(p_b, models.bravais_proba(x), atol=1e-5)
        np.testing.assert_allclose(p_sg, models.spacegroup_proba(x, b)[1], atol=1e-5)
        np.testing.assert_allclose(lp, models.lattice_parameters(x, b)[1], rtol=1e-5)
    assert p_b.shape[-1] == len(BRAVAIS)


def test_float16_encoder_keeps_the_outputs_and_halves_the_encoder_bytes(tmp_path):
    """``half_element_member`` (what ``merge`` ships): the encoder's weights in float16, the
    outputs of the eager and of the scripted member within float16 rounding of the original."""
    from cryspext.formula.nets import half_element_member

    model, mean, std = _model(seed=3)
    frozen = freeze_element(model, mean, std, 2)
    x = torch.from_numpy(np.stack([formula_features(f) for f in FORMULAS]).astype(np.float32))
    path = tmp_path / "m.pt"
    ens = JointEnsemble([frozen], torch.from_numpy(spacegroup_bravais_matrix()),
                        torch.from_numpy(lattice_slots()[0]), torch.zeros(37), torch.ones(37))
    save_torchscript(ens, path, {})
    scripted = getattr(load_torchscript(path).members, "0")
    with torch.no_grad():
        ref = frozen(x).numpy()
    for i, source in enumerate((frozen, scripted)):
        half = half_element_member(source)
        save_torchscript(JointEnsemble([half], ens.sg_bravais, ens.offsets, ens.lo, ens.hi),
                         tmp_path / f"h{i}.pt", {})
        with torch.no_grad():
            got = load_torchscript(tmp_path / f"h{i}.pt")._raw(x)[0].numpy()
        np.testing.assert_allclose(got, ref, atol=5e-3 * np.abs(ref).max())

    def nbytes(m):  # learned weights only (the element property table stays float32)
        return sum(t.numel() * t.element_size() for k, t in m.state_dict().items()
                   if k != "props")

    assert half.encoder.embed.w.dtype == torch.float16
    assert nbytes(half.encoder) < 0.55 * nbytes(frozen.encoder)
