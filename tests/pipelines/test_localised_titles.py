"""Localised titles of real exports resolve through TMDB aliases fetched from
the recorded TMDB source (recorded mode), as the nightly's ``tmdb_titles`` asset fetches them."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from core.settings import Settings
from pipelines.lib import sources
from pipelines.lib.histories.importer import parse_and_resolve

EXPORT = """Title,Date
"Mad Max: Estrada da Fúria","5/1/23"
"Chihiros Reise ins Zauberland","5/2/23"
"Dom z papieru: Sezon 1: Odcinek 1","5/3/23"
"Round 6: Temporada 1: Luz vermelha, luz verde","5/4/23"
"Der Pate","5/5/23"
"Mad Max: Fury Road","5/6/23"
"""


def test_a_localised_netflix_export_resolves_like_the_english_one(
    settings: Settings, tmp_path: Path
) -> None:
    with sources.tmdb_client(settings) as client:
        titles = sources.fetch_tmdb_titles(client, settings.sources.tmdb.discover_pages)
    with_aliases = titles.filter(pl.col("aliases").list.len() > 0)
    assert with_aliases.height >= 8
    path = tmp_path / "NetflixViewingHistory.csv"
    path.write_text(EXPORT, encoding="utf-8")
    events, unresolved, _, summary = parse_and_resolve("netflix", "pl", [path], titles)
    assert unresolved.height == 0, unresolved.select("raw_title", "reason")
    assert events["title_id"].to_list() == [
        "movie:76341",
        "movie:129",
        "tv:71446",
        "tv:93405",
        "movie:238",
        "movie:76341",
    ]
    assert summary.matched_by == {"alias title": 5, "title": 1}
    # without the aliases the same export resolves one row in six
    bare = parse_and_resolve("netflix", "pl", [path], titles.drop("aliases"))[3]
    assert bare.resolved == 1
