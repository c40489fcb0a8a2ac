"""Packaging: one `snnc` namespace from the top-level folders; no torch or lava in the core."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_snnc_loads_neither_torch_nor_lava():
    code = (
        "import sys, snnc, snnc.ir, snnc.artifact, snnc.tools.cli, snnc.backends.refsim\n"
        "import snnc.tools.demo\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lava'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT / "tests")
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package, folder", [
    ("snnc", "snnc"),
    ("snnc.frontends", "frontends"),
    ("snnc.passes", "passes"),
    ("snnc.backends", "backends"),
    ("snnc.backends.refsim", "backends/refsim"),
])
def test_editable_install_maps_the_top_level_folders(package, folder):
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve() == (ROOT / folder / "__init__.py").resolve()


def test_folders_are_not_importable_under_their_bare_names():
    # A second module object for the same file would silently duplicate registries.
    assert "frontends" not in sys.modules and "backends" not in sys.modules
    code = "import importlib.util as u; print(u.find_spec('backends'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT / "tests")
    assert out.stdout.strip() == "None"


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "snnc"
    assert script.exists()
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "snnc, version 0.1.0"


def test_every_package_folder_is_listed_for_the_wheel():
    # An editable install finds unlisted subpackages through the folder mapping; a wheel
    # would silently leave them out. Keep pyproject's list complete.
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(text.split("packages = [", 1)[1].split("]", 1)[0].replace('"', "").split(","))
    listed = {p.strip() for p in listed if p.strip()}
    roots = {"snnc": "snnc", "frontends": "snnc.frontends", "passes": "snnc.passes",
             "analyses": "snnc.analyses", "backends": "snnc.backends", "tools": "snnc.tools"}
    found = set()
    for folder, package in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *rel)))
    assert found == listed
