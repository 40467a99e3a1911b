""" "Continue watching": where a user is in each series, and films left unfinished.

Read from the imported histories (lake ``watch_events``: the Netflix importer keeps ``season``,
``episode`` and ``episode_title`` per viewed episode, ``title_id`` being the series) plus the
feedback log (``completion``). For a series: the last episode watched (latest ``event_time``), the
episodes watched per season (distinct episode numbers, or distinct titles when the export gives no
number, e.g. limited series) and the suggested next one (same season, next number: the catalogue
has no episode lists, so "next" is the following number, not a checked episode). A film is
unfinished when its latest completion is below :data:`FINISHED`. Erased users (the nightly has not
deleted their lake rows yet) get nothing from the lake.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from pydantic import BaseModel, Field

from core.feedback import read_erasures, read_feedback
from core.lake import read_table

FINISHED = 0.9
"""A completion at or above this counts as finished."""


class SeasonProgress(BaseModel):
    season: int | None
    episodes_watched: int


class Progress(BaseModel):
    content_id: str
    title: str | None = None
    kind: str
    """``series`` (episode progress) or ``movie`` (unfinished)."""
    last_watched_at: str
    season: int | None = None
    episode: int | None = None
    episode_title: str | None = None
    next_season: int | None = None
    next_episode: int | None = None
    seasons: list[SeasonProgress] = Field(default_factory=list)
    completion: float | None = None


def user_events(lake: Path, feedback: Path, user: str) -> pl.DataFrame:
    """The user's lake events (unless erased) and feedback events (both ``WATCH_EVENTS`` rows)."""
    cols = ["title_id", "event_time", "season", "episode", "episode_title", "completion"]
    frames = [read_feedback(feedback)]
    if user not in read_erasures(feedback):
        frames.append(read_table(lake, "watch_events"))
    return pl.concat(
        [f.filter(pl.col("user_id") == user).select(cols) for f in frames], how="vertical_relaxed"
    ).filter(pl.col("title_id").is_not_null())


def continue_watching(
    events: pl.DataFrame, kinds: dict[str, str], names: dict[str, str], limit: int = 20
) -> list[Progress]:
    """Series in progress and unfinished films, most recent first."""
    if events.height == 0:
        return []
    out: list[Progress] = []
    for (tid,), group in events.sort("event_time").group_by(["title_id"], maintain_order=True):
        last = group.row(-1, named=True)
        when = last["event_time"]
        stamp = when.isoformat() if when is not None else ""
        kind = kinds.get(tid)
        episodic = group.filter(
            pl.col("season").is_not_null()
            | pl.col("episode").is_not_null()
            | pl.col("episode_title").is_not_null()
        )
        if kind == "series" and episodic.height:
            latest = episodic.row(-1, named=True)
            seasons = (
                episodic.with_columns(
                    pl.coalesce(pl.col("episode").cast(pl.String), pl.col("episode_title")).alias(
                        "key"
                    )
                )
                .group_by("season")
                .agg(pl.col("key").n_unique().alias("n"))
                .sort("season", nulls_last=True)
            )
            out.append(
                Progress(
                    content_id=tid,
                    title=names.get(tid),
                    kind="series",
                    last_watched_at=stamp,
                    season=latest["season"],
                    episode=latest["episode"],
                    episode_title=latest["episode_title"],
                    next_season=latest["season"] if latest["episode"] is not None else None,
                    next_episode=latest["episode"] + 1 if latest["episode"] is not None else None,
                    seasons=[
                        SeasonProgress(season=s, episodes_watched=n) for s, n in seasons.iter_rows()
                    ],
                )
            )
        elif kind == "movie":
            done = group.filter(pl.col("completion").is_not_null())
            if done.height and done["completion"][-1] < FINISHED:
                out.append(
                    Progress(
                        content_id=tid,
                        title=names.get(tid),
                        kind="movie",
                        last_watched_at=stamp,
                        completion=float(done["completion"][-1]),
                    )
                )
    out.sort(key=lambda p: p.last_watched_at, reverse=True)
    return out[:limit]
