"""Measured powder patterns (Scheme 2 of the SpgVolNet seed): read, clean, find peaks, convert.

Pipeline of :func:`extract_peaks`, every step automatic:

1. background: morphological opening over ``background_width`` (° 2θ), lifted to the noise mean;
2. Kα2 stripping (Rachinger): I1(2θ) = I(2θ) - R·I1(2θ'), 2θ' the Kα1 angle whose Kα2 line falls at 2θ;
3. peaks: Savitzky–Golay smoothing, then local maxima whose prominence exceeds ``min_snr`` times the
   noise (robust MAD of the residual) and ``min_relative`` times the strongest peak; positions refined
   by a parabola through the three highest points;
4. intensity: height × FWHM (∝ integrated intensity), divided by the Lorentz–polarisation factor
   (1 + cos² 2θ) / (sin² θ cos θ);
5. 2θ -> 1/d = 2 sin θ / λ1 (Å⁻¹), then (``to_profile``) binned onto the model's 1/d grid.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .profile import DeltaGrid
from .wavelengths import Radiation, radiation

__all__ = ["Pattern", "Peaks", "read_pattern", "extract_peaks", "estimate_background", "strip_kalpha2",
           "lorentz_polarization", "to_profile"]


@dataclass(frozen=True)
class Pattern:
    """A measured pattern: 2θ (degrees, increasing) and intensity (counts), plus what the file said."""

    two_theta: np.ndarray
    intensity: np.ndarray
    source: str = ""
    info: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        tt = np.asarray(self.two_theta, dtype=float).reshape(-1)
        y = np.asarray(self.intensity, dtype=float).reshape(-1)
        if tt.shape != y.shape:
            raise ValueError(f"2θ and intensity differ in length ({tt.size} vs {y.size})")
        ok = np.isfinite(tt) & np.isfinite(y)
        tt, y = tt[ok], y[ok]
        if tt.size < 20:
            raise ValueError(f"a pattern needs at least 20 points with finite values, got {tt.size}")
        order = np.argsort(tt, kind="stable")
        tt, y = tt[order], y[order]
        if tt[0] <= 0 or tt[-1] >= 180:
            raise ValueError(f"2θ must lie in (0, 180) degrees, got {tt[0]:g}..{tt[-1]:g}")
        if np.any(np.diff(tt) <= 0):
            raise ValueError("2θ values repeat")
        object.__setattr__(self, "two_theta", tt)
        object.__setattr__(self, "intensity", y)


@dataclass(frozen=True)
class Peaks:
    """Peaks extracted from a pattern. ``intensity`` is LP-corrected and normalised to max 1."""

    two_theta: np.ndarray  # degrees
    inv_d: np.ndarray  # Å⁻¹
    height: np.ndarray  # counts above background, Kα2 stripped
    fwhm: np.ndarray  # degrees 2θ
    intensity: np.ndarray  # height × FWHM / LP, max 1
    radiation: Radiation

    def __len__(self) -> int:
        return int(self.two_theta.size)

    @property
    def d(self) -> np.ndarray:
        return 1.0 / self.inv_d

    def as_dicts(self) -> list[dict]:
        return [
            {"two_theta_deg": float(t), "d_A": float(1 / g), "inv_d_per_A": float(g), "height": float(h),
             "fwhm_deg": float(w), "intensity": float(i)}
            for t, g, h, w, i in zip(self.two_theta, self.inv_d, self.height, self.fwhm, self.intensity)
        ]


# ----------------------------------------------------------------------------- readers


def _numbers(line: str) -> list[float] | None:
    parts = [p for p in re.split(r"[\s,;]+", line.strip()) if p]
    if not parts:
        return None
    try:
        return [float(p) for p in parts]
    except ValueError:
        return None


def _read_text(path: Path) -> Pattern:
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        if line.lstrip().startswith(("#", "!", "'", ";", "//")):
            continue
        nums = _numbers(line)
        if nums is None:
            if rows:  # text after the data block: stop
                break
            continue  # header lines
        rows.append(nums)
    if not rows:
        raise ValueError(f"{path}: no numeric data found")
    widths = {len(r) for r in rows[1:]}
    # start/step/stop header followed by intensities (one or more per line, never two columns).
    if len(rows[0]) == 3 and len(rows) > 3 and 2 not in widths and widths != {3}:
        start, step, stop = rows[0]
        y = np.array([v for r in rows[1:] for v in r])
        n_expected = int(round((stop - start) / step)) + 1 if step > 0 and stop > start else -1
        if abs(n_expected - y.size) > max(2, y.size // 100):
            raise ValueError(f"{path}: header 'start step stop' = {rows[0]} promises {n_expected} points, found {y.size}")
        return Pattern(start + step * np.arange(y.size), y, str(path), {"format": "start-step-stop"})
    good = [r for r in rows if len(r) >= 2]
    if len(good) < 20:
        raise ValueError(f"{path}: expected two columns (2θ, intensity); found {len(good)} usable rows")
    data = np.array([r[:2] for r in good])
    return Pattern(data[:, 0], data[:, 1], str(path), {"format": "columns", "columns": max(len(r) for r in good)})


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read_xrdml(path: Path) -> Pattern:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid XRDML/XML ({exc})") from exc
    info: dict = {"format": "xrdml"}
    for el in root.iter():
        tag = _strip_ns(el.tag)
        if tag in ("kAlpha1", "kAlpha2", "ratioKAlpha2KAlpha1") and el.text and tag not in info:
            info[tag] = float(el.text)
    data_points = next((el for el in root.iter() if _strip_ns(el.tag) == "dataPoints"), None)
    if data_points is None:
        raise ValueError(f"{path}: no <dataPoints> element")
    tt = None
    y = None
    for el in data_points:
        tag = _strip_ns(el.tag)
        if tag == "positions" and el.get("axis", "").lower() in ("2theta", "2theta-omega", "2theta/omega"):
            children = {_strip_ns(c.tag): c.text for c in el}
            if "listPositions" in children:
                tt = np.array(children["listPositions"].split(), dtype=float)
            elif "startPosition" in children and "endPosition" in children:
                tt = (float(children["startPosition"]), float(children["endPosition"]))
        elif tag in ("intensities", "counts"):
            y = np.array(el.text.split(), dtype=float)
    if tt is None or y is None:
        raise ValueError(f"{path}: XRDML without 2Theta positions or intensities")
    if isinstance(tt, tuple):
        tt = np.linspace(tt[0], tt[1], y.size)
    return Pattern(tt, y, str(path), info)


def read_pattern(path) -> Pattern:
    """Read a pattern: two-column 2θ/intensity text (.xy, .csv, .dat, .txt; extra columns ignored),
    a start-step-stop .dat (first line "start step stop", then intensities) or PANalytical .xrdml.

    An XRDML file's Kα1/Kα2 wavelengths are kept in ``info`` (``kAlpha1``, ``kAlpha2``, Å).
    """
    if isinstance(path, Pattern):
        return path
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such pattern file: {p}")
    if p.suffix.lower() == ".xrdml":
        return _read_xrdml(p)
    head = p.read_bytes()[:200].lstrip()
    if head.startswith(b"<?xml") or head.startswith(b"<xrdMeasurements"):
        return _read_xrdml(p)
    return _read_text(p)


# ----------------------------------------------------------------------------- processing
def estimate_background(y: np.ndarray, width: int, smooth: int = 9, iterations: int = 4) -> np.ndarray:
    """Background of ``y`` (counts on a uniform 2θ grid) under peaks narrower than ``width`` points.

    Morphological opening (a flat "rolling ball": running minimum, then running maximum, over
    ``width`` points) of the lightly smoothed data follows broad humps such as amorphous or
    sample-holder scattering; the opening sits at the lower edge of the noise, so it is then
    lifted by the smoothed residual of the points that look like background (|r| < 2.5 σ).
    """
    from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

    y = np.asarray(y, dtype=float)
    width = int(max(3, min(width, y.size)))
    ys = uniform_filter1d(y, max(1, smooth), mode="nearest")
    opened = maximum_filter1d(minimum_filter1d(ys, width, mode="nearest"), width, mode="nearest")
    bg = uniform_filter1d(opened, width, mode="nearest")
    bg = np.minimum(bg, ys)
    kernel_width = max(3, width // 2)
    for _ in range(iterations):
        r = y - bg
        sigma = 1.4826 * np.median(np.abs(np.diff(r))) / np.sqrt(2) + 1e-12
        mask = (np.abs(r) < 2.5 * sigma).astype(float)
        num = uniform_filter1d(r * mask, kernel_width, mode="nearest")
        den = uniform_filter1d(mask, kernel_width, mode="nearest")
        lift = np.where(den > 0.05, num / np.maximum(den, 1e-12), 0.0)
        bg = bg + lift
    return bg


def strip_kalpha2(two_theta: np.ndarray, y: np.ndarray, rad: Radiation) -> np.ndarray:
    """Rachinger Kα2 stripping of a background-free pattern (returns Kα1-only counts, >= 0)."""
    if rad.kalpha2 is None or rad.ratio == 0:
        return np.asarray(y, dtype=float).copy()
    tt = np.asarray(two_theta, dtype=float)
    out = np.asarray(y, dtype=float).copy()
    sin_src = np.sin(np.radians(tt / 2)) * rad.wavelength / rad.kalpha2
    src = np.degrees(2 * np.arcsin(np.clip(sin_src, -1, 1)))
    j = np.searchsorted(tt, src, side="right") - 1  # tt[j] <= src < tt[j+1]
    for i in range(tt.size):
        a = j[i]
        if a < 0 or a + 1 > i:
            continue
        t = (src[i] - tt[a]) / (tt[a + 1] - tt[a])
        out[i] -= rad.ratio * ((1 - t) * out[a] + t * out[a + 1])
    return np.maximum(out, 0.0)


def lorentz_polarization(two_theta_deg: np.ndarray) -> np.ndarray:
    """(1 + cos² 2θ) / (sin² θ cos θ), no monochromator (as in pymatgen's XRDCalculator)."""
    th = np.radians(np.asarray(two_theta_deg, dtype=float) / 2)
    return (1 + np.cos(2 * th) ** 2) / (np.sin(th) ** 2 * np.cos(th))


def extract_peaks(
    pattern,
    wavelength="CuKa",
    *,
    background_width: float = 2.0,
    smooth_width: float = 0.08,
    min_snr: float = 4.0,
    min_relative: float = 0.004,
    max_fwhm: float = 1.5,
) -> Peaks:
    """Peaks of a measured pattern (file path, :class:`Pattern` or (2θ, I) arrays).

    ``wavelength``: "CuKa" (Kα1+Kα2, stripped), "CuKa1", Mo/Co/Ag/Cr/Fe likewise, a number in Å,
    or None to take Kα1/Kα2 from an XRDML file.
    ``background_width``, ``smooth_width`` and ``max_fwhm`` are in degrees 2θ; a peak must rise
    ``min_snr`` noise σ and ``min_relative`` × the strongest peak above its surroundings and be
    narrower than ``max_fwhm``.
    """
    from scipy.signal import find_peaks, peak_widths, savgol_filter

    if isinstance(pattern, tuple) and len(pattern) == 2:
        pattern = Pattern(*pattern)
    pattern = read_pattern(pattern)
    if wavelength is None:  # an XRDML file names its own wavelengths
        info = pattern.info
        if "kAlpha1" not in info:
            raise ValueError("no wavelength given and the pattern file does not name one: pass e.g. 'CuKa'")
        wavelength = Radiation(info["kAlpha1"], info.get("kAlpha2"), info.get("ratioKAlpha2KAlpha1", 0.5),
                               "from file")
    rad = radiation(wavelength)
    if not (background_width > 0 and smooth_width > 0 and min_snr > 0 and 0 <= min_relative < 1):
        raise ValueError("background_width, smooth_width and min_snr must be > 0, min_relative in [0, 1)")
    tt, y = pattern.two_theta, pattern.intensity
    step = float(np.median(np.diff(tt)))
    background = estimate_background(y, int(round(background_width / step)), max(3, int(round(smooth_width / step))))
    net = strip_kalpha2(tt, np.maximum(y - background, 0.0), rad)
    win = max(5, int(round(smooth_width / step)) | 1)
    smooth = savgol_filter(net, win, 2) if net.size > win else net
    # Noise: robust σ of the residual, scaled like counting noise sqrt(background) along 2θ.
    resid = (y - background) - savgol_filter(y - background, win, 2)
    sigma0 = 1.4826 * float(np.median(np.abs(resid - np.median(resid)))) + 1e-12
    level = np.maximum(background, 1e-12)
    sigma = sigma0 * np.sqrt(level / np.median(level)) if np.all(background > 0) else np.full_like(y, sigma0)
    top = float(smooth.max())
    idx, props = find_peaks(smooth, prominence=min_relative * top, distance=max(1, int(round(0.5 * smooth_width / step))))
    keep = (props["prominences"] >= min_snr * sigma[idx]) & (smooth[idx] >= min_snr * sigma[idx])
    idx = idx[keep]
    if idx.size == 0:
        raise ValueError(f"no peaks found in {pattern.source or 'the pattern'} (noise σ ≈ {sigma0:.3g} counts)")
    widths = peak_widths(smooth, idx, rel_height=0.5)[0] * step
    # Humps (amorphous scattering, sample holder) are far broader than Bragg peaks.
    sharp = widths <= max_fwhm
    idx, widths = idx[sharp], widths[sharp]
    if idx.size == 0:
        raise ValueError(f"no peaks narrower than {max_fwhm}° found in {pattern.source or 'the pattern'}")
    # Sub-step position: vertex of the parabola through the three highest points.
    pos = tt[idx].astype(float)
    inner = (idx > 0) & (idx < tt.size - 1)
    i = idx[inner]
    y0, y1, y2 = smooth[i - 1], smooth[i], smooth[i + 1]
    denom = y0 - 2 * y1 + y2
    shift = np.where(np.abs(denom) > 0, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0.0)
    pos[inner] = tt[i] + np.clip(shift, -1, 1) * step
    height = smooth[idx]
    if rad.kalpha2 is not None:  # residue of imperfect stripping sits at the Kα2 angle of a stronger peak
        src = np.degrees(2 * np.arcsin(np.clip(np.sin(np.radians(pos / 2)) * rad.kalpha2 / rad.wavelength, -1, 1)))
        ghost = np.zeros(pos.size, dtype=bool)
        for q in range(pos.size):
            near = np.abs(pos - src[q]) <= np.maximum(0.5 * widths[q], 1.5 * step)
            ghost |= near & (height < 0.3 * height[q])
        pos, height, widths = pos[~ghost], height[~ghost], widths[~ghost]
    area = height * widths
    corrected = area / lorentz_polarization(pos)
    inv_d = 2 * np.sin(np.radians(pos / 2)) / rad.wavelength
    return Peaks(pos, inv_d, height, widths, corrected / corrected.max(), rad)


def to_profile(peaks: Peaks, grid: DeltaGrid | None = None) -> np.ndarray:
    """Bin peaks onto a 1/d grid (nearest point, summed) and normalise to max 1: float32 (n_bins,)."""
    grid = grid or DeltaGrid()
    out = np.zeros(grid.n_bins, dtype=np.float64)
    b = grid.bin_of(peaks.inv_d)
    ok = b >= 0
    np.add.at(out, b[ok], peaks.intensity[ok])
    if out.max() > 0:
        out /= out.max()
    return out.astype(np.float32)
