"""Known analogues (``formula.analogues``) as a baseline and as a confidence signal.

The chemist's heuristic: a new compound takes the structure of a known one with the same
stoichiometry and similar elements. For each split the analogue table is built from the
split's training formulas (as ``python -m cryspext.training.formula analogues`` builds the
shipped one from the random split's) and each test formula gets the vote of its ``VOTE_K``
nearest analogues (``analogues.analogue_vote``). Reported on the test formulas, in the same
run: the vote's Bravais top-1 / top-2 and space group top-1 / top-3 (end to end), the random
forest of ``benchmarks/formula.py`` on the Materials Project rows alone (same inputs, 100 trees,
seed 0: its Bravais row there), and where the split's models are installed (the shipped ones
for ``random``; ``--future-models DIR`` for ``future``) cryspext's Bravais top-1 / top-2 and how
its accuracy depends on the nearest analogue's distance and on the vote agreeing with it.

    python benchmarks/formula_analogues.py            # test rows, writes RESULTS_formula_analogues.md
    python benchmarks/formula_analogues.py --scan     # the K / tau scan on the validation slices

``--scan`` fitted the constants ``VOTE_K`` and ``VOTE_TAU`` (module docstring of
``formula.analogues``); the test rows chose nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "benchmarks"))

from formula_cell import topk  # noqa: E402  (share in % of labels among the k largest scores)

SCAN = [(1, 1.0), (3, 3.0), (5, 3.0), (10, 3.0), (10, 1.0), (20, 5.0), (10, 10.0), (20, 10.0), (30, 10.0),
        (20, 20.0), (10, 1e9)]
# Bins of the nearest analogue's distance (Σ |ΔMendeleev number|) for the confidence table.
DISTANCE_BINS = [(0, 1), (2, 3), (4, 7), (8, 15), (16, 10**9)]
PROBABILITY_BINS = [(0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 0.9), (0.9, 1.01)]


def percent(hits: np.ndarray) -> str:
    """Mean of a boolean array in %, or a dash when it is empty."""
    return f"{100 * hits.mean():.1f} %" if len(hits) else "—"


def build_table(arr, rows):
    from cryspext.formula.analogues import AnalogueTable, table_columns

    return AnalogueTable(table_columns(arr["formula"][rows], arr["mp_id"][rows], arr["sg"][rows],
                                       arr["bravais"][rows], arr["conventional"][rows]))


def compositions(arr, rows) -> list[dict]:
    from cryspext.formula.parse import parse_formula

    return [parse_formula(str(f)) for f in arr["formula"][rows]]


def nearest_distance(table, comps) -> np.ndarray:
    """Distance of each formula's nearest analogue (inf: none)."""
    from cryspext.formula.analogues import pattern

    out = np.full(len(comps), np.inf)
    for i, c in enumerate(comps):
        amounts, mendeleev, _ = pattern(c)
        d = table.nearest(amounts, mendeleev, 1)[1]
        if len(d):
            out[i] = d[0]
    return out


def scan(arr) -> list[str]:
    from cryspext.formula.analogues import analogue_vote
    from cryspext.training import formula as T

    lines = ["| split | K | tau | covered | Bravais top-1 (covered) | top-2 (covered) |", "|---|---|---|---|---|---|"]
    for split in ("random", "future"):
        fit, val = T.validation_split(arr, T._split(arr, split)[0], split)
        table, comps, y = build_table(arr, fit), compositions(arr, val), arr["bravais"][val]
        for k, tau in SCAN:
            pb, _, cov = analogue_vote(table, comps, k, tau)
            lines.append(f"| {split} | {k} | {tau:g} | {100 * cov.mean():.1f} % | "
                         f"{topk(pb[cov], y[cov], 1):.2f} % | {topk(pb[cov], y[cov], 2):.2f} % |")
            print(lines[-1], file=sys.stderr, flush=True)
    return lines


def cryspext_bravais(models, formulas) -> np.ndarray:
    """(n, 14) Bravais probabilities of ``models`` (``FormulaModels``) before the analogue vote
    is mixed in (``FormulaModels.with_vote``): the models' own evidence, to set beside the vote."""
    return models.bravais(models.features([str(f) for f in formulas]))


def evaluate(split, arr, model_dir, threads) -> list[str]:
    from sklearn.ensemble import RandomForestClassifier

    from cryspext.formula.analogues import analogue_vote
    from cryspext.training import formula as T
    from cryspext.training.formula_trees import tree_inputs

    train, test = T._split(arr, split)
    table, comps = build_table(arr, train), compositions(arr, test)
    B, SG = arr["bravais"], arr["sg"]
    t = time.perf_counter()
    pb, psg, cov = analogue_vote(table, comps)
    vote_s = time.perf_counter() - t
    X = tree_inputs(arr, True)
    rf = RandomForestClassifier(n_estimators=100, n_jobs=threads, random_state=0).fit(X[train], B[train])
    p_rf = np.zeros((len(test), 14))
    p_rf[:, rf.classes_] = rf.predict_proba(X[test])
    yb, ysg = B[test], SG[test] - 1
    rows = [("nearest analogues (vote of 10)", pb), ("random forest, Materials Project rows only", p_rf)]
    p_ours = models = None
    if model_dir is not None:
        from cryspext.formula.predict import FormulaModels

        models = FormulaModels(None if model_dir == "shipped" else model_dir)
        if models.formula_card.get("split") != split:
            sys.exit(f"{model_dir}: models of split {models.formula_card.get('split')!r}, not {split!r}")
        p_ours = cryspext_bravais(models, arr["formula"][test])
        # the shipped answer mixes the vote of the model folder's table (the split's training
        # formulas, as ``table`` here) into the models' probabilities
        rows[:0] = [("cryspext (models and the analogues' vote, as `predict_formula` ranks)",
                     models.with_vote(p_ours, comps)),
                    ("cryspext models before the vote (the tables below)", p_ours)]
    lines = [f"### Split `{split}` ({len(train)} training formulas in the table, {len(test)} test formulas)", "",
             f"Test formulas with at least one analogue (a training formula of the same stoichiometry): "
             f"{100 * cov.mean():.1f} %. The vote took {1e3 * vote_s / len(test):.2f} ms per formula.", "",
             "| method | Bravais top-1 | Bravais top-2 | the same on formulas with analogues |", "|---|---|---|---|"]
    for name, p in rows:
        lines.append(f"| {name} | {topk(p, yb, 1):.1f} % | {topk(p, yb, 2):.1f} % | "
                     f"{topk(p[cov], yb[cov], 1):.1f} / {topk(p[cov], yb[cov], 2):.1f} % |")
    lines += ["", f"Space group end to end by the vote (its own space-group tally): top-1 "
              f"{topk(psg, ysg, 1):.1f} %, top-3 {topk(psg, ysg, 3):.1f} %.", ""]
    if p_ours is not None:
        lines += lattice_lines(models, arr, train, test)
    if p_ours is None:
        lines += ["cryspext: this split's models are not installed here (`--future-models DIR`); "
                  "its figures are in `RESULTS_formula.md`.", ""]
        return lines
    # How cryspext's top-1 depends on the analogues: a signal a user can read next to the answer.
    ours, vote = np.argmax(p_ours, 1), np.argmax(pb, 1)
    right = ours == yb
    d = nearest_distance(table, comps)
    lines += ["cryspext's Bravais top-1 (its models before the vote) by the distance of the nearest "
              "analogue (Σ |ΔMendeleev number|) and by whether the analogues' vote names the same "
              "lattice:", "",
              "| nearest analogue | formulas | cryspext top-1 | vote agrees: share / cryspext top-1 | "
              "vote disagrees: cryspext / vote top-1 |", "|---|---|---|---|---|"]
    bins = [(f"distance {lo}–{hi}" if hi < 10**9 else f"distance ≥ {lo}", (d >= lo) & (d <= hi))
            for lo, hi in DISTANCE_BINS] + [("none (new stoichiometry)", ~np.isfinite(d)),
                                            ("all", np.ones(len(d), bool))]
    for name, sel in bins:
        agree, disagree = sel & cov & (ours == vote), sel & cov & (ours != vote)
        share = 100 * agree.sum() / max(1, (sel & cov).sum())
        lines.append(f"| {name} | {sel.sum()} | {100 * right[sel].mean():.1f} % | "
                     + (f"{share:.0f} % / {100 * right[agree].mean():.1f} % | "
                        f"{100 * right[disagree].mean():.1f} / {100 * (vote[disagree] == yb[disagree]).mean():.1f} % |"
                        if (sel & cov).any() else "— | — |"))
    # Is the agreement more than the model's own confidence? The same split within bins of
    # cryspext's first probability (tempered as calibrated on the split's validation slice).
    if models.confidence is None:
        return lines + ["", "(No table by probability: these models carry no calibration, "
                        "`benchmarks/formula_confidence_validation.py --write`.)", ""]
    lines += ["", "The same by cryspext's own probability of its first lattice (formulas with analogues): "
              "does the vote tell more than that probability?", "",
              "| first probability | formulas | cryspext top-1 | vote agrees: share / top-1 | vote disagrees: top-1 |",
              "|---|---|---|---|---|"]
    top_p = p_ours.max(axis=1)
    for lo, hi in PROBABILITY_BINS:
        sel = cov & (top_p >= lo) & (top_p < hi)
        agree, disagree = sel & (ours == vote), sel & (ours != vote)
        if sel.any():
            lines.append(f"| {lo:.1f}–{min(hi, 1):.1f} | {sel.sum()} | {percent(right[sel])} | "
                         f"{100 * agree.sum() / sel.sum():.0f} % / {percent(right[agree])} | "
                         f"{percent(right[disagree])} |")
    return lines + [""]


def analogue_cells(arr, train, rows) -> tuple[np.ndarray, np.ndarray]:
    """(covered (n,) bool, (n, 6) parameters) of each row's nearest training formula of the
    same pattern *and* the same Bravais lattice, its lengths scaled by the cube root of the
    ratio of formula-unit volumes (``features.formula_unit_features``): the textbook estimate
    from a prototype. Parameters as ``arr["params"]`` (rhombohedral cell for hR)."""
    from cryspext.formula.analogues import pattern
    from cryspext.formula.features import formula_unit_rows

    B, P = arr["bravais"], arr["params"]
    vfu = formula_unit_rows([str(f) for f in arr["formula"]])[:, 1]
    comps = compositions(arr, np.arange(len(B)))
    groups: dict = {}
    for r in train:
        a, m, _ = pattern(comps[r])
        groups.setdefault((a, int(B[r])), []).append((r, m.astype(int)))
    covered, est = np.zeros(len(rows), bool), np.full((len(rows), 6), np.nan)
    for i, r in enumerate(rows):
        a, m, _ = pattern(comps[r])
        cand = groups.get((a, int(B[r])))
        if not cand:
            continue
        j = cand[int(np.argmin([np.abs(mm - m).sum() for _, mm in cand]))][0]
        est[i] = P[j]
        est[i, :3] *= (vfu[r] / vfu[j]) ** (1 / 3)
        covered[i] = True
    return covered, est


def lattice_lines(m, arr, train, test) -> list[str]:
    """R² of the analogue cells against the lattice values of ``m`` (``FormulaModels``, given
    the true lattice), on the test formulas that have such an analogue."""
    from cryspext.formula.lattice import BRAVAIS, FREE_PARAMETERS, PARAMETER_NAMES
    from cryspext.training import formula as T

    covered, est = analogue_cells(arr, train, test)
    P, B = arr["params"], arr["bravais"]
    ours_r2, analogue_r2, cells = [], [], []
    for k, b in enumerate(BRAVAIS):
        sel = np.nonzero((B[test] == k) & covered)[0]
        names, ours = m.lattice(m.features([str(f) for f in arr["formula"][test[sel]]]), b)
        for p in FREE_PARAMETERS[b]:
            j = PARAMETER_NAMES.index(p)
            y = P[test[sel], j]
            ours_r2.append(T.r2_score(y, ours[:, names.index(p)]))
            analogue_r2.append(T.r2_score(y, est[sel, j]))
            cells.append(f"{b} {p}")
    wins = [c for c, a, o in zip(cells, analogue_r2, ours_r2) if a > o]
    return ["Lattice parameters given the true lattice, on the test formulas with an analogue of "
            f"the same stoichiometry *and* lattice ({100 * covered.mean():.1f} %): the nearest one's "
            "cell, lengths scaled by the cube root of the formula-unit volume ratio, has mean R² "
            f"{np.mean(analogue_r2):.3f} over the 37 values against cryspext's {np.mean(ours_r2):.3f} on the "
            f"same formulas; it is ahead on {len(wins)} of 37 ({', '.join(wins) or 'none'}).", ""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scan", action="store_true", help="the K / tau scan on the validation slices only")
    ap.add_argument("--future-models", type=Path, default=None, metavar="DIR",
                    help="the future split's model folder (cache/formula/future), if trained")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "RESULTS_formula_analogues.md")
    a = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from cryspext.formula.analogues import VOTE_K, VOTE_TAU
    from cryspext.training import formula as T

    arr = T.dataset_arrays(T.DEFAULT_CACHE)
    t0 = time.time()
    with threadpool_limits(a.threads):
        if a.scan:
            print("\n".join(scan(arr)))
            return 0
        body = evaluate("random", arr, "shipped", a.threads)
        body += evaluate("future", arr, a.future_models, a.threads)
    head = ["# Known analogues: a baseline and a confidence signal (issue 7)", "",
            f"Produced by `python benchmarks/formula_analogues.py --threads {a.threads}"
            f"{' --future-models ' + str(a.future_models) if a.future_models else ''}` "
            f"({(time.time() - t0) / 60:.1f} min). The vote: the {VOTE_K} nearest training formulas "
            f"of the same stoichiometry pattern, weighted exp(−distance / {VOTE_TAU:g}) "
            "(`formula.analogues`; K and tau chosen with `--scan` on the validation slices, the rule in its comment). "
            "A test formula is never in its split's table.", ""]
    a.out.write_text("\n".join(head + body).rstrip() + "\n")
    print(a.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
