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
    viewers: int | None  # None where the figures have no per-day viewers
    x: float  # the slot's centre
    bar_x: float
    bar_width: float
    bar_y: float
    bar_height: float
    point_y: float | None


@dataclasses.dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclasses.dataclass(frozen=True)
class Chart:
    days: list[Day]
    y_ticks: list[Tick]
    x_labels: list[Day]
    viewers_line: str  # SVG polyline points, "" without viewers
    has_viewers: bool
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


def per_day_figures(per_day: list[dict]) -> list[dict]:
    """The catalog's ``per_day`` of the stats, as the chart reads it."""
    return [{"date": row["date"], "plays": int(row.get("plays", 0)),
             "viewers": None if row.get("viewers") is None else int(row["viewers"])}
            for row in per_day]


def build_chart(rows: list[dict], span: int, today: dt.date) -> Chart:
    """The chart of ``span`` days ending ``today`` from per-day ``rows``."""
    by_date = {row["date"]: row for row in rows}
    dates = [today - dt.timedelta(days=span - 1 - i) for i in range(span)]
    has_viewers = any(row.get("viewers") is not None for row in rows)
    figures = [(day, int(by_date.get(day.isoformat(), {}).get("plays", 0)),
                by_date.get(day.isoformat(), {}).get("viewers", 0 if has_viewers else None)) for day in dates]
    top_value = nice_ceiling(max([plays for _, plays, _ in figures] +
                                 [viewers or 0 for _, _, viewers in figures] + [1]))
    slot = PLOT_WIDTH / span
    bar_width = max(1.0, slot * 0.6)

    def y_of(value: int) -> float:
        return round(TOP + PLOT_HEIGHT * (1 - value / top_value), 1)

    days = []
    for index, (day, plays, viewers) in enumerate(figures):
        x = LEFT + slot * (index + 0.5)
        days.append(Day(
            date=day.isoformat(), label=date_label(day), plays=plays,
            viewers=None if viewers is None else int(viewers),
            x=round(x, 1), bar_x=round(x - bar_width / 2, 1), bar_width=round(bar_width, 1),
            bar_y=y_of(plays), bar_height=round(TOP + PLOT_HEIGHT - y_of(plays), 1),
            point_y=None if viewers is None else y_of(int(viewers)),
        ))
    every = math.ceil(span / MAX_DATE_LABELS)
    # The last day (today) is always labelled; the others every few days back from it.
    x_labels = [day for index, day in enumerate(days) if (span - 1 - index) % every == 0]
    ticks = [Tick(value=top_value * i // 4, y=y_of(top_value * i // 4)) for i in range(5)]
    line = " ".join(f"{day.x},{day.point_y}" for day in days) if has_viewers else ""
    return Chart(days=days, y_ticks=ticks, x_labels=x_labels, viewers_line=line, has_viewers=has_viewers)


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
