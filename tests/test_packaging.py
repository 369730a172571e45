"""Packaging: the wheel carries every resource, installs into a fresh venv and runs from another folder.

The fresh venv borrows its dependencies (torch, open_clip, ...) from the project venv through a ``.pth``
file, so nothing is downloaded; caw itself comes only from the wheel (installed with ``--no-deps``).
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_GLOBS = ["caw_core/models/model_configs/*.json", "caw_core/data/classnames/*.txt", "caw_core/resources/*",
              "caw_gui/resources/**/*"]


def test_desktop_entry_and_icons_are_well_formed():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(REPO / "packaging" / "caw.desktop")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application" and section["Exec"].split()[0] == "caw-gui"
    assert section["Icon"] == "caw" and section["Categories"].endswith(";")
    from PIL import Image

    with Image.open(REPO / "packaging" / "caw.png") as icon:
        assert icon.size == (256, 256) and icon.mode == "RGBA"
    import xml.etree.ElementTree as ET

    assert ET.parse(REPO / "packaging" / "caw.svg").getroot().tag.endswith("svg")


@pytest.mark.slow
def test_wheel_has_the_resources_installs_and_runs_elsewhere(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("caw-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(REPO)) for pattern in DATA_GLOBS for p in REPO.glob(pattern) if p.is_file()
                and "__pycache__" not in p.parts and not p.name.endswith(".pyc")}
    assert "caw_core/models/model_configs/caw-test-tiny.json" in expected  # the globs still find the data
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert not any(n.startswith(("tests/", "packaging/")) for n in names)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    if install.returncode != 0 and "no such option: --python" in install.stderr:  # old pip: install into the target
        install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site,
                                  str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*args):
        result = subprocess.run(list(args), cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    where = run(str(python), "-c", "import caw_core; print(caw_core.__file__)")
    assert where.startswith(str(env_dir)), where  # the wheel's copy, not the source tree
    help_text = run(str(env_dir / "bin" / "caw-core"), "--help")
    assert "train" in help_text and "eval" in help_text
    # package data (toy weights, model configs) load from the wheel: the quick demo runs end to end
    run(str(env_dir / "bin" / "caw-core"), "demo", "--quick", "--out", str(elsewhere / "demo"))
    table = (elsewhere / "demo" / "RESULTS.md").read_text()
    assert "| CAW |" in table and "PGD-10 accuracy" in table
