"""The bands that turn a number into words: silhouette, stability and confidence.

Defined once here (pure Python); the engine, the pages, the help panel, the member
filter and the API's OpenAPI document all read these tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    key: str  # for URLs and CSS: "very", "reasonable"
    label: str  # as shown: "very confident"
    minimum: float  # the band holds values >= minimum (and below the next band's)
    text: str = ""  # what it means, in plain words
    # Where the segments must not be used as they are: one line for a campaign export.
    warning: str = ""


def band_for(bands: tuple[Band, ...], value: float) -> Band:
    """The band a value falls in (bands are listed from the highest minimum down)."""
    for band in bands:
        if value >= band.minimum:
            return band
    return bands[-1]


def band_range(bands: tuple[Band, ...], band: Band) -> tuple[float | None, float | None]:
    """(lower bound, upper bound) of a band; None where it is open."""
    index = bands.index(band)
    upper = bands[index - 1].minimum if index else None
    lower = band.minimum if index < len(bands) - 1 else None
    return lower, upper


def describe_bands(bands: tuple[Band, ...], *, percent: bool = False) -> str:
    """'Strong ≥ 0.70 · reasonable 0.50–0.70 · ...' for the help panel."""

    def shown(value: float) -> str:
        return f"{value * 100:.0f} %" if percent else f"{value:.2f}"

    parts = []
    for band in bands:
        lower, upper = band_range(bands, band)
        if upper is None:
            parts.append(f"{band.label} ≥ {shown(band.minimum)}")
        elif lower is None:
            parts.append(f"{band.label} below {shown(upper)}")
        else:
            low = f"{lower * 100:.0f}" if percent else shown(lower)
            parts.append(f"{band.label} {low}–{shown(upper)}")
    text = " · ".join(parts)
    return text[:1].upper() + text[1:]


SILHOUETTE_BANDS: tuple[Band, ...] = (
    Band("strong", "strong", 0.70, "Segments are clearly separated; customers fit them well."),
    Band(
        "reasonable",
        "reasonable",
        0.50,
        "Segments are reasonably separated; most customers fit one well.",
    ),
    Band(
        "weak",
        "weak",
        0.25,
        "Segments overlap a lot; treat them as rough groupings and check them before acting "
        "on them.",
    ),
    Band(
        "poor",
        "poor",
        float("-inf"),
        "The data shows no clear segments: customers are spread out rather than grouped. "
        "These segments are arbitrary cuts and should not be treated as personas.",
        "no clear segments: these segments are arbitrary cuts, not personas",
    ),
)

STABILITY_BANDS: tuple[Band, ...] = (
    Band("very-stable", "very stable", 0.90),
    Band("stable", "stable", 0.75),
    Band("shaky", "shaky", 0.50),
    Band("unstable", "unstable", float("-inf")),
)

# Per segment: the share of its members' pairs that resampled refits keep in one segment.
SEGMENT_STABILITY_BANDS: tuple[Band, ...] = (
    Band("holds", "holds together", 0.75, "Most of its customers stay together on refits."),
    Band(
        "falls-apart",
        "falls apart on resampling",
        float("-inf"),
        "Refits on other samples split these customers up: treat the segment as a rough "
        "cut, not a persona.",
    ),
)

CONFIDENCE_BANDS: tuple[Band, ...] = (
    Band("very", "very confident", 0.90),
    Band("confident", "confident", 0.70),
    Band("moderate", "moderate", 0.50),
    Band("low", "low", float("-inf")),
)
