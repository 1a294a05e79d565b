"""COD formula → space-group labels as extra training rows for the formula classifiers.

The Materials Project (MP) formulas the models learn from are whole-number formulas of ordered
structures. The Crystallography Open Database table ``shared/data/mp/cod_formula_sg.json.gz``
(``[formula, cod_id, space group]`` rows, see its README) adds experimental compounds, most of
them with fractional amounts (solid solutions, doped compounds). Its rows carry no lattice
parameters, so they can teach only the Bravais and space-group classifiers.

Rows used: compositions that are in no MP entry (``mp_ehull.json.gz``, matched by mole
fractions), so no MP test formula is among them; one row per composition, labelled with its
most frequent COD space group (ties: the first seen). The rows are halved by chemical system
(``system_halves``): the training half is fitted on, the held-out half (chemical systems no
training row has) is kept for the out-of-distribution benchmark
(``benchmarks/formula_confidence.py``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np


COD_FILE = Path("mp") / "cod_formula_sg.json.gz"  # inside the shared/data folder
MP_FILE = Path("mp") / "mp_ehull.json.gz"
COD_SOURCE = ("Crystallography Open Database (public domain / CC0), formula and space group per "
              "entry as filtered by dara-xrd 1.3.0 (cod_filtered_info_2024; MIT); provenance in "
              "shared/data/mp/README.md")
HALVES_SEED = 0
# Sample weight of a COD row next to an MP row. Chosen on validation rows with
# benchmarks/cod_labels_validation.py (halves by chemical system, Bravais trees of 400 rounds):
# Bravais top-1 on the held-out COD half 56.06 % at weight 1 against 51.61 % at 0.3 (29.13 %
# without COD rows); the MP validation slice 64.73 / 64.82 / 64.77 %, within its noise.
COD_WEIGHT = 1.0


def composition_key(composition: dict) -> tuple:
    """A composition as sorted (element, mole fraction to 4 decimals) pairs."""
    total = sum(composition.values())
    return tuple(sorted((el, round(n / total, 4)) for el, n in composition.items()))


def _key_or_none(formula):
    """``composition_key`` of a formula, or None where ``predict_formula`` would refuse it
    (unparsable, elements without property data)."""
    from ..formula.features import formula_unit_features
    from ..formula.parse import as_composition

    try:
        composition = as_composition(formula)
        formula_unit_features(composition)
        return composition_key(composition)
    except (ValueError, TypeError):
        return None


def cod_label_rows(cod_path: Path, mp_path: Path) -> tuple[list[dict], np.ndarray]:
    """(compositions, space groups 1..230) of the COD table's formulas whose composition is in
    no MP entry of ``mp_path``: one row per composition, its most frequent COD space group."""
    from ..formula.parse import as_composition

    mp_keys = {_key_or_none(f) for f in json.load(gzip.open(mp_path, "rt"))}
    groups: dict[tuple, Counter] = {}
    first: dict[tuple, dict] = {}
    for formula, _cod_id, sg in json.load(gzip.open(cod_path, "rt")):
        k = _key_or_none(formula)
        if k is None or k in mp_keys or not 1 <= int(sg) <= 230:
            continue
        groups.setdefault(k, Counter())[int(sg)] += 1
        first.setdefault(k, as_composition(formula))
    return [first[k] for k in groups], np.array([c.most_common(1)[0][0] for c in groups.values()])


def system_halves(compositions: list[dict], seed: int = HALVES_SEED) -> np.ndarray:
    """(n,) bool, True for the training half: whole chemical systems (element sets) in a seeded
    order until half of the rows, so the other half holds only systems no training row has."""
    systems, inverse = np.unique([" ".join(sorted(c)) for c in compositions], return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(systems))
    cumulative = np.cumsum(np.bincount(inverse)[order])
    return np.isin(inverse, order[: int(np.searchsorted(cumulative, len(compositions) // 2)) + 1])


def cod_features(compositions: list[dict]) -> np.ndarray:
    """(n, columns) float32 inputs of the trees for ``compositions``: the formula features,
    then the formula-unit features (the columns of ``training.formula_trees.tree_inputs``)."""
    from ..formula.features import formula_features, formula_unit_rows

    return np.concatenate([np.stack([formula_features(c) for c in compositions]),
                           formula_unit_rows(compositions)], axis=1).astype(np.float32)


def bravais_indices(spacegroups) -> np.ndarray:
    """Index into ``lattice.BRAVAIS`` of each space group (1..230)."""
    from ..formula.lattice import BRAVAIS, bravais_of_spacegroup

    return np.array([BRAVAIS.index(bravais_of_spacegroup(int(s))) for s in spacegroups])


def cod_halves(shared: Path, halves: tuple[str, ...] = ("train", "held_out")) -> dict[str, dict]:
    """The COD rows of ``halves`` (``"train"``, ``"held_out"``) as the trees read them:
    ``{half: {"X"`` (``cod_features``), ``"bravais"`` (index into ``BRAVAIS``), ``"sg"``,
    ``"compositions"``, ``"provenance"`` (for a card)``}}``. ``shared``: the ``shared/data``
    folder."""
    if not set(halves) <= {"train", "held_out"}:
        raise ValueError(f"halves must be 'train' or 'held_out', not {halves!r}")
    cod_path, mp_path = Path(shared) / COD_FILE, Path(shared) / MP_FILE
    for p in (cod_path, mp_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found: the COD labels need shared/data/mp")
    compositions, sg = cod_label_rows(cod_path, mp_path)
    train = system_halves(compositions)
    digest = hashlib.sha256(cod_path.read_bytes()).hexdigest()[:16]
    out = {}
    for half in halves:
        keep = np.nonzero(train if half == "train" else ~train)[0]
        comps = [compositions[i] for i in keep]
        out[half] = {
            "X": cod_features(comps), "sg": sg[keep], "compositions": comps,
            "bravais": bravais_indices(sg[keep]),
            "provenance": {
                "file": str(COD_FILE), "sha256_16": digest, "source": COD_SOURCE,
                "rows": ("compositions in no Materials Project entry, labelled with their most "
                         "frequent COD space group"),
                "n_compositions": len(compositions), "half": half, "n_rows": int(len(keep)),
                "halves": f"by chemical system, seed {HALVES_SEED} (training.cod.system_halves)",
                "weight": COD_WEIGHT, "used_by": "the Bravais and space-group classifiers only"}}
    return out


def cod_training_rows(shared: Path, half: str = "train") -> dict:
    """The COD rows of one half (``"train"`` or ``"held_out"``), as ``cod_halves`` gives them."""
    return cod_halves(shared, (half,))[half]
