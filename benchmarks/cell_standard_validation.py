"""Should ``predict_cell`` offer a standard-setting mode? (issue 7, cell geometry)

A cell written in the conventional standard setting of its space group carries the setting
convention, which the seed-001 random forest on the raw parameters uses and cryspext's canonical
features throw away (``formula.cellsetting``). This scores, on a split's validation slice of the
*training* rows (the test rows are never read), the canonical cell model (networks and trees
fitted without the slice: ``cell_blend_validation.fit_validation_cell_models``, mixed with
``CELL_BLEND_WEIGHT``), the standard-setting trees fitted without the slice
(``python -m cryspext.training.formula_trees --split S --standard-cell --validate --out
cache/formula/valstd_S``), and the two mixed, (1 − w) · canonical + w · standard, for w in
``WEIGHTS``; on the slice's conventional cells, and for the caveat on the same cells
Niggli-reduced.

Rule, fixed before the first run: ``setting="standard"`` is offered (opt-in; the default stays
setting-independent) with the w of the highest mean top-1 over both slices' conventional cells,
only if that w gains at least 0.5 point of top-1 over the canonical model on *both* slices.

    python benchmarks/cell_standard_validation.py [--members 3]
    # or one split per process, then the verdict from their outputs:
    python benchmarks/cell_standard_validation.py --split random > r.json
    python benchmarks/cell_standard_validation.py --split future > f.json
    python benchmarks/cell_standard_validation.py --merge r.json f.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

WEIGHTS = [0.3, 0.5, 0.7, 1.0]
MIN_GAIN = 0.5


def top13(p: np.ndarray, y: np.ndarray) -> list[float]:
    """[top-1, top-3] in % of (n, 230) scores against space groups ``y`` (1..230)."""
    r = np.argsort(-p, axis=1)[:, :3] + 1
    return [round(100 * float(np.mean(r[:, 0] == y)), 2),
            round(100 * float(np.mean((r == y[:, None]).any(axis=1))), 2)]


def verdict(out: dict) -> dict:
    """The rule of the module docstring on the scores of both splits ({} without both)."""
    if not {"random", "future"} <= set(out):
        return {}

    def gain(w, s):
        key = "standard trees alone, conventional cells" if w == 1.0 else f"mix w={w}, conventional cells"
        return out[s][key][0] - out[s]["canonical model"][0]

    best = max(WEIGHTS, key=lambda w: np.mean([gain(w, s) for s in ("random", "future")]))
    return {"verdict": {"best_weight": best,
                        "gain_top1": {s: round(gain(best, s), 2) for s in ("random", "future")},
                        "offer_standard_setting": bool(min(gain(best, s) for s in ("random", "future"))
                                                       >= MIN_GAIN)}}


def main(argv=None) -> int:
    import torch

    from cell_blend_validation import fit_validation_cell_models, validation_cell_parts
    from cryspext.formula.cellsetting import standard_setting_features
    from cryspext.formula.predict import mix_parts
    from cryspext.models import load_torchscript
    from cryspext.training import formula as T
    from cryspext.training.formula_trees import CELL_BLEND_WEIGHT

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=3, help="validation cell networks (default 3)")
    ap.add_argument("--split", default="random,future", help="comma-separated splits")
    ap.add_argument("--merge", nargs="+", type=Path, default=None, metavar="JSON",
                    help="only give the verdict from the outputs of earlier runs (one split each)")
    a = ap.parse_args(argv)
    if a.merge:
        out = {}
        for path in a.merge:
            out.update({k: v for k, v in json.loads(path.read_text()).items() if k in ("random", "future")})
        out.update(verdict(out))
        print(json.dumps(out, indent=1))
        return 0
    torch.set_num_threads(1)
    t0 = time.time()
    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    out = {}
    for split in a.split.split(","):
        fit, val = T.validation_split(arr, T._split(arr, split)[0], split)
        folder = T.DEFAULT_CACHE / f"valstd_{split}"
        card = json.loads((folder / "cell_standard_trees.json").read_text())
        if card.get("split") != split or "validation_run" not in card:
            sys.exit(f"{folder} is not a validation run of split {split}")
        std = load_torchscript(folder / "cell_standard_trees.pt")
        models = fit_validation_cell_models(arr, fit, a.members)
        canonical = mix_parts(*validation_cell_parts(models, arr["C"][val]), CELL_BLEND_WEIGHT)
        y = arr["sg"][val]
        res = {"canonical model": top13(canonical, y)}
        for setting in ("conventional", "niggli"):
            with torch.no_grad():
                p_std = std.probabilities(torch.from_numpy(standard_setting_features(arr[setting][val])), 0).numpy()
            res[f"standard trees alone, {setting} cells"] = top13(p_std, y)
            for w in WEIGHTS[:-1]:
                res[f"mix w={w}, {setting} cells"] = top13((1 - w) * canonical + w * p_std, y)
        out[split] = res
        print(split, json.dumps(res), file=sys.stderr, flush=True)
    out.update(verdict(out))
    out["elapsed_s"] = round(time.time() - t0)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
