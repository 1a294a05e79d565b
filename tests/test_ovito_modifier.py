"""The OVITO modifier (ovito_modifier/) in a real ovito Pipeline, with stand-in model/descriptor."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from test_spm_support import TinyMCModel, rdf_descriptor

ovito = pytest.importorskip("ovito")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ovito_modifier"))  # when not pip-installed

from ovito.io.ase import ase_to_ovito  # noqa: E402
from ovito.pipeline import Pipeline, StaticSource  # noqa: E402

from cryspext.build import polycrystal  # noqa: E402
from cryspext.spm import spm  # noqa: E402
from cryspext_ovito import AriseModifier  # noqa: E402


@pytest.fixture(scope="module")
def atoms():
    return polycrystal((40.0, 40.0, 10.0), ("fcc", "bcc"), seed=3)


@pytest.fixture(scope="module")
def model():
    return TinyMCModel(13, p=0.2)


@pytest.fixture()
def pipeline(atoms, model):
    p = Pipeline(source=StaticSource(data=ase_to_ovito(atoms)))
    mod = AriseModifier(box=10.0, stride=3.0, mc_samples=60, model=model, descriptor=rdf_descriptor)
    p.modifiers.append(mod)
    return p, mod


def test_outputs_match_spm(pipeline, atoms, model):
    pipeline, mod = pipeline
    data = pipeline.compute()
    ref = spm(atoms, box=10.0, stride=3.0, mc_samples=60, model=model, descriptor=rdf_descriptor, progress=False)
    pa = ref.per_atom()
    cls = data.particles["ARISE Class"]
    names = {t.id: t.name for t in cls.types}
    assert names[0] == "unassigned"
    got = np.array([names[i] for i in np.asarray(cls)])
    assert list(got) == list(pa.label_names)
    np.testing.assert_allclose(np.asarray(data.particles["ARISE MI"]), pa.mutual_information, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(data.particles["ARISE Probability"]), pa.top_probability, rtol=1e-5)
    assert data.attributes["ARISE.MainClass"] == next(iter(ref.class_fractions()))
    assert data.attributes["ARISE.ValidBoxes"] == int(ref.valid.sum())
    table = data.tables["arise-fractions"]
    assert np.asarray(table.y).sum() == pytest.approx(1.0)
    assert [t.name for t in table.x.types] == list(ref.class_fractions())
    # Class colours: one colour per type, particles coloured by their type.
    colours = np.asarray(data.particles["Color"])
    type_colour = {t.id: np.array(t.color) for t in cls.types}
    np.testing.assert_allclose(colours[:50], np.array([type_colour[i] for i in np.asarray(cls)[:50]]), atol=1e-6)
    assert mod.n_computations == 1


def test_colour_change_does_not_recompute(pipeline):
    pipeline, mod = pipeline
    before = np.asarray(pipeline.compute().particles["Color"]).copy()
    n = mod.n_computations
    mod.color_by = "MI"
    mod.mi_colormap = "magma"
    after = pipeline.compute()
    assert mod.n_computations == n
    assert not np.allclose(np.asarray(after.particles["Color"]), before)
    mi = np.asarray(after.particles["ARISE MI"])
    hi, lo = np.argmax(mi), np.argmin(mi)
    assert not np.allclose(after.particles["Color"][hi], after.particles["Color"][lo])
    mod.stride = 4.0  # a computing parameter: recompute
    pipeline.compute()
    assert mod.n_computations == n + 1


def test_progress_is_reported_by_yield(atoms, model):
    from ovito.io.ase import ase_to_ovito as to_ovito

    mod = AriseModifier(box=10.0, stride=3.0, mc_samples=20, model=model, descriptor=rdf_descriptor)
    steps = list(mod.modify(to_ovito(atoms), frame=0))
    floats = [s for s in steps if isinstance(s, float)]
    assert floats and floats[-1] == pytest.approx(1.0)
    assert any(isinstance(s, str) for s in steps)


def test_bad_parameters_rejected():
    from traits.api import TraitError

    with pytest.raises(TraitError):
        AriseModifier(color_by="rainbow")
    with pytest.raises(TraitError):
        AriseModifier(mc_samples=0)


def test_entry_point_declared():
    text = (Path(__file__).resolve().parents[1] / "ovito_modifier" / "pyproject.toml").read_text()
    assert '[project.entry-points."OVITO.Modifier"]' in text and "cryspext_ovito:AriseModifier" in text
    from importlib.metadata import entry_points

    found = [e for e in entry_points(group="OVITO.Modifier") if e.value == "cryspext_ovito:AriseModifier"]
    if not found:
        pytest.skip("cryspext-ovito is not pip-installed here")
    assert found[0].load() is AriseModifier


def test_render_png_with_tachyon(tmp_path, pipeline):
    from ovito.vis import TachyonRenderer, Viewport

    pipeline, mod = pipeline
    mod.color_by = "class"
    pipeline.add_to_scene()
    try:
        vp = Viewport(type=Viewport.Type.Top)
        vp.zoom_all()
        out = tmp_path / "render.png"
        try:
            vp.render_image(size=(240, 180), filename=str(out), renderer=TachyonRenderer())
        except RuntimeError as exc:  # no Vulkan/OpenGL driver on this machine
            pytest.skip(f"OVITO cannot render here: {exc}")
    finally:
        pipeline.remove_from_scene()
    from PIL import Image

    img = np.asarray(Image.open(out).convert("RGB"), dtype=float)
    assert img.shape == (180, 240, 3)
    assert img.std() > 5  # not a blank frame
