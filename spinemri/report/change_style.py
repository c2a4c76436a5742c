"""Colours and markers of the change statuses, shared by the change section, timelines and QC pairs.

One colour per vertebra status of ``changes.csv`` (docs/metrics.md, "Change between time
points"), so the table of the report, the timeline figures and the side-by-side QC speak the same
language; one marker shape per status as well, so that the figures read without colour vision.
"""

from __future__ import annotations

__all__ = [
    "STATUS_COLOURS",
    "STATUS_MARKERS",
    "STATUS_ORDER",
    "CHANGED_STATUSES",
    "BASELINE_COLOUR",
    "status_rgb",
]

#: Every vertebra status, in the order the report lists them (worst first, then the rest).
STATUS_ORDER = (
    "new",
    "progressing",
    "indeterminate",
    "stable",
    "regressing",
    "resolved",
    "uninvolved",
    "outside_fov",
    "not_comparable",
)

#: Status -> colour (hex RGB); matplotlib's tab10 colours, the greys for "nothing to compare".
STATUS_COLOURS: dict[str, str] = {
    "new": "#d62728",
    "progressing": "#ff7f0e",
    "indeterminate": "#9467bd",
    "stable": "#1f77b4",
    "regressing": "#2ca02c",
    "resolved": "#17becf",
    "uninvolved": "#b0b0b0",
    "outside_fov": "#7f7f7f",
    "not_comparable": "#8c564b",
}

#: Status -> matplotlib marker of the timeline.
STATUS_MARKERS: dict[str, str] = {
    "new": "P",
    "progressing": "^",
    "indeterminate": "D",
    "stable": "o",
    "regressing": "v",
    "resolved": "X",
    "uninvolved": ".",
    "outside_fov": "s",
    "not_comparable": "s",
}

#: The statuses of a level whose state changed between two scans: each gets a side-by-side QC.
CHANGED_STATUSES = ("new", "progressing", "regressing", "resolved", "indeterminate")

#: Face colour of the first time point's markers (no change leads into it).
BASELINE_COLOUR = "#ffffff"


def status_rgb(status: str) -> tuple[int, int, int]:
    """The colour of a status as an (R, G, B) triple of 0-255.

    Parameters
    ----------
    status : str
        A vertebra status (:data:`STATUS_ORDER`); an unknown one gets black.

    Returns
    -------
    tuple of 3 int
        The colour of :data:`STATUS_COLOURS`.
    """
    h = STATUS_COLOURS.get(status, "#000000").lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
