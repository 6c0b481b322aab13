"""README.md's install commands work as written: in a copy of the repository, a fresh
virtual environment first on the PATH runs the README's install block (install from the
clone, build a wheel, install the wheel), and the installed package, its pytest plugin and
its command are there. It needs the package index, as installing does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def install_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("\n## Install\n", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]


def tracked_files() -> list[str]:
    done = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not done.stdout:
        pytest.skip("not a git checkout: the install commands need a clone")
    return [name for name in done.stdout.split("\0") if name]


def test_the_readme_install_commands_work(tmp_path: Path) -> None:
    clone = tmp_path / "pytest-synthdata"
    for name in tracked_files():
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    block = install_block()
    assert "pip install ." in block and "pip wheel" in block, block
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (clone / "dist" / "pytest_synthdata-0.1.0-py3-none-any.whl").is_file()
    check = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m, pytest_synthdata; "
            "print([e.value for e in m.entry_points(group='pytest11')])",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0 and "pytest_synthdata.plugin" in check.stdout, check.stderr
    command = subprocess.run(
        [str(venv / "bin" / "synthdata"), "--help"], env=env, capture_output=True, text=True
    )
    assert command.returncode == 0 and "generate" in command.stdout, command.stderr
