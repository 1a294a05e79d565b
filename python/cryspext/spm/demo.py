"""The SPM demo (``cryspext demo``): a four-grain polycrystal classified box by box (thesis 6.2).

Builds a slab of fcc, bcc, hcp and diamond grains (Voronoi, random orientations), runs strided
pattern matching with the shipped ARISE model, scores it against the known grains and writes:

- ``polycrystal.extxyz``: the input, with the grain of every atom;
- ``maps.npz`` and ``maps.png``: SPM maps (class, probability of the class, MI, per-prototype);
- ``atoms.extxyz``: every atom with its ARISE label, probability and MI (per-atom projection);
- ``ovito_class.png``, ``ovito_mi.png``: OVITO (Tachyon) renderings, when OVITO can render;
- ``summary.json``: settings, timings, interior accuracy and MI medians.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["run_demo", "score_grains", "EXPECTED"]

# Prototype of each grain -> the ARISE class it should be assigned.
EXPECTED = {
    "fcc": "fcc_Cu_A_cF4_225_a",
    "bcc": "bcc_W_A_cI2_229_a",
    "hcp": "hcp_Mg_A_hP2_194_c",
    "diamond": "diam_C_A_cF8_227_a",
}


def score_grains(result, atoms, boundary_purity: float = 0.75) -> dict:
    """Score SPM maps against the known grains of ``atoms`` (``arrays["grain"]``).

    A valid box is *interior* when all its atoms belong to one grain, and *boundary* when its
    largest grain holds less than ``boundary_purity`` of its atoms. Returns the fraction of
    interior boxes assigned their grain's prototype (overall and per grain) and the median MI
    (nats) of interior and boundary boxes.
    """
    grid = result.grid
    if grid is None:
        raise ValueError("the result has no box membership; score it right after spm()")
    grain = np.asarray(atoms.arrays["grain"])
    prototypes = list(atoms.info["grain_prototypes"])
    n_grains = len(prototypes)
    valid = result.valid.ravel()
    labels = result.labels.ravel()
    mi = result.mutual_information.ravel()
    # Atoms of each grain in each box, from the CSR membership in one scatter-add.
    box_of_member = np.repeat(np.arange(grid.n_boxes), np.diff(grid.offsets))
    counts = np.zeros((grid.n_boxes, n_grains))
    np.add.at(counts, (box_of_member, grain[grid.indices]), 1.0)
    totals = counts.sum(axis=1)
    majority = np.where(valid & (totals > 0), np.argmax(counts, axis=1), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(valid & (totals > 0), counts.max(axis=1) / totals, 0.0)
    interior = valid & (purity == 1.0)
    boundary = valid & (purity < boundary_purity)
    expected = np.array([result.class_index(EXPECTED[p]) if p in EXPECTED else -2 for p in prototypes])
    correct = interior & (labels == expected[np.maximum(majority, 0)])
    per_grain = {}
    for g, name in enumerate(prototypes):
        sel = interior & (majority == g)
        per_grain[f"{g}:{name}"] = {"interior_boxes": int(sel.sum()),
                                    "accuracy": float(correct[sel].mean()) if sel.any() else float("nan")}
    return {
        "valid_boxes": int(valid.sum()),
        "interior_boxes": int(interior.sum()),
        "boundary_boxes": int(boundary.sum()),
        "interior_accuracy": float(correct.sum() / max(interior.sum(), 1)),
        "per_grain": per_grain,
        "mi_median_interior": float(np.median(mi[interior])) if interior.any() else float("nan"),
        "mi_median_boundary": float(np.median(mi[boundary])) if boundary.any() else float("nan"),
    }


def render_ovito(atoms_path: Path, out_dir: Path, *, model=None, descriptor=None, box=16.0, stride=2.0,
                 mc_samples=1000, size=(800, 800)) -> dict:
    """Render the polycrystal with the cryspext-ovito modifier and OVITO's Tachyon renderer,
    coloured by ARISE class (``ovito_class.png``) and by MI (``ovito_mi.png``).

    One pipeline serves both pictures: switching the colouring reuses the modifier's cached
    classification. Returns {colouring: file name}; empty when OVITO or the modifier is
    unavailable or cannot render here (a message says why).
    """
    try:
        from ovito.io import import_file
        from ovito.vis import TachyonRenderer, Viewport
    except ImportError:
        print("OVITO is not installed: skipping the rendering")
        return {}
    try:
        from cryspext_ovito import AriseModifier
    except ImportError:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "ovito_modifier"))
        try:
            from cryspext_ovito import AriseModifier
        except ImportError:
            print("cryspext-ovito is not installed (pip install ./ovito_modifier): skipping the rendering")
            return {}
    pipeline = import_file(str(atoms_path))
    mod = AriseModifier(box=box, stride=stride, mc_samples=mc_samples, model=model, descriptor=descriptor)
    pipeline.modifiers.append(mod)
    pipeline.compute()
    pipeline.add_to_scene()
    written = {}
    try:
        vp = Viewport(type=Viewport.Type.Top)
        vp.zoom_all()
        for colour, name in (("class", "ovito_class.png"), ("MI", "ovito_mi.png")):
            mod.color_by = colour
            vp.render_image(size=size, filename=str(Path(out_dir) / name), renderer=TachyonRenderer())
            written[colour] = name
    except Exception as exc:  # OVITO raises RuntimeError without a Vulkan/OpenGL driver
        print(f"OVITO could not render ({str(exc).splitlines()[0]}); skipping")
    finally:
        pipeline.remove_from_scene()
    return written


def run_demo(out_dir, *, size: float = 90.0, box: float = 16.0, stride: float = 2.0, mc_samples: int = 1000,
             seed: int = 0, render: bool = True, model=None, descriptor=None, progress: bool | None = None) -> dict:
    """Run the demo into ``out_dir`` and return the summary (also written to summary.json)."""
    import ase.io

    from ..build import polycrystal
    from .core import spm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if size < 2 * box:
        raise ValueError(f"the demo slab ({size} Å) must be at least twice the box ({box} Å)")
    t0 = time.perf_counter()
    # Grain centres in the four quadrants (jittered), so each grain is large enough for
    # interior boxes; orientations are random (seeded).
    rng = np.random.default_rng(seed)
    q = np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    centres = np.column_stack([(q + rng.uniform(-0.06, 0.06, q.shape)) * size, np.full(4, box / 2)])
    atoms = polycrystal((size, size, box), ("fcc", "bcc", "hcp", "diamond"), centres=centres, seed=seed)
    ase.io.write(out / "polycrystal.extxyz", _plain(atoms))
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = spm(atoms, box=box, stride=stride, mc_samples=mc_samples, model=model, descriptor=descriptor,
                 seed=seed, progress=progress)
    t_spm = time.perf_counter() - t0
    result.save(out / "maps.npz")
    score = score_grains(result, atoms)
    present = [EXPECTED[p] for p in EXPECTED if EXPECTED[p] in result.classes]
    result.plot(out / "maps.png", classes=present,
                title=f"SPM of a 4-grain fcc/bcc/hcp/diamond slab (box {box:g} Å, stride {stride:g} Å)")

    # Per-atom labels: each atom gets the mean over the boxes that contain it.
    annotated = _plain(atoms)
    annotated.arrays["grain"] = atoms.arrays["grain"]
    ase.io.write(out / "atoms.extxyz", result.annotate(annotated))
    pa = result.per_atom()
    per_atom_acc = _per_atom_accuracy(atoms, pa, result)

    renders = {}
    t0 = time.perf_counter()
    if render:
        import matplotlib

        matplotlib.use("Agg")
        renders = render_ovito(out / "polycrystal.extxyz", out, model=model, descriptor=descriptor, box=box,
                               stride=stride, mc_samples=mc_samples)
    t_render = time.perf_counter() - t0
    summary = {
        "settings": {"size": size, "box": box, "stride": stride, "mc_samples": mc_samples, "seed": seed},
        "atoms": len(atoms),
        "boxes": int(result.valid.size),
        "time_build_s": round(t_build, 2),
        "time_spm_s": round(t_spm, 2),
        "time_spm_descriptors_s": round(result.timings.get("descriptor_s", 0.0), 2),
        "time_spm_mc_s": round(result.timings.get("mc_s", 0.0), 2),
        "time_render_s": round(t_render, 2),
        "mean_passes": float(result.passes[result.valid].mean()) if result.valid.any() else 0.0,
        "class_fractions": {k: round(v, 4) for k, v in list(result.class_fractions().items())[:8]},
        **score,
        "per_atom_interior_accuracy": per_atom_acc,
        "renders": renders,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _plain(atoms):
    """A copy without the builder's info (numpy arrays that extxyz comments cannot hold)."""
    a = atoms.copy()
    a.info = {"grain_prototypes": " ".join(atoms.info["grain_prototypes"])}
    return a


def _per_atom_accuracy(atoms, pa, result) -> float:
    """Fraction of atoms at least 4 Å inside their own grain's Voronoi cell given their grain's class."""
    grain = atoms.arrays["grain"]
    c = atoms.info["grain_centres"]
    d = np.linalg.norm(atoms.positions[:, None, :2] - c[None, :, :2], axis=-1)
    d.sort(axis=1)
    inner = (d[:, 1] - d[:, 0]) > 8.0  # bisector distance difference: ≥ 4 Å from the boundary
    expected = np.array([result.class_index(EXPECTED[p]) for p in atoms.info["grain_prototypes"]])
    return float(np.mean(pa.labels[inner] == expected[grain[inner]])) if inner.any() else float("nan")
