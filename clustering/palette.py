"""The segments' colours, defined once: the cards, the run pages and the charts read them.

A segment is given a colour when it is created and keeps it for life (``Segment.colour_index``),
as it keeps its name and strategy across retrains. Each colour comes with a marker shape:
twenty colours cannot all be told apart at a glance by every reader, so the shapes cycle
(circle, square, triangle, diamond) and two colours that share a shape are far apart for
normal, protan, deutan and tritan vision alike (tests/clustering/test_palette.py measures
it). The first six are Okabe and Ito's colour-blind-safe set and the first eight are told
apart by colour alone (the common runs); the rest were chosen to stay apart from them and
from each other, visible on white, and ordered so that colours sharing a shape differ most.

Pure Python: no Django.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# The marker shapes, by Chart.js's pointStyle names; the page draws the same ones in SVG.
SHAPES = ("circle", "rect", "triangle", "rectRot")

_COLOURS = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#115533",  # dark green
    "#D55E00",  # vermilion
    "#881166",  # plum
    "#EE7799",  # pink
    "#AA5588",  # mauve
    "#4400DD",  # ultramarine
    "#CC00AA",  # magenta
    "#BB0044",  # crimson
    "#AA66FF",  # violet
    "#99CC88",  # sage
    "#00DD55",  # bright green
    "#BB9955",  # tan
    "#778844",  # olive
    "#882200",  # brown
    "#007755",  # teal
)


@dataclass(frozen=True)
class SegmentColour:
    index: int
    hex: str
    shape: str  # one of SHAPES

    def as_json(self) -> dict:
        """For the charts' data (and a template reads it as it reads the entry itself)."""
        return {"hex": self.hex, "shape": self.shape}


PALETTE: tuple[SegmentColour, ...] = tuple(
    SegmentColour(i, hex_, SHAPES[i % len(SHAPES)]) for i, hex_ in enumerate(_COLOURS)
)


# The elbow and silhouette curves, and the marker of the chosen K on them.
CHART_LINES = {"inertia": _COLOURS[0], "silhouette": _COLOURS[2], "chosen": _COLOURS[6]}


def colour_of(index: int | None) -> SegmentColour:
    """The palette entry of a stored colour index (a missing one reads as the first)."""
    return PALETTE[(index or 0) % len(PALETTE)]


def colour_for_new_segment(*, in_run: Iterable[int] = (), held: Iterable[int] = ()) -> int:
    """The colour index a new segment gets: never one of ``in_run`` (the other segments of
    its run) while the palette has another; of those, the first that no segment holds,
    else the one the fewest segments hold (``held``: every segment's colour index)."""
    taken = set(in_run)
    counts = Counter(held)
    free = [c.index for c in PALETTE if c.index not in taken] or [c.index for c in PALETTE]
    return min(free, key=lambda index: (counts[index], index))
