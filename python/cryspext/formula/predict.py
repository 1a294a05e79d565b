"""Ranked Bravais lattices, space groups and lattice parameters from a formula or a unit cell.

``predict_formula`` follows CRYSPNet (Fig. 3) — Bravais lattice, then space group and lattice
parameters given that lattice — with one joint network per ensemble member instead of separate
per-lattice networks (``nets.JointEnsemble``): its 230-way space-group softmax, summed within
each lattice, gives the Bravais probabilities; conditioned on a lattice, that lattice's space
groups; its lattice outputs, the free parameters of each lattice. Where the model folder also
holds ``formula_trees.pt`` (gradient-boosted trees on the same features, ``trees``), every
probability and parameter is the mix ``(1 − w) · network mean + w · trees`` with ``w`` from its
card (``blend_weight`` for the space groups; ``bravais_blend_weight`` for the Bravais lattices,
``length_blend_weight`` for the lattice lengths and ``angle_blend_weight`` for the free lattice
angles). Every model reads the intensive features
``features.FEATURE_NAMES``; a model whose card lists ``inputs`` beyond them (the shipped ones
do) also reads ``features.FORMULA_UNIT_FEATURE_NAMES`` (``FormulaModels.features`` builds such
rows). The spread across the network members is one confidence measure: ``spread`` is the
standard deviation of one class's probability over the members, a parameter's ``std`` the
standard deviation of the members' predictions (Å or degrees). Calibrated on a validation
slice (``formula.confidence``): the Bravais probabilities are tempered, and each lattice parameter
gets an ``uncertainty``, a σ of its error built from the members' std and a floor.

Where the model folder holds the analogue table (``analogues.npz``, ``formula.analogues``), the
Bravais probabilities of a whole-number formula with known analogues are then mixed with their
vote: ``(1 − BRAVAIS_VOTE_SHARE) · p + BRAVAIS_VOTE_SHARE · vote`` (``analogues.analogue_vote``).

``predict_cell`` ranks space groups from the six cell parameters alone (seed 001), after making
the cell canonical (metric lattice type + Niggli reduction), so any basis of a lattice gives the
same answer. With ``cell_trees.pt`` next to the cell networks, its probabilities are mixed in
the same way; the spread is again that of the networks.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import cellvolume
from .cellgeom import TRAINING_LENGTHS, canonical_cell, canonical_features
from .confidence import full_uncertainties, lattice_uncertainty, member_std, temper
from .features import FEATURE_NAMES, formula_features, formula_unit_features, formula_unit_rows
from .formulacell import joint_features
from .lattice import (ANGLES, BRAVAIS, BRAVAIS_NAMES, full_parameters, rhombohedral_to_hexagonal,
                      rhombohedral_to_hexagonal_uncertainty)
from .parse import as_composition
from .vegard import end_members, is_fractional

__all__ = ["FormulaModels", "mix_parts", "predict_formula", "predict_formulas", "predict_cell"]

FAMILY = "formula"

# Share of the analogue vote (``analogues.analogue_vote``: the Bravais lattices of the VOTE_K
# nearest training formulas of the same stoichiometry pattern) in the Bravais probabilities of a
# formula that has such analogues. Chosen on the validation slices with validation models fitted
# without them (``benchmarks/analogue_vote_validation.py``; rule in its docstring, written before
# the random slice was scored: +0.3 point of top-1 + top-2 and no top-1 loss). Top-1 / top-2 (%),
# model alone → with the vote: future slice 34.10 / 47.51 → 34.23 / 48.16 (0.1 was its best
# share; 0.2 loses), random slice 66.68 / 80.48 → 67.07 / 80.86. The card's Bravais temperature
# is fitted to the answer with the vote (``training.formula_confidence.fit_temperature``).
BRAVAIS_VOTE_SHARE = 0.1


class FormulaModels:
    """The two shipped TorchScript models (formula, cell) and their cards, from ``directory``.

    Default: the package's ``models/formula`` folder. Batched methods take feature matrices
    (rows from ``features``: ``features.formula_features``, then, where the models read them,
    ``features.formula_unit_features``) and return per-member outputs; the networks read the
    first ``n_network_inputs`` columns, the trees the first ``n_tree_inputs``.
    """

    def __init__(self, directory: str | Path | None = None):
        from ..models import MODELS_DIR

        self.directory = Path(directory) if directory else MODELS_DIR / FAMILY
        import json

        load = self._load
        # One joint ensemble gives the Bravais, space-group and lattice outputs (nets.JointEnsemble).
        self.formula, self.formula_card = load("formula")
        self.n_network_inputs = len(self.formula_card.get("inputs", FEATURE_NAMES))
        self.n_tree_inputs = 0
        # The cell networks load on first use (``cell``): formula-only work needs neither their
        # time nor the file.
        self._cell, self.cell_card = None, None
        # Optional boosted trees, mixed into every output with the weights of their card.
        self.trees, self.trees_card = None, None
        self.trees_read_spacegroup = False  # lattice trees that read the space group
        self.blend = self.bravais_blend = self.length_blend = self.angle_blend = 0.0
        if (self.directory / "formula_trees.pt").is_file():
            self.trees, self.trees_card = load("formula_trees")
            self.trees_read_spacegroup = bool(getattr(self.trees, "lattice_by_spacegroup", False))
            # Files packed before the trees recorded their input count: one edge row per input.
            self.n_tree_inputs = int(getattr(self.trees, "n_inputs", self.trees.edges.shape[0]))
            self.blend = float(self.trees_card["blend_weight"])
            # Bravais probabilities, lattice lengths and free angles have their own weights
            # (older cards: the same one)
            self.bravais_blend = float(self.trees_card.get("bravais_blend_weight", self.blend))
            self.length_blend = float(self.trees_card.get("length_blend_weight", self.blend))
            self.angle_blend = float(self.trees_card.get("angle_blend_weight", self.blend))
        # Calibration of the mix (``confidence``): a Bravais temperature and the constants of
        # the lattice uncertainties; none on cards from before it (then T = 1, no σ).
        self.confidence = (self.trees_card or {}).get("confidence")
        self.bravais_temperature = float((self.confidence or {}).get("bravais_temperature", 1.0))
        # Optional trees on the cell as written, for predict_cell(..., setting="standard").
        self.cell_standard_trees, self.cell_standard_card = None, None
        if (self.directory / "cell_standard_trees.pt").is_file():
            self.cell_standard_trees, self.cell_standard_card = load("cell_standard_trees")
        # Optional table of the volume term of predict_cell(..., formula=...) (``cellvolume``).
        self.volume_table, self.volume_card = None, None
        if (self.directory / "cell_volume.npz").is_file():
            with np.load(self.directory / "cell_volume.npz") as f:
                self.volume_table = f["log_density"]
                if not np.allclose(f["grid"], cellvolume.GRID):
                    raise ValueError(f"{self.directory / 'cell_volume.npz'}: another grid than "
                                     "formula.cellvolume.GRID")
            self.volume_card = json.loads((self.directory / "cell_volume.json").read_text())
        # Optional joint trees on the formula and its cell read together (``formulacell``),
        # mixed into predict_cell(..., formula=...) with the weight on their card.
        self.formula_cell_trees, self.formula_cell_card = None, None
        if (self.directory / "formula_cell_trees.pt").is_file():
            self.formula_cell_trees, self.formula_cell_card = load("formula_cell_trees")
        # Optional boosted trees of the cell model, mixed with weight ``cell_blend``.
        self.cell_trees, self.cell_trees_card, self.cell_blend = None, None, 0.0
        if (self.directory / "cell_trees.pt").is_file():
            self.cell_trees, self.cell_trees_card = load("cell_trees")
            self.cell_blend = float(self.cell_trees_card["blend_weight"])

    def _load(self, name: str):
        """(TorchScript module, card) of ``name``.pt / .json in the model folder."""
        import json

        from ..models import load_torchscript

        pt = self.directory / f"{name}.pt"
        if not pt.is_file():
            raise FileNotFoundError(
                f"model {pt} is missing; train it with 'python -m cryspext.training.formula all'"
            )
        return load_torchscript(str(pt)), json.loads(pt.with_suffix(".json").read_text())

    @property
    def cell(self):
        """The cell-geometry network ensemble (loaded on first use)."""
        if self._cell is None:
            self._cell, self.cell_card = self._load("cell")
        return self._cell

    @staticmethod
    def _tensor(X):
        import torch

        return torch.from_numpy(np.ascontiguousarray(np.atleast_2d(X), dtype=np.float32))

    def _columns(self, X, n: int, who: str):
        X = np.atleast_2d(X)
        if X.ndim != 2 or X.shape[1] < n:
            raise ValueError(f"the {who} read {n} feature columns, got an array of shape "
                             f"{X.shape}; build rows with FormulaModels.features")
        return self._tensor(X[:, :n])

    def _network_input(self, X):
        return self._columns(X, self.n_network_inputs, "networks")

    def features(self, formulas) -> np.ndarray:
        """(n, columns) input rows of ``formulas`` (str, pymatgen ``Composition`` or mapping
        each): ``formula_features``, followed by ``formula_unit_features`` where the networks
        or the trees read them."""
        compositions = [as_composition(f) for f in formulas]  # each formula parsed once
        X = np.stack([formula_features(c) for c in compositions])
        if max(self.n_tree_inputs, self.n_network_inputs) > X.shape[1]:
            X = np.concatenate([X, formula_unit_rows(compositions)], axis=1)
        return X

    def bravais_proba(self, X) -> np.ndarray:
        """(members, n, 14) probabilities over ``lattice.BRAVAIS``."""
        import torch

        with torch.no_grad():
            return self.formula.bravais(self._network_input(X)).numpy()

    def spacegroup_proba(self, X, bravais: str) -> tuple[list[int], np.ndarray]:
        """(space groups of that lattice, (members, n, len) probabilities given that lattice)."""
        import torch

        with torch.no_grad():
            p = self.formula.spacegroup(self._network_input(X), BRAVAIS.index(bravais)).numpy()
        return self.formula_card["spacegroup_classes"][bravais], p

    def lattice_parameters(self, X, bravais: str) -> tuple[list[str], np.ndarray]:
        """(free parameter names, (members, n, len) values in Å / degrees)."""
        import torch

        with torch.no_grad():
            p = self.formula.lattice(self._network_input(X), BRAVAIS.index(bravais)).numpy()
        return self.formula_card["parameters"][bravais]["free"], p

    def raw_outputs(self, X):
        """(members, n, 230 + 37) raw outputs of the joint members (a torch tensor), computed
        once; ``heads`` turns them into the outputs of ``bravais_proba``, ``spacegroup_proba``
        and ``lattice_parameters`` (each of which runs the members again)."""
        import torch

        with torch.no_grad():
            return self.formula.raw(self._network_input(X))

    def heads(self, raw, bravais: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From ``raw_outputs``: (members, n, 14) Bravais probabilities and, for lattice
        ``bravais``, the space-group probabilities and lattice parameters (Å, degrees)."""
        import torch

        k = BRAVAIS.index(bravais)
        with torch.no_grad():
            return (self.formula.bravais_of(raw).numpy(), self.formula.spacegroup_of(raw, k).numpy(),
                    self.formula.lattice_of(raw, k).numpy())

    def tree_output(self, method: str, X, *k: int) -> np.ndarray | None:
        """``trees.<method>(X, *k)`` as an array ("bravais", "spacegroup" or "lattice", the
        same shapes as the network means); None when no trees are shipped."""
        if self.trees is None:
            return None
        import torch

        with torch.no_grad():
            x = self._columns(X, self.n_tree_inputs, "trees")
            return getattr(self.trees, method)(x, *k).numpy()

    def tree_lattice(self, X, k: int, spacegroup_proba: np.ndarray | None = None) -> np.ndarray | None:
        """(n, n_free) the trees' free lattice parameters of lattice ``k`` (Å, degrees); None
        when no trees are shipped. Trees that read the space group (``lattice_by_spacegroup``)
        give the average over the 5 groups likeliest by ``spacegroup_proba`` ((n, len)
        probabilities of the lattice's groups; default: the whole model's, ``spacegroup``),
        weighted by those probabilities."""
        if not self.trees_read_spacegroup:
            return self.tree_output("lattice", X, k)
        if spacegroup_proba is None:
            spacegroup_proba = self.spacegroup(X, BRAVAIS[k])[1]
        return trees_lattice(self.trees, self._columns(X, self.n_tree_inputs, "trees"), k,
                             spacegroup_proba)

    def mix(self, network_mean: np.ndarray, trees: np.ndarray | None) -> np.ndarray:
        """The formula model's space-group probabilities from its two parts (see
        ``mix_parts``), with the card's ``blend_weight``."""
        return mix_parts(network_mean, trees, self.blend)

    def bravais_mix(self, network_mean: np.ndarray, trees: np.ndarray | None) -> np.ndarray:
        """The formula model's (..., 14) Bravais probabilities from its two parts, with the
        card's ``bravais_blend_weight``."""
        return mix_parts(network_mean, trees, self.bravais_blend)

    def lattice_mix(self, network_mean: np.ndarray, trees: np.ndarray | None,
                    bravais: str) -> np.ndarray:
        """The formula model's (..., n_free) lattice parameters of ``bravais`` from its two
        parts, mixed as ``mix_parts`` with the card's ``length_blend_weight`` for the lengths
        and ``angle_blend_weight`` for the free angles."""
        names = self.formula_card["parameters"][bravais]["free"]
        w = np.array([self.angle_blend if n in ANGLES else self.length_blend for n in names])
        return mix_parts(network_mean, trees, w)

    def calibrated_bravais(self, network_mean: np.ndarray, trees: np.ndarray | None) -> np.ndarray:
        """The (..., 14) Bravais probabilities of the whole model from its two parts:
        ``bravais_mix``, then tempered with the card's ``bravais_temperature``."""
        return temper(self.bravais_mix(network_mean, trees), self.bravais_temperature)

    @property
    def analogues(self):
        """The folder's analogue table (``analogues.load_table``: read once, shared with
        ``find_analogues``); None without ``analogues.npz``."""
        if not (self.directory / "analogues.npz").is_file():
            return None
        from .analogues import load_table

        return load_table(self.directory)

    def with_vote(self, prob: np.ndarray, compositions) -> np.ndarray:
        """(n, 14) Bravais probabilities ``prob`` of ``compositions`` (a list of {element:
        amount}) with the analogue vote mixed in (``BRAVAIS_VOTE_SHARE``) for each formula that
        has analogues in the folder's table; ``prob`` itself for the others (fractional
        formulas, stoichiometries no training formula has) and where the folder has no table
        or ``compositions`` is None."""
        if compositions is None or self.analogues is None:
            return prob
        if len(compositions) != len(prob):
            raise ValueError(f"{len(compositions)} compositions for {len(prob)} rows of probabilities")
        from .analogues import analogue_vote

        vote, _, covered = analogue_vote(self.analogues, compositions)
        mixed = (1.0 - BRAVAIS_VOTE_SHARE) * prob + BRAVAIS_VOTE_SHARE * vote
        return np.where(covered[:, None], mixed, prob)

    def bravais(self, X, compositions=None) -> np.ndarray:
        """(n, 14) Bravais probabilities of the whole model (``calibrated_bravais``), with the
        analogue vote (``with_vote``) where ``compositions`` (the rows' formulas as {element:
        amount}) are given."""
        prob = self.calibrated_bravais(self.bravais_proba(X).mean(axis=0), self.tree_output("bravais", X))
        return self.with_vote(prob, compositions)

    def lattice_uncertainty(self, names, value: np.ndarray, members: np.ndarray) -> np.ndarray:
        """σ (Å, degrees) of free parameters ``names`` from the mixed ``value`` (..., n_free)
        and the members' values (members, ..., n_free), with the card's constants
        (``confidence.lattice_uncertainty``); NaN without them."""
        if not self.confidence:
            return np.full(np.shape(value), np.nan)
        return lattice_uncertainty(names, value, member_std(members),
                                   self.confidence["lattice_uncertainty"])

    def spacegroup(self, X, bravais: str) -> tuple[list[int], np.ndarray]:
        """(space groups of that lattice, (n, len) probabilities given that lattice)."""
        groups, p = self.spacegroup_proba(X, bravais)
        k = BRAVAIS.index(bravais)
        return groups, self.mix(p.mean(axis=0), self.tree_output("spacegroup", X, k))

    def lattice(self, X, bravais: str) -> tuple[list[str], np.ndarray]:
        """(free parameter names, (n, len) values in Å / degrees) of the whole model."""
        names, p = self.lattice_parameters(X, bravais)
        k = BRAVAIS.index(bravais)
        return names, self.lattice_mix(p.mean(axis=0), self.tree_lattice(X, k), bravais)

    def spacegroup_distribution(self, X, compositions=None) -> np.ndarray:
        """(n, 230) probabilities of space groups 1..230 of the whole formula model: each
        lattice's calibrated Bravais probability (``bravais``, with the analogue vote where
        ``compositions`` are given) times its space groups' probabilities given it
        (``spacegroup``)."""
        raw = self.raw_outputs(X)  # the members run once for all 14 lattices
        bravais = self.with_vote(self.calibrated_bravais(self.heads(raw, BRAVAIS[0])[0].mean(axis=0),
                                                         self.tree_output("bravais", X)), compositions)
        out = np.zeros((len(bravais), 230))
        for k, b in enumerate(BRAVAIS):
            groups = self.formula_card["spacegroup_classes"][b]
            p = self.mix(self.heads(raw, b)[1].mean(axis=0), self.tree_output("spacegroup", X, k))
            out[:, np.asarray(groups) - 1] = bravais[:, k:k + 1] * p
        return out

    def spacegroup_prior(self) -> np.ndarray | None:
        """(230,) share of the training formulas in each space group (one added to every count,
        so no group has 0); None for cards without the counts (``training_coverage``)."""
        counts = (self.formula_card.get("training_coverage") or {}).get("formulas_per_spacegroup")
        if counts is None:
            return None
        prior = np.ones(230)
        for number, n in counts.items():
            prior[int(number) - 1] += n
        return prior / prior.sum()

    def formula_and_cell(self, from_formula: np.ndarray, from_cell: np.ndarray,
                         cell_volume, formula_unit_volume, from_joint: np.ndarray | None = None) -> np.ndarray:
        """(n, 230) P(group | formula, cell) of ``predict_cell(..., formula=...)``: the formula
        model's (``spacegroup_distribution``) and the cell model's (``cell_mix``) (n, 230)
        probabilities as independent evidence, P(formula) · P(cell) / P(group), times the volume
        term P(ρ | group)^δ where the models ship its table (``cellvolume``; ρ = ln(cell volume /
        formula-unit volume), both (n,) in Å³). With ``from_joint``, the joint trees' (n, 230)
        probabilities (``formula_cell_tree_proba``), the answer is (1 − w) · that + w ·
        ``from_joint``, w from the joint trees' card."""
        prior = self.spacegroup_prior()
        if prior is None:
            raise ValueError("these formula models' card has no space-group counts to combine with "
                             "(python -m cryspext.training.formula coverage writes them)")
        tiny = 1e-300  # a probability of exactly 0 stays 0, without log(0) warnings
        log_p = np.log(np.maximum(from_formula, tiny)) + np.log(np.maximum(from_cell, tiny)) - np.log(prior)
        if self.volume_table is not None:
            rho = cellvolume.volume_ratio(cell_volume, formula_unit_volume)
            log_p = log_p + float(self.volume_card["delta"]) * cellvolume.log_likelihood(self.volume_table, rho)
        p = np.exp(log_p - log_p.max(axis=1, keepdims=True))
        p = p / p.sum(axis=1, keepdims=True)
        if from_joint is not None:
            if self.formula_cell_card is None:
                raise ValueError(f"no joint formula-and-cell trees in {self.directory} to weigh "
                                 "from_joint with")
            p = mix_parts(p, from_joint, float(self.formula_cell_card["blend_weight"]))
        return p

    def formula_cell_tree_proba(self, joint: np.ndarray) -> np.ndarray:
        """(n, 230) probabilities of the joint formula-and-cell trees for rows ``joint`` of
        ``formulacell.joint_features``."""
        if self.formula_cell_trees is None:
            raise ValueError(f"no joint formula-and-cell trees in {self.directory} (python -m "
                             "cryspext.training.formula_trees --formula-cell fits them)")
        import torch

        with torch.no_grad():
            return self.formula_cell_trees.probabilities(self._tensor(joint), 0).numpy()

    def cell_standard_mix(self, C, params, members: np.ndarray | None = None) -> np.ndarray:
        """(n, 230) probabilities of the cell model for cells written in their conventional
        standard setting: ``cell_mix`` of the canonical features ``C`` (and ``members``) mixed
        with the standard-setting trees on the cells as written (``params`` (n, 6);
        ``cellsetting``), with the weight on their card."""
        if self.cell_standard_trees is None:
            raise ValueError(f"no standard-setting cell trees in {self.directory} (python -m "
                             "cryspext.training.formula_trees --standard-cell fits them)")
        import torch

        from .cellsetting import standard_setting_features

        with torch.no_grad():
            p_std = self.cell_standard_trees.probabilities(
                self._tensor(standard_setting_features(params)), 0).numpy()
        return mix_parts(self.cell_mix(C, members), p_std, float(self.cell_standard_card["blend_weight"]))

    def cell_proba(self, C) -> np.ndarray:
        """(members, n, 230) probabilities of space groups 1..230 from cell features, one row
        per network member."""
        import torch

        with torch.no_grad():
            return self.cell(self._tensor(C)).numpy()

    def cell_tree_proba(self, C) -> np.ndarray | None:
        """(n, 230) probabilities of the cell trees; None when none are shipped."""
        if self.cell_trees is None:
            return None
        import torch

        with torch.no_grad():
            return self.cell_trees.probabilities(self._tensor(C), 0).numpy()

    def cell_mix(self, C, members: np.ndarray | None = None) -> np.ndarray:
        """(n, 230) probabilities of the whole cell model (networks and trees); ``members``: the
        networks' ``cell_proba(C)`` where the caller has it already."""
        members = self.cell_proba(C) if members is None else members
        p = mix_parts(members.mean(axis=0), self.cell_tree_proba(C), self.cell_blend)
        if not np.isfinite(p).all():  # a broken model file, never the user's cell (checked before)
            raise RuntimeError(f"the cell model in {self.directory} gives non-finite probabilities; "
                               "retrain it (python -m cryspext.training.cell train)")
        return p


def trees_lattice(trees, x, k: int, spacegroup_proba: np.ndarray) -> np.ndarray:
    """(n, n_free) lattice parameters (Å, degrees) of lattice ``k`` from trees that read the
    space group (``BoostedTrees.lattice_given``): their values for the 5 groups likeliest by
    ``spacegroup_proba`` (n, len), averaged with those probabilities. ``x``: (n, features)
    float32 tensor."""
    import torch

    from .trees import SPACEGROUP_CANDIDATES

    p = torch.from_numpy(np.ascontiguousarray(spacegroup_proba, dtype=np.float32))
    # groups of probability 0 (a space group the caller fixed) add nothing: not run
    m = min(SPACEGROUP_CANDIDATES, max(1, int((p > 0).sum(dim=1).max())) if len(p) else 1)
    weight, groups = torch.topk(p, m, dim=1)
    with torch.no_grad():
        return trees.lattice_given(x, k, groups, weight).numpy()


def mix_parts(network_mean: np.ndarray, trees: np.ndarray | None,
              weight: float | np.ndarray) -> np.ndarray:
    """``(1 − weight) · network_mean + weight · trees`` (``weight`` may be one per last-axis
    column); the network mean alone without trees."""
    return network_mean if trees is None else (1.0 - weight) * network_mean + weight * trees


@lru_cache(maxsize=4)
def _models(directory: str | None) -> FormulaModels:
    return FormulaModels(directory)


def _written(composition: dict) -> str:
    """``composition`` written as a formula (amounts of 1 left out): {"Ba": 1, "O": 3} → BaO3."""
    return "".join(f"{el}{'' if n == 1 else f'{n:g}'}" for el, n in composition.items())


def _check_top_k(top_k, limit: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
        raise TypeError(f"top_k must be an int, got {type(top_k).__name__}")
    if not 1 <= top_k <= limit:
        raise ValueError(f"top_k must be in 1..{limit}, got {top_k}")
    return int(top_k)


# An element in fewer training formulas than this has hardly been learnt (the networks' own
# embedding of it barely moved; the trees cannot split on it): predict_formula flags it.
FEW_TRAINING_FORMULAS = 10


def training_coverage(card: dict, composition: dict) -> dict | None:
    """How far ``composition`` lies inside what the formula model's training formulas cover
    (the card's ``training_coverage``; None for cards without it): ``{"in_training_range",
    "formulas_per_element"`` (training formulas holding each of its elements),
    ``"atoms_per_formula_unit"`` (of its reduced formula; the training range is on the card),
    ``"reasons"`` (why it is outside, else empty)}. The counts are of the Materials Project
    training formulas, which every part of the model learns from; the classifier trees of a
    card with ``cod_labels`` also saw COD compositions (``training.cod``), which are not
    counted."""
    from .features import formula_unit_features

    cover = card.get("training_coverage")
    if cover is None:
        return None
    counts = {el: int(cover["formulas_per_element"].get(el, 0)) for el in composition}
    atoms = float(formula_unit_features(composition)[0])
    lo, hi = cover["atoms_per_formula_unit"]
    reasons = [f"{el} is in {n} training formula{'s' if n != 1 else ''}" for el, n in counts.items()
               if n < FEW_TRAINING_FORMULAS]
    if not lo <= atoms <= hi:
        reasons.append(f"its reduced formula has {atoms:g} atoms (training formulas: {lo:g}–{hi:g})")
    return {"in_training_range": not reasons, "formulas_per_element": counts,
            "atoms_per_formula_unit": atoms, "reasons": reasons}


def predict_formula(formula, top_k: int = 3, n_spacegroups: int = 3,
                    model_dir: str | Path | None = None, spacegroup: int | None = None,
                    vegard: bool = True, analogues: int = 0) -> dict:
    """Likely Bravais lattices of a compound, each with space groups and lattice parameters.

    ``formula``: a str (``"LiFePO4"``, ``"Al2.6652O4"``, ``"CuSO4·5H2O"``), a pymatgen
    ``Composition`` or an {element: amount} mapping. Returns ``{"formula", "composition",
    "candidates": [...]}``, candidates ranked by Bravais probability, each with
    ``bravais`` (e.g. ``"cF"``), ``name``, ``probability`` (networks and trees mixed),
    ``spread`` (std over the network members), ``spacegroups`` ([{number, probability}], top
    ``n_spacegroups``) and ``lattice`` ({parameter: {value, std, uncertainty}} for all six
    parameters: ``std`` over the network members; ``uncertainty`` a calibrated σ of the value
    (``confidence.lattice_uncertainty``, NaN for models without calibration constants); a
    length set equal to a free one by symmetry shares its std and σ, an angle fixed by symmetry
    has 0). The probabilities are tempered with the card's ``bravais_temperature`` and, for a
    whole-number formula with known analogues, mixed with their vote (``BRAVAIS_VOTE_SHARE``,
    module docstring; ``analogues`` > 0 shows that vote). hR lattices
    are given as the rhombohedral cell; their candidates also have ``hexagonal_setting``
    ({a, c: {value, std, uncertainty}} in Å, the same lattice on hexagonal axes; σ propagated
    to first order from those of a and α: on the wide side, like theirs for hR, 88 % / 81 % of
    the true a / c of held-out hR formulas within it, ``benchmarks/RESULTS_formula_check.md``).

    The calibration holds for compounds like the training ones (the random split). For
    chemistries newer than Materials Project's bulk, read the probabilities as optimistic: on the
    future split, models calibrated like the shipped ones said 50 % where they were right 37 %
    of the time (``benchmarks/RESULTS_formula_confidence.md``).

    ``spacegroup`` (1–230): a space group the user knows (e.g. from indexing a powder
    pattern). The answer then has one candidate, its Bravais lattice, with that group alone in
    ``spacegroups`` (its probability given the lattice) and the lattice parameters given that
    group: the trees' values for it, mixed with the networks' as usual. The uncertainties stay
    those calibrated without the group, so they are on the wide side. Needs trees that read
    the space group (``formula.trees``, ``lattice_by_spacegroup``).

    Decimal amounts are read as written for the probabilities: Fe0.95O has the mole fractions
    of Fe19O20 (and 1.95 atoms per formula unit). A slightly non-stoichiometric formula can
    still look low-symmetric (Fe0.95O: mC first); the parent formula (FeO) is then the better
    question.

    Where the card records what the training formulas cover, the answer also has
    ``"training_coverage"`` (``training_coverage`` above). A formula with an element in fewer
    than ``FEW_TRAINING_FORMULAS`` training formulas (e.g. Yb, absent from the Materials
    Project data used) or a reduced formula larger than any training one is an extrapolation:
    ``in_training_range`` is False there and a ``UserWarning`` says why. The flag says what
    the model has not seen, not that the answer is wrong: on COD compounds the flagged ones
    (mostly Yb) were predicted no worse than the rest (``RESULTS_formula_confidence.md``).
    Fractional formulas (solid solutions, doped compounds) are not in the Materials Project
    data; the Bravais and space-group trees learned them from COD's labels (``training.cod``).
    The lattice regressors did not: read directly, such a formula gets the cell of an ordered
    compound of the same mole fractions, several formula units large. With ``vegard`` (the
    default) its lattice parameters follow Vegard's law instead: the weighted mean of those of
    its end members (``vegard.end_members``: Ba0.5Sr0.5TiO3 → 0.5 BaTiO3 + 0.5 SrTiO3), each
    predicted in the candidate's Bravais lattice and with the formula's own space-group
    probabilities; the answer then has ``"end_members"`` ([{formula, weight}]). ``std`` and
    ``uncertainty`` are those of the members' weighted means. ``vegard=False`` reads the
    formula directly (for a formula that is the content of an ordered cell).

    ``analogues`` > 0: the answer also has ``"analogues"``, that many known compounds of the
    same stoichiometry with the nearest elements (``analogues.find_analogues``: Materials
    Project training formulas with their space groups and cells; for a fractional formula,
    those of its heaviest end member, named in ``"analogues_of"``) and ``"analogues_vote"``,
    the Bravais lattices of the nearest ones by weight share. The probabilities hold that vote
    with share ``BRAVAIS_VOTE_SHARE`` already (for whole-number formulas; a fractional
    formula's list and vote are its end member's, shown only); read beside them, it tells
    more: on held-out formulas of the random split, the models' first candidate was right
    81.7 % of the time where the vote's first lattice was the same and 42.7 % where it was not
    (``benchmarks/RESULTS_formula_analogues.md``).
    """
    top_k, n_spacegroups = _check_top_k(top_k, len(BRAVAIS)), _check_top_k(n_spacegroups, 230)
    comp = as_composition(formula)
    out = _predict(_models(str(model_dir) if model_dir else None), [comp],
                   [formula if isinstance(formula, str) else _written(comp)],
                   top_k, n_spacegroups, spacegroup, vegard)[0]
    _add_analogues([out], [comp], analogues, model_dir)
    coverage = out.get("training_coverage")
    if coverage is not None and not coverage["in_training_range"]:
        warnings.warn(f"{formula if isinstance(formula, str) else dict(comp)}: "
                      f"{'; '.join(coverage['reasons'])}: the predictions are an extrapolation",
                      UserWarning, stacklevel=2)
    return out


# Formulas per batch of ``predict_formulas`` (bounds the memory of the members' outputs).
BATCH = 2048


def predict_formulas(formulas, top_k: int = 3, n_spacegroups: int = 3,
                     model_dir: str | Path | None = None, spacegroup: int | None = None,
                     vegard: bool = True, progress: bool = False, analogues: int = 0) -> list[dict]:
    """``predict_formula`` for many formulas at once: one answer per formula, in order, equal
    to ``predict_formula``'s up to float32 rounding, computed in batches of ``BATCH`` formulas
    (the models run once per batch instead of once per formula: much faster for screening).
    A formula that cannot be read raises, naming its position. Formulas outside the training
    data are counted in one ``UserWarning`` (each answer's ``training_coverage`` says why).
    ``progress``: a tqdm bar over the batches. ``analogues``: as for ``predict_formula``."""
    top_k, n_spacegroups = _check_top_k(top_k, len(BRAVAIS)), _check_top_k(n_spacegroups, 230)
    if isinstance(formulas, (str, dict)) or not hasattr(formulas, "__iter__"):
        raise TypeError("formulas must be a sequence of formulas; for one, use predict_formula")
    formulas = list(formulas)
    comps = []
    for i, f in enumerate(formulas):
        try:
            comps.append(as_composition(f))
        except (ValueError, TypeError) as err:
            raise type(err)(f"formula {i} ({f!r}): {err}") from err
    texts = [f if isinstance(f, str) else _written(c) for f, c in zip(formulas, comps)]
    m = _models(str(model_dir) if model_dir else None)
    starts = range(0, len(comps), BATCH)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="formula batches", unit="batch")
    out = []
    for i in starts:
        out += _predict(m, comps[i:i + BATCH], texts[i:i + BATCH], top_k, n_spacegroups, spacegroup, vegard)
    _add_analogues(out, comps, analogues, model_dir)
    outside = sum(1 for o in out if not o.get("training_coverage", {}).get("in_training_range", True))
    if outside:
        warnings.warn(f"{outside} of {len(out)} formulas lie outside the training data: their "
                      "predictions are extrapolations (see each answer's training_coverage)",
                      UserWarning, stacklevel=2)
    return out


def _add_analogues(answers: list[dict], comps: list[dict], n: int, model_dir) -> None:
    """Put the ``n`` nearest known analogues (``analogues.find_analogues``) into each answer."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"analogues must be a whole number >= 0, got {n!r}")
    if n == 0:
        return
    from .analogues import find_analogues

    for answer, comp in zip(answers, comps):
        found = find_analogues(comp, n, model_dir)
        answer["analogues"] = found["analogues"]
        answer["analogues_of"] = found["of"]
        answer["analogues_vote"] = found["vote"]


def _predict(m: FormulaModels, comps: list[dict], texts: list[str], top_k: int, n_spacegroups: int,
             spacegroup: int | None, vegard: bool) -> list[dict]:
    """The answers of ``predict_formula`` for compositions ``comps`` (written as ``texts``),
    every model run once for all of them."""
    if spacegroup is not None:
        from .lattice import bravais_of_spacegroup

        given = BRAVAIS.index(bravais_of_spacegroup(spacegroup))  # checks 1..230
        if not m.trees_read_spacegroup:
            raise ValueError("these formula models cannot take a space group: their lattice trees "
                             "do not read it (retrain with training.formula_trees)")
    if not comps:
        return []
    x = m.features(comps)
    raw = m.raw_outputs(x)  # the members run once for all outputs
    # Vegard's law for fractional formulas: their end members' rows, and whose they are
    parts = [end_members(c) if vegard else [] for c in comps]
    owner = np.array([i for i, ps in enumerate(parts) for _ in ps], dtype=int)
    if len(owner):
        x_parts = m.features([c for ps in parts for c, _ in ps])
        raw_parts = m.raw_outputs(x_parts)
        w_parts = np.array([w for ps in parts for _, w in ps])
    members = m.heads(raw, BRAVAIS[0])[0]  # (members, n, 14)
    prob = m.with_vote(m.calibrated_bravais(members.mean(axis=0), m.tree_output("bravais", x)), comps)
    spread = members.std(axis=0)
    chosen = [np.argsort(-p)[:top_k] if spacegroup is None else np.array([given]) for p in prob]
    candidates = [dict() for _ in comps]  # row -> {k: candidate}
    for k in sorted({int(k) for ks in chosen for k in ks}):
        rows = np.array([i for i, ks in enumerate(chosen) if k in ks], dtype=int)
        b = BRAVAIS[k]
        groups = m.formula_card["spacegroup_classes"][b]
        names = m.formula_card["parameters"][b]["free"]
        _, p_sg, lp = m.heads(raw[:, rows], b)  # (members, rows, groups / free)
        p_sg = m.mix(p_sg.mean(axis=0), m.tree_output("spacegroup", x[rows], k))
        trees_given = p_sg  # the lattice trees average over these groups' probabilities ...
        if spacegroup is not None:  # ... or take the one the user gave
            trees_given = np.zeros_like(p_sg)
            trees_given[:, groups.index(int(spacegroup))] = 1.0
        mixed = m.lattice_mix(lp.mean(axis=0), m.tree_lattice(x[rows], k, trees_given), b)
        row_of = {int(i): r for r, i in enumerate(rows)}
        mine = np.array([j for j, i in enumerate(owner) if int(i) in row_of], dtype=int)
        if len(mine):  # Vegard's law: the end members' values in this lattice, weighted
            lp_parts = m.heads(raw_parts[:, mine], b)[2]  # (members, end members, free)
            at = np.array([row_of[int(i)] for i in owner[mine]])
            mixed_parts = m.lattice_mix(lp_parts.mean(axis=0),
                                        m.tree_lattice(x_parts[mine], k, trees_given[at]), b)
            weighted = w_parts[mine][:, None]
            for r in np.unique(at):
                mixed[r] = (weighted[at == r] * mixed_parts[at == r]).sum(axis=0)
                lp[:, r] = (weighted[at == r][None] * lp_parts[:, at == r]).sum(axis=1)
        sigma = m.lattice_uncertainty(names, mixed, lp)
        std = lp.std(axis=0)
        for r, i in enumerate(rows):
            order = (np.argsort(-p_sg[r])[: min(n_spacegroups, len(groups))] if spacegroup is None
                     else [groups.index(int(spacegroup))])
            values = full_parameters(b, dict(zip(names, mixed[r].tolist())))
            stds = full_uncertainties(b, dict(zip(names, std[r].tolist())))
            sigmas = full_uncertainties(b, dict(zip(names, sigma[r].tolist())))
            cand = {
                "bravais": b,
                "name": BRAVAIS_NAMES[b],
                "probability": float(prob[i, k]),
                "spread": float(spread[i, k]),
                "spacegroups": [{"number": int(groups[g]), "probability": float(p_sg[r, g])} for g in order],
                "lattice": {n: {"value": float(v), "std": float(stds[n]), "uncertainty": float(sigmas[n])}
                            for n, v in values.items()},
            }
            if b == "hR":  # the hexagonal setting most papers and databases quote
                cand["hexagonal_setting"] = _hexagonal_setting(cand["lattice"], lp[:, r])
            candidates[i][k] = cand
    out = []
    for i, comp in enumerate(comps):
        answer = {"formula": texts[i], "composition": comp,
                  "candidates": [candidates[i][int(k)] for k in chosen[i]]}
        if parts[i]:
            answer["end_members"] = [{"formula": _written(c), "weight": float(w)} for c, w in parts[i]]
        coverage = training_coverage(m.formula_card, comp)
        if coverage is not None:
            answer["training_coverage"] = coverage
        if spacegroup is not None:
            answer["spacegroup"] = int(spacegroup)
        out.append(answer)
    return out


def _hexagonal_setting(lattice: dict, members: np.ndarray) -> dict:
    """{a, c: {value, std, uncertainty}} in Å of an hR candidate on hexagonal axes, from its
    rhombohedral ``lattice`` entry and the network members' (members, 2) values of (a, α): std
    over the members converted one by one; σ propagated to first order from the rhombohedral
    σ of a and α (``lattice.rhombohedral_to_hexagonal_uncertainty``)."""
    a_r, alpha = lattice["a"], lattice["alpha"]
    value = rhombohedral_to_hexagonal(a_r["value"], alpha["value"])
    each = np.array([rhombohedral_to_hexagonal(float(m[0]), float(m[1])) for m in members])
    sigma = rhombohedral_to_hexagonal_uncertainty(a_r["value"], alpha["value"],
                                                  a_r["uncertainty"], alpha["uncertainty"])
    return {n: {"value": float(value[j]), "std": float(each[:, j].std()), "uncertainty": float(sigma[j])}
            for j, n in enumerate("ac")}


def predict_cell(a: float, b: float, c: float, alpha: float, beta: float, gamma: float,
                 top_k: int = 5, tolerance: float = 2e-3,
                 model_dir: str | Path | None = None, formula=None, setting: str = "any") -> dict:
    """Likely space groups of a crystal from its cell (a, b, c in Å; angles in degrees), and
    from its formula too where ``formula`` is given.

    The cell is read as a lattice in any setting (conventional, reduced, ...): it is made
    canonical first, so only the lattice matters. ``setting="standard"`` says the cell is the
    conventional standard cell of its space group (ITA setting, as a database CIF or spglib's
    standardised cell writes it): trees that read the cell as written (``cellsetting``) are then
    mixed in, which use the setting convention (the unique axis, the order of orthorhombic axes);
    on a cell in another basis they mislead (``benchmarks/RESULTS_formula.md``). ``tolerance`` is ASE's ``eps`` for equal
    lengths and special angles. Returns ``{"lattice_type"`` (ASE's metric lattice of the cell),
    ``"reduced_cell"`` (Niggli, a b c α β γ), ``"in_training_range"`` (whether the reduced
    lengths lie within those of the training cells, ``cellgeom.TRAINING_LENGTHS``; outside, the
    ranking is an extrapolation and a ``UserWarning`` says so), ``"spacegroups": [{number,
    probability, spread, bravais}]}``. Cells of a centred lattice given in their conventional
    setting look primitive here, which limits what the model can know (see RESULTS_formula.md).
    Raises ``ValueError`` for cells no crystal has (``cellgeom.MIN_TRANSLATION``, ``MAX_LENGTH``).

    With ``formula`` (str, pymatgen ``Composition`` or mapping) the two models are combined as
    independent evidence (naive Bayes) with a volume term (``FormulaModels.formula_and_cell``):
    P(group | formula, cell) ∝ P(group | formula) · P(group | cell) / P(group) · P(ρ | group)^δ,
    P(group | formula) from ``predict_formula``'s models (``spacegroup_distribution``), P(group)
    the share of their training formulas (``spacegroup_prior``), and ρ = ln(cell volume /
    formula-unit volume), which tells how many formula units the cell holds (``cellvolume``;
    the answer's ``"volume_ratio"`` is e^ρ). Each entry then has ``probability`` (combined),
    ``cell_probability`` and ``formula_probability`` instead of ``spread``, and the answer has
    ``"formula"`` and the formula's ``"training_coverage"``. Where the models ship joint trees
    (``formula_cell_trees.pt``: one classifier on the formula and the cell read together,
    ``formulacell``, which sees about how many atoms of each element the cell holds), the
    answer is (1 − w) · naive Bayes + w · their probabilities (w on their card), and each
    entry also has ``joint_probability``; fractional formulas, which they did not learn, keep
    naive Bayes. The formula settles what the cell cannot (Fm-3m against Pm-3m for a cubic
    cell) and the cell what the formula cannot (``benchmarks/RESULTS_formula_cell.md``). Both
    models learn from Materials Project, so their errors are not fully independent and the
    combined probabilities lean to overconfidence.
    """
    top_k = _check_top_k(top_k, 230)
    if setting not in ("any", "standard"):
        raise ValueError(f"setting must be 'any' or 'standard', got {setting!r}")
    if not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise ValueError(f"tolerance must be a positive number, got {tolerance!r}")
    params = [a, b, c, alpha, beta, gamma]
    lattice_type, reduced = canonical_cell(params, tolerance)
    lo, hi = TRAINING_LENGTHS
    in_range = bool(lo <= reduced[0] and reduced[2] <= hi)
    if not in_range:
        warnings.warn(f"the reduced cell's lengths {reduced[0]:.3g}–{reduced[2]:.3g} Å leave the "
                      f"range of the training cells ({lo:g}–{hi:g} Å): the ranking is an "
                      "extrapolation", UserWarning, stacklevel=2)
    feats = canonical_features(lattice_type, reduced)[None, :]
    m = _models(str(model_dir) if model_dir else None)
    members = m.cell_proba(feats)  # (members, 1, 230), run once
    prob = (m.cell_standard_mix(feats, [params], members) if setting == "standard"
            else m.cell_mix(feats, members))[0]
    spread = members[:, 0, :].std(axis=0)
    from .lattice import bravais_of_spacegroup

    out = {"lattice_type": lattice_type, "reduced_cell": [float(v) for v in reduced],
           "in_training_range": in_range, "setting": setting}
    if formula is None:
        order = np.argsort(-prob)[:top_k]
        out["spacegroups"] = [{"number": int(i) + 1, "probability": float(prob[i]),
                               "spread": float(spread[i]), "bravais": bravais_of_spacegroup(int(i) + 1)}
                              for i in order]
        return out
    comp = as_composition(formula)
    X = m.features([comp])
    from_formula = m.spacegroup_distribution(X, [comp])[0]
    volume, fu_volume = cellvolume.cell_volume(params), formula_unit_features(comp)[1]
    # The joint trees learned whole-number formulas only; a fractional one keeps naive Bayes.
    p_joint = (m.formula_cell_tree_proba(joint_features([comp], X, feats))
               if m.formula_cell_trees is not None and not is_fractional(comp) else None)
    combined = m.formula_and_cell(from_formula[None], prob[None], [volume], [fu_volume], p_joint)[0]
    order = np.argsort(-combined)[:top_k]
    out["formula"] = formula if isinstance(formula, str) else _written(comp)
    out["volume_ratio"] = float(volume / fu_volume)
    coverage = training_coverage(m.formula_card, comp)
    if coverage is not None:
        out["training_coverage"] = coverage
        if not coverage["in_training_range"]:
            warnings.warn(f"{out['formula']}: {'; '.join(coverage['reasons'])}: the formula's part "
                          "is an extrapolation", UserWarning, stacklevel=2)
    out["spacegroups"] = [{"number": int(i) + 1, "probability": float(combined[i]),
                           "cell_probability": float(prob[i]), "formula_probability": float(from_formula[i]),
                           **({"joint_probability": float(p_joint[0, i])} if p_joint is not None else {}),
                           "bravais": bravais_of_spacegroup(int(i) + 1)} for i in order]
    return out
