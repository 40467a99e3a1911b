"""GDPR: export is complete, and after an erasure plus the next nightly no store holds the user.

A real flow on a copy of the sample world: the user sends feedback (imported by a nightly run into
``watch_events``) and sets preferences; their export holds every row they sent, including the
malformed lines of their imports (quarantine, raw text). Then they are erased the way
``DELETE /users/{id}`` does it (:func:`serving.userdata.erase_user_files`) and the nightly runs.

Stores enumerated afterwards: every lake table (by rows), the feedback log and profiles (through
the public functions of ``core.feedback`` / ``serving.userdata``), every version of every
LanceDB table, and, byte by byte, every other file under the workspace: the MLflow database and
artifact store (registered, challenger and logged-model copies of ``ids.json``, datasets), the
local model folders and registry cache, the Dagster storage and the run logs. The erasure record
itself must keep the id (it is what makes later runs drop re-imported rows) and is not scanned.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import lancedb
import polars as pl
import pytest
from mlflow.exceptions import MlflowException

from core.feedback import (
    FeedbackRecord,
    append_feedback,
    read_erasures,
    read_feedback,
    read_feedback_records,
)
from core.lake import read_table
from core.settings import load_settings
from mlops.champion import champion_version, load_champion
from mlops.promotion import rollback
from pipelines.lib.erasure import user_tables
from pipelines.run import run_nightly
from serving.schemas import PreferencesBody
from serving.userdata import erase_user_files, export_user, load_profile, save_profile
from tests.conftest import write_tmp_overlay
from tests.pipelines.world_copy import relocate_mlflow

pytestmark = pytest.mark.slow

USER = "sitcom-lover"  # the sample user whose Netflix export has a malformed line


def _files_naming(root: Path, user: str, skip: Path) -> list[Path]:
    needle = user.encode()
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and skip not in p.parents and needle in p.read_bytes()
    ]


def test_erased_user_is_in_no_store_after_the_next_nightly(sample_world, tmp_path) -> None:
    settings, _, _ = sample_world
    shutil.copytree(settings.paths.lake.parent, tmp_path / "var")
    files = ["configs/sample.yaml", str(write_tmp_overlay(tmp_path))]
    s = load_settings(*files)
    relocate_mlflow(tmp_path / "var" / "mlflow.db", settings.paths.lake.parent, tmp_path / "var")
    lake, feedback = s.paths.lake, s.paths.feedback
    events = read_table(lake, "watch_events")
    title = events.filter(pl.col("user_id") == USER)["title_id"][0]
    fed = append_feedback(
        feedback, FeedbackRecord(user_id=USER, title_id=title, rating=4.5, watched=True)
    )
    save_profile(feedback, USER, PreferencesBody(services=["netflix"], country="GB"))
    assert run_nightly(s, files, partition_key="2026-11-27")  # the feedback reaches the lake
    old_champion = champion_version(s)
    assert USER.encode() in b"".join(
        p.read_bytes() for p in load_champion(s).model_dir.rglob("*.json")
    )

    # export: everything they sent, including the raw text of their malformed lines
    export = export_user(lake, feedback, USER)
    quarantine = read_table(lake, "quarantine").filter(pl.col("user_id") == USER)
    assert quarantine.height >= 1
    assert [q["raw"] for q in export["quarantine"]] == quarantine.sort("file", "line")[
        "raw"
    ].to_list()
    assert (
        len(export["watch_events"])
        == read_table(lake, "watch_events").filter(pl.col("user_id") == USER).height
    )
    assert fed in {e["event_id"] for e in export["watch_events"]}
    assert fed in {f["event_id"] for f in export["feedback"]}
    assert export["profile"]["country"] == "GB"
    assert (
        len(export["unresolved_events"])
        == read_table(lake, "unresolved_events").filter(pl.col("user_id") == USER).height
    )

    erase_user_files(feedback, USER)
    assert run_nightly(s, files, partition_key="2026-11-26")

    leftovers: dict[str, int] = {}
    for table in user_tables(lake):
        leftovers[f"lake/{table}"] = (
            read_table(lake, table).filter(pl.col("user_id") == USER).height
        )
    leftovers["feedback log"] = sum(r.user_id == USER for r in read_feedback_records(feedback))
    leftovers["feedback events"] = read_feedback(feedback).filter(pl.col("user_id") == USER).height
    leftovers["profile"] = int(load_profile(feedback, USER) is not None)
    db = lancedb.connect(str(s.paths.lancedb))
    for name in db.list_tables().tables:
        table = db.open_table(name)
        for version in table.list_versions():
            table.checkout(int(version["version"]))
            if "user_id" in table.schema.names:
                key = f"lancedb/{name}@{version['version']}"
                leftovers[key] = table.count_rows(f"user_id = '{USER}'")
    var = tmp_path / "var"
    for path in _files_naming(var, USER, skip=feedback):
        leftovers[str(path.relative_to(var))] = 1
    assert {k: v for k, v in leftovers.items() if v} == {}, leftovers
    looked_at = {"lake/watch_events", "lake/unresolved_events", "lake/quarantine", "profile"}
    assert looked_at | {"feedback log", "feedback events"} <= set(leftovers)

    assert USER in read_erasures(feedback)  # the record that keeps re-imports out
    assert champion_version(s) != old_champion
    with pytest.raises(MlflowException):  # the version trained on them cannot come back
        rollback(s, old_champion)
