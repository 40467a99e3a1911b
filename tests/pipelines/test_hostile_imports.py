"""Every importer against the hostile set (issue 13.7): garbage bytes, UTF-16, BOM, wrong columns,
header only, 10^6 rows, ZIP traversal, ZIP bomb, symbolic links.

The whole set runs through the real `import-history` command in one subprocess
(:mod:`tests.pipelines.hostile_exports`), so its peak RSS measures the importers alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core import PROJECT_ROOT
from tests.pipelines.hostile_exports import FORMATS

PEAK_RSS_LIMIT_KIB = 1_000_000
"""1 GB: the ZIP bomb alone used to take 11 GB; the whole set now peaks under 0.5 GB."""

EXPECTED = {
    "garbage-bytes": "is binary data",
    "utf16-wrong-columns": ("missing column", "expected a JSON list", "nothing to import"),
    "bom-only": ("file is empty", "expected a JSON list", "nothing to import: no data rows"),
    "wrong-columns": ("missing column", "expected a JSON list", "nothing to import"),
    "header-only": "nothing to import: no data rows",
    "million-rows": ("more than the 250,000 rows", "larger than 64 MiB", "nothing to import"),
    "zip-traversal": ("path traversal", "ZIP archive"),
    "zip-bomb": ("ZIP member expands", "ZIP archive"),
    "symlink": "is a symbolic link",
    "symlink-dev-zero": "is a symbolic link",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("hostile")
    done = subprocess.run(
        [sys.executable, "-m", "tests.pipelines.hostile_exports", str(work)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_importer_refuses_every_hostile_file_cleanly(report: dict) -> None:
    results = report["results"]
    assert {(r["format"], r["case"]) for r in results} == {
        (fmt, case) for fmt in FORMATS for case in EXPECTED
    }
    for r in results:
        where = f"{r['format']}/{r['case']}: {r['output'][-400:]}"
        assert r["exit_code"] == 2, where
        assert r["exception"] is None, where
        assert not r["lake_changed"], where
        assert "import failed" in r["output"], where
        # the message names the file (rich may wrap the path, so compare without spaces)
        assert Path(r["path"]).name in r["output"].replace(" ", ""), where
        expected = EXPECTED[r["case"]]
        options = (expected,) if isinstance(expected, str) else expected
        assert any(text in r["output"] for text in options), where


@pytest.mark.slow
def test_the_zip_bomb_is_refused_as_such_by_letterboxd(report: dict) -> None:
    bomb = next(
        r for r in report["results"] if (r["format"], r["case"]) == ("letterboxd", "zip-bomb")
    )
    assert "ZIP member expands" in bomb["output"] and "refused" in bomb["output"]
    traversal = next(
        r for r in report["results"] if (r["format"], r["case"]) == ("letterboxd", "zip-traversal")
    )
    assert "points outside the archive (path traversal)" in traversal["output"]


@pytest.mark.slow
def test_peak_memory_stays_bounded(report: dict) -> None:
    print(
        f"hostile set: peak RSS {report['peak_rss_kib'] / 1024:.0f} MiB "
        f"(after start-up {report['peak_rss_before_imports_kib'] / 1024:.0f} MiB)"
    )
    assert report["peak_rss_kib"] < PEAK_RSS_LIMIT_KIB
