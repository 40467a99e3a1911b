"""dagster.yaml gives a local SQLite instance with run retries in whatever DAGSTER_HOME it is in."""

import shutil
import subprocess
import sys

from core import PROJECT_ROOT


def test_instance_is_sqlite_with_run_retries(tmp_path):
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    code = (
        "import dagster as dg; i = dg.DagsterInstance.get(); "
        "print(type(i.run_storage).__name__, type(i.event_log_storage).__name__, "
        "i.run_retries_enabled, i.run_retries_max_retries)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.split()
    assert out == ["SqliteRunStorage", "SqliteEventLogStorage", "True", "2"]
