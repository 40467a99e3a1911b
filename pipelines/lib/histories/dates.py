"""Dates written in a user's locale (Netflix's ``NetflixViewingHistory.csv``): detect the order.

Netflix writes the date column in the account's locale: ``1/4/20`` (US), ``28/06/2023`` (UK,
France, Spain...), ``28-06-23`` (Netherlands, Poland...), ``28.06.23`` (Germany...),
``2023-06-28`` or ``2023. 06. 28.`` (Sweden, Hungary...). A date is three numbers split by one
of ``/``, ``-`` or ``.`` (spaces after a separator and a trailing dot allowed), with a two- or
four-digit year (two-digit years are 20YY). A four-digit first number is always year-month-day.

The day/month order of the others is one per file, decided from the whole file
(:func:`detect_date_order`):

1. a row whose first number is 13-31 and second at most 12 is day-first, the reverse month-first;
   rows of one kind decide the file; both kinds in one file is an error naming a line of each;
2. otherwise (every day and month at most 12) the file is *ambiguous*. The export lists views
   newest first, so the order under which the dates run in order most often wins; on a tie, the
   separator decides (``/`` month-first as in the US; ``.`` and ``-`` day-first as in the
   European locales that use them). The file is imported with a warning saying which order was
   chosen and how to override it. When both orders give the same dates (day = month on every
   row) there is nothing to warn about.

An explicit ``date_format`` (:func:`parse_date_format`) accepts strftime forms (``%d/%m/%y``,
``%m-%d-%Y``, ``%Y-%m-%d``) and the letter forms ``D/M/YY``, ``M/D/YY``, ``DD.MM.YY``,
``YYYY-MM-DD``; only the order of its fields matters (any separator is read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from pipelines.lib.histories.common import HistoryImportError

ORDERS = {"DMY": "D/M/YY", "MDY": "M/D/YY", "YMD": "YYYY-MM-DD"}
"""Day/month/year orders and how messages name them."""
_DATE = r"^(\d{1,4})\s*([/.-])\s*(\d{1,2})\s*([/.-])\s*(\d{1,4})\.?$"
_LETTER = {"d": "D", "e": "D", "m": "M", "y": "Y"}


class DateFormatError(ValueError):
    """A ``date_format`` that names no day/month/year order."""


def parse_date_format(fmt: str) -> str:
    """``"%d/%m/%y"`` / ``"D/M/YY"`` / ``"DD.MM.YY"`` -> ``"DMY"`` (see the module docstring)."""
    letters = re.sub(r"[^a-z]", "", fmt.replace("%-", "%").casefold())
    collapsed = re.sub(r"(.)\1+", r"\1", letters)
    order = "".join(_LETTER.get(ch, "?") for ch in collapsed)
    if order not in ORDERS:
        raise DateFormatError(
            f"unknown date format {fmt!r}: give the order of day, month and year, e.g. "
            "%d/%m/%y, %m/%d/%y, %Y-%m-%d (or D/M/YY, M/D/YY, YYYY-MM-DD)"
        )
    return order


def _parts(dates: pl.Expr) -> pl.Expr:
    return dates.str.strip_chars().str.extract_groups(_DATE)


def parse_dates(dates: pl.Expr, order: str) -> pl.Expr:
    """Locale date strings -> Date in the day/month/year ``order`` (null when not a date).

    A four-digit first number is read year-month-day whatever ``order`` says.
    """
    g = _parts(dates)
    first, sep1, second, sep2, third = (g.struct.field(str(i)) for i in range(1, 6))
    iso_row = first.str.len_chars() == 4
    same_sep = sep1 == sep2
    if order == "YMD":
        year, month, day = first, second, third
    elif order == "DMY":
        year, month, day = third, second, first
    else:
        year, month, day = third, first, second
    year = pl.when(iso_row).then(first).otherwise(year)
    month = pl.when(iso_row).then(second).otherwise(month)
    day = pl.when(iso_row).then(third).otherwise(day)
    valid_year = year.str.len_chars().is_in([2, 4])
    if order == "YMD":  # "28/06/23" is no year-first date
        valid_year = valid_year & iso_row
    year = pl.when(year.str.len_chars() == 2).then(pl.lit("20") + year).otherwise(year)
    iso = pl.concat_str([year, month.str.zfill(2), day.str.zfill(2)], separator="-")
    parsed = iso.str.to_date("%Y-%m-%d", strict=False)
    return pl.when(same_sep & valid_year & (day.str.len_chars() <= 2)).then(parsed)


@dataclass(frozen=True)
class DateOrder:
    """The order chosen for a file and, when it was a guess, the warning to show."""

    order: str
    warning: str | None = None

    @property
    def name(self) -> str:
        return ORDERS[self.order]


def _disorder(dates: pl.Series) -> int:
    """How many steps of ``dates`` break the file's main direction (nulls skipped)."""
    s = dates.drop_nulls()
    if s.len() < 2:
        return 0
    step = s.to_physical().diff().drop_nulls()
    return min(int((step > 0).sum()), int((step < 0).sum()))


def detect_date_order(dates: pl.Series, file: str, lines: pl.Series) -> DateOrder:
    """The day/month order of a file's date column (rules in the module docstring)."""
    frame = pl.DataFrame({"d": dates, "line": lines}).with_columns(g=_parts(pl.col("d")))
    parts = frame.unnest("g").drop_nulls("1")
    if parts.is_empty():
        return DateOrder("MDY")
    iso = parts.filter(pl.col("1").str.len_chars() == 4)
    if iso.height * 2 > parts.height:
        return DateOrder("YMD")
    local = parts.filter(pl.col("1").str.len_chars() <= 2).with_columns(
        a=pl.col("1").cast(pl.Int32), b=pl.col("3").cast(pl.Int32)
    )
    day_first = local.filter(pl.col("a").is_between(13, 31) & pl.col("b").is_between(1, 12))
    month_first = local.filter(pl.col("b").is_between(13, 31) & pl.col("a").is_between(1, 12))
    if day_first.height and month_first.height:
        raise HistoryImportError(
            file,
            "dates mix day-first and month-first forms (lines "
            f"{day_first['line'][0]} and {month_first['line'][0]}); pass --date-format",
        )
    if day_first.height:
        return DateOrder("DMY")
    if month_first.height:
        return DateOrder("MDY")
    if local.filter(pl.col("a") != pl.col("b")).is_empty():
        return DateOrder("MDY")
    column = pl.col("d")
    by_order = {
        order: _disorder(frame.select(parse_dates(column, order)).to_series())
        for order in ("DMY", "MDY")
    }
    if by_order["DMY"] != by_order["MDY"]:
        order = min(by_order, key=lambda k: by_order[k])
        why = "the dates run in order that way"
    else:
        seps = local["2"].value_counts(sort=True)
        sep = seps["2"][0] if seps.height else "/"
        order = "MDY" if sep == "/" else "DMY"
        why = f"'{sep}' dates are {'month' if order == 'MDY' else 'day'}-first in most locales"
    other = "%m/%d/%y" if order == "DMY" else "%d/%m/%y"
    warning = (
        f"{file}: no date has a day above 12, so the day/month order is a guess: read as "
        f"{ORDERS[order]} ({why}); if that is wrong, import again with --date-format {other}"
    )
    return DateOrder(order, warning)
