"""``AriseModifier``: ARISE classes and uncertainty per particle, as an OVITO pipeline modifier.

Output:
- particle properties ``ARISE Class`` (typed: one named, coloured type per class found, type 0
  "unassigned"), ``ARISE MI`` (mutual information, nats), ``ARISE Probability`` (probability of
  the assigned class) and ``Color`` (by class or by MI);
- global attributes ``ARISE.MainClass``, ``ARISE.MeanMI``, ``ARISE.Boxes``, ``ARISE.ValidBoxes``;
- a bar-chart DataTable ``arise-fractions``: fraction of boxes assigned to each class.

The classification is cached per input (positions, types, cell) and per computing parameter;
changing only the colouring parameters recolours without recomputing.
"""

from __future__ import annotations

import hashlib

import numpy as np
from ovito.data import DataCollection, DataTable, ParticleType
from ovito.pipeline import ModifierInterface
from traits.api import Bool, Enum, Float, Int, Range

__all__ = ["AriseModifier"]

MI_COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "coolwarm")


def _class_colours(n: int) -> np.ndarray:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return np.array([cmap(i % cmap.N)[:3] for i in range(n)])


class AriseModifier(ModifierInterface):
    """Strided pattern matching with ARISE (cryspext.spm) on the particles of a pipeline."""

    box = Float(16.0, label="Box edge (Å)")
    stride = Float(3.0, label="Stride (Å)")
    mc_samples = Range(low=1, high=100000, value=1000, label="MC-dropout passes")
    adaptive = Bool(True, label="Stop sampling converged boxes")
    min_atoms = Int(20, label="Minimum atoms per box")
    color_by = Enum("class", "MI", label="Colour by")
    mi_colormap = Enum(*MI_COLORMAPS, label="MI colour map")
    mi_max = Float(0.0, label="MI colour range max (0: automatic)")

    # Parameters that change the classification (everything else only changes colours).
    _COMPUTE = ("box", "stride", "mc_samples", "adaptive", "min_atoms")

    def __init__(self, *, model=None, descriptor=None, **traits):
        super().__init__(**traits)
        # Stand-ins for the shipped ARISE network and SOAP (tests, custom models); not traits,
        # so OVITO Pro shows no widget for them.
        self._model = model
        self._descriptor = descriptor
        self._cache_key = None
        self._cache = None
        self.n_computations = 0

    def _key(self, structure) -> str:
        h = hashlib.sha1()
        for a in (structure.positions, structure.numbers, structure.cell, structure.pbc):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(repr([getattr(self, k) for k in self._COMPUTE]).encode())
        return h.hexdigest()

    def modify(self, data: DataCollection, *, frame: int = 0, **kwargs):
        from cryspext import as_structure
        from cryspext.spm import iter_spm

        if data.particles is None or data.particles.count == 0:
            raise RuntimeError("ARISE: the pipeline has no particles")
        structure = as_structure(data)
        key = self._key(structure)
        if key != self._cache_key:
            yield "ARISE: classifying boxes"
            result = yield from iter_spm(
                structure,
                self.box,
                self.stride,
                mc_samples=int(self.mc_samples),
                adaptive=bool(self.adaptive),
                min_atoms=int(self.min_atoms),
                model=self._model,
                descriptor=self._descriptor,
            )
            per_atom = result.per_atom()
            self._cache = (result, per_atom)
            self._cache_key = key
            self.n_computations += 1
        result, per_atom = self._cache
        self._write(data, result, per_atom)

    def _write(self, data: DataCollection, result, per_atom) -> None:
        classes = list(result.classes)
        labels = per_atom.labels
        # Same palette as SPMResult.plot: classes found in the box maps, in class order; a class
        # that only the per-atom projection produces comes after them.
        present = [int(c) for c in np.unique(result.labels) if c >= 0]
        present += [int(c) for c in np.unique(labels) if c >= 0 and c not in present]
        colours = _class_colours(max(len(present), 1))
        type_id = np.zeros(len(labels), dtype=np.int32)  # 0: no class (no valid box)
        particles = data.particles_
        prop = particles.create_property("ARISE Class", dtype=int, components=1)
        prop.types.append(ParticleType(id=0, name="unassigned", color=(0.6, 0.6, 0.6)))
        for i, c in enumerate(present):
            type_id[labels == c] = i + 1
            prop.types.append(ParticleType(id=i + 1, name=classes[c], color=tuple(colours[i])))
        prop[...] = type_id
        mi = np.nan_to_num(per_atom.mutual_information.astype(float), nan=0.0)
        top = np.nan_to_num(per_atom.top_probability.astype(float), nan=0.0)
        particles.create_property("ARISE MI", data=mi)
        particles.create_property("ARISE Probability", data=top)

        if self.color_by == "class":
            palette = np.vstack([[0.6, 0.6, 0.6], colours])
            rgb = palette[type_id]
        else:
            import matplotlib

            top_mi = self.mi_max if self.mi_max > 0 else max(float(mi.max()), 1e-6)
            rgb = matplotlib.colormaps[self.mi_colormap](np.clip(mi / top_mi, 0, 1))[:, :3]
        particles.create_property("Color", data=rgb)

        fractions = result.class_fractions()
        data.attributes["ARISE.MainClass"] = next(iter(fractions), "")
        valid = result.valid
        data.attributes["ARISE.MeanMI"] = float(np.nanmean(result.mutual_information[valid])) if valid.any() else float("nan")
        data.attributes["ARISE.Boxes"] = int(valid.size)
        data.attributes["ARISE.ValidBoxes"] = int(valid.sum())

        table = data.tables.create(identifier="arise-fractions", title="ARISE class fractions (boxes)",
                                   plot_mode=DataTable.PlotMode.BarChart)
        names = list(fractions)
        x = table.create_property("Class", data=np.arange(len(names), dtype=np.int32))
        for i, name in enumerate(names):
            x.types.append(ParticleType(id=i, name=name))
        table.x = x
        table.y = table.create_property("Fraction", data=np.array([fractions[n] for n in names], dtype=float))
