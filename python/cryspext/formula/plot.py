"""A figure of one ``predict_formula`` answer: the candidates' probabilities, and their lattice
lengths with the calibrated σ (matplotlib, imported on use)."""

from __future__ import annotations

import math

__all__ = ["plot_formula"]


def plot_formula(result: dict, path=None):
    """Two panels for ``result`` (a ``predict_formula`` answer): left, each candidate Bravais
    lattice's probability (error bar: the spread over the network members) with its likeliest
    space group; right, its lattice lengths a, b, c in Å (error bar: the uncertainty σ, or the
    members' std where the model has no σ). Saves to ``path`` when given; returns the figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    candidates = result.get("candidates") if isinstance(result, dict) else None
    if not candidates:
        raise ValueError("plot_formula takes an answer of predict_formula (a dict with candidates)")
    labels = [f"{c['bravais']} ({c['spacegroups'][0]['number']})" for c in candidates][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 1.2 + 0.6 * len(candidates)),
                                      gridspec_kw={"width_ratios": [1, 1.4]})
    left.barh(labels, [c["probability"] for c in candidates][::-1],
              xerr=[c["spread"] for c in candidates][::-1], color="tab:blue", capsize=3)
    left.set_xlim(0, 1)
    left.set_xlabel("probability (± network spread)")
    left.set_title("Bravais lattice (likeliest space group)", fontsize=10)
    for shift, (name, color) in zip((-0.2, 0.0, 0.2), (("a", "tab:orange"), ("b", "tab:green"), ("c", "tab:red"))):
        values, errors = [], []
        for c in candidates[::-1]:
            p = c["lattice"][name]
            values.append(p["value"])
            errors.append(p["std"] if math.isnan(p["uncertainty"]) else p["uncertainty"])
        right.errorbar(values, [i + shift for i in range(len(candidates))], xerr=errors, fmt="o",
                       color=color, capsize=3, label=name)
    right.set_yticks(range(len(candidates)), labels)
    right.set_xlabel("lattice length (Å, ± σ)")
    right.legend(loc="best", fontsize=8)
    title = result.get("formula", "")
    if result.get("end_members"):
        title += "  (lengths by Vegard's law over " + " + ".join(
            f"{e['weight']:.2f} {e['formula']}" for e in result["end_members"]) + ")"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
