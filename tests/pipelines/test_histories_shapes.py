"""Export shapes real people have (issue 12.4, 12.7, 12.9; 13.7 encodings), built as variants of
the real layouts: localised episode strings, localised and pre-2017 IMDb, lone Letterboxd files,
headers in any case, Trakt /sync/watched, UTF-16 and Latin-1 files, wrong-format messages."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from core.lake import read_table
from pipelines.lib.histories.common import HistoryImportError, parse_delimited
from pipelines.lib.histories.files import (
    MAX_ZIP_RATIO,
    open_zip,
    read_export,
    read_zip_member,
)
from pipelines.lib.histories.imdb import parse_imdb
from pipelines.lib.histories.importer import import_files, parse_and_resolve
from pipelines.lib.histories.letterboxd import parse_letterboxd
from pipelines.lib.histories.netflix import (
    KnownTitles,
    NetflixTitle,
    parse_netflix_history,
    split_netflix_title,
)
from pipelines.lib.histories.trakt import parse_trakt

CATALOGUE = pl.DataFrame(
    {
        "title_id": ["tv:1", "tv:2", "movie:3", "movie:949", "tv:5", "tv:6", "movie:7"],
        "type": ["series", "series", "movie", "movie", "series", "series", "movie"],
        "title": [
            "Total Drama",
            "Pokémon",
            "Black Mirror: Bandersnatch",
            "Heat",
            "Black Mirror",
            "Élite",
            "Amélie",
        ],
        "year": [2007, 1997, 2018, 1995, 2011, 2018, 2001],
        "imdb_id": [None, None, None, "tt0113277", None, None, "tt0211915"],
    }
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Narcos: Meksyk: Sezon 1: Camelot", ("Narcos: Meksyk", 1, None, "Camelot")),
        ("Dark: Staffel 2: Verloren", ("Dark", 2, None, "Verloren")),
        ("Lupin: Saison 1: Chapitre 1", ("Lupin", 1, 1, "Chapitre 1")),
        ("De Luizenmoeder: Seizoen 1: Aflevering 1", ("De Luizenmoeder", 1, 1, "Aflevering 1")),
        ("Skam Italia: Stagione 1: Episodio 1", ("Skam Italia", 1, 1, "Episodio 1")),
        ("Wiedźmin: Sezon 1: Odcinek 5", ("Wiedźmin", 1, 5, "Odcinek 5")),
        ("Sintonia: Temporada 1: Episódio 1", ("Sintonia", 1, 1, "Episódio 1")),
        ("Gambit królowej: Miniserial: Otwarcie", ("Gambit królowej", None, None, "Otwarcie")),
        ("O Gambito da Rainha: Minissérie: Aberturas", ("O Gambito da Rainha", None, None, "Aberturas")),
        ("Unbelievable: Limited Series: Episode 1", ("Unbelievable", None, 1, "Episode 1")),
        ("La casa de papel: Parte 3: Hemos vuelto", ("La casa de papel", 3, None, "Hemos vuelto")),
        ("Café con aroma de mujer: Temporada 1: Capítulo 5", ("Café con aroma de mujer", 1, 5, "Capítulo 5")),
        ("Dragon Ball Super: Season 2.0: Episode 3", ("Dragon Ball Super", 2, 3, "Episode 3")),
        ("Élite: Temporada 3B: Episodio 1", ("Élite", 3, 1, "Episodio 1")),
        ("Pokémon: Episode 8", ("Pokémon", None, 8, "Episode 8")),
        ("Kill Bill: Vol. 2", None),
        ("John Wick: Chapter 2", None),
        ("Black Mirror: Bandersnatch", None),
    ],
)  # fmt: skip
def test_episode_strings_in_other_languages_and_shapes(raw: str, expected: tuple | None) -> None:
    got = split_netflix_title(raw, KnownTitles.from_catalogue(CATALOGUE))
    if expected is None:
        assert got == NetflixTitle(raw)
    else:
        assert (got.title, got.season, got.episode, got.episode_title) == expected
        assert got.is_episode


def test_named_seasons_split_only_on_a_known_series() -> None:
    known = KnownTitles.from_catalogue(CATALOGUE)
    named = split_netflix_title("Total Drama: Island: Up the Creek", known)
    assert (named.title, named.is_episode, named.episode_title) == (
        "Total Drama",
        True,
        "Island: Up the Creek",
    )
    # without the catalogue, or when the leading part is no known series, nothing is guessed
    assert not split_netflix_title("Total Drama: Island: Up the Creek").is_episode
    assert not split_netflix_title("Mission: Impossible: Fallout", known).is_episode


def test_named_seasons_resolve_to_the_series_through_the_importer(tmp_path: Path) -> None:
    path = tmp_path / "NetflixViewingHistory.csv"
    path.write_text(
        'Title,Date\n"Total Drama: Island: Up the Creek","1/5/21"\n'
        '"Élite: Temporada 3B: Episodio 1","1/6/21"\n"Pokémon: Episode 8","1/7/21"\n'
    )
    events, unresolved, _, summary = parse_and_resolve("netflix", "u", [path], CATALOGUE)
    assert events["title_id"].to_list() == ["tv:1", "tv:6", "tv:2"]
    assert unresolved.is_empty() and summary.resolution_rate == 1.0


IMDB_IT = """Const,Your Rating,Date Rated,Title,Original Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors
tt0113277,9,2023-05-01,Heat - La sfida,Heat,https://www.imdb.com/title/tt0113277,Film,8.3,170,1995,"Azione, Crimine",700000,1995-12-15,Michael Mann
tt5753856,8,2023-05-02,Dark,Dark,https://www.imdb.com/title/tt5753856,Serie TV,8.7,60,2017,Dramma,400000,2017-12-01,
tt7879820,7,2023-05-03,La regina degli scacchi,The Queen's Gambit,https://www.imdb.com/title/tt7879820,Mini serie TV,8.5,395,2020,Dramma,600000,2020-10-23,
tt0211915,6,2023-05-04,Il favoloso mondo di Amélie,Le fabuleux destin d'Amélie Poulain,https://www.imdb.com/title/tt0211915,Corto,8.3,122,2001,Commedia,700000,2001-04-25,J-P J
tt9999999,6,2023-05-05,Qualcosa,Something,https://www.imdb.com/title/tt9999999,Spettacolo teatrale,7,90,2010,Dramma,10,2010-01-01,
tt1234567,8,2023-05-06,The Last of Us Parte II,The Last of Us Part II,https://www.imdb.com/title/tt1234567,Videogioco,9,,2020,Azione,1000,2020-06-19,
"""  # noqa: E501


def test_imdb_with_a_localised_interface_keeps_every_row_and_resolves_by_id(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(IMDB_IT)
    result = parse_imdb([path], "u")
    assert result.quarantine.is_empty()
    ev = result.events
    assert ev["title_type"].to_list() == ["movie", "series", "series", "movie", None]
    assert dict(result.dropped) == {"not a film or series (Videogioco)": 1}
    events, unresolved, _, _ = parse_and_resolve("imdb", "u", [path], CATALOGUE)
    # localised titles resolve by the tt id (Heat, Amélie); the unknown type is kept, unresolved
    assert sorted(events["title_id"].to_list()) == ["movie:7", "movie:949"]
    assert unresolved.height == 3


IMDB_2016 = """"position","const","created","modified","description","Title","Title type","Directors","You rated","IMDb Rating","Runtime (mins)","Year","Genres","Num. Votes","Release Date (month/day/year)","URL"
"1","tt0113277","Wed Mar 19 00:00:00 2014","Wed Mar 19 00:00:00 2014","","Heat","Feature Film","Michael Mann","9","8.2","170","1995","action, crime, drama","450000","1995-12-15","http://www.imdb.com/title/tt0113277/"
"2","tt5753856","Sat Jan 14 00:00:00 2017","Sat Jan 14 00:00:00 2017","","Dark","TV Series","","8","8.7","60","2017","drama","1000","2017-12-01","http://www.imdb.com/title/tt5753856/"
"3","tt0211915","Sun Jan 15 00:00:00 2017","Sun Jan 15 00:00:00 2017","","Amelie","Feature Film","J-P J","","8.4","122","2001","comedy","500000","2001-04-25","http://www.imdb.com/title/tt0211915/"
"""  # noqa: E501


def test_imdb_pre_2017_layout(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(IMDB_2016)
    result = parse_imdb([path], "u")
    assert result.quarantine.is_empty()
    ev = result.events
    assert ev.select("imdb_id", "title_type", "rating").rows() == [
        ("tt0113277", "movie", 9.0),
        ("tt5753856", "series", 8.0),
    ]
    assert ev["event_time"][0] == datetime(2014, 3, 19, tzinfo=UTC)
    assert dict(result.dropped) == {"not rated (a list entry, not a view)": 1}


def test_headers_in_any_case(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    lower = IMDB_IT.split("\n", 1)
    path.write_text(lower[0].upper() + "\n" + lower[1])
    assert parse_imdb([path], "u").events.height == 5
    netflix = tmp_path / "NetflixViewingHistory.csv"
    netflix.write_text('title,DATE\n"Heat","1/4/20"\n')
    assert parse_netflix_history([netflix], "u").events["raw_title"].to_list() == ["Heat"]


DIARY = """Date,Name,Year,Letterboxd URI,Rating,Rewatch,Tags,Watched Date
2024-01-03,Heat,1995,https://boxd.it/aaa1,4.5,,,2024-01-02
"""
RATINGS = """Date,Name,Year,Letterboxd URI,Rating
2024-02-10,Heat,1995,https://boxd.it/f1,4
2023-12-01,Amélie,2001,https://boxd.it/f3,5
"""
WATCHED = """Date,Name,Year,Letterboxd URI
2023-11-11,Heat,1995,https://boxd.it/f1
"""


@pytest.mark.parametrize(
    ("name", "text", "rows"),
    [
        ("diary.csv", DIARY, [("Heat", 4.5)]),
        ("ratings.csv", RATINGS, [("Heat", 4.0), ("Amélie", 5.0)]),
        ("watched.csv", WATCHED, [("Heat", None)]),
        ("letterboxd-diary-2024.csv", DIARY.upper().replace("HTTPS", "https"), None),
        ("my-ratings.csv", RATINGS, [("Heat", 4.0), ("Amélie", 5.0)]),
    ],
)
def test_a_lone_letterboxd_csv(tmp_path: Path, name: str, text: str, rows: list | None) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = parse_letterboxd([path], "u")
    assert result.quarantine.is_empty()
    if rows is not None:
        assert result.events.select("raw_title", "rating").rows() == rows
    else:  # an upper-cased diary: recognised by its Watched Date column
        assert result.events.height == 1


WATCHED_MOVIES = [
    {
        "plays": 2,
        "last_watched_at": "2024-03-01T20:00:00.000Z",
        "last_updated_at": "2024-03-01T20:00:00.000Z",
        "movie": {
            "title": "Heat",
            "year": 1995,
            "ids": {"trakt": 1, "slug": "heat-1995", "imdb": "tt0113277", "tmdb": 949},
        },
    }
]
WATCHED_SHOWS = [
    {
        "plays": 3,
        "last_watched_at": "2024-02-02T21:00:00.000Z",
        "last_updated_at": "2024-02-02T21:00:00.000Z",
        "reset_at": None,
        "show": {
            "title": "Total Drama",
            "year": 2007,
            "ids": {"trakt": 9, "slug": "total-drama", "tvdb": 1, "imdb": None, "tmdb": 1},
        },
        "seasons": [
            {
                "number": 1,
                "episodes": [
                    {"number": 1, "plays": 1, "last_watched_at": "2024-02-01T21:00:00.000Z"},
                    {"number": 2, "plays": 2, "last_watched_at": "2024-02-02T21:00:00.000Z"},
                ],
            }
        ],
    },
    {
        "plays": 1,
        "last_watched_at": "2024-01-01T10:00:00.000Z",
        "last_updated_at": "2024-01-01T10:00:00.000Z",
        "show": {"title": "Pokémon", "year": 1997, "ids": {"trakt": 7, "tmdb": 2}},
    },
]


def test_trakt_sync_watched(tmp_path: Path) -> None:
    movies, shows = tmp_path / "watched-movies.json", tmp_path / "watched-shows.json"
    movies.write_text(json.dumps(WATCHED_MOVIES, indent=2))
    shows.write_text(json.dumps(WATCHED_SHOWS, indent=2))
    result = parse_trakt([movies, shows], "u")
    assert result.quarantine.is_empty()
    ev = result.events
    assert ev.select("raw_title", "title_type", "season", "episode", "rewatch").rows() == [
        ("Heat", "movie", None, None, True),
        ("Total Drama", "series", 1, 1, False),
        ("Total Drama", "series", 1, 2, True),
        ("Pokémon", "series", None, None, False),
    ]
    events, unresolved, _, _ = parse_and_resolve("trakt", "u", [movies, shows], CATALOGUE)
    assert events["title_id"].to_list() == ["movie:949", "tv:1", "tv:1", "tv:2"]
    assert unresolved.is_empty()


def test_trakt_watched_and_history_of_the_same_view_import_once(tmp_path: Path) -> None:
    history = [
        {
            "id": 1,
            "watched_at": "2024-03-01T20:00:00.000Z",
            "action": "watch",
            "type": "movie",
            "movie": WATCHED_MOVIES[0]["movie"],
        }
    ]
    h, w = tmp_path / "history.json", tmp_path / "watched-movies.json"
    h.write_text(json.dumps(history))
    w.write_text(json.dumps(WATCHED_MOVIES))
    lake = tmp_path / "lake"
    import_files("trakt", "u", [h], lake, titles=CATALOGUE)
    again = import_files("trakt", "u", [w], lake, titles=CATALOGUE)
    assert again.added["watch_events"] == 0
    assert read_table(lake, "watch_events").height == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig", "cp1252", "latin-1"])
def test_utf16_and_latin1_exports_import_correctly(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "NetflixViewingHistory.csv"
    text = 'Title,Date\n"Amélie","24/12/2021"\n"Élite: Temporada 3B: Episodio 1","1/2/2022"\n'
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    events, _, quarantine, summary = parse_and_resolve("netflix", "u", [path], CATALOGUE)
    assert quarantine.is_empty()
    assert events["title_id"].to_list() == ["movie:7", "tv:6"]
    expect_warning = encoding in ("cp1252", "latin-1")
    assert any("not UTF-8" in w for w in summary.warnings) == expect_warning


def test_unquoted_fast_path_matches_the_csv_path() -> None:
    unquoted = "a,b\n1,2\n\n3\n4,5,6\n7,8\n"
    quoted = unquoted + '"9","10"\n'
    fast, fast_bad = parse_delimited(unquoted, "f", required=("a", "b"), source="s")
    slow, slow_bad = parse_delimited(quoted, "f", required=("a", "b"), source="s")
    assert fast.rows.rows() == slow.rows.head(2).rows()
    assert fast.rows["line"].to_list() == [2, 6]
    assert (
        fast_bad.select("line", "raw", "reason").rows()
        == slow_bad.select("line", "raw", "reason").rows()
        == [(4, "3", "expected 2 fields, found 1"), (5, "4,5,6", "expected 2 fields, found 3")]
    )


def test_zip_bomb_stops_at_the_ratio_cap(tmp_path: Path) -> None:
    path = tmp_path / "letterboxd.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("diary.csv", b"\n" * (8 * 1024 * 1024))  # ~8 KB compressed
    with open_zip(path) as archive:
        (member,) = archive.infolist()
        with pytest.raises(HistoryImportError, match=f"more than {MAX_ZIP_RATIO}x.*zip bomb"):
            read_zip_member(archive, member, "diary.csv")


@pytest.mark.parametrize(
    ("fmt", "make", "expected"),
    [
        ("netflix", "folder", "is a folder (a.csv), but --format netflix expects a Netflix"),
        ("imdb", "letterboxd-folder", "use --format letterboxd"),
        (
            "netflix",
            "zip",
            "looks like a ZIP archive (a Letterboxd export: diary.csv), not a Netflix",
        ),
        ("movielens", "netflix-csv", "looks like a Netflix viewing history CSV (columns Title, "),
        ("netflix", "imdb-csv", "looks like an IMDb ratings CSV, not a Netflix"),
        ("trakt", "netflix-csv", "use --format netflix"),
        ("letterboxd", "netflix-csv", "use --format netflix"),
    ],
)
def test_wrong_format_messages_name_what_the_file_looks_like(
    tmp_path: Path, fmt: str, make: str, expected: str
) -> None:
    if make == "folder":
        path = tmp_path / "export"
        path.mkdir()
        (path / "a.csv").write_text("x\n")
    elif make == "letterboxd-folder":
        path = tmp_path / "letterboxd"
        path.mkdir()
        (path / "diary.csv").write_text(DIARY)
    elif make == "zip":
        path = tmp_path / "NetflixViewingHistory.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("diary.csv", DIARY)
    elif make == "netflix-csv":
        path = tmp_path / "ratings.csv"
        path.write_text('Title,Date\n"Heat","1/4/20"\n')
    else:
        path = tmp_path / "NetflixViewingHistory.csv"
        path.write_text(IMDB_IT)
    with pytest.raises(HistoryImportError) as err:
        import_files(fmt, "u", [path], tmp_path / "lake", titles=CATALOGUE)
    assert expected in str(err.value) and str(path) in str(err.value)
    assert not (tmp_path / "lake" / "watch_events").exists()


def test_read_export_refuses_devices_and_links(tmp_path: Path) -> None:
    link = tmp_path / "h.csv"
    link.symlink_to("/dev/zero")
    with pytest.raises(HistoryImportError, match="symbolic link"):
        read_export(link)
    with pytest.raises(HistoryImportError, match="not a regular file"):
        read_export(Path("/dev/zero"))


def test_viewing_activity_with_lower_case_headers_and_named_seasons(tmp_path: Path) -> None:
    path = tmp_path / "ViewingActivity.csv"
    path.write_text(
        "profile name,start time,duration,attributes,title,supplemental video type,"
        "device type,bookmark,latest bookmark,country\n"
        "Ana,2021-07-11 18:04:01,00:22:10,,Total Drama: Island: Up the Creek,,TV,00:22:10,"
        "Latest View,PL (Poland)\n"
        "Ana,2021-07-10 18:04:01,00:00:40,,Élite: Temporada 3B: Episodio 1,TRAILER,TV,"
        "00:00:40,Latest View,PL (Poland)\n"
    )
    events, _, quarantine, summary = parse_and_resolve("netflix-activity", "u", [path], CATALOGUE)
    assert quarantine.is_empty() and summary.dropped_reasons == {"supplemental video (TRAILER)": 1}
    assert events.select("user_id", "title_id").rows() == [("u-ana", "tv:1")]
