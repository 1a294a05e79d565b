"""Should the formula *networks* learn COD's formula -> space-group labels too? (issue 7)

Since session 17 the Bravais and space-group trees learn the COD compositions in no Materials
Project (MP) entry (``training.cod``); the networks, 30 % of the Bravais mix and 50 % of the
space-group mix, never saw them. Retraining the networks from scratch costs hours, so this tests
the cheap route: ``python -m cryspext.training.formula tune``, a few more epochs of each trained
member (``training.formula.TUNE_EPOCHS`` = 3, one-cycle up to ``TUNE_LR`` = 1e-3, fixed before
this run) on the MP training rows plus the COD training half, whose rows add no lattice term.

Everything is fitted without the rows it is scored on. Per split (both are run):

* ``untuned``: the validation networks (``cache/formula/validation_fu_S``, fitted on the fit rows
  of ``training.formula.validation_split``);
* ``tuned, MP + COD``: those networks tuned on the fit rows plus the COD training half
  (``tune --validate --model cache/formula/validation_fu_S --out cache/formula/valtune_cod_S``);
* ``tuned, MP only``: the same schedule on the fit rows alone (``... --no-cod --out
  cache/formula/valtune_mp_S``), to tell the COD rows' effect from the extra epochs';

each alone and mixed as shipped (Bravais weight ``BRAVAIS_BLEND_WEIGHT``, space groups
``BLEND_WEIGHT``) with the validation trees whose classifiers learned the COD training half
(``cache/formula/valtrees_cod_S``). Scored on the MP validation slice (Bravais top-1 / top-2,
space group top-1 given the true lattice, the networks' mean lattice R² over the 37 free
parameters) and on the COD held-out half (chemical systems no COD training row has; Bravais
top-1 / top-2).

Rule, fixed before the first run: ship ``tuned, MP + COD`` (tune the shipped ensembles of both
splits with the same command) only if on *both* splits, against ``untuned``,
  1. the mix's Bravais top-1 on the COD held-out half rises by at least 1.0 point,
  2. the mix's Bravais top-1 on the MP slice falls by at most 0.3 point (session 17's bound for
     the COD trees),
  3. the mix's space-group top-1 given the true lattice on the MP slice falls by at most 0.3
     point, and
  4. the networks' mean lattice R² on the MP slice falls by at most 0.005.

    python benchmarks/cod_network_validation.py [--split random,future]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

VARIANTS = {"untuned": "validation_fu_{}", "tuned, MP + COD": "valtune_cod_{}",
            "tuned, MP only": "valtune_mp_{}"}


def scores(nets, n_net: int, trees, arr, val, X, X_cod, B_cod) -> dict:
    """The figures of one network ensemble (see the module docstring), in % and R²; ``nets``
    read the first ``n_net`` columns of the tree inputs ``X``, ``X_cod``."""
    import torch

    from cryspext.formula.lattice import BRAVAIS, FREE_PARAMETERS, PARAMETER_NAMES, spacegroups_of_bravais
    from cryspext.formula.predict import mix_parts
    from cryspext.training.formula import r2_score
    from cryspext.training.formula_trees import BLEND_WEIGHT, BRAVAIS_BLEND_WEIGHT
    from formula_blend_validation import bravais_top12

    B, SG, P = arr["bravais"][val], arr["sg"][val], arr["params"][val]
    with torch.no_grad():
        raw = nets.raw(X[:, :n_net])
        pb_net = nets.bravais_of(raw).mean(0).numpy()
        pb_tree = trees.bravais(X).numpy()
        raw_cod = nets.raw(X_cod[:, :n_net])
        pc_net = nets.bravais_of(raw_cod).mean(0).numpy()
        pc_tree = trees.bravais(X_cod).numpy()
    out = {"MP slice, networks: Bravais top-1/top-2": bravais_top12(pb_net, B),
           "MP slice, mix: Bravais top-1/top-2": bravais_top12(
               mix_parts(pb_net, pb_tree, BRAVAIS_BLEND_WEIGHT), B),
           "COD held-out, networks: Bravais top-1/top-2": bravais_top12(pc_net, B_cod),
           "COD held-out, mix: Bravais top-1/top-2": bravais_top12(
               mix_parts(pc_net, pc_tree, BRAVAIS_BLEND_WEIGHT), B_cod)}
    hits_net = hits_mix = 0
    r2 = []
    for k, b in enumerate(BRAVAIS):
        rows = np.nonzero(B == k)[0]
        if not len(rows):
            continue
        groups = np.array(spacegroups_of_bravais(b))
        with torch.no_grad():
            p_net = nets.spacegroup_of(raw[:, rows], k).mean(0).numpy()
            p_tree = trees.spacegroup(X[rows], k).numpy()
            lat = nets.lattice_of(raw[:, rows], k).mean(0).numpy()
        hits_net += int(np.sum(groups[p_net.argmax(1)] == SG[rows]))
        hits_mix += int(np.sum(groups[mix_parts(p_net, p_tree, BLEND_WEIGHT).argmax(1)] == SG[rows]))
        cols = [PARAMETER_NAMES.index(p) for p in FREE_PARAMETERS[b]]
        r2 += [r2_score(P[rows][:, c], lat[:, j]) for j, c in enumerate(cols)]
    out["MP slice, networks: SG top-1 (true BL)"] = round(100 * hits_net / len(val), 2)
    out["MP slice, mix: SG top-1 (true BL)"] = round(100 * hits_mix / len(val), 2)
    out["MP slice, networks: mean lattice R²"] = round(float(np.mean(r2)), 4)
    out["lattice values"] = len(r2)
    return out


def verdict(split_scores: dict) -> dict:
    """The rule of the module docstring, per split and overall."""
    out = {}
    for split, s in split_scores.items():
        u, t = s["untuned"], s["tuned, MP + COD"]
        checks = {
            "COD held-out mix top-1 +1.0": t["COD held-out, mix: Bravais top-1/top-2"][0]
            - u["COD held-out, mix: Bravais top-1/top-2"][0] >= 1.0,
            "MP mix Bravais top-1 -0.3": t["MP slice, mix: Bravais top-1/top-2"][0]
            - u["MP slice, mix: Bravais top-1/top-2"][0] >= -0.3,
            "MP mix SG top-1 -0.3": t["MP slice, mix: SG top-1 (true BL)"]
            - u["MP slice, mix: SG top-1 (true BL)"] >= -0.3,
            "networks lattice R² -0.005": t["MP slice, networks: mean lattice R²"]
            - u["MP slice, networks: mean lattice R²"] >= -0.005}
        out[split] = checks
    out["adopt"] = all(all(c.values()) for c in out.values())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="random,future", help="comma-separated splits")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                    help="shared/data folder with mp/cod_formula_sg.json.gz")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    a = ap.parse_args(argv)
    import torch

    from cryspext.models import load_torchscript
    from cryspext.training import formula as T
    from cryspext.training.cod import cod_training_rows
    from formula_blend_validation import load_validation_models

    torch.set_num_threads(a.threads)
    cod = cod_training_rows(a.shared, "held_out")
    X_cod = torch.from_numpy(np.ascontiguousarray(cod["X"], dtype=np.float32))
    results = {}
    for split in a.split.split(","):
        v = load_validation_models(split, trees_dir=T.DEFAULT_CACHE / f"valtrees_cod_{split}")
        results[split] = {}
        for name, folder in VARIANTS.items():
            d = T.DEFAULT_CACHE / folder.format(split)
            card = json.loads((d / "formula.json").read_text())
            if card.get("split") != split or "validation_run" not in card:
                sys.exit(f"{d} is not a validation run of split {split}")
            nets = load_torchscript(d / "formula.pt")
            results[split][name] = scores(nets, len(card["inputs"]), v["trees"], v["arr"], v["val"], v["X"], X_cod,
                                          cod["bravais"])
            print(split, name, json.dumps(results[split][name]), file=sys.stderr, flush=True)
    out = {"n_cod_held_out": int(len(cod["sg"])), "scores": results}
    if {"random", "future"} <= set(results):
        out["verdict"] = verdict(results)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
