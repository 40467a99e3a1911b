"""One nightly at a time: the lock on ``<dagster_home>/nightly.lock`` (pipelines.run.nightly_lock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines.run import NightlyBusyError, nightly_lock

HOLD = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def _settings(home: Path) -> SimpleNamespace:
    return SimpleNamespace(paths=SimpleNamespace(dagster_home=home))


def test_a_second_nightly_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    busy = pytest.raises(NightlyBusyError, match="another nightly run holds")
    with nightly_lock(settings), busy, nightly_lock(settings):
        pass
    with nightly_lock(settings):  # released on exit
        pass


def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home")
    path = tmp_path / "home" / "nightly.lock"
    path.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(NightlyBusyError), nightly_lock(settings):
            pass
    finally:
        holder.kill()
        holder.wait()
    with nightly_lock(settings):  # the kernel dropped the dead process's lock
        pass
