"""The layering rule holds: import-linter's contracts in pyproject.toml are all kept.

The rule (README "Architecture"): core <- pipelines.lib <- models <- mlops <- serving <- entry points,
and no production module imports ``tests``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from core import PROJECT_ROOT


def _lint_imports(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "lint-imports is not installed (it is a dev dependency)"
    return subprocess.run(
        [exe, "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_every_import_contract_is_kept() -> None:
    result = _lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_contract_catches_an_upward_import(tmp_path: Path) -> None:
    """A copy of the tree where core imports serving breaks the layers contract."""
    for name in ("core", "pipelines", "models", "mlops", "serving", "media_gateway", "tests"):
        shutil.copytree(
            PROJECT_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "core" / "upward.py").write_text("import serving.auth\n")
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert "core.upward -> serving.auth" in result.stdout
