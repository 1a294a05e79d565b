"""The ``cryspext`` command line.

Each capability registers its own sub-command in a module listed in ``SUBCOMMANDS``; a module
exposes ``register(subparsers)`` that adds a parser whose ``func`` attribute runs it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# (module, purpose) — modules that are missing (capability not built yet) are skipped.
SUBCOMMANDS = [
    "cryspext.cli_core",
    "cryspext.arise.cli",
    "cryspext.spm_cli",
    "cryspext.xrd.cli",
    "cryspext.formula.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cryspext",
        description=(
            "Crystal-structure recognition. Ask what structure a file of atoms is (classify), "
            "where in a large sample it changes (spm), which space group a powder pattern "
            "belongs to (xrd), or which lattice a formula likely has (formula)."
        ),
        epilog="Run 'cryspext COMMAND --help' for the options of one command.",
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"cryspext {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"cryspext {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``cryspext ... | head``): stop quietly. Point stdout at devnull
        # so that Python's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what shell tools return here


if __name__ == "__main__":
    sys.exit(main())
