"""Netflix ViewingHistory and ViewingActivity parsing on hand-written tricky lines."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines.lib.histories.common import HistoryImportError
from pipelines.lib.histories.netflix import (
    AUTOPLAY_MIN_SECONDS,
    NetflixTitle,
    parse_netflix_activity,
    parse_netflix_history,
    profile_slug,
    split_netflix_title,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "Code Geass: Lelouch of the Rebellion: Season 2: Turn 1 Lelouch of the Rebellion",
            NetflixTitle(
                "Code Geass: Lelouch of the Rebellion",
                True,
                2,
                None,
                "Turn 1 Lelouch of the Rebellion",
            ),
        ),
        ("Dark: Staffel 1: Geheimnisse", NetflixTitle("Dark", True, 1, None, "Geheimnisse")),
        ("Élite: Temporada 3: Episodio 4", NetflixTitle("Élite", True, 3, 4, "Episodio 4")),
        ("Lupin: Saison 1: Chapitre 1", NetflixTitle("Lupin", True, 1, 1, "Chapitre 1")),
        ("Suburra: Stagione 2: Fiori", NetflixTitle("Suburra", True, 2, None, "Fiori")),
        (
            "Undercover: Seizoen 1: Aflevering 2",
            NetflixTitle("Undercover", True, 1, 2, "Aflevering 2"),
        ),
        ("1983: Sezon 1: Odcinek 1", NetflixTitle("1983", True, 1, 1, "Odcinek 1")),
        ("鬼滅の刃: シーズン1: 残酷", NetflixTitle("鬼滅の刃", True, 1, None, "残酷")),
        (
            "Chernobyl: Limited Series: 1:23:45",
            NetflixTitle("Chernobyl", True, None, None, "1:23:45"),
        ),
        ("Money Heist: Part 3: Episode 1", NetflixTitle("Money Heist", True, 3, 1, "Episode 1")),
        (
            "Tiger King: Volume 1: Not Your Average Joe",
            NetflixTitle("Tiger King", True, 1, None, "Not Your Average Joe"),
        ),
        (
            "Avatar: The Last Airbender: Book 1: Water: The Boy in the Iceberg",
            NetflixTitle(
                "Avatar: The Last Airbender", True, 1, None, "Water: The Boy in the Iceberg"
            ),
        ),
        (
            "Breaking Bad: Season 1: Pilot (Episode 1)",
            NetflixTitle("Breaking Bad", True, 1, 1, "Pilot"),
        ),
        ("Friends: Season 1 (Episode 3)", NetflixTitle("Friends", True, 1, 3, None)),
        (
            "Stranger Things: Stranger Things 2: Chapter One: MADMAX",
            NetflixTitle("Stranger Things", True, 2, None, "Chapter One: MADMAX"),
        ),
        (
            "Stranger Things: Chapter Two: The Weirdo on Maple Street",
            NetflixTitle(
                "Stranger Things", True, None, None, "Chapter Two: The Weirdo on Maple Street"
            ),
        ),
        # movies with colons or part words stay whole
        ("Kill Bill: Vol. 2", NetflixTitle("Kill Bill: Vol. 2")),
        (
            "Harry Potter and the Deathly Hallows: Part 2",
            NetflixTitle("Harry Potter and the Deathly Hallows: Part 2"),
        ),
        ("John Wick: Chapter 2", NetflixTitle("John Wick: Chapter 2")),
        ("Black Mirror: Bandersnatch", NetflixTitle("Black Mirror: Bandersnatch")),
        ("2001: A Space Odyssey", NetflixTitle("2001: A Space Odyssey")),
    ],
)
def test_split_netflix_title(raw: str, expected: NetflixTitle) -> None:
    assert split_netflix_title(raw) == expected


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_viewing_history_episodes_resolve_to_series_and_us_dates(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "NetflixViewingHistory.csv",
        'Title,Date\n"Dark: Season 2: Lost and Found","12/31/19"\n"Heat","1/2/20"\n',
    )
    result = parse_netflix_history([path], "alice")
    ev = result.events
    assert ev["raw_title"].to_list() == ["Dark", "Heat"]
    assert ev["title_type"].to_list() == ["series", None]
    assert ev["season"].to_list() == [2, None]
    assert ev["episode_title"].to_list() == ["Lost and Found", None]
    assert ev["event_time"].to_list() == [
        datetime(2019, 12, 31, tzinfo=UTC),
        datetime(2020, 1, 2, tzinfo=UTC),
    ]
    assert ev["line"].to_list() == [2, 3]
    assert result.quarantine.is_empty()


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["13/01/20", "02/03/20"], [date(2020, 1, 13), date(2020, 3, 2)]),  # D/M detected from 13
        (["01/13/20", "02/03/20"], [date(2020, 1, 13), date(2020, 2, 3)]),  # M/D detected from 13
        (["02/03/20", "04/05/20"], [date(2020, 2, 3), date(2020, 4, 5)]),  # nothing ambiguous: US
        (["24.12.21", "01.02.2022"], [date(2021, 12, 24), date(2022, 2, 1)]),
        (["2021-12-24", "2022-02-01"], [date(2021, 12, 24), date(2022, 2, 1)]),
    ],
)
def test_locale_dates_are_detected_per_file(
    tmp_path: Path, dates: list[str], expected: list[date]
) -> None:
    body = "".join(f'"Heat","{d}"\n' for d in dates)
    path = _write(tmp_path, "h.csv", "Title,Date\n" + body)
    ev = parse_netflix_history([path], "u").events
    assert ev["event_time"].dt.date().to_list() == expected


@pytest.mark.parametrize("fmt", ["D/M/YY", "%d/%m/%y", "%d-%m-%Y", "DD.MM.YY"])
def test_explicit_date_format_wins_and_misfits_are_quarantined(tmp_path: Path, fmt: str) -> None:
    path = _write(
        tmp_path,
        "h.csv",
        'Title,Date\n"Heat","02/03/20"\n"Heat","13/13/20"\n"Heat","2020-01-01"\n',
    )
    result = parse_netflix_history([path], "u", date_format=fmt)
    # any separator is read; a four-digit first number is always year-month-day
    assert result.events["event_time"].dt.date().to_list() == [date(2020, 3, 2), date(2020, 1, 1)]
    q = result.quarantine.row(0, named=True)
    assert (q["line"], q["reason"], q["raw"]) == (
        3,
        "Date is not a D/M/YY date",
        '"Heat","13/13/20"',
    )
    assert q["file"] == str(path)


def test_unknown_date_format_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "h.csv", 'Title,Date\n"Heat","02/03/20"\n')
    with pytest.raises(HistoryImportError, match=r"--date-format: unknown date format '%B %d'"):
        parse_netflix_history([path], "u", date_format="%B %d")


def test_mixed_day_first_and_month_first_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "h.csv", 'Title,Date\n"A","13/01/20"\n"B","01/13/20"\n')
    with pytest.raises(HistoryImportError, match=r"h\.csv.*lines 2 and 3"):
        parse_netflix_history([path], "u")


def test_malformed_lines_are_quarantined_with_line_numbers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "h.csv",
        'Title,Date\n"Heat","1/2/20"\n"Too","many","fields"\n"","1/2/20"\n"Heat","2/30/20"\n\n"Dark","1/3/20"\n',
    )
    result = parse_netflix_history([path], "u")
    assert result.events["line"].to_list() == [2, 7]
    q = result.quarantine.sort("line")
    assert q["line"].to_list() == [3, 4, 5]
    assert q["reason"].to_list() == [
        "expected 2 fields, found 3",
        "empty Title",
        "Date is not a M/D/YY date",
    ]
    assert result.rows_read == 5


def test_missing_columns_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "ratings.csv", "Const,Your Rating\ntt1,5\n")
    with pytest.raises(
        HistoryImportError, match=r"ratings\.csv:1: missing column\(s\) Title, Date"
    ):
        parse_netflix_history([path], "u")


ACTIVITY_HEADER = (
    "Profile Name,Start Time,Duration,Attributes,Title,Supplemental Video Type,Device Type,"
    "Bookmark,Latest Bookmark,Country\n"
)


def test_activity_drops_trailers_and_autoplay_previews(tmp_path: Path) -> None:
    rows = [
        "Ann,2021-07-11 18:04:01,00:42:10,,Dark: Season 1: Secrets (Episode 1),,TV,00:42:10,,DE (Germany)",
        "Ann,2021-07-11 19:00:00,00:01:30,,Dark: Season 2: Trailer,TRAILER,TV,00:01:30,,DE (Germany)",
        "Ann,2021-07-11 19:05:00,00:00:45,Autoplayed: user action: None; ,Heat,,TV,00:00:45,,DE (Germany)",
        "Ann,2021-07-11 19:10:00,00:30:00,Autoplayed: user action: None; ,Heat,,TV,01:20:00,,DE (Germany)",
        "Ann,2021-07-11 20:00:00,00:00:20,,Dark,HOOK,TV,00:00:20,,DE (Germany)",
        "Ann,not a time,00:10:00,,Heat,,TV,00:10:00,,DE (Germany)",
    ]
    path = _write(tmp_path, "ViewingActivity.csv", ACTIVITY_HEADER + "\n".join(rows) + "\n")
    result = parse_netflix_activity([path], "fam")
    ev = result.events
    assert ev["raw_title"].to_list() == ["Dark", "Heat"]
    assert ev["season"].to_list() == [1, None]
    assert ev["episode"].to_list() == [1, None]
    assert ev["user_id"].to_list() == ["fam-ann", "fam-ann"]
    assert ev["bookmark_seconds"].to_list() == [2530.0, 4800.0]
    assert ev["event_time"][0] == datetime(2021, 7, 11, 18, 4, 1, tzinfo=UTC)
    assert dict(result.dropped) == {
        "supplemental video (TRAILER)": 1,
        "supplemental video (HOOK)": 1,
        f"autoplayed under {AUTOPLAY_MIN_SECONDS} s": 1,
    }
    assert result.quarantine["line"].to_list() == [7]
    assert result.rows_read == len(rows)


def test_activity_profiles_become_users_or_are_filtered(tmp_path: Path) -> None:
    rows = [
        "Ann,2021-07-11 18:00:00,00:42:10,,Heat,,TV,00:42:10,,US",
        "Kids Room,2021-07-11 18:00:00,00:42:10,,Bluey,,TV,00:42:10,,US",
    ]
    path = _write(tmp_path, "ViewingActivity.csv", ACTIVITY_HEADER + "\n".join(rows) + "\n")
    both = parse_netflix_activity([path], "acct")
    assert sorted(both.events["user_id"].to_list()) == ["acct-ann", "acct-kids-room"]
    one = parse_netflix_activity([path], "kid", profile="Kids Room")
    assert one.events["user_id"].to_list() == ["kid"]
    assert dict(one.dropped) == {"other profile": 1}
    with pytest.raises(HistoryImportError, match="profile 'Bob' not in file"):
        parse_netflix_activity([path], "x", profile="Bob")


@pytest.mark.realdata
def test_real_exports_parse_completely(shared_data: Path) -> None:
    folder = shared_data / "viewing-history" / "netflix"
    history = parse_netflix_history([folder / "NetflixViewingHistory_profile_a.csv"], "a")
    assert history.events.height == 913 and history.quarantine.is_empty()
    series = history.events.filter(pl.col("title_type") == "series")
    assert series.height > 700
    assert "Conversations with a Killer: The Ted Bundy Tapes" in series["raw_title"].to_list()
    activity = parse_netflix_activity([folder / "ViewingActivity_example.csv"], "b")
    assert activity.rows_read == 30
    assert activity.quarantine.is_empty()


def test_profile_slug() -> None:
    assert profile_slug("Kids Room") == "kids-room"
    assert profile_slug("  Zoë & Co. ") == "zoë-co"
    emoji = profile_slug("🍿")
    assert emoji.startswith("profile-") and len(emoji) == 16 and emoji == profile_slug("🍿")
