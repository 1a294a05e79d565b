"""Strided pattern matching (SPM, ARISE thesis ch. 6): classify every box of a large sample.

A cubic box of edge ``box`` (Å) slides over the sample with step ``stride`` (Å); the atoms in
each box are described (ARISE SOAP by default) and classified with Monte Carlo dropout. The
result holds class-probability maps (n_classes, nz, ny, nx), the mutual-information (MI) map,
box centres and atom counts; boxes with fewer than ``min_atoms`` atoms are NaN.

Speed: descriptors of a chunk of boxes come from one call (one neighbour search) of the
descriptor; MC passes run batched over all boxes of a chunk; with ``adaptive=True`` a box stops
drawing passes once the standard errors of its top-class probability and of its MI fall below
``tolerance`` (see :func:`mc_dropout`). Chunks run in this process or on a dask.distributed
cluster (``client=``).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import partial
from typing import Callable

import numpy as np

from ..boxes import BoxGrid, strided_boxes
from ..structure import Structure, as_structure
from .mc import SharedMaskMLP, mc_dropout
from .result import SPMResult

__all__ = ["spm", "iter_spm", "subgrid", "load"]

_FLOAT = np.float32


def subgrid(grid: BoxGrid, k0: int, k1: int) -> BoxGrid:
    """Layers ``k0:k1`` of ``grid`` along z, or along y for a single-layer (slab) grid: still a
    regular grid, with its membership re-based. These boxes are contiguous in the flat order."""
    nz, ny, nx = grid.shape
    along_y = nz == 1
    n = ny if along_y else nz
    if not 0 <= k0 < k1 <= n:
        raise ValueError(f"layer range {k0}:{k1} outside 0:{n}")
    per_layer = nx if along_y else ny * nx
    b0, b1 = k0 * per_layer, k1 * per_layer
    o0, o1 = int(grid.offsets[b0]), int(grid.offsets[b1])
    sl = (slice(None), slice(k0, k1)) if along_y else (slice(k0, k1),)
    return replace(
        grid,
        y=grid.y[k0:k1] if along_y else grid.y,
        z=grid.z if along_y else grid.z[k0:k1],
        offsets=grid.offsets[b0 : b1 + 1] - o0,
        indices=grid.indices[o0:o1],
        counts=grid.counts[sl],
        valid=grid.valid[sl],
        shifts=None if grid.shifts is None else grid.shifts[o0:o1],
    )


def _grid_for(s: Structure, settings: dict) -> BoxGrid:
    return strided_boxes(
        s,
        settings["box"],
        settings["stride"],
        slab_axis=settings.get("slab_axis"),
        periodic=settings.get("periodic", False),
        min_atoms=settings.get("min_atoms", 1),
    )


def _default_model():
    try:
        from ..arise import load_model
    except ImportError as exc:  # the classifier is a separate capability
        raise ImportError("cryspext.arise (the ARISE classifier) is not available; pass model=") from exc
    return load_model()


def _default_descriptor():
    try:
        from ..descriptors import arise_soap_boxes
    except ImportError as exc:
        raise ImportError("cryspext.descriptors.arise_soap_boxes is not available; pass descriptor=") from exc
    return arise_soap_boxes


def _run_chunk(structure: Structure, grid: BoxGrid, model, descriptor, mc: dict, seed, threads: int | None = None):
    """Descriptors + MC dropout for the valid boxes of one (sub)grid. Returns flat arrays."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if model is None:
        model = _default_model()
    if descriptor is None:
        descriptor = _default_descriptor()
    n_boxes = grid.n_boxes
    valid = grid.valid.ravel().copy()
    n_classes = len(model.classes)
    p = np.full((n_boxes, n_classes), np.nan, dtype=_FLOAT)
    mi = np.full(n_boxes, np.nan, dtype=_FLOAT)
    pe = np.full(n_boxes, np.nan, dtype=_FLOAT)
    passes = np.zeros(n_boxes, dtype=np.int32)
    t0 = time.perf_counter()
    t_descriptor = 0.0
    if valid.any():
        x = np.asarray(descriptor(structure, grid), dtype=np.float32)
        t_descriptor = time.perf_counter() - t0
        if x.ndim != 2 or x.shape[0] != n_boxes:
            raise ValueError(f"descriptor returned shape {x.shape}, expected ({n_boxes}, n_features)")
        valid &= np.all(np.isfinite(x), axis=1)  # the descriptor may reject boxes (NaN rows)
        rows = np.flatnonzero(valid)
        r = mc_dropout(model, x[rows], seed=seed, **mc)
        p[rows] = r.probabilities
        mi[rows] = r.mutual_information
        pe[rows] = r.predictive_entropy
        passes[rows] = r.passes
    timings = {"descriptor_s": t_descriptor, "mc_s": time.perf_counter() - t0 - t_descriptor}
    return {"p": p, "mi": mi, "pe": pe, "passes": passes, "valid": valid, "classes": list(model.classes),
            "timings": timings}


def _chunks(grid: BoxGrid, chunk_boxes: int) -> list[tuple[int, int]]:
    """Layer ranges for :func:`subgrid` holding about ``chunk_boxes`` boxes each."""
    nz, ny, nx = grid.shape
    n, per_layer = (ny, nx) if nz == 1 else (nz, ny * nx)
    layers = max(1, int(chunk_boxes) // max(per_layer, 1))
    return [(k, min(k + layers, n)) for k in range(0, n, layers)]


def _connect(client):
    if client is None:
        return None
    if isinstance(client, str):
        from distributed import Client

        return Client(client)
    if not hasattr(client, "submit"):
        raise TypeError("client must be a dask.distributed Client or a scheduler address string")
    return client


def iter_spm(
    structure,
    box: float = 16.0,
    stride: float = 3.0,
    *,
    mc_samples: int = 1000,
    adaptive: bool = True,
    tolerance: float = 0.02,
    min_samples: int = 200,
    block: int = 20,
    min_atoms: int = 20,
    slab_axis: int | None = None,
    periodic: bool = False,
    model=None,
    descriptor: Callable | None = None,
    client=None,
    chunk_boxes: int = 4096,
    seed: int | None = 0,
    threads: int | None = None,
    fast: bool = True,
    precision: str = "auto",
    info: dict | None = None,
):
    """Strided pattern matching as a generator: yields the fraction of boxes done (0 to 1) after
    each chunk and returns the result (``result = yield from iter_spm(...)``); :func:`spm` runs it.

    Boxes of edge ``box`` Å every ``stride`` Å (:func:`cryspext.strided_boxes`): a sample
    thinner than ``box`` along an axis (a slab) gets one layer there, ``slab_axis`` forces it.
    Boxes with fewer than ``min_atoms`` atoms are skipped (NaN). Each box is described with
    ``descriptor(structure, grid) -> (n_boxes, D)`` (default
    :func:`cryspext.descriptors.arise_soap_boxes`) and classified by ``model`` (default
    :func:`cryspext.arise.load_model`) with up to ``mc_samples`` MC-dropout passes, stopped
    early per box when ``adaptive`` (criterion in :func:`mc_dropout`). The default descriptor
    uses the model's central setting only (``model.descriptor_settings``), not the extra
    cut-off views that :func:`cryspext.classify` averages over: they would triple the SOAP
    cost per box, and boxes of 16 Å are classified right without them (README demo).

    ``client``: a dask.distributed ``Client`` or scheduler address; chunks of about
    ``chunk_boxes`` boxes (z layers), and frames of a trajectory, then run on its workers.
    Without it the chunks run here, one after the other. ``threads`` sets the number of torch
    threads (in this process or on each worker). ``fast``: run MC dropout with one mask per
    pass shared by the boxes of a chunk (:class:`~cryspext.spm.mc.SharedMaskMLP`, about 3x
    faster) when the model exposes its layers; ``precision`` of its hidden layers: "float32",
    "bfloat16" or "auto" (bfloat16 where the CPU computes it natively; its rounding moves
    probabilities and MI by ~10x less than the MC noise of T = 1000, see benchmarks/RESULTS_spm.md).
    ``info``, if given, receives ``n_boxes``.

    Returns an :class:`SPMResult` (a list of them for a list of frames).
    """
    frames = list(structure) if isinstance(structure, (list, tuple)) else [structure]
    if not frames:
        raise ValueError("no structure given")
    structures = [as_structure(f) for f in frames]
    for name, value in (("mc_samples", mc_samples), ("min_samples", min_samples), ("block", block), ("chunk_boxes", chunk_boxes)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(min_atoms, bool) or not isinstance(min_atoms, (int, np.integer)) or min_atoms < 1:
        raise ValueError(f"min_atoms must be a positive integer, got {min_atoms!r}")
    if not (isinstance(tolerance, (int, float)) and tolerance > 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a positive number, got {tolerance!r}")
    if precision not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"precision must be 'auto', 'float32' or 'bfloat16', got {precision!r}")
    if descriptor is not None and not callable(descriptor):
        raise TypeError("descriptor must be a callable (structure, grid) -> (n_boxes, n_features)")
    if model is not None and not (hasattr(model, "predict") and hasattr(model, "classes")):
        raise TypeError("model must have .classes and .predict(descriptors, mc_samples=, seed=)")
    settings = {
        "box": float(box),
        "stride": float(stride),
        "slab_axis": slab_axis,
        "periodic": bool(periodic),
        "min_atoms": int(min_atoms),
        "mc_samples": int(mc_samples),
        "adaptive": bool(adaptive),
        "tolerance": float(tolerance),
        "min_samples": int(min_samples),
        "block": int(block),
        "seed": seed,
        "fast": bool(fast),
        "precision": precision,
    }
    mc = {k: settings[k] for k in ("mc_samples", "adaptive", "tolerance", "min_samples", "block")}
    grids = [_grid_for(s, settings) for s in structures]
    client = _connect(client)
    default_model = model is None
    if default_model:
        model = _default_model()  # load once here, not per chunk
    if descriptor is None:
        # ARISE SOAP with the settings the model was trained with (picklable for dask workers).
        settings_d = dict(getattr(model, "descriptor_settings", {}) or {})
        descriptor = partial(_default_descriptor(), **settings_d) if settings_d else _default_descriptor()
    if fast:
        fast_model = SharedMaskMLP.from_model(model, dtype=precision)
        if fast_model is not None:
            model, default_model = fast_model, False  # plain tensors: cheap to ship to workers

    tasks = []  # (frame, k0, k1, seed)
    root = np.random.SeedSequence(seed)
    for f, g in enumerate(grids):
        for k0, k1 in _chunks(g, chunk_boxes):
            tasks.append((f, k0, k1, int(root.spawn(1)[0].generate_state(1)[0])))
    n_total = max(sum(int(g.valid.sum()) for g in grids), 1)
    if info is not None:
        info["n_boxes"] = n_total
    done = 0
    yield 0.0
    outputs: dict[int, list] = {f: [] for f in range(len(grids))}
    if client is None:
        for f, k0, k1, s in tasks:
            sub = subgrid(grids[f], k0, k1)
            out = _run_chunk(structures[f], sub, model, descriptor, mc, s, threads)
            outputs[f].append((k0, out))
            done += int(sub.valid.sum())
            yield done / n_total
    else:
        from distributed import as_completed

        futures = {}
        remote_structures = [client.scatter(s, broadcast=True) for s in structures]
        # A TorchScript model does not pickle: workers load the shipped one themselves.
        remote_model = None if default_model else client.scatter(model, broadcast=True)
        for f, k0, k1, s in tasks:
            sub = subgrid(grids[f], k0, k1)
            fut = client.submit(_run_chunk, remote_structures[f], sub, remote_model, descriptor, mc, s, threads,
                                pure=False)
            futures[fut] = (f, k0, int(sub.valid.sum()))
        for fut in as_completed(list(futures)):
            f, k0, n_valid = futures[fut]
            outputs[f].append((k0, fut.result()))
            done += n_valid
            yield done / n_total

    results = []
    for f, g in enumerate(grids):
        parts = [o for _, o in sorted(outputs[f], key=lambda t: t[0])]
        classes = parts[0]["classes"]
        shape = g.shape
        p = np.concatenate([o["p"] for o in parts]).T.reshape((len(classes),) + shape)
        results.append(
            SPMResult(
                classes=classes,
                probabilities=np.ascontiguousarray(p),
                mutual_information=np.concatenate([o["mi"] for o in parts]).reshape(shape),
                predictive_entropy=np.concatenate([o["pe"] for o in parts]).reshape(shape),
                passes=np.concatenate([o["passes"] for o in parts]).reshape(shape),
                counts=np.asarray(g.counts),
                valid=np.concatenate([o["valid"] for o in parts]).reshape(shape),
                x=np.asarray(g.x),
                y=np.asarray(g.y),
                z=np.asarray(g.z),
                box=g.box,
                stride=tuple(g.stride),
                settings=settings,
                grid=g,
                structure=structures[f],
                timings={k: float(sum(o["timings"][k] for o in parts)) for k in ("descriptor_s", "mc_s")},
            )
        )
    return results if isinstance(structure, (list, tuple)) else results[0]


def spm(structure, box: float = 16.0, stride: float = 3.0, *, progress: bool | None = None, **kwargs):
    """Strided pattern matching of ``structure`` (or a list of frames); see :func:`iter_spm` for
    all parameters. ``progress`` shows a tqdm bar (default: for runs of more than 2000 boxes).

    Returns an :class:`SPMResult` (a list of them for a list of frames).
    """
    info: dict = {}
    steps = iter_spm(structure, box, stride, info=info, **kwargs)
    bar = None
    try:
        fraction = next(steps)  # validation and box extraction happen here
        while True:
            if bar is None and progress is not False:
                n = info.get("n_boxes", 0)
                if progress or n > 2000:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=n, unit="box", desc="SPM")
            if bar is not None:
                bar.update(round(fraction * bar.total) - bar.n)
            fraction = next(steps)
    except StopIteration as stop:
        return stop.value
    finally:
        if bar is not None:
            bar.close()


def load(path) -> SPMResult:
    """Read an SPM result saved with :meth:`SPMResult.save`."""
    return SPMResult.load(path)
