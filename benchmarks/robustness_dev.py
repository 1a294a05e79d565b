"""Development-set comparison of ARISE networks and descriptor views (how the shipped model was chosen).

Same protocol as ``robustness.py`` (uniform displacements δ·d_NN, missing atoms η, all three
supercell sizes, periodic and finite) at the four levels with published ARISE figures, but with
the development seed 777 instead of the benchmark's 2021, so that choices made here never see the
benchmark's structures. Every model given is scored with one view (the central descriptor
setting) and with the views of ``cryspext.training.arise.INFERENCE_VIEWS``; the table counts
errors (T = ``--mc-samples`` passes, seeded by realisation, as in the benchmark).

    python benchmarks/robustness_dev.py python/cryspext/models/arise/arise.pt OTHER.pt ...
    # the previous shipped network: git show b0733f4:python/cryspext/models/arise/arise.pt (+ .json)

Each model file needs its JSON card next to it (``<name>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DEV_SEED = 777
# (family, δ, η, realisations): 10 realisations where errors are rare (η), 6 at δ.
LEVELS = (("delta", 0.07, 0.0, 6), ("delta", 0.10, 0.0, 6), ("eta", 0.0, 0.25, 10), ("eta", 0.0, 0.30, 10))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="TorchScript ARISE model files (.pt with a .json card beside)")
    ap.add_argument("--mc-samples", type=int, default=100, help="MC-dropout passes T (default 100, as RESULTS uses)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--markdown", default=None, help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from robustness import build_cases

    from cryspext.arise.defects import make_defective
    from cryspext.arise.model import AriseModel
    from cryspext.models import load_torchscript
    from cryspext.training.arise import INFERENCE_VIEWS

    torch.set_num_threads(args.threads)
    view_sets = {"1": [{}], str(len(INFERENCE_VIEWS)): [dict(v) for v in INFERENCE_VIEWS]}
    models = {}
    for path in map(Path, args.models):
        card = json.loads(path.with_suffix(".json").read_text())
        module = load_torchscript(path)
        for name, views in view_sets.items():
            models[(str(path), name)] = AriseModel(module, {**card, "inference": {"descriptor_views": views}})
    describer = models[(str(args.models[0]), str(len(INFERENCE_VIEWS)))]  # all views; the central one first
    cases = build_cases([0, 1, 2])
    y = np.array([c.label for c in cases])
    errors = {key: {} for key in models}
    t0 = time.perf_counter()
    for family, delta, eta, reals in LEVELS:
        level = f"{family} {delta:g}/{eta:g}"
        for key in models:
            errors[key][level] = 0
        for r in range(reals):
            structs = [make_defective(c.structure, delta=delta, eta=eta, d_nn=c.d_nn,
                                      seed=np.random.default_rng([DEV_SEED, int(round(delta * 1e4)), int(round(eta * 1e4)), r, i]))
                       for i, c in enumerate(cases)]
            x = describer.describe(structs, progress=False)  # (n, views, 316), computed once for all models
            for (path, name), model in models.items():
                pred = model.predict(x[:, : len(model.descriptor_views)], mc_samples=args.mc_samples, seed=r)
                errors[(path, name)][level] += int(np.sum(pred.label_indices != y))
        print(f"{level}: {reals} realisations, {time.perf_counter() - t0:.0f} s", flush=True)

    levels = list(next(iter(errors.values())))
    n = {f"{f} {d:g}/{e:g}": reals * len(cases) for f, d, e, reals in LEVELS}
    lines = [f"Produced by `python benchmarks/robustness_dev.py {' '.join(argv if argv is not None else sys.argv[1:])}` "
             f"(development seed {DEV_SEED}, T = {args.mc_samples}); errors out of "
             + ", ".join(f"{n[k]} ({k})" for k in levels) + ".", "",
             "| model | views | " + " | ".join(levels) + " |", "|---|---|" + "---|" * len(levels)]
    for (path, name), errs in errors.items():
        lines.append(f"| `{path}` | {name} | " + " | ".join(str(errs[k]) for k in levels) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    print(json.dumps({"benchmark": "robustness_dev", "errors": {f"{p} views={v}": e for (p, v), e in errors.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
