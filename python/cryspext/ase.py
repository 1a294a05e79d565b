"""ASE front door: ARISE structure recognition as a calculator-like object.

    >>> from cryspext.ase import AriseClassifier
    >>> clf = AriseClassifier()
    >>> clf.get_property("label", atoms)            # global class of the structure
    >>> clf.annotate(atoms)                          # per-atom labels, probabilities, MI in atoms.arrays
    >>> ase.io.write("out.extxyz", atoms)            # round-trips the annotations

The classifier never replaces ``atoms.calc``: energies and forces stay with the user's
calculator. Results are cached until the atoms change (positions, numbers, cell or pbc).
Small periodic cells are classified as a whole; large samples with strided pattern matching
(:func:`cryspext.spm.spm`), whose box maps are projected on the atoms.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .spm import spm
from .spm.mc import predict_structure
from .structure import as_structure

__all__ = ["AriseClassifier", "PREFIX"]

PREFIX = "arise_"  # keys written to atoms.arrays / atoms.info


class AriseClassifier:
    """Calculator-like ARISE classifier.

    ``mode``: ``"global"`` (one classification of the whole structure, all atoms share it),
    ``"spm"`` (strided pattern matching with ``box``/``stride`` Å, per-atom results from the
    boxes containing each atom) or ``"auto"`` (SPM when the sample is larger than a box along
    every non-slab axis and has at least ``spm_min_atoms`` atoms). ``mc_samples``: MC-dropout
    passes (thesis: 1000). ``model``/``descriptor``/``structure_descriptor`` replace the shipped
    ARISE network, the box SOAP and the whole-structure SOAP (for tests and custom models);
    extra keyword arguments go to :func:`cryspext.spm.spm`.
    """

    implemented_properties = [
        "label",
        "probabilities",
        "mutual_information",
        "predictive_entropy",
        "class_fractions",
        "labels",
        "atom_probabilities",
        "atom_mutual_information",
    ]

    def __init__(
        self,
        mode: str = "auto",
        *,
        box: float = 16.0,
        stride: float = 3.0,
        mc_samples: int = 1000,
        seed: int | None = 0,
        spm_min_atoms: int = 500,
        model=None,
        descriptor: Callable | None = None,
        structure_descriptor: Callable | None = None,
        **spm_kwargs,
    ):
        if mode not in ("auto", "global", "spm"):
            raise ValueError(f"mode must be 'auto', 'global' or 'spm', got {mode!r}")
        if isinstance(mc_samples, bool) or not isinstance(mc_samples, (int, np.integer)) or mc_samples < 1:
            raise ValueError(f"mc_samples must be a positive integer, got {mc_samples!r}")
        if float(box) <= 0 or float(stride) <= 0:
            raise ValueError("box and stride must be positive lengths in Å")
        self.mode = mode
        self.parameters = dict(box=float(box), stride=float(stride), mc_samples=int(mc_samples), seed=seed,
                               spm_min_atoms=int(spm_min_atoms), **spm_kwargs)
        self.model = model
        self.descriptor = descriptor
        self.structure_descriptor = structure_descriptor
        self.results: dict = {}
        self.spm_result = None
        self._state = None

    def __repr__(self) -> str:
        return f"AriseClassifier(mode={self.mode!r}, box={self.parameters['box']}, stride={self.parameters['stride']})"

    # -- calculator protocol ------------------------------------------------------------------
    @staticmethod
    def _fingerprint(atoms):
        return (np.array(atoms.get_positions()), np.array(atoms.get_atomic_numbers()),
                np.array(atoms.get_cell()), np.array(atoms.get_pbc()))

    def check_state(self, atoms) -> bool:
        """True when ``atoms`` differ from the ones the cached results belong to."""
        if self._state is None:
            return True
        new = self._fingerprint(atoms)
        return any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(new, self._state))

    def reset(self) -> None:
        """Forget cached results."""
        self.results, self.spm_result, self._state = {}, None, None

    def get_property(self, name: str, atoms=None, allow_calculation: bool = True):
        """One of ``implemented_properties`` for ``atoms`` (computed once, then cached)."""
        if name not in self.implemented_properties:
            raise ValueError(f"{name!r} is not one of {self.implemented_properties}")
        if atoms is None:
            if self._state is None:
                raise ValueError("no atoms given and nothing computed yet")
        elif self.check_state(atoms):
            if not allow_calculation:
                return None
            self.calculate(atoms)
        return self.results[name]

    def _resolve_mode(self, s) -> str:
        if self.mode != "auto":
            return self.mode
        extent = np.ptp(s.positions, axis=0)
        big = np.sum(extent > self.parameters["box"]) >= 2  # a slab counts: two axes beyond the box
        return "spm" if big and len(s) >= self.parameters["spm_min_atoms"] else "global"

    def calculate(self, atoms) -> dict:
        """Classify ``atoms`` and cache the results (does not touch ``atoms.calc``)."""
        s = as_structure(atoms)
        if len(s) == 0:
            raise ValueError("cannot classify a structure with no atoms")
        mode = self._resolve_mode(s)
        p = self.parameters
        if mode == "global":
            model = self.model if self.model is not None else _default_model()
            r = predict_structure(model, s, mc_samples=p["mc_samples"], seed=p["seed"],
                                  descriptor=self.structure_descriptor)
            classes = list(model.classes)
            probs = r.probabilities[0]
            label = classes[int(np.argmax(probs))]
            n = len(s)
            self.spm_result = None
            self.results = {
                "label": label,
                "probabilities": probs,
                "mutual_information": float(r.mutual_information[0]),
                "predictive_entropy": float(r.predictive_entropy[0]),
                "class_fractions": {label: 1.0},
                "labels": np.array([label] * n, dtype=object),
                "atom_probabilities": np.repeat(probs[None], n, axis=0),
                "atom_mutual_information": np.full(n, float(r.mutual_information[0])),
            }
        else:
            kw = {k: v for k, v in p.items() if k not in ("spm_min_atoms",)}
            kw.setdefault("progress", False)
            res = spm(s, model=self.model, descriptor=self.descriptor, **kw)
            pa = res.per_atom()
            fractions = res.class_fractions()
            if not fractions:
                raise ValueError("no box holds enough atoms for SPM; use mode='global' or a smaller min_atoms")
            label = next(iter(fractions))
            valid = res.valid
            probs = np.nanmean(res.probabilities[:, valid], axis=1)
            self.spm_result = res
            self.results = {
                "label": label,
                "probabilities": probs,
                "mutual_information": float(np.nanmean(res.mutual_information[valid])),
                "predictive_entropy": float(np.nanmean(res.predictive_entropy[valid])),
                "class_fractions": fractions,
                "labels": pa.label_names,
                "atom_probabilities": pa.probabilities,
                "atom_mutual_information": pa.mutual_information,
            }
        self.results["classes"] = list(self.spm_result.classes if self.spm_result is not None else
                                       (self.model if self.model is not None else _default_model()).classes)
        self.results["mode"] = mode
        self._state = self._fingerprint(atoms)
        return self.results

    # -- annotation ---------------------------------------------------------------------------
    def annotate(self, atoms, *, probabilities: bool = False, prefix: str = PREFIX):
        """Write results into ``atoms`` (in place) and return it.

        ``atoms.arrays``: ``arise_label`` (str), ``arise_top_probability``,
        ``arise_mutual_information`` (nats) and, with ``probabilities=True``,
        ``arise_probabilities`` (n_atoms, n_classes). ``atoms.info``: ``arise_label``,
        ``arise_mutual_information``, ``arise_predictive_entropy``, ``arise_mode`` and, for SPM,
        ``arise_fractions`` (JSON of class fractions of the boxes). All survive an extxyz
        round trip.
        """
        import json

        if self.check_state(atoms):
            self.calculate(atoms)
        r = self.results
        labels = np.array([str(x) for x in r["labels"]], dtype="U")
        atoms.arrays[prefix + "label"] = labels
        atoms.arrays[prefix + "top_probability"] = np.nan_to_num(np.nanmax(r["atom_probabilities"], axis=1)).astype(float)
        atoms.arrays[prefix + "mutual_information"] = np.asarray(r["atom_mutual_information"], dtype=float)
        if probabilities:
            atoms.arrays[prefix + "probabilities"] = np.asarray(r["atom_probabilities"], dtype=float)
            atoms.info[prefix + "classes"] = " ".join(r["classes"])
        atoms.info[prefix + "label"] = r["label"]
        atoms.info[prefix + "mutual_information"] = float(r["mutual_information"])
        atoms.info[prefix + "predictive_entropy"] = float(r["predictive_entropy"])
        atoms.info[prefix + "mode"] = r["mode"]
        if r["mode"] == "spm":
            atoms.info[prefix + "fractions"] = json.dumps({k: round(v, 6) for k, v in r["class_fractions"].items()})
        # The fingerprint is unchanged: annotating does not invalidate the cache.
        return atoms


def _default_model():
    from .arise import load_model

    return load_model()
