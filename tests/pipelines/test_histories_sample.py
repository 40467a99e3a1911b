"""The committed synthetic sample histories: reproducible, and they import as designed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import polars as pl
import pytest

from core import PROJECT_ROOT
from core.lake import read_table
from pipelines.lib.histories.importer import import_files

SAMPLE = PROJECT_ROOT / "data" / "sample" / "histories"
SEED_CSV = PROJECT_ROOT / "data" / "sample" / "catalog_seed.csv"


def _script():
    spec = importlib.util.spec_from_file_location(
        "make_sample_users", PROJECT_ROOT / "scripts" / "make_sample_users.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _seed_catalogue() -> pl.DataFrame:
    """The catalogue the sample pipeline builds from the seed, reduced to what matching uses."""
    seed = pl.read_csv(SEED_CSV, infer_schema=False)
    is_tv = pl.col("type") == "tv"
    return seed.select(
        title_id=pl.when(is_tv).then(pl.lit("tv:")).otherwise(pl.lit("movie:")) + pl.col("tmdb_id"),
        tmdb_id=pl.col("tmdb_id").cast(pl.Int64),
        type=pl.when(is_tv).then(pl.lit("series")).otherwise(pl.lit("movie")),
        title="title",
        original_title="original_title",
        year=pl.col("year").cast(pl.Int32),
        imdb_id="imdb_id",
        runtime=pl.col("runtime").cast(pl.Int32),
    )


def test_committed_sample_is_what_the_script_generates(tmp_path: Path) -> None:
    out = tmp_path / "histories"
    assert _script().main(["--out", str(out)]) == 0
    generated = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    committed = {p.relative_to(SAMPLE): p.read_bytes() for p in SAMPLE.rglob("*") if p.is_file()}
    assert generated.keys() == committed.keys()
    changed = [str(k) for k in generated if generated[k] != committed[k]]
    assert not changed, f"regenerate with scripts/make_sample_users.py: {changed}"


def test_sample_imports_with_designed_counts(tmp_path: Path) -> None:
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    catalogue = _seed_catalogue()
    lake = tmp_path / "lake"
    totals = {"unresolved": 0, "quarantined": 0, "dropped": 0}
    for entry in manifest:
        summary = import_files(
            entry["format"], entry["user"], [SAMPLE / entry["path"]], lake, titles=catalogue
        )
        for key in totals:
            totals[key] += getattr(summary, key)
    events = read_table(lake, "watch_events")
    per_user = dict(events.group_by("user_id").len().iter_rows())
    crowd = {u: n for u, n in per_user.items() if u.startswith(("household-", "viewer-"))}
    personas = {u: n for u, n in per_user.items() if u not in crowd}
    assert len(personas) == 11  # ten invented users, the family account as two profiles
    assert all(20 <= n <= 60 for n in personas.values()), personas
    # the crowd: 32 Netflix households of five profiles and 80 viewers with their own exports
    assert len(crowd) == 240
    assert sum(u.startswith("household-") for u in crowd) == 160
    titles_per_user = events.group_by("user_id").agg(pl.col("title_id").n_unique())["title_id"]
    assert titles_per_user.min() >= 1 and titles_per_user.max() <= 90
    assert 15 <= titles_per_user.median() <= 30  # log-normal history lengths around 22 titles
    assert totals["unresolved"] == 3
    assert totals["quarantined"] == 1
    assert read_table(lake, "quarantine")["reason"].to_list() == ["Date is not a M/D/YY date"]
    sources = set(events["source"].to_list())
    assert sources == {"imdb", "netflix", "netflix-activity", "letterboxd", "trakt"}
    assert events.filter(pl.col("season").is_not_null())["title_id"].str.starts_with("tv:").all()


@pytest.mark.parametrize("user", ["anime-fan", "horror-fan"])
def test_tastes_are_distinct(user: str) -> None:
    """Each invented user's history leans to their genre (what the recommender should learn)."""
    seed = pl.read_csv(SEED_CSV, infer_schema=False)
    path = next((SAMPLE / user).iterdir())
    text = path.read_text()
    wanted = {"anime-fan": "ja", "horror-fan": "Horror"}[user]
    column = "original_language" if user == "anime-fan" else "genres"
    fitting = seed.filter(pl.col(column).str.contains(wanted))["title"].to_list()
    assert sum(title in text for title in fitting) >= 10
