"""ARISE's SOAP descriptor and quippy-compatible per-atom SOAP, computed by the C++ core.

Numbers reproduce quippy's ``soap`` descriptor (equispaced Gaussian radial basis, quippy's default
cutoff transition of width 0.5, normalised vectors with a trailing 0) as ARISE calls it:
``soap cutoff=4.0 n_max=9 l_max=6 atom_sigma=0.1 central_weight=0 average=T`` with ``Z={alpha}
species_Z={beta}`` on the structure scaled by d_NN(alpha, beta), averaged over all (alpha, beta).
quippy is not needed (nor used) at run time.

The C++ kernel is compiled for AVX-512, AVX2 + FMA and the x86-64 baseline and picks the best the
CPU supports at run time (``cryspext._core.soap_isa()``); ``CRYSPEXT_SOAP_ISA=avx2`` or
``generic`` in the environment caps it. All variants agree with quippy to ~1e-14.
"""

from __future__ import annotations

import math
import os
from typing import Iterable, Sequence

import numpy as np

from .. import _core
from ..structure import as_structure
from .nn import degenerate_code

__all__ = ["arise_soap", "arise_soap_batch", "arise_soap_boxes", "soap_per_atom", "soap_dimension"]


def soap_dimension(n_max: int = 9, l_max: int = 6) -> int:
    """Length of a SOAP vector: n_max (n_max + 1) / 2 x (l_max + 1) + 1 (316 for 9, 6)."""
    return int(_core.soap_dimension(int(n_max), int(l_max)))


# Keyword settings shared by every ARISE SOAP entry point, with ARISE's values as defaults.
DEFAULT_SETTINGS = dict(
    cutoff=4.0, n_max=9, l_max=6, sigma=0.1, transition=0.5, central_weight=0.0, scale=True, degenerate="arise"
)


def _settings(**settings):
    """Validated core options from keyword settings (missing ones take DEFAULT_SETTINGS)."""
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    merged = {**DEFAULT_SETTINGS, **settings}
    cutoff, n_max, l_max, sigma = merged["cutoff"], merged["n_max"], merged["l_max"], merged["sigma"]
    transition, central_weight = merged["transition"], merged["central_weight"]
    scale, degenerate = merged["scale"], merged["degenerate"]
    for name, value in (("cutoff", cutoff), ("sigma", sigma)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    for name, value in (("n_max", n_max), ("l_max", l_max)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if not 1 <= n_max <= 40:
        raise ValueError(f"n_max must be in 1..40, got {n_max}")
    if not 0 <= l_max <= 20:
        raise ValueError(f"l_max must be in 0..20, got {l_max}")
    if not (math.isfinite(transition) and 0 <= transition <= cutoff):
        raise ValueError(f"transition must be in [0, cutoff], got {transition}")
    if not math.isfinite(central_weight):
        raise ValueError("central_weight must be finite")
    return dict(
        cutoff=float(cutoff),
        n_max=int(n_max),
        l_max=int(l_max),
        sigma=float(sigma),
        transition=float(transition),
        central_weight=float(central_weight),
        scale=bool(scale),
        degenerate=degenerate_code(degenerate),
    )


def arise_soap(
    structure,
    *,
    cutoff: float = 4.0,
    n_max: int = 9,
    l_max: int = 6,
    sigma: float = 0.1,
    scale: bool = True,
    transition: float = 0.5,
    central_weight: float = 0.0,
    degenerate: str = "arise",
) -> np.ndarray:
    """ARISE's species-pair averaged SOAP vector of ``structure`` (float64, shape (316,) by default).

    With ``scale=True`` lengths (``cutoff``, ``sigma``, ``transition``) are in units of the
    nearest-neighbour distance d_NN(alpha, beta) of each substructure (see
    :func:`cryspext.descriptors.nearest_neighbor_distance`); with ``scale=False`` they are in Å.
    Raises ``ValueError`` when the descriptor is undefined (e.g. a species pair without any
    neighbour within the cutoff, where quippy returns NaN and ARISE raises).
    """
    s = as_structure(structure)
    if len(s) == 0:
        raise ValueError("structure has no atoms")
    opt = _settings(
        cutoff=cutoff, n_max=n_max, l_max=l_max, sigma=sigma, transition=transition,
        central_weight=central_weight, scale=scale, degenerate=degenerate,
    )
    vec, _species, _dnn, error = _core.arise_soap_one(s.positions, s.numbers, s.cell, s.pbc, **opt)
    if error:
        raise ValueError(f"ARISE SOAP undefined: {error}")
    return vec


def _chunks(n: int, size: int) -> Iterable[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def arise_soap_batch(
    structures: Sequence,
    *,
    errors: str = "raise",
    progress: bool | None = None,
    chunk_size: int = 256,
    **settings,
) -> np.ndarray:
    """ARISE SOAP of many structures, computed in parallel in C++ (OpenMP over structures).

    ``settings`` are those of :func:`arise_soap`. Returns float64 (n, 316). ``errors="raise"``
    raises ``ValueError`` naming the first structure whose descriptor is undefined;
    ``errors="nan"`` leaves NaN rows instead. A tqdm progress bar is shown for long lists
    (more than 2 chunks) unless ``progress=False``.
    """
    if errors not in ("raise", "nan"):
        raise ValueError(f"errors must be 'raise' or 'nan', got {errors!r}")
    if isinstance(structures, (str, os.PathLike)) or not hasattr(structures, "__len__"):
        structures = list(structures) if not isinstance(structures, (str, os.PathLike)) else [structures]
    opt = _settings(**settings)
    if int(chunk_size) < 1:
        raise ValueError("chunk_size must be >= 1")
    n = len(structures)
    dim = soap_dimension(opt["n_max"], opt["l_max"])
    out = np.empty((n, dim))
    if n == 0:
        return out
    chunks = list(_chunks(n, int(chunk_size)))
    bar = None
    if progress or (progress is None and len(chunks) > 2):
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="ARISE SOAP", unit="structure")
    try:
        for start, stop in chunks:
            items = []
            for k in range(start, stop):
                s = as_structure(structures[k])
                if len(s) == 0:
                    raise ValueError(f"structure {k} has no atoms")
                items.append((s.positions, s.numbers, s.cell, s.pbc))
            block, errs = _core.arise_soap_batch(items, **opt)
            out[start:stop] = block
            if errors == "raise":
                for k, e in enumerate(errs):
                    if e:
                        raise ValueError(f"ARISE SOAP undefined for structure {start + k}: {e}")
            if bar is not None:
                bar.update(stop - start)
    finally:
        if bar is not None:
            bar.close()
    return out


def arise_soap_boxes(structure, grid, **settings) -> np.ndarray:
    """ARISE SOAP of every box of ``grid`` (a :class:`cryspext.BoxGrid` of ``structure``).

    Each box is treated as ARISE's strided pattern matching does: an isolated (non-periodic)
    cluster of its member atoms, with its own d_NN. Returns float64 (n_boxes, 316) in the grid's
    box order (z, y, x); rows of invalid boxes (``grid.valid`` False) or boxes whose descriptor
    is undefined are NaN. Boxes run in parallel in C++.
    """
    from ..boxes import BoxGrid

    if not isinstance(grid, BoxGrid):
        raise TypeError(f"grid must be a cryspext.BoxGrid (from cryspext.strided_boxes), got {type(grid).__name__}")
    s = as_structure(structure)
    if grid.indices.size and int(grid.indices.max()) >= len(s):
        raise ValueError("grid does not belong to this structure (member index out of range)")
    opt = _settings(**settings)
    offsets = np.asarray(grid.offsets, dtype=np.int64)
    valid = np.asarray(grid.valid).reshape(-1)
    # Invalid boxes get no members so that the core leaves them NaN.
    counts = np.diff(offsets)
    keep = np.repeat(valid, counts)
    indices = np.asarray(grid.indices, dtype=np.int32)[keep]
    shifts = None if grid.shifts is None else np.asarray(grid.shifts, dtype=np.int32)[keep]
    new_offsets = np.concatenate([[0], np.cumsum(np.where(valid, counts, 0))]).astype(np.int64)
    return _core.arise_soap_boxes(s.positions, s.numbers, s.cell, new_offsets, indices, shifts, **opt)


def soap_per_atom(
    structure,
    *,
    cutoff: float = 4.0,
    n_max: int = 9,
    l_max: int = 6,
    sigma: float = 0.1,
    scale: bool = True,
    transition: float = 0.5,
    central_weight: float = 0.0,
    degenerate: str = "arise",
) -> np.ndarray:
    """Per-atom SOAP, as quippy's ``soap ... average=F`` with all species treated as one.

    Returns float64 (n_atoms, 316 by default), each row normalised. With ``scale=True`` lengths
    are in units of the structure's d_NN (all species, ARISE's histogram rule); else in Å.
    Rows of atoms without any neighbour within the cutoff are NaN (quippy divides by 0 there).
    """
    from .nn import nearest_neighbor_distance

    s = as_structure(structure)
    if len(s) == 0:
        raise ValueError("structure has no atoms")
    opt = _settings(
        cutoff=cutoff, n_max=n_max, l_max=l_max, sigma=sigma, transition=transition,
        central_weight=central_weight, scale=scale, degenerate=degenerate,
    )
    d = nearest_neighbor_distance(s, degenerate=degenerate) if scale else 1.0
    return _core.soap_per_atom(
        s.positions,
        s.cell,
        s.pbc,
        opt["cutoff"],
        opt["n_max"],
        opt["l_max"],
        opt["sigma"],
        opt["transition"],
        opt["central_weight"],
        float(d),
    )
