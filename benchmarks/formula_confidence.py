"""How far to trust the formula model's confidence: its probabilities and its spreads.

On the test formulas of each split (the models of ``benchmarks/formula.py``: the shipped ones
for ``random``, ``cache/formula/future`` for ``future``) it measures, without fitting anything
of cryspext's:

* **Bravais probabilities** (cryspext's mix, its networks and trees alone, and the benchmark's
  random forest, 100 trees, the same inputs): top-1 accuracy next to the mean top-1
  probability, expected calibration error (ECE: 15 equal-width bins of the top-1 probability,
  |accuracy − mean probability| weighted by the bins' shares), negative log-likelihood of the
  true lattice (nats, probabilities floored at 1e-6) and the multi-class Brier score; a
  reliability table of cryspext's top-1 probability (cryspext: tempered with the card's
  ``bravais_temperature``, fitted on that split's validation slice; the untempered mix on its
  own row); and how well a wrong top-1 lattice is told from a right one (AUROC) by the top-1
  probability and by the ``spread`` that ``predict_formula`` reports (std of that lattice's
  probability over the network members).
* **Lattice-parameter spreads** (``predict_formula``'s ``std``, over the network members, and
  its ``uncertainty`` σ, calibrated on the validation slices by ``formula.confidence``) against
  the error of the predicted value (the mix of networks and trees), given the true lattice:
  the share of test values with |error| ≤ 1 and ≤ 2 spreads (0.68 and 0.95 for a calibrated
  Gaussian), the median |error| / spread, and the Spearman correlation of spread and |error|
  (is a larger spread a larger error?), for the lengths and the free angles apart.
* **Training coverage** (``predict_formula``'s ``training_coverage`` flag, from the card): how
  many test formulas it calls an extrapolation (an element in fewer than
  ``FEW_TRAINING_FORMULAS`` training formulas, or a larger formula unit than any trained on),
  and the Bravais top-1 of cryspext and of the forest on the formulas inside and outside.
  Materials Project test formulas are almost never flagged, so the same is measured on the
  compounds of the Crystallography Open Database table (``shared/data/mp/cod_formula_sg.json.gz``,
  ``--shared``) whose composition is in no Materials Project entry, each labelled with the
  Bravais lattice of its most frequent COD space group (``training.cod``). Only the held-out
  half is scored: chemical systems no COD row of the classifiers' training half has. Where the
  trees' card says they were fitted with COD's training half, the forest is too, and a forest
  on the Materials Project rows alone is scored next to it.

    python benchmarks/formula_confidence.py [--splits random future] [--png reliability.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from cryspext.formula.lattice import ANGLES, BRAVAIS, PARAMETER_NAMES, spacegroups_of_bravais  # noqa: E402
from cryspext.formula.parse import as_composition  # noqa: E402
from cryspext.formula.predict import FEW_TRAINING_FORMULAS, FormulaModels, training_coverage  # noqa: E402
from cryspext.formula.vegard import is_fractional  # noqa: E402
from cryspext.training.cod import COD_FILE, MP_FILE, cod_halves  # noqa: E402
from cryspext.training.formula import split_indices  # noqa: E402
from cryspext.training.formula_confidence import nll  # noqa: E402
from cryspext.training.formula_trees import tree_inputs  # noqa: E402

NETS, TREES, FOREST = "cryspext networks only", "cryspext trees only", "random forest"
FOREST_MP = "random forest, Materials Project rows only"
RELIABILITY_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)


def top1_bins(p: np.ndarray, y: np.ndarray, bins: int = 15):
    """(top-1 probability, top-1 hit, bin index of ``bins`` equal-width bins) per row."""
    top = p.max(axis=1)
    return top, p.argmax(axis=1) == y, np.minimum((top * bins).astype(int), bins - 1)


def calibration(p: np.ndarray, y: np.ndarray, bins: int = 15) -> dict:
    """Top-1 accuracy and mean probability, ECE over ``bins`` equal-width bins of the top-1
    probability, NLL (nats) and Brier score of (n, classes) probabilities ``p`` for labels y."""
    p = np.asarray(p, float)
    top, hit, which = top1_bins(p, y, bins)
    ece = sum(abs(hit[which == k].mean() - top[which == k].mean()) * np.mean(which == k)
              for k in range(bins) if np.any(which == k))
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return {"top1": float(hit.mean()), "mean_top1_probability": float(top.mean()),
            "ece": float(ece), "nll": nll(p, y, floor=1e-6),
            "brier": float(((p - onehot) ** 2).sum(axis=1).mean())}


def reliability(p: np.ndarray, y: np.ndarray) -> list[dict]:
    """Per bin of the top-1 probability (``RELIABILITY_EDGES``): share of rows, accuracy and
    mean top-1 probability."""
    top, hit = p.max(axis=1), p.argmax(axis=1) == y
    out = []
    for lo, hi in zip(RELIABILITY_EDGES[:-1], RELIABILITY_EDGES[1:]):
        sel = (top >= lo) & ((top < hi) if hi < 1 else (top <= hi))
        out.append({"bin": f"{lo:.1f}–{hi:.1f}", "share": float(sel.mean()),
                    "top1": float(hit[sel].mean()) if sel.any() else float("nan"),
                    "mean_probability": float(top[sel].mean()) if sel.any() else float("nan")})
    return out


def reliability_curve(p: np.ndarray, y: np.ndarray, bins: int = 15) -> dict:
    """Mean top-1 probability and top-1 accuracy in ``bins`` equal-width bins (those with at
    least 20 rows: an accuracy of fewer is mostly noise), for a reliability diagram."""
    top, hit, which = top1_bins(p, y, bins)
    keep = [k for k in range(bins) if np.sum(which == k) >= 20]
    return {"mean_probability": [float(top[which == k].mean()) for k in keep],
            "top1": [float(hit[which == k].mean()) for k in keep],
            "share": [float(np.mean(which == k)) for k in keep]}


def plot_reliability(results: list[dict], path: Path) -> None:
    """Reliability diagrams of the Bravais top-1 probability, one panel per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4), squeeze=False)
    for ax, r in zip(axes[0], results):
        ax.plot([0, 1], [0, 1], color="0.7", lw=1, label="calibrated")
        for m, style in (("cryspext", "o-"), ("cryspext before tempering", "s--"), (FOREST, "^:")):
            c = r["reliability_curve"][m]
            ax.plot(c["mean_probability"], c["top1"], style, ms=4, label=m)
        ax.set(xlabel="top-1 probability", ylabel="top-1 accuracy", xlim=(0, 1), ylim=(0, 1),
               title=f"Bravais lattice, {r['split']} split")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def error_detection(score_right: np.ndarray, hit: np.ndarray) -> float:
    """AUROC of ``score_right`` (higher = more likely right) for telling right from wrong."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(hit, score_right)) if 0 < hit.mean() < 1 else float("nan")


def std_check(err: np.ndarray, std: np.ndarray) -> dict:
    """|error| against the reported std: shares within 1 and 2 std, median |error| / std
    (std floored at 1e-9) and the Spearman correlation of std and |error|."""
    from scipy.stats import spearmanr

    err, std = np.abs(err), np.asarray(std, float)
    return {"n": int(len(err)), "within_1_std": float(np.mean(err <= std)),
            "within_2_std": float(np.mean(err <= 2 * std)),
            "median_error_over_std": float(np.median(err / np.maximum(std, 1e-9))),
            "median_abs_error": float(np.median(err)), "median_std": float(np.median(std)),
            "spearman_std_error": float(spearmanr(std, err)[0]) if len(err) > 2 else float("nan")}


def spacegroup_forests(X: np.ndarray, bravais: np.ndarray, sg: np.ndarray, trees: int,
                       threads: int) -> dict:
    """{lattice index: space-group forest, or the one group seen} fitted on rows ``X`` with
    labels ``bravais`` (index into ``BRAVAIS``) and ``sg`` (1..230), as ``benchmarks/formula.py``
    fits its per-lattice forests."""
    from sklearn.ensemble import RandomForestClassifier

    per_lattice = {}
    for k in np.unique(bravais):
        rows = bravais == k
        if len(np.unique(sg[rows])) > 1:
            per_lattice[int(k)] = RandomForestClassifier(n_estimators=trees, n_jobs=threads,
                                                         random_state=0).fit(X[rows], sg[rows])
        else:
            per_lattice[int(k)] = int(sg[rows][0])
    return per_lattice


def forest_proba(model, X: np.ndarray, classes) -> np.ndarray:
    """(n, len(classes)) probabilities of a fitted forest (or of the one class it stands for)
    over ``classes``."""
    p = np.zeros((len(X), len(classes)))
    index = {c: j for j, c in enumerate(classes)}
    if isinstance(model, int):
        p[:, index[model]] = 1.0
        return p
    p[:, [index[c] for c in model.classes_]] = model.predict_proba(X)
    return p


def evaluate_cod(models, forests: dict, n_forest_inputs: int, cod: dict) -> dict:
    """Bravais top-1 / top-2 and space-group top-1 (end to end: the top-1 lattice, then its
    likeliest group) of cryspext and the ``forests`` ({name: (Bravais forest,
    ``spacegroup_forests``)}) on the
    held-out COD rows (``training.cod``: chemical systems no COD training row has): all, those
    with whole and with fractional amounts (solid solutions, doped and non-stoichiometric
    compounds, which the Materials Project training formulas never have), and those outside
    ``predict_formula``'s training coverage."""
    compositions, y, sg = cod["compositions"], cod["bravais"], cod["sg"]
    X = models.features(compositions)
    probs = {"cryspext": models.with_vote(models.calibrated_bravais(models.bravais_proba(X).mean(axis=0),
                                                                    models.tree_output("bravais", X)),
                                          compositions)}
    for name, (rf, _) in forests.items():
        probs[name] = forest_proba(rf, X[:, :n_forest_inputs], range(len(BRAVAIS)))
    predicted_sg = {}
    for m, q in probs.items():
        top = q.argmax(axis=1)
        predicted_sg[m] = np.zeros(len(y), int)
        for k in np.unique(top):
            rows = top == k
            groups = np.array(spacegroups_of_bravais(BRAVAIS[k]))
            if m == "cryspext":
                p = models.spacegroup(X[rows], BRAVAIS[k])[1]
            elif k in forests[m][1]:
                p = forest_proba(forests[m][1][k], X[rows][:, :n_forest_inputs], groups)
            else:  # a lattice without training rows: no group
                continue
            predicted_sg[m][rows] = groups[p.argmax(axis=1)]
    outside = np.array([not training_coverage(models.formula_card, c)["in_training_range"]
                        for c in compositions])
    fractional = np.array([is_fractional(c) for c in compositions])
    groups = {"all": np.ones(len(y), bool), "whole": ~fractional, "fractional": fractional,
              "outside": outside}
    out = {"n": int(len(y)), **{f"n {g}": int(sel.sum()) for g, sel in groups.items()},
           "methods": list(probs)}
    for m, q in probs.items():
        rank = np.argsort(-q, axis=1)
        hits = {f"top{k}": (rank[:, :k] == y[:, None]).any(axis=1) for k in (1, 2)}
        hits["sg top1"] = predicted_sg[m] == sg
        for name, hit in hits.items():
            for g, sel in groups.items():
                out[f"{m} {name} {g}"] = float(hit[sel].mean()) if sel.any() else float("nan")
    return out


def evaluate_split(split: str, arr: dict, model_dir, trees: int, threads: int,
                   cod: dict | None = None) -> dict:
    from sklearn.ensemble import RandomForestClassifier

    from formula_analogues import compositions  # the rows' formulas, for the analogue vote

    train, test = split_indices([{"mp_id": int(i)} for i in arr["mp_id"]], split)
    models = FormulaModels(model_dir)
    X, B, P = arr["X_with_formula_unit"], arr["bravais"], arr["params"]
    n_classifier = max(models.n_network_inputs, (models.trees_card or {}).get("classifier_inputs", 0))
    XC = X if n_classifier > arr["X"].shape[1] else arr["X"]  # the forest reads what cryspext reads
    members = models.bravais_proba(X[test])
    nets = members.mean(axis=0)
    tree_p = models.tree_output("bravais", X[test])
    # cryspext: the probabilities predict_formula gives (tempered, with the analogue vote where
    # the model folder has its table); before tempering: the mix of the two parts alone
    probs = {"cryspext": models.with_vote(models.calibrated_bravais(nets, tree_p), compositions(arr, test)),
             "cryspext before tempering": models.bravais_mix(nets, tree_p), NETS: nets}
    if tree_p is not None:
        probs[TREES] = tree_p
    # The forest is fitted on the rows cryspext's trees were: with their card's COD labels
    # (``training.cod``), on the Materials Project rows plus COD's training half.
    cod_labels = (models.trees_card or {}).get("cod_labels")
    if cod_labels and cod is None:
        raise FileNotFoundError(f"the {split} trees were fitted with COD labels; the forest needs them "
                                "too (--shared)")
    fit_x, fit_y, fit_sg = XC[train], B[train], arr["sg"][train]
    if cod_labels:
        fit_x = np.concatenate([fit_x, cod["train"]["X"][:, : XC.shape[1]]])
        fit_y = np.concatenate([fit_y, cod["train"]["bravais"]])
        fit_sg = np.concatenate([fit_sg, cod["train"]["sg"]])
    rf = RandomForestClassifier(n_estimators=trees, n_jobs=threads, random_state=0).fit(fit_x, fit_y)
    probs[FOREST] = p_rf = forest_proba(rf, XC[test], range(len(BRAVAIS)))
    y = B[test]
    res = {"split": split, "n_test": int(len(test)), "members": int(members.shape[0]),
           "confidence_constants": models.confidence,
           "bravais": {m: calibration(p, y) for m, p in probs.items()},
           "reliability": {m: reliability(probs[m], y) for m in ("cryspext", FOREST)},
           "reliability_curve": {m: reliability_curve(probs[m], y)
                                 for m in ("cryspext", "cryspext before tempering", FOREST)}}
    mix = probs["cryspext"]
    top = mix.argmax(axis=1)
    hit = top == y
    spread = members.std(axis=0)[np.arange(len(test)), top]
    res["error_detection_auroc"] = {
        "cryspext top-1 probability": error_detection(mix.max(axis=1), hit),
        "cryspext spread of the top-1 lattice (smaller = right)": error_detection(-spread, hit),
        "random forest top-1 probability": error_detection(p_rf.max(axis=1), p_rf.argmax(axis=1) == y)}

    covers = [training_coverage(models.formula_card, as_composition(str(f))) for f in arr["formula"][test]]
    if all(c is not None for c in covers):
        outside = np.array([not c["in_training_range"] for c in covers])
        rf_hit = p_rf.argmax(axis=1) == y
        res["training_coverage"] = {
            "outside": int(outside.sum()),
            "outside_for_an_element": int(sum(any(" is in " in r for r in c["reasons"]) for c in covers)),
            "outside_for_the_size": int(sum(any(" atoms " in r for r in c["reasons"]) for c in covers)),
            **{f"{m} top1 {where}": float(h[sel].mean()) if sel.any() else float("nan")
               for m, h in (("cryspext", hit), (FOREST, rf_hit))
               for where, sel in (("inside", ~outside), ("outside", outside))}}
        if cod is not None:
            forests = {FOREST: (rf, spacegroup_forests(fit_x, fit_y, fit_sg, trees, threads))}
            if cod_labels:  # what COD's labels give the forest
                forests[FOREST_MP] = (
                    RandomForestClassifier(n_estimators=trees, n_jobs=threads, random_state=0)
                    .fit(XC[train], B[train]),
                    spacegroup_forests(XC[train], B[train], arr["sg"][train], trees, threads))
            res["cod"] = evaluate_cod(models, forests, XC.shape[1], cod["held_out"])
            res["cod"]["cryspext trees fitted with COD labels"] = bool(cod_labels)

    errors = {"lengths": [], "angles": []}  # (error, members' std, calibrated σ) per parameter
    for k, b in enumerate(BRAVAIS):
        rows = test[y == k]
        if len(rows) < 2:
            continue
        names, lp = models.lattice_parameters(X[rows], b)
        pred = models.lattice_mix(lp.mean(axis=0), models.tree_lattice(X[rows], k), b)
        sigma = models.lattice_uncertainty(names, pred, lp)
        truth = P[rows][:, [PARAMETER_NAMES.index(n) for n in names]]
        for j, n in enumerate(names):
            errors["angles" if n in ANGLES else "lengths"].append(
                (pred[:, j] - truth[:, j], lp.std(axis=0)[:, j], sigma[:, j]))
    res["lattice_std"] = {}
    for kind, v in errors.items():
        err, std, sigma = (np.concatenate(x) for x in zip(*v))
        res["lattice_std"][f"{kind}, members' std"] = std_check(err, std)
        if not np.isnan(sigma).all():
            res["lattice_std"][f"{kind}, uncertainty σ"] = std_check(err, sigma)
    return res


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def markdown(results: list[dict], command: str, elapsed: float, env: str) -> str:
    out = ["# How far to trust the formula model's confidence (issue 7)", "",
           f"Produced by `{command}` ({env}; total {elapsed / 60:.1f} min). Test formulas of each "
           "split, the models `benchmarks/formula.py` reads (the shipped ones for `random`, "
           "`cache/formula/future` for `future`); nothing of cryspext is fitted here. The forest "
           "is that benchmark's Bravais forest (100 trees, the same inputs).", ""]
    for r in results:
        out += [f"## Split `{r['split']}` ({r['n_test']} test formulas, {r['members']} network members)", "",
                "Bravais probabilities:", "",
                "| method | top-1 | mean top-1 probability | ECE | NLL (nats) | Brier |",
                "|---|---|---|---|---|---|"]
        for m, c in r["bravais"].items():
            out.append(f"| {m} | {pct(c['top1'])} | {pct(c['mean_top1_probability'])} | "
                       f"{c['ece']:.3f} | {c['nll']:.3f} | {c['brier']:.3f} |")
        out += ["", "Reliability of the top-1 probability (share of test formulas / top-1 accuracy / "
                "mean top-1 probability in each bin):", "",
                "| top-1 probability | " + " | ".join(r["reliability"]) + " |", "|---|" + "---|" * len(r["reliability"])]
        for i, row in enumerate(r["reliability"]["cryspext"]):
            cells = [r["reliability"][m][i] for m in r["reliability"]]
            out.append(f"| {row['bin']} | " + " | ".join(
                f"{pct(c['share'])} / {pct(c['top1'])} / {pct(c['mean_probability'])}" for c in cells) + " |")
        out += ["", "Telling a wrong top-1 lattice from a right one (AUROC; 0.5 = no better than chance): "
                + "; ".join(f"{k} {v:.3f}" for k, v in r["error_detection_auroc"].items()) + ".", "",
                "Lattice-parameter spreads against the error of the value (networks and trees "
                "mixed), given the true lattice: `std` over the network members, and the "
                "uncertainty σ (`formula.confidence`, constants from the split's own validation "
                "slice, `training.formula_trees.CONFIDENCE`) where the card has it. A calibrated "
                "Gaussian spread holds 68 % / 95 % of the errors within 1 / 2 ×:", "",
                "| parameters, spread | n | within 1 × | within 2 × | median abs error | median spread "
                "| median error / spread | Spearman(spread, abs error) |", "|---|---|---|---|---|---|---|---|"]
        for kind, s in r["lattice_std"].items():
            unit = "Å" if kind.startswith("lengths") else "°"
            out.append(f"| {kind} | {s['n']} | {pct(s['within_1_std'])} | {pct(s['within_2_std'])} | "
                       f"{s['median_abs_error']:.2f} {unit} | {s['median_std']:.2f} {unit} | "
                       f"{s['median_error_over_std']:.1f} | {s['spearman_std_error']:.2f} |")
        c = r.get("training_coverage")
        if c:
            out += ["", f"Training coverage (`predict_formula`'s `training_coverage`): {c['outside']} "
                    f"of {r['n_test']} test formulas are flagged as extrapolations "
                    f"({c['outside_for_an_element']} for an element in fewer than "
                    f"{FEW_TRAINING_FORMULAS} training formulas, {c['outside_for_the_size']} for "
                    "a larger formula unit than any trained on). Bravais top-1 inside / outside: "
                    f"cryspext {pct(c['cryspext top1 inside'])} / {pct(c['cryspext top1 outside'])}, "
                    f"random forest {pct(c[FOREST + ' top1 inside'])} / {pct(c[FOREST + ' top1 outside'])}."]
        c = r.get("cod")
        if c:
            fitted = ("cryspext's classifier trees and the forest were fitted with the other half "
                      "(COD rows weighted as Materials Project rows)"
                      if c.get("cryspext trees fitted with COD labels") else
                      "no model here was fitted with COD rows")
            out += ["", "COD compounds in no Materials Project entry (an out-of-distribution check: "
                    "experimental compounds, many of them solid solutions; the Bravais lattice of "
                    "each composition's most frequent COD space group). Scored: the held-out half "
                    "of `training.cod`, whose chemical systems no COD training row has; "
                    f"{fitted}. Bravais top-1 / top-2, then space group top-1 (end to end: the "
                    "likeliest group of the top-1 lattice):", "",
                    f"| method | all ({c['n all']}) | whole amounts ({c['n whole']}) | fractional amounts "
                    f"({c['n fractional']}) | flagged by training_coverage ({c['n outside']}) |",
                    "|---|---|---|---|---|"]
            methods = c.get("methods", ["cryspext", FOREST])
            for m in methods:
                out.append(f"| {m} | " + " | ".join(
                    f"{pct(c[f'{m} top1 {g}'])} / {pct(c[f'{m} top2 {g}'])}"
                    for g in ("all", "whole", "fractional", "outside")) + " |")
            for m in methods:
                if f"{m} sg top1 all" in c:
                    out.append(f"| {m}, space group | " + " | ".join(
                        pct(c[f"{m} sg top1 {g}"]) for g in ("all", "whole", "fractional", "outside")) + " |")
        out.append("")
    return "\n".join(out) + "\n"  # ends in a blank line: a hand-written verdict may follow


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=REPO / "cache" / "formula")
    ap.add_argument("--splits", nargs="+", default=["random", "future"], choices=["random", "future"])
    ap.add_argument("--trees", type=int, default=100, help="random-forest trees (default 100)")
    ap.add_argument("--threads", type=int, default=2, help="threads for the forest and torch")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_formula_confidence.md")
    ap.add_argument("--png", type=Path, default=None, help="also draw the reliability diagrams here")
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data",
                    help="shared/data folder with mp/cod_formula_sg.json.gz and mp/mp_ehull.json.gz "
                    "(the COD section is left out when they are missing)")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    arr = dict(np.load(a.cache / "arrays.npz", allow_pickle=False))
    arr["X_with_formula_unit"] = tree_inputs(arr, formula_unit=True)
    cod = None
    if (a.shared / COD_FILE).is_file() and (a.shared / MP_FILE).is_file():
        cod = cod_halves(a.shared)
    results = []
    for split in a.splits:
        results.append(evaluate_split(split, arr, None if split == "random" else a.cache / split,
                                      a.trees, a.threads, cod))
        print(json.dumps(results[-1]), flush=True)
    command = "python benchmarks/formula_confidence.py " + " ".join(argv if argv is not None else sys.argv[1:])
    env = f"{os.cpu_count()} CPU cores visible, {a.threads} threads, torch {torch.__version__}"
    a.out.write_text(markdown(results, command.strip(), time.perf_counter() - t0, env))
    if a.png:
        plot_reliability(results, a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
