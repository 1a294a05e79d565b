"""Build the data and train the formula and cell-geometry models (``python -m cryspext.training.formula``).

Steps (each a sub-command):

* ``elements`` — write the elemental property table shipped as package data
  (``cryspext/formula/data/elements.json``) from matminer's bundled Magpie tables.
* ``data`` — one structure per reduced formula from ``shared/data/mp`` (the lowest-e_hull
  polymorph of ``mp_ehull.json.gz``), its CRYSPNet Bravais class, space group and the lattice
  parameters of spglib's conventional standard cell (rhombohedral cell for R groups).
* ``train`` — the joint formula ensemble (each member one network giving the 230 space-group
  probabilities, whose sums per lattice are the Bravais probabilities, and the free lattice
  parameters of every Bravais lattice) and the cell-geometry model (``training/cell.py``), for one split (``random``: 90/10 by a seeded shuffle; ``future``: the 90 %
  lowest MP ids train, the 10 % highest test). The ``random`` models are the shipped ones.
  ``--arch element`` puts an element encoder in front of each network (attention over the
  formula's elements with learned per-element embeddings, ``nets.ElementEncoder``). The
  networks read the formula-unit features too (``NETWORK_FORMULA_UNIT_INPUTS``).
* ``trees`` — the gradient-boosted trees mixed into the outputs of the formula and cell models
  (``training/formula_trees.py``: ``formula_trees.pt``, ``cell_trees.pt``) and the trees of
  ``predict_cell(..., setting="standard")`` (``cell_standard_trees.pt``) and of
  ``predict_cell(..., formula=...)`` (``formula_cell_trees.pt``). The Bravais and
  space-group trees also learn half of COD's formula → space-group labels (``training.cod``;
  ``--no-cod``: without).
* ``recipe`` — the shipped models from the data set in one command: the cell model, the two
  network runs of ``RECIPE_RUNS``, their merge and the trees, as separate processes
  (``--jobs 2`` runs two at a time; ``--dry-run`` prints the commands).
* ``all`` — ``elements``, ``data``, then ``recipe``.
* ``coverage`` — write what the training formulas cover (formulas per element, atoms per
  formula unit) onto an existing model card; ``train`` and ``merge`` write it themselves.
* ``volume`` — the table of cell volume per formula unit by space group
  (``cell_volume.npz``, ``formula.cellvolume``) that ``predict_cell(..., formula=...)`` uses.
* ``analogues`` — the training formulas by stoichiometry pattern, with their space groups,
  cells and structures (asymmetric units, read from ``--shared``; ``--no-structures`` leaves
  them out) (``analogues.npz``), for ``formula.analogues.find_analogues`` and
  ``seed_structure``.
* ``tune`` — fine-tune a trained formula ensemble on the Materials Project rows plus COD's
  labels (``--model DIR --out DIR``; ``--no-cod``: the MP rows alone).

Needs pymatgen, spglib and matminer (training only, never at run time). CPU-friendly: keep
``--threads`` at 1–2 on a shared machine.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..formula.lattice import (
    BRAVAIS,
    FREE_PARAMETERS,
    PARAMETER_NAMES,
    bravais_of_spacegroup,
    cell_parameters,
    hexagonal_to_rhombohedral,
)

REPO = Path(__file__).resolve().parents[3]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
DEFAULT_CACHE = REPO / "cache" / "formula"
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "formula" / "data"
MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "formula"


# --------------------------------------------------------------------------------------------
# elements: the shipped property table
# --------------------------------------------------------------------------------------------

# Magpie table name -> (our property name, unit). The list; no space-group number.
MAGPIE_PROPERTIES = [
    ("Number", "atomic_number", ""),
    ("MendeleevNumber", "mendeleev_number", ""),
    ("AtomicWeight", "atomic_weight", "u"),
    ("MeltingT", "melting_point", "K"),
    ("Column", "column", ""),
    ("Row", "row", ""),
    ("CovalentRadius", "covalent_radius", "pm"),
    ("Electronegativity", "electronegativity", "Pauling"),
    ("NsValence", "ns_valence", "electrons"),
    ("NpValence", "np_valence", "electrons"),
    ("NdValence", "nd_valence", "electrons"),
    ("NfValence", "nf_valence", "electrons"),
    ("NValence", "n_valence", "electrons"),
    ("NsUnfilled", "ns_unfilled", "electrons"),
    ("NpUnfilled", "np_unfilled", "electrons"),
    ("NdUnfilled", "nd_unfilled", "electrons"),
    ("NfUnfilled", "nf_unfilled", "electrons"),
    ("NUnfilled", "n_unfilled", "electrons"),
    ("GSvolume_pa", "gs_volume_per_atom", "Å³"),
    ("GSbandgap", "gs_band_gap", "eV"),
    ("GSmagmom", "gs_magnetic_moment", "μB"),
]


def build_element_table(out: Path = PACKAGE_DATA / "elements.json") -> Path:
    """Write the elemental property table from matminer's bundled Magpie tables.

    Magpie lists elements 1..112 in order, one value per line, "Missing" where unknown. Missing
    values are kept as null here and imputed at feature time (see ``elements.py``).
    """
    import matminer
    from pymatgen.core.periodic_table import Element

    src = Path(matminer.__file__).parent / "utils" / "data_files" / "magpie_elementdata"
    symbols = [Element.from_Z(z).symbol for z in range(1, 113)]
    table: dict[str, list] = {}
    for magpie, name, _unit in MAGPIE_PROPERTIES:
        lines = (src / f"{magpie}.table").read_text().split("\n")[: len(symbols)]
        values = []
        for line in lines:
            line = line.strip()
            values.append(None if line in ("", "Missing") else float(line))
        table[name] = values
    # Common oxidation states (for the ionic-character feature "charge-balanced possible").
    oxi = []
    for line in (src / "OxidationStates.table").read_text().split("\n")[: len(symbols)]:
        oxi.append([int(float(t)) for t in line.split()])
    data = {
        "provenance": (
            f"Derived by 'python -m cryspext.training.formula elements' from the Magpie elemental "
            f"tables bundled with matminer {matminer.__version__} "
            "(matminer/utils/data_files/magpie_elementdata; Ward et al., npj Comput. Mater. 2, "
            "16028 (2016); matminer BSD-style licence). Element symbols from pymatgen."
        ),
        "units": {name: unit for _m, name, unit in MAGPIE_PROPERTIES},
        "symbols": symbols,
        "properties": table,
        "oxidation_states": oxi,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    # Third-party data keeps its licence: matminer's (BSD-style) goes next to the table.
    from importlib.metadata import distribution

    licence = distribution("matminer").read_text("licenses/LICENSE") or distribution(
        "matminer").read_text("LICENSE")
    if licence:
        (out.parent / "LICENSE.matminer").write_text(licence)
    return out


# --------------------------------------------------------------------------------------------
# data: one structure per reduced formula
# --------------------------------------------------------------------------------------------


def conventional_parameters(record: dict) -> tuple[int, np.ndarray]:
    """(space group, a b c α β γ of spglib's conventional standard cell) of one MP record."""
    import spglib
    from ase.data import atomic_numbers

    cell = (
        np.asarray(record["lattice"], float),
        np.asarray(record["frac"], float),
        [atomic_numbers[s] for s in record["species"]],
    )
    ds = spglib.get_symmetry_dataset(cell, symprec=0.1, angle_tolerance=5)
    return int(ds.number), cell_parameters(ds.std_lattice)


def cryspnet_parameters(bravais: str, conv: np.ndarray) -> np.ndarray:
    """Six parameters in CRYSPNet's convention: R lattices as the rhombohedral cell."""
    p = np.array(conv, float)
    if bravais == "hR":
        a_r, alpha_r = hexagonal_to_rhombohedral(p[0], p[2])
        p = np.array([a_r, a_r, a_r, alpha_r, alpha_r, alpha_r])
    return p


def build_dataset(shared: Path, out: Path) -> Path:
    """One row per reduced formula: the lowest-e_hull polymorph that has an MP structure."""
    mp = shared / "mp"
    ehull = json.load(gzip.open(mp / "mp_ehull.json.gz", "rt"))
    # Ranked space groups per formula, lowest e_hull first.
    ranked = {f: [sg for _e, sg in lst] for f, lst in ehull.items() if lst}
    candidates: dict[str, dict[int, dict]] = {}
    n_records = 0
    with gzip.open(mp / "mp_structures.jsonl.gz", "rt") as fh:
        for line in tqdm(fh, total=144861, desc="reading MP structures", mininterval=10):
            n_records += 1
            rec = json.loads(line)
            f = rec["formula"]
            if f not in ranked or rec["sg"] not in ranked[f]:
                continue
            # Records are sorted by id: keep the lowest id per (formula, space group).
            candidates.setdefault(f, {}).setdefault(rec["sg"], rec)
    rows, stats = [], {"records": n_records, "formulas_with_ehull": len(ranked)}
    mismatch = 0
    for f in tqdm(sorted(candidates), desc="spglib conventional cells", mininterval=10):
        by_sg = candidates[f]
        sg = next(s for s in ranked[f] if s in by_sg)
        rec = by_sg[sg]
        sg_check, conv = conventional_parameters(rec)
        if sg_check != sg:
            mismatch += 1
            continue
        bravais = bravais_of_spacegroup(sg)
        rows.append(
            {
                "formula": f,
                "mp_id": int(rec["id"].split("-")[1]),
                "sg": sg,
                "bravais": bravais,
                "params": [round(x, 5) for x in cryspnet_parameters(bravais, conv)],
                "conventional": [round(x, 5) for x in conv],
                "lowest_ehull_sg": sg == ranked[f][0],
            }
        )
    stats.update(
        formulas_with_structure=len(candidates),
        rows=len(rows),
        spglib_mismatch_skipped=mismatch,
        lowest_ehull_polymorph=sum(r["lowest_ehull_sg"] for r in rows),
    )
    write_json_gz({"stats": stats, "rows": rows}, out)
    print(json.dumps(stats))
    return out


def write_json_gz(obj, out: Path) -> None:
    """Write ``obj`` as gzip-compressed JSON whose bytes depend on the content only: the gzip
    header gets mtime 0 and no file name (``gzip.open`` stores the write time), so the sha256 on
    the model cards (``training_data_sha256_16``) is the same for the same data."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as gz:
        gz.write(json.dumps(obj).encode())


def tqdm(iterable, **kwargs):
    """Progress bar when tqdm is installed (it is a cryspext dependency), else plain."""
    try:
        from tqdm import tqdm as bar
    except ImportError:
        return iterable
    return bar(iterable, **kwargs)


def load_dataset(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as fh:
        return json.load(fh)["rows"]


def split_indices(rows: list[dict], split: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: ``random`` 90/10 by a seeded shuffle, ``future`` by MP id."""
    n = len(rows)
    if split == "random":
        perm = np.random.default_rng(seed).permutation(n)
    elif split == "future":
        perm = np.argsort([r["mp_id"] for r in rows], kind="stable")
    else:
        raise ValueError(f"unknown split {split!r}; expected 'random' or 'future'")
    n_test = n // 10
    return np.sort(perm[: n - n_test]), np.sort(perm[n - n_test :])


def validation_split(arr: dict, train: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) rows inside the training rows, for model selection without the test
    rows: ``random``: a seeded 10 % of the training formulas; ``future``: the 10 % of them with
    the highest MP ids (the same kind of shift as the test rows)."""
    n = len(train) // 10
    if split == "future":
        order = train[np.argsort(arr["mp_id"][train], kind="stable")]
        return np.sort(order[:-n]), np.sort(order[-n:])
    perm = np.random.default_rng(123).permutation(train)
    return np.sort(perm[n:]), np.sort(perm[:n])


# Primitive basis of each centring, rows in units of the conventional vectors (ITA Table 5.1).
_CENTRING = {
    "P": np.eye(3),
    "I": np.array([[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]]),
    "F": np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]),
    "C": np.array([[0.5, 0.5, 0.0], [-0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]),
    "A": np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, -0.5, 0.5]]),
    "R": np.array([[2 / 3, 1 / 3, 1 / 3], [-1 / 3, 1 / 3, 1 / 3], [-1 / 3, -2 / 3, 1 / 3]]),
}


def primitive_parameters(conventional, sg: int) -> np.ndarray:
    """a b c α β γ of a primitive cell of the lattice whose conventional standard cell
    (spglib setting: A-centred for space groups 38–41, hexagonal axes for R) is given."""
    from ase.cell import Cell

    b = bravais_of_spacegroup(int(sg))
    centring = "R" if b == "hR" else ("A" if 38 <= sg <= 41 else b[1])
    cell = np.array(Cell.fromcellpar(conventional))
    return Cell(_CENTRING[centring] @ cell).cellpar()


# --------------------------------------------------------------------------------------------
# features and labels
# --------------------------------------------------------------------------------------------


def dataset_arrays(cache: Path) -> dict[str, np.ndarray]:
    """Features and labels of the dataset, computed once and cached next to it (npz)."""
    from ..formula.cellgeom import cell_features
    from ..formula.features import FEATURE_NAMES, formula_features

    src = cache / "dataset.json.gz"
    out = cache / "arrays.npz"
    if out.is_file() and not src.is_file():  # arrays carried to another machine without the json
        return dict(np.load(out, allow_pickle=False))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    if out.is_file():
        arr = dict(np.load(out, allow_pickle=False))
        if str(arr["digest"]) == digest and arr["X"].shape[1] == len(FEATURE_NAMES):
            if "C_primitive" not in arr:  # cache from before the primitive cells were added
                arr.update(_primitive_arrays(load_dataset(src), arr["C"]))
                np.savez_compressed(out, **arr)
            return arr
    rows = load_dataset(src)
    X = np.stack([formula_features(r["formula"]) for r in tqdm(rows, desc="formula features",
                                                                 mininterval=10)])
    C = np.stack([cell_features(r["conventional"]) for r in tqdm(rows, desc="cell features",
                                                                  mininterval=10)])
    # The same cells in another setting (Niggli-reduced), for the leakage check: raw parameters
    # for every row, canonical features for every 10th row (ASE lattice search is the slow part).
    from ase.build.tools import niggli_reduce_cell
    from ase.cell import Cell

    niggli = np.stack([Cell(niggli_reduce_cell(np.array(Cell.fromcellpar(r["conventional"])))[0])
                       .cellpar() for r in tqdm(rows, desc="Niggli cells", mininterval=10)])
    sample = np.arange(0, len(rows), 10)
    C_niggli = np.stack([cell_features(niggli[i]) for i in tqdm(sample, desc="Niggli features",
                                                                  mininterval=10)])
    arr = {
        **_primitive_arrays(rows, C),
        "niggli": niggli.astype(np.float32),
        "niggli_sample": sample,
        "C_niggli_sample": C_niggli.astype(np.float32),
        "X": X.astype(np.float32),
        "C": C.astype(np.float32),
        "conventional": np.array([r["conventional"] for r in rows], np.float32),
        "bravais": np.array([BRAVAIS.index(r["bravais"]) for r in rows], np.int64),
        "sg": np.array([r["sg"] for r in rows], np.int64),
        "params": np.array([r["params"] for r in rows], np.float32),
        "mp_id": np.array([r["mp_id"] for r in rows], np.int64),
        "formula": np.array([r["formula"] for r in rows]),
        "digest": np.array(digest),
    }
    np.savez_compressed(out, **arr)
    return arr


def _primitive_arrays(rows: list[dict], C: np.ndarray) -> dict[str, np.ndarray]:
    """Primitive cells (same lattice points as the crystal) and their features; the cell
    model trains on conventional and primitive cells. P lattices: the conventional cell."""
    from ..formula.cellgeom import cell_features

    centred = [i for i, r in enumerate(rows) if r["bravais"][1] != "P"]
    primitive = np.array([r["conventional"] for r in rows], float)
    C_prim = np.array(C, dtype=np.float64, copy=True)
    for i in tqdm(centred, desc="primitive cells", mininterval=10):
        primitive[i] = primitive_parameters(rows[i]["conventional"], rows[i]["sg"])
        C_prim[i] = cell_features(primitive[i])
    return {"primitive": primitive.astype(np.float32), "C_primitive": C_prim.astype(np.float32)}


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    std[std < 1e-6] = 1.0  # constant columns (elements absent from the training set)
    return mean.astype(np.float32), std.astype(np.float32)


# Mole fractions enter the formula network as 3·x, not standardised: standardising divides a
# rare element's column by a tiny std (inputs of 30–100), and the network then keyed on rare
# elements (measured: Bravais top-1 of one network 52.3 % standardised vs 53.5 % as 3·x).
FRACTION_SCALE = 3.0


def _formula_scaling(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the formula-network inputs: standardised Magpie-style statistics,
    mole fractions (features ``x_<element>``) scaled by ``FRACTION_SCALE``."""
    mean, std = _standardise(X)
    frac = np.array([n.startswith("x_") for n in names])
    mean[frac] = 0.0
    std[frac] = 1.0 / FRACTION_SCALE
    return mean, std


# The networks also read the two formula-unit features (``features.FORMULA_UNIT_FEATURE_NAMES``,
# after the mole fractions), as natural logs inside the network (``nets.FrozenMLP``): the
# lattice lengths grow with the size of the formula unit, which the 221 intensive features
# cannot tell (Fe2O3 vs FeO1.5).
NETWORK_FORMULA_UNIT_INPUTS = True


def network_inputs(arr: dict, formula_unit: bool = NETWORK_FORMULA_UNIT_INPUTS
                   ) -> tuple[np.ndarray, list[str], tuple[int, int]]:
    """(X, names, log_columns) of the data rows for the formula networks: ``X`` as the frozen
    networks read it (``FEATURE_NAMES``, then with ``formula_unit`` the formula-unit features),
    its column names, and the columns the networks take the natural log of."""
    from ..formula.features import FEATURE_NAMES, FORMULA_UNIT_FEATURE_NAMES
    from .formula_trees import tree_inputs

    X = tree_inputs(arr, formula_unit)
    if not formula_unit:
        return X, list(FEATURE_NAMES), (0, 0)
    return X, FEATURE_NAMES + FORMULA_UNIT_FEATURE_NAMES, (len(FEATURE_NAMES), X.shape[1])


def training_coverage(arr: dict, rows: np.ndarray) -> dict:
    """What the training formulas ``rows`` cover, for the card (``predict_formula`` flags
    formulas outside it): ``formulas_per_element`` (element → number of training formulas that
    contain it; elements in none are left out), ``atoms_per_formula_unit`` ([min, max] atoms
    of the reduced formulas) and ``formulas_per_spacegroup`` (space group → training formulas;
    the prior that ``predict_cell(..., formula=...)`` divides by)."""
    from ..formula.features import FEATURE_NAMES, formula_unit_rows

    x = arr["X"][rows]
    counts = {n[2:]: int(np.count_nonzero(x[:, j] > 0)) for j, n in enumerate(FEATURE_NAMES)
              if n.startswith("x_")}
    atoms = formula_unit_rows([str(f) for f in arr["formula"][rows]])[:, 0]
    groups, per_group = np.unique(arr["sg"][rows], return_counts=True)
    return {"formulas_per_element": {el: n for el, n in counts.items() if n},
            "atoms_per_formula_unit": [float(atoms.min()), float(atoms.max())],
            "formulas_per_spacegroup": {str(int(g)): int(n) for g, n in zip(groups, per_group)}}


def _logged(X: np.ndarray, log_columns: tuple[int, int]) -> np.ndarray:
    """``X`` with columns ``log_columns`` replaced by their natural logs (as the networks see
    them during training; frozen networks take the logs themselves)."""
    a, b = log_columns
    if b <= a:
        return X
    out = X.copy()
    out[:, a:b] = np.log(np.clip(X[:, a:b], 1e-6, None))
    return out


def lattice_bounds(P: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid output range per free parameter: half the training minimum to 1.5× the maximum."""
    lo = 0.5 * P.min(axis=0)
    hi = 1.5 * P.max(axis=0)
    for j, n in enumerate(names):
        if n in ("alpha", "beta", "gamma"):
            hi[j] = min(hi[j], 180.0)
    return lo.astype(np.float32), hi.astype(np.float32)


JOINT_HIDDEN = [512, 512]
# Per-feature embedding width of the Magpie-style statistics (nets.FeatureEmbedding; 0 = none).
JOINT_EMBED_K = 8
# Element encoder of the "element" architecture (nets.ElementEncoder): token width, attention
# heads and rounds. Token width 128 (``--element-dim``): one network on the validation slice of
# the random split, Bravais top-1 58.5 % vs 58.1/58.0 % (two seeds) at width 64, SG top-1 given
# the true lattice 77.3 vs 76.7/77.0 % (40 epochs instead of 22: 57.0 %; dropout 0.2: 56.9 %).
ELEMENT_ENCODER = {"dim": 64, "heads": 4, "rounds": 2}


def lattice_slots() -> tuple[np.ndarray, list[list[int]]]:
    """Offsets (15,) of each Bravais lattice's free parameters in the joint network's lattice
    outputs (37 slots) and, per lattice, the columns of those parameters among a b c α β γ."""
    sizes = [len(FREE_PARAMETERS[b]) for b in BRAVAIS]
    cols = [[PARAMETER_NAMES.index(n) for n in FREE_PARAMETERS[b]] for b in BRAVAIS]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), cols


def spacegroup_bravais_matrix() -> np.ndarray:
    """(230, 14) 0/1: space group n+1 belongs to Bravais lattice k (CRYSPNet's convention)."""
    from ..formula.lattice import spacegroups_of_bravais

    M = np.zeros((230, len(BRAVAIS)), np.float32)
    for k, b in enumerate(BRAVAIS):
        M[np.array(spacegroups_of_bravais(b)) - 1, k] = 1.0
    return M


def fit_joint_member(X, SG, B, P, *, hidden, epochs, seed, x_mean, x_std, lo, hi,
                     batch=512, lr=3e-3, dropout=0.0, weight_decay=1e-5, bravais_weight=1.0,
                     lattice_weight=10.0, embed=(0, 0), log_columns=(0, 0), device="cpu"):
    """Train one joint formula network on all training rows.

    Outputs: 230 space-group logits, then the 37 lattice slots (``lattice_slots``). Loss:
    cross-entropy over the 230 space groups + ``bravais_weight`` × cross-entropy of the Bravais
    probabilities (sums of the space-group softmax per lattice) + ``lattice_weight`` × Log-MSE
    of the true lattice's free parameters (sigmoid outputs scaled to [lo, hi]). One network
    sees every row, instead of 14 small per-lattice networks starved of data. Fixed epochs with
    a one-cycle schedule and no early stopping: stopping on the validation loss picked early,
    under-fitted epochs, while the accuracy still rose. ``X`` holds the natural logs of
    columns ``log_columns`` (``_logged``); the frozen network takes them itself.
    """
    import torch

    from ..formula.nets import MLP, freeze

    torch.manual_seed(seed)
    model = MLP(X.shape[1], hidden, 230 + int(lattice_slots()[0][-1]), dropout, embed=embed)
    _train_joint(model, X, SG, B, P, epochs=epochs, seed=seed, x_mean=x_mean, x_std=x_std,
                 lo=lo, hi=hi, batch=batch, lr=lr, weight_decay=weight_decay,
                 bravais_weight=bravais_weight, lattice_weight=lattice_weight, device=device)
    return freeze(model.cpu(), x_mean, x_std, 2, log_columns=log_columns)


def element_properties() -> np.ndarray:
    """(MAX_Z, n_properties) elemental properties standardised over the elements Z = 1..MAX_Z:
    the token inputs of the element encoder (the same table the features are computed from)."""
    from ..formula.elements import element_table

    t = element_table()[0]
    return ((t - t.mean(0)) / np.where(t.std(0) > 0, t.std(0), 1.0)).astype(np.float32)


def fit_joint_element_member(X, SG, B, P, *, hidden, epochs, seed, x_mean, x_std, lo, hi,
                             frac_start, batch=512, lr=3e-3, dropout=0.0, weight_decay=1e-5,
                             bravais_weight=1.0, lattice_weight=10.0, embed=(0, 0), dim=64,
                             heads=4, rounds=2, log_columns=(0, 0), device="cpu"):
    """Like ``fit_joint_member`` with an element encoder (``nets.ElementMLP``) in front of the
    MLP: attention over the formula's elements with learned per-element embeddings."""
    import torch

    from ..formula.nets import ElementMLP, freeze_element

    torch.manual_seed(seed)
    model = ElementMLP(X.shape[1], hidden, 230 + int(lattice_slots()[0][-1]),
                       torch.from_numpy(element_properties()), frac_start, dropout, embed=embed,
                       dim=dim, heads=heads, rounds=rounds)
    _train_joint(model, X, SG, B, P, epochs=epochs, seed=seed, x_mean=x_mean, x_std=x_std,
                 lo=lo, hi=hi, batch=batch, lr=lr, weight_decay=weight_decay,
                 bravais_weight=bravais_weight, lattice_weight=lattice_weight, device=device)
    return freeze_element(model.cpu(), x_mean, x_std, 2, log_columns=log_columns)


def _train_joint(model, X, SG, B, P, *, epochs, seed, x_mean, x_std, lo, hi, batch, lr,
                 weight_decay, bravais_weight, lattice_weight, device, lattice_rows=None):
    """The training loop of the joint networks (loss: see ``fit_joint_member``). ``x_mean``
    None: ``X`` goes to the model as it is (a ``nets.tunable_member`` scales it itself).
    ``lattice_rows``: (n,) bool, the rows whose lattice parameters are known (None: all); the
    others (COD labels) add only the space-group and Bravais terms."""
    import torch

    rng = np.random.default_rng(seed)
    offsets, cols = lattice_slots()
    n_slots = int(offsets[-1])
    target = np.ones((len(X), n_slots), np.float32)
    mask = np.zeros((len(X), n_slots), np.float32)
    known = np.ones(len(X), bool) if lattice_rows is None else np.asarray(lattice_rows, bool)
    for k in range(len(BRAVAIS)):
        rows = np.nonzero((B == k) & known)[0]
        target[rows, offsets[k]:offsets[k + 1]] = P[rows][:, cols[k]]
        mask[rows, offsets[k]:offsets[k + 1]] = 1.0
    xs = X if x_mean is None else (X - x_mean) / x_std
    xs = torch.from_numpy(np.ascontiguousarray(xs, dtype=np.float32)).to(device)
    sg_t = torch.from_numpy(SG - 1).to(device)
    b_t = torch.from_numpy(B).to(device)
    tgt_t, mask_t = torch.from_numpy(target).to(device), torch.from_numpy(mask).to(device)
    # log of the 0/1 membership: adding it to the logits keeps one lattice's space groups.
    log_m = torch.log(torch.from_numpy(spacegroup_bravais_matrix())).to(device)  # (230, 14)
    lo_t, hi_t = torch.as_tensor(lo).to(device), torch.as_tensor(hi).to(device)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, math.ceil(len(X) / batch)) * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    F = torch.nn.functional
    for epoch in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(len(X))).to(device)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            out = model(xs[idx])
            logits = out[:, :230]
            loss = F.cross_entropy(logits, sg_t[idx])
            if bravais_weight:
                log_pb = torch.logsumexp(logits[:, :, None] + log_m[None], dim=1)
                loss = loss + bravais_weight * F.nll_loss(
                    log_pb - torch.logsumexp(logits, dim=1, keepdim=True), b_t[idx])
            pred = lo_t + (hi_t - lo_t) * torch.sigmoid(out[:, 230:])
            m = mask_t[idx]
            # a batch of COD rows alone has no lattice term (m.sum() = 0)
            log_mse = ((torch.log(pred / tgt_t[idx]) ** 2) * m).sum() / torch.clamp(m.sum(), min=1.0)
            loss = loss + lattice_weight * log_mse
            if not torch.isfinite(loss):
                raise RuntimeError(f"the loss is not finite in epoch {epoch + 1}: the training "
                                   "diverged (non-finite features or lattice parameters <= 0, or "
                                   "too high a learning rate)")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model


# Fine-tuning of a trained ensemble with COD's formula -> space-group labels (rows without
# lattice parameters, ``training.cod``): a few more epochs on the Materials Project training
# rows plus the COD training half. Fixed before the validation run of
# benchmarks/cod_network_validation.py (its docstring holds the rule and the figures).
TUNE_EPOCHS = 3
TUNE_LR = 1e-3
TUNE_SEED = 500


def _stored_half(member) -> bool:
    """True when ``member``'s element encoder is stored in float16 (a merged ensemble's)."""
    enc = getattr(member, "encoder", None)
    return enc is not None and getattr(enc, "original_name", type(enc).__name__) == "HalfElementEncoder"


def fine_tune_joint(joint, X, SG, B, P, lattice_rows, *, epochs: int = TUNE_EPOCHS,
                    lr: float = TUNE_LR, seed: int = TUNE_SEED, batch: int = 512,
                    weight_decay: float = 1e-5, device: str = "cpu"):
    """A new ``JointEnsemble``: every member of ``joint`` trained ``epochs`` more epochs (one-cycle
    schedule up to ``lr``, member m seeded ``seed + m``) with the loss of ``fit_joint_member``
    on the rows ``X`` (as the frozen networks read them); rows outside ``lattice_rows`` add no
    lattice term. Element encoders stored in float16 stay so."""
    import torch

    from ..formula.nets import JointEnsemble, freeze_tuned, tunable_member

    members = []
    n = len(list(joint.members.children()))
    for i in tqdm(range(n), desc="fine-tuning members"):
        source = getattr(joint.members, str(i))
        member = tunable_member(source)
        torch.manual_seed(seed + i)
        _train_joint(member, X, SG, B, P, epochs=epochs, seed=seed + i, x_mean=None, x_std=None,
                     lo=joint.lo, hi=joint.hi, batch=batch, lr=lr, weight_decay=weight_decay,
                     bravais_weight=1.0, lattice_weight=10.0, device=device,
                     lattice_rows=lattice_rows)
        members.append(freeze_tuned(member.cpu().eval(), _stored_half(source)))
    return JointEnsemble(members, joint.sg_bravais, joint.offsets, joint.lo, joint.hi)


def tune_split(cache: Path, split: str, model_dir: Path, out_dir: Path, *,
               shared: Path | None = DEFAULT_SHARED, validate: bool = False,
               epochs: int = TUNE_EPOCHS, lr: float = TUNE_LR, threads: int = 1,
               device: str = "cpu") -> dict:
    """Fine-tune the formula ensemble of ``model_dir`` (``fine_tune_joint``) on the ``split``'s
    training rows plus the COD training half of ``shared`` (``training.cod``; None: the
    Materials Project rows alone, a control); write ``formula.pt`` + card to ``out_dir``.
    ``validate``: the model was fitted without the validation slice (``train --validate``); it
    is tuned on the same fit rows and scored on the slice."""
    import torch

    from ..models import load_torchscript, save_torchscript

    torch.set_num_threads(threads)
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    card = json.loads((model_dir / "formula.json").read_text())
    if card["split"] != split:
        raise ValueError(f"{model_dir} holds a {card['split']!r} model, not {split!r}")
    if bool(card.get("validation_run")) != validate:
        raise ValueError(f"{model_dir}: a {'validation' if card.get('validation_run') else 'full'} "
                         f"model must be tuned {'with' if card.get('validation_run') else 'without'} "
                         "--validate (the rows it was fitted on)")
    arr = dataset_arrays(cache)
    train, test = _split(arr, split)
    if validate:
        train, test = validation_split(arr, train, split)
    X = network_inputs(arr, NETWORK_FORMULA_UNIT_INPUTS)[0]
    B, SG, P = arr["bravais"], arr["sg"], arr["params"]
    Xr, SGr, Br, Pr = X[train], SG[train], B[train], P[train]
    known = np.ones(len(train), bool)
    cod_card = None
    if shared is not None:
        from .cod import cod_training_rows

        cod = cod_training_rows(Path(shared), "train")
        n_cod = len(cod["sg"])
        Xr = np.concatenate([Xr, cod["X"].astype(Xr.dtype)])
        SGr, Br = np.concatenate([SGr, cod["sg"]]), np.concatenate([Br, cod["bravais"]])
        Pr = np.concatenate([Pr, np.ones((n_cod, P.shape[1]), P.dtype)])
        known = np.concatenate([known, np.zeros(n_cod, bool)])
        cod_card = {**cod["provenance"], "used_by": "the Bravais and space-group terms of the "
                    "loss (no lattice term for these rows)"}
    t = time.time()
    joint = load_torchscript(model_dir / "formula.pt")
    tuned = fine_tune_joint(joint, Xr, SGr, Br, Pr, known, epochs=epochs, lr=lr, device=device)
    tune_s = time.time() - t
    metrics_b, metrics_sg, metrics_lp, _ = _joint_metrics(tuned, X, B, SG, P, test)
    card = {**card, "fine_tuning": {
        "from": _shown(model_dir), "epochs": epochs, "max_lr": lr, "seed": TUNE_SEED,
        "schedule": "one-cycle per member", "n_mp_rows": int(len(train)),
        "n_cod_rows": int((~known).sum()), "cod_labels": cod_card, "time_s": tune_s,
        "threads": threads, "device": device,
        "command": (f"python -m cryspext.training.formula tune --split {split} --model "
                    f"{_shown(model_dir)} --out {_shown(out_dir)}" + (" --validate" if validate else "")
                    + ("" if shared is not None else " --no-cod"))},
        "test_metrics": {"bravais": metrics_b, "spacegroup_given_true_bravais": metrics_sg,
                         "lattice_given_true_bravais": metrics_lp}}
    save_torchscript(tuned, out_dir / "formula.pt", card)
    summary_path = model_dir / "training_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    timings = summary.setdefault("timings", {})
    timings["formula_s"] = timings.get("formula_s", 0.0) + tune_s
    timings["fine_tuning_s"] = tune_s
    timings["total_s"] = timings.get("total_s", 0.0) + tune_s
    summary.update({"bravais": metrics_b, "spacegroup": metrics_sg, "lattice": metrics_lp,
                    "fine_tuning": card["fine_tuning"]})
    (out_dir / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _joint_metrics(joint, X, B, SG, P, test):
    """Test metrics of a joint formula ensemble: Bravais top-1/2, space group top-1/3 given the
    true lattice and lattice-parameter Log-MSE/R² per lattice (members' mean)."""
    import torch

    from ..formula.lattice import spacegroups_of_bravais

    offsets, cols = lattice_slots()
    Xt = torch.from_numpy(np.ascontiguousarray(X[test], dtype=np.float32))
    with torch.no_grad():
        prob = joint.bravais(Xt).mean(0).numpy()
    rank = np.argsort(-prob, axis=1)
    metrics_b = {
        "top1": float(np.mean(rank[:, 0] == B[test])),
        "top2": float(np.mean((rank[:, :2] == B[test][:, None]).any(axis=1))),
    }
    sg_classes, metrics_sg, metrics_lp = {}, {}, {}
    for k, b in enumerate(BRAVAIS):
        groups = spacegroups_of_bravais(b)
        sg_classes[b] = groups
        te_k = test[B[test] == k]
        if not len(te_k):
            continue
        xk = torch.from_numpy(np.ascontiguousarray(X[te_k], dtype=np.float32))
        with torch.no_grad():
            p_sg = joint.spacegroup(xk, k).mean(0).numpy()
            pred = joint.lattice(xk, k).mean(0).numpy()
        r = np.argsort(-p_sg, axis=1)
        yt = np.searchsorted(groups, SG[te_k])
        metrics_sg[b] = {"n_test": int(len(te_k)),
                         "top1": float(np.mean(r[:, 0] == yt)),
                         "top3": float(np.mean((r[:, :3] == yt[:, None]).any(axis=1)))}
        truth = P[te_k][:, cols[k]]
        metrics_lp[b] = {"n_test": int(len(te_k)),
                         "log_mse": float(np.mean(np.log(pred / truth) ** 2)),
                         "r2": {n: r2_score(truth[:, j], pred[:, j])
                                for j, n in enumerate(FREE_PARAMETERS[b])}}
    return metrics_b, metrics_sg, metrics_lp, sg_classes


def merge_formula_ensembles(cache: Path, split: str,
                            sources: list[tuple[Path, int | list[int]]], out_dir: Path) -> dict:
    """One joint ensemble from members of several trained ensembles of the same split (e.g.
    MLP members of an earlier run and element-network members): per source, either the first
    n members (an int) or the members of the given 0-based indices (a list). The members'
    probabilities are averaged, so members of different architectures add up. Element
    networks are stored with a float16 encoder (``nets.half_element_member``: about 0.15 MB
    less per member at token width 64, 0.55 MB at 128; probabilities change by < 1e-3). Writes
    ``formula.pt`` + card and updates ``training_summary.json`` in ``out_dir``. A source that
    is itself a merge passes on the provenance of each member it gives."""
    import torch

    from ..formula.features import FEATURE_NAMES
    from ..formula.nets import JointEnsemble, half_element_member
    from ..models import load_torchscript, save_torchscript

    arr = dataset_arrays(cache)
    _train, test = _split(arr, split)
    members, origin, cost = [], [], 0.0
    ref, first_card = None, None
    for src, pick in sources:
        src = Path(src)
        m = load_torchscript(src / "formula.pt")
        card = json.loads((src / "formula.json").read_text())
        summ = json.loads((src / "training_summary.json").read_text())
        if card["split"] != split:
            raise ValueError(f"{src} holds a {card['split']!r} model, not {split!r}")
        if first_card is not None and card.get("inputs") != first_card.get("inputs"):
            raise ValueError(f"{src}: other inputs than {sources[0][0]}")
        bufs = [m.sg_bravais, m.offsets, m.lo, m.hi]
        if ref is None:
            ref, first_card = bufs, card
        elif not all(torch.equal(a, b) for a, b in zip(ref, bufs)):
            raise ValueError(f"{src}: other space-group table or lattice ranges")
        idx = list(range(pick)) if isinstance(pick, int) else [int(i) for i in pick]
        if not idx or not all(0 <= i < card["members"] for i in idx) or len(set(idx)) < len(idx):
            raise ValueError(f"{src} has {card['members']} members, asked for {pick}")
        for i in idx:
            member = getattr(m.members, str(i))
            enc = getattr(member, "encoder", None)  # element networks only
            if enc is not None and getattr(enc, "original_name",
                                           type(enc).__name__) == "ElementEncoder":
                member = half_element_member(member)
            members.append(member)
        # Provenance of each member of this source: its own card, or the sources of a merge.
        per_member = []
        for o in card.get("member_sources") or [None]:
            if o is None:
                o = {"architecture": card.get("architecture", "mlp"),
                     "element_encoder": card.get("element_encoder"), "hidden": card["hidden"],
                     "epochs": card["epochs"], "feature_embedding": card["feature_embedding"],
                     "formula_training_s": summ["timings"]["formula_s"],
                     "source_members": card["members"],
                     "seed": card.get("seed")}  # None: a card from before seeds were recorded
            per_member += [o] * o.get("used", card["members"])
        picked: list[dict] = []  # one entry per run of consecutive members of one origin
        for i in idx:
            o = per_member[i]
            if picked and picked[-1]["from"] is o:
                picked[-1]["used"] += 1
            else:
                picked.append({**{k: v for k, v in o.items() if k != "used"}, "from": o,
                               "used": 1})
        origin += [{k: v for k, v in p.items() if k != "from"} for p in picked]
        cost += summ["timings"]["formula_s"] * len(idx) / card["members"]
    joint = JointEnsemble(members, *ref)
    X = network_inputs(arr, len(first_card.get("inputs", FEATURE_NAMES)) > len(FEATURE_NAMES))[0]
    B, SG, P = arr["bravais"], arr["sg"], arr["params"]
    metrics_b, metrics_sg, metrics_lp, _ = _joint_metrics(joint, X, B, SG, P, test)
    card = {**first_card, "members": len(members), "member_sources": origin,
            "training_coverage": training_coverage(arr, _train),
            "architecture": "+".join(o["architecture"] for o in origin),
            "element_encoder_storage": "float16 weights, float32 LayerNorms (merge)",
            "test_metrics": {"bravais": metrics_b, "spacegroup_given_true_bravais": metrics_sg,
                             "lattice_given_true_bravais": metrics_lp}}
    out_dir = Path(out_dir)
    save_torchscript(joint, out_dir / "formula.pt", card)
    summary_path = out_dir / "training_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    for key in ("device", "threads"):  # how the members were trained (the last source's summary)
        summary.setdefault(key, summ.get(key))
    summary.update({"split": split, "bravais": metrics_b, "spacegroup": metrics_sg,
                    "lattice": metrics_lp, "members": len(members), "member_sources": origin,
                    "architecture": card["architecture"],
                    "epochs": "/".join(str(o["epochs"]) for o in origin)})
    timings = summary.setdefault("timings", {})
    cell_card = out_dir / "cell.json"
    if "cell_s" not in timings and cell_card.is_file():
        # a cell model trained by its own command (as ``recipe`` does): its time from its card
        cell_time = json.loads(cell_card.read_text()).get("training_time_s")
        if cell_time is not None:
            timings["cell_s"] = float(cell_time)
            timings["cell_trained_by"] = f"python -m cryspext.training.cell train --split {split}"
    timings["formula_s"] = cost  # training time of the members used
    timings["total_s"] = cost + timings.get("cell_s", 0.0)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it (for cards' commands)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# Exponent δ of the volume term of predict_cell(..., formula=...) (formula.cellvolume), chosen on
# each split's validation slice by benchmarks/formula_cell_validation.py under a rule fixed
# before its run (adopt the best δ of 0.25 … 1 if it gains ≥ 0.5 point of mean top-1 over naive
# Bayes): random 79.73 → 80.87 % at 0.75, future 36.08 → 38.92 % at 1 (mean of conventional
# and primitive cells).
VOLUME_DELTA = {"random": 0.75, "future": 1.0}


def cell_volume_table(arr: dict, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """(ln P(ρ | space group) table of ``formula.cellvolume``, number of cells) fitted on the
    data rows ``rows``: their conventional cells and, for centred lattices, also their primitive
    cells (the cell model's rows)."""
    from ..formula import cellvolume
    from .formula_trees import tree_inputs

    centred = rows[np.array([BRAVAIS[b][1] != "P" for b in arr["bravais"][rows]], bool)]
    both = np.concatenate([rows, centred])
    cells = np.concatenate([arr["conventional"][rows], arr["primitive"][centred]])
    fu_volume = tree_inputs(arr, formula_unit=True)[both, -1]  # formula_unit_volume, Å³
    rho = cellvolume.volume_ratio(cellvolume.cell_volume(cells), fu_volume)
    return cellvolume.fit_table(rho, arr["sg"][both]), len(both)


def fit_cell_volume(cache: Path, split: str, model_dir: Path) -> dict:
    """Fit the table P(ρ | space group) of ``formula.cellvolume`` on the ``split``'s training
    formulas (``cell_volume_table``) and write ``cell_volume.npz`` + ``cell_volume.json`` into
    ``model_dir``. Seconds. Returns the card."""
    from ..formula import cellvolume

    arr = dataset_arrays(cache)
    train = _split(arr, split)[0]
    table, n_cells = cell_volume_table(arr, train)
    model_dir = Path(model_dir)
    np.savez_compressed(model_dir / "cell_volume.npz", log_density=table, grid=cellvolume.GRID)
    card = {
        "kind": "cell_volume", "split": split, "delta": VOLUME_DELTA[split],
        "what": "ln P(rho | space group) on a grid of rho = ln(cell volume / formula-unit volume); "
        "predict_cell(..., formula=...) multiplies its naive-Bayes combination by P(rho | group)^delta",
        "n_formulas": int(len(train)), "n_cells": int(n_cells),
        "cells": "conventional cells of the training formulas and primitive cells of the centred ones",
        "formula_unit_volume": "sum of amount x elemental ground-state volume per atom (A^3), "
        "features.formula_unit_features",
        "grid": [float(cellvolume.GRID[0]), float(cellvolume.GRID[-1]), len(cellvolume.GRID)],
        "bandwidth": cellvolume.BANDWIDTH, "pseudo_rows": cellvolume.PSEUDO_ROWS,
        "floor": cellvolume.FLOOR, "training_data_sha256_16": str(arr["digest"]),
        "command": f"python -m cryspext.training.formula volume --split {split} --out {_shown(model_dir)}",
        "delta_chosen_by": "benchmarks/formula_cell_validation.py on the split's validation slice"}
    (model_dir / "cell_volume.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def analogue_structures(shared: Path, mp_ids, formulas, spacegroups) -> tuple[dict, dict]:
    """The structure columns of ``analogues.npz`` (``formula.analogues.AnalogueTable``) for the
    Materials Project records ``mp_ids`` of ``formulas``: the asymmetric unit of spglib's
    conventional standard cell (symprec 0.1 Å, 5°, as the data step) and its Hall number. A
    record is left without structure (Hall number 0) where spglib finds another space group
    than ``spacegroups``, where the standard cell is not in its own standard setting, or where
    the stored sites (fractions rounded to 1/65536) do not regenerate that cell exactly.
    Returns (columns, counts of such cases). About 6 ms per record."""
    import spglib
    from ase.data import atomic_numbers

    from ..formula import analogues
    from ..formula.parse import parse_formula

    path = Path(shared) / "mp" / "mp_structures.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the analogues' structures come from it "
                                "(--shared), or write the table without them (--no-structures)")
    wanted = {int(i): k for k, i in enumerate(mp_ids)}
    records: dict[int, dict] = {}
    with gzip.open(path, "rt") as fh:
        for line in tqdm(fh, total=144861, desc="reading MP structures", mininterval=10):
            rec = json.loads(line)
            i = int(rec["id"].split("-")[1])
            if i in wanted:
                records[i] = rec
    n = len(wanted)
    hall = np.zeros(n, np.int16)
    counts = {"missing_record": 0, "other_spacegroup": 0, "not_standard": 0, "not_regenerated": 0}
    sites: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((0, 3), np.uint16), np.zeros(0, np.uint8))] * n
    for i, k in tqdm(wanted.items(), desc="asymmetric units", mininterval=10):
        rec = records.get(i)
        if rec is None:
            counts["missing_record"] += 1
            continue
        cell = (np.asarray(rec["lattice"], float), np.asarray(rec["frac"], float),
                [atomic_numbers[e] for e in rec["species"]])
        ds = spglib.get_symmetry_dataset(cell, symprec=0.1, angle_tolerance=5)
        if ds is None or int(ds.number) != int(spacegroups[k]):
            counts["other_spacegroup"] += 1
            continue
        std = (ds.std_lattice, ds.std_positions, ds.std_types)
        again = spglib.get_symmetry_dataset(std, symprec=0.1, angle_tolerance=5)
        shift = (np.asarray(again.origin_shift) + 0.5) % 1.0 - 0.5
        if (again.hall_number != ds.hall_number or not np.allclose(again.transformation_matrix, np.eye(3))
                or np.abs(shift).max() > 1e-4):
            counts["not_standard"] += 1
            continue
        unique = np.unique(again.equivalent_atoms)
        # atomic number -> the element's position in the formula's pattern
        position = np.zeros(119, np.uint8)
        order = analogues.pattern(parse_formula(str(formulas[k])))[2]
        position[[atomic_numbers[e] for e in order]] = np.arange(len(order))
        std_lab = position[ds.std_types]
        frac = (np.round(ds.std_positions[unique] * analogues.FRACTION_SCALE).astype(np.int64)
                % analogues.FRACTION_SCALE).astype(np.uint16)
        # The check that prediction time will see the same cell: regenerate it from what is stored.
        pos, lab = analogues.expand_sites(ds.hall_number, frac / analogues.FRACTION_SCALE, std_lab[unique])
        d = pos[:, None] - ds.std_positions[None]
        d -= np.round(d)
        match = (np.abs(d).max(axis=2) < 2e-3) & (lab[:, None] == std_lab[None, :])
        if len(pos) != len(ds.std_types) or not match.any(axis=1).all():
            counts["not_regenerated"] += 1
            continue
        hall[k], sites[k] = ds.hall_number, (frac, std_lab[unique])
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum([len(e) for _f, e in sites])
    columns = {"hall": hall, "site_offsets": offsets,
               "site_element": np.concatenate([e for _f, e in sites]).astype(np.uint8),
               "site_frac": np.concatenate([f for f, _e in sites]).astype(np.uint16).reshape(-1, 3)}
    return columns, counts


def write_analogue_table(cache: Path, split: str, model_dir: Path, shared: Path | None = None) -> dict:
    """Write the table of ``formula.analogues`` (the ``split``'s training formulas with their
    Materials Project id, space group, Bravais lattice and conventional cell; with ``shared``,
    the data folder, also their structures for ``seed_structure``, ``analogue_structures``) as
    ``analogues.npz`` + ``analogues.json`` into ``model_dir``. Seconds without structures,
    about 10 min with. Returns the card."""
    from ..formula import analogues

    arr = dataset_arrays(cache)
    train = _split(arr, split)[0]
    columns = analogues.table_columns(arr["formula"][train], arr["mp_id"][train], arr["sg"][train],
                                      arr["bravais"][train], arr["conventional"][train])
    structures = None
    if shared is not None:
        more, structures = analogue_structures(shared, arr["mp_id"][train], arr["formula"][train],
                                               arr["sg"][train])
        columns.update(more)
    model_dir = Path(model_dir)
    np.savez_compressed(model_dir / "analogues.npz", **columns)
    card = {
        "kind": "analogues", "split": split, "n_formulas": int(len(train)),
        "n_patterns": int(len(set(columns["key"].tolist()))),
        "what": ("training formulas by stoichiometry pattern, for formula.analogues "
                 "(find_analogues, seed_structure) and the analogue vote in predict_formula's "
                 "Bravais probabilities"),
        "columns": {"formula": "reduced formula", "mp_id": "Materials Project id (mp-N)",
                    "spacegroup": "spglib, symprec 0.1 A", "bravais": "index into lattice.BRAVAIS",
                    "conventional": "a b c (A) alpha beta gamma (degrees) of spglib's conventional "
                    "standard cell (hexagonal axes for R groups)",
                    "key": "amounts ordered by electronegativity", "mendeleev": "Mendeleev numbers, same order",
                    **({"hall": "spglib Hall number of the conventional standard cell (0: no structure stored)",
                        "site_offsets": "row i's sites are site_offsets[i]:site_offsets[i+1]",
                        "site_element": "the site's element as its position in the pattern",
                        "site_frac": f"fractional coordinates x {analogues.FRACTION_SCALE} of the "
                        "asymmetric unit of that cell"} if structures is not None else {})},
        **({"structures": {"stored": int((columns["hall"] > 0).sum()),
                           "left_out": structures, "symprec_A": 0.1, "angle_tolerance_deg": 5}}
           if structures is not None else {}),
        "training_data": "shared/data/mp (Materials Project, CC-BY 4.0, attribution 'Materials "
        "Project'): lowest-e_hull polymorph per reduced formula; built by python -m "
        "cryspext.training.formula data",
        "training_data_sha256_16": str(arr["digest"]),
        "command": (f"python -m cryspext.training.formula analogues --split {split} --out {_shown(model_dir)}"
                    + ("" if structures is not None else " --no-structures"))}
    (model_dir / "analogues.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def add_training_coverage(cache: Path, split: str, model_dir: Path) -> dict:
    """Write ``training_coverage`` onto the card of the formula model in ``model_dir`` (trained
    on ``split``; cards written before the field existed lack it). The model file is unchanged.
    Checks that the card's training rows are those of the split. Returns the coverage."""
    path = Path(model_dir) / "formula.json"
    card = json.loads(path.read_text())
    if card.get("split") != split:
        raise ValueError(f"{path} is of split {card.get('split')!r}, not {split!r}")
    arr = dataset_arrays(cache)
    train = _split(arr, split)[0]
    if "validation_run" in card:
        train = validation_split(arr, train, split)[0]
    if card.get("n_train") != len(train):
        raise ValueError(f"{path}: {card.get('n_train')} training formulas, the data give {len(train)}")
    card["training_coverage"] = training_coverage(arr, train)
    path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")  # as save_torchscript
    return card["training_coverage"]


def train_split(cache: Path, split: str, out_dir: Path, *, members: int = 5,
                epochs: int = 40, threads: int = 1, device: str = "cpu",
                cell: str = "train", arch: str = "mlp", cell_config: dict | None = None,
                validate: bool = False, seed: int = 100, element_dim: int | None = None
                ) -> dict:
    """Train the joint formula ensemble and the cell-geometry model on the ``split`` training
    rows; write ``formula.pt``/``cell.pt`` + cards. The cell model is trained by
    :func:`cryspext.training.cell.train_cell` (``cell_config`` overrides its ``CELL_CONFIG``);
    ``cell="keep"`` keeps an existing ``cell.pt`` in ``out_dir`` (and its metrics in the
    summary; trained if there is none), ``cell="none"`` trains none (a run whose members are
    merged elsewhere, ``merge_formula_ensembles``). ``validate=True`` is for choosing a recipe
    without the test rows: it fits on the training rows minus a validation slice
    (``validation_split``), scores on that slice, and trains no cell model. Member m is seeded
    ``seed + m``: separate runs meant to be merged need different seeds. ``element_dim``
    overrides the token width of ``ELEMENT_ENCODER``."""
    if cell not in ("train", "keep", "none"):  # checked before hours of training
        raise ValueError(f"cell={cell!r}: expected 'train', 'keep' or 'none'")
    import torch

    from .._version import __version__
    from ..formula.elements import provenance
    from ..formula.features import FEATURE_NAMES
    from ..formula.nets import JointEnsemble
    from ..models import save_torchscript

    torch.set_num_threads(threads)
    t0 = time.time()
    out_dir = Path(out_dir)
    arr = dataset_arrays(cache)
    train, test = _split(arr, split)
    if validate:  # "test" below is then the validation slice of the training rows
        train, test = validation_split(arr, train, split)
    B, SG, P = arr["bravais"], arr["sg"], arr["params"]
    X, names, log_columns = network_inputs(arr, NETWORK_FORMULA_UNIT_INPUTS)  # as frozen nets read it
    X_fit = _logged(X, log_columns)  # as the networks see it during training
    x_mean, x_std = _formula_scaling(X_fit[train], names)
    common = {
        "cryspext_version": __version__,
        "split": split,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "training_data": "shared/data/mp (Materials Project, CC-BY 4.0): lowest-e_hull "
        "polymorph per reduced formula; built by python -m cryspext.training.formula data",
        "training_data_sha256_16": str(arr["digest"]),
        "element_table": provenance(),
        "training_coverage": training_coverage(arr, train),
    }
    if validate:
        common["validation_run"] = ("fitted on the training rows minus a validation slice; "
                                    "test_metrics are on that slice, not on the test rows")
    timings = {}

    # Joint formula ensemble: Bravais, space group and lattice parameters --------------------
    t = time.time()
    offsets, cols = lattice_slots()
    lo = np.zeros(int(offsets[-1]), np.float32)
    hi = np.ones(int(offsets[-1]), np.float32)
    lp_meta = {}
    for k, b in enumerate(BRAVAIS):
        tr_k = train[B[train] == k]
        free = FREE_PARAMETERS[b]
        if len(tr_k):
            lo_k, hi_k = lattice_bounds(P[tr_k][:, cols[k]], free)
        else:  # a lattice absent from the training rows: any positive range
            lo_k = np.full(len(free), 1.0, np.float32)
            hi_k = np.array([180.0 if n in ("alpha", "beta", "gamma") else 50.0 for n in free],
                            np.float32)
        lo[offsets[k]:offsets[k + 1]], hi[offsets[k]:offsets[k + 1]] = lo_k, hi_k
        lp_meta[b] = {"free": free, "lo": lo_k.tolist(), "hi": hi_k.tolist()}
    # The statistics (all features but the mole fractions x_*) come first: they get embedded.
    n_stats = sum(not n.startswith("x_") for n in FEATURE_NAMES)
    assert not any(n.startswith("x_") for n in FEATURE_NAMES[:n_stats])
    embed = (n_stats, JOINT_EMBED_K) if JOINT_EMBED_K else (0, 0)
    encoder = {**ELEMENT_ENCODER, **({"dim": element_dim} if element_dim else {})}

    def member(m):
        kw = dict(hidden=JOINT_HIDDEN, epochs=epochs, seed=seed + m, x_mean=x_mean, x_std=x_std,
                  lo=lo, hi=hi, embed=embed, log_columns=log_columns, device=device)
        if arch == "element":
            return fit_joint_element_member(X_fit[train], SG[train], B[train], P[train],
                                            frac_start=n_stats, **encoder, **kw)
        return fit_joint_member(X_fit[train], SG[train], B[train], P[train], **kw)

    joint = JointEnsemble(
        [member(m) for m in tqdm(range(members), desc=f"[{split}] joint formula ensemble")],
        torch.from_numpy(spacegroup_bravais_matrix()), torch.from_numpy(offsets),
        torch.from_numpy(lo), torch.from_numpy(hi))
    timings["formula_s"] = time.time() - t
    metrics_b, metrics_sg, metrics_lp, sg_classes = _joint_metrics(joint, X, B, SG, P, test)
    # The per-file layout of the first version (bravais/spacegroup/lattice.pt) is replaced.
    for old in ("bravais", "spacegroup", "lattice"):
        for ext in (".pt", ".json"):
            (out_dir / f"{old}{ext}").unlink(missing_ok=True)
    save_torchscript(joint, out_dir / "formula.pt", {
        **common, "kind": "formula", "members": members, "inputs": names,
        "log_inputs": names[log_columns[0]:log_columns[1]],
        "hidden": JOINT_HIDDEN, "epochs": epochs, "feature_embedding": list(embed),
        "architecture": arch, "seed": seed,  # member m was seeded seed + m (for retraining)
        "element_encoder": encoder if arch == "element" else None,
        "bravais_classes": BRAVAIS, "spacegroup_classes": sg_classes, "parameters": lp_meta,
        "units": "a, b, c in Å; alpha, beta, gamma in degrees; hR as the rhombohedral cell",
        "loss": "cross-entropy over 230 space groups + cross-entropy of the Bravais sums + "
        "10 × Log-MSE of the true lattice's free parameters (sigmoid outputs scaled to [lo, hi])",
        "output": "bravais(x) = forward(x): (members, n, 14) probabilities; spacegroup(x, k): "
        "(members, n, len(spacegroup_classes[BRAVAIS[k]])); lattice(x, k): (members, n, "
        "len(parameters[BRAVAIS[k]]['free']))",
        "test_metrics": {"bravais": metrics_b, "spacegroup_given_true_bravais": metrics_sg,
                         "lattice_given_true_bravais": metrics_lp},
    })

    # Cell-geometry space-group model: trained by its own module (training/cell.py).
    if validate or cell == "none":
        cell_card = {"test_metrics": None, "training_time_s": None}
    elif cell == "train" or not (out_dir / "cell.json").is_file():
        from .cell import train_cell as fit_cell_model

        cell_card = fit_cell_model(cache, split, out_dir, config=cell_config, threads=threads)
    else:
        cell_card = json.loads((out_dir / "cell.json").read_text())
        timings["cell_kept_from_earlier_run"] = True
    metrics_c = cell_card["test_metrics"]
    timings["cell_s"] = cell_card.get("training_time_s")
    timings["total_s"] = time.time() - t0
    summary = {"split": split, "bravais": metrics_b, "cell": metrics_c, "timings": timings,
               "threads": threads, "device": device, "epochs": epochs, "members": members,
               "architecture": arch}
    (out_dir / "training_summary.json").write_text(json.dumps(
        {**summary, "spacegroup": metrics_sg, "lattice": metrics_lp}, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------------------------
# the shipped recipe, one command (``recipe``): two network runs merged, the cell model, trees
# --------------------------------------------------------------------------------------------

# The runs of the shipped formula ensemble (README, "Retrain the models"). Their members are
# merged into one ensemble; different seeds so that no two members start alike.
RECIPE_RUNS = (
    {"name": "element", "arch": "element", "members": 4, "epochs": 22, "seed": 100},
    {"name": "mlp", "arch": "mlp", "members": 3, "epochs": 40, "seed": 200},
)


def recipe_commands(split: str, out: Path, cache: Path = DEFAULT_CACHE, threads: int = 1,
                    shared: Path = DEFAULT_SHARED, cod: bool = True
                    ) -> tuple[list[list[list[str]]], list[str]]:
    """The shipped recipe as command lines: (lanes, merge). Each lane is a list of commands
    that run one after the other; lanes are independent of each other (about 90 min each on
    one core). ``merge`` runs after all lanes. The runs' folders are ``cache/runs/<split>/``.
    The trees' classifiers also learn COD's labels from ``shared`` unless ``cod`` is False."""
    py = [sys.executable, "-m"]
    common = ["--split", split, "--cache", str(cache), "--threads", str(threads)]
    runs = Path(cache) / "runs" / split

    def run(r):
        return py + ["cryspext.training.formula", "train", "--no-cell", "--arch", r["arch"],
                     "--members", str(r["members"]), "--epochs", str(r["epochs"]),
                     "--seed", str(r["seed"]), "--out", str(runs / r["name"])] + common

    element, mlp = RECIPE_RUNS
    cell = py + ["cryspext.training.cell", "train", "--out", str(out)] + common
    volume = py + ["cryspext.training.formula", "volume", "--out", str(out)] + common
    analogues = (py + ["cryspext.training.formula", "analogues", "--out", str(out), "--shared", str(shared)]
                 + common)
    trees = (py + ["cryspext.training.formula", "trees", "--out", str(out), "--shared", str(shared)]
             + common + ([] if cod else ["--no-cod"]))
    merge = py + ["cryspext.training.formula", "merge", "--out", str(out)] + common
    for r in RECIPE_RUNS:
        merge += ["--source", f"{runs / r['name']}:{r['members']}"]
    # Balanced for two workers: the element run alone ≈ cell model + MLP run + trees.
    return [[run(element)], [cell, volume, analogues, run(mlp), trees]], merge


def run_lanes(lanes: list[list[list[str]]], jobs: int, log_dir: Path) -> None:
    """Run each lane's commands in order, up to ``jobs`` lanes at a time, each command's output
    to a log file in ``log_dir``; prints a line when a command starts and ends. If a command
    fails, the running ones are stopped and RuntimeError names its log."""
    import subprocess
    import threading

    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    running: set = set()
    lock = threading.Lock()
    todo = list(enumerate(lanes))

    def worker():
        while True:
            with lock:
                if not todo or failed:
                    return
                k, lane = todo.pop(0)
            for j, cmd in enumerate(lane):
                log = log_dir / f"lane{k}_{j}.log"
                t = time.time()
                with lock:
                    if failed:
                        return
                    print(f"[{time.strftime('%H:%M')}] start  {' '.join(cmd[2:])}  (log {log})",
                          flush=True)
                    with open(log, "w") as fh:  # the child keeps its own handle
                        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
                    running.add(proc)
                rc = proc.wait()
                with lock:
                    running.discard(proc)
                    if rc != 0:
                        if not failed:  # the first failure stops the others
                            failed.append(f"{' '.join(cmd[2:])} exited with {rc}; see {log}")
                            for p in running:
                                p.terminate()
                        return
                    print(f"[{time.strftime('%H:%M')}] done   {' '.join(cmd[2:4])} in "
                          f"{(time.time() - t) / 60:.1f} min", flush=True)

    workers = [threading.Thread(target=worker) for _ in range(max(1, min(jobs, len(lanes))))]
    for w in workers:
        w.start()
    try:
        for w in workers:
            while w.is_alive():
                w.join(timeout=1.0)
    except KeyboardInterrupt:  # Ctrl-C stops the children too, not only this process
        with lock:
            failed.append("interrupted")
            for p in running:
                p.terminate()
        raise
    if failed:
        raise RuntimeError(failed[0])


def _split(arr: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [{"mp_id": int(i)} for i in arr["mp_id"]]
    return split_indices(rows, split)


def r2_score(truth: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination 1 − Σ(y − t)² / Σ(t̄ − t)² (NaN for fewer than 2 rows)."""
    truth, pred = np.asarray(truth, float), np.asarray(pred, float)
    if len(truth) < 2:
        return float("nan")
    ss = float(((truth - truth.mean()) ** 2).sum())
    return float(1 - ((pred - truth) ** 2).sum() / ss) if ss > 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cryspext.training.formula", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["elements", "data", "train", "merge", "trees", "recipe", "all",
                                     "coverage", "tune", "volume", "analogues"])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="shared/data folder")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="work folder for data/models")
    ap.add_argument("--split", choices=["random", "future"], default="random")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--members", type=int, default=5, help="Bravais ensemble size (default 5)")
    ap.add_argument("--epochs", type=int, default=40, help="epochs of the large models")
    ap.add_argument("--device", default="cpu", help="torch device for training (default cpu)")
    cell = ap.add_mutually_exclusive_group()
    cell.add_argument("--keep-cell", action="store_true",
                      help="keep the cell-geometry model already in the model folder (no retrain)")
    cell.add_argument("--no-cell", action="store_true",
                      help="train: no cell-geometry model (runs whose members are merged into "
                      "another folder; train that one with python -m cryspext.training.cell)")
    ap.add_argument("--validate", action="store_true",
                    help="train: fit on the training rows minus a validation slice and score on "
                    "that slice (to compare recipes without touching the test rows; no cell "
                    "model); use with --out")
    ap.add_argument("--no-cod", action="store_true",
                    help="trees, recipe, tune: fit the Bravais and space-group trees (tune: the "
                    "networks) on the Materials Project rows only, without COD's formula -> space-group labels "
                    "(shared/data/mp/cod_formula_sg.json.gz, training.cod)")
    ap.add_argument("--no-structures", action="store_true",
                    help="analogues: write the table without the analogues' structures (seconds "
                    "instead of about 10 min; no seed_structure)")
    ap.add_argument("--seed", type=int, default=100,
                    help="train: member m is seeded SEED + m (default 100); separate runs meant "
                    "to be merged need different seeds")
    ap.add_argument("--element-dim", type=int, default=None,
                    help=f"train --arch element: token width of the element encoder (default "
                    f"{ELEMENT_ENCODER['dim']})")
    ap.add_argument("--arch", choices=["mlp", "element"], default="mlp",
                    help="formula network: 'mlp' (features → MLP) or 'element' (attention over "
                    "the formula's elements with learned element embeddings, then the MLP)")
    ap.add_argument("--source", action="append", default=[], metavar="DIR:N",
                    help="merge: take the first N formula members of the model folder DIR, or "
                    "with DIR:i,j,... the members of those 0-based indices (DIR:0,1,4,5); "
                    "repeat; the merged ensemble averages all members")
    ap.add_argument("--out", type=Path, default=None,
                    help="model folder (default: the package for 'random', cache/<split> else)")
    ap.add_argument("--model", type=Path, default=None,
                    help="tune: the model folder whose formula ensemble is fine-tuned (default: "
                    "--out's default); the result goes to --out")
    ap.add_argument("--tune-epochs", type=int, default=TUNE_EPOCHS,
                    help=f"tune: epochs of fine-tuning (default {TUNE_EPOCHS})")
    ap.add_argument("--tune-lr", type=float, default=TUNE_LR,
                    help=f"tune: peak learning rate of the fine-tuning (default {TUNE_LR:g})")
    ap.add_argument("--jobs", type=int, default=1,
                    help="recipe/all: parallel worker processes (2 halves the time; each uses "
                    "--threads threads)")
    ap.add_argument("--dry-run", action="store_true",
                    help="recipe/all: print the commands of the recipe and run nothing")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        ap.error("--jobs and --threads must be at least 1")
    if args.step in ("recipe", "all"):
        out = args.out or (MODEL_DIR if args.split == "random" else args.cache / args.split)
        lanes, merge = recipe_commands(args.split, Path(out), args.cache, args.threads,
                                       args.shared, not args.no_cod)
        if args.dry_run:
            if args.step == "all":
                print("# first, in this process: the element table, then the data set")
            for k, lane in enumerate(lanes):
                print(f"# lane {k + 1} of {len(lanes)} (lanes run side by side with --jobs 2)")
                print("\n".join(" ".join(c) for c in lane))
            print("# after all lanes\n" + " ".join(merge))
            return 0
    if args.step in ("elements", "all"):
        print("wrote", build_element_table())
    if args.step in ("data", "all"):
        build_dataset(args.shared, args.cache / "dataset.json.gz")
    if args.step in ("recipe", "all"):
        dataset_arrays(args.cache)  # built once here, not by two workers at the same time
        log_dir = args.cache / "runs" / args.split / "logs"
        run_lanes(lanes, args.jobs, log_dir)
        run_lanes([[merge]], 1, log_dir / "merge")
        print(f"wrote the {args.split} models to {out}")
        return 0
    if args.validate and args.out is None and args.step != "tune":
        ap.error("--validate needs --out: a validation run must not overwrite the shipped models")
    if args.step == "train":
        out = args.out or (MODEL_DIR if args.split == "random" else args.cache / args.split)
        summary = train_split(args.cache, args.split, Path(out), members=args.members,
                              epochs=args.epochs, threads=args.threads, device=args.device,
                              cell=("keep" if args.keep_cell else "none" if args.no_cell
                                    else "train"),
                              arch=args.arch, validate=args.validate, seed=args.seed,
                              element_dim=args.element_dim)
        print(json.dumps(summary))
    if args.step == "trees":
        from .formula_trees import (train as train_formula_trees, train_cell_trees, train_formula_cell_trees,
                                    train_standard_cell_trees)

        out = args.out or (MODEL_DIR if args.split == "random" else args.cache / args.split)
        shared = None if args.no_cod else args.shared  # COD labels for the classifiers
        for card in (train_formula_trees(args.split, Path(out), args.cache, args.validate,
                                         args.threads, shared=shared),
                     train_cell_trees(args.split, Path(out), args.cache, args.validate, args.threads),
                     train_standard_cell_trees(args.split, Path(out), args.cache, args.validate,
                                               args.threads),
                     train_formula_cell_trees(args.split, Path(out), args.cache, args.validate, args.threads)):
            print(json.dumps({k: card[k] for k in ("kind", "split", "n_trees", "fit_s",
                                                   "test_metrics")}))
    if args.step == "volume":
        out = args.out or (MODEL_DIR if args.split == "random" else args.cache / args.split)
        card = fit_cell_volume(args.cache, args.split, Path(out))
        print(f"wrote {Path(out) / 'cell_volume.npz'}: {card['n_cells']} cells, delta {card['delta']}")
    if args.step == "analogues":
        out = args.out or (MODEL_DIR if args.split == "random" else args.cache / args.split)
        card = write_analogue_table(args.cache, args.split, Path(out),
                                    None if args.no_structures else args.shared)
        print(f"wrote {Path(out) / 'analogues.npz'}: {card['n_formulas']} formulas, "
              f"{card['n_patterns']} stoichiometry patterns")
    if args.step == "tune":
        default = MODEL_DIR if args.split == "random" else args.cache / args.split
        if args.out is None:
            ap.error("tune needs --out (the folder the fine-tuned formula.pt is written to; it may "
                     "be --model's)")
        summary = tune_split(args.cache, args.split, args.model or default, args.out,
                             shared=None if args.no_cod else args.shared, validate=args.validate,
                             epochs=args.tune_epochs, lr=args.tune_lr, threads=args.threads,
                             device=args.device)
        print(json.dumps({k: summary[k] for k in ("bravais",)}))
    if args.step == "coverage":
        out = args.out or (MODEL_DIR if args.split == "random" else args.cache / args.split)
        cov = add_training_coverage(args.cache, args.split, Path(out))
        print(f"wrote training_coverage onto {Path(out) / 'formula.json'}: "
              f"{len(cov['formulas_per_element'])} elements, atoms per formula unit "
              f"{cov['atoms_per_formula_unit']}, {len(cov['formulas_per_spacegroup'])} space groups")
    if args.step == "merge":
        out = args.out or (MODEL_DIR if args.split == "random" else args.cache / args.split)
        sources = []
        for v in args.source:
            where, _, spec = v.rpartition(":")
            try:
                pick = [int(i) for i in spec.split(",")] if "," in spec else int(spec)
            except ValueError:
                ap.error(f"--source {v!r}: expected DIR:N or DIR:i,j,...")
            sources.append((Path(where), pick))
        if not sources:
            ap.error("merge needs at least one --source DIR:N")
        summary = merge_formula_ensembles(args.cache, args.split, sources, Path(out))
        print(json.dumps({k: summary[k] for k in ("split", "bravais", "members")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
