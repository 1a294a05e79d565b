"""The Bain path seen by ARISE: class and uncertainty maps over tetragonal a, c (thesis 5.3).

A body-centred tetragonal crystal with lattice parameters a, c (Å) and atoms at (0, 0, 0) and
(a/2, a/2, c/2) is bcc for c/a = 1 and fcc for c/a = √2; in between (and beyond) it is tetragonal.
Each (a, c) of a grid over [3, 6] Å is classified with the shipped ARISE model; the figure shows
the argmax class (fcc, bcc, the two body-centred tetragonal prototypes In and α-Pa, or "other")
and the mutual information (nats). Since ARISE scales every structure by its nearest-neighbour
distance, the maps only depend on c/a — lines of constant c/a through the known prototypes are
drawn as a guide.

    python examples/bain_path.py                 # 0.1 Å grid, T = 100 passes
    python examples/bain_path.py --step 0.05 --samples 1000 --out bain.png   # thesis resolution
"""

from __future__ import annotations

import argparse
import time

import numpy as np

GROUPS = {
    "fcc_Cu_A_cF4_225_a": "fcc",
    "bcc_W_A_cI2_229_a": "bcc",
    "bctIn_In_A_tI2_139_a": "tetragonal",
    "bctAlphaPa_Pa_A_tI2_139_a": "tetragonal",
}
# (c/a) of the training prototypes (thesis 5.3): bcc, fcc, In, α-Pa.
GUIDES = {"bcc": 1.0, "fcc": np.sqrt(2.0), "In": 1.521, "α-Pa": 0.824}


def bct(a: float, c: float):
    from cryspext import Structure

    return Structure([[0, 0, 0], [a / 2, a / 2, c / 2]], np.diag([a, a, c]), True, [26, 26])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--step", type=float, default=0.1, help="grid step in Å (thesis: 0.05)")
    ap.add_argument("--samples", type=int, default=100, help="MC-dropout passes T")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bain_path.png")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from cryspext.arise import classify_many

    values = np.round(np.arange(3.0, 6.0 + 1e-9, args.step), 6)
    grid = [(a, c) for c in values for a in values]
    t0 = time.perf_counter()
    results = classify_many([bct(a, c) for a, c in grid], mc_samples=args.samples, seed=args.seed)
    print(f"{len(grid)} structures classified in {time.perf_counter() - t0:.1f} s")
    names = ["fcc", "bcc", "tetragonal", "other"]
    cls = np.array([names.index(GROUPS.get(r.label, "other")) for r in results]).reshape(len(values), len(values))
    mi = np.array([r.mutual_information for r in results]).reshape(len(values), len(values))
    counts = {n: int((cls == k).sum()) for k, n in enumerate(names)}
    others = sorted({r.label for r in results if r.label not in GROUPS})
    print("classes:", counts, "| other labels:", others[:10])

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    extent = (values[0] - args.step / 2, values[-1] + args.step / 2) * 2
    cmap = ListedColormap(["#f2c200", "#2a9d8f", "#e76f51", "#cccccc"])
    im0 = axes[0].imshow(cls, origin="lower", extent=extent, cmap=cmap, vmin=-0.5, vmax=3.5, aspect="equal")
    cb = fig.colorbar(im0, ax=axes[0], ticks=range(4))
    cb.ax.set_yticklabels(names)
    axes[0].set_title("ARISE class (argmax)")
    im1 = axes[1].imshow(mi, origin="lower", extent=extent, cmap="magma", aspect="equal")
    fig.colorbar(im1, ax=axes[1], label="mutual information (nats)")
    axes[1].set_title(f"uncertainty (T = {args.samples})")
    a_line = np.linspace(3, 6, 50)
    for ax in axes:
        for name, ratio in GUIDES.items():
            ax.plot(a_line, ratio * a_line, "w--" if ax is axes[1] else "k--", lw=0.8)
            a_end = min(6.0, 6.0 / ratio)
            ax.annotate(name, (a_end * 0.97, ratio * a_end * 0.97), fontsize=8, ha="right", va="top")
        ax.set_xlim(3, 6)
        ax.set_ylim(3, 6)
        ax.set_xlabel("a (Å)")
        ax.set_ylabel("c (Å)")
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
