"""The data-scientist notebooks: stored without outputs, parameterised, executed on the sample.

Each notebook runs in a fresh ``python3`` kernel through nbclient on the lake, LanceDB index and
MLflow champion of the session's ``sample_world`` (the nightly job on the embedded sample), with
``MG_CONFIG`` pointing at that world. Any cell error fails the test with the cell's traceback; the
executed copy is written to the test's tmp folder for inspection.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import polars as pl
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_output

from core import JUSTWATCH_ATTRIBUTION, PROJECT_ROOT, TMDB_ATTRIBUTION
from core.feedback import append_erasure
from core.lake import write_table
from core.settings import Settings
from media_gateway import notebook as nbh

pytestmark = pytest.mark.slow

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
STRIP_SCRIPT = PROJECT_ROOT / "scripts" / "strip_notebooks.py"
MIN_PLOTS = {
    "01_catalog_and_availability.ipynb": 2,
    "02_train_and_compare.ipynb": 3,
    "03_privacy_utility.ipynb": 1,
    "04_search_and_explain.ipynb": 0,
}
"""Notebook -> PNG figures its executed copy must contain at least (04 shows tables only)."""
EXPECTED_TEXT = {
    "01_catalog_and_availability.ipynb": [TMDB_ATTRIBUTION, JUSTWATCH_ATTRIBUTION],
    "02_train_and_compare.ipynb": ["MLflow parent run:", "mlflow ui --backend-store-uri"],
    "03_privacy_utility.ipynb": ["Privacy unit: one user's whole interaction history"],
    "04_search_and_explain.ipynb": ["'deep_link': 'https://", TMDB_ATTRIBUTION],
}
CELL_TIMEOUT_S = 300
MAX_SECONDS = 120
"""Target is under 60 s per notebook on the sample (measured 3-25 s); the margin absorbs a loaded
CI machine shared by other test processes."""
KERNEL_CHECK = "import sys\nprint('kernel prefix:', sys.prefix)"


def _run_strip(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STRIP_SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def _pngs(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", [])
    )


# ---- stored notebooks -----------------------------------------------------------------------
def test_the_four_notebooks_are_stored() -> None:
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(MIN_PLOTS)


def test_notebooks_are_stored_without_outputs() -> None:
    result = _run_strip("--check", NOTEBOOK_DIR)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", sorted(MIN_PLOTS))
def test_first_code_cell_is_the_parameters_cell(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    first = code[0]
    assert "parameters" in first.metadata.get("tags", [])
    assert 'MG_CONFIG = env_str("MG_CONFIG", "configs/sample.yaml")' in first.source
    names = set(re.findall(r"^(MG_[A-Z_]+) =", first.source, flags=re.M))
    for cell in code[1:]:
        assert not re.search(r"^(MG_[A-Z_]+) =", cell.source, flags=re.M), "parameter set late"
    used = set(re.findall(r"\bMG_[A-Z_]+\b", "\n".join(c.source for c in code[1:])))
    assert used <= names, f"parameters used but not declared: {used - names}"


@pytest.mark.parametrize("name", sorted(MIN_PLOTS))
def test_cells_call_the_project_and_define_no_logic(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not re.search(r"^\s*(def|class)\b", cell.source, flags=re.M), cell.source
    assert any(cell.cell_type == "markdown" for cell in nb.cells[1:])


# ---- strip script ---------------------------------------------------------------------------
def test_strip_removes_outputs_in_place_and_is_idempotent(tmp_path: Path) -> None:
    source = NOTEBOOK_DIR / "01_catalog_and_availability.ipynb"
    clean = nbformat.read(source, as_version=4)
    dirty = nbformat.read(source, as_version=4)
    cell = next(c for c in dirty.cells if c.cell_type == "code")
    cell.outputs = [new_output("stream", name="stdout", text="hello\n")]
    cell.execution_count = 3
    cell.metadata["execution"] = {"iopub.status.busy": "2026-11-28T00:00:00Z"}
    path = tmp_path / "dirty.ipynb"
    nbformat.write(dirty, path)

    check = _run_strip("--check", path)
    assert check.returncode == 1
    assert str(path) in check.stderr

    assert _run_strip(path).returncode == 0
    stripped = nbformat.read(path, as_version=4)
    assert stripped.cells == clean.cells
    assert _run_strip("--check", path).returncode == 0
    before = path.stat().st_mtime_ns
    assert _run_strip(path).returncode == 0
    assert path.stat().st_mtime_ns == before, "a clean notebook must not be rewritten"
    assert [p.name for p in tmp_path.iterdir()] == ["dirty.ipynb"], "no temporary files left"


def test_strip_names_an_unreadable_notebook(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ipynb"
    bad.write_text('{"cells": [')
    result = _run_strip("--check", bad)
    assert result.returncode == 2
    assert f"{bad}: not valid notebook JSON" in result.stderr
    missing = _run_strip(tmp_path / "absent.ipynb")
    assert missing.returncode == 2
    assert "absent.ipynb: not a notebook file or folder" in missing.stderr


# ---- helpers --------------------------------------------------------------------------------
def test_parameters_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MG_EPSILONS", " 0.5, 8 ,")
    monkeypatch.setenv("MG_ROUNDS", "3")
    monkeypatch.setenv("MG_CONFIG", "configs/sample.yaml, /tmp/paths.yaml")
    monkeypatch.delenv("MG_K", raising=False)
    assert nbh.env_floats("MG_EPSILONS", [1.0]) == [0.5, 8.0]
    assert nbh.env_int("MG_ROUNDS", None) == 3
    assert nbh.env_int("MG_K", 5) == 5
    assert nbh.config_files() == ["configs/sample.yaml", "/tmp/paths.yaml"]
    assert nbh.config_files("a.yaml") == ["a.yaml"]
    monkeypatch.setenv("MG_ROUNDS", "three")
    with pytest.raises(nbh.NotebookParameterError, match="MG_ROUNDS='three' is not an integer"):
        nbh.env_int("MG_ROUNDS", None)
    monkeypatch.setenv("MG_EPSILONS", "1,-2")
    with pytest.raises(nbh.NotebookParameterError, match="MG_EPSILONS: '-2' must be"):
        nbh.env_floats("MG_EPSILONS", [1.0])


def test_metric_cutoff_matches_the_nightly_cycle() -> None:
    from mlops.evaluation import K

    assert nbh.K == K


def test_sample_dataset_aggregates_lake_events_without_erased_users(settings: Settings) -> None:
    when = datetime(2026, 11, 1, tzinfo=UTC)
    events = pl.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4"],
            "user_id": ["ann", "ann", "ann", "bob"],
            "title_id": ["movie:1", "movie:1", "movie:2", "movie:1"],
            "source": ["trakt"] * 4,
            "event_time": [when] * 4,
            "weight": [1.0, 0.5, 1.0, 1.0],
        }
    )
    write_table(settings.paths.lake, "watch_events", events)
    append_erasure(settings.paths.feedback, "bob")
    got = nbh.dataset("sample", settings).sort("item_id")
    assert got["user_id"].to_list() == ["ann", "ann"]
    assert got["item_id"].to_list() == ["movie:1", "movie:2"]
    assert got["weight"].to_list() == [1.5, 1.0]
    assert nbh.sample_user(settings) == "ann"
    with pytest.raises(nbh.UnknownDatasetError, match="unknown dataset 'ml-1m'"):
        nbh.dataset("ml-1m", settings)


@pytest.mark.realdata
def test_movielens_dataset_is_binarised_with_utc_times(
    settings: Settings, shared_data: Path
) -> None:
    got = nbh.dataset("ml-100k", settings, shared_data)
    assert got.columns == ["user_id", "item_id", "weight", "timestamp"]
    assert (got.height, got["user_id"].n_unique(), got["item_id"].n_unique()) == (99_999, 943, 1682)
    assert got["weight"].unique().to_list() == [1.0]
    assert got.schema["timestamp"] == pl.Datetime("us", "UTC")


# ---- executed on the sample -----------------------------------------------------------------
def _check_mlflow_runs(settings: Settings, text: str) -> None:
    """Notebook 02 logged a parent run with one nested run per model, each with nDCG@10."""
    from mlops.tracking import client

    found = re.search(r"MLflow parent run: ([0-9a-f]{32})", text)
    assert found, "notebook 02 printed no MLflow parent run id"
    runs = client(settings).search_runs(
        [nbh.notebook_experiment(settings)],
        filter_string=f"tags.mlflow.parentRunId = '{found.group(1)}'",
    )
    assert sorted(r.data.params["model"] for r in runs) == sorted(
        ["popularity", "als", "bpr", "ease", "federated", "federated-dp"]
    )
    assert all("ndcg_at_10" in r.data.metrics for r in runs)


@pytest.mark.parametrize("name", sorted(MIN_PLOTS))
def test_notebook_executes_on_the_sample(
    name: str, sample_world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, config_files, success = sample_world
    assert success, "the nightly job on the sample failed; the notebooks need its outputs"
    for var in [v for v in os.environ if v.startswith("MG_")]:
        monkeypatch.delenv(var)  # a developer's own parameters must not change the CI run
    monkeypatch.setenv("MG_CONFIG", ",".join(config_files))
    monkeypatch.setenv("MG_DATASET", "sample")
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nb.cells.append(new_code_cell(KERNEL_CHECK))
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    assert list(tmp_path.iterdir()) == [], "notebooks write only to the configured paths"
    nbformat.write(nb, tmp_path / name)

    assert seconds < MAX_SECONDS, f"{name} took {seconds:.0f} s"
    text = _text(nb)
    assert f"kernel prefix: {sys.prefix}" in text, "the kernel is not this virtualenv's python"
    assert _pngs(nb) >= MIN_PLOTS[name]
    for expected in EXPECTED_TEXT[name]:
        assert expected in text
    if name.startswith("02_"):
        _check_mlflow_runs(settings, text)
