"""Space group from the formula, from the cell, and from both (``predict_cell(..., formula=...)``),
on the test formulas of both splits, against a random forest that reads both.

    python benchmarks/formula_cell.py [--threads 2] [--trees 30]

Each split's own models (random: the shipped ones; future: ``cache/formula/future``) and test rows
(``cache/formula/dataset.json.gz``). For every test formula: its space group ranked over all 230
by the formula model (``FormulaModels.spacegroup_distribution``), by the cell model (its
conventional cell, and a primitive cell), and by the two combined as ``predict_cell`` does
(``FormulaModels.formula_and_cell``: naive Bayes, P(formula) · P(cell) / P(group), P(group) from
the training formulas' counts on the card, times the volume term of ``formula.cellvolume``, mixed
with the joint formula-and-cell trees where the models ship them). For
reference, naive Bayes without the volume term, and the product without the prior either. NLL: the mean negative log-likelihood
of the true group (lower is better; it scores the probabilities, not only the ranking). The baseline is a random forest fitted
in the same run on the formula features next to the cell features (the same columns both models
read), on the training formulas' conventional cells and the primitive cells of the centred ones
(the cell model's training rows), ``--trees`` trees (230-class forests are memory hungry). Writes
benchmarks/RESULTS_formula_cell.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))


def topk(p: np.ndarray, y: np.ndarray, k: int) -> float:
    """Share (%) of rows whose label ``y`` (0-based) is among the ``k`` largest of ``p``."""
    return 100.0 * float(np.mean((np.argsort(-p, axis=1)[:, :k] == y[:, None]).any(axis=1)))


def nll(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of labels ``y`` (0-based) under scores ``p`` normalised
    per row (probabilities below 1e-12 count as 1e-12, so a forest's zero costs 27.6)."""
    q = p / p.sum(axis=1, keepdims=True)
    return float(-np.log(np.maximum(q[np.arange(len(y)), y], 1e-12)).mean())


def evaluate(split: str, arr: dict, model_dir: Path, trees: int, threads: int) -> list[str]:
    from sklearn.ensemble import RandomForestClassifier

    from cryspext.formula import cellvolume
    from cryspext.formula.formulacell import joint_features
    from cryspext.formula.lattice import BRAVAIS
    from formula_analogues import compositions  # the rows' formulas, for the analogue vote
    from cryspext.formula.predict import FormulaModels
    from cryspext.training.formula_trees import joint_fit_rows, tree_inputs
    from formula import rf_scores, split_indices

    train, test = split_indices([{"mp_id": int(i)} for i in arr["mp_id"]], split)
    m = FormulaModels(model_dir)
    XF = tree_inputs(arr, formula_unit=True)
    y = arr["sg"][test] - 1
    t0 = time.perf_counter()
    scores = {"formula alone": m.spacegroup_distribution(XF[test], compositions(arr, test))}
    formulas = [str(f) for f in arr["formula"][test]]
    joint = {}  # the test rows' joint features by cell setting
    prior = m.spacegroup_prior()
    fu_volume = XF[test, -1]  # formula_unit_volume, Å³
    for setting, C, cells in (("conventional", arr["C"], arr["conventional"]),
                              ("primitive", arr["C_primitive"], arr["primitive"])):
        cell = m.cell_mix(C[test])
        scores[f"cell alone, {setting} cells"] = cell
        volume = cellvolume.cell_volume(cells[test])
        # predict_cell's joint trees read the formula and the cell together (formula.formulacell)
        joint[setting] = joint_features(formulas, arr["X"][test], C[test])
        p_joint = m.formula_cell_tree_proba(joint[setting]) if m.formula_cell_trees is not None else None
        scores[f"formula and cell combined, {setting} cells"] = m.formula_and_cell(
            scores["formula alone"], cell, volume, fu_volume, p_joint)
        if setting == "conventional" and m.cell_standard_trees is not None:
            # the cell declared a standard one: predict_cell(..., formula=..., setting="standard")
            scores["formula and cell combined, conventional cells declared standard (setting='standard')"] = (
                m.formula_and_cell(scores["formula alone"], m.cell_standard_mix(C[test], cells[test]),
                                   volume, fu_volume, p_joint))
        if p_joint is not None:
            scores[f"(reference: naive Bayes with the volume term, without the joint trees, {setting} cells)"] = (
                m.formula_and_cell(scores["formula alone"], cell, volume, fu_volume))
            scores[f"(reference: the joint trees alone, {setting} cells)"] = p_joint
        scores[f"(reference: naive Bayes without the volume term, {setting} cells)"] = (
            scores["formula alone"] * cell / prior)
        scores[f"(reference: product without the prior or the volume term, {setting} cells)"] = (
            scores["formula alone"] * cell)
    seconds = time.perf_counter() - t0
    # The forest reads both: formula features next to cell features, on the cell model's rows.
    centred = train[np.array([BRAVAIS[b][1] != "P" for b in arr["bravais"][train]])]
    rows = np.concatenate([train, centred])
    cells = np.concatenate([arr["C"][train], arr["C_primitive"][centred]])
    rf = RandomForestClassifier(n_estimators=trees, n_jobs=threads, random_state=0)
    t1 = time.perf_counter()
    rf.fit(np.column_stack([XF[rows], cells]), arr["sg"][rows] - 1)
    fit_s = time.perf_counter() - t1
    for setting, C in (("conventional", arr["C"]), ("primitive", arr["C_primitive"])):
        scores[f"random forest on formula and cell features, {setting} cells"] = rf_scores(
            rf, np.column_stack([XF[test], C[test]]), 230)
    del rf
    # The same forest on the joint trees' inputs (atoms per cell of each element, ...), so that
    # both learners of that row read the same columns.
    rf = RandomForestClassifier(n_estimators=trees, n_jobs=threads, random_state=0)
    F_fit, y_fit = joint_fit_rows(arr, train)  # the joint trees' training rows
    rf.fit(F_fit, y_fit - 1)
    for setting in ("conventional", "primitive"):
        scores[f"random forest on the joint features (formula.formulacell), {setting} cells"] = rf_scores(
            rf, joint[setting], 230)
    del rf
    lines = [f"## Split `{split}` ({len(train)} train / {len(test)} test formulas)", "",
             "| method | SG top-1 | SG top-3 | NLL |", "|---|---|---|---|"]
    for name, p in scores.items():
        lines.append(f"| {name} | {topk(p, y, 1):.1f} % | {topk(p, y, 3):.1f} % | {nll(p, y):.2f} |")
    lines += ["", f"cryspext's scores for the {len(test)} test formulas: {seconds:.0f} s; the "
              f"forest's fit: {fit_s:.0f} s ({trees} trees, {threads} threads).", ""]
    return lines


def main(argv=None) -> int:
    import torch

    from cryspext.models import MODELS_DIR
    from cryspext.training import formula as T

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="threads for torch and the forest")
    ap.add_argument("--trees", type=int, default=30, help="random-forest trees (default 30)")
    ap.add_argument("--cache", type=Path, default=T.DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_formula_cell.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore", UserWarning)
    arr = T.dataset_arrays(a.cache)
    t0 = time.perf_counter()
    lines = ["# Space group from formula and cell together (`predict_cell(..., formula=...)`)", ""]
    body = []
    for split, model_dir in (("random", MODELS_DIR / "formula"), ("future", a.cache / "future")):
        body += evaluate(split, arr, model_dir, a.trees, a.threads)
    lines += [f"Produced by `python benchmarks/formula_cell.py --threads {a.threads} --trees {a.trees}` "
              f"({(time.perf_counter() - t0) / 60:.1f} min). Test formulas of each split with that "
              "split's models; ranked over all 230 space groups. Combined = what `predict_cell` "
              "does (`FormulaModels.formula_and_cell`): naive Bayes, P(group | formula) · "
              "P(group | cell) / P(group), times the volume term P(ρ | group)^δ with ρ = ln(cell "
              "volume / formula-unit volume) (`formula.cellvolume`; δ from the split's "
              "`cell_volume.json`, chosen on its validation slice by "
              "`benchmarks/formula_cell_validation.py` before this run). Where the split's models "
              "have joint trees (`formula_cell_trees.pt`, one classifier on the formula and the "
              "cell read together, `formula.formulacell`), the combination is (1 − w) · that + w · "
              "their probabilities, w from their card (chosen on the validation slices, "
              "`benchmarks/formula_cell_joint_validation.py`). The references (naive Bayes "
              "without the joint trees, the joint trees alone, and without the volume term or "
              "the prior) are shown only to measure the parts.", ""]
    text = "\n".join(lines + body)
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
