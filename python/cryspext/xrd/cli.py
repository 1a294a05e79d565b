"""``cryspext xrd PATTERN --wavelength CuKa [--json]``: space group and volume from a powder pattern."""

from __future__ import annotations

import json

DESCRIPTION = """\
Predict the space group and the primitive-cell volume of a single-phase powder from its
measured X-ray pattern. Peaks are found automatically (background removed, Kα2 stripped,
Lorentz-polarisation factor divided out), converted from 2θ to 1/d with the wavelength you
give, and fed to an ensemble of CNNs trained on ideal diffraction profiles of Materials
Project crystals (57 space groups).

Input: two columns 2θ (degrees) and intensity (.xy, .csv, .dat, .txt; extra columns are
ignored), a .dat with a 'start step stop' first line, or a PANalytical .xrdml file.
"""

EPILOG = """\
examples:
  cryspext xrd sample.xy --wavelength CuKa
  cryspext xrd scan.xrdml --wavelength MoKa --top 3 --json
  cryspext xrd data.dat --wavelength 1.5406 --plot peaks.png

wavelength: CuKa, MoKa, CoKa, AgKa, CrKa, FeKa (Kα1+Kα2, Kα2 stripped), the same with a
trailing 1 (Kα1 only, e.g. monochromated CuKa1), or a number in Å (monochromatic).
"""


def _run(args) -> int:
    from .analyze import predict_pattern

    wavelength = args.wavelength
    try:
        wavelength = float(wavelength)
    except (TypeError, ValueError):
        pass
    result = predict_pattern(args.pattern, wavelength, top=args.top, min_snr=args.min_snr,
                             min_relative=args.min_relative)
    if args.plot:
        _plot(args.pattern, result, args.plot)
    if args.json:
        print(json.dumps({"pattern": str(args.pattern), **result.as_dict()}))
        return 0
    pred = result.prediction
    r = result.peaks.radiation
    print(f"pattern          : {args.pattern}")
    print(f"wavelength       : {r.wavelength:.5f} Å" + (f" (Kα2 {r.kalpha2:.5f} Å stripped)" if r.kalpha2 else ""))
    print(f"peaks found      : {len(result.peaks)}")
    print(f"primitive volume : {pred.volume:.1f} Å³ (members: {', '.join(f'{v:.1f}' for v in pred.volume_members)})")
    print("space group      : probability (ensemble mean of members)")
    for g, s, p in zip(pred.space_groups, pred.symbols, pred.probabilities):
        print(f"  {g:>4} {s:<12} {p:6.3f}")
    if args.peaks:
        print("peaks: 2θ (deg)   d (Å)    I (LP-corrected, max 1)")
        for t, g, i in zip(result.peaks.two_theta, result.peaks.inv_d, result.peaks.intensity):
            print(f"  {t:9.3f}  {1 / g:8.4f}  {i:7.4f}")
    return 0


def _plot(path, result, out) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .pattern import read_pattern

    p = read_pattern(path)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(p.two_theta, p.intensity, lw=0.6, label="measured")
    top = float(p.intensity.max())
    ax.vlines(result.peaks.two_theta, 0, top * result.peaks.intensity, color="C3", lw=1, label="peaks (LP-corrected)")
    ax.set_xlabel("2θ (degrees)")
    ax.set_ylabel("intensity")
    pred = result.prediction
    ax.set_title(f"{p.source}: {pred.symbols[0]} ({pred.space_groups[0]}), V_prim ≈ {pred.volume:.1f} Å³")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def register(subparsers) -> None:
    import argparse

    p = subparsers.add_parser(
        "xrd",
        help="space group + primitive volume from a measured powder XRD pattern",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("pattern", help="pattern file: .xy/.csv/.dat/.txt (2θ, intensity) or .xrdml")
    p.add_argument("--wavelength", metavar="NAME_OR_Å",
                   help="X-ray wavelength: CuKa, MoKa, CoKa, AgKa, CrKa, FeKa (or ...Ka1), or a number in Å; "
                        "may be left out for .xrdml files, which name their own")
    p.add_argument("--top", type=int, default=5, help="how many space groups to list (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object (prediction and peaks)")
    p.add_argument("--peaks", action="store_true", help="also list the extracted peaks")
    p.add_argument("--plot", metavar="PNG", help="save a plot of the pattern and the extracted peaks")
    p.add_argument("--min-snr", type=float, default=4.0, help="peak height/prominence in noise σ (default 4)")
    p.add_argument("--min-relative", type=float, default=0.004,
                   help="peak prominence relative to the strongest peak (default 0.004)")
    p.set_defaults(func=_run)
