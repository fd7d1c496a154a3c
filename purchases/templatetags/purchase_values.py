"""The lifetime value of a segment, for its card wherever the card is drawn (the
dashboard, or alone after an edit)."""

from __future__ import annotations

from django import template

from purchases.selectors import SegmentValue, cluster_value

register = template.Library()


@register.simple_tag
def segment_value(cluster) -> SegmentValue | None:
    return cluster_value(cluster_id=cluster.id) if cluster else None
