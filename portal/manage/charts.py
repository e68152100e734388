"""Bar charts as geometry for hand-written SVG templates (``manage/analytics_charts.html``).

Why not a charting library: pygal (the obvious one) writes its own inline ``<style>`` and
``<script>``, which our CSP forbids, so its charts would have to be separate image requests
(re-running each report) whose text a screen reader cannot reach. A bar chart is a few rectangles;
here they are computed in Python and drawn by a Jinja template inline in the page, styled by
classes in manage.css, with every label escaped by Jinja's autoescaping like any other text.

One function covers the three shapes the analytics page needs: one series, stacked series (new
vs returning, dwell buckets) and grouped series side by side (the offer funnel's stages).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# The drawing's own units (the SVG scales to the column's width); wide and low like a timeline.
WIDTH, HEIGHT = 720.0, 240.0
# Room for the value axis on the left and the category labels below.
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48.0, 8.0, 10.0, 34.0
# More category labels than this overlap at the chart's width: every n-th is shown instead.
MAX_X_LABELS = 16
# Roughly this many gridlines on the value axis.
TARGET_TICKS = 4
# Space between neighbouring categories, as a share of each category's slot.
GAP_SHARE = 0.2
# Series colours are classes in manage.css: .series-0 … .series-4, in series order.
SERIES_CLASSES = 5


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # index into the chart's series names
    css: str  # its CSS class, series-0 …
    title: str  # "category · series: value", the bar's tooltip


@dataclass(frozen=True)
class AxisLabel:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    """Everything the template draws; ``series`` names the legend entries in order."""

    width: float
    height: float
    bars: tuple[Bar, ...]
    x_labels: tuple[AxisLabel, ...]
    y_ticks: tuple[AxisLabel, ...]
    series: tuple[str, ...]
    plot_left: float
    plot_right: float
    baseline: float

    def series_class(self, index: int) -> str:
        return f"series-{index % SERIES_CLASSES}"


def nice_step(top: float, ticks: int = TARGET_TICKS) -> float:
    """A round gridline step (1, 2 or 5 x 10^n) giving about ``ticks`` lines up to ``top``."""
    if top <= 0:
        return 1.0
    rough = top / ticks
    magnitude = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= rough:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def bar_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    stacked: bool = False,
) -> Chart:
    """Bars for each category: one per series side by side, or stacked when ``stacked``."""
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    baseline = MARGIN_TOP + plot_h
    count = max(1, len(categories))
    if stacked:
        top = max(
            (sum(values[i] for _, values in series) for i in range(len(categories))), default=0
        )
    else:
        top = max((max(values, default=0) for _, values in series), default=0)
    step = nice_step(float(top))
    axis_top = step * max(1, math.ceil(top / step))
    scale = plot_h / axis_top
    slot = plot_w / count
    inner = slot * (1 - GAP_SHARE)
    lanes = 1 if stacked else max(1, len(series))
    bars: list[Bar] = []
    for index, category in enumerate(categories):
        left = MARGIN_LEFT + index * slot + (slot - inner) / 2
        stack = 0.0
        for number, (name, values) in enumerate(series):
            value = float(values[index])
            height = value * scale
            x = left if stacked else left + number * inner / lanes
            y = baseline - stack - height
            title = (
                f"{category} · {name}: {_number(value)}"
                if len(series) > 1
                else (f"{category}: {_number(value)}")
            )
            bars.append(
                Bar(
                    round(x, 2),
                    round(y, 2),
                    round(inner / lanes, 2),
                    round(height, 2),
                    number,
                    f"series-{number % SERIES_CLASSES}",
                    title,
                )
            )
            if stacked:
                stack += height
    every = max(1, math.ceil(len(categories) / MAX_X_LABELS))
    x_labels = tuple(
        AxisLabel(round(MARGIN_LEFT + (i + 0.5) * slot, 2), baseline + 16, text)
        for i, text in enumerate(categories)
        if i % every == 0
    )
    y_ticks = tuple(
        AxisLabel(MARGIN_LEFT - 6, round(baseline - n * step * scale, 2), _number(n * step))
        for n in range(round(axis_top / step) + 1)
    )
    return Chart(
        WIDTH,
        HEIGHT,
        tuple(bars),
        x_labels,
        y_ticks,
        tuple(name for name, _ in series),
        MARGIN_LEFT,
        WIDTH - MARGIN_RIGHT,
        baseline,
    )
