"""Measured patterns: readers, wavelengths, background/Kα2/peaks/LP on synthetic and real data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryspext.xrd import DeltaGrid, extract_peaks, radiation, read_pattern, to_profile
from cryspext.xrd.pattern import Pattern, estimate_background, lorentz_polarization, strip_kalpha2
from cryspext.xrd.wavelengths import ANODES

pytest.importorskip("scipy")


def synthetic_pattern(structure, seed=0, fwhm=0.12, doublet=True, step=0.01):
    """A Cu Kα pattern made with pymatgen (the oracle): Kα1 + ½ Kα2 pseudo-Voigt peaks, a sloped
    background with an amorphous hump, Poisson noise. Returns (2θ, counts, pymatgen peaks)."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    k1, k2 = ANODES["Cu"]
    tt = np.arange(10, 100 + step / 2, step)
    y = 300 + 2.0 * (100 - tt) + 250 * np.exp(-0.5 * ((tt - 22) / 4) ** 2)
    peaks = XRDCalculator(wavelength=k1).get_pattern(structure, two_theta_range=(10, 100))
    for lam, weight in ((k1, 1.0), (k2, 0.5)) if doublet else ((k1, 1.0),):
        for x, h in zip(peaks.x, peaks.y):
            th = math.asin(min(1.0, math.sin(math.radians(x / 2)) * lam / k1))
            pos = math.degrees(2 * th)
            z = (tt - pos) / (fwhm / 2)
            y += weight * 80 * h * (0.5 / (1 + z**2) + 0.5 * np.exp(-math.log(2) * z**2))
    rng = np.random.default_rng(seed)
    return tt, rng.poisson(y).astype(float), peaks


@pytest.fixture(scope="module")
def corundum():
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("R-3c", Lattice.hexagonal(4.759, 12.99), ["Al", "O"],
                                     [[0, 0, 0.3523], [0.3064, 0, 0.25]])


def test_peaks_of_a_synthetic_pattern_match_pymatgen(corundum):
    tt, y, ref = synthetic_pattern(corundum)
    peaks = extract_peaks((tt, y), "CuKa")
    ref_x, ref_y = np.asarray(ref.x), np.asarray(ref.y)
    gap = np.min(np.abs(np.subtract.outer(ref_x, ref_x)) + np.eye(len(ref_x)) * 99, axis=1)
    strong = (ref_y > 3) & (gap > 0.4)  # % of the strongest peak, resolved from its neighbours
    assert strong.sum() >= 12
    # Every strong, resolved pymatgen peak is found within 0.02° ...
    dist = np.abs(peaks.two_theta[None, :] - ref_x[strong, None]).min(axis=1)
    assert np.all(dist < 0.02), ref_x[strong][dist >= 0.02]
    # ... no Kα2 ghost or noise peak is reported where pymatgen has none ...
    dist_back = np.abs(ref_x[None, :] - peaks.two_theta[:, None]).min(axis=1)
    assert np.all(dist_back < 0.1), peaks.two_theta[dist_back >= 0.1]
    # ... and the LP-corrected intensities follow pymatgen's |F|² (its intensities / LP).
    k1 = ANODES["Cu"][0]
    assert np.allclose(peaks.inv_d, 2 * np.sin(np.radians(peaks.two_theta / 2)) / k1)
    idx = np.abs(ref_x[None, :] - peaks.two_theta[:, None]).argmin(axis=1)
    f2 = ref_y[idx] / lorentz_polarization(ref_x[idx])
    f2 /= f2.max()
    sel = (gap[idx] > 0.5) & (f2 > 0.05)
    assert sel.sum() >= 8
    assert np.allclose(peaks.intensity[sel], f2[sel], rtol=0.15, atol=0.02)


def test_kalpha2_stripping_removes_the_doublet():
    tt = np.arange(20, 80, 0.01)
    k1, k2 = ANODES["Cu"]
    src = 60.0
    pos2 = math.degrees(2 * math.asin(math.sin(math.radians(src / 2)) * k2 / k1))
    g = lambda c: np.exp(-0.5 * ((tt - c) / 0.03) ** 2)  # noqa: E731
    y = 1000 * g(src) + 500 * g(pos2)
    out = strip_kalpha2(tt, y, radiation("CuKa"))
    assert out[np.abs(tt - pos2) < 0.02].max() < 30  # from 500
    assert out[np.abs(tt - src) < 0.005].max() == pytest.approx(1000, rel=0.01)
    assert np.array_equal(strip_kalpha2(tt, y, radiation("CuKa1")), y)


def test_background_follows_a_hump_under_sharp_peaks():
    tt = np.arange(10, 90, 0.02)
    bg = 500 + 300 * np.exp(-0.5 * ((tt - 25) / 5) ** 2) + 2 * tt
    y = bg.copy()
    for c in (20, 33.3, 47, 61.2, 75):
        y += 5000 * np.exp(-0.5 * ((tt - c) / 0.05) ** 2)
    y = np.random.default_rng(1).poisson(y).astype(float)
    est = estimate_background(y, int(2.0 / 0.02))
    away = np.min(np.abs(np.subtract.outer(tt, [20, 33.3, 47, 61.2, 75])), axis=1) > 0.5
    assert np.median(np.abs(est[away] - bg[away])) < 2 * np.sqrt(bg.mean()) / 3


def test_wavelengths():
    from pymatgen.analysis.diffraction.xrd import WAVELENGTHS

    for anode in ANODES:
        r = radiation(f"{anode}Ka")
        assert r.wavelength == pytest.approx(WAVELENGTHS[f"{anode}Ka1"], abs=3e-4)
        assert r.kalpha2 == pytest.approx(WAVELENGTHS[f"{anode}Ka2"], abs=3e-4)
        assert radiation(f"{anode} Kα1").kalpha2 is None
    assert radiation(1.2).wavelength == 1.2 and radiation("0.7093").kalpha2 is None
    assert radiation("cu").name == "CuKa"
    for bad in ("CuKb", "Xx", "-1", "K"):
        with pytest.raises(ValueError):
            radiation(bad)
    with pytest.raises(TypeError):
        radiation([1.54])


def test_readers(tmp_path):
    tt = np.round(np.arange(5, 60.01, 0.05), 2)
    y = 100 + 50 * np.sin(tt)
    (tmp_path / "a.xy").write_text("# comment\n2theta intensity\n" + "\n".join(f"{a} {b}" for a, b in zip(tt, y)))
    (tmp_path / "b.csv").write_text("angle,counts,esd\n" + "\n".join(f"{a},{b},1" for a, b in zip(tt, y)))
    (tmp_path / "c.dat").write_text("5 0.05 60\n" + "\n".join(f"{b:.3f}" for b in y))
    xrdml = f"""<?xml version="1.0" encoding="UTF-8"?>
<xrdMeasurements xmlns="http://www.xrdml.com/XRDMeasurement/1.5">
 <xrdMeasurement measurementType="Scan">
  <usedWavelength intended="K-Alpha 1"><kAlpha1 unit="Angstrom">1.5405980</kAlpha1>
   <kAlpha2 unit="Angstrom">1.5444260</kAlpha2><ratioKAlpha2KAlpha1>0.5000</ratioKAlpha2KAlpha1></usedWavelength>
  <scan><dataPoints>
   <positions axis="2Theta" unit="deg"><startPosition>5.00</startPosition><endPosition>60.00</endPosition></positions>
   <positions axis="Omega" unit="deg"><startPosition>2.5</startPosition><endPosition>30</endPosition></positions>
   <intensities unit="counts">{" ".join(f"{b:.3f}" for b in y)}</intensities>
  </dataPoints></scan>
 </xrdMeasurement>
</xrdMeasurements>"""
    (tmp_path / "d.xrdml").write_text(xrdml)
    for name in ("a.xy", "b.csv", "c.dat", "d.xrdml"):
        p = read_pattern(tmp_path / name)
        assert np.allclose(p.two_theta, tt, atol=1e-6), name
        assert np.allclose(p.intensity, y, atol=1e-3), name
    assert read_pattern(tmp_path / "d.xrdml").info["kAlpha2"] == pytest.approx(1.544426)
    with pytest.raises(ValueError, match="wavelength"):
        extract_peaks(tmp_path / "a.xy", None)

    (tmp_path / "bad.xy").write_text("no numbers here\n")
    (tmp_path / "short.dat").write_text("5 0.05 60\n1\n2\n3\n4\n")
    (tmp_path / "bad.xrdml").write_text("<xrdMeasurements><oops>")
    for name in ("bad.xy", "short.dat", "bad.xrdml", "missing.xy"):
        with pytest.raises(ValueError):
            read_pattern(tmp_path / name)
    with pytest.raises(ValueError):
        Pattern(np.arange(30.0), np.ones(29))
    with pytest.raises(ValueError):
        Pattern(np.linspace(0, 10, 30), np.ones(30))  # 2θ = 0
    with pytest.raises(ValueError, match="no peaks"):
        extract_peaks((np.linspace(10, 80, 500), np.full(500, 100.0)), "CuKa")


def test_to_profile_bins_on_the_grid():
    from cryspext.xrd.pattern import Peaks

    g = DeltaGrid(0.1, 1.0, 91)
    peaks = Peaks(np.array([20.0, 30.0, 31.0]), np.array([0.2, 0.5, 0.5004]), np.ones(3), np.ones(3),
                  np.array([0.5, 1.0, 0.5]), radiation("CuKa"))
    prof = to_profile(peaks, g)
    assert prof.shape == (91,) and prof.max() == 1.0
    assert prof[10] == pytest.approx(1 / 3) and prof[40] == 1.0 and prof.sum() == pytest.approx(4 / 3)


def test_measured_mno_peaks_index_as_rock_salt(shared_data):
    """MnO (rock salt, a ≈ 4.445 Å): the automatic peaks are the fcc reflections, Kα2 removed."""
    path = shared_data / "xrd_measured" / "MnO.xy"
    peaks = extract_peaks(path, "CuKa")
    a = 4.445
    strong = peaks.intensity > 0.1
    hkl2 = (peaks.inv_d[strong] * a) ** 2
    assert np.allclose(hkl2, np.rint(hkl2), atol=0.1)
    assert set(np.rint(hkl2).astype(int)) >= {3, 4, 8, 11, 12}
    assert strong.sum() == len(set(np.rint(hkl2).astype(int)))  # no doublets left


@pytest.mark.parametrize("name", ["MnO.xy", "TiO2.xy", "MnO2.xy", "LiMnO2.xy", "Mn2O3.xy",
                                  "xrd_measurement_TaCr2O6.dat"])
def test_measured_single_phase_patterns_give_peaks(shared_data, name):
    peaks = extract_peaks(shared_data / "xrd_measured" / name, "CuKa")
    assert 5 <= len(peaks) <= 80
    assert np.all(np.diff(peaks.two_theta) > 0) and peaks.intensity.max() == 1.0
    assert np.all((peaks.inv_d > 0.1) & (peaks.inv_d < 1.1))
