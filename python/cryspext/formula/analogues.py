"""Known compounds that resemble a formula: the same stoichiometry, the nearest elements.

A chemist's first guess at the structure of a new compound is a known one with the same
stoichiometry in which every element is replaced by a similar one (NaMnPO4 from LiFePO4).
``find_analogues`` makes that guess explicit, as evidence to read next to the models' answer:
it lists the nearest such compounds among the training formulas of the shipped models
(Materials Project, package data ``models/formula/analogues.npz``, written by ``python -m
cryspext.training.formula analogues``) with their space groups and conventional cells.

* *Pattern*: the whole-number amounts of the reduced formula, its elements ordered by
  electronegativity (ties: Mendeleev number). LiFePO4 and NaMnPO4 are both (1, 1, 1, 4):
  Li/Na, Fe/Mn, P/P, O/O sit at the same positions. Only formulas of the same pattern are
  compared.
* *Distance*: Σ |ΔMendeleev number| over those positions (Pettifor's chemical scale, on which
  elements close together tend to take the same structures), 0 for the formula itself.

``analogue_vote`` turns the ``VOTE_K`` nearest into Bravais-lattice and space-group
probabilities (weights exp(−distance / ``VOTE_TAU``)): a baseline for
``benchmarks/formula_analogues.py``, and with share ``predict.BRAVAIS_VOTE_SHARE`` a part of
``predict_formula``'s Bravais probabilities for whole-number formulas
(``FormulaModels.with_vote``).

A fractional formula (a solid solution) has no pattern of its own: its analogues are those of
its heaviest end member (``vegard.end_members``: Ba0.5Sr0.5TiO3 → BaTiO3), and the answer says
so.

``seed_structure`` builds a starting structure (for a first-principles relaxation) from an
analogue (of the nearest few, the one whose space group the formula model finds likeliest):
its conventional cell with every element replaced by the formula's element at the same pattern
position, the cell scaled to the formula's summed elemental volumes. The table stores each
analogue's atoms as the asymmetric unit of spglib's conventional standard cell (fractions in
units of 1/65536) and its Hall number, whose symmetry operations regenerate the rest.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .predict import _models, _written

__all__ = ["VOTE_K", "VOTE_TAU", "SEED_K", "SEED_TAU", "AnalogueTable", "pattern", "find_analogues",
           "analogue_vote", "load_table", "seed_structure", "seed_from_row", "expand_sites"]

# The vote's neighbours and distance scale, chosen on the validation slices of both splits
# (``python benchmarks/formula_analogues.py --scan``; the test rows are never read) by the
# largest sum of Bravais top-1 + top-2 over the two slices, on the formulas that have
# analogues. K / tau: random top-1 / top-2, future top-1 / top-2 (%):
# 10 / 3: 63.1 / 77.0, 24.9 / 33.7;  20 / 5: 62.2 / 77.3, 25.1 / 35.3;
# 10 / 10: 62.0 / 77.2, 25.8 / 37.3 (the largest sum, 202.3);  20 / 10: 60.8 / 76.6, 26.0 / 37.0;
# 30 / 10: 60.0 / 76.1, 25.9 / 37.3;  20 / 20: 59.3 / 75.8, 25.5 / 37.7;  10 / no weighting:
# 57.8 / 75.1, 24.7 / 37.3;  the single nearest: 59.4 / 65.2, 21.3 / 25.7.
VOTE_K = 10
VOTE_TAU = 10.0

# The most elements a stored formula may have (Materials Project's formulas have at most 9); a
# larger formula has no pattern in the table, so no analogues.
MAX_ELEMENTS = 10
_WHOLE = 1e-6  # an amount within this of a whole number is that number
FRACTION_SCALE = 65536  # stored site fractions are integers in units of 1/FRACTION_SCALE
_SAME_SITE = 1e-3  # regenerated sites closer than this (fractional, each axis) are one site

# seed_structure's choice among the SEED_K nearest analogues with a structure: the largest
# P(the analogue's space group | formula) · exp(−distance / SEED_TAU), P from the formula model.
# Chosen on the random split's validation slice with validation models fitted without it
# (``python benchmarks/seed_choice_validation.py``; rule: the best (K, τ) if it beats the nearest
# analogue by ≥ 2 points): seeds that are the formula's own structure, nearest 55.1 %, K 3 / τ 5
# 58.6 %, K 5 / τ 5 59.0 %, K 5 / probability alone 58.7 % (1500 slice formulas).
SEED_K = 5
SEED_TAU = 5.0


def pattern(composition: dict[str, float]) -> tuple[tuple[int, ...], np.ndarray, dict[str, int]]:
    """(amounts, Mendeleev numbers, reduced composition) of a whole-number ``composition``
    ({element: amount}): the amounts of the reduced formula and its elements' Mendeleev
    numbers, both ordered by electronegativity (ties: Mendeleev number). ``ValueError`` for
    fractional amounts, unknown elements or an empty formula."""
    from .elements import element_table
    from .features import _IDX, _atomic_numbers, reduced_amounts

    comp = {el: float(x) for el, x in composition.items() if float(x) != 0.0}
    if not comp:
        raise ValueError("empty formula")
    if not all(np.isfinite(x) for x in comp.values()):
        raise ValueError(f"{composition}: the amounts must be finite numbers")
    amounts = [round(x) for x in comp.values()]
    if any(abs(x - n) > _WHOLE or n < 1 for x, n in zip(comp.values(), amounts)):
        raise ValueError(f"{composition}: the amounts must be positive whole numbers "
                         "(a fractional formula's analogues are those of its end members)")
    amounts = [int(n) for n in reduced_amounts(amounts)]
    z = _atomic_numbers(comp)
    table = element_table()[0][z - 1]
    chi, mendeleev = table[:, _IDX["electronegativity"]], table[:, _IDX["mendeleev_number"]]
    order = np.lexsort((mendeleev, chi))
    elements = list(comp)
    reduced = {elements[i]: amounts[i] for i in order}
    return tuple(amounts[i] for i in order), mendeleev[order].astype(np.int16), reduced


def _key(amounts) -> str:
    return "-".join(str(int(n)) for n in amounts)


class AnalogueTable:
    """The known formulas (``analogues.npz``) grouped by pattern. Columns: ``formula``,
    ``mp_id`` (int), ``spacegroup``, ``bravais`` (index into ``lattice.BRAVAIS``),
    ``conventional`` (a b c α β γ of spglib's conventional standard cell, Å and degrees;
    hexagonal axes for R groups), ``key`` (the pattern, "1-1-1-4") and ``mendeleev`` (n,
    ``MAX_ELEMENTS``, padded with 0). Tables with structures also have ``hall`` (spglib's Hall
    number of the conventional standard cell, 0 where no structure is stored),
    ``site_offsets`` (n + 1; the sites of row i are ``site_offsets[i]:site_offsets[i + 1]``),
    ``site_element`` (the site's element as its position in the pattern) and ``site_frac``
    (fractional coordinates × ``FRACTION_SCALE``, uint16): the asymmetric unit."""

    def __init__(self, columns: dict[str, np.ndarray], card: dict | None = None):
        self.columns, self.card = columns, card or {}
        keys = np.asarray(self.columns["key"], dtype=str)
        if len(keys) == 0:
            raise ValueError("an analogue table needs at least one formula")
        order = np.argsort(keys, kind="stable")
        bounds = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1], True])
        self.rows = {str(keys[order[s]]): order[s:e] for s, e in zip(bounds[:-1], bounds[1:])}

    @classmethod
    def read(cls, path: str | Path) -> "AnalogueTable":
        """The table of an ``analogues.npz`` file and its card (``analogues.json``)."""
        path = Path(path)
        with np.load(path, allow_pickle=False) as f:
            columns = {k: f[k] for k in f.files}
        return cls(columns, json.loads(path.with_suffix(".json").read_text()))

    def __len__(self) -> int:
        return len(self.columns["key"])

    def has_structures(self) -> bool:
        return "hall" in self.columns

    def sites(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(fractional coordinates (n, 3), element positions in the pattern (n,)) of every atom
        of row ``row``'s conventional standard cell, regenerated from its asymmetric unit
        (``expand_sites``). ``ValueError`` where the table stores no structure for the row."""
        c = self.columns
        if not self.has_structures() or int(c["hall"][row]) == 0:
            raise ValueError(f"no structure is stored for {c['formula'][row]}")
        s, e = int(c["site_offsets"][row]), int(c["site_offsets"][row + 1])
        return expand_sites(int(c["hall"][row]), c["site_frac"][s:e] / FRACTION_SCALE,
                            c["site_element"][s:e])

    def nearest(self, amounts, mendeleev: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, distances) of the ``n`` nearest formulas of pattern ``amounts`` (fewer when
        the table has fewer; none when it has the pattern not at all), nearest first, ties by
        row (ascending Materials Project id within a pattern of equal distance)."""
        rows = self.rows.get(_key(amounts))
        if rows is None:
            return np.zeros(0, int), np.zeros(0)
        m = self.columns["mendeleev"][rows, : len(amounts)].astype(np.int32)
        d = np.abs(m - mendeleev.astype(np.int32)).sum(axis=1)
        pick = np.lexsort((self.columns["mp_id"][rows], d))[:n]
        return rows[pick], d[pick].astype(float)


def load_table(directory: str | Path | None = None) -> AnalogueTable:
    """The analogue table of a model folder (default: the shipped models), read once per file."""
    from ..models import MODELS_DIR

    path = (Path(directory) if directory else MODELS_DIR / "formula") / "analogues.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; write it with "
                                "'python -m cryspext.training.formula analogues'")
    return _read_table(str(path.resolve()))


@lru_cache(maxsize=4)
def _read_table(path: str) -> AnalogueTable:
    return AnalogueTable.read(path)


def _whole_composition(composition: dict[str, float]) -> tuple[dict[str, float], str | None]:
    """``composition`` itself when its amounts are whole, else its heaviest end member and
    that end member written as a formula."""
    from .vegard import end_members, is_fractional

    if not is_fractional(composition):
        return composition, None
    member = end_members(composition)[0][0]
    return member, _written(member)


def find_analogues(formula, n: int = 5, model_dir: str | Path | None = None) -> dict:
    """The ``n`` known compounds nearest to ``formula`` (str, pymatgen ``Composition`` or
    {element: amount}) with the same pattern (module docstring). Returns ``{"formula",
    "pattern", "of", "analogues": [...]}``: ``of`` is the end member searched for a fractional
    formula (else None); each analogue has ``formula``, ``mp_id`` ("mp-…"), ``spacegroup``,
    ``bravais``, ``distance`` (Σ |ΔMendeleev number|; 0: the same elements) and
    ``conventional`` ({a, b, c: Å; alpha, beta, gamma: degrees}, spglib's conventional
    standard cell, hexagonal axes for R groups). The list is empty when no training formula
    has the pattern (new stoichiometries: 8 % of the random split's test formulas, 12 % of the
    newest Materials Project ones, ``benchmarks/RESULTS_formula_analogues.md``).

    ``"vote"``: the Bravais lattices of the ``VOTE_K`` nearest analogues, as [{bravais,
    share}] by weight share (weights exp(−distance / ``VOTE_TAU``)), largest first; None
    without analogues. Where the vote's first lattice is the models' first, the models were
    right far more often than where it is not (the benchmark's table by agreement)."""
    from .lattice import BRAVAIS, PARAMETER_NAMES
    from .parse import as_composition

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    comp = as_composition(formula)
    whole, of = _whole_composition(comp)
    table = load_table(model_dir)
    amounts, mendeleev, _ = pattern(whole)
    rows, dist = table.nearest(amounts, mendeleev, max(int(n), VOTE_K))
    vote = None
    if len(rows):
        w = _votes(table, rows[:VOTE_K], dist[:VOTE_K], VOTE_TAU)
        vote = [{"bravais": BRAVAIS[i], "share": round(float(w[i] / w.sum()), 4)}
                for i in np.argsort(-w, kind="stable") if w[i] > 0]
    rows, dist = rows[:n], dist[:n]
    c = table.columns
    found = [{"formula": str(c["formula"][r]), "mp_id": f"mp-{int(c['mp_id'][r])}",
              "spacegroup": int(c["spacegroup"][r]), "bravais": BRAVAIS[int(c["bravais"][r])],
              "distance": float(d),
              "conventional": {p: round(float(v), 4) for p, v in zip(PARAMETER_NAMES, c["conventional"][r])}}
             for r, d in zip(rows, dist)]
    return {"formula": formula if isinstance(formula, str) else None, "pattern": list(amounts),
            "of": of, "analogues": found, "vote": vote}


def expand_sites(hall: int, frac: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All sites of a cell from its asymmetric unit: every symmetry operation of spglib's Hall
    number ``hall`` applied to the fractional coordinates ``frac`` (n, 3), an image within
    ``_SAME_SITE`` of an earlier image of the same site dropped. Returns (fractions in [0, 1) (m, 3), the label
    of each site)."""
    import spglib

    sym = spglib.get_symmetry_from_database(int(hall))
    if sym is None:
        raise ValueError(f"unknown Hall number {hall}")
    frac = np.asarray(frac, float).reshape(-1, 3)
    labels = np.asarray(labels)
    # (sites, operations, 3): the images of one site form its orbit; only those can coincide.
    images = (np.einsum("kij,nj->nki", sym["rotations"], frac) + sym["translations"][None]) % 1.0
    earlier = np.tri(images.shape[1], k=-1, dtype=bool)
    keep = np.empty(images.shape[:2], bool)
    for i, orbit in enumerate(images):  # one site at a time: memory (operations², not more)
        d = orbit[:, None, :] - orbit[None, :, :]
        d -= np.round(d)  # periodic: 0.9999 and 0.0001 are one position
        # an image is kept unless an earlier image of the same site is there
        keep[i] = ~((np.abs(d).max(axis=2) < _SAME_SITE) & earlier).any(axis=1)
    return images[keep], np.repeat(labels, keep.sum(axis=1))


def seed_structure(formula, rank: int = 0, scale: bool = True, choose: str = "model",
                   model_dir: str | Path | None = None):
    """A starting structure for ``formula`` (str, pymatgen ``Composition`` or mapping) from a
    known analogue (module docstring): the analogue's conventional standard cell with each
    element replaced by the formula's element at the same pattern position (LiFePO4 → NaMnPO4:
    Li → Na, Fe → Mn). With ``scale`` the cell is scaled isotropically by the ratio of the two
    formulas' summed elemental ground-state volumes (``features.formula_unit_features``);
    without, it keeps the analogue's cell. A guess to relax, not a prediction of positions: how
    often it is the right structure is in ``benchmarks/RESULTS_formula_seeds.md``.

    Which analogue: with ``choose="model"`` the candidates are the ``SEED_K`` nearest with a
    stored structure, ordered by P(their space group | formula) of the formula model (in
    ``model_dir``, default the shipped one; for a fractional formula, of its end member) times
    exp(−distance / ``SEED_TAU``), then the others by distance; ``choose="nearest"`` orders
    all by distance (no model run). ``rank`` picks from that order (0: the first).

    Returns an ``ase.Atoms`` (periodic) whose ``info`` holds ``seed_of`` (the analogue's
    formula), ``mp_id``, ``spacegroup`` (the analogue's), ``distance``, ``volume_scale``,
    ``spacegroup_probability`` (the model's, NaN with ``choose="nearest"``) and ``end_member``
    (the end member used for a fractional formula, else None). ``ValueError`` when no known
    compound has the formula's pattern, or fewer than ``rank + 1`` of them have a structure."""
    from .parse import as_composition

    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
        raise ValueError(f"rank must be a non-negative integer, got {rank!r}")
    if choose not in ("model", "nearest"):
        raise ValueError(f"choose must be 'model' or 'nearest', got {choose!r}")
    comp = as_composition(formula)
    whole, of = _whole_composition(comp)
    table = load_table(model_dir)
    if not table.has_structures():
        raise ValueError("this analogue table stores no structures; rewrite it with "
                         "'python -m cryspext.training.formula analogues'")
    amounts, mendeleev, reduced = pattern(whole)
    rows, dist = table.nearest(amounts, mendeleev, len(table))
    order = np.flatnonzero(table.columns["hall"][rows] != 0)  # positions in rows, nearest first
    if len(order) <= rank:
        raise ValueError(f"{formula}: {len(order)} known compound(s) of its stoichiometry "
                         f"{list(amounts)} have a stored structure, rank {rank} asked")
    p = np.full(len(order), np.nan)
    if choose == "model":
        models = _models(str(model_dir) if model_dir else None)
        # the models' own probabilities, without the analogue vote: the distance term already
        # weighs the analogues (the choice was validated so)
        p_sg = models.spacegroup_distribution(models.features([reduced]))[0]
        head = order[:SEED_K]
        p[: len(head)] = p_sg[table.columns["spacegroup"][rows[head]].astype(int) - 1]
        score = p[: len(head)] * np.exp(-dist[head] / SEED_TAU)
        first = np.argsort(-score, kind="stable")
        order = np.concatenate([head[first], order[SEED_K:]])
        p[: len(head)] = p[: len(head)][first]
    row, d = rows[order[rank]], float(dist[order[rank]])
    atoms = seed_from_row(table, row, reduced, d, scale)
    atoms.info.update(end_member=of, spacegroup_probability=float(p[rank]))
    return atoms


def seed_from_row(table: AnalogueTable, row: int, composition, distance: float = float("nan"),
                  scale: bool = True):
    """``seed_structure``'s answer built on table row ``row`` for the whole-number
    ``composition`` (str or mapping) of the same pattern; ``distance`` is only recorded."""
    from ase import Atoms
    from ase.cell import Cell

    from .features import formula_unit_features
    from .parse import as_composition, parse_formula

    reduced = pattern(as_composition(composition))[2]
    c = table.columns
    analogue = str(c["formula"][row])
    if _key(pattern(reduced)[0]) != c["key"][row]:
        raise ValueError(f"{analogue} and {_written(reduced)} have different stoichiometry patterns")
    frac, position = table.sites(row)
    elements = list(reduced)
    ratio = 1.0
    if scale:
        ratio = float(formula_unit_features(reduced)[1] / formula_unit_features(parse_formula(analogue))[1])
    # The data step rounded the cells to 5 decimals; rounding again drops the float32 digits.
    conv = np.round(np.array(c["conventional"][row], float), 5)
    conv[:3] *= ratio ** (1.0 / 3.0)
    atoms = Atoms([elements[int(j)] for j in position], scaled_positions=frac,
                  cell=Cell.fromcellpar(conv), pbc=True)
    atoms.info.update(seed_of=analogue, mp_id=f"mp-{int(c['mp_id'][row])}",
                      spacegroup=int(c["spacegroup"][row]), distance=float(distance),
                      volume_scale=round(ratio, 6), end_member=None)
    return atoms


def _votes(table: AnalogueTable, rows: np.ndarray, dist: np.ndarray, tau: float,
           column: str = "bravais", classes: int = 14) -> np.ndarray:
    """Summed weights exp(−distance / tau) of analogues ``rows`` per class of ``column``
    (Bravais index, or space group − 1 with ``column="spacegroup"``, ``classes=230``)."""
    labels = table.columns[column][rows] - (1 if column == "spacegroup" else 0)
    return np.bincount(labels, weights=np.exp(-dist / tau), minlength=classes)


def analogue_vote(table: AnalogueTable, compositions, k: int = VOTE_K, tau: float = VOTE_TAU):
    """(Bravais probabilities (n, 14), space-group probabilities (n, 230), covered (n,) bool)
    of ``compositions`` by the weighted vote of their ``k`` nearest analogues in ``table``
    (weights exp(−distance / tau)). A formula without analogues, or a fractional one, gets the
    table's class frequencies and ``covered`` False."""
    from .lattice import BRAVAIS

    c = table.columns
    prior_b = np.bincount(c["bravais"], minlength=len(BRAVAIS)) / len(table)
    prior_sg = np.bincount(c["spacegroup"] - 1, minlength=230) / len(table)
    pb = np.tile(prior_b, (len(compositions), 1))
    psg = np.tile(prior_sg, (len(compositions), 1))
    covered = np.zeros(len(compositions), bool)
    for i, comp in enumerate(compositions):
        try:
            amounts, mendeleev, _ = pattern(comp)
        except ValueError:
            continue
        rows, dist = table.nearest(amounts, mendeleev, k)
        if len(rows) == 0:
            continue
        # A little of the frequencies keeps every class possible (top-k beyond the voters).
        b = _votes(table, rows, dist, tau) + 0.1 * prior_b
        s = _votes(table, rows, dist, tau, "spacegroup", 230) + 0.1 * prior_sg
        pb[i], psg[i], covered[i] = b / b.sum(), s / s.sum(), True
    return pb, psg, covered


def table_columns(formulas, mp_ids, spacegroups, bravais, conventional) -> dict[str, np.ndarray]:
    """The columns of ``analogues.npz`` for whole-number training formulas (``training.formula
    analogues``); a formula whose pattern cannot be formed raises."""
    keys, mend = [], np.zeros((len(formulas), MAX_ELEMENTS), np.int16)
    from .parse import parse_formula

    for i, f in enumerate(formulas):
        amounts, mendeleev, _ = pattern(parse_formula(str(f)))
        if len(amounts) > MAX_ELEMENTS:
            raise ValueError(f"{f}: {len(amounts)} elements, at most {MAX_ELEMENTS} are stored")
        keys.append(_key(amounts))
        mend[i, : len(amounts)] = mendeleev
    conv = np.asarray(conventional, np.float32)
    if conv.shape != (len(formulas), 6) or not np.isfinite(conv).all():
        raise ValueError("conventional: expected finite (n, 6) cell parameters")
    if (conv[:, :3] <= 0).any():
        raise ValueError("conventional: lattice lengths must be positive")
    return {"formula": np.asarray([str(f) for f in formulas]), "mp_id": np.asarray(mp_ids, np.int64),
            "spacegroup": np.asarray(spacegroups, np.int16), "bravais": np.asarray(bravais, np.int8),
            "conventional": conv, "key": np.asarray(keys), "mendeleev": mend}
