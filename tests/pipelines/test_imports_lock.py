"""The lake's import lock (filelock): exclusive across processes, kept as a file between runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core import PROJECT_ROOT
from pipelines.lib.histories.common import IMPORTS_LOCK, imports_lock

TRY_LOCK = """
import sys
from pathlib import Path
from filelock import Timeout
from pipelines.lib.histories.common import imports_lock
try:
    with imports_lock(Path(sys.argv[1])).acquire(timeout=0.3):
        print("acquired")
except Timeout:
    print("busy")
"""


def _other_process(lake: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(lake)],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={"PYTHONPATH": str(PROJECT_ROOT)},
    )
    return done.stdout.strip()


def test_the_lock_excludes_another_process_until_released(tmp_path: Path):
    lake = tmp_path / "lake"
    with imports_lock(lake):
        assert _other_process(lake) == "busy"
    assert _other_process(lake) == "acquired"
    assert (lake / IMPORTS_LOCK).is_file()
