"""Train the cell-geometry space-group model (``python -m cryspext.training.cell train``).

Space group (1..230) from the canonical features of a unit cell (``formula.cellgeom``: ASE
metric lattice type + Niggli-reduced parameters and ratios), seed 001's question asked without
its setting leakage. The rows are those of the formula data set (``training.formula``: one MP
structure per reduced formula) of one split: the conventional cell of every training row and,
for centred lattices, its primitive cell too (both are what users give at run time).

The model is an ensemble of ``cellnet.CellNet`` networks (piecewise-linear encoding of each
continuous input on quantile bins, per-feature embedding, MLP), trained with label-smoothed
cross-entropy, a one-cycle schedule and a fixed number of epochs. Written: ``cell.pt``
(TorchScript: raw features (n, 25) → (members, n, 230) probabilities) and ``cell.json`` (card).
The test rows of the split are only scored, after training, next to a 30-tree random forest on
the same training rows and features (printed, and stored in the card).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .formula import DEFAULT_CACHE, MODEL_DIR, dataset_arrays, split_indices, validation_split

try:
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    def tqdm(it, **_kw):
        return it

__all__ = ["CELL_CONFIG", "fit_rows", "fit_cell_member", "topk", "forest_scores", "train_cell",
           "validation_split", "validate", "random_unimodular", "setting_check", "main"]

# Chosen on a validation slice of the random split's training rows (see benchmarks/RESULTS_cell.md).
CELL_CONFIG = {
    "members": 5,
    "hidden": [384, 256],
    "embed_dim": 16,
    "bins": 48,
    "epochs": 20,
    "batch": 512,
    "lr": 3e-3,
    "dropout": 0.1,
    "weight_decay": 1e-5,
    "label_smoothing": 0.05,
}


def fit_rows(arr: dict, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features, space groups) to fit on: the conventional cells of ``rows`` and the primitive
    cells of those on a centred lattice (for P lattices both are the same cell)."""
    from ..formula.lattice import BRAVAIS

    centred = np.array([BRAVAIS[b][1] != "P" for b in arr["bravais"][rows]], bool)
    C = np.concatenate([arr["C"][rows], arr["C_primitive"][rows[centred]]])
    y = np.concatenate([arr["sg"][rows], arr["sg"][rows[centred]]])
    return C.astype(np.float32), y.astype(np.int64)


def fit_cell_member(C: np.ndarray, sg: np.ndarray, *, seed: int, config: dict | None = None,
                    progress: bool = False):
    """Train one ``CellNet`` on features ``C`` (n, 25) and space groups ``sg`` (1..230);
    returns the frozen network (softmax outputs)."""
    import torch

    from ..formula.cellnet import CellNet, derived_inputs, freeze_cell, ple_edges

    from ..formula.cellgeom import CELL_FEATURE_NAMES

    cfg = {**CELL_CONFIG, **(config or {})}
    C, sg = np.asarray(C), np.asarray(sg)
    if C.ndim != 2 or C.shape[1] != len(CELL_FEATURE_NAMES):
        raise ValueError(f"cell features must be (n, {len(CELL_FEATURE_NAMES)}), got {C.shape}")
    if sg.shape != (len(C),) or len(C) < 2:
        raise ValueError(f"need one space group per row and at least 2 rows, got {sg.shape}")
    if sg.min() < 1 or sg.max() > 230:
        raise ValueError("space groups must be 1..230")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    xs = torch.from_numpy(np.ascontiguousarray(C, dtype=np.float32))
    ys = torch.from_numpy(np.asarray(sg, np.int64) - 1)
    with torch.no_grad():
        derived = derived_inputs(xs).numpy()
    bad = ~np.isfinite(derived).all(axis=1)
    if bad.any():  # e.g. a length <= 0, whose log the network reads: the weights would go NaN
        raise ValueError(f"{int(bad.sum())} of {len(C)} rows of cell features are not finite or "
                         "have a length <= 0 (build them with formula.cellgeom.cell_features)")
    edges = ple_edges(derived, cfg["bins"])
    model = CellNet(edges, cfg["embed_dim"], cfg["hidden"], cfg["dropout"])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    batch = cfg["batch"]
    steps = max(1, math.ceil(len(C) / batch)) * cfg["epochs"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps)
    epochs = range(cfg["epochs"])
    for epoch in (tqdm(epochs, desc=f"cell member {seed}", mininterval=30) if progress
                   else epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(C)))
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            loss = torch.nn.functional.cross_entropy(
                model(xs[idx]), ys[idx], label_smoothing=cfg["label_smoothing"])
            if not torch.isfinite(loss):
                raise RuntimeError(f"cell member {seed}: the loss is not finite in epoch {epoch + 1}; "
                                   "the training diverged (try a lower learning rate)")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return freeze_cell(model)


def topk(proba: np.ndarray, sg: np.ndarray) -> dict:
    """Top-1 and top-3 accuracy of (n, 230) probabilities of space groups 1..230."""
    r = np.argsort(-proba, axis=1)
    return {"top1": float(np.mean(r[:, 0] + 1 == sg)),
            "top3": float(np.mean((r[:, :3] + 1 == sg[:, None]).any(axis=1)))}


def forest_scores(C_fit, y_fit, tests: dict, *, trees: int = 30, seed: int = 0) -> dict:
    """Top-1/top-3 of a scikit-learn random forest (``trees`` trees) fitted on the same rows and
    features, on each ``tests[name] = (features, space groups)``."""
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=trees, n_jobs=1, random_state=seed)
    rf.fit(C_fit, y_fit)
    out = {}
    for name, (X, y) in tests.items():
        p = np.zeros((len(X), 230))
        p[:, rf.classes_ - 1] = rf.predict_proba(X)
        out[name] = topk(p, y)
    return out


def validate(cache: Path, split: str, *, config: dict | None = None, threads: int = 1,
             forest: bool = True) -> dict:
    """Proxy experiment: fit on the training rows minus a validation slice
    (``validation_split``), score on that slice (conventional and primitive cells); with
    ``forest`` also a 30-tree random forest on the same rows. Writes nothing."""
    import torch

    from ..formula.cellnet import CellEnsemble

    cfg = {**CELL_CONFIG, **(config or {})}
    torch.set_num_threads(threads)
    arr = dataset_arrays(Path(cache))
    train, _test = split_indices([{"mp_id": int(i)} for i in arr["mp_id"]], split)
    fit, val = validation_split(arr, train, split)
    C_fit, y_fit = fit_rows(arr, fit)
    vals = {"conventional": (arr["C"][val], arr["sg"][val]),
            "primitive": (arr["C_primitive"][val], arr["sg"][val])}
    t = time.time()
    ens = CellEnsemble([fit_cell_member(C_fit, y_fit, seed=400 + m, config=cfg)
                        for m in tqdm(range(cfg["members"]), desc=f"[{split}] validation")])
    out = {"split": split, "config": cfg, "time_s": round(time.time() - t, 1),
           "validation": {k: topk(_predict(ens, X), y) for k, (X, y) in vals.items()}}
    if forest:
        out["random_forest"] = forest_scores(C_fit, y_fit, vals)
    return out


def _predict(ens, C: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return ens(torch.from_numpy(np.ascontiguousarray(C, dtype=np.float32))).mean(0).numpy()


def train_cell(cache: Path, split: str, out_dir: Path, *, config: dict | None = None,
               threads: int = 1, forest: bool = True) -> dict:
    """Train the cell ensemble on the ``split`` training rows, score it (and a random forest)
    on the test rows, write ``cell.pt`` + ``cell.json`` to ``out_dir``; returns the card."""
    import torch

    from .._version import __version__
    from ..formula.cellgeom import CELL_FEATURE_NAMES
    from ..formula.cellnet import CellEnsemble
    from ..models import save_torchscript

    cfg = {**CELL_CONFIG, **(config or {})}
    torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    arr = dataset_arrays(Path(cache))
    train, test = split_indices([{"mp_id": int(i)} for i in arr["mp_id"]], split)
    C_fit, y_fit = fit_rows(arr, train)
    t = time.time()
    ens = CellEnsemble([fit_cell_member(C_fit, y_fit, seed=400 + m, config=cfg, progress=True)
                        for m in tqdm(range(cfg["members"]), desc=f"[{split}] cell ensemble")])
    train_s = time.time() - t
    tests = {"conventional": (arr["C"][test], arr["sg"][test]),
             "primitive": (arr["C_primitive"][test], arr["sg"][test])}
    metrics = {name: topk(_predict(ens, X), y) for name, (X, y) in tests.items()}
    card = {
        "cryspext_version": __version__,
        "kind": "cell",
        "split": split,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "n_fit_rows": int(len(C_fit)),
        "training_data": "shared/data/mp (Materials Project, CC-BY 4.0): lowest-e_hull "
        "polymorph per reduced formula; built by python -m cryspext.training.formula data",
        "training_data_sha256_16": str(arr["digest"]),
        "classes": list(range(1, 231)),
        "members": cfg["members"],
        "inputs": list(CELL_FEATURE_NAMES),
        "network": "cellnet.CellNet: derived inputs (log a, log b, log c, log c/b, "
        "log V^(1/3)/a, log V^(1/3)/c) + the 11 continuous features, each piecewise-linearly "
        "encoded on quantile bins and embedded (Linear+ReLU), concatenated with the 14 lattice "
        "one-hot columns, then an MLP (BatchNorm folded, float16 weights)",
        "hidden": cfg["hidden"],
        "config": cfg,
        "loss": f"cross-entropy with label smoothing {cfg['label_smoothing']}",
        "canonicalisation": "ASE get_bravais_lattice(eps=2e-3) + Niggli reduction",
        "training_cells": "spglib conventional standard cell (symprec 0.1 Å) and, for "
        "centred lattices, the primitive cell of the same lattice",
        "output": "(members, n, 230) probabilities of space groups 1..230",
        "test_metrics": metrics,
        "training_time_s": round(train_s, 1),
        "threads": threads,
    }
    if forest:
        t = time.time()
        card["random_forest_30_trees_test_metrics"] = forest_scores(C_fit, y_fit, tests)
        card["random_forest_s"] = round(time.time() - t, 1)
    save_torchscript(ens, out_dir / "cell.pt", card)
    return card


def random_unimodular(rng: np.random.Generator) -> np.ndarray:
    """A random integer 3×3 matrix with entries −2..2 and determinant ±1 (a change of basis of
    the same lattice)."""
    while True:
        m = rng.integers(-2, 3, size=(3, 3))
        if round(abs(np.linalg.det(m))) == 1:
            return m


def setting_check(cache: Path, split: str, model_dir: Path, *, n_cells: int = 400,
                  n_bases: int = 3, seed: int = 0) -> dict:
    """Setting invariance of a trained cell model: ``n_cells`` conventional test cells, each
    rewritten in ``n_bases`` random bases of the same lattice; the fraction of rewritten cells
    whose top-1 space group equals that of the conventional cell (1.0 = invariant)."""
    from ase.cell import Cell

    from ..formula.cellgeom import cell_features
    from ..models import load_torchscript

    model = load_torchscript(Path(model_dir) / "cell.pt")
    arr = dataset_arrays(Path(cache))
    _train, test = split_indices([{"mp_id": int(i)} for i in arr["mp_id"]], split)
    rng = np.random.default_rng(seed)
    rows = rng.choice(test, size=min(n_cells, len(test)), replace=False)
    conv = np.stack([cell_features(arr["conventional"][i]) for i in rows])
    other = np.stack([
        cell_features(Cell(random_unimodular(rng) @ np.array(Cell.fromcellpar(arr["conventional"][i])))
                      .cellpar())
        for i in rows for _ in range(n_bases)])
    top_conv = np.repeat(_predict(model, conv).argmax(1), n_bases)
    top_other = _predict(model, other).argmax(1)
    return {"split": split, "cells": int(len(rows)), "rewritten": int(len(other)),
            "same_top1": float(np.mean(top_conv == top_other))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cryspext.training.cell", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["train", "validate", "check"],
                    help="train: fit on the training rows, score on the test rows, write the "
                    "model; validate: proxy experiment on a validation slice of the training "
                    "rows (for choosing settings; writes nothing); check: setting invariance "
                    "of the trained model in --out (test cells rewritten in random bases)")
    ap.add_argument("--split", choices=["random", "future"], default="random",
                    help="random 90/10 or future (test = highest MP ids); default random")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help="folder with the formula data set (arrays.npz / dataset.json.gz)")
    ap.add_argument("--out", type=Path, default=None,
                    help="model folder (default: the package for 'random', cache/<split> else)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--members", type=int, default=None, help="ensemble size (default "
                    f"{CELL_CONFIG['members']})")
    ap.add_argument("--epochs", type=int, default=None,
                    help=f"epochs per member (default {CELL_CONFIG['epochs']})")
    ap.add_argument("--no-forest", action="store_true", help="skip the random-forest reference")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a setting of CELL_CONFIG, e.g. --set hidden=[512,256] "
                    "--set bins=96 (repeatable)")
    args = ap.parse_args(argv)
    cfg = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in CELL_CONFIG:
            ap.error(f"unknown setting {key!r}; known: {', '.join(CELL_CONFIG)}")
        try:
            cfg[key] = json.loads(value)
        except json.JSONDecodeError:
            ap.error(f"--set {item!r}: the value must be JSON (e.g. 20, 0.1, [512,256])")
    cfg.update({k: v for k, v in (("members", args.members), ("epochs", args.epochs)) if v})
    if args.step == "validate":
        print(json.dumps(validate(args.cache, args.split, config=cfg, threads=args.threads,
                                  forest=not args.no_forest)))
        return 0
    out = args.out or (MODEL_DIR if args.split == "random" else args.cache / args.split)
    if args.step == "check":
        print(json.dumps(setting_check(args.cache, args.split, Path(out))))
        return 0
    card = train_cell(args.cache, args.split, Path(out), config=cfg, threads=args.threads,
                      forest=not args.no_forest)
    summary = {k: card[k] for k in ("split", "test_metrics", "training_time_s", "members")}
    if "random_forest_30_trees_test_metrics" in card:
        summary["random_forest"] = card["random_forest_30_trees_test_metrics"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
