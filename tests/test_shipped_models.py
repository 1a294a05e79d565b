"""Every shipped TorchScript file loads (without the torch.jit deprecation warning leaking out)
and has a card naming the cryspext version that trained it."""

from __future__ import annotations

import json
import warnings

import pytest

torch = pytest.importorskip("torch")

from cryspext.models import MODELS_DIR, load_torchscript  # noqa: E402

SHIPPED = sorted(MODELS_DIR.glob("*/*.pt"))


def test_models_are_shipped():
    families = {p.parent.name for p in SHIPPED}
    assert {"arise", "xrd", "formula"} <= families


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_model_loads_quietly_with_card(path):
    load_torchscript.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = load_torchscript(path)
    assert isinstance(module, torch.jit.ScriptModule)
    assert not module.training
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["cryspext_version"]
