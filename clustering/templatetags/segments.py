"""Small display helpers for the segmentation pages."""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

from clustering import engine
from clustering.algorithms import LABELS
from clustering.bands import SEGMENT_STABILITY_BANDS, STABILITY_BANDS, band_for
from customers.models import field_label

register = template.Library()


@register.filter
def percent(value, digits: int = 0) -> str:
    if value is None or value == "":
        return "–"
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def confidence_percent(value, digits: int = 0) -> str:
    """A confidence as a percentage rounded down, so it agrees with its band."""
    if value is None or value == "":
        return "–"
    return percent(engine.confidence_rounded(float(value), int(digits) + 2), digits)


@register.filter
def number(value, digits: int = 1) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str) and not value.replace(".", "", 1).lstrip("-").isdigit():
        return value  # a category (a categorical feature's value), shown as it is
    value = float(value)
    return f"{value:,.{int(digits)}f}" if not value.is_integer() or digits else f"{value:,.0f}"


@register.filter
def stability_band(value) -> str:
    if value is None:
        return ""
    return band_for(STABILITY_BANDS, float(value)).label


@register.filter
def segment_stability_band(value):
    """The band (clustering.bands.SEGMENT_STABILITY_BANDS) of a segment's kept-together share."""
    if value is None:
        return None
    return band_for(SEGMENT_STABILITY_BANDS, float(value))


@register.filter
def algorithm_label(key: str) -> str:
    """'Gaussian mixture' for 'gmm' (clustering.algorithms.ALGORITHMS)."""
    return LABELS.get(key, key)


@register.filter
def band_class(label: str) -> str:
    """CSS class for a band label ('very confident', 'weak', ...)."""
    return "band-" + str(label).replace(" ", "-")


@register.filter
def sd_words(diff_sd) -> str:
    """'1.2 sd above' / 'about the same' for a difference in standard deviations."""
    diff = float(diff_sd)
    if abs(diff) < 0.25:
        return "about the same"
    return f"{abs(diff):.1f} sd {'above' if diff > 0 else 'below'}"


@register.filter
def relative(difference) -> str:
    """'+35 %' / '−12 %' against the population average."""
    if difference is None:
        return ""
    sign = "+" if difference >= 0 else "−"
    return f"{sign}{abs(difference) * 100:.0f} %"


@register.filter
def lookup(mapping, key):
    """``mapping[key]``, or the key itself when it is not there (labels by feature key)."""
    try:
        return mapping[key]
    except (KeyError, TypeError, IndexError):
        return key


@register.filter
def feature_label(name: str) -> str:
    return field_label(name)


@register.filter
def index(sequence, position: int):
    try:
        return sequence[int(position)]
    except (IndexError, TypeError, ValueError):
        return None


@register.filter
def confidence_band(value) -> str:
    return engine.confidence_band(float(value))


DATE_FORMAT = "j M Y, H:i"  # every date on every page: "30 Nov 2026, 03:04"


@register.filter
def when(value) -> str:
    """A moment in the site's one date format, with the relative time ("5 minutes ago")
    as its tooltip and the exact time for machines."""
    if not value:
        return "–"
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        naturaltime(value),
        date_format(local, DATE_FORMAT),
    )


@register.filter
def when_text(value) -> str:
    """A moment in the same one format as ``when``, as plain text (inside an <option>)."""
    if not value:
        return "–"
    return date_format(timezone.localtime(value), DATE_FORMAT)
