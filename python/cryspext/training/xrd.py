"""Train the SpgVolNet-style XRD models (``python -m cryspext.training.xrd``).

Steps (each resumable; outputs under ``cache/xrd/``, git-ignored)::

    python -m cryspext.training.xrd build     # MP structures -> δ-profiles (C++), labels, split
    python -m cryspext.training.xrd train     # ensemble members, checkpoint every epoch
    python -m cryspext.training.xrd evaluate  # validation metrics (single vs ensemble) -> JSON
    python -m cryspext.training.xrd export    # TorchScript + card into cryspext/models/xrd/

Data (seed 003, section 2): ``shared/data/mp/mp_structures.jsonl.gz`` (Materials Project,
CC-BY 4.0). Classes: every space group (spglib, symprec 0.1: the ``sg`` field) with at least
``MIN_PER_CLASS`` = 500 structures, which gives 57 groups, as many as the seed used.
Primitive cells: records whose stored cell holds several lattice points (``mp_supercells``)
are reduced with spglib (symprec 0.01, no idealisation). Volume target (seed eq. 3):
z = (ln V_prim - μ_U) / σ_U. Validation (seed 2.4): 80 structures per class drawn from
D(σU+η) (within ±1σ in ln V_prim and in ln(n/V)), skipping near-duplicates of training
structures (same space group and the same set of strong-peak positions, see _duplicate_keys).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
CACHE = Path(os.environ.get("CRYSPEXT_CACHE", REPO / "cache")) / "xrd"
MIN_PER_CLASS = 500
VAL_PER_CLASS = 80
# Model input: the seed's 1/d range on a 5x coarser grid (2001 points, 4.76e-4 Å⁻¹ apart).
GRID = {"inv_d_min": 0.1131, "inv_d_max": 1.0625, "n_bins": 2001}
B_FACTOR = 2.0
KEEP_BELOW = 1e-5  # profile values below this (relative to the max) are not stored


def shared_mp() -> Path:
    env = os.environ.get("CRYSPEXT_SHARED_DATA")
    for root in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"]:
        if (root / "mp" / "mp_structures.jsonl.gz").is_file():
            return root / "mp"
    raise FileNotFoundError("shared/data/mp/mp_structures.jsonl.gz not found (set CRYSPEXT_SHARED_DATA)")


# ----------------------------------------------------------------------------- data set
def _primitive(rec, mult):
    """frac, cell, numbers of the primitive cell (spglib) for records stored as supercells."""
    import spglib
    from ase.data import atomic_numbers

    lattice = np.asarray(rec["lattice"], dtype=float)
    frac = np.asarray(rec["frac"], dtype=float)
    numbers = np.array([atomic_numbers[s] for s in rec["species"]], dtype=np.int32)
    if mult > 1:
        cell = spglib.standardize_cell((lattice, frac, numbers), to_primitive=True, no_idealize=True, symprec=0.01)
        if cell is not None and len(cell[2]) * mult == len(numbers):
            lattice, frac, numbers = (np.asarray(cell[0], float), np.asarray(cell[1], float), np.asarray(cell[2], np.int32))
    return frac, lattice, numbers


def build(args) -> Path:
    """Profiles (sparse, float16) + labels + split into cache/xrd/dataset.npz."""
    from tqdm import tqdm

    from .. import _core
    from ..xrd.form_factors import FormFactors

    mp = shared_mp()
    supercells = json.loads(gzip.open(mp / "mp_supercells.json.gz", "rt").read())
    records = []
    with gzip.open(mp / "mp_structures.jsonl.gz", "rt") as f:
        for line in tqdm(f, desc="read MP", total=144861, mininterval=5):
            records.append(json.loads(line))
    counts = {}
    for r in records:
        counts[r["sg"]] = counts.get(r["sg"], 0) + 1
    classes = sorted(sg for sg, c in counts.items() if sg is not None and c >= MIN_PER_CLASS)
    ff = FormFactors.it92()
    keep, skipped_elements = [], 0
    from ase.data import atomic_numbers

    for r in records:
        if r["sg"] not in classes:
            continue
        if not all(ff.available(atomic_numbers[s]) for s in set(r["species"])):
            skipped_elements += 1
            continue
        keep.append(r)
    if args.limit:
        rng = np.random.default_rng(0)
        keep = [keep[i] for i in np.sort(rng.choice(len(keep), args.limit, replace=False))]
    print(f"{len(classes)} classes, {len(keep)} structures ({skipped_elements} skipped: element beyond Cf)")

    n = len(keep)
    sg = np.array([r["sg"] for r in keep], dtype=np.int16)
    mult = np.array([supercells.get(r["id"], {}).get("mult", 1) for r in keep], dtype=np.int32)
    n_prim = np.array([r["n"] for r in keep], dtype=np.int32) // mult
    v_prim = np.array([r["volume"] for r in keep]) / mult
    ids = np.array([r["id"] for r in keep])

    indptr = [0]
    indices, values = [], []
    chunk = args.chunk
    grid = GRID
    t0 = time.time()
    for start in tqdm(range(0, n, chunk), desc="delta profiles", mininterval=5):
        batch = []
        for r, m in zip(keep[start : start + chunk], mult[start : start + chunk]):
            frac, cell, numbers = _primitive(r, int(m))
            batch.append((frac, cell, numbers, np.ones(len(numbers)), np.full(len(numbers), B_FACTOR)))
        prof = _core.xrd_profiles(batch, ff.table, ff.kind, grid["inv_d_min"], grid["inv_d_max"], grid["n_bins"], True)
        for row in prof:
            nz = np.nonzero(row >= KEEP_BELOW)[0]
            indices.append(nz.astype(np.uint16))
            values.append(row[nz].astype(np.float16))
            indptr.append(indptr[-1] + len(nz))
    seconds = time.time() - t0
    indices = np.concatenate(indices)
    values = np.concatenate(values)
    indptr = np.asarray(indptr, dtype=np.int64)
    print(f"profiles: {n} in {seconds:.0f} s ({n / seconds:.0f}/s), {len(values) / n:.0f} stored bins per profile")

    # Volume statistics and the validation split.
    u = np.log(v_prim)
    eta = np.log(n_prim / v_prim)
    mu_u, sd_u = float(u.mean()), float(u.std())
    mu_e, sd_e = float(eta.mean()), float(eta.std())
    inside = (np.abs(u - mu_u) <= sd_u) & (np.abs(eta - mu_e) <= sd_e)
    keys = _duplicate_keys(indptr, indices, values, sg)
    rng = np.random.default_rng(12345)
    val = np.zeros(n, dtype=bool)
    order = rng.permutation(n)
    taken = {c: 0 for c in classes}
    # A candidate is rejected when another structure (outside the validation set) shares a key.
    key_count = {}
    for ks in keys:
        for k in ks:
            key_count[k] = key_count.get(k, 0) + 1
    rejected_dup = 0
    for i in order:
        c = int(sg[i])
        if not inside[i] or taken[c] >= VAL_PER_CLASS:
            continue
        if any(key_count[k] > 1 for k in keys[i]):
            rejected_dup += 1
            continue
        val[i] = True
        taken[c] += 1
    print(f"validation: {val.sum()} structures ({rejected_dup} candidates skipped as near-duplicates)")

    digest = hashlib.sha256()
    for a in (indptr, indices, values, sg, v_prim.astype(np.float64)):
        digest.update(np.ascontiguousarray(a).tobytes())
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "dataset.npz"
    np.savez(
        out, indptr=indptr, indices=indices, values=values, sg=sg, v_prim=v_prim, n_prim=n_prim, ids=ids, val=val,
        classes=np.asarray(classes, dtype=np.int16),
        meta=json.dumps({
            "grid": grid, "b_factor": B_FACTOR, "mu_u": mu_u, "sd_u": sd_u, "mu_eta": mu_e, "sd_eta": sd_e,
            "min_per_class": MIN_PER_CLASS, "val_per_class": VAL_PER_CLASS, "sha256": digest.hexdigest(),
            "profiles_per_s": n / seconds, "n": n, "source": "shared/data/mp/mp_structures.jsonl.gz (Materials Project, CC-BY 4.0)",
            "form_factors": ff.provenance(),
        }),
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.0f} MB), sha256 {digest.hexdigest()[:16]}")
    return out


def _duplicate_keys(indptr, indices, values, sg, strong=0.01):
    """Two keys per structure: space group + the set of grid points holding peaks >= 1 % of the
    maximum, on the input grid (5 seed bins wide, the seed's first-layer kernel) and on a 2x
    coarser, half-shifted grid (catches peaks that straddle a bin edge of the first)."""
    keys = []
    for i in range(len(sg)):
        idx = indices[indptr[i] : indptr[i + 1]].astype(np.int64)
        val = values[indptr[i] : indptr[i + 1]]
        strong_idx = idx[val >= strong]
        k1 = (int(sg[i]), 1, tuple(np.unique(strong_idx)))
        k2 = (int(sg[i]), 2, tuple(np.unique((strong_idx + 1) // 2)))
        keys.append((hash(k1), hash(k2)))
    return keys


TRAIN_CAP = 3500  # at most this many training structures per class (balance, and a pack that travels)


def _codes(values: np.ndarray) -> np.ndarray:
    """Profile values -> uint8: 0 for < 1e-4, else 1..255 on a log scale over [1e-4, 1] (3.7 % steps)."""
    v = np.asarray(values, dtype=np.float32)
    code = np.clip(np.rint((np.log10(np.maximum(v, 1e-4)) + 4.0) / 4.0 * 254.0) + 1, 1, 255)
    return np.where(v >= 1e-4, code, 0).astype(np.uint8)


def decode(codes):
    """Inverse of ``_codes`` (numpy or torch uint8 -> float32 in [0, 1])."""
    import torch

    x = codes.float() if isinstance(codes, torch.Tensor) else torch.from_numpy(codes).float()
    return torch.where(x > 0, torch.pow(10.0, (x - 1.0) / 254.0 * 4.0 - 4.0), torch.zeros_like(x))


def pack(args) -> Path:
    """Training pack: capped training rows + all validation rows as lzma-compressed uint8 codes,
    small enough to travel to a GPU machine (cache/xrd/pack/pack.npz)."""
    import lzma

    data = load_dataset()
    meta = data["meta"]
    rng = np.random.default_rng(777)
    rows = []
    for c in data["classes"]:
        members = np.nonzero((data["sg"] == c) & ~data["val"])[0]
        if len(members) > TRAIN_CAP:
            members = np.sort(rng.choice(members, TRAIN_CAP, replace=False))
        rows.append(members)
    rows.append(np.nonzero(data["val"])[0])
    rows = np.sort(np.concatenate(rows))
    dense = densify(data, rows)
    codes = _codes(dense)
    blob = lzma.compress(codes.tobytes(), preset=6)
    out = CACHE / "pack" / "pack.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, blob=np.frombuffer(blob, dtype=np.uint8), shape=np.array(codes.shape), rows=rows,
             sg=data["sg"][rows], v_prim=data["v_prim"][rows], val=data["val"][rows], classes=data["classes"],
             meta=json.dumps({**meta, "train_cap": TRAIN_CAP}))
    print(f"pack: {len(rows)} rows ({int(data['val'][rows].sum())} validation), {out.stat().st_size / 1e6:.1f} MB")
    return out


def load_pack(path: Path | None = None):
    import lzma

    path = path or (CACHE / "pack" / "pack.npz")
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run 'python -m cryspext.training.xrd pack' first")
    d = np.load(path)
    shape = tuple(int(x) for x in d["shape"])
    codes = np.frombuffer(bytearray(lzma.decompress(d["blob"].tobytes())), dtype=np.uint8).reshape(shape)
    out = {k: d[k] for k in d.files if k not in ("blob", "shape")}
    out["codes"] = codes
    out["meta"] = json.loads(str(d["meta"]))
    return out


def load_dataset(path: Path | None = None):
    path = path or (CACHE / "dataset.npz")
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run 'python -m cryspext.training.xrd build' first")
    d = np.load(path, allow_pickle=False)
    data = {k: d[k] for k in d.files}
    data["meta"] = json.loads(str(d["meta"]))
    return data


def densify(data, rows: np.ndarray) -> np.ndarray:
    """Dense float32 profiles (len(rows), n_bins) from the sparse store."""
    n_bins = data["meta"]["grid"]["n_bins"]
    out = np.zeros((len(rows), n_bins), dtype=np.float32)
    indptr, indices, values = data["indptr"], data["indices"], data["values"]
    for j, i in enumerate(rows):
        a, b = indptr[i], indptr[i + 1]
        out[j, indices[a:b]] = values[a:b]
    return out


# ----------------------------------------------------------------------------- model
# The shipped ensemble: coord False. ``train --coord`` adds the 1/d position as a second input
# channel (untested at scale: no GPU time was left to train it).
ARCH = {"channels": [32, 64, 96, 128, 128, 128], "hidden": 160, "coord": False}


def make_model(n_classes: int, n_bins: int, channels=None, hidden=None, coord=False):
    import torch
    from torch import nn

    channels = list(channels or ARCH["channels"])
    hidden = int(hidden or ARCH["hidden"])

    class SpgVolNet(nn.Module):
        """1D CNN on a δ-profile with a space-group head (logits) and a volume head (z of ln V_prim).

        Conv blocks (kernel 5, ReLU, average pool 2) -> shared FC -> two heads (seed Fig. 2b).
        The profile (max 1) is fed as sqrt(I): weak reflections, which decide between a group
        and its supergroup, are lifted without a hand-set threshold.
        """

        def __init__(self, n_classes: int, n_bins: int):
            super().__init__()
            # coord: a second input channel holding the position on the 1/d axis (0..1), so that
            # the convolutions see where a peak is, which the volume depends on ("CoordConv").
            self.coord = coord
            self.register_buffer("position", torch.linspace(0.0, 1.0, n_bins).view(1, 1, n_bins), persistent=False)
            chans = [2 if coord else 1] + channels
            layers = []
            length = n_bins
            for cin, cout in zip(chans[:-1], chans[1:]):
                layers += [nn.Conv1d(cin, cout, 5, padding=2), nn.ReLU(), nn.AvgPool1d(2, 2)]
                length //= 2
            self.features = nn.Sequential(*layers)
            flat = chans[-1] * length
            self.shared = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(flat, hidden), nn.ReLU())
            self.cls = nn.Sequential(nn.Dropout(0.2), nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, n_classes))
            self.vol = nn.Sequential(nn.Linear(hidden, 64), nn.ReLU(), nn.Linear(64, 1))

        def forward(self, x: torch.Tensor):
            h = torch.sqrt(torch.clamp(x, min=0.0)).unsqueeze(1)
            if self.coord:
                h = torch.cat([h, self.position.to(h.dtype).expand(h.shape[0], 1, h.shape[2])], dim=1)
            h = self.shared(self.features(h))
            return self.cls(h), self.vol(h).squeeze(-1)

    return SpgVolNet(n_classes, n_bins)


def make_ensemble(members, mu_u: float, sd_u: float):
    """TorchScript-able wrapper: (B, n_bins) -> (member probabilities (M, B, C), member ln V_prim (M, B))."""
    import torch
    from torch import nn

    class SpgVolNetEnsemble(nn.Module):
        def __init__(self, members, mu_u: float, sd_u: float):
            super().__init__()
            self.members = nn.ModuleList(members)
            self.mu_u = mu_u
            self.sd_u = sd_u

        def forward(self, x: torch.Tensor):
            probs = []
            logv = []
            for m in self.members:
                logits, z = m(x)
                probs.append(torch.softmax(logits, dim=-1))
                logv.append(z * self.sd_u + self.mu_u)
            return torch.stack(probs), torch.stack(logv)

    return SpgVolNetEnsemble(members, mu_u, sd_u)


def augment(x, generator):
    """Make ideal profiles look a little more like extracted peaks (half of the batch):
    multiplicative intensity noise (σ = 0.25 in ln I), weak peaks dropped below a random
    threshold up to 2 %, then renormalised to max 1."""
    import torch

    b = x.shape[0]
    pick = torch.rand(b, 1, device=x.device, generator=generator) < 0.5
    noise = torch.exp(0.25 * torch.randn(x.shape, device=x.device, generator=generator))
    thresh = 0.02 * torch.rand(b, 1, device=x.device, generator=generator)
    y = x * noise
    y = torch.where(y >= thresh * y.amax(dim=1, keepdim=True), y, torch.zeros_like(y))
    y = y / y.amax(dim=1, keepdim=True).clamp(min=1e-12)
    return torch.where(pick, y, x)


def train(args) -> None:
    """Train members round-robin (one epoch each per round) so that all progress together;
    full checkpoints every round, resumable. ``--time-budget`` (s) fixes the number of epochs
    after the first round so that the cosine schedule ends inside the budget."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t_start = time.time()
    ARCH["coord"] = bool(args.coord)
    data = load_pack()
    meta = data["meta"]
    classes = data["classes"].tolist()
    cls_index = {c: i for i, c in enumerate(classes)}
    y = np.array([cls_index[int(s)] for s in data["sg"]], dtype=np.int64)
    z = ((np.log(data["v_prim"]) - meta["mu_u"]) / meta["sd_u"]).astype(np.float32)
    train_rows = np.nonzero(~data["val"])[0]
    val_rows = np.nonzero(data["val"])[0]
    print(f"train {len(train_rows)}, validation {len(val_rows)}, device {device}", flush=True)
    X = decode(torch.from_numpy(data["codes"]).to(device))
    Y = torch.from_numpy(y).to(device)
    Z = torch.from_numpy(z).to(device)
    ckpt_dir = CACHE / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    n_bins = meta["grid"]["n_bins"]

    states = []
    for member in args.members:
        path = ckpt_dir / f"member{member}.pt"
        torch.manual_seed(1000 + member)
        model = make_model(len(classes), n_bins, ARCH["channels"], ARCH["hidden"], ARCH["coord"]).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        st = {"member": member, "path": path, "model": model, "opt": opt, "epoch": 0, "epochs": args.epochs}
        if path.is_file():
            state = torch.load(path, map_location=device)
            model.load_state_dict(state["model"])
            st["epoch"], st["epochs"] = state["epoch"], state.get("epochs", args.epochs)
            if "opt" in state:  # a weights-only checkpoint restarts Adam's moments
                opt.load_state_dict(state["opt"])
            print(f"member {member}: resuming after epoch {st['epoch']} of {st['epochs']}", flush=True)
        states.append(st)

    def lr_at(epoch, epochs):  # cosine from lr to 2 % of it
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / max(epochs, 1))))

    round_no = 0
    while any(st["epoch"] < st["epochs"] for st in states):
        t_round = time.time()
        for st in states:
            if st["epoch"] >= st["epochs"]:
                continue
            model, opt, member, epoch = st["model"], st["opt"], st["member"], st["epoch"]
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch, st["epochs"])
            gen = torch.Generator(device=device)
            gen.manual_seed(2000 + member * 1000 + epoch)
            rng = np.random.default_rng(3000 + member * 1000 + epoch)
            model.train()
            perm = torch.from_numpy(rng.permutation(train_rows)).to(device)
            tot = torch.zeros((), device=device)
            for s0 in range(0, len(perm), args.batch):
                idx = perm[s0 : s0 + args.batch]
                xb = augment(X[idx], gen) if args.augment else X[idx]
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    logits, zp = model(xb)
                loss = F.cross_entropy(logits.float(), Y[idx], label_smoothing=args.label_smoothing) + args.vol_weight * F.l1_loss(zp.float(), Z[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot += loss.detach() * len(idx)
            st["epoch"] = epoch = epoch + 1
            acc, mae = _quick_eval(model, X, Y, Z, val_rows, device)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "epochs": st["epochs"],
                        "classes": classes, "n_bins": n_bins, "arch": ARCH}, st["path"])
            if args.weights_dir:  # weights only (small): what comes back from a GPU machine
                Path(args.weights_dir).mkdir(parents=True, exist_ok=True)
                torch.save({"model": {k: v.cpu() for k, v in model.state_dict().items()}, "epoch": epoch,
                            "epochs": st["epochs"], "classes": classes, "n_bins": n_bins, "arch": ARCH},
                           Path(args.weights_dir) / f"member{member}.pt")
            print(f"member {member} epoch {epoch}/{st['epochs']} loss {float(tot) / len(perm):.4f} "
                  f"val acc {acc:.3f} val |dz| {mae:.3f}", flush=True)
        round_no += 1
        seconds = time.time() - t_round
        print(f"round {round_no}: {seconds:.1f} s", flush=True)
        if args.time_budget and round_no == 1:
            left = args.time_budget - (time.time() - t_start)
            fit = int(left // (seconds * 1.05)) + min(st["epoch"] for st in states)
            for st in states:
                if st["epoch"] == 1:  # fresh members only: resumed ones keep their schedule
                    st["epochs"] = max(2, min(st["epochs"], fit))
            print(f"time budget: {args.time_budget:.0f} s -> {states[0]['epochs']} epochs per member", flush=True)


def _quick_eval(model, X, Y, Z, rows, device):
    import torch

    model.eval()
    correct, err = 0, 0.0
    with torch.no_grad():
        for s in range(0, len(rows), 2048):
            idx = torch.from_numpy(rows[s : s + 2048]).to(device)
            logits, zp = model(X[idx])
            correct += int((logits.argmax(1) == Y[idx]).sum())
            err += float((zp - Z[idx]).abs().sum())
    return correct / len(rows), err / len(rows)


# ----------------------------------------------------------------------------- evaluation
def _load_members(members, n_classes, n_bins, folder=None):
    import torch

    models = []
    for member in members:
        state = torch.load(Path(folder or CACHE / "checkpoints") / f"member{member}.pt", map_location="cpu")
        arch = state.get("arch", {"channels": [16, 32, 64, 64, 64], "hidden": 192})  # run 1 had no "arch"
        m = make_model(n_classes, n_bins, arch["channels"], arch["hidden"], arch.get("coord", False))
        m.load_state_dict(state["model"])
        m.eval()
        models.append(m)
    return models


def metrics(probs: np.ndarray, y: np.ndarray, n_classes: int) -> dict:
    """Top-1/top-5 accuracy and macro precision/recall (seed eq. 18-21) from probabilities (B, C)."""
    pred = probs.argmax(1)
    top5 = np.argsort(-probs, axis=1)[:, :5]
    conf = np.zeros((n_classes, n_classes), dtype=np.int64)  # rows: true, columns: predicted
    np.add.at(conf, (y, pred), 1)
    tp = np.diag(conf).astype(float)
    predicted = conf.sum(0)
    actual = conf.sum(1)
    precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = np.where(actual > 0, tp / np.maximum(actual, 1), 0.0)
    return {
        "top1": float((pred == y).mean()),
        "top5": float((top5 == y[:, None]).any(1).mean()),
        "macro_precision": float(precision[actual > 0].mean()),
        "macro_recall": float(recall[actual > 0].mean()),
    }


def volume_quartiles(log_v_pred: np.ndarray, log_v_true: np.ndarray) -> dict:
    rel = np.exp(log_v_pred - log_v_true) - 1.0
    q1, q2, q3 = np.percentile(rel, [25, 50, 75])
    return {"q25_pct": 100 * q1, "median_pct": 100 * q2, "q75_pct": 100 * q3,
            "mean_abs_pct": float(100 * np.abs(rel).mean())}


def _evaluate_module(ens, data, members) -> dict:
    """Validation metrics of an ensemble module (member probabilities, member ln V)."""
    import torch

    meta = data["meta"]
    classes = data["classes"].tolist()
    cls_index = {c: i for i, c in enumerate(classes)}
    rows = np.nonzero(data["val"])[0]
    y = np.array([cls_index[int(s)] for s in data["sg"][rows]])
    X = torch.from_numpy(densify(data, rows))
    with torch.no_grad():
        outs = [ens(X[s : s + 1024]) for s in range(0, len(rows), 1024)]
    probs = torch.cat([o[0] for o in outs], dim=1).numpy()  # (M, B, C)
    logv = torch.cat([o[1] for o in outs], dim=1).numpy()  # (M, B)
    true_logv = np.log(data["v_prim"][rows])
    singles = [metrics(p, y, len(classes)) for p in probs]
    single_mean = {k: float(np.mean([s[k] for s in singles])) for k in singles[0]}
    ensemble = metrics(probs.mean(0), y, len(classes))
    pred = probs.mean(0).argmax(1)
    per_class = {int(c): {"recall": float(np.mean(pred[y == i] == i)) if np.any(y == i) else None,
                          "precision": float(np.mean(y[pred == i] == i)) if np.any(pred == i) else None}
                 for i, c in enumerate(classes)}
    vol_single = [volume_quartiles(lv, true_logv) for lv in logv]
    return {
        "n_validation": int(len(rows)),
        "members": list(members),
        "single_mean": single_mean,
        "single_each": singles,
        "ensemble": ensemble,
        "ensemble_per_class": per_class,
        "volume_single_mean": {k: float(np.mean([v[k] for v in vol_single])) for k in vol_single[0]},
        "volume_ensemble": volume_quartiles(logv.mean(0), true_logv),
        "data_sha256": meta["sha256"],
    }


def evaluate(args) -> dict:
    """Metrics of checkpoints (default) or of the shipped TorchScript file (``--shipped``)."""
    import torch

    torch.set_num_threads(args.threads)
    data = load_dataset()
    meta = data["meta"]
    if args.shipped:
        from ..models import load_torchscript, model_path

        ens = load_torchscript(model_path("xrd", "spgvolnet")).float()
    else:
        models = _load_members(args.members, len(data["classes"]), meta["grid"]["n_bins"])
        ens = make_ensemble(models, meta["mu_u"], meta["sd_u"]).eval()
    result = _evaluate_module(ens, data, args.members)
    out = CACHE / ("evaluation_shipped.json" if args.shipped else "evaluation.json")
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("ensemble_per_class", "single_each")}, indent=2))
    return result


def _hm_symbols(numbers) -> list[str]:
    """Short Hermann–Mauguin symbols of space-group numbers (spglib's standard settings)."""
    import spglib

    first = {}
    for hall in range(1, 531):
        t = spglib.get_spacegroup_type(hall)
        number = t.number if hasattr(t, "number") else t["number"]
        symbol = t.international_short if hasattr(t, "international_short") else t["international_short"]
        first.setdefault(number, symbol)
    return [first[int(n)] for n in numbers]


def export(args) -> None:
    from ..models import MODELS_DIR, save_torchscript

    data = load_dataset()
    meta = data["meta"]
    classes = data["classes"].tolist()
    models = _load_members(args.members, len(classes), meta["grid"]["n_bins"])
    ens = make_ensemble(models, meta["mu_u"], meta["sd_u"]).eval()
    from .. import __version__

    card = {
        "name": "spgvolnet",
        "task": "space group (classification) + primitive-cell volume (regression) from an ideal powder δ-profile",
        "architecture": (f"SpgVolNet-style 1D CNN: {len(ARCH['channels'])} conv blocks {ARCH['channels']} (kernel 5, ReLU, "
                         f"avg-pool 2); shared FC {ARCH['hidden']}; space-group head FC {ARCH['hidden']} -> classes; "
                         "volume head FC 64 -> 1; input sqrt(I)"),
        "training": "Adam lr 1e-3 cosine to 2 %, batch 256, 42 epochs, CE + L1(z), half of each batch augmented "
                    "(log-normal intensity noise σ 0.25, weak peaks below 0-2 % dropped); at most 3500 training "
                    "structures per class; run on one H100 (python -m cryspext.training.xrd train --time-budget 390)",
        "ensemble": f"{len(models)} members (seed eq. 15: mean of member probabilities)",
        "input": {"axis": "1/d (Å⁻¹), uniform grid, nearest-point binning of |F|², max-normalised",
                  **meta["grid"], "b_factor_A2": meta["b_factor"], "form_factors": meta["form_factors"]},
        "outputs": "(member probabilities (M, B, C), member ln V_prim (M, B)); V_prim in Å³",
        "classes": classes,
        "class_symbols": _hm_symbols(classes),
        "volume_target": {"mu_ln_v": meta["mu_u"], "sd_ln_v": meta["sd_u"]},
        "training_data": {"source": meta["source"], "structures": meta["n"], "sha256": meta["sha256"],
                          "min_per_class": meta["min_per_class"], "val_per_class": meta["val_per_class"]},
        "metrics": None,
        "cryspext_version": __version__,
        "trained_with": "python -m cryspext.training.xrd train",
    }
    # Weights are stored as float16 (half the package size); the loader casts them back with .float().
    path = MODELS_DIR / "xrd" / "spgvolnet.pt"
    card["weights_dtype"] = "float16 (cast to float32 after loading: module.float())"
    save_torchscript(ens.half(), path, card)
    from ..models import load_torchscript

    load_torchscript.cache_clear()
    shipped = load_torchscript(path).float()
    card["metrics"] = _evaluate_module(shipped, data, args.members)
    card["metrics"]["evaluated"] = "the shipped file (float16 weights) on the validation split"
    path.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB)")
    print(json.dumps({k: v for k, v in card["metrics"].items() if k not in ("ensemble_per_class", "single_each")}, indent=2))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cryspext.training.xrd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("build", help="compute δ-profiles, labels and the split")
    p.add_argument("--chunk", type=int, default=2048)
    p.add_argument("--limit", type=int, default=0, help="use a random subset of this size (tests)")
    p.set_defaults(func=build)
    p = sub.add_parser("pack", help="compressed training pack (capped classes) for a GPU machine")
    p.set_defaults(func=pack)
    p = sub.add_parser("train", help="train (or resume) ensemble members")
    p.add_argument("--members", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--vol-weight", type=float, default=1.0)
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--weights-dir", default="", help="also write weights-only checkpoints here every epoch")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--coord", action="store_true", help="feed the 1/d position as a second input channel")
    p.add_argument("--time-budget", type=float, default=0, help="seconds: fit the epoch count into this (fresh runs)")
    p.set_defaults(func=train)
    for name, func in (("evaluate", evaluate), ("export", export)):
        p = sub.add_parser(name)
        p.add_argument("--members", type=int, nargs="+", default=[0, 1, 2, 3])
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--shipped", action="store_true", help="evaluate the shipped TorchScript file")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
