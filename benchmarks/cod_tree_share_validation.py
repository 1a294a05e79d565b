"""Would averaging the COD-refit Bravais trees with the Materials-Project-only ones help? (issue 7)

Since session 17 the Bravais trees learn COD's labels; on the future split's test rows that cost
Bravais top-1 (36.5 → 35.0 %), although its validation slice had promised a gain. This scores, on
the validation slices only, the shipped Bravais mix with its trees replaced by
(1 − u) · COD-refit trees + u · MP-only trees, u in ``SHARES``: validation networks
(``cache/formula/validation_fu_S``), validation trees fitted without the slice, with COD
(``valtrees_cod_S``) and without (``valtrees_S``), Bravais weight ``BRAVAIS_BLEND_WEIGHT``.

Rule, fixed before the first run: adopt the u with the largest mean gain of top-1 + top-2 over
u = 0 only if on *both* slices that gain is at least 0.2 point, and the mix's Bravais top-1 on
the COD held-out half (``training.cod``, chemical systems no training row has) falls by at most
2.0 points on the random split (the shipped models').

    python benchmarks/cod_tree_share_validation.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

SHARES = [0.0, 0.25, 0.5]


def main() -> int:
    import torch

    from cryspext.formula.predict import mix_parts
    from cryspext.models import load_torchscript
    from cryspext.training import formula as T
    from cryspext.training.cod import cod_training_rows
    from cryspext.training.formula_trees import BRAVAIS_BLEND_WEIGHT
    from formula_blend_validation import bravais_top12, load_validation_models

    torch.set_num_threads(2)
    cod = cod_training_rows(REPO.parent / "shared" / "data", "held_out")
    X_cod = torch.from_numpy(np.ascontiguousarray(cod["X"], dtype=np.float32))
    out = {}
    for split in ("random", "future"):
        v = load_validation_models(split, trees_dir=T.DEFAULT_CACHE / f"valtrees_cod_{split}")
        mp_trees = load_torchscript(T.DEFAULT_CACHE / f"valtrees_{split}" / "formula_trees.pt")
        n_net, B = len(v["nets_card"]["inputs"]), v["arr"]["bravais"][v["val"]]
        with torch.no_grad():
            net = v["nets"].bravais(v["X"][:, :n_net]).mean(0).numpy()
            t_cod, t_mp = v["trees"].bravais(v["X"]).numpy(), mp_trees.bravais(v["X"]).numpy()
            net_c = v["nets"].bravais(X_cod[:, :n_net]).mean(0).numpy()
            c_cod, c_mp = v["trees"].bravais(X_cod).numpy(), mp_trees.bravais(X_cod).numpy()
        out[split] = {}
        for u in SHARES:
            mp = bravais_top12(mix_parts(net, (1 - u) * t_cod + u * t_mp, BRAVAIS_BLEND_WEIGHT), B)
            oc = bravais_top12(mix_parts(net_c, (1 - u) * c_cod + u * c_mp, BRAVAIS_BLEND_WEIGHT),
                               cod["bravais"])
            out[split][str(u)] = {"MP slice top-1/top-2": mp, "COD held-out top-1/top-2": oc}
    gain = {u: [out[s][str(u)]["MP slice top-1/top-2"][0] + out[s][str(u)]["MP slice top-1/top-2"][1]
                - out[s]["0.0"]["MP slice top-1/top-2"][0] - out[s]["0.0"]["MP slice top-1/top-2"][1]
                for s in ("random", "future")] for u in SHARES[1:]}
    best = max(gain, key=lambda u: np.mean(gain[u]))
    cod_drop = (out["random"]["0.0"]["COD held-out top-1/top-2"][0]
                - out["random"][str(best)]["COD held-out top-1/top-2"][0])
    out["verdict"] = {"best_share": best, "gain_top1_plus_top2": dict(zip(("random", "future"), gain[best])),
                      "random_cod_held_out_top1_drop": round(cod_drop, 2),
                      "adopt": bool(min(gain[best]) >= 0.2 and cod_drop <= 2.0)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
