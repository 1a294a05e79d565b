"""Fit the boosted-tree part of the formula and cell models (``python -m cryspext.training.formula_trees``).

Same data, split and features as ``training.formula`` (run its ``data`` step first). Fits
scikit-learn ``HistGradientBoosting`` models on the binned features
(``formula.trees.feature_edges``): one Bravais classifier (14 classes), one space-group
classifier per lattice, one regressor per free lattice parameter (which also reads the
space group, ``LATTICE_BY_SPACEGROUP``); packs them into
``formula_trees.pt`` (``formula.trees.BoostedTrees``) with a card. At prediction time
(``formula.predict``) the trees' probabilities and parameters are mixed with the network
ensemble's: ``(1 − w) · networks + w · trees`` with ``w`` = the card's ``blend_weight``
for the space-group probabilities, fixed at 0.5 (equal weight to the two learners; not tuned
on the test rows), and weights chosen on the validation slices for the other outputs:
``bravais_blend_weight`` (0.7) for the Bravais probabilities, ``length_blend_weight`` (0.8)
for the lattice lengths, which the trees fit as ln(length), and ``angle_blend_weight`` (0.9)
for the free angles. ``--cell`` fits the same kind of trees for the cell-geometry model
(``cell_trees.pt``, one 230-way classifier), mixed the same way with the cell networks, weight
0.3 (``CELL_BLEND_WEIGHT``, chosen on a validation slice). ``--formula-cell`` fits one 230-way
classifier on a formula and its cell read together (``formula.formulacell``: about how many
atoms of each element the cell holds, a few chemistry columns, the cell;
``formula_cell_trees.pt``), mixed into ``predict_cell(..., formula=...)``'s naive-Bayes answer
with weight ``FORMULA_CELL_BLEND_WEIGHT``.

Inputs: the 221 intensive features of ``formula.features.FEATURE_NAMES``, then the two
extensive ``FORMULA_UNIT_FEATURE_NAMES`` (atoms and summed elemental volume of the reduced
formula, ``tree_inputs``), since cell lengths scale with the size of the formula unit. The
networks read the same columns (``training.formula.NETWORK_FORMULA_UNIT_INPUTS``).

The Bravais and space-group classifiers also learn COD's formula → space-group labels: the
training half (by chemical system) of the COD compositions that are in no Materials Project
entry (``training.cod``; ``--shared`` names the data folder, ``--no-cod`` leaves them out).
Those rows have no lattice parameters, so the lattice regressors never see them. Chosen on the
validation slices (``benchmarks/cod_labels_validation.py``, Bravais trees of 200 rounds, COD
halves by chemical system), Bravais top-1 on the MP slice / the held-out COD half without →
with the COD rows: random 63.51 → 63.25 % / 28.40 → 55.04 %, future 30.59 → 32.44 % /
29.77 → 55.88 %.

``--refit-lattice PT`` refits only the lattice regressors of a saved file, on the rows of its
card, and keeps its classifiers (about 8 min on 1 thread instead of about 40).
``--refit-classifiers PT`` refits only its classifiers (with the COD rows unless ``--no-cod``)
and keeps its lattice regressors (about 42 min on 1 thread).

``--validate`` fits on the training rows minus the validation slice
(``training.formula.validation_split``) and scores on that slice, for choosing settings
without the test rows. Needs scikit-learn (training only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..formula.lattice import ANGLES, BRAVAIS, FREE_PARAMETERS, PARAMETER_NAMES, spacegroups_of_bravais
from ..formula.trees import ABSENT
from .formula import DEFAULT_CACHE, DEFAULT_SHARED, MODEL_DIR, _split, dataset_arrays, r2_score, tqdm, validation_split

# Settings (scikit-learn names), set once and checked on the random split's validation slice
# against a 100-tree random forest: Bravais 63.3 % top-1 at 400 rounds (61.6 % at 200; forest
# 62.5 %), space group given the lattice 80.6 % (forest 79.4 %).
# The Bravais classifier: 800 rounds (400 until session 10; still rising at 800). Validation
# slices (``python benchmarks/formula_blend_validation.py --split S --bravais-rounds 800``: the
# classifier refitted without the slice, scored every 100 rounds, mixed with the 3 validation
# networks), Bravais top-1 / top-2 of the mix at the trees' weight 0.7
# after 400 → 600 → 800 rounds: random 65.75 / 79.98 → 66.11 / 80.21 → 66.35 / 80.56 %,
# future 32.29 / 46.64 → 32.40 / 46.99 → 32.75 / 46.89 %. Trees alone: random 64.77 → 65.71 %,
# future 31.27 → 32.45 % top-1. At 800 rounds 0.7 is still the best weight on the random slice
# (0.6: 66.21 / 80.37, 0.8: 66.02 / 80.33 %); on the future slice 0.7 and 0.8 are level.
BRAVAIS_TREES = {"learning_rate": 0.1, "max_iter": 800, "max_leaf_nodes": 63, "l2_regularization": 1.0}
SPACEGROUP_TREES = {"learning_rate": 0.1, "max_iter": 200, "max_leaf_nodes": 31, "l2_regularization": 1.0}
# Lattice regressors: deeper trees (63 leaves, the most the packed format holds), each split
# choosing among a random 30 % of the features, 600 rounds. Chosen with
# benchmarks/lattice_trees_validation.py (validation networks, trees and the benchmark's forest
# fitted without the validation slice). Random split, mixed 50/50 with the networks: mean R² over
# the 37 parameters 0.513, ahead of the forest on 34 of 37; the previous setting (31 leaves, 400
# rounds, all features) 0.502 and 31 of 37; all features with 63 leaves 0.511; 10 % of the
# features 0.510; 1000 rounds 0.516, not worth 1.7× the size. Future split: 0.023 against 0.016
# for the previous setting and 0.019 with 10 % of the features.
# The lengths are fitted on ln(length / Å) (``LOG_LENGTHS``): positive by construction, and
# the squared loss no longer lets the few very large cells dominate. Validation slices, mean R²
# of the 31 lengths mixed 50/50 with the networks: random 0.556 (0.558 fitted on Å), future 0.094
# (0.028 in Å: trees fitted on Å even predict negative lengths for some future formulas).
# The lattice regressors also read the space group (``formula.trees.spacegroup_columns``: its
# position among the lattice's groups and one-hot columns for the lattice's 8 most common
# groups); at prediction time their outputs for the 5 likeliest groups are averaged with the
# whole model's space-group probabilities. Validation slices (``python
# benchmarks/lattice_spacegroup_validation.py --split S --before
# cache/formula/valtrees_S_flat --after cache/formula/valtrees_S``: validation trees without
# and with the space group, the 3 validation networks, the benchmark's forest), mean R² of the
# 37 parameters and values above the forest, without → with the space group:
# * trees alone: random 0.561 → 0.574 (28 → 35 of 37), future 0.169 → 0.185 (22 → 28);
# * mixed with the networks (the shipped weights, 0.8 / 0.9): random 0.567 → 0.578 (33 → 35),
#   future 0.184 → 0.193 (26 → 28); forest 0.538 and 0.129.
# Told the true group (``predict_formula(..., spacegroup=N)``), the mix reaches 0.625 (random)
# and 0.301 (future).
LATTICE_BY_SPACEGROUP = True
LATTICE_TREES = {"learning_rate": 0.05, "max_iter": 600, "max_leaf_nodes": 63, "min_samples_leaf": 10,
                 "l2_regularization": 1.0, "max_features": 0.3}
LOG_LENGTHS = True
# The free angles are mostly noise to a formula (triclinic angles: R² near 0), so their trees
# learn at half the rate. Validation slices, mean R² of the 6 free angles mixed 0.2 / 0.8 with
# the networks: random 0.293 (0.290 at the lengths' rate 0.05), future 0.026 (0.024); ahead of
# the forest on 5 (4) and 3 (2) of 6. 31 leaves: 0.287 and 0.022; early stopping on an inner
# 10 % split: 0.286 and 0.027.
ANGLE_TREES = {**LATTICE_TREES, "learning_rate": 0.025}
# Random forests mixed into the lattice regressors: value = (1 - w) · boosted + w · forest, in
# the fitted target's units (``formula.trees.ForestMix``). A forest averages whole leaves of
# bootstrap samples, which shrinks values the formula hardly determines towards their mean;
# the boosted trees follow the features further. Trees of at most 64 leaves: the packed format
# holds no more. The weight w is chosen per split on its own validation slice (``python
# benchmarks/lattice_forest_validation.py --split S --weights ...``: validation networks and
# trees, forests fitted without the slice), like the calibration. Mean R² of the 37 mixed
# values (values above the benchmark's forest) by w = 0 / 0.1 / 0.2 / 0.3 / 0.4 / 0.5 / 0.6:
# * random: 0.5775 (35) / 0.5734 (33) / 0.5673 (32) / 0.5595 (31) / 0.5501 (23): w = 0. On
#   formulas like the training ones the boosted trees' detail pays; the forest only blurs it.
# * future: 0.1933 (28) / 0.2013 (29) / 0.2071 (29) / 0.2108 (30) / 0.2126 (27) / 0.2126 (27)
#   / 0.2110 (27): flat from 0.3 to 0.5; 0.3 keeps the most values above the forest. On newer
#   chemistries the shrinkage pays most where the boosted trees were far off (oP a, tP a).
# The price is a larger typical error: the median |error| of the future slice's lengths goes
# from 1.671 Å at w = 0 to 1.706 Å at 0.3 (angles 9.32 → 9.54°); R², a mean of squares, is
# what the forest is mixed in for. The test rows: RESULTS_formula.md.
LATTICE_FOREST = {"n_estimators": 100, "max_leaf_nodes": 64, "max_features": "sqrt"}
LATTICE_FOREST_WEIGHT = {"random": 0.0, "future": 0.3}
# The cell-geometry trees: one 230-way classifier on the cell features (``formula.cellgeom``).
CELL_TREES = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "l2_regularization": 1.0}
# Chosen on the future split's validation slice (benchmarks/cell_blend_validation.py: 3
# validation networks + trees fitted without the slice). Primitive cells, top-1 / top-3:
# 32.2 / 62.3 % at 0.3, 32.3 / 62.1 % at 0.5, 31.7 / 61.3 % at 0.7; networks alone 31.7 / 62.3 %,
# trees alone 30.9 / 60.2 %, forest 32.1 / 56.7 %. 0.3 and 0.5 are within the noise; 0.3 was
# picked by an earlier run of the same comparison (32.4 / 62.2 against 32.3 / 62.2 %).
CELL_BLEND_WEIGHT = 0.3
# The standard-setting cell trees (``formula.cellsetting``): the same classifier on the cell as
# written, fitted on the conventional training cells only; mixed into predict_cell(...,
# setting="standard") with weight STANDARD_CELL_BLEND_WEIGHT. Chosen on the validation slices by
# benchmarks/cell_standard_validation.py under a rule fixed before its run (the best weight, if
# it gains >= 0.5 point of top-1 over the canonical model on both slices): conventional cells,
# top-1 of the canonical model -> the mix at 0.3 / 0.5 / 0.7 / trees alone: random 60.02 ->
# 63.14 / 64.24 / 64.42 / 63.98 %, future 25.27 -> 27.89 / 29.14 / 29.43 / 29.47 %.
STANDARD_CELL_BLEND_WEIGHT = 0.7
# The joint trees of predict_cell(..., formula=...): one 230-way classifier on the formula and
# its cell read together (``formula.formulacell``: counts of atoms per cell, the cell), the cell
# trees' settings. Mixed into the naive-Bayes combination as (1 - w) · naive Bayes + w · trees.
FORMULA_CELL_TREES = CELL_TREES
# Chosen on the validation slices (benchmarks/formula_cell_joint_validation.py, rule in its
# docstring before either slice was scored: one w for both splits, ≥ 0.5 point of top-1 on each):
# top-1 averaged over conventional and primitive cells, naive Bayes → w = 0.6 → trees alone:
# random 81.11 → 82.77 → 80.74 %, future 39.34 → 44.78 → 44.07 %.
FORMULA_CELL_BLEND_WEIGHT = 0.6
BLEND_WEIGHT = 0.5  # the formula model's mix of space-group probabilities: equal weight, fixed beforehand
# The Bravais probabilities lean on the trees. Scanned with benchmarks/formula_blend_validation.py
# (3 validation networks and validation trees, all reading the formula-unit features, fitted
# without the slice), Bravais top-1 / top-2 in % by the trees' weight 0.5 / 0.6 / 0.7 / 0.8:
# random slice 65.42 / 79.89, 65.73 / 79.79, 65.76 / 80.00, 65.41 / 79.95; future slice
# 32.03 / 46.08, 32.39 / 46.40, 32.29 / 46.64, 31.98 / 46.66. 0.7 has the largest sum of the
# four figures. The space groups given the lattice peak at 0.5–0.6 and keep 0.5.
# Scanned again in session 18 with validation trees whose classifiers also learned the COD
# rows (``--trees cache/formula/valtrees_cod_S``): random 66.27 / 80.53, 66.50 / 80.48,
# 66.50 / 80.48, 66.45 / 80.37; future 33.76 / 47.31, 33.99 / 47.40, 34.14 / 47.40, 34.21 /
# 47.53. 0.8 leads 0.7 on the sum by 0.04 point, below the 0.2 point a change needed (a rule
# written before the scan): 0.7 is kept.
BRAVAIS_BLEND_WEIGHT = 0.7
# The lattice parameters lean on the trees. Scanned with benchmarks/lattice_trees_validation.py
# (3 validation networks, trees and forest fitted without the slice; shipped trees), mean R² of
# the mix by the trees' weight 0.5 / 0.6 / 0.7 / 0.8 / 0.9 / 1, with networks that read the
# formula-unit features (session 9):
# * the 31 lengths: random slice 0.612 / 0.615 / 0.616 / 0.615 / 0.613 / 0.608, future slice
#   0.198 / 0.207 / 0.210 / 0.209 / 0.203 / 0.193 (with the earlier networks, which did not
#   read those features, the peak was at 0.8: 0.612 and 0.203);
# * the 6 free angles (the networks are weak there): random 0.295 / 0.304 / 0.311 / 0.316 /
#   0.318 / 0.317, future 0.041 / 0.049 / 0.053 / 0.055 / 0.052 / 0.047.
# With lattice trees that read the space group (session 14;
# ``benchmarks/lattice_spacegroup_validation.py``), the same scan of the mix:
# * the 31 lengths: random 0.619 / 0.624 / 0.626 / 0.627 / 0.626 / 0.624, future 0.199 / 0.210 /
#   0.216 / 0.218 / 0.215 / 0.208: both slices peak at 0.8, so the lengths' weight went
#   from 0.7 to 0.8;
# * the 6 free angles: random 0.295 / 0.305 / 0.313 / 0.318 / 0.320 / 0.320, future 0.049 /
#   0.058 / 0.064 / 0.067 / 0.066 / 0.062: the slices disagree (1 against 0.8), 0.9 is kept.
# The weights are not fitted: ``--repack`` writes the current ones onto an existing card.
ANGLE_BLEND_WEIGHT = 0.9
LENGTH_BLEND_WEIGHT = 0.8
# The calibration of the mix (``formula.confidence``: Bravais temperature, lattice σ
# constants), one set per split, each chosen on that split's own validation slice by
# ``python benchmarks/formula_confidence_validation.py --split S --write`` (3 validation
# networks and validation trees fitted without the slice), which stores it in
# ``formula_calibration.json`` next to this file. ``train`` and ``--repack`` write the set of
# the card's split onto the card (the shipped models carry the random split's);
# ``predict_formula`` tempers the Bravais probabilities with it and gives each lattice
# parameter its σ. Figures of the two slices (RESULTS_formula_confidence.md has the test rows):
# * Bravais temperature, the lowest NLL on a 0.05 grid: random 1.2 (NLL 1.069 → 1.048 nats,
#   ECE 0.048 → 0.019; mean top-1 probability 71.1 → 65.8 % against 66.3 % top-1 accuracy);
#   future 2.65 (2.798 → 2.160, ECE 0.266 → 0.046; 59.4 → 28.4 % against 32.8 %: on formulas
#   newer than the training ones the mix is far more over-confident). Refitted in session 18
#   on validation trees whose classifiers also learned the COD rows (``--refit-classifiers``
#   on copies, ``--trees cache/formula/valtrees_cod_S``): random 1.15 (NLL 1.058 → 1.046, ECE
#   0.030 → 0.013; 69.5 → 65.5 % against 66.5 %), future 2.6 (2.754 → 2.153, ECE 0.252 →
#   0.058; 59.3 → 28.6 % against 34.1 %); the lattice σ constants moved by at most 0.1.
#   Refitted in session 23 to the answer with the analogue vote mixed in after tempering
#   (``predict.BRAVAIS_VOTE_SHARE``; the table of the fit rows): random 1.15 → 1.1 (slice NLL
#   1.0259 → 1.0255, ECE 0.031 → 0.019), future 2.6 unchanged. Only the temperature was taken
#   over: the lattice σ constants stay session 18's.
# * Lattice σ = sqrt((std_scale · std)² + floor²), floor = relative_floor · value (lengths) or
#   floor_deg (angles), fitted as the 68.27 % quantile of |error| (pinball loss); the
#   constants are in the JSON file. On the slices (session 14, lattice trees that
#   read the space group), |error| ≤ σ for 69.5 % / 68.5 % of the random lengths / angles
#   (≤ 2σ: 85.8 % / 92.2 %; the members' std as is: 58.3 % / 37.5 %) and 69.3 % / 68.2 % of
#   the future ones (session 15, their lattice regressors mixed with forests). The std adds
#   little to the floor (random pinball loss 0.654 against 0.676 with the floor alone for the
#   lengths, 3.011 against 3.044 for the angles), but it does add:
#   a member disagreement flags the larger errors.
# The space groups given the lattice are left as mixed (random slice: ECE 0.020 already; their
# best temperature, 1.25, lowers the NLL but raises the ECE).
# Tried and taken back (session 13): a correction line per lattice parameter fitted on the
# slices took the future slice's mean lattice R² from 0.185 to 0.274 (lines fitted on half of
# it, scored on the other), but took the future test rows' down from 0.363 to 0.326
# (RESULTS_formula.md at commit 4a080e6).
CALIBRATION_FILE = Path(__file__).with_name("formula_calibration.json")
LEVEL_NOTE = ("sigma holds |error| for about 68 % of formulas (the 1-std share of a Gaussian); "
              "the errors are heavy-tailed, so 2 sigma holds fewer than 95 %")
CONFIDENCE = {split: {**constants, "level": LEVEL_NOTE}
              for split, constants in json.loads(CALIBRATION_FILE.read_text()).items()}
FORMULA_BLEND_RULE = ("predict: (1 - blend_weight) * network-ensemble mean + blend_weight * trees "
                      "for the space-group probabilities; the same with bravais_blend_weight "
                      "for the Bravais probabilities, length_blend_weight for the lattice "
                      "lengths and angle_blend_weight for the free lattice angles; lattice "
                      "trees that read the space group (lattice_by_spacegroup) give the average "
                      "of their values for the 5 likeliest space groups, weighted by the mixed "
                      "space-group probabilities")


# The lattice regressors also read the formula-unit features (``tree_inputs``). Validation
# slices (benchmarks/lattice_trees_validation.py, "without formula-unit features" vs "shipped";
# the forest reads the same inputs as the trees), mean R² of the mix over the 37 parameters:
# random 0.516 → 0.564, future 0.097 → 0.178; the forest 0.475 → 0.538 and 0.057 → 0.129. The
# forest gained more while the networks did not read these features (the mix ahead of it on
# 36 → 31 and 27 → 23 of the 37 values); with networks that read them too (session 9, weights
# 0.8 / 0.9): mix 0.567 and 0.184, ahead on 33 and 26 of 37.
FORMULA_UNIT_INPUTS = True
# Whether the Bravais and space-group trees read them too (session 9: together with the
# networks, which now read them as well). Random validation slice, trees alone, Bravais top-1 /
# top-2: 62.9 / 77.4 % → 64.8 / 79.4 %.
CLASSIFIER_FORMULA_UNIT_INPUTS = True


def tree_inputs(arr: dict, formula_unit: bool = FORMULA_UNIT_INPUTS) -> np.ndarray:
    """(n, columns) float32 tree inputs of the data rows: ``arr["X"]`` (``FEATURE_NAMES``),
    then with ``formula_unit`` the ``formula_unit_features`` of ``arr["formula"]``."""
    from ..formula.features import formula_unit_rows

    X = arr["X"]
    if not formula_unit:
        return X
    return np.concatenate([X, formula_unit_rows([str(f) for f in arr["formula"]]).astype(X.dtype)], axis=1)


def fitted_on_log(parameter: str, log_lengths: bool = LOG_LENGTHS) -> bool:
    """Whether the trees of a lattice ``parameter`` regress its natural log (the lengths a, b, c
    with ``log_lengths``; ``BoostedTrees.lattice`` returns exp of their sum)."""
    return log_lengths and parameter not in ANGLES


def lattice_target(values: np.ndarray, parameter: str, log_lengths: bool = LOG_LENGTHS) -> np.ndarray:
    """What the trees regress for a lattice ``parameter``: ln(length / Å), or degrees as is."""
    return np.log(values) if fitted_on_log(parameter, log_lengths) else values


def _classifier(settings, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**settings, early_stopping=False, random_state=seed)


def _regressor(settings, seed):
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(**settings, early_stopping=False, random_state=seed)


def lattice_onehot_groups(B, SG, rows) -> np.ndarray:
    """(14, N_ONEHOT) one-hot positions of each lattice (``formula.trees.common_groups`` of its
    training rows ``rows``)."""
    from ..formula.trees import common_groups

    out = []
    for k, b in enumerate(BRAVAIS):
        r = rows[B[rows] == k]
        out.append(common_groups(np.searchsorted(np.array(spacegroups_of_bravais(b)), SG[r])))
    return np.stack(out)


def lattice_spacegroup_inputs(edges: np.ndarray, B, SG, rows) -> tuple[np.ndarray, np.ndarray | None]:
    """(edges, onehot_groups) of the lattice regressors fitted on ``rows``: with
    ``LATTICE_BY_SPACEGROUP``, the feature ``edges`` followed by those of the space-group
    columns, and each lattice's one-hot groups; else ``edges`` as they are and None."""
    if not LATTICE_BY_SPACEGROUP:
        return edges, None
    from ..formula.trees import spacegroup_edges

    return np.concatenate([edges, spacegroup_edges()]), lattice_onehot_groups(B, SG, rows)


def lattice_rows(Xb, SG, b: str, r, onehot_groups: np.ndarray | None) -> np.ndarray:
    """The lattice regressors' inputs of rows ``r`` of lattice ``b``: the binned features, then
    with ``onehot_groups`` the space-group columns of the rows' true groups."""
    if onehot_groups is None:
        return Xb[r]
    from ..formula.trees import spacegroup_columns

    groups = np.searchsorted(np.array(spacegroups_of_bravais(b)), SG[r])
    return np.concatenate([Xb[r], spacegroup_columns(groups, onehot_groups[BRAVAIS.index(b)])], axis=1)


def fit_lattice_forests(x: np.ndarray, targets: np.ndarray, names: list[str], seed: int = 0) -> list:
    """One ``LATTICE_FOREST`` random forest per column of ``targets`` (the values of the
    parameters ``names``), fitted on ``x`` and on the targets the boosted regressors read
    (``lattice_target``: ln Å for the lengths)."""
    from sklearn.ensemble import RandomForestRegressor

    return [RandomForestRegressor(**LATTICE_FOREST, n_jobs=1, random_state=seed)
            .fit(x, lattice_target(targets[:, j], n)) for j, n in enumerate(names)]


def fit_heads(Xb, B, SG, P, rows, seed: int = 0, classifier_columns: int | None = None,
              onehot_groups: np.ndarray | None = None, only_lattice: bool = False,
              forest_weight: float = 0.0, extra: dict | None = None,
              only_classifiers: bool = False) -> list:
    """The ``formula.trees.from_sklearn`` head list, fitted on binned features ``Xb[rows]``;
    the classifiers read only the first ``classifier_columns`` columns (default: all), the
    lattice regressors also the space-group columns with ``onehot_groups``
    (``lattice_rows``). ``only_lattice``: the 14 lattice heads only; ``only_classifiers``: the
    15 classifier heads only. ``forest_weight`` > 0 mixes random forests into the lattice heads
    (``LATTICE_FOREST_WEIGHT``). ``extra``: more rows for the classifiers only, a dict with
    binned ``Xb``, ``bravais``, ``sg`` and a sample ``weight`` (the COD labels,
    ``training.cod``)."""
    from ..formula.trees import ForestMix

    heads = []
    Xc = Xb if classifier_columns is None else Xb[:, :classifier_columns]
    if extra is None:
        extra = {"Xb": Xc[:0], "bravais": B[:0], "sg": SG[:0], "weight": 1.0}
    Xe, Be, SGe = extra["Xb"][:, : Xc.shape[1]], extra["bravais"], extra["sg"]

    def fit_classifier(settings, x, y, x_extra, y_extra):
        weight = None  # unweighted rows fit as before the extra rows existed
        if float(extra["weight"]) != 1.0:
            weight = np.concatenate([np.ones(len(y)), np.full(len(y_extra), float(extra["weight"]))])
        return _classifier(settings, seed).fit(np.concatenate([x, x_extra]),
                                               np.concatenate([y, y_extra]), sample_weight=weight)

    todo = [] if only_classifiers else [("lattice", b) for b in BRAVAIS]
    if not only_lattice:
        todo = [("bravais", None)] + [("spacegroup", b) for b in BRAVAIS] + todo
    for what, b in tqdm(todo, desc="tree heads"):
        if what == "bravais":
            y = B[rows]
            heads.append((fit_classifier(BRAVAIS_TREES, Xc[rows], y, Xe, Be), 14,
                          list(np.unique(np.concatenate([y, Be])))))
            continue
        k = BRAVAIS.index(b)
        r = rows[B[rows] == k]
        if what == "spacegroup":
            groups = np.array(spacegroups_of_bravais(b))
            y = np.searchsorted(groups, SG[r])
            y_extra = np.searchsorted(groups, SGe[Be == k])
            present = np.unique(np.concatenate([y, y_extra]))
            if len(present) >= 2:
                heads.append((fit_classifier(SPACEGROUP_TREES, Xc[r], y, Xe[Be == k], y_extra),
                               len(groups), list(present)))
            else:  # zero or one class seen: a constant head (uniform, or that class)
                logits = np.zeros(len(groups)) if not len(present) else np.full(len(groups), ABSENT)
                if len(present):
                    logits[present[0]] = 0.0
                heads.append((None, len(groups), logits))
            continue
        cols = [PARAMETER_NAMES.index(n) for n in FREE_PARAMETERS[b]]
        if len(r) >= 20:
            names = FREE_PARAMETERS[b]
            x = lattice_rows(Xb, SG, b, r, onehot_groups)
            boosted = [_regressor(ANGLE_TREES if n in ANGLES else LATTICE_TREES, seed)
                       .fit(x, lattice_target(P[r, c], n)) for c, n in zip(cols, names)]
            if forest_weight > 0:
                boosted = ForestMix(boosted, fit_lattice_forests(x, P[r][:, cols], names, seed),
                                    forest_weight)
            heads.append((boosted, len(cols), [fitted_on_log(n) for n in names]))
        else:  # too few rows to fit: the training mean (or a nominal cell)
            mean = P[r][:, cols].mean(axis=0) if len(r) else np.array(
                [90.0 if n in ANGLES else 5.0 for n in FREE_PARAMETERS[b]])
            heads.append((None, len(cols), mean))
    return heads


def metrics(trees, X, B, SG, P, rows) -> dict:
    """Bravais top-1/top-2, space-group top-1 given the true lattice and lattice R² of the
    tree model alone on ``rows``."""
    import torch

    x = torch.from_numpy(X[rows].astype(np.float32))
    with torch.no_grad():
        pb = trees.bravais(x).numpy()
    top = np.argsort(-pb, axis=1)
    out = {"bravais": {"top1": float(np.mean(top[:, 0] == B[rows])),
                       "top2": float(np.mean((top[:, :2] == B[rows][:, None]).any(1)))},
           "lattice_r2": {}}
    hits = 0
    for k, b in enumerate(BRAVAIS):
        r = rows[B[rows] == k]
        if not len(r):
            continue
        xr = torch.from_numpy(X[r].astype(np.float32))
        with torch.no_grad():
            ps = trees.spacegroup(xr, k).numpy()
            lp = trees.lattice(xr, k).numpy()
        groups = np.array(spacegroups_of_bravais(b))
        hits += int(np.sum(groups[ps.argmax(1)] == SG[r]))
        cols = [PARAMETER_NAMES.index(n) for n in FREE_PARAMETERS[b]]
        out["lattice_r2"][b] = {n: r2_score(P[r, c], lp[:, j])
                                for j, (n, c) in enumerate(zip(FREE_PARAMETERS[b], cols))}
    out["spacegroup_given_true_bravais_top1"] = hits / len(rows)
    return out


def _fit_and_score_rows(arr: dict, split: str, validate: bool) -> tuple[np.ndarray, np.ndarray]:
    """(rows to fit on, rows to score on) of ``split``: its training and test rows, or with
    ``validate`` the training rows minus the validation slice and that slice."""
    train_rows, test_rows = _split(arr, split)
    return validation_split(arr, train_rows, split) if validate else (train_rows, test_rows)


def _card(kind: str, split: str, arr: dict, train_rows, test_rows, trees, *, fit_s: float,
          threads: int, validate: bool, blend_weight: float = BLEND_WEIGHT, **fields) -> dict:
    """The card fields common to the formula and cell trees, then ``fields``."""
    from .._version import __version__

    card = {"kind": kind, "cryspext_version": __version__, "split": split,
            "n_train": int(len(train_rows)), "n_test": int(len(test_rows)),
            "training_data_sha256_16": str(arr["digest"]), "blend_weight": blend_weight,
            "n_trees": int(trees.roots.numel()), "n_nodes": int(trees.left_offset.numel()),
            "fit_s": fit_s, "threads": threads, **fields}
    if validate:
        card["validation_run"] = ("fitted on the training rows minus a validation slice; "
                                  "test_metrics are on that slice, not on the test rows")
    return card


LIBRARY = "scikit-learn HistGradientBoosting, fitted on the binned features"


def cod_extra(shared: Path | None, edges: np.ndarray) -> tuple[dict | None, dict | None]:
    """(``fit_heads``' ``extra`` rows, card provenance) of the COD labels' training half
    (``training.cod``) binned with ``edges``, or (None, None) without ``shared``."""
    if shared is None:
        return None, None
    from ..formula.trees import bin_features
    from .cod import COD_WEIGHT, cod_training_rows

    cod = cod_training_rows(shared, "train")
    return ({"Xb": bin_features(cod["X"], edges[: cod["X"].shape[1]]), "bravais": cod["bravais"],
             "sg": cod["sg"], "weight": COD_WEIGHT}, cod["provenance"])


def train(split: str, out_dir: Path, cache: Path = DEFAULT_CACHE, validate: bool = False,
          threads: int = 1, seed: int = 0, shared: Path | None = None) -> dict:
    """Fit the trees on the ``split`` training rows (minus the validation slice with
    ``validate``), the classifiers also on the COD labels of ``shared`` (``training.cod``;
    None: without), and write ``out_dir/formula_trees.pt`` + card; returns the card."""
    from threadpoolctl import threadpool_limits

    from ..formula.trees import bin_features, feature_edges, from_sklearn
    from ..models import save_torchscript

    t0 = time.time()
    arr = dataset_arrays(cache)
    train_rows, test_rows = _fit_and_score_rows(arr, split, validate)
    from ..formula.features import FEATURE_NAMES, FORMULA_UNIT_FEATURE_NAMES

    B, SG, P = arr["bravais"], arr["sg"], arr["params"]
    X = tree_inputs(arr, FORMULA_UNIT_INPUTS)
    edges = feature_edges(X[train_rows])
    Xb = bin_features(X, edges)
    edges, onehot = lattice_spacegroup_inputs(edges, B, SG, train_rows)
    n_classifier = X.shape[1] if CLASSIFIER_FORMULA_UNIT_INPUTS else len(FEATURE_NAMES)
    extra, cod_card = cod_extra(shared, edges)
    with threadpool_limits(threads):  # scikit-learn's OpenMP threads
        heads = fit_heads(Xb, B, SG, P, train_rows, seed, classifier_columns=n_classifier,
                          onehot_groups=onehot, forest_weight=LATTICE_FOREST_WEIGHT[split],
                          extra=extra)
    trees = from_sklearn(heads, edges, onehot_groups=onehot)
    fit_s = time.time() - t0
    card = _card(
        "formula_trees", split, arr, train_rows, test_rows, trees, fit_s=fit_s, threads=threads,
        validate=validate,
        inputs=FEATURE_NAMES + (FORMULA_UNIT_FEATURE_NAMES if FORMULA_UNIT_INPUTS else []),
        classifier_inputs=n_classifier,  # the classifiers read the first columns only
        blend=FORMULA_BLEND_RULE, bravais_blend_weight=BRAVAIS_BLEND_WEIGHT,
        length_blend_weight=LENGTH_BLEND_WEIGHT, angle_blend_weight=ANGLE_BLEND_WEIGHT,
        confidence=CONFIDENCE[split],
        settings=_settings(seed, split), output=OUTPUT, test_metrics=metrics(trees, X, B, SG, P, test_rows))
    if cod_card is not None:
        card["cod_labels"] = cod_card
    save_torchscript(trees, Path(out_dir) / "formula_trees.pt", card)
    return card


OUTPUT = ("bravais(x): (n, 14); spacegroup(x, k): (n, len(spacegroup_classes[k])); "
          "lattice(x, k): (n, n_free), Å and degrees; with lattice_by_spacegroup, "
          "lattice_given(x, k, groups, weight): (n, n_free) averaged over the space groups at "
          "positions groups (n, m) with weights (n, m)")


def _settings(seed: int, split: str) -> dict:
    return {"bravais": BRAVAIS_TREES, "spacegroup": SPACEGROUP_TREES, "lattice": LATTICE_TREES,
            "lattice_angles": ANGLE_TREES, "lattice_lengths": "ln(Å)" if LOG_LENGTHS else "Å",
            "lattice_by_spacegroup": LATTICE_BY_SPACEGROUP, "lattice_forest": LATTICE_FOREST,
            "lattice_forest_weight": LATTICE_FOREST_WEIGHT[split], "seed": seed,
            "library": LIBRARY + ("; lattice forests: scikit-learn RandomForestRegressor"
                                  if LATTICE_FOREST_WEIGHT[split] > 0 else "")}


def _saved_trees_and_rows(path: Path, cache: Path) -> tuple:
    """(card, packed trees, data arrays, training rows, scored rows, tree inputs) of a saved
    ``formula_trees.pt``: the rows its card names (split, validation run or not). Refuses a file
    whose inputs the current settings do not give."""
    from ..models import load_torchscript

    card = json.loads(path.with_suffix(".json").read_text())
    old = load_torchscript(path)
    arr = dataset_arrays(cache)
    train_rows, test_rows = _split(arr, card["split"])
    if "validation_run" in card:
        train_rows, test_rows = validation_split(arr, train_rows, card["split"])
    X = tree_inputs(arr, FORMULA_UNIT_INPUTS)
    if len(card.get("inputs", [])) != X.shape[1]:
        raise ValueError(f"{path} reads {len(card.get('inputs', []))} feature columns, the current "
                         f"settings give {X.shape[1]}: fit it anew")
    return card, old, arr, train_rows, test_rows, X


def refit_lattice(path: Path, cache: Path = DEFAULT_CACHE, threads: int = 1, seed: int = 0) -> dict:
    """Refit only the lattice regressors of a saved ``formula_trees.pt`` with the current
    settings (``LATTICE_TREES``, ``ANGLE_TREES``, ``LATTICE_BY_SPACEGROUP``, the split's
    ``LATTICE_FOREST_WEIGHT``), on the rows its
    card names (split, validation run or not); its classifiers are copied unchanged. Writes
    the file and card in place; returns the card."""
    from threadpoolctl import threadpool_limits

    from ..formula.trees import bin_features, from_sklearn
    from ..models import save_torchscript

    t0 = time.time()
    path = Path(path)
    card, old, arr, train_rows, test_rows, X = _saved_trees_and_rows(path, cache)
    B, SG, P = arr["bravais"], arr["sg"], arr["params"]
    edges = old.edges.numpy()[: X.shape[1]]  # the classifiers' bins, unchanged
    Xb = bin_features(X, edges)
    edges, onehot = lattice_spacegroup_inputs(edges, B, SG, train_rows)
    with threadpool_limits(threads):
        lattice = fit_heads(Xb, B, SG, P, train_rows, seed, onehot_groups=onehot, only_lattice=True,
                            forest_weight=LATTICE_FOREST_WEIGHT[card["split"]])
    trees = from_sklearn([(old, None, h) for h in range(15)] + lattice, edges, onehot_groups=onehot)
    scores = metrics(trees, X, B, SG, P, test_rows)
    if str(arr["digest"]) != card["training_data_sha256_16"] and scores["bravais"] != card["test_metrics"]["bravais"]:
        # A data file with another hash (e.g. the same records gzipped with another time stamp)
        # is accepted only when the copied classifier scores exactly as the card says.
        raise ValueError(f"{path} was fitted on other data ({card['training_data_sha256_16']})")
    new = _settings(seed, card["split"])  # the lattice settings and the library they name
    card.update(n_trees=int(trees.roots.numel()), n_nodes=int(trees.left_offset.numel()),
                lattice_refit_s=time.time() - t0, lattice_refit_data_sha256_16=str(arr["digest"]),
                output=OUTPUT, test_metrics=scores,
                settings={**card["settings"], "library": new["library"],
                          **{k: v for k, v in new.items() if k.startswith("lattice")}})
    save_torchscript(trees, path, card)
    return card


def refit_classifiers(path: Path, shared: Path | None, cache: Path = DEFAULT_CACHE,
                      threads: int = 1, seed: int = 0) -> dict:
    """Refit only the Bravais and space-group classifiers of a saved ``formula_trees.pt``, on
    the MP rows of its card plus the COD labels of ``shared`` (``training.cod``; None: MP rows
    only), in its bins; its lattice regressors are copied unchanged. Writes the file and card
    in place; returns the card."""
    from threadpoolctl import threadpool_limits

    from ..formula.trees import N_HEADS, bin_features, from_sklearn
    from ..models import save_torchscript

    t0 = time.time()
    path = Path(path)
    card, old, arr, train_rows, test_rows, X = _saved_trees_and_rows(path, cache)
    B, SG, P = arr["bravais"], arr["sg"], arr["params"]
    edges = old.edges.numpy()  # every head's bins, unchanged (the lattice heads are copied)
    Xb = bin_features(X, edges[: X.shape[1]])
    extra, cod_card = cod_extra(shared, edges)
    with threadpool_limits(threads):
        classifiers = fit_heads(Xb, B, SG, P, train_rows, seed,
                                classifier_columns=card.get("classifier_inputs"), extra=extra,
                                only_classifiers=True)
    onehot = old.onehot_groups.numpy() if hasattr(old, "onehot_groups") else None
    trees = from_sklearn(classifiers + [(old, None, h) for h in range(len(classifiers), N_HEADS)],
                         edges, onehot_groups=onehot)
    card.update(n_trees=int(trees.roots.numel()), n_nodes=int(trees.left_offset.numel()),
                classifier_refit_s=time.time() - t0, classifier_refit_data_sha256_16=str(arr["digest"]),
                test_metrics=metrics(trees, X, B, SG, P, test_rows))
    card.pop("cod_labels", None)
    if cod_card is not None:
        card["cod_labels"] = cod_card
    save_torchscript(trees, path, card)
    return card


def _spacegroup_trees(F: np.ndarray, y: np.ndarray, settings: dict, seed: int, threads: int):
    """One 230-way classifier (space groups 1..230 ``y``) fitted on the binned rows ``F``, packed
    as ``formula.trees.BoostedTrees`` (one head)."""
    from threadpoolctl import threadpool_limits

    from ..formula.trees import bin_features, feature_edges, from_sklearn

    edges = feature_edges(F)
    with threadpool_limits(threads):
        model = _classifier(settings, seed).fit(bin_features(F, edges), y)
    return from_sklearn([(model, 230, list(model.classes_ - 1))], edges, n_heads=1)


def train_cell_trees(split: str, out_dir: Path, cache: Path = DEFAULT_CACHE,
                     validate: bool = False, threads: int = 1, seed: int = 0) -> dict:
    """Fit the cell-geometry trees (space groups 1..230 from the cell features, on the same
    conventional + primitive training cells as ``training.cell``) and write
    ``out_dir/cell_trees.pt`` + card, mixed with the cell networks by ``formula.predict``."""
    from ..models import save_torchscript
    from .cell import fit_rows, topk

    t0 = time.time()
    arr = dataset_arrays(cache)
    train_rows, test_rows = _fit_and_score_rows(arr, split, validate)
    C_fit, y_fit = fit_rows(arr, train_rows)
    trees = _spacegroup_trees(C_fit, y_fit, CELL_TREES, seed, threads)
    fit_s = time.time() - t0
    import torch

    metrics_ = {}
    for name, key in (("conventional", "C"), ("primitive", "C_primitive")):
        with torch.no_grad():
            p = trees.probabilities(torch.from_numpy(arr[key][test_rows].astype(np.float32)), 0)
        metrics_[name] = topk(p.numpy(), arr["sg"][test_rows])
    card = _card(
        "cell_trees", split, arr, train_rows, test_rows, trees, fit_s=fit_s, threads=threads,
        validate=validate, blend_weight=CELL_BLEND_WEIGHT, n_fit_cells=int(len(y_fit)),
        blend="predict_cell: (1 - blend_weight) * cell-network mean + blend_weight * trees",
        settings={**CELL_TREES, "seed": seed, "library": LIBRARY},
        output="probabilities(x, 0): (n, 230) probabilities of space groups 1..230",
        test_metrics=metrics_)
    save_torchscript(trees, Path(out_dir) / "cell_trees.pt", card)
    return card


def train_standard_cell_trees(split: str, out_dir: Path, cache: Path = DEFAULT_CACHE,
                              validate: bool = False, threads: int = 1, seed: int = 0) -> dict:
    """Fit the standard-setting cell trees (space groups 1..230 from the cell as written,
    ``cellsetting.standard_setting_features``, on the conventional training cells) and write
    ``out_dir/cell_standard_trees.pt`` + card, for ``predict_cell(..., setting="standard")``."""
    from ..formula.cellsetting import STANDARD_FEATURE_NAMES, standard_setting_features
    from ..models import save_torchscript
    from .cell import topk

    t0 = time.time()
    arr = dataset_arrays(cache)
    train_rows, test_rows = _fit_and_score_rows(arr, split, validate)
    F_fit = standard_setting_features(arr["conventional"][train_rows])
    trees = _spacegroup_trees(F_fit, arr["sg"][train_rows], CELL_TREES, seed, threads)
    fit_s = time.time() - t0
    import torch

    metrics_ = {}
    for name in ("conventional", "niggli", "primitive"):
        F = torch.from_numpy(standard_setting_features(arr[name][test_rows]))
        with torch.no_grad():
            metrics_[name] = topk(trees.probabilities(F, 0).numpy(), arr["sg"][test_rows])
    card = _card(
        "cell_standard_trees", split, arr, train_rows, test_rows, trees, fit_s=fit_s,
        threads=threads, validate=validate, blend_weight=STANDARD_CELL_BLEND_WEIGHT,
        n_fit_cells=int(len(train_rows)), inputs=STANDARD_FEATURE_NAMES,
        blend=("predict_cell(..., setting='standard'): (1 - blend_weight) * the cell model "
               "(networks and cell trees) + blend_weight * these trees"),
        settings={**CELL_TREES, "seed": seed, "library": LIBRARY},
        output="probabilities(x, 0): (n, 230) probabilities of space groups 1..230",
        caveat="fitted on conventional standard cells: on another basis of the same lattice "
               "(Niggli-reduced, primitive) they mislead (test_metrics)",
        test_metrics=metrics_)
    save_torchscript(trees, Path(out_dir) / "cell_standard_trees.pt", card)
    return card


def joint_fit_rows(arr: dict, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(joint features, space groups 1..230) to fit on: the conventional cells of ``rows`` and
    the primitive cells of those on a centred lattice, each with its formula
    (``formula.formulacell``; the same cells as ``training.cell.fit_rows``)."""
    from ..formula.formulacell import joint_features

    centred = rows[np.array([BRAVAIS[b][1] != "P" for b in arr["bravais"][rows]], bool)]
    r = np.concatenate([rows, centred])
    C = np.concatenate([arr["C"][rows], arr["C_primitive"][centred]])
    return joint_features([str(f) for f in arr["formula"][r]], arr["X"][r], C), arr["sg"][r]


def train_formula_cell_trees(split: str, out_dir: Path, cache: Path = DEFAULT_CACHE,
                             validate: bool = False, threads: int = 1, seed: int = 0) -> dict:
    """Fit the joint formula-and-cell trees (space groups 1..230 from
    ``formulacell.joint_features``) and write ``out_dir/formula_cell_trees.pt`` + card, mixed
    into ``predict_cell(..., formula=...)`` with weight ``FORMULA_CELL_BLEND_WEIGHT``."""
    import torch

    from ..formula.formulacell import JOINT_FEATURE_NAMES, joint_features
    from ..models import save_torchscript
    from .cell import topk

    t0 = time.time()
    arr = dataset_arrays(cache)
    train_rows, test_rows = _fit_and_score_rows(arr, split, validate)
    F_fit, y_fit = joint_fit_rows(arr, train_rows)
    trees = _spacegroup_trees(F_fit, y_fit, FORMULA_CELL_TREES, seed, threads)
    fit_s = time.time() - t0
    formulas = [str(f) for f in arr["formula"][test_rows]]
    metrics_ = {}
    for name, key in (("conventional", "C"), ("primitive", "C_primitive")):
        F = joint_features(formulas, arr["X"][test_rows], arr[key][test_rows])
        with torch.no_grad():
            metrics_[name] = topk(trees.probabilities(torch.from_numpy(F), 0).numpy(), arr["sg"][test_rows])
    card = _card(
        "formula_cell_trees", split, arr, train_rows, test_rows, trees, fit_s=fit_s,
        threads=threads, validate=validate, blend_weight=FORMULA_CELL_BLEND_WEIGHT,
        n_fit_cells=int(len(y_fit)), inputs=JOINT_FEATURE_NAMES,
        blend=("predict_cell(..., formula=...): (1 - blend_weight) * the naive-Bayes combination "
               "of the formula and cell models (with the volume term) + blend_weight * these trees"),
        settings={**FORMULA_CELL_TREES, "seed": seed, "library": LIBRARY},
        output="probabilities(x, 0): (n, 230) probabilities of space groups 1..230",
        test_metrics=metrics_)
    save_torchscript(trees, Path(out_dir) / "formula_cell_trees.pt", card)
    return card


def repack(path: Path) -> None:
    """Re-script a saved ``formula_trees.pt`` with the current ``BoostedTrees`` code (same
    tensors) and write the current mixing weights (``BLEND_WEIGHT``, ``BRAVAIS_BLEND_WEIGHT``,
    ``LENGTH_BLEND_WEIGHT``, ``ANGLE_BLEND_WEIGHT``), blend rule and ``CONFIDENCE`` onto its
    card: for changes that leave the trees as they are."""
    from ..formula.trees import BoostedTrees
    from ..models import load_torchscript, save_torchscript

    path = Path(path)
    old = load_torchscript(path)
    names = ["edges", "feature", "bin_threshold", "left_offset", "value", "roots", "tree_column",
             "tree_offsets", "column_offsets", "baseline"]
    exp_columns = old.exp_columns.clone() if hasattr(old, "exp_columns") else None  # older files: none
    onehot = old.onehot_groups.clone() if hasattr(old, "onehot_groups") else None
    new = BoostedTrees(*(getattr(old, n).clone() for n in names), int(old.max_depth), exp_columns, onehot)
    card = json.loads(path.with_suffix(".json").read_text())
    card.update(blend=FORMULA_BLEND_RULE, blend_weight=BLEND_WEIGHT,
                bravais_blend_weight=BRAVAIS_BLEND_WEIGHT, length_blend_weight=LENGTH_BLEND_WEIGHT,
                angle_blend_weight=ANGLE_BLEND_WEIGHT, confidence=CONFIDENCE[card["split"]])
    save_torchscript(new, path, card)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cryspext.training.formula_trees", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", choices=["random", "future"], default="random")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="work folder of the data step")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default: the package's models/formula for random, "
                         "cache/formula/future for future)")
    ap.add_argument("--validate", action="store_true",
                    help="fit without the validation slice and score on it (no test rows)")
    ap.add_argument("--threads", type=int, default=1, help="threads for fitting (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cell", action="store_true",
                    help="fit the cell-geometry trees (cell_trees.pt) instead of the formula trees")
    ap.add_argument("--standard-cell", action="store_true",
                    help="fit the standard-setting cell trees (cell_standard_trees.pt: the cell as "
                         "written, for predict_cell(..., setting='standard')) instead")
    ap.add_argument("--formula-cell", action="store_true",
                    help="fit the joint formula-and-cell trees (formula_cell_trees.pt: the formula "
                         "and its cell read together, for predict_cell(..., formula=...)) instead")
    ap.add_argument("--repack", type=Path, default=None, metavar="PT",
                    help="only re-script an existing formula_trees.pt with the current code and "
                         "write the current mixing weights and confidence constants onto its card")
    ap.add_argument("--refit-lattice", type=Path, default=None, metavar="PT",
                    help="refit only the lattice regressors of an existing formula_trees.pt (same "
                         "split and rows as its card) with the current settings; the classifiers "
                         "are kept")
    ap.add_argument("--refit-classifiers", type=Path, default=None, metavar="PT",
                    help="refit only the Bravais and space-group classifiers of an existing "
                         "formula_trees.pt (same split and rows as its card, plus the COD labels "
                         "unless --no-cod); the lattice regressors are kept")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED,
                    help="shared/data folder with mp/cod_formula_sg.json.gz (the COD labels)")
    ap.add_argument("--no-cod", action="store_true",
                    help="fit the classifiers on the Materials Project rows only")
    a = ap.parse_args(argv)
    shared = None if a.no_cod else a.shared
    if a.refit_classifiers:
        card = refit_classifiers(a.refit_classifiers, shared, a.cache, a.threads, a.seed)
        print(json.dumps({k: card[k] for k in ("split", "n_trees", "n_nodes", "classifier_refit_s",
                                               "test_metrics")}))
        return 0
    if a.repack:
        repack(a.repack)
        return 0
    if a.refit_lattice:
        card = refit_lattice(a.refit_lattice, a.cache, a.threads, a.seed)
        print(json.dumps({k: card[k] for k in ("split", "n_trees", "n_nodes", "lattice_refit_s",
                                               "test_metrics")}))
        return 0
    out = a.out or (MODEL_DIR if a.split == "random" else a.cache / "future")
    if a.cell:
        card = train_cell_trees(a.split, out, a.cache, a.validate, a.threads, a.seed)
    elif a.formula_cell:
        card = train_formula_cell_trees(a.split, out, a.cache, a.validate, a.threads, a.seed)
    elif a.standard_cell:
        card = train_standard_cell_trees(a.split, out, a.cache, a.validate, a.threads, a.seed)
    else:
        card = train(a.split, out, a.cache, a.validate, a.threads, a.seed, shared)
    print(json.dumps({k: card[k] for k in ("kind", "split", "n_trees", "n_nodes", "fit_s",
                                           "test_metrics")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
