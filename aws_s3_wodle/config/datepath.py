"""Date variables in a bucket's `<path>`: `logs///YYYY///mm///dd//` names one folder per day.

A variable is its name between runs of at least two slashes. Next to a variable, a run of two slashes
only delimits it, and a longer run also stands for one '/' of the key: `logs///YYYY///mm///dd//` is `logs/`
+ year + `/` + month + `/` + day, `//YYYY//-//mm//-//dd//` is `2026-01-05`, and a `<path>` always names a
folder (a final '/' is added). A Hive key just before a variable takes the value in its own folder:
`year=//YYYY//` and `year=///YYYY//` are both `year=2026`, so a path written for other collectors,
`CustomPrefix/year=///YYYY///month=///mm///day=///dd//`, reads `CustomPrefix/year=2026/month=01/day=05/`.

  YYYY year (4 digits)     mm month, 01-12     m month, 1-12    dd day, 01-31    d day, 1-31
  HH   hour, 00-23         H  hour, 0-23       MM minute, 00-59 M  minute, 0-59

Careful: `mm` is the month and `MM` the minute. The reader lists one day at a time: the prefix up to the
first hour or minute variable, then keeps the keys the whole path matches, so ListObjectsV2 calls grow
with the days read, not with hours or with the bucket. A path with variables therefore names a year, a
month and a day, before any hour or minute.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# name -> (the date or time field it stands for, how it is written, the digits it matches)
VARIABLES: dict[str, tuple[str, str, str]] = {
    "YYYY": ("year", "{:04d}", r"\d{4}"),
    "mm": ("month", "{:02d}", r"\d{2}"), "m": ("month", "{:d}", r"\d{1,2}"),
    "dd": ("day", "{:02d}", r"\d{2}"), "d": ("day", "{:d}", r"\d{1,2}"),
    "HH": ("hour", "{:02d}", r"\d{2}"), "H": ("hour", "{:d}", r"\d{1,2}"),
    "MM": ("minute", "{:02d}", r"\d{2}"), "M": ("minute", "{:d}", r"\d{1,2}"),
}
_TOKEN = re.compile(r"//(?:" + "|".join(VARIABLES) + r")//")
_PIECES = re.compile(r"/+|[^/]+")
_DAY_FIELDS = ("year", "month", "day")
_FORBIDDEN = re.compile(r"[{}^%`\[\]'\"<>~#|\s]")
NAMES = "YYYY, mm, m, dd, d, HH, H, MM, M"


def has_variables(text: str) -> bool:
    return _TOKEN.search(text.replace("\\", "/")) is not None


@dataclass(frozen=True)
class DatePath:
    """A parsed `<path>` with date variables: literal text and variable names, alternating."""

    parts: tuple[tuple[bool, str], ...]   # (is a variable, literal text or variable name), ending in '/'

    @classmethod
    def parse(cls, text: str) -> "DatePath":
        """Raises ValueError with what to write instead."""
        pieces = _PIECES.findall(text.replace("\\", "/"))
        is_var = [p in VARIABLES and 0 < i < len(pieces) - 1 and len(pieces[i - 1]) >= 2 and
                  len(pieces[i + 1]) >= 2 for i, p in enumerate(pieces)]
        parts: list[tuple[bool, str]] = []
        literal = ""
        for i, piece in enumerate(pieces):
            if is_var[i]:
                if literal.endswith("=/"):
                    literal = literal[:-1]  # Hive: year=///YYYY// is year=2026
                parts += [(False, literal), (True, piece)]
                literal = ""
            elif piece.startswith("/"):
                if i == 0:
                    continue  # '/logs' is 'logs', as without variables
                if is_var[i - 1] or (i + 1 < len(pieces) and is_var[i + 1]):
                    literal += "/" if len(piece) > 2 else ""
                else:
                    literal += piece
            else:
                literal += piece
        parts.append((False, literal if literal.endswith("/") else literal + "/"))
        path = cls(tuple((var, s) for var, s in parts if var or s))
        path._check(text)
        return path

    def _check(self, text: str) -> None:
        literals = "\n".join(s for var, s in self.parts if not var)
        if "//" in literals:
            raise ValueError(f"'{text}' has an empty folder ('//'): write a date variable ({NAMES}) between double "
                             "slashes with the key's own '/' beside it, e.g. 'logs///YYYY///mm///dd//'")
        if _FORBIDDEN.search(literals.replace("\n", "")):
            raise ValueError("use an S3 key prefix without spaces, quotes or any of {}^%`[]<>~#|, "
                             "e.g. 'logs///YYYY///mm///dd//'")
        fields = [VARIABLES[s][0] for var, s in self.parts if var]
        missing = [f for f in _DAY_FIELDS if f not in fields]
        if missing:
            raise ValueError(f"a <path> with date variables names the day it holds: add {' and '.join(missing)} "
                             "(e.g. 'logs///YYYY///mm///dd//'), since it is read one day at a time")
        first_time = next((i for i, f in enumerate(fields) if f not in _DAY_FIELDS), len(fields))
        if any(f in _DAY_FIELDS for f in fields[first_time:]):
            raise ValueError("put the hour and minute variables (HH, H, MM, M) after the year, month and day ones")
        for (var, name), (next_var, following) in zip(self.parts, self.parts[1:]):
            if var and VARIABLES[name][2].endswith("{1,2}") and (next_var or following[:1].isdigit()):
                raise ValueError(f"//{name}// (no leading zero) must be followed by a character that is not a digit, "
                                 f"e.g. a '/', or the value is ambiguous; or use //{name * 2}//")

    @property
    def head(self) -> str:
        """The literal start, before the first variable: the same for every day."""
        return "" if self.parts[0][0] else self.parts[0][1]

    def _rest(self) -> tuple[tuple[bool, str], ...]:
        return self.parts[1:] if self.head else self.parts

    def day_prefix(self, day: dt.date) -> str:
        """What follows the head for one day, up to the first hour or minute variable."""
        values = {"year": day.year, "month": day.month, "day": day.day}
        out = []
        for var, s in self._rest():
            if not var:
                out.append(s)
                continue
            field, fmt, _ = VARIABLES[s]
            if field not in values:
                break
            out.append(fmt.format(values[field]))
        return "".join(out)

    @property
    def pattern(self) -> re.Pattern:
        """The keys this path holds, from the start of the key (hours and minutes: their digits)."""
        return re.compile("".join(f"(?:{VARIABLES[s][2]})" if var else re.escape(s) for var, s in self.parts))
