"""Shipped models: TorchScript files with a JSON card each, loaded with torch at run time.

Layout: ``models/<family>/<name>.pt`` next to ``<name>.json`` (the card: classes and their
order, input settings, training-data hash, cryspext version, metrics).
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent

__all__ = ["MODELS_DIR", "model_path", "load_card", "load_torchscript"]


def model_path(family: str, name: str) -> Path:
    """Path of a shipped TorchScript file; ``FileNotFoundError`` naming what is missing."""
    path = MODELS_DIR / family / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"model {family}/{name}.pt is not shipped in this installation ({path}); "
            f"retrain it with 'python -m cryspext.training.{family}'"
        )
    return path


def load_card(family: str, name: str) -> dict:
    """The JSON card describing a shipped model."""
    path = MODELS_DIR / family / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"model card {path} is missing")
    return json.loads(path.read_text())


@lru_cache(maxsize=None)
def load_torchscript(path: str | Path):
    """Load a TorchScript module on the CPU, in eval mode.

    torch >= 2.13 warns that ``torch.jit`` is deprecated; the shipped files are TorchScript
    by design (no Python model code needed to run them), so that warning is silenced here.
    """
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.*")
        warnings.filterwarnings("ignore", message=".*TorchScript.*")
        module = torch.jit.load(str(path), map_location="cpu")
    module.eval()
    return module


def save_torchscript(module, path: str | Path, card: dict) -> None:
    """Script ``module`` and write it with its JSON card (used by the training code)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.*")
        warnings.filterwarnings("ignore", message=".*TorchScript.*")
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, str(path))
    path.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    load_torchscript.cache_clear()  # a file written here must not be read back from the cache
