"""One internal representation of an atomic structure, built from what users hold.

`as_structure` accepts an ASE ``Atoms``, a pymatgen ``Structure``/``Molecule``/``IStructure``,
an OVITO ``DataCollection``, a path to any file ``ase.io.read`` understands, or a
:class:`Structure` itself. Every public function of cryspext calls it on its input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Structure", "as_structure"]

# Z = 1..118; cryspext refuses anything else with a clear message.
MAX_ATOMIC_NUMBER = 118


@dataclass(frozen=True)
class Structure:
    """Positions (Å, shape (n, 3)), cell vectors as rows (Å, (3, 3)), pbc (3,) and atomic numbers (n,).

    Non-periodic directions may have a zero cell vector. Arrays are validated on creation:
    shapes, finite values, known elements, and a non-singular cell along periodic directions.
    """

    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    numbers: np.ndarray
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        positions = np.ascontiguousarray(self.positions, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3:
            if positions.size == 0:
                positions = positions.reshape(0, 3)
            else:
                raise ValueError(f"positions must have shape (n_atoms, 3), got {positions.shape}")
        cell = np.ascontiguousarray(self.cell, dtype=np.float64)
        if cell.shape != (3, 3):
            raise ValueError(f"cell must have shape (3, 3), got {cell.shape}")
        pbc = np.asarray(self.pbc, dtype=bool).reshape(-1)
        if pbc.size == 1:
            pbc = np.repeat(pbc, 3)
        if pbc.shape != (3,):
            raise ValueError(f"pbc must have 3 entries, got {pbc.shape}")
        numbers = np.ascontiguousarray(self.numbers, dtype=np.int32).reshape(-1)
        if numbers.shape[0] != positions.shape[0]:
            raise ValueError(
                f"{numbers.shape[0]} atomic numbers for {positions.shape[0]} positions"
            )
        if not np.all(np.isfinite(positions)):
            bad = int(np.argwhere(~np.isfinite(positions))[0, 0])
            raise ValueError(f"position of atom {bad} is not finite (NaN or inf)")
        if np.any((numbers < 1) | (numbers > MAX_ATOMIC_NUMBER)):
            bad = int(numbers[(numbers < 1) | (numbers > MAX_ATOMIC_NUMBER)][0])
            raise ValueError(f"unknown element with atomic number {bad}")
        if np.any(pbc):
            if not np.all(np.isfinite(cell[pbc])):
                raise ValueError("cell vectors along periodic directions must be finite")
            periodic = cell[pbc]
            # Singular: the periodic vectors do not span as many dimensions as there are.
            scale = np.prod(np.linalg.norm(periodic, axis=1))
            gram = periodic @ periodic.T
            if scale == 0 or np.linalg.det(gram) <= (1e-10 * scale) ** 2:
                raise ValueError(
                    "cell is singular along its periodic directions "
                    f"(pbc={pbc.tolist()}, cell={cell.tolist()})"
                )
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "pbc", pbc)
        object.__setattr__(self, "numbers", numbers)

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def symbols(self) -> list[str]:
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in self.numbers]

    @property
    def volume(self) -> float:
        """Cell volume in Å³ (meaningful when all directions are periodic)."""
        return float(abs(np.linalg.det(self.cell)))

    def to_ase(self):
        """The structure as an ASE ``Atoms``."""
        from ase import Atoms

        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)

    def to_pymatgen(self):
        """A pymatgen ``Structure`` (all periodic) or ``Molecule`` (none periodic)."""
        if np.all(self.pbc):
            from pymatgen.core import Lattice
            from pymatgen.core import Structure as PmgStructure

            return PmgStructure(
                Lattice(self.cell), self.numbers.tolist(), self.positions, coords_are_cartesian=True
            )
        if not np.any(self.pbc):
            from pymatgen.core import Molecule

            return Molecule(self.numbers.tolist(), self.positions)
        raise ValueError("pymatgen has no mixed-periodicity structure; use to_ase()")


def _from_ase(atoms) -> Structure:
    return Structure(
        atoms.get_positions(), np.asarray(atoms.get_cell()), atoms.get_pbc(), atoms.get_atomic_numbers()
    )


def _from_pymatgen(obj) -> Structure:
    if not obj.is_ordered:
        raise ValueError(
            "disordered pymatgen structures (partial occupancies) are not supported here; "
            "order them first (e.g. OrderDisorderedStructureTransformation)"
        )
    numbers = [site.specie.Z for site in obj]
    if hasattr(obj, "lattice"):
        return Structure(obj.cart_coords, obj.lattice.matrix, [True] * 3, numbers)
    return Structure(obj.cart_coords, np.zeros((3, 3)), [False] * 3, numbers)


def _from_ovito(data) -> Structure:
    particles = data.particles
    positions = np.asarray(particles.positions)
    if "Particle Type" in particles:
        types = particles.particle_types
        numbers = []
        from ase.data import atomic_numbers

        names = {t.id: t.name for t in types.types}
        for type_id in np.asarray(types):
            name = names.get(int(type_id), "")
            if name not in atomic_numbers:
                raise ValueError(f"OVITO particle type {name!r} is not an element symbol")
            numbers.append(atomic_numbers[name])
    else:
        raise ValueError("OVITO data has no 'Particle Type' property to read elements from")
    if data.cell is not None:
        matrix = np.asarray(data.cell[...])  # (3, 4): columns are cell vectors, then the origin
        cell = matrix[:, :3].T.copy()  # OVITO stores vectors as columns, cryspext as rows
        origin = matrix[:, 3]
        pbc = np.asarray(data.cell.pbc, dtype=bool)
        positions = positions - origin
    else:
        cell = np.zeros((3, 3))
        pbc = np.zeros(3, dtype=bool)
    return Structure(positions, cell, pbc, numbers)


def as_structure(obj: Any) -> Structure:
    """Convert ``obj`` (ASE, pymatgen, OVITO, file path or :class:`Structure`) to a :class:`Structure`.

    Raises ``TypeError`` for unsupported objects and ``ValueError`` for invalid content or an
    unreadable file.
    """
    if isinstance(obj, Structure):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.exists():
            raise ValueError(f"no such file: {path}")
        import ase.io

        try:
            atoms = ase.io.read(path)
        except Exception as exc:  # ASE raises many kinds of errors for malformed files
            raise ValueError(f"could not read structure from {path}: {exc}") from exc
        if isinstance(atoms, list):
            atoms = atoms[-1]
        return _from_ase(atoms)
    from ase import Atoms

    # Subclasses first: pymatgen's MSONAtoms is an ase.Atoms living in a pymatgen module.
    if isinstance(obj, Atoms):
        return _from_ase(obj)
    module = type(obj).__module__
    if module.startswith("ase"):
        return _from_ase(obj)
    if module.startswith("pymatgen"):
        return _from_pymatgen(obj)
    if module.startswith("ovito"):
        return _from_ovito(obj)
    # Duck typing for subclasses living elsewhere.
    if hasattr(obj, "get_positions") and hasattr(obj, "get_atomic_numbers"):
        return _from_ase(obj)
    if hasattr(obj, "cart_coords") and hasattr(obj, "species"):
        return _from_pymatgen(obj)
    raise TypeError(
        f"cannot interpret {type(obj).__name__} as a structure; pass an ase.Atoms, a pymatgen "
        "Structure/Molecule, an OVITO DataCollection, a file path or a cryspext.Structure"
    )
