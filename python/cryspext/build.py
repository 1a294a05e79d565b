"""Synthetic test structures: Voronoi polycrystals and the Ni–Al superalloy cube (ARISE thesis 6.2, 6.3).

`polycrystal` fills Voronoi cells around grain centres with rotated copies of prototype
crystals; `superalloy` builds an fcc Ni–Al matrix with random occupation around an ordered
L1₂ (Ni₃Al) cube. Both return an ASE ``Atoms`` with per-atom ground truth in ``atoms.arrays``
(``"grain"`` index, or ``"precipitate"`` flag) so that recognition results can be scored.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["PROTOTYPES", "prototype_cell", "polycrystal", "superalloy"]

# Prototype name -> (ASE crystalstructure, a / d_NN, c / a or None). Lattice constants are
# chosen so every prototype has the same nearest-neighbour distance d_NN.
PROTOTYPES = {
    "fcc": ("fcc", np.sqrt(2.0), None),
    "bcc": ("bcc", 2.0 / np.sqrt(3.0), None),
    "hcp": ("hcp", 1.0, np.sqrt(8.0 / 3.0)),
    "diamond": ("diamond", 4.0 / np.sqrt(3.0), None),
    "sc": ("sc", 1.0, None),
}


def prototype_cell(name: str, symbol: str = "Cu", d_nn: float = 2.5):
    """Conventional (cubic where possible) unit cell of prototype ``name`` with nearest-neighbour distance ``d_nn`` (Å)."""
    from ase.build import bulk

    if name not in PROTOTYPES:
        raise ValueError(f"unknown prototype {name!r}; choose from {sorted(PROTOTYPES)} or pass an ase.Atoms cell")
    if not (np.isfinite(d_nn) and d_nn > 0):
        raise ValueError(f"d_nn must be a positive number of Å, got {d_nn}")
    kind, a_over_d, c_over_a = PROTOTYPES[name]
    a = a_over_d * d_nn
    if kind == "hcp":
        return bulk(symbol, "hcp", a=a, c=c_over_a * a, orthorhombic=True)
    return bulk(symbol, kind, a=a, cubic=True)


def _random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly distributed rotation matrices (QR of Gaussian matrices, sign-fixed)."""
    out = np.empty((n, 3, 3))
    for k in range(n):
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        q = q @ np.diag(np.sign(np.diag(r)))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        out[k] = q
    return out


def _fill(cell_atoms, rotation: np.ndarray, origin: np.ndarray, size: np.ndarray):
    """Positions and numbers of the rotated lattice (through ``origin``) covering [0, size]."""
    cell = np.asarray(cell_atoms.get_cell())
    basis = cell_atoms.get_positions()
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float) * size
    # Corners in the crystal frame, then in fractional coordinates of the unit cell.
    frac = np.linalg.solve(cell.T, (rotation.T @ (corners - origin).T)).T
    lo = np.floor(frac.min(axis=0)) - 1
    hi = np.ceil(frac.max(axis=0)) + 1
    grid = np.stack(np.meshgrid(*[np.arange(l, h) for l, h in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 1, 3)
    pos = (grid @ cell + basis[None]).reshape(-1, 3)  # crystal frame
    pos = pos @ rotation.T + origin
    numbers = np.tile(cell_atoms.get_atomic_numbers(), grid.shape[0])
    inside = np.all((pos >= 0) & (pos < size), axis=1)
    return pos[inside], numbers[inside]


def polycrystal(
    size: Sequence[float] = (80.0, 80.0, 16.0),
    grains: Sequence = ("fcc", "bcc", "hcp", "diamond"),
    *,
    centres: np.ndarray | None = None,
    symbol: str = "Cu",
    d_nn: float = 2.5,
    columnar: bool | None = None,
    periodic: bool = False,
    min_distance: float | None = None,
    seed: int | None = 0,
):
    """A Voronoi polycrystal of edge lengths ``size`` (Å) with one grain per entry of ``grains``.

    ``grains``: prototype names (``"fcc"``, ``"bcc"``, ``"hcp"``, ``"diamond"``, ``"sc"``,
    built with element ``symbol`` and nearest-neighbour distance ``d_nn`` Å) or ASE ``Atoms``
    unit cells. Each grain gets a random orientation (uniform on SO(3)) from ``seed``.
    ``centres`` (n_grains, 3) Å fixes the Voronoi seeds, otherwise they are drawn at random
    (well separated). ``columnar`` (default: when the z edge is the smallest and at most a
    third of the others) makes grains columns along z, as in a slab. ``periodic`` wraps the
    Voronoi tessellation (pbc on all axes); atoms of different grains closer than
    ``min_distance`` (default 0.75·d_NN) are thinned out at the boundaries.

    Returns an ASE ``Atoms`` with ``arrays["grain"]`` (grain index per atom) and
    ``info["grain_prototypes"]``, ``info["grain_centres"]``.
    """
    from ase import Atoms

    size = np.asarray(size, dtype=float).reshape(-1)
    if size.shape != (3,) or not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise ValueError(f"size must be three positive lengths in Å, got {size.tolist()}")
    if isinstance(grains, (str, Atoms)):
        grains = [grains]
    grains = list(grains)
    if not grains:
        raise ValueError("need at least one grain")
    cells, names = [], []
    for g in grains:
        if isinstance(g, str):
            cells.append(prototype_cell(g, symbol, d_nn))
            names.append(g)
        elif isinstance(g, Atoms):
            if not np.all(g.pbc) or abs(g.get_volume()) < 1e-6:
                raise ValueError("an Atoms grain must be a periodic unit cell")
            cells.append(g)
            names.append(g.get_chemical_formula())
        else:
            raise TypeError(f"a grain is a prototype name or an ase.Atoms unit cell, got {type(g).__name__}")
    n = len(cells)
    rng = np.random.default_rng(seed)
    if columnar is None:
        columnar = bool(size[2] <= min(size[0], size[1]) / 3)
    dims = 2 if columnar else 3
    if centres is None:
        # Rejection sampling keeps seeds apart, so no grain is vanishingly small.
        spacing = 0.6 * (np.prod(size[:dims]) / n) ** (1.0 / dims)
        centres = np.empty((0, 3))
        for _ in range(10000):
            c = rng.uniform(0, 1, 3) * size
            if columnar:
                c[2] = 0.5 * size[2]
            if len(centres) == 0 or np.min(_distance(c[None], centres, size, periodic, dims)) > spacing:
                centres = np.vstack([centres, c])
            if len(centres) == n:
                break
        if len(centres) < n:
            raise ValueError("could not place well separated grain centres; give centres explicitly")
    centres = np.asarray(centres, dtype=float)
    if centres.shape != (n, 3):
        raise ValueError(f"centres must have shape ({n}, 3), got {centres.shape}")
    rotations = _random_rotations(n, rng)

    positions, numbers, grain = [], [], []
    for g in range(n):
        pos, num = _fill(cells[g], rotations[g], centres[g], size)
        d = _distance(pos, centres, size, periodic, dims)  # (m, n)
        mine = np.argmin(d, axis=1) == g
        positions.append(pos[mine])
        numbers.append(num[mine])
        grain.append(np.full(int(mine.sum()), g, dtype=np.int32))
    atoms = Atoms(
        numbers=np.concatenate(numbers),
        positions=np.concatenate(positions),
        cell=np.diag(size),
        pbc=periodic,
    )
    atoms.arrays["grain"] = np.concatenate(grain)
    atoms = _thin_boundaries(atoms, 0.75 * d_nn if min_distance is None else float(min_distance))
    atoms.info["grain_prototypes"] = names
    atoms.info["grain_centres"] = centres
    return atoms


def _distance(points: np.ndarray, centres: np.ndarray, size: np.ndarray, periodic: bool, dims: int) -> np.ndarray:
    """Distances (Å) between points (m, 3) and centres (n, 3) in the first ``dims`` axes, minimum image if periodic."""
    diff = points[:, None, :dims] - centres[None, :, :dims]
    if periodic:
        diff -= size[:dims] * np.round(diff / size[:dims])
    return np.sqrt(np.sum(diff**2, axis=-1))


def _thin_boundaries(atoms, min_distance: float):
    """Delete one atom of every clashing pair (closer than ``min_distance`` Å, see below)."""
    if min_distance <= 0 or len(atoms) < 2:
        return atoms
    from .neighbors import neighbor_list

    nl = neighbor_list(atoms, min_distance, half=True)
    grain = atoms.arrays["grain"]
    # Different grains meet at Voronoi faces; with pbc a grain also meets itself across the
    # periodic faces, where its lattice is not commensurate with the cell.
    clash = (grain[nl.i] != grain[nl.j]) | np.any(nl.shifts != 0, axis=1)
    i, j = nl.i[clash], nl.j[clash]
    removed = np.zeros(len(atoms), dtype=bool)
    for a, b in zip(i, j):  # greedy, so each clash costs one atom only
        if not removed[a] and not removed[b]:
            removed[max(a, b)] = True
    return atoms[~removed]


def superalloy(
    n_cells: int = 32,
    a: float = 3.57,
    *,
    precipitate: float = 0.4,
    al_fraction: float = 0.25,
    seed: int | None = 0,
    periodic: bool = False,
):
    """Ni–Al superalloy model (ARISE thesis 6.3): fcc γ matrix, L1₂ γ′ cube in the centre.

    ``n_cells``³ cubic fcc cells of lattice constant ``a`` (Å). Matrix sites are Al with
    probability ``al_fraction`` (random solid solution), otherwise Ni. The central cube of
    edge ``precipitate`` × the sample edge is ordered L1₂ Ni₃Al (Al on cube corners, Ni on
    face centres). ``arrays["precipitate"]`` marks its atoms; ``info["precipitate_bounds"]``
    gives its [lo, hi] in Å along each axis.
    """
    from ase import Atoms

    if int(n_cells) < 1:
        raise ValueError("n_cells must be >= 1")
    if not (np.isfinite(a) and a > 0):
        raise ValueError(f"lattice constant must be a positive number of Å, got {a}")
    if not 0 <= precipitate <= 1:
        raise ValueError("precipitate is a fraction of the sample edge in [0, 1]")
    if not 0 <= al_fraction <= 1:
        raise ValueError("al_fraction must be in [0, 1]")
    n = int(n_cells)
    basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    cells = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    frac = (cells + basis[None]).reshape(-1, 3)
    site = np.tile(np.arange(4), cells.shape[0])
    positions = frac * a
    edge = n * a
    lo, hi = 0.5 * edge * (1 - precipitate), 0.5 * edge * (1 + precipitate)
    inside = np.all((positions >= lo) & (positions < hi), axis=1)
    rng = np.random.default_rng(seed)
    numbers = np.where(rng.random(len(positions)) < al_fraction, 13, 28)
    numbers[inside] = np.where(site[inside] == 0, 13, 28)
    atoms = Atoms(numbers=numbers, positions=positions, cell=[edge] * 3, pbc=periodic)
    atoms.arrays["precipitate"] = inside.astype(np.int32)
    atoms.info["precipitate_bounds"] = [lo, hi]
    return atoms
