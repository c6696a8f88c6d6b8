"""The wheel builds the way docs/dependencies.md says (``pip wheel --no-build-isolation`` in
the project's venv, from a copy of the sources) and holds every file the package reads at run
time; it holds the ``sandbox`` package and its metadata, nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sandbox.tracer.ebpf import program_path
from sandbox.workloads.site import PAGES, SERVED_SUFFIXES, SITE_DIR

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "sandbox"
#: What setup.py and pyproject.toml build from.
SOURCES = ("pyproject.toml", "setup.py", "README.md")
#: Files of the source tree that are code, not data (Python, the C ticker, its stub, builds).
CODE_SUFFIXES = {".py", ".pyc", ".so", ".c", ".pyi"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        shutil.copy(REPO / name, src / name)
    shutil.copytree(PACKAGE, src / "sandbox",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("sandbox-*.whl")
    return zipfile.ZipFile(built)


def _in_wheel(path: Path) -> str:
    return path.resolve().relative_to(REPO).as_posix()


def test_wheel_holds_what_the_package_reads(wheel: zipfile.ZipFile) -> None:
    named = [program_path(), *(SITE_DIR / page for page in PAGES)]
    served = [p for p in SITE_DIR.iterdir() if p.suffix in SERVED_SUFFIXES]
    data = [p for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in CODE_SUFFIXES and "__pycache__" not in p.parts]
    assert served and data
    missing = sorted({_in_wheel(p) for p in named + served + data} - set(wheel.namelist()))
    assert not missing, f"package data the wheel lacks (pyproject package-data): {missing}"


def test_wheel_holds_the_package_and_its_entry_points_only(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    modules = {_in_wheel(p) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert not modules - names
    tops = {name.split("/", 1)[0] for name in names}
    (info,) = tops - {"sandbox"}
    assert info.endswith(".dist-info"), tops
    entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert "sandbox = sandbox.cli:main" in entry_points
    assert "sandbox = sandbox.pytest_plugin" in entry_points
