"""The 108 ARISE prototypes and the structures built from them (thesis section 4.3.3.2).

The geometries are not shipped with cryspext; they live in the project's ``shared/data/arise``
folder (public repository AndreasLeitherer/Tutorial_ARISE, Apache-2.0). Point
``CRYSPEXT_SHARED_DATA`` (or the ``root`` argument) at that ``data`` folder.

Training structures per prototype (thesis 4.3.3.2):

- bulk prototypes: the periodic cell, plus three non-periodic isotropic supercells n×n×n — the
  smallest with at least 100 atoms and the next two (n+1, n+2);
- 2D materials: the same, but replicated in-plane only (n×n×1);
- nanotubes: the (already ≥ 100-atom) non-periodic tube only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..structure import Structure

__all__ = [
    "Prototype",
    "find_arise_data",
    "load_class_names",
    "load_prototypes",
    "supercell",
    "isotropic_supercells",
    "training_structures",
]

# Folder of each material group under ``prototypes/`` and the replication rule it follows.
GROUP_KIND = {
    "Elemental_solids": "bulk",
    "Binaries": "bulk",
    "Ternaries": "bulk",
    "Quaternaries": "bulk",
    "2D_materials": "2d",
    "Nanotubes": "nanotube",
}
MIN_SUPERCELL_ATOMS = 100
N_SUPERCELLS = 3


@dataclass(frozen=True)
class Prototype:
    """One ARISE class: its ``name`` (folder name = class label), material ``group``, ``kind``
    ('bulk', '2d' or 'nanotube') and the pristine ``structure`` as stored (Å)."""

    name: str
    group: str
    kind: str
    structure: Structure


def find_arise_data(root: str | os.PathLike | None = None) -> Path:
    """The ``arise`` data folder (holding ``classes.txt`` and ``prototypes/``).

    ``root`` may be that folder or the ``shared/data`` folder above it; by default
    ``$CRYSPEXT_SHARED_DATA`` then ``shared/data`` next to the source checkout are tried.
    Raises ``FileNotFoundError`` with a hint when nothing is found.
    """
    candidates: list[Path] = []
    if root is not None:
        candidates += [Path(root), Path(root) / "arise"]
    else:
        env = os.environ.get("CRYSPEXT_SHARED_DATA")
        if env:
            candidates.append(Path(env) / "arise")
        repo = Path(__file__).resolve().parents[3]
        candidates += [repo.parent / "shared" / "data" / "arise"]
    for c in candidates:
        if (c / "classes.txt").is_file() and (c / "prototypes").is_dir():
            return c
    raise FileNotFoundError(
        "ARISE prototype data not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); pass root=... or set CRYSPEXT_SHARED_DATA to the shared/data folder"
    )


def load_class_names(root: str | os.PathLike | None = None) -> list[str]:
    """The 108 class names in ARISE's output order (``classes.txt``)."""
    path = find_arise_data(root) / "classes.txt"
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return names


def _read_geometry(path: Path) -> Structure:
    import warnings

    import ase.io

    with warnings.catch_warnings():
        # ASE announces that its FHI-aims reader moves to a plugin; the format is unchanged.
        warnings.filterwarnings("ignore", category=FutureWarning)
        atoms = ase.io.read(path, format="aims")
    cell = np.asarray(atoms.get_cell())
    # Files without lattice vectors (nanotubes) are finite clusters.
    pbc = [bool(np.linalg.norm(v) > 0) for v in cell]
    return Structure(atoms.get_positions(), cell, pbc, atoms.get_atomic_numbers(), info={"file": path.name})


def load_prototypes(root: str | os.PathLike | None = None) -> list[Prototype]:
    """All prototypes, in the order of ``classes.txt`` (the model's output order)."""
    base = find_arise_data(root)
    found: dict[str, Prototype] = {}
    for group, kind in GROUP_KIND.items():
        group_dir = base / "prototypes" / group
        if not group_dir.is_dir():
            continue
        for folder in sorted(group_dir.iterdir()):
            files = sorted(folder.glob("*.in"))
            if not files:
                continue
            found[folder.name] = Prototype(folder.name, group, kind, _read_geometry(files[0]))
    names = load_class_names(base)
    missing = [n for n in names if n not in found]
    if missing:
        raise FileNotFoundError(f"prototype geometries missing for classes: {missing}")
    return [found[n] for n in names]


def supercell(structure: Structure, reps, *, periodic: bool) -> Structure:
    """Replicate ``structure`` ``reps = (n1, n2, n3)`` times along its cell vectors.

    ``periodic=False`` returns a finite cluster (pbc all False, cell kept for reference).
    """
    reps = np.asarray(reps, dtype=int).reshape(3)
    if np.any(reps < 1):
        raise ValueError(f"replications must be >= 1, got {reps.tolist()}")
    grid = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    shifts = grid @ structure.cell  # (n_images, 3) Å
    positions = (structure.positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3)
    numbers = np.tile(structure.numbers, len(grid))
    cell = structure.cell * reps[:, None]
    pbc = structure.pbc.copy() if periodic else np.zeros(3, dtype=bool)
    return Structure(positions, cell, pbc, numbers, info=dict(structure.info, reps=reps.tolist()))


def _replication_axes(kind: str) -> np.ndarray:
    return np.array([1, 1, 0]) if kind == "2d" else np.array([1, 1, 1])


def isotropic_supercells(
    prototype: Prototype, *, min_atoms: int = MIN_SUPERCELL_ATOMS, count: int = N_SUPERCELLS, periodic: bool = False
) -> list[Structure]:
    """The smallest isotropic supercell with ``>= min_atoms`` atoms and the next ``count - 1``.

    Bulk: n×n×n; 2D materials: n×n×1 (in-plane only). Nanotubes are returned as stored
    (one finite tube), whatever ``count``.
    """
    if prototype.kind == "nanotube":
        return [prototype.structure]
    axes = _replication_axes(prototype.kind)
    n_cell = len(prototype.structure)
    dims = int(axes.sum())
    n = 1
    while n_cell * n**dims < min_atoms:
        n += 1
    out = []
    for k in range(n, n + count):
        reps = np.where(axes == 1, k, 1)
        out.append(supercell(prototype.structure, reps, periodic=periodic))
    return out


def training_structures(prototype: Prototype) -> list[tuple[str, Structure]]:
    """Pristine training structures of one prototype as ``(tag, structure)`` pairs.

    Tags: ``'periodic'`` for the cell itself, ``'cluster0'``..``'cluster2'`` for the finite
    supercells (nanotubes: only ``'cluster0'``).
    """
    out: list[tuple[str, Structure]] = []
    if prototype.kind != "nanotube":
        out.append(("periodic", prototype.structure))
    for k, s in enumerate(isotropic_supercells(prototype)):
        out.append((f"cluster{k}", s))
    return out
