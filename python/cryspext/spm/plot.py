"""Slices of SPM maps with matplotlib: assigned class, its probability, mutual information."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["plot_maps", "slice_map", "short_name"]

_AXES = {"z": 0, "y": 1, "x": 2}


def short_name(name: str) -> str:
    """A compact label for an ARISE class name (``fcc_Cu_A_cF4_225_a`` -> ``fcc (Cu, cF4)``)."""
    parts = name.split("_")
    if len(parts) >= 4 and parts[-2].isdigit():
        return f"{parts[0]} ({parts[1]}, {parts[-3]})" if len(parts) >= 5 else parts[0]
    return name


def slice_map(result, values: np.ndarray, axis: str = "z", index: int | None = None):
    """2D slice of a (nz, ny, nx) map and its extent (Å) for ``imshow(origin="lower")``.

    Returns (image, extent, (horizontal axis name, vertical axis name), index).
    """
    if axis not in _AXES:
        raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    a = _AXES[axis]
    n = values.shape[a]
    index = n // 2 if index is None else int(index)
    if not -n <= index < n:
        raise ValueError(f"slice index {index} outside the {n} layers along {axis}")
    image = np.take(values, index, axis=a)
    axes = {"z": ("x", "y"), "y": ("x", "z"), "x": ("y", "z")}[axis]
    coords = {"x": result.x, "y": result.y, "z": result.z}

    def span(c):
        c = np.asarray(c, float)
        half = 0.5 * (c[1] - c[0]) if c.size > 1 else 0.5 * result.box
        return c[0] - half, c[-1] + half

    extent = [*span(coords[axes[0]]), *span(coords[axes[1]])]
    return image, extent, axes, index % n


def plot_maps(result, path=None, *, axis: str = "z", index: int | None = None,
              classes: Sequence[str] | None = None, mi_cmap: str = "viridis", title: str | None = None):
    """Panels for one slice: assigned class, probability of the chosen class, MI (nats), and the
    probability of each class named in ``classes``. Saves to ``path`` when given; returns the Figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    classes = list(classes or [])
    # Row 1: class, its probability, MI; row 2 (if asked): one probability map per class.
    ncols = max(3, len(classes))
    nrows = 2 if classes else 1
    fig, grid = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.4 * nrows + (0.6 if nrows == 1 else 0.9)),
                             constrained_layout=True, squeeze=False)
    for ax in grid[0, 3:]:
        ax.set_visible(False)
    if classes:
        for ax in grid[1, len(classes):]:
            ax.set_visible(False)
    axs = list(grid[0, :3]) + list(grid[1, : len(classes)]) if classes else list(grid[0, :3])
    labels, extent, (h, v), k = slice_map(result, result.labels, axis, index)

    # Class panel: categorical colours for the classes present anywhere in the maps.
    present = [c for c in np.unique(result.labels) if c >= 0]
    base = plt.get_cmap("tab10" if len(present) <= 10 else "tab20")
    colours = [base(i % base.N) for i in range(max(len(present), 1))]
    lookup = {c: i for i, c in enumerate(present)}
    image = np.full(labels.shape, np.nan)
    for c, i in lookup.items():
        image[labels == c] = i
    axs[0].imshow(image, origin="lower", extent=extent, cmap=ListedColormap(colours), vmin=-0.5,
                  vmax=len(colours) - 0.5, interpolation="nearest")
    axs[0].set_title("assigned class")
    handles = [Patch(color=colours[i], label=short_name(result.classes[c])) for c, i in lookup.items()]
    if handles:
        axs[0].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8,
                      frameon=False)

    def show(ax, values, title, cmap, vmin=None, vmax=None, label=""):
        img, ext, _, _ = slice_map(result, values, axis, k)
        im = ax.imshow(img, origin="lower", extent=ext, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8, label=label)

    show(axs[1], result.top_probability, "probability of assigned class", "magma", 0, 1, "probability")
    show(axs[2], result.mutual_information, "mutual information", mi_cmap, 0, None, "MI (nats)")
    for ax, name in zip(axs[3:], classes):
        show(ax, result.probability(name), f"P({short_name(name)})", "magma", 0, 1, "probability")
    coord = {"x": result.x, "y": result.y, "z": result.z}[axis][k]
    for ax in axs:
        ax.set_aspect("equal")
        ax.set_xlabel(f"{h} (Å)")
        ax.set_ylabel(f"{v} (Å)")
    fig.suptitle(title or f"SPM, box {result.box:g} Å, slice {axis} = {coord:.1f} Å")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
