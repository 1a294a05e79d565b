"""The top-level API: names resolve, `import cryspext` stays light, the CLI explains itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cryspext


def test_import_does_not_pull_torch():
    code = "import sys, cryspext; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(cryspext.__all__))
def test_public_names_resolve(name):
    assert getattr(cryspext, name) is not None


def test_spm_is_callable_and_package_importable():
    import cryspext.spm.core as core
    from cryspext.spm import SPMResult  # noqa: F401

    assert callable(cryspext.spm) and core.spm is cryspext.spm.spm


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        cryspext.no_such_thing  # noqa: B018


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "cryspext", "--help"], capture_output=True, text=True, check=True)
    for command in ("classify", "spm", "demo", "xrd", "formula", "neighbors"):
        assert command in out.stdout


def test_cli_neighbors_json(tmp_path):
    from ase.build import bulk

    path = tmp_path / "cu.cif"
    bulk("Cu", "fcc", a=3.6).write(path)
    out = subprocess.run(
        [sys.executable, "-m", "cryspext", "neighbors", str(path), "--cutoff", "2.6", "--json"],
        capture_output=True, text=True, check=True,
    )
    assert '"mean_neighbors": 12.0' in out.stdout


def test_cli_reports_bad_file_cleanly(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "cryspext", "neighbors", str(tmp_path / "missing.xyz")],
        capture_output=True, text=True,
    )
    assert out.returncode == 2 and "error" in out.stderr and "Traceback" not in out.stderr


def test_cli_stops_quietly_when_the_reader_is_gone(tmp_path):
    """``cryspext ... | head``: a closed pipe ends the command without a traceback."""
    import os

    from ase.build import bulk

    path = tmp_path / "cu.cif"
    bulk("Cu", "fcc", a=3.6).write(path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the first write fails with EPIPE
    try:
        out = subprocess.run([sys.executable, "-m", "cryspext", "neighbors", str(path), "--cutoff", "2.6"],
                             stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert out.returncode == 141 and "Traceback" not in out.stderr
