"""Gradient-boosted trees of the formula and cell models, as a TorchScript module.

The formula model mixes two learners on the same 223 inputs (``features.FEATURE_NAMES``
and ``FORMULA_UNIT_FEATURE_NAMES``): the network ensemble
(``nets.JointEnsemble``) and boosted decision trees fitted by scikit-learn's
``HistGradientBoosting*`` (training code: ``training.formula_trees``). Trees cut single
features at thresholds, which suits tabular data such as Magpie statistics; the networks share
what they learn across lattices. ``BoostedTrees`` holds all the fitted trees as flat tensors,
so the shipped file needs torch only (no scikit-learn at run time).

Features are binned once (``feature_edges``: at most 255 bins per feature, cut at midpoints of
distinct values or at quantiles), and all trees are fitted on the bin indices, so one table of
edges serves every head. Storage, 5 bytes per node: the feature (uint8, so at most 256
features), the threshold as a bin index (uint8; a row goes left when its bin is <= it), the
offset of the left child from the node (int8, 0 for a leaf; the right child always follows the
left one, and a tree has at most 127 nodes) and the leaf value (float16).

Heads of the formula trees: head 0 gives the 14 Bravais logits; head 1 + k the space-group
logits of lattice k (ascending numbers, as in the card's ``spacegroup_classes``); head 15 + k
the free lattice parameters of lattice k (Å, degrees). The cell trees have one head, the logits
of space groups 1..230 (``probabilities(x, 0)``). Each head owns a contiguous range of trees
and of output columns; a head's output is its baseline plus the leaf values of its trees.
Regressor columns marked in ``exp_columns`` were fitted on the natural log of their target
(the lattice lengths, ``training.formula_trees``); ``lattice`` returns exp of their sum.

Lattice parameters given the space group. In a module with ``lattice_by_spacegroup`` the
lattice heads also read ``SPACEGROUP_COLUMNS`` columns after the formula features: the space
group's position among its lattice's groups (ascending numbers), then one 0/1 column for each
of that lattice's 8 most common training groups (``onehot_groups``). ``lattice_given`` gives
the parameters for chosen groups, averaged with weights; ``lattice`` averages over the 5 groups
the trees' own space-group head finds most likely (``formula.predict`` uses the whole model's
space-group probabilities instead). Why: the axes of a conventional cell follow its space
group's setting (oP b of Pnma is not oP b of Pmmm), so a regressor told the group has an easier
target than one that must average over the groups.

A lattice head may also hold the trees of random forests (``ForestMix``, at most 64 leaves
each), packed like the boosted ones: the mixing weights are folded into the leaf values and
the baseline, so the head's sum is (1 - w) * boosted + w * forest and nothing changes at run
time. The card's ``settings.lattice_forest_weight`` says w.
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

__all__ = ["BoostedTrees", "ForestMix", "N_HEADS", "SPACEGROUP_COLUMNS", "feature_edges",
           "bin_features", "common_groups", "from_sklearn", "spacegroup_columns", "spacegroup_edges"]

N_HEADS = 1 + 14 + 14  # Bravais, space group per lattice, lattice parameters per lattice
ABSENT = -1.0e4  # logit of a class no training row had (probability ~0)
N_ONEHOT = 8  # one-hot columns: a lattice's most common space groups
SPACEGROUP_COLUMNS = 1 + N_ONEHOT  # position among the lattice's groups, then the one-hot columns
SPACEGROUP_CANDIDATES = 5  # groups ``lattice`` averages over


class BoostedTrees(nn.Module):
    """Boosted trees for all heads; see the module docstring for the layout."""

    def __init__(self, edges: torch.Tensor, feature: torch.Tensor, bin_threshold: torch.Tensor,
                 left_offset: torch.Tensor, value: torch.Tensor, roots: torch.Tensor,
                 tree_column: torch.Tensor, tree_offsets: torch.Tensor,
                 column_offsets: torch.Tensor, baseline: torch.Tensor, max_depth: int,
                 exp_columns: Optional[torch.Tensor] = None,
                 onehot_groups: Optional[torch.Tensor] = None):
        super().__init__()
        self.register_buffer("edges", edges.float().contiguous())  # (n_features, 254), +inf padded
        self.register_buffer("feature", feature.to(torch.uint8))
        self.register_buffer("bin_threshold", bin_threshold.to(torch.uint8))
        self.register_buffer("left_offset", left_offset.to(torch.int8))
        self.register_buffer("value", value.to(torch.float16))
        self.register_buffer("roots", roots.to(torch.int32))
        self.register_buffer("tree_column", tree_column.to(torch.int32))  # column inside its head
        self.register_buffer("tree_offsets", tree_offsets.long())  # (N_HEADS + 1,)
        self.register_buffer("column_offsets", column_offsets.long())  # (N_HEADS + 1,)
        self.register_buffer("baseline", baseline.float())
        if exp_columns is None:
            exp_columns = torch.zeros(baseline.numel(), dtype=torch.bool)
        self.register_buffer("exp_columns", exp_columns.to(torch.bool))  # fitted on ln(target)
        # (14, N_ONEHOT) positions of each lattice's one-hot groups (-1: none); empty when the
        # lattice heads do not read the space group.
        if onehot_groups is None:
            onehot_groups = torch.zeros(0, N_ONEHOT, dtype=torch.long)
        self.register_buffer("onehot_groups", onehot_groups.long())
        self.lattice_by_spacegroup = onehot_groups.shape[0] > 0
        self.spacegroup_candidates = SPACEGROUP_CANDIDATES
        # feature columns callers pass (the space-group columns are added by lattice_given)
        self.n_inputs = int(edges.shape[0]) - (SPACEGROUP_COLUMNS if self.lattice_by_spacegroup else 0)
        self.max_depth = max_depth

    def bins(self, x: torch.Tensor) -> torch.Tensor:
        """(n, n_features) bin index of every feature value (the rule of ``bin_features``)."""
        if bool(torch.isnan(x).any()):
            raise ValueError("features contain NaN")
        if x.dim() != 2 or (x.shape[1] != self.n_inputs and x.shape[1] != self.edges.shape[0]):
            raise ValueError("the trees read " + str(self.n_inputs) + " feature columns")
        # The space-group columns, where lattice_given added them, have their own edges at the end.
        return torch.searchsorted(self.edges[: x.shape[1]], x.t().contiguous()).t().contiguous()

    def head(self, xb: torch.Tensor, h: int) -> torch.Tensor:
        """(n, n_columns) raw output of head ``h`` for binned rows ``xb``."""
        t0, t1 = int(self.tree_offsets[h]), int(self.tree_offsets[h + 1])
        c0, c1 = int(self.column_offsets[h]), int(self.column_offsets[h + 1])
        n = xb.shape[0]
        out = self.baseline[c0:c1].unsqueeze(0).repeat(n, 1)
        if t1 == t0 or n == 0:
            return out
        n_trees = t1 - t0
        # Walk all (row, tree) pairs down together, in int32 to save memory traffic; pairs
        # that reached a leaf drop out, so the few deep trees do not keep the shallow ones busy.
        x_flat = xb.reshape(-1).to(torch.int16)
        row_start = (torch.arange(n, dtype=torch.int32) * xb.shape[1]).repeat_interleave(n_trees)
        node = self.roots[t0:t1].repeat(n)  # int32, row-major over (row, tree)
        active = torch.arange(n * n_trees, dtype=torch.int32)
        for _ in range(self.max_depth):
            current = node.index_select(0, active)
            offset = self.left_offset.index_select(0, current)
            keep = (offset > 0).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            active = active.index_select(0, keep)
            current = current.index_select(0, keep)
            f = self.feature.index_select(0, current).to(torch.int32)
            x = x_flat.index_select(0, row_start.index_select(0, active) + f)
            go_right = (x > self.bin_threshold.index_select(0, current).to(torch.int16)).to(torch.int32)
            child = current + offset.index_select(0, keep).to(torch.int32) + go_right
            node.index_copy_(0, active.long(), child)
        values = self.value.index_select(0, node).float().view(n, n_trees)
        return out.index_add_(1, self.tree_column[t0:t1].long(), values)

    def _heads(self, x: torch.Tensor, h: int) -> torch.Tensor:
        xb = self.bins(x)
        chunks: List[torch.Tensor] = []
        for s in range(0, max(x.shape[0], 1), 1024):  # bounds the (rows, trees) index arrays
            chunks.append(self.head(xb[s:s + 1024], h))
        return torch.cat(chunks, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bravais(x)

    @torch.jit.export
    def probabilities(self, x: torch.Tensor, h: int) -> torch.Tensor:
        """(n, n_columns) softmax of head ``h``."""
        return torch.softmax(self._heads(x, h), dim=-1)

    @torch.jit.export
    def bravais(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 14) Bravais probabilities."""
        return torch.softmax(self._heads(x, 0), dim=-1)

    @torch.jit.export
    def spacegroup(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """(n, len) probabilities of the space groups of lattice k, given lattice k."""
        return torch.softmax(self._heads(x, 1 + k), dim=-1)

    def _lattice_values(self, x: torch.Tensor, k: int) -> torch.Tensor:
        out = self._heads(x, 15 + k)
        c0, c1 = int(self.column_offsets[15 + k]), int(self.column_offsets[16 + k])
        return torch.where(self.exp_columns[c0:c1].unsqueeze(0), torch.exp(out), out)

    @torch.jit.export
    def lattice(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """(n, n_free) free lattice parameters of lattice k (Å, degrees); in a module with
        ``lattice_by_spacegroup``, averaged over the trees' 5 likeliest space groups."""
        if not self.lattice_by_spacegroup:
            return self._lattice_values(x, k)
        p = self.spacegroup(x, k)
        weight, groups = torch.topk(p, min(self.spacegroup_candidates, p.shape[1]), dim=1)
        return self.lattice_given(x, k, groups, weight)

    @torch.jit.export
    def lattice_given(self, x: torch.Tensor, k: int, groups: torch.Tensor,
                      weight: torch.Tensor) -> torch.Tensor:
        """(n, n_free) free lattice parameters of lattice k (Å, degrees) given space groups:
        ``groups`` (n, m) positions among the lattice's groups (ascending numbers), ``weight``
        (n, m) their weights (normalised here); the parameters are averaged over the m groups."""
        if not self.lattice_by_spacegroup:
            raise RuntimeError("these trees do not read the space group")
        n, m = groups.shape[0], groups.shape[1]
        if weight.shape[0] != n or weight.shape[1] != m or x.shape[0] != n:
            raise ValueError("x, groups and weight need the same number of rows")
        g = groups.reshape(-1).long()
        onehot = (g.unsqueeze(1) == self.onehot_groups[k].unsqueeze(0)).to(x.dtype)
        codes = torch.cat([g.unsqueeze(1).to(x.dtype), onehot], dim=1)
        values = self._lattice_values(torch.cat([x.repeat_interleave(m, dim=0), codes], dim=1), k)
        w = weight.to(values.dtype)
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-30)
        return (values.view(n, m, -1) * w.unsqueeze(2)).sum(dim=1)


MAX_EDGES = 254  # bins 0..254 fit in uint8


def feature_edges(X: np.ndarray) -> np.ndarray:
    """(n_features, 254) bin edges per feature, +inf padded: midpoints between distinct values
    when a feature has at most 255 of them, else midpoints between 255 quantiles. Values closer
    than 1e-9 × max(1, |largest value|) count as one: round-off (a cosine of 6e-17 or 3e-14 for
    a right angle) must not land on two sides of an edge."""
    X = np.asarray(X, np.float64)
    edges = np.full((X.shape[1], MAX_EDGES), np.inf)
    for j in range(X.shape[1]):
        u = np.unique(X[:, j])
        if len(u) > MAX_EDGES + 1:
            u = np.unique(np.quantile(X[:, j], np.linspace(0, 1, MAX_EDGES + 1), method="nearest"))
        gap = np.diff(u) > 1e-9 * max(1.0, float(np.abs(u).max()))
        e = (u[:-1][gap] + u[1:][gap]) / 2
        edges[j, : len(e)] = e
    return edges.astype(np.float32)


def bin_features(X: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(n, n_features) uint8 bin indices: the number of a feature's edges below the value
    (the same rule as ``BoostedTrees.bins``)."""
    X = np.asarray(X, np.float32)
    out = np.empty(X.shape, np.uint8)
    for j in range(X.shape[1]):
        out[:, j] = np.searchsorted(edges[j], X[:, j], side="left")
    return out


def spacegroup_edges() -> np.ndarray:
    """(SPACEGROUP_COLUMNS, 254) bin edges of the space-group columns: the position column is
    cut at every half-integer, the one-hot columns at 0.5, so each bin index equals the value."""
    edges = np.full((SPACEGROUP_COLUMNS, MAX_EDGES), np.inf, np.float32)
    edges[0] = np.arange(MAX_EDGES) + 0.5
    edges[1:, 0] = 0.5
    return edges


def spacegroup_columns(groups: np.ndarray, onehot_groups: np.ndarray) -> np.ndarray:
    """(n, SPACEGROUP_COLUMNS) space-group columns of the lattice heads (their values are also
    their bin indices): ``groups`` (n,) positions among a lattice's groups, ``onehot_groups``
    (N_ONEHOT,) that lattice's one-hot positions (-1: none)."""
    g = np.asarray(groups, np.int64)
    return np.concatenate([g[:, None], g[:, None] == np.asarray(onehot_groups)[None, :]],
                          axis=1).astype(np.uint8)


def common_groups(groups: np.ndarray) -> np.ndarray:
    """(N_ONEHOT,) the most common positions in ``groups`` (ties: the lower position first),
    -1 padded: the one-hot columns of a lattice."""
    counts = np.bincount(np.asarray(groups, np.int64), minlength=1)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0][:N_ONEHOT]
    return np.pad(order, (0, N_ONEHOT - len(order)), constant_values=-1)


def _packed_trees(module: "BoostedTrees", h: int):
    """The trees of head ``h`` of a packed module, as ``_tree_arrays`` gives them (the depth
    is the module's), its baseline and its ``exp_columns``: to copy a head into a new module."""
    t0, t1 = int(module.tree_offsets[h]), int(module.tree_offsets[h + 1])
    c0, c1 = int(module.column_offsets[h]), int(module.column_offsets[h + 1])
    roots = module.roots.long().tolist() + [int(module.left_offset.numel())]
    trees = []
    for t in range(t0, t1):
        a, b = roots[t], roots[t + 1]
        trees.append(((module.feature[a:b].numpy(), module.bin_threshold[a:b].numpy(),
                       module.left_offset[a:b].numpy(), module.value[a:b].float().numpy(),
                       int(module.max_depth) - 1), int(module.tree_column[t])))
    return trees, module.baseline[c0:c1].numpy(), module.exp_columns[c0:c1].numpy()


def _breadth_first(left, right, is_leaf, feature, threshold, value):
    """One tree's nodes renumbered breadth-first so that every right child directly follows its
    left sibling: (feature, bin, left-child offset, value, depth). The model was fitted on bin
    indices (integers), so its threshold t means "bin <= floor(t)"."""
    order: list[int] = []  # new index -> old index
    depth_of = {0: 0}
    queue = [0]
    while queue:  # breadth-first: siblings are adjacent
        old = queue.pop(0)
        order.append(old)
        if not is_leaf[old]:
            for child in (int(left[old]), int(right[old])):
                depth_of[child] = depth_of[old] + 1
                queue.append(child)
    new_index = {old: i for i, old in enumerate(order)}
    new_left: dict[int, int] = {}
    for old in order:
        if not is_leaf[old]:
            new_left[old] = new_index[int(left[old])]
            assert new_index[int(right[old])] == new_left[old] + 1
    o = np.array(order)
    leaf = np.asarray(is_leaf)[o].astype(bool)
    inner_features = np.asarray(feature)[o][~leaf]
    if len(order) > 127 or (inner_features.size and inner_features.max() > 255):
        raise ValueError("trees of at most 127 nodes (max_leaf_nodes <= 64) and 256 features")
    feature = np.where(leaf, 0, np.asarray(feature)[o]).astype(np.uint8)
    threshold = np.where(leaf, 0, np.clip(np.floor(np.asarray(threshold)[o]), 0, 255)).astype(np.uint8)
    offset = np.array([0 if leaf[i] else new_left[old] - i for i, old in enumerate(order)], np.int8)
    value = np.where(leaf, np.asarray(value, float)[o], 0.0)
    return feature, threshold, offset, value, max(depth_of.values())


def _tree_arrays(predictor):
    """Nodes of one scikit-learn ``HistGradientBoosting`` TreePredictor (``_breadth_first``)."""
    nodes = predictor.nodes
    if nodes["is_categorical"].any():
        raise ValueError("categorical splits are not supported")
    return _breadth_first(nodes["left"], nodes["right"], nodes["is_leaf"], nodes["feature_idx"],
                          nodes["num_threshold"], nodes["value"])


def _forest_tree_arrays(estimator):
    """Nodes of one fitted ``DecisionTreeRegressor`` of a random forest (``_breadth_first``)."""
    t = estimator.tree_
    return _breadth_first(t.children_left, t.children_right, t.children_left < 0, t.feature,
                          t.threshold, t.value[:, 0, 0])


class ForestMix(NamedTuple):
    """A regression head of boosted trees mixed with random forests, for ``from_sklearn``:
    output = (1 - weight) * boosted + weight * forest, column by column, in the fitted target's
    units (ln Å for lengths fitted on the log). The weights are folded into the leaf values.

    ``boosted``: one ``HistGradientBoostingRegressor`` per column, or ``(module, h)``: head h of
    a packed ``BoostedTrees`` whose trees are all boosted ones; ``forests``: one single-output
    ``RandomForestRegressor`` per column (trees of at most 64 leaves), fitted on the same inputs
    and targets."""

    boosted: object
    forests: list
    weight: float


def from_sklearn(heads: list, edges: np.ndarray, n_heads: int = N_HEADS,
                 onehot_groups: np.ndarray | None = None) -> BoostedTrees:
    """Pack fitted models into one ``BoostedTrees``.

    ``heads``: ``n_heads`` entries in head order, each ``(model, n_columns, columns)``: a fitted
    ``HistGradientBoostingClassifier`` (``columns[i]`` = output column of ``model.classes_[i]``;
    columns no class maps to get the ``ABSENT`` logit), a list of ``HistGradientBoostingRegressor``
    (one per column; ``columns``: None, or one bool per column, True where the regressor was
    fitted on the natural log of the target) or a ``ForestMix`` of such regressors and random
    forests, or ``None`` with a (n_columns,) baseline array as
    the third item (a constant head, e.g. a lattice with a single training class; in the
    target's own units), or a packed ``BoostedTrees`` with the head's index as the third item
    (its trees are copied; ``edges`` must extend the module's).
    Every model must have been fitted on ``bin_features(X, edges)``. With ``onehot_groups``
    ((14, N_ONEHOT) positions, ``common_groups`` of each lattice), the lattice heads were fitted
    with the ``spacegroup_columns`` after the features, and ``edges`` ends with
    ``spacegroup_edges()``.
    """
    feats, thrs, lefts, vals, roots, cols = [], [], [], [], [], []
    tree_off, col_off, baseline, exp_columns = [0], [0], [], []
    n_nodes, depth = 0, 0

    def add_tree(pred, column, scale=1.0):
        """Append one tree (a scikit-learn TreePredictor or ``_tree_arrays``' tuple), its leaf
        values times ``scale``, as an output of ``column``."""
        nonlocal n_nodes, depth
        f, t, left, v, d = pred if isinstance(pred, tuple) else _tree_arrays(pred)
        feats.append(f)
        thrs.append(t)
        lefts.append(left)
        vals.append(v * scale)
        roots.append(n_nodes)
        cols.append(column)
        n_nodes += len(f)
        depth = max(depth, d)

    from sklearn.ensemble import HistGradientBoostingClassifier

    for model, n_columns, columns in heads:
        first_tree = len(roots)
        if isinstance(model, (BoostedTrees, torch.jit.ScriptModule)):  # copied as it is
            packed, base, log_target = _packed_trees(model, int(columns))
            for arrays, c in packed:
                add_tree(arrays, c)
        elif model is None:
            base, log_target = np.asarray(columns, float), np.zeros(n_columns, bool)
        elif isinstance(model, HistGradientBoostingClassifier):
            base, log_target = np.full(n_columns, ABSENT), np.zeros(n_columns, bool)
            cls_cols = list(columns)
            b0 = np.ravel(model._baseline_prediction)
            if len(model.classes_) == 2:  # one tree per iteration: logit of the second class
                base[cls_cols[0]] = 0.0
                base[cls_cols[1]] = b0[0]
                tree_cols = [cls_cols[1]]
            else:
                base[cls_cols] = b0
                tree_cols = cls_cols
            for iteration in model._predictors:
                for pred, c in zip(iteration, tree_cols):
                    add_tree(pred, c)
        else:  # one regressor per column, maybe mixed with forests (ForestMix)
            log_target = np.zeros(n_columns, bool) if columns is None else np.asarray(columns, bool)
            mix = model if isinstance(model, ForestMix) else ForestMix(model, [], 0.0)
            share = 1.0 - float(mix.weight)
            if isinstance(mix.boosted, tuple):  # (packed module, head)
                packed, base, _ = _packed_trees(*mix.boosted)
                for arrays, c in packed:
                    add_tree(arrays, c, share)
            else:
                base = np.array([float(np.ravel(reg._baseline_prediction)[0]) for reg in mix.boosted])
                for c, reg in enumerate(mix.boosted):
                    for iteration in reg._predictors:
                        add_tree(iteration[0], c, share)
            base = share * base
            for c, forest in enumerate(mix.forests):  # a forest's value is the mean of its trees
                for estimator in forest.estimators_:
                    add_tree(_forest_tree_arrays(estimator), c, mix.weight / len(forest.estimators_))
        n_trees = len(roots) - first_tree
        tree_off.append(tree_off[-1] + n_trees)
        col_off.append(col_off[-1] + len(base))
        baseline.append(base)
        exp_columns.append(log_target)
    if len(tree_off) != n_heads + 1:
        raise ValueError(f"expected {n_heads} heads, got {len(tree_off) - 1}")
    cat = (lambda a, dt: torch.from_numpy(np.concatenate(a).astype(dt)) if a
           else torch.zeros(0, dtype=getattr(torch, np.dtype(dt).name)))
    return BoostedTrees(
        torch.from_numpy(edges), cat(feats, np.uint8), cat(thrs, np.uint8), cat(lefts, np.int8),
        cat(vals, np.float16), torch.tensor(roots, dtype=torch.int32),
        torch.tensor(cols, dtype=torch.int32), torch.tensor(tree_off), torch.tensor(col_off),
        torch.from_numpy(np.concatenate(baseline)), depth + 1,
        torch.from_numpy(np.concatenate(exp_columns)),
        None if onehot_groups is None else torch.from_numpy(np.asarray(onehot_groups, np.int64)))
