"""The server-side SVG charts (no Django, no database)."""

from __future__ import annotations

import re

from staff.plots import Point, Series, line_chart


def test_a_chart_draws_lines_points_intervals_and_a_ringed_highlight():
    svg = line_chart(
        [
            Series("NDCG@10", (Point(0, 0.1), Point(1, 0.2, highlight=True), Point(2, None), Point(3, 0.15))),
            Series("arm <b>", (Point(0, 0.3, low=0.25, high=0.35), Point(1, 0.32, low=0.3, high=0.34))),
        ],
        title="Metrics & more",
        x_ticks=[(0, "v1"), (3, "v4")],
    )

    assert svg.startswith('<svg class="chart"') and svg.endswith("</svg>")
    assert 'aria-label="Metrics &amp; more"' in svg and "arm &lt;b&gt;" in svg and "<b>" not in svg
    assert svg.count('class="point"') == 5  # the missing value is a gap, not a point
    assert svg.count('class="errorbar"') == 2 and svg.count('class="band"') == 1
    assert svg.count('class="highlight"') == 1
    assert ">v1<" in svg and ">v4<" in svg


def test_y_ticks_fall_on_round_numbers():
    svg = line_chart([Series("ctr", (Point(0, 0.0451), Point(1, 0.0594)))], title="t")
    ticks = [float(t) for t in re.findall(r'text-anchor="end">([0-9.]+)<', svg)]
    assert ticks == [0.045, 0.05, 0.055, 0.06]


def test_an_empty_chart_says_so():
    assert "No data yet" in line_chart([Series("x", ())], title="nothing")
    assert "No data yet" in line_chart([], title="nothing")


def test_one_point_in_time_still_gets_an_axis_and_dodged_intervals():
    svg = line_chart(
        [Series("a", (Point(1000.0, 0.1, 0.09, 0.11),)), Series("b", (Point(1000.0, 0.12, 0.11, 0.13),))],
        title="t",
        dodge=8,
    )
    xs = {float(x) for x in re.findall(r'class="errorbar" stroke="[^"]+" x1="([0-9.]+)"', svg)}
    assert len(xs) == 2 and max(xs) - min(xs) == 8
