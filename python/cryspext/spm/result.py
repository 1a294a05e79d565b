"""The result of strided pattern matching: box maps, per-atom projection, save/load."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..boxes import BoxGrid
from ..structure import Structure, as_structure

__all__ = ["SPMResult", "PerAtomResult", "project_to_atoms"]

# Result maps are float32: 108 classes x 40k boxes stays ~17 MB.
_FLOAT = np.float32




@dataclass
class PerAtomResult:
    """Box results projected on atoms: each atom gets the mean over the valid boxes containing it.

    ``probabilities`` (n_atoms, C), ``mutual_information`` (n_atoms,) nats, ``labels``
    (argmax class index, −1 for atoms in no valid box), ``n_boxes`` (valid boxes per atom).
    """

    classes: list
    probabilities: np.ndarray
    mutual_information: np.ndarray
    labels: np.ndarray
    n_boxes: np.ndarray

    @property
    def label_names(self) -> np.ndarray:
        names = np.array(list(self.classes) + [""], dtype=object)
        return names[self.labels]

    @property
    def top_probability(self) -> np.ndarray:
        return np.nanmax(self.probabilities, axis=1) if self.probabilities.shape[1] else np.zeros(0)


@dataclass
class SPMResult:
    """Maps of one SPM run; arrays are indexed (z, y, x) as in ARISE.

    ``probabilities``: (n_classes, nz, ny, nx); ``mutual_information``, ``predictive_entropy``
    (nats), ``passes`` (MC passes drawn), ``counts`` (atoms per box): (nz, ny, nx); ``x``, ``y``,
    ``z``: box centres along each axis (Å). Invalid boxes (``~valid``) are NaN in the float maps.
    """

    classes: list
    probabilities: np.ndarray
    mutual_information: np.ndarray
    predictive_entropy: np.ndarray
    passes: np.ndarray
    counts: np.ndarray
    valid: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    box: float
    stride: tuple
    settings: dict = field(default_factory=dict)
    grid: BoxGrid | None = field(default=None, repr=False)  # membership, kept in memory only
    structure: Structure | None = field(default=None, repr=False)  # the input, in memory only
    timings: dict = field(default_factory=dict)  # seconds spent in descriptors and MC (summed over chunks)

    @property
    def n_atoms(self) -> int | None:
        return None if self.structure is None else len(self.structure)

    @property
    def shape(self) -> tuple:
        return tuple(self.counts.shape)

    @property
    def centres(self) -> np.ndarray:
        """Box centres (nz, ny, nx, 3), Cartesian (x, y, z) Å."""
        zz, yy, xx = np.meshgrid(self.z, self.y, self.x, indexing="ij")
        return np.stack([xx, yy, zz], axis=-1)

    @property
    def labels(self) -> np.ndarray:
        """Argmax class index per box (nz, ny, nx); −1 for invalid boxes."""
        p = np.where(self.valid[None], self.probabilities, -1.0)
        lab = np.argmax(p, axis=0)
        return np.where(self.valid, lab, -1)

    @property
    def top_probability(self) -> np.ndarray:
        """Probability of the chosen (argmax) class per box; NaN for invalid boxes."""
        out = np.full(self.shape, np.nan, dtype=_FLOAT)
        out[self.valid] = np.max(self.probabilities[:, self.valid], axis=0)
        return out

    def probability(self, name: str) -> np.ndarray:
        """Probability map (nz, ny, nx) of class ``name``."""
        return self.probabilities[self.class_index(name)]

    def class_index(self, name: str) -> int:
        try:
            return list(self.classes).index(name)
        except ValueError:
            matches = [i for i, c in enumerate(self.classes) if c.split("_")[0] == name]
            if len(matches) == 1:
                return matches[0]
            raise ValueError(f"unknown class {name!r}") from None

    def class_fractions(self) -> dict:
        """Fraction of valid boxes assigned to each class (only classes that occur), largest first."""
        lab = self.labels[self.valid]
        if lab.size == 0:
            return {}
        counts = np.bincount(lab, minlength=len(self.classes))
        order = np.argsort(-counts)
        return {self.classes[i]: float(counts[i] / lab.size) for i in order if counts[i] > 0}

    # -- per-atom projection ----------------------------------------------------------------
    def per_atom(self, structure=None, *, fill: str = "nearest") -> PerAtomResult:
        """Project the box maps on atoms (mean over the valid boxes that contain each atom).

        Atoms in no valid box (near open surfaces the grid of boxes does not reach every atom)
        take the values of the nearest valid box centre with ``fill="nearest"``, or stay NaN with
        ``fill="nan"``; their ``n_boxes`` is 0 either way. Uses the box membership kept from the
        run; after :meth:`load`, pass the same ``structure`` to rebuild it.
        """
        if fill not in ("nearest", "nan"):
            raise ValueError(f"fill must be 'nearest' or 'nan', got {fill!r}")
        grid = self.grid
        s = as_structure(structure) if structure is not None else self.structure
        if grid is None or (structure is not None and len(s) != self.n_atoms):
            if s is None:
                raise ValueError("this result has no box membership (loaded from file?); pass the structure")
            from .core import _grid_for

            grid = _grid_for(s, self.settings)
            if grid.shape != self.shape:
                raise ValueError(f"structure gives a box grid {grid.shape}, the result has {self.shape}")
        n_atoms = len(s) if s is not None else (int(grid.indices.max()) + 1 if grid.indices.size else 0)
        flat_p = self.probabilities.reshape(len(self.classes), -1).T
        out = project_to_atoms(grid, self.valid.ravel(), flat_p, self.mutual_information.ravel(), n_atoms, self.classes)
        lonely = np.flatnonzero(out.n_boxes == 0)
        if fill == "nearest" and lonely.size and s is not None and self.valid.any():
            from scipy.spatial import cKDTree

            centres = self.centres.reshape(-1, 3)
            boxes = np.flatnonzero(self.valid.ravel())
            _, k = cKDTree(centres[boxes]).query(s.positions[lonely])
            nearest = boxes[k]
            out.probabilities[lonely] = flat_p[nearest]
            out.mutual_information[lonely] = self.mutual_information.ravel()[nearest]
            out.labels[lonely] = np.argmax(flat_p[nearest], axis=1)
        return out

    def annotate(self, atoms, *, prefix: str = "arise_"):
        """Write per-atom results into an ASE ``atoms`` of the analysed structure (in place).

        ``arrays``: ``arise_label`` (str, "" for no box), ``arise_top_probability``,
        ``arise_mutual_information`` (nats); ``info["arise_fractions"]``: JSON of the class
        fractions of the boxes. Survives an extxyz round trip. Returns ``atoms``.
        """
        pa = self.per_atom(atoms if self.structure is None or len(atoms) != self.n_atoms else None)
        atoms.arrays[prefix + "label"] = np.array([str(x) for x in pa.label_names], dtype="U")
        atoms.arrays[prefix + "top_probability"] = np.asarray(pa.top_probability, dtype=float)
        atoms.arrays[prefix + "mutual_information"] = np.asarray(pa.mutual_information, dtype=float)
        atoms.info[prefix + "fractions"] = json.dumps({k: round(v, 6) for k, v in self.class_fractions().items()})
        return atoms

    # -- save / load -----------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the maps to ``path`` (.npz, compressed). Membership is not stored."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"SPM results are saved as .npz, got {path.name}")
        meta = {"box": self.box, "stride": list(self.stride), "settings": self.settings, "format": "cryspext-spm-1"}
        np.savez_compressed(
            path,
            classes=np.array(self.classes, dtype=str),
            probabilities=self.probabilities,
            mutual_information=self.mutual_information,
            predictive_entropy=self.predictive_entropy,
            passes=self.passes,
            counts=self.counts,
            valid=self.valid,
            x=self.x,
            y=self.y,
            z=self.z,
            meta=np.array(json.dumps(meta)),
        )
        return path

    @classmethod
    def load(cls, path) -> "SPMResult":
        """Read a result written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        with np.load(path, allow_pickle=False) as f:
            if "meta" not in f:
                raise ValueError(f"{path} is not a cryspext SPM result")
            meta = json.loads(str(f["meta"]))
            return cls(
                classes=[str(c) for c in f["classes"]],
                probabilities=f["probabilities"],
                mutual_information=f["mutual_information"],
                predictive_entropy=f["predictive_entropy"],
                passes=f["passes"],
                counts=f["counts"],
                valid=f["valid"],
                x=f["x"],
                y=f["y"],
                z=f["z"],
                box=float(meta["box"]),
                stride=tuple(meta["stride"]),
                settings=meta.get("settings", {}),
            )

    # -- plotting --------------------------------------------------------------------------
    def plot(self, path=None, *, axis: str = "z", index: int | None = None, classes: Sequence[str] | None = None,
             mi_cmap: str = "viridis", title: str | None = None):
        """Figure with three panels for one slice: class (argmax), chosen-class probability, MI.

        ``axis`` ("x", "y" or "z") and ``index`` (default: middle) choose the slice. Saved to
        ``path`` (PNG, ...) when given. Returns the matplotlib ``Figure``.
        """
        from .plot import plot_maps

        return plot_maps(self, path, axis=axis, index=index, classes=classes, mi_cmap=mi_cmap, title=title)


def project_to_atoms(grid: BoxGrid, valid: np.ndarray, probabilities: np.ndarray, mutual_information: np.ndarray,
                     n_atoms: int, classes) -> PerAtomResult:
    """Mean of box values over the valid boxes containing each atom (sparse matrix product)."""
    from scipy import sparse

    n_boxes = grid.n_boxes
    box_of_member = np.repeat(np.arange(n_boxes), np.diff(grid.offsets))
    keep = valid[box_of_member]
    rows = grid.indices[keep].astype(np.int64)
    cols = box_of_member[keep]
    membership = sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n_atoms, n_boxes))
    n_boxes_atom = np.asarray(membership.sum(axis=1)).ravel()
    p = np.nan_to_num(np.asarray(probabilities, dtype=np.float32))
    mi = np.nan_to_num(np.asarray(mutual_information, dtype=np.float32))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_atom = np.asarray(membership @ p) / n_boxes_atom[:, None]
        mi_atom = np.asarray(membership @ mi).ravel() / n_boxes_atom
    none = n_boxes_atom == 0
    p_atom[none] = np.nan
    mi_atom[none] = np.nan
    labels = np.where(none, -1, np.argmax(np.nan_to_num(p_atom, nan=-1.0), axis=1)) if p_atom.shape[1] else np.full(n_atoms, -1)
    return PerAtomResult(list(classes), p_atom.astype(_FLOAT), mi_atom.astype(_FLOAT), labels.astype(np.int32),
                         n_boxes_atom.astype(np.int32))


