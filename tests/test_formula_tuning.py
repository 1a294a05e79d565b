"""Fine-tuning shipped formula members (nets.tunable_member, training.formula.fine_tune_joint):
the trainable copy is the same function, freezing it again keeps it, rows without lattice
parameters teach only the classifiers, and training moves the probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from cryspext.formula import FEATURE_NAMES, formula_features

torch = pytest.importorskip("torch")

from cryspext.formula.lattice import BRAVAIS  # noqa: E402
from cryspext.formula.nets import (  # noqa: E402
    MLP,
    ElementMLP,
    JointEnsemble,
    freeze,
    freeze_element,
    freeze_tuned,
    half_element_member,
    tunable_member,
)
from cryspext.models import load_torchscript, save_torchscript  # noqa: E402
from cryspext.training.formula import (  # noqa: E402
    _formula_scaling,
    element_properties,
    fine_tune_joint,
    lattice_slots,
    spacegroup_bravais_matrix,
)

N_STATS = sum(not n.startswith("x_") for n in FEATURE_NAMES)
N_OUT = 230 + int(lattice_slots()[0][-1])
FORMULAS = ["NaCl", "LiFePO4", "SrTiO3", "Fe2O3", "CuSO4(H2O)5", "Mg0.5Zn0.5Al2O4", "Si"]


def _x(formulas=FORMULAS) -> np.ndarray:
    return np.stack([formula_features(f) for f in formulas]).astype(np.float32)


def _ensemble(tmp_path, half: bool):
    """A shipped-like (scripted, saved, loaded) ensemble of one element member and one MLP."""
    torch.manual_seed(0)
    x = _x(FORMULAS * 5)
    mean, std = _formula_scaling(x, FEATURE_NAMES)
    el = ElementMLP(len(FEATURE_NAMES), [32], N_OUT, torch.from_numpy(element_properties()),
                    N_STATS, embed=(N_STATS, 2), dim=16, heads=4, rounds=1)
    mlp = MLP(len(FEATURE_NAMES), [32], N_OUT, 0.0, embed=(N_STATS, 2))
    for model in (el, mlp):  # BatchNorm statistics to fold
        model.train()
        with torch.no_grad():
            model(torch.from_numpy((x - mean) / std))
    member = freeze_element(el, mean, std, 2)
    members = [half_element_member(member) if half else member, freeze(mlp, mean, std, 2)]
    lo, hi = torch.full((37,), 1.0), torch.full((37,), 100.0)
    ens = JointEnsemble(members, torch.from_numpy(spacegroup_bravais_matrix()),
                        torch.from_numpy(lattice_slots()[0]), lo, hi)
    save_torchscript(ens, tmp_path / "m.pt", {})
    return load_torchscript(tmp_path / "m.pt")


@pytest.mark.parametrize("half", [False, True])
def test_tunable_copy_and_its_frozen_form_are_the_same_function(tmp_path, half):
    ens = _ensemble(tmp_path, half)
    x = torch.from_numpy(_x())
    for i in range(2):
        member = getattr(ens.members, str(i))
        tunable = tunable_member(member)
        assert sum(p.numel() for p in tunable.parameters() if p.requires_grad) > 1000
        frozen = torch.jit.script(freeze_tuned(tunable, half_encoder=half))
        with torch.no_grad():
            ref = member(x)
            np.testing.assert_array_equal(tunable(x).numpy(), ref.numpy())
            np.testing.assert_array_equal(frozen(x).numpy(), ref.numpy())


def test_fine_tuning_learns_labels_and_ignores_the_lattice_of_unlabelled_rows(tmp_path):
    ens = _ensemble(tmp_path, half=True)
    rows = ["NaCl", "KCl", "RbBr"] * 40  # rock salts labelled Pm-3m (cP) here, to be learned
    X = _x(rows)
    sg = np.full(len(rows), 221)
    B = np.full(len(rows), BRAVAIS.index("cP"))
    P = np.full((len(rows), 6), np.nan, np.float32)  # no lattice: must never be read
    known = np.zeros(len(rows), bool)
    xq = torch.from_numpy(_x(["NaCl", "KBr"]))
    with torch.no_grad():
        before = ens.bravais(xq).mean(0)[:, BRAVAIS.index("cP")]
    tuned = fine_tune_joint(ens, X, sg, B, P, known, epochs=5, lr=1e-2, batch=32)
    scripted = torch.jit.script(tuned)
    with torch.no_grad():
        after = scripted.bravais(xq).mean(0)[:, BRAVAIS.index("cP")]
        raw = scripted.raw(xq)
    assert torch.isfinite(raw).all()
    assert (after > before + 0.2).all(), (before, after)
    # The element encoder keeps its float16 storage.
    assert getattr(scripted.members, "0").encoder.original_name == "HalfElementEncoder"
