"""The stats page's chart, drawn here as numbers for an inline SVG (no script): plays as
bars and distinct viewers as a line with a point a day, over every day of the span (days
without plays are zeros), with a y axis of round numbers and a readable date every few days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

WIDTH = 720
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 56
PLOT_WIDTH = WIDTH - LEFT - RIGHT
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
MAX_DATE_LABELS = 8
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclasses.dataclass(frozen=True)
class Day:
    date: str  # YYYY-MM-DD (UTC)
    label: str  # "Dec 5"
    plays: int
    viewers: int
    x: float  # the slot's centre
    bar_x: float
    bar_width: float
    bar_y: float
    bar_height: float
    point_y: float


@dataclasses.dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclasses.dataclass(frozen=True)
class Chart:
    days: list[Day]
    y_ticks: list[Tick]
    x_labels: list[Day]
    viewers_line: str  # SVG polyline points
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: float = TOP + PLOT_HEIGHT
    right: float = LEFT + PLOT_WIDTH


def date_label(day: dt.date) -> str:
    return f"{MONTHS[day.month - 1]} {day.day}"


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 times a power of ten (at least 4) that is >= value."""
    if value <= 4:
        return 4
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def build_chart(rows: list[dict], span: int, today: dt.date) -> Chart:
    """The chart of ``span`` days ending ``today`` from the catalog's ``per_day`` of the stats
    (``{date, plays, viewers}`` a day); a day without a row (the stats' today may be another
    than this clock's, around midnight) is zeros."""
    by_date = {row["date"]: row for row in rows}
    dates = [today - dt.timedelta(days=span - 1 - i) for i in range(span)]
    nothing = {"plays": 0, "viewers": 0}
    figures = [(day, by_date.get(day.isoformat(), nothing)) for day in dates]
    top_value = nice_ceiling(max([row["plays"] for _, row in figures] + [row["viewers"] for _, row in figures] + [1]))
    slot = PLOT_WIDTH / span
    bar_width = max(1.0, slot * 0.6)

    def y_of(value: int) -> float:
        return round(TOP + PLOT_HEIGHT * (1 - value / top_value), 1)

    days = []
    for index, (day, row) in enumerate(figures):
        x = LEFT + slot * (index + 0.5)
        plays = row["plays"]
        days.append(Day(
            date=day.isoformat(), label=date_label(day), plays=plays, viewers=row["viewers"],
            x=round(x, 1), bar_x=round(x - bar_width / 2, 1), bar_width=round(bar_width, 1),
            bar_y=y_of(plays), bar_height=round(TOP + PLOT_HEIGHT - y_of(plays), 1),
            point_y=y_of(row["viewers"]),
        ))
    every = math.ceil(span / MAX_DATE_LABELS)
    # The last day (today) is always labelled; the others every few days back from it.
    x_labels = [day for index, day in enumerate(days) if (span - 1 - index) % every == 0]
    ticks = [Tick(value=top_value * i // 4, y=y_of(top_value * i // 4)) for i in range(5)]
    line = " ".join(f"{day.x},{day.point_y}" for day in days)
    return Chart(days=days, y_ticks=ticks, x_labels=x_labels, viewers_line=line)


def duration_text(seconds: float) -> str:
    """Watch time as a person reads it: "2 h 05 min", "7 min 30 s", "45 s"."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
