"""Genres of report (``data/genres.yaml``): which one a report is, and how its years relate.

A report is ABOUT one year (``Meta.year``) and speaks FROM one year (what its ``今年`` means). A government work
report is delivered in year N at a people's congress: its title carries N, it reviews N-1 (its year) and plans N
(its 今年). An annual rule-of-law report, a disclosure report or a statistical bulletin carries the year it is
about. Which genre does what is data, not code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ragreports.data import load_rules


class _GenreEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: list[str]
    opening: list[str]
    title_year: Literal["about", "delivered"]
    present: Literal["about", "delivered"]


class GenresFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    genres: dict[str, _GenreEntry]
    default: str


@dataclass(frozen=True)
class Genre:
    name: str
    title_year: str  # "about" | "delivered"
    present: str  # "about" | "delivered"

    def present_year(self, about: int | None) -> int | None:
        """The year the report's 今年 means, from the year it is about."""
        if about is None:
            return None
        return about + 1 if self.present == "delivered" else about


@functools.lru_cache(maxsize=1)
def _genres() -> GenresFile:
    g = load_rules("genres", GenresFile)
    if g.default not in g.genres:
        raise ValueError(f"data/genres.yaml: default genre {g.default!r} is not defined")
    return g


def genre_named(name: str | None) -> Genre:
    g = _genres()
    e = g.genres.get(name or "", g.genres[g.default])
    return Genre(name if name in g.genres else g.default, e.title_year, e.present)


def detect_genre(title: str | None, text: str) -> Genre:
    """The first genre (in file order) whose title pattern matches the title, or whose opening pattern matches the
    first 600 characters; else the default."""
    g = _genres()
    opening = text[:600]
    for name, e in g.genres.items():
        if (title and any(re.search(p, title) for p in e.title)) or any(re.search(p, opening, re.M) for p in e.opening):
            return genre_named(name)
    return genre_named(g.default)
