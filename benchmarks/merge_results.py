"""Assemble benchmarks/RESULTS.md from the per-benchmark result files (RESULTS_<topic>.md).

Each benchmark script writes its own RESULTS_<topic>.md (its header names the command that
produced it); this script only concatenates them, in a fixed order, with headings demoted.

    python benchmarks/merge_results.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["neighbors", "soap", "robustness", "spm", "xrd", "formula", "formula_confidence", "formula_check", "formula_analogues", "formula_seeds", "formula_cell", "cell"]


def main() -> None:
    parts = [
        "# cryspext benchmark and validation results",
        "",
        "Assembled by `python benchmarks/merge_results.py` from the `RESULTS_<topic>.md` files that the",
        "benchmark scripts write; each section names the command that produced it. Unless a section says",
        "otherwise, figures come from the shared 2-core development machine, often loaded by other jobs,",
        "so times are upper bounds and ratios taken in one run are the figures to compare.",
        "",
    ]
    for topic in ORDER:
        path = HERE / f"RESULTS_{topic}.md"
        if not path.exists():
            parts += [f"## {topic}", "", "(no results file yet)", ""]
            continue
        for line in path.read_text().splitlines():
            parts.append("#" + line if line.startswith("#") else line)
        parts.append("")
    (HERE / "RESULTS.md").write_text("\n".join(parts).rstrip() + "\n")


if __name__ == "__main__":
    main()
